//! Writing a report to disk: `report.json` (the whole [`Report`]), `per_second.csv` (one row
//! per second of the window), and `latency.hlog`, an HdrHistogram interval log (one
//! compressed histogram per second, tag `all`) that HdrHistogram's tools and other runs'
//! logs can merge.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;

use crate::report::Report;

/// Writes the three files into `dir` (created if missing).
pub fn write_all(report: &Report, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("report.json"), json)?;
    std::fs::write(dir.join("per_second.csv"), csv(report))?;
    std::fs::write(dir.join("latency.hlog"), hlog(report)?)?;
    Ok(())
}

/// The per-second table as CSV.
pub fn csv(report: &Report) -> String {
    let mut out =
        String::from("second,ops,reads,writes,errors,events,p50_us,p90_us,p99_us,max_us\n");
    for r in &report.per_second {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            r.second,
            r.ops,
            r.reads,
            r.writes,
            r.errors,
            r.events,
            r.p50_us,
            r.p90_us,
            r.p99_us,
            r.max_us
        ));
    }
    out
}

/// The interval log: start times relative to the window's start (after warm-up).
pub fn hlog(report: &Report) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let start = UNIX_EPOCH
        + Duration::from_millis(report.started_unix_ms as u64)
        + Duration::from_secs_f64(report.config.warmup_s);
    {
        let mut w = IntervalLogWriterBuilder::new()
            .add_comment("zoocore-bench load: latency in microseconds, all operations")
            .with_start_time(start)
            .with_base_time(start)
            .with_max_value_divisor(1.0)
            .begin_log_with(&mut buf, &mut serializer)?;
        let tag = Tag::new("all");
        for (i, h) in report.intervals.iter().enumerate() {
            w.write_histogram(
                h,
                Duration::from_secs(i as u64),
                Duration::from_secs(1),
                tag,
            )
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        }
    }
    buf.flush()?;
    Ok(buf)
}

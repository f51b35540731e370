//! Warm-up until steady: before a run's measured window, the same load runs in short
//! windows (`window_s`, default 1 s) until the last `windows` (3) of them are each within
//! `tolerance_pct` (5%) of their mean, or until `max_s` is spent, in which case the run is
//! measured anyway and carries a warning. A fresh Apache ZooKeeper JVM runs ~40% slower for
//! its first seconds (issue 13: 17k writes/s in its first 7 s with 3 voters, 24-29k after),
//! so a fixed two-second warm-up measured a cold JVM against a warm zoocore.
//!
//! Each window is a whole [`run_load`] (connect, a short ramp, the window, drain, close) on
//! the same keys: the first creates them (its set-up time is recorded apart and the cap
//! counts from its end), later ones and the measured run skip set-up. The
//! servers stay up between windows, and their JIT, caches and page cache stay warm; only
//! the sessions are new, which costs both systems alike.

use serde::Serialize;

use super::spec::WarmupSettings;
use crate::{run_load, LoadConfig, LoadError};

/// Seconds each warm-up window (and then the measured run) spends connecting and ramping
/// before its window opens, so the window sees the connections at full pipeline depth.
pub const RAMP_S: f64 = 0.25;

/// What the warm-up of one run did.
#[derive(Debug, Clone, Serialize)]
pub struct WarmupRecord {
    /// Throughput of each window, in order.
    pub windows_ops_per_s: Vec<f64>,
    /// Wall time of the first window, which also created the keys (a million znodes take
    /// tens of seconds; that is not warm-up and does not count against the cap).
    pub setup_s: f64,
    /// Wall time spent warming after the first window.
    pub seconds: f64,
    pub steady: bool,
    /// Set when the cap was reached before the throughput settled.
    pub warning: Option<String>,
}

/// True when the last `n` windows are each within `tolerance_pct` of their mean (and the
/// mean is not zero: a dead server is not steady).
pub fn is_steady(windows: &[f64], n: usize, tolerance_pct: f64) -> bool {
    if n == 0 || windows.len() < n {
        return false;
    }
    let tail = &windows[windows.len() - n..];
    let mean = tail.iter().sum::<f64>() / n as f64;
    mean > 0.0
        && tail
            .iter()
            .all(|w| (w - mean).abs() <= mean * tolerance_pct / 100.0)
}

/// Drives `cfg`'s load in windows until steady or capped. `cfg` is the measured run's
/// config; the caller then measures with `skip_setup` and a [`RAMP_S`] warm-up.
pub fn warm_until_steady(cfg: &LoadConfig, w: &WarmupSettings) -> Result<WarmupRecord, LoadError> {
    let first = std::time::Instant::now();
    let mut start = first;
    let mut setup_s = 0.0;
    let mut window = cfg.clone();
    window.warmup_s = RAMP_S;
    window.duration_s = w.window_s;
    // The measured run reads the servers' CPU; these windows need not.
    window.server_pid.clear();
    let mut ops = Vec::new();
    loop {
        let report = run_load(&window)?;
        if !window.skip_setup {
            setup_s = first.elapsed().as_secs_f64();
            start = std::time::Instant::now();
        }
        window.skip_setup = true;
        ops.push(report.ops_per_s);
        if is_steady(&ops, w.windows, w.tolerance_pct) {
            return Ok(WarmupRecord {
                windows_ops_per_s: ops,
                setup_s,
                seconds: start.elapsed().as_secs_f64(),
                steady: true,
                warning: None,
            });
        }
        if start.elapsed().as_secs_f64() >= w.max_s {
            let tail: Vec<String> = ops
                .iter()
                .rev()
                .take(w.windows)
                .rev()
                .map(|o| format!("{o:.0}"))
                .collect();
            return Ok(WarmupRecord {
                warning: Some(format!(
                    "not steady after {:.0} s (cap {} s): last windows {} ops/s",
                    start.elapsed().as_secs_f64(),
                    w.max_s,
                    tail.join(", ")
                )),
                windows_ops_per_s: ops,
                setup_s,
                seconds: start.elapsed().as_secs_f64(),
                steady: false,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_steady;

    #[test]
    fn steady_means_the_last_windows_within_tolerance_of_their_mean() {
        // A cold JVM: slow first seconds, then flat within 5%.
        let w = [17_000.0, 21_000.0, 25_000.0, 26_000.0, 25_500.0];
        assert!(!is_steady(&w[..3], 3, 5.0));
        assert!(!is_steady(&w[..4], 3, 5.0), "21k..26k is a climb");
        assert!(is_steady(&w, 3, 5.0));
        assert!(!is_steady(&w[..2], 3, 5.0), "too few windows");
        assert!(!is_steady(&[0.0, 0.0, 0.0], 3, 5.0), "nothing served");
        // 100 / 110: mean 105, both within 5%; 100 / 112 is not.
        assert!(is_steady(&[100.0, 110.0], 2, 5.0));
        assert!(!is_steady(&[100.0, 112.0], 2, 5.0));
    }
}

//! zoocore-bench: a load generator that speaks the ZooKeeper client protocol (through
//! `zoocore-client`), so the same generator drives zoocore and Apache ZooKeeper, plus an echo
//! server with the same framing that measures the request/response ceiling of the machine.
//!
//! The library is what a campaign runner calls: [`run_load`] takes a [`LoadConfig`] and
//! returns a [`Report`] (serialisable to JSON, with the merged latency histograms kept for
//! interval logs). The binary in `main.rs` is a thin clap front end over it.
//!
//! Shape of a run: set-up (keys created on one session), then every connection starts at
//! the same origin; warm-up, then the measured window; at its end connections stop issuing,
//! drain what they have outstanding, and close their sessions, so every transaction the run
//! caused is counted (the tests compare that count with the server's zxid advance).

pub mod campaign;
pub mod config;
pub mod cpu;
pub mod echo;
pub mod keys;
pub mod load;
pub mod output;
pub mod report;
mod stats;

pub use config::{ChurnMode, Distribution, LoadConfig, Workload};
pub use load::{run_load, LoadError};
pub use report::Report;

/// Sends a four-letter word to `addr` and returns the whole answer.
pub fn four_letter(addr: std::net::SocketAddr, word: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    s.write_all(word.as_bytes())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    Ok(answer)
}

/// The `Zxid:` line of a `srvr` answer (zoocore and Apache print it as `0x<hex>`).
pub fn srvr_zxid(srvr: &str) -> Option<i64> {
    let line = srvr.lines().find_map(|l| l.strip_prefix("Zxid: "))?;
    i64::from_str_radix(line.trim().trim_start_matches("0x"), 16).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn srvr_zxid_parses_hex() {
        let srvr =
            "Zookeeper version: 3.8\nLatency min/avg/max: 0/0.0/0\nZxid: 0x1a\nMode: standalone\n";
        assert_eq!(super::srvr_zxid(srvr), Some(26));
        assert_eq!(super::srvr_zxid("nothing"), None);
    }
}

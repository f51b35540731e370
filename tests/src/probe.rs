//! Looking at a server process from outside, for the abuse suite: its resident memory
//! (`VmRSS` in `/proc/<pid>/status`, the JVM's own for Apache ZooKeeper), which client
//! connections it still holds open (from the kernel's socket tables, so a server that is stuck
//! and answers nothing can still be asked), and the reasons zoocore logged for the
//! connections it closed.
//!
//! A connection counts as held while the server-side socket still belongs to a file
//! descriptor: once the server closes it, the kernel orphans the socket (inode 0) while it
//! flushes or resets, or drops it. That tells a close apart from a stall even when the client
//! never reads, where no FIN can reach the client through a full window.

use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The resident set of process `pid` in KiB, or `None` once it is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Samples a process's RSS in the background and keeps the highest value seen.
pub struct RssPeak {
    stop: Arc<AtomicBool>,
    peak_kib: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl RssPeak {
    /// Starts sampling `pid` every 50 ms.
    pub fn start(pid: u32) -> RssPeak {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_kib = Arc::new(AtomicU64::new(rss_kib(pid).unwrap_or(0)));
        let thread = {
            let (stop, peak_kib) = (stop.clone(), peak_kib.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(kib) = rss_kib(pid) {
                        peak_kib.fetch_max(kib, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        RssPeak {
            stop,
            peak_kib,
            thread: Some(thread),
        }
    }

    /// The highest RSS seen so far, in KiB.
    pub fn peak_kib(&self) -> u64 {
        self.peak_kib.load(Ordering::Relaxed)
    }

    /// Stops sampling and returns the highest RSS seen, in KiB.
    pub fn finish(mut self) -> u64 {
        self.stop_thread();
        self.peak_kib()
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RssPeak {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// The client addresses whose connection to `server` (a listening address) is still open on
/// the server's side: a socket of the kernel's tables with that local address, that peer,
/// and an inode (a file descriptor refers to it).
///
/// A connection still waiting in the listen queue has no inode either, so ask only about
/// connections the server has answered on.
pub fn held_peers(server: SocketAddr) -> HashSet<SocketAddr> {
    let mut held = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[9] == "0" {
                continue;
            }
            let (Some(local), Some(peer)) = (parse_addr(fields[1]), parse_addr(fields[2])) else {
                continue;
            };
            if local == server {
                held.insert(peer);
            }
        }
    }
    held
}

/// `0100007F:1F90` (IPv4) or a 32-digit IPv4-mapped IPv6 address with its port, as the
/// kernel prints them: each 32-bit word in host (little-endian) byte order.
fn parse_addr(field: &str) -> Option<SocketAddr> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let v4_word = match addr.len() {
        8 => addr,
        // Java's sockets are IPv6 ones; IPv4 peers show as ::ffff:a.b.c.d.
        32 if addr.starts_with("0000000000000000FFFF0000") => &addr[24..],
        _ => return None,
    };
    let word = u32::from_str_radix(v4_word, 16).ok()?;
    let ip = Ipv4Addr::from(word.to_le_bytes());
    Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
}

/// Waits until `server` no longer holds any of `peers`; returns those it still holds at the
/// deadline (empty when all were closed).
pub fn wait_released(server: SocketAddr, peers: &[SocketAddr], limit: Duration) -> Vec<SocketAddr> {
    let deadline = Instant::now() + limit;
    loop {
        let held = held_peers(server);
        let still: Vec<SocketAddr> = peers.iter().copied().filter(|p| held.contains(p)).collect();
        if still.is_empty() || Instant::now() >= deadline {
            return still;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `closing connection from <addr>: <reason>` lines of a zoocore log, by client address (the
/// last reason wins should an address be reused).
pub fn logged_closes(log: &str) -> BTreeMap<SocketAddr, String> {
    const MARK: &str = "closing connection from ";
    let mut closes = BTreeMap::new();
    for line in log.lines() {
        let Some((_, rest)) = line.split_once(MARK) else {
            continue;
        };
        let Some((addr, reason)) = rest.split_once(": ") else {
            continue;
        };
        if let Ok(addr) = addr.parse() {
            closes.insert(addr, reason.trim().to_string());
        }
    }
    closes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_socket_addresses_parse() {
        assert_eq!(
            parse_addr("0100007F:1F90"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            parse_addr("0000000000000000FFFF00000302017F:5572"),
            Some("127.1.2.3:21874".parse().unwrap())
        );
        assert_eq!(parse_addr("00000000000000000000000001000000:0016"), None);
    }

    #[test]
    fn close_reasons_are_read_by_address() {
        let log = "2026-12-06T05:00:00Z  INFO zoocore_server::conn: closing connection from \
                   127.10.0.1:40000: packet length -1 is outside 0..=1048575 (jute.maxbuffer)\n\
                   unrelated line\n";
        let closes = logged_closes(log);
        assert_eq!(
            closes[&"127.10.0.1:40000".parse().unwrap()],
            "packet length -1 is outside 0..=1048575 (jute.maxbuffer)"
        );
        assert_eq!(closes.len(), 1);
    }

    #[test]
    fn our_own_rss_is_read() {
        let kib = rss_kib(std::process::id()).expect("this process has a status");
        assert!(kib > 0, "a running process has resident pages");
    }
}

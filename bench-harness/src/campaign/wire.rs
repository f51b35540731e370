//! A userspace Ethernet switch with a fixed delay, for kernels without netem (this
//! workplace's has neither `sch_netem` nor module support). Each endpoint of the emulated
//! network has a TAP device as its `eth0`; the switch reads every frame an endpoint sends,
//! holds it for the one-way delay, and writes it into the TAP of the endpoint whose MAC it
//! is addressed to (to every other endpoint for a broadcast). MACs are assigned by the
//! campaign (`02:00:00:00:00:<last octet of the address>`, locally administered), so no
//! learning is needed.
//!
//! Shape: one reader thread (a current-thread tokio runtime, one task per TAP, readiness by
//! epoll) and one writer thread. Every frame has the same delay, so arrival order is release
//! order and one FIFO between them suffices; the writer sleeps with the OS's high-resolution
//! timer (tokio's is 1 ms) until each frame is due. The cost is two syscalls and a hand-off
//! per frame, in the campaign's own process (so `generator_cpu_s` includes it), and the
//! sleep's slack (tens of µs) adds to every hop: the delay is a floor, not an exact figure.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tun_tap::Iface;

/// Larger than any frame a TAP without offloads hands out (MTU + Ethernet header).
const FRAME_BYTES_MAX: usize = 65_536;
/// How often the threads look at the stop flag when idle.
const IDLE_CHECK: Duration = Duration::from_millis(20);

/// The MAC of the endpoint whose address ends in `octet`.
pub fn mac(octet: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, octet]
}

/// What the switch did, for the run's record.
#[derive(Debug, Default)]
pub struct WireCounters {
    pub frames: AtomicU64,
    pub dropped: AtomicU64,
}

struct Frame {
    release: Instant,
    from: usize,
    /// None: every port but `from` (broadcast, multicast).
    to: Option<usize>,
    bytes: Vec<u8>,
}

/// The running switch; stopping (or dropping) it joins both threads, after which the TAPs
/// close with the last reference and the kernel removes them.
#[derive(Debug)]
pub struct Wire {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pub counters: Arc<WireCounters>,
}

impl Wire {
    /// Starts switching between `ports` (each TAP with its MAC), holding every frame for
    /// `one_way`.
    pub fn start(ports: Vec<(Iface, [u8; 6])>, one_way: Duration) -> std::io::Result<Wire> {
        let macs: HashMap<[u8; 6], usize> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, m))| (*m, i))
            .collect();
        let taps: Vec<Arc<Iface>> = ports.into_iter().map(|(t, _)| Arc::new(t)).collect();
        for t in &taps {
            t.set_non_blocking()?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(WireCounters::default());
        let (tx, rx) = mpsc::channel::<Frame>();
        let reader = {
            let (taps, stop, counters) = (taps.clone(), stop.clone(), counters.clone());
            std::thread::Builder::new()
                .name("wire-read".into())
                .spawn(move || read_all(taps, macs, one_way, tx, stop, counters))?
        };
        let writer = {
            let (stop, counters) = (stop.clone(), counters.clone());
            std::thread::Builder::new()
                .name("wire-write".into())
                .spawn(move || write_all(taps, rx, stop, counters))?
        };
        Ok(Wire {
            stop,
            threads: vec![reader, writer],
            counters,
        })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_all(
    taps: Vec<Arc<Iface>>,
    macs: HashMap<[u8; 6], usize>,
    one_way: Duration,
    tx: mpsc::Sender<Frame>,
    stop: Arc<AtomicBool>,
    counters: Arc<WireCounters>,
) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let local = tokio::task::LocalSet::new();
    let macs = Arc::new(macs);
    local.block_on(&rt, async move {
        for (from, tap) in taps.into_iter().enumerate() {
            let (macs, tx, counters) = (macs.clone(), tx.clone(), counters.clone());
            tokio::task::spawn_local(async move {
                // tokio deprecates `new` because a T could hand out an fd it does not own;
                // this T owns its fd (the Arc'd TAP), and the AsyncFd owns the Arc, so the fd
                // outlives the registration. The sound replacement is `unsafe`, which the
                // workspace denies.
                #[allow(deprecated)]
                let Ok(fd) = AsyncFd::new(tap) else {
                    return;
                };
                let mut buf = vec![0u8; FRAME_BYTES_MAX];
                loop {
                    let Ok(mut ready) = fd.readable().await else {
                        return;
                    };
                    loop {
                        match fd.get_ref().recv(&mut buf) {
                            Ok(n) if n >= 14 => {
                                let dst: [u8; 6] = buf[..6].try_into().unwrap_or_default();
                                let to = if dst[0] & 1 == 1 {
                                    None
                                } else if let Some(&to) = macs.get(&dst) {
                                    Some(to)
                                } else {
                                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                                    continue;
                                };
                                let frame = Frame {
                                    release: Instant::now() + one_way,
                                    from,
                                    to,
                                    bytes: buf[..n].to_vec(),
                                };
                                if tx.send(frame).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                ready.clear_ready();
                                break;
                            }
                            Err(_) => return,
                        }
                    }
                }
            });
        }
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(IDLE_CHECK).await;
        }
    });
}

fn write_all(
    taps: Vec<Arc<Iface>>,
    rx: mpsc::Receiver<Frame>,
    stop: Arc<AtomicBool>,
    counters: Arc<WireCounters>,
) {
    // The default 50 µs of timer slack would land on every hop; ask for none (best effort).
    let _ = nix::sys::prctl::set_timerslack(1);
    while !stop.load(Ordering::Relaxed) {
        let frame = match rx.recv_timeout(IDLE_CHECK) {
            Ok(f) => f,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let now = Instant::now();
        if frame.release > now {
            std::thread::sleep(frame.release - now);
        }
        let send = |i: usize| match taps[i].send(&frame.bytes) {
            Ok(_) => counters.frames.fetch_add(1, Ordering::Relaxed),
            Err(_) => counters.dropped.fetch_add(1, Ordering::Relaxed),
        };
        match frame.to {
            Some(to) => {
                send(to);
            }
            None => {
                for i in (0..taps.len()).filter(|&i| i != frame.from) {
                    send(i);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn macs_are_locally_administered_unicast() {
        let m = super::mac(254);
        assert_eq!(m, [0x02, 0, 0, 0, 0, 254]);
        assert_eq!(m[0] & 1, 0, "unicast");
        assert_eq!(m[0] & 2, 2, "locally administered");
    }
}

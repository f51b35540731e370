//! `MemDevice`: the in-memory twin of `FileDevice`, with faults injected on demand.
//!
//! Every file keeps its durable bytes and the writes made since its last sync. `crash`
//! models a power cut: each file becomes its durable bytes plus some of its unsynced writes,
//! as a `Crash` mode chooses (all lost, a prefix of the write stream surviving so that the
//! last write is torn, or a seeded random subset with torn pieces, as out-of-order page
//! writeback does). Directory operations (create, rename, remove) are durable at once, as
//! the real device makes them by fsyncing the directory.
//!
//! Faults: a capacity (ENOSPC once files would exceed it; `available_bytes` reports what is
//! left, or a figure the test chooses, as a stale statvfs would), a failing sync (EIO; the device
//! then refuses every write and sync until a crash, as a kernel that dropped dirty pages
//! must be assumed to have), and bit flips in stored bytes. Randomness comes from a seed
//! passed in; the device uses no clock and no threads (the mutex only makes handles `Send`).

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::device::{Device, DeviceFile, Fill, SyncHandle};

const ENOSPC: i32 = 28;
const EIO: i32 = 5;

/// Which unsynced writes survive a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crash {
    /// Every unsynced write is lost.
    LoseUnsynced,
    /// The first `n` bytes of each file's unsynced write stream survive, in order; the write
    /// that straddles `n` is torn.
    KeepPrefix(u64),
    /// Each unsynced write survives whole, not at all, or as a torn prefix, chosen by a
    /// generator seeded with this value.
    Random(u64),
}

#[derive(Debug, Default)]
struct MemFile {
    durable: Vec<u8>,
    current: Vec<u8>,
    pending: Vec<(u64, Vec<u8>)>,
}

#[derive(Debug, Default)]
struct State {
    names: BTreeMap<String, usize>,
    files: Vec<MemFile>,
    capacity: Option<u64>,
    reported_available: Option<u64>,
    syncs_until_failure: Option<u64>,
    broken: bool,
    syncs: u64,
}

impl State {
    fn used(&self) -> u64 {
        self.names
            .values()
            .map(|&id| self.files[id].current.len() as u64)
            .sum()
    }

    fn reserve(&self, extra: u64) -> io::Result<()> {
        match self.capacity {
            Some(cap) if self.used() + extra > cap => Err(io::Error::from_raw_os_error(ENOSPC)),
            _ => Ok(()),
        }
    }

    fn check_broken(&self) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        Ok(())
    }

    fn id(&self, name: &str) -> io::Result<usize> {
        self.names
            .get(name)
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_owned()))
    }

    fn new_file(&mut self, name: &str, len: u64) -> io::Result<usize> {
        if self.names.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                name.to_owned(),
            ));
        }
        self.reserve(len)?;
        let zeros = vec![0u8; len as usize];
        self.files.push(MemFile {
            durable: zeros.clone(),
            current: zeros,
            pending: Vec::new(),
        });
        let id = self.files.len() - 1;
        self.names.insert(name.to_owned(), id);
        Ok(id)
    }

    fn sync(&mut self, id: usize) -> io::Result<()> {
        self.check_broken()?;
        if let Some(left) = self.syncs_until_failure {
            if left == 0 {
                self.broken = true;
                self.syncs_until_failure = None;
                return Err(io::Error::from_raw_os_error(EIO));
            }
            self.syncs_until_failure = Some(left - 1);
        }
        self.syncs += 1;
        let f = &mut self.files[id];
        f.durable.clone_from(&f.current);
        f.pending.clear();
        Ok(())
    }
}

/// A tiny deterministic generator (xorshift64*), seeded by the test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn apply_write(buf: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let end = offset as usize + bytes.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[offset as usize..end].copy_from_slice(bytes);
}

/// The in-memory device. Clones share the same files.
#[derive(Clone, Debug, Default)]
pub struct MemDevice {
    state: Arc<Mutex<State>>,
}

impl MemDevice {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Total bytes the files may hold; past it, creating or growing a file fails with ENOSPC.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.lock().capacity = bytes;
    }

    /// Makes `available_bytes` report `bytes` whatever the capacity really leaves (`None`:
    /// report the truth again), so a test can make a creation meet ENOSPC after the room
    /// looked sufficient.
    pub fn report_available(&self, bytes: Option<u64>) {
        self.lock().reported_available = bytes;
    }

    /// The sync after `n` more successful syncs fails with EIO, and the device then refuses
    /// writes and syncs until `crash`.
    pub fn fail_sync_after(&self, n: u64) {
        self.lock().syncs_until_failure = Some(n);
    }

    /// Successful syncs so far.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// Flips one bit of a file, durably (media corruption).
    pub fn flip_bit(&self, name: &str, offset: u64, bit: u8) {
        let mut s = self.lock();
        let id = s.id(name).expect("flip_bit on an existing file");
        let f = &mut s.files[id];
        f.current[offset as usize] ^= 1 << (bit % 8);
        f.durable[offset as usize] ^= 1 << (bit % 8);
    }

    /// Replaces a file's content durably (for tests that write crafted bytes).
    pub fn put(&self, name: &str, bytes: &[u8]) {
        let mut s = self.lock();
        let id = match s.id(name) {
            Ok(id) => id,
            Err(_) => s.new_file(name, 0).expect("no capacity limit in put"),
        };
        let f = &mut s.files[id];
        f.current = bytes.to_vec();
        f.durable = bytes.to_vec();
        f.pending.clear();
    }

    /// A power cut and restart: unsynced writes survive as `mode` says; faults are cleared.
    pub fn crash(&self, mode: Crash) {
        let mut s = self.lock();
        let mut rng = Rng(match mode {
            Crash::Random(seed) => seed ^ 0x9e37_79b9_7f4a_7c15,
            _ => 1,
        });
        for f in &mut s.files {
            let mut image = f.durable.clone();
            let mut budget = match mode {
                Crash::KeepPrefix(n) => n,
                _ => u64::MAX,
            };
            for (offset, bytes) in &f.pending {
                let keep = match mode {
                    Crash::LoseUnsynced => 0,
                    Crash::KeepPrefix(_) => budget.min(bytes.len() as u64) as usize,
                    Crash::Random(_) => match rng.next() % 3 {
                        0 => 0,
                        1 => bytes.len(),
                        _ => (rng.next() % (bytes.len() as u64 + 1)) as usize,
                    },
                };
                budget -= keep as u64;
                apply_write(&mut image, *offset, &bytes[..keep]);
            }
            f.current.clone_from(&image);
            f.durable = image;
            f.pending.clear();
        }
        s.broken = false;
        s.syncs_until_failure = None;
    }
}

/// An open file of a `MemDevice`.
#[derive(Debug)]
pub struct MemFileHandle {
    dev: MemDevice,
    id: usize,
    segment: bool,
}

/// Syncs a `MemDevice` file.
#[derive(Debug)]
pub struct MemSync {
    dev: MemDevice,
    id: usize,
}

impl SyncHandle for MemSync {
    fn sync(&self) -> io::Result<()> {
        self.dev.lock().sync(self.id)
    }
}

impl Device for MemDevice {
    type File = MemFileHandle;

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.lock().names.keys().cloned().collect())
    }

    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        let s = self.lock();
        let id = s.id(name)?;
        Ok(s.files[id].current.clone())
    }

    /// Both fills are the same here: the memory device has no blocks to convert.
    fn create_segment(&self, name: &str, len: u64, _fill: Fill) -> io::Result<MemFileHandle> {
        let mut s = self.lock();
        s.check_broken()?;
        let id = s.new_file(name, len)?;
        Ok(MemFileHandle {
            dev: self.clone(),
            id,
            segment: true,
        })
    }

    fn available_bytes(&self) -> io::Result<Option<u64>> {
        let s = self.lock();
        if let Some(bytes) = s.reported_available {
            return Ok(Some(bytes));
        }
        Ok(s.capacity.map(|cap| cap.saturating_sub(s.used())))
    }

    fn open_segment(&self, name: &str) -> io::Result<MemFileHandle> {
        let id = self.lock().id(name)?;
        Ok(MemFileHandle {
            dev: self.clone(),
            id,
            segment: true,
        })
    }

    fn create(&self, name: &str) -> io::Result<MemFileHandle> {
        let mut s = self.lock();
        s.check_broken()?;
        let id = s.new_file(name, 0)?;
        Ok(MemFileHandle {
            dev: self.clone(),
            id,
            segment: false,
        })
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut s = self.lock();
        s.check_broken()?;
        let id = s.id(from)?;
        s.names.remove(from);
        s.names.insert(to.to_owned(), id);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut s = self.lock();
        s.check_broken()?;
        s.id(name)?;
        s.names.remove(name);
        Ok(())
    }
}

impl DeviceFile for MemFileHandle {
    type SyncHandle = MemSync;

    fn len(&self) -> u64 {
        self.dev.lock().files[self.id].current.len() as u64
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut s = self.dev.lock();
        s.check_broken()?;
        let len = s.files[self.id].current.len() as u64;
        let end = offset + bytes.len() as u64;
        if self.segment {
            assert!(end <= len, "write to {end} past segment end {len}");
        } else if end > len {
            s.reserve(end - len)?;
        }
        let f = &mut s.files[self.id];
        apply_write(&mut f.current, offset, bytes);
        f.pending.push((offset, bytes.to_vec()));
        Ok(())
    }

    fn sync(&mut self, _offset: u64, _len: u64) -> io::Result<()> {
        self.dev.lock().sync(self.id)
    }

    fn sync_handle(&self) -> MemSync {
        MemSync {
            dev: self.dev.clone(),
            id: self.id,
        }
    }
}

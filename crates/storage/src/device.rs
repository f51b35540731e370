//! The narrow, synchronous device the log and snapshots are written through, and its real
//! implementation on a directory of files.
//!
//! A `Device` is one directory: list, read whole files, create a preallocated segment, open
//! one again, create a growable file, rename, remove. Directory operations are durable
//! when they return (the real device fsyncs the directory). File contents are durable only
//! after `DeviceFile::sync`. This is all the storage layer needs, and all that the
//! fault-injecting twin (`MemDevice`) has to model.
//!
//! Syncing: `DeviceFile::sync` is synchronous, for tests, the simulator and simple callers.
//! A server that must not block its reactor takes `DeviceFile::sync_handle` instead (for
//! `FileDevice` an `Arc<File>` of the segment: issue fdatasync on its fd through io_uring,
//! or call `SyncHandle::sync` on a blocking thread).
//!
//! Segments are preallocated at creation (blocks reserved with `fallocate`, or zeros written
//! where the file system cannot reserve), so an append never grows the file, allocates a
//! block, or meets ENOSPC. `available_bytes` (statvfs) lets the log size a
//! segment to the room the file system has when that is less than preAllocSize; a creation
//! that fails anyway removes its partial file, so a failed attempt does not eat the room the
//! next one needs. Records are written with `pwrite`, not through
//! a shared mapping: a store into a mapping dirties the whole page-cache folio (up to 1 MiB
//! on ext4 with large folios, kernel 6.18 here), and every fdatasync then wrote that whole
//! folio back and committed the journal: 1 MiB per sync at batch 1, about 30x slower than
//! `pwrite` + fdatasync in the same run (docs/BENCHMARKS.md, "Storage"). With `pwrite` ext4
//! tracks dirty blocks and a sync writes only them. Whole files are read through read-only
//! mappings (`read_mapped`) at recovery.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::{Mmap, MmapOptions};

/// A whole file's bytes for reading: mapped by the real device (no copy, no anonymous
/// memory to fault in), owned by the in-memory one.
#[derive(Debug)]
pub enum FileBytes {
    Owned(Vec<u8>),
    Mapped(Mmap),
    Empty,
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Owned(v) => v,
            FileBytes::Mapped(m) => m,
            FileBytes::Empty => &[],
        }
    }
}

/// How a new segment gets its blocks (docs/LOG.md, "Rolling").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// Every byte written with zeros and synced: appends and their fdatasyncs touch data
    /// blocks only. What the spare segment job does, off the ZAB core.
    Zeroes,
    /// The blocks reserved (fallocate) and the size synced, reading as zeros: milliseconds
    /// instead of a 64 MiB write, for a roll that cannot wait for the spare. Where the file
    /// system cannot reserve, it is zero-filled as `Zeroes`.
    Allocate,
}

/// A directory of files.
pub trait Device: Clone + std::fmt::Debug {
    type File: DeviceFile;
    /// File names in the directory, sorted.
    fn list(&self) -> io::Result<Vec<String>>;
    /// The whole current content of a file (what a restarted process would read).
    fn read(&self, name: &str) -> io::Result<Vec<u8>>;
    /// The same bytes as `read`, without copying where the device can map the file
    /// (recovery reads gigabytes of log and snapshot this way).
    fn read_mapped(&self, name: &str) -> io::Result<FileBytes> {
        self.read(name).map(FileBytes::Owned)
    }
    /// A new file of `len` zero bytes, allocated and durable, to be written in place. On an
    /// error no file of that name is left behind. `Fill::Zeroes` writes every byte (what
    /// keeps later fdatasyncs to data blocks); `Fill::Allocate` only reserves the blocks,
    /// which is quick but leaves extent conversions for the fdatasyncs of its appends.
    fn create_segment(&self, name: &str, len: u64, fill: Fill) -> io::Result<Self::File>;
    /// Bytes new files may still take on the device (statvfs `f_bavail`), or `None` when the
    /// device cannot tell.
    fn available_bytes(&self) -> io::Result<Option<u64>> {
        Ok(None)
    }
    /// An existing file, to be written in place (never grown).
    fn open_segment(&self, name: &str) -> io::Result<Self::File>;
    /// A new empty file that grows as it is written.
    fn create(&self, name: &str) -> io::Result<Self::File>;
    /// A new, empty file that will be written once, front to back, then synced (a
    /// snapshot). The real device writes it with direct IO where the file system allows:
    /// no page-cache copy and no dirty pages left for the kernel to write back in a burst.
    fn create_streaming(&self, name: &str) -> io::Result<Self::File> {
        self.create(name)
    }
    /// Atomic and durable rename.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Durable removal.
    fn remove(&self, name: &str) -> io::Result<()>;
}

/// Something that makes a file's written bytes durable, possibly from another thread.
pub trait SyncHandle: Send + 'static {
    /// fdatasync of the whole file.
    fn sync(&self) -> io::Result<()>;
}

/// An open file of a `Device`.
pub trait DeviceFile: std::fmt::Debug {
    type SyncHandle: SyncHandle;
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Writes at `offset`. A segment is never written past its length (a bug: panics).
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Makes `offset..offset + len` durable (msync / fdatasync).
    fn sync(&mut self, offset: u64, len: u64) -> io::Result<()>;
    fn sync_handle(&self) -> Self::SyncHandle;
    /// A hint for a file written front to back (a snapshot): start writing
    /// `offset..offset + len` back to the disk now, and wait until what was started before
    /// `offset` has reached it. Durability still needs `sync`; a device without a page
    /// cache does nothing.
    fn write_behind(&mut self, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// A hint for durable bytes that will not be read soon (a log's synced records): drop
    /// `offset..offset + len` from the page cache. A device without one does nothing.
    fn forget(&mut self, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
}

/// The real device: a directory on a local file system.
#[derive(Clone, Debug)]
pub struct FileDevice {
    dir: Arc<PathBuf>,
}

impl FileDevice {
    /// Uses `dir`, creating it if needed.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<Self> {
        fs::create_dir_all(dir.as_ref())?;
        Ok(FileDevice {
            dir: Arc::new(dir.as_ref().to_path_buf()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        assert!(
            !name.contains('/') && !name.is_empty(),
            "device file name {name:?} is a plain name"
        );
        self.dir.join(name)
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&*self.dir)?.sync_all()
    }
}

/// A file of the real device: a preallocated segment (never grown) or a growable file.
#[derive(Debug)]
pub struct RealFile {
    file: Arc<File>,
    segment: bool,
    len: u64,
    /// Set for a streaming file opened with O_DIRECT (`create_streaming`).
    direct: Option<DirectStream>,
}

/// Alignment of O_DIRECT buffers, offsets and lengths (the largest logical block size in
/// common use; a multiple of every smaller one).
const DIRECT_ALIGN: usize = 4096;
/// Bytes a streaming file gathers before one direct write.
const DIRECT_WRITE_BYTES: usize = 1 << 20;
const _: () = assert!(DIRECT_WRITE_BYTES.is_multiple_of(DIRECT_ALIGN));

/// The front-to-back writer of an O_DIRECT file: whole aligned blocks go straight to the
/// disk from an aligned staging buffer; the unaligned tail is written through a second,
/// buffered descriptor of the same file at `sync`.
#[derive(Debug)]
struct DirectStream {
    /// `DIRECT_WRITE_BYTES` + `DIRECT_ALIGN`; the aligned window starts at `start`.
    staging: Vec<u8>,
    start: usize,
    /// Bytes gathered in the window, not yet written directly.
    filled: usize,
    /// File offset of the window (everything before it is written).
    window_at: u64,
    buffered: File,
}

impl DirectStream {
    fn new(buffered: File) -> Self {
        let staging = vec![0u8; DIRECT_WRITE_BYTES + DIRECT_ALIGN];
        let start = staging.as_ptr().align_offset(DIRECT_ALIGN);
        assert!(start < DIRECT_ALIGN, "alignment offset {start}");
        DirectStream {
            staging,
            start,
            filled: 0,
            window_at: 0,
            buffered,
        }
    }

    fn len(&self) -> u64 {
        self.window_at + self.filled as u64
    }

    fn append(&mut self, direct: &File, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let room = DIRECT_WRITE_BYTES - self.filled;
            let n = room.min(bytes.len());
            let at = self.start + self.filled;
            self.staging[at..at + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled == DIRECT_WRITE_BYTES {
                let window = &self.staging[self.start..self.start + DIRECT_WRITE_BYTES];
                direct.write_all_at(window, self.window_at)?;
                self.window_at += DIRECT_WRITE_BYTES as u64;
                self.filled = 0;
            }
        }
        Ok(())
    }

    /// Writes the window's partial tail through the page cache (the window keeps it: a
    /// later append rewrites the whole block directly).
    fn write_tail(&mut self) -> io::Result<()> {
        let tail = &self.staging[self.start..self.start + self.filled];
        self.buffered.write_all_at(tail, self.window_at)
    }
}

/// An open file to fdatasync, possibly from another thread or through io_uring.
#[derive(Clone, Debug)]
pub struct FileSync(pub Arc<File>);

impl SyncHandle for FileSync {
    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl Device for FileDevice {
    type File = RealFile;

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&*self.dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path(name))
    }

    #[allow(unsafe_code)]
    fn read_mapped(&self, name: &str) -> io::Result<FileBytes> {
        let file = File::open(self.path(name))?;
        if file.metadata()?.len() == 0 {
            return Ok(FileBytes::Empty);
        }
        // SAFETY: the mapping is only sound while no one truncates or rewrites the file. It
        // is a file of the server's own data directory (one server per data directory);
        // nothing truncates or rewrites it while recovery (the only reader) holds this
        // read-only mapping, and the map is dropped before recovery writes to the file.
        let map = unsafe { MmapOptions::new().populate().map(&file)? };
        Ok(FileBytes::Mapped(map))
    }

    fn create_segment(&self, name: &str, len: u64, fill: Fill) -> io::Result<RealFile> {
        let path = self.path(name);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let filled = (|| {
            if fill == Fill::Allocate {
                match rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, len) {
                    Ok(()) => {
                        file.sync_all()?;
                        return self.sync_dir();
                    }
                    // Not supported here (ext3, some network file systems): zero-fill.
                    Err(e)
                        if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {}
                    Err(e) => return Err(e.into()),
                }
            }
            // Written back a window at a time, as a snapshot is: left to the final sync,
            // 64 MiB of zeros reached the disk in one burst, and every log fdatasync queued
            // behind it (a ~100 ms write stall every few seconds under load).
            let zeros = vec![0u8; 1 << 20];
            let mut at = 0;
            while at < len {
                let n = (len - at).min(zeros.len() as u64);
                file.write_all(&zeros[..n as usize])?;
                write_behind(&file, at, n)?;
                at += n;
            }
            file.sync_all()?;
            self.sync_dir()
        })();
        if let Err(e) = filled {
            // A partial segment holds whatever room it got (all of it, on a full disk).
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Ok(RealFile {
            file: Arc::new(file),
            segment: true,
            len,
            direct: None,
        })
    }

    fn available_bytes(&self) -> io::Result<Option<u64>> {
        let st = rustix::fs::statvfs(&*self.dir)?;
        Ok(Some(st.f_bavail.saturating_mul(st.f_frsize)))
    }

    fn open_segment(&self, name: &str) -> io::Result<RealFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path(name))?;
        let len = file.metadata()?.len();
        Ok(RealFile {
            file: Arc::new(file),
            segment: true,
            len,
            direct: None,
        })
    }

    fn create(&self, name: &str) -> io::Result<RealFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(self.path(name))?;
        Ok(RealFile {
            file: Arc::new(file),
            segment: false,
            len: 0,
            direct: None,
        })
    }

    /// O_DIRECT where the file system takes it (tmpfs does not: then a plain file).
    fn create_streaming(&self, name: &str) -> io::Result<RealFile> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.path(name);
        let direct = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path);
        let file = match direct {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // Some file systems refuse O_DIRECT at open and create the file anyway.
                let _ = fs::remove_file(&path);
                return self.create(name);
            }
            Err(e) => return Err(e),
        };
        let buffered = OpenOptions::new().write(true).open(&path)?;
        Ok(RealFile {
            file: Arc::new(file),
            segment: false,
            len: 0,
            direct: Some(DirectStream::new(buffered)),
        })
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.path(from), self.path(to))?;
        self.sync_dir()
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.path(name))?;
        self.sync_dir()
    }
}

impl DeviceFile for RealFile {
    type SyncHandle = FileSync;

    fn len(&self) -> u64 {
        self.len
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        if let Some(d) = &mut self.direct {
            // A streaming file is written front to back; anything else is a caller's bug.
            assert_eq!(offset, d.len(), "a streaming file is written in order");
            d.append(&self.file, bytes)?;
            self.len = d.len();
            return Ok(());
        }
        let end = offset + bytes.len() as u64;
        if self.segment {
            assert!(
                end <= self.len,
                "write to {end} past segment end {}",
                self.len
            );
        }
        self.file.write_all_at(bytes, offset)?;
        self.len = self.len.max(end);
        Ok(())
    }

    fn sync(&mut self, offset: u64, len: u64) -> io::Result<()> {
        if self.segment {
            assert!(offset + len <= self.len, "sync range past segment end");
        }
        if let Some(d) = &mut self.direct {
            d.write_tail()?;
        }
        // Direct writes are on the disk but maybe not in its cache's stable part, and the
        // file's size and block map are metadata: fdatasync covers both.
        self.file.sync_data()
    }

    fn sync_handle(&self) -> FileSync {
        FileSync(self.file.clone())
    }

    /// `sync_file_range`: the kernel keeps at most two windows of this file dirty or in
    /// flight instead of leaving hundreds of MB to its background flusher (which then
    /// competes in one burst with the log's fdatasync) or to one huge final fdatasync.
    fn write_behind(&mut self, offset: u64, len: u64) -> io::Result<()> {
        if self.direct.is_some() {
            // Direct writes leave nothing in the page cache to write back.
            return Ok(());
        }
        write_behind(&self.file, offset, len)
    }

    fn forget(&mut self, offset: u64, len: u64) -> io::Result<()> {
        if self.direct.is_some() {
            return Ok(());
        }
        use std::os::fd::AsRawFd;
        let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        };
        // SAFETY: posix_fadvise only reads its integer arguments; the descriptor is
        // `self.file`'s, open for the whole call.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::posix_fadvise(self.file.as_raw_fd(), off, n, libc::POSIX_FADV_DONTNEED)
        };
        if rc != 0 {
            // posix_fadvise returns the error number instead of setting errno.
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(())
    }
}

/// Waits until every byte of `file` before `offset` is written back, then starts the
/// write-back of `offset..offset + len` (sync_file_range): a writer that calls it after
/// each window has at most two windows in flight.
fn write_behind(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let wait = libc::SYNC_FILE_RANGE_WAIT_BEFORE;
    let start = libc::SYNC_FILE_RANGE_WRITE;
    let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    // SAFETY: sync_file_range only reads its integer arguments; `fd` is the open descriptor
    // of `file`, borrowed for the call.
    #[allow(unsafe_code)]
    let rc = unsafe {
        // A length of 0 would mean "to the end of the file": nothing before 0 to wait for.
        if off > 0 && libc::sync_file_range(fd, 0, off, wait) != 0 {
            -1
        } else {
            libc::sync_file_range(fd, off, n, start)
        }
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

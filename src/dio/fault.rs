//! Faults made on purpose, for tests (the `fault-injection` feature): a read, write or sync of
//! a chosen file or device that touches a chosen byte range fails with a chosen errno, as a
//! bad block or a write-protected device would. Every system call of the I/O layer that moves
//! data asks `check` first, and so can any other path to the device (an io_uring submission),
//! which an `LD_PRELOAD` shim on `pread`/`pwrite` would not see.
//!
//! Without the feature nothing can set a fault, and `check` costs one atomic load.
//!
//! Faults are keyed by the file's identity (device and inode numbers), so tests running in
//! parallel on different files do not see each other's faults.

use parking_lot::RwLock;
use std::io;
use std::ops::Range;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The kind of operation a fault fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// pread, preadv and io_uring reads.
    Read,
    /// pwrite and pwritev.
    Write,
    /// fsync and fdatasync (the range is ignored).
    Sync,
}

/// One fault: every `op` that touches `bytes` fails with `errno`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// What fails.
    pub op: Op,
    /// The byte range of the file an operation must touch to fail.
    pub bytes: Range<u64>,
    /// The error it fails with.
    pub errno: i32,
}

#[cfg(any(test, feature = "fault-injection"))]
impl Fault {
    /// Reads of `bytes` fail with EIO.
    pub fn unreadable(bytes: Range<u64>) -> Fault {
        Fault {
            op: Op::Read,
            bytes,
            errno: libc::EIO,
        }
    }

    /// Writes to `bytes` fail with `errno`.
    pub fn unwritable(bytes: Range<u64>, errno: i32) -> Fault {
        Fault {
            op: Op::Write,
            bytes,
            errno,
        }
    }
}

impl Fault {
    fn hits(&self, op: Op, offset: u64, len: u64) -> bool {
        self.op == op
            && (op == Op::Sync || (offset < self.bytes.end && self.bytes.start < offset + len))
    }
}

type Identity = (u64, u64);

/// The faults of each file, by identity.
static FAULTS: RwLock<Vec<(Identity, Vec<Fault>)>> = RwLock::new(Vec::new());
/// How many files have faults: the fast path when none do.
static FILES: AtomicUsize = AtomicUsize::new(0);

fn identity(st: &libc::stat) -> Identity {
    (st.st_dev, st.st_ino)
}

/// Makes `faults` (replacing any earlier ones) apply to every later operation on the file or
/// device at `path`, through any descriptor; an empty list clears them.
#[cfg(any(test, feature = "fault-injection"))]
pub fn set(path: &std::path::Path, faults: Vec<Fault>) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(path)?;
    let id = (md.dev(), md.ino());
    let mut all = FAULTS.write();
    all.retain(|(other, _)| *other != id);
    if !faults.is_empty() {
        all.push((id, faults));
    }
    FILES.store(all.len(), Relaxed);
    Ok(())
}

/// Clears the faults of `path`.
#[cfg(any(test, feature = "fault-injection"))]
pub fn clear(path: &std::path::Path) -> io::Result<()> {
    set(path, Vec::new())
}

thread_local! {
    /// Reads of a file that this thread waited for (pread and preadv, not io_uring).
    static BLOCKING_READS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts a read the calling thread waits for.
pub(crate) fn note_blocking_read() {
    BLOCKING_READS.with(|n| n.set(n.get() + 1));
}

/// How many reads of a file (pread, preadv) this thread has waited for: lets a test show that
/// an executor thread never waits on the device.
#[cfg(any(test, feature = "fault-injection"))]
#[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
pub fn blocking_reads_on_this_thread() -> u64 {
    BLOCKING_READS.with(|n| n.get())
}

/// Fails as a fault set on `fd`'s file says, for `op` of `len` bytes at `offset`.
pub fn check(fd: BorrowedFd<'_>, op: Op, offset: u64, len: u64) -> io::Result<()> {
    if FILES.load(Relaxed) == 0 {
        return Ok(());
    }
    let Ok(st) = super::sys::fstat(fd) else {
        return Ok(());
    };
    let id = identity(&st);
    let all = FAULTS.read();
    let errno = all
        .iter()
        .filter(|(other, _)| *other == id)
        .flat_map(|(_, faults)| faults)
        .find(|f| f.hits(op, offset, len))
        .map(|f| f.errno);
    match errno {
        Some(errno) => Err(io::Error::from_raw_os_error(errno)),
        None => Ok(()),
    }
}

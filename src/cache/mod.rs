//! The cache engine. It knows nothing of C: a file or block device formatted as a circular
//! log of large regions (docs/FORMAT.md), an in-memory index from keyed hashes to entries,
//! and reads that verify the full key and every checksum before returning a byte.
//!
//! Where things are:
//! - `engine`: the holder of the parts, and puts, deletes, flushes and closes;
//! - `append`: the append path, the active region filled in memory;
//! - `writeback`: the writer thread, which takes region bytes to the device;
//! - `eviction`: what leaves the index when the log reclaims a region;
//! - `index`: key hash to location, and the bytes of live entries;
//! - `read`: gets, range reads and verification;
//! - `recovery`: rebuilding the index and the log's position at open;
//! - `open`: create, lock, recognise or format;
//! - `device`: the file or device as the format lays it out, and the I/O counters;
//! - `format`: the on-disk structures; `stats`: the counters; `writer`: streaming puts.

mod active;
mod append;
mod budget;
mod device;
mod engine;
mod eviction;
mod format;
mod ghost;
mod head;
mod index;
mod open;
mod queue;
mod read;
mod recovery;
mod refusal;
mod rings;
mod stats;
mod uring;
mod writeback;
mod writer;

#[cfg(test)]
mod testing;

pub use format::{Geometry, FORMAT_VERSION};
pub use queue::{Backend, Completion, Outcome, ReadQueue, ReadRequest};
pub use read::{Fetched, VerifyReport};
pub use recovery::RecoveryReport;
pub use stats::Stats;
pub use writer::Writer;

use crate::dio::IoMode;
use crate::error::Result;
use engine::Engine;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The longest key in bytes.
pub const MAX_KEY_LEN: usize = 4096;

/// The default largest value, on caches whose regions can hold it.
pub const DEFAULT_MAX_VALUE: u64 = 16 << 20;

#[derive(Debug, Clone)]
pub struct CacheOptions {
    pub io_mode: IoMode,
    /// Create and format a missing or empty path.
    pub create: bool,
    /// Format whatever the path holds.
    pub format: bool,
    /// Every put is durable when it returns.
    pub sync_writes: bool,
    pub read_only: bool,
    pub alignment: Option<usize>,
    /// 0 = the existing cache's or device's size.
    pub capacity: u64,
    pub default_ttl_secs: u64,
    /// 0 = the default.
    pub max_value_size: u64,
    pub admission: Admission,
    /// Bytes per second the log may append on average (puts, reinsertions and tombstones);
    /// 0 = no limit. Kept under `Admission::Filtered` only: puts over it are declined, and
    /// reclaims keep fewer entries.
    pub write_budget: u64,
}

/// Which puts the cache stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Admission {
    /// Every put (the default).
    #[default]
    All,
    /// A put may be declined (`ErrorKind::Declined`) to spare the device the writes of a
    /// value seen once (see `eviction::Eviction::admit`).
    Filtered,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            io_mode: IoMode::Auto,
            create: false,
            format: false,
            sync_writes: false,
            read_only: false,
            alignment: None,
            capacity: 0,
            default_ttl_secs: 0,
            max_value_size: 0,
            admission: Admission::All,
            write_budget: 0,
        }
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Total length of a list of buffers that are filled in order.
fn parts_len(parts: &[&mut [u8]]) -> usize {
    parts.iter().map(|p| p.len()).sum()
}

/// Copies `src` into `parts`, in order; `src` is as long as they are together.
fn scatter(mut src: &[u8], parts: &mut [&mut [u8]]) {
    for p in parts.iter_mut() {
        let (head, rest) = src.split_at(p.len());
        p.copy_from_slice(head);
        src = rest;
    }
}

/// An open cache. Cheap to share between threads by reference; `close` (or drop) flushes.
pub struct Cache {
    engine: Arc<Engine>,
}

impl Cache {
    /// Opens, creates or formats the cache at `path` as `opts` say.
    pub fn open(path: &Path, opts: &CacheOptions) -> Result<Cache> {
        let engine = Arc::new(open::open(path, opts)?);
        engine.start_writer()?;
        Ok(Cache { engine })
    }

    /// Flushes everything, persists the summaries and marks the cache clean.
    pub fn close(&self) -> Result<()> {
        self.engine.close()
    }

    pub fn flush(&self) -> Result<()> {
        self.engine.flush()
    }

    /// `TooLarge` if a value of `len` bytes would be refused: lets callers check a length
    /// before touching the memory behind it.
    pub fn check_value_len(&self, len: u64) -> Result<()> {
        self.engine.check_value_len(len)
    }

    pub fn put(&self, key: &[u8], value: &[u8], ttl_secs: u64) -> Result<()> {
        self.engine.put(key, value, ttl_secs)
    }

    pub fn get(&self, key: &[u8], buf: &mut [u8]) -> Result<Fetched> {
        self.engine.get(key, buf)
    }

    pub fn get_range(&self, key: &[u8], offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.engine.get_range(key, offset, buf)
    }

    /// A completion queue of `depth` reads (0: 64) over this cache (see `ReadQueue`). It
    /// keeps what it needs of the cache alive: after `close`, its reads in flight complete,
    /// and later submits fail.
    pub fn queue(&self, depth: u32) -> Result<ReadQueue> {
        ReadQueue::open(self.engine.clone(), depth)
    }

    /// Whether the index holds an entry for `key`, from memory only (no I/O). A true answer
    /// can still be a miss on get (expired, corrupt, or another key with the same hash).
    pub fn contains(&self, key: &[u8]) -> bool {
        self.engine.index.get(self.engine.hash(key)).is_some()
    }

    pub fn value_size(&self, key: &[u8]) -> Result<u64> {
        self.engine.value_size(key)
    }

    pub fn delete(&self, key: &[u8]) -> Result<()> {
        self.engine.delete(key)
    }

    /// A streaming put of `key`; `Declined` here, before any byte, if the admission policy
    /// does not take it.
    pub fn writer(&self, key: &[u8], ttl_secs: u64) -> Result<Writer> {
        self.engine.accepts_writes_for(key)?;
        self.engine.admit(key, 0)?;
        Ok(Writer::new(self.engine.clone(), key, ttl_secs))
    }

    pub fn is_direct_io(&self) -> bool {
        self.engine.device.file().is_direct()
    }

    pub fn alignment(&self) -> usize {
        self.engine.device.geometry().alignment as usize
    }

    pub fn geometry(&self) -> Geometry {
        *self.engine.device.geometry()
    }

    pub fn max_value_size(&self) -> u64 {
        self.engine.settings.max_value_size
    }

    /// Bytes of memory the index occupies.
    pub fn index_memory_bytes(&self) -> usize {
        self.engine.index.memory_bytes()
    }

    pub fn stats(&self) -> Stats {
        self.engine.stats()
    }

    /// Reads and verifies every entry; see [`VerifyReport`].
    pub fn verify_all(&self, progress: impl FnMut(u64, u64)) -> Result<VerifyReport> {
        self.engine.verify_all(progress)
    }

    /// How this open found the cache: clean or not, and what rebuilding the index cost.
    pub fn recovery(&self) -> RecoveryReport {
        self.engine.recovery().clone()
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        if let Err(e) = self.engine.close() {
            crate::log::log(
                crate::log::Level::Error,
                &format!("closing the cache failed: {e}"),
            );
        }
    }
}

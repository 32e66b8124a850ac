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
//! - `format`: the on-disk structures; `stats`: the counters; `writer`: streaming puts;
//! - `metrics`: latency histograms, and the Prometheus and JSON expositions of the stats;
//!   `textfile`: the thread that writes the Prometheus text to a file.

mod active;
mod append;
#[cfg(feature = "tokio")]
mod async_reader;
mod budget;
mod device;
mod engine;
mod eviction;
mod format;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod ghost;
mod head;
mod index;
mod metrics;
mod open;
mod queue;
mod read;
mod recovery;
mod refusal;
mod rings;
mod stats;
mod textfile;
mod uring;
mod writeback;
mod writer;

#[cfg(test)]
mod testing;

#[cfg(feature = "tokio")]
pub use async_reader::AsyncReader;
use format::FORMAT_VERSION;
pub use metrics::{Histogram, LatencyHistogram, Stamp, LATENCY_BUCKETS};
pub use queue::{Backend, Completion, Outcome, ReadQueue, ReadRequest};
pub use read::{Fetched, VerifyReport};
pub use recovery::RecoveryReport;
pub use stats::Stats;
pub use writer::Writer;

use crate::dio::IoMode;
use crate::error::{Error, Result};
use engine::Engine;
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use textfile::MetricsTextfile;

/// The longest key in bytes.
pub const MAX_KEY_LEN: usize = 4096;

/// The default largest value, on caches whose regions can hold it.
pub const DEFAULT_MAX_VALUE: u64 = 16 << 20;

/// How to open a cache: a builder, from [`CacheOptions::new`].
///
/// ```
/// use dcache::{Admission, CacheOptions, IoMode};
/// let opts = CacheOptions::new()
///     .create(true)                    // format a missing or empty path, never anything else
///     .capacity(1 << 30)               // 1 GiB
///     .io_mode(IoMode::Direct)         // O_DIRECT or fail
///     .admission(Admission::Filtered); // spare the device values seen once
/// # let _ = opts;
/// ```
#[derive(Debug, Clone)]
pub struct CacheOptions {
    pub(crate) io_mode: IoMode,
    pub(crate) create: bool,
    pub(crate) format: bool,
    pub(crate) sync_writes: bool,
    pub(crate) read_only: bool,
    pub(crate) alignment: Option<usize>,
    pub(crate) capacity: u64,
    pub(crate) default_ttl_secs: u64,
    pub(crate) max_value_size: u64,
    pub(crate) admission: Admission,
    pub(crate) write_budget: u64,
    pub(crate) metrics_textfile: Option<PathBuf>,
    pub(crate) metrics_interval: Duration,
}

impl CacheOptions {
    /// Opens an existing cache, with O_DIRECT where the file system takes it.
    pub fn new() -> CacheOptions {
        CacheOptions::default()
    }

    /// How the file or device is read and written (default [`IoMode::Auto`]).
    pub fn io_mode(mut self, mode: IoMode) -> Self {
        self.io_mode = mode;
        self
    }

    /// Creates and formats a missing or empty path (default false).
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// Formats whatever the path holds, destroying it (default false).
    pub fn format(mut self, format: bool) -> Self {
        self.format = format;
        self
    }

    /// Makes every put durable when it returns (default false: durable at the next flush).
    pub fn sync_writes(mut self, sync: bool) -> Self {
        self.sync_writes = sync;
        self
    }

    /// Opens for gets only (default false).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// The alignment of a new cache in bytes, a power of two of at least 512 (default: what
    /// the device asks for).
    pub fn alignment(mut self, bytes: usize) -> Self {
        self.alignment = Some(bytes);
        self
    }

    /// The size of a new cache in bytes (default 0: the existing file's or device's size).
    pub fn capacity(mut self, bytes: u64) -> Self {
        self.capacity = bytes;
        self
    }

    /// The time to live of puts that give none, in seconds (default 0: none).
    pub fn default_ttl_secs(mut self, secs: u64) -> Self {
        self.default_ttl_secs = secs;
        self
    }

    /// The largest value a put takes, in bytes (default 0: 16 MiB, or what a region holds).
    pub fn max_value_size(mut self, bytes: u64) -> Self {
        self.max_value_size = bytes;
        self
    }

    /// Which puts the cache stores (default [`Admission::All`]).
    pub fn admission(mut self, admission: Admission) -> Self {
        self.admission = admission;
        self
    }

    /// Bytes per second the log may append on average, kept under
    /// [`Admission::Filtered`] only (default 0: no limit).
    pub fn write_budget(mut self, bytes_per_sec: u64) -> Self {
        self.write_budget = bytes_per_sec;
        self
    }

    /// Writes the cache's Prometheus text ([`Stats::to_prometheus`]) to `path` every
    /// [`metrics_interval`](CacheOptions::metrics_interval) while it is open, and once more
    /// at close; each write replaces the file whole (a temporary file renamed over it), as
    /// node_exporter's textfile collector wants. The open fails if the file cannot be
    /// written. `dcache stats` reads it while the process holds the cache.
    pub fn metrics_textfile(mut self, path: impl Into<PathBuf>) -> Self {
        self.metrics_textfile = Some(path.into());
        self
    }

    /// How often the metrics textfile is written (default 5 s; at least 10 ms).
    pub fn metrics_interval(mut self, interval: Duration) -> Self {
        self.metrics_interval = interval;
        self
    }
}

/// How often the metrics textfile is written unless told.
pub const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(5);

/// How a cache lies on its file or device ([`Cache::layout`]).
///
/// ```
/// # let path = std::env::temp_dir().join(format!("dcache-doc-layout-{}", std::process::id()));
/// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
/// let l = cache.layout();
/// assert!(l.capacity <= 16 << 20 && l.region_count > 0);
/// assert_eq!(l.unit % l.alignment, 0);
/// # drop(cache); std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Layout {
    /// The version of the on-disk format.
    pub format_version: u32,
    /// Bytes the cache occupies.
    pub capacity: u64,
    /// The alignment asked for or detected when it was formatted.
    pub alignment: u32,
    /// Every entry starts on a multiple of this many bytes (at least the alignment).
    pub unit: u32,
    /// Bytes of each of the two superblock copies at the start.
    pub superblock_size: u32,
    /// Bytes of each region of the log.
    pub region_size: u64,
    /// Regions in the log.
    pub region_count: u32,
    /// Where the first region starts.
    pub data_start: u64,
}

/// Which puts the cache stores.
///
/// ```
/// # let path = std::env::temp_dir().join(format!("dcache-doc-admission-{}", std::process::id()));
/// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
/// # drop(cache); std::fs::remove_file(&path).unwrap();
/// let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true)
///     .capacity(16 << 20).admission(dcache::Admission::Filtered)).unwrap();
/// match cache.put(b"seen once", &[0u8; 100_000], 0) {
///     Ok(()) => {}                                                     // stored
///     Err(e) if e.kind() == dcache::ErrorKind::Declined => {}          // spared the device
///     Err(e) => panic!("{e}"),
/// }
/// # drop(cache); std::fs::remove_file(&path).unwrap();
/// ```
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
            metrics_textfile: None,
            metrics_interval: DEFAULT_METRICS_INTERVAL,
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
/// Every value a get returns was checked against its full key and its checksums.
///
/// ```
/// use dcache::{Cache, CacheOptions, Fetched};
/// let path = std::env::temp_dir().join(format!("dcache-doc-cache-{}", std::process::id()));
/// let cache = Cache::open(&path, &CacheOptions::new().create(true).capacity(64 << 20))?;
/// cache.put(b"greeting", b"hello, disk", 0)?;
/// let mut buf = vec![0u8; 64];
/// match cache.get(b"greeting", &mut buf)? {
///     Fetched::Copied(n) => assert_eq!(&buf[..n], b"hello, disk"),
///     Fetched::TooSmall(n) => panic!("the value is {n} bytes"),
/// }
/// cache.close()?; // flushes; also done on drop
/// # drop(cache); std::fs::remove_file(&path).unwrap();
/// # Ok::<(), dcache::Error>(())
/// ```
pub struct Cache {
    engine: Arc<Engine>,
    /// The thread writing the metrics textfile, if asked for; ended at close.
    textfile: Mutex<Option<MetricsTextfile>>,
}

impl Cache {
    /// Opens, creates or formats the cache at `path` as `opts` say.
    pub fn open(path: &Path, opts: &CacheOptions) -> Result<Cache> {
        // The clock operations are timed by is chosen (and calibrated) once per process.
        let _ = Stamp::now();
        if opts.metrics_textfile.is_some() && opts.metrics_interval < Duration::from_millis(10) {
            return Err(Error::invalid("the metrics interval is under 10 ms"));
        }
        let engine = Arc::new(open::open(path, opts)?);
        engine.start_writer()?;
        let cache = Cache {
            engine,
            textfile: Mutex::new(None),
        };
        if let Some(file) = &opts.metrics_textfile {
            // On failure the cache drops here, closed: the lock is released.
            let textfile =
                MetricsTextfile::start(cache.engine.clone(), file, opts.metrics_interval)?;
            *cache.textfile.lock() = Some(textfile);
        }
        Ok(cache)
    }

    /// Flushes everything, persists the summaries and marks the cache clean.
    pub fn close(&self) -> Result<()> {
        let closed = self.engine.close();
        // Its last write shows the cache as closed.
        if let Some(mut textfile) = self.textfile.lock().take() {
            textfile.stop();
        }
        closed
    }

    /// Makes every put and delete that returned before it durable: they survive a crash or
    /// a power loss once it returns. It fails if a region write failed since the previous
    /// flush (the puts it covered may be lost).
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("dcache-doc-{}-{}", "flush", std::process::id()));
    /// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
    /// cache.put(b"k", b"v", 0).unwrap();
    /// cache.flush().unwrap(); // b"k" survives a crash from here on
    /// # drop(cache); std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn flush(&self) -> Result<()> {
        let latency = &self.engine.counters.latency.flush;
        latency.time(|| self.engine.flush())
    }

    /// `TooLarge` if a value of `len` bytes would be refused: lets callers check a length
    /// before touching the memory behind it.
    pub fn check_value_len(&self, len: u64) -> Result<()> {
        self.engine.check_value_len(len)
    }

    /// Stores `value` under `key`, replacing any value there, for `ttl_secs` seconds (0: the
    /// cache's default, none unless set). Gets see it at once; it is durable after the next
    /// [`flush`](Cache::flush). `Declined` if the admission policy does not take it.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("dcache-doc-{}-{}", "put", std::process::id()));
    /// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
    /// cache.put(b"session:42", b"{\"user\": 7}", 3600).unwrap();
    /// assert!(cache.contains(b"session:42"));
    /// # drop(cache); std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn put(&self, key: &[u8], value: &[u8], ttl_secs: u64) -> Result<()> {
        let latency = &self.engine.counters.latency.put;
        latency.time(|| self.engine.put(key, value, ttl_secs))
    }

    /// Reads the value under `key` into `buf`, checked against the key and its checksums.
    /// `NotFound` for a miss; [`Fetched::TooSmall`] (buffer untouched) if it does not fit.
    /// Into an [`AlignedBuf`](crate::AlignedBuf), a large value is read in place, without a
    /// copy.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("dcache-doc-{}-{}", "get", std::process::id()));
    /// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
    /// cache.put(b"k", &[9u8; 100_000], 0).unwrap();
    /// let mut buf = dcache::AlignedBuf::new(128 << 10, cache.alignment()).unwrap();
    /// let got = cache.get(b"k", buf.as_mut_slice()).unwrap();
    /// assert_eq!(got, dcache::Fetched::Copied(100_000));
    /// assert_eq!(cache.get(b"absent", buf.as_mut_slice()).unwrap_err().kind(), dcache::ErrorKind::NotFound);
    /// # drop(cache); std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn get(&self, key: &[u8], buf: &mut [u8]) -> Result<Fetched> {
        let latency = &self.engine.counters.latency.get;
        latency.time(|| self.engine.get(key, buf))
    }

    /// Reads up to `buf.len()` bytes of the value under `key` from `offset`; returns how many
    /// (fewer at the value's end). Only the chunks the range covers are read and checked.
    /// `Range` for an offset past the end.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("dcache-doc-{}-{}", "range", std::process::id()));
    /// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
    /// cache.put(b"object", b"0123456789", 0).unwrap();
    /// let mut part = [0u8; 4];
    /// assert_eq!(cache.get_range(b"object", 3, &mut part).unwrap(), 4);
    /// assert_eq!(&part, b"3456");
    /// # drop(cache); std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn get_range(&self, key: &[u8], offset: u64, buf: &mut [u8]) -> Result<usize> {
        let latency = &self.engine.counters.latency.get;
        latency.time(|| self.engine.get_range(key, offset, buf))
    }

    /// A completion queue of `depth` reads (0: 64) over this cache (see [`ReadQueue`]). It
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

    /// The size of the value under `key`, from its entry's header (one small read of the
    /// device, unless the entry is still in the write buffer); `NotFound` for a miss.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("dcache-doc-{}-{}", "size", std::process::id()));
    /// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
    /// cache.put(b"k", &[1u8; 5000], 0).unwrap();
    /// assert_eq!(cache.value_size(b"k").unwrap(), 5000);
    /// # drop(cache); std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn value_size(&self, key: &[u8]) -> Result<u64> {
        self.engine.value_size(key)
    }

    /// Removes the value under `key`; durable after the next flush. `NotFound` if there was
    /// none.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("dcache-doc-{}-{}", "delete", std::process::id()));
    /// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
    /// cache.put(b"k", b"v", 0).unwrap();
    /// cache.delete(b"k").unwrap();
    /// assert!(!cache.contains(b"k"));
    /// # drop(cache); std::fs::remove_file(&path).unwrap();
    /// ```
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

    /// Whether reads and writes bypass the page cache (O_DIRECT).
    pub fn is_direct_io(&self) -> bool {
        self.engine.device.file().is_direct()
    }

    /// The alignment, in bytes, of a buffer a large get can fill in place.
    pub fn alignment(&self) -> usize {
        self.engine.device.geometry().alignment as usize
    }

    /// How the cache lies on its file or device.
    pub fn layout(&self) -> Layout {
        let g = self.engine.device.geometry();
        Layout {
            format_version: FORMAT_VERSION,
            capacity: g.capacity,
            alignment: g.alignment,
            unit: g.unit,
            superblock_size: g.meta_size,
            region_size: g.region_size,
            region_count: g.region_count,
            data_start: g.data_start,
        }
    }

    /// The largest value a put takes, in bytes.
    pub fn max_value_size(&self) -> u64 {
        self.engine.settings.max_value_size
    }

    /// Bytes of memory the index occupies.
    pub fn index_memory_bytes(&self) -> usize {
        self.engine.index.memory_bytes()
    }

    /// A snapshot of the cache's counters and sizes.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("dcache-doc-{}-{}", "stats", std::process::id()));
    /// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
    /// cache.put(b"k", b"v", 0).unwrap();
    /// let mut buf = [0u8; 8];
    /// cache.get(b"k", &mut buf).unwrap();
    /// let s = cache.stats();
    /// assert_eq!((s.entries, s.hits), (1, 1));
    /// # drop(cache); std::fs::remove_file(&path).unwrap();
    /// ```
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

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("path", &self.engine.device.file().path())
            .field("direct_io", &self.is_direct_io())
            .finish_non_exhaustive()
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            crate::log::log(
                crate::log::Level::Error,
                &format!("closing the cache failed: {e}"),
            );
        }
    }
}

//! The cache engine. It knows nothing of C: a file or block device formatted as a circular
//! log of large regions (docs/FORMAT.md), an in-memory index from keyed hashes to entries,
//! and reads that verify the full key and every checksum before returning a byte.

mod format;
mod index;
mod log;
mod open;
mod read;
mod recovery;
mod stats;
mod writeback;
mod writer;

pub use format::{Geometry, FORMAT_VERSION};
pub use read::{Fetched, VerifyReport};
pub use recovery::RecoveryReport;
pub use stats::Stats;
pub use writer::Writer;

use crate::dio::{DirectFile, IoMode};
use crate::error::{Error, ErrorKind, Result};
use format::{SummaryRecord, Trailer, CHUNK_SIZE, FLAG_TOMBSTONE, SUMMARY_RECORD_LEN};
use index::Index;
use log::{Appended, LogState, NewEntry, ReadSummary};
use parking_lot::Mutex;
use stats::Counters;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The longest key in bytes.
pub const MAX_KEY_LEN: usize = 4096;
/// Region writes go to the device in pieces: large while no read waits for the device, for
/// throughput; small while reads are in flight, so that a read queues behind at most a small
/// write (at queue depth 1 a read waits for the whole write ahead of it). Multiples of every
/// alignment.
const WRITE_PIECE: usize = 1 << 20;
const WRITE_PIECE_UNDER_READS: usize = 128 << 10;

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
        }
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// See `Shared::active_lap`.
fn pack_lap(region: u32, lap: u64) -> u64 {
    (lap << 32) | region as u64
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

/// What every part of the engine shares; a `Writer` keeps it alive past `close`.
pub(crate) struct Shared {
    dev: DirectFile,
    geometry: Geometry,
    cache_id: u64,
    index: Index,
    stats: Counters,
    used_bytes: AtomicU64,
    log: Mutex<LogState>,
    /// The active region and its lap, packed as `lap << 32 | region` (the lap's low 32
    /// bits), so that a reader sees both from one moment.
    /// - The active region's newest bytes may be only in the log's buffer; reads of any
    ///   other region go to the device without touching the log's lock.
    /// - Every region's lap follows from them, and a read checks that the entry it found
    ///   was written in that lap: the index keeps no lap, and after a power loss an older
    ///   lap's entry of the same key can sit, intact, where a newer entry's bytes never
    ///   landed.
    ///
    /// Stored after a full region is handed to the writer (`sealing_region` set), so a
    /// reader that sees the next region active also sees the sealing one.
    active_lap: AtomicU64,
    /// Reads waiting for the device: while there are any, writes go in small pieces.
    reads_in_flight: AtomicU32,
    /// The region whose sealed buffer the writer thread has not written yet (writeback::NONE when none).
    sealing_region: AtomicU32,
    writeback: writeback::Writeback,
    superblock: Mutex<format::Superblock>,
    read_only: bool,
    sync_writes: bool,
    default_ttl_secs: u64,
    max_value_size: u64,
    closed: AtomicBool,
    recovery: Mutex<RecoveryReport>,
}

impl Shared {
    fn set_active_lap(&self, region: u32, lap: u64) {
        self.active_lap
            .store(pack_lap(region, lap), std::sync::atomic::Ordering::Release);
    }

    /// The region whose newest bytes may be only in the log's buffer (None: read-only).
    fn buffered_region(&self) -> Option<u32> {
        let packed = self.active_lap.load(std::sync::atomic::Ordering::Acquire);
        (!self.read_only).then_some(packed as u32)
    }

    /// The low 32 bits of the lap that `region` holds now.
    fn lap_of(&self, region: u32) -> u32 {
        let packed = self.active_lap.load(std::sync::atomic::Ordering::Acquire);
        let (active, lap) = (packed as u32 as u64, (packed >> 32) as u32);
        let n = self.geometry.region_count as u64;
        let behind = (active + n - region as u64) % n;
        lap.wrapping_sub(behind as u32)
    }

    fn hash(&self, key: &[u8]) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(key, self.cache_id)
    }

    fn count_io<T>(&self, r: Result<T>) -> Result<T> {
        if r.is_err() {
            self.stats.io_errors.fetch_add(1, Relaxed);
        }
        r
    }

    /// Writes in pieces (see WRITE_PIECE): one 32 MiB write would hold every read behind it
    /// for its whole duration.
    fn write(&self, data: &[u8], offset: u64) -> Result<()> {
        let mut done = 0;
        while done < data.len() {
            let piece = if self.reads_in_flight.load(Relaxed) > 0 {
                WRITE_PIECE_UNDER_READS
            } else {
                WRITE_PIECE
            };
            let n = piece.min(data.len() - done);
            self.count_io(self.dev.pwrite(&data[done..done + n], offset + done as u64))?;
            self.stats.bytes_written.fetch_add(n as u64, Relaxed);
            done += n;
        }
        Ok(())
    }

    fn read(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        self.read_parts(&mut [buf], offset)
    }

    /// Reads consecutive bytes into `parts`, in one system call where the I/O layer can.
    fn read_parts(&self, parts: &mut [&mut [u8]], offset: u64) -> Result<usize> {
        let n = self.count_io(self.dev.pread_vectored(parts, offset))?;
        self.stats.bytes_read.fetch_add(n as u64, Relaxed);
        Ok(n)
    }

    fn sync(&self) -> Result<()> {
        self.count_io(self.dev.sync())
    }

    /// A region's trailer (its last unit), if it is intact and names this region.
    fn read_trailer(&self, region: u32) -> Option<Trailer> {
        let g = &self.geometry;
        let unit = g.unit as usize;
        let mut buf = crate::dio::AlignedBuf::new(unit, unit).ok()?;
        self.read(
            buf.as_mut_slice(),
            g.region_offset(region) + g.region_size - unit as u64,
        )
        .ok()?;
        Trailer::decode(buf.as_slice(), self.cache_id, g).filter(|t| t.region == region)
    }

    /// The summary records `t`, the region's trailer, describes, if they are intact.
    fn read_summary_records(&self, region: u32, t: &Trailer) -> Option<Vec<SummaryRecord>> {
        let g = &self.geometry;
        let unit = g.unit as usize;
        let summary_units = g.tail_len(t.record_count as usize) as usize - unit;
        let mut buf = crate::dio::AlignedBuf::new(summary_units, unit).ok()?;
        if summary_units > 0 {
            let start = g.region_offset(region) + g.region_size - (summary_units + unit) as u64;
            self.read(&mut buf.as_mut_slice()[..summary_units], start)
                .ok()?;
        }
        let bytes = &buf.as_slice()[..t.summary_len()];
        if format::crc(self.cache_id, &[bytes]) != t.summary_crc {
            return None;
        }
        Some(
            bytes
                .chunks_exact(SUMMARY_RECORD_LEN)
                .map(SummaryRecord::decode)
                .collect(),
        )
    }

    /// A region's trailer and summary, if both are intact.
    fn read_summary(&self, region: u32) -> Option<(Trailer, Vec<SummaryRecord>)> {
        let t = self.read_trailer(region)?;
        self.read_summary_records(region, &t)
            .map(|records| (t, records))
    }

    fn writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::new(
                ErrorKind::ReadOnly,
                "the cache was opened read-only",
            ));
        }
        if self.closed.load(Relaxed) {
            return Err(Error::new(ErrorKind::Io, "the cache is closed"));
        }
        Ok(())
    }

    fn check_value_len(&self, len: u64) -> Result<()> {
        if len > self.max_value_size {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "value of {len} bytes is larger than max_value_size ({})",
                    self.max_value_size
                ),
            ));
        }
        Ok(())
    }

    fn expiry(&self, ttl_secs: u64, now: u64) -> u64 {
        match if ttl_secs == 0 {
            self.default_ttl_secs
        } else {
            ttl_secs
        } {
            0 => 0,
            ttl => now.saturating_add(ttl),
        }
    }

    /// Stores a value. Checksums are computed before the log lock is taken; the copy into
    /// the region buffer and the index update happen under it, so that the index and the
    /// log agree on which of two puts of a key came last.
    fn put(&self, key: &[u8], value: &[u8], ttl_secs: u64) -> Result<()> {
        self.writable()?;
        self.check_value_len(value.len() as u64)?;
        let hash = self.hash(key);
        let chunk_crcs: Vec<u32> = value
            .chunks(CHUNK_SIZE as usize)
            .map(crc32c::crc32c)
            .collect();
        let now = now_secs();
        let entry = NewEntry {
            hash,
            key,
            value,
            chunk_crcs: &chunk_crcs,
            flags: 0,
            expiry: self.expiry(ttl_secs, now),
            created: now,
        };
        let (mut log, loc) = self.append(&entry, || Ok(()))?;
        let unit = self.geometry.unit as u64;
        self.used_bytes
            .fetch_add(loc.len_units as u64 * unit, Relaxed);
        if let Some(old) = self.index.insert(hash, loc) {
            self.used_bytes
                .fetch_sub(old.len_units as u64 * unit, Relaxed);
        }
        if self.sync_writes {
            log.flush(self)?;
        }
        drop(log);
        self.stats.puts.fetch_add(1, Relaxed);
        Ok(())
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        self.writable()?;
        let hash = self.hash(key);
        let now = now_secs();
        let tombstone = NewEntry {
            hash,
            key,
            value: &[],
            chunk_crcs: &[],
            flags: FLAG_TOMBSTONE,
            expiry: 0,
            created: now,
        };
        // Only a key that is there gets a tombstone; checked under the log's lock.
        let present = || match self.index.get(hash) {
            Some(_) => Ok(()),
            None => Err(Error::new(ErrorKind::NotFound, "key not found")),
        };
        let (mut log, _) = self.append(&tombstone, present)?;
        if let Some(old) = self.index.remove(hash) {
            self.used_bytes
                .fetch_sub(old.len_units as u64 * self.geometry.unit as u64, Relaxed);
        }
        if self.sync_writes {
            log.flush(self)?;
        }
        drop(log);
        self.stats.deletes.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Appends an entry, waiting without the log's lock when the region is full and the
    /// previous one is still being written. Returns the lock, still held, with the location.
    /// `check` runs under the lock before the entry is appended.
    fn append(
        &self,
        entry: &NewEntry<'_>,
        check: impl Fn() -> Result<()>,
    ) -> Result<(parking_lot::MutexGuard<'_, LogState>, index::Location)> {
        let mut summary = None;
        loop {
            let mut log = self.log.lock();
            check()?;
            match log.try_append(self, entry, &mut summary)? {
                Appended::At(loc) => return Ok((log, loc)),
                Appended::WaitForSpare => {
                    drop(log);
                    self.writeback.wait_spare();
                }
                Appended::NeedSummary(region) => {
                    drop(log);
                    summary = Some(ReadSummary {
                        region,
                        summary: self.read_summary(region),
                    });
                }
            }
        }
    }

    /// Hands the active region's pending bytes to the writer thread under the log's lock,
    /// then waits for every queued write and syncs without it, so that gets and puts go on.
    fn flush(&self) -> Result<()> {
        self.writable()?;
        let since = {
            let mut log = self.log.lock();
            let since = self.writeback.failures();
            log.submit_pending(self);
            log.queue_partial_tail(self)?;
            since
        };
        self.writeback.wait_idle(since)?;
        self.sync()
    }

    /// Flushes, writes the active region's summary, and marks the superblock clean.
    fn close(&self) -> Result<()> {
        if self.closed.swap(true, Relaxed) || self.read_only {
            return Ok(());
        }
        let mut log = self.log.lock();
        let tail = log.write_partial_tail(self);
        self.writeback.stop();
        tail?;
        self.sync()?;
        let mut sb = self.superblock.lock();
        sb.clean = true;
        sb.active_region = log.region;
        sb.active_seq = log.region_seq;
        sb.active_fill = log.fill;
        sb.next_entry_seq = log.next_entry_seq;
        open::write_superblock(self, &mut sb)
    }
}

/// An open cache. Cheap to share between threads by reference; `close` (or drop) flushes.
pub struct Cache {
    shared: Arc<Shared>,
}

impl Cache {
    /// Opens, creates or formats the cache at `path` as `opts` say (see `dcache_open`).
    pub fn open(path: &Path, opts: &CacheOptions) -> Result<Cache> {
        let shared = Arc::new(open::open(path, opts)?);
        if !opts.read_only {
            writeback::Writeback::start(&shared)?;
        }
        Ok(Cache { shared })
    }

    /// Flushes everything, persists the summaries and marks the cache clean.
    pub fn close(&self) -> Result<()> {
        self.shared.close()
    }

    pub fn flush(&self) -> Result<()> {
        self.shared.flush()
    }

    /// `TooLarge` if a value of `len` bytes would be refused: lets callers check a length
    /// before touching the memory behind it.
    pub fn check_value_len(&self, len: u64) -> Result<()> {
        self.shared.check_value_len(len)
    }

    pub fn put(&self, key: &[u8], value: &[u8], ttl_secs: u64) -> Result<()> {
        self.shared.put(key, value, ttl_secs)
    }

    pub fn get(&self, key: &[u8], buf: &mut [u8]) -> Result<Fetched> {
        self.shared.get(key, buf)
    }

    pub fn get_range(&self, key: &[u8], offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.shared.get_range(key, offset, buf)
    }

    /// Whether the index holds an entry for `key`, from memory only (no I/O). A true answer
    /// can still be a miss on get (expired, corrupt, or another key with the same hash).
    pub fn contains(&self, key: &[u8]) -> bool {
        self.shared.index.get(self.shared.hash(key)).is_some()
    }

    pub fn value_size(&self, key: &[u8]) -> Result<u64> {
        self.shared.value_size(key)
    }

    pub fn delete(&self, key: &[u8]) -> Result<()> {
        self.shared.delete(key)
    }

    pub fn writer(&self, key: &[u8], ttl_secs: u64) -> Result<Writer> {
        self.shared.writable()?;
        Ok(Writer::new(self.shared.clone(), key, ttl_secs))
    }

    pub fn is_direct_io(&self) -> bool {
        self.shared.dev.is_direct()
    }

    pub fn alignment(&self) -> usize {
        self.shared.geometry.alignment as usize
    }

    pub fn geometry(&self) -> Geometry {
        self.shared.geometry
    }

    pub fn max_value_size(&self) -> u64 {
        self.shared.max_value_size
    }

    /// Bytes of memory the index occupies.
    pub fn index_memory_bytes(&self) -> usize {
        self.shared.index.memory_bytes()
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Reads and verifies every entry; see [`VerifyReport`].
    pub fn verify_all(&self, progress: impl FnMut(u64, u64)) -> Result<VerifyReport> {
        self.shared.verify_all(progress)
    }

    /// How this open found the cache: clean or not, and what rebuilding the index cost.
    pub fn recovery(&self) -> RecoveryReport {
        self.shared.recovery.lock().clone()
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        if let Err(e) = self.shared.close() {
            crate::log::log(
                crate::log::Level::Error,
                &format!("closing the cache failed: {e}"),
            );
        }
    }
}

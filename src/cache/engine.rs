//! The engine: a small holder of the cache's parts, and the write side of its operations.
//! A put goes down, never back up: `Engine::put` → `AppendLog::append` → `Writeback` (the
//! writer thread) → `Device::write` → the I/O layer. Reads are in `read.rs`.

use super::active::NewEntry;
use super::append::{AppendLog, Appended, LogStart, Prepared};
use super::device::Device;
use super::eviction::{self, Eviction, ReadSummary};
use super::format::{self, Superblock, CHUNK_SIZE, FLAG_TOMBSTONE};
use super::head::LogHead;
use super::index::{Index, Location};
use super::recovery::RecoveryReport;
use super::stats::{Counters, Stats};
use super::writeback::Writeback;
use super::{now_secs, Admission};
use crate::dio::AlignedBuf;
use crate::error::{Error, ErrorKind, Result};
use parking_lot::{Mutex, MutexGuard};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// What the options fix for the life of a handle.
pub(super) struct Settings {
    pub read_only: bool,
    /// Every put is durable when it returns.
    pub sync_writes: bool,
    pub default_ttl_secs: u64,
    pub max_value_size: u64,
    pub admission: Admission,
    pub write_budget: u64,
}

pub(crate) struct Engine {
    pub(super) device: Arc<Device>,
    pub(super) index: Arc<Index>,
    pub(super) counters: Arc<Counters>,
    /// Where the log is, for reads that do not take the log's lock.
    pub(super) head: Arc<LogHead>,
    pub(super) log: Mutex<AppendLog>,
    pub(super) writeback: Arc<Writeback>,
    pub(super) settings: Settings,
    superblock: Mutex<Superblock>,
    closed: AtomicBool,
    /// Region writes failed (`Writeback::failures`) when the last flush returned: a flush
    /// fails if any failed since, since a failed write may have dropped a put it covers.
    failures_at_flush: AtomicU64,
    recovery: RecoveryReport,
}

impl Engine {
    /// Puts the parts together around `device` and `index` (filled by recovery, or empty),
    /// with the log at `start`. `start_writer` then starts the writer thread.
    pub(super) fn assemble(
        device: Arc<Device>,
        index: Arc<Index>,
        start: LogStart,
        superblock: Superblock,
        settings: Settings,
        recovery: RecoveryReport,
    ) -> Result<Engine> {
        let g = *device.geometry();
        let counters = device.counters().clone();
        let region_buffer = || match settings.read_only {
            true => Ok(None),
            false => AlignedBuf::new(g.region_size as usize, device.buffer_align()).map(Some),
        };
        let spare = region_buffer()?;
        let first_buffer = match start.active.iter().all(Option::is_some) {
            true => None,
            false => region_buffer()?,
        };
        let writeback = Arc::new(Writeback::new(device.clone(), index.clone(), spare));
        let head = Arc::new(LogHead::new(&start.laps, !settings.read_only));
        let (admission, budget) = (settings.admission, settings.write_budget);
        let eviction_of = |has_entries, rings| {
            let (index, counters) = (index.clone(), counters.clone());
            Eviction::new(index, counters, g, has_entries, rings, admission, budget)
        };
        let log = AppendLog::new(
            device.clone(),
            writeback.clone(),
            head.clone(),
            eviction_of,
            start,
            first_buffer,
        );
        Ok(Engine {
            device,
            index,
            counters,
            head,
            log: Mutex::new(log),
            writeback,
            settings,
            superblock: Mutex::new(superblock),
            closed: AtomicBool::new(false),
            failures_at_flush: AtomicU64::new(0),
            recovery,
        })
    }

    /// Starts the writer thread of a writable cache.
    pub fn start_writer(&self) -> Result<()> {
        match self.settings.read_only {
            true => Ok(()),
            false => self.writeback.start(),
        }
    }

    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Marks the cache in use on the device: until a clean close, a reopen recovers.
    pub(super) fn mark_in_use(&self) -> Result<()> {
        let mut sb = self.superblock.lock();
        sb.clean = false;
        self.device.write_superblock(&mut sb)
    }

    /// `writable`, and the device takes writes. While it refuses them (see `WriteRefusal`),
    /// `key`'s older value leaves the index all the same, since the caller meant to replace
    /// or delete it; the tombstone that would keep it gone after a reopen cannot be written.
    pub fn accepts_writes_for(&self, key: &[u8]) -> Result<()> {
        self.writable()?;
        self.device
            .accepts_writes(&self.superblock)
            .inspect_err(|_| {
                self.index.remove(self.hash(key));
            })
    }

    pub fn hash(&self, key: &[u8]) -> u64 {
        format::key_hash(self.device.cache_id(), key)
    }

    pub fn stats(&self) -> Stats {
        let g = self.device.geometry();
        let mut s = Stats {
            direct_io: self.device.file().is_direct(),
            alignment: g.alignment,
            capacity: g.capacity,
            used_bytes: self.index.used_bytes().min(g.capacity),
            entries: self.index.len() as u64,
            index_bytes: self.index.memory_bytes() as u64,
            recovery: self.recovery.clone(),
            ..Stats::default()
        };
        self.counters.load_into(&mut s);
        s
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Relaxed)
    }

    pub fn writable(&self) -> Result<()> {
        if self.settings.read_only {
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

    pub fn check_value_len(&self, len: u64) -> Result<()> {
        let max = self.settings.max_value_size;
        if len > max {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!("value of {len} bytes is larger than max_value_size ({max})"),
            ));
        }
        Ok(())
    }

    fn expiry(&self, ttl_secs: u64, now: u64) -> u64 {
        let ttl = match ttl_secs {
            0 => self.settings.default_ttl_secs,
            ttl => ttl,
        };
        match ttl {
            0 => 0,
            ttl => now.saturating_add(ttl),
        }
    }

    /// `Declined` if the admission policy chooses not to store a value of `key`, of `len`
    /// bytes (0: not known yet), only under `Admission::Filtered`; a put or writer asks once,
    /// before it stores anything. A declined key's older value is deleted, as `delete` does.
    pub fn admit(&self, key: &[u8], len: u64) -> Result<()> {
        let hash = self.hash(key);
        if self.settings.admission == Admission::All || self.log.lock().admit(hash, len) {
            return Ok(());
        }
        self.decline(key)
    }

    /// Stores a streamed value, admitted when its writer opened, if it stays within the
    /// write budget now that its length is known; else `Declined`, as `admit`.
    pub fn commit(&self, key: &[u8], value: &[u8], ttl_secs: u64) -> Result<()> {
        self.accepts_writes_for(key)?;
        let len = value.len() as u64;
        if self.settings.admission == Admission::Filtered && !self.log.lock().admit_len(len) {
            return self.decline(key);
        }
        self.store(key, value, ttl_secs)
    }

    /// Deletes an older value of a declined key (as `delete` does: it must not come back),
    /// and says that the put was declined.
    fn decline(&self, key: &[u8]) -> Result<()> {
        if self.index.get(self.hash(key)).is_some() {
            match self.delete(key) {
                Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Err(Error::new(
            ErrorKind::Declined,
            "the admission filter declined this value (a key is stored the second time it misses)",
        ))
    }

    /// Stores a value, if the admission policy takes it.
    pub fn put(&self, key: &[u8], value: &[u8], ttl_secs: u64) -> Result<()> {
        self.accepts_writes_for(key)?;
        self.check_value_len(value.len() as u64)?;
        self.admit(key, value.len() as u64)?;
        self.store(key, value, ttl_secs)
    }

    /// Stores a value admitted already. Checksums are computed before the log lock is
    /// taken; the copy into the region buffer and the index update happen under it, so that
    /// the index and the log agree on which of two puts of a key came last.
    fn store(&self, key: &[u8], value: &[u8], ttl_secs: u64) -> Result<()> {
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
        self.index.insert(hash, loc);
        if self.settings.sync_writes {
            log.flush()?;
        }
        drop(log);
        self.counters.puts.fetch_add(1, Relaxed);
        Ok(())
    }

    pub fn delete(&self, key: &[u8]) -> Result<()> {
        self.accepts_writes_for(key)?;
        let hash = self.hash(key);
        let tombstone = tombstone(hash, key);
        // Only a key that is there gets a tombstone; checked under the log's lock.
        let present = || match self.index.get(hash) {
            Some(_) => Ok(()),
            None => Err(Error::new(ErrorKind::NotFound, "key not found")),
        };
        let (mut log, _) = self.append(&tombstone, present)?;
        self.index.remove(hash);
        if self.settings.sync_writes {
            log.flush()?;
        }
        drop(log);
        self.counters.deletes.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Appends an entry, waiting without the log's lock when the region is full and the
    /// previous one is still being written. Returns the lock, still held, with the location.
    /// `check` runs under the lock before the entry is appended.
    fn append(
        &self,
        entry: &NewEntry<'_>,
        check: impl Fn() -> Result<()>,
    ) -> Result<(MutexGuard<'_, AppendLog>, Location)> {
        let mut prepared = Prepared::default();
        loop {
            let mut log = self.log.lock();
            check()?;
            match log.append(entry, &mut prepared)? {
                Appended::At(loc) => return Ok((log, loc)),
                Appended::WaitForSpare => {
                    drop(log);
                    self.writeback.wait_spare();
                }
                Appended::NeedSummary(region) => {
                    drop(log);
                    prepared.add(self.read_for_reclaim(region));
                }
            }
        }
    }

    /// What the reclaim of `region` needs, read without the log's lock: its summary, and the
    /// entries worth keeping, read and verified.
    pub(super) fn read_for_reclaim(&self, region: u32) -> ReadSummary {
        let summary = self.device.read_summary(region);
        let g = self.device.geometry();
        let lap = self.head.lap_of(region);
        // Under admission filtering, writes are what is spared: only entries read twice
        // are written again.
        let min_reads = match self.settings.admission {
            Admission::All => 1,
            Admission::Filtered => 2,
        };
        let survivors =
            eviction::survivor_candidates(&self.index, g, region, lap, &summary, min_reads)
                .into_iter()
                .filter_map(|(hash, at)| self.read_survivor(hash, at))
                .collect();
        ReadSummary {
            region,
            summary,
            survivors,
        }
    }

    /// Hands the active region's pending bytes to the writer thread under the log's lock,
    /// then waits for every queued write and syncs without it, so that gets and puts go on.
    ///
    /// It fails if a region write failed since the previous flush returned, even one whose
    /// error a put already got: the puts that write covered may be lost, and only the next
    /// flush after this one can say that every put before it is durable.
    pub fn flush(&self) -> Result<()> {
        self.writable()?;
        self.bury_lost_keys();
        self.flush_log()?;
        // A refusal of writes may have kept tombstones out; the writes that just succeeded
        // ended it. A flush succeeds only once no lost key can bring back an older value.
        if self.writeback.has_lost_keys() {
            self.bury_lost_keys();
            self.flush_log()?;
            if self.writeback.has_lost_keys() {
                return Err(Error::new(
                    ErrorKind::Io,
                    "the tombstones of entries a failed write lost could not be written: \
                     an older value of their keys may come back after a crash",
                ));
            }
        }
        Ok(())
    }

    /// Writes what the log holds and waits for it: the body of `flush`.
    fn flush_log(&self) -> Result<()> {
        let since = self.failures_at_flush.load(Relaxed);
        {
            let mut log = self.log.lock();
            log.submit_pending();
            log.queue_partial_tails()?;
        }
        let waited = self.writeback.wait_idle(since);
        self.failures_at_flush
            .fetch_max(self.writeback.failures(), Relaxed);
        waited?;
        self.device.sync()
    }

    /// Writes a tombstone for each key a failed seal dropped that was not put again since:
    /// an older value of it may still be on the device, and without the tombstone a reopen
    /// would find it. Keys whose tombstone cannot be written now wait for the next flush.
    fn bury_lost_keys(&self) {
        let keys = self.writeback.take_lost_keys();
        let mut unwritten = Vec::new();
        for key in keys {
            let hash = self.hash(&key);
            let tombstone = tombstone(hash, &key);
            // Checked under the log's lock: a key put again has a newer entry already.
            let absent = || match self.index.get(hash) {
                None => Ok(()),
                Some(_) => Err(Error::new(ErrorKind::NotFound, "put again")),
            };
            let written = self
                .device
                .accepts_writes(&self.superblock)
                .and_then(|()| self.append(&tombstone, absent));
            match written {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(_) => unwritten.push(key),
            }
        }
        self.writeback.keep_lost_keys(unwritten);
    }

    /// Flushes, writes the active region's summary, and marks the superblock clean.
    pub fn close(&self) -> Result<()> {
        if self.closed.swap(true, Relaxed) || self.settings.read_only {
            return Ok(());
        }
        self.bury_lost_keys();
        let mut log = self.log.lock();
        let tail = log.write_partial_tails();
        self.writeback.stop();
        tail?;
        self.device.sync()?;
        let at = log.position();
        let mut sb = self.superblock.lock();
        sb.clean = true;
        sb.positions = at.positions;
        sb.next_entry_seq = at.next_entry_seq;
        sb.next_lap = at.next_lap;
        self.device.write_superblock(&mut sb)
    }
}

/// The entry that deletes `key` (its hash `hash`) from the log.
fn tombstone(hash: u64, key: &[u8]) -> NewEntry<'_> {
    NewEntry {
        hash,
        key,
        value: &[],
        chunk_crcs: &[],
        flags: FLAG_TOMBSTONE,
        expiry: 0,
        created: now_secs(),
    }
}

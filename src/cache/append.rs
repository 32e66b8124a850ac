//! The append path: each ring's active region (`active`), filled in memory, and the moves
//! from one region to the next. When an entry does not fit its ring's active region, the
//! log seals that region and enters another, chosen and reclaimed by `eviction`; what the
//! reclaimed region held that is worth keeping is written again in the main ring.

use super::active::{ActiveRegion, NewEntry};
use super::device::Device;
use super::eviction::{Eviction, ReadSummary, Survivor};
use super::format::{chunk_count, Decoded, EntryHeader, Ring, RingPosition};
use super::head::LogHead;
use super::index::Location;
use super::rings::{Rings, Victim};
use super::writeback::Writeback;
use crate::dio::AlignedBuf;
use crate::error::Result;
use std::sync::Arc;

/// Where the log starts when a cache opens: after a format, or as recovery found it.
pub(crate) struct LogStart {
    /// Each ring's active region, where it goes on from (by `Ring as usize`).
    pub active: [Option<ActiveRegion>; 2],
    /// The lap each region holds.
    pub laps: Vec<u64>,
    pub rings: Rings,
    /// The regions that may have entries in the index, one flag a region.
    pub has_entries: Vec<bool>,
    pub next_entry_seq: u64,
    pub next_lap: u64,
}

/// What `AppendLog::append` did.
pub(crate) enum Appended {
    At(Location),
    /// A region is full and the spare buffer is still being written: wait for it.
    WaitForSpare,
    /// A region is full and moving on reclaims this region, which has entries: read its
    /// summary and survivors without the lock (a read under it would stall every put and
    /// every get of the active regions), then try again.
    NeedSummary(u32),
}

/// What an append that had to wait has learnt and done so far: the ring the ghost chose for
/// it (chosen once: the choice consumes the key's ghost), the summaries read for reclaims,
/// and whether the main ring moved on for it.
#[derive(Default)]
pub(crate) struct Prepared {
    ring: Option<Ring>,
    summaries: Vec<ReadSummary>,
    /// The main ring moved on to make room for survivors.
    main_moved: bool,
}

impl Prepared {
    pub fn add(&mut self, summary: ReadSummary) {
        self.summaries.push(summary);
    }

    fn take(&mut self, region: u32) -> Option<ReadSummary> {
        let i = self.summaries.iter().position(|s| s.region == region)?;
        Some(self.summaries.swap_remove(i))
    }

    fn put_back(&mut self, summary: Option<ReadSummary>) {
        self.summaries.extend(summary);
    }
}

/// Where the log stands, for a clean close's superblock.
pub(crate) struct LogPosition {
    pub positions: [RingPosition; 2],
    pub next_entry_seq: u64,
    pub next_lap: u64,
}

/// The log's write side, behind the engine's lock.
pub(crate) struct AppendLog {
    device: Arc<Device>,
    writeback: Arc<Writeback>,
    head: Arc<LogHead>,
    eviction: Eviction,
    /// Each ring's active region (by `Ring as usize`): none until the ring's first entry.
    active: [Option<ActiveRegion>; 2],
    /// A region buffer allocated at open for the first ring to need one (probation, in a
    /// new cache). Allocated at the first put instead, under a busy machine's memory, it
    /// made region writes markedly slower in `make bench` (likely: fewer huge pages, more
    /// pages pinned per direct write), and its population fell on that put.
    first_buffer: Option<AlignedBuf>,
    next_entry_seq: u64,
    next_lap: u64,
}

impl AppendLog {
    /// The log at `start`, its active regions published to `head`; `first_buffer` serves
    /// the first ring without an active region to need one.
    pub fn new(
        device: Arc<Device>,
        writeback: Arc<Writeback>,
        head: Arc<LogHead>,
        eviction_of: impl FnOnce(Vec<bool>, Rings) -> Eviction,
        start: LogStart,
        first_buffer: Option<AlignedBuf>,
    ) -> AppendLog {
        for a in start.active.iter().flatten() {
            head.resume(a.ring, a.region);
        }
        let next_entry_seq = start
            .active
            .iter()
            .flatten()
            .map(|a| a.max_entry_seq + 1)
            .fold(start.next_entry_seq, u64::max);
        AppendLog {
            device,
            writeback,
            head,
            eviction: eviction_of(start.has_entries, start.rings),
            active: start.active,
            first_buffer,
            next_entry_seq,
            next_lap: start.next_lap,
        }
    }

    /// Whether the admission policy stores a put of `hash` (see `Eviction::admit`).
    pub fn admit(&mut self, hash: u64, len: u64) -> bool {
        self.eviction.admit(hash, len)
    }

    /// Whether a value of `len` bytes stays within the write budget (see
    /// `Eviction::admit_len`).
    pub fn admit_len(&mut self, len: u64) -> bool {
        self.eviction.admit_len(len)
    }

    pub fn position(&self) -> LogPosition {
        LogPosition {
            positions: Ring::ALL.map(|ring| {
                self.active[ring as usize]
                    .as_ref()
                    .map_or(RingPosition::NONE, ActiveRegion::position)
            }),
            next_entry_seq: self.next_entry_seq,
            next_lap: self.next_lap,
        }
    }

    #[cfg(test)]
    pub fn ring_of(&self, region: u32) -> Option<Ring> {
        self.eviction.ring_of(region)
    }

    #[cfg(test)]
    pub fn victim(&self) -> Victim {
        self.eviction.victim()
    }

    fn actives(&mut self) -> impl Iterator<Item = &mut ActiveRegion> {
        self.active.iter_mut().flatten()
    }

    /// Whether an active region's buffer holds the entry at `loc`; if so, copies as many
    /// bytes of it as `out` holds, from `rel` on, into `out`'s parts in order.
    pub fn copy_if_buffered(&self, loc: Location, rel: u64, out: &mut [&mut [u8]]) -> bool {
        let region = self.device.geometry().region_of(loc.unit);
        self.active
            .iter()
            .flatten()
            .find(|a| a.region == region)
            .is_some_and(|a| a.copy_if_buffered(&self.device, loc, rel, out))
    }

    /// Appends an entry to its ring's active region (sealing it and moving on first if it
    /// does not fit) and returns where it is, or what the caller must do without the lock
    /// before it tries again with the same `prepared`. The caller has checked that the
    /// entry fits an empty region.
    pub fn append(&mut self, e: &NewEntry<'_>, prepared: &mut Prepared) -> Result<Appended> {
        let ring = self
            .eviction
            .place(e.hash, e.value.len() as u64, &mut prepared.ring);
        let layout = self
            .device
            .geometry()
            .entry_layout(e.key.len(), e.value.len() as u64);
        let fits = self.active[ring as usize]
            .as_ref()
            .is_some_and(|a| a.fits(&self.device, layout.1, 0));
        if !fits {
            if let Some(wait) = self.move_on(ring, prepared, e.hash, layout.1)? {
                return Ok(wait);
            }
        }
        let entry_seq = self.take_entry_seq();
        let a = self.active[ring as usize]
            .as_mut()
            .expect("moving on leaves the ring an active region");
        let loc = a.write_entry(&self.device, e, entry_seq, layout);
        self.eviction.note_entry(a.region, layout.1);
        a.write_behind(&self.writeback);
        Ok(Appended::At(loc))
    }

    fn take_entry_seq(&mut self) -> u64 {
        self.next_entry_seq += 1;
        self.next_entry_seq - 1
    }

    /// Seals `ring`'s active region (if it has one) and enters the region eviction chooses,
    /// reclaiming it, if its summary is at hand (where it is needed) and a buffer is; else
    /// says what to wait for. Leaves room for the entry being appended, of `pending` bytes,
    /// for the key of `replacing`, in the new region.
    fn move_on(
        &mut self,
        ring: Ring,
        prepared: &mut Prepared,
        replacing: u64,
        pending: u64,
    ) -> Result<Option<Appended>> {
        let victim = self.eviction.victim();
        let summary = match prepared.take(victim.region) {
            Some(s) => Some(s),
            None if self.eviction.needs_summary(victim.region) => {
                return Ok(Some(Appended::NeedSummary(victim.region)))
            }
            None => None,
        };
        // The survivors of a region probation takes go to the main ring's active region: if
        // they do not fit there, the main ring moves on first (once an append), keeping room
        // for them.
        let needed: u64 = summary
            .iter()
            .flat_map(|s| &s.survivors)
            .map(|s| s.bytes.len() as u64)
            .sum();
        let main_has_room = self.active[Ring::Main as usize]
            .as_ref()
            .is_some_and(|m| m.fits(&self.device, needed, 0));
        if ring == Ring::Probation && needed > 0 && !main_has_room && !prepared.main_moved {
            prepared.put_back(summary);
            if let Some(wait) = self.move_on(Ring::Main, prepared, replacing, needed)? {
                return Ok(Some(wait));
            }
            prepared.main_moved = true;
            return self.move_on(ring, prepared, replacing, pending);
        }
        let buf = match self.active[ring as usize].is_some() {
            true => match self.writeback.try_take_spare()? {
                Some(spare) => spare,
                None => {
                    prepared.put_back(summary);
                    return Ok(Some(Appended::WaitForSpare));
                }
            },
            // The ring's first region: the log keeps a buffer for each ring, and a spare.
            false => match self.first_buffer.take() {
                Some(buf) => buf,
                None => AlignedBuf::new(
                    self.device.geometry().region_size as usize,
                    self.device.buffer_align(),
                )?,
            },
        };
        self.enter(ring, victim, buf, summary, (replacing, pending))?;
        Ok(None)
    }

    /// Seals `ring`'s active region, reclaims `victim` and makes it the ring's active
    /// region, then writes the victim's survivors in the main ring, but for the entry of
    /// the key being put (`pending`: its hash and length).
    fn enter(
        &mut self,
        ring: Ring,
        victim: Victim,
        buf: AlignedBuf,
        summary: Option<ReadSummary>,
        pending: (u64, u64),
    ) -> Result<()> {
        if let Some(full) = self.active[ring as usize].take() {
            full.seal(&self.device, &self.writeback);
        }
        let lap = self.next_lap;
        self.next_lap += 1;
        let old_lap = self.head.lap_of(victim.region);
        let (summary, survivors) = summary.map_or((None, Vec::new()), |r| (r.summary, r.survivors));
        let (replacing, pending) = pending;
        let kept = self
            .eviction
            .reclaim(victim, ring, old_lap, summary, survivors, replacing);
        self.head.enter(ring, victim.region, lap);
        let fresh = ActiveRegion::fresh(ring, victim.region, lap, buf);
        if victim.from.is_some() {
            fresh.queue_entered_tail(&self.device, &self.writeback)?;
        }
        self.active[ring as usize] = Some(fresh);
        let reserve = if ring == Ring::Main { pending } else { 0 };
        for survivor in &kept {
            self.reinsert(survivor, victim.from, reserve);
        }
        if let Some(main) = self.active[Ring::Main as usize].as_mut() {
            main.write_behind(&self.writeback);
        }
        Ok(())
    }

    /// Writes a survivor of a reclaimed region (of ring `from`) again in the main ring's
    /// active region, as a new entry (its key, value, checksums, expiry and creation time
    /// unchanged), if it fits with room left for `reserve` bytes; else it is evicted.
    fn reinsert(&mut self, survivor: &Survivor, from: Option<Ring>, reserve: u64) {
        let g = *self.device.geometry();
        let len = survivor.bytes.len() as u64;
        let Some(main) = self.active[Ring::Main as usize].as_mut() else {
            return self.eviction.dropped(survivor, from);
        };
        let h = match EntryHeader::decode(&survivor.bytes, self.device.cache_id(), len, g.unit) {
            Decoded::Valid(h)
                if main.fits(&self.device, len, reserve) && self.eviction.within_budget(len) =>
            {
                h
            }
            _ => return self.eviction.dropped(survivor, from),
        };
        let b = &survivor.bytes;
        let chunk_crcs: Vec<u32> = (0..chunk_count(h.value_len))
            .map(|i| h.chunk_crc(b, i))
            .collect();
        let entry = NewEntry {
            hash: survivor.hash,
            key: h.key(b),
            value: &b[h.value_offset as usize..(h.value_offset as u64 + h.value_len) as usize],
            chunk_crcs: &chunk_crcs,
            flags: h.flags,
            expiry: h.expiry,
            created: h.created,
        };
        self.next_entry_seq += 1;
        let at = main.write_entry(
            &self.device,
            &entry,
            self.next_entry_seq - 1,
            (h.value_offset as u64, len),
        );
        self.eviction.note_entry(main.region, len);
        self.eviction.reinserted(survivor, at, from);
    }

    /// Hands the active regions' entries not yet submitted to the writer thread.
    pub fn submit_pending(&mut self) {
        let writeback = self.writeback.clone();
        self.actives().for_each(|a| a.submit_pending(&writeback));
    }

    /// Queues a partial summary and trailer of each active region (see
    /// `ActiveRegion::queue_partial_tail`).
    pub fn queue_partial_tails(&mut self) -> Result<()> {
        let (device, writeback) = (self.device.clone(), self.writeback.clone());
        self.actives()
            .try_for_each(|a| a.queue_partial_tail(&device, &writeback))
    }

    /// Makes every appended entry durable, with the log's lock held (for a cache whose every
    /// put is durable when it returns).
    pub fn flush(&mut self) -> Result<()> {
        let since = self.writeback.failures();
        self.submit_pending();
        self.writeback.wait_idle(since)?;
        self.device.sync()
    }

    /// Writes each active region's pending entries, then its summary and trailer: the index
    /// snapshot that a clean close leaves.
    pub fn write_partial_tails(&mut self) -> Result<()> {
        let (device, writeback) = (self.device.clone(), self.writeback.clone());
        self.actives()
            .try_for_each(|a| a.write_partial_tail(&device, &writeback))
    }
}

#[cfg(test)]
mod tests {
    use super::super::format::{Ring, RingPosition};
    use super::super::testing::{self, MIB};
    use super::{Appended, Prepared};
    use crate::cache::Cache;

    fn put_n(c: &Cache, prefix: &str, n: usize, len: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let key = format!("{prefix}{i}").into_bytes();
                c.put(&key, &testing::value(&key, 1, len), 0).unwrap();
                key
            })
            .collect()
    }

    #[test]
    fn a_full_region_is_sealed_and_its_ring_moves_to_a_region_in_a_new_lap() {
        let dir = testing::scratch();
        let (_, c) = testing::create(dir.path(), "c", 8 * MIB);
        let probation = |c: &Cache| c.engine.log.lock().position().positions[0];
        assert_eq!(
            probation(&c),
            RingPosition::NONE,
            "no region until the first put"
        );
        put_n(&c, "k", 1, 100_000);
        assert_eq!((probation(&c).region, probation(&c).lap), (0, 1));
        // Regions are 1 MiB here: 12 values of 100 KB fill the first one.
        put_n(&c, "k", 12, 100_000);
        assert_eq!((probation(&c).region, probation(&c).lap), (1, 2));
        assert_eq!(c.engine.head.lap_of(1), 2);
        assert_eq!(c.engine.head.lap_of(0), 1);
        c.flush().unwrap();
        let sealed = c.engine.device.read_summary(0).expect("region 0's summary");
        assert!(sealed.0.sealed && sealed.0.lap == 1 && sealed.0.region == 0);
        assert_eq!(sealed.0.ring, Ring::Probation);
        assert_eq!(sealed.1.len() as u32, sealed.0.record_count);
        assert!(
            sealed.1.len() >= 9,
            "the sealed summary lists the region's entries"
        );
    }

    #[test]
    fn the_log_wraps_and_its_oldest_region_is_reclaimed_first() {
        let dir = testing::scratch();
        let (_, c) = testing::create(dir.path(), "c", 8 * MIB);
        let regions = c.engine.device.geometry().region_count;
        // Twice the cache's capacity: the log goes round more than once.
        let keys = put_n(&c, "w", 160, 100_000);
        let at = c.engine.log.lock().position().positions[0];
        assert!(
            at.lap > regions as u64 + 1,
            "the log wrapped (lap {})",
            at.lap
        );
        assert!(
            testing::get(&c, &keys[0]).is_none(),
            "the oldest key was evicted"
        );
        for key in &keys[keys.len() - 20..] {
            let v = testing::get(&c, key).expect("a recent key is there");
            assert_eq!(testing::version_of(key, &v), Some(1));
        }
        let s = c.stats();
        assert!(s.evictions > 0);
        assert!(s.used_bytes <= s.capacity);
        assert_eq!(
            s.entries + s.evictions,
            160,
            "each key is either there or evicted"
        );
    }

    #[test]
    fn an_entry_is_read_from_the_buffer_before_it_reaches_the_device() {
        let dir = testing::scratch();
        let (_, c) = testing::create(dir.path(), "c", 8 * MIB);
        c.put(b"fresh", &testing::value(b"fresh", 1, 3000), 0)
            .unwrap();
        let loc = c.engine.index.get(c.engine.hash(b"fresh")).unwrap();
        let log = c.engine.log.lock();
        let mut head = [0u8; 64];
        assert!(log.copy_if_buffered(loc, 0, &mut [&mut head[..]]));
        // Nothing was handed to the writer yet: the device still has zeros there.
        let g = *c.engine.device.geometry();
        let mut on_device = vec![0u8; g.unit as usize];
        let offset = g.data_start + loc.unit as u64 * g.unit as u64;
        c.engine.device.read(&mut on_device, offset).unwrap();
        assert!(on_device.iter().all(|&b| b == 0));
        assert_ne!(&head[..], &[0u8; 64][..]);
        drop(log);
        assert_eq!(
            testing::get(&c, b"fresh"),
            Some(testing::value(b"fresh", 1, 3000))
        );
    }

    #[test]
    fn a_flush_writes_a_partial_summary_only_when_it_is_worth_its_bytes() {
        let dir = testing::scratch();
        let (_, c) = testing::create(dir.path(), "c", 8 * MIB);
        c.put(b"a", &testing::value(b"a", 1, 5000), 0).unwrap();
        c.flush().unwrap();
        let (t, records) = c.engine.device.read_summary(0).expect("a partial summary");
        assert!(!t.sealed);
        assert_eq!(records.len(), 1);
        // Nothing new: a second flush leaves the summary as it is.
        let written = c.stats().bytes_written;
        c.flush().unwrap();
        assert_eq!(c.stats().bytes_written, written);
    }

    /// A region a ring has entered but written nothing to yet still holds the entries of its
    /// previous lap, which eviction dropped (and which newer entries elsewhere may since have
    /// replaced, and been evicted in turn): a crash then must not bring them back.
    #[test]
    fn a_reclaimed_region_keeps_its_old_entries_out_of_recovery_before_its_first_write() {
        let dir = testing::scratch();
        let (path, c) = testing::create(dir.path(), "c", 8 * MIB);
        let g = *c.engine.device.geometry();
        let probation = |c: &Cache| c.engine.log.lock().position().positions[0];
        let mut keys = Vec::new();
        while probation(&c).region != g.region_count - 1 {
            keys.extend(put_n(&c, &format!("p{}-", keys.len()), 1, 100_000));
        }
        let in_region_0: Vec<_> = keys
            .iter()
            .filter(|k| {
                let loc = c.engine.index.get(c.engine.hash(k)).unwrap();
                g.region_of(loc.unit) == 0
            })
            .collect();
        assert!(in_region_0.len() >= 5);
        // The main ring enters probation's oldest region, with nothing to write yet.
        let mut prepared = Prepared::default();
        loop {
            let mut log = c.engine.log.lock();
            match log.move_on(Ring::Main, &mut prepared, 0, 0).unwrap() {
                None => break,
                Some(Appended::NeedSummary(region)) => {
                    drop(log);
                    prepared.add(c.engine.read_for_reclaim(region));
                }
                Some(Appended::WaitForSpare) => {
                    drop(log);
                    c.engine.writeback.wait_spare();
                }
                Some(Appended::At(_)) => unreachable!(),
            }
        }
        let main = c.engine.log.lock().position().positions[1];
        assert_eq!((main.region, main.fill), (0, 0));
        for key in &in_region_0 {
            assert!(testing::get(&c, key).is_none(), "evicted");
        }
        c.flush().unwrap();
        let image = testing::crash_image(&path, dir.path(), "image");
        let recovered = testing::reopen(&image);
        for key in &in_region_0 {
            assert!(testing::get(&recovered, key).is_none(), "still evicted");
        }
    }
}

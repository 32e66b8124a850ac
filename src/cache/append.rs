//! The append path: the active region, filled in memory and handed to the writer thread in
//! large aligned pieces as it fills and at a flush. When a region is full, its summary and
//! trailer go at its end (sealing it) and the log moves on to the next region, reclaiming it
//! (`eviction`).

use super::device::Device;
use super::eviction::{Eviction, ReadSummary, Survivor};
use super::format::{
    chunk_count, Decoded, EntryHeader, SummaryRecord, Trailer, SUMMARY_RECORD_LEN, TRAILER_LEN,
};
use super::index::Location;
use super::writeback::Writeback;
use super::{parts_len, scatter};
use crate::dio::AlignedBuf;
use crate::error::Result;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Appended bytes go to the writer thread in pieces of about this size, so the device works
/// while the region fills instead of waiting for it to be full.
const WRITE_BEHIND: u64 = 2 << 20;
/// Write-behind pieces end on this boundary: file systems take direct writes that are not
/// aligned to their block (4 KiB on ext4) through a slower, serialising path.
const WRITE_BEHIND_ALIGN: u64 = 1 << 20;

/// The active region and its lap, readable without the log's lock: packed as
/// `lap << 32 | region` (the lap's low 32 bits), so that a reader sees both from one moment.
/// - The active region's newest bytes may be only in the log's buffer; reads of any other
///   region go to the device without touching the log's lock.
/// - Every region's lap follows from them, and a read checks that the entry it found was
///   written in that lap: the index keeps no lap, and after a power loss an older lap's entry
///   of the same key can sit, intact, where a newer entry's bytes never landed.
///
/// The log publishes a new region after handing the full one to the writer (which marks it
/// as sealing first), so a reader that sees the next region active also sees the sealing one.
pub(crate) struct LogHead {
    packed: AtomicU64,
    region_count: u32,
    /// Read-only handles have no buffered region.
    writable: bool,
}

impl LogHead {
    pub fn new(region_count: u32, writable: bool) -> LogHead {
        LogHead {
            packed: AtomicU64::new(0),
            region_count,
            writable,
        }
    }

    fn publish(&self, region: u32, lap: u64) {
        self.packed
            .store((lap << 32) | region as u64, Ordering::Release);
    }

    /// The region whose newest bytes may be only in the log's buffer (None: read-only).
    pub fn buffered_region(&self) -> Option<u32> {
        let packed = self.packed.load(Ordering::Acquire);
        self.writable.then_some(packed as u32)
    }

    /// The low 32 bits of the lap that `region` holds now.
    pub fn lap_of(&self, region: u32) -> u32 {
        self.snapshot().lap_of(region)
    }

    /// Where the log is now, to tell later which lap a region held at this moment.
    pub fn snapshot(&self) -> HeadSnapshot {
        HeadSnapshot {
            packed: self.packed.load(Ordering::Acquire),
            region_count: self.region_count,
        }
    }
}

/// The log's head at one moment (see `LogHead::snapshot`).
#[derive(Clone, Copy)]
pub(crate) struct HeadSnapshot {
    packed: u64,
    region_count: u32,
}

impl HeadSnapshot {
    /// The low 32 bits of the lap that `region` held at that moment.
    pub fn lap_of(self, region: u32) -> u32 {
        let (active, lap) = (self.packed as u32 as u64, (self.packed >> 32) as u32);
        let n = self.region_count as u64;
        let behind = (active + n - region as u64) % n;
        lap.wrapping_sub(behind as u32)
    }
}

/// Where the log starts when a cache opens: after a format, or as recovery found it.
pub(crate) struct LogStart {
    pub region: u32,
    pub lap: u64,
    /// The region's buffer; it holds the region's bytes from `mem_from` to `fill`.
    pub buf: AlignedBuf,
    /// Bytes of entries in the region.
    pub fill: u64,
    /// Before this, the region's bytes are only on the device (u64::MAX: a read-only handle,
    /// whose buffer holds nothing).
    pub mem_from: u64,
    /// The fill that the region's partial summary on the device describes (0: none).
    pub tail_fill: u64,
    /// The summary records of the region's entries.
    pub records: Vec<SummaryRecord>,
    pub max_entry_seq: u64,
    pub next_entry_seq: u64,
    /// The regions that may have entries in the index, one flag a region.
    pub has_entries: Vec<bool>,
}

/// What `AppendLog::append` did.
pub(crate) enum Appended {
    At(Location),
    /// The region is full and the spare buffer is still being written: wait for it.
    WaitForSpare,
    /// The region is full and moving on reclaims this region, whose summary is on the
    /// device: read it without the lock (a read under it would stall every put and every
    /// get of the active region), then try again.
    NeedSummary(u32),
}

/// What to append: an entry header with its key, and the value with its chunk checksums.
pub(crate) struct NewEntry<'a> {
    pub hash: u64,
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub chunk_crcs: &'a [u32],
    pub flags: u16,
    pub expiry: u64,
    pub created: u64,
}

/// Where the log stands, for a clean close's superblock.
pub(crate) struct LogPosition {
    pub region: u32,
    pub lap: u64,
    pub fill: u64,
    pub next_entry_seq: u64,
}

/// The log's write side, behind the engine's lock.
pub(crate) struct AppendLog {
    device: Arc<Device>,
    writeback: Arc<Writeback>,
    head: Arc<LogHead>,
    eviction: Eviction,
    region: u32,
    /// Which lap of the log this region holds: one more than the region before it.
    lap: u64,
    buf: AlignedBuf,
    /// Bytes of entries in the region.
    fill: u64,
    /// Bytes of the region handed to the device (written, or queued for the writer thread).
    submitted: u64,
    /// The buffer holds the region's bytes from here on (after recovery, earlier ones are
    /// only on the device).
    mem_from: u64,
    /// The fill that the region's last partial summary on the device describes (0: none).
    tail_fill: u64,
    records: Vec<SummaryRecord>,
    max_entry_seq: u64,
    next_entry_seq: u64,
}

impl AppendLog {
    /// The log at `start`, published to `head`.
    pub fn new(
        device: Arc<Device>,
        writeback: Arc<Writeback>,
        head: Arc<LogHead>,
        eviction_of: impl FnOnce(Vec<bool>) -> Eviction,
        start: LogStart,
    ) -> AppendLog {
        head.publish(start.region, start.lap);
        AppendLog {
            device,
            writeback,
            head,
            eviction: eviction_of(start.has_entries),
            region: start.region,
            lap: start.lap,
            buf: start.buf,
            fill: start.fill,
            submitted: start.fill,
            mem_from: start.mem_from,
            tail_fill: start.tail_fill,
            records: start.records,
            max_entry_seq: start.max_entry_seq,
            next_entry_seq: start.next_entry_seq.max(start.max_entry_seq + 1),
        }
    }

    pub fn position(&self) -> LogPosition {
        LogPosition {
            region: self.region,
            lap: self.lap,
            fill: self.fill,
            next_entry_seq: self.next_entry_seq,
        }
    }

    fn region_start(&self) -> u64 {
        self.device.geometry().region_offset(self.region)
    }

    fn fits(&self, entry_len: u64) -> bool {
        let g = self.device.geometry();
        self.fill + entry_len + g.tail_len(self.records.len() + 1) <= g.region_size
    }

    /// Whether the buffer holds the entry at `loc`; if so, copies as many bytes of it as
    /// `out` holds, from `rel` on, into `out`'s parts in order.
    pub fn copy_if_buffered(&self, loc: Location, rel: u64, out: &mut [&mut [u8]]) -> bool {
        let g = self.device.geometry();
        let unit = g.unit as u64;
        let upr = g.units_per_region();
        if g.region_of(loc.unit) != self.region {
            return false;
        }
        let off = (loc.unit as u64 % upr) * unit;
        let end = off + loc.len_units as u64 * unit;
        let len = parts_len(out);
        if off < self.mem_from || end > self.fill || rel + len as u64 > end - off {
            return false;
        }
        let start = (off + rel) as usize;
        scatter(&self.buf.as_slice()[start..start + len], out);
        true
    }

    /// Appends an entry to the active region (sealing and moving on first if it does not
    /// fit) and returns where it is, or what the caller must do without the lock before it
    /// tries again. `summary` is what the caller read for a previous `NeedSummary`. The
    /// caller has checked that the entry fits an empty region.
    pub fn append(
        &mut self,
        e: &NewEntry<'_>,
        summary: &mut Option<ReadSummary>,
    ) -> Result<Appended> {
        let (value_offset, entry_len) = self
            .device
            .geometry()
            .entry_layout(e.key.len(), e.value.len() as u64);
        if !self.fits(entry_len) {
            if let Some(wait) = self.move_on(summary, entry_len)? {
                return Ok(wait);
            }
        }
        let loc = self.write_entry(e, value_offset, entry_len);
        let aligned_fill = self.fill / WRITE_BEHIND_ALIGN * WRITE_BEHIND_ALIGN;
        if aligned_fill >= self.submitted + WRITE_BEHIND {
            self.submit_up_to(aligned_fill);
        }
        Ok(Appended::At(loc))
    }

    /// Seals the full region and moves to the next, if the next one's summary is at hand
    /// (where it is needed) and the spare buffer is back; else says what to wait for. Leaves
    /// room for an entry of `pending` bytes in the new region.
    fn move_on(
        &mut self,
        summary: &mut Option<ReadSummary>,
        pending: u64,
    ) -> Result<Option<Appended>> {
        let next = (self.region + 1) % self.device.geometry().region_count;
        let next_summary = match summary.take() {
            Some(s) if s.region == next => Some(s),
            _ if self.eviction.needs_summary(next) => return Ok(Some(Appended::NeedSummary(next))),
            _ => None,
        };
        match self.writeback.try_take_spare()? {
            Some(spare) => {
                self.seal_and_advance(spare, next_summary, pending);
                Ok(None)
            }
            None => {
                *summary = next_summary;
                Ok(Some(Appended::WaitForSpare))
            }
        }
    }

    /// Writes the entry into the buffer at the fill and records it in the region's summary.
    fn write_entry(&mut self, e: &NewEntry<'_>, value_offset: u64, entry_len: u64) -> Location {
        let g = *self.device.geometry();
        let header = EntryHeader {
            flags: e.flags,
            key_len: e.key.len() as u16,
            value_offset: value_offset as u32,
            value_len: e.value.len() as u64,
            entry_seq: self.next_entry_seq,
            lap: self.lap,
            expiry: e.expiry,
            created: e.created,
        };
        let dst = self.buf.range_mut(self.fill as usize, entry_len as usize);
        let header_len = header.header_len();
        header.encode(self.device.cache_id(), e.key, e.chunk_crcs, dst);
        let (voff, vend) = (value_offset as usize, value_offset as usize + e.value.len());
        dst[header_len..voff].fill(0);
        dst[voff..vend].copy_from_slice(e.value);
        dst[vend..].fill(0);

        let unit = g.unit as u64;
        let offset_units = (self.fill / unit) as u32;
        let len_units = (entry_len / unit) as u32;
        self.records.push(SummaryRecord {
            hash: e.hash,
            offset_units,
            len_units,
            tombstone: header.is_tombstone(),
        });
        self.fill += entry_len;
        self.max_entry_seq = self.next_entry_seq;
        self.next_entry_seq += 1;
        self.eviction.note_entry(self.region);
        Location::in_region(g.first_unit(self.region), offset_units, len_units)
    }

    /// Hands the region's entries not yet submitted to the writer thread.
    pub fn submit_pending(&mut self) {
        self.submit_up_to(self.fill);
    }

    fn submit_up_to(&mut self, end: u64) {
        self.writeback.write_behind(
            self.region,
            &self.buf,
            self.submitted as usize,
            end as usize,
        );
        self.submitted = end;
    }

    /// Queues a partial summary and trailer of the region as it is now, after its entries,
    /// so that recovery after a crash reads this summary instead of the entries. Skipped
    /// when the entries appended since the last one are fewer bytes than the summary: a
    /// flush after every small put would otherwise rewrite the whole summary each time
    /// (this bounds the extra writing to the entries' own size; recovery then reads those
    /// few entries).
    pub fn queue_partial_tail(&mut self) -> Result<()> {
        let summary_len = (self.records.len() * SUMMARY_RECORD_LEN) as u64;
        if self.records.is_empty() || self.fill - self.tail_fill < summary_len.max(1) {
            return Ok(());
        }
        let start = self.tail_start();
        let len = self.device.geometry().region_size as usize - start;
        let mut tail = AlignedBuf::new(len, self.device.buffer_align())?;
        let trailer = self.trailer(false);
        encode_tail_into(
            &self.device,
            &self.records,
            trailer,
            &mut tail.as_mut_slice()[..len],
        );
        self.writeback.write_copy(self.region, tail, start, len);
        self.tail_fill = self.fill;
        Ok(())
    }

    /// Makes every appended entry durable, with the log's lock held (for a cache whose every
    /// put is durable when it returns).
    pub fn flush(&mut self) -> Result<()> {
        let since = self.writeback.failures();
        self.submit_pending();
        self.writeback.wait_idle(since)?;
        self.device.sync()
    }

    /// Writes the pending entries, then the region's summary and trailer at its end: a
    /// partial summary, the index snapshot of this region that a clean close leaves.
    pub fn write_partial_tail(&mut self) -> Result<()> {
        let since = self.writeback.failures();
        self.submit_pending();
        self.writeback.wait_idle(since)?;
        let tail_start = self.encode_tail(false);
        self.device.write(
            &self.buf.as_slice()[tail_start..],
            self.region_start() + tail_start as u64,
        )
    }

    /// Where the region's summary and trailer start, for the entries it holds now.
    fn tail_start(&self) -> usize {
        let g = self.device.geometry();
        (g.region_size - g.tail_len(self.records.len())) as usize
    }

    /// The region's trailer as it stands (the summary's CRC is filled in by `encode_tail_into`).
    fn trailer(&self, sealed: bool) -> Trailer {
        Trailer {
            sealed,
            lap: self.lap,
            region: self.region,
            record_count: self.records.len() as u32,
            summary_crc: 0,
            fill: self.fill,
            max_entry_seq: self.max_entry_seq,
        }
    }

    /// Encodes the summary and trailer into the end of the buffer; returns where they start.
    /// Only the tail is borrowed: the writer thread may be reading entries below it.
    fn encode_tail(&mut self, sealed: bool) -> usize {
        let start = self.tail_start();
        let len = self.device.geometry().region_size as usize - start;
        let trailer = self.trailer(sealed);
        let tail = self.buf.range_mut(start, len);
        encode_tail_into(&self.device, &self.records, trailer, tail);
        start
    }

    /// Seals the full region and moves to the next, reclaiming it. The full buffer is
    /// written by the writer thread while puts go on into the spare one.
    fn seal_and_advance(&mut self, spare: AlignedBuf, next: Option<ReadSummary>, pending: u64) {
        let region_size = self.device.geometry().region_size as usize;
        let tail_start = self.encode_tail(true);
        let full = std::mem::replace(&mut self.buf, spare);
        let ranges = [
            (self.submitted as usize, self.fill as usize),
            (tail_start, region_size),
        ];
        self.writeback
            .seal(self.region, full, ranges, self.mem_from);
        let (summary, survivors) = next.map_or((None, Vec::new()), |r| (r.summary, r.survivors));
        let next = (self.region + 1) % self.device.geometry().region_count;
        let survivors = self
            .eviction
            .reclaim(next, self.lap + 1, summary, survivors);
        self.region = next;
        self.lap += 1;
        self.head.publish(next, self.lap);
        self.fill = 0;
        self.submitted = 0;
        self.mem_from = 0;
        self.tail_fill = 0;
        self.records.clear();
        self.max_entry_seq = 0;
        for survivor in &survivors {
            self.reinsert(survivor, pending);
        }
    }

    /// Writes a survivor of the reclaimed region again at the head of the log, as a new
    /// entry of this lap (its key, value, checksums, expiry and creation time unchanged), if
    /// it fits with room left for an entry of `pending` bytes.
    fn reinsert(&mut self, survivor: &Survivor, pending: u64) {
        let g = *self.device.geometry();
        let len = survivor.bytes.len() as u64;
        let room = g.region_size - g.tail_len(self.records.len() + 2);
        let h = match EntryHeader::decode(&survivor.bytes, self.device.cache_id(), len, g.unit) {
            Decoded::Valid(h) if self.fill + len + pending <= room => h,
            _ => return self.eviction.dropped(),
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
        let at = self.write_entry(&entry, h.value_offset as u64, len);
        self.eviction.reinserted(survivor, at);
    }
}

/// Encodes `records` and `trailer` (with the summary's CRC) into `tail`, a region's tail.
fn encode_tail_into(
    device: &Device,
    records: &[SummaryRecord],
    mut trailer: Trailer,
    tail: &mut [u8],
) {
    let cache_id = device.cache_id();
    let summary_len = records.len() * SUMMARY_RECORD_LEN;
    let trailer_at = tail.len() - device.geometry().unit as usize;
    for (i, r) in records.iter().enumerate() {
        r.encode(&mut tail[i * SUMMARY_RECORD_LEN..]);
    }
    tail[summary_len..trailer_at].fill(0);
    trailer.summary_crc = super::format::crc(cache_id, &[&tail[..summary_len]]);
    trailer.encode(cache_id, &mut tail[trailer_at..trailer_at + TRAILER_LEN]);
    tail[trailer_at + TRAILER_LEN..].fill(0);
}

#[cfg(test)]
mod tests {
    use super::super::testing::{self, MIB};
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
    fn a_full_region_is_sealed_and_the_log_moves_to_the_next_lap() {
        let dir = testing::scratch();
        let (_, c) = testing::create(dir.path(), "c", 8 * MIB);
        let start = c.engine.log.lock().position();
        assert_eq!((start.region, start.lap), (0, 1));
        // Regions are 1 MiB here: 12 values of 100 KB fill the first one.
        put_n(&c, "k", 12, 100_000);
        let now = c.engine.log.lock().position();
        assert_eq!((now.region, now.lap), (1, 2));
        assert_eq!(c.engine.head.lap_of(1), 2);
        assert_eq!(c.engine.head.lap_of(0), 1);
        c.flush().unwrap();
        let sealed = c.engine.device.read_summary(0).expect("region 0's summary");
        assert!(sealed.0.sealed && sealed.0.lap == 1 && sealed.0.region == 0);
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
        let at = c.engine.log.lock().position();
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
}

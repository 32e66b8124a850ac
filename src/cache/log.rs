//! The write side: the active region, filled in memory and written to the device in large
//! aligned writes when it fills or at a flush. When a region is full, its summary and trailer
//! go at its end (sealing it), and the next region, the oldest, is reclaimed whole (FIFO).

use super::format::{EntryHeader, SummaryRecord, Trailer, SUMMARY_RECORD_LEN, TRAILER_LEN};
use super::index::Location;
use super::{parts_len, scatter, Shared};
use crate::dio::AlignedBuf;
use crate::error::Result;
use std::sync::atomic::Ordering::Relaxed;

/// Appended bytes go to the writer thread in pieces of about this size, so the device works
/// while the region fills instead of waiting for it to be full.
const WRITE_BEHIND: u64 = 2 << 20;
/// Write-behind pieces end on this boundary: file systems take direct writes that are not
/// aligned to their block (4 KiB on ext4) through a slower, serialising path.
const WRITE_BEHIND_ALIGN: u64 = 1 << 20;

/// The region being written, and what the log needs to continue.
pub(crate) struct LogState {
    pub region: u32,
    /// Which lap of the log this region holds: one more than the region before it.
    pub region_seq: u64,
    pub buf: AlignedBuf,
    /// Bytes of entries in the region.
    pub fill: u64,
    /// Bytes of the region handed to the device (written, or queued for the writer thread).
    pub submitted: u64,
    /// The buffer holds the region's bytes from here on (after recovery, earlier ones are
    /// only on the device).
    pub mem_from: u64,
    /// The fill that the region's last partial summary on the device describes (0: none).
    pub tail_fill: u64,
    pub records: Vec<SummaryRecord>,
    pub max_entry_seq: u64,
    pub next_entry_seq: u64,
    /// Regions that may have entries in the index: reclaiming others costs nothing.
    pub region_has_entries: Vec<bool>,
}

/// A region's summary as read from the device (None: no intact one), read without the log's
/// lock for the reclaim that will need it.
pub(crate) struct ReadSummary {
    pub region: u32,
    pub summary: Option<(Trailer, Vec<SummaryRecord>)>,
}

/// What `try_append` did.
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

impl LogState {
    fn region_start(&self, sh: &Shared) -> u64 {
        sh.geometry.region_offset(self.region)
    }

    fn fits(&self, sh: &Shared, entry_len: u64) -> bool {
        self.fill + entry_len + sh.geometry.tail_len(self.records.len() + 1)
            <= sh.geometry.region_size
    }

    /// Whether the buffer holds the entry at `loc`; if so, copies as many bytes of it as
    /// `out` holds, from `rel` on, into `out`'s parts in order.
    pub fn copy_if_buffered(
        &self,
        sh: &Shared,
        loc: Location,
        rel: u64,
        out: &mut [&mut [u8]],
    ) -> bool {
        let unit = sh.geometry.unit as u64;
        let upr = sh.geometry.units_per_region();
        if loc.unit as u64 / upr != self.region as u64 {
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
    pub fn try_append(
        &mut self,
        sh: &Shared,
        e: &NewEntry<'_>,
        summary: &mut Option<ReadSummary>,
    ) -> Result<Appended> {
        let g = &sh.geometry;
        let (value_offset, entry_len) = g.entry_layout(e.key.len(), e.value.len() as u64);
        if !self.fits(sh, entry_len) {
            let next = (self.region + 1) % g.region_count;
            let needs_summary = self.region_has_entries[next as usize];
            let next_summary = match summary.take() {
                Some(s) if s.region == next => s.summary,
                _ if needs_summary => return Ok(Appended::NeedSummary(next)),
                _ => None,
            };
            match sh.writeback.try_take_spare()? {
                Some(spare) => self.seal_and_advance(sh, spare, next_summary),
                None => {
                    *summary = Some(ReadSummary {
                        region: next,
                        summary: next_summary,
                    });
                    return Ok(Appended::WaitForSpare);
                }
            }
        }
        let header = EntryHeader {
            flags: e.flags,
            key_len: e.key.len() as u16,
            value_offset: value_offset as u32,
            value_len: e.value.len() as u64,
            entry_seq: self.next_entry_seq,
            region_seq: self.region_seq,
            expiry: e.expiry,
            created: e.created,
        };
        let off = self.fill as usize;
        let dst = self.buf.range_mut(off, entry_len as usize);
        let header_len = header.header_len();
        header.encode(sh.cache_id, e.key, e.chunk_crcs, dst);
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
        self.region_has_entries[self.region as usize] = true;
        let aligned_fill = self.fill / WRITE_BEHIND_ALIGN * WRITE_BEHIND_ALIGN;
        if aligned_fill >= self.submitted + WRITE_BEHIND {
            self.submit_up_to(sh, aligned_fill);
        }
        Ok(Appended::At(Location {
            unit: (self.region as u64 * g.units_per_region()) as u32 + offset_units,
            len_units,
        }))
    }

    /// Hands the region's entries not yet submitted to the writer thread.
    pub fn submit_pending(&mut self, sh: &Shared) {
        self.submit_up_to(sh, self.fill);
    }

    fn submit_up_to(&mut self, sh: &Shared, end: u64) {
        sh.writeback.write_behind(
            sh,
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
    pub fn queue_partial_tail(&mut self, sh: &Shared) -> Result<()> {
        let summary_len = (self.records.len() * SUMMARY_RECORD_LEN) as u64;
        if self.records.is_empty() || self.fill - self.tail_fill < summary_len.max(1) {
            return Ok(());
        }
        let start = self.tail_start(sh);
        let len = sh.geometry.region_size as usize - start;
        let align = sh.dev.alignment().memory.max(sh.geometry.unit as usize);
        let mut tail = AlignedBuf::new(len, align)?;
        encode_tail_into(
            sh,
            &self.records,
            self.trailer(false),
            &mut tail.as_mut_slice()[..len],
        );
        sh.writeback.write_copy(sh, self.region, tail, start, len);
        self.tail_fill = self.fill;
        Ok(())
    }

    /// Makes every appended entry durable, with the log's lock held (DCACHE_OPEN_SYNC_WRITES).
    pub fn flush(&mut self, sh: &Shared) -> Result<()> {
        let since = sh.writeback.failures();
        self.submit_pending(sh);
        sh.writeback.wait_idle(since)?;
        sh.sync()
    }

    /// Writes the pending entries, then the region's summary and trailer at its end: a
    /// partial summary, the index snapshot of this region that a clean close leaves.
    pub fn write_partial_tail(&mut self, sh: &Shared) -> Result<()> {
        let since = sh.writeback.failures();
        self.submit_pending(sh);
        sh.writeback.wait_idle(since)?;
        let tail_start = self.encode_tail(sh, false);
        sh.write(
            &self.buf.as_slice()[tail_start..],
            self.region_start(sh) + tail_start as u64,
        )
    }

    /// Where the region's summary and trailer start, for the entries it holds now.
    fn tail_start(&self, sh: &Shared) -> usize {
        (sh.geometry.region_size - sh.geometry.tail_len(self.records.len())) as usize
    }

    /// The region's trailer as it stands (the summary's CRC is filled in by `encode_tail_into`).
    fn trailer(&self, sealed: bool) -> Trailer {
        Trailer {
            sealed,
            region_seq: self.region_seq,
            region: self.region,
            record_count: self.records.len() as u32,
            summary_crc: 0,
            fill: self.fill,
            max_entry_seq: self.max_entry_seq,
        }
    }

    /// Encodes the summary and trailer into the end of the buffer; returns where they start.
    /// Only the tail is borrowed: the writer thread may be reading entries below it.
    fn encode_tail(&mut self, sh: &Shared, sealed: bool) -> usize {
        let start = self.tail_start(sh);
        let len = sh.geometry.region_size as usize - start;
        let trailer = self.trailer(sealed);
        encode_tail_into(sh, &self.records, trailer, self.buf.range_mut(start, len));
        start
    }

    /// Seals the full region and moves to the next, reclaiming it. The full buffer is
    /// written by the writer thread while puts go on into the spare one.
    fn seal_and_advance(
        &mut self,
        sh: &Shared,
        spare: AlignedBuf,
        next_summary: Option<(Trailer, Vec<SummaryRecord>)>,
    ) {
        let tail_start = self.encode_tail(sh, true);
        let full = std::mem::replace(&mut self.buf, spare);
        let ranges = [
            (self.submitted as usize, self.fill as usize),
            (tail_start, sh.geometry.region_size as usize),
        ];
        sh.writeback
            .seal(sh, self.region, full, ranges, self.mem_from);
        let next = (self.region + 1) % sh.geometry.region_count;
        self.reclaim(sh, next, self.region_seq + 1, next_summary);
        self.region = next;
        self.region_seq += 1;
        sh.set_active_lap(next, self.region_seq);
        self.fill = 0;
        self.submitted = 0;
        self.mem_from = 0;
        self.tail_fill = 0;
        self.records.clear();
        self.max_entry_seq = 0;
    }

    /// Drops from the index every entry of `region` before it is overwritten by lap
    /// `new_seq`, using its summary (read by the caller) where it is intact and of the lap
    /// before, else a scan of the index.
    fn reclaim(
        &mut self,
        sh: &Shared,
        region: u32,
        new_seq: u64,
        summary: Option<(Trailer, Vec<SummaryRecord>)>,
    ) {
        if !self.region_has_entries[region as usize] {
            return;
        }
        let g = &sh.geometry;
        let base = region as u64 * g.units_per_region();
        let previous_lap = new_seq.checked_sub(g.region_count as u64);
        let mut evicted = 0u64;
        match summary {
            Some((t, records)) if t.sealed && Some(t.region_seq) == previous_lap => {
                for r in records.iter().filter(|r| !r.tombstone) {
                    let loc = Location {
                        unit: (base + r.offset_units as u64) as u32,
                        len_units: r.len_units,
                    };
                    if sh.index.remove_if_at(r.hash, loc) {
                        sh.used_bytes
                            .fetch_sub(loc.len_units as u64 * g.unit as u64, Relaxed);
                        evicted += 1;
                    }
                }
            }
            _ => {
                let end = base + g.units_per_region();
                for loc in sh
                    .index
                    .remove_where(|l| (l.unit as u64) >= base && (l.unit as u64) < end)
                {
                    sh.used_bytes
                        .fetch_sub(loc.len_units as u64 * g.unit as u64, Relaxed);
                    evicted += 1;
                }
            }
        }
        sh.stats.evictions.fetch_add(evicted, Relaxed);
        self.region_has_entries[region as usize] = false;
    }
}

/// Encodes `records` and `trailer` (with the summary's CRC) into `tail`, a region's tail.
fn encode_tail_into(sh: &Shared, records: &[SummaryRecord], mut trailer: Trailer, tail: &mut [u8]) {
    let summary_len = records.len() * SUMMARY_RECORD_LEN;
    let trailer_at = tail.len() - sh.geometry.unit as usize;
    for (i, r) in records.iter().enumerate() {
        r.encode(&mut tail[i * SUMMARY_RECORD_LEN..]);
    }
    tail[summary_len..trailer_at].fill(0);
    trailer.summary_crc = super::format::crc(sh.cache_id, &[&tail[..summary_len]]);
    trailer.encode(sh.cache_id, &mut tail[trailer_at..trailer_at + TRAILER_LEN]);
    tail[trailer_at + TRAILER_LEN..].fill(0);
}

//! A ring's active region: the buffer its entries are appended to, where the log stands in
//! it, and its summary so far. The region's bytes go to the writer thread in large aligned
//! pieces as it fills and at a flush; when it is full, its summary and trailer go at its end
//! (sealing it).

use super::device::Device;
use super::format::{
    EntryHeader, Ring, RingPosition, SummaryRecord, Trailer, SUMMARY_RECORD_LEN, TRAILER_LEN,
};
use super::index::Location;
use super::writeback::Writeback;
use super::{parts_len, scatter};
use crate::dio::AlignedBuf;
use crate::error::Result;

/// Appended bytes go to the writer thread in pieces of about this size, so the device works
/// while the region fills instead of waiting for it to be full.
const WRITE_BEHIND: u64 = 2 << 20;
/// Write-behind pieces end on this boundary: file systems take direct writes that are not
/// aligned to their block (4 KiB on ext4) through a slower, serialising path.
const WRITE_BEHIND_ALIGN: u64 = 1 << 20;

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

pub(crate) struct ActiveRegion {
    pub ring: Ring,
    pub region: u32,
    pub lap: u64,
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
}

impl ActiveRegion {
    /// A region entered for a new lap, empty.
    pub fn fresh(ring: Ring, region: u32, lap: u64, buf: AlignedBuf) -> ActiveRegion {
        ActiveRegion {
            ring,
            region,
            lap,
            buf,
            fill: 0,
            submitted: 0,
            mem_from: 0,
            tail_fill: 0,
            records: Vec::new(),
            max_entry_seq: 0,
        }
    }

    pub fn position(&self) -> RingPosition {
        RingPosition {
            region: self.region,
            lap: self.lap,
            fill: self.fill,
        }
    }

    /// Whether an entry of `entry_len` bytes fits, with room left for `reserve` more.
    pub fn fits(&self, device: &Device, entry_len: u64, reserve: u64) -> bool {
        let g = device.geometry();
        let records = self.records.len() + 1 + (reserve > 0) as usize;
        self.fill + entry_len + reserve + g.tail_len(records) <= g.region_size
    }

    /// Whether the buffer holds the entry at `loc`; if so, copies as many bytes of it as
    /// `out` holds, from `rel` on, into `out`'s parts in order.
    pub fn copy_if_buffered(
        &self,
        device: &Device,
        loc: Location,
        rel: u64,
        out: &mut [&mut [u8]],
    ) -> bool {
        let g = device.geometry();
        let unit = g.unit as u64;
        if g.region_of(loc.unit) != self.region {
            return false;
        }
        let off = (loc.unit as u64 % g.units_per_region()) * unit;
        let end = off + loc.len_units as u64 * unit;
        let len = parts_len(out);
        if off < self.mem_from || end > self.fill || rel + len as u64 > end - off {
            return false;
        }
        let start = (off + rel) as usize;
        scatter(&self.buf.as_slice()[start..start + len], out);
        true
    }

    /// Writes the entry into the buffer at the fill, as entry `entry_seq`, and records it in
    /// the region's summary. The caller has checked that it fits.
    pub fn write_entry(
        &mut self,
        device: &Device,
        e: &NewEntry<'_>,
        entry_seq: u64,
        layout: (u64, u64),
    ) -> Location {
        let g = *device.geometry();
        let (value_offset, entry_len) = layout;
        let header = EntryHeader {
            flags: e.flags,
            key_len: e.key.len() as u16,
            value_offset: value_offset as u32,
            value_len: e.value.len() as u64,
            entry_seq,
            lap: self.lap,
            expiry: e.expiry,
            created: e.created,
        };
        let dst = self.buf.range_mut(self.fill as usize, entry_len as usize);
        let header_len = header.header_len();
        header.encode(device.cache_id(), e.key, e.chunk_crcs, dst);
        let (voff, vend) = (value_offset as usize, value_offset as usize + e.value.len());
        dst[header_len..voff].fill(0);
        dst[voff..vend].copy_from_slice(e.value);
        dst[vend..].fill(0);

        let unit = g.unit as u64;
        let offset_units = (self.fill / unit) as u32;
        let len_units = (entry_len / unit) as u32;
        self.records.push(SummaryRecord {
            hash: e.hash,
            entry_seq,
            offset_units,
            len_units,
            tombstone: header.is_tombstone(),
        });
        self.fill += entry_len;
        self.max_entry_seq = entry_seq;
        Location::in_region(g.first_unit(self.region), offset_units, len_units)
    }

    /// Hands the bytes appended since the last piece to the writer thread once they make a
    /// large aligned piece.
    pub fn write_behind(&mut self, writeback: &Writeback) {
        let aligned_fill = self.fill / WRITE_BEHIND_ALIGN * WRITE_BEHIND_ALIGN;
        if aligned_fill >= self.submitted + WRITE_BEHIND {
            self.submit_up_to(writeback, aligned_fill);
        }
    }

    /// Hands the region's entries not yet submitted to the writer thread.
    pub fn submit_pending(&mut self, writeback: &Writeback) {
        self.submit_up_to(writeback, self.fill);
    }

    fn submit_up_to(&mut self, writeback: &Writeback, end: u64) {
        writeback.write_behind(
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
    pub fn queue_partial_tail(&mut self, device: &Device, writeback: &Writeback) -> Result<()> {
        let summary_len = (self.records.len() * SUMMARY_RECORD_LEN) as u64;
        if self.records.is_empty() || self.fill - self.tail_fill < summary_len.max(1) {
            return Ok(());
        }
        let start = self.tail_start(device);
        let len = device.geometry().region_size as usize - start;
        let mut tail = AlignedBuf::new(len, device.buffer_align())?;
        encode_tail_into(
            device,
            &self.records,
            self.trailer(false),
            &mut tail.as_mut_slice()[..len],
        );
        writeback.write_copy(self.region, tail, start, len);
        self.tail_fill = self.fill;
        Ok(())
    }

    /// Queues a trailer of the region's new lap, with no entries, so that recovery never
    /// takes the entries of the lap the region held before (which eviction dropped from the
    /// index, and which newer entries elsewhere may have replaced) for current ones, even
    /// when it finds none of this lap's entries on the device yet.
    /// It covers a whole file system block (the metadata size, 4 KiB at least): ext4 makes
    /// a direct write of part of a block wait for every direct write in flight.
    pub fn queue_entered_tail(&self, device: &Device, writeback: &Writeback) -> Result<()> {
        debug_assert!(self.records.is_empty());
        let g = device.geometry();
        let len = g.meta_size as usize;
        let start = g.region_size as usize - len;
        let mut tail = AlignedBuf::new(len, device.buffer_align())?;
        encode_tail_into(device, &[], self.trailer(false), tail.as_mut_slice());
        writeback.write_copy(self.region, tail, start, len);
        Ok(())
    }

    /// Writes the pending entries, then the region's summary and trailer at its end: a
    /// partial summary, the index snapshot of this region that a clean close leaves.
    pub fn write_partial_tail(&mut self, device: &Device, writeback: &Writeback) -> Result<()> {
        let since = writeback.failures();
        self.submit_pending(writeback);
        writeback.wait_idle(since)?;
        let tail_start = self.encode_tail(device, false);
        device.write_tail(self.region, &self.buf.as_slice()[tail_start..])
    }

    /// Where the region's summary and trailer start, for the entries it holds now.
    fn tail_start(&self, device: &Device) -> usize {
        let g = device.geometry();
        (g.region_size - g.tail_len(self.records.len())) as usize
    }

    /// The region's trailer as it stands (the summary's CRC is filled in by `encode_tail_into`).
    fn trailer(&self, sealed: bool) -> Trailer {
        Trailer {
            sealed,
            ring: self.ring,
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
    fn encode_tail(&mut self, device: &Device, sealed: bool) -> usize {
        let start = self.tail_start(device);
        let len = device.geometry().region_size as usize - start;
        let trailer = self.trailer(sealed);
        let tail = self.buf.range_mut(start, len);
        encode_tail_into(device, &self.records, trailer, tail);
        start
    }

    /// Seals the full region: hands its buffer, with the summary and trailer at its end, to
    /// the writer thread, which writes what is not on the device yet.
    pub fn seal(mut self, device: &Device, writeback: &Writeback) {
        let region_size = device.geometry().region_size as usize;
        let tail_start = self.encode_tail(device, true);
        let ranges = [
            (self.submitted as usize, self.fill as usize),
            (tail_start, region_size),
        ];
        writeback.seal(self.region, self.buf, ranges, self.mem_from);
    }
}

/// Encodes `records` and `trailer` (with the summary's CRC) into `tail`, a region's tail.
pub(crate) fn encode_tail_into(
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

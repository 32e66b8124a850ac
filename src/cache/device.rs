//! The cache's file or block device, seen as the format lays it out: superblocks, then regions.
//! Every byte the engine moves goes through here, so the I/O counters are kept here: region
//! writes in pieces that let reads through, reads, syncs, and each region's trailer and summary.

use super::format::{Geometry, SummaryRecord, Superblock, Trailer};
use super::refusal::WriteRefusal;
use super::stats::Counters;
use crate::dio::{AlignedBuf, DirectFile};
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

/// Region writes go to the device in pieces: large while no get waits for the device, for
/// throughput; small while gets are in flight, so that a get queues behind at most a small
/// write (at queue depth 1 a read waits for the whole write ahead of it). Multiples of every
/// alignment.
const WRITE_PIECE: usize = 1 << 20;
const WRITE_PIECE_UNDER_READS: usize = 128 << 10;

pub(crate) struct Device {
    file: DirectFile,
    geometry: Geometry,
    cache_id: u64,
    counters: Arc<Counters>,
    /// Gets waiting for the device: while there are any, writes go in small pieces.
    gets_in_flight: AtomicU32,
    /// Whether a get's read error in each region was logged.
    read_errors_logged: Vec<AtomicBool>,
    refusal: WriteRefusal,
}

impl Device {
    pub fn new(
        file: DirectFile,
        geometry: Geometry,
        cache_id: u64,
        counters: Arc<Counters>,
    ) -> Self {
        Device {
            file,
            geometry,
            cache_id,
            counters,
            gets_in_flight: AtomicU32::new(0),
            read_errors_logged: (0..geometry.region_count)
                .map(|_| AtomicBool::new(false))
                .collect(),
            refusal: WriteRefusal::default(),
        }
    }

    pub fn file(&self) -> &DirectFile {
        &self.file
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The cache's identity: the seed of every checksum and of the key hash.
    pub fn cache_id(&self) -> u64 {
        self.cache_id
    }

    /// The alignment of buffers that hold whole units for direct I/O.
    pub fn buffer_align(&self) -> usize {
        self.file
            .alignment()
            .memory
            .max(self.geometry.unit as usize)
    }

    fn count_io<T>(&self, r: Result<T>) -> Result<T> {
        if r.is_err() {
            self.counters.io_errors.fetch_add(1, Relaxed);
        }
        r
    }

    /// `count_io` for a write or a sync, whose outcome also starts or ends a refusal.
    fn count_write<T>(&self, r: Result<T>) -> Result<T> {
        match &r {
            Ok(_) => self.refusal.write_succeeded(),
            Err(e) => self.refusal.write_failed(e),
        }
        self.count_io(r)
    }

    /// Whether puts may go on: see `WriteRefusal::check`. The probe rewrites the superblock
    /// `sb` (its older copy, so that a torn write leaves the current one whole).
    pub fn accepts_writes(&self, sb: &parking_lot::Mutex<Superblock>) -> Result<()> {
        self.refusal.check(|| self.write_superblock(&mut sb.lock()))
    }

    /// Writes in pieces (see WRITE_PIECE): one 32 MiB write would hold every get behind it
    /// for its whole duration.
    pub fn write(&self, data: &[u8], offset: u64) -> Result<()> {
        let mut done = 0;
        while done < data.len() {
            let piece = if self.gets_in_flight.load(Relaxed) > 0 {
                WRITE_PIECE_UNDER_READS
            } else {
                WRITE_PIECE
            };
            let n = piece.min(data.len() - done);
            self.count_write(
                self.file
                    .pwrite(&data[done..done + n], offset + done as u64),
            )?;
            self.counters.bytes_written.fetch_add(n as u64, Relaxed);
            done += n;
        }
        Ok(())
    }

    pub fn read(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        self.read_parts(&mut [buf], offset)
    }

    /// Reads consecutive bytes into `parts`, in one system call where the I/O layer can.
    pub fn read_parts(&self, parts: &mut [&mut [u8]], offset: u64) -> Result<usize> {
        let n = self.count_io(self.file.pread_vectored(parts, offset))?;
        self.counters.bytes_read.fetch_add(n as u64, Relaxed);
        Ok(n)
    }

    /// `read_parts` for a get: while it waits, region writes go in small pieces.
    /// A failed read is logged once per region (a bad block fails every get of it).
    pub fn read_parts_for_get(&self, parts: &mut [&mut [u8]], offset: u64) -> Result<usize> {
        self.gets_in_flight.fetch_add(1, Relaxed);
        let got = self.read_parts(parts, offset);
        self.gets_in_flight.fetch_sub(1, Relaxed);
        if let Err(e) = &got {
            self.log_get_error(offset, e);
        }
        got
    }

    fn log_get_error(&self, offset: u64, e: &Error) {
        let region = self.geometry.region_at(offset);
        let logged = self.read_errors_logged.get(region as usize);
        if logged.is_some_and(|l| !l.swap(true, Relaxed)) {
            crate::log::warn(&format!(
                "{e} (region {region}); gets of it fail with DCACHE_IO_ERROR, and later \
                 read errors in this region are counted in io_errors, not logged"
            ));
        }
    }

    /// A get's read made elsewhere (io_uring) of `len` bytes at `offset` ended with `res`
    /// (bytes read, or a negative errno): counted and logged as `read_parts_for_get` would.
    pub fn get_read_done(&self, offset: u64, len: usize, res: i32) -> Result<usize> {
        if res >= 0 {
            self.counters.bytes_read.fetch_add(res as u64, Relaxed);
            return Ok(res as usize);
        }
        let err = Error::os(
            format!(
                "io_uring read of {len} bytes of {} at offset {offset}",
                self.file.path().display()
            ),
            std::io::Error::from_raw_os_error(-res),
        );
        self.counters.io_errors.fetch_add(1, Relaxed);
        self.log_get_error(offset, &err);
        Err(err)
    }

    pub fn sync(&self) -> Result<()> {
        self.count_write(self.file.sync())
    }

    /// Writes the superblock with the next generation into the copy the previous one is not
    /// in, then syncs: a torn write leaves the other copy intact.
    /// The generation moves on only once the write is done: a write that failed is tried
    /// again on the same copy, never on the current one.
    pub fn write_superblock(&self, sb: &mut Superblock) -> Result<()> {
        let mut next = sb.clone();
        next.generation += 1;
        let meta = next.geometry.meta_size as usize;
        let mut buf = AlignedBuf::new(meta, meta)?;
        next.encode(buf.as_mut_slice());
        self.count_write(
            self.file
                .pwrite(buf.as_slice(), (next.generation % 2) * meta as u64),
        )?;
        self.sync()?;
        sb.generation = next.generation;
        Ok(())
    }

    /// Writes `tail`, a region's summary and trailer, at the region's end, then a copy at the
    /// end of the region's mirror slot (`Geometry::mirror_slot`) where it fits. The copy is
    /// a spare: a failure to write it is counted in `io_errors`, and fails nothing.
    pub fn write_tail(&self, region: u32, tail: &[u8]) -> Result<()> {
        let g = &self.geometry;
        let len = tail.len() as u64;
        self.write(tail, g.region_offset(region) + g.region_size - len)?;
        if let Some((end, _)) = g.mirror_slot(region).filter(|&(_, slot)| len <= slot) {
            if self.count_io(self.file.pwrite(tail, end - len)).is_ok() {
                self.counters.bytes_written.fetch_add(len, Relaxed);
            }
        }
        Ok(())
    }

    /// A region's trailer (its last unit), if it is intact and names this region; an error
    /// if it cannot be read.
    pub fn read_trailer(&self, region: u32) -> Result<Option<Trailer>> {
        self.read_trailer_ending(region, self.region_end(region))
    }

    /// The summary records `t`, the region's trailer, describes, if they are intact; an
    /// error if they cannot be read.
    pub fn read_summary_records(
        &self,
        region: u32,
        t: &Trailer,
    ) -> Result<Option<Vec<SummaryRecord>>> {
        self.read_summary_ending(self.region_end(region), t)
    }

    /// A region's trailer and summary, if both are intact and readable (a read error is
    /// counted in `io_errors`).
    pub fn read_summary(&self, region: u32) -> Option<(Trailer, Vec<SummaryRecord>)> {
        self.read_tail_ending(region, self.region_end(region))
    }

    /// A region's trailer and summary, from the region or, where that cannot be read, from
    /// the copy in its mirror slot (`Geometry::mirror_slot`): what a lost region held.
    pub fn read_summary_or_mirror(&self, region: u32) -> Option<(Trailer, Vec<SummaryRecord>)> {
        self.read_summary(region).or_else(|| {
            let (end, _) = self.geometry.mirror_slot(region)?;
            self.read_tail_ending(region, end)
        })
    }

    fn region_end(&self, region: u32) -> u64 {
        self.geometry.region_offset(region) + self.geometry.region_size
    }

    fn read_tail_ending(&self, region: u32, end: u64) -> Option<(Trailer, Vec<SummaryRecord>)> {
        let t = self.read_trailer_ending(region, end).ok().flatten()?;
        self.read_summary_ending(end, &t)
            .ok()
            .flatten()
            .map(|records| (t, records))
    }

    /// The trailer in the unit before `end`, if it is intact and names `region`.
    fn read_trailer_ending(&self, region: u32, end: u64) -> Result<Option<Trailer>> {
        let unit = self.geometry.unit as usize;
        let mut buf = AlignedBuf::new(unit, unit)?;
        self.read(buf.as_mut_slice(), end - unit as u64)?;
        let t = Trailer::decode(buf.as_slice(), self.cache_id, &self.geometry);
        Ok(t.filter(|t| t.region == region))
    }

    /// The summary records `t` describes, just before its trailer, which ends at `end`.
    fn read_summary_ending(&self, end: u64, t: &Trailer) -> Result<Option<Vec<SummaryRecord>>> {
        let g = &self.geometry;
        let unit = g.unit as usize;
        let tail = g.tail_len(t.record_count as usize);
        if tail > g.region_size || tail > end {
            return Ok(None);
        }
        let summary_units = tail as usize - unit;
        let mut buf = AlignedBuf::new(summary_units.max(unit), unit)?;
        if summary_units > 0 {
            self.read(&mut buf.as_mut_slice()[..summary_units], end - tail)?;
        }
        Ok(t.summary_records(buf.as_slice(), self.cache_id, g.unit))
    }
}

//! The cache's file or block device, seen as the format lays it out: superblocks, then regions.
//! Every byte the engine moves goes through here, so the I/O counters are kept here: region
//! writes in pieces that let reads through, reads, syncs, and each region's trailer and summary.

use super::format::{self, Geometry, SummaryRecord, Superblock, Trailer, SUMMARY_RECORD_LEN};
use super::stats::Counters;
use crate::dio::{AlignedBuf, DirectFile};
use crate::error::Result;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
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
    /// Unit tests make writes that touch these bytes of the device fail, as a bad block would.
    #[cfg(test)]
    failing: parking_lot::Mutex<Option<std::ops::Range<u64>>>,
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
            #[cfg(test)]
            failing: Default::default(),
        }
    }

    /// Makes every later write that touches `bytes` of the device fail with EIO (None: none).
    #[cfg(test)]
    pub fn fail_writes_in(&self, bytes: Option<std::ops::Range<u64>>) {
        *self.failing.lock() = bytes;
    }

    fn pwrite(&self, data: &[u8], offset: u64) -> Result<()> {
        #[cfg(test)]
        if let Some(bad) = self.failing.lock().clone() {
            if offset < bad.end && bad.start < offset + data.len() as u64 {
                return Err(crate::error::Error::os(
                    format!("write at {offset} (a failure made by the test)"),
                    std::io::Error::from_raw_os_error(libc::EIO),
                ));
            }
        }
        self.file.pwrite(data, offset)
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
            self.count_io(self.pwrite(&data[done..done + n], offset + done as u64))?;
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
    pub fn read_parts_for_get(&self, parts: &mut [&mut [u8]], offset: u64) -> Result<usize> {
        self.gets_in_flight.fetch_add(1, Relaxed);
        let got = self.read_parts(parts, offset);
        self.gets_in_flight.fetch_sub(1, Relaxed);
        got
    }

    pub fn sync(&self) -> Result<()> {
        self.count_io(self.file.sync())
    }

    /// Writes the superblock with the next generation into the copy the previous one is not
    /// in, then syncs: a torn write leaves the other copy intact.
    pub fn write_superblock(&self, sb: &mut Superblock) -> Result<()> {
        sb.generation += 1;
        let meta = sb.geometry.meta_size as usize;
        let mut buf = AlignedBuf::new(meta, meta)?;
        sb.encode(buf.as_mut_slice());
        self.count_io(self.pwrite(buf.as_slice(), (sb.generation % 2) * meta as u64))?;
        self.sync()
    }

    /// A region's trailer (its last unit), if it is intact and names this region.
    pub fn read_trailer(&self, region: u32) -> Option<Trailer> {
        let g = &self.geometry;
        let unit = g.unit as usize;
        let mut buf = AlignedBuf::new(unit, unit).ok()?;
        self.read(
            buf.as_mut_slice(),
            g.region_offset(region) + g.region_size - unit as u64,
        )
        .ok()?;
        Trailer::decode(buf.as_slice(), self.cache_id, g).filter(|t| t.region == region)
    }

    /// The summary records `t`, the region's trailer, describes, if they are intact.
    pub fn read_summary_records(&self, region: u32, t: &Trailer) -> Option<Vec<SummaryRecord>> {
        let g = &self.geometry;
        let unit = g.unit as usize;
        let summary_units = g.tail_len(t.record_count as usize) as usize - unit;
        let mut buf = AlignedBuf::new(summary_units, unit).ok()?;
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
    pub fn read_summary(&self, region: u32) -> Option<(Trailer, Vec<SummaryRecord>)> {
        let t = self.read_trailer(region)?;
        self.read_summary_records(region, &t)
            .map(|records| (t, records))
    }
}

//! Rebuilding the index at open. Each region's trailer says which lap of the log it holds;
//! the newest one locates the active region. Sealed regions give their summaries (a few
//! bytes per entry, not the values); the active region gives the partial summary the last
//! flush or clean close wrote, and after a crash its entries past that are read and checked.
//! Torn or corrupt entries are dropped and counted; nothing unverified enters the index.

use super::append::LogStart;
use super::device::Device;
use super::format::{
    key_hash, Decoded, EntryHeader, SummaryRecord, Superblock, Trailer, ENTRY_HEADER_LEN,
};
use super::index::{Index, Location};
use crate::dio::AlignedBuf;
use crate::error::Result;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// How the last open found the cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// This open formatted the cache (nothing was recovered).
    pub formatted: bool,
    /// The previous user closed the cache cleanly.
    pub was_clean: bool,
    /// Entries in the index after recovery.
    pub entries: u64,
    /// Bytes read from the device to rebuild the index.
    pub bytes_read: u64,
    /// Regions whose summary was missing or damaged and whose entries were read one by one.
    pub regions_scanned: u32,
    /// Entries dropped because they were torn or failed their checksums.
    pub entries_dropped: u64,
    pub micros: u64,
}

/// How much of a region a recovery scan reads at a time.
const SCAN_WINDOW: u64 = 1 << 20;

/// The entries a scan of a region found.
struct Scan {
    records: Vec<SummaryRecord>,
    fill: u64,
    max_entry_seq: u64,
}

/// Rebuilds `index` (empty) from the device; returns where the log stands and the report.
/// A read-only handle gets a log start whose buffer holds nothing.
pub(crate) fn recover(
    device: &Device,
    index: &Index,
    sb: &Superblock,
    read_only: bool,
) -> Result<(LogStart, RecoveryReport)> {
    let started = Instant::now();
    let read_before = device.counters().bytes_read.load(Relaxed);
    let mut recovery = Recovery {
        device,
        index,
        report: RecoveryReport {
            was_clean: sb.clean,
            ..Default::default()
        },
        next_entry_seq: sb.next_entry_seq,
        has_entries: vec![false; device.geometry().region_count as usize],
    };
    let n = device.geometry().region_count;
    let trailers: Vec<Option<Trailer>> = (0..n).map(|r| device.read_trailer(r)).collect();
    let (active, active_lap) = match trailers.iter().flatten().max_by_key(|t| t.lap) {
        None => (sb.active_region, sb.active_lap),
        Some(t) if t.sealed => ((t.region + 1) % n, t.lap + 1),
        Some(t) => (t.region, t.lap),
    };
    recovery.sealed_regions(&trailers, active, active_lap)?;
    let start = recovery.active_region(&trailers, sb, active, active_lap, read_only)?;
    let mut report = recovery.report;
    device
        .counters()
        .checksum_failures
        .fetch_add(report.entries_dropped, Relaxed);
    report.entries = index.len() as u64;
    report.bytes_read = device.counters().bytes_read.load(Relaxed) - read_before;
    report.micros = started.elapsed().as_micros() as u64;
    Ok((start, report))
}

/// What a recovery has found so far.
struct Recovery<'a> {
    device: &'a Device,
    index: &'a Index,
    report: RecoveryReport,
    next_entry_seq: u64,
    has_entries: Vec<bool>,
}

impl Recovery<'_> {
    /// The sealed regions of the live ring, oldest first: their summaries, or a scan of the
    /// entries where a summary is missing or damaged.
    fn sealed_regions(
        &mut self,
        trailers: &[Option<Trailer>],
        active: u32,
        active_lap: u64,
    ) -> Result<()> {
        let g = *self.device.geometry();
        let n = g.region_count;
        let mut scratch: Option<AlignedBuf> = None;
        for k in (1..n).rev() {
            let region = (active + n - k) % n;
            let Some(lap) = active_lap.checked_sub(k as u64).filter(|&s| s > 0) else {
                continue; // not written since the cache was formatted
            };
            let summary = match trailers[region as usize] {
                Some(t) if t.sealed && t.lap == lap => {
                    self.device.read_summary_records(region, &t).map(|r| (t, r))
                }
                _ => None,
            };
            let records = match summary {
                Some((t, records)) => {
                    self.next_entry_seq = self.next_entry_seq.max(t.max_entry_seq + 1);
                    records
                }
                None => {
                    self.report.regions_scanned += 1;
                    let buf = match &mut scratch {
                        Some(b) => b,
                        None => scratch
                            .insert(AlignedBuf::new(g.region_size as usize, g.unit as usize)?),
                    };
                    let scan = self.scan(region, lap, 0, buf.as_mut_slice())?;
                    self.next_entry_seq = self.next_entry_seq.max(scan.max_entry_seq + 1);
                    scan.records
                }
            };
            self.has_entries[region as usize] = !records.is_empty();
            self.apply(region, &records);
        }
        Ok(())
    }

    /// The active region: its partial summary, if a flush or clean close left one, then
    /// (unless that close is the last thing that happened) its entries past it, read into
    /// the region buffer, which then holds the region for gets and appends.
    fn active_region(
        &mut self,
        trailers: &[Option<Trailer>],
        sb: &Superblock,
        active: u32,
        active_lap: u64,
        read_only: bool,
    ) -> Result<LogStart> {
        let g = *self.device.geometry();
        let mut records = Vec::new();
        let mut tail_fill = 0;
        let mut max_entry_seq = 0;
        if let Some(t) = trailers[active as usize].filter(|t| !t.sealed && t.lap == active_lap) {
            if let Some(partial) = self.device.read_summary_records(active, &t) {
                records = partial;
                tail_fill = t.fill;
                max_entry_seq = t.max_entry_seq;
            }
        }
        let clean = sb.clean
            && sb.active_region == active
            && sb.active_lap == active_lap
            && sb.active_fill == tail_fill;
        let buf_len = if read_only {
            g.unit as usize
        } else {
            g.region_size as usize
        };
        let mut buf = AlignedBuf::new(buf_len, self.device.buffer_align())?;
        let mut fill = tail_fill;
        if !clean {
            self.report.regions_scanned += 1;
            // Read-only handles scan into a scratch buffer: theirs holds nothing.
            let mut scratch;
            let into = if read_only {
                scratch = AlignedBuf::new(g.region_size as usize, g.unit as usize)?;
                scratch.as_mut_slice()
            } else {
                buf.as_mut_slice()
            };
            let scan = self.scan(active, active_lap, tail_fill, into)?;
            records.extend(scan.records);
            fill = scan.fill;
            max_entry_seq = max_entry_seq.max(scan.max_entry_seq);
        }
        self.apply(active, &records);
        self.has_entries[active as usize] |= !records.is_empty();
        Ok(LogStart {
            region: active,
            lap: active_lap,
            buf,
            fill,
            // The buffer holds the region from where the scan started (nothing if clean, and
            // nothing on a read-only handle); before that, only the device has it.
            mem_from: if read_only {
                u64::MAX
            } else if clean {
                fill
            } else {
                tail_fill
            },
            tail_fill,
            records,
            max_entry_seq,
            next_entry_seq: self.next_entry_seq,
            has_entries: std::mem::take(&mut self.has_entries),
        })
    }

    /// Applies a region's summary to the index, in log order.
    fn apply(&self, region: u32, records: &[SummaryRecord]) {
        let base = self.device.geometry().first_unit(region);
        for r in records {
            if r.tombstone {
                self.index.remove(r.hash);
                continue;
            }
            let loc = Location::in_region(base, r.offset_units, r.len_units);
            self.index.insert(r.hash, loc);
        }
    }

    /// Reads the entries of `lap` of `region` from byte `from` into `buf` (a region-sized
    /// buffer, at the same offsets), verifying each; stops at the first header that is not
    /// one of them. The region is read in windows as the scan needs them, so that a region
    /// holding few entries past `from` costs few bytes.
    fn scan(&mut self, region: u32, lap: u64, from: u64, buf: &mut [u8]) -> Result<Scan> {
        let g = *self.device.geometry();
        let cache_id = self.device.cache_id();
        let unit = g.unit as u64;
        let end = g.region_size - unit;
        let mut window = ScanWindow {
            device: self.device,
            region_start: g.region_offset(region),
            end,
            read_end: from,
        };
        let mut scan = Scan {
            records: Vec::new(),
            fill: from,
            max_entry_seq: 0,
        };
        let mut pos = from;
        while pos < end {
            // A header's fixed part first: decode calls fewer bytes invalid, not incomplete.
            if window.read_end - pos < ENTRY_HEADER_LEN as u64 && !window.read_on(buf, 0)? {
                break;
            }
            let available = &buf[pos as usize..window.read_end as usize];
            let h = match EntryHeader::decode(available, cache_id, end - pos, g.unit) {
                Decoded::Valid(h) if h.lap == lap => h,
                Decoded::Incomplete if window.read_on(buf, 0)? => continue,
                _ => break,
            };
            let elen = h.entry_len(g.unit);
            let missing = (pos + elen).saturating_sub(window.read_end);
            if missing > 0 && (!window.read_on(buf, missing)? || pos + elen > window.read_end) {
                break; // the file ends inside the entry
            }
            let b = &buf[pos as usize..(pos + elen) as usize];
            let value = &b[h.value_offset as usize..(h.value_offset as u64 + h.value_len) as usize];
            if h.is_tombstone() || h.verify_chunks(b, 0, value) {
                scan.records.push(SummaryRecord {
                    hash: key_hash(cache_id, h.key(b)),
                    offset_units: (pos / unit) as u32,
                    len_units: (elen / unit) as u32,
                    tombstone: h.is_tombstone(),
                });
            } else {
                self.report.entries_dropped += 1;
            }
            scan.max_entry_seq = scan.max_entry_seq.max(h.entry_seq);
            pos += elen;
            scan.fill = pos;
        }
        Ok(scan)
    }
}

/// The part of a region a scan has read: `buf[from..read_end]` holds the region's bytes.
struct ScanWindow<'a> {
    device: &'a Device,
    region_start: u64,
    /// Where the region's entries must end (its trailer follows).
    end: u64,
    read_end: u64,
}

impl ScanWindow<'_> {
    /// Reads on, at least `want` bytes or a window (whichever is more, up to the end); false
    /// at the end of the region or the file.
    fn read_on(&mut self, buf: &mut [u8], want: u64) -> Result<bool> {
        let n = want.max(SCAN_WINDOW).min(self.end - self.read_end);
        if n == 0 {
            return Ok(false);
        }
        let at = self.read_end as usize;
        let got = self.device.read(
            &mut buf[at..at + n as usize],
            self.region_start + self.read_end,
        )?;
        self.read_end += got as u64;
        Ok(got > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{self, MIB};
    use crate::cache::Cache;

    fn present(c: &Cache, i: usize) -> bool {
        let key = format!("k{i}").into_bytes();
        match testing::get(c, &key) {
            Some(v) => {
                assert_eq!(
                    testing::version_of(&key, &v),
                    Some(1),
                    "k{i} came back wrong"
                );
                true
            }
            None => false,
        }
    }

    #[test]
    fn a_clean_reopen_reads_the_summaries_and_not_one_entry() {
        let dir = testing::scratch();
        let (path, c) = testing::create(dir.path(), "c", 8 * MIB);
        testing::put_range(&c, 0..30, 100_000);
        c.close().unwrap();
        drop(c);
        let c = testing::reopen(&path);
        let r = c.recovery();
        assert!(r.was_clean);
        assert_eq!(
            (r.regions_scanned, r.entries_dropped, r.entries),
            (0, 0, 30)
        );
        let g = c.engine.device.geometry();
        // Trailers and summaries: a unit or two a region.
        assert!(
            r.bytes_read <= 2 * g.region_count as u64 * g.unit as u64,
            "{r:?}"
        );
        assert!((0..30).all(|i| present(&c, i)));
    }

    #[test]
    fn a_torn_last_entry_is_dropped_and_the_entries_before_it_kept() {
        let dir = testing::scratch();
        let (path, c) = testing::create(dir.path(), "c", 64 * MIB);
        // Regions are 8 MiB; write-behind hands over the first 2 MiB, no summary is written:
        // a crash now leaves entries up to 2 MiB on the device and one torn across it.
        testing::put_range(&c, 0..25, 100_000);
        let wb = &c.engine.writeback;
        wb.wait_idle(wb.failures()).unwrap();
        let g = *c.engine.device.geometry();
        let on_device = |i: usize| {
            let l = c
                .engine
                .index
                .get(c.engine.hash(format!("k{i}").as_bytes()))
                .unwrap();
            (l.unit as u64 + l.len_units as u64) * g.unit as u64 <= 2 * MIB
        };
        let whole: Vec<usize> = (0..25).filter(|&i| on_device(i)).collect();
        assert!(whole.len() >= 19 && whole.len() < 25, "{whole:?}");
        let image = testing::crash_image(&path, dir.path(), "image");
        let after = testing::reopen(&image);
        let r = after.recovery();
        assert!(!r.was_clean);
        assert_eq!(
            r.entries_dropped, 1,
            "the entry across the boundary is torn: {r:?}"
        );
        assert_eq!(r.entries, whole.len() as u64);
        for i in 0..25 {
            assert_eq!(present(&after, i), whole.contains(&i), "k{i}");
        }
    }

    #[test]
    fn a_damaged_or_missing_summary_makes_recovery_read_the_region_instead() {
        for missing in [false, true] {
            let dir = testing::scratch();
            let (path, c) = testing::create(dir.path(), "c", 8 * MIB);
            testing::put_range(&c, 0..25, 100_000);
            c.close().unwrap();
            drop(c);
            let (g, trailer) = {
                let c = testing::reopen(&path);
                let t = c.engine.device.read_trailer(0).expect("region 0 is sealed");
                (*c.engine.device.geometry(), t)
            };
            let region_end = g.region_offset(0) + g.region_size;
            if missing {
                let trailer_at = region_end - g.unit as u64;
                testing::damage(&path, trailer_at, &vec![0u8; g.unit as usize]);
            } else {
                let summary_at = region_end - g.tail_len(trailer.record_count as usize);
                let byte = std::fs::read(&path).unwrap()[summary_at as usize];
                testing::damage(&path, summary_at, &[!byte]);
            }
            let c = testing::reopen(&path);
            let r = c.recovery();
            assert_eq!(r.regions_scanned, 1, "missing {missing}: {r:?}");
            assert_eq!(r.entries_dropped, 0);
            assert!((0..25).all(|i| present(&c, i)), "missing {missing}");
        }
    }
}

//! Rebuilding the index at open. Each region's trailer says which ring it is in and which lap
//! it holds. Sealed regions give their summaries (a few bytes per entry, not the values); a
//! ring's active region gives the partial summary the last flush or clean close wrote, and
//! after a crash its entries past that are read and checked. The entries of all regions are
//! applied in the order they were written (their sequence numbers), since the two rings
//! interleave. Torn or corrupt entries are dropped and counted; nothing unverified enters
//! the index.

use super::active::ActiveRegion;
use super::append::LogStart;
use super::device::Device;
use super::format::{
    header_len, key_hash, Decoded, EntryHeader, Geometry, Ring, RingPosition, SummaryRecord,
    Superblock, Trailer, ENTRY_HEADER_LEN,
};
use super::index::{Index, Location};
use super::rings::Rings;
use super::MAX_KEY_LEN;
use crate::dio::align::round_up;
use crate::dio::AlignedBuf;
use crate::error::{Error, ErrorKind, Result};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// How the last open found the cache.
///
/// ```
/// let path = std::env::temp_dir().join(format!("dcache-doc-recovery-{}", std::process::id()));
/// let opts = dcache::CacheOptions::new().create(true).capacity(16 << 20);
/// let cache = dcache::Cache::open(&path, &opts).unwrap();
/// assert!(cache.recovery().formatted);
/// cache.put(b"k", b"v", 0).unwrap();
/// drop(cache); // a clean close
/// let cache = dcache::Cache::open(&path, &opts).unwrap();
/// let r = cache.recovery();
/// assert!(r.was_clean && r.entries == 1 && r.regions_lost == 0);
/// # drop(cache); std::fs::remove_file(&path).unwrap();
/// ```
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
    /// Regions that could not be read (I/O errors): what they held is lost.
    pub regions_lost: u32,
    /// How long the open took to rebuild the index.
    pub micros: u64,
}

/// How much of a region a recovery scan reads at a time.
const SCAN_WINDOW: u64 = 1 << 20;

/// After a crash, entries and regions written after the last thing recovery could see may
/// still lie on the device, beyond where a scan stopped, with sequence numbers and laps above
/// any it saw. The log starts this far above what it saw, so that nothing it writes from now
/// on can be confused with them (more entries than that cannot be in flight: the writer
/// holds at most a few regions).
const ENTRY_SEQ_GAP: u64 = 1 << 32;
const LAP_GAP: u64 = 1 << 20;

/// The entries a scan of a region found.
struct Scan {
    records: Vec<SummaryRecord>,
    fill: u64,
}

/// What recovery found in one region.
struct Found {
    ring: Ring,
    lap: u64,
    records: Vec<SummaryRecord>,
    /// The region can go on as its ring's active region (a partial summary, or the entries
    /// a scan found after it): its fill, the fill its summary on the device describes, and
    /// where the buffer holds its bytes from (None: it is sealed, or was never closed).
    resume: Option<Resume>,
}

struct Resume {
    fill: u64,
    tail_fill: u64,
    /// The region's bytes from `mem_from` on, read by a scan (None: a clean close left
    /// nothing to read, or the handle is read-only).
    buf: Option<AlignedBuf>,
    mem_from: u64,
}

/// Rebuilds `index` (empty) from the device; returns where the log stands and the report.
/// A read-only handle gets a log start with no active region.
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
        report: RecoveryReport {
            was_clean: sb.clean,
            ..Default::default()
        },
        max_entry_seq: 0,
        scratch: None,
    };
    let n = device.geometry().region_count;
    let mut found = Vec::with_capacity(n as usize);
    for region in 0..n {
        let f = match recovery.region(region, sb, read_only) {
            Err(e) if e.kind() == ErrorKind::Io => recovery.lost(region, &e),
            other => other?,
        };
        found.push(f);
    }
    device
        .counters()
        .recovery_regions_lost
        .fetch_add(recovery.report.regions_lost as u64, Relaxed);
    let start = recovery.start(found, index, sb, read_only)?;
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
    report: RecoveryReport,
    max_entry_seq: u64,
    /// A region-sized buffer for scans that keep nothing.
    scratch: Option<AlignedBuf>,
}

impl Recovery<'_> {
    /// What `region` holds: the entries its summary lists (or a scan finds, where the
    /// summary is damaged), for the lap and ring its trailer names; or, with no trailer
    /// (or one that the region's first entry shows to be older than the lap the region was
    /// entered for last), the entries a scan from its start finds, counted in the main ring.
    fn region(&mut self, region: u32, sb: &Superblock, read_only: bool) -> Result<Option<Found>> {
        let trailer = self.device.read_trailer(region)?;
        let first = match (&trailer, sb.clean) {
            (Some(t), false) if t.fill > 0 => self.first_header(region)?,
            _ => None,
        };
        let (t, reentered) = match (trailer, first) {
            (Some(t), Some(h)) if h.lap > t.lap => (t, Some(h.lap)),
            (Some(t), _) => (t, None),
            (None, _) => match self.first_header(region)? {
                Some(h) => return self.orphan(region, h.lap),
                None => return Ok(None),
            },
        };
        if let Some(lap) = reentered {
            return self.orphan(region, lap);
        }
        // A summary that cannot be read is damaged as far as recovery goes: the entries
        // may still read.
        let summary = self.device.read_summary_records(region, &t).ok().flatten();
        let mut records = match summary {
            Some(records) => records,
            None if t.sealed => {
                self.report.regions_scanned += 1;
                let scan = self.scan_into_scratch(region, t.lap, 0, 0)?;
                scan.records
            }
            None => Vec::new(),
        };
        self.max_entry_seq = self.max_entry_seq.max(t.max_entry_seq);
        if t.sealed {
            return Ok(Some(Found {
                ring: t.ring,
                lap: t.lap,
                records,
                resume: None,
            }));
        }
        let resume = self.resume(region, &t, &mut records, sb, read_only)?;
        Ok(Some(Found {
            ring: t.ring,
            lap: t.lap,
            records,
            resume: Some(resume),
        }))
    }

    /// `region`, which could not be read (`e`): lost. If its summary still reads, there or
    /// in the mirror area, the keys it lists stay deleted, as tombstones, so that no older
    /// value of theirs elsewhere comes back; otherwise its keys are unknown.
    fn lost(&mut self, region: u32, e: &Error) -> Option<Found> {
        self.report.regions_lost += 1;
        let found = self
            .device
            .read_summary_or_mirror(region)
            .map(|(t, records)| {
                self.max_entry_seq = self.max_entry_seq.max(t.max_entry_seq);
                let tombstones = records
                    .into_iter()
                    .map(SummaryRecord::as_tombstone)
                    .collect();
                Found {
                    ring: t.ring,
                    lap: t.lap,
                    records: tombstones,
                    resume: None,
                }
            });
        crate::log::warn(&format!(
            "region {region} could not be read at open ({e}): its entries are lost{}",
            match found {
                Some(_) => " (its summary read: none of its keys brings back an older value)",
                None => " (no copy of its summary could be read either)",
            }
        ));
        found
    }

    /// A region with a partial summary (`records`), written by a flush or a clean close of
    /// its ring's active region: unless that clean close is the last thing that happened,
    /// the entries after the summary are read (into the buffer the region goes on in, on a
    /// writable handle) and added to `records`.
    fn resume(
        &mut self,
        region: u32,
        t: &Trailer,
        records: &mut Vec<SummaryRecord>,
        sb: &Superblock,
        read_only: bool,
    ) -> Result<Resume> {
        let tail_fill = if records.is_empty() { 0 } else { t.fill };
        let at = RingPosition {
            region,
            lap: t.lap,
            fill: tail_fill,
        };
        if sb.clean && sb.positions[t.ring as usize] == at {
            return Ok(Resume {
                fill: tail_fill,
                tail_fill,
                buf: None,
                mem_from: tail_fill,
            });
        }
        self.report.regions_scanned += 1;
        let last_seq = records.last().map_or(0, |r| r.entry_seq);
        let (scan, buf) = if read_only {
            let scan = self.scan_into_scratch(region, t.lap, tail_fill, last_seq)?;
            (scan, None)
        } else {
            let g = self.device.geometry();
            let mut buf = AlignedBuf::new(g.region_size as usize, self.device.buffer_align())?;
            let scan = self.scan(region, t.lap, tail_fill, last_seq, buf.as_mut_slice())?;
            (scan, Some(buf))
        };
        records.extend(scan.records);
        Ok(Resume {
            fill: scan.fill,
            tail_fill,
            buf,
            mem_from: tail_fill,
        })
    }

    /// A region without a trailer that holds entries of `lap` from its start: what a scan
    /// finds there, in the main ring.
    fn orphan(&mut self, region: u32, lap: u64) -> Result<Option<Found>> {
        self.report.regions_scanned += 1;
        let scan = self.scan_into_scratch(region, lap, 0, 0)?;
        Ok(Some(Found {
            ring: Ring::Main,
            lap,
            records: scan.records,
            resume: None,
        }))
    }

    /// The header of the entry at the start of `region`, if one verifies there.
    fn first_header(&mut self, region: u32) -> Result<Option<EntryHeader>> {
        let g = *self.device.geometry();
        let unit = g.unit as usize;
        let longest = round_up(header_len(MAX_KEY_LEN, g.region_size), unit) as usize;
        let mut buf = AlignedBuf::new(longest, unit)?;
        let mut have = 0;
        let mut want = unit;
        while want <= longest {
            let at = g.region_offset(region) + have as u64;
            have += self.device.read(&mut buf.as_mut_slice()[have..want], at)?;
            if have < want {
                return Ok(None);
            }
            match EntryHeader::decode(
                &buf.as_slice()[..have],
                self.device.cache_id(),
                g.region_size,
                g.unit,
            ) {
                Decoded::Valid(h) => return Ok(Some(h)),
                Decoded::Incomplete => want = (want * 2).min(longest).max(want + unit),
                Decoded::Invalid => return Ok(None),
            }
        }
        Ok(None)
    }

    fn scan_into_scratch(
        &mut self,
        region: u32,
        lap: u64,
        from: u64,
        after_seq: u64,
    ) -> Result<Scan> {
        let g = *self.device.geometry();
        let mut scratch = match self.scratch.take() {
            Some(b) => b,
            None => AlignedBuf::new(g.region_size as usize, g.unit as usize)?,
        };
        let scan = self.scan(region, lap, from, after_seq, scratch.as_mut_slice());
        self.scratch = Some(scratch);
        scan
    }

    /// Puts what the regions hold together: the index, with every region's entries applied
    /// in the order they were written (the two rings interleave), the rings, and each ring's
    /// active region.
    fn start(
        &mut self,
        mut found: Vec<Option<Found>>,
        index: &Index,
        sb: &Superblock,
        read_only: bool,
    ) -> Result<LogStart> {
        let g = *self.device.geometry();
        let max_seq = apply_in_order(&g, &found, index).max(self.max_entry_seq);
        let laps: Vec<u64> = found
            .iter()
            .map(|f| f.as_ref().map_or(0, |f| f.lap))
            .collect();
        let max_lap = laps.iter().copied().max().unwrap_or(0);
        let has_entries = found
            .iter()
            .map(|f| f.as_ref().is_some_and(|f| !f.records.is_empty()))
            .collect();
        let members = Ring::ALL.map(|ring| {
            let mut m: Vec<u32> = (0..g.region_count)
                .filter(|&r| found[r as usize].as_ref().is_some_and(|f| f.ring == ring))
                .collect();
            m.sort_by_key(|&r| laps[r as usize]);
            m
        });
        let mut active: [Option<ActiveRegion>; 2] = [None, None];
        if !read_only {
            for ring in Ring::ALL {
                let newest = members[ring as usize].last();
                let f = newest.and_then(|&r| found[r as usize].take());
                active[ring as usize] = f
                    .map(|f| self.resumed(ring, newest, f))
                    .transpose()?
                    .flatten();
            }
        }
        let has_active = active.each_ref().map(Option::is_some);
        let gap = |n: u64| if sb.clean { 0 } else { n };
        Ok(LogStart {
            active,
            rings: Rings::new(g.region_count, members, has_active),
            laps,
            has_entries,
            next_entry_seq: sb.next_entry_seq.max(max_seq + 1) + gap(ENTRY_SEQ_GAP),
            next_lap: sb.next_lap.max(max_lap + 1) + gap(LAP_GAP),
        })
    }

    /// `ring`'s newest region, `region`, as its active region, if it can go on.
    fn resumed(&self, ring: Ring, region: Option<&u32>, f: Found) -> Result<Option<ActiveRegion>> {
        let (Some(&region), Some(resume)) = (region, f.resume) else {
            return Ok(None);
        };
        let g = self.device.geometry();
        let buf = match resume.buf {
            Some(buf) => buf,
            None => AlignedBuf::new(g.region_size as usize, self.device.buffer_align())?,
        };
        Ok(Some(ActiveRegion {
            ring,
            region,
            lap: f.lap,
            buf,
            fill: resume.fill,
            submitted: resume.fill,
            mem_from: resume.mem_from,
            tail_fill: resume.tail_fill,
            max_entry_seq: f.records.last().map_or(0, |r| r.entry_seq),
            records: f.records,
        }))
    }

    /// Reads the entries of `lap` of `region` from byte `from` into `buf` (a region-sized
    /// buffer, at the same offsets), verifying each; stops at the first header that is not
    /// one of them, or whose sequence number is not above the one before (`after_seq`
    /// first): a scan never takes an older entry left past where the log wrote last. The
    /// region is read in windows as the scan needs them, so that a region holding few
    /// entries past `from` costs few bytes.
    fn scan(
        &mut self,
        region: u32,
        lap: u64,
        from: u64,
        after_seq: u64,
        buf: &mut [u8],
    ) -> Result<Scan> {
        let g = *self.device.geometry();
        let cache_id = self.device.cache_id();
        let unit = g.unit as u64;
        let end = g.region_size - unit;
        let mut window = ScanWindow::new(self.device, region, from);
        let mut scan = Scan {
            records: Vec::new(),
            fill: from,
        };
        let mut last_seq = after_seq;
        let mut pos = from;
        // The scan stopped for want of bytes (not at a header that is not an entry's).
        let mut starved = false;
        while pos < end {
            // A header's fixed part first: decode calls fewer bytes invalid, not incomplete.
            if window.read_end - pos < ENTRY_HEADER_LEN as u64 && !window.read_on(buf, 0)? {
                starved = true;
                break;
            }
            let available = &buf[pos as usize..window.read_end as usize];
            let h = match EntryHeader::decode(available, cache_id, end - pos, g.unit) {
                Decoded::Valid(h) if h.lap == lap && h.entry_seq > last_seq => h,
                Decoded::Incomplete if window.read_on(buf, 0)? => continue,
                Decoded::Incomplete => {
                    starved = true;
                    break;
                }
                _ => break,
            };
            let elen = h.entry_len(g.unit);
            let missing = (pos + elen).saturating_sub(window.read_end);
            if missing > 0 && (!window.read_on(buf, missing)? || pos + elen > window.read_end) {
                starved = true;
                break; // the file ends inside the entry
            }
            let b = &buf[pos as usize..(pos + elen) as usize];
            let value = &b[h.value_offset as usize..(h.value_offset as u64 + h.value_len) as usize];
            if h.is_tombstone() || h.verify_chunks(b, 0, value) {
                scan.records.push(SummaryRecord {
                    hash: key_hash(cache_id, h.key(b)),
                    entry_seq: h.entry_seq,
                    offset_units: (pos / unit) as u32,
                    len_units: (elen / unit) as u32,
                    tombstone: h.is_tombstone(),
                });
            } else {
                self.report.entries_dropped += 1;
            }
            self.max_entry_seq = self.max_entry_seq.max(h.entry_seq);
            last_seq = h.entry_seq;
            pos += elen;
            scan.fill = pos;
        }
        if let Some(e) = window.cut.filter(|_| starved) {
            self.cut_short(region, &e, &mut scan);
        }
        Ok(scan)
    }

    /// A scan of `region` stopped for want of bytes that `e` kept it from reading: what lay
    /// past them is lost. The keys of those entries that the region's latest summary (or
    /// its mirrored copy) lists stay deleted, as tombstones. A read error only past where
    /// the entries end (over a summary) loses nothing, and is not counted.
    fn cut_short(&mut self, region: u32, e: &Error, scan: &mut Scan) {
        self.report.regions_lost += 1;
        let last_seq = scan.records.last().map_or(0, |r| r.entry_seq);
        let summary = self.device.read_summary_or_mirror(region);
        let past = summary.map_or(Vec::new(), |(_, records)| records);
        let tombstones = past
            .into_iter()
            .filter(|r| r.entry_seq > last_seq)
            .map(SummaryRecord::as_tombstone);
        let found = scan.records.len();
        scan.records.extend(tombstones);
        crate::log::warn(&format!(
            "region {region}: a read error at open stopped the scan of its entries after \
             {found} of them ({e}): the entries past it are lost"
        ));
    }
}

/// Applies the entries of every region to `index` in sequence-number order (puts insert,
/// tombstones remove); returns the highest sequence number.
fn apply_in_order(g: &Geometry, found: &[Option<Found>], index: &Index) -> u64 {
    let mut all: Vec<(u32, SummaryRecord)> = found
        .iter()
        .enumerate()
        .filter_map(|(r, f)| Some((r as u32, f.as_ref()?)))
        .flat_map(|(r, f)| f.records.iter().map(move |rec| (r, *rec)))
        .collect();
    all.sort_by_key(|(_, rec)| rec.entry_seq);
    for (region, r) in &all {
        if r.tombstone {
            index.remove(r.hash);
        } else {
            let at = Location::in_region(g.first_unit(*region), r.offset_units, r.len_units);
            index.insert(r.hash, at);
        }
    }
    all.last().map_or(0, |(_, r)| r.entry_seq)
}

/// The part of a region a scan has read: `buf[from..read_end]` holds the region's bytes.
struct ScanWindow<'a> {
    device: &'a Device,
    region_start: u64,
    /// Where the region's entries must end (its trailer follows).
    end: u64,
    read_end: u64,
    /// The read error that stopped the scan short of bytes it wanted.
    cut: Option<Error>,
}

impl<'a> ScanWindow<'a> {
    /// A window on `region` that has read nothing yet, from `from` on.
    fn new(device: &'a Device, region: u32, from: u64) -> ScanWindow<'a> {
        let g = device.geometry();
        ScanWindow {
            device,
            region_start: g.region_offset(region),
            end: g.region_size - g.unit as u64,
            read_end: from,
            cut: None,
        }
    }

    /// Reads on, at least `want` bytes or a window (whichever is more, up to the end); false
    /// at the end of the region or the file. A window that cannot be read is read again a
    /// unit at a time, up to the first unit that cannot: the scan keeps what it read before
    /// (`cut` says it had to stop there).
    fn read_on(&mut self, buf: &mut [u8], want: u64) -> Result<bool> {
        let n = want.max(SCAN_WINDOW).min(self.end - self.read_end);
        if n == 0 {
            return Ok(false);
        }
        let at = self.read_end as usize;
        let got = match self.device.read(
            &mut buf[at..at + n as usize],
            self.region_start + self.read_end,
        ) {
            Err(e) if e.kind() == ErrorKind::Io => self.read_units(buf, n, e),
            other => other?,
        };
        self.read_end += got as u64;
        Ok(got > 0)
    }

    fn read_units(&mut self, buf: &mut [u8], n: u64, e: Error) -> usize {
        let unit = self.device.geometry().unit as u64;
        let mut got = 0;
        while got < n {
            let at = (self.read_end + got) as usize;
            let offset = self.region_start + self.read_end + got;
            match self.device.read(&mut buf[at..at + unit as usize], offset) {
                Ok(k) if k as u64 == unit => got += unit,
                Ok(k) => return got as usize + k,
                Err(_) => break,
            }
        }
        self.cut.get_or_insert(e);
        got as usize
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
                let t = c.engine.device.read_trailer(0).unwrap();
                let t = t.expect("region 0 is sealed");
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

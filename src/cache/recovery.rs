//! Rebuilding the index at open. Each region's trailer says which lap of the log it holds;
//! the newest one locates the active region. Sealed regions give their summaries (a few
//! bytes per entry, not the values); the active region gives the partial summary the last
//! flush or clean close wrote, and after a crash its entries past that are read and checked.
//! Torn or corrupt entries are dropped and counted; nothing unverified enters the index.

use super::format::{Decoded, EntryHeader, SummaryRecord, Superblock, Trailer, ENTRY_HEADER_LEN};
use super::index::Location;
use super::Shared;
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

struct Scan {
    records: Vec<SummaryRecord>,
    fill: u64,
    max_entry_seq: u64,
}

impl Shared {
    /// Applies a region's summary to the index, in log order.
    fn apply(&self, region: u32, records: &[SummaryRecord]) {
        let g = &self.geometry;
        let base = region as u64 * g.units_per_region();
        let unit = g.unit as u64;
        for r in records {
            if r.tombstone {
                if let Some(old) = self.index.remove(r.hash) {
                    self.used_bytes
                        .fetch_sub(old.len_units as u64 * unit, Relaxed);
                }
                continue;
            }
            let loc = Location {
                unit: (base + r.offset_units as u64) as u32,
                len_units: r.len_units,
            };
            self.used_bytes
                .fetch_add(loc.len_units as u64 * unit, Relaxed);
            if let Some(old) = self.index.insert(r.hash, loc) {
                self.used_bytes
                    .fetch_sub(old.len_units as u64 * unit, Relaxed);
            }
        }
    }

    /// Reads the entries of lap `seq` of `region` from byte `from` into `buf` (a region-sized
    /// buffer, at the same offsets), verifying each; stops at the first header that is not
    /// one of them. The region is read in windows as the scan needs them, so that a region
    /// holding few entries past `from` costs few bytes.
    fn scan(
        &self,
        region: u32,
        seq: u64,
        from: u64,
        buf: &mut [u8],
        dropped: &mut u64,
    ) -> Result<Scan> {
        let g = &self.geometry;
        let unit = g.unit as u64;
        let end = g.region_size - unit;
        let region_start = g.region_offset(region);
        // buf[from..read_end] holds the region's bytes.
        let mut read_end = from;
        let read_on = |buf: &mut [u8], read_end: &mut u64, want: u64| -> Result<bool> {
            let n = want.max(SCAN_WINDOW).min(end - *read_end);
            if n == 0 {
                return Ok(false);
            }
            let at = *read_end as usize;
            let got = self.read(&mut buf[at..at + n as usize], region_start + *read_end)?;
            *read_end += got as u64;
            Ok(got > 0)
        };
        let mut scan = Scan {
            records: Vec::new(),
            fill: from,
            max_entry_seq: 0,
        };
        let mut pos = from;
        while pos < end {
            // A header's fixed part first: decode calls fewer bytes invalid, not incomplete.
            if read_end - pos < ENTRY_HEADER_LEN as u64 && !read_on(buf, &mut read_end, 0)? {
                break;
            }
            let available = &buf[pos as usize..read_end as usize];
            let h = match EntryHeader::decode(available, self.cache_id, end - pos, g.unit) {
                Decoded::Valid(h) if h.region_seq == seq => h,
                Decoded::Incomplete if read_on(buf, &mut read_end, 0)? => continue,
                _ => break,
            };
            let elen = h.entry_len(g.unit);
            let missing = (pos + elen).saturating_sub(read_end);
            if missing > 0 && (!read_on(buf, &mut read_end, missing)? || pos + elen > read_end) {
                break; // the file ends inside the entry
            }
            let b = &buf[pos as usize..(pos + elen) as usize];
            let value = &b[h.value_offset as usize..(h.value_offset as u64 + h.value_len) as usize];
            if h.is_tombstone() || h.verify_chunks(b, 0, value) {
                scan.records.push(SummaryRecord {
                    hash: self.hash(h.key(b)),
                    offset_units: (pos / unit) as u32,
                    len_units: (elen / unit) as u32,
                    tombstone: h.is_tombstone(),
                });
            } else {
                *dropped += 1;
            }
            scan.max_entry_seq = scan.max_entry_seq.max(h.entry_seq);
            pos += elen;
            scan.fill = pos;
        }
        Ok(scan)
    }
}

pub(crate) fn recover(sh: &mut Shared, sb: &Superblock) -> Result<()> {
    let started = Instant::now();
    let read_before = sh.stats.bytes_read.load(Relaxed);
    let g = sh.geometry;
    let n = g.region_count;
    let trailers: Vec<Option<Trailer>> = (0..n).map(|r| sh.read_trailer(r)).collect();
    let (active, active_seq) = match trailers.iter().flatten().max_by_key(|t| t.region_seq) {
        None => (sb.active_region, sb.active_seq),
        Some(t) if t.sealed => ((t.region + 1) % n, t.region_seq + 1),
        Some(t) => (t.region, t.region_seq),
    };
    let mut report = RecoveryReport {
        was_clean: sb.clean,
        ..Default::default()
    };
    let mut next_entry_seq = sb.next_entry_seq;
    let mut has_entries = vec![false; n as usize];
    let mut scratch: Option<AlignedBuf> = None;

    // The sealed regions of the live ring, oldest first.
    for k in (1..n).rev() {
        let region = (active + n - k) % n;
        let Some(seq) = active_seq.checked_sub(k as u64).filter(|&s| s > 0) else {
            continue; // not written since the cache was formatted
        };
        let summary = match trailers[region as usize] {
            Some(t) if t.sealed && t.region_seq == seq => {
                sh.read_summary_records(region, &t).map(|r| (t, r))
            }
            _ => None,
        };
        let records = match summary {
            Some((t, records)) => {
                next_entry_seq = next_entry_seq.max(t.max_entry_seq + 1);
                records
            }
            None => {
                report.regions_scanned += 1;
                let buf = match &mut scratch {
                    Some(b) => b,
                    None => {
                        scratch.insert(AlignedBuf::new(g.region_size as usize, g.unit as usize)?)
                    }
                };
                let scan = sh.scan(
                    region,
                    seq,
                    0,
                    buf.as_mut_slice(),
                    &mut report.entries_dropped,
                )?;
                next_entry_seq = next_entry_seq.max(scan.max_entry_seq + 1);
                scan.records
            }
        };
        has_entries[region as usize] = !records.is_empty();
        sh.apply(region, &records);
    }
    drop(scratch);

    // The active region: its partial summary, if a clean close left one, then (unless that
    // close is the last thing that happened) its entries past it.
    let mut records = Vec::new();
    let mut from = 0;
    let mut max_entry_seq = 0;
    if let Some(t) = trailers[active as usize].filter(|t| !t.sealed && t.region_seq == active_seq) {
        if let Some(partial) = sh.read_summary_records(active, &t) {
            records = partial;
            from = t.fill;
            max_entry_seq = t.max_entry_seq;
        }
    }
    let tail_fill = from;
    let clean = sb.clean
        && sb.active_region == active
        && sb.active_seq == active_seq
        && sb.active_fill == from;
    let scan_start = from;
    if !clean {
        // Read into the region buffer, which then holds the region for gets and appends
        // (read-only handles have no region buffer and use a scratch one).
        report.regions_scanned += 1;
        let mut buf = if sh.read_only {
            AlignedBuf::new(g.region_size as usize, g.unit as usize)?
        } else {
            let placeholder = AlignedBuf::new(g.unit as usize, g.unit as usize)?;
            std::mem::replace(&mut sh.log.get_mut().buf, placeholder)
        };
        let scan = sh.scan(
            active,
            active_seq,
            from,
            buf.as_mut_slice(),
            &mut report.entries_dropped,
        );
        if !sh.read_only {
            sh.log.get_mut().buf = buf;
        }
        let scan = scan?;
        records.extend(scan.records);
        from = scan.fill;
        max_entry_seq = max_entry_seq.max(scan.max_entry_seq);
    }
    sh.set_active_lap(active, active_seq);
    let log = sh.log.get_mut();
    log.region = active;
    log.region_seq = active_seq;
    // The buffer holds the region from where the scan started; before that, only the device.
    log.mem_from = if clean { from } else { scan_start };
    sh.apply(active, &records);
    has_entries[active as usize] |= !records.is_empty();
    let log = sh.log.get_mut();
    log.fill = from;
    log.submitted = from;
    if sh.read_only {
        log.mem_from = u64::MAX;
    }
    log.records = records;
    log.tail_fill = tail_fill;
    log.max_entry_seq = max_entry_seq;
    log.next_entry_seq = next_entry_seq.max(max_entry_seq + 1);
    log.region_has_entries = has_entries;

    sh.stats
        .checksum_failures
        .fetch_add(report.entries_dropped, Relaxed);
    report.entries = sh.index.len() as u64;
    report.bytes_read = sh.stats.bytes_read.load(Relaxed) - read_before;
    report.micros = started.elapsed().as_micros() as u64;
    *sh.recovery.get_mut() = report;
    Ok(())
}

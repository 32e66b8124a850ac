//! Eviction. The log writes its regions in a circle; before it starts a new lap of a region,
//! the entries of the lap it overwrites leave the index, except those read since they were
//! written: those are written again at the head of the log (reinsertion, as CacheLib Navy
//! does), up to half a region, so that a hot set cannot make the cache rewrite itself at
//! every reclaim. A reinserted entry starts unread: it is kept again only if read again.

use super::format::{Geometry, SummaryRecord, Trailer};
use super::index::{Index, Location};
use super::stats::Counters;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// At most this share of a region is reinserted at a reclaim.
const REINSERT_SHARE: u64 = 2;

/// A region's summary as read from the device (None: no intact one), and its entries worth
/// keeping, read without the log's lock for the reclaim that will need them.
pub(crate) struct ReadSummary {
    pub region: u32,
    pub summary: Option<(Trailer, Vec<SummaryRecord>)>,
    pub survivors: Vec<Survivor>,
}

/// An entry of a region about to be reclaimed, read and verified, to be written again.
pub(crate) struct Survivor {
    pub hash: u64,
    /// Where it is: it is kept only if the index still points here when the log reclaims
    /// its region (a newer put or a delete of its key wins).
    pub at: Location,
    /// The whole entry as the device holds it.
    pub bytes: Vec<u8>,
}

/// The entries of `region` worth keeping: those its summary (of `lap`, the lap the region
/// holds now) lists, that the index still points at, and that were read since they were
/// written, in log order, up to a share of the region.
pub(crate) fn survivor_candidates(
    index: &Index,
    geometry: &Geometry,
    region: u32,
    lap: u32,
    summary: &Option<(Trailer, Vec<SummaryRecord>)>,
) -> Vec<(u64, Location)> {
    let Some((t, records)) = summary
        .as_ref()
        .filter(|(t, _)| t.sealed && t.lap as u32 == lap)
    else {
        return Vec::new();
    };
    debug_assert_eq!(t.region, region);
    let base = geometry.first_unit(region);
    let budget = geometry.units_per_region() / REINSERT_SHARE;
    let mut units = 0;
    let mut chosen = Vec::new();
    for r in records.iter().filter(|r| !r.tombstone) {
        let at = Location::in_region(base, r.offset_units, r.len_units);
        if index.reads_at(r.hash, at).is_some_and(|n| n > 0) && units + r.len_units as u64 <= budget
        {
            units += r.len_units as u64;
            chosen.push((r.hash, at));
        }
    }
    chosen
}

/// Drops the entries of the regions the log is about to overwrite. Owned by the log.
pub(crate) struct Eviction {
    index: Arc<Index>,
    counters: Arc<Counters>,
    geometry: Geometry,
    /// Regions that may have entries in the index: reclaiming the others costs nothing.
    has_entries: Vec<bool>,
}

impl Eviction {
    /// `has_entries`: the regions that may have entries in the index, one flag a region.
    pub fn new(
        index: Arc<Index>,
        counters: Arc<Counters>,
        geometry: Geometry,
        has_entries: Vec<bool>,
    ) -> Eviction {
        debug_assert_eq!(has_entries.len(), geometry.region_count as usize);
        Eviction {
            index,
            counters,
            geometry,
            has_entries,
        }
    }

    /// An entry was appended to `region`.
    pub fn note_entry(&mut self, region: u32) {
        self.has_entries[region as usize] = true;
    }

    /// Whether reclaiming `region` needs its summary (else it has nothing to drop).
    pub fn needs_summary(&self, region: u32) -> bool {
        self.has_entries[region as usize]
    }

    /// Drops from the index every entry of `region` before it is overwritten by `new_lap`,
    /// using its summary (read by the caller) where it is intact and of the lap before, else
    /// a scan of the index. Returns the survivors still current, which the caller writes
    /// again (`reinserted`) or gives up (`dropped`).
    pub fn reclaim(
        &mut self,
        region: u32,
        new_lap: u64,
        summary: Option<(Trailer, Vec<SummaryRecord>)>,
        survivors: Vec<Survivor>,
    ) -> Vec<Survivor> {
        if !self.has_entries[region as usize] {
            return Vec::new();
        }
        // Checked before the region's entries leave the index, under the log's lock, which
        // puts and deletes also hold: whatever changed the key since the survivor was read
        // is newer, and wins.
        let kept: Vec<Survivor> = survivors
            .into_iter()
            .filter(|s| self.index.get(s.hash) == Some(s.at))
            .collect();
        let g = &self.geometry;
        let base = g.first_unit(region);
        let previous_lap = new_lap.checked_sub(g.region_count as u64);
        let evicted = match summary {
            Some((t, records)) if t.sealed && Some(t.lap) == previous_lap => records
                .iter()
                .filter(|r| !r.tombstone)
                .filter(|r| {
                    let loc = Location::in_region(base, r.offset_units, r.len_units);
                    self.index.remove_if_at(r.hash, loc)
                })
                .count()
                as u64,
            _ => self.index.remove_in(base, base + g.units_per_region()),
        };
        self.counters
            .evictions
            .fetch_add(evicted.saturating_sub(kept.len() as u64), Relaxed);
        self.has_entries[region as usize] = false;
        kept
    }

    /// A survivor was written again at `at`.
    pub fn reinserted(&mut self, survivor: &Survivor, at: Location) {
        self.index.insert(survivor.hash, at);
        self.counters.reinserted.fetch_add(1, Relaxed);
        self.counters
            .reinserted_bytes
            .fetch_add(survivor.bytes.len() as u64, Relaxed);
    }

    /// A survivor did not fit: it is evicted after all.
    pub fn dropped(&mut self) {
        self.counters.evictions.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry() -> Geometry {
        Geometry::plan(8 << 20, 512).unwrap()
    }

    fn at(g: &Geometry, region: u32, offset_units: u32) -> Location {
        Location {
            unit: g.first_unit(region) as u32 + offset_units,
            len_units: 2,
        }
    }

    fn record(hash: u64, offset_units: u32) -> SummaryRecord {
        SummaryRecord {
            hash,
            offset_units,
            len_units: 2,
            tombstone: false,
        }
    }

    fn sealed(region: u32, lap: u64, records: &[SummaryRecord]) -> Trailer {
        Trailer {
            sealed: true,
            lap,
            region,
            record_count: records.len() as u32,
            summary_crc: 0,
            fill: 0,
            max_entry_seq: 0,
        }
    }

    fn setup() -> (Geometry, Arc<Index>, Arc<Counters>, Eviction) {
        let g = geometry();
        let index = Arc::new(Index::new(g.unit));
        let counters = Arc::new(Counters::default());
        let mut has = vec![false; g.region_count as usize];
        has[1] = true;
        let eviction = Eviction::new(index.clone(), counters.clone(), g, has);
        (g, index, counters, eviction)
    }

    #[test]
    fn reclaim_drops_what_the_summary_of_the_lap_before_lists_and_nothing_newer() {
        let (g, index, counters, mut eviction) = setup();
        index.insert(10, at(&g, 1, 0));
        index.insert(11, at(&g, 1, 2));
        // Key 12 was written in region 1, then put again in region 2: it stays.
        index.insert(12, at(&g, 2, 0));
        // Key 13 is elsewhere and not in the summary: it stays too.
        index.insert(13, at(&g, 3, 0));
        let records = [record(10, 0), record(11, 2), record(12, 4)];
        let n = g.region_count as u64;
        let new_lap = 1 + n + 1;
        // Keys 11 and 12 were read: survivors. 12 was put again since: the newer put wins.
        let survivor = |hash, offset| Survivor {
            hash,
            at: at(&g, 1, offset),
            bytes: vec![0; 1024],
        };
        let kept = eviction.reclaim(
            1,
            new_lap,
            Some((sealed(1, new_lap - n, &records), records.to_vec())),
            vec![survivor(11, 2), survivor(12, 4)],
        );
        assert_eq!(kept.iter().map(|s| s.hash).collect::<Vec<_>>(), [11]);
        assert_eq!(index.get(10), None);
        assert_eq!(index.get(11), None, "the caller writes the survivor again");
        assert_eq!(index.get(12), Some(at(&g, 2, 0)));
        assert_eq!(index.get(13), Some(at(&g, 3, 0)));
        assert_eq!(
            counters.evictions.load(Relaxed),
            1,
            "a survivor is not evicted"
        );
        eviction.reinserted(&kept[0], at(&g, 1, 40));
        assert_eq!(index.get(11), Some(at(&g, 1, 40)));
        assert_eq!(counters.reinserted.load(Relaxed), 1);
        assert_eq!(counters.reinserted_bytes.load(Relaxed), 1024);
        assert!(!eviction.needs_summary(1), "the region is empty now");
    }

    #[test]
    fn reclaim_scans_the_index_when_the_summary_is_missing_or_of_another_lap() {
        for stale in [false, true] {
            let (g, index, counters, mut eviction) = setup();
            index.insert(10, at(&g, 1, 0));
            index.insert(11, at(&g, 1, 8));
            index.insert(13, at(&g, 3, 0));
            let n = g.region_count as u64;
            let new_lap = 1 + 2 * n + 1;
            // A summary two laps old lists only key 10: trusting it would leave key 11.
            let records = [record(10, 0)];
            let summary = stale.then(|| (sealed(1, new_lap - 2 * n, &records), records.to_vec()));
            eviction.reclaim(1, new_lap, summary, Vec::new());
            assert_eq!((index.get(10), index.get(11)), (None, None));
            assert_eq!(index.get(13), Some(at(&g, 3, 0)));
            assert_eq!(counters.evictions.load(Relaxed), 2);
        }
    }

    #[test]
    fn reclaiming_a_region_without_entries_reads_nothing_and_drops_nothing() {
        let (g, index, counters, mut eviction) = setup();
        index.insert(20, at(&g, 4, 0));
        assert!(
            !eviction.needs_summary(4),
            "no entry was appended to region 4 this session"
        );
        eviction.reclaim(4, 10, None, Vec::new());
        assert_eq!(index.get(20), Some(at(&g, 4, 0)));
        assert_eq!(counters.evictions.load(Relaxed), 0);
        eviction.note_entry(4);
        assert!(eviction.needs_summary(4));
    }
}

/// Reinsertion through the whole engine: what is kept, what wins over a survivor, and what
/// a reopen finds.
#[cfg(test)]
mod reinsertion_tests {
    use super::super::append::{Appended, NewEntry};
    use super::super::testing::{self, MIB};
    use crate::cache::Cache;
    use std::collections::HashMap;
    use std::sync::atomic::Ordering::Relaxed;

    fn put(c: &Cache, key: &str, version: u64, len: usize) {
        c.put(
            key.as_bytes(),
            &testing::value(key.as_bytes(), version, len),
            0,
        )
        .unwrap();
    }

    fn version(c: &Cache, key: &str) -> Option<u64> {
        testing::get(c, key.as_bytes())
            .map(|v| testing::version_of(key.as_bytes(), &v).expect("a value with wrong bytes"))
    }

    fn region_of(c: &Cache, key: &str) -> u32 {
        let loc = c.engine.index.get(c.engine.hash(key.as_bytes())).unwrap();
        c.engine.device.geometry().region_of(loc.unit)
    }

    #[test]
    fn an_entry_read_since_written_is_kept_when_its_region_is_reclaimed() {
        let dir = testing::scratch();
        let (_, c) = testing::create(dir.path(), "c", 8 * MIB);
        for i in 0..10 {
            put(&c, &format!("k{i}"), 1, 100_000);
        }
        assert_eq!(version(&c, "k3"), Some(1), "read once: a survivor");
        assert_eq!(version(&c, "k5"), Some(1), "read once: a survivor");
        // Seven regions of ten values each: sixty-five more wrap the log past region 0.
        for i in 0..65 {
            put(&c, &format!("f{i}"), 1, 100_000);
        }
        let s = c.stats();
        let unit = c.engine.device.geometry().unit as u64;
        let entry_len = c.engine.index.get(c.engine.hash(b"k3")).unwrap().len_units as u64 * unit;
        assert_eq!(
            (s.reinserted, s.reinserted_bytes),
            (2, 2 * entry_len),
            "{s:?}"
        );
        assert!(c.contains(b"k3"), "kept");
        assert!(!c.contains(b"k4"), "not read: evicted");
        assert_eq!(version(&c, "k5"), Some(1), "kept, and read again");
        // Written again at the head of the log: region 0 again, in its second lap (a get
        // checks that the entry carries the lap its region holds).
        assert_eq!(region_of(&c, "k5"), 0);
        assert_eq!(c.engine.head.lap_of(0), 8);
        // k3 was not read since it was written again: the next reclaim drops it; k5 was.
        for i in 65..145 {
            put(&c, &format!("f{i}"), 1, 100_000);
        }
        assert!(!c.contains(b"k3"));
        assert_eq!(version(&c, "k5"), Some(1));
        assert_eq!(c.stats().reinserted, 3);
    }

    #[test]
    fn at_most_half_a_region_is_reinserted_at_a_reclaim() {
        let dir = testing::scratch();
        let (_, c) = testing::create(dir.path(), "c", 8 * MIB);
        for i in 0..10 {
            put(&c, &format!("k{i}"), 1, 100_000);
            version(&c, &format!("k{i}"));
        }
        for i in 0..12 {
            put(&c, &format!("f{i}"), 1, 100_000);
        }
        // Reclaims of regions whose every entry was read keep half a region each.
        for i in 12..70 {
            put(&c, &format!("f{i}"), 1, 100_000);
        }
        let s = c.stats();
        let region = c.engine.device.geometry().region_size;
        assert!(s.reinserted >= 1 && s.reinserted <= 5, "{s:?}");
        assert!(s.reinserted_bytes <= region / 2, "{s:?}");
        let kept = (0..10)
            .filter(|i| version(&c, &format!("k{i}")).is_some())
            .count();
        assert_eq!(kept as u64, s.reinserted);
    }

    /// Appends `entry` as a put does, but with `read` as what it read for the reclaim.
    fn append_with(c: &Cache, entry: &NewEntry<'_>, read: super::ReadSummary) {
        let mut summary = Some(read);
        loop {
            let mut log = c.engine.log.lock();
            match log.append(entry, &mut summary).unwrap() {
                Appended::At(loc) => {
                    c.engine.index.insert(entry.hash, loc);
                    return;
                }
                Appended::WaitForSpare => {
                    drop(log);
                    c.engine.writeback.wait_spare();
                }
                Appended::NeedSummary(_) => panic!("the summary was given"),
            }
        }
    }

    #[test]
    fn a_newer_put_or_a_delete_wins_over_a_survivor_read_before_it() {
        let dir = testing::scratch();
        let (path, c) = testing::create(dir.path(), "c", 8 * MIB);
        for i in 0..10 {
            put(&c, &format!("k{i}"), 1, 100_000);
            version(&c, &format!("k{i}"));
        }
        // Fill the other six regions, up to the end of the last one.
        let mut i = 0;
        while c.engine.log.lock().position().region != 6
            || c.engine.log.lock().position().fill < 700_000
        {
            put(&c, &format!("f{i}"), 1, 100_000);
            i += 1;
        }
        // The survivors of region 0, read as a put that moves on would read them...
        let read = c.engine.read_for_reclaim(0);
        let survivors: Vec<u64> = read.survivors.iter().map(|s| s.hash).collect();
        let h = |k: &str| c.engine.hash(k.as_bytes());
        assert!(
            survivors.contains(&h("k0")) && survivors.contains(&h("k1")),
            "{}",
            survivors.len()
        );
        // ...then, before that put takes the log's lock, k0 is put again and k1 deleted.
        put(&c, "k0", 2, 1000);
        c.delete(b"k1").unwrap();
        // The put moves on with what it read.
        let value = testing::value(b"big", 1, 600_000);
        let crcs: Vec<u32> = value.chunks(64 << 10).map(crc32c::crc32c).collect();
        let entry = NewEntry {
            hash: h("big"),
            key: b"big",
            value: &value,
            chunk_crcs: &crcs,
            flags: 0,
            expiry: 0,
            created: 0,
        };
        append_with(&c, &entry, read);
        assert_eq!(version(&c, "k0"), Some(2), "the newer put wins");
        assert_eq!(version(&c, "k1"), None, "the delete wins");
        assert!(
            c.engine.counters.reinserted.load(Relaxed) >= 1,
            "the others were kept"
        );
        let kept: Vec<usize> = (2..10)
            .filter(|i| version(&c, &format!("k{i}")) == Some(1))
            .collect();
        assert!(!kept.is_empty());
        c.close().unwrap();
        drop(c);
        let c = testing::reopen(&path);
        assert_eq!(version(&c, "k0"), Some(2), "after a reopen too");
        assert_eq!(version(&c, "k1"), None);
        for i in kept {
            assert_eq!(version(&c, &format!("k{i}")), Some(1));
        }
    }

    /// Writer `w` of the racing test: puts, deletes and gets of its own 40 keys; returns what
    /// it last did to each key (a version, or None: deleted).
    fn writer(c: &Cache, w: usize) -> HashMap<String, Option<u64>> {
        let mut model: HashMap<String, Option<u64>> = HashMap::new();
        let mut r = 0x9E37_79B9u64 + w as u64;
        for step in 0..3000u64 {
            r = r
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = format!("w{w}k{}", (r >> 33) % 40);
            match (r >> 20) % 8 {
                0 => {
                    let gone = c.delete(key.as_bytes()).is_ok();
                    if gone || model.contains_key(&key) {
                        model.insert(key, None);
                    }
                }
                1..=3 => {
                    put(c, &key, step + 1, 20_000 + (r % 90_000) as usize);
                    model.insert(key, Some(step + 1));
                }
                _ => {
                    let got = version(c, &key);
                    if let (Some(v), Some(Some(last))) = (got, model.get(&key)) {
                        assert!(v == *last, "{key}: read version {v}, last put {last}");
                    }
                    if let (Some(v), Some(None)) = (got, model.get(&key)) {
                        panic!("{key}: deleted, but version {v} came back");
                    }
                }
            }
        }
        model
    }

    /// Puts, deletes and gets from several threads on a small cache that reclaims a region
    /// every ten puts, with many reinsertions: every value read is whole and current or newer
    /// than what its writer last saw, and after a flush, a crash image and a clean reopen
    /// every key holds its last version or nothing: never an older one, never a deleted one.
    #[test]
    fn reinsertion_racing_puts_deletes_and_gets_never_brings_back_an_older_value() {
        let dir = testing::scratch();
        let (path, c) = testing::create(dir.path(), "c", 8 * MIB);
        let writers = 2;
        let models: Vec<HashMap<String, Option<u64>>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..writers)
                .map(|w| {
                    let c = &c;
                    s.spawn(move || writer(c, w))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let s = c.stats();
        assert!(s.reinserted > 10 && s.evictions > 100, "{s:?}");
        assert_eq!(s.checksum_failures, 0);
        let check = |c: &Cache, when: &str| {
            for model in &models {
                for (key, last) in model {
                    let got = version(c, key);
                    assert!(
                        got.is_none() || got == *last,
                        "{when}: {key}: {got:?}, last {last:?}"
                    );
                }
            }
        };
        check(&c, "before a reopen");
        c.flush().unwrap();
        let image = testing::crash_image(&path, dir.path(), "image");
        check(&testing::reopen(&image), "after a crash");
        c.close().unwrap();
        drop(c);
        check(&testing::reopen(&path), "after a clean reopen");
    }
}

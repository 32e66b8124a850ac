//! Eviction. The log writes its regions in a circle; before it starts a new lap of a region,
//! the entries of the lap it overwrites leave the index. Today the whole region goes (FIFO).

use super::format::{Geometry, SummaryRecord, Trailer};
use super::index::{Index, Location};
use super::stats::Counters;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// A region's summary as read from the device (None: no intact one), read without the log's
/// lock for the reclaim that will need it.
pub(crate) struct ReadSummary {
    pub region: u32,
    pub summary: Option<(Trailer, Vec<SummaryRecord>)>,
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
    /// a scan of the index.
    pub fn reclaim(
        &mut self,
        region: u32,
        new_lap: u64,
        summary: Option<(Trailer, Vec<SummaryRecord>)>,
    ) {
        if !self.has_entries[region as usize] {
            return;
        }
        let g = &self.geometry;
        let base = region as u64 * g.units_per_region();
        let previous_lap = new_lap.checked_sub(g.region_count as u64);
        let evicted = match summary {
            Some((t, records)) if t.sealed && Some(t.lap) == previous_lap => records
                .iter()
                .filter(|r| !r.tombstone)
                .filter(|r| {
                    let loc = Location {
                        unit: (base + r.offset_units as u64) as u32,
                        len_units: r.len_units,
                    };
                    self.index.remove_if_at(r.hash, loc)
                })
                .count()
                as u64,
            _ => self.index.remove_in(base, base + g.units_per_region()),
        };
        self.counters.evictions.fetch_add(evicted, Relaxed);
        self.has_entries[region as usize] = false;
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
            unit: (region as u64 * g.units_per_region()) as u32 + offset_units,
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
        eviction.reclaim(
            1,
            new_lap,
            Some((sealed(1, new_lap - n, &records), records.to_vec())),
        );
        assert_eq!(index.get(10), None);
        assert_eq!(index.get(11), None);
        assert_eq!(index.get(12), Some(at(&g, 2, 0)));
        assert_eq!(index.get(13), Some(at(&g, 3, 0)));
        assert_eq!(counters.evictions.load(Relaxed), 2);
        assert_eq!(index.used_bytes(), 2 * 2 * g.unit as u64);
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
            eviction.reclaim(1, new_lap, summary);
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
        eviction.reclaim(4, 10, None);
        assert_eq!(index.get(20), Some(at(&g, 4, 0)));
        assert_eq!(counters.evictions.load(Relaxed), 0);
        eviction.note_entry(4);
        assert!(eviction.needs_summary(4));
    }
}

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

//! Eviction: which region the log reclaims next, which of its entries to keep, and dropping
//! the rest from the index before the log overwrites them.
//!
//! The log writes two rings of regions (`rings`). A new key goes to the probationary ring;
//! when a probationary region is reclaimed, its entries read since they were written move to
//! the main ring and the others are dropped, their keys remembered by probation's `ghost`.
//! When a main region is reclaimed, its entries read since written are written again at the
//! main ring's head (reinsertion, as CacheLib Navy does), each keeping its reads less one, as
//! S3-FIFO's main queue does, so that an entry read often survives a few reclaims without a
//! read; the others are dropped, their keys remembered by main's ghost. A key put again
//! while probation's ghost remembers it goes straight to the main ring. A key back from
//! either ghost moves the split between the rings as ARC moves its own: back from
//! probation's ghost, it says probation was too short, and probation's target grows by the
//! key's size; back from main's ghost, that main was too small, and the target shrinks (the
//! key itself, read too seldom to stay in main, has a new trial in probation: sent to main,
//! such keys crowd out the ones read often, in the bench's Zipf traces). Each step is the
//! size times the ratio of the other ghost's keys to this one's (at least 1), and the target
//! stays between a twentieth and a fifth of the capacity (S3-FIFO's fixed tenth does well
//! on most traces; a wider range let Zipf traces drift away from it). A key
//! already in the cache is put again in the ring its entry is in: a newer entry of a key is
//! then always in the same ring as the older one, later, and the older one's region is
//! reclaimed first, so that recovery, which applies the log in order, never brings back an
//! entry a newer one replaced.

use super::budget::WriteBudget;
use super::format::{Geometry, Ring, SummaryRecord, Trailer};
use super::ghost::{Ghost, BYTES_PER_KEY, DECLINED_BYTES_PER_KEY};
use super::index::{Index, Location};
use super::rings::{Rings, Victim};
use super::stats::Counters;
use super::Admission;
use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// At most this share of a region is kept at a reclaim (numerator over 10).
const KEEP_TENTHS: u64 = 9;

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
    /// How often it was read, as the index counted when its region was reclaimed.
    pub reads: u32,
}

/// The entries of `region` worth keeping: those its summary (of `lap`, the lap the region
/// holds now) lists, that the index still points at, and that were read at least
/// `min_reads` times since they were written, in log order, up to a share of the region.
pub(crate) fn survivor_candidates(
    index: &Index,
    geometry: &Geometry,
    region: u32,
    lap: u64,
    summary: &Option<(Trailer, Vec<SummaryRecord>)>,
    min_reads: u32,
) -> Vec<(u64, Location)> {
    let Some((t, records)) = summary.as_ref().filter(|(t, _)| t.sealed && t.lap == lap) else {
        return Vec::new();
    };
    debug_assert_eq!(t.region, region);
    let base = geometry.first_unit(region);
    let budget = geometry.units_per_region() * KEEP_TENTHS / 10;
    let mut units = 0;
    let mut chosen = Vec::new();
    for r in records.iter().filter(|r| !r.tombstone) {
        let at = Location::in_region(base, r.offset_units, r.len_units);
        if index.reads_at(r.hash, at).is_some_and(|n| n >= min_reads)
            && units + r.len_units as u64 <= budget
        {
            units += r.len_units as u64;
            chosen.push((r.hash, at));
        }
    }
    chosen
}

/// Chooses regions to reclaim and drops their entries. Owned by the log.
pub(crate) struct Eviction {
    index: Arc<Index>,
    counters: Arc<Counters>,
    geometry: Geometry,
    /// Regions that may have entries in the index: reclaiming the others costs nothing.
    has_entries: Vec<bool>,
    rings: Rings,
    /// Keys dropped from each ring, by `Ring as usize`.
    ghosts: [Ghost; 2],
    /// Probation's target, in bytes (see the module's comment).
    probation_bytes: u64,
    /// Under `Admission::Filtered`: keys whose put was declined lately (see `admit`).
    declined: Option<Ghost>,
    /// Under `Admission::Filtered`, with a write budget.
    budget: Option<WriteBudget>,
    /// Under `Admission::Filtered`: the largest value stored at its first miss.
    small: SmallValues,
}

/// Values up to `largest` bytes are stored at their first miss: they cost few writes for a
/// hit each, and the object miss ratio counts them as much as large ones. `largest` moves,
/// once per sixteenth of the capacity offered to puts, to keep the bytes the device takes
/// near `WRITTEN_PERMILLE` of the bytes offered (the admission targets allow half).
struct SmallValues {
    largest: u64,
    offered: u64,
    /// Bytes of entries appended to the log, counted entry by entry: regions are written
    /// whole, so the device's own count moves in steps too coarse for a short window.
    appended: u64,
    /// `offered` and `appended` when the window began.
    window_offered: u64,
    window_appended: u64,
}

const WRITTEN_PERMILLE: (u64, u64) = (380, 440);
const SMALL_START: u64 = 16 << 10;

impl SmallValues {
    /// `len` bytes were offered.
    fn offered(&mut self, len: u64, capacity: u64) {
        self.offered += len;
        let offered = self.offered - self.window_offered;
        if offered < capacity / 16 {
            return;
        }
        let permille = (self.appended - self.window_appended) * 1000 / offered;
        if permille < WRITTEN_PERMILLE.0 {
            self.largest += self.largest / 8;
        } else if permille > WRITTEN_PERMILLE.1 {
            self.largest -= self.largest / 8;
        }
        self.largest = self.largest.clamp(512, 16 << 20);
        self.window_offered = self.offered;
        self.window_appended = self.appended;
    }
}

impl Eviction {
    /// `has_entries`: the regions that may have entries in the index, one flag a region.
    pub fn new(
        index: Arc<Index>,
        counters: Arc<Counters>,
        geometry: Geometry,
        has_entries: Vec<bool>,
        rings: Rings,
        admission: Admission,
        write_budget: u64,
    ) -> Eviction {
        debug_assert_eq!(has_entries.len(), geometry.region_count as usize);
        let ghosts = Ring::ALL.map(|_| Ghost::for_capacity(geometry.capacity, BYTES_PER_KEY));
        let ghost_bytes = ghosts.iter().map(Ghost::memory_bytes).sum();
        counters.ghost_bytes.store(ghost_bytes, Relaxed);
        let declined = (admission == Admission::Filtered)
            .then(|| Ghost::for_capacity(geometry.capacity, DECLINED_BYTES_PER_KEY));
        let admission_bytes = declined.as_ref().map_or(0, Ghost::memory_bytes);
        counters.admission_bytes.store(admission_bytes, Relaxed);
        let probation_bytes = rings.probation_target() as u64 * geometry.region_size;
        Eviction {
            index,
            counters,
            geometry,
            has_entries,
            rings,
            ghosts,
            probation_bytes,
            declined,
            budget: (admission == Admission::Filtered && write_budget > 0)
                .then(|| WriteBudget::new(write_budget)),
            small: SmallValues {
                largest: SMALL_START,
                offered: 0,
                appended: 0,
                window_offered: 0,
                window_appended: 0,
            },
        }
    }

    /// Whether a put of `hash` is stored. Without a filter, always. With one, a key that
    /// has been stored is: one the cache holds (a newer value), or one a ghost remembers
    /// (dropped lately, back soon); so is a value no larger than `small.largest`, which moves
    /// to keep the bytes appended near a fixed share of those offered; else a key is stored
    /// the second time it misses while the table of declined keys remembers the first
    /// (nginx's `proxy_cache_min_uses 2`, with a short window): the first time it is
    /// declined, and remembered. With a write budget, a put of `len` bytes that would pass
    /// it is declined whatever the key (the caller then deletes an older value).
    pub fn admit(&mut self, hash: u64, len: u64) -> bool {
        if !self.admit_len(len) {
            return false;
        }
        let Some(declined) = self.declined.as_mut() else {
            return true;
        };
        self.small.offered(len, self.geometry.capacity);
        let small = len > 0 && len <= self.small.largest;
        let stored_before =
            self.index.get(hash).is_some() || self.ghosts.iter().any(|g| g.holds(hash));
        if stored_before || small || declined.take(hash) {
            return true;
        }
        declined.remember(hash);
        self.counters.declined.fetch_add(1, Relaxed);
        false
    }

    /// The ring a put of `hash`, of `len` bytes, goes to: the ring of the key's entry if it
    /// has one (see the module's comment), else the main ring if probation's ghost remembers
    /// the key, else probation; a key either ghost remembers moves the split. The ghosts' answer is kept in `chosen` for an
    /// append that waits and tries again; the entry's ring is asked each time, since a
    /// reclaim while the append waited may have moved the entry to the main ring, or another
    /// put given the key one.
    pub fn place(&mut self, hash: u64, len: u64, chosen: &mut Option<Ring>) -> Ring {
        if let Some(loc) = self.index.get(hash) {
            let region = self.geometry.region_of(loc.unit);
            return self.rings.ring_of(region).unwrap_or(Ring::Main);
        }
        if let Some(ring) = *chosen {
            return ring;
        }
        let ring = match Ring::ALL
            .into_iter()
            .find(|&r| self.ghosts[r as usize].take(hash))
        {
            Some(dropped_from) => {
                self.counters.ghost_hits.fetch_add(1, Relaxed);
                self.move_split(dropped_from, len);
                match dropped_from {
                    Ring::Probation => Ring::Main,
                    // Read too seldom to stay in main: a trial in probation again.
                    Ring::Main => Ring::Probation,
                }
            }
            None => Ring::Probation,
        };
        *chosen.insert(ring)
    }

    /// A key of `len` bytes came back from the ghost of `dropped_from`: that ring was too
    /// small (see the module's comment).
    fn move_split(&mut self, dropped_from: Ring, len: u64) {
        let held = self.ghosts.each_ref().map(Ghost::len);
        let (this, other) = match dropped_from {
            Ring::Probation => (held[0], held[1]),
            Ring::Main => (held[1], held[0]),
        };
        let step = len * (other / this.max(1)).max(1);
        let capacity = self.geometry.capacity;
        let bytes = match dropped_from {
            Ring::Probation => self.probation_bytes.saturating_add(step),
            Ring::Main => self.probation_bytes.saturating_sub(step),
        };
        self.probation_bytes = bytes.clamp(capacity / 20, capacity / 5);
        let region = self.geometry.region_size;
        let regions = (self.probation_bytes + region / 2) / region;
        self.rings.set_probation_target(regions as usize);
    }

    #[cfg(test)]
    pub fn probation_target_bytes(&self) -> u64 {
        self.probation_bytes
    }

    /// The region the log reclaims next.
    pub fn victim(&self) -> Victim {
        self.rings.victim()
    }

    #[cfg(test)]
    pub fn ring_of(&self, region: u32) -> Option<Ring> {
        self.rings.ring_of(region)
    }

    /// An entry of `len` bytes was appended to `region`.
    pub fn note_entry(&mut self, region: u32, len: u64) {
        self.has_entries[region as usize] = true;
        self.small.appended += len;
        if let Some(budget) = self.budget.as_mut() {
            budget.spend(len);
        }
    }

    /// Whether a value of `len` bytes (at least 1: a writer does not know its length when
    /// it opens) stays within the write budget; counted as declined if not.
    pub fn admit_len(&mut self, len: u64) -> bool {
        let admitted = self.within_budget(len.max(1));
        if !admitted {
            self.counters.declined.fetch_add(1, Relaxed);
        }
        admitted
    }

    /// Whether `len` more bytes stay within the write budget (always, without one).
    pub fn within_budget(&self, len: u64) -> bool {
        self.budget.as_ref().is_none_or(|b| b.allows(len))
    }

    /// Whether reclaiming `region` needs its summary (else it has nothing to drop).
    pub fn needs_summary(&self, region: u32) -> bool {
        self.has_entries[region as usize]
    }

    /// Drops from the index every entry of `victim`'s region, which held `old_lap`, before
    /// it becomes `ring`'s active region, using its summary (read by the caller) where it is
    /// intact and of that lap, else a scan of the index. The probationary entries dropped
    /// go to the ghost. Returns the survivors still current, which the caller writes again
    /// (`reinserted`) or gives up (`dropped`), but for the entry of `replacing`, the key the
    /// caller is about to put: kept, it would be an older entry of the key in the main ring,
    /// which recovery would bring back once the new entry's region is reclaimed.
    pub fn reclaim(
        &mut self,
        victim: Victim,
        ring: Ring,
        old_lap: u64,
        summary: Option<(Trailer, Vec<SummaryRecord>)>,
        survivors: Vec<Survivor>,
        replacing: u64,
    ) -> Vec<Survivor> {
        self.rings.enter(victim, ring);
        let region = victim.region;
        if !self.has_entries[region as usize] {
            return Vec::new();
        }
        // Checked before the region's entries leave the index, under the log's lock, which
        // puts and deletes also hold: whatever changed the key since the survivor was read
        // is newer, and wins.
        let kept: Vec<Survivor> = survivors
            .into_iter()
            .filter(|s| s.hash != replacing)
            .filter_map(|mut s| {
                s.reads = self.index.reads_at(s.hash, s.at)?;
                Some(s)
            })
            .collect();
        let g = &self.geometry;
        let base = g.first_unit(region);
        let kept_hashes: HashSet<u64> = kept.iter().map(|s| s.hash).collect();
        let evicted = match summary {
            Some((t, records)) if t.sealed && t.lap == old_lap => {
                let mut n = 0;
                for r in records.iter().filter(|r| !r.tombstone) {
                    let loc = Location::in_region(base, r.offset_units, r.len_units);
                    if self.index.remove_if_at(r.hash, loc) {
                        n += 1;
                        if r.hash != replacing && !kept_hashes.contains(&r.hash) {
                            self.remember(victim.from, r.hash);
                        }
                    }
                }
                n
            }
            _ => self.index.remove_in(base, base + g.units_per_region()),
        };
        self.counters
            .evictions
            .fetch_add(evicted.saturating_sub(kept.len() as u64), Relaxed);
        self.has_entries[region as usize] = false;
        kept
    }

    /// A survivor of a region of ring `from` was written again at `at`, in the main ring.
    pub fn reinserted(&mut self, survivor: &Survivor, at: Location, from: Option<Ring>) {
        let reads = survivor.reads.saturating_sub(1);
        self.index.insert_with_reads(survivor.hash, at, reads);
        let bytes = survivor.bytes.len() as u64;
        let (count, sum) = match from {
            Some(Ring::Probation) => (&self.counters.promoted, &self.counters.promoted_bytes),
            _ => (&self.counters.reinserted, &self.counters.reinserted_bytes),
        };
        count.fetch_add(1, Relaxed);
        sum.fetch_add(bytes, Relaxed);
    }

    /// A survivor did not fit: it is evicted after all.
    pub fn dropped(&mut self, survivor: &Survivor, from: Option<Ring>) {
        self.counters.evictions.fetch_add(1, Relaxed);
        self.remember(from, survivor.hash);
    }

    /// `hash` was dropped from a region of ring `from` (None: a region unused since the
    /// format, which held nothing).
    fn remember(&mut self, from: Option<Ring>, hash: u64) {
        if let Some(ring) = from {
            self.ghosts[ring as usize].remember(hash);
        }
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
            entry_seq: offset_units as u64 + 1,
            offset_units,
            len_units: 2,
            tombstone: false,
        }
    }

    fn sealed(ring: Ring, region: u32, lap: u64, records: &[SummaryRecord]) -> Trailer {
        Trailer {
            sealed: true,
            ring,
            lap,
            region,
            record_count: records.len() as u32,
            summary_crc: 0,
            fill: 0,
            max_entry_seq: 0,
        }
    }

    /// Seven regions: probation holds 1 and 5 (active), main 2, 3, 4, 0 and 6 (active).
    fn setup() -> (Geometry, Arc<Index>, Arc<Counters>, Eviction) {
        let g = geometry();
        assert_eq!(g.region_count, 7);
        let index = Arc::new(Index::new(g.unit));
        let counters = Arc::new(Counters::default());
        let mut has = vec![false; g.region_count as usize];
        has[1] = true;
        has[2] = true;
        let rings = Rings::new(7, [vec![1, 5], vec![2, 3, 4, 0, 6]], [true, true]);
        let eviction = Eviction::new(
            index.clone(),
            counters.clone(),
            g,
            has,
            rings,
            Admission::All,
            0,
        );
        (g, index, counters, eviction)
    }

    fn survivor(g: &Geometry, region: u32, hash: u64, offset: u32) -> Survivor {
        Survivor {
            hash,
            at: at(g, region, offset),
            bytes: vec![0; 1024],
            reads: 0,
        }
    }

    #[test]
    fn a_probationary_reclaim_keeps_what_was_read_and_remembers_the_rest_in_the_ghost() {
        let (g, index, counters, mut eviction) = setup();
        index.insert(10, at(&g, 1, 0));
        index.insert(11, at(&g, 1, 2));
        index.mark_read(11, at(&g, 1, 2));
        index.mark_read(11, at(&g, 1, 2));
        // Key 12 was written in region 1, then put again in region 2: it stays.
        index.insert(12, at(&g, 2, 0));
        // Key 13 is elsewhere and not in the summary: it stays too.
        index.insert(13, at(&g, 3, 0));
        let records = [record(10, 0), record(11, 2), record(12, 4)];
        let victim = eviction.victim();
        assert_eq!(
            victim,
            Victim {
                region: 1,
                from: Some(Ring::Probation)
            }
        );
        // Keys 11 and 12 were read: survivors. 12 was put again since: the newer put wins.
        let kept = eviction.reclaim(
            victim,
            Ring::Main,
            5,
            Some((sealed(Ring::Probation, 1, 5, &records), records.to_vec())),
            vec![survivor(&g, 1, 11, 2), survivor(&g, 1, 12, 4)],
            0,
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
        eviction.reinserted(&kept[0], at(&g, 6, 40), victim.from);
        assert_eq!(index.get(11), Some(at(&g, 6, 40)));
        assert_eq!(
            index.reads_at(11, at(&g, 6, 40)),
            Some(1),
            "its reads less one"
        );
        assert_eq!(counters.promoted.load(Relaxed), 1);
        assert_eq!(counters.promoted_bytes.load(Relaxed), 1024);
        assert_eq!(counters.reinserted.load(Relaxed), 0);
        assert!(!eviction.needs_summary(1), "the region is empty now");
        // Key 10 was dropped from probation: put again, it goes to the main ring, once.
        assert_eq!(eviction.place(10, 1000, &mut None), Ring::Main);
        assert_eq!(counters.ghost_hits.load(Relaxed), 1);
        assert_eq!(eviction.place(10, 1000, &mut None), Ring::Probation);
        // A key in the cache goes to its entry's ring; a new one to probation.
        assert_eq!(eviction.place(13, 1000, &mut None), Ring::Main);
        assert_eq!(eviction.place(99, 1000, &mut None), Ring::Probation);
        index.insert(14, at(&g, 5, 0));
        assert_eq!(eviction.place(14, 1000, &mut None), Ring::Probation);
    }

    /// Keys dropped from either ring go to that ring's ghost; back, they move probation's
    /// target: up from probation's ghost (and to the main ring), down from main's (and to
    /// probation), by their size times the other ghost's keys over this one's, within a
    /// twentieth and a fifth of the capacity.
    #[test]
    fn a_key_back_from_a_ghost_goes_to_main_and_moves_the_split() {
        let (g, index, _, mut eviction) = setup();
        let mib = 1 << 20;
        // Hashes whose high bits differ: the ghosts place keys by those.
        let k = |n: u64| n << 32 | n;
        assert_eq!(g.region_size, mib);
        let start = eviction.probation_target_bytes();
        assert_eq!(start, mib, "a tenth of seven regions, rounded, is one");
        let main = [record(k(20), 0), record(k(21), 2)];
        let probation = [record(k(30), 0)];
        index.insert(k(20), at(&g, 2, 0));
        index.insert(k(21), at(&g, 2, 2));
        index.insert(k(30), at(&g, 1, 0));
        let victim = |region, from| Victim {
            region,
            from: Some(from),
        };
        let summary =
            |ring, region, r: &[SummaryRecord]| Some((sealed(ring, region, 3, r), r.to_vec()));
        eviction.reclaim(
            victim(2, Ring::Main),
            Ring::Main,
            3,
            summary(Ring::Main, 2, &main),
            Vec::new(),
            0,
        );
        eviction.reclaim(
            victim(1, Ring::Probation),
            Ring::Probation,
            3,
            summary(Ring::Probation, 1, &probation),
            Vec::new(),
            0,
        );
        // Back from probation's ghost: one key there, two in main's: the target grows by
        // twice the key's size.
        assert_eq!(eviction.place(k(30), mib / 4, &mut None), Ring::Main);
        assert_eq!(eviction.probation_target_bytes(), start + mib / 2);
        assert_eq!(eviction.rings.probation_target(), 2, "1.5 MiB, rounded");
        // Back from main's ghost: two keys there, none in probation's: by its size.
        assert_eq!(eviction.place(k(20), mib / 4, &mut None), Ring::Probation);
        assert_eq!(eviction.probation_target_bytes(), start + mib / 4);
        assert_eq!(
            eviction.place(k(20), mib, &mut None),
            Ring::Probation,
            "taken once"
        );
        // Within bounds.
        assert_eq!(eviction.place(k(21), 64 * mib, &mut None), Ring::Probation);
        assert_eq!(eviction.probation_target_bytes(), g.capacity / 20);
        assert_eq!(
            eviction.rings.probation_target(),
            1,
            "never below one region"
        );
    }

    #[test]
    fn a_main_reclaim_scans_the_index_when_the_summary_is_missing_or_of_another_lap() {
        for stale in [false, true] {
            let (g, index, counters, mut eviction) = setup();
            index.insert(10, at(&g, 2, 0));
            index.insert(11, at(&g, 2, 8));
            index.insert(13, at(&g, 3, 0));
            // A summary of an older lap lists only key 10: trusting it would leave key 11.
            let records = [record(10, 0)];
            let summary = stale.then(|| (sealed(Ring::Main, 2, 3, &records), records.to_vec()));
            let victim = Victim {
                region: 2,
                from: Some(Ring::Main),
            };
            eviction.reclaim(victim, Ring::Probation, 9, summary, Vec::new(), 0);
            assert_eq!((index.get(10), index.get(11)), (None, None));
            assert_eq!(index.get(13), Some(at(&g, 3, 0)));
            assert_eq!(counters.evictions.load(Relaxed), 2);
            assert_eq!(
                eviction.place(10, 1000, &mut None),
                Ring::Probation,
                "a scan of the index names no key to remember"
            );
            assert_eq!(eviction.place(13, 1000, &mut None), Ring::Main);
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
        let victim = Victim {
            region: 4,
            from: Some(Ring::Main),
        };
        eviction.reclaim(victim, Ring::Main, 10, None, Vec::new(), 0);
        assert_eq!(index.get(20), Some(at(&g, 4, 0)));
        assert_eq!(counters.evictions.load(Relaxed), 0);
        eviction.note_entry(4, 1024);
        assert!(eviction.needs_summary(4));
    }
}

/// Reinsertion through the whole engine: what is kept, what wins over a survivor, and what
/// a reopen finds.
#[cfg(test)]
mod reinsertion_tests {
    use super::super::active::NewEntry;
    use super::super::append::{Appended, Prepared};
    use super::super::format::Ring;
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

    fn ring_of(c: &Cache, key: &str) -> Option<Ring> {
        let loc = c.engine.index.get(c.engine.hash(key.as_bytes()))?;
        let region = c.engine.device.geometry().region_of(loc.unit);
        c.engine.log.lock().ring_of(region)
    }

    /// The active region of `ring` and its fill.
    fn active(c: &Cache, ring: Ring) -> (u32, u64) {
        let p = c.engine.log.lock().position().positions[ring as usize];
        (p.region, p.fill)
    }

    #[test]
    fn an_entry_read_in_probation_moves_to_the_main_ring_and_the_rest_to_the_ghost() {
        let dir = testing::scratch();
        let (_, c) = testing::create(dir.path(), "c", 8 * MIB);
        // Seven regions of ten values of 100 kB; probation takes the unused ones first.
        for i in 0..10 {
            put(&c, &format!("k{i}"), 1, 100_000);
        }
        assert_eq!(ring_of(&c, "k3"), Some(Ring::Probation));
        assert_eq!(version(&c, "k3"), Some(1), "read once: a survivor");
        assert_eq!(version(&c, "k5"), Some(1), "read once: a survivor");
        // Sixty-five more fill the other six regions and go on into region 0.
        for i in 0..65 {
            put(&c, &format!("f{i}"), 1, 100_000);
        }
        let s = c.stats();
        let unit = c.engine.device.geometry().unit as u64;
        let entry_len = c.engine.index.get(c.engine.hash(b"k3")).unwrap().len_units as u64 * unit;
        assert_eq!((s.promoted, s.promoted_bytes), (2, 2 * entry_len), "{s:?}");
        assert_eq!(s.reinserted, 0);
        assert_eq!(ring_of(&c, "k3"), Some(Ring::Main));
        assert!(!c.contains(b"k4"), "not read: dropped");
        assert_eq!(version(&c, "k5"), Some(1), "kept, and read again");
        // The main ring took region 0 for them, in a new lap (a get checks that the entry
        // carries the lap its region holds).
        assert_eq!(active(&c, Ring::Main).0, 0);
        assert_eq!(c.engine.head.lap_of(0), 8);
        // The keys dropped come back soon after: the ghost sends them to the main ring (but
        // for the odd one whose ghost slot a later key took).
        for i in [0, 1, 2, 4, 6, 7, 8, 9] {
            let key = format!("k{i}");
            let hits = c.stats().ghost_hits;
            put(&c, &key, 2, 20_000);
            let to_main = c.stats().ghost_hits == hits + 1;
            assert_eq!(ring_of(&c, &key) == Some(Ring::Main), to_main, "{key}");
        }
        assert!(c.stats().ghost_hits >= 6, "{:?}", c.stats());
        // A key in the cache is put again in its entry's ring.
        put(&c, "k3", 2, 100_000);
        assert_eq!(ring_of(&c, "k3"), Some(Ring::Main));
        assert_eq!(version(&c, "k3"), Some(2));
        let f = format!("f{}", 64);
        put(&c, &f, 2, 1000);
        assert_eq!(ring_of(&c, &f), Some(Ring::Probation));
    }

    #[test]
    fn the_main_ring_writes_again_what_was_read_keeping_its_reads_less_one() {
        let dir = testing::scratch();
        let (_, c) = testing::create(dir.path(), "c", 8 * MIB);
        // Every value read twice: each probationary reclaim moves its region to main, which
        // soon fills and reclaims its own regions.
        for i in 0..200 {
            let key = format!("k{i}");
            put(&c, &key, 1, 100_000);
            version(&c, &key);
            version(&c, &key);
        }
        let s = c.stats();
        assert!(s.promoted > 20 && s.reinserted > 5, "{s:?}");
        let region = c.engine.device.geometry().region_size;
        // At most nine tenths of a region a reclaim: some were evicted.
        assert!(s.evictions > 0, "{s:?}");
        assert!(s.reinserted_bytes < s.reinserted * region, "{s:?}");
        assert_eq!(s.entries + s.evictions, 200, "{s:?}");
        assert_eq!(s.checksum_failures, 0);
        for i in 0..200 {
            let v = version(&c, &format!("k{i}"));
            assert!(v.is_none() || v == Some(1));
        }
    }

    /// Appends `entry` as a put does, with `read` as what it read for the reclaim of the
    /// region it moves into.
    fn append_with(c: &Cache, entry: &NewEntry<'_>, read: super::ReadSummary) {
        let mut prepared = Prepared::default();
        prepared.add(read);
        loop {
            let mut log = c.engine.log.lock();
            match log.append(entry, &mut prepared).unwrap() {
                Appended::At(loc) => {
                    c.engine.index.insert(entry.hash, loc);
                    return;
                }
                Appended::WaitForSpare => {
                    drop(log);
                    c.engine.writeback.wait_spare();
                }
                Appended::NeedSummary(region) => {
                    drop(log);
                    prepared.add(c.engine.read_for_reclaim(region));
                }
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
        while active(&c, Ring::Probation) < (6, 700_000) {
            put(&c, &format!("f{i}"), 1, 100_000);
            i += 1;
        }
        // The survivors of region 0, read as a put that moves on would read them...
        assert_eq!(c.engine.log.lock().victim().region, 0);
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
            c.engine.counters.promoted.load(Relaxed) >= 1,
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

    /// Every key holds its writer's last version, or nothing: never an older one, never a
    /// deleted one.
    fn check_latest(c: &Cache, models: &[HashMap<String, Option<u64>>], when: &str) {
        for model in models {
            for (key, last) in model {
                let got = version(c, key);
                assert!(
                    got.is_none() || got == *last,
                    "{when}: {key}: {got:?}, last {last:?}"
                );
            }
        }
    }

    /// After a flush, a crash image and a clean reopen of `c` hold the latest versions.
    fn check_latest_after_reopens(
        path: &std::path::Path,
        dir: &std::path::Path,
        c: Cache,
        models: &[HashMap<String, Option<u64>>],
    ) {
        check_latest(&c, models, "before a reopen");
        c.flush().unwrap();
        let image = testing::crash_image(path, dir, "image");
        check_latest(&testing::reopen(&image), models, "after a crash");
        c.close().unwrap();
        drop(c);
        check_latest(&testing::reopen(path), models, "after a clean reopen");
    }

    /// Puts, deletes and gets from several threads on a small cache that reclaims a region
    /// every ten puts, with many reinsertions: every value read is whole and current or newer
    /// than what its writer last saw, and after a flush, a crash image and a clean reopen
    /// every key holds its last version or nothing: never an older one, never a deleted one.
    /// (Between attempts of a put that waits, another thread's reclaim may move the key's
    /// entry to the main ring: the put must follow it there.)
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
        assert!(s.promoted + s.reinserted > 10 && s.evictions > 100, "{s:?}");
        assert_eq!(s.checksum_failures, 0);
        check_latest_after_reopens(&path, dir.path(), c, &models);
    }

    /// A put whose ring moves on may reclaim the region of its own key's older entry, read
    /// since written. That entry must not survive into the main ring: recovery would bring
    /// it back once the newer entry, in probation, is evicted unread.
    #[test]
    fn a_put_that_reclaims_its_keys_older_entry_does_not_keep_it() {
        let dir = testing::scratch();
        let (path, c) = testing::create(dir.path(), "c", 8 * MIB);
        let regions = c.engine.device.geometry().region_count;
        let probation = |c: &Cache| c.engine.log.lock().position().positions[0];
        put(&c, "k", 1, 50_000);
        assert_eq!(version(&c, "k"), Some(1));
        // Fill every region, and a little of the last, with probation's one-hit wonders.
        let mut filler = 0;
        let mut fill = |c: &Cache| {
            filler += 1;
            put(c, &format!("f{filler}"), 1, 100_000);
        };
        while probation(&c).region != regions - 1 {
            fill(&c);
        }
        (0..3).for_each(|_| fill(&c));
        // Does not fit: probation moves on, to region 0, which holds k's first entry.
        put(&c, "k", 2, 900_000);
        assert_eq!(c.stats().promoted, 0, "k's older entry is not kept");
        assert_eq!(ring_of(&c, "k"), Some(Ring::Probation));
        let k = c.engine.hash(b"k");
        while c.engine.index.get(k).is_some() {
            fill(&c);
        }
        check_latest_after_reopens(&path, dir.path(), c, &[HashMap::from([("k".into(), None)])]);
    }
}

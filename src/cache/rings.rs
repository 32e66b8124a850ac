//! Which ring each region is in, and which region the log reclaims next.
//!
//! The log writes two rings of regions: new entries go to the probationary ring, entries
//! read there (and keys the ghosts remember) to the main ring. Any region can serve either
//! ring: when a ring needs a region, the oldest probationary region is reclaimed while that
//! ring holds more than its target, else the oldest main region. Eviction moves the target
//! as the ghosts tell it (see `eviction`); it starts at a tenth of the regions.

use super::format::Ring;
use std::collections::VecDeque;

/// The probationary ring's first share of the regions (S3-FIFO's small queue is a tenth).
const PROBATION_SHARE_DIV: u32 = 10;

/// The region to reclaim for a ring's next region, and the ring it leaves (None: unused
/// since the cache was formatted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Victim {
    pub region: u32,
    pub from: Option<Ring>,
}

#[derive(Debug)]
pub(crate) struct Rings {
    /// Each ring's regions, oldest lap first (by `Ring as usize`); a ring's active region,
    /// when it has one, is its last.
    members: [VecDeque<u32>; 2],
    has_active: [bool; 2],
    /// Regions not written since the format, in order.
    unused: VecDeque<u32>,
    ring_of: Vec<Option<Ring>>,
    /// How many regions (its active one included) probation keeps before it gives them up.
    probation_target: usize,
}

impl Rings {
    /// Rings of `region_count` regions; `members` lists each ring's regions oldest first,
    /// with its active region last where `has_active` says so. The other regions are unused.
    pub fn new(region_count: u32, members: [Vec<u32>; 2], has_active: [bool; 2]) -> Rings {
        let mut ring_of = vec![None; region_count as usize];
        for ring in Ring::ALL {
            for &r in &members[ring as usize] {
                ring_of[r as usize] = Some(ring);
            }
        }
        let unused = (0..region_count)
            .filter(|&r| ring_of[r as usize].is_none())
            .collect();
        let share = (region_count as f64 / PROBATION_SHARE_DIV as f64).round();
        Rings {
            members: members.map(VecDeque::from),
            has_active,
            unused,
            ring_of,
            probation_target: share.max(1.0) as usize,
        }
    }

    /// The ring `region` is in (a region in neither holds nothing the index points at).
    pub fn ring_of(&self, region: u32) -> Option<Ring> {
        self.ring_of[region as usize]
    }

    /// The oldest region of `ring` that is not its active one.
    fn oldest(&self, ring: Ring) -> Option<u32> {
        let m = &self.members[ring as usize];
        (m.len() > self.has_active[ring as usize] as usize).then(|| m[0])
    }

    /// The region to reclaim next: an unused one, else the oldest probationary region while
    /// probation holds more than its share (or main has none to give), else the oldest main
    /// region.
    pub fn victim(&self) -> Victim {
        if let Some(&region) = self.unused.front() {
            return Victim { region, from: None };
        }
        let probation = self.oldest(Ring::Probation);
        let over = self.members[Ring::Probation as usize].len() > self.probation_target;
        let pick = match (probation, self.oldest(Ring::Main)) {
            (Some(p), main) if over || main.is_none() => (p, Ring::Probation),
            (_, Some(m)) => (m, Ring::Main),
            (Some(p), None) => (p, Ring::Probation),
            (None, None) => unreachable!("four regions or more, at most two active"),
        };
        Victim {
            region: pick.0,
            from: Some(pick.1),
        }
    }

    /// `victim` leaves its ring and becomes the active region of `ring`; the ring's previous
    /// active region (sealed by the caller) stays in it as its newest sealed one.
    pub fn enter(&mut self, victim: Victim, ring: Ring) {
        match victim.from {
            None => {
                let taken = self.unused.pop_front();
                debug_assert_eq!(taken, Some(victim.region));
            }
            Some(from) => {
                let taken = self.members[from as usize].pop_front();
                debug_assert_eq!(taken, Some(victim.region));
            }
        }
        self.members[ring as usize].push_back(victim.region);
        self.has_active[ring as usize] = true;
        self.ring_of[victim.region as usize] = Some(ring);
    }

    /// How many regions probation keeps (its active one included).
    pub fn probation_target(&self) -> usize {
        self.probation_target
    }

    /// Probation keeps `regions` (its active one included, at least one) before it gives
    /// its oldest up.
    pub fn set_probation_target(&mut self, regions: usize) {
        self.probation_target = regions.max(1);
    }

    /// Regions in each ring, active ones included.
    #[cfg(test)]
    pub fn len(&self, ring: Ring) -> usize {
        self.members[ring as usize].len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_regions_go_first_then_probation_above_its_share_then_main() {
        // 20 regions: probation keeps 2.
        let mut rings = Rings::new(20, [Vec::new(), Vec::new()], [false, false]);
        for r in 0..20 {
            let v = rings.victim();
            assert_eq!(
                v,
                Victim {
                    region: r,
                    from: None
                }
            );
            let ring = if r < 3 { Ring::Probation } else { Ring::Main };
            rings.enter(v, ring);
        }
        // Probation holds 3 (0, 1, 2 active): above its share, its oldest goes.
        let v = rings.victim();
        assert_eq!(
            v,
            Victim {
                region: 0,
                from: Some(Ring::Probation)
            }
        );
        rings.enter(v, Ring::Main);
        assert_eq!(rings.ring_of(0), Some(Ring::Main));
        // Now 2: main gives its oldest, even to probation.
        let v = rings.victim();
        assert_eq!(
            v,
            Victim {
                region: 3,
                from: Some(Ring::Main)
            }
        );
        rings.enter(v, Ring::Probation);
        assert_eq!((rings.len(Ring::Probation), rings.len(Ring::Main)), (3, 17));
    }

    #[test]
    fn an_active_region_is_never_a_victim() {
        // Main holds only its active region: probation gives its oldest though within share.
        let rings = Rings::new(4, [vec![0, 1, 2], vec![3]], [true, true]);
        assert_eq!(
            rings.victim(),
            Victim {
                region: 0,
                from: Some(Ring::Probation)
            }
        );
        let rings = Rings::new(4, [vec![0], vec![1, 2, 3]], [true, true]);
        assert_eq!(
            rings.victim(),
            Victim {
                region: 1,
                from: Some(Ring::Main)
            }
        );
    }
}

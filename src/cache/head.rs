//! What readers need to know of the log without taking its lock: the lap each region holds,
//! and which regions are active (their newest bytes may be only in the log's buffers).
//!
//! A read checks that the entry it found was written in the lap its region holds: the index
//! keeps no lap, and after a power loss an older lap's entry of the same key can sit, intact,
//! where a newer entry's bytes never landed. Laps grow by one per region entered, across the
//! whole log, so a region entered after a reader looked at the index has a lap above the
//! `epoch` the reader saw.

use super::format::{Ring, NO_REGION};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

pub(crate) struct LogHead {
    /// The lap each region holds now (0: none since the format).
    laps: Box<[AtomicU64]>,
    /// The highest lap handed out so far.
    epoch: AtomicU64,
    /// Each ring's active region (NO_REGION: none), by `Ring as usize`.
    active: [AtomicU32; 2],
    /// Read-only handles have no buffered region.
    writable: bool,
}

impl LogHead {
    /// A head with each region at the lap `laps` gives it.
    pub fn new(laps: &[u64], writable: bool) -> LogHead {
        LogHead {
            laps: laps.iter().map(|&l| AtomicU64::new(l)).collect(),
            epoch: AtomicU64::new(laps.iter().copied().max().unwrap_or(0)),
            active: [AtomicU32::new(NO_REGION), AtomicU32::new(NO_REGION)],
            writable,
        }
    }

    /// `region` starts `lap` as `ring`'s active region. The log calls this after it has
    /// handed the ring's full region to the writer (which marks it as sealing first) and
    /// dropped the region's old entries from the index.
    pub fn enter(&self, ring: Ring, region: u32, lap: u64) {
        self.laps[region as usize].store(lap, Ordering::Release);
        self.epoch.fetch_max(lap, Ordering::AcqRel);
        self.active[ring as usize].store(region, Ordering::Release);
    }

    /// `ring`'s active region continues at open (no new lap).
    pub fn resume(&self, ring: Ring, region: u32) {
        self.active[ring as usize].store(region, Ordering::Release);
    }

    /// Whether `region`'s newest bytes may be only in the log's buffer.
    pub fn is_buffered(&self, region: u32) -> bool {
        self.writable
            && self
                .active
                .iter()
                .any(|a| a.load(Ordering::Acquire) == region)
    }

    /// The lap `region` holds now.
    pub fn lap_of(&self, region: u32) -> u64 {
        self.laps[region as usize].load(Ordering::Acquire)
    }

    /// The highest lap handed out: read before an index lookup, it tells whether the region
    /// found was entered since (its lap is higher).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }
}

//! The write budget: bytes per second the log may append on average, under
//! `Admission::Filtered`. A token bucket: the allowance grows at the budget's rate from the
//! open on, plus half a second of it, so that any ten-second window writes at most 1.05
//! times the budget; every entry appended (puts, reinsertions, tombstones) spends it.

use std::time::Instant;

/// Half a second of the budget may be spent ahead.
const BURST_DIV: u64 = 2;

pub(crate) struct WriteBudget {
    bytes_per_sec: u64,
    started: Instant,
    spent: u64,
}

impl WriteBudget {
    pub fn new(bytes_per_sec: u64) -> WriteBudget {
        WriteBudget {
            bytes_per_sec,
            started: Instant::now(),
            spent: 0,
        }
    }

    /// Whether `len` more bytes stay within the allowance now.
    pub fn allows(&self, len: u64) -> bool {
        let earned = self.started.elapsed().as_secs_f64() * self.bytes_per_sec as f64;
        let allowance = earned as u64 + self.bytes_per_sec / BURST_DIV;
        self.spent.saturating_add(len) <= allowance
    }

    pub fn spend(&mut self, len: u64) {
        self.spent += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowance_is_half_a_second_ahead_then_grows_at_the_rate() {
        let mut b = WriteBudget::new(1_000_000);
        assert!(b.allows(400_000));
        b.spend(400_000);
        assert!(!b.allows(200_000), "over half a second of budget at once");
        std::thread::sleep(std::time::Duration::from_millis(250));
        assert!(b.allows(200_000), "a quarter of a second later");
    }
}

//! A ghost: keys recently dropped from a ring, without their values (eviction keeps one for
//! each ring). A put of a key a ghost holds goes straight to the main ring: the key came
//! back soon after it was dropped, so its stay was too short (S3-FIFO's ghost queue); and
//! which ghost held it tells which ring was too small (ARC's ghost lists).
//!
//! One 4-byte fingerprint a slot, a slot per `BYTES_PER_KEY` of capacity, direct-mapped: a
//! new key takes its slot from whatever held it, so the ghost forgets the oldest keys
//! roughly first, and its memory is fixed when the cache opens.

/// A ghost has a slot for this many bytes of capacity.
pub const BYTES_PER_KEY: u64 = 32 << 10;
/// The admission filter's table of recently declined keys has a slot for this many bytes.
/// A short memory declines more large values for good, which leaves more of the write
/// allowance to small values at their first miss: simulated on the bench's traces, a slot per
/// 256 KiB missed less, at the same bytes written, than one per 16 KiB or 64 KiB.
pub const DECLINED_BYTES_PER_KEY: u64 = 256 << 10;
const MIN_SLOTS: u64 = 1024;

pub(crate) struct Ghost {
    slots: Box<[u32]>,
    /// Slots holding a key.
    held: u64,
}

impl Ghost {
    /// A ghost of a slot per `bytes_per_key` of `capacity` (at least `MIN_SLOTS`).
    pub fn for_capacity(capacity: u64, bytes_per_key: u64) -> Ghost {
        let n = (capacity / bytes_per_key).max(MIN_SLOTS);
        Ghost {
            slots: vec![0; n as usize].into_boxed_slice(),
            held: 0,
        }
    }

    /// The slot and the fingerprint of `hash` (never 0, which marks an empty slot). The
    /// index places keys by the hash's low bits; the ghost uses the high ones.
    fn place(&self, hash: u64) -> (usize, u32) {
        let slot = ((hash >> 32) % self.slots.len() as u64) as usize;
        (slot, (hash as u32).rotate_left(16) | 1)
    }

    pub fn remember(&mut self, hash: u64) {
        let (slot, print) = self.place(hash);
        self.held += (self.slots[slot] == 0) as u64;
        self.slots[slot] = print;
    }

    /// Whether the ghost holds `hash`; it keeps it.
    pub fn holds(&self, hash: u64) -> bool {
        let (slot, print) = self.place(hash);
        self.slots[slot] == print
    }

    /// Whether the ghost holds `hash`; it forgets it either way.
    pub fn take(&mut self, hash: u64) -> bool {
        let (slot, print) = self.place(hash);
        let held = self.slots[slot] == print;
        if held {
            self.slots[slot] = 0;
            self.held -= 1;
        }
        held
    }

    /// How many keys it holds.
    pub fn len(&self) -> u64 {
        self.held
    }

    pub fn memory_bytes(&self) -> u64 {
        std::mem::size_of_val(&*self.slots) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_key_is_found_once_and_the_memory_follows_the_capacity() {
        let mut g = Ghost::for_capacity(1 << 30, BYTES_PER_KEY);
        assert_eq!(g.memory_bytes(), 4 * (1 << 30) / BYTES_PER_KEY);
        let hash = 0x1234_5678_9abc_def0;
        assert!(!g.take(hash));
        g.remember(hash);
        assert_eq!(g.len(), 1);
        assert!(g.take(hash));
        assert!(!g.take(hash), "taken once");
        assert_eq!(g.len(), 0);
        assert_eq!(
            Ghost::for_capacity(8 << 20, BYTES_PER_KEY).memory_bytes(),
            4 * MIN_SLOTS
        );
    }

    #[test]
    fn a_newer_key_in_the_same_slot_replaces_the_older() {
        let mut g = Ghost::for_capacity(MIN_SLOTS * BYTES_PER_KEY, BYTES_PER_KEY);
        let older = 5u64 << 32 | 1;
        let newer = (5 + MIN_SLOTS) << 32 | 2;
        g.remember(older);
        g.remember(newer);
        assert_eq!(g.len(), 1);
        assert!(!g.take(older));
        assert!(g.take(newer));
    }
}

//! The in-memory index: key hash → where the entry is, and how often it was read since it was
//! written (two bits, for eviction). Compact on purpose (12 bytes a slot): it holds no key,
//! only 48 bits of the key's hash, because every read checks the full key on disk anyway; a
//! rare tag collision costs a miss, never a wrong value.
//!
//! 64 shards, each an open-addressing table with linear probing behind its own RwLock, so
//! that lookups run in parallel with each other and with inserts.

use parking_lot::RwLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;
/// Grow past this load; grow by half. Keeps the table between 57% and 85% full.
const MAX_LOAD_NUM: usize = 85;
const MAX_LOAD_DEN: usize = 100;
const MIN_SLOTS: usize = 64;

/// Where an entry is, in units from the start of the data area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub unit: u32,
    pub len_units: u32,
}

impl Location {
    /// The entry `offset_units` into a region whose first unit is `first_unit`.
    pub fn in_region(first_unit: u64, offset_units: u32, len_units: u32) -> Location {
        Location {
            unit: (first_unit + offset_units as u64) as u32,
            len_units,
        }
    }
}

const LEN_BITS: u32 = 20;
const LEN_MASK: u32 = (1 << LEN_BITS) - 1;
pub const MAX_LEN_UNITS: u32 = LEN_MASK;

/// Reads since the entry was written: 0 to 3, saturating.
const READS_SHIFT: u32 = LEN_BITS;
const READS_MASK: u32 = 0b11 << READS_SHIFT;
const EXTRA_SHIFT: u32 = LEN_BITS + 2;

/// [tag, unit, len_units | reads << 20 | extra tag << 22]; len_units == 0 marks an empty slot.
type Slot = [u32; 3];

fn tag_of(hash: u64) -> u32 {
    hash as u32
}

fn extra_of(hash: u64) -> u32 {
    ((hash >> 40) as u32) & 0x3ff
}

fn shard_of(hash: u64) -> usize {
    (hash >> (64 - SHARD_BITS)) as usize
}

struct Table {
    slots: Vec<Slot>,
    len: usize,
}

impl Table {
    fn new() -> Table {
        Table {
            slots: vec![[0; 3]; MIN_SLOTS],
            len: 0,
        }
    }

    /// The home slot of a tag: the tag scaled onto the table (works for any table size).
    fn home(&self, tag: u32) -> usize {
        ((tag as u64 * self.slots.len() as u64) >> 32) as usize
    }

    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() {
            0
        } else {
            i + 1
        }
    }

    fn find(&self, hash: u64) -> Option<usize> {
        let (tag, extra) = (tag_of(hash), extra_of(hash));
        let mut i = self.home(tag);
        loop {
            let s = &self.slots[i];
            if s[2] & LEN_MASK == 0 {
                return None;
            }
            if s[0] == tag && s[2] >> EXTRA_SHIFT == extra {
                return Some(i);
            }
            i = self.next(i);
        }
    }

    fn location(s: &Slot) -> Location {
        Location {
            unit: s[1],
            len_units: s[2] & LEN_MASK,
        }
    }

    fn insert(&mut self, hash: u64, loc: Location, reads: u32) -> Option<Location> {
        let word = loc.len_units | reads << READS_SHIFT | extra_of(hash) << EXTRA_SHIFT;
        if let Some(i) = self.find(hash) {
            let old = Self::location(&self.slots[i]);
            self.slots[i][1] = loc.unit;
            self.slots[i][2] = word;
            return Some(old);
        }
        if (self.len + 1) * MAX_LOAD_DEN > self.slots.len() * MAX_LOAD_NUM {
            self.grow();
        }
        let mut i = self.home(tag_of(hash));
        while self.slots[i][2] & LEN_MASK != 0 {
            i = self.next(i);
        }
        self.slots[i] = [tag_of(hash), loc.unit, word];
        self.len += 1;
        None
    }

    fn grow(&mut self) {
        let new_len = (self.slots.len() + self.slots.len() / 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![[0; 3]; new_len]);
        for s in old.into_iter().filter(|s| s[2] & LEN_MASK != 0) {
            let mut i = self.home(s[0]);
            while self.slots[i][2] & LEN_MASK != 0 {
                i = self.next(i);
            }
            self.slots[i] = s;
        }
    }

    /// Removes slot `i`, shifting later members of its probe run back (no tombstones).
    fn remove_at(&mut self, mut i: usize) -> Location {
        let removed = Self::location(&self.slots[i]);
        self.slots[i] = [0; 3];
        self.len -= 1;
        let mut j = self.next(i);
        while self.slots[j][2] & LEN_MASK != 0 {
            let home = self.home(self.slots[j][0]);
            // Move j back to i if i lies cyclically within [home, j).
            let movable = if i <= j {
                home <= i || home > j
            } else {
                home <= i && home > j
            };
            if movable {
                self.slots[i] = self.slots[j];
                self.slots[j] = [0; 3];
                i = j;
            }
            j = self.next(j);
        }
        removed
    }
}

/// The index, and the bytes of the entries it points at (it alone inserts and removes, so it
/// alone keeps that count).
pub struct Index {
    shards: Box<[RwLock<Table>]>,
    /// The device's unit: a location's length in bytes is `len_units * unit`.
    unit: u64,
    used_bytes: AtomicU64,
}

impl Index {
    pub fn new(unit: u32) -> Index {
        Index {
            shards: (0..SHARDS).map(|_| RwLock::new(Table::new())).collect(),
            unit: unit as u64,
            used_bytes: AtomicU64::new(0),
        }
    }

    /// Bytes of the entries the index points at (headers and padding included). Moves with
    /// every insert and removal, under the shard lock that makes it, so it never counts an
    /// entry removed before it was added.
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes.load(Relaxed)
    }

    fn added(&self, loc: Location) {
        self.used_bytes
            .fetch_add(loc.len_units as u64 * self.unit, Relaxed);
    }

    fn removed(&self, loc: Location) {
        self.used_bytes
            .fetch_sub(loc.len_units as u64 * self.unit, Relaxed);
    }

    pub fn get(&self, hash: u64) -> Option<Location> {
        let t = self.shards[shard_of(hash)].read();
        t.find(hash).map(|i| Table::location(&t.slots[i]))
    }

    /// Counts a read of the entry at `loc` (if `hash` still points there).
    pub fn mark_read(&self, hash: u64, loc: Location) {
        let mut t = self.shards[shard_of(hash)].write();
        if let Some(i) = t
            .find(hash)
            .filter(|&i| Table::location(&t.slots[i]) == loc)
        {
            let w = t.slots[i][2];
            if w & READS_MASK != READS_MASK {
                t.slots[i][2] = w + (1 << READS_SHIFT);
            }
        }
    }

    /// How often the entry at `loc` was read since it was written (0 to 3, saturating), if
    /// `hash` still points there.
    pub fn reads_at(&self, hash: u64, loc: Location) -> Option<u32> {
        let t = self.shards[shard_of(hash)].read();
        t.find(hash)
            .filter(|&i| Table::location(&t.slots[i]) == loc)
            .map(|i| (t.slots[i][2] & READS_MASK) >> READS_SHIFT)
    }

    /// Points `hash` at `loc`; returns what it pointed at before.
    pub fn insert(&self, hash: u64, loc: Location) -> Option<Location> {
        self.insert_with_reads(hash, loc, 0)
    }

    /// `insert`, with the entry counted as read `reads` times (at most 3): an entry written
    /// again by eviction keeps some of the reads it had.
    pub fn insert_with_reads(&self, hash: u64, loc: Location, reads: u32) -> Option<Location> {
        debug_assert!(loc.len_units > 0 && loc.len_units <= MAX_LEN_UNITS);
        let mut t = self.shards[shard_of(hash)].write();
        let old = t.insert(hash, loc, reads.min(3));
        self.added(loc);
        if let Some(old) = old {
            self.removed(old);
        }
        old
    }

    pub fn remove(&self, hash: u64) -> Option<Location> {
        let mut t = self.shards[shard_of(hash)].write();
        let old = t.find(hash).map(|i| t.remove_at(i));
        if let Some(old) = old {
            self.removed(old);
        }
        old
    }

    /// Removes `hash` only if it still points at `loc` (a newer put may have moved it).
    pub fn remove_if_at(&self, hash: u64, loc: Location) -> bool {
        let mut t = self.shards[shard_of(hash)].write();
        match t.find(hash) {
            Some(i) if Table::location(&t.slots[i]) == loc => {
                t.remove_at(i);
                self.removed(loc);
                true
            }
            _ => false,
        }
    }

    /// Removes every entry whose location satisfies `pred`; returns how many.
    pub fn remove_where(&self, pred: impl Fn(Location) -> bool) -> u64 {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut t = shard.write();
            let mut i = 0;
            while i < t.slots.len() {
                let s = t.slots[i];
                if s[2] & LEN_MASK != 0 && pred(Table::location(&s)) {
                    self.removed(t.remove_at(i));
                    removed += 1;
                    // remove_at may have shifted another member into slot i: look again.
                } else {
                    i += 1;
                }
            }
        }
        removed
    }

    /// Removes every entry in the units `[first, end)`; returns how many.
    pub fn remove_in(&self, first: u64, end: u64) -> u64 {
        self.remove_where(|l| (l.unit as u64) >= first && (l.unit as u64) < end)
    }

    /// A snapshot of every location in the index.
    pub fn locations(&self) -> Vec<Location> {
        let mut all = Vec::with_capacity(self.len());
        for shard in self.shards.iter() {
            let t = shard.read();
            all.extend(
                t.slots
                    .iter()
                    .filter(|s| s[2] & LEN_MASK != 0)
                    .map(Table::location),
            );
        }
        all
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len).sum()
    }

    /// Bytes the tables occupy.
    pub fn memory_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().slots.capacity() * std::mem::size_of::<Slot>())
            .sum::<usize>()
            + std::mem::size_of::<Self>()
            + SHARDS * std::mem::size_of::<RwLock<Table>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn mix(i: u64) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(&i.to_le_bytes(), 7)
    }

    #[test]
    fn behaves_like_a_map() {
        let index = Index::new(512);
        let mut model = HashMap::new();
        for i in 0..200_000u64 {
            let h = mix(i % 50_000);
            match i % 7 {
                0 | 1 => {
                    assert_eq!(index.remove(h), model.remove(&h));
                }
                _ => {
                    let loc = Location {
                        unit: i as u32,
                        len_units: (i % 1000 + 1) as u32,
                    };
                    assert_eq!(index.insert(h, loc), model.insert(h, loc));
                }
            }
        }
        assert_eq!(index.len(), model.len());
        for (h, loc) in &model {
            assert_eq!(index.get(*h), Some(*loc));
        }
        let used: u64 = model.values().map(|l| l.len_units as u64 * 512).sum();
        assert_eq!(
            index.used_bytes(),
            used,
            "the index counts the bytes it points at"
        );
        let removed = index.remove_where(|l| l.unit % 2 == 0);
        let expect = model.values().filter(|l| l.unit % 2 == 0).count();
        assert_eq!(removed, expect as u64);
        let used: u64 = model
            .values()
            .filter(|l| l.unit % 2 == 1)
            .map(|l| l.len_units as u64 * 512)
            .sum();
        assert_eq!(index.used_bytes(), used);
        for (h, loc) in &model {
            assert_eq!(index.get(*h), (loc.unit % 2 == 1).then_some(*loc));
        }
    }

    #[test]
    fn remove_if_at_respects_newer_locations() {
        let index = Index::new(512);
        let a = Location {
            unit: 1,
            len_units: 1,
        };
        let b = Location {
            unit: 2,
            len_units: 1,
        };
        index.insert(5, a);
        index.insert(5, b);
        assert!(!index.remove_if_at(5, a));
        assert!(index.remove_if_at(5, b));
        assert_eq!(index.len(), 0);
    }

    /// At most 16 bytes an entry at a million entries (12-byte slots, 57% to 85% full).
    #[test]
    fn memory_per_entry_is_compact() {
        let index = Index::new(512);
        let n = 1_000_000u64;
        for i in 0..n {
            index.insert(
                mix(i),
                Location {
                    unit: i as u32,
                    len_units: 1,
                },
            );
        }
        let per_entry = index.memory_bytes() as f64 / n as f64;
        assert!(per_entry <= 16.0, "{per_entry} bytes per entry");
    }
}

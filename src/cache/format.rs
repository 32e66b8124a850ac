//! The on-disk format (docs/FORMAT.md is the prose version): the superblock, entry headers,
//! region trailers and summary records, each encoded little-endian and checked by CRC32C
//! seeded with the cache's random id, so that nothing from another cache, another format or a
//! torn write is ever taken for ours.

use crate::dio::align::round_up;

pub const FORMAT_VERSION: u32 = 2;
pub const SUPERBLOCK_MAGIC: [u8; 8] = *b"\x89DCACHE\n";
/// Bytes of the superblock covered by its checksum.
pub const SUPERBLOCK_LEN: usize = 160;

pub const ENTRY_MAGIC: u32 = u32::from_le_bytes(*b"DCE1");
pub const ENTRY_HEADER_LEN: usize = 64;
pub const FLAG_TOMBSTONE: u16 = 1;
/// Values are checksummed in chunks of this size, so a range read verifies what it reads.
pub const CHUNK_SIZE: u64 = 64 << 10;
/// Values of at least this size start on an aligned offset inside their entry, so that they
/// can be read straight into a caller's aligned buffer.
pub const ALIGNED_VALUE_MIN: u64 = 64 << 10;

pub const TRAILER_MAGIC: u32 = u32::from_le_bytes(*b"DCT1");
pub const TRAILER_LEN: usize = 64;
pub const TRAILER_SEALED: u32 = 1;
pub const SUMMARY_RECORD_LEN: usize = 24;
const RECORD_TOMBSTONE: u32 = 1 << 31;

pub fn crc(seed: u64, parts: &[&[u8]]) -> u32 {
    let mut c = crc32c::crc32c(&seed.to_le_bytes());
    for p in parts {
        c = crc32c::crc32c_append(c, p);
    }
    c
}

fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The shape of a cache on its file or device: fixed at format time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub capacity: u64,
    /// The alignment asked for or detected at format time.
    pub alignment: u32,
    /// Every entry, summary and trailer starts on a multiple of this (>= alignment).
    pub unit: u32,
    /// Size of each superblock copy.
    pub meta_size: u32,
    pub region_size: u64,
    pub region_count: u32,
    pub data_start: u64,
}

/// The two rings of regions the log writes: new entries go to the probationary ring; what
/// is read there, and keys that come back soon after they were dropped, go to the main ring.
/// A region belongs to the ring its trailer names until it is reclaimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ring {
    Probation = 0,
    Main = 1,
}

impl Ring {
    pub const ALL: [Ring; 2] = [Ring::Probation, Ring::Main];
}

pub const MIN_CAPACITY: u64 = 8 << 20;
const MIN_REGION: u64 = 1 << 20;
const MAX_REGION: u64 = 32 << 20;
const FULL_REGIONS_FROM: u64 = 256 << 20;
/// Two rings, each with an active region and one to reclaim, and room to choose.
const MIN_REGIONS: u32 = 4;

impl Geometry {
    /// Chooses the layout for `capacity` bytes at `alignment`: regions of 1/16 of the
    /// capacity (a power of two of at least 1 MiB), so that eviction drops at most a
    /// sixteenth at a time and the probationary ring can be about a tenth of the cache; 32 MiB
    /// from 256 MiB of capacity on.
    pub fn plan(capacity: u64, alignment: u32) -> Option<Geometry> {
        if capacity < MIN_CAPACITY {
            return None;
        }
        // Offsets in the index are 32-bit counts of units: grow the unit on huge devices.
        let mut unit = alignment.max(512) as u64;
        while capacity / unit > u32::MAX as u64 {
            unit *= 2;
        }
        let meta_size = unit.max(4096);
        // From 256 MiB on, the largest regions, so that the default 16 MiB value fits.
        let region_size = match capacity >= FULL_REGIONS_FROM {
            true => MAX_REGION,
            false => 1u64 << (63 - (capacity / 16).leading_zeros()),
        }
        .clamp(MIN_REGION, MAX_REGION)
        .max(unit * 64);
        let data_start = 2 * meta_size;
        let region_count = (capacity - data_start) / region_size;
        if region_count < MIN_REGIONS as u64 || region_count > u32::MAX as u64 {
            return None;
        }
        let mut g = Geometry {
            capacity,
            alignment,
            unit: unit as u32,
            meta_size: meta_size as u32,
            region_size,
            region_count: region_count as u32,
            data_start,
        };
        // Room for mirror slots that hold a summary of a record for every unit, or of one
        // for every 32 units if that is smaller: a region fewer where the last one leaves
        // too little.
        let slot = g
            .tail_len((region_size / unit) as usize)
            .min(region_size / 32);
        while g.region_count > MIN_REGIONS && g.mirror_slot(0).is_none_or(|(_, len)| len < slot) {
            g.region_count -= 1;
        }
        Some(g)
    }

    pub fn region_offset(&self, region: u32) -> u64 {
        self.data_start + region as u64 * self.region_size
    }

    pub fn units_per_region(&self) -> u64 {
        self.region_size / self.unit as u64
    }

    /// The region that holds `unit` (counted in units from the start of the data area).
    /// The region holding byte `offset` of the device (at or past the data area's start).
    pub fn region_at(&self, offset: u64) -> u32 {
        (offset.saturating_sub(self.data_start) / self.region_size) as u32
    }

    pub fn region_of(&self, unit: u32) -> u32 {
        (unit as u64 / self.units_per_region()) as u32
    }

    /// The first unit of `region`, counted from the start of the data area.
    pub fn first_unit(&self, region: u32) -> u64 {
        region as u64 * self.units_per_region()
    }

    /// The end and the length of `region`'s slot in the mirror area, if the geometry leaves
    /// one of at least two units. The bytes past the last region (capacity seldom divides
    /// into whole regions) keep a copy of each region's latest summary and trailer, at the
    /// end of its slot as at the end of the region: when a bad block takes a region, its
    /// keys are still known, and stay deleted instead of letting an older value elsewhere
    /// come back.
    pub fn mirror_slot(&self, region: u32) -> Option<(u64, u64)> {
        let start = self.data_start + self.region_count as u64 * self.region_size;
        let unit = self.unit as u64;
        let len = self.capacity.checked_sub(start)? / self.region_count as u64 / unit * unit;
        (len >= 2 * unit && region < self.region_count)
            .then(|| (start + (region as u64 + 1) * len, len))
    }

    /// Bytes at the end of a region holding `records` summary records and the trailer.
    pub fn tail_len(&self, records: usize) -> u64 {
        round_up((records * SUMMARY_RECORD_LEN) as u64, self.unit as usize) + self.unit as u64
    }

    /// The largest value one region can hold, with the longest key.
    pub fn max_value_capacity(&self) -> u64 {
        let unit = self.unit as usize;
        let chunks = self.region_size / CHUNK_SIZE + 1;
        let header = round_up(
            ENTRY_HEADER_LEN as u64 + super::MAX_KEY_LEN as u64 + 4 * chunks,
            unit,
        );
        self.region_size - self.tail_len(1) - header
    }

    /// Layout of an entry: (value offset within the entry, entry length in bytes).
    pub fn entry_layout(&self, key_len: usize, value_len: u64) -> (u64, u64) {
        let header = header_len(key_len, value_len);
        let value_offset = if value_len >= ALIGNED_VALUE_MIN {
            round_up(header, self.unit as usize)
        } else {
            header
        };
        (
            value_offset,
            round_up(value_offset + value_len, self.unit as usize),
        )
    }

    /// Whether the layout fits inside `device_size` bytes and is self-consistent.
    pub fn is_sane(&self, device_size: u64) -> bool {
        self.unit >= 512
            && self.unit.is_power_of_two()
            && self.alignment <= self.unit
            && self.meta_size >= self.unit
            && self.region_size.is_multiple_of(self.unit as u64)
            && self.region_size >= 64 * self.unit as u64
            && self.region_count >= MIN_REGIONS
            && self.data_start == 2 * self.meta_size as u64
            && self
                .data_start
                .checked_add(self.region_size.saturating_mul(self.region_count as u64))
                .is_some_and(|end| end <= self.capacity && self.capacity <= device_size)
    }
}

/// The hash the index and the summaries hold for a key: xxh3 seeded with the cache's id.
/// Summaries on the device hold it, so it must never change.
pub fn key_hash(cache_id: u64, key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(key, cache_id)
}

pub fn chunk_count(value_len: u64) -> u64 {
    value_len.div_ceil(CHUNK_SIZE)
}

pub fn header_len(key_len: usize, value_len: u64) -> u64 {
    ENTRY_HEADER_LEN as u64 + key_len as u64 + 4 * chunk_count(value_len)
}

/// The superblock, kept in two copies; the valid one with the higher generation wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    pub generation: u64,
    pub cache_id: u64,
    pub geometry: Geometry,
    pub created_secs: u64,
    /// 1 after a clean close: the active region's partial summary is on disk and current.
    pub clean: bool,
    /// Where each ring's log stood at the last clean close (by `Ring as usize`).
    pub positions: [RingPosition; 2],
    pub next_entry_seq: u64,
    /// The lap the next region entered takes (laps grow by one per region entered).
    pub next_lap: u64,
}

/// A ring's active region at a clean close, its lap, and its fill in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingPosition {
    /// `NO_REGION`: the ring had no active region.
    pub region: u32,
    pub lap: u64,
    pub fill: u64,
}

pub const NO_REGION: u32 = u32::MAX;

impl RingPosition {
    pub const NONE: RingPosition = RingPosition {
        region: NO_REGION,
        lap: 0,
        fill: 0,
    };
}

/// Where each ring's position lives in the superblock.
const POSITION_AT: [usize; 2] = [116, 84];

/// What a superblock slot holds.
#[derive(Debug)]
pub enum SlotContent {
    Valid(Superblock),
    /// Our magic, another format version.
    OtherVersion(u32),
    /// Our magic and version, but the checksum or the geometry is wrong.
    Damaged,
    /// Not ours at all.
    Foreign,
}

impl Superblock {
    pub fn encode(&self, out: &mut [u8]) {
        out[..SUPERBLOCK_LEN].fill(0);
        let g = &self.geometry;
        out[0..8].copy_from_slice(&SUPERBLOCK_MAGIC);
        put_u32(out, 8, FORMAT_VERSION);
        put_u32(out, 12, SUPERBLOCK_LEN as u32);
        put_u64(out, 16, self.generation);
        put_u64(out, 24, self.cache_id);
        put_u64(out, 32, g.capacity);
        put_u32(out, 40, g.alignment);
        put_u32(out, 44, g.unit);
        put_u32(out, 48, g.meta_size);
        put_u32(out, 52, g.region_count);
        put_u64(out, 56, g.region_size);
        put_u64(out, 64, g.data_start);
        put_u64(out, 72, self.created_secs);
        put_u32(out, 80, self.clean as u32);
        for (p, at) in self.positions.iter().zip(POSITION_AT) {
            put_u32(out, at, p.region);
            put_u64(out, at + 4, p.lap);
            put_u64(out, at + 12, p.fill);
        }
        put_u64(out, 104, self.next_entry_seq);
        put_u64(out, 136, self.next_lap);
        let c = crc(0, &[&out[..SUPERBLOCK_LEN - 4]]);
        put_u32(out, SUPERBLOCK_LEN - 4, c);
    }

    pub fn decode(b: &[u8], device_size: u64) -> SlotContent {
        if b.len() < SUPERBLOCK_LEN || b[0..8] != SUPERBLOCK_MAGIC {
            return SlotContent::Foreign;
        }
        let version = get_u32(b, 8);
        if version != FORMAT_VERSION {
            return SlotContent::OtherVersion(version);
        }
        if get_u32(b, SUPERBLOCK_LEN - 4) != crc(0, &[&b[..SUPERBLOCK_LEN - 4]])
            || get_u32(b, 12) != SUPERBLOCK_LEN as u32
        {
            return SlotContent::Damaged;
        }
        let geometry = Geometry {
            capacity: get_u64(b, 32),
            alignment: get_u32(b, 40),
            unit: get_u32(b, 44),
            meta_size: get_u32(b, 48),
            region_count: get_u32(b, 52),
            region_size: get_u64(b, 56),
            data_start: get_u64(b, 64),
        };
        let sb = Superblock {
            generation: get_u64(b, 16),
            cache_id: get_u64(b, 24),
            geometry,
            created_secs: get_u64(b, 72),
            clean: get_u32(b, 80) == 1,
            positions: POSITION_AT.map(|at| RingPosition {
                region: get_u32(b, at),
                lap: get_u64(b, at + 4),
                fill: get_u64(b, at + 12),
            }),
            next_entry_seq: get_u64(b, 104),
            next_lap: get_u64(b, 136),
        };
        let position_fits = |p: &RingPosition| {
            (p.region == NO_REGION || p.region < geometry.region_count)
                && p.fill <= geometry.region_size
        };
        if !geometry.is_sane(device_size) || !sb.positions.iter().all(position_fits) {
            return SlotContent::Damaged;
        }
        SlotContent::Valid(sb)
    }
}

/// The fixed part of an entry header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryHeader {
    pub flags: u16,
    pub key_len: u16,
    pub value_offset: u32,
    pub value_len: u64,
    pub entry_seq: u64,
    pub lap: u64,
    /// Unix seconds; 0 = never.
    pub expiry: u64,
    pub created: u64,
}

impl EntryHeader {
    pub fn is_tombstone(&self) -> bool {
        self.flags & FLAG_TOMBSTONE != 0
    }

    pub fn header_len(&self) -> usize {
        header_len(self.key_len as usize, self.value_len) as usize
    }

    pub fn entry_len(&self, unit: u32) -> u64 {
        round_up(self.value_offset as u64 + self.value_len, unit as usize)
    }

    pub fn is_expired(&self, now: u64) -> bool {
        self.expiry != 0 && now >= self.expiry
    }

    /// Writes the header, key and chunk checksums into `out` (which must hold header_len
    /// bytes), computing the header checksum.
    pub fn encode(&self, cache_id: u64, key: &[u8], chunk_crcs: &[u32], out: &mut [u8]) {
        let h = &mut out[..ENTRY_HEADER_LEN];
        put_u32(h, 0, ENTRY_MAGIC);
        put_u16(h, 4, self.flags);
        put_u16(h, 6, self.key_len);
        put_u32(h, 8, 0);
        put_u32(h, 12, self.value_offset);
        put_u64(h, 16, self.value_len);
        put_u64(h, 24, self.entry_seq);
        put_u64(h, 32, self.lap);
        put_u64(h, 40, self.expiry);
        put_u64(h, 48, self.created);
        put_u64(h, 56, 0);
        let key_end = ENTRY_HEADER_LEN + key.len();
        out[ENTRY_HEADER_LEN..key_end].copy_from_slice(key);
        for (i, c) in chunk_crcs.iter().enumerate() {
            put_u32(out, key_end + 4 * i, *c);
        }
        let c = crc(cache_id, &[&out[..self.header_len()]]);
        put_u32(out, 8, c);
    }

    /// Parses and verifies the header at the start of `b`, which holds `available` bytes of
    /// the entry (at least the whole header, or the result is `Incomplete`).
    pub fn decode(b: &[u8], cache_id: u64, max_entry_len: u64, unit: u32) -> Decoded {
        if b.len() < ENTRY_HEADER_LEN || get_u32(b, 0) != ENTRY_MAGIC {
            return Decoded::Invalid;
        }
        let header = EntryHeader {
            flags: get_u16(b, 4),
            key_len: get_u16(b, 6),
            value_offset: get_u32(b, 12),
            value_len: get_u64(b, 16),
            entry_seq: get_u64(b, 24),
            lap: get_u64(b, 32),
            expiry: get_u64(b, 40),
            created: get_u64(b, 48),
        };
        let hlen = header_len(header.key_len as usize, header.value_len.min(max_entry_len));
        if header.key_len == 0
            || header.key_len as usize > super::MAX_KEY_LEN
            || header.value_len > max_entry_len
            || (header.value_offset as u64) < hlen
            || header.entry_len(unit) > max_entry_len
        {
            return Decoded::Invalid;
        }
        if b.len() < hlen as usize {
            return Decoded::Incomplete;
        }
        let mut copy = [0u8; ENTRY_HEADER_LEN];
        copy.copy_from_slice(&b[..ENTRY_HEADER_LEN]);
        put_u32(&mut copy, 8, 0);
        if crc(cache_id, &[&copy, &b[ENTRY_HEADER_LEN..hlen as usize]]) != get_u32(b, 8) {
            return Decoded::Invalid;
        }
        Decoded::Valid(header)
    }

    pub fn key<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        &b[ENTRY_HEADER_LEN..ENTRY_HEADER_LEN + self.key_len as usize]
    }

    /// The stored checksum of value chunk `i`, from the header bytes `b`.
    pub fn chunk_crc(&self, b: &[u8], i: u64) -> u32 {
        get_u32(b, ENTRY_HEADER_LEN + self.key_len as usize + 4 * i as usize)
    }

    /// Checks the value chunks that `value` (the value's bytes from chunk `first_chunk` on)
    /// holds against the checksums in the header bytes `b`.
    pub fn verify_chunks(&self, b: &[u8], first_chunk: u64, value: &[u8]) -> bool {
        value
            .chunks(CHUNK_SIZE as usize)
            .enumerate()
            .all(|(i, chunk)| crc32c::crc32c(chunk) == self.chunk_crc(b, first_chunk + i as u64))
    }
}

pub enum Decoded {
    Valid(EntryHeader),
    Invalid,
    /// The header is longer than the bytes given: read more.
    Incomplete,
}

/// One line of a region's summary: where an entry is, and for which key hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryRecord {
    pub hash: u64,
    /// The entry's sequence number: recovery applies the two rings' records in this order.
    pub entry_seq: u64,
    /// Offset within the region, in units.
    pub offset_units: u32,
    pub len_units: u32,
    pub tombstone: bool,
}

impl SummaryRecord {
    /// The same record as a tombstone: applied at its sequence number, it deletes the key
    /// (recovery keeps a lost region's keys deleted this way).
    pub fn as_tombstone(self) -> SummaryRecord {
        SummaryRecord {
            tombstone: true,
            ..self
        }
    }

    pub fn encode(&self, out: &mut [u8]) {
        put_u64(out, 0, self.hash);
        put_u64(out, 8, self.entry_seq);
        put_u32(out, 16, self.offset_units);
        put_u32(
            out,
            20,
            self.len_units | if self.tombstone { RECORD_TOMBSTONE } else { 0 },
        );
    }

    pub fn decode(b: &[u8]) -> SummaryRecord {
        let len = get_u32(b, 20);
        SummaryRecord {
            hash: get_u64(b, 0),
            entry_seq: get_u64(b, 8),
            offset_units: get_u32(b, 16),
            len_units: len & !RECORD_TOMBSTONE,
            tombstone: len & RECORD_TOMBSTONE != 0,
        }
    }
}

/// The last unit of a region: says which lap of the log the region holds and where its
/// summary is. Sealed when the region filled; partial when written by a clean close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    pub sealed: bool,
    pub ring: Ring,
    pub lap: u64,
    pub region: u32,
    pub record_count: u32,
    pub summary_crc: u32,
    /// Bytes of entries from the region's start.
    pub fill: u64,
    pub max_entry_seq: u64,
}

impl Trailer {
    pub fn encode(&self, cache_id: u64, out: &mut [u8]) {
        out[..TRAILER_LEN].fill(0);
        put_u32(out, 0, TRAILER_MAGIC);
        put_u32(out, 4, if self.sealed { TRAILER_SEALED } else { 0 });
        put_u64(out, 8, self.lap);
        put_u32(out, 16, self.region);
        put_u32(out, 20, self.record_count);
        put_u32(out, 24, self.record_count * SUMMARY_RECORD_LEN as u32);
        put_u32(out, 28, self.summary_crc);
        put_u64(out, 32, self.fill);
        put_u64(out, 40, self.max_entry_seq);
        put_u32(out, 48, self.ring as u32);
        let c = crc(cache_id, &[&out[..56]]);
        put_u32(out, 56, c);
    }

    pub fn decode(b: &[u8], cache_id: u64, geometry: &Geometry) -> Option<Trailer> {
        if b.len() < TRAILER_LEN
            || get_u32(b, 0) != TRAILER_MAGIC
            || get_u32(b, 56) != crc(cache_id, &[&b[..56]])
        {
            return None;
        }
        let ring = match get_u32(b, 48) {
            0 => Ring::Probation,
            1 => Ring::Main,
            _ => return None,
        };
        let t = Trailer {
            sealed: get_u32(b, 4) == TRAILER_SEALED,
            ring,
            lap: get_u64(b, 8),
            region: get_u32(b, 16),
            record_count: get_u32(b, 20),
            summary_crc: get_u32(b, 28),
            fill: get_u64(b, 32),
            max_entry_seq: get_u64(b, 40),
        };
        let fits = t.fill + geometry.tail_len(t.record_count as usize) <= geometry.region_size;
        (fits && t.fill.is_multiple_of(geometry.unit as u64) && t.region < geometry.region_count)
            .then_some(t)
    }

    pub fn summary_len(&self) -> usize {
        self.record_count as usize * SUMMARY_RECORD_LEN
    }

    /// The records of the summary this trailer describes, from `bytes` (at least
    /// `summary_len` of them), if their checksum is the one the trailer holds and every one
    /// lies within the region's fill (a record that passes the checksum can still point
    /// anywhere: the index must never hold a place outside its region).
    pub fn summary_records(
        &self,
        bytes: &[u8],
        cache_id: u64,
        unit: u32,
    ) -> Option<Vec<SummaryRecord>> {
        let bytes = bytes.get(..self.summary_len())?;
        if crc(cache_id, &[bytes]) != self.summary_crc {
            return None;
        }
        let fill_units = self.fill / unit as u64;
        let records: Vec<SummaryRecord> = bytes
            .chunks_exact(SUMMARY_RECORD_LEN)
            .map(SummaryRecord::decode)
            .collect();
        let inside = |r: &SummaryRecord| {
            r.len_units > 0 && r.offset_units as u64 + r.len_units as u64 <= fill_units
        };
        records.iter().all(inside).then_some(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_for_common_sizes() {
        let g = Geometry::plan(1 << 30, 512).unwrap();
        assert_eq!(g.region_size, 32 << 20);
        assert!(g.max_value_capacity() >= 16 << 20);
        let small = Geometry::plan(MIN_CAPACITY, 4096).unwrap();
        assert_eq!(small.region_size, 1 << 20);
        assert!(small.max_value_capacity() > 900 << 10);
        assert!(Geometry::plan(MIN_CAPACITY - 1, 512).is_none());
        assert!(g.is_sane(1 << 30));
        // Sixteen regions or so under 256 MiB; from there on, regions that hold 16 MiB values.
        assert_eq!(Geometry::plan(128 << 20, 512).unwrap().region_count, 15);
        let g = Geometry::plan(256 << 20, 512).unwrap();
        assert_eq!(g.region_count, 7);
        assert!(g.max_value_capacity() >= 16 << 20);
    }

    #[test]
    fn summary_records_and_trailers_round_trip() {
        let r = SummaryRecord {
            hash: 0x0123_4567_89ab_cdef,
            entry_seq: 1 << 40,
            offset_units: 17,
            len_units: 300,
            tombstone: true,
        };
        let mut b = [0u8; SUMMARY_RECORD_LEN];
        r.encode(&mut b);
        assert_eq!(SummaryRecord::decode(&b), r);
        let g = Geometry::plan(64 << 20, 512).unwrap();
        for ring in Ring::ALL {
            let t = Trailer {
                sealed: true,
                ring,
                lap: 1 << 33,
                region: 2,
                record_count: 3,
                summary_crc: 4,
                fill: 4096,
                max_entry_seq: 5,
            };
            let mut b = [0u8; TRAILER_LEN];
            t.encode(7, &mut b);
            assert_eq!(Trailer::decode(&b, 7, &g), Some(t));
            assert_eq!(Trailer::decode(&b, 8, &g), None, "another cache's");
        }
    }

    #[test]
    fn superblock_round_trip_and_damage() {
        let g = Geometry::plan(64 << 20, 512).unwrap();
        let sb = Superblock {
            generation: 7,
            cache_id: 99,
            geometry: g,
            created_secs: 1,
            clean: true,
            positions: [
                RingPosition::NONE,
                RingPosition {
                    region: 3,
                    lap: 10,
                    fill: 4096,
                },
            ],
            next_entry_seq: 55,
            next_lap: 11,
        };
        let mut buf = vec![0u8; 4096];
        sb.encode(&mut buf);
        match Superblock::decode(&buf, 64 << 20) {
            SlotContent::Valid(back) => assert_eq!(back, sb),
            other => panic!("{other:?}"),
        }
        buf[60] ^= 1;
        assert!(matches!(
            Superblock::decode(&buf, 64 << 20),
            SlotContent::Damaged
        ));
        buf[8] = 9;
        assert!(matches!(
            Superblock::decode(&buf, 64 << 20),
            SlotContent::OtherVersion(_)
        ));
        assert!(matches!(
            Superblock::decode(&[0u8; 4096], 64 << 20),
            SlotContent::Foreign
        ));
    }

    #[test]
    fn entry_header_round_trip_and_damage() {
        let key = b"some key";
        let crcs = [1u32, 2, 3];
        let h = EntryHeader {
            flags: 0,
            key_len: key.len() as u16,
            value_offset: header_len(key.len(), 150_000) as u32,
            value_len: 150_000,
            entry_seq: 5,
            lap: 6,
            expiry: 0,
            created: 1,
        };
        let mut buf = vec![0u8; h.header_len()];
        h.encode(42, key, &crcs, &mut buf);
        match EntryHeader::decode(&buf, 42, 1 << 20, 512) {
            Decoded::Valid(back) => {
                assert_eq!(back, h);
                assert_eq!(back.key(&buf), key);
                assert_eq!(back.chunk_crc(&buf, 2), 3);
            }
            _ => panic!("valid header rejected"),
        }
        assert!(
            matches!(
                EntryHeader::decode(&buf, 43, 1 << 20, 512),
                Decoded::Invalid
            ),
            "another cache's entry"
        );
        assert!(matches!(
            EntryHeader::decode(&buf[..70], 42, 1 << 20, 512),
            Decoded::Incomplete
        ));
        buf[66] ^= 1;
        assert!(matches!(
            EntryHeader::decode(&buf, 42, 1 << 20, 512),
            Decoded::Invalid
        ));
    }
}

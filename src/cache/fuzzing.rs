//! What the fuzz targets (tests/fuzz.rs, the `fuzzing` feature) reach inside the engine: the
//! decoders of every on-disk structure, run on raw bytes with their invariants checked (a
//! broken one panics, which the target reports), and what a target needs to damage a cache
//! image behind its checksums, so that recovery meets values that pass them.

use super::format::{
    crc, Decoded, EntryHeader, Geometry, SlotContent, Superblock, Trailer, ENTRY_HEADER_LEN,
    ENTRY_MAGIC, SUPERBLOCK_LEN, TRAILER_LEN,
};

/// A geometry the format could have chosen: `capacity` (at least 8 MiB) planned for
/// `alignment` (512 to 64 KiB).
fn geometry(capacity: u64, alignment_log2: u8) -> Option<Geometry> {
    let alignment = 1u32 << (9 + alignment_log2 % 8);
    Geometry::plan(capacity.clamp(8 << 20, 1 << 44), alignment)
}

/// Decodes a superblock from `bytes` on a device of `device_size` bytes. A superblock taken
/// as valid has a sane geometry for that device, and encodes back to itself.
pub fn decode_superblock(bytes: &[u8], device_size: u64) -> bool {
    let SlotContent::Valid(sb) = Superblock::decode(bytes, device_size) else {
        return false;
    };
    {
        assert!(sb.geometry.is_sane(device_size), "{sb:?}");
        let mut again = vec![0u8; SUPERBLOCK_LEN];
        sb.encode(&mut again);
        match Superblock::decode(&again, device_size) {
            SlotContent::Valid(back) => assert_eq!(back, sb),
            _ => panic!("a valid superblock did not survive encoding: {sb:?}"),
        }
    }
    true
}

/// Decodes an entry header from `bytes`. One taken as valid stays within `max_entry_len`,
/// holds its key and chunk checksums in `bytes`, and encodes back to the same header bytes.
pub fn decode_entry_header(bytes: &[u8], cache_id: u64, max_entry_len: u64, unit_log2: u8) -> bool {
    let unit = 1u32 << (9 + unit_log2 % 8);
    let Decoded::Valid(h) = EntryHeader::decode(bytes, cache_id, max_entry_len, unit) else {
        return false;
    };
    {
        assert!(h.key_len > 0 && h.entry_len(unit) <= max_entry_len, "{h:?}");
        assert!(h.value_offset as usize >= h.header_len(), "{h:?}");
        let key = h.key(bytes).to_vec();
        let chunks = super::format::chunk_count(h.value_len);
        let crcs: Vec<u32> = (0..chunks).map(|i| h.chunk_crc(bytes, i)).collect();
        let mut again = vec![0u8; h.header_len()];
        h.encode(cache_id, &key, &crcs, &mut again);
        match EntryHeader::decode(&again, cache_id, max_entry_len, unit) {
            Decoded::Valid(back) => assert_eq!(back, h),
            _ => panic!("a valid entry header did not survive encoding: {h:?}"),
        }
    }
    true
}

/// Decodes a region's tail from `bytes`: the trailer in its last `TRAILER_LEN` bytes, for a
/// cache of the geometry given, and the summary it describes in the bytes before. A trailer
/// taken as valid names a region of the geometry and leaves room for its summary.
pub fn decode_region_tail(bytes: &[u8], cache_id: u64, capacity: u64, alignment_log2: u8) -> bool {
    let Some(g) = geometry(capacity, alignment_log2) else {
        return false;
    };
    if bytes.len() < TRAILER_LEN {
        return false;
    }
    let (summary, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
    let Some(t) = Trailer::decode(trailer, cache_id, &g) else {
        return false;
    };
    {
        assert!(t.region < g.region_count, "{t:?}");
        assert!(
            t.fill + g.tail_len(t.record_count as usize) <= g.region_size,
            "{t:?}"
        );
        if let Some(records) = t.summary_records(summary, cache_id, g.unit) {
            assert_eq!(records.len(), t.record_count as usize);
            let units = t.fill / g.unit as u64;
            assert!(records
                .iter()
                .all(|r| r.offset_units as u64 + r.len_units as u64 <= units));
        }
        let mut again = vec![0u8; TRAILER_LEN];
        t.encode(cache_id, &mut again);
        assert_eq!(Trailer::decode(&again, cache_id, &g), Some(t));
    }
    true
}

/// Where things are in a cache image, from its first superblock.
#[derive(Debug, Clone, Copy)]
pub struct ImageLayout {
    /// The seed of every checksum but the superblock's.
    pub cache_id: u64,
    /// The unit entries and tails are aligned to, in bytes.
    pub unit: u64,
    /// Bytes per region.
    pub region_size: u64,
    /// Regions in the log.
    pub region_count: u32,
    /// Where region 0 starts.
    pub data_start: u64,
}

impl ImageLayout {
    /// The layout of `image`, if its first superblock is intact.
    pub fn of(image: &[u8]) -> Option<ImageLayout> {
        match Superblock::decode(image, image.len() as u64) {
            SlotContent::Valid(sb) => Some(ImageLayout {
                cache_id: sb.cache_id,
                unit: sb.geometry.unit as u64,
                region_size: sb.geometry.region_size,
                region_count: sb.geometry.region_count,
                data_start: sb.geometry.data_start,
            }),
            _ => None,
        }
    }

    /// The offset of `region`'s trailer.
    pub fn trailer_offset(&self, region: u32) -> u64 {
        self.data_start + (region as u64 + 1) * self.region_size - self.unit
    }

    /// The offset of unit `unit` of `region`.
    pub fn unit_offset(&self, region: u32, unit: u64) -> u64 {
        self.data_start + region as u64 * self.region_size + unit * self.unit
    }
}

/// A structure of an image whose checksum `reseal` recomputes after a target changed it.
#[derive(Debug, Clone, Copy)]
pub enum Seal {
    /// The first superblock.
    Superblock,
    /// A region's trailer.
    Trailer(u32),
    /// A region's summary (its checksum is in the trailer, resealed too).
    Summary(u32),
    /// The entry header at a byte offset, if one starts there.
    Entry(u64),
}

/// Recomputes the checksum of `what` in `image`, so that what a target wrote there passes
/// it. Does nothing where the structure is not there (no superblock, no header magic).
pub fn reseal(image: &mut [u8], layout: &ImageLayout, what: Seal) {
    let seal_trailer = |image: &mut [u8], at: usize| {
        if let Some(t) = image.get_mut(at..at + TRAILER_LEN) {
            let c = crc(layout.cache_id, &[&t[..56]]);
            t[56..60].copy_from_slice(&c.to_le_bytes());
        }
    };
    match what {
        Seal::Superblock => {
            let c = crc(0, &[&image[..SUPERBLOCK_LEN - 4]]);
            image[SUPERBLOCK_LEN - 4..SUPERBLOCK_LEN].copy_from_slice(&c.to_le_bytes());
        }
        Seal::Trailer(region) => seal_trailer(image, layout.trailer_offset(region) as usize),
        Seal::Summary(region) => {
            let at = layout.trailer_offset(region) as usize;
            let Some(t) = image.get(at..at + TRAILER_LEN) else {
                return;
            };
            let len = u32::from_le_bytes(t[20..24].try_into().unwrap()) as usize * 24;
            let Some(start) =
                at.checked_sub(len.div_ceil(layout.unit as usize) * layout.unit as usize)
            else {
                return;
            };
            let c = crc(layout.cache_id, &[&image[start..start + len]]);
            image[at + 28..at + 32].copy_from_slice(&c.to_le_bytes());
            seal_trailer(image, at);
        }
        Seal::Entry(offset) => {
            let at = offset as usize;
            let Some(h) = image.get(at..at + ENTRY_HEADER_LEN) else {
                return;
            };
            if u32::from_le_bytes(h[0..4].try_into().unwrap()) != ENTRY_MAGIC {
                return;
            }
            let key_len = u16::from_le_bytes(h[6..8].try_into().unwrap()) as usize;
            let value_len = u64::from_le_bytes(h[16..24].try_into().unwrap());
            let hlen = super::format::header_len(key_len, value_len.min(1 << 30)) as usize;
            let Some(header) = image.get(at..at + hlen) else {
                return;
            };
            let mut copy = header.to_vec();
            copy[8..12].fill(0);
            let c = crc(layout.cache_id, &[&copy]);
            image[at + 8..at + 12].copy_from_slice(&c.to_le_bytes());
        }
    }
}

//! How one cached response is laid out in dcache.
//!
//! A response is a *record* under a key made from Pingora's cache key: a fixed header, the
//! two halves of Pingora's serialized `CacheMeta`, then the body itself when it is at most the
//! inline limit. A larger body is an entry of its own under a key made from the fill's id,
//! which no other fill ever uses: a hit that streams it in pieces can read only that fill's
//! bytes, or fail, never another response's. The record names the fill, so its headers and
//! its body always come from one response.

use std::fmt::Write as _;

const MAGIC: [u8; 4] = *b"DCPR";
const INLINE: u32 = 1;
/// Bytes before the metadata: magic, flags, fill id, body length, the two metadata lengths.
pub const HEADER_LEN: usize = 4 + 4 + 16 + 8 + 4 + 4;

/// A response's record, decoded; the slices borrow the bytes read.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub fill_id: u128,
    pub body_len: u64,
    pub internal_meta: &'a [u8],
    pub header_meta: &'a [u8],
    /// The body when it is stored in the record; `None` when it is an entry of its own.
    pub inline_body: Option<&'a [u8]>,
}

/// Why bytes read under a record's key are not a record.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed record: {}", self.0)
    }
}

impl std::error::Error for Malformed {}

/// The key of the record for a Pingora cache key's combined hash.
pub fn record_key(combined_hash: &str) -> Vec<u8> {
    format!("pingora/record/{combined_hash}").into_bytes()
}

/// The key of the body stored apart for fill `fill_id`.
pub fn body_key(fill_id: u128) -> Vec<u8> {
    let mut key = String::with_capacity(14 + 32);
    key.push_str("pingora/body/");
    write!(key, "{fill_id:032x}").expect("writing to a String");
    key.into_bytes()
}

/// Writes a record's header and metadata into an empty `out`; the body, if inline, is
/// appended after it and the header patched by [`set_body`].
pub fn begin(out: &mut Vec<u8>, fill_id: u128, internal_meta: &[u8], header_meta: &[u8]) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&fill_id.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&len32(internal_meta).to_le_bytes());
    out.extend_from_slice(&len32(header_meta).to_le_bytes());
    out.extend_from_slice(internal_meta);
    out.extend_from_slice(header_meta);
}

/// Records the body's length in a header written by [`begin`], and whether the bytes after the
/// metadata are that body.
pub fn set_body(out: &mut [u8], body_len: u64, inline: bool) {
    let flags = if inline { INLINE } else { 0 };
    out[4..8].copy_from_slice(&flags.to_le_bytes());
    out[24..32].copy_from_slice(&body_len.to_le_bytes());
}

fn len32(bytes: &[u8]) -> u32 {
    u32::try_from(bytes.len()).expect("Pingora's metadata is far below 4 GiB")
}

/// Decodes a record, checking that every length adds up to the bytes read.
pub fn decode(bytes: &[u8]) -> Result<Record<'_>, Malformed> {
    if bytes.len() < HEADER_LEN {
        return Err(Malformed("shorter than its header"));
    }
    if bytes[..4] != MAGIC {
        return Err(Malformed("bad magic"));
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let flags = u32_at(4);
    if flags & !INLINE != 0 {
        return Err(Malformed("unknown flags"));
    }
    let fill_id = u128::from_le_bytes(bytes[8..24].try_into().unwrap());
    let body_len = u64::from_le_bytes(bytes[24..32].try_into().unwrap());
    let internal_len = u32_at(32) as usize;
    let header_len = u32_at(36) as usize;
    let rest = &bytes[HEADER_LEN..];
    if rest.len() < internal_len + header_len {
        return Err(Malformed("metadata longer than the record"));
    }
    let (internal_meta, rest) = rest.split_at(internal_len);
    let (header_meta, rest) = rest.split_at(header_len);
    let inline_body = if flags & INLINE != 0 {
        if rest.len() as u64 != body_len {
            return Err(Malformed("inline body of another length than recorded"));
        }
        Some(rest)
    } else {
        if !rest.is_empty() {
            return Err(Malformed(
                "bytes after the metadata of a record without a body",
            ));
        }
        None
    };
    Ok(Record {
        fill_id,
        body_len,
        internal_meta,
        header_meta,
        inline_body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(body: Option<&[u8]>, body_len: u64) -> Vec<u8> {
        let mut out = Vec::new();
        begin(&mut out, 0xabcdef, b"internal", b"header!");
        if let Some(body) = body {
            out.extend_from_slice(body);
        }
        set_body(&mut out, body_len, body.is_some());
        out
    }

    #[test]
    fn round_trips_inline_and_apart() {
        let inline = encoded(Some(b"the body"), 8);
        let record = decode(&inline).unwrap();
        assert_eq!(record.fill_id, 0xabcdef);
        assert_eq!(record.internal_meta, b"internal");
        assert_eq!(record.header_meta, b"header!");
        assert_eq!(record.inline_body, Some(&b"the body"[..]));

        let apart = encoded(None, 1 << 30);
        let record = decode(&apart).unwrap();
        assert_eq!((record.body_len, record.inline_body), (1 << 30, None));
    }

    #[test]
    fn refuses_every_truncation_and_flipped_length() {
        let good = encoded(Some(b"0123456789"), 10);
        for len in 0..good.len() {
            assert!(decode(&good[..len]).is_err(), "truncated to {len}");
        }
        for at in [0, 4, 24, 32, 36] {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            assert!(decode(&bad).is_err(), "byte {at} flipped");
        }
        let mut trailing = encoded(None, 10);
        trailing.push(0);
        assert!(decode(&trailing).is_err());
    }

    #[test]
    fn keys_name_what_they_hold() {
        assert_eq!(record_key("00ff"), b"pingora/record/00ff");
        assert_eq!(
            body_key(1),
            b"pingora/body/00000000000000000000000000000001".to_vec()
        );
    }
}

//! Gets of large values straight into the caller's buffer. One system call reads the entry:
//! its header units and its last unit into a bounce buffer, everything between into `buf`,
//! so the value is not copied a second time (a 64 KiB copy is about 5% of a 64 KiB get here).
//!
//! Only verified bytes stay in `buf`: whatever went wrong after the read, the part of `buf`
//! it filled is zeroed before the result goes back.

use super::super::format::{header_len, ALIGNED_VALUE_MIN};
use super::super::index::Location;
use super::super::Shared;
use super::Fetched;
use crate::dio::align::round_up;
use crate::dio::buffer::with_bounce;
use crate::error::Result;
use std::sync::atomic::Ordering::Relaxed;

impl Shared {
    /// Where the value starts, if the entry at `loc` has the layout of a value of at least
    /// `ALIGNED_VALUE_MIN` bytes (starting on a unit) and `buf` can take it in place: it is
    /// aligned for the device and holds any value the entry can hold, so that a too-small
    /// buffer is found before it is touched. None: use the bounce buffer.
    pub(super) fn in_place_offset(&self, loc: Location, key: &[u8], buf: &[u8]) -> Option<u64> {
        let unit = self.geometry.unit as u64;
        let elen = self.entry_len(loc);
        // The value starts at the header's length rounded up to a unit, and the header's
        // length counts one checksum per chunk of the value: only one offset agrees with
        // itself.
        let longest_header = self.longest_header(loc, key.len());
        let value_offset = (1..)
            .map(|units| units * unit)
            .take_while(|&at| at <= longest_header && at + ALIGNED_VALUE_MIN <= elen)
            .find(|&at| round_up(header_len(key.len(), elen - at), unit as usize) == at)?;
        (buf.len() as u64 >= elen - value_offset && self.dev.is_memory_aligned(buf))
            .then_some(value_offset)
    }

    /// Reads the entry at `loc` into `buf` in place; `Ok(None)` when it turns out not to have
    /// the layout `in_place_offset` expected (the caller then uses the bounce buffer).
    pub(super) fn get_in_place(
        &self,
        hash: u64,
        loc: Location,
        key: &[u8],
        buf: &mut [u8],
        value_offset: u64,
    ) -> Result<Option<Fetched>> {
        let unit = self.geometry.unit as usize;
        let head_len = value_offset as usize;
        let middle = self.entry_len(loc) as usize - head_len - unit;
        // How much of `buf` may hold bytes not yet verified.
        let mut filled = middle;
        let outcome = with_bounce(head_len + unit, self.bounce_align(), |b| {
            let (head, tail) = b.split_at_mut(head_len);
            if !self.read_entry_parts(loc, 0, &mut [head, &mut buf[..middle], tail])? {
                return Err(self.corrupt(hash, loc));
            }
            let h = match self.check_header(hash, loc, key, head)? {
                Some(h) if h.value_offset as u64 == value_offset => h,
                _ => return Ok(None),
            };
            // The entry ends on the first unit boundary after the value: the value's last
            // bytes are in the tail unit.
            let value_len = h.value_len as usize;
            let in_tail = value_len - middle;
            buf[middle..value_len].copy_from_slice(&tail[..in_tail]);
            filled = value_len;
            if !h.verify_chunks(head, 0, &buf[..value_len]) {
                return Err(self.corrupt(hash, loc));
            }
            Ok(Some(value_len))
        })?;
        match outcome {
            Ok(Some(n)) => {
                self.stats.hits.fetch_add(1, Relaxed);
                Ok(Some(Fetched::Copied(n)))
            }
            other => {
                buf[..filled].fill(0);
                other.map(|_| None)
            }
        }
    }
}

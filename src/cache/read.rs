//! The read side. Every byte returned has been checked: the entry's header checksum, the
//! full key, the expiry, and the checksum of each value chunk that is returned. Anything that
//! fails is a miss, never another key's bytes.

use super::engine::Engine;
use super::eviction::Survivor;
use super::format::{header_len, Decoded, EntryHeader, ALIGNED_VALUE_MIN, CHUNK_SIZE};
use super::index::Location;
use super::{now_secs, parts_len};
use crate::dio::align::{round_down, round_up};
use crate::dio::buffer::with_bounce;
use crate::error::{Error, ErrorKind, Result};
use std::sync::atomic::Ordering::Relaxed;

/// What a get found.
///
/// ```
/// # let path = std::env::temp_dir().join(format!("dcache-doc-fetched-{}", std::process::id()));
/// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
/// cache.put(b"k", &[5u8; 100], 0).unwrap();
/// let mut small = [0u8; 10];
/// assert_eq!(cache.get(b"k", &mut small).unwrap(), dcache::Fetched::TooSmall(100));
/// let mut big = [0u8; 100];
/// assert_eq!(cache.get(b"k", &mut big).unwrap(), dcache::Fetched::Copied(100));
/// # drop(cache); std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The value, this many bytes, is in the caller's buffer.
    Copied(usize),
    /// The value is this many bytes: more than the buffer holds. The buffer is untouched.
    TooSmall(u64),
}

/// An entry the index pointed a key at, and the lap its region held when it was looked up
/// (`RACED` if the region was entered since): if the lap moved on since, a failed check
/// means the read raced a reclaim (the bytes at `loc` belong to another lap), not that the
/// entry is damaged.
#[derive(Clone, Copy)]
struct Found {
    hash: u64,
    loc: Location,
    lap: u64,
}

/// A read of a whole entry that a caller makes on the device itself (`plan_entry_read`):
/// `len` bytes at `offset`.
pub(crate) struct EntryRead {
    found: Found,
    pub offset: u64,
    pub len: usize,
    /// The value's offset in the entry, when its whole units go straight into the caller's
    /// buffer (the head and the last unit into the reader's own).
    pub in_place: Option<u64>,
}

/// No region holds this lap.
const RACED: u64 = u64::MAX;

/// Entries up to this size are read whole, in one system call, even for a range read.
const WHOLE_READ_MAX: u64 = 256 << 10;

thread_local! {
    /// Set while this thread runs a read that must not wait for the device (`get_with`):
    /// a read of the device then fails with `Busy` instead.
    static MEMORY_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `read` with reads of the device refused (`Busy`) if `memory_only`.
fn memory_only_if<T>(memory_only: bool, read: impl FnOnce() -> T) -> T {
    if !memory_only {
        return read();
    }
    MEMORY_ONLY.with(|m| m.set(true));
    let got = read();
    MEMORY_ONLY.with(|m| m.set(false));
    got
}

impl Engine {
    /// A get returned the entry at `loc`: count it, and mark the entry read, which eviction
    /// looks at.
    fn hit(&self, f: Found) {
        self.counters.hits.fetch_add(1, Relaxed);
        self.index.mark_read(f.hash, f.loc);
    }

    fn miss(&self) -> Error {
        self.counters.misses.fetch_add(1, Relaxed);
        Error::new(ErrorKind::NotFound, "key not found")
    }

    fn entry_len(&self, loc: Location) -> u64 {
        loc.len_units as u64 * self.device.geometry().unit as u64
    }

    /// Reads `out.len()` bytes of the entry at `loc`, from `rel` on: from the region buffer
    /// if it holds them, else from the device. False if the device had fewer bytes.
    fn read_entry(&self, loc: Location, rel: u64, out: &mut [u8]) -> Result<bool> {
        self.read_entry_parts(loc, rel, &mut [out])
    }

    /// `read_entry` into several buffers filled in order (one system call from the device).
    fn read_entry_parts(&self, loc: Location, rel: u64, out: &mut [&mut [u8]]) -> Result<bool> {
        let g = self.device.geometry();
        let region = g.region_of(loc.unit);
        if self.head.is_buffered(region) && self.log.lock().copy_if_buffered(loc, rel, out) {
            return Ok(true);
        }
        // A region being sealed: its buffer holds the bytes until the write is done.
        let in_region = (loc.unit as u64 % g.units_per_region()) * g.unit as u64 + rel;
        if self.writeback.copy_if_sealing(region, in_region, out) {
            return Ok(true);
        }
        if MEMORY_ONLY.with(|m| m.get()) {
            return Err(Error::new(ErrorKind::Busy, "the entry is on the device"));
        }
        let offset = g.data_start + loc.unit as u64 * g.unit as u64 + rel;
        Ok(self.device.read_parts_for_get(out, offset)? == parts_len(out))
    }

    /// Whether the entry at `loc` was written in the lap its region holds now.
    fn written_this_lap(&self, loc: Location, h: &EntryHeader) -> bool {
        let region = self.region_of(loc);
        h.lap == self.head.lap_of(region)
    }

    /// The entry at `loc` failed verification. If the index still points there it is
    /// corrupt: count it and forget it. If not, a newer put or a reclaim overtook this read,
    /// which is an ordinary miss.
    fn corrupt(&self, f: Found) -> Error {
        if !self.raced(f) && self.index.remove_if_at(f.hash, f.loc) {
            self.counters.checksum_failures.fetch_add(1, Relaxed);
        }
        self.miss()
    }

    /// Whether the region of `f` started a new lap since `f` was looked up.
    fn raced(&self, f: Found) -> bool {
        self.head.lap_of(self.region_of(f.loc)) != f.lap
    }

    fn region_of(&self, loc: Location) -> u32 {
        self.device.geometry().region_of(loc.unit)
    }

    /// Verifies the header at the start of `b` (read from `loc`) for `key`. `Ok(None)` asks
    /// for the header's full length when `b` is too short.
    fn check_header(&self, f: Found, key: &[u8], b: &[u8]) -> Result<Option<EntryHeader>> {
        let (hash, loc) = (f.hash, f.loc);
        let unit = self.device.geometry().unit;
        let h = match EntryHeader::decode(b, self.device.cache_id(), self.entry_len(loc), unit) {
            Decoded::Valid(h) if h.entry_len(unit) == self.entry_len(loc) => h,
            Decoded::Incomplete => return Ok(None),
            _ => return Err(self.corrupt(f)),
        };
        if !self.written_this_lap(loc, &h) {
            return Err(self.corrupt(f));
        }
        if h.key(b) != key || h.is_tombstone() {
            // Another key with the same 48 bits of hash: its entry, not ours. Unless a reclaim
            // overtook this read, and another entry took the place.
            if !self.raced(f) && self.index.get(hash) == Some(loc) {
                self.counters.checksum_failures.fetch_add(1, Relaxed);
            }
            return Err(self.miss());
        }
        if h.is_expired(now_secs()) {
            if self.index.remove_if_at(hash, loc) {
                self.counters.expirations.fetch_add(1, Relaxed);
            }
            return Err(self.miss());
        }
        Ok(Some(h))
    }

    fn locate(&self, key: &[u8]) -> Result<Found> {
        let hash = self.hash(key);
        // The epoch before the index: a region entered after this moment has a higher lap,
        // and a reclaim of the entry's region after this moment shows as a newer lap when
        // the entry's checks fail.
        let epoch = self.head.epoch();
        match self.index.get(hash) {
            Some(loc) => {
                let lap = self.head.lap_of(self.region_of(loc));
                Ok(Found {
                    hash,
                    loc,
                    lap: if lap > epoch { RACED } else { lap },
                })
            }
            None => Err(self.miss()),
        }
    }

    /// The longest header, in whole units, that the entry at `loc` can have with a key of
    /// `key_len`: one for a value as long as the whole entry.
    fn longest_header(&self, loc: Location, key_len: usize) -> u64 {
        round_up(
            header_len(key_len, self.entry_len(loc)),
            self.device.geometry().unit as usize,
        )
    }

    /// The shortest value an entry of `loc`'s length can hold with a key of `key_len`:
    /// the entry ends in the unit holding the value's last byte, after its header.
    fn least_value_len(&self, loc: Location, key_len: usize) -> u64 {
        let unit = self.device.geometry().unit as u64;
        (self.entry_len(loc) + 1).saturating_sub(self.longest_header(loc, key_len) + unit)
    }

    /// Whether a get of `key` would likely read memory only: the key is absent, or its
    /// entry is in a region buffer (a cheap look, without reading the entry).
    pub(crate) fn likely_in_memory(&self, key: &[u8]) -> bool {
        match self.index.get(self.hash(key)) {
            None => true,
            Some(loc) => {
                let region = self.region_of(loc);
                self.head.is_buffered(region) || self.writeback.is_sealing(region)
            }
        }
    }

    /// `get`, or, with `memory_only`, `Busy` where it would read the device (nothing is
    /// counted then): the completion queue serves what it can in the submitting call.
    pub(crate) fn get_with(
        &self,
        key: &[u8],
        buf: &mut [u8],
        memory_only: bool,
    ) -> Result<Fetched> {
        memory_only_if(memory_only, || self.get(key, buf))
    }

    /// `get_range`, as `get_with` is `get`.
    pub(crate) fn get_range_with(
        &self,
        key: &[u8],
        offset: u64,
        out: &mut [u8],
        memory_only: bool,
    ) -> Result<usize> {
        memory_only_if(memory_only, || self.get_range(key, offset, out))
    }

    pub(crate) fn get(&self, key: &[u8], buf: &mut [u8]) -> Result<Fetched> {
        let mut f = self.locate(key)?;
        if (buf.len() as u64) < self.least_value_len(f.loc, key.len()) {
            // Too small whatever the header says: read only the header for the size.
            let size = self.value_size(key)?;
            if size > buf.len() as u64 {
                return Ok(Fetched::TooSmall(size));
            }
            // A put of a smaller value came in between: read that one.
            f = self.locate(key)?;
        }
        if let Some(value_offset) = self.in_place_offset(f.loc, key, buf) {
            if let Some(fetched) = self.get_in_place(f, key, buf, value_offset)? {
                return Ok(fetched);
            }
        }
        with_bounce(
            self.entry_len(f.loc) as usize,
            self.device.buffer_align(),
            |b| {
                if !self.read_entry(f.loc, 0, b)? {
                    return Err(self.corrupt(f));
                }
                self.value_from_entry(f, key, b, buf)
            },
        )?
    }

    /// The value of the whole entry `b` (read from `f.loc`), verified, into `buf`.
    fn value_from_entry(&self, f: Found, key: &[u8], b: &[u8], buf: &mut [u8]) -> Result<Fetched> {
        let Some(h) = self.check_header(f, key, b)? else {
            return Err(self.corrupt(f));
        };
        let (voff, vlen) = (h.value_offset as usize, h.value_len as usize);
        if buf.len() < vlen {
            return Ok(Fetched::TooSmall(vlen as u64));
        }
        let value = &b[voff..voff + vlen];
        if !h.verify_chunks(b, 0, value) {
            return Err(self.corrupt(f));
        }
        buf[..vlen].copy_from_slice(value);
        self.hit(f);
        Ok(Fetched::Copied(vlen))
    }

    /// Where `key`'s entry lies on the device, for a reader that reads it whole there (the
    /// io_uring queue) and then hands it to `finish_get` or `finish_get_range`. A miss if
    /// the index has no entry for it.
    /// With `into`, the buffer of a whole-value get: where the value starts in the entry if
    /// it can be read straight into that buffer (`in_place`, as `get` does).
    pub(crate) fn plan_entry_read(&self, key: &[u8], into: Option<&[u8]>) -> Result<EntryRead> {
        let found = self.locate(key)?;
        let g = self.device.geometry();
        Ok(EntryRead {
            found,
            offset: g.data_start + found.loc.unit as u64 * g.unit as u64,
            len: self.entry_len(found.loc) as usize,
            in_place: into.and_then(|buf| self.in_place_offset(found.loc, key, buf)),
        })
    }

    /// `finish_get` for a read made in place (`r.in_place`): `b` holds the entry's head and
    /// its last unit, `buf` the value's whole units; `res` is the bytes read in all.
    pub(crate) fn finish_get_in_place(
        &self,
        r: &EntryRead,
        key: &[u8],
        b: &[u8],
        buf: &mut [u8],
        read: usize,
    ) -> Result<Fetched> {
        let value_offset = r.in_place.expect("an in-place read");
        let unit = self.device.geometry().unit as usize;
        let middle = r.len - value_offset as usize - unit;
        let mut filled = middle;
        let outcome = match read == r.len {
            true => self.verify_in_place(r.found, key, b, buf, value_offset, &mut filled),
            false => Err(self.corrupt(r.found)),
        };
        match self.end_in_place(r.found, buf, filled, outcome)? {
            Some(fetched) => Ok(fetched),
            // The header put the value elsewhere (a newer entry took the place): read again.
            None => self.get(key, buf),
        }
    }

    /// `get`, from `entry`: the bytes read for `r` (fewer than `r.len` if the device had
    /// fewer), checked as `get` checks them.
    pub(crate) fn finish_get(
        &self,
        r: &EntryRead,
        key: &[u8],
        entry: &[u8],
        buf: &mut [u8],
    ) -> Result<Fetched> {
        if entry.len() < r.len {
            return Err(self.corrupt(r.found));
        }
        self.value_from_entry(r.found, key, entry, buf)
    }

    /// `get_range`, from `entry`, as `finish_get` is `get`.
    pub(crate) fn finish_get_range(
        &self,
        r: &EntryRead,
        key: &[u8],
        offset: u64,
        entry: &[u8],
        out: &mut [u8],
    ) -> Result<usize> {
        if entry.len() < r.len {
            return Err(self.corrupt(r.found));
        }
        let n = match self.range_from_entry(r.found, key, offset, out, entry)? {
            RangePlan::Done(n) => n,
            RangePlan::Read(span) => self.read_span(r.found, offset, &span, out)?,
        };
        self.hit(r.found);
        Ok(n)
    }

    /// How much of an entry to read to be sure to have its whole header for `key`.
    fn header_units_len(&self, loc: Location, key: &[u8]) -> usize {
        self.longest_header(loc, key.len()).min(self.entry_len(loc)) as usize
    }

    /// How much of an entry a range read reads first: the header, or everything for a small
    /// entry (one read then serves any range of it).
    fn header_probe_len(&self, loc: Location, key: &[u8]) -> usize {
        let elen = self.entry_len(loc);
        if elen <= WHOLE_READ_MAX {
            return elen as usize;
        }
        self.header_units_len(loc, key)
    }

    /// At least the length of the value under `key`: its entry's length, from the index in
    /// memory (no read of the device). `NotFound` if the index holds nothing for it.
    #[cfg(feature = "tokio")]
    pub(crate) fn value_len_bound(&self, key: &[u8]) -> Result<u64> {
        Ok(self.entry_len(self.locate(key)?.loc))
    }

    pub(crate) fn value_size(&self, key: &[u8]) -> Result<u64> {
        let f = self.locate(key)?;
        with_bounce(
            self.header_units_len(f.loc, key),
            self.device.buffer_align(),
            |b| {
                if !self.read_entry(f.loc, 0, b)? {
                    return Err(self.corrupt(f));
                }
                match self.check_header(f, key, b)? {
                    Some(h) => Ok(h.value_len),
                    None => Err(self.corrupt(f)),
                }
            },
        )?
    }

    pub(crate) fn get_range(&self, key: &[u8], offset: u64, out: &mut [u8]) -> Result<usize> {
        let f = self.locate(key)?;
        let n = match self.plan_range(f, key, offset, out)? {
            RangePlan::Done(n) => n,
            RangePlan::Read(span) => self.read_span(f, offset, &span, out)?,
        };
        self.hit(f);
        Ok(n)
    }

    /// Reads the entry's header first: the value's place, length and the checksums of the
    /// chunks the range touches. When what it read holds the whole range, the range is
    /// served from there.
    fn plan_range(&self, f: Found, key: &[u8], offset: u64, out: &mut [u8]) -> Result<RangePlan> {
        let loc = f.loc;
        let probe = self.header_probe_len(loc, key);
        with_bounce(
            probe,
            self.device.buffer_align(),
            |b| -> Result<RangePlan> {
                if !self.read_entry(loc, 0, b)? {
                    return Err(self.corrupt(f));
                }
                self.range_from_entry(f, key, offset, out, b)
            },
        )?
    }

    /// What a range read needs beyond `b`, the start of the entry at `f.loc` (its header
    /// at least): nothing if `b` holds the range, which is then copied into `out`.
    fn range_from_entry(
        &self,
        f: Found,
        key: &[u8],
        offset: u64,
        out: &mut [u8],
        b: &[u8],
    ) -> Result<RangePlan> {
        let Some(h) = self.check_header(f, key, b)? else {
            return Err(self.corrupt(f));
        };
        if offset > h.value_len {
            return Err(Error::new(
                ErrorKind::Range,
                format!(
                    "offset {offset} is past the end of the {}-byte value",
                    h.value_len
                ),
            ));
        }
        let n = out.len().min((h.value_len - offset) as usize);
        if n == 0 {
            return Ok(RangePlan::Done(0));
        }
        let (c0, c1) = (offset / CHUNK_SIZE, (offset + n as u64 - 1) / CHUNK_SIZE);
        let span_start = h.value_offset as u64 + c0 * CHUNK_SIZE;
        let span_end = h.value_offset as u64 + ((c1 + 1) * CHUNK_SIZE).min(h.value_len);
        if span_end as usize <= b.len() {
            if !h.verify_chunks(b, c0, &b[span_start as usize..span_end as usize]) {
                return Err(self.corrupt(f));
            }
            let from = (h.value_offset as u64 + offset) as usize;
            out[..n].copy_from_slice(&b[from..from + n]);
            return Ok(RangePlan::Done(n));
        }
        Ok(RangePlan::Read(Span {
            start: span_start,
            end: span_end,
            value_offset: h.value_offset as u64,
            n,
            crcs: (c0..=c1).map(|i| h.chunk_crc(b, i)).collect(),
        }))
    }

    /// Reads the whole chunks of `span`, checks them, and copies the range into `out`.
    fn read_span(&self, f: Found, offset: u64, span: &Span, out: &mut [u8]) -> Result<usize> {
        let loc = f.loc;
        let unit = self.device.geometry().unit as usize;
        let (start, end) = (round_down(span.start, unit), round_up(span.end, unit));
        with_bounce((end - start) as usize, self.device.buffer_align(), |b| {
            if !self.read_entry(loc, start, b)? {
                return Err(self.corrupt(f));
            }
            let chunks = &b[(span.start - start) as usize..(span.end - start) as usize];
            let intact = chunks
                .chunks(CHUNK_SIZE as usize)
                .zip(&span.crcs)
                .all(|(c, crc)| crc32c::crc32c(c) == *crc);
            if !intact {
                return Err(self.corrupt(f));
            }
            let from = (span.value_offset + offset - start) as usize;
            out[..span.n].copy_from_slice(&b[from..from + span.n]);
            Ok(span.n)
        })?
    }
}

impl Engine {
    // Gets of large values straight into the caller's buffer. One system call reads the entry:
    // its header units and its last unit into a bounce buffer, everything between into `buf`,
    // so the value is not copied a second time (a 64 KiB copy is about 5% of a 64 KiB get here).
    //
    // Only verified bytes stay in `buf`: whatever went wrong after the read, the part of `buf`
    // it filled is zeroed before the result goes back.

    /// Where the value starts, if the entry at `loc` has the layout of a value of at least
    /// `ALIGNED_VALUE_MIN` bytes (starting on a unit) and `buf` can take it in place: it is
    /// aligned for the device and holds any value the entry can hold, so that a too-small
    /// buffer is found before it is touched. None: use the bounce buffer.
    fn in_place_offset(&self, loc: Location, key: &[u8], buf: &[u8]) -> Option<u64> {
        let unit = self.device.geometry().unit as u64;
        let elen = self.entry_len(loc);
        // The value starts at the header's length rounded up to a unit, and the header's
        // length counts one checksum per chunk of the value: only one offset agrees with
        // itself.
        let longest_header = self.longest_header(loc, key.len());
        let value_offset = (1..)
            .map(|units| units * unit)
            .take_while(|&at| at <= longest_header && at + ALIGNED_VALUE_MIN <= elen)
            .find(|&at| round_up(header_len(key.len(), elen - at), unit as usize) == at)?;
        (buf.len() as u64 >= elen - value_offset && self.device.file().is_memory_aligned(buf))
            .then_some(value_offset)
    }

    /// Reads the entry at `loc` into `buf` in place; `Ok(None)` when it turns out not to have
    /// the layout `in_place_offset` expected (the caller then uses the bounce buffer).
    fn get_in_place(
        &self,
        f: Found,
        key: &[u8],
        buf: &mut [u8],
        value_offset: u64,
    ) -> Result<Option<Fetched>> {
        let loc = f.loc;
        let unit = self.device.geometry().unit as usize;
        let head_len = value_offset as usize;
        let middle = self.entry_len(loc) as usize - head_len - unit;
        // How much of `buf` may hold bytes not yet verified.
        let mut filled = middle;
        let outcome = with_bounce(head_len + unit, self.device.buffer_align(), |b| {
            let (head, tail) = b.split_at_mut(head_len);
            match self.read_entry_parts(loc, 0, &mut [head, &mut buf[..middle], tail]) {
                Ok(true) => {}
                Ok(false) => return Err(self.corrupt(f)),
                // Refused before any read (`memory_only`): nothing to clear.
                Err(e) if e.kind() == ErrorKind::Busy => {
                    filled = 0;
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
            self.verify_in_place(f, key, b, buf, value_offset, &mut filled)
        })?;
        self.end_in_place(f, buf, filled, outcome)
    }

    /// Checks an entry read in place: its header and last unit in `b` (`value_offset`
    /// bytes, then a unit), the value's whole units in `buf`. Moves the value's last bytes
    /// into `buf`; `filled` says how much of `buf` may hold unverified bytes. `Ok(None)`
    /// when the header puts the value elsewhere.
    fn verify_in_place(
        &self,
        f: Found,
        key: &[u8],
        b: &[u8],
        buf: &mut [u8],
        value_offset: u64,
        filled: &mut usize,
    ) -> Result<Option<usize>> {
        let (head, tail) = b.split_at(value_offset as usize);
        let middle = *filled;
        let h = match self.check_header(f, key, head)? {
            Some(h) if h.value_offset as u64 == value_offset => h,
            _ => return Ok(None),
        };
        // The entry ends on the first unit boundary after the value: the value's last
        // bytes are in the tail unit.
        let value_len = h.value_len as usize;
        let in_tail = value_len - middle;
        buf[middle..value_len].copy_from_slice(&tail[..in_tail]);
        *filled = value_len;
        if !h.verify_chunks(head, 0, &buf[..value_len]) {
            return Err(self.corrupt(f));
        }
        Ok(Some(value_len))
    }

    /// Counts a verified in-place read as a hit; otherwise zeroes what `buf` got.
    fn end_in_place(
        &self,
        f: Found,
        buf: &mut [u8],
        filled: usize,
        outcome: Result<Option<usize>>,
    ) -> Result<Option<Fetched>> {
        match outcome {
            Ok(Some(n)) => {
                self.hit(f);
                Ok(Some(Fetched::Copied(n)))
            }
            other => {
                buf[..filled].fill(0);
                other.map(|_| None)
            }
        }
    }
}

impl Engine {
    /// The entry at `at`, whole, if it verifies as `hash`'s, of the lap its region holds,
    /// live and unexpired: a survivor of a reclaim, to be written again.
    pub(super) fn read_survivor(&self, hash: u64, at: Location) -> Option<Survivor> {
        let g = self.device.geometry();
        let len = self.entry_len(at);
        let mut bytes = vec![0u8; len as usize];
        if !self.read_entry(at, 0, &mut bytes).ok()? {
            return None;
        }
        let h = match EntryHeader::decode(&bytes, self.device.cache_id(), len, g.unit) {
            Decoded::Valid(h) if h.entry_len(g.unit) == len => h,
            _ => return None,
        };
        let value = &bytes[h.value_offset as usize..(h.value_offset as u64 + h.value_len) as usize];
        let intact = self.written_this_lap(at, &h)
            && !h.is_tombstone()
            && !h.is_expired(now_secs())
            && self.hash(h.key(&bytes)) == hash
            && h.verify_chunks(&bytes, 0, value);
        intact.then_some(Survivor {
            hash,
            at,
            bytes,
            reads: 0,
        })
    }
}

/// What `Cache::verify_all` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
///
/// ```
/// # let path = std::env::temp_dir().join(format!("dcache-doc-verify-{}", std::process::id()));
/// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
/// cache.put(b"k", b"v", 0).unwrap();
/// cache.flush().unwrap();
/// let report = cache.verify_all(|_done, _total| {}).unwrap();
/// assert_eq!((report.entries, report.damaged), (1, 0));
/// # drop(cache); std::fs::remove_file(&path).unwrap();
/// ```
pub struct VerifyReport {
    /// Entries read.
    pub entries: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Entries whose header, key hash or value checksums did not verify.
    pub damaged: u64,
}

impl Engine {
    /// Reads and verifies every entry in the index: header CRC, that the key it holds hashes
    /// to this very slot, and every value chunk. `progress(done, total)` is called as it goes.
    pub(crate) fn verify_all(&self, mut progress: impl FnMut(u64, u64)) -> Result<VerifyReport> {
        let locations = self.index.locations();
        let total = locations.len() as u64;
        let mut report = VerifyReport::default();
        for (i, loc) in locations.into_iter().enumerate() {
            let intact = with_bounce(
                self.entry_len(loc) as usize,
                self.device.buffer_align(),
                |b| -> Result<bool> {
                    if !self.read_entry(loc, 0, b)? {
                        return Ok(false);
                    }
                    let h = match EntryHeader::decode(
                        b,
                        self.device.cache_id(),
                        self.entry_len(loc),
                        self.device.geometry().unit,
                    ) {
                        Decoded::Valid(h) => h,
                        _ => return Ok(false),
                    };
                    let value =
                        &b[h.value_offset as usize..(h.value_offset as u64 + h.value_len) as usize];
                    Ok(self.index.get(self.hash(h.key(b))) == Some(loc)
                        && self.written_this_lap(loc, &h)
                        && h.verify_chunks(b, 0, value))
                },
            )??;
            report.entries += 1;
            report.bytes += self.entry_len(loc);
            if !intact {
                report.damaged += 1;
            }
            progress(i as u64 + 1, total);
        }
        Ok(report)
    }
}

/// What a range read does after reading the entry's header.
enum RangePlan {
    /// The range was in what the header read brought: this many bytes are in `out`.
    Done(usize),
    /// Read these chunks.
    Read(Span),
}

/// The chunks of a value that hold a range, and what to check them against.
struct Span {
    /// Where the first chunk starts and the last ends, in bytes from the entry's start.
    start: u64,
    end: u64,
    value_offset: u64,
    /// The range's length.
    n: usize,
    /// The chunks' checksums, from the header.
    crcs: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::super::testing::{self, MIB};
    use super::Fetched;
    use crate::cache::Cache;
    use crate::dio::AlignedBuf;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    /// Gets into an aligned buffer (the in-place path for large values) or a Vec (the
    /// bounce buffer), whichever `aligned` says.
    fn get_either(c: &Cache, key: &[u8], aligned: bool) -> Option<Vec<u8>> {
        if !aligned {
            return testing::get(c, key);
        }
        let mut buf = AlignedBuf::new(c.max_value_size() as usize, 4096).unwrap();
        match c.get(key, buf.as_mut_slice()) {
            Ok(Fetched::Copied(n)) => Some(buf.as_slice()[..n].to_vec()),
            Ok(Fetched::TooSmall(n)) => panic!("too small for {n}"),
            Err(e) if e.kind() == crate::ErrorKind::NotFound => None,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn an_overwrite_racing_a_get_gives_one_whole_version_never_a_mix() {
        let dir = testing::scratch();
        let (_, c) = testing::create(dir.path(), "c", 64 * MIB);
        let key = b"hot";
        c.put(key, &testing::value(key, 0, 1000), 0).unwrap();
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut version = 1;
                while !stop.load(Ordering::Relaxed) {
                    // Small values, and large ones read in place, in turn.
                    let len = 1000 + (version as usize * 7919) % 200_000;
                    c.put(key, &testing::value(key, version, len), 0).unwrap();
                    version += 1;
                }
            });
            let deadline = Instant::now() + Duration::from_millis(1500);
            let mut gets = 0u64;
            while Instant::now() < deadline {
                let v =
                    get_either(&c, key, gets.is_multiple_of(2)).expect("the key is always there");
                assert!(
                    testing::version_of(key, &v).is_some(),
                    "a mixed or wrong value"
                );
                gets += 1;
            }
            stop.store(true, Ordering::Relaxed);
            assert!(gets > 100);
        });
        assert_eq!(c.stats().checksum_failures, 0);
    }

    #[test]
    fn a_get_racing_the_reclaim_of_its_region_is_a_miss_or_the_right_bytes() {
        let dir = testing::scratch();
        // 7 regions of 1 MiB: a region is reclaimed every ten puts.
        let (_, c) = testing::create(dir.path(), "c", 8 * MIB);
        let written = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..1500 {
                    let key = format!("k{i}").into_bytes();
                    c.put(&key, &testing::value(&key, 1, 100_000), 0).unwrap();
                    written.store(i + 1, Ordering::Release);
                }
            });
            let (mut hits, mut misses) = (0u64, 0u64);
            let mut r = 1u64;
            while written.load(Ordering::Acquire) < 1500 {
                let n = written.load(Ordering::Acquire).max(1);
                // The oldest live keys, whose regions are the next to go.
                r = r
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let i = n.saturating_sub(70) + (r >> 33) as usize % 70.min(n);
                let key = format!("k{i}").into_bytes();
                match get_either(&c, &key, r.is_multiple_of(2)) {
                    Some(v) => {
                        assert_eq!(testing::version_of(&key, &v), Some(1), "k{i}");
                        hits += 1;
                    }
                    None => misses += 1,
                }
            }
            assert!(hits > 0 && misses > 0, "hits {hits}, misses {misses}");
        });
        let s = c.stats();
        assert_eq!(
            s.checksum_failures, 0,
            "a reclaim overtaking a get is a plain miss"
        );
        assert!(s.evictions > 1000);
    }

    #[test]
    fn another_key_with_the_same_hash_is_a_miss_not_its_value() {
        let dir = testing::scratch();
        let (_, c) = testing::create(dir.path(), "c", 8 * MIB);
        c.put(b"a", &testing::value(b"a", 1, 5000), 0).unwrap();
        let at_a = c.engine.index.get(c.engine.hash(b"a")).unwrap();
        // Make "b" collide with "a" in the index, as two keys with the same hash would.
        c.engine.index.insert(c.engine.hash(b"b"), at_a);
        assert_eq!(testing::get(&c, b"b"), None);
        assert_eq!(c.stats().checksum_failures, 1);
        assert!(testing::get(&c, b"a").is_some());
    }

    #[test]
    fn damage_on_the_device_is_a_miss_and_the_entry_is_forgotten() {
        let dir = testing::scratch();
        let (path, c) = testing::create(dir.path(), "c", 8 * MIB);
        for i in 0..12 {
            let key = format!("k{i}").into_bytes();
            c.put(&key, &testing::value(&key, 1, 100_000), 0).unwrap();
        }
        c.flush().unwrap();
        // k3 is in region 0, sealed and written: gets of it go to the device.
        let g = *c.engine.device.geometry();
        let loc = c.engine.index.get(c.engine.hash(b"k3")).unwrap();
        let value_at = g.data_start + loc.unit as u64 * g.unit as u64 + 50_000;
        let byte = std::fs::read(&path).unwrap()[value_at as usize];
        testing::damage(&path, value_at, &[!byte]);
        let entries = c.stats().entries;
        assert_eq!(testing::get(&c, b"k3"), None);
        assert_eq!(c.stats().checksum_failures, 1);
        assert_eq!(
            c.stats().entries,
            entries - 1,
            "the damaged entry left the index"
        );
        assert_eq!(testing::get(&c, b"k3"), None);
        assert_eq!(c.stats().checksum_failures, 1, "and is not read again");
        assert!(testing::get(&c, b"k4").is_some());
    }

    #[test]
    fn a_range_read_checks_the_chunks_it_returns_and_only_those() {
        let dir = testing::scratch();
        let (path, c) = testing::create(dir.path(), "c", 8 * MIB);
        let v = testing::value(b"big", 1, 300_000);
        c.put(b"big", &v, 0).unwrap();
        for i in 0..12 {
            let key = format!("k{i}").into_bytes();
            c.put(&key, &testing::value(&key, 1, 100_000), 0).unwrap();
        }
        c.flush().unwrap();
        let g = *c.engine.device.geometry();
        let loc = c.engine.index.get(c.engine.hash(b"big")).unwrap();
        // The value starts on a unit after its header; damage a byte of its third chunk.
        let entry_at = g.data_start + loc.unit as u64 * g.unit as u64;
        let value_at = entry_at + g.unit as u64;
        let bad = value_at + 2 * (64 << 10) + 100;
        let byte = std::fs::read(&path).unwrap()[bad as usize];
        testing::damage(&path, bad, &[!byte]);
        let mut out = vec![0u8; 1000];
        assert_eq!(c.get_range(b"big", 10, &mut out).unwrap(), 1000);
        assert_eq!(
            &out[..],
            &v[10..1010],
            "the first chunk is intact and served"
        );
        let err = c.get_range(b"big", 2 * (64 << 10), &mut out).unwrap_err();
        assert_eq!(
            err.kind(),
            crate::ErrorKind::NotFound,
            "the damaged chunk is a miss"
        );
        assert_eq!(c.stats().checksum_failures, 1);
    }
}

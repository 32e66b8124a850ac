//! `dcache_*`: the cache for C.

use super::args;
use super::boundary;
use super::file::{alignment, io_mode};
use super::result::dcache_result;
use crate::cache::{Admission, Cache, CacheOptions, Fetched, DEFAULT_METRICS_INTERVAL};
use crate::error::{Error, ErrorKind, Result};
use std::ffi::c_char;
use std::time::Duration;

/// Create the file if it is missing, and format it; a file that exists but is empty (size 0,
/// or holes only) is formatted too. A file or device holding other data is never formatted
/// by this flag.
pub const DCACHE_OPEN_CREATE: u32 = 1;
/// Format even if the path holds other data: destroys it. Required for a block device that
/// does not hold a dcache yet.
pub const DCACHE_OPEN_FORMAT: u32 = 2;
/// Every completed put is durable before it returns (each put is followed by a flush).
pub const DCACHE_OPEN_SYNC_WRITES: u32 = 4;
/// Lookups only: puts, deletes and writers give `DCACHE_READ_ONLY`. Several read-only
/// handles may share a cache; none may while a writable handle has it.
pub const DCACHE_OPEN_READ_ONLY: u32 = 8;

const OPEN_FLAGS: u32 =
    DCACHE_OPEN_CREATE | DCACHE_OPEN_FORMAT | DCACHE_OPEN_SYNC_WRITES | DCACHE_OPEN_READ_ONLY;

/// The longest key, in bytes. Longer keys give `DCACHE_TOO_LARGE`.
pub const DCACHE_MAX_KEY_LEN: u32 = 4096;
// A literal, so that cbindgen writes it into the header; it must equal the engine's limit.
const _: () = assert!(DCACHE_MAX_KEY_LEN as usize == crate::cache::MAX_KEY_LEN);

/// Options for `dcache_open`. Initialise with `dcache_options_init`, then change fields.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct dcache_options {
    /// Set by `dcache_options_init` to sizeof(dcache_options); lets the struct grow.
    pub struct_size: u32,
    /// `DCACHE_IO_*`.
    pub io_mode: u32,
    /// `DCACHE_OPEN_*` flags, or-ed.
    pub flags: u32,
    /// 0 = ask the file or device; else a power of two of at least 512.
    pub alignment: u32,
    /// Bytes. 0 = the existing cache's, file's or block device's size. Needed (at least
    /// 8 MiB) to create a new file. Must match an existing cache's capacity if not 0.
    pub capacity: u64,
    /// Lifetime of entries put with ttl_secs = 0; 0 = they do not expire by age.
    pub default_ttl_secs: u64,
    /// Largest value accepted; 0 = the library default: 16 MiB, or what one region holds on
    /// caches under 256 MiB. More than a region can hold gives `DCACHE_INVALID_ARGUMENT`.
    pub max_value_size: u64,
    /// `DCACHE_ADMIT_ALL` (the default): every put is stored, or fails with a code.
    /// `DCACHE_ADMIT_FILTERED`: a put or `dcache_writer_open` may get `DCACHE_DECLINED`, to
    /// spare the device the writes of a value seen once.
    pub admission: u32,
    /// Bytes per second the cache may write on average (puts, reinsertions, tombstones);
    /// 0 = no limit. Kept under `DCACHE_ADMIT_FILTERED` only: puts over it get
    /// `DCACHE_DECLINED` (an older value of the key is deleted) and reclaims keep fewer
    /// entries; any ten seconds write at most 1.05 times the budget.
    pub write_budget: u64,
    /// NULL (the default), or a NUL-terminated path: the cache writes its Prometheus text
    /// (`dcache_stats_format`) there every `metrics_interval_ms` while it is open, and once
    /// more at `dcache_close`, each time replacing the file whole (node_exporter's textfile
    /// collector reads such files; `dcache stats` reads it while the process holds the
    /// cache). The string is read during `dcache_open` only. A path that cannot be written
    /// fails the open.
    pub metrics_textfile: *const c_char,
    /// How often the metrics textfile is written, in milliseconds; 0 = every 5 seconds.
    /// At least 10 otherwise.
    pub metrics_interval_ms: u32,
}

impl Default for dcache_options {
    fn default() -> Self {
        dcache_options {
            struct_size: std::mem::size_of::<dcache_options>() as u32,
            io_mode: 0,
            flags: 0,
            alignment: 0,
            capacity: 0,
            default_ttl_secs: 0,
            max_value_size: 0,
            admission: DCACHE_ADMIT_ALL,
            write_budget: 0,
            metrics_textfile: std::ptr::null(),
            metrics_interval_ms: 0,
        }
    }
}

/// Every put is stored (the default).
pub const DCACHE_ADMIT_ALL: u32 = 0;
/// A key is stored the second time it misses (see the README's "Admission").
pub const DCACHE_ADMIT_FILTERED: u32 = 1;

fn admission(mode: u32) -> Result<Admission> {
    match mode {
        DCACHE_ADMIT_ALL => Ok(Admission::All),
        DCACHE_ADMIT_FILTERED => Ok(Admission::Filtered),
        other => Err(Error::invalid(format!("unknown admission mode {other}"))),
    }
}

// `dcache_stats`, written by build.rs from dcache_stats.rs.in and the engine's stats table.
include!(concat!(env!("OUT_DIR"), "/dcache_stats.rs"));

/// An open cache. Safe to use from many threads at once.
pub struct dcache {
    pub(crate) inner: Cache,
}

/// # Safety
/// `opts` is NULL or points to a `dcache_options` of at least its `struct_size`.
unsafe fn cache_options(opts: *const dcache_options) -> Result<CacheOptions> {
    let o = args::versioned_struct(opts, dcache_options::default(), "options")?;
    if o.flags & DCACHE_OPEN_READ_ONLY != 0
        && o.flags & (DCACHE_OPEN_CREATE | DCACHE_OPEN_FORMAT) != 0
    {
        return Err(Error::invalid(
            "DCACHE_OPEN_READ_ONLY cannot be combined with DCACHE_OPEN_CREATE or DCACHE_OPEN_FORMAT",
        ));
    }
    if o.flags & !OPEN_FLAGS != 0 {
        return Err(Error::invalid(format!(
            "unknown open flags {:#x}",
            o.flags & !OPEN_FLAGS
        )));
    }
    Ok(CacheOptions {
        io_mode: io_mode(o.io_mode)?,
        create: o.flags & DCACHE_OPEN_CREATE != 0,
        format: o.flags & DCACHE_OPEN_FORMAT != 0,
        sync_writes: o.flags & DCACHE_OPEN_SYNC_WRITES != 0,
        read_only: o.flags & DCACHE_OPEN_READ_ONLY != 0,
        alignment: alignment(o.alignment)?,
        capacity: o.capacity,
        default_ttl_secs: o.default_ttl_secs,
        max_value_size: o.max_value_size,
        admission: admission(o.admission)?,
        write_budget: o.write_budget,
        metrics_textfile: match o.metrics_textfile.is_null() {
            true => None,
            false => Some(args::path(o.metrics_textfile)?),
        },
        metrics_interval: match o.metrics_interval_ms {
            0 => DEFAULT_METRICS_INTERVAL,
            ms => Duration::from_millis(ms as u64),
        },
    })
}

/// The handle behind a pointer.
///
/// # Safety
/// `c` is NULL or a live handle from `dcache_open`.
pub(crate) unsafe fn cache_ref<'a>(c: *const dcache) -> Result<&'a Cache> {
    Ok(&args::get_ref(c, "cache")?.inner)
}

/// # Safety
/// A non-NULL `key` points to `key_len` readable bytes.
pub(crate) unsafe fn key<'a>(key: *const u8, key_len: usize) -> Result<&'a [u8]> {
    if key_len > crate::cache::MAX_KEY_LEN {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "key of {key_len} bytes is longer than the limit of {}",
                crate::cache::MAX_KEY_LEN
            ),
        ));
    }
    let key = args::bytes(key, key_len, "key")?;
    if key.is_empty() {
        return Err(Error::invalid("key is empty"));
    }
    Ok(key)
}

/// The size of `dcache_options` in 0.1.0 (up to `admission`).
const OPTIONS_0_1_0_SIZE: usize = std::mem::offset_of!(dcache_options, admission);

/// Fills the first `size` bytes of `*opts` (at most this header's `sizeof(dcache_options)`)
/// with the defaults: `DCACHE_IO_AUTO`, no flags, detected alignment, the existing capacity,
/// no default TTL, the default `max_value_size`, `DCACHE_ADMIT_ALL`, no write budget; and
/// `struct_size` with that size. This header's `dcache_options_init(opts)` is a macro that
/// calls it with `sizeof *(opts)`. NULL, or a size under 0.1.0's struct, is ignored.
///
/// # Safety
/// `opts` is NULL or points to `size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn dcache_options_init_size(opts: *mut dcache_options, size: usize) {
    boundary::quietly(|| {
        if opts.is_null() || size < OPTIONS_0_1_0_SIZE {
            return;
        }
        let size = size.min(std::mem::size_of::<dcache_options>());
        let defaults = dcache_options {
            struct_size: size as u32,
            ..dcache_options::default()
        };
        // SAFETY: the caller gives `size` writable bytes; `defaults` has at least as many.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&defaults as *const dcache_options).cast::<u8>(),
                opts.cast::<u8>(),
                size,
            )
        }
    })
}

/// Fills `*opts` with the defaults, as `dcache_options_init_size` does for the struct of
/// version 0.1.0 (up to `max_value_size`): the symbol that programs built against that
/// header call. Programs built against this header call `dcache_options_init_size` through
/// the macro of the same name, which fills the whole struct.
///
/// # Safety
/// `opts` is NULL or points to a writable `dcache_options` of version 0.1.0 or later.
#[no_mangle]
pub unsafe extern "C" fn dcache_options_init(opts: *mut dcache_options) {
    // SAFETY: as the caller promises.
    unsafe { dcache_options_init_size(opts, OPTIONS_0_1_0_SIZE) }
}

/// Opens the cache at `path`, a regular file or a block device. `opts` may be NULL for the
/// defaults (which open an existing cache only).
///
/// A path is formatted only when it is missing or empty and `DCACHE_OPEN_CREATE` is given
/// (a new file gets mode 0600 and its whole capacity reserved now), or when
/// `DCACHE_OPEN_FORMAT` is given. After a clean close the index is loaded from the persisted
/// summaries; after a crash it is rebuilt from region summaries and the headers of the last
/// region. On `DCACHE_OK`, `*out` is a handle the caller owns and frees with `dcache_close`.
///
/// Returns `DCACHE_OK`; `DCACHE_INVALID_ARGUMENT` (NULL path or out, unknown flag or mode,
/// bad alignment, capacity missing or under 8 MiB for a new cache, max_value_size over what a
/// region holds); `DCACHE_NOT_A_CACHE` (other data, left untouched); `DCACHE_INCOMPATIBLE`
/// (another format version, or a capacity or alignment other than the cache's);
/// `DCACHE_LOCKED` (another handle, in this process or another, has it open);
/// `DCACHE_NO_SPACE` (the capacity cannot be reserved); `DCACHE_UNSUPPORTED`
/// (`DCACHE_IO_DIRECT` and O_DIRECT is refused); `DCACHE_READ_ONLY` (a read-only device
/// without `DCACHE_OPEN_READ_ONLY`); `DCACHE_IO_ERROR` (missing path without
/// `DCACHE_OPEN_CREATE`, and other system errors).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `opts` is NULL or points to a readable
/// `dcache_options` of at least its `struct_size` bytes; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dcache_open(
    path: *const c_char,
    opts: *const dcache_options,
    out: *mut *mut dcache,
) -> dcache_result {
    ffi!({
        let out = args::out(out, "out")?;
        let path = args::path(path)?;
        let opts = cache_options(opts)?;
        let inner = Cache::open(&path, &opts)?;
        *out = Box::into_raw(Box::new(dcache { inner }));
        Ok(())
    })
}

/// Flushes every put, persists the index summaries, marks the cache clean, releases the
/// lock and frees `c`, whatever it returns. NULL is fine. Open writers stay usable until
/// freed, but their commits then fail.
///
/// Returns `DCACHE_OK` or `DCACHE_IO_ERROR` (the final flush failed: puts since the last
/// successful flush may be lost).
///
/// # Safety
/// `c` is NULL or a live handle from `dcache_open`, used by no other thread during the call and not
/// at all after it.
#[no_mangle]
pub unsafe extern "C" fn dcache_close(c: *mut dcache) -> dcache_result {
    ffi!({
        if c.is_null() {
            return Ok(());
        }
        // SAFETY: c came from dcache_open and is not used after this call.
        let cache = Box::from_raw(c);
        cache.inner.close()
    })
}

/// Makes every put that returned before this call durable: writes the pending buffer and
/// syncs the device. Returns `DCACHE_OK`, `DCACHE_INVALID_ARGUMENT`, `DCACHE_READ_ONLY`,
/// `DCACHE_IO_ERROR`.
///
/// # Safety
/// `c` is NULL or a live handle from `dcache_open`.
#[no_mangle]
pub unsafe extern "C" fn dcache_flush(c: *mut dcache) -> dcache_result {
    ffi!({ cache_ref(c)?.flush() })
}

/// Stores `value_len` bytes under the key, replacing any earlier value. `ttl_secs` = 0 uses
/// the cache's default TTL. The value is visible to gets when this returns, and durable after
/// the next `dcache_flush` (at once with `DCACHE_OPEN_SYNC_WRITES`). `(NULL, 0)` stores an
/// empty value.
///
/// Returns `DCACHE_OK`; `DCACHE_INVALID_ARGUMENT` (NULL c, NULL or empty key, NULL value with
/// a length); `DCACHE_TOO_LARGE` (key over `DCACHE_MAX_KEY_LEN`, value over max_value_size:
/// checked before the value is read); `DCACHE_READ_ONLY`; `DCACHE_IO_ERROR`; with
/// `DCACHE_ADMIT_FILTERED` only, `DCACHE_DECLINED` (nothing stored; a key the cache holds is
/// always stored, so no older value is left behind).
///
/// # Safety
/// `c` is NULL or a live handle from `dcache_open`; a non-NULL `key` points to `key_len` readable
/// bytes; a non-NULL `value` points to `value_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn dcache_put(
    c: *mut dcache,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    ttl_secs: u64,
) -> dcache_result {
    ffi!({
        let cache = cache_ref(c)?;
        let key = self::key(key, key_len)?;
        cache.check_value_len(value_len as u64)?;
        let value = args::bytes(value, value_len, "value")?;
        cache.put(key, value, ttl_secs)
    })
}

/// Copies the value stored under the key into `buf` and sets `*value_len` to its length.
/// Every byte is verified (full key and checksums) before it is returned.
///
/// A value of 64 KiB or more is read straight into `buf` when `buf` is aligned to
/// `dcache_alignment()` and holds the value's length rounded up to that alignment (at least
/// 512 bytes): one system call and no copy. Other buffers work too, with one more copy.
/// Bytes past `*value_len` are never written. When a get fails after reading, the part of
/// `buf` it read into is zeroed: `buf` never holds bytes that did not verify.
///
/// Returns `DCACHE_OK`; `DCACHE_NOT_FOUND` (absent, expired, deleted, evicted or failed
/// verification); `DCACHE_BUFFER_TOO_SMALL` (the value is longer than `buf_len`: `*value_len`
/// holds the size needed, and `buf` is untouched; `(NULL, 0)` asks for the size this way,
/// and costs a read of the entry's header, not of its value);
/// `DCACHE_INVALID_ARGUMENT`; `DCACHE_TOO_LARGE` (key too long); `DCACHE_IO_ERROR`.
///
/// # Safety
/// `c` is NULL or a live handle from `dcache_open`; a non-NULL `key` points to `key_len` readable
/// bytes; a non-NULL `buf` points to `buf_len` writable bytes, not overlapping any other argument;
/// `value_len` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dcache_get(
    c: *mut dcache,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    buf_len: usize,
    value_len: *mut usize,
) -> dcache_result {
    ffi!({
        let cache = cache_ref(c)?;
        let value_len = args::out(value_len, "value_len")?;
        let key = self::key(key, key_len)?;
        let buf = args::bytes_mut(buf, buf_len, "buf")?;
        match cache.get(key, buf)? {
            Fetched::Copied(n) => {
                *value_len = n;
                Ok(())
            }
            Fetched::TooSmall(needed) => {
                *value_len = needed as usize;
                Err(Error::new(
                    ErrorKind::BufferTooSmall,
                    format!("the value is {needed} bytes and the buffer {buf_len}"),
                ))
            }
        }
    })
}

/// Reads `min(len, size - offset)` bytes of the value, from `offset`, into `buf`, and sets
/// `*read_len`. Only the part of the entry that holds the range is read from the device, and
/// the checksums of the chunks it touches are verified. `offset == size` reads 0 bytes.
///
/// Returns `DCACHE_OK`; `DCACHE_NOT_FOUND` (as for `dcache_get`, or the range failed
/// verification); `DCACHE_RANGE` (offset past the end of the value);
/// `DCACHE_INVALID_ARGUMENT`; `DCACHE_TOO_LARGE`; `DCACHE_IO_ERROR`.
///
/// # Safety
/// `c` is NULL or a live handle from `dcache_open`; a non-NULL `key` points to `key_len` readable
/// bytes; a non-NULL `buf` points to `len` writable bytes, not overlapping any other argument;
/// `read_len` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dcache_get_range(
    c: *mut dcache,
    key: *const u8,
    key_len: usize,
    offset: u64,
    buf: *mut u8,
    len: usize,
    read_len: *mut usize,
) -> dcache_result {
    ffi!({
        let cache = cache_ref(c)?;
        let read_len = args::out(read_len, "read_len")?;
        let key = self::key(key, key_len)?;
        let buf = args::bytes_mut(buf, len, "buf")?;
        *read_len = cache.get_range(key, offset, buf)?;
        Ok(())
    })
}

/// `*size` = the length of the value stored under the key (its header is read and verified).
/// Returns `DCACHE_OK`, `DCACHE_NOT_FOUND`, `DCACHE_INVALID_ARGUMENT`, `DCACHE_TOO_LARGE`,
/// `DCACHE_IO_ERROR`.
///
/// # Safety
/// `c` is NULL or a live handle from `dcache_open`; a non-NULL `key` points to `key_len` readable
/// bytes; `size` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dcache_value_size(
    c: *mut dcache,
    key: *const u8,
    key_len: usize,
    size: *mut u64,
) -> dcache_result {
    ffi!({
        let cache = cache_ref(c)?;
        let size = args::out(size, "size")?;
        let key = self::key(key, key_len)?;
        *size = cache.value_size(key)?;
        Ok(())
    })
}

/// Whether the cache probably holds the key, answered from the in-memory index alone: no
/// I/O, no blocking on the device, so it may be called from an event loop to decide between
/// serving a hit (on a thread that may block) and going to the origin. `DCACHE_OK` can still
/// be followed by a miss from `dcache_get` (the entry expired or failed verification);
/// `DCACHE_NOT_FOUND` is definite.
///
/// Returns `DCACHE_OK`, `DCACHE_NOT_FOUND`, `DCACHE_INVALID_ARGUMENT`, `DCACHE_TOO_LARGE`.
///
/// # Safety
/// `c` is NULL or a live handle from `dcache_open`; a non-NULL `key` points to `key_len` readable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn dcache_contains(
    c: *const dcache,
    key: *const u8,
    key_len: usize,
) -> dcache_result {
    ffi!({
        let cache = cache_ref(c)?;
        let key = self::key(key, key_len)?;
        match cache.contains(key) {
            true => Ok(()),
            false => Err(Error::new(ErrorKind::NotFound, "key not in the index")),
        }
    })
}

/// Deletes the key. The delete is logged (a tombstone), so it survives a reopen once flushed.
/// Returns `DCACHE_OK` (it was there), `DCACHE_NOT_FOUND` (it was not),
/// `DCACHE_INVALID_ARGUMENT`, `DCACHE_TOO_LARGE`, `DCACHE_READ_ONLY`, `DCACHE_IO_ERROR`.
///
/// # Safety
/// `c` is NULL or a live handle from `dcache_open`; a non-NULL `key` points to `key_len` readable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn dcache_delete(
    c: *mut dcache,
    key: *const u8,
    key_len: usize,
) -> dcache_result {
    ffi!({
        let cache = cache_ref(c)?;
        let key = self::key(key, key_len)?;
        cache.delete(key)
    })
}

/// 1 when O_DIRECT is in effect for the cache, 0 when it is buffered (or `c` is NULL).
///
/// # Safety
/// `c` is NULL or a live handle from `dcache_open`.
#[no_mangle]
pub unsafe extern "C" fn dcache_is_direct_io(c: *const dcache) -> u32 {
    boundary::query(0, || {
        c.as_ref().map_or(0, |c| c.inner.is_direct_io() as u32)
    })
}

/// The alignment in bytes, as detected or given (0 if `c` is NULL).
///
/// # Safety
/// `c` is NULL or a live handle from `dcache_open`.
#[no_mangle]
pub unsafe extern "C" fn dcache_alignment(c: *const dcache) -> u32 {
    boundary::query(0, || c.as_ref().map_or(0, |c| c.inner.alignment() as u32))
}

/// The largest value the cache accepts, in bytes (0 if `c` is NULL).
///
/// # Safety
/// `c` is NULL or a live handle from `dcache_open`.
#[no_mangle]
pub unsafe extern "C" fn dcache_max_value_size(c: *const dcache) -> u64 {
    boundary::query(0, || c.as_ref().map_or(0, |c| c.inner.max_value_size()))
}

/// Fills `*out` with the cache's counters. The caller sets `out->struct_size` to
/// sizeof(dcache_stats); at most that many bytes are written.
/// Returns `DCACHE_OK` or `DCACHE_INVALID_ARGUMENT`.
///
/// # Safety
/// `c` is NULL or a live handle from `dcache_open`; `out` is NULL or points to a `dcache_stats`
/// whose first `struct_size` bytes are writable.
#[no_mangle]
pub unsafe extern "C" fn dcache_get_stats(
    c: *const dcache,
    out: *mut dcache_stats,
) -> dcache_result {
    ffi!({
        let cache = cache_ref(c)?;
        let s = cache.stats();
        let r = &s.recovery;
        let mut stats = dcache_stats {
            direct_io: s.direct_io as u32,
            alignment: s.alignment,
            index_bytes: s.index_bytes,
            recovery_bytes_read: r.bytes_read,
            recovery_micros: r.micros,
            recovery_entries_dropped: r.entries_dropped,
            recovery_was_clean: r.was_clean as u32,
            ..dcache_stats::default()
        };
        stats.set_engine_fields(&s);
        args::write_versioned_struct(out, &stats, "stats")
    })
}

/// The Prometheus text exposition (format 0.0.4; see the README's "Metrics").
pub const DCACHE_STATS_PROMETHEUS: u32 = 1;
/// JSON with the field names and values of `dcache_stats`, and the latency histograms.
pub const DCACHE_STATS_JSON: u32 = 2;

/// Writes the cache's stats as text in `format` (`DCACHE_STATS_PROMETHEUS` or
/// `DCACHE_STATS_JSON`) into `buf`, followed by a NUL, and sets `*needed` to the text's length
/// plus one (the NUL). Both formats hold the same values as `dcache_get_stats`, and the
/// latency histograms of gets, puts and flushes.
///
/// Returns `DCACHE_OK`; `DCACHE_BUFFER_TOO_SMALL` (the text and its NUL need more than
/// `buf_len` bytes: `*needed` holds how many, and `buf` is untouched; `(NULL, 0)` asks for the
/// size this way; counters move between two calls, so leave room, or call again while it
/// says so); `DCACHE_INVALID_ARGUMENT` (an unknown format, `needed` NULL, `buf` NULL with a
/// length).
///
/// # Safety
/// `c` is NULL or a live handle from `dcache_open`; a non-NULL `buf` points to `buf_len`
/// writable bytes; `needed` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dcache_stats_format(
    c: *const dcache,
    format: u32,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> dcache_result {
    ffi!({
        let cache = cache_ref(c)?;
        let needed = args::out(needed, "needed")?;
        let buf = args::bytes_mut(buf.cast(), buf_len, "buf")?;
        let s = cache.stats();
        let text = match format {
            DCACHE_STATS_PROMETHEUS => s.to_prometheus(),
            DCACHE_STATS_JSON => s.to_json(),
            _ => return Err(Error::invalid(format!("unknown stats format {format}"))),
        };
        *needed = text.len() + 1;
        if buf.len() < text.len() + 1 {
            return Err(Error::new(
                ErrorKind::BufferTooSmall,
                format!(
                    "the stats text needs {} bytes and the buffer has {buf_len}",
                    text.len() + 1
                ),
            ));
        }
        buf[..text.len()].copy_from_slice(text.as_bytes());
        buf[text.len()] = 0;
        Ok(())
    })
}

//! `dcache_writer_*`: streaming puts for C.

use super::args;
use super::boundary;
use super::cache::{cache_ref, dcache, key};
use super::result::dcache_result;
use crate::cache::Writer;

/// A streaming put in progress. Used by one thread at a time.
pub struct dcache_writer {
    inner: Writer,
}

/// Starts a streaming put of a value under the key, with `ttl_secs` as for `dcache_put`.
/// Nothing becomes visible until `dcache_writer_commit`. On `DCACHE_OK`, `*out` is a writer
/// the caller must end with exactly one of `dcache_writer_commit` or `dcache_writer_abort`.
///
/// Returns `DCACHE_OK`, `DCACHE_INVALID_ARGUMENT`, `DCACHE_TOO_LARGE` (key),
/// `DCACHE_READ_ONLY`; with `DCACHE_ADMIT_FILTERED` only, `DCACHE_DECLINED`: the admission
/// policy does not take this key now, known before any byte is streamed (no writer).
///
/// # Safety
/// `c` is NULL or a live handle from `dcache_open`; a non-NULL `key` points to `key_len` readable
/// bytes; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dcache_writer_open(
    c: *mut dcache,
    key: *const u8,
    key_len: usize,
    ttl_secs: u64,
    out: *mut *mut dcache_writer,
) -> dcache_result {
    ffi!({
        let cache = cache_ref(c)?;
        let out = args::out(out, "out")?;
        let key = self::key(key, key_len)?;
        let inner = cache.writer(key, ttl_secs)?;
        *out = Box::into_raw(Box::new(dcache_writer { inner }));
        Ok(())
    })
}

/// Appends `len` bytes to the value. `(NULL, 0)` does nothing.
///
/// Returns `DCACHE_OK`, `DCACHE_INVALID_ARGUMENT`, `DCACHE_TOO_LARGE` (the value would pass
/// max_value_size: the writer then can only be aborted; a commit fails),
/// `DCACHE_OUT_OF_MEMORY`.
///
/// # Safety
/// `w` is NULL or a live handle from `dcache_writer_open`; a non-NULL `data` points to `len`
/// readable bytes.
#[no_mangle]
pub unsafe extern "C" fn dcache_writer_write(
    w: *mut dcache_writer,
    data: *const u8,
    len: usize,
) -> dcache_result {
    ffi!({
        let w = args::out(w, "writer")?;
        w.inner.check_len(len as u64)?;
        let data = args::bytes(data, len, "data")?;
        w.inner.write(data)
    })
}

/// Stores the value written so far, whole, and frees `w`, whatever the result.
///
/// Returns `DCACHE_OK`, `DCACHE_INVALID_ARGUMENT` (NULL), `DCACHE_TOO_LARGE` (a write was
/// refused), `DCACHE_READ_ONLY`, `DCACHE_IO_ERROR` (also when the cache was closed first);
/// with `DCACHE_ADMIT_FILTERED` and a `write_budget`, `DCACHE_DECLINED` when the value, its
/// length now known, would pass the budget (nothing stored; an older value is deleted).
///
/// # Safety
/// `w` is NULL or a live handle from `dcache_writer_open`, used by no other thread during the call
/// and not at all after it.
#[no_mangle]
pub unsafe extern "C" fn dcache_writer_commit(w: *mut dcache_writer) -> dcache_result {
    ffi!({
        if w.is_null() {
            return Err(crate::Error::invalid("writer is NULL"));
        }
        // SAFETY: w came from dcache_writer_open and is not used after this call.
        let w = Box::from_raw(w);
        w.inner.commit()
    })
}

/// Drops the value written so far and frees `w`; nothing becomes visible. NULL is fine.
///
/// # Safety
/// `w` is NULL or a live handle from `dcache_writer_open`, used by no other thread during the call
/// and not at all after it.
#[no_mangle]
pub unsafe extern "C" fn dcache_writer_abort(w: *mut dcache_writer) {
    boundary::quietly(|| {
        if !w.is_null() {
            // SAFETY: w came from dcache_writer_open and is not used after this call.
            drop(Box::from_raw(w));
        }
    })
}

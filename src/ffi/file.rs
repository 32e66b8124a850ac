//! `dcache_file_*`: the direct-I/O file layer for C.

use super::args;
use super::boundary;
use super::result::dcache_result;
use crate::dio::{self, DirectFile, IoMode, OpenOptions};
use crate::error::{Error, Result};
use std::ffi::c_char;

/// O_DIRECT where the file system takes it, else buffered I/O with one logged warning
/// (the default).
pub const DCACHE_IO_AUTO: u32 = 0;
/// O_DIRECT, or fail with `DCACHE_UNSUPPORTED`.
pub const DCACHE_IO_DIRECT: u32 = 1;
/// Ordinary page-cache I/O.
pub const DCACHE_IO_BUFFERED: u32 = 2;

/// Create the file if it does not exist (mode 0644, less the umask).
pub const DCACHE_FILE_CREATE: u32 = 1;
/// Truncate the file to zero length at open.
pub const DCACHE_FILE_TRUNCATE: u32 = 2;
/// Open for reading only; writes give `DCACHE_READ_ONLY`.
pub const DCACHE_FILE_READ_ONLY: u32 = 4;
/// O_DSYNC: every write is durable when it returns.
pub const DCACHE_FILE_SYNC_WRITES: u32 = 8;

const FILE_FLAGS: u32 =
    DCACHE_FILE_CREATE | DCACHE_FILE_TRUNCATE | DCACHE_FILE_READ_ONLY | DCACHE_FILE_SYNC_WRITES;

/// Options for `dcache_file_open`, `dcache_file_write_all` and `dcache_file_read_all`.
/// Initialise with `dcache_file_options_init`, then change fields.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct dcache_file_options {
    /// Set by `dcache_file_options_init` to sizeof(dcache_file_options); lets the struct grow.
    pub struct_size: u32,
    /// `DCACHE_IO_*`.
    pub io_mode: u32,
    /// `DCACHE_FILE_*` flags, or-ed.
    pub flags: u32,
    /// 0 = ask the file or device; else a power of two of at least 512, used for both memory
    /// and offsets.
    pub alignment: u32,
    /// Transfers shorter than this go through the page cache; 0 = none do.
    pub min_io_size: u64,
}

impl Default for dcache_file_options {
    fn default() -> Self {
        dcache_file_options {
            struct_size: std::mem::size_of::<dcache_file_options>() as u32,
            io_mode: DCACHE_IO_AUTO,
            flags: 0,
            alignment: 0,
            min_io_size: 0,
        }
    }
}

/// An open file or block device. Safe to use from many threads at once.
pub struct dcache_file {
    inner: DirectFile,
}

pub(crate) fn io_mode(mode: u32) -> Result<IoMode> {
    match mode {
        DCACHE_IO_AUTO => Ok(IoMode::Auto),
        DCACHE_IO_DIRECT => Ok(IoMode::Direct),
        DCACHE_IO_BUFFERED => Ok(IoMode::Buffered),
        other => Err(Error::invalid(format!("unknown io_mode {other}"))),
    }
}

pub(crate) fn alignment(bytes: u32) -> Result<Option<usize>> {
    match bytes {
        0 => Ok(None),
        a if dio::align::valid_explicit(a as u64) => Ok(Some(a as usize)),
        a => Err(Error::invalid(format!(
            "alignment {a} is not a power of two of at least 512"
        ))),
    }
}

/// # Safety
/// `opts` is NULL or points to a `dcache_file_options` of at least its `struct_size`.
unsafe fn open_options(opts: *const dcache_file_options) -> Result<OpenOptions> {
    let o = args::versioned_struct(opts, dcache_file_options::default(), "options")?;
    if o.flags & !FILE_FLAGS != 0 {
        return Err(Error::invalid(format!(
            "unknown file flags {:#x}",
            o.flags & !FILE_FLAGS
        )));
    }
    Ok(OpenOptions {
        io_mode: io_mode(o.io_mode)?,
        create: o.flags & DCACHE_FILE_CREATE != 0,
        truncate: o.flags & DCACHE_FILE_TRUNCATE != 0,
        read_only: o.flags & DCACHE_FILE_READ_ONLY != 0,
        sync_writes: o.flags & DCACHE_FILE_SYNC_WRITES != 0,
        alignment: alignment(o.alignment)?,
        min_io_size: o.min_io_size,
        ..OpenOptions::default()
    })
}

/// Fills `*opts` with the defaults: `DCACHE_IO_AUTO`, no flags, detected alignment, no
/// `min_io_size`. NULL is ignored.
///
/// # Safety
/// `opts` is NULL or points to a whole writable `dcache_file_options` of this header's version.
#[no_mangle]
pub unsafe extern "C" fn dcache_file_options_init(opts: *mut dcache_file_options) {
    boundary::quietly(|| {
        if !opts.is_null() {
            // SAFETY: the caller gives a writable dcache_file_options.
            unsafe { opts.write(dcache_file_options::default()) }
        }
    })
}

/// Opens `path` (a regular file or a block device) for I/O that bypasses the page cache.
///
/// `opts` may be NULL for the defaults. With `DCACHE_IO_AUTO`, a file system that refuses
/// O_DIRECT gives buffered I/O and one warning through the log callback; check
/// `dcache_file_is_direct_io`. On `DCACHE_OK`, `*out` is a handle the caller owns and frees
/// with `dcache_file_close`.
///
/// Returns `DCACHE_OK`, `DCACHE_INVALID_ARGUMENT` (NULL path or out, unknown flag or mode,
/// bad alignment, not a regular file or block device), `DCACHE_UNSUPPORTED` (`DCACHE_IO_DIRECT`
/// and O_DIRECT is refused), `DCACHE_IO_ERROR` (open failed: missing file without
/// `DCACHE_FILE_CREATE`, permissions), `DCACHE_READ_ONLY` (read-only file system).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `opts` is NULL or points to a readable
/// `dcache_file_options` of at least its `struct_size` bytes; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dcache_file_open(
    path: *const c_char,
    opts: *const dcache_file_options,
    out: *mut *mut dcache_file,
) -> dcache_result {
    ffi!({
        let out = args::out(out, "out")?;
        let path = args::path(path)?;
        let opts = open_options(opts)?;
        let inner = DirectFile::open(&path, &opts)?;
        *out = Box::into_raw(Box::new(dcache_file { inner }));
        Ok(())
    })
}

/// Closes `f` and frees it, whatever the result. NULL is fine. Writes are not synced: call
/// `dcache_file_sync` first for durability. Returns `DCACHE_OK`.
///
/// # Safety
/// `f` is NULL or a live handle from `dcache_file_open`, used by no other thread during the call
/// and not at all after it.
#[no_mangle]
pub unsafe extern "C" fn dcache_file_close(f: *mut dcache_file) -> dcache_result {
    ffi!({
        if !f.is_null() {
            // SAFETY: f came from dcache_file_open and is not used after this call.
            drop(Box::from_raw(f));
        }
        Ok(())
    })
}

/// Reads up to `len` bytes at `offset` into `buf`, at any offset and length. `*read_len` is
/// the number of bytes read, less than `len` only at end of file. `buf` needs no alignment;
/// an aligned buffer and range are read with no copy.
///
/// Returns `DCACHE_OK`, `DCACHE_INVALID_ARGUMENT` (NULL f, buf with len > 0, or read_len;
/// offset + len past the largest file offset), `DCACHE_IO_ERROR`.
///
/// # Safety
/// `f` is NULL or a live handle from `dcache_file_open`; a non-NULL `buf` points to `len` writable
/// bytes, not overlapping any other argument; `read_len` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dcache_file_pread(
    f: *mut dcache_file,
    buf: *mut u8,
    len: usize,
    offset: u64,
    read_len: *mut usize,
) -> dcache_result {
    ffi!({
        let f = args::get_ref(f, "file")?;
        let read_len = args::out(read_len, "read_len")?;
        let buf = args::bytes_mut(buf, len, "buf")?;
        *read_len = f.inner.pread(buf, offset)?;
        Ok(())
    })
}

/// Writes `len` bytes from `buf` at `offset`, at any offset and length. The file ends up
/// exactly as a buffered write would leave it, size included. Concurrent writers of
/// neighbouring bytes in one block never lose each other's update.
///
/// Returns `DCACHE_OK`, `DCACHE_INVALID_ARGUMENT`, `DCACHE_READ_ONLY`, `DCACHE_NO_SPACE`,
/// `DCACHE_IO_ERROR`.
///
/// # Safety
/// `f` is NULL or a live handle from `dcache_file_open`; a non-NULL `buf` points to `len` readable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn dcache_file_pwrite(
    f: *mut dcache_file,
    buf: *const u8,
    len: usize,
    offset: u64,
) -> dcache_result {
    ffi!({
        let f = args::get_ref(f, "file")?;
        let buf = args::bytes(buf, len, "buf")?;
        f.inner.pwrite(buf, offset)
    })
}

/// `*size` = the file's size in bytes (as a buffered reader would see it), or the block
/// device's capacity. Returns `DCACHE_OK` or `DCACHE_INVALID_ARGUMENT`.
///
/// # Safety
/// `f` is NULL or a live handle from `dcache_file_open`; `size` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dcache_file_size(f: *mut dcache_file, size: *mut u64) -> dcache_result {
    ffi!({
        let f = args::get_ref(f, "file")?;
        *args::out(size, "size")? = f.inner.size();
        Ok(())
    })
}

/// Makes every completed write durable (fdatasync). Returns `DCACHE_OK`,
/// `DCACHE_INVALID_ARGUMENT` or `DCACHE_IO_ERROR`.
///
/// # Safety
/// `f` is NULL or a live handle from `dcache_file_open`.
#[no_mangle]
pub unsafe extern "C" fn dcache_file_sync(f: *mut dcache_file) -> dcache_result {
    ffi!({ args::get_ref(f, "file")?.inner.sync() })
}

/// 1 when O_DIRECT is in effect for `f`, 0 when it is buffered (or `f` is NULL).
///
/// # Safety
/// `f` is NULL or a live handle from `dcache_file_open`.
#[no_mangle]
pub unsafe extern "C" fn dcache_file_is_direct_io(f: *const dcache_file) -> u32 {
    boundary::query(0, || f.as_ref().map_or(0, |f| f.inner.is_direct() as u32))
}

/// The offset and length alignment in bytes, as detected or given (0 if `f` is NULL).
///
/// # Safety
/// `f` is NULL or a live handle from `dcache_file_open`.
#[no_mangle]
pub unsafe extern "C" fn dcache_file_alignment(f: *const dcache_file) -> u32 {
    boundary::query(0, || {
        f.as_ref().map_or(0, |f| f.inner.alignment().offset as u32)
    })
}

/// Replaces the file at `path` with `len` bytes from `data`, atomically: a temporary file in
/// the same directory is written (through the direct-I/O layer, with `opts`), synced, renamed
/// over `path`, and the directory is synced. Readers see the old content or the new, whole.
/// `opts` may be NULL; its CREATE/TRUNCATE flags are implied, READ_ONLY is refused.
///
/// Returns `DCACHE_OK`, `DCACHE_INVALID_ARGUMENT`, `DCACHE_UNSUPPORTED`, `DCACHE_NO_SPACE`,
/// `DCACHE_IO_ERROR`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; a non-NULL `data` points to `len` readable bytes;
/// `opts` is NULL or points to a readable `dcache_file_options` of at least its `struct_size`
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn dcache_file_write_all(
    path: *const c_char,
    data: *const u8,
    len: usize,
    opts: *const dcache_file_options,
) -> dcache_result {
    ffi!({
        let path = args::path(path)?;
        let data = args::bytes(data, len, "data")?;
        let opts = open_options(opts)?;
        dio::write_all(&path, data, &opts)
    })
}

/// Reads the whole file at `path`. On `DCACHE_OK`, `*data` is a new buffer of `*len` bytes
/// (never NULL, even when `*len` is 0) that the caller frees with
/// `dcache_buffer_free(*data, *len)`. `opts` may be NULL.
///
/// Returns `DCACHE_OK`, `DCACHE_INVALID_ARGUMENT`, `DCACHE_UNSUPPORTED`, `DCACHE_IO_ERROR`
/// (missing file: the message names the path), `DCACHE_OUT_OF_MEMORY`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `opts` is NULL or points to a readable
/// `dcache_file_options` of at least its `struct_size` bytes; `data` and `len` are NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn dcache_file_read_all(
    path: *const c_char,
    opts: *const dcache_file_options,
    data: *mut *mut u8,
    len: *mut usize,
) -> dcache_result {
    ffi!({
        let data = args::out(data, "data")?;
        let len = args::out(len, "len")?;
        let path = args::path(path)?;
        let opts = open_options(opts)?;
        let (buf, n) = dio::read_all(&path, &opts)?;
        *data = buf.into_raw();
        *len = n;
        Ok(())
    })
}

/// Frees a buffer returned by `dcache_file_read_all`, given the length returned with it.
/// NULL is fine.
///
/// # Safety
/// `data` is NULL or a buffer from `dcache_file_read_all`, with the length returned with it, not
/// freed before.
#[no_mangle]
pub unsafe extern "C" fn dcache_buffer_free(data: *mut u8, len: usize) {
    boundary::quietly(|| {
        // SAFETY: data came from dcache_file_read_all with this len.
        drop(dio::AlignedBuf::from_exported(data, len));
    })
}

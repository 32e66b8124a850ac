//! `dcache_result`, its static texts, and the per-thread detail of the last failure.

use crate::error::{Error, ErrorKind};
use std::cell::RefCell;
use std::ffi::c_char;

/// The result of every fallible function: `DCACHE_OK` (0) or one of the `DCACHE_*` codes.
pub type dcache_result = u32;

/// Success.
pub const DCACHE_OK: dcache_result = 0;
/// The key is absent, expired, deleted, evicted, or its entry failed verification: a miss.
pub const DCACHE_NOT_FOUND: dcache_result = 1;
/// The value does not fit the buffer; `*value_len` holds the size needed.
pub const DCACHE_BUFFER_TOO_SMALL: dcache_result = 2;
/// NULL where not allowed, an empty key, an unknown flag or mode, a bad option.
pub const DCACHE_INVALID_ARGUMENT: dcache_result = 3;
/// A key or value over the cache's limits.
pub const DCACHE_TOO_LARGE: dcache_result = 4;
/// An offset past the end of the value.
pub const DCACHE_RANGE: dcache_result = 5;
/// The operating system reported an I/O error.
pub const DCACHE_IO_ERROR: dcache_result = 6;
/// The capacity cannot be reserved, or the device is full.
pub const DCACHE_NO_SPACE: dcache_result = 7;
/// The path holds data that is not a dcache, and `DCACHE_OPEN_FORMAT` was not given.
pub const DCACHE_NOT_A_CACHE: dcache_result = 8;
/// A dcache of another format version or geometry.
pub const DCACHE_INCOMPATIBLE: dcache_result = 9;
/// Another handle or process has the cache open.
pub const DCACHE_LOCKED: dcache_result = 10;
/// `DCACHE_IO_DIRECT` was required and O_DIRECT is refused here.
pub const DCACHE_UNSUPPORTED: dcache_result = 11;
/// A write on a read-only handle or device.
pub const DCACHE_READ_ONLY: dcache_result = 12;
/// An allocation failed.
pub const DCACHE_OUT_OF_MEMORY: dcache_result = 13;
/// A bug was caught at the boundary (a panic). Please report it with the message.
pub const DCACHE_INTERNAL: dcache_result = 14;

pub(crate) fn code_of(kind: ErrorKind) -> dcache_result {
    match kind {
        ErrorKind::NotFound => DCACHE_NOT_FOUND,
        ErrorKind::BufferTooSmall => DCACHE_BUFFER_TOO_SMALL,
        ErrorKind::InvalidArgument => DCACHE_INVALID_ARGUMENT,
        ErrorKind::TooLarge => DCACHE_TOO_LARGE,
        ErrorKind::Range => DCACHE_RANGE,
        ErrorKind::Io => DCACHE_IO_ERROR,
        ErrorKind::NoSpace => DCACHE_NO_SPACE,
        ErrorKind::NotACache => DCACHE_NOT_A_CACHE,
        ErrorKind::Incompatible => DCACHE_INCOMPATIBLE,
        ErrorKind::Locked => DCACHE_LOCKED,
        ErrorKind::Unsupported => DCACHE_UNSUPPORTED,
        ErrorKind::ReadOnly => DCACHE_READ_ONLY,
        ErrorKind::OutOfMemory => DCACHE_OUT_OF_MEMORY,
        ErrorKind::Internal => DCACHE_INTERNAL,
    }
}

fn static_text(r: dcache_result) -> &'static std::ffi::CStr {
    match r {
        DCACHE_OK => c"success",
        DCACHE_NOT_FOUND => c"not found",
        DCACHE_BUFFER_TOO_SMALL => c"buffer too small",
        DCACHE_INVALID_ARGUMENT => c"invalid argument",
        DCACHE_TOO_LARGE => c"key or value too large",
        DCACHE_RANGE => c"offset past the end of the value",
        DCACHE_IO_ERROR => c"I/O error",
        DCACHE_NO_SPACE => c"no space",
        DCACHE_NOT_A_CACHE => c"not a dcache",
        DCACHE_INCOMPATIBLE => c"incompatible dcache format or geometry",
        DCACHE_LOCKED => c"cache is locked by another handle or process",
        DCACHE_UNSUPPORTED => c"direct I/O is not supported here",
        DCACHE_READ_ONLY => c"read-only",
        DCACHE_OUT_OF_MEMORY => c"out of memory",
        DCACHE_INTERNAL => c"internal error",
        _ => c"unknown result code",
    }
}

thread_local! {
    /// The NUL-terminated detail of this thread's last failure; reused, so that misses on a
    /// hot path do not allocate.
    static LAST_ERROR: RefCell<Vec<u8>> = RefCell::new(vec![0]);
}

/// Records `err` as this thread's last failure and returns its code.
pub(crate) fn record(err: &Error) -> dcache_result {
    LAST_ERROR.with(|last| {
        let mut last = last.borrow_mut();
        last.clear();
        last.extend(err.message().bytes().map(|b| if b == 0 { b'?' } else { b }));
        last.push(0);
    });
    code_of(err.kind())
}

/// Forgets the last failure: a successful call leaves "" behind.
pub(crate) fn clear() {
    LAST_ERROR.with(|last| {
        let mut last = last.borrow_mut();
        last.clear();
        last.push(0);
    });
}

/// A static description of `r`. Never NULL; any value is accepted.
#[no_mangle]
pub extern "C" fn dcache_strerror(r: dcache_result) -> *const c_char {
    static_text(r).as_ptr()
}

/// The detail of this thread's last failure: the path, the errno text, or the limit that was
/// exceeded. "" when the last call succeeded. Never NULL. The text belongs to the library and
/// stays valid until this thread's next dcache call.
#[no_mangle]
pub extern "C" fn dcache_last_error_message() -> *const c_char {
    LAST_ERROR.with(|last| last.borrow().as_ptr().cast())
}

//! `dcache_result`, its static texts, and the per-thread detail of the last failure.

use crate::error::{Error, ErrorKind, Remedy};
use std::cell::RefCell;
use std::ffi::{c_char, CStr};

/// The result of every fallible function: `DCACHE_OK` (0) or one of the `DCACHE_*` codes.
pub type dcache_result = u32;

// The `DCACHE_*` constants, written by build.rs from result_codes.in.
include!(concat!(env!("OUT_DIR"), "/result_codes.rs"));

macro_rules! result_codes {
    ($( $(#[doc = $doc:literal])* $name:ident = $value:literal, $text:literal, [$($kind:ident),*]; )*) => {
        /// The code that reports an engine error of this kind.
        pub(crate) fn code_of(kind: ErrorKind) -> dcache_result {
            match kind {
                $( $( ErrorKind::$kind => $name, )* )*
            }
        }

        fn static_text(r: dcache_result) -> &'static CStr {
            match r {
                $( $name => $text, )*
                _ => c"unknown result code",
            }
        }
    };
}
include!("result_codes.in");

/// How a C caller asks for the remedy of an error: the flag or mode to pass.
fn remedy_text(remedy: Remedy) -> &'static str {
    match remedy {
        Remedy::Create => "DCACHE_OPEN_CREATE creates it",
        Remedy::Format => "DCACHE_OPEN_FORMAT formats it, destroying what it holds",
        Remedy::AllowBuffered => "DCACHE_IO_AUTO falls back to buffered I/O",
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
        if let Some(remedy) = err.remedy() {
            last.extend_from_slice(format!(" ({})", remedy_text(remedy)).as_bytes());
        }
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

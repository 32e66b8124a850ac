//! The log callback: where warnings (such as the fallback to buffered I/O) go.

use super::boundary;
use crate::log::{self, Level};
use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

/// An error: an operation failed in a way the caller should know of.
pub const DCACHE_LOG_ERROR: u32 = 1;
/// A warning: the library carried on, but not as asked (e.g. buffered I/O instead of direct).
pub const DCACHE_LOG_WARN: u32 = 2;
/// Information.
pub const DCACHE_LOG_INFO: u32 = 3;
/// Debugging detail.
pub const DCACHE_LOG_DEBUG: u32 = 4;

/// The `DCACHE_LOG_*` constant of `level`.
fn code(level: Level) -> u32 {
    match level {
        Level::Error => DCACHE_LOG_ERROR,
        Level::Warn => DCACHE_LOG_WARN,
        Level::Info => DCACHE_LOG_INFO,
        Level::Debug => DCACHE_LOG_DEBUG,
    }
}

/// A log sink: called with the userdata given to `dcache_set_log_callback`, a level
/// (`DCACHE_LOG_*`) and a NUL-terminated message that is valid only during the call. It may be
/// called from any thread, concurrently, and must not call back into dcache.
pub type dcache_log_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, level: u32, message: *const c_char)>;

struct Userdata(*mut c_void);
// SAFETY: the caller of dcache_set_log_callback promises the callback is thread-safe with
// this userdata.
unsafe impl Send for Userdata {}
unsafe impl Sync for Userdata {}

impl Userdata {
    // A method, so that closures capture the whole Send + Sync wrapper, not its raw field.
    fn get(&self) -> *mut c_void {
        self.0
    }
}

/// Sends every later message to `fn` with `userdata`. A NULL `fn` restores the default, which
/// writes warnings and errors to stderr. Nothing is ever written to stdout.
///
/// # Safety
/// A non-NULL `fn` stays callable, from any thread and concurrently, with `userdata`, until a
/// later call replaces it and returns.
#[no_mangle]
pub unsafe extern "C" fn dcache_set_log_callback(r#fn: dcache_log_fn, userdata: *mut c_void) {
    boundary::quietly(|| {
        let sink: Option<log::Sink> = r#fn.map(|f| {
            let userdata = Userdata(userdata);
            Arc::new(move |level: Level, message: &str| {
                let text = CString::new(message.replace('\0', "?")).unwrap_or_default();
                // SAFETY: f is the caller's callback; text lives for the call.
                unsafe { f(userdata.get(), code(level), text.as_ptr()) }
            }) as log::Sink
        });
        log::set_sink(sink);
    })
}

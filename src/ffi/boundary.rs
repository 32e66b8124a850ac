//! The panic boundary: every exported function runs its body inside `catch_unwind`, so that a
//! bug becomes `DCACHE_INTERNAL` instead of undefined behaviour in the caller.

use super::result::{self, dcache_result, DCACHE_OK};
use crate::error::{Error, ErrorKind, Result};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// Runs `body`, turning its error or panic into a result code and this thread's message.
pub(crate) fn run(body: impl FnOnce() -> Result<()>) -> dcache_result {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            result::clear();
            DCACHE_OK
        }
        Ok(Err(err)) => result::record(&err),
        Err(payload) => result::record(&Error::new(
            ErrorKind::Internal,
            format!(
                "internal error (a bug in dcache, please report it): {}",
                panic_text(&*payload)
            ),
        )),
    }
}

/// Runs an infallible query, answering `fallback` if it panics.
pub(crate) fn query<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// Runs a function that returns nothing (frees, aborts): a panic is swallowed.
pub(crate) fn quietly(body: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(body));
}

/// `ffi!({ ... })` runs the block, which yields `Result<()>`, inside the boundary.
macro_rules! ffi {
    ($body:block) => {
        $crate::ffi::boundary::run(|| -> $crate::error::Result<()> { $body })
    };
}

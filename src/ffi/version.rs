//! Versions. The `DCACHE_VERSION_*` macros are written into the header by build.rs from
//! Cargo.toml, the same source these functions read.

use std::ffi::c_char;

const fn parse(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n = 0u32;
    while i < b.len() {
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

const VERSION_NUMBER: u32 = parse(env!("CARGO_PKG_VERSION_MAJOR")) * 10000
    + parse(env!("CARGO_PKG_VERSION_MINOR")) * 100
    + parse(env!("CARGO_PKG_VERSION_PATCH"));

/// The library's version as "MAJOR.MINOR.PATCH": static text, never NULL. Compare with
/// `DCACHE_VERSION_STRING` to detect a header and library that do not match.
#[no_mangle]
pub extern "C" fn dcache_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The library's version as MAJOR*10000 + MINOR*100 + PATCH.
#[no_mangle]
pub extern "C" fn dcache_version_number() -> u32 {
    VERSION_NUMBER
}

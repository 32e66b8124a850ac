//! The committed header is what cbindgen generates from the code, and its version macros
//! agree with Cargo.toml.

#[test]
fn committed_header_is_current() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/dcache.h"));
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/dcache.h")).unwrap();
    assert!(
        generated == committed,
        "include/dcache.h differs from what cbindgen generates from src/ffi: run `make header` and commit it"
    );
}

#[test]
fn version_macros_match_cargo_toml() {
    let header = include_str!(concat!(env!("OUT_DIR"), "/dcache.h"));
    let expect = [
        format!(
            "#define DCACHE_VERSION_MAJOR {}",
            env!("CARGO_PKG_VERSION_MAJOR")
        ),
        format!(
            "#define DCACHE_VERSION_MINOR {}",
            env!("CARGO_PKG_VERSION_MINOR")
        ),
        format!(
            "#define DCACHE_VERSION_PATCH {}",
            env!("CARGO_PKG_VERSION_PATCH")
        ),
        format!(
            "#define DCACHE_VERSION_STRING \"{}\"",
            env!("CARGO_PKG_VERSION")
        ),
    ];
    for line in expect {
        assert!(header.contains(&line), "missing: {line}");
    }
    // SAFETY: dcache_version returns a static NUL-terminated string.
    let version = unsafe { std::ffi::CStr::from_ptr(dcache_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

// The C function, as a C program calls it: the crate's Rust API does not name its C layer,
// and the crate is linked in for its symbols.
use dcache as _;
extern "C" {
    fn dcache_version() -> *const std::ffi::c_char;
}

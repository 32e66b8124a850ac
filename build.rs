//! Sets the shared library's soname and generates the C header from src/ffi with cbindgen.
//! The header goes to OUT_DIR; with DCACHE_WRITE_HEADER=1 (what `make header` sets) it is also
//! written to include/dcache.h, the committed copy a test compares with the generated one.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    let minor = env::var("CARGO_PKG_VERSION_MINOR").unwrap();
    let patch = env::var("CARGO_PKG_VERSION_PATCH").unwrap();
    let version = env::var("CARGO_PKG_VERSION").unwrap();

    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libdcache.so.{major}");

    let mut config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(format!(
        "\n/** The version of this header; compare with dcache_version() at run time. */\n\
         #define DCACHE_VERSION_MAJOR {major}\n\
         #define DCACHE_VERSION_MINOR {minor}\n\
         #define DCACHE_VERSION_PATCH {patch}\n\
         #define DCACHE_VERSION_STRING \"{version}\"\n"
    ));
    let header = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate include/dcache.h");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("dcache.h");
    header.write_to_file(&out);
    if env::var("DCACHE_WRITE_HEADER").as_deref() == Ok("1") {
        std::fs::create_dir_all(crate_dir.join("include")).unwrap();
        std::fs::copy(&out, crate_dir.join("include").join("dcache.h")).unwrap();
    }

    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=DCACHE_WRITE_HEADER");
}

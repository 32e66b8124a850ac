//! dcache: a raw-disk object cache and the direct-I/O layer it stands on.
//!
//! Layers, each knowing nothing of the one above it:
//! - [`dio`]: files and block devices read and written with O_DIRECT at any offset and length;
//! - [`cache`]: the cache engine, a crash-safe log of regions with an in-memory index;
//! - `ffi`: the C interface, a thin shell that converts arguments, errors and panics.

// The engine and the I/O layer keep their functions short (clippy.toml sets the limit).
/// cbindgen:ignore
#[warn(clippy::too_many_lines)]
pub mod cache;
/// cbindgen:ignore
#[warn(clippy::too_many_lines)]
pub mod dio;
/// cbindgen:ignore
pub mod error;
pub mod ffi;
/// cbindgen:ignore
pub mod log;

pub use error::{Error, ErrorKind, Remedy, Result};

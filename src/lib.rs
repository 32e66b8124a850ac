//! dcache: a raw-disk object cache and the direct-I/O layer it stands on.
//!
//! Layers, each knowing nothing of the one above it:
//! - the file layer ([`DirectFile`]): files and block devices read and written with O_DIRECT
//!   at any offset and length;
//! - the cache ([`Cache`]): a crash-safe log of regions with an in-memory index, whose every
//!   read is checked against its full key and checksums;
//! - the C interface (`include/dcache.h`), a thin shell that converts arguments, errors and
//!   panics.

// The engine and the I/O layer keep their functions short (clippy.toml sets the limit).
/// cbindgen:ignore
#[warn(clippy::too_many_lines)]
mod cache;
/// cbindgen:ignore
#[warn(clippy::too_many_lines)]
mod dio;
/// cbindgen:ignore
mod error;
mod ffi;
/// cbindgen:ignore
mod log;

pub use cache::{
    Admission, Backend, Cache, CacheOptions, Completion, Fetched, Layout, Outcome, ReadQueue,
    ReadRequest, RecoveryReport, Stats, VerifyReport, Writer, MAX_KEY_LEN,
};
pub use dio::OpenOptions as DirectFileOptions;
pub use dio::{read_all, write_all, AlignedBuf, Alignment, DirectFile, IoMode};
pub use error::{Error, ErrorKind, Remedy, Result};
pub use log::{set_sink as set_log_sink, Level as LogLevel, Sink as LogSink};

/// Makes chosen reads, writes and syncs of a file fail, for tests of what the cache does
/// then. Unstable: only with the `fault-injection` feature.
#[cfg(feature = "fault-injection")]
#[doc(hidden)]
pub use dio::fault;

#![deny(missing_docs)]
//! dcache: an object cache on a raw disk or a file, read and written with O_DIRECT, that
//! never returns bytes other than the ones stored.
//!
//! # The model
//! - A [`Cache`] maps keys (up to [`MAX_KEY_LEN`] bytes) to values (up to
//!   [`Cache::max_value_size`]), kept in a log of large regions on the device and an index in
//!   memory (about 14 bytes per entry). When the log is full, the oldest regions are
//!   reclaimed: a cache may drop any entry, never serve a wrong one.
//! - A **put** returns once the value is in memory; gets see it at once. It reaches the device
//!   as its region fills, or at the next [`Cache::flush`] or [`Cache::close`]. **Every put and
//!   delete that returned before a flush that succeeded survives a crash or power loss**;
//!   later ones may or may not, and whatever survives is whole. With
//!   [`CacheOptions::sync_writes`], every put is durable when it returns.
//! - A **get** checks the value against its full key and its checksums before returning a
//!   byte: a torn, stale or corrupt entry is a miss, never wrong bytes. A read error of the
//!   device is an [`ErrorKind::Io`] for the entries it touches, not for the rest.
//! - **I/O modes** ([`IoMode`]): `Direct` bypasses the page cache (O_DIRECT) or fails;
//!   `Auto`, the default, falls back to buffered I/O with one logged warning where the file
//!   system refuses O_DIRECT (tmpfs); `Buffered` uses the page cache.
//! - A cache is one file or block device, opened by one process at a time; a path that holds
//!   anything but a cache is never formatted unless [`CacheOptions::format`] says so.
//!
//! ```
//! use dcache::{Cache, CacheOptions, Fetched};
//! let path = std::env::temp_dir().join(format!("dcache-doc-crate-{}", std::process::id()));
//! let cache = Cache::open(&path, &CacheOptions::new().create(true).capacity(64 << 20))?;
//! cache.put(b"/index.html", b"<html>...</html>", 3600)?;
//! cache.flush()?; // durable from here on
//! let mut buf = vec![0u8; 1024];
//! if let Fetched::Copied(n) = cache.get(b"/index.html", &mut buf)? {
//!     assert_eq!(&buf[..n], b"<html>...</html>");
//! }
//! # drop(cache); std::fs::remove_file(&path).unwrap();
//! # Ok::<(), dcache::Error>(())
//! ```
//!
//! # Reads that do not block
//! [`Cache::queue`] opens a completion queue ([`ReadQueue`]): reads submitted without
//! waiting, run on io_uring where the kernel allows it (else on a few threads), and reaped
//! later, with a file descriptor that is readable while completions wait, for an event loop.
//! With the `tokio` feature, [`Cache::async_reader`] gives an `AsyncReader` whose gets
//! await that fd through tokio's reactor.
//!
//! # The file layer
//! [`DirectFile`] reads and writes files and block devices with O_DIRECT at any offset and
//! length, with the alignment each one asks for; [`read_all`] and [`write_all`] move whole
//! files.
//!
//! # The C library
//! The same crate builds `libdcache.so` and `libdcache.a` with `include/dcache.h`; the C
//! interface is a thin shell over this one.

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

/// The engine's decoders and image tools, for the fuzz targets (the `fuzzing` feature).
#[cfg(feature = "fuzzing")]
pub use cache::fuzzing;
#[cfg(feature = "tokio")]
pub use cache::AsyncReader;
pub use cache::{
    Admission, Backend, Cache, CacheOptions, Completion, Fetched, Histogram, LatencyHistogram,
    Layout, Outcome, ReadQueue, ReadRequest, RecoveryReport, Stamp, Stats, VerifyReport, Writer,
    LATENCY_BUCKETS, MAX_KEY_LEN,
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

// What the API promises about sharing, checked at build time.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    const fn send<T: Send>() {}
    send_sync::<Cache>();
    send_sync::<ReadQueue>();
    send_sync::<DirectFile>();
    send_sync::<Error>();
    send::<Writer>();
    send::<AlignedBuf>();
    #[cfg(feature = "tokio")]
    send_sync::<AsyncReader>();
};

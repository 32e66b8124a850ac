//! The error type shared by every layer. Each error has a kind, a message precise enough to act
//! on (the path, the errno text, the limit that was exceeded), and, where one exists, the remedy
//! the caller could ask for. All three are in the engine's words: the C interface and the CLI
//! each say how their users ask for a remedy.

use std::borrow::Cow;
use std::fmt;
use std::io;

/// What went wrong, in the terms a caller can act on.
///
/// ```
/// # let path = std::env::temp_dir().join(format!("dcache-doc-kind-{}", std::process::id()));
/// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
/// let mut buf = [0u8; 16];
/// match cache.get(b"maybe", &mut buf) {
///     Ok(found) => println!("{found:?}"),
///     Err(e) if e.kind() == dcache::ErrorKind::NotFound => println!("a miss: fetch it"),
///     Err(e) => return Err(e), // an I/O error, a closed cache...
/// }
/// # drop(cache); std::fs::remove_file(&path).unwrap();
/// # Ok::<(), dcache::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No value under the key (never stored, deleted, expired, evicted, or lost).
    NotFound,
    /// The buffer is smaller than the value.
    BufferTooSmall,
    /// An argument the call cannot take (the message says which and why).
    InvalidArgument,
    /// A key or value longer than the cache takes.
    TooLarge,
    /// A range that starts past the value's end.
    Range,
    /// The device failed a read or write.
    Io,
    /// The file system or device is full.
    NoSpace,
    /// The path holds something that is not a cache (never formatted without being told).
    NotACache,
    /// A cache of another format version, or that this build cannot open.
    Incompatible,
    /// Another process has the cache open.
    Locked,
    /// The file system refuses what was asked (O_DIRECT, say).
    Unsupported,
    /// The cache was opened read-only, or the device refuses writes.
    ReadOnly,
    /// Memory could not be allocated.
    OutOfMemory,
    /// A bug in dcache: please report it with the message.
    Internal,
    /// The admission policy chose not to store a value.
    Declined,
    /// A completion queue holds as many reads as its depth: reap first.
    Busy,
}

/// What the caller could ask for to get past an error.
///
/// ```
/// let path = std::env::temp_dir().join(format!("dcache-doc-remedy-{}", std::process::id()));
/// let mut opts = dcache::CacheOptions::new().capacity(16 << 20);
/// let cache = match dcache::Cache::open(&path, &opts) {
///     Err(e) if e.remedy() == Some(dcache::Remedy::Create) => {
///         opts = opts.create(true); // the path is missing: create it
///         dcache::Cache::open(&path, &opts).unwrap()
///     }
///     other => other.unwrap(),
/// };
/// # drop(cache); std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// Creating the missing path.
    Create,
    /// Formatting the path, which destroys what it holds.
    Format,
    /// Letting the I/O mode fall back to buffered I/O.
    AllowBuffered,
}

/// An error: its kind, a message precise enough to act on, and the remedy, if any.
///
/// ```
/// let absent = std::env::temp_dir().join(format!("dcache-doc-absent-{}", std::process::id()));
/// let err = dcache::Cache::open(&absent, &dcache::CacheOptions::new()).unwrap_err();
/// assert_eq!(err.kind(), dcache::ErrorKind::Io); // no such file
/// assert_eq!(err.remedy(), Some(dcache::Remedy::Create));
/// println!("{err}"); // names the path and what went wrong
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    remedy: Option<Remedy>,
}

/// A result with dcache's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            kind,
            message: message.into(),
            remedy: None,
        }
    }

    /// An `InvalidArgument` error saying `message`.
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    /// An operating-system error, with what was being done (`context`, which names the path)
    /// and the errno text. The kind follows the errno where a caller can act on it.
    pub fn os(context: impl fmt::Display, err: io::Error) -> Self {
        let kind = match err.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG) => ErrorKind::NoSpace,
            Some(libc::EROFS) => ErrorKind::ReadOnly,
            Some(libc::ENOMEM) => ErrorKind::OutOfMemory,
            _ => ErrorKind::Io,
        };
        Error::new(kind, format!("{context}: {err}"))
    }

    /// The same error, with the remedy a caller could ask for.
    pub fn with_remedy(mut self, remedy: Remedy) -> Self {
        self.remedy = Some(remedy);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message (also what `Display` prints).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What the caller could ask for to get past it, if anything.
    pub fn remedy(&self) -> Option<Remedy> {
        self.remedy
    }

    /// Adds context in front of the message, keeping the kind and the remedy.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message).into();
        self
    }
}

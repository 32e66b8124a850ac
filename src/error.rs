//! The error type shared by every layer. Each error has a kind (which the C boundary turns
//! into a `dcache_result`) and a message precise enough to act on: the path, the errno text,
//! the limit that was exceeded.

use std::borrow::Cow;
use std::fmt;
use std::io;

/// What went wrong, in the terms a caller can act on. One kind per C result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    BufferTooSmall,
    InvalidArgument,
    TooLarge,
    Range,
    Io,
    NoSpace,
    NotACache,
    Incompatible,
    Locked,
    Unsupported,
    ReadOnly,
    OutOfMemory,
    Internal,
}

#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

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

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Adds context in front of the message, keeping the kind.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message).into();
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

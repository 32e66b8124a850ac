//! Where the library's warnings go. Nothing is ever printed to stdout: by default warnings and
//! errors go to stderr, and an embedding program (through the C boundary) can install its own
//! sink.

use parking_lot::RwLock;
use std::sync::Arc;

/// How much a message matters ([`set_log_sink`](crate::set_log_sink)).
///
/// ```
/// use dcache::LogLevel;
/// // Levels order by importance: Error < Warn < Info < Debug.
/// assert!(LogLevel::Error < LogLevel::Warn && LogLevel::Info < LogLevel::Debug);
/// let sink: dcache::LogSink = std::sync::Arc::new(|level, message: &str| {
///     if level <= LogLevel::Warn {
///         eprintln!("dcache: {message}");
///     }
/// });
/// # let _ = sink;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Level {
    /// An operation failed in a way the caller should know of.
    Error = 1,
    /// The library carried on, but not as asked (buffered I/O instead of direct, say).
    Warn = 2,
    /// Information.
    Info = 3,
    /// Debugging detail.
    Debug = 4,
}

/// Where messages go: called from any thread, concurrently.
pub type Sink = Arc<dyn Fn(Level, &str) + Send + Sync>;

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Installs `sink` for every later message; `None` restores the default (stderr, warnings and
/// errors only). Nothing is ever written to stdout.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = seen.clone();
/// dcache::set_log_sink(Some(Arc::new(move |level, message: &str| {
///     sink.lock().unwrap().push((level, message.to_string()));
/// })));
/// // ... use caches; warnings (a fallback to buffered I/O, a bad block) arrive in `seen`.
/// dcache::set_log_sink(None);
/// ```
pub fn set_sink(sink: Option<Sink>) {
    *SINK.write() = sink;
}

pub fn log(level: Level, message: &str) {
    let sink = SINK.read().clone();
    match sink {
        Some(sink) => sink(level, message),
        None if level <= Level::Warn => {
            let tag = if level == Level::Error {
                "error"
            } else {
                "warning"
            };
            eprintln!("dcache: {tag}: {message}");
        }
        None => {}
    }
}

pub fn warn(message: &str) {
    log(Level::Warn, message)
}

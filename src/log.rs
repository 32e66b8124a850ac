//! Where the library's warnings go. Nothing is ever printed to stdout: by default warnings and
//! errors go to stderr, and an embedding program (through the C boundary) can install its own
//! sink.

use parking_lot::RwLock;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

pub type Sink = Arc<dyn Fn(Level, &str) + Send + Sync>;

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Installs `sink` for every later message; `None` restores the default (stderr, warnings and
/// errors only).
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

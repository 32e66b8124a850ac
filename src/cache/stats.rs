//! Counters, updated with relaxed atomics on the hot paths.

use super::Shared;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default)]
pub(crate) struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub puts: AtomicU64,
    pub deletes: AtomicU64,
    pub evictions: AtomicU64,
    pub expirations: AtomicU64,
    pub bytes_written: AtomicU64,
    pub bytes_read: AtomicU64,
    pub checksum_failures: AtomicU64,
    pub io_errors: AtomicU64,
}

/// A snapshot of a cache's counters and sizes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub direct_io: bool,
    pub alignment: u32,
    pub capacity: u64,
    pub used_bytes: u64,
    pub entries: u64,
    pub hits: u64,
    pub misses: u64,
    pub puts: u64,
    pub deletes: u64,
    pub evictions: u64,
    pub expirations: u64,
    pub bytes_written: u64,
    pub bytes_read: u64,
    pub checksum_failures: u64,
    pub io_errors: u64,
}

impl Shared {
    pub(crate) fn stats(&self) -> Stats {
        let c = &self.stats;
        Stats {
            direct_io: self.dev.is_direct(),
            alignment: self.geometry.alignment,
            capacity: self.geometry.capacity,
            used_bytes: self.used_bytes.load(Relaxed).min(self.geometry.capacity),
            entries: self.index.len() as u64,
            hits: c.hits.load(Relaxed),
            misses: c.misses.load(Relaxed),
            puts: c.puts.load(Relaxed),
            deletes: c.deletes.load(Relaxed),
            evictions: c.evictions.load(Relaxed),
            expirations: c.expirations.load(Relaxed),
            bytes_written: c.bytes_written.load(Relaxed),
            bytes_read: c.bytes_read.load(Relaxed),
            checksum_failures: c.checksum_failures.load(Relaxed),
            io_errors: c.io_errors.load(Relaxed),
        }
    }
}

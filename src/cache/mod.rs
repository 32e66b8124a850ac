//! STUB: replaced by the engine in the next commit.
use crate::dio::IoMode;
use crate::error::{Error, ErrorKind, Result};
use std::path::Path;
pub const MAX_KEY_LEN: usize = 4096;
pub struct CacheOptions {
    pub io_mode: IoMode,
    pub create: bool,
    pub format: bool,
    pub sync_writes: bool,
    pub read_only: bool,
    pub alignment: Option<usize>,
    pub capacity: u64,
    pub default_ttl_secs: u64,
    pub max_value_size: u64,
}
pub enum Fetched {
    Copied(usize),
    TooSmall(u64),
}
#[derive(Default)]
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
pub struct Cache;
pub struct Writer;
fn todo<T>() -> Result<T> {
    Err(Error::new(ErrorKind::Unsupported, "not yet"))
}
impl Cache {
    pub fn open(_: &Path, _: &CacheOptions) -> Result<Cache> {
        todo()
    }
    pub fn close(&self) -> Result<()> {
        todo()
    }
    pub fn flush(&self) -> Result<()> {
        todo()
    }
    pub fn check_value_len(&self, _: u64) -> Result<()> {
        todo()
    }
    pub fn put(&self, _: &[u8], _: &[u8], _: u64) -> Result<()> {
        todo()
    }
    pub fn get(&self, _: &[u8], _: &mut [u8]) -> Result<Fetched> {
        todo()
    }
    pub fn get_range(&self, _: &[u8], _: u64, _: &mut [u8]) -> Result<usize> {
        todo()
    }
    pub fn value_size(&self, _: &[u8]) -> Result<u64> {
        todo()
    }
    pub fn delete(&self, _: &[u8]) -> Result<()> {
        todo()
    }
    pub fn writer(&self, _: &[u8], _: u64) -> Result<Writer> {
        todo()
    }
    pub fn is_direct_io(&self) -> bool {
        false
    }
    pub fn alignment(&self) -> usize {
        0
    }
    pub fn max_value_size(&self) -> u64 {
        0
    }
    pub fn stats(&self) -> Stats {
        Stats::default()
    }
}
impl Writer {
    pub fn check_len(&self, _: u64) -> Result<()> {
        todo()
    }
    pub fn write(&mut self, _: &[u8]) -> Result<()> {
        todo()
    }
    pub fn commit(self) -> Result<()> {
        todo()
    }
}

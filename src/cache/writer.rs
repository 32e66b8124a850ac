//! Streaming puts: the value is gathered in memory and stored whole at commit, so nothing is
//! visible before it and an abort (or drop) leaves nothing.

use super::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use std::sync::Arc;

/// A streaming put ([`Cache::writer`](crate::Cache::writer)): the value is gathered, then
/// stored whole at `commit`; nothing is visible before, and a drop stores nothing.
///
/// ```
/// # let path = std::env::temp_dir().join(format!("dcache-doc-writer-{}", std::process::id()));
/// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
/// let mut w = cache.writer(b"streamed", 0).unwrap();
/// w.write(b"part one, ").unwrap();
/// w.write(b"part two").unwrap();
/// w.commit().unwrap();
/// let mut buf = [0u8; 64];
/// assert_eq!(cache.get(b"streamed", &mut buf).unwrap(), dcache::Fetched::Copied(18));
/// # drop(cache); std::fs::remove_file(&path).unwrap();
/// ```
pub struct Writer {
    engine: Arc<Engine>,
    key: Vec<u8>,
    ttl_secs: u64,
    value: Vec<u8>,
    refused: bool,
}

impl Writer {
    pub(crate) fn new(engine: Arc<Engine>, key: &[u8], ttl_secs: u64) -> Writer {
        Writer {
            engine,
            key: key.to_vec(),
            ttl_secs,
            value: Vec::new(),
            refused: false,
        }
    }

    /// `TooLarge` if appending `len` more bytes would pass max_value_size; the writer is then
    /// spoiled, so that a commit cannot store a truncated value.
    pub fn check_len(&mut self, len: u64) -> Result<()> {
        let total = (self.value.len() as u64).saturating_add(len);
        if let Err(e) = self.engine.check_value_len(total) {
            self.refused = true;
            return Err(e);
        }
        Ok(())
    }

    /// Appends `data` to the value.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.check_len(data.len() as u64)?;
        self.value.try_reserve(data.len()).map_err(|_| {
            Error::new(
                ErrorKind::OutOfMemory,
                format!(
                    "cannot grow a streamed value to {} bytes",
                    self.value.len() + data.len()
                ),
            )
        })?;
        self.value.extend_from_slice(data);
        Ok(())
    }

    /// Stores the value gathered, as a put would.
    pub fn commit(self) -> Result<()> {
        if self.refused {
            return Err(Error::new(
                ErrorKind::TooLarge,
                "a write to this writer was refused as too large; nothing was stored",
            ));
        }
        let latency = &self.engine.counters.latency.put;
        latency.time(|| self.engine.commit(&self.key, &self.value, self.ttl_secs))
    }
}

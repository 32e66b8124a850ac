//! Streaming puts: the value is gathered in memory and stored whole at commit, so nothing is
//! visible before it and an abort (or drop) leaves nothing.

use super::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use std::sync::Arc;

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

    pub fn commit(self) -> Result<()> {
        if self.refused {
            return Err(Error::new(
                ErrorKind::TooLarge,
                "a write to this writer was refused as too large; nothing was stored",
            ));
        }
        self.engine.commit(&self.key, &self.value, self.ttl_secs)
    }
}

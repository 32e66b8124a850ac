//! Writes refused after a failed one. When the device fails a write (EIO, a write-protected
//! device, a full file system), puts fail at once with that write's error instead of filling
//! memory that can never reach the device. Now and then a put probes the device with a
//! harmless write; the refusal ends when that or any other write succeeds. The probes back
//! off, from `FIRST_PROBE` to `LAST_PROBE` apart, so a device that stays read-only costs a
//! failed write a few seconds, not one a put.

use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

const FIRST_PROBE: Duration = Duration::from_millis(100);
const LAST_PROBE: Duration = Duration::from_secs(5);

struct Failed {
    error: Error,
    next_probe: Instant,
    backoff: Duration,
    /// A put is probing: the others fail without waiting for it.
    probing: bool,
}

#[derive(Default)]
pub(crate) struct WriteRefusal {
    /// Whether writes are refused: the fast path of every put reads only this.
    refusing: AtomicBool,
    failed: Mutex<Option<Failed>>,
}

impl WriteRefusal {
    /// A write failed with `e`: refuse writes until one succeeds.
    pub fn write_failed(&self, e: &Error) {
        let mut failed = self.failed.lock();
        if failed.is_none() {
            crate::log::warn(&format!(
                "{e}; puts fail with this error until a write succeeds (tried every {} ms to {} s)",
                FIRST_PROBE.as_millis(),
                LAST_PROBE.as_secs()
            ));
            *failed = Some(Failed {
                error: e.clone(),
                next_probe: Instant::now() + FIRST_PROBE,
                backoff: FIRST_PROBE,
                probing: false,
            });
            self.refusing.store(true, Relaxed);
        }
    }

    /// A write succeeded: the device takes writes again.
    pub fn write_succeeded(&self) {
        if self.refusing.load(Relaxed) {
            let mut failed = self.failed.lock();
            if failed.take().is_some() {
                crate::log::log(
                    crate::log::Level::Info,
                    "the device takes writes again: puts are stored again",
                );
            }
            self.refusing.store(false, Relaxed);
        }
    }

    /// Ok while writes are not refused. While they are, the error of the write that failed,
    /// unless it is time to probe: then `probe` is tried (by one caller at a time; a write
    /// through the device, whose success or failure it reports here) and its outcome returned.
    pub fn check(&self, probe: impl FnOnce() -> Result<()>) -> Result<()> {
        if !self.refusing.load(Relaxed) {
            return Ok(());
        }
        {
            let mut guard = self.failed.lock();
            let Some(failed) = guard.as_mut() else {
                return Ok(());
            };
            if failed.probing || Instant::now() < failed.next_probe {
                return Err(refused(&failed.error));
            }
            failed.probing = true;
        }
        let probed = probe();
        let mut guard = self.failed.lock();
        if let Some(failed) = guard.as_mut() {
            failed.probing = false;
            failed.backoff = (failed.backoff * 2).min(LAST_PROBE);
            failed.next_probe = Instant::now() + failed.backoff;
            return Err(refused(&failed.error));
        }
        probed
    }
}

fn refused(e: &Error) -> Error {
    Error::new(
        e.kind(),
        format!("writes are refused since a write failed ({})", e.message()),
    )
}

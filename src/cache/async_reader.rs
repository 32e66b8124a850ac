//! Gets that await instead of blocking (feature `tokio`): a completion queue whose fd tokio's
//! reactor watches. Each get owns its buffer until the read completes, so a get dropped before
//! it completes (a timeout, a cancelled task) leaves the buffer to the queue, which frees it
//! once the device is done with it.

use super::engine::Engine;
use super::queue::{Completion, Outcome, ReadQueue};
use super::Cache;
use crate::error::{Error, ErrorKind, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{oneshot, Notify};

/// A read's buffer and where its result goes.
struct Pending {
    buf: Vec<u8>,
    done: oneshot::Sender<(Outcome, Vec<u8>)>,
}

/// The queue's eventfd, as tokio's reactor sees it (the queue owns it).
struct QueueFd(RawFd);

impl AsRawFd for QueueFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Gets and range reads that await their completion on a tokio runtime, never blocking an
/// executor thread on the device, from [`Cache::async_reader`]. Share it between tasks (it is
/// `Send + Sync`); up to `depth` reads are in flight at once, and more wait their turn.
///
/// It needs tokio's reactor. On another executor, use a [`ReadQueue`] directly: register
/// [`ReadQueue::fd`] with that executor's reactor, submit, and reap when it is readable.
///
/// ```
/// # let path = std::env::temp_dir().join(format!("dcache-doc-async-{}", std::process::id()));
/// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
/// cache.put(b"k", b"value", 0).unwrap();
/// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// rt.block_on(async {
///     let reader = cache.async_reader(32).unwrap();
///     assert_eq!(reader.get(b"k").await.unwrap(), b"value");
///     assert_eq!(reader.get_range(b"k", 1, 3).await.unwrap(), b"alu");
///     assert_eq!(reader.get(b"absent").await.unwrap_err().kind(), dcache::ErrorKind::NotFound);
/// });
/// # drop(cache); std::fs::remove_file(&path).unwrap();
/// ```
pub struct AsyncReader {
    // Dropped in this order: the fd leaves tokio's reactor, the queue waits for its reads and
    // closes the fd, then the buffers those reads filled are freed.
    fd: AsyncFd<QueueFd>,
    queue: ReadQueue,
    pending: Mutex<HashMap<u64, Pending>>,
    engine: Arc<Engine>,
    next_id: AtomicU64,
    /// Woken when a reap takes completions: a get refused as `Busy` retries then, since the
    /// fd may have been readable, and cleared, before it began to wait.
    reaped: Notify,
}

/// Takes a read's entry out of `pending` if its get is dropped before the queue accepts it.
struct Unsubmitted<'a> {
    pending: &'a Mutex<HashMap<u64, Pending>>,
    id: u64,
}

impl Drop for Unsubmitted<'_> {
    fn drop(&mut self) {
        self.pending.lock().remove(&self.id);
    }
}

impl Cache {
    /// An [`AsyncReader`] of `depth` reads in flight (0: 64). Call it within a tokio runtime
    /// (with its I/O driver enabled); `InvalidArgument` otherwise.
    pub fn async_reader(&self, depth: u32) -> Result<AsyncReader> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::invalid(
                "an async reader needs a tokio runtime: make it within one",
            ));
        }
        let queue = self.queue(depth)?;
        // SAFETY: the queue owns the eventfd and keeps it open until it is dropped, after
        // this AsyncFd (see the order of AsyncReader's fields).
        let fd =
            unsafe { AsyncFd::register_with_interest(QueueFd(queue.fd()), Interest::READABLE) }
                .map_err(|e| {
                    Error::os("registering the queue's fd with tokio", e.into_parts().1)
                })?;
        Ok(AsyncReader {
            fd,
            queue,
            pending: Mutex::new(HashMap::new()),
            engine: self.engine.clone(),
            next_id: AtomicU64::new(0),
            reaped: Notify::new(),
        })
    }
}

impl AsyncReader {
    /// The value under `key`, checked as [`Cache::get`] checks it; `NotFound` for a miss.
    pub async fn get(&self, key: &[u8]) -> Result<Vec<u8>> {
        loop {
            // A length from memory, not the value's exact size (a read of the device, which
            // would block the executor): the completion gives the exact size.
            let bound = self.engine.value_len_bound(key)?;
            let len = usize::try_from(bound).map_err(|_| Error::invalid("value too large"))?;
            match self.read(key, None, len).await? {
                (Outcome::Read(_), buf) => return Ok(buf),
                // Replaced by a larger value meanwhile: read again at its size.
                (Outcome::TooSmall(_), _) => continue,
                (Outcome::Failed(kind), _) => return Err(failed(kind, key)),
            }
        }
    }

    /// What runs its reads: io_uring, or the queue's threads where io_uring is not available.
    pub fn backend(&self) -> super::queue::Backend {
        self.queue.backend()
    }

    /// Up to `len` bytes of the value under `key` from `offset` (fewer at its end), checked as
    /// [`Cache::get_range`] checks them; `Range` for an offset past the end.
    pub async fn get_range(&self, key: &[u8], offset: u64, len: usize) -> Result<Vec<u8>> {
        match self.read(key, Some(offset), len).await? {
            (Outcome::Read(_), buf) => Ok(buf),
            (Outcome::TooSmall(n), _) => Err(Error::new(
                ErrorKind::Internal,
                format!("a range read reported a value of {n} bytes as too large"),
            )),
            (Outcome::Failed(kind), _) => Err(failed(kind, key)),
        }
    }

    /// Submits one read into a buffer of `len` bytes and awaits its outcome and the buffer,
    /// which holds the bytes read (none unless the outcome is `Read`).
    async fn read(
        &self,
        key: &[u8],
        offset: Option<u64>,
        len: usize,
    ) -> Result<(Outcome, Vec<u8>)> {
        let id = self.next_id.fetch_add(1, Relaxed);
        let (tx, mut rx) = oneshot::channel();
        let mut buf = Vec::new();
        buf.try_reserve_exact(len)
            .map_err(|_| Error::new(ErrorKind::OutOfMemory, format!("{len} bytes")))?;
        // Not zeroed first (a memset as long as the read): the queue writes the bytes, and
        // the length is set to what it wrote when the read is reaped. The bytes stay where
        // they are while the Vec moves into the map. Kept as an address, so that the get's
        // future stays Send.
        let (addr, cap) = (buf.as_mut_ptr() as usize, len);
        // In the map before the submit: another get may reap this read's completion.
        self.pending.lock().insert(id, Pending { buf, done: tx });
        let unsubmitted = Unsubmitted {
            pending: &self.pending,
            id,
        };
        loop {
            // Listening before the submit: a reap between a refusal and the wait wakes it.
            let reaped = self.reaped.notified();
            tokio::pin!(reaped);
            reaped.as_mut().enable();
            // SAFETY: the bytes belong to the entry in `pending`, which is removed only when
            // this read's completion is reaped (or the queue dropped, after its reads).
            match unsafe { self.queue.submit(key, offset, addr as *mut u8, cap, id) } {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::Busy => tokio::select! {
                    _ = &mut reaped => {}
                    done = self.reap_when_ready() => done?,
                },
                Err(e) => return Err(e),
            }
        }
        std::mem::forget(unsubmitted);
        loop {
            tokio::select! {
                done = &mut rx => {
                    return done.map_err(|_| Error::new(ErrorKind::Internal, "a read was lost"));
                }
                reaped = self.reap_when_ready() => reaped?,
            }
        }
    }

    /// Waits until the queue's fd is readable, then reaps what is there and hands each
    /// completion to its get.
    async fn reap_when_ready(&self) -> Result<()> {
        let mut ready = self
            .fd
            .readable()
            .await
            .map_err(|e| Error::os("waiting for the queue's fd", e))?;
        let mut finished = Vec::new();
        self.queue
            .reap_each(usize::MAX, 0, |c: Completion| finished.push(c))?;
        if finished.is_empty() {
            ready.clear_ready();
        } else {
            self.reaped.notify_waiters();
        }
        let mut pending = self.pending.lock();
        for c in finished {
            if let Some(mut p) = pending.remove(&c.user_data) {
                if let Outcome::Read(n) = c.outcome {
                    // SAFETY: the queue wrote the value's first n bytes, n <= the length it
                    // was given, which is within the capacity reserved.
                    debug_assert!(n as usize <= p.buf.capacity());
                    unsafe { p.buf.set_len(n as usize) };
                }
                // A get that was dropped no longer listens: its buffer is freed here.
                let _ = p.done.send((c.outcome, p.buf));
            }
        }
        Ok(())
    }
}

fn failed(kind: ErrorKind, key: &[u8]) -> Error {
    let what = match kind {
        ErrorKind::NotFound => "no value",
        ErrorKind::Range => "the offset is past the end of the value",
        ErrorKind::Io => "the device failed the read",
        _ => "the read failed",
    };
    Error::new(kind, format!("{what} (key of {} bytes)", key.len()))
}

impl std::fmt::Debug for AsyncReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncReader")
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

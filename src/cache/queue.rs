//! The completion queue: reads submitted without waiting, completed in the background, and
//! reaped later, with a file descriptor (an eventfd) that is readable while completions wait.
//! This backend runs the reads on a small pool of threads, each a blocking `Engine::get` or
//! `get_range`: every byte is verified exactly as a get verifies it.
//!
//! A read the cache can serve from memory (a value in the write buffer, an absent key)
//! completes in the submitting call, with no thread involved.
//!
//! On the threads, a read crosses two threads, and waking a sleeping one costs tens of
//! microseconds on a VM: so a worker looks for its next read for a short while before it
//! sleeps, and a reap that must wait looks for completions for a short while before it
//! sleeps. A reap waiting only for the ring sleeps in the ring at once, as a blocking read
//! sleeps in the kernel: looking first costs CPU and gains nothing.

use super::engine::Engine;
use super::metrics::Stamp;
use super::read::Fetched;
use super::uring::Ring;
use crate::dio::fault;
use crate::error::{Error, ErrorKind, Result};
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the queue writes to the caller's notification descriptor (`ReadQueue::notify`).
pub(crate) static NOTIFY_BYTE: [u8; 1] = [1];

/// The default and the largest depth.
pub const DEFAULT_DEPTH: u32 = 64;
pub const MAX_DEPTH: u32 = 4096;
/// The most threads a queue runs reads on: reads in flight at once.
const MAX_WORKERS: usize = 16;
/// How long an idle worker, and a reap that must wait, look before they sleep.
const SPIN: Duration = Duration::from_micros(50);
/// How long a reap that must wait for the threads looks before it sleeps: longer than a read
/// of the device, since the caller chose to wait.
const REAP_SPIN: Duration = Duration::from_micros(500);
/// The longest a reap sleeps in the ring before it looks again.
const RING_WAIT: Duration = Duration::from_millis(1);

/// A range read of an entry longer than this goes to the threads, which read only the part
/// of it that the range needs; the ring reads entries whole.
const RING_RANGE_ENTRY_MAX: usize = 1 << 20;

/// The ring for a new queue, or None, logged once, where the kernel refuses io_uring or
/// `DCACHE_QUEUE_BACKEND=threads` asks for the threads (tests of the fallback).
fn ring_for(engine: &Engine, depth: u32, eventfd: RawFd) -> Option<Ring> {
    if std::env::var("DCACHE_QUEUE_BACKEND").is_ok_and(|v| v == "threads") {
        return None;
    }
    let device = &engine.device;
    let fd = device.file().fd().as_raw_fd();
    let unit = device.geometry().unit as usize;
    match Ring::new(depth, fd, device.buffer_align(), unit, eventfd) {
        Ok(ring) => Some(ring),
        Err(e) => {
            static LOGGED: std::sync::Once = std::sync::Once::new();
            LOGGED.call_once(|| {
                crate::log::warn(&format!(
                    "{e}: completion queues run their reads on threads (DCACHE_QUEUE_THREADS)"
                ))
            });
            None
        }
    }
}

/// Which engine runs a queue's reads.
///
/// ```
/// # let path = std::env::temp_dir().join(format!("dcache-doc-backend-{}", std::process::id()));
/// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
/// let q = cache.queue(8).unwrap();
/// // DCACHE_QUEUE_BACKEND=threads in the environment forces the fallback.
/// println!("reads run on {:?}", q.backend());
/// # drop(q);
/// # drop(cache); std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// io_uring, where the kernel allows it.
    IoUring,
    /// A pool of threads, each one blocking read at a time: the fallback.
    Threads,
}

/// How a read ended.
///
/// ```
/// use dcache::{ErrorKind, Outcome};
/// fn describe(outcome: Outcome) -> String {
///     match outcome {
///         Outcome::Read(n) => format!("{n} bytes in the buffer"),
///         Outcome::TooSmall(n) => format!("the value is {n} bytes: submit a larger buffer"),
///         Outcome::Failed(ErrorKind::NotFound) => "a miss".into(),
///         Outcome::Failed(kind) => format!("failed: {kind:?}"),
///     }
/// }
/// assert_eq!(describe(Outcome::Read(3)), "3 bytes in the buffer");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This many bytes are in the buffer.
    Read(u64),
    /// The value is this many bytes, more than the buffer holds (a whole-value get only);
    /// the buffer is untouched.
    TooSmall(u64),
    /// A miss (`NotFound`), a range past the value's end (`Range`), an I/O error (`Io`).
    Failed(ErrorKind),
}

/// A finished read, with the caller's tag: what [`ReadQueue::reap`] fills in.
///
/// ```
/// # let path = std::env::temp_dir().join(format!("dcache-doc-completion-{}", std::process::id()));
/// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
/// use dcache::{Completion, ErrorKind, Outcome};
/// let q = cache.queue(4).unwrap();
/// let mut buf = [0u8; 8];
/// // SAFETY: the buffer outlives the read, reaped below.
/// unsafe { q.submit(b"absent", None, buf.as_mut_ptr(), buf.len(), 42) }.unwrap();
/// // Room for the reap to fill: the initial values are overwritten.
/// let mut done = [Completion { user_data: 0, outcome: Outcome::Read(0) }; 4];
/// assert_eq!(q.reap(&mut done, 1).unwrap(), 1);
/// assert_eq!(done[0], Completion { user_data: 42, outcome: Outcome::Failed(ErrorKind::NotFound) });
/// # drop(q); drop(cache); std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// What the submit was given.
    pub user_data: u64,
    /// How the read ended.
    pub outcome: Outcome,
}

/// The caller's buffer: it promised, at submit, that it stays valid and untouched until the
/// read's completion is reaped (or the queue is closed).
pub(super) struct Target {
    ptr: *mut u8,
    len: usize,
}

impl Target {
    pub(super) fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// # Safety
    /// The read this target belongs to is not reaped yet, and nothing else uses the bytes.
    // The bytes are the caller's, lent to the read, not part of `self`.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn as_mut_slice(&self) -> &mut [u8] {
        std::slice::from_raw_parts_mut(self.ptr, self.len)
    }
}

// SAFETY: the memory is the caller's, lent to the queue until the completion is reaped; one
// worker writes it, and nobody else touches it meanwhile (see `ReadQueue::submit`).
unsafe impl Send for Target {}

/// One read of a batch (`ReadQueue::submit_batch`): the arguments of `ReadQueue::submit`.
///
/// ```
/// # let path = std::env::temp_dir().join(format!("dcache-doc-batch-{}", std::process::id()));
/// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
/// use dcache::{Completion, Outcome, ReadRequest};
/// cache.put(b"a", b"0123456789", 0).unwrap();
/// let q = cache.queue(8).unwrap();
/// let (mut whole, mut part) = ([0u8; 10], [0u8; 4]);
/// let reads = [
///     ReadRequest { key: b"a", offset: None, buf: whole.as_mut_ptr(), len: 10, user_data: 1 },
///     ReadRequest { key: b"a", offset: Some(6), buf: part.as_mut_ptr(), len: 4, user_data: 2 },
///     ReadRequest { key: b"absent", offset: None, buf: whole.as_mut_ptr(), len: 0, user_data: 3 },
/// ];
/// // SAFETY: the buffers outlive the reads, reaped below.
/// let (accepted, refused) = unsafe { q.submit_batch(&reads) };
/// assert_eq!(accepted, 3);
/// refused.unwrap();
/// let mut done = [Completion { user_data: 0, outcome: Outcome::Read(0) }; 3];
/// assert_eq!(q.reap(&mut done, 3).unwrap(), 3);
/// done.sort_by_key(|c| c.user_data);
/// assert_eq!(done[1].outcome, Outcome::Read(4));
/// assert_eq!(done[2].outcome, Outcome::Failed(dcache::ErrorKind::NotFound));
/// assert_eq!(&part, b"6789");
/// # drop(q);
/// # drop(cache); std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ReadRequest<'a> {
    /// The key (copied at submit).
    pub key: &'a [u8],
    /// None: the whole value; Some(offset): a range of it from there.
    pub offset: Option<u64>,
    /// Where the bytes go: see the safety rules of `ReadQueue::submit`.
    pub buf: *mut u8,
    /// Bytes at `buf`.
    pub len: usize,
    /// What the completion will carry.
    pub user_data: u64,
}

pub(super) struct Read {
    pub key: Vec<u8>,
    /// None: the whole value; Some(offset): `get_range` from there.
    pub offset: Option<u64>,
    pub target: Target,
    pub user_data: u64,
    /// When it was submitted: its completion records its latency from there.
    pub submitted: Stamp,
}

#[derive(Default)]
struct State {
    waiting: VecDeque<Read>,
    done: VecDeque<Completion>,
    /// Submitted and not yet reaped: at most the depth.
    outstanding: u32,
    /// Reads a worker has taken and not finished.
    running: u32,
    workers: usize,
    /// Workers looking for a read: spinning, or asleep (`sleeping` of them).
    idle: usize,
    sleeping: usize,
    closing: bool,
}

struct Shared {
    engine: Arc<Engine>,
    depth: u32,
    state: Mutex<State>,
    /// Workers wait here for reads.
    work: Condvar,
    /// `close` waits here for the reads workers are running.
    finished: Condvar,
    /// Reads waiting: what a spinning worker looks at, without the lock.
    queued: AtomicUsize,
    eventfd: OwnedFd,
    /// The caller's descriptor that gets a byte for each completion (`notify`), or -1.
    notify: AtomicI32,
    /// The io_uring backend, where the kernel allows it (else every read goes to threads).
    ring: Option<Ring>,
}

/// A completion queue over a cache. Submissions may come from any thread; one thread at a
/// time reaps.
///
/// ```
/// # let path = std::env::temp_dir().join(format!("dcache-doc-queue-{}", std::process::id()));
/// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
/// use dcache::{Completion, Outcome};
/// cache.put(b"a", b"first", 0).unwrap();
/// cache.put(b"b", b"second", 0).unwrap();
/// cache.flush().unwrap();
/// let q = cache.queue(8).unwrap();
/// let (mut buf_a, mut buf_b) = ([0u8; 16], [0u8; 16]);
/// // SAFETY: the buffers outlive their reads, which are reaped below.
/// unsafe {
///     q.submit(b"a", None, buf_a.as_mut_ptr(), buf_a.len(), 1).unwrap();
///     q.submit(b"b", None, buf_b.as_mut_ptr(), buf_b.len(), 2).unwrap();
/// }
/// let mut done = [Completion { user_data: 0, outcome: Outcome::Read(0) }; 2];
/// assert_eq!(q.reap(&mut done, 2).unwrap(), 2); // waits for both
/// assert!(done.iter().all(|c| matches!(c.outcome, Outcome::Read(_))));
/// assert_eq!(&buf_a[..5], b"first");
/// # drop(q); drop(cache); std::fs::remove_file(&path).unwrap();
/// ```
pub struct ReadQueue {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl ReadQueue {
    /// A queue of `depth` reads (0: the default) over `engine`.
    pub(crate) fn open(engine: Arc<Engine>, depth: u32) -> Result<ReadQueue> {
        let depth = match depth {
            0 => DEFAULT_DEPTH,
            d if d > MAX_DEPTH => {
                return Err(Error::invalid(format!(
                    "a queue's depth is at most {MAX_DEPTH}, not {d}"
                )))
            }
            d => d,
        };
        if engine.is_closed() {
            return Err(Error::invalid("the cache is closed"));
        }
        // SAFETY: plain syscall; the descriptor it returns is owned here.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(Error::os("eventfd", std::io::Error::last_os_error()));
        }
        // SAFETY: fd is a new descriptor nobody else owns.
        let eventfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let ring = ring_for(&engine, depth, eventfd.as_raw_fd());
        Ok(ReadQueue {
            shared: Arc::new(Shared {
                engine,
                depth,
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                finished: Condvar::new(),
                queued: AtomicUsize::new(0),
                eventfd,
                notify: AtomicI32::new(-1),
                ring,
            }),
            threads: Mutex::new(Vec::new()),
        })
    }

    /// Readable while completions wait to be reaped.
    pub fn fd(&self) -> RawFd {
        self.shared.eventfd.as_raw_fd()
    }

    /// Has the queue write one byte to `fd` for each completion of a read submitted from now
    /// on, besides signalling its own eventfd: for an event loop that can watch only a
    /// socket (Traffic Server's `TSVConnFdCreate` reads with `recvmsg`, which an eventfd
    /// refuses). The caller reads the bytes and keeps `fd` open while the queue may write
    /// to it; -1 stops the bytes. On io_uring the kernel writes the byte, linked to the read,
    /// as the read completes. Writes never wait: a socket too full to take one already has
    /// bytes to read.
    pub fn notify(&self, fd: RawFd) -> Result<()> {
        if fd < -1 {
            return Err(Error::invalid(format!("{fd} is not a file descriptor")));
        }
        self.shared.notify.store(fd, Relaxed);
        Ok(())
    }

    /// What runs the queue's reads.
    pub fn backend(&self) -> Backend {
        match self.shared.ring {
            Some(_) => Backend::IoUring,
            None => Backend::Threads,
        }
    }

    /// The most reads submitted and not yet reaped.
    pub fn depth(&self) -> u32 {
        self.shared.depth
    }

    /// Submits a read of `key`'s value (`offset` None) or of a range of it from `offset`,
    /// into `len` bytes at `buf`; one completion will carry `user_data`. `Busy` when `depth`
    /// reads are submitted and not reaped; `InvalidArgument` once the cache is closed.
    ///
    /// # Safety
    /// `buf` points to `len` writable bytes that stay valid, and that nothing else reads or
    /// writes, until this read's completion is reaped or the queue is closed.
    pub unsafe fn submit(
        &self,
        key: &[u8],
        offset: Option<u64>,
        buf: *mut u8,
        len: usize,
        user_data: u64,
    ) -> Result<()> {
        let accepted = self.accept(&ReadRequest {
            key,
            offset,
            buf,
            len,
            user_data,
        });
        self.shared.start_ring();
        accepted
    }

    /// Submits `reads` in order, as `submit` does each, with one system call for all the
    /// reads of the device among them; stops at the first refused. Returns how many were
    /// accepted, and why the next was refused.
    ///
    /// # Safety
    /// As for `submit`, for each read's buffer.
    pub unsafe fn submit_batch(&self, reads: &[ReadRequest<'_>]) -> (usize, Result<()>) {
        let mut accepted = 0;
        let mut refused = Ok(());
        for r in reads {
            refused = self.accept(r);
            if refused.is_err() {
                break;
            }
            accepted += 1;
        }
        self.shared.start_ring();
        (accepted, refused)
    }

    /// `submit` of `r`, but a read of the device pushed to the ring waits for `start_ring`.
    unsafe fn accept(&self, r: &ReadRequest<'_>) -> Result<()> {
        let engine = &self.shared.engine;
        if engine.is_closed() {
            return Err(Error::invalid("the cache of this queue is closed"));
        }
        let mut st = self.shared.state.lock();
        if st.outstanding >= self.shared.depth {
            return Err(Error::new(
                ErrorKind::Busy,
                format!(
                    "{} reads are submitted and not reaped (the queue's depth): reap first",
                    st.outstanding
                ),
            ));
        }
        st.outstanding += 1;
        drop(st);
        let read = Read {
            key: r.key.to_vec(),
            offset: r.offset,
            target: Target {
                ptr: r.buf,
                len: r.len,
            },
            user_data: r.user_data,
            submitted: Stamp::now(),
        };
        // From memory, if it can be: the write buffer, or an absent key.
        if engine.likely_in_memory(r.key) {
            if let Some(outcome) = self.shared.read(&read, true) {
                self.shared.complete(&read, outcome);
                return Ok(());
            }
        }
        let read = match self.shared.start_on_ring(read) {
            Some(read) => read,
            None => return Ok(()),
        };
        let mut st = self.shared.state.lock();
        st.waiting.push_back(read);
        self.shared.queued.store(st.waiting.len(), Relaxed);
        if st.idle > st.sleeping {
            // A worker is looking: it takes this read without being woken.
        } else if st.sleeping > 0 {
            self.shared.work.notify_one();
        } else if st.workers < MAX_WORKERS.min(self.shared.depth as usize) {
            st.workers += 1;
            drop(st);
            self.spawn_worker();
        }
        Ok(())
    }

    fn spawn_worker(&self) {
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("dcache-queue".into())
            .spawn(move || shared.work_loop());
        match spawned {
            Ok(handle) => self.threads.lock().push(handle),
            // The reads wait for the workers there are; there is at least one unless this
            // was the first, which then runs them here, in order.
            Err(_) => {
                let mut st = self.shared.state.lock();
                st.workers -= 1;
                if st.workers == 0 {
                    drop(st);
                    self.shared.drain_here();
                }
            }
        }
    }

    /// Moves up to `out.len()` completions into `out`, waiting until at least `min` of them
    /// are there (0: never waits); returns how many. `min` above `out.len()` or above what
    /// is outstanding is refused, since it could never be met.
    pub fn reap(&self, out: &mut [Completion], min: usize) -> Result<usize> {
        let mut slots = out.iter_mut();
        self.reap_each(slots.len(), min, |c| {
            *slots.next().expect("at most max") = c;
        })
    }

    /// `reap`, handing each of at most `max` completions to `each`.
    pub fn reap_each(
        &self,
        max: usize,
        min: usize,
        mut each: impl FnMut(Completion),
    ) -> Result<usize> {
        let shared = &self.shared;
        let mut st = shared.state.lock();
        if min > max || min > st.outstanding as usize {
            return Err(Error::invalid(format!(
                "cannot wait for {min} completions with room for {max} and {} outstanding",
                st.outstanding
            )));
        }
        shared.drain_ring(&mut st, max);
        if st.done.len() < min {
            st = shared.wait_for(st, min);
        }
        let n = max.min(st.done.len());
        for c in st.done.drain(..n) {
            each(c);
        }
        st.outstanding -= n as u32;
        // A reap that does not wait is an event loop's, woken by the fd: it must leave the
        // fd readable exactly while completions wait. It is cleared, then the ring looked at
        // once more: a completion the kernel posts after the clear signals it again. A
        // waiting reap skips that system call (the fd may stay readable with nothing to
        // reap, until the next reap that does not wait).
        if st.done.is_empty() && min == 0 {
            shared.clear_eventfd();
            shared.drain_ring(&mut st, 1);
            if !st.done.is_empty() {
                shared.signal_eventfd();
            }
        }
        Ok(n)
    }

    /// Waits for the reads running, drops those not started and the completions not
    /// reaped, and stops the workers. The buffers are the caller's again when it returns.
    pub fn close(&self) {
        let shared = &self.shared;
        {
            let mut st = shared.state.lock();
            st.closing = true;
            st.waiting.clear();
            shared.work.notify_all();
            while st.running > 0 {
                shared.finished.wait(&mut st);
            }
        }
        if let Some(ring) = &shared.ring {
            ring.wait_all(&shared.engine);
        }
        for handle in self.threads.lock().drain(..) {
            let _ = handle.join();
        }
    }
}

impl std::fmt::Debug for ReadQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadQueue")
            .field("backend", &self.backend())
            .field("depth", &self.depth())
            .finish_non_exhaustive()
    }
}

impl Drop for ReadQueue {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    /// Runs `read`, from memory only if `memory_only` (None: it needs the device).
    fn read(&self, read: &Read, memory_only: bool) -> Option<Outcome> {
        // SAFETY: see Target; the caller lent these bytes to this read.
        let buf = unsafe { read.target.as_mut_slice() };
        let got = match read.offset {
            None => self
                .engine
                .get_with(&read.key, buf, memory_only)
                .map(|f| match f {
                    Fetched::Copied(n) => Outcome::Read(n as u64),
                    Fetched::TooSmall(n) => Outcome::TooSmall(n),
                }),
            Some(offset) => self
                .engine
                .get_range_with(&read.key, offset, buf, memory_only)
                .map(|n| Outcome::Read(n as u64)),
        };
        match got {
            Ok(outcome) => Some(outcome),
            Err(e) if e.kind() == ErrorKind::Busy => None,
            Err(e) => Some(Outcome::Failed(e.kind())),
        }
    }

    /// Starts `read` on the ring if there is one: None when it is started (or completed at
    /// once: a miss), else the read, for the threads.
    fn start_on_ring(&self, read: Read) -> Option<Read> {
        let Some(ring) = &self.ring else {
            return Some(read);
        };
        // SAFETY: the caller lent these bytes to this read; only looked at here.
        let into = read
            .offset
            .is_none()
            .then(|| &*unsafe { read.target.as_mut_slice() });
        let plan = match self.engine.plan_entry_read(&read.key, into) {
            Ok(plan) => plan,
            Err(e) => {
                self.complete(&read, Outcome::Failed(e.kind()));
                return None;
            }
        };
        // A small range of a large entry: the threads read just that part.
        if read.offset.is_some() && plan.len > RING_RANGE_ENTRY_MAX {
            return Some(read);
        }
        let user_data = read.user_data;
        // A fault a test set on the device (dio::fault): the kernel never sees this read.
        let device = &self.engine.device;
        let injected = fault::check(
            device.file().fd(),
            fault::Op::Read,
            plan.offset,
            plan.len as u64,
        );
        if let Err(e) = injected {
            let errno = e.raw_os_error().unwrap_or(libc::EIO);
            let failed = device.get_read_done(plan.offset, plan.len, -errno).err();
            let kind = failed.map_or(ErrorKind::Io, |e| e.kind());
            self.complete(&read, Outcome::Failed(kind));
            return None;
        }
        let submitted = read.submitted;
        if let Err(e) = ring.push(read, plan, self.notify.load(Relaxed)) {
            self.complete_at(user_data, submitted, Outcome::Failed(e.kind()));
        }
        None
    }

    /// Starts the reads pushed to the ring, if there is one.
    fn start_ring(&self) {
        if let Some(ring) = &self.ring {
            ring.start();
        }
    }

    /// Moves what the ring has completed into `st.done`, checked, until it holds `want`.
    fn drain_ring(&self, st: &mut State, want: usize) {
        let limit = want.saturating_sub(st.done.len());
        if let (Some(ring), true) = (&self.ring, limit > 0) {
            ring.drain(&self.engine, limit, |user_data, outcome| {
                st.done.push_back(Completion { user_data, outcome });
            });
        }
    }

    /// Waits until `st.done` holds `min` completions: in the ring while only the ring has
    /// reads to finish; else looks for a while (see the module's comment), then sleeps on the
    /// eventfd, which both the ring and the threads signal.
    fn wait_for<'a>(
        &'a self,
        mut st: parking_lot::MutexGuard<'a, State>,
        min: usize,
    ) -> parking_lot::MutexGuard<'a, State> {
        let started = Instant::now();
        while st.done.len() < min {
            if let (Some(ring), 0, true) = (&self.ring, st.running, st.waiting.is_empty()) {
                // Only the ring has reads to finish: sleep in it, as a blocking read sleeps.
                // A read completed from memory by another thread's submit meanwhile does not
                // wake the ring: the timeout bounds how late it is seen.
                drop(st);
                ring.wait(RING_WAIT);
                st = self.state.lock();
                self.drain_ring(&mut st, min);
                continue;
            }
            if started.elapsed() < REAP_SPIN {
                drop(st);
                std::hint::spin_loop();
                st = self.state.lock();
                self.drain_ring(&mut st, min);
                continue;
            }
            self.clear_eventfd();
            self.drain_ring(&mut st, min);
            if st.done.len() >= min {
                break;
            }
            drop(st);
            let mut pfd = libc::pollfd {
                fd: self.eventfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd, valid for the call. EINTR just loops.
            unsafe { libc::poll(&mut pfd, 1, -1) };
            st = self.state.lock();
            self.drain_ring(&mut st, min);
        }
        st
    }

    fn complete(&self, read: &Read, outcome: Outcome) {
        self.complete_at(read.user_data, read.submitted, outcome);
    }

    /// `complete` for a read submitted at `submitted`, which the ring has taken.
    fn complete_at(&self, user_data: u64, submitted: Stamp, outcome: Outcome) {
        self.engine.counters.latency.get.record_elapsed(submitted);
        let mut st = self.state.lock();
        st.done.push_back(Completion { user_data, outcome });
        // Under the lock: a reap that empties the queue clears the eventfd under it too, so
        // the fd is readable exactly while completions wait.
        self.signal_eventfd();
    }

    fn signal_eventfd(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from `one` to our eventfd. It cannot fail but by overflow
        // of the counter, which a read clears.
        unsafe { libc::write(self.eventfd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        let notify = self.notify.load(Relaxed);
        if notify >= 0 {
            // SAFETY: one byte from a static to the caller's descriptor (see `notify`); a
            // failure (a full socket) loses nothing the reader has not been told already.
            unsafe {
                libc::send(
                    notify,
                    NOTIFY_BYTE.as_ptr().cast(),
                    1,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
        }
    }

    fn clear_eventfd(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads 8 bytes into `count`; EAGAIN when already clear.
        unsafe { libc::read(self.eventfd.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    }

    /// A worker: runs waiting reads until the queue closes.
    fn work_loop(&self) {
        while let Some(read) = self.next_read() {
            let outcome = self.read(&read, false).expect("a device read completes");
            self.complete(&read, outcome);
            let mut st = self.state.lock();
            st.running -= 1;
            if st.closing {
                self.finished.notify_all();
            }
        }
    }

    /// The next read to run, or None when the queue closes. Looks for a while before it
    /// sleeps (see the module's comment).
    fn next_read(&self) -> Option<Read> {
        let started = Instant::now();
        let mut st = self.state.lock();
        st.idle += 1;
        loop {
            if st.closing {
                st.idle -= 1;
                return None;
            }
            if let Some(read) = st.waiting.pop_front() {
                self.queued.store(st.waiting.len(), Relaxed);
                st.idle -= 1;
                st.running += 1;
                return Some(read);
            }
            if started.elapsed() < SPIN {
                drop(st);
                while self.queued.load(Relaxed) == 0 && started.elapsed() < SPIN {
                    std::hint::spin_loop();
                }
                st = self.state.lock();
            } else {
                st.sleeping += 1;
                self.work.wait(&mut st);
                st.sleeping -= 1;
            }
        }
    }

    /// Runs every waiting read on this thread (no worker could be started).
    fn drain_here(&self) {
        loop {
            let Some(read) = self.state.lock().waiting.pop_front() else {
                self.queued.store(0, Relaxed);
                return;
            };
            let outcome = self.read(&read, false).expect("a device read completes");
            self.complete(&read, outcome);
        }
    }
}

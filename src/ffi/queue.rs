//! `dcache_queue_*` and `dcache_submit_*`: the completion queue for C.

use super::args;
use super::boundary;
use super::cache::{cache_ref, dcache, key};
use super::result::{code_of, dcache_result, DCACHE_OK};
use crate::cache::{Backend, Completion, Outcome, ReadQueue, ReadRequest};
use crate::error::{Error, ErrorKind};

/// Reads run on io_uring.
pub const DCACHE_QUEUE_IO_URING: u32 = 1;
/// Reads run on a pool of threads, each one blocking read at a time.
pub const DCACHE_QUEUE_THREADS: u32 = 2;

/// A completion queue: reads submitted without waiting and reaped when done. Submissions may
/// come from any thread; one thread at a time reaps.
pub struct dcache_queue {
    inner: ReadQueue,
}

/// A finished read.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct dcache_completion {
    /// What the submit was given.
    pub user_data: u64,
    /// `DCACHE_OK`, `DCACHE_NOT_FOUND`, `DCACHE_BUFFER_TOO_SMALL` (whole-value gets),
    /// `DCACHE_RANGE` (an offset past the value's end), `DCACHE_IO_ERROR`.
    pub result: dcache_result,
    /// Bytes written to the buffer; for `DCACHE_BUFFER_TOO_SMALL`, the value's size.
    pub len: u64,
}

impl From<Completion> for dcache_completion {
    fn from(c: Completion) -> Self {
        let (result, len) = match c.outcome {
            Outcome::Read(n) => (DCACHE_OK, n),
            Outcome::TooSmall(n) => (code_of(ErrorKind::BufferTooSmall), n),
            Outcome::Failed(kind) => (code_of(kind), 0),
        };
        dcache_completion {
            user_data: c.user_data,
            result,
            len,
        }
    }
}

/// Opens a completion queue of `depth` reads (0: 64; at most 4096) over `c`. Many queues may
/// share a cache. `dcache_close(c)` with the queue open closes and frees `c` as always: reads
/// already submitted complete, later submits give `DCACHE_INVALID_ARGUMENT`, and the queue
/// is still freed with `dcache_queue_close` (which releases what it kept of the cache).
///
/// Returns `DCACHE_OK`, `DCACHE_INVALID_ARGUMENT` (a depth over 4096, NULL `out`),
/// `DCACHE_IO_ERROR` (no eventfd).
///
/// # Safety
/// `c` is NULL or a live handle from `dcache_open`; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dcache_queue_open(
    c: *mut dcache,
    depth: u32,
    out: *mut *mut dcache_queue,
) -> dcache_result {
    ffi!({
        let cache = cache_ref(c)?;
        let out = args::out(out, "out")?;
        let inner = cache.queue(depth)?;
        *out = Box::into_raw(Box::new(dcache_queue { inner }));
        Ok(())
    })
}

/// Waits for the reads a thread is running, drops the others and every completion not
/// reaped, and frees the queue. Every buffer submitted is the caller's again when it returns.
/// NULL is fine.
///
/// # Safety
/// `q` is NULL or a live queue from `dcache_queue_open`, used by no other thread during the call
/// and not at all after it.
#[no_mangle]
pub unsafe extern "C" fn dcache_queue_close(q: *mut dcache_queue) {
    boundary::quietly(|| {
        if !q.is_null() {
            // SAFETY: q came from dcache_queue_open and is not used after this call.
            drop(Box::from_raw(q));
        }
    })
}

/// The queue's file descriptor, an eventfd: readable while completions wait to be reaped, for
/// epoll, poll or Go's netpoller. It belongs to the queue (do not read or close it); reaping
/// the last completion clears it. -1 for NULL. (An event loop that watches only sockets, as
/// Traffic Server's `TSVConnFdCreate` does, uses `dcache_queue_notify`.)
///
/// # Safety
/// `q` is NULL or a live queue from `dcache_queue_open`.
#[no_mangle]
pub unsafe extern "C" fn dcache_queue_fd(q: *const dcache_queue) -> i32 {
    boundary::query(-1, || q.as_ref().map_or(-1, |q| q.inner.fd()))
}

/// Has the queue send one byte to the socket `fd` for each completion of a read submitted from
/// now on, besides signalling its own fd: for an event loop that watches only sockets, such
/// as Traffic Server's `TSVConnFdCreate` (whose reads use `recvmsg`, which an eventfd
/// refuses). Give it one end of a `socketpair` and watch the other; read and discard the bytes
/// that arrive, then reap. The queue sends without waiting: a socket too full to take a byte
/// already has bytes to read. With io_uring the kernel sends the byte, linked to the read, as
/// the read completes. -1 stops the bytes.
///
/// Returns `DCACHE_OK`; `DCACHE_INVALID_ARGUMENT` (NULL `q`, `fd` below -1).
///
/// # Safety
/// `q` is NULL or a live queue. `fd` stays open, and is not reused for another file, until
/// the queue is closed or given another `fd`.
#[no_mangle]
pub unsafe extern "C" fn dcache_queue_notify(q: *mut dcache_queue, fd: i32) -> dcache_result {
    ffi!({
        let q = args::get_ref(q, "queue")?;
        q.inner.notify(fd)
    })
}

/// `DCACHE_QUEUE_IO_URING` or `DCACHE_QUEUE_THREADS`: what runs the queue's reads. 0 for
/// NULL.
///
/// # Safety
/// `q` is NULL or a live queue from `dcache_queue_open`.
#[no_mangle]
pub unsafe extern "C" fn dcache_queue_backend(q: *const dcache_queue) -> u32 {
    boundary::query(0, || {
        q.as_ref().map_or(0, |q| match q.inner.backend() {
            Backend::IoUring => DCACHE_QUEUE_IO_URING,
            Backend::Threads => DCACHE_QUEUE_THREADS,
        })
    })
}

/// Submits a get of the value under the key into `buf`, as `dcache_get` reads it: one
/// completion will carry `user_data`, its result and its length. A value the cache holds in
/// memory (not yet written), and an absent key, complete within this call.
///
/// Returns `DCACHE_OK` (accepted); `DCACHE_BUSY` (`depth` reads are submitted and not
/// reaped: reap first; no completion); `DCACHE_INVALID_ARGUMENT` (NULL or empty key, NULL
/// `buf` with a length, the cache closed), `DCACHE_TOO_LARGE` (key): no completion.
///
/// # Safety
/// `q` is NULL or a live queue; a non-NULL `key` points to `key_len` readable bytes (copied
/// here); a non-NULL `buf` points to `buf_len` writable bytes that stay valid, and that the
/// caller neither reads nor writes, until this read's completion is reaped or the queue is
/// closed.
#[no_mangle]
pub unsafe extern "C" fn dcache_submit_get(
    q: *mut dcache_queue,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    buf_len: usize,
    user_data: u64,
) -> dcache_result {
    submit(q, key, key_len, None, buf, buf_len, user_data)
}

/// Submits a read of `len` bytes of the value under the key from `offset` into `buf`, as
/// `dcache_get_range` reads it (the completion's `len` is what was read: less at the value's
/// end; `DCACHE_RANGE` for an offset past it). Results and safety as `dcache_submit_get`.
///
/// # Safety
/// As `dcache_submit_get`, with `len` for `buf_len`.
#[no_mangle]
pub unsafe extern "C" fn dcache_submit_get_range(
    q: *mut dcache_queue,
    key: *const u8,
    key_len: usize,
    offset: u64,
    buf: *mut u8,
    len: usize,
    user_data: u64,
) -> dcache_result {
    submit(q, key, key_len, Some(offset), buf, len, user_data)
}

/// # Safety
/// As `dcache_submit_get`.
unsafe fn submit(
    q: *mut dcache_queue,
    key: *const u8,
    key_len: usize,
    offset: Option<u64>,
    buf: *mut u8,
    buf_len: usize,
    user_data: u64,
) -> dcache_result {
    ffi!({
        let q = args::get_ref(q, "queue")?;
        let key = self::key(key, key_len)?;
        let buf = args::bytes_mut(buf, buf_len, "buf")?;
        q.inner
            .submit(key, offset, buf.as_mut_ptr(), buf.len(), user_data)
    })
}

/// `dcache_read.flags`: read `buf_len` bytes of the value from `offset`, as
/// `dcache_submit_get_range` does (without it: the whole value, as `dcache_submit_get`).
pub const DCACHE_READ_RANGE: u32 = 1;

/// One read of a batch (`dcache_submit_batch`): the arguments of `dcache_submit_get`, or of
/// `dcache_submit_get_range` with `DCACHE_READ_RANGE` in `flags`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct dcache_read {
    pub key: *const u8,
    pub key_len: usize,
    pub buf: *mut u8,
    pub buf_len: usize,
    /// Where a `DCACHE_READ_RANGE` read starts in the value; ignored without the flag.
    pub offset: u64,
    /// 0 or `DCACHE_READ_RANGE`.
    pub flags: u32,
    pub user_data: u64,
}

/// Submits `reads[0..n]` in order, each as `dcache_submit_get` (or, with
/// `DCACHE_READ_RANGE`, `dcache_submit_get_range`) would, and starts the reads of the device
/// among them with one system call on io_uring. Stops at the first read refused; sets
/// `*submitted` to how many were accepted before it (each makes one completion).
///
/// Returns `DCACHE_OK` (all `n` accepted), or why `reads[*submitted]` was refused:
/// `DCACHE_BUSY` (the queue's depth is reached: reap, then submit the rest),
/// `DCACHE_INVALID_ARGUMENT` (NULL `q` or `submitted`, NULL `reads` with `n`, a read's NULL
/// or empty key, NULL `buf` with a length, unknown `flags`, the cache closed),
/// `DCACHE_TOO_LARGE` (a key). The message names the read.
///
/// # Safety
/// `q` is NULL or a live queue; a non-NULL `reads` points to `n` readable `dcache_read`s,
/// whose keys and buffers are as `dcache_submit_get` asks; `submitted` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dcache_submit_batch(
    q: *mut dcache_queue,
    reads: *const dcache_read,
    n: usize,
    submitted: *mut usize,
) -> dcache_result {
    ffi!({
        let q = args::get_ref(q, "queue")?;
        let submitted = args::out(submitted, "submitted")?;
        *submitted = 0;
        if reads.is_null() && n > 0 {
            return Err(Error::invalid(format!("reads is NULL with n {n}")));
        }
        // The reads up to the first whose arguments are refused, then that refusal.
        let mut requests = Vec::with_capacity(n);
        let mut refused = Ok(());
        for i in 0..n {
            // SAFETY: reads points to n of them.
            match request(&*reads.add(i)) {
                Ok(r) => requests.push(r),
                Err(e) => {
                    refused = Err(Error::new(e.kind(), format!("reads[{i}]: {}", e.message())));
                    break;
                }
            }
        }
        let (accepted, busy) = q.inner.submit_batch(&requests);
        *submitted = accepted;
        match busy {
            Err(e) => Err(Error::new(
                e.kind(),
                format!("reads[{accepted}]: {}", e.message()),
            )),
            Ok(()) => refused,
        }
    })
}

/// A batch's read as the queue takes it, or why its arguments are refused.
///
/// # Safety
/// As `dcache_submit_get`, for the read's key and buffer.
unsafe fn request(r: &dcache_read) -> crate::error::Result<ReadRequest<'_>> {
    let offset = match r.flags {
        0 => None,
        DCACHE_READ_RANGE => Some(r.offset),
        f => return Err(Error::invalid(format!("unknown flags {f:#x}"))),
    };
    let key = key(r.key, r.key_len)?;
    let buf = args::bytes_mut(r.buf, r.buf_len, "buf")?;
    Ok(ReadRequest {
        key,
        offset,
        buf: buf.as_mut_ptr(),
        len: buf.len(),
        user_data: r.user_data,
    })
}

/// Moves up to `max` completions into `out` and sets `*n` to how many, waiting until at
/// least `min` are there (0: never waits; the call for an event loop whose fd is readable).
/// Completions come in the order the reads finished.
///
/// Returns `DCACHE_OK`; `DCACHE_INVALID_ARGUMENT` (NULL `q` or `n`, NULL `out` with `max`,
/// `min` over `max` or over the reads outstanding: it could never be met).
///
/// # Safety
/// `q` is NULL or a live queue, reaped by this thread only during the call; a non-NULL `out`
/// points to `max` writable completions; `n` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dcache_queue_reap(
    q: *mut dcache_queue,
    out: *mut dcache_completion,
    max: usize,
    min: usize,
    n: *mut usize,
) -> dcache_result {
    ffi!({
        let q = args::get_ref(q, "queue")?;
        let n = args::out(n, "n")?;
        *n = 0;
        if out.is_null() && max > 0 {
            return Err(Error::invalid(format!("out is NULL with max {max}")));
        }
        let mut i = 0;
        let reaped = q.inner.reap_each(max, min, |c| {
            // SAFETY: reap_each hands at most max completions, and out points to max.
            out.add(i).write(c.into());
            i += 1;
        })?;
        *n = reaped;
        Ok(())
    })
}

//! The completion queue's io_uring backend: each read of the device is one io_uring read of
//! the whole entry, checked by the reaping thread exactly as a get checks it. A value of at
//! least `ALIGNED_VALUE_MIN` bytes, into a buffer aligned for O_DIRECT, is read in place: its
//! whole units straight into the caller's buffer, the entry's head and last unit into a
//! buffer of the ring's. Other entries are read whole into a buffer of the ring's, and the
//! value copied out. The ring signals the queue's eventfd (`io_uring_register_eventfd`) as
//! completions arrive.
//!
//! A read in flight when the queue closes is waited for (`Ring::wait_all`): the caller's
//! buffer is the caller's again only once the kernel has finished with it.

use super::engine::Engine;
use super::queue::{Outcome, Read, NOTIFY_BYTE};
use super::read::{EntryRead, Fetched};
use crate::dio::AlignedBuf;
use crate::error::{Error, Result};
use io_uring::{opcode, squeue, types, IoUring};
use parking_lot::Mutex;
use std::os::fd::RawFd;
use std::time::Duration;

struct InFlight {
    read: Read,
    plan: EntryRead,
    /// The whole entry; or, for a read in place, its head and its last unit.
    buf: AlignedBuf,
    /// A read in place: the head, the value's whole units (the caller's buffer), the last
    /// unit. The kernel reads them until the completion.
    _iov: Option<Box<[libc::iovec; 3]>>,
}

// SAFETY: the iovecs point into `buf` and the caller's buffer, both lent to this read.
unsafe impl Send for InFlight {}

/// A ring and the reads it has in flight, one slot each (the slot is the io_uring user
/// data). The ring's queues are used under the `reads` lock; waiting for completions needs
/// no lock, so that submissions go on meanwhile.
pub(crate) struct Ring {
    uring: IoUring,
    reads: Mutex<Reads>,
    device_fd: RawFd,
    align: usize,
    unit: usize,
}

/// The user data of a notification's completion: no slot.
const NOTIFICATION: u64 = u64::MAX;

struct Reads {
    slots: Vec<Option<InFlight>>,
    free: Vec<usize>,
    /// Buffers of reads that completed, for the next ones: at most `SPARE_MAX`.
    spare: Vec<AlignedBuf>,
}

/// The most buffers a ring keeps for later reads. A read not in place has a buffer as long as
/// its entry (up to 1 MiB for a range), and a burst of them must not stay resident.
const SPARE_MAX: usize = 8;

impl Reads {
    fn keep_spare(&mut self, buf: Option<AlignedBuf>) {
        if self.spare.len() < SPARE_MAX {
            self.spare.extend(buf);
        }
    }
}

impl Ring {
    /// A ring for `depth` reads of the device at `device_fd` (buffers aligned to `align`),
    /// signalling `eventfd`. An error where the kernel refuses io_uring.
    pub fn new(
        depth: u32,
        device_fd: RawFd,
        align: usize,
        unit: usize,
        eventfd: RawFd,
    ) -> Result<Ring> {
        // Two entries a read: the read, and the byte to a notification socket linked to it.
        let uring = IoUring::new(2 * depth.next_power_of_two())
            .map_err(|e| Error::os("io_uring_setup", e))?;
        uring
            .submitter()
            .register_eventfd(eventfd)
            .map_err(|e| Error::os("io_uring_register_eventfd", e))?;
        Ok(Ring {
            uring,
            reads: Mutex::new(Reads {
                slots: (0..depth).map(|_| None).collect(),
                free: (0..depth as usize).rev().collect(),
                spare: Vec::new(),
            }),
            device_fd,
            align,
            unit,
        })
    }

    /// Reads in flight.
    pub fn in_flight(&self) -> usize {
        let reads = self.reads.lock();
        reads.slots.len() - reads.free.len()
    }

    /// Queues `read`, whose entry `plan` says where to read, for the next `start`, and after
    /// it, whatever the read's result, a byte sent to `notify` unless it is -1. The queue's
    /// depth bounds the reads outstanding, so a slot is free.
    pub fn push(&self, read: Read, plan: EntryRead, notify: RawFd) -> Result<()> {
        let unit = self.unit;
        let mut reads = self.reads.lock();
        let own = match plan.in_place {
            Some(value_offset) => value_offset as usize + unit,
            None => plan.len,
        };
        let mut buf = match reads.spare.iter().position(|b| b.as_slice().len() >= own) {
            Some(i) => reads.spare.swap_remove(i),
            None => AlignedBuf::new(own.max(4096), self.align)?,
        };
        let slot = reads
            .free
            .pop()
            .expect("the depth bounds the reads in flight");
        let (sqe, iov) = self.read_entry(&plan, buf.as_mut_slice().as_mut_ptr(), read.target.ptr());
        let sqe = sqe.user_data(slot as u64);
        reads.slots[slot] = Some(InFlight {
            read,
            plan,
            buf,
            _iov: iov,
        });
        // SAFETY: the submission queue is used only under the `reads` lock; the buffer lives
        // in slots[slot] until the read's completion is taken; the byte is a static.
        let pushed = unsafe {
            match notify {
                -1 => self.uring.submission_shared().push(&sqe),
                fd => self
                    .uring
                    .submission_shared()
                    .push_multiple(&[sqe.flags(squeue::Flags::IO_HARDLINK), self.notification(fd)]),
            }
        };
        if pushed.is_err() {
            // Cannot happen: the ring has an entry for every slot.
            reads.slots[slot] = None;
            reads.free.push(slot);
            return Err(Error::new(
                crate::ErrorKind::Internal,
                "the submission queue is full",
            ));
        }
        Ok(())
    }

    /// The read of `plan`'s entry into the buffer at `base` (the whole entry, or for a read
    /// in place its head and last unit, the value's whole units going to `target`), and the
    /// iovecs it points to, which must live until its completion.
    fn read_entry(
        &self,
        plan: &EntryRead,
        base: *mut u8,
        target: *mut u8,
    ) -> (squeue::Entry, Option<Box<[libc::iovec; 3]>>) {
        let unit = self.unit;
        let part = |ptr: *mut u8, len: usize| libc::iovec {
            iov_base: ptr.cast(),
            iov_len: len,
        };
        match plan.in_place {
            Some(value_offset) => {
                let head = value_offset as usize;
                let middle = plan.len - head - unit;
                let iov = Box::new([
                    part(base, head),
                    part(target, middle),
                    // SAFETY: head + unit bytes were allocated.
                    part(unsafe { base.add(head) }, unit),
                ]);
                let sqe = opcode::Readv::new(types::Fd(self.device_fd), iov.as_ptr(), 3);
                (sqe.offset(plan.offset).build(), Some(iov))
            }
            None => {
                let sqe = opcode::Read::new(types::Fd(self.device_fd), base, plan.len as u32);
                (sqe.offset(plan.offset).build(), None)
            }
        }
    }

    /// The send of one byte to `fd` that follows a read. Its completion (only a failure, where
    /// the kernel can skip the others) has no slot, so draining passes over it.
    fn notification(&self, fd: RawFd) -> squeue::Entry {
        let flags = match self.uring.params().is_feature_skip_cqe_on_success() {
            true => squeue::Flags::SKIP_SUCCESS,
            false => squeue::Flags::empty(),
        };
        opcode::Send::new(types::Fd(fd), NOTIFY_BYTE.as_ptr(), 1)
            .flags(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
            .build()
            .flags(flags)
            .user_data(NOTIFICATION)
    }

    /// Starts every read pushed and not started: one system call for them all. Without the
    /// lock, so that pushes go on meanwhile. A read the kernel does not take now (an
    /// `io_uring_enter` that fails) stays queued for the next start, or the next wait.
    pub fn start(&self) {
        let reads = self.reads.lock();
        // SAFETY: the submission queue is used only under the `reads` lock.
        if unsafe { self.uring.submission_shared() }.is_empty() {
            return;
        }
        drop(reads);
        if let Err(e) = self.uring.submit() {
            crate::log::warn(&format!(
                "io_uring_enter: {e}: the reads start at the next one"
            ));
        }
    }

    /// The next completion the kernel posted: the read and its result. `spare`, the buffer
    /// of the read handed out before, goes back to the spares under the same lock.
    fn next_completed(&self, spare: Option<AlignedBuf>) -> Option<(InFlight, i32)> {
        let mut reads = self.reads.lock();
        reads.keep_spare(spare);
        loop {
            // SAFETY: the completion queue is used only under the `reads` lock.
            let cqe = unsafe { self.uring.completion_shared() }.next()?;
            let slot = cqe.user_data() as usize;
            if let Some(f) = reads.slots.get_mut(slot).and_then(Option::take) {
                reads.free.push(slot);
                return Some((f, cqe.result()));
            }
        }
    }

    /// Checks up to `limit` of the reads the kernel has completed and hands each to `done`;
    /// the others stay in the ring. A reap checks only what it hands out: checking more
    /// first (a checksum over each value) would hold back the next submissions. Checks run
    /// without the lock, so submissions go on meanwhile.
    pub fn drain(&self, engine: &Engine, limit: usize, mut done: impl FnMut(u64, Outcome)) {
        self.start();
        let mut spare = None;
        for _ in 0..limit {
            let Some((f, res)) = self.next_completed(spare.take()) else {
                return;
            };
            let outcome = finish(engine, &f, res);
            engine.counters.latency.get.record_elapsed(f.read.submitted);
            done(f.read.user_data, outcome);
            spare = Some(f.buf);
        }
        self.reads.lock().keep_spare(spare);
    }

    /// Sleeps until the kernel has posted a completion, or for `timeout`.
    pub fn wait(&self, timeout: Duration) {
        let ts = types::Timespec::from(timeout);
        let args = types::SubmitArgs::new().timespec(&ts);
        // ETIME and EINTR just end the wait; the caller looks again.
        let _ = self.uring.submitter().submit_with_args(1, &args);
    }

    /// Waits until the kernel has completed every read in flight (closing the queue).
    pub fn wait_all(&self, engine: &Engine) {
        while self.in_flight() > 0 {
            if self.uring.submit_and_wait(1).is_err() {
                return;
            }
            self.drain(engine, usize::MAX, |_, _| {});
        }
    }
}

/// The outcome of a completed read: `res` bytes read into `f.buf`, or a negative errno.
fn finish(engine: &Engine, f: &InFlight, res: i32) -> Outcome {
    let read = &f.read;
    let n = match engine.device.get_read_done(f.plan.offset, f.plan.len, res) {
        Ok(n) => n,
        Err(e) => return Outcome::Failed(e.kind()),
    };
    // SAFETY: the caller lent these bytes to this read until its completion is reaped.
    let out = unsafe { read.target.as_mut_slice() };
    let entry = &f.buf.as_slice()[..n.min(f.buf.as_slice().len())];
    let got = match read.offset {
        None if f.plan.in_place.is_some() => engine
            .finish_get_in_place(&f.plan, &read.key, f.buf.as_slice(), out, n)
            .map(|r| match r {
                Fetched::Copied(n) => Outcome::Read(n as u64),
                Fetched::TooSmall(n) => Outcome::TooSmall(n),
            }),
        None => engine
            .finish_get(&f.plan, &read.key, entry, out)
            .map(|r| match r {
                Fetched::Copied(n) => Outcome::Read(n as u64),
                Fetched::TooSmall(n) => Outcome::TooSmall(n),
            }),
        Some(offset) => engine
            .finish_get_range(&f.plan, &read.key, offset, entry, out)
            .map(|n| Outcome::Read(n as u64)),
    };
    got.unwrap_or_else(|e| Outcome::Failed(e.kind()))
}

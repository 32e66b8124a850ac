//! The completion queue's io_uring backend: each read of the device is one io_uring read of
//! the whole entry into a buffer of the ring's (aligned for O_DIRECT), checked by the reaping
//! thread exactly as a get checks it, then copied into the caller's buffer. The ring signals
//! the queue's eventfd (`io_uring_register_eventfd`) as completions arrive.
//!
//! The caller's buffer is written only by the reap that checks the entry, never by the
//! kernel: a read in flight when the queue closes writes only into the ring's own buffer,
//! which stays alive until the kernel has finished with it.

use super::engine::Engine;
use super::queue::{Outcome, Read};
use super::read::{EntryRead, Fetched};
use crate::dio::AlignedBuf;
use crate::error::{Error, Result};
use io_uring::{opcode, types, IoUring};
use std::os::fd::RawFd;

struct InFlight {
    read: Read,
    plan: EntryRead,
    buf: AlignedBuf,
}

/// A ring and the reads it has in flight, one slot each (the slot is the io_uring user
/// data).
pub(crate) struct Ring {
    ring: IoUring,
    slots: Vec<Option<InFlight>>,
    free: Vec<usize>,
    /// Buffers of reads that completed, for the next ones.
    spare: Vec<AlignedBuf>,
    device_fd: RawFd,
    align: usize,
}

impl Ring {
    /// A ring for `depth` reads of the device at `device_fd` (buffers aligned to `align`),
    /// signalling `eventfd`. An error where the kernel refuses io_uring.
    pub fn new(depth: u32, device_fd: RawFd, align: usize, eventfd: RawFd) -> Result<Ring> {
        let ring =
            IoUring::new(depth.next_power_of_two()).map_err(|e| Error::os("io_uring_setup", e))?;
        ring.submitter()
            .register_eventfd(eventfd)
            .map_err(|e| Error::os("io_uring_register_eventfd", e))?;
        Ok(Ring {
            ring,
            slots: (0..depth).map(|_| None).collect(),
            free: (0..depth as usize).rev().collect(),
            spare: Vec::new(),
            device_fd,
            align,
        })
    }

    /// Reads in flight.
    pub fn in_flight(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Starts `read`, whose entry `plan` says where to read. The queue's depth bounds the
    /// reads outstanding, so a slot is free.
    pub fn submit(&mut self, read: Read, plan: EntryRead) -> Result<()> {
        let buf = match self
            .spare
            .iter()
            .position(|b| b.as_slice().len() >= plan.len)
        {
            Some(i) => self.spare.swap_remove(i),
            None => AlignedBuf::new(plan.len.max(4096), self.align)?,
        };
        let slot = self
            .free
            .pop()
            .expect("the depth bounds the reads in flight");
        let sqe = opcode::Read::new(
            types::Fd(self.device_fd),
            buf.as_slice().as_ptr() as *mut u8,
            plan.len as u32,
        )
        .offset(plan.offset)
        .build()
        .user_data(slot as u64);
        self.slots[slot] = Some(InFlight { read, plan, buf });
        // SAFETY: the buffer lives in slots[slot] until the read's completion is taken.
        let pushed = unsafe { self.ring.submission().push(&sqe) };
        if pushed.is_err() {
            // Cannot happen: the ring has an entry for every slot.
            self.release(slot);
            return Err(Error::new(
                crate::ErrorKind::Internal,
                "the submission queue is full",
            ));
        }
        self.ring
            .submit()
            .map(|_| ())
            .map_err(|e| Error::os("io_uring_enter", e))
    }

    fn release(&mut self, slot: usize) -> Option<InFlight> {
        let taken = self.slots[slot].take();
        self.free.push(slot);
        taken
    }

    /// Checks every read the kernel has completed and hands each to `done`.
    pub fn drain(&mut self, engine: &Engine, mut done: impl FnMut(u64, Outcome)) {
        for cqe in self.ring.completion() {
            let slot = cqe.user_data() as usize;
            let Some(f) = self.slots.get_mut(slot).and_then(Option::take) else {
                continue;
            };
            self.free.push(slot);
            done(f.read.user_data, finish(engine, &f, cqe.result()));
            self.spare.push(f.buf);
        }
    }

    /// Waits until the kernel has completed every read in flight (closing the queue).
    pub fn wait_all(&mut self, engine: &Engine) {
        while self.in_flight() > 0 {
            if self.ring.submit_and_wait(1).is_err() {
                return;
            }
            self.drain(engine, |_, _| {});
        }
    }
}

/// The outcome of a completed read: `res` bytes read into `f.buf`, or a negative errno.
fn finish(engine: &Engine, f: &InFlight, res: i32) -> Outcome {
    let read = &f.read;
    let entry = match engine.device.get_read_done(f.plan.offset, f.plan.len, res) {
        Ok(n) => &f.buf.as_slice()[..n],
        Err(e) => return Outcome::Failed(e.kind()),
    };
    // SAFETY: the caller lent these bytes to this read until its completion is reaped.
    let out = unsafe { read.target.as_mut_slice() };
    let got = match read.offset {
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

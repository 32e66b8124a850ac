//! Double buffering: when a region is full its buffer goes to this thread, which writes it to
//! the device while puts fill the spare buffer. Back-pressure: a put that fills the next
//! region before the previous write is done waits for it; nothing is ever dropped. A failed
//! write is reported by the next flush or seal, and the region's entries leave the index.

use super::index::Location;
use super::Shared;
use crate::dio::AlignedBuf;
use crate::error::{Error, Result};
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::sync::Arc;
use std::thread::JoinHandle;

/// No region is being sealed.
pub(crate) const NONE: u32 = u32::MAX;

/// A full region's buffer and the byte ranges of it still to write.
pub(crate) struct SealJob {
    pub region: u32,
    pub ranges: [(usize, usize); 2],
    /// Readers may copy entries from `mem_from` on out of the buffer while it is written;
    /// before that, the buffer never held the region's bytes (they came from the device).
    pub mem_from: u64,
    pub buf: Arc<AlignedBuf>,
}

#[derive(Default)]
struct State {
    job: Option<SealJob>,
    /// The region being written, the start of what its buffer holds, and the buffer.
    in_flight: Option<(u32, u64, Arc<AlignedBuf>)>,
    spare: Option<AlignedBuf>,
    failed: Option<Error>,
    stop: bool,
}

#[derive(Default)]
pub(crate) struct Sealer {
    state: Mutex<State>,
    changed: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl SealJob {
    fn write(&self, sh: &Shared) -> Result<()> {
        let start = sh.geometry.region_offset(self.region);
        for &(from, to) in &self.ranges {
            if to > from {
                sh.write(&self.buf.as_slice()[from..to], start + from as u64)?;
            }
        }
        Ok(())
    }
}

impl Sealer {
    pub fn new(spare: Option<AlignedBuf>) -> Sealer {
        Sealer {
            state: Mutex::new(State {
                spare,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Starts the writer thread.
    pub fn start(sh: &Arc<Shared>) -> Result<()> {
        let worker = sh.clone();
        let handle = std::thread::Builder::new()
            .name("dcache-sealer".into())
            .spawn(move || run(&worker))
            .map_err(|e| Error::os("starting the region writer thread", e))?;
        *sh.sealer.thread.lock() = Some(handle);
        Ok(())
    }

    /// The spare buffer if the previous region's write is done (or that write's error).
    pub fn try_take_spare(&self) -> Result<Option<AlignedBuf>> {
        let mut st = self.state.lock();
        match st.failed.take() {
            Some(e) => Err(e),
            None => Ok(st.spare.take()),
        }
    }

    /// Waits until the spare buffer is back. Called without the log's lock held, so that
    /// gets of the active region go on while a put waits for the device.
    pub fn wait_spare(&self) {
        let mut st = self.state.lock();
        while st.spare.is_none() && st.failed.is_none() {
            self.changed.wait(&mut st);
        }
    }

    /// Copies `out.len()` bytes at `offset` of `region` from the buffer being written, if
    /// that region is being written and its buffer holds those bytes.
    pub fn copy_if_sealing(&self, region: u32, offset: u64, out: &mut [u8]) -> bool {
        let buf = {
            let st = self.state.lock();
            let pending = st.job.as_ref().map(|j| (j.region, j.mem_from, &j.buf));
            match st
                .in_flight
                .as_ref()
                .map(|(r, m, b)| (*r, *m, b))
                .or(pending)
            {
                Some((r, mem_from, buf)) if r == region && offset >= mem_from => buf.clone(),
                _ => return false,
            }
        };
        let start = offset as usize;
        out.copy_from_slice(&buf.as_slice()[start..start + out.len()]);
        true
    }

    /// Hands a full region to the writer thread, or writes it here if there is no thread.
    pub fn submit(&self, sh: &Shared, job: SealJob) {
        sh.sealing_region.store(job.region, Release);
        if self.thread.lock().is_none() {
            let result = job.write(sh);
            self.finish(sh, job, result);
            return;
        }
        let mut st = self.state.lock();
        st.job = Some(job);
        self.changed.notify_all();
    }

    fn finish(&self, sh: &Shared, job: SealJob, result: Result<()>) {
        let mut buf = job.buf;
        if result.is_err() {
            // The region never reached the device: its entries must not be read from it.
            let upr = sh.geometry.units_per_region();
            let base = job.region as u64 * upr;
            for loc in sh
                .index
                .remove_where(|l: Location| (l.unit as u64) >= base && (l.unit as u64) < base + upr)
            {
                sh.used_bytes
                    .fetch_sub(loc.len_units as u64 * sh.geometry.unit as u64, Relaxed);
            }
        }
        let mut st = self.state.lock();
        st.in_flight = None;
        sh.sealing_region.store(NONE, Release);
        if let Err(e) = result {
            st.failed = Some(e);
        }
        drop(st);
        // Readers copying out of the buffer hold it for a memcpy at most.
        let spare = loop {
            match Arc::try_unwrap(buf) {
                Ok(b) => break b,
                Err(shared) => {
                    buf = shared;
                    std::thread::yield_now();
                }
            }
        };
        self.state.lock().spare = Some(spare);
        self.changed.notify_all();
    }

    /// Waits until no region write is pending; returns a failed write's error.
    pub fn wait_idle(&self) -> Result<()> {
        let mut st = self.state.lock();
        while st.job.is_some() || st.in_flight.is_some() {
            self.changed.wait(&mut st);
        }
        st.failed.take().map_or(Ok(()), Err)
    }

    /// Stops the thread after its pending work.
    pub fn stop(&self) {
        self.state.lock().stop = true;
        self.changed.notify_all();
        if let Some(handle) = self.thread.lock().take() {
            let _ = handle.join();
        }
    }
}

fn run(sh: &Shared) {
    loop {
        let job = {
            let mut st = sh.sealer.state.lock();
            loop {
                if let Some(job) = st.job.take() {
                    st.in_flight = Some((job.region, job.mem_from, job.buf.clone()));
                    break job;
                }
                if st.stop {
                    return;
                }
                sh.sealer.changed.wait(&mut st);
            }
        };
        let result = job.write(sh);
        sh.sealer.finish(sh, job, result);
    }
}

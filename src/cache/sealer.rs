//! Double buffering: when a region is full its buffer goes to this thread, which writes it to
//! the device while puts fill the spare buffer. Back-pressure: a put that fills the next
//! region before the previous write is done waits for it; nothing is ever dropped. A failed
//! write is reported by the next flush or seal, and the region's entries leave the index.

use super::index::Location;
use super::Shared;
use crate::dio::AlignedBuf;
use crate::error::{Error, Result};
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Arc;
use std::thread::JoinHandle;

/// No region is being sealed.
pub(crate) const NONE: u32 = u32::MAX;

/// A full region's buffer and the byte ranges of it still to write.
pub(crate) struct SealJob {
    pub region: u32,
    pub ranges: [(usize, usize); 2],
    pub buf: AlignedBuf,
}

#[derive(Default)]
struct State {
    job: Option<SealJob>,
    in_flight: bool,
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

    /// The spare buffer, once the previous region's write is done; or that write's error.
    pub fn take_spare(&self) -> Result<AlignedBuf> {
        let mut st = self.state.lock();
        loop {
            if let Some(e) = st.failed.take() {
                return Err(e);
            }
            if let Some(buf) = st.spare.take() {
                return Ok(buf);
            }
            self.changed.wait(&mut st);
        }
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
        st.in_flight = false;
        st.spare = Some(job.buf);
        if let Err(e) = result {
            st.failed = Some(e);
        }
        sh.sealing_region.store(NONE, Release);
        self.changed.notify_all();
    }

    /// Waits until no region write is pending; returns a failed write's error.
    pub fn wait_idle(&self) -> Result<()> {
        let mut st = self.state.lock();
        while st.job.is_some() || st.in_flight {
            self.changed.wait(&mut st);
        }
        st.failed.take().map_or(Ok(()), Err)
    }

    /// Waits until `region` is no longer being written.
    pub fn wait_written(&self, sh: &Shared, region: u32) {
        let mut st = self.state.lock();
        while sh.sealing_region.load(Acquire) == region {
            self.changed.wait(&mut st);
        }
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
                    st.in_flight = true;
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

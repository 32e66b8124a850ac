//! The writer thread: the only place where region bytes go to the device in the background.
//! Its jobs, in order:
//! - write-behind: a range of the active region's buffer, handed over every few MiB as puts
//!   fill it (and at flush), so the device works while puts go on;
//! - seal: a full region's buffer with its summary and trailer, while puts fill the spare
//!   buffer (double buffering). A put that fills that one too waits (back-pressure):
//!   nothing is dropped;
//! - partial tail: a copy of the active region's summary and trailer as of a flush, queued
//!   after that region's entries and before its seal, so that it never lands after the seal
//!   and always describes entries already written.
//!
//! A failed write is reported by the next flush or seal. Its range is written again: by the
//! region's queued seal job if there is one, else by the next write-behind or flush of the
//! region (the rollback). A failed seal drops from the index the region's entries from the
//! range that failed on (counted in `write_entries_dropped`); those written before stay.

use super::device::Device;
use super::format::{Decoded, EntryHeader, Geometry, Trailer};
use super::index::Index;
use super::{parts_len, scatter};
use crate::dio::AlignedBuf;
use crate::error::{Error, ErrorKind, Result};
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::atomic::{
    AtomicU32,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::Arc;
use std::thread::JoinHandle;

/// How often a put waiting for the spare buffer looks for it (see `wait_spare`).
const SPARE_POLL: std::time::Duration = std::time::Duration::from_micros(500);

/// No region is being sealed.
const NONE: u32 = u32::MAX;

/// A read-only view of the active region's buffer.
///
/// Sound because of how the log uses the buffer: bytes below the log's fill are never
/// written again until the buffer is recycled as the spare, which happens only after the
/// region's seal job, queued after every write-behind job of that region, is done; appends
/// write above the fill through a slice of just those bytes; and the allocation never moves.
struct ActiveView {
    base: *const u8,
}

// SAFETY: see ActiveView: the bytes it is used for are not written while it reads them.
unsafe impl Send for ActiveView {}

enum Bytes {
    Active(ActiveView),
    /// A sealed region's buffer, shared with readers until it is written.
    Sealed(Arc<AlignedBuf>),
    /// A copy of bytes that go at offset `at` of the region (a partial tail), queued when
    /// `failures` writes had failed.
    Copy {
        buf: AlignedBuf,
        at: usize,
        failures: u64,
    },
}

struct Job {
    region: u32,
    ranges: Vec<(usize, usize)>,
    bytes: Bytes,
    /// Sealed jobs: the buffer holds the region's bytes from here on (before, they came
    /// from the device at recovery and only the device has them).
    mem_from: u64,
}

impl Job {
    /// On failure, also the offset in the region of the range that failed: what the job
    /// wrote before it is on the device.
    fn write(&self, device: &Device) -> std::result::Result<(), (Error, usize)> {
        let start = device.geometry().region_offset(self.region);
        for &(from, to) in self.ranges.iter().filter(|(f, t)| t > f) {
            let data = match &self.bytes {
                // SAFETY: [from, to) is below the fill when the job was made; see ActiveView.
                Bytes::Active(v) => unsafe {
                    std::slice::from_raw_parts(v.base.add(from), to - from)
                },
                Bytes::Sealed(buf) => &buf.as_slice()[from..to],
                Bytes::Copy { buf, at, .. } => &buf.as_slice()[from - at..to - at],
            };
            // A range that ends the region is its summary and trailer (see `Device::write_tail`).
            let written = match to as u64 == device.geometry().region_size {
                true => device.write_tail(self.region, data),
                false => device.write(data, start + from as u64),
            };
            written.map_err(|e| (e, from))?;
        }
        Ok(())
    }

    fn sealed_buffer(&self) -> Option<&Arc<AlignedBuf>> {
        match &self.bytes {
            Bytes::Sealed(b) => Some(b),
            _ => None,
        }
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// The sealed region being written: region, mem_from, buffer.
    in_flight_seal: Option<(u32, u64, Arc<AlignedBuf>)>,
    busy: bool,
    spare: Option<AlignedBuf>,
    failed: Option<Error>,
    /// A write-behind range of this region failed from this offset: write it again.
    rollback: Option<(u32, usize)>,
    /// Writes that failed, ever: a flush fails if this moved while it waited, even when
    /// another caller took the error itself.
    write_failures: u64,
    /// The kind of the latest failed write.
    last_failure: Option<ErrorKind>,
    /// Keys of the entries (values and tombstones) a failed seal dropped: the engine writes
    /// tombstones for those not put again (`take_lost_keys`), so that an older value of
    /// theirs, still on the device, does not come back at a reopen.
    lost_keys: Vec<Vec<u8>>,
    stop: bool,
}

pub(crate) struct Writeback {
    device: Arc<Device>,
    /// Where a failed seal drops its region's entries.
    index: Arc<Index>,
    state: Mutex<State>,
    /// The region whose sealed buffer is not written yet (NONE when none): a get of it copies
    /// from the buffer.
    sealing_region: AtomicU32,
    /// The writer thread waits here for jobs (or stop).
    work: Condvar,
    /// Puts wait here for the spare buffer, flushes for an empty queue. Signalled when the
    /// queue empties or a write fails, not after every job: each wakeup of a put can land it
    /// on the writer's CPU and hold the device idle for milliseconds while it runs there.
    done: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writeback {
    /// A writeback with `spare` as the second region buffer (None: a read-only cache).
    pub fn new(device: Arc<Device>, index: Arc<Index>, spare: Option<AlignedBuf>) -> Writeback {
        Writeback {
            device,
            index,
            state: Mutex::new(State {
                spare,
                ..Default::default()
            }),
            sealing_region: AtomicU32::new(NONE),
            work: Condvar::new(),
            done: Condvar::new(),
            thread: Mutex::new(None),
        }
    }

    /// Starts the writer thread.
    pub fn start(self: &Arc<Self>) -> Result<()> {
        let worker = self.clone();
        let handle = std::thread::Builder::new()
            .name("dcache-writer".into())
            .spawn(move || worker.run())
            .map_err(|e| Error::os("starting the region writer thread", e))?;
        *self.thread.lock() = Some(handle);
        Ok(())
    }

    /// The spare buffer if the previous seal is done (or a failed write's error).
    pub fn try_take_spare(&self) -> Result<Option<AlignedBuf>> {
        let mut st = self.state.lock();
        match st.failed.take() {
            Some(e) => Err(e),
            None => Ok(st.spare.take()),
        }
    }

    /// Waits until the spare buffer is back. Called without the log's lock held, so that
    /// gets of the active region go on while a put waits for the device.
    ///
    /// It looks every SPARE_POLL instead of being woken when the writer returns the spare
    /// (unless the writer then has nothing queued): the scheduler tends to run a woken put
    /// on the waker's CPU, and the writer then sat 1-5 ms before its next write, once per
    /// region (found by pinning the two threads apart, which removed the gaps). A put waits
    /// here only when its region's successor is full too, so the writer has a region's
    /// writes queued and the put's extra half millisecond costs the device nothing.
    pub fn wait_spare(&self) {
        let mut st = self.state.lock();
        while st.spare.is_none() && st.failed.is_none() {
            self.done.wait_for(&mut st, SPARE_POLL);
        }
    }

    /// Queues bytes [from, to) of the active region's buffer `buf` (and any range of it
    /// that failed before).
    pub fn write_behind(&self, region: u32, buf: &AlignedBuf, from: usize, to: usize) {
        let mut st = self.state.lock();
        let from = match st.rollback {
            Some((r, failed_from)) if r == region => {
                st.rollback = None;
                from.min(failed_from)
            }
            _ => from,
        };
        if from < to {
            let job = Job {
                region,
                ranges: vec![(from, to)],
                bytes: Bytes::Active(ActiveView {
                    base: buf.as_slice().as_ptr(),
                }),
                mem_from: 0,
            };
            self.enqueue(st, job);
        }
    }

    /// Queues `bytes` to be written at offset `at` of `region` (a partial summary and
    /// trailer). A failure is reported like any other; the next flush or the seal writes
    /// the region's tail again.
    pub fn write_copy(&self, region: u32, bytes: AlignedBuf, at: usize, len: usize) {
        let st = self.state.lock();
        let job = Job {
            region,
            ranges: vec![(at, at + len)],
            bytes: Bytes::Copy {
                buf: bytes,
                at,
                failures: st.write_failures,
            },
            mem_from: 0,
        };
        self.enqueue(st, job);
    }

    /// Queues a full region's buffer: its entries from `from` to `fill`, then its tail.
    pub fn seal(&self, region: u32, buf: AlignedBuf, ranges: [(usize, usize); 2], mem_from: u64) {
        let mut st = self.state.lock();
        let mut ranges = ranges.to_vec();
        if let Some((r, failed_from)) = st.rollback {
            if r == region {
                st.rollback = None;
                ranges[0].0 = ranges[0].0.min(failed_from);
            }
        }
        self.sealing_region.store(region, Release);
        let job = Job {
            region,
            ranges,
            bytes: Bytes::Sealed(Arc::new(buf)),
            mem_from,
        };
        self.enqueue(st, job);
    }

    fn enqueue(&self, mut st: parking_lot::MutexGuard<'_, State>, job: Job) {
        if self.thread.lock().is_none() {
            // No thread (it could not start): write here, in order.
            drop(st);
            self.execute(job);
            return;
        }
        st.queue.push_back(job);
        self.work.notify_one();
    }

    /// Whether `region`'s sealed buffer is not written yet.
    pub fn is_sealing(&self, region: u32) -> bool {
        self.sealing_region.load(Acquire) == region
    }

    /// Fills `out`'s parts, in order, from `offset` of `region` in a sealed buffer not yet
    /// written, if there is one holding them.
    pub fn copy_if_sealing(&self, region: u32, offset: u64, out: &mut [&mut [u8]]) -> bool {
        // Without the lock first: most reads are of regions long written.
        if self.sealing_region.load(Acquire) != region {
            return false;
        }
        let buf = {
            let st = self.state.lock();
            let in_flight = st.in_flight_seal.iter().map(|(r, m, b)| (*r, *m, b));
            let queued = st
                .queue
                .iter()
                .filter_map(|j| j.sealed_buffer().map(|b| (j.region, j.mem_from, b)));
            match in_flight
                .chain(queued)
                .find(|(r, m, _)| *r == region && offset >= *m)
            {
                Some((_, _, b)) => b.clone(),
                None => return false,
            }
        };
        let start = offset as usize;
        scatter(&buf.as_slice()[start..start + parts_len(out)], out);
        true
    }

    fn record_failure(st: &mut State, e: Error) {
        st.write_failures += 1;
        st.last_failure = Some(e.kind());
        st.failed.get_or_insert(e);
    }

    /// How many writes have failed since the cache was opened (see `wait_idle`).
    pub fn failures(&self) -> u64 {
        self.state.lock().write_failures
    }

    /// A write-behind range of `region` failed: the region's queued seal, if any, owns
    /// those bytes too and writes them; otherwise the next write-behind or flush does.
    fn plan_rewrite(st: &mut State, region: u32, ranges: &[(usize, usize)]) {
        let failed_from = ranges.iter().map(|r| r.0).min().unwrap_or(0);
        match st
            .queue
            .iter_mut()
            .find(|j| j.region == region && j.sealed_buffer().is_some())
        {
            Some(seal) => seal.ranges[0].0 = seal.ranges[0].0.min(failed_from),
            None => {
                let from = st
                    .rollback
                    .filter(|(r, _)| *r == region)
                    .map_or(failed_from, |(_, f)| f.min(failed_from));
                st.rollback = Some((region, from));
            }
        }
    }

    /// Writes a job and records the outcome. A partial tail is dropped unwritten when a
    /// write failed after it was queued, or its region has a range still to be redone:
    /// it would describe entries that are not on the device, and a recovery that trusted it
    /// could find an older lap's bytes where they should be.
    fn execute(&self, job: Job) {
        let stale = match &job.bytes {
            Bytes::Copy { failures, .. } => {
                let st = self.state.lock();
                st.write_failures != *failures || st.rollback.is_some_and(|(r, _)| r == job.region)
            }
            _ => false,
        };
        let result = if stale {
            Ok(())
        } else {
            job.write(&self.device)
        };
        self.finish(job, result);
    }

    fn finish(&self, job: Job, result: std::result::Result<(), (Error, usize)>) {
        let Job {
            region,
            ranges,
            bytes,
            ..
        } = job;
        match bytes {
            // A partial tail needs no repair: the next flush or the seal writes it again.
            Bytes::Copy { .. } | Bytes::Active(_) => {
                let mut st = self.state.lock();
                if let Err((e, _)) = result {
                    if matches!(bytes, Bytes::Active(_)) {
                        Self::plan_rewrite(&mut st, region, &ranges);
                    }
                    Self::record_failure(&mut st, e);
                }
                st.busy = false;
                if st.queue.is_empty() || st.failed.is_some() {
                    self.done.notify_all();
                }
            }
            Bytes::Sealed(mut buf) => {
                if let Err((_, failed_from)) = &result {
                    self.drop_unwritten(region, *failed_from, &buf);
                }
                let mut st = self.state.lock();
                st.in_flight_seal = None;
                self.sealing_region.store(NONE, Release);
                if let Err((e, _)) = result {
                    Self::record_failure(&mut st, e);
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
                let mut st = self.state.lock();
                st.spare = Some(spare);
                st.busy = false;
                if st.queue.is_empty() || st.failed.is_some() {
                    self.done.notify_all(); // see wait_spare
                }
            }
        }
    }

    /// After a failed seal: the region's bytes from `failed_from` on never reached the
    /// device, so their entries must not be read there (those before it did). Their keys go
    /// to `lost_keys`.
    fn drop_unwritten(&self, region: u32, failed_from: usize, buf: &AlignedBuf) {
        let g = self.device.geometry();
        let base = g.first_unit(region);
        let from = base + failed_from as u64 / g.unit as u64;
        let end = base + g.units_per_region();
        let lost = entry_keys_from(buf, failed_from as u64, self.device.cache_id(), g);
        self.state.lock().lost_keys.extend(lost);
        let dropped = self.index.remove_where(|l| {
            let unit = l.unit as u64;
            unit < end && unit + l.len_units as u64 > from
        });
        self.device
            .counters()
            .write_entries_dropped
            .fetch_add(dropped, Relaxed);
    }

    /// The keys failed seals dropped since the last call (see `State::lost_keys`).
    pub fn take_lost_keys(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.state.lock().lost_keys)
    }

    /// Whether keys wait for their tombstones.
    pub fn has_lost_keys(&self) -> bool {
        !self.state.lock().lost_keys.is_empty()
    }

    /// Gives back keys whose tombstones could not be written yet.
    pub fn keep_lost_keys(&self, keys: Vec<Vec<u8>>) {
        self.state.lock().lost_keys.extend(keys);
    }

    /// Waits until every queued write is done. Fails with a failed write's error, or, if a
    /// write failed after `since` (a count from `failures`) and another caller took its
    /// error, with one saying so: the caller's writes may be among the lost ones.
    pub fn wait_idle(&self, since: u64) -> Result<()> {
        let mut st = self.state.lock();
        while !st.queue.is_empty() || st.busy {
            self.done.wait(&mut st);
        }
        match st.failed.take() {
            Some(e) => Err(e),
            None if st.write_failures != since => Err(Error::new(
                st.last_failure.unwrap_or(ErrorKind::Io),
                "a region write failed since the last flush (its error went to another call): \
                 puts made since then may be lost",
            )),
            None => Ok(()),
        }
    }

    /// Stops the thread once its queue is empty.
    pub fn stop(&self) {
        self.state.lock().stop = true;
        self.work.notify_all();
        if let Some(handle) = self.thread.lock().take() {
            let _ = handle.join();
        }
    }

    /// The writer thread's loop: jobs in order until stopped.
    fn run(&self) {
        loop {
            let job = {
                let mut st = self.state.lock();
                loop {
                    if let Some(job) = st.queue.pop_front() {
                        st.busy = true;
                        if let Some(b) = job.sealed_buffer() {
                            st.in_flight_seal = Some((job.region, job.mem_from, b.clone()));
                        }
                        break job;
                    }
                    if st.stop {
                        return;
                    }
                    self.work.wait(&mut st);
                }
            };
            self.execute(job);
        }
    }
}

/// The keys of the entries in a sealed region's buffer that end past byte `from` (the range a
/// failed write did not store), walking the entries from the region's start to its fill.
fn entry_keys_from(buf: &AlignedBuf, from: u64, cache_id: u64, g: &Geometry) -> Vec<Vec<u8>> {
    let b = buf.as_slice();
    let unit = g.unit as usize;
    let Some(t) = b
        .len()
        .checked_sub(unit)
        .and_then(|at| Trailer::decode(&b[at..], cache_id, g))
    else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    let mut pos = 0u64;
    while pos < t.fill {
        let h = match EntryHeader::decode(&b[pos as usize..], cache_id, t.fill - pos, g.unit) {
            Decoded::Valid(h) => h,
            _ => break,
        };
        let end = pos + h.entry_len(g.unit);
        if end > from {
            keys.push(h.key(&b[pos as usize..]).to_vec());
        }
        pos = end;
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::super::testing::{self, MIB};
    use crate::cache::Cache;
    use crate::dio::fault::{self, Fault};

    fn check_all(c: &Cache, keys: std::ops::Range<usize>) {
        for i in keys {
            let key = format!("k{i}").into_bytes();
            let v = testing::get(c, &key).unwrap_or_else(|| panic!("k{i} is missing"));
            assert_eq!(testing::version_of(&key, &v), Some(1), "k{i}");
        }
    }

    #[test]
    fn a_failed_write_behind_is_reported_then_written_again_by_the_next_flush() {
        let dir = testing::scratch();
        let (path, c) = testing::create(dir.path(), "c", 64 * MIB);
        let g = *c.engine.device.geometry();
        // Regions are 8 MiB here; write-behind hands the first 2 MiB over while puts go on.
        let bad = g.data_start..g.data_start + MIB;
        fault::set(&path, vec![Fault::unwritable(bad, libc::EIO)]).unwrap();
        // Puts are refused once the writer has met the failure: count those taken before.
        let taken = (0..25)
            .take_while(|i| {
                let key = format!("k{i}").into_bytes();
                c.put(&key, &testing::value(&key, 1, 100_000), 0).is_ok()
            })
            .count();
        assert!(
            taken >= 20,
            "only {taken} puts taken before the write-behind failed"
        );
        let err = c.flush().expect_err("the flush reports the failed write");
        assert!(err.message().contains("Input/output error"), "{err}");
        assert!(c.stats().io_errors >= 1);
        fault::clear(&path).unwrap();
        c.flush()
            .expect("the next flush writes the failed range again");
        check_all(&c, 0..taken);
        // The device has every entry: a reopen after a crash now finds them all.
        let image = testing::crash_image(&path, dir.path(), "image");
        let after = testing::reopen(&image);
        check_all(&after, 0..taken);
        assert_eq!(after.recovery().entries_dropped, 0);
    }

    #[test]
    fn a_write_error_in_the_middle_of_a_sealed_region_drops_its_entries_never_serves_them() {
        let dir = testing::scratch();
        let (path, c) = testing::create(dir.path(), "c", 8 * MIB);
        let g = *c.engine.device.geometry();
        let bad = g.data_start + 256 * 1024;
        fault::set(
            &path,
            vec![Fault::unwritable(bad..bad + 256 * 1024, libc::EIO)],
        )
        .unwrap();
        // Regions are 1 MiB: ten of these fill region 0, and the 11th seals it (later puts
        // would be refused once the seal has failed).
        testing::put_range(&c, 0..11, 100_000);
        assert!(c.flush().is_err(), "the failed seal is reported");
        fault::clear(&path).unwrap();
        c.flush()
            .expect("the next flush succeeds, and ends the refusal");
        let in_region_0 = |i: usize| {
            let loc = c
                .engine
                .index
                .get(c.engine.hash(format!("k{i}").as_bytes()));
            loc.is_some_and(|l| (l.unit as u64) < g.units_per_region())
        };
        assert!(
            !(0..11).any(in_region_0),
            "no entry of the failed region is left"
        );
        assert!(testing::get(&c, b"k0").is_none(), "a get of it is a miss");
        check_all(&c, 10..11);
        assert!(c.stats().write_entries_dropped >= 10);
        assert_eq!(
            c.stats().checksum_failures,
            0,
            "nothing unwritten was ever read"
        );
        // The cache goes on.
        testing::put_range(&c, 100..105, 100_000);
        c.flush().unwrap();
        check_all(&c, 100..105);
    }

    /// What the soak run found: a key whose newest entry a failed seal dropped came back at a
    /// reopen with its older value, still on the device (and a deleted key with its value
    /// from before the delete). The next flush writes tombstones for them.
    #[test]
    fn a_reopen_after_a_failed_seal_brings_back_no_older_value() {
        let dir = testing::scratch();
        let (path, c) = testing::create(dir.path(), "c", 8 * MIB);
        let g = *c.engine.device.geometry();
        let key = |i: usize| format!("k{i}").into_bytes();
        for i in 0..6 {
            c.put(&key(i), &testing::value(&key(i), 1, 1000), 0)
                .unwrap();
        }
        c.flush().unwrap();
        let bad = g.data_start + 256 * 1024;
        let region_end = g.data_start + g.region_size;
        fault::set(&path, vec![Fault::unwritable(bad..region_end, libc::EIO)]).unwrap();
        c.put(b"filler", &testing::value(b"filler", 1, 300_000), 0)
            .unwrap();
        for i in 0..5 {
            c.put(&key(i), &testing::value(&key(i), 2, 1000), 0)
                .unwrap();
        }
        c.delete(&key(5)).unwrap();
        // Region 0 fills and its seal fails (puts are refused once it has).
        for i in 0..12 {
            let k = format!("fill{i}").into_bytes();
            let _ = c.put(&k, &testing::value(&k, 1, 100_000), 0);
        }
        assert!(c.flush().is_err(), "the failed seal is reported");
        fault::clear(&path).unwrap();
        c.flush().expect("the next flush succeeds");
        assert!(
            !c.engine.writeback.has_lost_keys(),
            "a flush that succeeds leaves no lost key without its tombstone"
        );
        assert!(c.stats().write_entries_dropped >= 5);
        let image = testing::crash_image(&path, dir.path(), "crashed");
        drop(c);
        let c = testing::reopen(&image);
        for i in 0..6 {
            if let Some(v) = testing::get(&c, &key(i)) {
                assert_eq!(
                    testing::version_of(&key(i), &v),
                    Some(2),
                    "k{i}: an older value came back"
                );
            }
        }
    }
}

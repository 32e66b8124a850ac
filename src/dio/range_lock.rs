//! Locks over ranges of blocks. A write holds the blocks it touches from the read of a
//! read-modify-write until its write completes, so that two writers sharing a block never
//! lose each other's bytes; writers to disjoint blocks run in parallel.

use parking_lot::{Condvar, Mutex};

#[derive(Default)]
pub struct RangeLock {
    held: Mutex<Vec<(u64, u64)>>,
    released: Condvar,
}

pub struct RangeGuard<'a> {
    lock: &'a RangeLock,
    range: (u64, u64),
}

impl RangeLock {
    /// Waits until no other holder overlaps the half-open range [start, end), then holds it.
    pub fn lock(&self, start: u64, end: u64) -> RangeGuard<'_> {
        let mut held = self.held.lock();
        while held.iter().any(|&(s, e)| s < end && start < e) {
            self.released.wait(&mut held);
        }
        held.push((start, end));
        RangeGuard {
            lock: self,
            range: (start, end),
        }
    }
}

impl Drop for RangeGuard<'_> {
    fn drop(&mut self) {
        let mut held = self.lock.held.lock();
        if let Some(i) = held.iter().position(|&r| r == self.range) {
            held.swap_remove(i);
        }
        drop(held);
        self.lock.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn overlapping_ranges_exclude_each_other() {
        let lock = Arc::new(RangeLock::default());
        let inside = Arc::new(AtomicBool::new(false));
        let guard = lock.lock(0, 10);
        let (l, i) = (lock.clone(), inside.clone());
        let t = std::thread::spawn(move || {
            let _g = l.lock(9, 20);
            i.store(true, Ordering::SeqCst);
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!inside.load(Ordering::SeqCst));
        drop(lock.lock(10, 11)); // touches [0, 10) without overlapping it: no wait
        drop(guard);
        t.join().unwrap();
        assert!(inside.load(Ordering::SeqCst));
    }
}

//! The completion queue from Rust, on both backends, with device read errors made by
//! `dcache::dio::fault` (the C suite, c-tests/test_cache_queue.c, covers the rest of its
//! contract).

mod common;
use common::{scratch, value_for};
use dcache::fault::{self, Fault};
use dcache::ErrorKind;
use dcache::{Backend, Cache, CacheOptions, Completion, Outcome, ReadRequest};

/// One test in this binary: it sets the environment, which no other thread reads meanwhile.
#[test]
fn read_errors_complete_as_io_errors_and_the_rest_reads_on_both_backends() {
    for backend in [Backend::Threads, Backend::IoUring] {
        match backend {
            Backend::Threads => std::env::set_var("DCACHE_QUEUE_BACKEND", "threads"),
            Backend::IoUring => std::env::remove_var("DCACHE_QUEUE_BACKEND"),
        }
        read_errors_on(backend);
        batches_on(backend);
    }
}

/// A batch submits reads in order up to the first refused (here, past the depth): every
/// accepted read completes once with its own bytes; a range and a miss too.
fn batches_on(backend: Backend) {
    let dir = scratch();
    let c = common::create(&dir.path().join("c"), 32 << 20);
    let keys: Vec<Vec<u8>> = (0..40).map(|i| format!("batch{i}").into_bytes()).collect();
    let len = |i: usize| 1000 + i * 3000;
    for (i, k) in keys.iter().enumerate() {
        c.put(k, &value_for(k, 2, len(i)), 0).unwrap();
    }
    c.flush().unwrap();
    let q = c.queue(32).unwrap();
    if q.backend() != backend {
        eprintln!(
            "{backend:?} is not available here: {:?} runs instead",
            q.backend()
        );
    }
    let mut bufs: Vec<Vec<u8>> = (0..41).map(|i| vec![0u8; len(i)]).collect();
    let requests: Vec<ReadRequest> = keys
        .iter()
        .map(|k| k.as_slice())
        .chain([b"absent".as_slice()])
        .zip(bufs.iter_mut())
        .enumerate()
        .map(|(i, (key, b))| ReadRequest {
            key,
            // The last stored key reads a range from byte 10.
            offset: (i == 39).then_some(10),
            buf: b.as_mut_ptr(),
            len: b.len(),
            user_data: i as u64,
        })
        .collect();
    let mut done = vec![
        Completion {
            user_data: 0,
            outcome: Outcome::Read(0)
        };
        32
    ];
    let mut seen = [false; 41];
    let mut next = 0;
    while next < requests.len() {
        // SAFETY: each buffer outlives its read, which is reaped below.
        let (accepted, refused) = unsafe { q.submit_batch(&requests[next..]) };
        match next + accepted == requests.len() {
            true => refused.unwrap(),
            false => assert_eq!(refused.unwrap_err().kind(), ErrorKind::Busy),
        }
        assert_eq!(accepted, (requests.len() - next).min(32));
        next += accepted;
        assert_eq!(q.reap(&mut done, accepted).unwrap(), accepted);
        for d in &done[..accepted] {
            let i = d.user_data as usize;
            assert!(!seen[i], "read {i} completed twice");
            seen[i] = true;
            let want = match i {
                40 => {
                    assert_eq!(d.outcome, Outcome::Failed(ErrorKind::NotFound));
                    continue;
                }
                39 => value_for(&keys[i], 2, len(i))[10..].to_vec(),
                _ => value_for(&keys[i], 2, len(i)),
            };
            assert_eq!(d.outcome, Outcome::Read(want.len() as u64));
            assert_eq!(&bufs[i][..want.len()], want.as_slice(), "read {i}");
        }
    }
    assert!(seen.iter().all(|&s| s));
}

fn read_errors_on(backend: Backend) {
    let dir = scratch();
    let path = dir.path().join("c");
    let c = common::create(&path, 32 << 20);
    let keys: Vec<Vec<u8>> = (0..16).map(|i| format!("k{i}").into_bytes()).collect();
    for k in &keys {
        c.put(k, &value_for(k, 1, 50_000), 0).unwrap();
    }
    c.close().unwrap();
    drop(c);
    let c = Cache::open(&path, &CacheOptions::default()).unwrap();
    let q = c.queue(16).unwrap();
    if q.backend() != backend {
        eprintln!(
            "{backend:?} is not available here: {:?} runs instead",
            q.backend()
        );
    }
    let g = c.layout();
    let mut bufs = vec![vec![0u8; 50_000]; 16];
    let mut done = vec![
        Completion {
            user_data: 0,
            outcome: Outcome::Read(0)
        };
        16
    ];
    for unreadable in [true, false] {
        if unreadable {
            let data = g.data_start..g.data_start + g.region_size * g.region_count as u64;
            fault::set(&path, vec![Fault::unreadable(data)]).unwrap();
        }
        for (i, (k, b)) in keys.iter().zip(bufs.iter_mut()).enumerate() {
            // SAFETY: each buffer outlives its read, which is reaped below.
            unsafe { q.submit(k, None, b.as_mut_ptr(), b.len(), i as u64) }.unwrap();
        }
        assert_eq!(q.reap(&mut done, 16).unwrap(), 16);
        fault::clear(&path).unwrap();
        for d in &done {
            let i = d.user_data as usize;
            match unreadable {
                true => assert_eq!(d.outcome, Outcome::Failed(ErrorKind::Io)),
                false => {
                    assert_eq!(d.outcome, Outcome::Read(50_000));
                    assert_eq!(bufs[i], value_for(&keys[i], 1, 50_000));
                }
            }
        }
    }
    assert!(c.stats().io_errors >= 16);
}

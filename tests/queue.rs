//! The completion queue from Rust, on both backends, with device read errors made by
//! `dcache::dio::fault` (the C suite, c-tests/test_cache_queue.c, covers the rest of its
//! contract).

mod common;
use common::{scratch, value_for};
use dcache::cache::{Backend, Cache, CacheOptions, Completion, Outcome};
use dcache::dio::fault::{self, Fault};
use dcache::ErrorKind;

/// One test in this binary: it sets the environment, which no other thread reads meanwhile.
#[test]
fn read_errors_complete_as_io_errors_and_the_rest_reads_on_both_backends() {
    for backend in [Backend::Threads, Backend::IoUring] {
        match backend {
            Backend::Threads => std::env::set_var("DCACHE_QUEUE_BACKEND", "threads"),
            Backend::IoUring => std::env::remove_var("DCACHE_QUEUE_BACKEND"),
        }
        read_errors_on(backend);
    }
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
    let g = c.geometry();
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

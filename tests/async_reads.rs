//! Gets that await on a tokio runtime (feature `tokio`): many at once, from many tasks, each
//! checked byte for byte; misses, ranges, gets dropped before they complete, more gets than
//! the queue's depth.

mod common;
use common::{scratch, value_for};
use dcache::ErrorKind;
use std::sync::Arc;

const KEYS: usize = 300;

fn len_of(i: usize) -> usize {
    1 + (i * 7919) % (150 << 10)
}

fn key(i: usize) -> Vec<u8> {
    format!("async-{i}").into_bytes()
}

/// On io_uring, then on the threads. One test sets the environment: no other reads it.
#[test]
fn many_concurrent_gets_each_return_their_own_bytes_on_both_backends() {
    std::env::remove_var("DCACHE_QUEUE_BACKEND");
    many_concurrent_gets();
    std::env::set_var("DCACHE_QUEUE_BACKEND", "threads");
    many_concurrent_gets();
    std::env::remove_var("DCACHE_QUEUE_BACKEND");
}

fn many_concurrent_gets() {
    let dir = scratch();
    let c = Arc::new(common::create(&dir.path().join("c"), 64 << 20));
    for i in 0..KEYS {
        c.put(&key(i), &value_for(&key(i), 1, len_of(i)), 0)
            .unwrap();
    }
    c.flush().unwrap();
    // Some values still in the write buffer, served from memory.
    for i in KEYS..KEYS + 20 {
        c.put(&key(i), &value_for(&key(i), 1, len_of(i)), 0)
            .unwrap();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // A depth below the gets in flight: the rest wait their turn.
        let reader = Arc::new(c.async_reader(16).unwrap());
        let tasks: Vec<_> = (0..1000)
            .map(|n| {
                let reader = reader.clone();
                tokio::spawn(async move {
                    let i = (n * 37) % (KEYS + 20);
                    let got = reader.get(&key(i)).await.unwrap();
                    assert_eq!(got, value_for(&key(i), 1, len_of(i)), "get {n} of key {i}");
                    let part = reader.get_range(&key(i), 1, 100).await;
                    match len_of(i) {
                        1 => assert_eq!(part.unwrap(), b""),
                        l => assert_eq!(part.unwrap(), value_for(&key(i), 1, l)[1..l.min(101)]),
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let miss = reader.get(b"absent").await.unwrap_err();
        assert_eq!(miss.kind(), ErrorKind::NotFound);
        let past = reader.get_range(&key(3), 1 << 30, 10).await.unwrap_err();
        assert_eq!(past.kind(), ErrorKind::Range);
        // Gets dropped before they complete: their reads finish in the background, and the
        // reader goes on serving the next ones.
        for n in 0..200 {
            let i = n % KEYS;
            let _ = tokio::time::timeout(std::time::Duration::ZERO, reader.get(&key(i))).await;
        }
        for i in (0..KEYS).step_by(7) {
            assert_eq!(
                reader.get(&key(i)).await.unwrap(),
                value_for(&key(i), 1, len_of(i))
            );
        }
    });
}

#[test]
fn an_async_reader_outside_a_runtime_is_refused() {
    let dir = scratch();
    let c = common::create(&dir.path().join("c"), 16 << 20);
    let e = c.async_reader(8).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
}

/// On io_uring, a get reads the device only through the ring, never on the thread that
/// awaits it: a pread there would block the executor (and did, to learn the value's size).
#[test]
fn gets_on_io_uring_never_wait_for_the_device_on_the_executor() {
    use dcache::fault::blocking_reads_on_this_thread;
    let dir = scratch();
    let path = dir.path().join("c");
    let c = common::create(&path, 64 << 20);
    for i in 0..40 {
        c.put(&key(i), &value_for(&key(i), 3, len_of(i)), 0)
            .unwrap();
    }
    // Reopened, so that every value is read from the device, not the write buffer.
    c.close().unwrap();
    drop(c);
    let c = dcache::Cache::open(&path, &dcache::CacheOptions::new()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let reader = c.async_reader(8).unwrap();
        if reader.backend() != dcache::Backend::IoUring {
            eprintln!("SKIP: io_uring is not available here; the queue's threads read instead");
            return;
        }
        let before = blocking_reads_on_this_thread();
        for i in 0..40 {
            let got = reader.get(&key(i)).await.unwrap();
            assert_eq!(got, value_for(&key(i), 3, len_of(i)), "key {i}");
            let part = reader.get_range(&key(i), 0, 10).await.unwrap();
            assert_eq!(part, &value_for(&key(i), 3, len_of(i))[..len_of(i).min(10)]);
        }
        assert_eq!(
            blocking_reads_on_this_thread(),
            before,
            "the executor waited on the device"
        );
        // The counter counts: a blocking get on this thread moves it.
        let mut buf = vec![0u8; 200 << 10];
        c.get(&key(0), &mut buf).unwrap();
        assert!(blocking_reads_on_this_thread() > before);
    });
}

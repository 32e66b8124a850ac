//! Crash safety with a real process killed by SIGKILL at random moments, 30 times. The child
//! (this test binary, re-executed) follows a deterministic stream of puts and deletes on one
//! cache file, flushing every FLUSH_EVERY operations and printing "F <n>" once the first n
//! operations are durable. After each kill the parent reopens the cache and checks that:
//! every key whose last durable operation was a put is back byte-exact, every key whose last
//! durable operation was a delete is absent, and anything read is a version written for it.

mod common;
use dcache::{Cache, CacheOptions, Fetched};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const FLUSH_EVERY: u64 = 16;
const KEYS: u64 = 150;
const ROUNDS: u32 = 30;

#[derive(Clone, Copy)]
enum Op {
    Put { key: u64, len: usize },
    Delete { key: u64 },
}

fn op(round: u32, i: u64) -> Op {
    let r = xxhash_rust::xxh3::xxh3_64_with_seed(&i.to_le_bytes(), round as u64);
    let key = r % KEYS;
    if (r >> 20).is_multiple_of(8) {
        Op::Delete { key }
    } else {
        Op::Put {
            key,
            len: 12 + ((r >> 32) % 40_000) as usize,
        }
    }
}

fn key_name(round: u32, key: u64) -> Vec<u8> {
    format!("round{round}/key{key}").into_bytes()
}

/// A value naming its version (the operation's index) in its first bytes.
fn value_for(key: &[u8], version: u64, len: usize) -> Vec<u8> {
    let seed = xxhash_rust::xxh3::xxh3_64_with_seed(key, version);
    let mut v: Vec<u8> = (0..len)
        .map(|i| (seed >> (i % 57)) as u8 ^ i as u8)
        .collect();
    v[..8].copy_from_slice(&version.to_le_bytes());
    v
}

fn options() -> CacheOptions {
    CacheOptions::new().create(true).capacity(256 << 20)
}

/// The child: runs only when re-executed by `crash_recovery_after_sigkill`.
#[test]
fn crash_child_process() {
    let (Ok(path), Ok(round)) = (
        std::env::var("DCACHE_CRASH_PATH"),
        std::env::var("DCACHE_CRASH_ROUND"),
    ) else {
        return;
    };
    let round: u32 = round.parse().unwrap();
    let cache = Cache::open(path.as_ref(), &options()).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0.. {
        match op(round, i) {
            Op::Put { key, len } => {
                let k = key_name(round, key);
                cache.put(&k, &value_for(&k, i, len), 0).unwrap();
            }
            Op::Delete { key } => {
                let _ = cache.delete(&key_name(round, key));
            }
        }
        if (i + 1) % FLUSH_EVERY == 0 {
            cache.flush().unwrap();
            writeln!(out, "F {}", i + 1).unwrap();
            out.flush().unwrap();
        }
    }
}

#[test]
fn crash_recovery_after_sigkill() {
    let dir = common::scratch();
    let path = dir.path().join("crash.dcache");
    let mut certain_total = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_child_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("DCACHE_CRASH_PATH", &path)
            .env("DCACHE_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut durable = 0u64;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("F ") {
                    durable = n.parse().unwrap();
                }
            }
            durable
        });
        let wait = 30 + xxhash_rust::xxh3::xxh3_64_with_seed(b"delay", round as u64) % 400;
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let durable = reader.join().unwrap();

        // What the first `durable` operations left, and which keys later operations touched.
        let mut last: Vec<Option<(u64, Op)>> = vec![None; KEYS as usize];
        let mut versions: Vec<Vec<u64>> = vec![Vec::new(); KEYS as usize];
        for i in 0..durable + 4 * FLUSH_EVERY {
            let o = op(round, i);
            let key = match o {
                Op::Put { key, .. } | Op::Delete { key } => key,
            };
            if let Op::Put { .. } = o {
                versions[key as usize].push(i);
            }
            if i < durable {
                last[key as usize] = Some((i, o));
            } else {
                last[key as usize] = None; // touched after the last flush: uncertain
            }
        }
        let cache = Cache::open(&path, &options()).unwrap();
        let mut buf = vec![0u8; 64 << 10];
        for key in 0..KEYS {
            let k = key_name(round, key);
            let got = match cache.get(&k, &mut buf) {
                Ok(Fetched::Copied(n)) => Some(buf[..n].to_vec()),
                Ok(Fetched::TooSmall(n)) => panic!("value of {n} bytes"),
                Err(e) if e.kind() == dcache::ErrorKind::NotFound => None,
                Err(e) => panic!("round {round} key {key}: {e}"),
            };
            if let Some(v) = &got {
                let version = u64::from_le_bytes(v[..8].try_into().unwrap());
                assert!(
                    versions[key as usize].contains(&version),
                    "round {round} key {key}: version {version} never written"
                );
                assert_eq!(
                    v,
                    &value_for(&k, version, v.len()),
                    "round {round} key {key}: wrong bytes"
                );
            }
            match last[key as usize] {
                Some((i, Op::Put { len, .. })) => {
                    certain_total += 1;
                    assert_eq!(
                        got.as_deref(),
                        Some(&value_for(&k, i, len)[..]),
                        "round {round} key {key}: flushed put lost"
                    );
                }
                Some((_, Op::Delete { .. })) => assert!(
                    got.is_none(),
                    "round {round} key {key}: flushed delete undone"
                ),
                None => {}
            }
        }
        drop(cache);
    }
    assert!(
        certain_total > 100,
        "the kills left too little flushed data to check: {certain_total}"
    );
}

/// The child of `reopen_after_a_crash_reads_the_summary_not_the_values`: fills most of the
/// active region, flushes, says so, and waits to be killed.
#[test]
fn flushed_child_process() {
    let Ok(path) = std::env::var("DCACHE_FLUSHED_PATH") else {
        return;
    };
    let cache = Cache::open(path.as_ref(), &flushed_options()).unwrap();
    for i in 0..FLUSHED_ENTRIES {
        let k = format!("flushed{i}").into_bytes();
        cache.put(&k, &value_for(&k, i, 20_000), 0).unwrap();
    }
    cache.flush().unwrap();
    // A few small puts and a flush that writes no new summary (they take fewer bytes than
    // the summary would): recovery must find them by reading the entries after it.
    for i in 0..LATE_ENTRIES {
        let k = format!("late{i}").into_bytes();
        cache.put(&k, &value_for(&k, i, 600), 0).unwrap();
    }
    cache.flush().unwrap();
    println!("FLUSHED");
    std::thread::sleep(Duration::from_secs(60));
}

const FLUSHED_ENTRIES: u64 = 300; // about 6 MiB: most of one 8 MiB region
const LATE_ENTRIES: u64 = 2;

fn flushed_options() -> CacheOptions {
    CacheOptions::new().create(true).capacity(128 << 20)
}

/// A flush writes the active region's summary, so a reopen after kill -9 reads that
/// summary instead of the region's values (issue 4: reopen after a crash reads metadata),
/// and finds the entries a later flush made durable without a summary by reading them.
#[test]
fn reopen_after_a_crash_reads_the_summary_not_the_values() {
    let dir = common::scratch();
    let path = dir.path().join("flushed.dcache");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "flushed_child_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DCACHE_FLUSHED_PATH", &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let flushed = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .any(|line| line.ends_with("FLUSHED"));
    assert!(flushed, "the child did not flush");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let cache = Cache::open(&path, &flushed_options()).unwrap();
    let report = cache.recovery();
    assert!(!report.was_clean);
    assert_eq!(report.entries, FLUSHED_ENTRIES + LATE_ENTRIES);
    assert_eq!(report.entries_dropped, 0);
    let region = cache.layout().region_size;
    assert!(region >= 8 << 20);
    // The trailers, the summary (24 bytes an entry) and one window of scan past it; the
    // entries themselves are 300 x 20 KB.
    assert!(
        report.bytes_read <= (1 << 20) + (64 << 10),
        "recovery read {} bytes",
        report.bytes_read
    );
    let mut buf = vec![0u8; 64 << 10];
    let all = (0..FLUSHED_ENTRIES)
        .map(|i| ("flushed", i, 20_000))
        .chain((0..LATE_ENTRIES).map(|i| ("late", i, 600)));
    for (name, i, len) in all {
        let k = format!("{name}{i}").into_bytes();
        match cache.get(&k, &mut buf).unwrap() {
            Fetched::Copied(n) => assert!(buf[..n] == value_for(&k, i, len)[..]),
            other => panic!("{other:?}"),
        }
    }
}

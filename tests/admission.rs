//! Admission (`Admission::Filtered`) through the Rust API, on real files with O_DIRECT.

mod common;
use common::{get, scratch, value_for};
use dcache::ErrorKind;
use dcache::{Admission, Cache, CacheOptions};
use std::path::Path;

fn open(path: &Path, capacity: u64, admission: Admission) -> Cache {
    let opts = CacheOptions::new()
        .create(true)
        .capacity(capacity)
        .admission(admission);
    Cache::open(path, &opts).unwrap()
}

/// Larger than the values the filter stores at their first miss (16 KiB at first).
const LEN: usize = 40_000;

fn put(c: &Cache, key: &str, version: u32) -> Result<(), ErrorKind> {
    c.put(key.as_bytes(), &value_for(key.as_bytes(), version, LEN), 0)
        .map_err(|e| e.kind())
}

#[test]
fn a_key_is_stored_the_second_time_it_misses() {
    let dir = scratch();
    let c = open(&dir.path().join("c"), 32 << 20, Admission::Filtered);
    assert_eq!(put(&c, "k", 1), Err(ErrorKind::Declined));
    assert_eq!(get(&c, b"k"), None, "nothing stored");
    assert_eq!(put(&c, "k", 2), Ok(()));
    assert_eq!(get(&c, b"k"), Some(value_for(b"k", 2, LEN)));
    // A newer value of a cached key is stored at once.
    assert_eq!(put(&c, "k", 3), Ok(()));
    assert_eq!(get(&c, b"k"), Some(value_for(b"k", 3, LEN)));
    let s = c.stats();
    assert_eq!((s.declined, s.puts), (1, 2));
    assert!(s.admission_bytes >= 4096, "{s:?}");
}

#[test]
fn a_small_value_is_stored_at_its_first_miss() {
    let dir = scratch();
    let c = open(&dir.path().join("c"), 32 << 20, Admission::Filtered);
    c.put(b"s", &value_for(b"s", 1, 4000), 0).unwrap();
    assert_eq!(get(&c, b"s"), Some(value_for(b"s", 1, 4000)));
    assert_eq!(c.stats().declined, 0);
}

#[test]
fn a_writer_is_declined_before_any_byte() {
    let dir = scratch();
    let c = open(&dir.path().join("c"), 32 << 20, Admission::Filtered);
    let declined = c.writer(b"w", 0).map(|_| ()).map_err(|e| e.kind());
    assert_eq!(declined, Err(ErrorKind::Declined));
    let mut w = c.writer(b"w", 0).expect("admitted on the second miss");
    w.write(&value_for(b"w", 1, 70_000)).unwrap();
    w.commit().unwrap();
    assert_eq!(get(&c, b"w"), Some(value_for(b"w", 1, 70_000)));
    assert_eq!(c.stats().declined, 1);
}

/// A key dropped by eviction lately was stored before: it comes back at its first miss.
#[test]
fn a_key_a_ghost_remembers_is_stored_at_once() {
    let dir = scratch();
    let c = open(&dir.path().join("c"), 8 << 20, Admission::Filtered);
    let keys: Vec<String> = (0..3000).map(|i| format!("k{i}")).collect();
    for key in &keys {
        let _ = put(&c, key, 1); // declined, unless the filter now stores values this size
        assert_eq!(put(&c, key, 1), Ok(()));
    }
    assert!(c.stats().evictions > 0);
    // The last key dropped (unread, into probation's ghost): no later drop took its slot.
    let last_dropped = keys
        .iter()
        .rev()
        .find(|k| !c.contains(k.as_bytes()))
        .expect("an evicted key");
    let declined = c.stats().declined;
    assert_eq!(put(&c, last_dropped, 2), Ok(()), "the ghost remembers it");
    assert_eq!(
        get(&c, last_dropped.as_bytes()),
        Some(value_for(last_dropped.as_bytes(), 2, LEN))
    );
    assert_eq!(c.stats().declined, declined);
}

#[test]
fn without_a_filter_every_put_is_stored_and_nothing_is_spent() {
    let dir = scratch();
    let c = open(&dir.path().join("c"), 32 << 20, Admission::All);
    for i in 0..500 {
        assert_eq!(put(&c, &format!("k{i}"), 1), Ok(()));
    }
    let s = c.stats();
    assert_eq!((s.declined, s.admission_bytes, s.puts), (0, 0, 500));
}

fn open_with_budget(path: &Path, capacity: u64, write_budget: u64) -> Cache {
    let opts = CacheOptions::new()
        .create(true)
        .capacity(capacity)
        .admission(Admission::Filtered)
        .write_budget(write_budget);
    Cache::open(path, &opts).unwrap()
}

/// Puts as fast as one thread can for two and a half seconds against a budget of 4 MiB/s:
/// the device takes at most the budget over that time, and half a second of it ahead.
#[test]
fn the_write_budget_caps_the_bytes_written() {
    let dir = scratch();
    let budget = 4u64 << 20;
    let c = open_with_budget(&dir.path().join("c"), 64 << 20, budget);
    let started = std::time::Instant::now();
    let mut i = 0u32;
    while started.elapsed().as_secs_f64() < 2.5 {
        let key = format!("k{}", i / 2);
        let _ = c.put(key.as_bytes(), &value_for(key.as_bytes(), 1, 64 << 10), 0);
        i += 1;
    }
    c.flush().unwrap();
    let secs = started.elapsed().as_secs_f64();
    let s = c.stats();
    let allowed = (budget as f64 * (secs + 0.5)) as u64;
    // Each flush also writes a region's summary and trailer: a few KiB.
    assert!(
        s.bytes_written <= allowed + (64 << 10),
        "{} > {allowed}: {s:?}",
        s.bytes_written
    );
    assert!(s.puts > 20 && s.declined > s.puts, "{s:?}");
    // And most of the budget was used.
    assert!(s.bytes_written > allowed / 2, "{s:?}");
}

/// A put over the budget is declined even for a key the cache holds, and that key's older
/// value is deleted (a tombstone), so it never comes back, not even after a reopen.
#[test]
fn a_put_over_the_budget_deletes_the_older_value() {
    let dir = scratch();
    let path = dir.path().join("c");
    let c = open_with_budget(&path, 32 << 20, 100_000);
    assert_eq!(put(&c, "k", 1), Err(ErrorKind::Declined));
    assert_eq!(put(&c, "k", 2), Ok(()));
    // Spend the rest of the half second ahead: these are declined, not stored.
    // (The first is declined as a first miss, the next stored, then the budget runs out.)
    for _ in 0..10 {
        let _ = c.put(b"big", &[7u8; 40_000], 0);
    }
    assert!(c.stats().declined >= 3);
    assert_eq!(put(&c, "k", 3), Err(ErrorKind::Declined));
    assert_eq!(get(&c, b"k"), None, "the older value is deleted");
    c.close().unwrap();
    drop(c);
    let c = Cache::open(&path, &CacheOptions::default()).unwrap();
    assert_eq!(get(&c, b"k"), None, "and stays deleted after a reopen");
}

/// A writer's length is known only at commit: one that would pass the budget is declined
/// there, and the key's older value is deleted.
#[test]
fn a_writer_over_the_budget_is_declined_at_commit() {
    let dir = scratch();
    let c = open_with_budget(&dir.path().join("c"), 32 << 20, 100_000);
    assert_eq!(put(&c, "w", 1), Err(ErrorKind::Declined));
    assert_eq!(put(&c, "w", 2), Ok(()));
    let mut w = c.writer(b"w", 0).expect("a cached key, and budget left");
    w.write(&value_for(b"w", 3, 200_000)).unwrap();
    assert_eq!(w.commit().map_err(|e| e.kind()), Err(ErrorKind::Declined));
    assert_eq!(get(&c, b"w"), None, "the older value is deleted");
}

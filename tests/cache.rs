//! The cache engine through its Rust API, on real files in the work tree with O_DIRECT.

mod common;
use common::{create, get, reopen, scratch, value_for};
use dcache::ErrorKind;
use dcache::{Cache, CacheOptions, Fetched};

#[test]
fn round_trips_of_many_sizes() {
    let dir = scratch();
    let c = create(&dir.path().join("c"), 256 << 20);
    assert!(c.is_direct_io());
    let sizes = [
        0usize,
        1,
        511,
        512,
        4095,
        4096,
        4097,
        65535,
        65536,
        65537,
        1 << 20,
        (1 << 20) + 3,
    ];
    let key_and_len = |i: u32| {
        let key = format!("key-{i}-{}", "x".repeat(i as usize % 300));
        let len = sizes
            .get(i as usize)
            .copied()
            .unwrap_or((i as usize * 7919) % 20000);
        (key, len)
    };
    for i in 0..3000u32 {
        let (key, len) = key_and_len(i);
        c.put(key.as_bytes(), &value_for(key.as_bytes(), 1, len), 0)
            .unwrap();
    }
    for i in 0..3000u32 {
        let (key, len) = key_and_len(i);
        assert_eq!(
            get(&c, key.as_bytes()).as_deref(),
            Some(&value_for(key.as_bytes(), 1, len)[..]),
            "{key}"
        );
    }
    let s = c.stats();
    assert_eq!(s.entries, 3000);
    assert!(s.used_bytes <= s.capacity);
    assert_eq!(s.checksum_failures, 0);
}

#[test]
fn buffer_too_small_reports_the_size() {
    let dir = scratch();
    let c = create(&dir.path().join("c"), 64 << 20);
    c.put(b"k", &[7u8; 1000], 0).unwrap();
    let mut small = [0u8; 10];
    assert_eq!(c.get(b"k", &mut small).unwrap(), Fetched::TooSmall(1000));
    assert_eq!(small, [0u8; 10]);
    assert_eq!(c.value_size(b"k").unwrap(), 1000);
}

#[test]
fn eviction_keeps_the_newest_and_never_returns_wrong_bytes() {
    let dir = scratch();
    let c = create(&dir.path().join("c"), 64 << 20);
    let n = 4 * (64 << 20) / 20_000;
    for i in 0..n {
        let key = format!("k{i}");
        c.put(key.as_bytes(), &value_for(key.as_bytes(), 0, 20_000), 0)
            .unwrap();
    }
    let mut present = 0;
    for i in 0..n {
        let key = format!("k{i}");
        if let Some(v) = get(&c, key.as_bytes()) {
            assert_eq!(v, value_for(key.as_bytes(), 0, 20_000));
            present += 1;
        }
    }
    for i in n - 100..n {
        assert!(
            get(&c, format!("k{i}").as_bytes()).is_some(),
            "newest entry {i} missing"
        );
    }
    let s = c.stats();
    assert!(s.evictions > 0);
    assert_eq!(s.entries, present);
    assert!(s.used_bytes <= s.capacity);
}

#[test]
fn ttl_delete_and_overwrite() {
    let dir = scratch();
    let c = create(&dir.path().join("c"), 64 << 20);
    c.put(b"short", b"lived", 1).unwrap();
    c.put(b"gone", b"soon", 0).unwrap();
    c.put(b"over", b"one", 0).unwrap();
    c.put(b"over", b"two", 0).unwrap();
    assert_eq!(get(&c, b"over").unwrap(), b"two");
    assert!(c.contains(b"gone"));
    c.delete(b"gone").unwrap();
    assert!(!c.contains(b"gone"));
    assert_eq!(c.delete(b"gone").unwrap_err().kind(), ErrorKind::NotFound);
    assert!(get(&c, b"gone").is_none());
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert!(get(&c, b"short").is_none());
    assert_eq!(c.stats().expirations, 1);
}

#[test]
fn streaming_writer_is_invisible_until_commit() {
    let dir = scratch();
    let c = create(&dir.path().join("c"), 64 << 20);
    let mut w = c.writer(b"streamed", 0).unwrap();
    let value = value_for(b"streamed", 3, 300_000);
    for part in value.chunks(777) {
        w.write(part).unwrap();
    }
    assert!(get(&c, b"streamed").is_none());
    w.commit().unwrap();
    assert_eq!(get(&c, b"streamed").unwrap(), value);
    let mut aborted = c.writer(b"aborted", 0).unwrap();
    aborted.write(b"nothing").unwrap();
    drop(aborted);
    assert!(get(&c, b"aborted").is_none());
}

#[test]
fn range_reads_match_the_value() {
    let dir = scratch();
    let c = create(&dir.path().join("c"), 64 << 20);
    let value = value_for(b"r", 1, 700_000);
    c.put(b"r", &value, 0).unwrap();
    c.flush().unwrap();
    let mut seed = 99u64;
    for _ in 0..300 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let off = (seed >> 33) % (value.len() as u64 + 1);
        let len = ((seed >> 7) % 200_000) as usize;
        let mut buf = vec![0u8; len];
        let n = c.get_range(b"r", off, &mut buf).unwrap();
        assert_eq!(n, len.min(value.len() - off as usize));
        assert_eq!(&buf[..n], &value[off as usize..off as usize + n]);
    }
    let mut buf = [0u8; 4];
    assert_eq!(c.get_range(b"r", value.len() as u64, &mut buf).unwrap(), 0);
    assert_eq!(
        c.get_range(b"r", value.len() as u64 + 1, &mut buf)
            .unwrap_err()
            .kind(),
        ErrorKind::Range
    );
}

#[test]
fn reopen_restores_flushed_entries_and_deletes() {
    let dir = scratch();
    let path = dir.path().join("c");
    {
        let c = create(&path, 64 << 20);
        for i in 0..2000u32 {
            let key = format!("k{i}");
            c.put(
                key.as_bytes(),
                &value_for(key.as_bytes(), 1, (i as usize * 37) % 9000),
                0,
            )
            .unwrap();
        }
        for i in (0..2000u32).step_by(3) {
            c.delete(format!("k{i}").as_bytes()).unwrap();
        }
        c.close().unwrap();
    }
    let check = |c: &Cache| {
        for i in 0..2000u32 {
            let key = format!("k{i}");
            let got = get(c, key.as_bytes());
            if i % 3 == 0 {
                assert!(got.is_none(), "{key} was deleted");
            } else {
                assert_eq!(
                    got.unwrap(),
                    value_for(key.as_bytes(), 1, (i as usize * 37) % 9000)
                );
            }
        }
    };
    let c = reopen(&path);
    let r = c.recovery();
    assert!(r.was_clean);
    assert_eq!(
        r.regions_scanned, 0,
        "a clean reopen reads summaries, not entries"
    );
    assert_eq!(c.stats().entries, 2000 - 667);
    check(&c);
    drop(c);
    let c = reopen(&path);
    check(&c);
}

#[test]
fn foreign_data_is_refused_untouched_and_locked_twice() {
    let dir = scratch();
    let path = dir.path().join("foreign");
    let data: Vec<u8> = (0..(16 << 20))
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();
    let opts = CacheOptions::new().create(true).capacity(16 << 20);
    assert_eq!(
        Cache::open(&path, &opts).err().unwrap().kind(),
        ErrorKind::NotACache
    );
    assert!(std::fs::read(&path).unwrap() == data);
    let opts = CacheOptions::new().format(true);
    let c = Cache::open(&path, &opts).unwrap();
    assert_eq!(
        Cache::open(&path, &CacheOptions::default())
            .unwrap_err()
            .kind(),
        ErrorKind::Locked
    );
    drop(c);
    reopen(&path);
}

#[test]
fn corruption_is_detected_never_returned() {
    let dir = scratch();
    let path = dir.path().join("c");
    let n = 3000u32;
    {
        let c = create(&path, 64 << 20);
        for i in 0..n {
            let key = format!("k{i}");
            c.put(key.as_bytes(), &value_for(key.as_bytes(), 1, 5000), 0)
                .unwrap();
        }
    }
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let mut seed = 7u64;
    for _ in 0..500 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let off = 16384 + (seed >> 20) % (len - 16384);
        std::os::unix::fs::FileExt::write_at(&file, &[(seed >> 8) as u8 | 1], off).unwrap();
    }
    drop(file);
    let c = reopen(&path);
    let mut found = 0;
    for i in 0..n {
        let key = format!("k{i}");
        if let Some(v) = get(&c, key.as_bytes()) {
            assert_eq!(v, value_for(key.as_bytes(), 1, 5000));
            found += 1;
        }
    }
    assert!(found > 0);
    assert!(c.stats().checksum_failures > 0);
}

#[test]
fn concurrent_puts_and_gets_never_see_wrong_bytes() {
    let dir = scratch();
    let c = std::sync::Arc::new(create(&dir.path().join("c"), 64 << 20));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                let mut i = 0u32;
                let mut buf = vec![0u8; 1 << 20];
                while std::time::Instant::now() < deadline {
                    let key = format!("k{}", (i * 7 + t) % 500);
                    if i.is_multiple_of(3) {
                        let version = i;
                        let len = (i as usize * 131) % 30_000 + 12;
                        c.put(key.as_bytes(), &value_for(key.as_bytes(), version, len), 0)
                            .unwrap();
                    } else if let Ok(Fetched::Copied(n)) = c.get(key.as_bytes(), &mut buf) {
                        let version = u32::from_le_bytes(buf[..4].try_into().unwrap());
                        assert_eq!(
                            &buf[..n],
                            &value_for(key.as_bytes(), version, n)[..],
                            "wrong bytes for {key}"
                        );
                    }
                    i += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(c.stats().checksum_failures, 0);
}

/// After a power loss, a region's summary can reach the device while an entry it lists does
/// not, and the bytes there can be an older lap's intact entry of the same key and length.
/// Reads check the entry's lap, so that older value is a miss, never returned. Simulated
/// here by writing the older lap's bytes back over the newer entry.
#[test]
fn an_older_laps_entry_in_the_newest_ones_place_is_a_miss() {
    let dir = scratch();
    let path = dir.path().join("c");
    let key = b"same-key-same-place";
    let (region0, old_bytes, value_len);
    {
        let c = create(&path, 8 << 20);
        let g = c.layout();
        // One value fills a region: each put takes a whole region, at its start.
        value_len = c.max_value_size() as usize;
        c.put(key, &value_for(key, 1, value_len), 0).unwrap();
        c.flush().unwrap();
        region0 = g.data_start;
        let image = std::fs::read(&path).unwrap();
        old_bytes = image[region0 as usize..(region0 + g.region_size) as usize].to_vec();
        for i in 1..g.region_count {
            let filler = format!("filler{i}").into_bytes();
            c.put(&filler, &value_for(&filler, 1, value_len), 0)
                .unwrap();
        }
        // The log is back in region 0, and the same key goes at the same place.
        c.put(key, &value_for(key, 2, value_len), 0).unwrap();
        assert_eq!(get(&c, key).unwrap(), value_for(key, 2, value_len));
    }
    let mut image = std::fs::read(&path).unwrap();
    let newer = &image[region0 as usize..region0 as usize + value_len];
    assert!(
        newer != &old_bytes[..value_len],
        "the newer lap was not written there"
    );
    // Put the older lap's entry back, but not its trailer: the summary still lists the key.
    let trailer_at = old_bytes.len() - 4096;
    image[region0 as usize..region0 as usize + trailer_at]
        .copy_from_slice(&old_bytes[..trailer_at]);
    std::fs::write(&path, &image).unwrap();

    let c = reopen(&path);
    assert_eq!(get(&c, key), None, "an older lap's value came back");
    assert_eq!(c.stats().checksum_failures, 1);
}

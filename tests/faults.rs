//! Device faults: write errors (EIO, a write-protected device, a full file system), read errors
//! during gets, at open and during reclaims. Faults come from a real loop device turned
//! read-only (`blockdev --setro`, as root) and from `dcache::dio::fault`, which fails chosen
//! byte ranges of a chosen file or device (this kernel has no device-mapper). Every get must
//! return the right value, a miss, or an I/O error: never other bytes.

mod common;
use common::Rng;
use common::{format_device, loop_device, scratch, value_for, LoopDevice};
use dcache::fault::{self, Fault};
use dcache::ErrorKind;
use dcache::{Cache, CacheOptions, Fetched};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

const V: usize = 64 << 10;

/// A get: Ok(Some(value)), Ok(None) on a miss, Err(kind) on any other failure.
fn try_get(c: &Cache, key: &[u8]) -> Result<Option<Vec<u8>>, ErrorKind> {
    let mut buf = vec![0u8; c.max_value_size() as usize];
    match c.get(key, &mut buf) {
        Ok(Fetched::Copied(n)) => Ok(Some(buf[..n].to_vec())),
        Ok(Fetched::TooSmall(n)) => panic!("{n} bytes do not fit max_value_size"),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.kind()),
    }
}

/// The version a value holds, if it is exactly `value_for(key, version, its length)`.
fn version_of(key: &[u8], v: &[u8]) -> Option<u32> {
    let version = u32::from_le_bytes(v.get(..4)?.try_into().unwrap());
    (value_for(key, version, v.len()) == v).then_some(version)
}

fn key(i: u32) -> Vec<u8> {
    format!("k{i}").into_bytes()
}

fn put_flushed(c: &Cache, n: u32) {
    for i in 0..n {
        c.put(&key(i), &value_for(&key(i), 1, V), 0).unwrap();
    }
    c.flush().unwrap();
}

/// How many of k0..k{n} hold version 1; panics on wrong bytes, and on an error unless
/// `io_errors_allowed`.
fn count_right(c: &Cache, n: u32, io_errors_allowed: bool) -> u32 {
    let mut right = 0;
    for i in 0..n {
        match try_get(c, &key(i)) {
            Ok(Some(v)) => {
                assert_eq!(version_of(&key(i), &v), Some(1), "k{i}: wrong bytes");
                right += 1;
            }
            Ok(None) => {}
            Err(ErrorKind::Io) if io_errors_allowed => {}
            Err(e) => panic!("k{i}: {e:?}"),
        }
    }
    right
}

fn open_file(path: &Path, capacity: u64) -> Cache {
    Cache::open(path, &CacheOptions::new().create(true).capacity(capacity)).unwrap()
}

/// Once the device takes writes again, a put is stored within a few probes; after a flush,
/// close and reopen, it and k0..k{flushed} are all there.
fn puts_resume_and_survive_a_reopen(c: Cache, path: &Path, flushed: u32) {
    let started = Instant::now();
    while c.put(b"after", b"stored again", 0).is_err() {
        assert!(started.elapsed() < Duration::from_secs(8), "never probed");
        std::thread::sleep(Duration::from_millis(20));
    }
    c.flush().unwrap();
    c.close().unwrap();
    drop(c);
    let c = Cache::open(path, &CacheOptions::default()).unwrap();
    assert_eq!(count_right(&c, flushed, false), flushed, "after reopen");
    assert!(try_get(&c, b"after").unwrap().is_some());
}

/// A write error of each kind: puts fail fast with its code (after at most the puts already
/// in memory when the background write failed), flushes report it, flushed values stay
/// readable, and once writes succeed again (a probe, with a back-off) puts are stored again.
#[test]
fn a_write_error_stops_puts_until_a_write_succeeds() {
    for (errno, kind) in [
        (libc::EIO, ErrorKind::Io),
        (libc::EROFS, ErrorKind::ReadOnly),
        (libc::ENOSPC, ErrorKind::NoSpace),
    ] {
        let dir = scratch();
        let path = dir.path().join("c");
        let c = open_file(&path, 64 << 20);
        put_flushed(&c, 100);
        fault::set(&path, vec![Fault::unwritable(0..u64::MAX, errno)]).unwrap();
        let mut accepted = 0;
        let started = Instant::now();
        let refusal = loop {
            let k = key(1000 + accepted);
            match c.put(&k, &value_for(&k, 1, V), 0) {
                Ok(()) => accepted += 1,
                Err(e) => break e,
            }
            assert!(started.elapsed() < Duration::from_secs(10), "never refused");
        };
        assert_eq!(refusal.kind(), kind, "{refusal}");
        // Write-behind hands a few MiB at a time to the writer: no more can be accepted.
        assert!(accepted <= 128, "{accepted} puts accepted after the fault");
        assert_eq!(c.flush().unwrap_err().kind(), kind);
        for _ in 0..20 {
            let k = key(5000);
            assert_eq!(c.put(&k, b"x", 0).unwrap_err().kind(), kind, "fails fast");
        }
        assert_eq!(count_right(&c, 100, false), 100, "flushed values stay");
        assert!(c.stats().io_errors > 0);
        fault::clear(&path).unwrap();
        puts_resume_and_survive_a_reopen(c, &path, 100);
    }
}

/// A get whose entry cannot be read fails with DCACHE_IO_ERROR, counted, and logged once for
/// its region however many gets fail; the other entries read.
#[test]
fn a_get_of_an_unreadable_entry_is_an_io_error_logged_once() {
    let dir = scratch();
    let path = dir.path().join("c");
    let c = open_file(&path, 64 << 20);
    put_flushed(&c, 300);
    let g = c.layout();
    let region = g.data_start + g.region_size; // the second region, written whole
    let logged = std::sync::Arc::new(AtomicU64::new(0));
    let seen = logged.clone();
    let name = path.display().to_string();
    dcache::set_log_sink(Some(std::sync::Arc::new(move |_, m: &str| {
        if m.contains(&name) && m.contains("region") && m.contains("read") {
            seen.fetch_add(1, Relaxed);
        }
    })));
    fault::set(
        &path,
        vec![Fault::unreadable(region..region + g.region_size)],
    )
    .unwrap();
    let mut failed = 0;
    for _ in 0..3 {
        for i in 0..300 {
            if try_get(&c, &key(i)) == Err(ErrorKind::Io) {
                failed += 1;
            }
        }
    }
    let right = count_right(&c, 300, true);
    dcache::set_log_sink(None);
    fault::clear(&path).unwrap();
    assert!(failed > 0 && right > 0, "{failed} failed, {right} right");
    assert!(c.stats().io_errors >= failed);
    assert_eq!(logged.load(Relaxed), 1, "logged once for the region");
    assert_eq!(count_right(&c, 300, false), 300, "readable again");
}

/// At open, an unreadable summary costs nothing (the region's entries are read one by one);
/// an unreadable region costs that region (`recovery_regions_lost`), and the cache opens.
#[test]
fn an_unreadable_summary_or_region_at_open_costs_only_that_region() {
    let dir = scratch();
    let path = dir.path().join("c");
    let c = open_file(&path, 64 << 20);
    put_flushed(&c, 600);
    let g = c.layout();
    c.close().unwrap();
    drop(c);
    let region_end = |r: u64| g.data_start + (r + 1) * g.region_size;
    // The summaries (the unit before the trailer: a few dozen records) of regions 0 to 5.
    let unit = g.unit as u64;
    let summaries = (0..6)
        .map(|r| Fault::unreadable(region_end(r) - 2 * unit..region_end(r) - unit))
        .collect();
    fault::set(&path, summaries).unwrap();
    let c = Cache::open(&path, &CacheOptions::default()).unwrap();
    assert_eq!(c.recovery().regions_lost, 0);
    assert!(c.recovery().regions_scanned >= 6, "{:?}", c.recovery());
    assert_eq!(count_right(&c, 600, false), 600);
    drop(c);
    // Regions 2 and 3 whole, and a unit in the middle of region 5.
    let mid5 = g.data_start + 5 * g.region_size + g.region_size / 2;
    fault::set(
        &path,
        vec![
            Fault::unreadable(g.data_start + 2 * g.region_size..region_end(3)),
            Fault::unreadable(mid5..mid5 + g.unit as u64),
        ],
    )
    .unwrap();
    let c = Cache::open(&path, &CacheOptions::default()).unwrap();
    assert_eq!(c.recovery().regions_lost, 2, "{:?}", c.recovery());
    assert_eq!(c.stats().recovery_regions_lost, 2);
    let right = count_right(&c, 600, true);
    let per_region = (g.region_size / V as u64) as u32;
    assert!(
        right >= 600 - 2 * per_region - 2 && right < 600,
        "{right} of 600 read"
    );
    // The cache goes on: new puts are stored and read.
    for i in 10_000..10_100 {
        c.put(&key(i), &value_for(&key(i), 1, V), 0).unwrap();
    }
    c.flush().unwrap();
    fault::clear(&path).unwrap();
    for i in 10_000..10_100 {
        assert_eq!(
            version_of(&key(i), &try_get(&c, &key(i)).unwrap().unwrap()),
            Some(1)
        );
    }
}

/// A lost region's keys stay deleted: a key overwritten in a region that cannot be read at
/// open does not come back with its older value from an older region, since the region's
/// summary is read from its copy in the mirror area.
#[test]
fn a_lost_region_never_brings_back_an_older_value() {
    let dir = scratch();
    let path = dir.path().join("c");
    let c = open_file(&path, 16 << 20);
    let g = c.layout();
    c.put(b"overwritten", &value_for(b"overwritten", 1, V), 0)
        .unwrap();
    put_flushed(&c, 40); // region 0 fills; the rest goes on in the next ones
    c.put(b"overwritten", &value_for(b"overwritten", 2, V), 0)
        .unwrap();
    c.delete(&key(0)).unwrap();
    c.close().unwrap();
    drop(c);
    // Every region but the first, where the older value and k0 lie, tails included.
    let regions_end = g.data_start + g.region_count as u64 * g.region_size;
    let bad = g.data_start + g.region_size..regions_end;
    fault::set(&path, vec![Fault::unreadable(bad)]).unwrap();
    let c = Cache::open(&path, &CacheOptions::default()).unwrap();
    fault::clear(&path).unwrap();
    assert!(c.recovery().regions_lost >= 2, "{:?}", c.recovery());
    assert_eq!(
        try_get(&c, b"overwritten"),
        Ok(None),
        "the older value came back"
    );
    assert_eq!(try_get(&c, &key(0)), Ok(None), "a deleted value came back");
    assert!(count_right(&c, 40, false) >= 10, "region 0's values read");
}

/// One superblock copy that cannot be read: the cache opens from the other. Neither: the
/// open fails, saying so.
#[test]
fn a_superblock_that_cannot_be_read() {
    let dir = scratch();
    let path = dir.path().join("c");
    let c = open_file(&path, 16 << 20);
    put_flushed(&c, 20);
    let meta = c.layout().superblock_size as u64;
    c.close().unwrap();
    drop(c);
    for copy in 0..2 {
        fault::set(
            &path,
            vec![Fault::unreadable(copy * meta..(copy + 1) * meta)],
        )
        .unwrap();
        let c = Cache::open(&path, &CacheOptions::default()).unwrap();
        assert_eq!(count_right(&c, 20, false), 20, "copy {copy} unreadable");
        c.close().unwrap();
    }
    fault::set(&path, vec![Fault::unreadable(0..2 * meta)]).unwrap();
    let err = Cache::open(&path, &CacheOptions::default()).err().unwrap();
    fault::clear(&path).unwrap();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().contains("superblock"), "{err}");
    let c = Cache::open(&path, &CacheOptions::default()).unwrap();
    assert_eq!(count_right(&c, 20, false), 20);
}

/// A reclaim that cannot read the region it reclaims (its summary, its entries) drops the
/// region's entries instead of keeping them, and puts go on.
#[test]
fn a_reclaim_that_cannot_read_its_region_drops_it() {
    let dir = scratch();
    let path = dir.path().join("c");
    let c = open_file(&path, 16 << 20);
    let g = c.layout();
    put_flushed(&c, 150);
    // Read everything, so that a reclaim would keep it all.
    assert_eq!(count_right(&c, 150, false), 150);
    let data_end = g.data_start + g.region_count as u64 * g.region_size;
    fault::set(&path, vec![Fault::unreadable(g.data_start..data_end)]).unwrap();
    for i in 1000..1300 {
        c.put(&key(i), &value_for(&key(i), 1, V), 0).unwrap();
    }
    fault::clear(&path).unwrap();
    c.flush().unwrap();
    count_right(&c, 150, false);
    let newest = (1200..1300)
        .filter(|&i| try_get(&c, &key(i)).unwrap().is_some())
        .count();
    assert!(newest > 90, "the newest puts are there ({newest} of 100)");
    assert!(c.stats().io_errors > 0);
}

/// Many rounds of puts, overwrites, deletes, gets and flushes on a small cache (reclaims
/// all the time), with write and read faults at random offsets coming and going, then a
/// reopen with random unreadable ranges. Every get returns a value of the key no older than
/// the one current at the last successful flush, a miss, or an I/O error. An older value
/// may come back only where the open lost a region whose summary could not be read either
/// (see the README), and is counted.
#[test]
fn random_faults_never_return_wrong_bytes() {
    const KEYS: u64 = 80;
    let mut stale_after_loss = 0;
    for round in 0..24u64 {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (round + 1).wrapping_mul(0x1234_5678_9ABC_DEF1));
        let dir = scratch();
        let path = dir.path().join("c");
        let c = open_file(&path, 16 << 20);
        let g = c.layout();
        let size = g.data_start + g.region_count as u64 * g.region_size;
        // Per key: the version of its last put or delete that returned Ok, and the floor (the
        // newest version a successful flush vouched for): a get may return no older version.
        // Versions come from one counter per key, failed puts included. A flush vouches for
        // what changed since the flush before it; one that fails says that those changes may
        // be lost, and no later flush vouches for them.
        let mut next = vec![1u32; KEYS as usize];
        let mut latest = vec![0u32; KEYS as usize];
        let mut floor = vec![0u32; KEYS as usize];
        let mut changed = vec![false; KEYS as usize];
        let flushed = |ok: bool, latest: &[u32], floor: &mut [u32], changed: &mut [bool]| {
            if ok {
                for k in 0..KEYS as usize {
                    if changed[k] {
                        floor[k] = latest[k];
                    }
                }
            }
            changed.fill(false);
        };
        let mut faults: Vec<Fault> = Vec::new();
        let check = |c: &Cache, k: u64, floor: u32, latest: u32, lost: bool| -> bool {
            let kb = key(k as u32);
            match try_get(c, &kb) {
                Ok(Some(v)) => {
                    let version = version_of(&kb, &v)
                        .unwrap_or_else(|| panic!("round {round}: k{k}: wrong bytes"));
                    assert!(version <= latest, "round {round}: k{k}: from the future");
                    if version < floor {
                        assert!(lost, "round {round}: k{k}: v{version} under floor {floor}");
                        return true;
                    }
                    false
                }
                Ok(None) | Err(ErrorKind::Io) => false,
                Err(e) => panic!("round {round}: k{k}: {e:?}"),
            }
        };
        for _ in 0..900 {
            let k = rng.below(KEYS);
            let kb = key(k as u32);
            match rng.below(100) {
                0..=49 => {
                    let version = next[k as usize];
                    next[k as usize] += 1;
                    let len = 1 + rng.below(V as u64) as usize;
                    if c.put(&kb, &value_for(&kb, version, len), 0).is_ok() {
                        latest[k as usize] = version;
                        changed[k as usize] = true;
                    }
                }
                50..=54 => {
                    let version = next[k as usize];
                    next[k as usize] += 1;
                    match c.delete(&kb) {
                        Ok(()) => {
                            latest[k as usize] = version;
                            changed[k as usize] = true;
                        }
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(_) => {}
                    }
                }
                55..=57 => {
                    let ok = c.flush().is_ok();
                    flushed(ok, &latest, &mut floor, &mut changed);
                }
                58..=60 => {
                    // A fault comes, or all go.
                    if rng.below(3) == 0 {
                        faults.clear();
                    } else {
                        let at = rng.below(size) & !4095;
                        let len = 4096 * (1 + rng.below(256));
                        faults.push(match rng.below(2) {
                            0 => Fault::unreadable(at..at + len),
                            _ => Fault::unwritable(at..at + len, libc::EIO),
                        });
                    }
                    fault::set(&path, faults.clone()).unwrap();
                }
                _ => {
                    check(&c, k, floor[k as usize], latest[k as usize], false);
                }
            }
        }
        fault::clear(&path).unwrap();
        let ok = c.flush().is_ok();
        flushed(ok, &latest, &mut floor, &mut changed);
        let _ = c.close();
        drop(c);
        // Reopen with up to three unreadable ranges anywhere but the superblocks.
        let meta = 2 * g.superblock_size as u64;
        let reads: Vec<Fault> = (0..rng.below(4))
            .map(|_| {
                let at = meta + (rng.below(size - meta) & !4095);
                Fault::unreadable(at..at + 4096 * (1 + rng.below(1024)))
            })
            .collect();
        fault::set(&path, reads).unwrap();
        let c = Cache::open(&path, &CacheOptions::default())
            .unwrap_or_else(|e| panic!("round {round}: the open failed: {e}"));
        let lost = c.recovery().regions_lost > 0;
        for k in 0..KEYS {
            if check(&c, k, floor[k as usize], latest[k as usize], lost) {
                stale_after_loss += 1;
            }
        }
        fault::clear(&path).unwrap();
    }
    eprintln!("older values after a lost region: {stale_after_loss}");
}

/// The device: 256 MiB, 512-byte sectors, formatted, holding 2,000 flushed 64 KiB
/// values. None (with the reason printed) when not root.
fn device_with_2000_values(test: &str) -> Option<(tempfile::TempDir, LoopDevice, Cache)> {
    let (dir, lo) = loop_device(test, 256 << 20, 512)?;
    let c = format_device(Path::new(&lo.dev));
    put_flushed(&c, 2000);
    Some((dir, lo, c))
}

/// The scenario on a real device: a 256 MiB loop device holding 2,000 flushed 64 KiB
/// values is turned read-only under load from 4 threads, then writable again. While it is
/// read-only, flushed values all read, puts are refused (after the few already in memory),
/// and a flush fails; afterwards puts are stored again, and a reopen finds every flushed
/// value.
#[test]
fn a_device_turned_read_only_under_load_stops_only_writes() {
    let Some((_dir, lo, c)) =
        device_with_2000_values("a_device_turned_read_only_under_load_stops_only_writes")
    else {
        return;
    };
    let path = Path::new(&lo.dev);
    let read_only = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    // Puts accepted while the device was read-only, and in its last half second.
    let accepted_read_only = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    let late_accepted = AtomicU64::new(0);
    let late = AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let (c, read_only, stop) = (&c, &read_only, &stop);
            let (accepted_read_only, refused, late, late_accepted) =
                (&accepted_read_only, &refused, &late, &late_accepted);
            s.spawn(move || {
                let mut rng = Rng(0xABCD_EF01 + t as u64);
                let mut i = 0u32;
                while !stop.load(Relaxed) {
                    let j = rng.below(2000) as u32;
                    let v = try_get(c, &key(j)).unwrap().expect("a flushed value");
                    assert_eq!(version_of(&key(j), &v), Some(1));
                    let k = format!("t{t}-{i}").into_bytes();
                    i += 1;
                    match c.put(&k, &value_for(&k, 1, V), 0) {
                        Ok(()) if read_only.load(Relaxed) => {
                            accepted_read_only.fetch_add(1, Relaxed);
                            if late.load(Relaxed) {
                                late_accepted.fetch_add(1, Relaxed);
                            }
                        }
                        Ok(()) => {}
                        Err(e) => {
                            assert!(
                                matches!(e.kind(), ErrorKind::ReadOnly | ErrorKind::Io),
                                "{e}"
                            );
                            refused.fetch_add(1, Relaxed);
                        }
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(300));
        lo.blockdev("--setro");
        read_only.store(true, Relaxed);
        std::thread::sleep(Duration::from_millis(1000));
        late.store(true, Relaxed);
        let err = c.flush().expect_err("a flush to a read-only device fails");
        assert!(
            matches!(err.kind(), ErrorKind::ReadOnly | ErrorKind::Io),
            "{err}"
        );
        std::thread::sleep(Duration::from_millis(500));
        read_only.store(false, Relaxed);
        lo.blockdev("--setrw");
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Relaxed);
    });
    eprintln!(
        "{} puts accepted while read-only ({} in its last half second), {} refused",
        accepted_read_only.load(Relaxed),
        late_accepted.load(Relaxed),
        refused.load(Relaxed)
    );
    assert!(refused.load(Relaxed) > 0);
    assert_eq!(
        late_accepted.load(Relaxed),
        0,
        "puts refused while read-only"
    );
    assert_eq!(count_right(&c, 2000, false), 2000, "no flushed value lost");
    puts_resume_and_survive_a_reopen(c, path, 2000);
}

/// The other scenario: 32 MiB of a 256 MiB loop device (in its second quarter)
/// cannot be read. The cache opens, counts the regions it lost, and reads the rest.
#[test]
fn an_unreadable_range_of_a_device_costs_what_it_holds() {
    let Some((_dir, lo, c)) =
        device_with_2000_values("an_unreadable_range_of_a_device_costs_what_it_holds")
    else {
        return;
    };
    let path = Path::new(&lo.dev);
    let g = c.layout();
    c.close().unwrap();
    drop(c);
    let bad = (80u64 << 20)..(112 << 20);
    fault::set(path, vec![Fault::unreadable(bad.clone())]).unwrap();
    let c = Cache::open(path, &CacheOptions::default());
    fault::clear(path).unwrap();
    let c = c.unwrap();
    let lost = c.recovery().regions_lost as u64;
    let touched = (bad.end - 1 - g.data_start) / g.region_size
        - (bad.start - g.data_start) / g.region_size
        + 1;
    // A region whose trailer is in the range is lost at open; one whose entries only are
    // opens, and gets of those entries fail with DCACHE_IO_ERROR.
    assert!(lost >= 1 && lost <= touched, "{:?}", c.recovery());
    fault::set(path, vec![Fault::unreadable(bad)]).unwrap();
    let right = count_right(&c, 2000, true) as u64;
    fault::clear(path).unwrap();
    eprintln!(
        "{lost} regions of {} MiB lost; {right} of 2000 values read",
        g.region_size >> 20
    );
    let per_region = g.region_size / V as u64;
    assert!(
        right >= 2000 - touched * per_region && right < 2000,
        "{right}"
    );
}

/// A full file system (a 4 MiB tmpfs, as root): an atomic replace of a whole file fails with
/// DCACHE_NO_SPACE and leaves the old file as it was, with no temporary file behind; a cache
/// that does not fit fails the same way and leaves nothing.
#[test]
fn a_full_file_system_gives_no_space_and_keeps_the_old_file() {
    let test = "a_full_file_system_gives_no_space_and_keeps_the_old_file";
    if !common::root_or_skip(test) {
        return;
    }
    let dir = scratch();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIP: {test}: mount -t tmpfs failed");
        return;
    }
    let opts = dcache::DirectFileOptions::default();
    let file = mnt.join("object");
    let old = value_for(b"object", 1, 1 << 20);
    let result = std::panic::catch_unwind(|| {
        dcache::write_all(&file, &old, &opts).unwrap();
        let err = dcache::write_all(&file, &value_for(b"object", 2, 8 << 20), &opts)
            .expect_err("8 MiB do not fit in what is left of 4");
        assert_eq!(err.kind(), ErrorKind::NoSpace, "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), old, "the old file is intact");
        let names: Vec<_> = std::fs::read_dir(&mnt)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
        let err = Cache::open(
            &mnt.join("cache"),
            &CacheOptions::new().create(true).capacity(16 << 20),
        )
        .expect_err("a 16 MiB cache does not fit");
        assert_eq!(err.kind(), ErrorKind::NoSpace, "{err}");
        assert!(!mnt.join("cache").exists(), "nothing is left of it");
    });
    let _ = std::process::Command::new("umount").arg(&mnt).status();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

//! The cache on a real block device (a loop device, as root): a 4Kn device's alignment, and a
//! device that turns read-only while the cache has it open (`blockdev --setro`): flushes fail
//! with a clear error, gets go on working, nothing is dropped, and once the device is writable
//! again a flush stores everything. Skipped, with the reason printed, when not root.

mod common;
use common::{get, scratch};
use dcache::cache::{Cache, CacheOptions};
use std::path::Path;
use std::process::Command;

struct LoopDevice {
    dev: String,
}

impl LoopDevice {
    fn attach(image: &Path, size: u64, sector: u32) -> Option<LoopDevice> {
        std::fs::File::create(image).unwrap().set_len(size).unwrap();
        let out = Command::new("losetup")
            .args(["--find", "--show", "--sector-size", &sector.to_string()])
            .arg(image)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "SKIP: losetup failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(LoopDevice {
            dev: String::from_utf8(out.stdout).unwrap().trim().to_string(),
        })
    }

    fn blockdev(&self, flag: &str) {
        assert!(Command::new("blockdev")
            .args([flag, &self.dev])
            .status()
            .unwrap()
            .success());
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("blockdev")
            .args(["--setrw", &self.dev])
            .status();
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// A loop device of 64 MiB with this sector size, in a scratch directory; None (with the
/// reason printed) when not root or when losetup fails.
fn loop_device(test: &str, sector: u32) -> Option<(tempfile::TempDir, LoopDevice)> {
    if !root_or_skip(test) {
        return None;
    }
    let dir = scratch();
    let lo = LoopDevice::attach(&dir.path().join("img"), 64 << 20, sector)?;
    Some((dir, lo))
}

fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("SKIP: {test}: needs root for loop devices (CI runs as root)");
    }
    root
}

/// Every key k0..k{n} holds value(i).
fn assert_all_present(c: &Cache, n: u32, when: &str) {
    for i in 0..n {
        assert_eq!(
            get(c, format!("k{i}").as_bytes()).unwrap(),
            value(i),
            "k{i} {when}"
        );
    }
}

fn value(i: u32) -> Vec<u8> {
    (0..3000 + i as usize)
        .map(|j| (j as u32 ^ i.wrapping_mul(2654435761)) as u8)
        .collect()
}

#[test]
fn a_4kn_device_is_formatted_only_when_told_and_works() {
    let Some((_dir, lo)) = loop_device("a_4kn_device_is_formatted_only_when_told_and_works", 4096)
    else {
        return;
    };
    let path = Path::new(&lo.dev);
    let create = CacheOptions {
        create: true,
        ..Default::default()
    };
    let refused = Cache::open(path, &create)
        .err()
        .expect("a block device is never formatted by CREATE");
    assert_eq!(refused.kind(), dcache::ErrorKind::NotACache);
    let c = Cache::open(
        path,
        &CacheOptions {
            format: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(c.alignment(), 4096);
    assert!(c.is_direct_io());
    assert_eq!(c.stats().capacity, 64 << 20);
    for i in 0..500 {
        c.put(format!("k{i}").as_bytes(), &value(i), 0).unwrap();
    }
    c.close().unwrap();
    drop(c);
    let c = Cache::open(path, &CacheOptions::default()).unwrap();
    assert_all_present(&c, 500, "after reopen");
}

#[test]
fn a_device_turned_read_only_fails_flushes_loudly_and_recovers() {
    let Some((_dir, lo)) = loop_device(
        "a_device_turned_read_only_fails_flushes_loudly_and_recovers",
        512,
    ) else {
        return;
    };
    let path = Path::new(&lo.dev);
    let c = Cache::open(
        path,
        &CacheOptions {
            format: true,
            ..Default::default()
        },
    )
    .unwrap();
    for i in 0..200 {
        c.put(format!("k{i}").as_bytes(), &value(i), 0).unwrap();
    }
    c.flush().unwrap();
    lo.blockdev("--setro");
    // About 2.8 MB: a write-behind piece fails in the background, within one 4 MiB region.
    for i in 200..900 {
        c.put(format!("k{i}").as_bytes(), &value(i), 0).unwrap();
    }
    let err = c
        .flush()
        .expect_err("a flush to a read-only device must fail");
    assert!(
        matches!(
            err.kind(),
            dcache::ErrorKind::ReadOnly | dcache::ErrorKind::Io
        ),
        "{err}"
    );
    assert!(c.stats().io_errors > 0);
    assert_all_present(&c, 900, "while read-only");
    lo.blockdev("--setrw");
    c.flush().unwrap();
    c.close().unwrap();
    drop(c);
    let c = Cache::open(path, &CacheOptions::default()).unwrap();
    assert_all_present(&c, 900, "after reopen");
}

//! The cache on a real block device (a loop device, as root): a 4Kn device's alignment.
//! Skipped, with the reason printed, when not root. Device faults, on loop devices too, are
//! in `faults.rs`.

mod common;
use common::{format_device, get, loop_device};
use dcache::{Cache, CacheOptions};
use std::path::Path;

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
    let Some((_dir, lo)) = loop_device(
        "a_4kn_device_is_formatted_only_when_told_and_works",
        64 << 20,
        4096,
    ) else {
        return;
    };
    let path = Path::new(&lo.dev);
    let create = CacheOptions::new().create(true);
    let refused =
        Cache::open(path, &create).expect_err("a block device is never formatted by CREATE");
    assert_eq!(refused.kind(), dcache::ErrorKind::NotACache);
    let c = format_device(path);
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

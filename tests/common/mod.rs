//! What the integration tests share: a scratch directory on the work tree's file system (not
//! /tmp, which may be tmpfs, where O_DIRECT proves nothing), and a get that turns a miss into
//! None.
#![allow(dead_code)]

use dcache::cache::{Cache, CacheOptions, Fetched};
use std::path::{Path, PathBuf};

pub fn scratch() -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("test-scratch");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

/// The value under `key`, None on a miss; panics on any other failure.
pub fn get(c: &Cache, key: &[u8]) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; c.max_value_size() as usize];
    match c.get(key, &mut buf) {
        Ok(Fetched::Copied(n)) => Some(buf[..n].to_vec()),
        Ok(Fetched::TooSmall(n)) => panic!("a buffer of max_value_size is too small for {n} bytes"),
        Err(e) if e.kind() == dcache::ErrorKind::NotFound => None,
        Err(e) => panic!("get failed: {e}"),
    }
}

/// A new cache of `capacity` bytes at `path`.
pub fn create(path: &Path, capacity: u64) -> Cache {
    let opts = CacheOptions {
        create: true,
        capacity,
        ..Default::default()
    };
    Cache::open(path, &opts).unwrap()
}

/// Opens the existing cache at `path` with default options.
pub fn reopen(path: &Path) -> Cache {
    Cache::open(path, &CacheOptions::default()).unwrap()
}

/// A value that proves which key and version it belongs to.
pub fn value_for(key: &[u8], version: u32, len: usize) -> Vec<u8> {
    let seed = xxhash_rust::xxh3::xxh3_64_with_seed(key, version as u64);
    let mut v: Vec<u8> = (0..len)
        .map(|i| (seed.rotate_left((i % 64) as u32) as u8) ^ (i as u8))
        .collect();
    if len >= 12 {
        v[..4].copy_from_slice(&version.to_le_bytes());
        v[4..12].copy_from_slice(&seed.to_le_bytes());
    }
    v
}

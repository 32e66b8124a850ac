//! What the engine's unit tests share: caches on real files of the work tree's file system
//! (not /tmp, which may be tmpfs, where O_DIRECT proves nothing), self-describing values, and
//! crash images.

use super::{Cache, CacheOptions, Fetched};
use crate::error::ErrorKind;
use std::path::{Path, PathBuf};

pub const MIB: u64 = 1 << 20;

pub fn scratch() -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("test-scratch");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

/// A new cache of `capacity` bytes at `dir/name`.
pub fn create(dir: &Path, name: &str, capacity: u64) -> (PathBuf, Cache) {
    let path = dir.join(name);
    let opts = CacheOptions {
        create: true,
        capacity,
        ..Default::default()
    };
    let cache = Cache::open(&path, &opts).unwrap();
    (path, cache)
}

pub fn reopen(path: &Path) -> Cache {
    Cache::open(path, &CacheOptions::default()).unwrap()
}

/// A value that says which key and version it is, so that a wrong one is seen: its first
/// 16 bytes are a hash of the key and the version, the rest a pattern seeded by them.
pub fn value(key: &[u8], version: u64, len: usize) -> Vec<u8> {
    let seed = xxhash_rust::xxh3::xxh3_64_with_seed(key, version);
    let mut v: Vec<u8> = (0..len)
        .map(|i| (seed >> ((i % 8) * 8)) as u8 ^ (i / 8) as u8)
        .collect();
    let tag = [seed.to_le_bytes(), version.to_le_bytes()].concat();
    let n = tag.len().min(len);
    v[..n].copy_from_slice(&tag[..n]);
    v
}

/// The version `v` is of `key`, if it is one of `value`'s, whole and unchanged.
pub fn version_of(key: &[u8], v: &[u8]) -> Option<u64> {
    if v.len() < 16 {
        return None;
    }
    let version = u64::from_le_bytes(v[8..16].try_into().unwrap());
    (value(key, version, v.len()) == v).then_some(version)
}

/// Puts version 1 of the keys `k{i}` for `i` in `keys`, each `len` bytes.
pub fn put_range(c: &Cache, keys: std::ops::Range<usize>, len: usize) {
    for i in keys {
        let key = format!("k{i}").into_bytes();
        c.put(&key, &value(&key, 1, len), 0).unwrap();
    }
}

/// The value under `key`, None on a miss; panics on any other failure.
pub fn get(c: &Cache, key: &[u8]) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; c.max_value_size() as usize];
    match c.get(key, &mut buf) {
        Ok(Fetched::Copied(n)) => Some(buf[..n].to_vec()),
        Ok(Fetched::TooSmall(n)) => panic!("a buffer of max_value_size is too small for {n}"),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => panic!("get failed: {e}"),
    }
}

/// What the device holds now, copied to `dir/name`: what a reopen after a crash at this
/// moment would find (the cache at `path` is open, so its superblock says it is in use).
pub fn crash_image(path: &Path, dir: &Path, name: &str) -> PathBuf {
    let image = dir.join(name);
    std::fs::copy(path, &image).unwrap();
    image
}

/// Writes `bytes` at `offset` of the file at `path`, as damage on the device would.
pub fn damage(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
    f.sync_all().unwrap();
}

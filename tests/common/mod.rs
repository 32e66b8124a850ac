//! What the integration tests share: a scratch directory on the work tree's file system (not
//! /tmp, which may be tmpfs, where O_DIRECT proves nothing), and a get that turns a miss into
//! None.
#![allow(dead_code)]

use dcache::{Cache, CacheOptions, Fetched};
use std::path::{Path, PathBuf};
use std::process::Command;

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
    let opts = CacheOptions::new().create(true).capacity(capacity);
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

/// A loop device over an image file, detached when dropped.
pub struct LoopDevice {
    pub dev: String,
}

impl LoopDevice {
    pub fn attach(image: &Path, size: u64, sector: u32) -> Option<LoopDevice> {
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

    pub fn blockdev(&self, flag: &str) {
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

/// A loop device of `size` bytes with this sector size, in a scratch directory; None (with the
/// reason printed) when not root or when losetup fails.
pub fn loop_device(test: &str, size: u64, sector: u32) -> Option<(tempfile::TempDir, LoopDevice)> {
    if !root_or_skip(test) {
        return None;
    }
    let dir = scratch();
    let lo = LoopDevice::attach(&dir.path().join("img"), size, sector)?;
    Some((dir, lo))
}

pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("SKIP: {test}: needs root for loop devices (CI runs as root)");
    }
    root
}

/// Formats the block device at `path` (`format`: a device is never formatted otherwise).
pub fn format_device(path: &Path) -> Cache {
    let opts = CacheOptions::new().format(true);
    Cache::open(path, &opts).unwrap()
}

/// A small, fast, seedable generator (xorshift64*) for the fuzz targets and the soak run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 for 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// An index below `n` (0 for 0).
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }
}

/// A value of at least 16 bytes that says which key and (64-bit) version it is.
pub fn value_of(key: &[u8], version: u64, len: usize) -> Vec<u8> {
    let seed = xxhash_rust::xxh3::xxh3_64_with_seed(key, version);
    let mut v: Vec<u8> = (0..len.max(16))
        .map(|i| (seed >> (i % 57)) as u8 ^ i as u8)
        .collect();
    v[..8].copy_from_slice(&seed.to_le_bytes());
    v[8..16].copy_from_slice(&version.to_le_bytes());
    v
}

/// The version of `key` that `v` is, whole and unchanged, if it is one.
pub fn version_in(key: &[u8], v: &[u8]) -> Option<u64> {
    let version = u64::from_le_bytes(v.get(8..16)?.try_into().unwrap());
    (value_of(key, version, v.len()) == v).then_some(version)
}

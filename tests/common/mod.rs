//! What the integration tests share: a scratch directory on the work tree's file system (not
//! /tmp, which may be tmpfs, where O_DIRECT proves nothing), and a get that turns a miss into
//! None.
#![allow(dead_code)]

use dcache::cache::{Cache, Fetched};
use std::path::PathBuf;

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

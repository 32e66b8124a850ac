//! Whole files, as an object store over a directory uses them: an atomic replace (a
//! temporary file in the same directory, synced, then renamed over the target, and the
//! directory synced) and a read of the whole content into one aligned buffer.

use super::buffer::AlignedBuf;
use super::file::{remove_quietly, DirectFile, OpenOptions};
use super::sys;
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

fn temporary_sibling(path: &Path) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{} does not name a file", path.display())))?;
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(format!(
        ".tmp.{}.{}.{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        sys::random_u64() & 0xffff_ffff
    ));
    Ok(path.with_file_name(tmp))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces `path` with `data` atomically: readers see the old content or the new, whole.
///
/// ```
/// let path = std::env::temp_dir().join(format!("dcache-doc-whole-{}", std::process::id()));
/// let opts = dcache::DirectFileOptions::default();
/// dcache::write_all(&path, b"all of it", &opts).unwrap();
/// let (buf, len) = dcache::read_all(&path, &opts).unwrap();
/// assert_eq!(&buf.as_slice()[..len], b"all of it");
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn write_all(path: &Path, data: &[u8], opts: &OpenOptions) -> Result<()> {
    if opts.read_only {
        return Err(Error::invalid("write_all with a read-only option"));
    }
    let tmp = temporary_sibling(path)?;
    let file_opts = OpenOptions {
        create_new: true,
        create: false,
        truncate: false,
        ..opts.clone()
    };
    let result = (|| {
        let file = DirectFile::open(&tmp, &file_opts)?;
        file.pwrite(data, 0)?;
        sys::fsync(file.fd()).map_err(|e| Error::os(format!("fsync {}", tmp.display()), e))?;
        drop(file);
        fs::rename(&tmp, path)
            .map_err(|e| Error::os(format!("rename {} to {}", tmp.display(), path.display()), e))?;
        let dir = parent_dir(path);
        let dir_file = fs::File::open(dir)
            .map_err(|e| Error::os(format!("open directory {}", dir.display()), e))?;
        dir_file
            .sync_all()
            .map_err(|e| Error::os(format!("fsync directory {}", dir.display()), e))
    })();
    if result.is_err() {
        remove_quietly(&tmp);
    }
    result
}

/// Reads the whole of `path` into an aligned buffer (laid out so that a C caller can free it
/// knowing only its length). Returns the buffer and the content length.
pub fn read_all(path: &Path, opts: &OpenOptions) -> Result<(AlignedBuf, usize)> {
    let file_opts = OpenOptions {
        read_only: true,
        create: false,
        create_new: false,
        truncate: false,
        ..opts.clone()
    };
    let file = DirectFile::open(path, &file_opts)?;
    let len = usize::try_from(file.size()).map_err(|_| {
        Error::new(
            crate::ErrorKind::TooLarge,
            format!("{} is too large to read", path.display()),
        )
    })?;
    let mut buf = AlignedBuf::for_export(len)?;
    let got = file.pread(&mut buf.as_mut_slice()[..len], 0)?;
    if got == len {
        return Ok((buf, len));
    }
    // The file shrank while it was read: hand back exactly what was there.
    let mut exact = AlignedBuf::for_export(got)?;
    exact.as_mut_slice()[..got].copy_from_slice(&buf.as_slice()[..got]);
    Ok((exact, got))
}

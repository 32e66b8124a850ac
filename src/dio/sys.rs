//! Thin, retrying wrappers over the system calls the I/O layer uses. Every loop here retries
//! EINTR and short transfers, so callers see a short read only at end of file.

use super::fault::{self, Op};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(last_error())
    } else {
        Ok(())
    }
}

/// Calls `step(done)` (one pread or pwrite of the rest, from `done` bytes on) until `len`
/// bytes have moved, retrying EINTR and short transfers; stops early when a step moves 0
/// bytes or, with `align`, when a short count leaves an unaligned position: with O_DIRECT
/// that can only be end of file, and going on from there would be refused.
fn transfer(len: usize, align: usize, mut step: impl FnMut(usize) -> isize) -> io::Result<usize> {
    let mut done = 0;
    while done < len && done % align == 0 {
        let n = step(done);
        if n < 0 {
            let err = last_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if n == 0 {
            break;
        }
        done += n as usize;
    }
    Ok(done)
}

/// Reads until `buf` is full or end of file; returns the bytes read.
pub fn pread_full(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    offset: u64,
    align: usize,
) -> io::Result<usize> {
    let (ptr, len) = (buf.as_mut_ptr(), buf.len());
    fault::check(fd, Op::Read, offset, len as u64)?;
    fault::note_blocking_read();
    transfer(len, align, |done| {
        // SAFETY: [ptr + done, ptr + len) lies inside `buf`, which is writable.
        unsafe {
            libc::pread(
                fd.as_raw_fd(),
                ptr.add(done).cast(),
                len - done,
                (offset + done as u64) as libc::off_t,
            )
        }
    })
}

/// The most parts `preadv_full` takes.
pub const MAX_PARTS: usize = 4;

/// Reads consecutive bytes into `parts`, in order, until they are full or end of file, with
/// one preadv a step; returns the bytes read. At most `MAX_PARTS` parts.
pub fn preadv_full(
    fd: BorrowedFd<'_>,
    parts: &mut [&mut [u8]],
    offset: u64,
    align: usize,
) -> io::Result<usize> {
    assert!(parts.len() <= MAX_PARTS, "too many parts for one preadv");
    let len = parts.iter().map(|p| p.len()).sum();
    fault::check(fd, Op::Read, offset, len as u64)?;
    fault::note_blocking_read();
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MAX_PARTS];
    transfer(len, align, |done| {
        // The parts not yet filled, the first one from where the last step stopped.
        let (mut n, mut skip) = (0, done);
        for p in parts.iter_mut() {
            if skip >= p.len() {
                skip -= p.len();
                continue;
            }
            // SAFETY: skip < p.len(), so the pointer stays inside the part.
            iov[n] = libc::iovec {
                iov_base: unsafe { p.as_mut_ptr().add(skip) }.cast(),
                iov_len: p.len() - skip,
            };
            skip = 0;
            n += 1;
        }
        // SAFETY: each of the n iovecs describes writable memory inside one part.
        unsafe {
            libc::preadv(
                fd.as_raw_fd(),
                iov.as_ptr(),
                n as libc::c_int,
                (offset + done as u64) as libc::off_t,
            )
        }
    })
}

/// Writes all of `buf`; a device that accepts nothing more is full (ENOSPC).
pub fn pwrite_full(fd: BorrowedFd<'_>, buf: &[u8], offset: u64) -> io::Result<()> {
    let (ptr, len) = (buf.as_ptr(), buf.len());
    fault::check(fd, Op::Write, offset, len as u64)?;
    let written = transfer(len, 1, |done| {
        // SAFETY: [ptr + done, ptr + len) lies inside `buf`.
        unsafe {
            libc::pwrite(
                fd.as_raw_fd(),
                ptr.add(done).cast(),
                len - done,
                (offset + done as u64) as libc::off_t,
            )
        }
    })?;
    if written < len {
        return Err(io::Error::from_raw_os_error(libc::ENOSPC));
    }
    Ok(())
}

pub fn fdatasync(fd: BorrowedFd<'_>) -> io::Result<()> {
    fault::check(fd, Op::Sync, 0, 0)?;
    loop {
        // SAFETY: plain syscall on a valid descriptor.
        match check(unsafe { libc::fdatasync(fd.as_raw_fd()) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

pub fn fsync(fd: BorrowedFd<'_>) -> io::Result<()> {
    fault::check(fd, Op::Sync, 0, 0)?;
    loop {
        // SAFETY: plain syscall on a valid descriptor.
        match check(unsafe { libc::fsync(fd.as_raw_fd()) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

pub fn ftruncate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    loop {
        // SAFETY: plain syscall on a valid descriptor.
        match check(unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Reserves `len` bytes from offset 0. `Unsupported` where the file system cannot (ramfs).
pub fn fallocate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    loop {
        // SAFETY: plain syscall on a valid descriptor.
        match check(unsafe { libc::fallocate(fd.as_raw_fd(), 0, 0, len as libc::off_t) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: stat is plain old data; fstat fills it on success.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

pub fn is_block_device(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFBLK
}

/// True when the file has no data at all, only holes (a new or `truncate -s` file).
pub fn has_no_data(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: plain syscall on a valid descriptor.
    let pos = unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_DATA) };
    if pos >= 0 {
        return Ok(false);
    }
    let err = last_error();
    match err.raw_os_error() {
        Some(libc::ENXIO) => Ok(true),
        // The file system cannot tell: assume data, which is the safe answer.
        Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => Ok(false),
        _ => Err(err),
    }
}

/// `flock` without blocking. Ok(false) when another open file description holds it.
pub fn try_flock(fd: BorrowedFd<'_>, exclusive: bool) -> io::Result<bool> {
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    } | libc::LOCK_NB;
    loop {
        // SAFETY: plain syscall on a valid descriptor.
        match check(unsafe { libc::flock(fd.as_raw_fd(), op) }) {
            Ok(()) => return Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

// _IOR(0x12, 114, size_t): not exported by the libc crate.
const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;

/// A block device's size in bytes.
pub fn block_device_size(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), BLKGETSIZE64 as _, &mut size) })?;
    Ok(size)
}

// _IO(0x12, 94): not exported by the libc crate.
const BLKROGET: libc::c_ulong = 0x125e;

/// Whether a block device is write-protected.
pub fn block_device_read_only(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut ro: libc::c_int = 0;
    // SAFETY: BLKROGET writes one int.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), BLKROGET as _, &mut ro) })?;
    Ok(ro != 0)
}

/// A block device's logical and physical sector sizes.
pub fn block_device_sectors(fd: BorrowedFd<'_>) -> io::Result<(u32, u32)> {
    let mut logical: libc::c_int = 0;
    let mut physical: libc::c_uint = 0;
    // SAFETY: BLKSSZGET writes an int, BLKPBSZGET an unsigned int.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::BLKSSZGET as _, &mut logical) })?;
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::BLKPBSZGET as _, &mut physical) })?;
    Ok((logical.max(0) as u32, physical))
}

/// What `statx(STATX_DIOALIGN)` says: None when the kernel or file system does not answer,
/// Some((memory, offset)) otherwise, with (0, 0) meaning "no direct I/O on this file".
pub fn statx_dio_align(fd: BorrowedFd<'_>) -> Option<(u32, u32)> {
    // SAFETY: statx is plain old data; the kernel fills it on success.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let ret = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            &mut stx,
        )
    };
    if ret != 0 || stx.stx_mask & libc::STATX_DIOALIGN == 0 {
        return None;
    }
    Some((stx.stx_dio_mem_align, stx.stx_dio_offset_align))
}

/// Random bytes from the kernel.
pub fn random_u64() -> u64 {
    let mut v = [0u8; 8];
    loop {
        // SAFETY: getrandom writes at most 8 bytes into v.
        let n = unsafe { libc::getrandom(v.as_mut_ptr().cast(), v.len(), 0) };
        if n == 8 {
            return u64::from_ne_bytes(v);
        }
    }
}

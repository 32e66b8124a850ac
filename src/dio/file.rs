//! A file or block device read and written at any offset and length while bypassing the page
//! cache. The aligned middle of a transfer goes straight between the caller's memory and the
//! device; unaligned edges go through a per-thread bounce buffer, and writes to partial blocks
//! are read-modify-write under a lock on those blocks.

use super::align::{self, round_down, round_up, Alignment, Detected};
use super::buffer::with_bounce;
use super::range_lock::RangeLock;
use super::sys;
use crate::error::{Error, ErrorKind, Remedy, Result};
use crate::log;
use parking_lot::RwLock;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How a file is opened: shared by the file layer and the cache.
///
/// ```
/// let path = std::env::temp_dir().join(format!("dcache-doc-iomode-{}", std::process::id()));
/// let opts = dcache::CacheOptions::new().create(true).capacity(16 << 20)
///     .io_mode(dcache::IoMode::Auto); // O_DIRECT, or buffered with one warning (tmpfs)
/// let cache = dcache::Cache::open(&path, &opts).unwrap();
/// println!("O_DIRECT: {}", cache.is_direct_io());
/// # drop(cache); std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoMode {
    /// O_DIRECT where the file system takes it, else buffered with one logged warning.
    Auto,
    /// O_DIRECT or fail with `ErrorKind::Unsupported`.
    Direct,
    /// Ordinary page-cache I/O.
    Buffered,
}

/// How [`DirectFile::open`] opens a file or block device (`dcache::DirectFileOptions`).
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// O_DIRECT or not (default [`IoMode::Auto`]).
    pub io_mode: IoMode,
    /// Create a missing file.
    pub create: bool,
    /// Create, failing if the path exists (O_EXCL).
    pub create_new: bool,
    /// Empty an existing file.
    pub truncate: bool,
    /// Open for reads only.
    pub read_only: bool,
    /// O_DSYNC: each write is durable when it returns.
    pub sync_writes: bool,
    /// Overrides detection; a power of two of at least 512.
    pub alignment: Option<usize>,
    /// Transfers shorter than this go through the page cache.
    pub min_io_size: u64,
    /// Permission bits for a created file.
    pub mode: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            io_mode: IoMode::Auto,
            create: false,
            create_new: false,
            truncate: false,
            read_only: false,
            sync_writes: false,
            alignment: None,
            min_io_size: 0,
            mode: 0o644,
        }
    }
}

/// Transfers whose aligned extent is at most this go through the bounce buffer in one system
/// call, which beats splitting them into several device round trips.
const SMALL_TRANSFER: u64 = 256 << 10;
/// Bounce windows of large unaligned transfers.
const BOUNCE_CHUNK: usize = 4 << 20;
/// Direct transfers are issued in pieces of at most this.
const DIRECT_CHUNK: usize = 64 << 20;

/// A file or block device read and written with O_DIRECT at any offset and length: aligned
/// parts go straight between the device and memory, unaligned edges through a bounce buffer.
/// Safe to share between threads.
///
/// ```
/// use dcache::{DirectFile, DirectFileOptions};
/// let path = std::env::temp_dir().join(format!("dcache-doc-file-{}", std::process::id()));
/// let opts = DirectFileOptions { create: true, ..Default::default() };
/// let f = DirectFile::open(&path, &opts).unwrap();
/// f.pwrite(b"hello, disk", 1000).unwrap(); // any offset, any length
/// let mut back = [0u8; 11];
/// assert_eq!(f.pread(&mut back, 1000).unwrap(), 11);
/// assert_eq!(&back, b"hello, disk");
/// # drop(f); std::fs::remove_file(&path).unwrap();
/// ```
pub struct DirectFile {
    path: PathBuf,
    fd: OwnedFd,
    /// A buffered descriptor for transfers under `min_io_size`, when `fd` is direct.
    small_fd: Option<OwnedFd>,
    direct: bool,
    alignment: Alignment,
    block_device: bool,
    read_only: bool,
    min_io_size: u64,
    /// The logical size: what a buffered writer would have left. Writes that extend the file
    /// hold it exclusively, so that trimming an aligned tail never cuts another write.
    size: RwLock<u64>,
    /// Blocks under read-modify-write.
    blocks: RangeLock,
}

fn open_raw(path: &Path, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    loop {
        // SAFETY: c_path is NUL-terminated; open returns a new descriptor or -1.
        let fd = unsafe {
            libc::open(
                c_path.as_ptr(),
                flags | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if fd >= 0 {
            // SAFETY: fd is a new descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn checked_end(offset: u64, len: usize) -> Result<u64> {
    offset
        .checked_add(len as u64)
        .filter(|&end| end <= i64::MAX as u64 && len <= isize::MAX as usize)
        .ok_or_else(|| {
            Error::invalid(format!(
                "offset {offset} + length {len} is past the largest file offset"
            ))
        })
}

fn is_aligned_ptr(ptr: *const u8, align: usize) -> bool {
    (ptr as usize).is_multiple_of(align)
}

/// The flags of the plain open, and of the O_DIRECT reopen (without creation or truncation).
struct OpenFlags {
    on_open: libc::c_int,
    on_reopen: libc::c_int,
}

fn check_options(opts: &OpenOptions) -> Result<()> {
    if let Some(a) = opts.alignment {
        if !align::valid_explicit(a as u64) {
            return Err(Error::invalid(format!(
                "alignment {a} is not a power of two of at least 512"
            )));
        }
    }
    if opts.read_only && (opts.create || opts.create_new || opts.truncate) {
        return Err(Error::invalid("a read-only open cannot create or truncate"));
    }
    Ok(())
}

fn open_flags(opts: &OpenOptions) -> OpenFlags {
    let access = if opts.read_only {
        libc::O_RDONLY
    } else {
        libc::O_RDWR
    };
    let sync = if opts.sync_writes { libc::O_DSYNC } else { 0 };
    let mut on_open = access | sync;
    if opts.create {
        on_open |= libc::O_CREAT;
    }
    if opts.create_new {
        on_open |= libc::O_CREAT | libc::O_EXCL;
    }
    if opts.truncate {
        on_open |= libc::O_TRUNC;
    }
    OpenFlags {
        on_open,
        on_reopen: access | sync,
    }
}

/// Refuses what is neither a regular file nor a block device, and a read-only device
/// opened for writing.
fn check_kind(
    path: &Path,
    plain: &OwnedFd,
    st: &libc::stat,
    block_device: bool,
    read_only: bool,
) -> Result<()> {
    if !block_device && st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::invalid(format!(
            "{} is neither a regular file nor a block device",
            path.display()
        )));
    }
    if block_device && !read_only {
        let ro = sys::block_device_read_only(plain.as_fd())
            .map_err(|e| Error::os(format!("BLKROGET {}", path.display()), e))?;
        if ro {
            return Err(Error::new(
                ErrorKind::ReadOnly,
                format!(
                    "{} is a read-only device: open it read-only",
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The descriptors an open ends with, and what the file said of its alignment.
struct Opened {
    fd: OwnedFd,
    /// The plain descriptor kept for small transfers (with `min_io_size`).
    small_fd: Option<OwnedFd>,
    direct: bool,
    detected: Detected,
}

impl Opened {
    fn buffered(fd: OwnedFd, detected: Detected) -> Opened {
        Opened {
            fd,
            small_fd: None,
            direct: false,
            detected,
        }
    }
}

impl DirectFile {
    /// Opens `path` as `opts` say: O_DIRECT where it can (or must), with the alignment the
    /// device asks for.
    pub fn open(path: &Path, opts: &OpenOptions) -> Result<DirectFile> {
        check_options(opts)?;
        let flags = open_flags(opts);
        // Open once without O_DIRECT, so that creation, truncation and permission errors come
        // from an ordinary open; then reopen the same inode with O_DIRECT.
        let plain = open_raw(path, flags.on_open, opts.mode)
            .map_err(|e| Error::os(format!("open {}", path.display()), e))?;
        let st = sys::fstat(plain.as_fd())
            .map_err(|e| Error::os(format!("fstat {}", path.display()), e))?;
        let block_device = sys::is_block_device(&st);
        check_kind(path, &plain, &st, block_device, opts.read_only)?;
        let opened = Self::choose_io(path, plain, flags.on_reopen, block_device, opts)?;
        let alignment = match (opts.alignment, opened.detected) {
            (Some(a), _) => Alignment::uniform(a),
            (None, Detected::Aligned(a, _)) => a,
            (None, Detected::NoDirectIo) => Alignment::uniform(align::FALLBACK_ALIGNMENT),
        };
        let size = if block_device {
            sys::block_device_size(opened.fd.as_fd())
                .map_err(|e| Error::os(format!("BLKGETSIZE64 {}", path.display()), e))?
        } else {
            st.st_size as u64
        };
        Ok(DirectFile {
            path: path.to_path_buf(),
            fd: opened.fd,
            small_fd: opened.small_fd,
            direct: opened.direct,
            alignment,
            block_device,
            read_only: opts.read_only,
            min_io_size: opts.min_io_size,
            size: RwLock::new(size),
            blocks: RangeLock::default(),
        })
    }

    /// The descriptors for the I/O mode asked, falling back to buffered I/O where O_DIRECT
    /// is refused and the mode allows it (with a warning: the fallback is always visible).
    fn choose_io(
        path: &Path,
        plain: OwnedFd,
        reopen_flags: libc::c_int,
        block_device: bool,
        opts: &OpenOptions,
    ) -> Result<Opened> {
        if opts.io_mode == IoMode::Buffered {
            let detected = align::detect(plain.as_fd(), block_device);
            return Ok(Opened::buffered(plain, detected));
        }
        match Self::reopen_direct(path, &plain, reopen_flags, block_device) {
            Ok((fd, detected)) => Ok(Opened {
                fd,
                small_fd: (opts.min_io_size > 0).then_some(plain),
                direct: true,
                detected,
            }),
            Err(reason) if opts.io_mode == IoMode::Direct => Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{}: O_DIRECT is refused here ({reason}) and direct I/O was required",
                    path.display()
                ),
            )
            .with_remedy(Remedy::AllowBuffered)),
            Err(reason) => {
                log::warn(&format!(
                    "{}: O_DIRECT is refused here ({reason}); falling back to buffered I/O \
                     through the page cache",
                    path.display()
                ));
                Ok(Opened::buffered(plain, Detected::NoDirectIo))
            }
        }
    }

    /// Opens the inode behind `plain` again with O_DIRECT, and checks that the file system
    /// really takes it: statx may say it does not, and some refuse only the first transfer.
    fn reopen_direct(
        path: &Path,
        plain: &OwnedFd,
        flags: libc::c_int,
        block_device: bool,
    ) -> std::result::Result<(OwnedFd, Detected), String> {
        let proc_path = PathBuf::from(format!("/proc/self/fd/{}", plain.as_raw_fd()));
        let reopen_path = if proc_path.exists() {
            proc_path.as_path()
        } else {
            path
        };
        let fd = match open_raw(reopen_path, flags | libc::O_DIRECT, 0) {
            Ok(fd) => fd,
            Err(e) => return Err(format!("open with O_DIRECT: {e}")),
        };
        let detected = align::detect(fd.as_fd(), block_device);
        let unit = match detected {
            Detected::NoDirectIo => return Err("statx reports no direct I/O support".into()),
            Detected::Aligned(a, _) => a.offset.max(a.memory),
        };
        let probe = with_bounce(unit, unit, |buf| sys::pread_full(fd.as_fd(), buf, 0, unit))
            .map_err(|e| e.to_string())?;
        match probe {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                Err(format!("first aligned read: {e}"))
            }
            _ => Ok((fd, detected)),
        }
    }

    /// The path it was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether transfers bypass the page cache (O_DIRECT).
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// What its O_DIRECT transfers must respect (the file layer does it for the caller).
    pub fn alignment(&self) -> Alignment {
        self.alignment
    }

    /// Whether it is a block device rather than a file.
    pub fn is_block_device(&self) -> bool {
        self.block_device
    }

    /// Whether it was opened for reads only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Its file descriptor, for calls of the caller's own.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The size a buffered writer would see: bytes for a file, capacity for a block device.
    pub fn size(&self) -> u64 {
        *self.size.read()
    }

    fn io_error(&self, what: &str, offset: u64, err: io::Error) -> Error {
        let hint = if err.raw_os_error() == Some(libc::EINVAL) && self.direct {
            format!(
                " (O_DIRECT needs memory aligned to {} and offsets to {})",
                self.alignment.memory, self.alignment.offset
            )
        } else {
            String::new()
        };
        let context = format!("{what} {} at offset {offset}{hint}", self.path.display());
        // A write-protected block device (blockdev --setro) answers writes with EPERM.
        if self.block_device && err.raw_os_error() == Some(libc::EPERM) {
            return Error::new(
                ErrorKind::ReadOnly,
                format!("{context}: the device is read-only ({err})"),
            );
        }
        Error::os(context, err)
    }

    /// True when this transfer goes through the page cache.
    fn buffered(&self, len: usize) -> bool {
        !self.direct || (len as u64) < self.min_io_size
    }

    fn buffered_fd(&self) -> BorrowedFd<'_> {
        self.small_fd.as_ref().unwrap_or(&self.fd).as_fd()
    }

    /// Reads up to `buf.len()` bytes at `offset`; fewer only at end of file.
    pub fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        // Nothing asked, nothing done, whatever the offset.
        if buf.is_empty() {
            return Ok(0);
        }
        checked_end(offset, buf.len())?;
        if self.buffered(buf.len()) {
            return sys::pread_full(self.buffered_fd(), buf, offset, 1)
                .map_err(|e| self.io_error("pread", offset, e));
        }
        let a = self.alignment.offset;
        let extent = round_up(offset + buf.len() as u64, a) - round_down(offset, a);
        if extent <= SMALL_TRANSFER && !self.is_direct_able(buf.as_ptr(), offset, buf.len()) {
            return self.read_bounced(buf, offset);
        }
        let mut done = 0;
        while done < buf.len() {
            let pos = offset + done as u64;
            let rest = &mut buf[done..];
            // Direct only for whole blocks: a sub-block tail goes through the bounce buffer.
            let (want, got) = if self.is_direct_able(
                rest.as_ptr(),
                pos,
                round_down(rest.len() as u64, a) as usize,
            ) {
                let n = round_down(rest.len().min(DIRECT_CHUNK) as u64, a) as usize;
                (n, self.read_aligned(&mut rest[..n], pos)?)
            } else {
                let n = self.bounce_window(pos, rest.len());
                (n, self.read_bounced(&mut rest[..n], pos)?)
            };
            done += got;
            if got < want {
                break; // end of file
            }
        }
        Ok(done)
    }

    /// Whether `buf` may receive a direct transfer: its address meets the memory alignment
    /// (anything does in buffered mode).
    pub fn is_memory_aligned(&self, buf: &[u8]) -> bool {
        !self.direct || is_aligned_ptr(buf.as_ptr(), self.alignment.memory)
    }

    /// Reads consecutive bytes from `offset` into `parts`, in order; fewer than they hold only
    /// at end of file. One system call when every part can take a direct transfer (aligned
    /// memory, lengths and offset) or the transfer is buffered; otherwise part by part.
    pub fn pread_vectored(&self, parts: &mut [&mut [u8]], offset: u64) -> Result<usize> {
        if let [one] = parts {
            return self.pread(one, offset);
        }
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total == 0 {
            return Ok(0);
        }
        checked_end(offset, total)?;
        let buffered = self.buffered(total);
        let mut at = offset;
        let one_call = parts.len() <= sys::MAX_PARTS
            && (buffered
                || parts.iter().all(|p| {
                    let ok = p.is_empty() || self.is_direct_able(p.as_ptr(), at, p.len());
                    at += p.len() as u64;
                    ok
                }));
        if one_call {
            let (fd, align) = if buffered {
                (self.buffered_fd(), 1)
            } else {
                (self.fd(), self.alignment.offset)
            };
            return sys::preadv_full(fd, parts, offset, align)
                .map_err(|e| self.io_error("preadv", offset, e));
        }
        let mut done = 0;
        for p in parts.iter_mut() {
            let n = self.pread(p, offset + done as u64)?;
            done += n;
            if n < p.len() {
                break;
            }
        }
        Ok(done)
    }

    /// Writes all of `data` at `offset`. The file ends up exactly as a buffered write would
    /// leave it, size included.
    pub fn pwrite(&self, data: &[u8], offset: u64) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let end = checked_end(offset, data.len())?;
        if self.read_only {
            return Err(Error::new(
                ErrorKind::ReadOnly,
                format!("{} was opened read-only", self.path.display()),
            ));
        }
        let a = self.alignment.offset;
        let (first, last) = (round_down(offset, a), round_up(end, a));
        // Lock the blocks for every write, buffered ones included: a buffered write of bytes
        // in a block that a direct writer is read-modify-writing would otherwise be lost.
        let _blocks = self.blocks.lock(first / a as u64, last / a as u64);
        if self.block_device {
            return self.write_range(data, offset);
        }
        let physical_end = if self.buffered(data.len()) { end } else { last };
        {
            let size = self.size.read();
            if physical_end <= *size {
                return self.write_range(data, offset);
            }
        }
        let mut size = self.size.write();
        let result = self.write_range(data, offset).and_then(|()| {
            let new_size = (*size).max(end);
            if physical_end > new_size {
                sys::ftruncate(self.fd(), new_size)
                    .map_err(|e| self.io_error("ftruncate", new_size, e))?;
            }
            *size = new_size;
            Ok(())
        });
        if result.is_err() {
            // Whatever part of the write landed, the kernel's size is now the truth.
            if let Ok(st) = sys::fstat(self.fd()) {
                *size = st.st_size as u64;
            }
        }
        result
    }

    /// Reserves the first `len` bytes on the device (fallocate), growing the file to at least
    /// `len`. Where the file system cannot reserve (ramfs), the file is extended instead.
    pub fn allocate(&self, len: u64) -> Result<()> {
        if self.block_device {
            return Ok(());
        }
        let mut size = self.size.write();
        match sys::fallocate(self.fd(), len) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                if *size < len {
                    sys::ftruncate(self.fd(), len)
                        .map_err(|e| self.io_error("ftruncate", len, e))?;
                }
            }
            Err(e) => {
                return Err(Error::os(
                    format!(
                        "reserving {len} bytes for {} (fallocate)",
                        self.path.display()
                    ),
                    e,
                ));
            }
        }
        *size = (*size).max(len);
        Ok(())
    }

    /// Makes every completed write durable.
    pub fn sync(&self) -> Result<()> {
        sys::fdatasync(self.fd()).map_err(|e| self.io_error("fdatasync", 0, e))
    }

    fn is_direct_able(&self, ptr: *const u8, offset: u64, len: usize) -> bool {
        let a = self.alignment.offset;
        offset.is_multiple_of(a as u64)
            && len >= a
            && len.is_multiple_of(a)
            && is_aligned_ptr(ptr, self.alignment.memory)
    }

    /// How much of a large unaligned transfer to bounce at `pos`: the rest of a partial head
    /// block, so the aligned middle can go direct, or a window when the memory is unaligned.
    fn bounce_window(&self, pos: u64, rest: usize) -> usize {
        let a = self.alignment.offset as u64;
        let into_block = pos % a;
        if into_block != 0 {
            rest.min((a - into_block) as usize)
        } else if rest < a as usize {
            rest
        } else {
            rest.min(BOUNCE_CHUNK)
        }
    }

    fn read_aligned(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        sys::pread_full(self.fd(), buf, offset, self.alignment.offset)
            .map_err(|e| self.io_error("pread", offset, e))
    }

    fn read_bounced(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let a = self.alignment.offset;
        let start = round_down(offset, a);
        let extent = (round_up(offset + buf.len() as u64, a) - start) as usize;
        let skip = (offset - start) as usize;
        with_bounce(extent, self.alignment.memory, |bounce| {
            let got = self.read_aligned(bounce, start)?;
            let n = got.saturating_sub(skip).min(buf.len());
            buf[..n].copy_from_slice(&bounce[skip..skip + n]);
            Ok(n)
        })?
    }

    fn write_range(&self, data: &[u8], offset: u64) -> Result<()> {
        if self.buffered(data.len()) {
            return sys::pwrite_full(self.buffered_fd(), data, offset)
                .map_err(|e| self.io_error("pwrite", offset, e));
        }
        let a = self.alignment.offset;
        let extent = round_up(offset + data.len() as u64, a) - round_down(offset, a);
        if extent <= SMALL_TRANSFER && !self.is_direct_able(data.as_ptr(), offset, data.len()) {
            return self.write_bounced(data, offset);
        }
        let mut done = 0;
        while done < data.len() {
            let pos = offset + done as u64;
            let rest = &data[done..];
            if self.is_direct_able(
                rest.as_ptr(),
                pos,
                round_down(rest.len() as u64, a) as usize,
            ) {
                let n = round_down(rest.len().min(DIRECT_CHUNK) as u64, a) as usize;
                sys::pwrite_full(self.fd(), &rest[..n], pos)
                    .map_err(|e| self.io_error("pwrite", pos, e))?;
                done += n;
            } else {
                let n = self.bounce_window(pos, rest.len());
                self.write_bounced(&rest[..n], pos)?;
                done += n;
            }
        }
        Ok(())
    }

    /// Read-modify-write of the blocks covering `data`. The caller holds their block lock.
    fn write_bounced(&self, data: &[u8], offset: u64) -> Result<()> {
        let a = self.alignment.offset;
        let start = round_down(offset, a);
        let end = offset + data.len() as u64;
        let extent = (round_up(end, a) - start) as usize;
        let skip = (offset - start) as usize;
        let head_partial = skip != 0;
        let tail_partial = !end.is_multiple_of(a as u64);
        with_bounce(extent, self.alignment.memory, |bounce| {
            if head_partial || tail_partial {
                // Both edges partial and the extent small: one read of it all costs one
                // device round trip instead of two.
                if extent <= 2 * a
                    || (head_partial && tail_partial && extent as u64 <= SMALL_TRANSFER)
                {
                    self.read_block_into(&mut bounce[..extent], start)?;
                } else {
                    if head_partial {
                        self.read_block_into(&mut bounce[..a], start)?;
                    }
                    if tail_partial {
                        self.read_block_into(
                            &mut bounce[extent - a..],
                            start + (extent - a) as u64,
                        )?;
                    }
                }
            }
            bounce[skip..skip + data.len()].copy_from_slice(data);
            sys::pwrite_full(self.fd(), bounce, start)
                .map_err(|e| self.io_error("pwrite", start, e))
        })?
    }

    /// Reads whole blocks for read-modify-write; what lies past end of file reads as zeros.
    fn read_block_into(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let got = self.read_aligned(buf, offset)?;
        buf[got..].fill(0);
        Ok(())
    }
}

/// The descriptor for callers that need one (locking, reserving space).
impl AsFd for DirectFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Removes a file, ignoring "not found": for cleaning up after a failed create.
pub fn remove_quietly(path: &Path) {
    let _ = fs::remove_file(path);
}

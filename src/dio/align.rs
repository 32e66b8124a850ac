//! The alignment O_DIRECT asks of one file or device, asked of the kernel rather than assumed.
//! Memory alignment (of the buffer's address) and offset alignment (of the file position and
//! the length) are kept apart: they differ on many devices.

use super::sys;
use std::os::fd::BorrowedFd;

/// Used only when nothing answers: every device this library has met accepts it.
pub const FALLBACK_ALIGNMENT: usize = 4096;

/// What O_DIRECT transfers of a file must respect ([`DirectFile::alignment`](crate::DirectFile::alignment)).
///
/// ```
/// let path = std::env::temp_dir().join(format!("dcache-doc-align-{}", std::process::id()));
/// let opts = dcache::DirectFileOptions { create: true, ..Default::default() };
/// let f = dcache::DirectFile::open(&path, &opts).unwrap();
/// let a = f.alignment();
/// assert!(a.memory.is_power_of_two() && a.offset.is_power_of_two());
/// // A buffer of this alignment goes straight to the device.
/// let _buf = dcache::AlignedBuf::new(a.offset, a.memory).unwrap();
/// # drop(f); std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alignment {
    /// Buffer addresses must be multiples of this.
    pub memory: usize,
    /// File offsets and transfer lengths must be multiples of this.
    pub offset: usize,
}

impl Alignment {
    /// The same alignment for addresses, offsets and lengths.
    pub fn uniform(bytes: usize) -> Self {
        Alignment {
            memory: bytes,
            offset: bytes,
        }
    }
}

/// What the kernel said about direct I/O on a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// Direct I/O works with this alignment; `source` says who answered.
    Aligned(Alignment, &'static str),
    /// The file system reports that this file does not support direct I/O.
    NoDirectIo,
}

/// Asks, in order: statx(STATX_DIOALIGN); for block devices, the logical and physical sector
/// sizes; then falls back to 4096.
pub fn detect(fd: BorrowedFd<'_>, block_device: bool) -> Detected {
    if let Some((memory, offset)) = sys::statx_dio_align(fd) {
        if offset == 0 {
            return Detected::NoDirectIo;
        }
        return Detected::Aligned(
            Alignment {
                memory: (memory as usize).max(1),
                offset: offset as usize,
            },
            "statx(STATX_DIOALIGN)",
        );
    }
    if block_device {
        if let Ok((logical, _physical)) = sys::block_device_sectors(fd) {
            if logical >= 512 && logical.is_power_of_two() {
                // The logical sector is what the device accepts; use it for memory too, which
                // is never less than the DMA alignment a device asks.
                return Detected::Aligned(Alignment::uniform(logical as usize), "BLKSSZGET");
            }
        }
    }
    Detected::Aligned(Alignment::uniform(FALLBACK_ALIGNMENT), "fallback")
}

/// An explicit alignment must be a power of two of at least 512.
pub fn valid_explicit(bytes: u64) -> bool {
    bytes >= 512 && bytes.is_power_of_two() && bytes <= (1 << 24)
}

pub fn round_down(value: u64, align: usize) -> u64 {
    value & !(align as u64 - 1)
}

pub fn round_up(value: u64, align: usize) -> u64 {
    round_down(value + (align as u64 - 1), align)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_file_in_the_work_tree_reports_a_power_of_two() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let f = std::fs::File::create(dir.path().join("f")).unwrap();
        match detect(f.as_fd(), false) {
            Detected::Aligned(a, source) => {
                assert!(
                    a.offset.is_power_of_two() && a.offset >= 512,
                    "{a:?} from {source}"
                );
                assert!(a.memory.is_power_of_two(), "{a:?} from {source}");
            }
            Detected::NoDirectIo => panic!("ext4 supports direct I/O"),
        }
    }

    #[test]
    fn explicit_alignment_rules() {
        assert!(valid_explicit(512));
        assert!(valid_explicit(4096));
        assert!(!valid_explicit(0));
        assert!(!valid_explicit(256));
        assert!(!valid_explicit(1000));
    }

    #[test]
    fn rounding() {
        assert_eq!(round_down(4097, 4096), 4096);
        assert_eq!(round_up(4097, 4096), 8192);
        assert_eq!(round_up(0, 512), 0);
        assert_eq!(round_up(512, 512), 512);
    }
}

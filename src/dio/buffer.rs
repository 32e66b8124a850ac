//! Memory aligned for O_DIRECT. Allocated and freed with the same `Layout`, never through a
//! `Vec` (whose pointer has only the element's alignment), and reused per thread for bounce
//! copies so that hot paths do not allocate.

use crate::error::{Error, ErrorKind, Result};
use std::alloc::{self, Layout};
use std::cell::RefCell;
use std::ptr::NonNull;

/// An owned, zero-initialised byte buffer whose address is a multiple of its alignment: what
/// O_DIRECT reads and writes need to go straight between the device and memory, and what lets
/// [`Cache::get`](crate::Cache::get) read a large value in place, without a copy.
///
/// ```
/// let mut buf = dcache::AlignedBuf::new(64 << 10, 4096).unwrap();
/// assert_eq!(buf.as_slice().as_ptr() as usize % 4096, 0);
/// buf.as_mut_slice()[0] = 7;
/// assert_eq!(buf.capacity(), 64 << 10);
/// ```
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: AlignedBuf owns its allocation exclusively, like a Box<[u8]>.
unsafe impl Send for AlignedBuf {}
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `len` bytes (at least one alignment unit) aligned to `align`, a power of two.
    pub fn new(len: usize, align: usize) -> Result<Self> {
        let layout = Layout::from_size_align(len.max(align).max(1), align).map_err(|_| {
            Error::invalid(format!("bad buffer layout: {len} bytes aligned to {align}"))
        })?;
        Self::with_layout(layout)
    }

    /// The layout of a buffer handed to a caller who gives back only its length when freeing
    /// it: it depends on `len` alone.
    pub(crate) fn export_layout(len: usize) -> Layout {
        let size = len.max(1).div_ceil(EXPORT_ALIGN) * EXPORT_ALIGN;
        Layout::from_size_align(size, EXPORT_ALIGN).expect("export layout")
    }

    pub(crate) fn for_export(len: usize) -> Result<Self> {
        if len > isize::MAX as usize - EXPORT_ALIGN {
            return Err(Error::new(
                ErrorKind::OutOfMemory,
                format!("cannot allocate {len} bytes"),
            ));
        }
        Self::with_layout(Self::export_layout(len))
    }

    fn with_layout(layout: Layout) -> Result<Self> {
        let raw = if is_huge(layout) {
            huge::map(layout.size())
        } else {
            // SAFETY: the layout has a non-zero size.
            unsafe { alloc::alloc_zeroed(layout) }
        };
        let ptr = NonNull::new(raw).ok_or_else(|| {
            Error::new(
                ErrorKind::OutOfMemory,
                format!("cannot allocate {} bytes", layout.size()),
            )
        })?;
        Ok(AlignedBuf { ptr, layout })
    }

    /// Gives up ownership; the memory must come back through [`AlignedBuf::from_exported`].
    pub(crate) fn into_raw(self) -> *mut u8 {
        let ptr = self.ptr.as_ptr();
        std::mem::forget(self);
        ptr
    }

    /// Takes back a buffer made by [`AlignedBuf::for_export`] and released by `into_raw`.
    ///
    /// # Safety
    /// `ptr` must come from `for_export(len).into_raw()` with this same `len`, and not be used
    /// after this call.
    pub(crate) unsafe fn from_exported(ptr: *mut u8, len: usize) -> Option<Self> {
        NonNull::new(ptr).map(|ptr| AlignedBuf {
            ptr,
            layout: Self::export_layout(len),
        })
    }

    /// Its length in bytes (what `new` was asked for, rounded up to the alignment).
    pub fn capacity(&self) -> usize {
        self.layout.size()
    }

    /// The alignment of its address, in bytes.
    pub fn align(&self) -> usize {
        self.layout.align()
    }

    /// Its bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the allocation is `capacity` initialised bytes owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.layout.size()) }
    }

    /// `len` bytes from `start`, mutably, without a reference to the rest of the buffer: other
    /// threads may be reading other parts of it through a raw pointer (the cache's
    /// write-behind).
    pub fn range_mut(&mut self, start: usize, len: usize) -> &mut [u8] {
        assert!(
            start
                .checked_add(len)
                .is_some_and(|end| end <= self.layout.size()),
            "range out of the buffer"
        );
        // SAFETY: in bounds (checked), and &mut self excludes other references to the buffer.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(start), len) }
    }

    /// Its bytes, to write.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self guarantees exclusivity.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if is_huge(self.layout) {
            huge::unmap(self.ptr.as_ptr(), self.layout.size());
        } else {
            // SAFETY: allocated in with_layout with exactly this layout.
            unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) }
        }
    }
}

/// Buffers from this size on are mapped on their own, on huge-page boundaries, with
/// MADV_HUGEPAGE. Direct I/O from 4 KiB pages costs one DMA segment a page, and a device
/// takes a limited number per request (254 on virtio-blk: a 1 MiB write from 4 KiB pages
/// becomes two requests); physically contiguous huge pages make one segment of it, and
/// pinning them costs less. Measured on this project's VM: region writes went from about
/// 0.6x to about the raw device's sequential write speed.
const HUGE_MIN: usize = huge::HUGE_PAGE;

/// Which allocator a layout uses: decided by its size alone, so that an exported buffer
/// given back with only its length is freed the way it was allocated.
fn is_huge(layout: Layout) -> bool {
    layout.size() >= HUGE_MIN && layout.align() <= huge::HUGE_PAGE
}

mod huge {
    use std::ptr;

    pub const HUGE_PAGE: usize = 2 << 20;

    fn mapped_len(len: usize) -> usize {
        len.div_ceil(HUGE_PAGE) * HUGE_PAGE
    }

    /// Maps `len` zeroed bytes at a huge-page boundary; null on failure.
    pub fn map(len: usize) -> *mut u8 {
        let Some(want) = mapped_len(len).checked_add(HUGE_PAGE) else {
            return ptr::null_mut();
        };
        // SAFETY: a new private anonymous mapping; no existing memory is touched.
        let raw = unsafe {
            libc::mmap(
                ptr::null_mut(),
                want,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return ptr::null_mut();
        }
        // Keep the aligned middle; give back the head and tail.
        let start = raw as usize;
        let aligned = start.next_multiple_of(HUGE_PAGE);
        let (head, tail) = (aligned - start, want - (aligned - start) - mapped_len(len));
        // SAFETY: both ranges lie inside the mapping made above and are not used.
        unsafe {
            if head > 0 {
                libc::munmap(raw, head);
            }
            if tail > 0 {
                libc::munmap((aligned + mapped_len(len)) as *mut libc::c_void, tail);
            }
            let (p, n) = (aligned as *mut libc::c_void, mapped_len(len));
            // Advice only: without transparent huge pages the buffer works as it is.
            libc::madvise(p, n, libc::MADV_HUGEPAGE);
            // Fault the memory in now rather than on the first puts: in a VM, the first
            // touch of guest memory can cost the host's faults too (measured here: 64 MiB of
            // region buffers took 0.2 s of the first 150 MiB of puts). Kernels before 5.14
            // refuse the advice; the pages then fault in on first use, as before.
            libc::madvise(p, n, libc::MADV_POPULATE_WRITE);
        }
        aligned as *mut u8
    }

    pub fn unmap(p: *mut u8, len: usize) {
        // SAFETY: `p` and `len` describe a mapping made by `map`, no longer referenced.
        unsafe {
            libc::munmap(p as *mut libc::c_void, mapped_len(len));
        }
    }
}

/// Alignment of buffers given to C callers: a page, which satisfies O_DIRECT on every device
/// this library has met.
pub const EXPORT_ALIGN: usize = 4096;

/// Bounce buffers larger than this are freed after use instead of kept by the thread.
const MAX_KEPT_BOUNCE: usize = 16 << 20;
const MIN_BOUNCE: usize = 256 << 10;

thread_local! {
    static BOUNCE: RefCell<Option<AlignedBuf>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's bounce buffer, at least `len` bytes aligned to `align`. The
/// buffer is reused by later calls on the same thread; its contents on entry are unspecified.
pub fn with_bounce<R>(len: usize, align: usize, f: impl FnOnce(&mut [u8]) -> R) -> Result<R> {
    let kept = BOUNCE.with(|b| b.borrow_mut().take());
    let mut buf = match kept {
        Some(buf) if buf.capacity() >= len && buf.align() >= align => buf,
        _ => AlignedBuf::new(len.max(MIN_BOUNCE), align.max(EXPORT_ALIGN))?,
    };
    let result = f(&mut buf.as_mut_slice()[..len]);
    if buf.capacity() <= MAX_KEPT_BOUNCE {
        BOUNCE.with(|b| *b.borrow_mut() = Some(buf));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_and_zeroed() {
        for align in [512usize, 4096, 65536] {
            for len in [0usize, 1, 511, 512, 4097, 1 << 20] {
                let buf = AlignedBuf::new(len, align).unwrap();
                assert_eq!(buf.as_slice().as_ptr() as usize % align, 0);
                assert!(buf.capacity() >= len.max(1));
                assert!(buf.as_slice().iter().all(|&b| b == 0));
            }
        }
    }

    #[test]
    fn large_buffers_are_mapped_on_huge_page_boundaries() {
        for len in [HUGE_MIN, HUGE_MIN + 1, 32 << 20] {
            let mut buf = AlignedBuf::new(len, 512).unwrap();
            assert_eq!(buf.as_slice().as_ptr() as usize % huge::HUGE_PAGE, 0);
            assert!(buf.as_slice().iter().all(|&b| b == 0));
            let n = buf.capacity();
            buf.as_mut_slice()[n - 1] = 1;
        }
        // An exported large buffer is freed through the same path it was mapped by.
        let mut buf = AlignedBuf::for_export(5 << 20).unwrap();
        buf.as_mut_slice()[0] = 9;
        let raw = buf.into_raw();
        let back = unsafe { AlignedBuf::from_exported(raw, 5 << 20) }.unwrap();
        assert_eq!(back.as_slice()[0], 9);
    }

    #[test]
    fn bad_alignment_is_an_error() {
        assert_eq!(
            AlignedBuf::new(10, 3).err().unwrap().kind(),
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn exported_buffers_round_trip() {
        for len in [0usize, 1, 4096, 4097] {
            let mut buf = AlignedBuf::for_export(len).unwrap();
            buf.as_mut_slice()[0] = 7;
            let raw = buf.into_raw();
            let back = unsafe { AlignedBuf::from_exported(raw, len) }.unwrap();
            assert_eq!(back.as_slice()[0], 7);
        }
        assert!(unsafe { AlignedBuf::from_exported(std::ptr::null_mut(), 5) }.is_none());
    }

    #[test]
    fn bounce_is_reused_on_a_thread() {
        let first = with_bounce(1000, 512, |b| b.as_ptr() as usize).unwrap();
        let second = with_bounce(2000, 4096, |b| b.as_ptr() as usize).unwrap();
        assert_eq!(first, second);
        assert_eq!(first % 4096, 0);
    }
}

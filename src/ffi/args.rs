//! Typed conversions of C arguments: checked before any memory behind a pointer is touched.

use crate::error::{Error, Result};
use std::ffi::{c_char, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// A C buffer as a slice: `(NULL, 0)` is the empty slice; NULL with a length is refused, as is
/// a length no allocation can have.
///
/// # Safety
/// A non-NULL `ptr` must point to `len` readable bytes for `'a`.
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    if len > isize::MAX as usize {
        return Err(Error::invalid(format!(
            "{what}: length {len} is larger than any buffer"
        )));
    }
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Error::invalid(format!("{what} is NULL with length {len}")))
        };
    }
    Ok(std::slice::from_raw_parts(ptr, len))
}

/// A writable C buffer as a slice, under the same rules as [`bytes`].
///
/// # Safety
/// A non-NULL `ptr` must point to `len` writable bytes for `'a`, not aliased.
pub(crate) unsafe fn bytes_mut<'a>(ptr: *mut u8, len: usize, what: &str) -> Result<&'a mut [u8]> {
    if len > isize::MAX as usize {
        return Err(Error::invalid(format!(
            "{what}: length {len} is larger than any buffer"
        )));
    }
    if ptr.is_null() {
        return if len == 0 {
            Ok(&mut [])
        } else {
            Err(Error::invalid(format!("{what} is NULL with length {len}")))
        };
    }
    Ok(std::slice::from_raw_parts_mut(ptr, len))
}

/// A handle or input struct that must not be NULL.
///
/// # Safety
/// A non-NULL `ptr` must point to a live `T` for `'a`.
pub(crate) unsafe fn get_ref<'a, T>(ptr: *const T, what: &str) -> Result<&'a T> {
    ptr.as_ref()
        .ok_or_else(|| Error::invalid(format!("{what} is NULL")))
}

/// An out-parameter that must not be NULL.
///
/// # Safety
/// A non-NULL `ptr` must point to writable memory for a `T`.
pub(crate) unsafe fn out<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T> {
    ptr.as_mut()
        .ok_or_else(|| Error::invalid(format!("{what} is NULL")))
}

/// A NUL-terminated path.
///
/// # Safety
/// A non-NULL `ptr` must point to a NUL-terminated string.
pub(crate) unsafe fn path(ptr: *const c_char) -> Result<PathBuf> {
    if ptr.is_null() {
        return Err(Error::invalid("path is NULL"));
    }
    let bytes = CStr::from_ptr(ptr).to_bytes();
    if bytes.is_empty() {
        return Err(Error::invalid("path is empty"));
    }
    Ok(PathBuf::from(OsStr::from_bytes(bytes)))
}

/// Reads a caller's options struct that starts with `uint32_t struct_size`: only the bytes the
/// caller says it has are read, and fields past them keep their defaults, so that programs
/// built against an older, shorter struct keep working.
///
/// # Safety
/// A non-NULL `ptr` must point to at least `struct_size` readable bytes.
pub(crate) unsafe fn versioned_struct<T: Copy>(
    ptr: *const T,
    defaults: T,
    what: &str,
) -> Result<T> {
    let mut value = defaults;
    if ptr.is_null() {
        return Ok(value);
    }
    let given = std::ptr::read_unaligned(ptr.cast::<u32>()) as usize;
    if given < 8 {
        return Err(Error::invalid(format!(
            "{what}.struct_size is {given}: initialise it with the matching _init function"
        )));
    }
    let n = given.min(std::mem::size_of::<T>());
    std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), (&mut value as *mut T).cast::<u8>(), n);
    Ok(value)
}

/// Writes a struct that starts with `uint32_t struct_size` set by the caller: at most that many
/// bytes are written.
///
/// # Safety
/// `ptr` must be non-NULL and point to at least `struct_size` writable bytes.
pub(crate) unsafe fn write_versioned_struct<T: Copy>(
    ptr: *mut T,
    value: &T,
    what: &str,
) -> Result<()> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    let given = std::ptr::read_unaligned(ptr.cast::<u32>()) as usize;
    if given < 8 {
        return Err(Error::invalid(format!(
            "{what}.struct_size is {given}: set it to sizeof(the struct)"
        )));
    }
    let n = given.min(std::mem::size_of::<T>());
    std::ptr::copy_nonoverlapping((value as *const T).cast::<u8>(), ptr.cast::<u8>(), n);
    // The caller's struct_size stays as the caller set it.
    std::ptr::write_unaligned(ptr.cast::<u32>(), given as u32);
    Ok(())
}

package dcache

/*
#include "shim.h"
*/
import "C"

import (
	"io"
	"runtime"
	"sync"
	"unsafe"
)

// FileFlag is a DCACHE_FILE_* flag for FileOptions.Flags.
type FileFlag uint32

const (
	FileCreate     FileFlag = C.DCACHE_FILE_CREATE
	FileTruncate   FileFlag = C.DCACHE_FILE_TRUNCATE
	FileReadOnly   FileFlag = C.DCACHE_FILE_READ_ONLY
	FileSyncWrites FileFlag = C.DCACHE_FILE_SYNC_WRITES
)

// FileOptions for OpenFile, WriteFile and ReadFile. The zero value (and nil) means defaults.
type FileOptions struct {
	IOMode    IOMode
	Flags     FileFlag
	Alignment uint32 // 0 = detect
	MinIOSize uint64 // transfers smaller than this go through the page cache; 0 = none
}

func fileOptions(opts *FileOptions) C.dcache_file_options {
	var o C.dcache_file_options
	C.dcache_file_options_init(&o)
	if opts != nil {
		o.io_mode = opts.IOMode.c()
		o.flags = C.uint32_t(opts.Flags)
		o.alignment = C.uint32_t(opts.Alignment)
		o.min_io_size = C.uint64_t(opts.MinIOSize)
	}
	return o
}

// File is a file opened through the direct-I/O layer: reads and writes at any offset and
// length bypass the page cache when O_DIRECT is in effect. Safe for concurrent use.
type File struct {
	mu sync.RWMutex
	h  *C.dcache_file
}

// OpenFile opens path through the direct-I/O layer.
func OpenFile(path string, opts *FileOptions) (*File, error) {
	o := fileOptions(opts)
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	r := C.dcg_file_open(cpath, &o)
	if err := check(r, "dcache_file_open"); err != nil {
		return nil, err
	}
	f := &File{h: (*C.dcache_file)(r.ptr)}
	runtime.SetFinalizer(f, func(f *File) { _ = f.Close() })
	return f, nil
}

// Close closes the file. Closing twice returns nil.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.h == nil {
		return nil
	}
	h := f.h
	f.h = nil
	runtime.SetFinalizer(f, nil)
	return check(C.dcg_file_close(h), "dcache_file_close")
}

// Pread reads into p from offset and returns the bytes read: fewer than len(p) only at the
// end of the file, with a nil error.
func (f *File) Pread(p []byte, offset uint64) (int, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.h == nil {
		return 0, ErrClosed
	}
	r := C.dcg_file_pread(f.h, ptr(p), C.size_t(len(p)), C.uint64_t(offset))
	if err := check(r, "dcache_file_pread"); err != nil {
		return 0, err
	}
	return int(r.n), nil
}

// Pwrite writes p at offset; any offset and length.
func (f *File) Pwrite(p []byte, offset uint64) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.h == nil {
		return ErrClosed
	}
	return check(C.dcg_file_pwrite(f.h, ptr(p), C.size_t(len(p)), C.uint64_t(offset)), "dcache_file_pwrite")
}

// ReadAt implements io.ReaderAt: a short read returns io.EOF.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &Error{Code: CodeInvalidArgument, Op: "dcache_file_pread", Message: "negative offset"}
	}
	n, err := f.Pread(p, uint64(off))
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

// WriteAt implements io.WriterAt.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &Error{Code: CodeInvalidArgument, Op: "dcache_file_pwrite", Message: "negative offset"}
	}
	if err := f.Pwrite(p, uint64(off)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Size is the file's size in bytes.
func (f *File) Size() (uint64, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.h == nil {
		return 0, ErrClosed
	}
	r := C.dcg_file_size(f.h)
	if err := check(r, "dcache_file_size"); err != nil {
		return 0, err
	}
	return uint64(r.n), nil
}

// Sync makes the file's completed writes durable.
func (f *File) Sync() error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.h == nil {
		return ErrClosed
	}
	return check(C.dcg_file_sync(f.h), "dcache_file_sync")
}

// IsDirectIO reports whether O_DIRECT is in effect.
func (f *File) IsDirectIO() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.h != nil && C.dcache_file_is_direct_io(f.h) != 0
}

// Alignment is the file's I/O alignment in bytes (0 once closed).
func (f *File) Alignment() uint32 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.h == nil {
		return 0
	}
	return uint32(C.dcache_file_alignment(f.h))
}

// WriteFile replaces path with data atomically.
func WriteFile(path string, data []byte, opts *FileOptions) error {
	o := fileOptions(opts)
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return check(C.dcg_file_write_all(cpath, ptr(data), C.size_t(len(data)), &o), "dcache_file_write_all")
}

// ReadFile returns the whole content of path.
func ReadFile(path string, opts *FileOptions) ([]byte, error) {
	o := fileOptions(opts)
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	r := C.dcg_file_read_all(cpath, &o)
	if err := check(r, "dcache_file_read_all"); err != nil {
		return nil, err
	}
	if r.ptr == nil {
		return []byte{}, nil
	}
	out := make([]byte, int(r.n))
	copy(out, unsafe.Slice((*byte)(r.ptr), int(r.n)))
	C.dcache_buffer_free((*C.uint8_t)(r.ptr), C.size_t(r.n))
	return out, nil
}

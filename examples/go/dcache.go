// Package dcache is a Go binding (cgo) for libdcache, a raw-disk object cache and direct-I/O
// layer.
//
//	c, err := dcache.Open("objects.dcache", &dcache.Options{Flags: dcache.OpenCreate, Capacity: 256 << 20})
//	if err != nil { ... }
//	defer c.Close()
//	err = c.Put([]byte("key"), []byte("value"))
//	v, err := c.Get([]byte("key"))       // errors.Is(err, dcache.ErrNotFound) on a miss
//
// Many reads in flight from one goroutine: c.OpenQueue(depth) and Queue.GetAsync (queue.go).
//
// Byte slices are passed to C without copying, for the duration of each call only (the cgo
// pointer rules). A Cache and a File may be used from many goroutines at once; a Writer from
// one at a time.
//
// Errors returned by the library are *Error values carrying the dcache_result code and the
// library's detailed message. The message is read in the same C call as the failing
// function (by small C shims below): a goroutine may move to another OS thread between two
// cgo calls, and the library keeps the message per OS thread.
//
// The library is found through the cgo flags below: the headers in ../../include and the
// shared library in ../../target/release (built by `make lib` at the repository root), with
// an rpath so tests and programs run without LD_LIBRARY_PATH.
package dcache

/*
#cgo CFLAGS: -I${SRCDIR}/../../include -I${SRCDIR}
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -ldcache -Wl,-rpath,${SRCDIR}/../../target/release
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Version is the library's version, "MAJOR.MINOR.PATCH".
func Version() string { return C.GoString(C.dcache_version()) }

// VersionNumber is MAJOR*10000 + MINOR*100 + PATCH.
func VersionNumber() uint32 { return uint32(C.dcache_version_number()) }

// ptr returns a pointer to b's first byte for the duration of one C call, or nil for an empty
// slice (the library accepts (NULL, 0) as an empty buffer). b holds no Go pointers, so passing
// it follows the cgo pointer rules; the slice is kept alive by being an argument of the call.
func ptr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0]))
}

// check turns a shim's result into an error, freeing the copied message.
func check(r C.dcg_res, op string) error {
	if r.code == C.DCACHE_OK {
		return nil
	}
	e := &Error{Code: Code(r.code), Op: op}
	if r.msg != nil {
		e.Message = C.GoString(r.msg)
		C.free(unsafe.Pointer(r.msg))
	}
	return e
}

// ---------------------------------------------------------------------------------------
// Options

// IOMode selects O_DIRECT or page-cache I/O. The zero value is IOAuto.
type IOMode int

const (
	IOAuto     IOMode = iota // O_DIRECT where the file system takes it, else buffered (one warning)
	IODirect                 // O_DIRECT or fail with CodeUnsupported
	IOBuffered               // ordinary page-cache I/O
)

func (m IOMode) c() C.uint32_t {
	switch m {
	case IOAuto:
		return C.DCACHE_IO_AUTO
	case IODirect:
		return C.DCACHE_IO_DIRECT
	case IOBuffered:
		return C.DCACHE_IO_BUFFERED
	}
	return C.uint32_t(0xFFFFFFFF) // refused by the library as an unknown mode
}

// OpenFlag is a DCACHE_OPEN_* flag for Options.Flags.
type OpenFlag uint32

const (
	OpenCreate     OpenFlag = C.DCACHE_OPEN_CREATE      // create the file if missing and format it
	OpenFormat     OpenFlag = C.DCACHE_OPEN_FORMAT      // format even if the path holds other data
	OpenSyncWrites OpenFlag = C.DCACHE_OPEN_SYNC_WRITES // every put is durable before it returns
	OpenReadOnly   OpenFlag = C.DCACHE_OPEN_READ_ONLY   // lookups only
)

// Options for Open. The zero value (and a nil *Options) means the library's defaults.
type Options struct {
	IOMode       IOMode
	Flags        OpenFlag
	Alignment    uint32        // bytes; 0 = detect from the file or device
	Capacity     uint64        // bytes; 0 = the existing file's or block device's size
	DefaultTTL   time.Duration // 0 = entries do not expire by age; rounded up to seconds
	MaxValueSize uint64        // 0 = library default
	Admission    Admission     // AdmitAll (the default) or AdmitFiltered
	WriteBudget  uint64        // bytes per second the cache may write, with AdmitFiltered; 0 = no limit
}

// Admission says which puts the cache stores.
type Admission uint32

const (
	AdmitAll      Admission = C.DCACHE_ADMIT_ALL      // every put is stored
	AdmitFiltered Admission = C.DCACHE_ADMIT_FILTERED // a put may fail with ErrDeclined: a key is stored the second time it misses
)

func ttlSecs(d time.Duration) C.uint64_t {
	if d <= 0 {
		return 0
	}
	return C.uint64_t((d + time.Second - 1) / time.Second)
}

// ---------------------------------------------------------------------------------------
// Cache

// Cache is an open dcache. Safe for concurrent use by many goroutines.
type Cache struct {
	mu sync.RWMutex // RLock around every C call on h; Lock to close
	h  *C.dcache

	wmu     sync.Mutex
	writers map[*Writer]struct{} // open writers, aborted by Close
}

// Open opens (or with OpenCreate creates) the cache at path.
func Open(path string, opts *Options) (*Cache, error) {
	var o C.dcache_options
	C.dcache_options_init_size(&o, C.size_t(unsafe.Sizeof(o)))
	if opts != nil {
		o.io_mode = opts.IOMode.c()
		o.flags = C.uint32_t(opts.Flags)
		o.alignment = C.uint32_t(opts.Alignment)
		o.capacity = C.uint64_t(opts.Capacity)
		o.default_ttl_secs = ttlSecs(opts.DefaultTTL)
		o.max_value_size = C.uint64_t(opts.MaxValueSize)
		o.admission = C.uint32_t(opts.Admission)
		o.write_budget = C.uint64_t(opts.WriteBudget)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	r := C.dcg_open(cpath, &o)
	if err := check(r, "dcache_open"); err != nil {
		return nil, err
	}
	c := &Cache{h: (*C.dcache)(r.ptr), writers: map[*Writer]struct{}{}}
	runtime.SetFinalizer(c, func(c *Cache) { _ = c.Close() })
	return c, nil
}

// Close aborts any open writers, flushes, releases the lock and frees the cache. Calls
// in progress on other goroutines finish first; later calls return ErrClosed. Closing twice
// returns nil.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == nil {
		return nil
	}
	c.wmu.Lock()
	for w := range c.writers {
		if w.h != nil {
			C.dcache_writer_abort(w.h)
			w.h = nil
		}
	}
	c.writers = nil
	c.wmu.Unlock()
	h := c.h
	c.h = nil
	runtime.SetFinalizer(c, nil)
	return check(C.dcg_close(h), "dcache_close")
}

// Put stores value under key with the cache's default TTL.
func (c *Cache) Put(key, value []byte) error { return c.PutTTL(key, value, 0) }

// PutTTL stores value under key; ttl 0 means the cache's default, otherwise it is rounded up
// to whole seconds.
func (c *Cache) PutTTL(key, value []byte, ttl time.Duration) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return ErrClosed
	}
	r := C.dcg_put(c.h, ptr(key), C.size_t(len(key)), ptr(value), C.size_t(len(value)), ttlSecs(ttl))
	return check(r, "dcache_put")
}

const scratchSize = 64 << 10

var scratchPool = sync.Pool{New: func() any { b := make([]byte, scratchSize); return &b }}

// Get returns a copy of the value stored under key. On a miss the error satisfies
// errors.Is(err, ErrNotFound).
func (c *Cache) Get(key []byte) ([]byte, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return nil, ErrClosed
	}
	// One call for values up to scratchSize (read into a pooled buffer, then copied out
	// exactly); a larger value is read straight into a slice of the size the library reports.
	sp := scratchPool.Get().(*[]byte)
	scratch := *sp
	r := C.dcg_get(c.h, ptr(key), C.size_t(len(key)), ptr(scratch), C.size_t(len(scratch)))
	if r.code == C.DCACHE_OK {
		out := make([]byte, int(r.n))
		copy(out, scratch[:r.n])
		scratchPool.Put(sp)
		return out, nil
	}
	scratchPool.Put(sp)
	for r.code == C.DCACHE_BUFFER_TOO_SMALL {
		buf := make([]byte, int(r.n))
		r = C.dcg_get(c.h, ptr(key), C.size_t(len(key)), ptr(buf), C.size_t(len(buf)))
		if r.code == C.DCACHE_OK {
			return buf[:r.n], nil
		}
		if r.code == C.DCACHE_BUFFER_TOO_SMALL && uint64(r.n) <= uint64(len(buf)) {
			break // would loop forever; report it
		}
	}
	return nil, check(r, "dcache_get")
}

// GetInto reads the value stored under key into buf and returns its length. If buf is too
// small it returns the length needed and an error satisfying errors.Is(err, ErrBufferTooSmall).
func (c *Cache) GetInto(key, buf []byte) (int, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return 0, ErrClosed
	}
	r := C.dcg_get(c.h, ptr(key), C.size_t(len(key)), ptr(buf), C.size_t(len(buf)))
	return int(r.n), check(r, "dcache_get")
}

// GetRange reads up to length bytes of the value starting at offset (fewer at its end;
// offset == size reads nothing). An offset past the end is an error with CodeRange.
func (c *Cache) GetRange(key []byte, offset uint64, length int) ([]byte, error) {
	if length < 0 {
		return nil, &Error{Code: CodeInvalidArgument, Op: "dcache_get_range", Message: "negative length"}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return nil, ErrClosed
	}
	if length > 1<<20 {
		// "To the end" requests should not allocate a huge buffer: clamp to the value's size.
		r := C.dcg_value_size(c.h, ptr(key), C.size_t(len(key)))
		if err := check(r, "dcache_value_size"); err != nil {
			return nil, err
		}
		if size := uint64(r.n); offset <= size && size-offset < uint64(length) {
			length = int(size - offset)
		}
	}
	buf := make([]byte, length)
	r := C.dcg_get_range(c.h, ptr(key), C.size_t(len(key)), C.uint64_t(offset), ptr(buf), C.size_t(len(buf)))
	if err := check(r, "dcache_get_range"); err != nil {
		return nil, err
	}
	return buf[:r.n], nil
}

// ReadRangeInto reads into buf from offset and returns the bytes read (no allocation).
func (c *Cache) ReadRangeInto(key []byte, offset uint64, buf []byte) (int, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return 0, ErrClosed
	}
	r := C.dcg_get_range(c.h, ptr(key), C.size_t(len(key)), C.uint64_t(offset), ptr(buf), C.size_t(len(buf)))
	if err := check(r, "dcache_get_range"); err != nil {
		return 0, err
	}
	return int(r.n), nil
}

// ValueSize returns the size of the value stored under key.
func (c *Cache) ValueSize(key []byte) (uint64, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return 0, ErrClosed
	}
	r := C.dcg_value_size(c.h, ptr(key), C.size_t(len(key)))
	if err := check(r, "dcache_value_size"); err != nil {
		return 0, err
	}
	return uint64(r.n), nil
}

// Delete removes key. Whatever the library answers for an absent key is passed on (an
// ErrNotFound error if it reports one).
func (c *Cache) Delete(key []byte) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return ErrClosed
	}
	return check(C.dcg_delete(c.h, ptr(key), C.size_t(len(key))), "dcache_delete")
}

// Flush makes every put that returned before it durable.
func (c *Cache) Flush() error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return ErrClosed
	}
	return check(C.dcg_flush(c.h), "dcache_flush")
}

// IsDirectIO reports whether O_DIRECT is in effect.
func (c *Cache) IsDirectIO() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.h != nil && C.dcache_is_direct_io(c.h) != 0
}

// Alignment is the I/O alignment in bytes, as detected or given (0 once closed).
func (c *Cache) Alignment() uint32 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return 0
	}
	return uint32(C.dcache_alignment(c.h))
}

// Stats is a snapshot of the cache's counters.
type Stats struct {
	DirectIO         bool
	Alignment        uint32
	Capacity         uint64
	UsedBytes        uint64
	Entries          uint64
	Hits             uint64
	Misses           uint64
	Puts             uint64
	Deletes          uint64
	Evictions        uint64
	Expirations      uint64
	BytesWritten     uint64
	BytesRead        uint64
	ChecksumFailures uint64
	IOErrors         uint64

	IndexBytes             uint64 // memory of the in-memory index
	RecoveryBytesRead      uint64 // what this handle's open read to rebuild the index
	RecoveryMicros         uint64 // how long that took
	RecoveryEntriesDropped uint64 // entries dropped at open as torn or corrupt
	RecoveryWasClean       bool   // the previous user had closed the cache cleanly
	Reinserted             uint64 // main-ring entries read since written, kept when their region was reclaimed
	ReinsertedBytes        uint64 // their bytes
	Promoted               uint64 // probationary entries read there, moved to the main ring
	PromotedBytes          uint64 // their bytes
	GhostHits              uint64 // puts the ghost of dropped keys sent to the main ring
	GhostBytes             uint64 // memory the ghosts hold
	Declined               uint64 // puts and writers the admission filter declined
	AdmissionBytes         uint64 // memory the admission filter holds
	WriteEntriesDropped    uint64 // entries dropped because the write meant to store them failed
	RecoveryRegionsLost    uint64 // regions the open could not read, whose entries were lost
}

// Stats returns the cache's counters.
func (c *Cache) Stats() (Stats, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return Stats{}, ErrClosed
	}
	var s C.dcache_stats
	if err := check(C.dcg_stats(c.h, &s), "dcache_get_stats"); err != nil {
		return Stats{}, err
	}
	return Stats{
		DirectIO:         s.direct_io != 0,
		Alignment:        uint32(s.alignment),
		Capacity:         uint64(s.capacity),
		UsedBytes:        uint64(s.used_bytes),
		Entries:          uint64(s.entries),
		Hits:             uint64(s.hits),
		Misses:           uint64(s.misses),
		Puts:             uint64(s.puts),
		Deletes:          uint64(s.deletes),
		Evictions:        uint64(s.evictions),
		Expirations:      uint64(s.expirations),
		BytesWritten:     uint64(s.bytes_written),
		BytesRead:        uint64(s.bytes_read),
		ChecksumFailures: uint64(s.checksum_failures),
		IOErrors:         uint64(s.io_errors),

		IndexBytes:             uint64(s.index_bytes),
		RecoveryBytesRead:      uint64(s.recovery_bytes_read),
		RecoveryMicros:         uint64(s.recovery_micros),
		RecoveryEntriesDropped: uint64(s.recovery_entries_dropped),
		RecoveryWasClean:       s.recovery_was_clean != 0,
		Reinserted:             uint64(s.reinserted),
		ReinsertedBytes:        uint64(s.reinserted_bytes),
		Promoted:               uint64(s.promoted),
		PromotedBytes:          uint64(s.promoted_bytes),
		GhostHits:              uint64(s.ghost_hits),
		GhostBytes:             uint64(s.ghost_bytes),
		Declined:               uint64(s.declined),
		AdmissionBytes:         uint64(s.admission_bytes),
		WriteEntriesDropped:    uint64(s.write_entries_dropped),
		RecoveryRegionsLost:    uint64(s.recovery_regions_lost),
	}, nil
}

// ---------------------------------------------------------------------------------------
// Writer

// Writer is a streaming put: the value becomes visible, whole, only at Commit. Use it from
// one goroutine at a time. Closing the cache aborts open writers.
type Writer struct {
	c  *Cache
	mu sync.Mutex
	h  *C.dcache_writer // read and written under mu plus c.mu.RLock, or under c.mu.Lock
}

// NewWriter starts a streaming put of key; ttl as for PutTTL.
func (c *Cache) NewWriter(key []byte, ttl time.Duration) (*Writer, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return nil, ErrClosed
	}
	r := C.dcg_writer_open(c.h, ptr(key), C.size_t(len(key)), ttlSecs(ttl))
	if err := check(r, "dcache_writer_open"); err != nil {
		return nil, err
	}
	w := &Writer{c: c, h: (*C.dcache_writer)(r.ptr)}
	c.wmu.Lock()
	c.writers[w] = struct{}{}
	c.wmu.Unlock()
	return w, nil
}

// Write appends p to the value (io.Writer).
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.c.mu.RLock()
	defer w.c.mu.RUnlock()
	if w.h == nil {
		return 0, ErrClosed
	}
	if err := check(C.dcg_writer_write(w.h, ptr(p), C.size_t(len(p))), "dcache_writer_write"); err != nil {
		return 0, err
	}
	return len(p), nil
}

// finish detaches the writer from its cache. Called with w.mu and w.c.mu.RLock held.
func (w *Writer) finish() *C.dcache_writer {
	h := w.h
	w.h = nil
	w.c.wmu.Lock()
	delete(w.c.writers, w)
	w.c.wmu.Unlock()
	return h
}

// Commit publishes the value. The writer is finished afterwards, whatever it returns.
func (w *Writer) Commit() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.c.mu.RLock()
	defer w.c.mu.RUnlock()
	if w.h == nil {
		return ErrClosed
	}
	return check(C.dcg_writer_commit(w.finish()), "dcache_writer_commit")
}

// Abort discards the value; nothing becomes visible. Aborting a finished writer does nothing.
func (w *Writer) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.c.mu.RLock()
	defer w.c.mu.RUnlock()
	if w.h == nil {
		return
	}
	C.dcache_writer_abort(w.finish())
}

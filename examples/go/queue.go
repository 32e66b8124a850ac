package dcache

/*
#include "shim.h"
*/
import "C"

import (
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Queue reads from a cache with many gets in flight from one goroutine. Its completions are
// reaped by a goroutine that waits in Go's netpoller on the queue's file descriptor: no
// goroutine, and no OS thread, sits in cgo while the device works.
//
//	q, err := c.OpenQueue(64)
//	defer q.Close()
//	replies := make([]<-chan Result, len(keys))
//	for i, k := range keys {
//		replies[i] = q.GetAsync(k) // returns at once (waits only while 64 are in flight)
//	}
//	for _, r := range replies {
//		res := <-r // res.Value, res.Err (errors.Is(res.Err, ErrNotFound) on a miss)
//	}
//
// A Queue may be used from many goroutines. Values are read into C memory and copied out; a
// value over 64 KiB takes a second read, once its size is known.
type Queue struct {
	mu      sync.Mutex // around every C call on q: submits, and the reaper's reaps
	q       *C.dcache_queue
	file    *os.File      // a duplicate of the queue's fd, in the netpoller
	slots   chan struct{} // one token per read in flight: the queue's depth
	pending map[uint64]*queuedRead
	next    uint64
	closed  bool
	reaped  chan struct{} // closed when the reaper ends
}

// Result is the outcome of a read through a Queue.
type Result struct {
	Value []byte
	Err   error
}

type queuedRead struct {
	key    []byte
	offset int64 // -1: the whole value
	buf    unsafe.Pointer
	size   int
	reply  chan Result
}

// firstReadSize is the buffer a get starts with; a larger value is read again at its size.
const firstReadSize = 64 << 10

// OpenQueue opens a completion queue of depth reads (0: 64; at most 4096) over the cache.
// Close it before the program ends; it may outlive the Cache (its later reads then fail).
func (c *Cache) OpenQueue(depth int) (*Queue, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return nil, ErrClosed
	}
	if depth < 0 || depth > 4096 {
		return nil, &Error{Code: CodeInvalidArgument, Op: "dcache_queue_open", Message: "depth must be 0 to 4096"}
	}
	r := C.dcg_queue_open(c.h, C.uint32_t(depth))
	if err := check(r, "dcache_queue_open"); err != nil {
		return nil, err
	}
	q := &Queue{q: (*C.dcache_queue)(r.ptr), pending: map[uint64]*queuedRead{}, reaped: make(chan struct{})}
	if depth == 0 {
		depth = 64
	}
	q.slots = make(chan struct{}, depth)
	// The netpoller takes a non-blocking descriptor of our own; the queue keeps its own.
	fd, err := syscall.Dup(int(C.dcache_queue_fd(q.q)))
	if err == nil {
		err = syscall.SetNonblock(fd, true)
	}
	if err != nil {
		C.dcache_queue_close(q.q)
		return nil, &Error{Code: CodeIOError, Op: "dcache_queue_open", Message: err.Error()}
	}
	q.file = os.NewFile(uintptr(fd), "dcache-queue")
	raw, err := q.file.SyscallConn()
	if err != nil {
		q.file.Close()
		C.dcache_queue_close(q.q)
		return nil, &Error{Code: CodeIOError, Op: "dcache_queue_open", Message: err.Error()}
	}
	go q.reap(raw)
	return q, nil
}

// GetAsync submits a get of key and returns the channel its Result will come on (buffered:
// nobody need wait for it). It blocks only while the queue's depth of reads is in flight.
func (q *Queue) GetAsync(key []byte) <-chan Result {
	return q.submit(&queuedRead{key: append([]byte(nil), key...), offset: -1, size: firstReadSize})
}

// Get reads the value under key through the queue: the goroutine waits on a channel, not in
// cgo. On a miss the error satisfies errors.Is(err, ErrNotFound).
func (q *Queue) Get(key []byte) ([]byte, error) {
	r := <-q.GetAsync(key)
	return r.Value, r.Err
}

// GetRangeAsync submits a read of up to length bytes of the value from offset.
func (q *Queue) GetRangeAsync(key []byte, offset uint64, length int) <-chan Result {
	if length < 0 || offset > 1<<62 {
		reply := make(chan Result, 1)
		reply <- Result{Err: &Error{Code: CodeInvalidArgument, Op: "dcache_submit_get_range", Message: "negative length or huge offset"}}
		return reply
	}
	return q.submit(&queuedRead{key: append([]byte(nil), key...), offset: int64(offset), size: length})
}

func (q *Queue) submit(r *queuedRead) <-chan Result {
	r.reply = make(chan Result, 1)
	q.slots <- struct{}{}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		<-q.slots
		r.reply <- Result{Err: ErrClosed}
		return r.reply
	}
	if err := q.start(r); err != nil {
		<-q.slots
		r.reply <- Result{Err: err}
	}
	return r.reply
}

// start submits r with a buffer of r.size bytes (q.mu held).
func (q *Queue) start(r *queuedRead) error {
	r.buf = C.dcg_alloc(C.size_t(r.size))
	if r.buf == nil {
		return &Error{Code: CodeOutOfMemory, Op: "dcache_submit_get", Message: "no memory for the read's buffer"}
	}
	id := q.next
	q.next++
	q.pending[id] = r
	var res C.dcg_res
	if r.offset < 0 {
		res = C.dcg_submit_get(q.q, ptr(r.key), C.size_t(len(r.key)), (*C.uint8_t)(r.buf), C.size_t(r.size), C.uint64_t(id))
	} else {
		res = C.dcg_submit_get_range(q.q, ptr(r.key), C.size_t(len(r.key)), C.uint64_t(r.offset), (*C.uint8_t)(r.buf), C.size_t(r.size), C.uint64_t(id))
	}
	if err := check(res, "dcache_submit_get"); err != nil {
		delete(q.pending, id)
		C.free(r.buf)
		return err
	}
	return nil
}

// reap runs until Close: it reaps what is there, and waits in the netpoller when nothing is.
func (q *Queue) reap(raw syscall.RawConn) {
	defer close(q.reaped)
	var done [64]C.dcache_completion
	for {
		err := raw.Read(func(uintptr) bool { return q.reapReady(done[:]) })
		if err != nil {
			return // the file was closed: Close is under way
		}
	}
}

// reapReady hands out every completion there is; false if there was none (then wait).
func (q *Queue) reapReady(done []C.dcache_completion) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	got := false
	for !q.closed {
		var n C.size_t
		if C.dcache_queue_reap(q.q, &done[0], C.size_t(len(done)), 0, &n) != C.DCACHE_OK || n == 0 {
			break
		}
		got = true
		for _, c := range done[:n] {
			q.complete(uint64(c.user_data), c.result, int(c.len))
		}
	}
	return got
}

// complete answers the read with id (q.mu held), or reads again with a buffer of the value's
// size when the first one was too small.
func (q *Queue) complete(id uint64, code C.dcache_result, n int) {
	r := q.pending[id]
	delete(q.pending, id)
	var res Result
	switch code {
	case C.DCACHE_OK:
		res.Value = C.GoBytes(r.buf, C.int(n))
	case C.DCACHE_BUFFER_TOO_SMALL:
		if r.offset < 0 && n > r.size {
			C.free(r.buf)
			r.size = n
			err := q.start(r)
			if err == nil {
				return // read again; the slot stays taken
			}
			<-q.slots
			r.reply <- Result{Err: err}
			return
		}
		res.Err = &Error{Code: Code(code), Op: "dcache_queue_reap"}
	default:
		res.Err = &Error{Code: Code(code), Op: "dcache_queue_reap"}
	}
	C.free(r.buf)
	<-q.slots
	r.reply <- res
}

// Close stops the reaper, waits for the reads the device is running, and frees the queue;
// reads not yet answered get ErrClosed. Closing twice returns nil.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.mu.Unlock()
	q.file.Close() // ends the reaper's wait
	<-q.reaped
	q.mu.Lock()
	defer q.mu.Unlock()
	C.dcache_queue_close(q.q) // every buffer is ours again
	q.q = nil
	for id, r := range q.pending {
		C.free(r.buf)
		<-q.slots
		r.reply <- Result{Err: ErrClosed}
		delete(q.pending, id)
	}
	return nil
}

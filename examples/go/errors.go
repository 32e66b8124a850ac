package dcache

/*
#include "shim.h"
*/
import "C"

import "errors"

// Code is a dcache_result code.
type Code uint32

// The library's result codes.
const (
	CodeOK              Code = C.DCACHE_OK
	CodeNotFound        Code = C.DCACHE_NOT_FOUND        // absent, expired, deleted, evicted or failed verification: a miss
	CodeBufferTooSmall  Code = C.DCACHE_BUFFER_TOO_SMALL // the value does not fit the caller's buffer
	CodeInvalidArgument Code = C.DCACHE_INVALID_ARGUMENT // empty key, unknown flag or mode, bad option
	CodeTooLarge        Code = C.DCACHE_TOO_LARGE        // key or value over the cache's limits
	CodeRange           Code = C.DCACHE_RANGE            // offset past the end of the value
	CodeIOError         Code = C.DCACHE_IO_ERROR         // the operating system reported an I/O error
	CodeNoSpace         Code = C.DCACHE_NO_SPACE         // capacity cannot be reserved, or the device is full
	CodeNotACache       Code = C.DCACHE_NOT_A_CACHE      // the path holds other data
	CodeIncompatible    Code = C.DCACHE_INCOMPATIBLE     // another format version or geometry
	CodeLocked          Code = C.DCACHE_LOCKED           // another handle or process has the cache open
	CodeUnsupported     Code = C.DCACHE_UNSUPPORTED      // IODirect required and O_DIRECT refused
	CodeReadOnly        Code = C.DCACHE_READ_ONLY        // a write on a read-only handle or device
	CodeOutOfMemory     Code = C.DCACHE_OUT_OF_MEMORY    // an allocation failed
	CodeInternal        Code = C.DCACHE_INTERNAL         // a bug caught at the boundary
	CodeDeclined        Code = C.DCACHE_DECLINED         // the admission policy did not store the value
	CodeBusy            Code = C.DCACHE_BUSY             // a completion queue is full: reap first
)

// String is the library's static text for the code (dcache_strerror).
func (c Code) String() string { return C.GoString(C.dcache_strerror(C.dcache_result(c))) }

// Error is a failure reported by the library.
type Error struct {
	Code    Code   // the dcache_result
	Op      string // the C function that failed, e.g. "dcache_open"
	Message string // dcache_last_error_message() right after the failure: path, errno text, limit
}

func (e *Error) Error() string {
	s := "dcache: "
	if e.Op != "" {
		s += e.Op + ": "
	}
	s += e.Code.String()
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is makes errors.Is(err, ErrNotFound) (and the other sentinels) match any *Error with the
// same code, whatever its Op and Message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is. They compare by code only.
var (
	ErrNotFound        = &Error{Code: CodeNotFound}
	ErrBufferTooSmall  = &Error{Code: CodeBufferTooSmall}
	ErrInvalidArgument = &Error{Code: CodeInvalidArgument}
	ErrTooLarge        = &Error{Code: CodeTooLarge}
	ErrRange           = &Error{Code: CodeRange}
	ErrIO              = &Error{Code: CodeIOError}
	ErrNoSpace         = &Error{Code: CodeNoSpace}
	ErrNotACache       = &Error{Code: CodeNotACache}
	ErrIncompatible    = &Error{Code: CodeIncompatible}
	ErrLocked          = &Error{Code: CodeLocked}
	ErrUnsupported     = &Error{Code: CodeUnsupported}
	ErrReadOnly        = &Error{Code: CodeReadOnly}
	ErrOutOfMemory     = &Error{Code: CodeOutOfMemory}
	ErrInternal        = &Error{Code: CodeInternal}
	ErrDeclined        = &Error{Code: CodeDeclined}
	ErrBusy            = &Error{Code: CodeBusy}
)

// ErrClosed is returned by a Cache, File or Writer used after Close (for a Writer: after
// Commit or Abort, or after its Cache was closed).
var ErrClosed = errors.New("dcache: use of a closed handle")

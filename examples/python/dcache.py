"""dcache: a ctypes binding for libdcache, a raw-disk object cache and direct-I/O layer.

    from dcache import Cache, OPEN_CREATE

    with Cache("objects.dcache", flags=OPEN_CREATE, capacity=256 << 20) as c:
        c.put(b"key", b"value")
        c.get(b"key")        # b"value"; None on a miss

The library is found through, in order: the environment variable DCACHE_LIB (a path to
libdcache.so), ../../target/release/libdcache.so relative to this file (the repository's
build tree), then ctypes.util.find_library("dcache").

Keys and values are bytes-like (bytes, bytearray, memoryview); a str key is encoded as
UTF-8. Failures raise DcacheError (or a subclass per code) with .code and .message, the
library's detailed message read right after the failing call on the same thread. ctypes
releases the GIL during each call, so threads using one Cache run in parallel; a Cache and a
File may be shared by threads, a Writer is used by one thread at a time.
"""

import ctypes
import ctypes.util
import os
import threading

__all__ = [
    "Cache", "File", "Writer", "AsyncQueue", "DcacheError", "NotFoundError", "InvalidArgumentError",
    "TooLargeError", "RangeError", "DcacheIOError", "NoSpaceError", "NotACacheError",
    "IncompatibleError", "LockedError", "UnsupportedError", "ReadOnlyError",
    "OutOfMemoryError", "InternalError", "DeclinedError", "BusyError", "BufferTooSmallError", "ClosedError",
    "version", "version_number", "strerror", "library_path", "set_log_callback",
    "IO_AUTO", "IO_DIRECT", "IO_BUFFERED", "ADMIT_ALL", "ADMIT_FILTERED",
    "OPEN_CREATE", "OPEN_FORMAT", "OPEN_SYNC_WRITES", "OPEN_READ_ONLY",
    "FILE_CREATE", "FILE_TRUNCATE", "FILE_READ_ONLY", "FILE_SYNC_WRITES",
    "write_file", "read_file",
]

# --- constants (the values of include/dcache.h; test_dcache.py checks they match) ---------

OK = 0
NOT_FOUND = 1
BUFFER_TOO_SMALL = 2
INVALID_ARGUMENT = 3
TOO_LARGE = 4
RANGE = 5
IO_ERROR = 6
NO_SPACE = 7
NOT_A_CACHE = 8
INCOMPATIBLE = 9
LOCKED = 10
UNSUPPORTED = 11
READ_ONLY = 12
OUT_OF_MEMORY = 13
INTERNAL = 14
DECLINED = 15
BUSY = 16

STATS_PROMETHEUS = 1
STATS_JSON = 2

ADMIT_ALL = 0
ADMIT_FILTERED = 1

QUEUE_IO_URING = 1
QUEUE_THREADS = 2
# dcache_read.flags (dcache_submit_batch)
READ_RANGE = 1

IO_AUTO = 0
IO_DIRECT = 1
IO_BUFFERED = 2

OPEN_CREATE = 1
OPEN_FORMAT = 2
OPEN_SYNC_WRITES = 4
OPEN_READ_ONLY = 8

FILE_CREATE = 1
FILE_TRUNCATE = 2
FILE_READ_ONLY = 4
FILE_SYNC_WRITES = 8

LOG_ERROR = 1
LOG_WARN = 2
LOG_INFO = 3
LOG_DEBUG = 4

# --- finding and loading the library --------------------------------------------------------


def _find_library():
    env = os.environ.get("DCACHE_LIB")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    local = os.path.normpath(os.path.join(here, "..", "..", "target", "release", "libdcache.so"))
    if os.path.exists(local):
        return local
    found = ctypes.util.find_library("dcache")
    if found:
        return found
    raise OSError(
        "libdcache not found: set DCACHE_LIB to the path of libdcache.so, build it with "
        "`make lib` in the repository, or install it")


library_path = _find_library()
_lib = ctypes.CDLL(library_path)

# --- C types ------------------------------------------------------------------------------

_u8p = ctypes.POINTER(ctypes.c_uint8)
_result = ctypes.c_uint32
_size = ctypes.c_size_t
_u32 = ctypes.c_uint32
_u64 = ctypes.c_uint64
_in = ctypes.c_char_p     # const uint8_t *: takes bytes, None, or a ctypes char array
_out = ctypes.c_void_p    # uint8_t *: a ctypes char array (or None with length 0)


class _Options(ctypes.Structure):
    _fields_ = [
        ("struct_size", _u32),
        ("io_mode", _u32),
        ("flags", _u32),
        ("alignment", _u32),
        ("capacity", _u64),
        ("default_ttl_secs", _u64),
        ("max_value_size", _u64),
        ("admission", _u32),
        ("write_budget", _u64),
        ("metrics_textfile", ctypes.c_char_p),
        ("metrics_interval_ms", _u32),
    ]


class _FileOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", _u32),
        ("io_mode", _u32),
        ("flags", _u32),
        ("alignment", _u32),
        ("min_io_size", _u64),
    ]


# The library's _init functions write sizeof(its struct), which may grow in later versions:
# give them room. struct_size (set by _init) tells the library which version we hold.
class _OptionsBuf(ctypes.Structure):
    _fields_ = [("o", _Options), ("_spare", ctypes.c_uint8 * 256)]


class _FileOptionsBuf(ctypes.Structure):
    _fields_ = [("o", _FileOptions), ("_spare", ctypes.c_uint8 * 256)]


_STAT_FIELDS = [
    ("struct_size", _u32),
    ("direct_io", _u32),
    ("alignment", _u32),
    ("capacity", _u64),
    ("used_bytes", _u64),
    ("entries", _u64),
    ("hits", _u64),
    ("misses", _u64),
    ("puts", _u64),
    ("deletes", _u64),
    ("evictions", _u64),
    ("expirations", _u64),
    ("bytes_written", _u64),
    ("bytes_read", _u64),
    ("checksum_failures", _u64),
    ("io_errors", _u64),
    ("index_bytes", _u64),
    ("recovery_bytes_read", _u64),
    ("recovery_micros", _u64),
    ("recovery_entries_dropped", _u64),
    ("recovery_was_clean", _u32),
    ("reinserted", _u64),
    ("reinserted_bytes", _u64),
    ("promoted", _u64),
    ("promoted_bytes", _u64),
    ("ghost_hits", _u64),
    ("ghost_bytes", _u64),
    ("declined", _u64),
    ("admission_bytes", _u64),
    ("write_entries_dropped", _u64),
    ("recovery_regions_lost", _u64),
]


class _Stats(ctypes.Structure):
    _fields_ = _STAT_FIELDS


_LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, _u32, ctypes.c_char_p)


def _declare(name, restype, argtypes):
    fn = getattr(_lib, name)
    fn.restype = restype
    fn.argtypes = argtypes
    return fn


_strerror = _declare("dcache_strerror", ctypes.c_char_p, [_result])
_last_error_message = _declare("dcache_last_error_message", ctypes.c_char_p, [])
_version = _declare("dcache_version", ctypes.c_char_p, [])
_version_number = _declare("dcache_version_number", _u32, [])
_set_log_callback = _declare("dcache_set_log_callback", None, [_LOG_FN, ctypes.c_void_p])

_options_init_size = _declare("dcache_options_init_size", None,
                              [ctypes.POINTER(_OptionsBuf), ctypes.c_size_t])


def _options_init(opts):
    _options_init_size(opts, ctypes.sizeof(_Options))
_open = _declare("dcache_open", _result,
                 [ctypes.c_char_p, ctypes.POINTER(_OptionsBuf), ctypes.POINTER(ctypes.c_void_p)])
_close = _declare("dcache_close", _result, [ctypes.c_void_p])
_flush = _declare("dcache_flush", _result, [ctypes.c_void_p])
_put = _declare("dcache_put", _result, [ctypes.c_void_p, _in, _size, _in, _size, _u64])
_get = _declare("dcache_get", _result,
                [ctypes.c_void_p, _in, _size, _out, _size, ctypes.POINTER(_size)])
_get_range = _declare("dcache_get_range", _result,
                      [ctypes.c_void_p, _in, _size, _u64, _out, _size, ctypes.POINTER(_size)])
_value_size = _declare("dcache_value_size", _result,
                       [ctypes.c_void_p, _in, _size, ctypes.POINTER(_u64)])
_delete = _declare("dcache_delete", _result, [ctypes.c_void_p, _in, _size])
_contains = _declare("dcache_contains", _result, [ctypes.c_void_p, _in, _size])
_writer_open = _declare("dcache_writer_open", _result,
                        [ctypes.c_void_p, _in, _size, _u64, ctypes.POINTER(ctypes.c_void_p)])
_writer_write = _declare("dcache_writer_write", _result, [ctypes.c_void_p, _in, _size])
_writer_commit = _declare("dcache_writer_commit", _result, [ctypes.c_void_p])
_writer_abort = _declare("dcache_writer_abort", None, [ctypes.c_void_p])
_is_direct_io = _declare("dcache_is_direct_io", _u32, [ctypes.c_void_p])
_alignment = _declare("dcache_alignment", _u32, [ctypes.c_void_p])
_get_stats = _declare("dcache_get_stats", _result, [ctypes.c_void_p, ctypes.POINTER(_Stats)])


class _Completion(ctypes.Structure):
    _fields_ = [("user_data", _u64), ("result", _u32), ("len", _u64)]


_queue_open = _declare("dcache_queue_open", _result,
                       [ctypes.c_void_p, _u32, ctypes.POINTER(ctypes.c_void_p)])
_queue_close = _declare("dcache_queue_close", None, [ctypes.c_void_p])
_queue_fd = _declare("dcache_queue_fd", ctypes.c_int32, [ctypes.c_void_p])
_submit_get = _declare("dcache_submit_get", _result,
                       [ctypes.c_void_p, _in, _size, _out, _size, _u64])
_submit_get_range = _declare("dcache_submit_get_range", _result,
                             [ctypes.c_void_p, _in, _size, _u64, _out, _size, _u64])
_queue_reap = _declare("dcache_queue_reap", _result,
                       [ctypes.c_void_p, ctypes.POINTER(_Completion), _size, _size,
                        ctypes.POINTER(_size)])
_stats_format = _declare("dcache_stats_format", _result,
                         [ctypes.c_void_p, _u32, ctypes.c_char_p, _size, ctypes.POINTER(_size)])

_file_options_init = _declare("dcache_file_options_init", None,
                              [ctypes.POINTER(_FileOptionsBuf)])
_file_open = _declare("dcache_file_open", _result,
                      [ctypes.c_char_p, ctypes.POINTER(_FileOptionsBuf),
                       ctypes.POINTER(ctypes.c_void_p)])
_file_close = _declare("dcache_file_close", _result, [ctypes.c_void_p])
_file_pread = _declare("dcache_file_pread", _result,
                       [ctypes.c_void_p, _out, _size, _u64, ctypes.POINTER(_size)])
_file_pwrite = _declare("dcache_file_pwrite", _result, [ctypes.c_void_p, _in, _size, _u64])
_file_size = _declare("dcache_file_size", _result, [ctypes.c_void_p, ctypes.POINTER(_u64)])
_file_sync = _declare("dcache_file_sync", _result, [ctypes.c_void_p])
_file_is_direct_io = _declare("dcache_file_is_direct_io", _u32, [ctypes.c_void_p])
_file_alignment = _declare("dcache_file_alignment", _u32, [ctypes.c_void_p])
_file_write_all = _declare("dcache_file_write_all", _result,
                           [ctypes.c_char_p, _in, _size, ctypes.POINTER(_FileOptionsBuf)])
_file_read_all = _declare("dcache_file_read_all", _result,
                          [ctypes.c_char_p, ctypes.POINTER(_FileOptionsBuf),
                           ctypes.POINTER(_u8p), ctypes.POINTER(_size)])
_buffer_free = _declare("dcache_buffer_free", None, [_u8p, _size])

# --- errors -------------------------------------------------------------------------------


def strerror(code):
    """The library's static text for a result code."""
    return _strerror(code).decode("utf-8", "replace")


class DcacheError(Exception):
    """A failure reported by libdcache: .code (a dcache_result), .message (the library's
    detail: path, errno text, limit; may be empty), .function (the C function)."""

    def __init__(self, code, message="", function=""):
        self.code = code
        self.message = message
        self.function = function
        text = strerror(code)
        if function:
            text = "%s: %s" % (function, text)
        if message:
            text = "%s: %s" % (text, message)
        super().__init__(text)


class NotFoundError(DcacheError, KeyError):
    """Absent, expired, deleted, evicted or failed verification (raised only where a miss
    cannot be answered with None)."""

    def __str__(self):  # KeyError would show the repr
        return Exception.__str__(self)


class BufferTooSmallError(DcacheError):
    pass


class InvalidArgumentError(DcacheError, ValueError):
    pass


class TooLargeError(DcacheError, ValueError):
    pass


class RangeError(DcacheError, IndexError):
    pass


class DcacheIOError(DcacheError, OSError):
    pass


class NoSpaceError(DcacheError, OSError):
    pass


class NotACacheError(DcacheError):
    pass


class IncompatibleError(DcacheError):
    pass


class LockedError(DcacheError):
    pass


class UnsupportedError(DcacheError):
    pass


class ReadOnlyError(DcacheError):
    pass


class OutOfMemoryError(DcacheError, MemoryError):
    pass


class InternalError(DcacheError):
    pass


class DeclinedError(DcacheError):
    """The admission policy (a cache opened with admission filtering) did not store the value."""


class BusyError(DcacheError):
    """A completion queue holds as many reads as its depth: reap first."""


class ClosedError(DcacheError, ValueError):
    """The Cache, File or Writer was closed (or the Writer committed or aborted)."""

    def __init__(self, what):
        super().__init__(INVALID_ARGUMENT, "%s is closed" % what, "")


_ERRORS = {
    NOT_FOUND: NotFoundError,
    BUFFER_TOO_SMALL: BufferTooSmallError,
    INVALID_ARGUMENT: InvalidArgumentError,
    TOO_LARGE: TooLargeError,
    RANGE: RangeError,
    IO_ERROR: DcacheIOError,
    NO_SPACE: NoSpaceError,
    NOT_A_CACHE: NotACacheError,
    INCOMPATIBLE: IncompatibleError,
    LOCKED: LockedError,
    UNSUPPORTED: UnsupportedError,
    READ_ONLY: ReadOnlyError,
    OUT_OF_MEMORY: OutOfMemoryError,
    INTERNAL: InternalError,
    DECLINED: DeclinedError,
    BUSY: BusyError,
}


def _error(code, function):
    # Called right after the failing call on the same thread (a Python thread is one OS
    # thread), before any other dcache call: the message is valid only until then.
    raw = _last_error_message()
    message = raw.decode("utf-8", "replace") if raw else ""
    return _ERRORS.get(code, DcacheError)(code, message, function)


def _check(code, function):
    if code != OK:
        raise _error(code, function)


# --- argument conversion ------------------------------------------------------------------


def _bytes_arg(data, what="value"):
    """(pointer argument, length) for a bytes-like object, without copying where possible."""
    if isinstance(data, bytes):
        return data, len(data)
    if isinstance(data, str):
        b = data.encode("utf-8")
        return b, len(b)
    if data is None:
        return None, 0
    mv = memoryview(data)
    if not mv.c_contiguous:
        b = mv.tobytes()
        return b, len(b)
    n = mv.nbytes
    if n == 0:
        return None, 0
    if mv.readonly:
        b = mv.tobytes()  # ctypes cannot point into a read-only buffer without a copy
        return b, n
    return (ctypes.c_char * n).from_buffer(mv.cast("B")), n


def _key_arg(key):
    if key is None:
        raise TypeError("key must be bytes-like or str, not None")
    return _bytes_arg(key, "key")


def _path_arg(path):
    return os.fsencode(path)


def _ttl_arg(ttl):
    if ttl is None:
        return 0
    ttl = int(-(-ttl // 1)) if isinstance(ttl, float) else int(ttl)  # round seconds up
    if ttl < 0:
        raise ValueError("ttl must be >= 0")
    return ttl


_log_callback_ref = None  # keeps the ctypes callback object alive while installed


def set_log_callback(fn):
    """Sends the library's log messages to fn(level, message) (LOG_ERROR .. LOG_DEBUG, str).
    fn may be called from any thread and must not call into dcache. None restores the
    default (warnings and errors to stderr)."""
    global _log_callback_ref
    if fn is None:
        _set_log_callback(_LOG_FN(), None)
        _log_callback_ref = None
        return

    def trampoline(_userdata, level, message):
        try:
            fn(level, message.decode("utf-8", "replace") if message else "")
        except Exception:  # an exception must not unwind into the library
            pass

    cb = _LOG_FN(trampoline)
    _set_log_callback(cb, None)
    _log_callback_ref = cb


def version():
    """The library's version, "MAJOR.MINOR.PATCH"."""
    return _version().decode()


def version_number():
    return _version_number()


# --- handle lifetime ----------------------------------------------------------------------


class _Handle:
    """A C handle that many threads may use while one of them may close it: calls hold a
    use count, close waits for it to drop to zero, then frees the handle."""

    __slots__ = ("_ptr", "_users", "_cond", "_what")

    def __init__(self, ptr, what):
        self._ptr = ptr
        self._users = 0
        self._cond = threading.Condition(threading.Lock())
        self._what = what

    def acquire(self):
        with self._cond:
            if self._ptr is None:
                raise ClosedError(self._what)
            self._users += 1
            return self._ptr

    def release(self):
        with self._cond:
            self._users -= 1
            if self._users == 0:
                self._cond.notify_all()

    def detach(self):
        """Marks the handle closed and returns the pointer once no call uses it (None if it
        was closed already)."""
        with self._cond:
            ptr, self._ptr = self._ptr, None
            while self._users:
                self._cond.wait()
            return ptr

    @property
    def closed(self):
        return self._ptr is None


# --- the cache ----------------------------------------------------------------------------

_SCRATCH = 64 << 10


class _Closable:
    """The lifetime Cache and File share: a context manager whose close() frees the handle
    once (later calls raise ClosedError), and a finalizer that frees it if close() was never
    called. Subclasses name the C function that frees the handle."""

    _free = None
    _free_name = ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        h = getattr(self, "_h", None)
        if h is not None and not h.closed:
            try:
                ptr = h.detach()
                if ptr:
                    type(self)._free(ptr)
            except Exception:
                pass

    def close(self):
        """Frees the handle. Waits for calls in progress on other threads; later calls raise
        ClosedError. Closing twice is fine."""
        ptr = self._h.detach()
        if ptr:
            _check(type(self)._free(ptr), self._free_name)

    @property
    def closed(self):
        return self._h.closed


class Cache(_Closable):
    """An open dcache. Usable as a context manager; safe to share between threads.

    Cache(path, *, flags=0, capacity=0, io_mode=IO_AUTO, alignment=0,
          default_ttl=0, max_value_size=0)

    flags: OPEN_CREATE | OPEN_FORMAT | OPEN_SYNC_WRITES | OPEN_READ_ONLY.
    capacity: bytes (needed, at least 8 MiB, to create a file; 0 = the existing size).
    default_ttl: seconds (0 = no expiry by age).
    """

    _free = staticmethod(_close)
    _free_name = "dcache_close"

    def __init__(self, path, *, flags=0, capacity=0, io_mode=IO_AUTO, alignment=0,
                 default_ttl=0, max_value_size=0, admission=ADMIT_ALL, write_budget=0,
                 metrics_textfile=None, metrics_interval_ms=0):
        opts = _OptionsBuf()
        _options_init(ctypes.byref(opts))
        opts.o.io_mode = io_mode
        opts.o.flags = flags
        opts.o.alignment = alignment
        opts.o.capacity = capacity
        opts.o.default_ttl_secs = _ttl_arg(default_ttl)
        opts.o.max_value_size = max_value_size
        opts.o.admission = admission
        opts.o.write_budget = write_budget
        # Read during dcache_open only; `textfile` keeps the bytes alive until then.
        textfile = _path_arg(metrics_textfile) if metrics_textfile is not None else None
        opts.o.metrics_textfile = textfile
        opts.o.metrics_interval_ms = metrics_interval_ms
        self.path = os.fspath(path)
        out = ctypes.c_void_p()
        _check(_open(_path_arg(path), ctypes.byref(opts), ctypes.byref(out)), "dcache_open")
        self._h = _Handle(out.value, "cache")
        self._local = threading.local()

    def _scratch(self):
        buf = getattr(self._local, "buf", None)
        if buf is None:
            buf = self._local.buf = ctypes.create_string_buffer(_SCRATCH)
        return buf

    # operations

    def put(self, key, value, ttl=0):
        """Stores value under key. ttl in seconds; 0 = the cache's default."""
        k, kl = _key_arg(key)
        v, vl = _bytes_arg(value)
        ttl = _ttl_arg(ttl)
        c = self._h.acquire()
        try:
            r = _put(c, k, kl, v, vl, ttl)
            if r != OK:
                raise _error(r, "dcache_put")
        finally:
            self._h.release()

    def __setitem__(self, key, value):
        self.put(key, value)

    def get(self, key, default=None):
        """The value as bytes, or `default` (None) on a miss."""
        k, kl = _key_arg(key)
        n = _size()
        c = self._h.acquire()
        try:
            # One call for values up to 64 KiB (a per-thread scratch buffer); a larger value
            # is read into a buffer of the size the library reports.
            buf = self._scratch()
            r = _get(c, k, kl, buf, _SCRATCH, ctypes.byref(n))
            if r == OK:
                return ctypes.string_at(buf, n.value)
            while r == BUFFER_TOO_SMALL:
                size = n.value
                big = ctypes.create_string_buffer(size) if size else None
                r = _get(c, k, kl, big, size, ctypes.byref(n))
                if r == OK:
                    return ctypes.string_at(big, n.value) if big is not None else b""
                if r == BUFFER_TOO_SMALL and n.value <= size:
                    break
            if r == NOT_FOUND:
                return default
            raise _error(r, "dcache_get")
        finally:
            self._h.release()

    def __getitem__(self, key):
        v = self.get(key, _MISSING)
        if v is _MISSING:
            raise NotFoundError(NOT_FOUND, "", "dcache_get")
        return v

    def __contains__(self, key):
        return self.value_size(key) is not None

    def get_into(self, key, buffer):
        """Reads the value into a writable buffer (bytearray, memoryview, array) and returns
        its length; None on a miss. Raises BufferTooSmallError (with .needed) if it does not
        fit."""
        k, kl = _key_arg(key)
        mv = memoryview(buffer).cast("B")
        if mv.readonly:
            raise TypeError("get_into needs a writable buffer")
        cap = mv.nbytes
        out = (ctypes.c_char * cap).from_buffer(mv) if cap else None
        n = _size()
        c = self._h.acquire()
        try:
            r = _get(c, k, kl, out, cap, ctypes.byref(n))
            if r == OK:
                return n.value
            if r == NOT_FOUND:
                return None
            err = _error(r, "dcache_get")
            if r == BUFFER_TOO_SMALL:
                err.needed = n.value
            raise err
        finally:
            self._h.release()

    def get_range(self, key, offset, length):
        """Up to `length` bytes of the value from `offset` (fewer at its end); None on a miss.
        Raises RangeError if offset is past the end."""
        if length < 0 or offset < 0:
            raise ValueError("offset and length must be >= 0")
        k, kl = _key_arg(key)
        n = _size()
        c = self._h.acquire()
        try:
            if length > (1 << 20):
                # "to the end" requests: clamp to the value's size rather than allocating
                size = _u64()
                r = _value_size(c, k, kl, ctypes.byref(size))
                if r == NOT_FOUND:
                    return None
                if r != OK:
                    raise _error(r, "dcache_value_size")
                if offset <= size.value:
                    length = min(length, size.value - offset)
            buf = ctypes.create_string_buffer(length) if length else None
            r = _get_range(c, k, kl, offset, buf, length, ctypes.byref(n))
            if r == NOT_FOUND:
                return None
            if r != OK:
                raise _error(r, "dcache_get_range")
            return ctypes.string_at(buf, n.value) if buf is not None else b""
        finally:
            self._h.release()

    def value_size(self, key):
        """The value's length in bytes, or None on a miss."""
        k, kl = _key_arg(key)
        size = _u64()
        c = self._h.acquire()
        try:
            r = _value_size(c, k, kl, ctypes.byref(size))
            if r == NOT_FOUND:
                return None
            if r != OK:
                raise _error(r, "dcache_value_size")
            return size.value
        finally:
            self._h.release()

    def __contains__(self, key):
        """`key in cache`: from the in-memory index only, no I/O. True can still be a miss
        on get (expired, or failed verification); False is definite."""
        k, kl = _key_arg(key)
        c = self._h.acquire()
        try:
            r = _contains(c, k, kl)
            if r == NOT_FOUND:
                return False
            if r != OK:
                raise _error(r, "dcache_contains")
            return True
        finally:
            self._h.release()

    def delete(self, key):
        """Deletes key. True if it was there, False if not."""
        k, kl = _key_arg(key)
        c = self._h.acquire()
        try:
            r = _delete(c, k, kl)
            if r == NOT_FOUND:
                return False
            if r != OK:
                raise _error(r, "dcache_delete")
            return True
        finally:
            self._h.release()

    def __delitem__(self, key):
        if not self.delete(key):
            raise NotFoundError(NOT_FOUND, "", "dcache_delete")

    def flush(self):
        """Every put that returned before is durable afterwards."""
        c = self._h.acquire()
        try:
            _check(_flush(c), "dcache_flush")
        finally:
            self._h.release()

    def stats(self):
        """The cache's counters as a dict (direct_io as a bool)."""
        s = _Stats()
        s.struct_size = ctypes.sizeof(_Stats)
        c = self._h.acquire()
        try:
            _check(_get_stats(c, ctypes.byref(s)), "dcache_get_stats")
        finally:
            self._h.release()
        d = {name: getattr(s, name) for name, _ in _STAT_FIELDS if name != "struct_size"}
        d["direct_io"] = bool(d["direct_io"])
        d["recovery_was_clean"] = bool(d["recovery_was_clean"])
        return d

    async def get_async(self, key, default=None):
        """`get` for a coroutine: the read waits on the running loop (an AsyncQueue per loop,
        closed with the cache), never in a thread."""
        import asyncio
        loop = asyncio.get_running_loop()
        queues = self.__dict__.setdefault("_async_queues", {})
        q = queues.get(loop)
        if q is None or q._q is None:
            q = queues[loop] = AsyncQueue(self)
        return await q.get(key, default)

    def close(self):
        for q in self.__dict__.pop("_async_queues", {}).values():
            q.close()
        super().close()

    def metrics(self, format=STATS_PROMETHEUS):
        """The stats as text: Prometheus's exposition format (STATS_PROMETHEUS) or JSON
        (STATS_JSON), with the latency histograms."""
        n = _size()
        c = self._h.acquire()
        try:
            r = _stats_format(c, format, None, 0, ctypes.byref(n))
            while r == BUFFER_TOO_SMALL:
                buf = ctypes.create_string_buffer(n.value + 1024)  # counters move meanwhile
                r = _stats_format(c, format, buf, len(buf), ctypes.byref(n))
            _check(r, "dcache_stats_format")
            return buf.value.decode("utf-8")
        finally:
            self._h.release()

    @property
    def direct_io(self):
        """True when O_DIRECT is in effect."""
        c = self._h.acquire()
        try:
            return bool(_is_direct_io(c))
        finally:
            self._h.release()

    @property
    def alignment(self):
        c = self._h.acquire()
        try:
            return _alignment(c)
        finally:
            self._h.release()

    def writer(self, key, ttl=0):
        """A streaming put (see Writer): the value becomes visible, whole, at commit."""
        k, kl = _key_arg(key)
        ttl = _ttl_arg(ttl)
        out = ctypes.c_void_p()
        c = self._h.acquire()
        try:
            _check(_writer_open(c, k, kl, ttl, ctypes.byref(out)), "dcache_writer_open")
        finally:
            self._h.release()
        return Writer(self, out.value)


_MISSING = object()


class Writer:
    """A streaming put. As a context manager it commits on a normal exit and aborts on an
    exception. Use from one thread at a time."""

    def __init__(self, cache, ptr):
        self._cache = cache  # keeps the cache object alive while the writer is
        self._ptr = ptr
        self._lock = threading.Lock()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            if self._ptr is not None:
                self.commit()
        else:
            self.abort()
        return False

    def __del__(self):
        try:
            self.abort()
        except Exception:
            pass

    def write(self, data):
        """Appends data; returns its length."""
        d, n = _bytes_arg(data)
        with self._lock:
            if self._ptr is None:
                raise ClosedError("writer")
            _check(_writer_write(self._ptr, d, n), "dcache_writer_write")
        return n

    def commit(self):
        """Publishes the value. The writer is finished afterwards, whatever happens."""
        with self._lock:
            if self._ptr is None:
                raise ClosedError("writer")
            ptr, self._ptr = self._ptr, None
            _check(_writer_commit(ptr), "dcache_writer_commit")

    def abort(self):
        """Discards the value. No-op on a finished writer."""
        with self._lock:
            ptr, self._ptr = self._ptr, None
            if ptr is not None:
                _writer_abort(ptr)

    @property
    def closed(self):
        return self._ptr is None


# --- reads on an asyncio loop -------------------------------------------------------------


class AsyncQueue:
    """Reads with many gets in flight from one asyncio loop: a completion queue whose file
    descriptor the loop watches (loop.add_reader), so that no thread waits on the device.

        async with AsyncQueue(cache, depth=64) as q:
            values = await asyncio.gather(*(q.get(k) for k in keys))   # None on a miss

    Create it inside a running loop, use it from that loop only, and close it there (or use
    `async with`). Values are read into a 64 KiB buffer first; a larger value takes a second
    read at its size. `Cache.get_async(key)` uses one AsyncQueue per loop.
    """

    _FIRST_READ = 64 << 10

    def __init__(self, cache, depth=64):
        import asyncio
        self._loop = asyncio.get_running_loop()
        out = ctypes.c_void_p()
        c = cache._h.acquire()
        try:
            _check(_queue_open(c, depth, ctypes.byref(out)), "dcache_queue_open")
        finally:
            cache._h.release()
        self._q = out.value
        self._fd = _queue_fd(self._q)
        self._slots = asyncio.Semaphore(depth or 64)
        self._pending = {}   # id -> [future, key, offset or None, buffer]
        self._next = 0
        self._done = (_Completion * 64)()
        self._loop.add_reader(self._fd, self._on_readable)

    async def get(self, key, default=None):
        """The value under key, or default on a miss."""
        k, kl = _key_arg(key)
        try:
            return await self._read(bytes(k) if k else b"", kl, None, self._FIRST_READ)
        except NotFoundError:
            return default

    async def get_range(self, key, offset, length):
        """Up to length bytes of the value from offset (fewer at its end); None on a miss."""
        k, kl = _key_arg(key)
        try:
            return await self._read(bytes(k) if k else b"", kl, offset, length)
        except NotFoundError:
            return None

    async def _read(self, key, key_len, offset, size):
        if self._q is None:
            raise ClosedError("AsyncQueue")
        async with self._slots:
            if self._q is None:
                raise ClosedError("AsyncQueue")
            future = self._loop.create_future()
            self._submit(future, key, key_len, offset, size)
            return await future

    def _submit(self, future, key, key_len, offset, size):
        buf = ctypes.create_string_buffer(max(size, 1))
        rid = self._next
        self._next += 1
        if offset is None:
            r = _submit_get(self._q, key, key_len, buf, size, rid)
        else:
            r = _submit_get_range(self._q, key, key_len, offset, buf, size, rid)
        if r != OK:
            future.set_exception(_error(r, "dcache_submit_get"))
            return
        self._pending[rid] = (future, key, key_len, offset, buf)

    def _on_readable(self):
        n = _size()
        while self._q is not None:
            if _queue_reap(self._q, self._done, len(self._done), 0, ctypes.byref(n)) != OK \
                    or n.value == 0:
                return
            for c in self._done[:n.value]:
                self._complete(c.user_data, c.result, c.len)

    def _complete(self, rid, result, length):
        future, key, key_len, offset, buf = self._pending.pop(rid)
        if future.cancelled():
            return
        if result == OK:
            future.set_result(ctypes.string_at(buf, length))
        elif result == BUFFER_TOO_SMALL and offset is None and length > len(buf):
            self._submit(future, key, key_len, None, length)
        else:
            future.set_exception(_ERRORS.get(result, DcacheError)(result, "", "dcache_queue_reap"))

    def close(self):
        """Stops watching the fd, waits for the reads the device is running, frees the queue;
        reads not answered raise ClosedError. Closing twice is fine."""
        if self._q is None:
            return
        if not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
        q, self._q = self._q, None
        _queue_close(q)  # every buffer is ours again
        for future, *_ in self._pending.values():
            if not future.done():
                future.set_exception(ClosedError("AsyncQueue"))
        self._pending.clear()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_q", None) is not None and self._loop.is_closed():
            _queue_close(self._q)


# --- the direct-I/O file layer ------------------------------------------------------------


def _file_options(io_mode, flags, alignment, min_io_size):
    opts = _FileOptionsBuf()
    _file_options_init(ctypes.byref(opts))
    opts.o.io_mode = io_mode
    opts.o.flags = flags
    opts.o.alignment = alignment
    opts.o.min_io_size = min_io_size
    return opts


class File(_Closable):
    """A file opened through the direct-I/O layer: pread/pwrite at any offset and length.
    Usable as a context manager; safe to share between threads.

    File(path, *, flags=0, io_mode=IO_AUTO, alignment=0, min_io_size=0)
    flags: FILE_CREATE | FILE_TRUNCATE | FILE_READ_ONLY | FILE_SYNC_WRITES.
    """

    _free = staticmethod(_file_close)
    _free_name = "dcache_file_close"

    def __init__(self, path, *, flags=0, io_mode=IO_AUTO, alignment=0, min_io_size=0):
        opts = _file_options(io_mode, flags, alignment, min_io_size)
        self.path = os.fspath(path)
        out = ctypes.c_void_p()
        _check(_file_open(_path_arg(path), ctypes.byref(opts), ctypes.byref(out)),
               "dcache_file_open")
        self._h = _Handle(out.value, "file")

    def pread(self, length, offset):
        """Up to `length` bytes from `offset` (fewer only at the end of the file)."""
        if length < 0 or offset < 0:
            raise ValueError("offset and length must be >= 0")
        buf = ctypes.create_string_buffer(length) if length else None
        n = _size()
        f = self._h.acquire()
        try:
            _check(_file_pread(f, buf, length, offset, ctypes.byref(n)), "dcache_file_pread")
        finally:
            self._h.release()
        return ctypes.string_at(buf, n.value) if buf is not None else b""

    def pread_into(self, buffer, offset):
        """Reads into a writable buffer; returns the bytes read."""
        mv = memoryview(buffer).cast("B")
        if mv.readonly:
            raise TypeError("pread_into needs a writable buffer")
        cap = mv.nbytes
        out = (ctypes.c_char * cap).from_buffer(mv) if cap else None
        n = _size()
        f = self._h.acquire()
        try:
            _check(_file_pread(f, out, cap, offset, ctypes.byref(n)), "dcache_file_pread")
        finally:
            self._h.release()
        return n.value

    def pwrite(self, data, offset):
        """Writes data at offset; returns its length."""
        if offset < 0:
            raise ValueError("offset must be >= 0")
        d, n = _bytes_arg(data)
        f = self._h.acquire()
        try:
            _check(_file_pwrite(f, d, n, offset), "dcache_file_pwrite")
        finally:
            self._h.release()
        return n

    def size(self):
        s = _u64()
        f = self._h.acquire()
        try:
            _check(_file_size(f, ctypes.byref(s)), "dcache_file_size")
        finally:
            self._h.release()
        return s.value

    def sync(self):
        f = self._h.acquire()
        try:
            _check(_file_sync(f), "dcache_file_sync")
        finally:
            self._h.release()

    @property
    def direct_io(self):
        f = self._h.acquire()
        try:
            return bool(_file_is_direct_io(f))
        finally:
            self._h.release()

    @property
    def alignment(self):
        f = self._h.acquire()
        try:
            return _file_alignment(f)
        finally:
            self._h.release()


def write_file(path, data, *, io_mode=IO_AUTO, alignment=0, min_io_size=0, flags=0):
    """Replaces the file at path with data, atomically."""
    opts = _file_options(io_mode, flags, alignment, min_io_size)
    d, n = _bytes_arg(data)
    _check(_file_write_all(_path_arg(path), d, n, ctypes.byref(opts)), "dcache_file_write_all")


def read_file(path, *, io_mode=IO_AUTO, alignment=0, min_io_size=0, flags=0):
    """The whole content of the file at path, as bytes."""
    opts = _file_options(io_mode, flags, alignment, min_io_size)
    data = _u8p()
    n = _size()
    _check(_file_read_all(_path_arg(path), ctypes.byref(opts), ctypes.byref(data),
                          ctypes.byref(n)), "dcache_file_read_all")
    try:
        return ctypes.string_at(data, n.value) if n.value else b""
    finally:
        _buffer_free(data, n.value)

// dcache.hpp: header-only C++17 wrapper around the dcache C interface (dcache.h).
//
//   #include "dcache.hpp"
//   dcache::Cache cache("objects.dcache", dcache::Options().create().capacity(256 << 20));
//   cache.put("key", "value");
//   if (auto v = cache.get("key")) { /* std::vector<uint8_t> */ }
//
// Handles (Cache, File, Writer) are move-only and release their C handle in the destructor.
// Every failure throws dcache::Error, which carries the dcache_result code and the detailed
// message from dcache_last_error_message(), fetched immediately after the failing call.
// A miss is not an error: get / get_range / value_size return std::nullopt.
//
// Thread safety is that of the C library: a Cache and a File may be used from many threads
// at once (but not moved, closed or destroyed while other threads use them); a Writer by one
// thread at a time.
//
// Note on names: the C header declares `typedef struct dcache dcache;` at global scope, which
// would clash with `namespace dcache`. This header therefore includes dcache.h inside
// `namespace dcache::c`: the C API is available as dcache::c::dcache_put, dcache::c::dcache
// and so on, and its macros (DCACHE_OK, DCACHE_OPEN_CREATE, ...) as usual. A C++ file that
// includes dcache.hpp must not also include dcache.h at global scope.
#ifndef DCACHE_HPP
#define DCACHE_HPP

#if defined(DCACHE_VERSION_MAJOR) && !defined(DCACHE_HPP_INSIDE_NAMESPACE)
#error "dcache.h was included at global scope before dcache.hpp; in C++ include only dcache.hpp (its C API is dcache::c::*)"
#endif

// The headers dcache.h includes, pulled in first at global scope so that their include guards
// keep them out of namespace dcache::c below.
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <unordered_map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#define DCACHE_HPP_INSIDE_NAMESPACE 1
namespace dcache {
namespace c {
extern "C" {
#include "dcache.h"
}
}  // namespace c
}  // namespace dcache

namespace dcache {

using result = c::dcache_result;
using Stats = c::dcache_stats;

// ---------------------------------------------------------------------------------------
// bytes_view: a non-owning view of bytes (C++17 stand-in for std::span<const std::byte>).
// Converts implicitly from std::string_view, std::string, string literals, and any
// contiguous container of 1-byte elements (std::vector<uint8_t>, std::vector<char>,
// std::array<std::byte, N>, ...); explicitly from (pointer, length).
class bytes_view {
public:
    constexpr bytes_view() noexcept = default;
    bytes_view(const void *data, size_t size) noexcept
        : data_(static_cast<const uint8_t *>(data)), size_(size) {}
    bytes_view(std::string_view s) noexcept  // NOLINT(google-explicit-constructor)
        : data_(reinterpret_cast<const uint8_t *>(s.data())), size_(s.size()) {}
    bytes_view(const char *s) noexcept  // NOLINT(google-explicit-constructor)
        : bytes_view(std::string_view(s)) {}
    bytes_view(const std::string &s) noexcept  // NOLINT(google-explicit-constructor)
        : bytes_view(std::string_view(s)) {}

    template <class C,
              class E = std::remove_pointer_t<decltype(std::data(std::declval<const C &>()))>,
              class = std::enable_if_t<sizeof(E) == 1 && std::is_trivially_copyable_v<E> &&
                                       !std::is_convertible_v<const C &, std::string_view>>,
              class = decltype(std::size(std::declval<const C &>()))>
    bytes_view(const C &container) noexcept  // NOLINT(google-explicit-constructor)
        : data_(reinterpret_cast<const uint8_t *>(std::data(container))),
          size_(std::size(container)) {}

    const uint8_t *data() const noexcept { return data_; }
    size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::string_view as_string_view() const noexcept {
        return {reinterpret_cast<const char *>(data_), size_};
    }

private:
    const uint8_t *data_ = nullptr;
    size_t size_ = 0;
};

// ---------------------------------------------------------------------------------------
// Errors

class Error : public std::runtime_error {
public:
    Error(result code, std::string message, const char *function)
        : std::runtime_error(format(code, message, function)),
          code_(code),
          message_(std::move(message)),
          function_(function ? function : "") {}

    // The dcache_result code (DCACHE_NOT_FOUND, DCACHE_IO_ERROR, ...).
    result code() const noexcept { return code_; }
    // The library's detail (dcache_last_error_message()): path, errno text, which limit; may
    // be empty.
    const std::string &message() const noexcept { return message_; }
    // The C function that failed, e.g. "dcache_open".
    const std::string &function() const noexcept { return function_; }
    // dcache_strerror(code()).
    const char *code_text() const noexcept { return c::dcache_strerror(code_); }

private:
    static std::string format(result code, const std::string &message, const char *function) {
        std::string s = function ? function : "dcache";
        s += ": ";
        s += c::dcache_strerror(code);
        if (!message.empty()) {
            s += ": ";
            s += message;
        }
        return s;
    }

    result code_;
    std::string message_;
    std::string function_;
};

namespace detail {
// Must be called right after the failing C call, before any other dcache call on this thread:
// the message is only valid until then.
[[noreturn]] inline void throw_error(result r, const char *function) {
    const char *m = c::dcache_last_error_message();
    std::string message = m ? m : "";  // copy before anything else touches the library
    throw Error(r, std::move(message), function);
}
inline void check(result r, const char *function) {
    if (r != DCACHE_OK) throw_error(r, function);
}
}  // namespace detail

inline const char *version() noexcept { return c::dcache_version(); }
inline uint32_t version_number() noexcept { return c::dcache_version_number(); }
inline const char *strerror(result r) noexcept { return c::dcache_strerror(r); }

// ---------------------------------------------------------------------------------------
// Options for Cache. Starts from dcache_options_init's defaults; setters chain.

class Options {
public:
    Options() noexcept { c::dcache_options_init(&raw_); }

    Options &io_mode(uint32_t mode) noexcept { raw_.io_mode = mode; return *this; }
    Options &flags(uint32_t flags) noexcept { raw_.flags = flags; return *this; }
    Options &create() noexcept { raw_.flags |= DCACHE_OPEN_CREATE; return *this; }
    Options &format() noexcept { raw_.flags |= DCACHE_OPEN_FORMAT; return *this; }
    Options &sync_writes() noexcept { raw_.flags |= DCACHE_OPEN_SYNC_WRITES; return *this; }
    Options &read_only() noexcept { raw_.flags |= DCACHE_OPEN_READ_ONLY; return *this; }
    Options &alignment(uint32_t bytes) noexcept { raw_.alignment = bytes; return *this; }
    Options &capacity(uint64_t bytes) noexcept { raw_.capacity = bytes; return *this; }
    Options &default_ttl_secs(uint64_t s) noexcept { raw_.default_ttl_secs = s; return *this; }
    Options &max_value_size(uint64_t bytes) noexcept { raw_.max_value_size = bytes; return *this; }
    // DCACHE_ADMIT_ALL (the default) or DCACHE_ADMIT_FILTERED: then put() and writer() may
    // throw an Error whose code() is DCACHE_DECLINED (nothing stored).
    Options &admission(uint32_t mode) noexcept { raw_.admission = mode; return *this; }
    // Bytes per second the cache may write, kept with DCACHE_ADMIT_FILTERED; 0 = no limit.
    Options &write_budget(uint64_t bytes_per_sec) noexcept { raw_.write_budget = bytes_per_sec; return *this; }

    const c::dcache_options &raw() const noexcept { return raw_; }
    c::dcache_options &raw() noexcept { return raw_; }

private:
    c::dcache_options raw_;
};

class Cache;

// ---------------------------------------------------------------------------------------
// Writer: a streaming put. The value becomes visible, whole, only at commit(). Destroying an
// uncommitted Writer aborts it. Use from one thread at a time.

class Writer {
public:
    Writer() noexcept = default;
    ~Writer() { abort(); }
    Writer(Writer &&o) noexcept : w_(std::exchange(o.w_, nullptr)) {}
    Writer &operator=(Writer &&o) noexcept {
        if (this != &o) {
            abort();
            w_ = std::exchange(o.w_, nullptr);
        }
        return *this;
    }
    Writer(const Writer &) = delete;
    Writer &operator=(const Writer &) = delete;

    // True until commit() or abort().
    explicit operator bool() const noexcept { return w_ != nullptr; }

    Writer &write(bytes_view data) {
        detail::check(c::dcache_writer_write(require(), data.data(), data.size()),
                      "dcache_writer_write");
        return *this;
    }

    // Publishes the value. The writer is finished afterwards whether or not this throws.
    void commit() {
        c::dcache_writer *w = std::exchange(require(), nullptr);
        detail::check(c::dcache_writer_commit(w), "dcache_writer_commit");
    }

    // Discards everything written; nothing becomes visible. No-op on a finished writer.
    void abort() noexcept {
        if (w_) c::dcache_writer_abort(std::exchange(w_, nullptr));
    }

    c::dcache_writer *native_handle() const noexcept { return w_; }

private:
    friend class Cache;
    explicit Writer(c::dcache_writer *w) noexcept : w_(w) {}
    c::dcache_writer *&require() {
        if (!w_) throw Error(DCACHE_INVALID_ARGUMENT, "writer already committed or aborted", "dcache::Writer");
        return w_;
    }
    c::dcache_writer *w_ = nullptr;
};

// ---------------------------------------------------------------------------------------
// Cache

class Cache {
public:
    Cache() noexcept = default;  // an empty (closed) handle
    explicit Cache(const std::string &path, const Options &options = Options()) {
        detail::check(c::dcache_open(path.c_str(), &options.raw(), &c_), "dcache_open");
    }
    static Cache open(const std::string &path, const Options &options = Options()) {
        return Cache(path, options);
    }

    ~Cache() {
        if (c_) c::dcache_close(c_);  // destructor cannot report; call close() to see errors
    }
    Cache(Cache &&o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
    Cache &operator=(Cache &&o) noexcept {
        if (this != &o) {
            if (c_) c::dcache_close(c_);
            c_ = std::exchange(o.c_, nullptr);
        }
        return *this;
    }
    Cache(const Cache &) = delete;
    Cache &operator=(const Cache &) = delete;

    explicit operator bool() const noexcept { return c_ != nullptr; }
    bool is_open() const noexcept { return c_ != nullptr; }

    // Flushes and releases the cache. The handle is closed afterwards even if this throws.
    void close() {
        if (!c_) return;
        detail::check(c::dcache_close(std::exchange(c_, nullptr)), "dcache_close");
    }

    void put(bytes_view key, bytes_view value, uint64_t ttl_secs = 0) {
        detail::check(c::dcache_put(require(), key.data(), key.size(), value.data(),
                                    value.size(), ttl_secs),
                      "dcache_put");
    }

    // The whole value, or std::nullopt on a miss.
    std::optional<std::vector<uint8_t>> get(bytes_view key) const {
        c::dcache *h = require();
        // One call for values up to kScratchSize: read into a per-thread scratch buffer and
        // copy out exactly. Larger values: the library answers BUFFER_TOO_SMALL with the size,
        // and the value is read straight into a vector of that size.
        thread_local std::vector<uint8_t> scratch(kScratchSize);
        size_t len = 0;
        result r = c::dcache_get(h, key.data(), key.size(), scratch.data(), scratch.size(), &len);
        if (r == DCACHE_OK) return std::vector<uint8_t>(scratch.data(), scratch.data() + len);
        if (r == DCACHE_NOT_FOUND) return std::nullopt;
        if (r != DCACHE_BUFFER_TOO_SMALL) detail::throw_error(r, "dcache_get");
        std::vector<uint8_t> out;
        if (!read_grow(h, key, len, out)) return std::nullopt;
        return out;
    }

    // Like get(), as a std::string.
    std::optional<std::string> get_string(bytes_view key) const {
        auto v = get(key);
        if (!v) return std::nullopt;
        return std::string(v->begin(), v->end());
    }

    // Replaces `out` with the value; false on a miss (out is then empty). Reads into out's
    // existing capacity first, so a loop of get_into calls allocates only when a value is
    // larger than any before.
    bool get_into(bytes_view key, std::vector<uint8_t> &out) const {
        c::dcache *h = require();
        if (out.capacity() == 0) {
            auto v = get(key);
            if (!v) {
                out.clear();
                return false;
            }
            out = std::move(*v);
            return true;
        }
        out.resize(out.capacity());
        size_t len = 0;
        result r = c::dcache_get(h, key.data(), key.size(), out.data(), out.size(), &len);
        if (r == DCACHE_OK) {
            out.resize(len);
            return true;
        }
        if (r == DCACHE_NOT_FOUND) {
            out.clear();
            return false;
        }
        if (r != DCACHE_BUFFER_TOO_SMALL) detail::throw_error(r, "dcache_get");
        if (!read_grow(h, key, len, out)) {
            out.clear();
            return false;
        }
        return true;
    }

    // Reads up to len bytes starting at offset (fewer at the end of the value); std::nullopt on
    // a miss. Throws Error with DCACHE_RANGE if offset is past the end.
    std::optional<std::vector<uint8_t>> get_range(bytes_view key, uint64_t offset,
                                                  size_t len) const {
        c::dcache *h = require();
        if (len > kRangeProbeThreshold) {
            // Avoid allocating a huge buffer for "read to the end" style requests.
            uint64_t size = 0;
            result r = c::dcache_value_size(h, key.data(), key.size(), &size);
            if (r == DCACHE_NOT_FOUND) return std::nullopt;
            detail::check(r, "dcache_value_size");
            if (offset <= size && size - offset < len) len = checked_size(size - offset);
        }
        std::vector<uint8_t> out(len);
        size_t got = 0;
        result r = c::dcache_get_range(h, key.data(), key.size(), offset, out.data(), out.size(),
                                       &got);
        if (r == DCACHE_NOT_FOUND) return std::nullopt;
        detail::check(r, "dcache_get_range");
        out.resize(got);
        return out;
    }

    // The value's size in bytes, or std::nullopt on a miss.
    std::optional<uint64_t> value_size(bytes_view key) const {
        uint64_t size = 0;
        result r = c::dcache_value_size(require(), key.data(), key.size(), &size);
        if (r == DCACHE_NOT_FOUND) return std::nullopt;
        detail::check(r, "dcache_value_size");
        return size;
    }

    // Whether the in-memory index holds the key: no I/O, so safe on an event loop. true can
    // still be a miss on get (expired, or failed verification); false is definite.
    bool contains(bytes_view key) const {
        result r = c::dcache_contains(require(), key.data(), key.size());
        if (r == DCACHE_NOT_FOUND) return false;
        detail::check(r, "dcache_contains");
        return true;
    }

    // Deletes the key. Returns false if the library reported it absent (DCACHE_NOT_FOUND).
    bool remove(bytes_view key) {
        result r = c::dcache_delete(require(), key.data(), key.size());
        if (r == DCACHE_NOT_FOUND) return false;
        detail::check(r, "dcache_delete");
        return true;
    }
    bool erase(bytes_view key) { return remove(key); }

    // Every put that returned before is durable afterwards.
    void flush() { detail::check(c::dcache_flush(require()), "dcache_flush"); }

    Stats stats() const {
        Stats s;
        std::memset(&s, 0, sizeof s);
        s.struct_size = static_cast<uint32_t>(sizeof s);
        detail::check(c::dcache_get_stats(require(), &s), "dcache_get_stats");
        return s;
    }

    bool is_direct_io() const { return c::dcache_is_direct_io(require()) != 0; }
    uint32_t alignment() const { return c::dcache_alignment(require()); }

    Writer writer(bytes_view key, uint64_t ttl_secs = 0) {
        c::dcache_writer *w = nullptr;
        detail::check(c::dcache_writer_open(require(), key.data(), key.size(), ttl_secs, &w),
                      "dcache_writer_open");
        return Writer(w);
    }

    c::dcache *native_handle() const noexcept { return c_; }
    // Gives up ownership: the caller must dcache_close the returned handle.
    c::dcache *release() noexcept { return std::exchange(c_, nullptr); }

private:
    static constexpr size_t kRangeProbeThreshold = size_t(1) << 20;
    static constexpr size_t kScratchSize = size_t(64) << 10;

    // After BUFFER_TOO_SMALL said `needed`: read into out, growing it if the value is replaced
    // by a larger one in the meantime. False on a miss.
    static bool read_grow(c::dcache *h, bytes_view key, size_t needed, std::vector<uint8_t> &out) {
        for (;;) {
            out.resize(needed);
            size_t len = 0;
            result r = c::dcache_get(h, key.data(), key.size(), out.data(), out.size(), &len);
            if (r == DCACHE_OK) {
                out.resize(len);
                return true;
            }
            if (r == DCACHE_NOT_FOUND) return false;
            if (r != DCACHE_BUFFER_TOO_SMALL || len <= out.size())
                detail::throw_error(r, "dcache_get");
            needed = len;
        }
    }

    static size_t checked_size(uint64_t n) {
        if (n > static_cast<uint64_t>(SIZE_MAX))
            throw Error(DCACHE_TOO_LARGE, "value does not fit in memory", "dcache::Cache");
        return static_cast<size_t>(n);
    }
    c::dcache *require() const {
        if (!c_) throw Error(DCACHE_INVALID_ARGUMENT, "cache is closed", "dcache::Cache");
        return c_;
    }
    c::dcache *c_ = nullptr;
};

// ---------------------------------------------------------------------------------------
// Queue: many reads in flight from one thread (the C completion queue). Submits return at
// once; when fd() is readable (epoll, poll, any event loop), reap() runs the callbacks of the
// reads that completed, on the calling thread.
//
//   dcache::Queue q(cache, 64);
//   q.get("key", [](dcache::Queue::Result r) { if (r.found()) use(r.value); });
//   ... poll q.fd() for POLLIN, then q.reap();  or q.wait_all();
//
// One thread at a time uses a Queue (submits and reaps). A value is read into a 64 KiB buffer
// first; a larger value takes a second read at its size. Destroying the queue waits for the
// reads the device is running and drops the callbacks of those not yet reaped. Callbacks may
// submit more reads; one that throws stops reap() after the other callbacks of its batch.

class Queue {
public:
    struct Result {
        // DCACHE_OK, DCACHE_NOT_FOUND (a miss), DCACHE_RANGE, DCACHE_IO_ERROR, ...
        result code = DCACHE_OK;
        // The bytes read, when code is DCACHE_OK.
        std::vector<uint8_t> value;
        bool found() const noexcept { return code == DCACHE_OK; }
    };
    using Callback = std::function<void(Result)>;

    Queue() noexcept = default;  // an empty (closed) queue
    explicit Queue(Cache &cache, uint32_t depth = 64) {
        detail::check(c::dcache_queue_open(cache.native_handle(), depth, &q_), "dcache_queue_open");
    }
    ~Queue() { c::dcache_queue_close(q_); }
    Queue(Queue &&o) noexcept
        : q_(std::exchange(o.q_, nullptr)), pending_(std::move(o.pending_)), next_(o.next_) {}
    Queue &operator=(Queue &&o) noexcept {
        if (this != &o) {
            c::dcache_queue_close(q_);
            q_ = std::exchange(o.q_, nullptr);
            pending_ = std::move(o.pending_);
            next_ = o.next_;
        }
        return *this;
    }
    Queue(const Queue &) = delete;
    Queue &operator=(const Queue &) = delete;

    // Readable while completions wait to be reaped. Owned by the queue.
    int fd() const noexcept { return c::dcache_queue_fd(q_); }
    // Reads submitted whose callbacks have not run.
    size_t in_flight() const noexcept { return pending_.size(); }

    // Reads the value under key; `done` runs from a later reap(). When the queue's depth of
    // reads is in flight, reaps (running callbacks) until there is room. Throws Error on bad
    // arguments (no callback will run then).
    void get(bytes_view key, Callback done) {
        submit(std::make_unique<Read>(key, std::nullopt, kFirstRead, std::move(done)));
    }
    // Reads up to len bytes of the value from offset (fewer at its end).
    void get_range(bytes_view key, uint64_t offset, size_t len, Callback done) {
        submit(std::make_unique<Read>(key, offset, len, std::move(done)));
    }

    // Runs the callbacks of the reads completed, waiting until at least `min` have; returns
    // how many ran. reap() never waits: call it when fd() is readable.
    size_t reap(size_t min = 0) {
        require();
        c::dcache_completion done[64];
        size_t ran = 0;
        std::exception_ptr failed;
        for (;;) {
            size_t want = std::min(min > ran ? min - ran : 0, pending_.size());
            size_t n = 0;
            detail::check(c::dcache_queue_reap(q_, done, 64, std::min<size_t>(want, 64), &n),
                          "dcache_queue_reap");
            if (n == 0) break;
            for (size_t i = 0; i < n; i++) {
                if (complete(done[i], failed)) ran++;
            }
        }
        if (failed) std::rethrow_exception(failed);
        return ran;
    }

    // Reaps until every read submitted has run its callback.
    void wait_all() {
        while (!pending_.empty()) reap(1);
    }

    c::dcache_queue *native_handle() const noexcept { return q_; }

private:
    static constexpr size_t kFirstRead = size_t(64) << 10;

    struct Read {
        Read(bytes_view k, std::optional<uint64_t> off, size_t size, Callback cb)
            : key(k.data(), k.data() + k.size()), offset(off), buf(size), done(std::move(cb)) {}
        std::vector<uint8_t> key;
        std::optional<uint64_t> offset;
        std::vector<uint8_t> buf;
        Callback done;
    };

    void submit(std::unique_ptr<Read> read) {
        require();
        for (;;) {
            result r = start(*read);
            if (r == DCACHE_OK) break;
            if (r != DCACHE_BUSY) detail::throw_error(r, read->offset ? "dcache_submit_get_range" : "dcache_submit_get");
            reap(1);
        }
        pending_.emplace(next_++, std::move(read));
    }

    // Submits `read` under the id next_ will give it.
    result start(Read &read) {
        if (read.offset)
            return c::dcache_submit_get_range(q_, read.key.data(), read.key.size(), *read.offset,
                                              read.buf.data(), read.buf.size(), next_);
        return c::dcache_submit_get(q_, read.key.data(), read.key.size(), read.buf.data(),
                                    read.buf.size(), next_);
    }

    // Runs the callback of a completion (false: the read was submitted again, larger).
    bool complete(const c::dcache_completion &c, std::exception_ptr &failed) {
        auto it = pending_.find(c.user_data);
        if (it == pending_.end()) return false;
        std::unique_ptr<Read> read = std::move(it->second);
        pending_.erase(it);
        Result res;
        res.code = c.result;
        if (c.result == DCACHE_BUFFER_TOO_SMALL && !read->offset && c.len > read->buf.size()) {
            read->buf.resize(static_cast<size_t>(c.len));
            if (start(*read) == DCACHE_OK) {
                pending_.emplace(next_++, std::move(read));
                return false;
            }
        }
        if (c.result == DCACHE_OK) {
            read->buf.resize(static_cast<size_t>(c.len));
            res.value = std::move(read->buf);
        }
        try {
            read->done(std::move(res));
        } catch (...) {
            if (!failed) failed = std::current_exception();
        }
        return true;
    }

    void require() const {
        if (!q_) throw Error(DCACHE_INVALID_ARGUMENT, "queue is closed", "dcache::Queue");
    }

    c::dcache_queue *q_ = nullptr;
    std::unordered_map<uint64_t, std::unique_ptr<Read>> pending_;
    uint64_t next_ = 0;
};

// ---------------------------------------------------------------------------------------
// File: the direct-I/O file layer. pread/pwrite at any offset and length.

class FileOptions {
public:
    FileOptions() noexcept { c::dcache_file_options_init(&raw_); }

    FileOptions &io_mode(uint32_t mode) noexcept { raw_.io_mode = mode; return *this; }
    FileOptions &flags(uint32_t flags) noexcept { raw_.flags = flags; return *this; }
    FileOptions &create() noexcept { raw_.flags |= DCACHE_FILE_CREATE; return *this; }
    FileOptions &truncate() noexcept { raw_.flags |= DCACHE_FILE_TRUNCATE; return *this; }
    FileOptions &read_only() noexcept { raw_.flags |= DCACHE_FILE_READ_ONLY; return *this; }
    FileOptions &sync_writes() noexcept { raw_.flags |= DCACHE_FILE_SYNC_WRITES; return *this; }
    FileOptions &alignment(uint32_t bytes) noexcept { raw_.alignment = bytes; return *this; }
    FileOptions &min_io_size(uint64_t bytes) noexcept { raw_.min_io_size = bytes; return *this; }

    const c::dcache_file_options &raw() const noexcept { return raw_; }
    c::dcache_file_options &raw() noexcept { return raw_; }

private:
    c::dcache_file_options raw_;
};

class File {
public:
    using Options = FileOptions;

    File() noexcept = default;
    explicit File(const std::string &path, const FileOptions &options = FileOptions()) {
        detail::check(c::dcache_file_open(path.c_str(), &options.raw(), &f_), "dcache_file_open");
    }
    static File open(const std::string &path, const FileOptions &options = FileOptions()) {
        return File(path, options);
    }
    ~File() {
        if (f_) c::dcache_file_close(f_);
    }
    File(File &&o) noexcept : f_(std::exchange(o.f_, nullptr)) {}
    File &operator=(File &&o) noexcept {
        if (this != &o) {
            if (f_) c::dcache_file_close(f_);
            f_ = std::exchange(o.f_, nullptr);
        }
        return *this;
    }
    File(const File &) = delete;
    File &operator=(const File &) = delete;

    explicit operator bool() const noexcept { return f_ != nullptr; }
    bool is_open() const noexcept { return f_ != nullptr; }

    void close() {
        if (!f_) return;
        detail::check(c::dcache_file_close(std::exchange(f_, nullptr)), "dcache_file_close");
    }

    // Reads into buf; returns the bytes read (fewer than len only at the end of the file).
    size_t pread(void *buf, size_t len, uint64_t offset) const {
        size_t got = 0;
        detail::check(c::dcache_file_pread(require(), static_cast<uint8_t *>(buf), len, offset,
                                           &got),
                      "dcache_file_pread");
        return got;
    }
    std::vector<uint8_t> pread(size_t len, uint64_t offset) const {
        std::vector<uint8_t> out(len);
        out.resize(pread(out.data(), out.size(), offset));
        return out;
    }

    void pwrite(bytes_view data, uint64_t offset) {
        detail::check(c::dcache_file_pwrite(require(), data.data(), data.size(), offset),
                      "dcache_file_pwrite");
    }

    uint64_t size() const {
        uint64_t s = 0;
        detail::check(c::dcache_file_size(require(), &s), "dcache_file_size");
        return s;
    }
    void sync() { detail::check(c::dcache_file_sync(require()), "dcache_file_sync"); }
    bool is_direct_io() const { return c::dcache_file_is_direct_io(require()) != 0; }
    uint32_t alignment() const { return c::dcache_file_alignment(require()); }

    // Whole files: atomic replace, and read of a whole file.
    static void write_all(const std::string &path, bytes_view data,
                          const FileOptions &options = FileOptions()) {
        detail::check(c::dcache_file_write_all(path.c_str(), data.data(), data.size(),
                                               &options.raw()),
                      "dcache_file_write_all");
    }
    static std::vector<uint8_t> read_all(const std::string &path,
                                         const FileOptions &options = FileOptions()) {
        uint8_t *data = nullptr;
        size_t len = 0;
        detail::check(c::dcache_file_read_all(path.c_str(), &options.raw(), &data, &len),
                      "dcache_file_read_all");
        struct Free {
            uint8_t *d;
            size_t n;
            ~Free() {
                if (d) c::dcache_buffer_free(d, n);
            }
        } guard{data, len};
        return std::vector<uint8_t>(data, data + len);
    }

    c::dcache_file *native_handle() const noexcept { return f_; }
    c::dcache_file *release() noexcept { return std::exchange(f_, nullptr); }

private:
    c::dcache_file *require() const {
        if (!f_) throw Error(DCACHE_INVALID_ARGUMENT, "file is closed", "dcache::File");
        return f_;
    }
    c::dcache_file *f_ = nullptr;
};

}  // namespace dcache

#endif  // DCACHE_HPP

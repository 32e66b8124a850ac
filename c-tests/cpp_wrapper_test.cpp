// Tests for include/dcache.hpp, the C++17 wrapper.
//
//   make test-cpp
// builds this with -std=c++17 -Wall -Wextra -Werror -fsanitize=address,undefined and runs it.
// Usage: cpp_wrapper_test [WORKDIR]   (default: a new directory under $TMPDIR or /tmp)
// Prints one line per check group and closes with "cpp_wrapper_test: N passed, M failed".
#include "dcache.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

int g_passed = 0;
int g_failed = 0;
std::string g_dir;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (cond) {                                                                            \
            ++g_checks_ok;                                                                     \
        } else {                                                                               \
            ++g_checks_bad;                                                                    \
            std::fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);    \
        }                                                                                      \
    } while (0)

int g_checks_ok = 0;
int g_checks_bad = 0;

// Runs fn, expects it to throw dcache::Error with the given code; returns the error.
std::optional<dcache::Error> expect_error(dcache::result code, const std::function<void()> &fn,
                                          int line) {
    try {
        fn();
    } catch (const dcache::Error &e) {
        if (e.code() != code) {
            std::fprintf(stderr, "  line %d: expected code %u (%s), got %u: %s\n", line,
                         (unsigned)code, dcache::strerror(code), (unsigned)e.code(), e.what());
            ++g_checks_bad;
            return std::nullopt;
        }
        ++g_checks_ok;
        return e;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "  line %d: expected dcache::Error, got std::exception: %s\n", line,
                     e.what());
        ++g_checks_bad;
        return std::nullopt;
    }
    std::fprintf(stderr, "  line %d: expected dcache::Error code %u (%s), nothing thrown\n", line,
                 (unsigned)code, dcache::strerror(code));
    ++g_checks_bad;
    return std::nullopt;
}
#define EXPECT_ERROR(code, ...) expect_error((code), [&]() { __VA_ARGS__; }, __LINE__)

void run(const char *name, void (*fn)()) {
    g_checks_ok = g_checks_bad = 0;
    try {
        fn();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "  unexpected exception: %s\n", e.what());
        ++g_checks_bad;
    }
    if (g_checks_bad == 0) {
        ++g_passed;
        std::printf("PASS %s (%d checks)\n", name, g_checks_ok);
    } else {
        ++g_failed;
        std::printf("FAIL %s (%d of %d checks failed)\n", name, g_checks_bad,
                    g_checks_ok + g_checks_bad);
    }
    std::fflush(stdout);
}

std::string path(const std::string &name) { return g_dir + "/" + name; }

bool exists(const std::string &p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0;
}

void remove_file(const std::string &p) { ::unlink(p.c_str()); }

dcache::Options small_cache() {
    return dcache::Options().create().capacity(32u << 20).io_mode(DCACHE_IO_AUTO);
}

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
    std::vector<uint8_t> v(n);
    uint32_t x = seed * 2654435761u + 1;
    for (auto &b : v) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b = static_cast<uint8_t>(x);
    }
    return v;
}

// ------------------------------------------------------------------------------------------

void test_static_properties() {
    static_assert(!std::is_copy_constructible_v<dcache::Cache>);
    static_assert(!std::is_copy_assignable_v<dcache::Cache>);
    static_assert(std::is_nothrow_move_constructible_v<dcache::Cache>);
    static_assert(std::is_nothrow_move_assignable_v<dcache::Cache>);
    static_assert(!std::is_copy_constructible_v<dcache::File>);
    static_assert(std::is_nothrow_move_constructible_v<dcache::File>);
    static_assert(!std::is_copy_constructible_v<dcache::Queue>);
    static_assert(std::is_nothrow_move_constructible_v<dcache::Queue>);
    static_assert(!std::is_copy_constructible_v<dcache::Writer>);
    static_assert(std::is_nothrow_move_constructible_v<dcache::Writer>);
    static_assert(std::is_base_of_v<std::runtime_error, dcache::Error>);
    static_assert(std::is_convertible_v<std::string_view, dcache::bytes_view>);
    static_assert(std::is_convertible_v<std::vector<uint8_t>, dcache::bytes_view>);
    static_assert(std::is_convertible_v<std::array<std::byte, 4>, dcache::bytes_view>);
    static_assert(!std::is_convertible_v<std::vector<int>, dcache::bytes_view>);
    CHECK(std::string(dcache::version()).size() >= 5);
    CHECK(dcache::version_number() ==
          DCACHE_VERSION_MAJOR * 10000u + DCACHE_VERSION_MINOR * 100u + DCACHE_VERSION_PATCH);
    CHECK(std::string(dcache::version()) == DCACHE_VERSION_STRING);
    CHECK(std::string(dcache::strerror(DCACHE_OK)).size() > 0);
    CHECK(dcache::strerror(0xFFFFFFFFu) != nullptr);
}

void test_round_trips() {
    const std::string p = path("roundtrip.dcache");
    dcache::Cache cache(p, small_cache());
    CHECK(cache.is_open());
    CHECK(exists(p));

    cache.put("hello", "world");
    auto v = cache.get("hello");
    CHECK(v.has_value());
    CHECK(v && std::string(v->begin(), v->end()) == "world");
    CHECK(cache.get_string("hello") == std::optional<std::string>("world"));

    // empty value
    cache.put("empty", dcache::bytes_view());
    auto e = cache.get("empty");
    CHECK(e.has_value() && e->empty());
    CHECK(cache.value_size("empty") == std::optional<uint64_t>(0));

    // binary keys and values with NUL bytes, through every bytes_view source
    const std::string bin_key("k\0ey", 4);
    const std::vector<uint8_t> bin_val = {0, 1, 2, 0, 255, 0};
    cache.put(bin_key, bin_val);
    CHECK(cache.get(bin_key) == std::optional<std::vector<uint8_t>>(bin_val));
    CHECK(!cache.get(std::string("k")).has_value());  // a prefix is another key
    std::array<std::byte, 3> akey{std::byte{1}, std::byte{2}, std::byte{3}};
    std::vector<char> cval = {'x', 'y'};
    cache.put(akey, cval);
    CHECK(cache.get_string(akey) == std::optional<std::string>("xy"));
    const uint8_t raw[] = {9, 8, 7};
    cache.put(dcache::bytes_view(raw, sizeof raw), dcache::bytes_view(raw, 2));
    CHECK(cache.value_size(dcache::bytes_view(raw, sizeof raw)) == std::optional<uint64_t>(2));

    // a range of sizes, crossing typical alignment boundaries
    const size_t sizes[] = {1, 511, 512, 513, 4095, 4096, 4097, 65536 + 3, 1u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
        auto val = pattern(sizes[i], uint32_t(i));
        std::string key = "size-" + std::to_string(sizes[i]);
        cache.put(key, val);
        auto got = cache.get(key);
        CHECK(got.has_value() && *got == val);
        CHECK(cache.value_size(key) == std::optional<uint64_t>(sizes[i]));
    }

    // overwrite with a larger, then a smaller value
    cache.put("grow", "ab");
    cache.put("grow", std::string(10000, 'z'));
    CHECK(cache.get_string("grow") == std::optional<std::string>(std::string(10000, 'z')));
    cache.put("grow", "c");
    CHECK(cache.get_string("grow") == std::optional<std::string>("c"));

    // get_into reuses the caller's buffer
    std::vector<uint8_t> buf;
    CHECK(cache.get_into("size-4096", buf) && buf == pattern(4096, 5));
    CHECK(!cache.get_into("nope", buf) && buf.empty());
    std::vector<uint8_t> small_buf;
    small_buf.reserve(10);  // too small: grows to the value's size
    CHECK(cache.get_into("size-65539", small_buf) && small_buf == pattern(65539, 7));
    CHECK(cache.get_into("size-1", small_buf) && small_buf == pattern(1, 0));  // reuses it
    CHECK(cache.get("size-1048576") == std::optional<std::vector<uint8_t>>(pattern(1u << 20, 8)));

    // ranges
    auto big = pattern(1u << 20, 8);
    auto r = cache.get_range("size-1048576", 1000, 5000);
    CHECK(r && r->size() == 5000 && std::equal(r->begin(), r->end(), big.begin() + 1000));
    r = cache.get_range("size-1048576", (1u << 20) - 10, 100);  // short at the end
    CHECK(r && r->size() == 10 && std::equal(r->begin(), r->end(), big.end() - 10));
    r = cache.get_range("size-1048576", 1u << 20, 100);  // offset == size reads 0 bytes
    CHECK(r && r->empty());
    r = cache.get_range("size-1048576", 12345, SIZE_MAX);  // "to the end" without a huge buffer
    CHECK(r && r->size() == (1u << 20) - 12345 &&
          std::equal(r->begin(), r->end(), big.begin() + 12345));

    // contains, then delete
    CHECK(cache.contains("hello"));
    CHECK(!cache.contains("never-stored"));
    CHECK(cache.remove("hello"));
    CHECK(!cache.contains("hello"));
    CHECK(!cache.get("hello").has_value());
    CHECK(!cache.value_size("hello").has_value());
    cache.put("hello", "again");
    CHECK(cache.erase("hello"));

    // persistence across close / reopen
    cache.put("persist", "yes");
    cache.flush();
    cache.close();
    CHECK(!cache.is_open());
    dcache::Cache again(p, dcache::Options());  // existing file: no CREATE, capacity 0
    CHECK(again.get_string("persist") == std::optional<std::string>("yes"));
    CHECK(again.get("size-4097") == std::optional<std::vector<uint8_t>>(pattern(4097, 6)));
    again.close();
    remove_file(p);
}

void test_misses() {
    const std::string p = path("miss.dcache");
    dcache::Cache cache(p, small_cache());
    CHECK(!cache.get("absent").has_value());
    CHECK(!cache.get_string("absent").has_value());
    CHECK(!cache.value_size("absent").has_value());
    CHECK(!cache.get_range("absent", 0, 10).has_value());
    CHECK(!cache.get_range("absent", 0, SIZE_MAX).has_value());
    const bool removed = cache.remove("absent");
    CHECK(!removed);
    auto s = cache.stats();
    CHECK(s.misses >= 1);
    cache.close();
    remove_file(p);
}

void test_errors() {
    // A missing file without DCACHE_OPEN_CREATE: I/O error naming the path.
    const std::string missing = path("does-not-exist.dcache");
    auto e = EXPECT_ERROR(DCACHE_IO_ERROR, dcache::Cache c(missing, dcache::Options()));
    CHECK(e && e->message().find("does-not-exist.dcache") != std::string::npos);
    CHECK(e && e->function() == "dcache_open");
    CHECK(e && std::string(e->what()).find(e->message()) != std::string::npos);
    CHECK(e && std::string(e->code_text()) == dcache::strerror(DCACHE_IO_ERROR));
    CHECK(!exists(missing));

    // A new file needs a capacity.
    EXPECT_ERROR(DCACHE_INVALID_ARGUMENT,
                 dcache::Cache c(path("nocap.dcache"), dcache::Options().create()));
    // Unknown I/O mode.
    EXPECT_ERROR(DCACHE_INVALID_ARGUMENT,
                 dcache::Cache c(path("badmode.dcache"), small_cache().io_mode(0xFFFFu)));

    const std::string p = path("errors.dcache");
    dcache::Cache cache(p, small_cache().max_value_size(1u << 20));

    // Empty key.
    e = EXPECT_ERROR(DCACHE_INVALID_ARGUMENT, cache.put("", "v"));
    EXPECT_ERROR(DCACHE_INVALID_ARGUMENT, cache.get(""));
    // Key over the limit (4096 bytes): refused, message says something.
    const std::string long_key(4097, 'k');
    e = EXPECT_ERROR(DCACHE_TOO_LARGE, cache.put(long_key, "v"));
    CHECK(e && !e->message().empty());
    cache.put(std::string(4096, 'k'), "max-key");
    CHECK(cache.get_string(std::string(4096, 'k')) == std::optional<std::string>("max-key"));
    // Value over max_value_size.
    e = EXPECT_ERROR(DCACHE_TOO_LARGE, cache.put("big", pattern((1u << 20) + 1, 1)));
    CHECK(e && !e->message().empty());
    CHECK(!cache.get("big").has_value());
    // Range past the end.
    cache.put("ten", "0123456789");
    e = EXPECT_ERROR(DCACHE_RANGE, cache.get_range("ten", 11, 1));
    CHECK(e && e->function() == "dcache_get_range");

    // The message belongs to the failing call: a later success does not leave it behind in a
    // new error, and each error carries its own text.
    auto e1 = EXPECT_ERROR(DCACHE_TOO_LARGE, cache.put(long_key, "v"));
    auto e2 = EXPECT_ERROR(DCACHE_IO_ERROR, dcache::Cache c(missing, dcache::Options()));
    CHECK(e1 && e2 && e1->message() != e2->message());
    CHECK(e2 && e2->message().find("does-not-exist") != std::string::npos);

    // A second handle on the same file: locked.
    e = EXPECT_ERROR(DCACHE_LOCKED, dcache::Cache c2(p, dcache::Options()));
    CHECK(e && !e->message().empty());
    cache.close();

    // Read-only handle refuses writes but reads.
    dcache::Cache ro(p, dcache::Options().read_only());
    CHECK(ro.get_string("ten") == std::optional<std::string>("0123456789"));
    EXPECT_ERROR(DCACHE_READ_ONLY, ro.put("x", "y"));
    ro.close();
    remove_file(p);

    // A file that holds other data.
    const std::string junk = path("junk.bin");
    {
        std::ofstream out(junk, std::ios::binary);
        std::string data(1u << 20, 'J');
        out.write(data.data(), std::streamsize(data.size()));
    }
    e = EXPECT_ERROR(DCACHE_NOT_A_CACHE, dcache::Cache c(junk, small_cache()));
    CHECK(e && !e->message().empty());
    {
        dcache::Cache formatted(junk, small_cache().format());  // FORMAT destroys the data
        formatted.put("k", "v");
        CHECK(formatted.get_string("k") == std::optional<std::string>("v"));
    }
    remove_file(junk);

    // Catching as std::runtime_error works too.
    bool caught = false;
    try {
        dcache::Cache c(missing, dcache::Options());
    } catch (const std::runtime_error &re) {
        caught = std::string(re.what()).find("dcache_open") != std::string::npos;
    }
    CHECK(caught);
}

void test_moves() {
    const std::string p1 = path("move1.dcache"), p2 = path("move2.dcache");
    dcache::Cache a(p1, small_cache());
    a.put("k", "from-a");
    auto *handle = a.native_handle();

    dcache::Cache b(std::move(a));
    CHECK(!a.is_open());  // NOLINT(bugprone-use-after-move): moved-from is empty
    CHECK(b.is_open() && b.native_handle() == handle);
    CHECK(b.get_string("k") == std::optional<std::string>("from-a"));
    auto e = EXPECT_ERROR(DCACHE_INVALID_ARGUMENT, a.get("k"));  // NOLINT
    CHECK(e && e->message().find("closed") != std::string::npos);
    a.close();  // closing an empty handle is a no-op

    // Move assignment closes the target's old cache (its lock is released: it reopens).
    dcache::Cache c(p2, small_cache());
    c.put("k", "from-c");
    c = std::move(b);
    CHECK(c.get_string("k") == std::optional<std::string>("from-a"));
    {
        dcache::Cache reopened(p2, dcache::Options());
        CHECK(reopened.get_string("k") == std::optional<std::string>("from-c"));
    }
    // Self-move leaves it intact.
    dcache::Cache &cref = c;
    c = std::move(cref);
    CHECK(c.is_open());

    // Cache::open factory and vector of caches (move-only element type).
    std::vector<dcache::Cache> many;
    many.push_back(dcache::Cache::open(path("move3.dcache"), small_cache()));
    many.push_back(std::move(c));
    many.reserve(16);  // reallocation moves them
    CHECK(many[1].get_string("k") == std::optional<std::string>("from-a"));
    many.clear();
    {
        dcache::Cache reopened(p1, dcache::Options());  // all released
        CHECK(reopened.get_string("k") == std::optional<std::string>("from-a"));
    }

    // release(): ownership passes to the caller.
    dcache::Cache d(p2, dcache::Options());
    auto *raw = d.release();
    CHECK(!d.is_open() && raw != nullptr);
    CHECK(dcache::c::dcache_close(raw) == DCACHE_OK);

    remove_file(p1);
    remove_file(p2);
    remove_file(path("move3.dcache"));
}

void test_writer() {
    const std::string p = path("writer.dcache");
    dcache::Cache cache(p, small_cache());
    const auto data = pattern(300000, 77);

    // commit: invisible until commit, then whole
    {
        auto w = cache.writer("streamed");
        CHECK(static_cast<bool>(w));
        for (size_t off = 0; off < data.size(); off += 7000) {
            size_t n = std::min<size_t>(7000, data.size() - off);
            w.write(dcache::bytes_view(data.data() + off, n));
        }
        CHECK(!cache.get("streamed").has_value());
        w.commit();
        CHECK(!w);
        EXPECT_ERROR(DCACHE_INVALID_ARGUMENT, w.commit());
        EXPECT_ERROR(DCACHE_INVALID_ARGUMENT, w.write("more"));
    }
    CHECK(cache.get("streamed") == std::optional<std::vector<uint8_t>>(data));
    auto r = cache.get_range("streamed", 123457, 1000);
    CHECK(r && std::equal(r->begin(), r->end(), data.begin() + 123457));

    // abort: nothing becomes visible, the old value stays
    cache.put("aborted", "old");
    {
        auto w = cache.writer("aborted");
        w.write("new value that never lands");
        w.abort();
        CHECK(!w);
        w.abort();  // twice is fine
    }
    CHECK(cache.get_string("aborted") == std::optional<std::string>("old"));

    // destructor aborts an uncommitted writer
    {
        auto w = cache.writer("dropped");
        w.write("x");
    }
    CHECK(!cache.get("dropped").has_value());

    // moved writer: the target commits
    {
        auto w1 = cache.writer("moved");
        w1.write("part1-");
        dcache::Writer w2 = std::move(w1);
        CHECK(!w1);  // NOLINT(bugprone-use-after-move)
        w2.write("part2");
        dcache::Writer w3;
        w3 = std::move(w2);
        w3.commit();
    }
    CHECK(cache.get_string("moved") == std::optional<std::string>("part1-part2"));

    // empty streamed value
    {
        auto w = cache.writer("empty-stream");
        w.commit();
    }
    CHECK(cache.value_size("empty-stream") == std::optional<uint64_t>(0));

    // errors from a writer
    EXPECT_ERROR(DCACHE_INVALID_ARGUMENT, cache.writer(""));
    EXPECT_ERROR(DCACHE_TOO_LARGE, cache.writer(std::string(5000, 'w')));
    cache.close();
    remove_file(p);
}

void test_stats_and_mode() {
    const std::string p = path("stats.dcache");
    dcache::Cache cache(p, small_cache());
    auto s0 = cache.stats();
    CHECK(s0.struct_size == 0 || s0.struct_size <= sizeof(dcache::Stats));
    CHECK(s0.capacity > 0 && s0.capacity <= (32u << 20));
    CHECK(s0.direct_io == (cache.is_direct_io() ? 1u : 0u));
    CHECK(s0.alignment == cache.alignment());
    const uint32_t align = cache.alignment();
    CHECK(align >= 512 && (align & (align - 1)) == 0);
    for (int i = 0; i < 10; ++i) cache.put("s" + std::to_string(i), std::string(1000, 'a'));
    (void)cache.get("s1");
    (void)cache.get("missing");
    cache.remove("s2");
    cache.flush();  // puts are buffered: bytes reach the device by the flush at the latest
    auto s1 = cache.stats();
    CHECK(s1.puts >= s0.puts + 10);
    CHECK(s1.hits >= s0.hits + 1);
    CHECK(s1.misses >= s0.misses + 1);
    CHECK(s1.deletes >= s0.deletes + 1);
    CHECK(s1.entries == s0.entries + 9);
    CHECK(s1.bytes_written >= s0.bytes_written + 10000);
    CHECK(s1.checksum_failures == 0 && s1.io_errors == 0);
    std::printf("  (cache I/O mode here: %s, alignment %u)\n",
                cache.is_direct_io() ? "direct" : "buffered", align);

    // buffered mode on request
    cache.close();
    dcache::Cache b(p, dcache::Options().io_mode(DCACHE_IO_BUFFERED));
    CHECK(!b.is_direct_io());
    CHECK(b.stats().direct_io == 0);
    b.close();
    remove_file(p);
}

void test_admission() {
    std::string p = path("admission.dc");
    {
        dcache::Cache cache(p, small_cache().admission(DCACHE_ADMIT_FILTERED));
        std::vector<uint8_t> v = pattern(40000, 1);  // over what a first miss stores
        EXPECT_ERROR(DCACHE_DECLINED, cache.put(dcache::bytes_view("k"), v));
        CHECK(!cache.get(dcache::bytes_view("k")));
        cache.put(dcache::bytes_view("k"), v);
        CHECK(cache.get(dcache::bytes_view("k")) == v);
        EXPECT_ERROR(DCACHE_DECLINED, cache.writer(dcache::bytes_view("w")));
        dcache::Writer w = cache.writer(dcache::bytes_view("w"));
        w.write(v);
        w.commit();
        CHECK(cache.get(dcache::bytes_view("w")) == v);
        CHECK(cache.stats().declined == 2);
        CHECK(cache.stats().admission_bytes > 0);
    }
    remove_file(p);
    {
        // A budget of 1 byte a second: nothing fits, not even a second miss.
        dcache::Cache cache(p, small_cache().admission(DCACHE_ADMIT_FILTERED).write_budget(1));
        std::vector<uint8_t> v = pattern(1000, 2);
        EXPECT_ERROR(DCACHE_DECLINED, cache.put(dcache::bytes_view("k"), v));
        EXPECT_ERROR(DCACHE_DECLINED, cache.put(dcache::bytes_view("k"), v));
    }
    remove_file(p);
}

void test_threads() {
    const std::string p = path("threads.dcache");
    dcache::Cache cache(p, small_cache());
    constexpr int kThreads = 8, kOps = 200;
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            try {
                for (int i = 0; i < kOps; ++i) {
                    std::string key = "t" + std::to_string(t) + "-" + std::to_string(i % 50);
                    auto val = pattern(100 + size_t(i) * 13 % 5000, uint32_t(t * 1000 + i));
                    cache.put(key, val);
                    auto got = cache.get(key);
                    if (!got || *got != val) ++bad;
                    // shared key, raced by everyone: any whole value is acceptable
                    cache.put("shared", std::string(size_t(1 + t * 100), char('a' + t)));
                    if (auto s = cache.get_string("shared")) {
                        if (s->empty() || s->find_first_not_of((*s)[0]) != std::string::npos)
                            ++bad;
                    }
                    // errors are per thread
                    try {
                        cache.put("", "x");
                        ++bad;
                    } catch (const dcache::Error &e) {
                        if (e.code() != DCACHE_INVALID_ARGUMENT) ++bad;
                    }
                }
            } catch (const std::exception &e) {
                std::fprintf(stderr, "  thread %d: %s\n", t, e.what());
                ++bad;
            }
        });
    }
    for (auto &th : threads) th.join();
    CHECK(bad.load() == 0);
    cache.close();
    remove_file(p);
}

void test_file() {
    const std::string p = path("file.bin");
    {
        dcache::File f(p, dcache::FileOptions().create().truncate());
        CHECK(f.is_open());
        CHECK(f.size() == 0);
        const uint32_t align = f.alignment();
        CHECK(align >= 512 && (align & (align - 1)) == 0);
        std::printf("  (file I/O mode here: %s, alignment %u)\n",
                    f.is_direct_io() ? "direct" : "buffered", align);

        // unaligned writes at unaligned offsets
        auto a = pattern(10000, 1);
        f.pwrite(a, 0);
        auto b = pattern(777, 2);
        f.pwrite(b, 4000);  // overwrite in the middle
        f.pwrite("tail", 12345);  // past the end: a hole, then 4 bytes
        CHECK(f.size() == 12349);
        std::vector<uint8_t> expect(12349, 0);
        std::copy(a.begin(), a.end(), expect.begin());
        std::copy(b.begin(), b.end(), expect.begin() + 4000);
        std::memcpy(expect.data() + 12345, "tail", 4);

        auto all = f.pread(20000, 0);  // short only at the end
        CHECK(all == expect);
        auto mid = f.pread(1000, 3999);
        CHECK(mid.size() == 1000 && std::equal(mid.begin(), mid.end(), expect.begin() + 3999));
        uint8_t one = 0;
        CHECK(f.pread(&one, 1, 4000) == 1 && one == b[0]);
        CHECK(f.pread(10, 12349).empty());  // at EOF
        CHECK(f.pread(10, 1u << 30).empty());  // past EOF
        f.pwrite(dcache::bytes_view(), 5);  // empty write
        CHECK(f.size() == 12349);
        f.sync();

        // concurrent pwrite/pread on disjoint ranges sharing aligned blocks
        std::vector<std::thread> ts;
        for (int t = 0; t < 4; ++t) {
            ts.emplace_back([&f, t] {
                for (int i = 0; i < 50; ++i) {
                    std::string s(100, char('A' + t));
                    f.pwrite(s, uint64_t(20000 + (i * 4 + t) * 100));
                }
            });
        }
        for (auto &th : ts) th.join();
        bool ok = true;
        auto region = f.pread(50 * 4 * 100, 20000);
        for (size_t i = 0; i < region.size(); ++i)
            if (region[i] != uint8_t('A' + (i / 100) % 4)) ok = false;
        CHECK(ok && region.size() == 20000);

        dcache::File moved = std::move(f);
        CHECK(!f.is_open() && moved.is_open());  // NOLINT(bugprone-use-after-move)
        EXPECT_ERROR(DCACHE_INVALID_ARGUMENT, f.size());  // NOLINT
        moved.close();
    }
    {
        dcache::File ro(p, dcache::FileOptions().read_only());
        CHECK(ro.size() == 40000);
        auto e = EXPECT_ERROR(DCACHE_READ_ONLY, ro.pwrite("x", 0));
        (void)e;
    }
    auto e = EXPECT_ERROR(DCACHE_IO_ERROR, dcache::File f(path("no-such-file.bin")));
    CHECK(e && e->message().find("no-such-file.bin") != std::string::npos);

    // whole files
    const std::string w = path("whole.bin");
    auto data = pattern(100003, 9);
    dcache::File::write_all(w, data);
    CHECK(dcache::File::read_all(w) == data);
    dcache::File::write_all(w, "short");
    auto back = dcache::File::read_all(w);
    CHECK(std::string(back.begin(), back.end()) == "short");
    dcache::File::write_all(w, dcache::bytes_view());
    CHECK(dcache::File::read_all(w).empty());
    EXPECT_ERROR(DCACHE_IO_ERROR, dcache::File::read_all(path("missing-whole.bin")));
    remove_file(w);
    remove_file(p);
}

}  // namespace

// A thousand reads in flight from this thread through dcache::Queue, reaped when its fd is
// readable (poll), every byte checked; ranges, misses, values past the first 64 KiB read,
// callbacks that submit more, and a queue destroyed with reads in flight.
void test_queue() {
    std::string p = path("queue.dcache");
    remove_file(p);
    const size_t sizes[] = {1, 100, 4096, 65536, 65537, 300000};
    const int n = 200;
    {
        dcache::Cache cache(p, dcache::Options().create().capacity(256u << 20));
        for (int i = 0; i < n; i++)
            cache.put("q" + std::to_string(i), pattern(sizes[i % 6] + i, i));
    }
    dcache::Cache cache(p);  // reopened: reads go to the device
    dcache::Queue q(cache, 32);
    CHECK(q.fd() >= 0);
    int right = 0, wrong = 0, missed = 0;
    for (int r = 0; r < 1000; r++) {
        int i = (r * 7) % (n + 10);  // 10 of every 210 are absent
        q.get("q" + std::to_string(i), [&, i](dcache::Queue::Result res) {
            if (i >= n) {
                (res.code == DCACHE_NOT_FOUND ? missed : wrong)++;
                return;
            }
            (res.found() && res.value == pattern(sizes[i % 6] + i, i) ? right : wrong)++;
        });
        if (q.in_flight() >= 16) {
            struct pollfd pfd = {q.fd(), POLLIN, 0};
            CHECK(::poll(&pfd, 1, 10000) == 1);
            q.reap();
        }
    }
    q.wait_all();
    CHECK(right + missed == 1000 && wrong == 0);
    CHECK(missed > 0);

    int ranges = 0, chained = 0;
    for (int i = 0; i < 50; i++) {
        auto v = pattern(sizes[i % 6] + i, i);
        uint64_t off = v.size() / 2;
        q.get_range("q" + std::to_string(i), off, 1000, [&, v, off](dcache::Queue::Result res) {
            size_t end = std::min<size_t>(v.size(), off + 1000);
            if (res.found() && res.value == std::vector<uint8_t>(v.begin() + off, v.begin() + end))
                ranges++;
            // A callback may submit more.
            q.get("q1", [&](dcache::Queue::Result again) { chained += again.found(); });
        });
    }
    q.wait_all();
    CHECK(ranges == 50 && chained == 50);
    CHECK(q.in_flight() == 0);

    // Destroyed with reads in flight: their buffers stay valid until the library let them go.
    {
        dcache::Queue early(cache, 8);
        for (int i = 0; i < 8; i++) early.get("q" + std::to_string(i), [](dcache::Queue::Result) {});
    }
    EXPECT_ERROR(DCACHE_INVALID_ARGUMENT, dcache::Queue().reap());
    EXPECT_ERROR(DCACHE_INVALID_ARGUMENT, q.get("", [](dcache::Queue::Result) {}));
    q = dcache::Queue();
    cache.close();
    remove_file(p);
}

int main(int argc, char **argv) {
    if (argc > 1) {
        g_dir = argv[1];
        ::mkdir(g_dir.c_str(), 0755);
    } else {
        const char *tmp = std::getenv("TMPDIR");
        std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/dcache-cpp-XXXXXX";
        std::vector<char> buf(templ.begin(), templ.end());
        buf.push_back('\0');
        if (!::mkdtemp(buf.data())) {
            std::perror("mkdtemp");
            return 2;
        }
        g_dir = buf.data();
    }
    std::printf("cpp_wrapper_test: dcache %s, work dir %s\n", dcache::version(), g_dir.c_str());

    run("static_properties", test_static_properties);
    run("round_trips", test_round_trips);
    run("misses", test_misses);
    run("errors", test_errors);
    run("moves", test_moves);
    run("writer", test_writer);
    run("stats_and_mode", test_stats_and_mode);
    run("admission", test_admission);
    run("threads", test_threads);
    run("file", test_file);
    run("queue", test_queue);

    if (argc <= 1) ::rmdir(g_dir.c_str());
    std::printf("cpp_wrapper_test: %d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}

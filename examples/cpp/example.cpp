// dcache C++ quick start (include/dcache.hpp).
//
//   make test-cpp        builds and runs this as build/cpp_example, linked with libdcache.a
//   build/cpp_example [PATH]          PATH defaults to ./example.dcache
#include "dcache.hpp"

#include <cstdio>
#include <string>

int main(int argc, char **argv) {
    const std::string path = argc > 1 ? argv[1] : "example.dcache";
    try {
        // Create the cache file on first use (64 MiB); later runs reopen it.
        dcache::Cache cache(path, dcache::Options().create().capacity(64u << 20));
        std::printf("dcache %s, %s I/O, alignment %u\n", dcache::version(),
                    cache.is_direct_io() ? "direct" : "buffered", cache.alignment());

        cache.put("greeting", "hello, disk");
        cache.put("ttl-key", "gone in 60 s", /*ttl_secs=*/60);

        if (auto v = cache.get_string("greeting")) std::printf("greeting = %s\n", v->c_str());
        if (!cache.get("no-such-key")) std::printf("no-such-key: miss\n");

        // Stream a large value; it appears, whole, at commit().
        auto w = cache.writer("big");
        std::string chunk(1 << 16, 'x');
        for (int i = 0; i < 32; ++i) w.write(chunk);
        w.commit();
        auto part = cache.get_range("big", 1000, 10);  // 10 bytes from offset 1000
        std::printf("big: %llu bytes, range read %zu bytes\n",
                    static_cast<unsigned long long>(cache.value_size("big").value_or(0)),
                    part ? part->size() : 0);

        cache.remove("ttl-key");
        cache.flush();  // everything put so far is durable
        auto s = cache.stats();
        std::printf("entries %llu, puts %llu, hits %llu, misses %llu\n",
                    static_cast<unsigned long long>(s.entries),
                    static_cast<unsigned long long>(s.puts),
                    static_cast<unsigned long long>(s.hits),
                    static_cast<unsigned long long>(s.misses));

        // Errors are exceptions with the library's code and detailed message.
        try {
            cache.put(std::string(5000, 'k'), "value");  // key over the 4096-byte limit
        } catch (const dcache::Error &e) {
            std::printf("expected error: code %u (%s): %s\n", static_cast<unsigned>(e.code()),
                        e.code_text(), e.message().c_str());
        }
    } catch (const dcache::Error &e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}

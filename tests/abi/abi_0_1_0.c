/* A program built against the 0.1.0 header (tests/abi/dcache-0.1.0.h, kept as it was) runs
 * against the current library: it opens a cache, puts, gets, reads the stats and closes.
 * Later versions append fields to dcache_options and dcache_stats; the library must read and
 * write only the struct_size bytes this program's structs have.
 *
 * Usage: abi_0_1_0 SCRATCH_DIR. Prints "abi-0.1.0: N passed, 0 failed" or the failures. */
#include "dcache-0.1.0.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (cond) {                                                                            \
            passed++;                                                                          \
        } else {                                                                               \
            failed++;                                                                          \
            fprintf(stderr, "FAIL %s:%d: %s (%s)\n", __FILE__, __LINE__, #cond,                \
                    dcache_last_error_message());                                              \
        }                                                                                      \
    } while (0)

/* A struct of the old header, with a canary after it that the library must not touch. */
#define CANARY 0xA5
struct stats_with_canary {
    dcache_stats s;
    uint8_t after[256];
};
struct options_with_canary {
    dcache_options o;
    uint8_t after[256];
};

static int untouched(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != CANARY)
            return 0;
    return 1;
}

static void value_of(uint8_t *v, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        v[i] = (uint8_t)(i * 31u + seed * 7u + (i >> 8));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/abi-0.1.0.dcache", argv[1]);
    remove(path);

    CHECK(dcache_version_number() >= DCACHE_VERSION_MAJOR * 10000 + DCACHE_VERSION_MINOR * 100);

    /* Options: _init fills this header's struct (the canary after it stays), and the library
     * reads only struct_size bytes of it. */
    struct options_with_canary oc;
    memset(&oc, CANARY, sizeof oc);
    dcache_options_init(&oc.o);
    CHECK(oc.o.struct_size == sizeof(dcache_options));
    CHECK(untouched(oc.after, sizeof oc.after));
    oc.o.flags = DCACHE_OPEN_CREATE;
    oc.o.capacity = 16u << 20;

    dcache *c = NULL;
    CHECK(dcache_open(path, &oc.o, &c) == DCACHE_OK);
    if (!c)
        goto done;

    enum { N = 64 };
    static uint8_t value[100000], back[100000];
    char key[32];
    for (unsigned i = 0; i < N; i++) {
        size_t len = 1000 + i * 1500;
        snprintf(key, sizeof key, "abi/%u", i);
        value_of(value, len, i);
        CHECK(dcache_put(c, (const uint8_t *)key, strlen(key), value, len, 0) == DCACHE_OK);
    }
    CHECK(dcache_flush(c) == DCACHE_OK);
    for (unsigned i = 0; i < N; i++) {
        size_t len = 1000 + i * 1500, got = 0;
        snprintf(key, sizeof key, "abi/%u", i);
        value_of(value, len, i);
        CHECK(dcache_get(c, (const uint8_t *)key, strlen(key), back, sizeof back, &got) ==
              DCACHE_OK);
        CHECK(got == len && memcmp(back, value, len) == 0);
    }
    size_t got = 0;
    CHECK(dcache_get(c, (const uint8_t *)"absent", 6, back, sizeof back, &got) ==
          DCACHE_NOT_FOUND);
    CHECK(strcmp(dcache_strerror(DCACHE_NOT_FOUND), "not found") == 0);

    /* Stats: exactly this header's struct is written, with the counters where it puts them. */
    struct stats_with_canary sc;
    memset(&sc, CANARY, sizeof sc);
    sc.s.struct_size = sizeof(dcache_stats);
    CHECK(dcache_get_stats(c, &sc.s) == DCACHE_OK);
    CHECK(untouched(sc.after, sizeof sc.after));
    CHECK(sc.s.struct_size == sizeof(dcache_stats));
    CHECK(sc.s.capacity == 16u << 20);
    CHECK(sc.s.entries == N);
    CHECK(sc.s.puts == N);
    CHECK(sc.s.hits == N);
    CHECK(sc.s.misses == 1);
    CHECK(sc.s.checksum_failures == 0 && sc.s.io_errors == 0);
    CHECK(sc.s.index_bytes > 0);
    CHECK(sc.s.recovery_was_clean == 0 || sc.s.recovery_was_clean == 1);

    CHECK(dcache_close(c) == DCACHE_OK);

    /* Reopen: what was flushed is there. */
    c = NULL;
    oc.o.flags = 0;
    CHECK(dcache_open(path, &oc.o, &c) == DCACHE_OK);
    if (c) {
        snprintf(key, sizeof key, "abi/%u", N - 1);
        size_t len = 1000 + (N - 1) * 1500;
        value_of(value, len, N - 1);
        CHECK(dcache_get(c, (const uint8_t *)key, strlen(key), back, sizeof back, &got) ==
              DCACHE_OK);
        CHECK(got == len && memcmp(back, value, len) == 0);
        memset(&sc, CANARY, sizeof sc);
        sc.s.struct_size = sizeof(dcache_stats);
        CHECK(dcache_get_stats(c, &sc.s) == DCACHE_OK);
        CHECK(untouched(sc.after, sizeof sc.after));
        CHECK(sc.s.entries == N && sc.s.recovery_was_clean == 1);
        CHECK(dcache_close(c) == DCACHE_OK);
    }
done:
    remove(path);
    printf("abi-0.1.0: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

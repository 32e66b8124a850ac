/*
 * dcache demo: open (or create) a cache file, store and read back a few thousand objects of
 * varied sizes, verify every byte, and show what the library is doing.
 *
 *   make demo                      builds this file into build/demo and runs it
 *   build/demo [PATH]              PATH defaults to ./demo.dcache
 *
 * Run it twice on the same PATH: the second run first looks for the objects the previous run
 * stored (persistence across close/reopen), then stores its own.
 *
 * Every object's content is a pseudo-random stream derived from (run number, object index),
 * so any run can regenerate and verify any earlier run's objects without keeping a copy.
 */
#define _POSIX_C_SOURCE 200809L
#include "dcache.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DEMO_CAPACITY (256ull << 20) /* 256 MiB */
#define DEMO_OBJECTS 3000u           /* objects per run */
#define DEMO_MIN_SIZE 16u            /* object sizes: log-uniform in [MIN, MAX] */
#define DEMO_MAX_SIZE (256u << 10)
#define DEMO_STREAM_SIZE (4u << 20)  /* one extra object written with dcache_writer */
#define DEMO_STREAM_CHUNK (64u << 10)

static const char MANIFEST_KEY[] = "demo:manifest";

/* ---------- deterministic content ---------- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t object_seed(uint64_t run, uint64_t index) {
    uint64_t s = (run << 32) ^ index ^ 0xD1CE5EEDull;
    return splitmix64(&s);
}

/* Size of object `index` of run `run`: log-uniform between DEMO_MIN_SIZE and DEMO_MAX_SIZE. */
static size_t object_size(uint64_t run, uint64_t index) {
    uint64_t s = object_seed(run, index) ^ 0x5151ull;
    double u = (double)(splitmix64(&s) >> 11) / 9007199254740992.0; /* [0, 1) */
    double lo = 4.0 /* log2(16) */, hi = 18.0 /* log2(256 KiB) */;
    double sz = 1.0;
    double e = lo + u * (hi - lo);
    /* 2^e without libm */
    while (e >= 1.0) { sz *= 2.0; e -= 1.0; }
    sz *= 1.0 + e * (0.6931471805599453 + e * (0.2402265069591007 + e * 0.0555041086648216));
    size_t n = (size_t)sz;
    if (n < DEMO_MIN_SIZE) n = DEMO_MIN_SIZE;
    if (n > DEMO_MAX_SIZE) n = DEMO_MAX_SIZE;
    return n;
}

static void fill(uint8_t *buf, size_t len, uint64_t seed) {
    uint64_t s = seed;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = splitmix64(&s);
        memcpy(buf + i, &v, 8);
    }
    if (i < len) {
        uint64_t v = splitmix64(&s);
        memcpy(buf + i, &v, len - i);
    }
}

static size_t object_key(char *out, size_t cap, uint64_t run, uint64_t index) {
    int n = snprintf(out, cap, "demo:run%" PRIu64 ":obj%06" PRIu64, run, index);
    return (size_t)n;
}

/* ---------- helpers ---------- */

static double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mib(uint64_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

/* Report a failed call with both the code's text and the library's detailed message. The
 * message is fetched first: it is valid only until this thread's next dcache call. */
static void report(const char *what, dcache_result r) {
    const char *detail = dcache_last_error_message();
    char saved[512];
    snprintf(saved, sizeof saved, "%s", detail ? detail : "");
    fprintf(stderr, "demo: %s failed: %s (code %u)%s%s\n", what, dcache_strerror(r), (unsigned)r,
            saved[0] ? ": " : "", saved);
}

#define CHECK(call, what)                                                                      \
    do {                                                                                       \
        dcache_result r_ = (call);                                                             \
        if (r_ != DCACHE_OK) {                                                                 \
            report((what), r_);                                                                \
            goto fail;                                                                         \
        }                                                                                      \
    } while (0)

/* Fetch `key` into buf (capacity cap) and compare with the regenerated content.
 * Returns 1 if found and correct, 0 on a miss, -1 on a mismatch or error. */
static int verify_object(dcache *c, uint64_t run, uint64_t index, uint8_t *buf, uint8_t *expect,
                         size_t cap) {
    char key[64];
    size_t klen = object_key(key, sizeof key, run, index);
    size_t want = object_size(run, index);
    size_t got = 0;
    dcache_result r = dcache_get(c, (const uint8_t *)key, klen, buf, cap, &got);
    if (r == DCACHE_NOT_FOUND) return 0;
    if (r != DCACHE_OK) {
        report(key, r);
        return -1;
    }
    fill(expect, want, object_seed(run, index));
    if (got != want || memcmp(buf, expect, want) != 0) {
        fprintf(stderr, "demo: %s: content mismatch (%zu bytes, expected %zu)\n", key, got, want);
        return -1;
    }
    return 1;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "./demo.dcache";
    int exit_code = 1;
    dcache *c = NULL;
    dcache_writer *w = NULL;
    uint8_t *buf = malloc(DEMO_STREAM_SIZE);
    uint8_t *expect = malloc(DEMO_STREAM_SIZE);
    if (!buf || !expect) {
        fprintf(stderr, "demo: out of memory\n");
        return 1;
    }

    struct stat st;
    int existed = stat(path, &st) == 0 && st.st_size > 0;

    dcache_options opts;
    dcache_options_init(&opts);
    opts.flags = DCACHE_OPEN_CREATE;
    opts.io_mode = DCACHE_IO_AUTO;
    /* A new (or empty) file is created with 256 MiB; an existing cache keeps its own size
     * (a capacity other than 0 must match it). */
    opts.capacity = existed ? 0 : DEMO_CAPACITY;

    printf("dcache %s demo\n", dcache_version());
    CHECK(dcache_open(path, &opts, &c), "dcache_open");
    {
        dcache_stats s0;
        memset(&s0, 0, sizeof s0);
        s0.struct_size = (uint32_t)sizeof s0;
        CHECK(dcache_get_stats(c, &s0), "dcache_get_stats");
        printf("cache:      %s (%s, capacity %.0f MiB)\n", path,
               existed ? "opened existing cache" : "created", mib(s0.capacity));
        if (existed)
            printf("reopen:     %s; index of %" PRIu64 " entries rebuilt in %.1f ms from %.2f MiB "
                   "read, %" PRIu64 " torn entries dropped\n",
                   s0.recovery_was_clean ? "previous close was clean" : "after a crash",
                   s0.entries, (double)s0.recovery_micros / 1e3, mib(s0.recovery_bytes_read),
                   s0.recovery_entries_dropped);
    }
    printf("I/O mode:   %s, alignment %u bytes\n",
           dcache_is_direct_io(c) ? "direct (O_DIRECT, page cache bypassed)"
                                  : "buffered (page cache; O_DIRECT not available here)",
           (unsigned)dcache_alignment(c));

    /* ---- 1. persistence: what did the previous run leave? ---- */
    uint64_t prev_run = 0, prev_count = 0;
    {
        char manifest[64];
        size_t mlen = 0;
        dcache_result r = dcache_get(c, (const uint8_t *)MANIFEST_KEY, sizeof MANIFEST_KEY - 1,
                                     (uint8_t *)manifest, sizeof manifest - 1, &mlen);
        if (r == DCACHE_OK) {
            manifest[mlen] = '\0';
            if (sscanf(manifest, "run=%" SCNu64 " objects=%" SCNu64, &prev_run, &prev_count) != 2) {
                fprintf(stderr, "demo: unreadable manifest \"%s\"; ignoring it\n", manifest);
                prev_run = prev_count = 0;
            }
        } else if (r != DCACHE_NOT_FOUND) {
            report("dcache_get(manifest)", r);
            goto fail;
        }
    }
    if (prev_run == 0) {
        printf("previous:   no earlier run found in this cache (run the demo again to see "
               "its objects persist)\n");
    } else {
        uint64_t found = 0, missing = 0;
        for (uint64_t i = 0; i < prev_count; i++) {
            int v = verify_object(c, prev_run, i, buf, expect, DEMO_STREAM_SIZE);
            if (v < 0) goto fail;
            if (v > 0) found++; else missing++;
        }
        printf("previous:   run #%" PRIu64 " stored %" PRIu64 " objects; found %" PRIu64
               " of them after reopening, all verified (%" PRIu64 " missing)\n",
               prev_run, prev_count, found, missing);
    }
    uint64_t run = prev_run + 1;

    /* ---- 2. puts ---- */
    uint64_t put_bytes = 0;
    double t0 = now_sec();
    for (uint64_t i = 0; i < DEMO_OBJECTS; i++) {
        char key[64];
        size_t klen = object_key(key, sizeof key, run, i);
        size_t n = object_size(run, i);
        fill(buf, n, object_seed(run, i));
        CHECK(dcache_put(c, (const uint8_t *)key, klen, buf, n, 0), "dcache_put");
        put_bytes += n;
    }
    double t_put = now_sec() - t0;
    t0 = now_sec();
    CHECK(dcache_flush(c), "dcache_flush");
    double t_flush = now_sec() - t0;

    /* ---- 3. gets, every byte verified ---- */
    uint64_t get_bytes = 0;
    t0 = now_sec();
    for (uint64_t i = 0; i < DEMO_OBJECTS; i++) {
        char key[64];
        size_t klen = object_key(key, sizeof key, run, i);
        size_t got = 0;
        CHECK(dcache_get(c, (const uint8_t *)key, klen, buf, DEMO_STREAM_SIZE, &got), key);
        get_bytes += got;
    }
    double t_get = now_sec() - t0;
    /* verification is kept out of the timed loop */
    for (uint64_t i = 0; i < DEMO_OBJECTS; i++) {
        if (verify_object(c, run, i, buf, expect, DEMO_STREAM_SIZE) != 1) {
            fprintf(stderr, "demo: object %" PRIu64 " of this run did not verify\n", i);
            goto fail;
        }
    }

    /* ---- 4. a streamed object and a range read ---- */
    {
        char key[64];
        size_t klen = (size_t)snprintf(key, sizeof key, "demo:run%" PRIu64 ":stream", run);
        fill(expect, DEMO_STREAM_SIZE, object_seed(run, UINT32_MAX));
        CHECK(dcache_writer_open(c, (const uint8_t *)key, klen, 0, &w), "dcache_writer_open");
        for (size_t off = 0; off < DEMO_STREAM_SIZE; off += DEMO_STREAM_CHUNK)
            CHECK(dcache_writer_write(w, expect + off, DEMO_STREAM_CHUNK), "dcache_writer_write");
        dcache_result r = dcache_writer_commit(w); /* frees w whatever it returns */
        w = NULL;
        CHECK(r, "dcache_writer_commit");

        uint64_t size = 0;
        CHECK(dcache_value_size(c, (const uint8_t *)key, klen, &size), "dcache_value_size");
        const uint64_t off = DEMO_STREAM_SIZE / 2 + 12345; /* deliberately unaligned */
        size_t got = 0;
        CHECK(dcache_get_range(c, (const uint8_t *)key, klen, off, buf, 100000, &got),
              "dcache_get_range");
        if (size != DEMO_STREAM_SIZE || got != 100000 || memcmp(buf, expect + off, got) != 0) {
            fprintf(stderr, "demo: streamed object or range read did not verify\n");
            goto fail;
        }
        printf("streamed:   %.0f MiB object written in %u KiB chunks; %zu-byte range read at "
               "offset %" PRIu64 " verified\n",
               mib(size), DEMO_STREAM_CHUNK >> 10, got, off);
    }

    /* ---- 5. a delete and a miss ---- */
    {
        char key[64];
        size_t klen = object_key(key, sizeof key, run, 0);
        CHECK(dcache_delete(c, (const uint8_t *)key, klen), "dcache_delete");
        size_t got = 0;
        dcache_result r = dcache_get(c, (const uint8_t *)key, klen, buf, DEMO_STREAM_SIZE, &got);
        if (r != DCACHE_NOT_FOUND) {
            fprintf(stderr, "demo: deleted key still readable (result %u)\n", (unsigned)r);
            goto fail;
        }
        /* object 0 is gone; store it again so the next run finds the whole set */
        size_t n = object_size(run, 0);
        fill(buf, n, object_seed(run, 0));
        CHECK(dcache_put(c, (const uint8_t *)key, klen, buf, n, 0), "dcache_put");
    }

    /* ---- 6. the manifest for the next run ---- */
    {
        char manifest[64];
        int mlen = snprintf(manifest, sizeof manifest, "run=%" PRIu64 " objects=%u", run,
                            DEMO_OBJECTS);
        CHECK(dcache_put(c, (const uint8_t *)MANIFEST_KEY, sizeof MANIFEST_KEY - 1,
                         (const uint8_t *)manifest, (size_t)mlen, 0),
              "dcache_put(manifest)");
        CHECK(dcache_flush(c), "dcache_flush");
    }

    printf("this run:   #%" PRIu64 ": stored %u objects (%.1f MiB, %u B to %u KiB each), read "
           "back and verified all of them\n",
           run, DEMO_OBJECTS, mib(put_bytes), DEMO_MIN_SIZE, DEMO_MAX_SIZE >> 10);
    printf("throughput: put %.1f MB/s, %.0f ops/s (+ %.1f ms flush) | get %.1f MB/s, %.0f ops/s "
           "[%s I/O, single thread]\n",
           (double)put_bytes / 1e6 / t_put, DEMO_OBJECTS / t_put, t_flush * 1e3,
           (double)get_bytes / 1e6 / t_get, DEMO_OBJECTS / t_get,
           dcache_is_direct_io(c) ? "direct" : "buffered");

    {
        dcache_stats s;
        memset(&s, 0, sizeof s);
        s.struct_size = (uint32_t)sizeof s;
        CHECK(dcache_get_stats(c, &s), "dcache_get_stats");
        printf("stats:      entries %" PRIu64 ", used %.1f of %.0f MiB, puts %" PRIu64
               ", hits %" PRIu64 ", misses %" PRIu64 ", deletes %" PRIu64 ", evictions %" PRIu64
               ", checksum failures %" PRIu64 "\n",
               s.entries, mib(s.used_bytes), mib(s.capacity), s.puts, s.hits, s.misses,
               s.deletes, s.evictions, s.checksum_failures);
        printf("            %.1f MiB written, %.1f MiB read, I/O errors %" PRIu64 "\n",
               mib(s.bytes_written), mib(s.bytes_read), s.io_errors);
    }

    {
        dcache_result r = dcache_close(c); /* frees c whatever it returns */
        c = NULL;
        CHECK(r, "dcache_close");
    }
    printf("done:       run the demo again on %s to see these objects persist\n", path);
    exit_code = 0;

fail:
    if (w) dcache_writer_abort(w);
    if (c) dcache_close(c);
    free(buf);
    free(expect);
    return exit_code;
}

/* The trace replayer in C, through the C interface only: a dcache_get per request, and on a
 * miss a dcache_put of a value of the recorded size, with the object's id as an 8-byte
 * little-endian key and the same value bytes as `dcache replay`. It exists to check
 * `dcache replay`: on the same trace and capacity both must count the same misses.
 *
 * Usage: replay TRACE.oracleGeneral CAPACITY_BYTES CACHE_PATH
 * Prints a JSON object; exits 1 on a wrong value or an error. */
#include <dcache.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_LEN 24

/* The bytes of `dcache replay`'s fill_value: 8-byte words of the id's seed and the index. */
static void fill_value(uint64_t id, uint8_t *out, size_t len)
{
    uint64_t seed = (id * UINT64_C(0x9E3779B97F4A7C15)) ^ UINT64_C(0xD6E8FEB86659FD93);
    for (size_t i = 0; i * 8 < len; i++) {
        uint64_t word = seed ^ ((uint64_t)i * UINT64_C(0xA0761D6478BD642F));
        uint8_t b[8];
        for (int k = 0; k < 8; k++)
            b[k] = (uint8_t)(word >> (8 * k));
        size_t n = len - i * 8 < 8 ? len - i * 8 : 8;
        memcpy(out + i * 8, b, n);
    }
}

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; k--)
        v = (v << 8) | p[k];
    return v;
}

static int fail(const char *what, dcache_result r)
{
    fprintf(stderr, "replay: %s: %s: %s\n", what, dcache_strerror(r), dcache_last_error_message());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s TRACE CAPACITY CACHE_PATH\n", argv[0]);
        return 2;
    }
    FILE *trace = fopen(argv[1], "rb");
    if (!trace) {
        fprintf(stderr, "replay: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    dcache_options o;
    dcache_options_init(&o);
    o.flags = DCACHE_OPEN_CREATE;
    o.capacity = strtoull(argv[2], NULL, 10);
    dcache *c = NULL;
    dcache_result r = dcache_open(argv[3], &o, &c);
    if (r != DCACHE_OK)
        return fail("dcache_open", r);
    uint64_t max = dcache_max_value_size(c);
    uint8_t *got = malloc(max), *want = malloc(max);
    uint64_t requests = 0, misses = 0, too_large = 0, wrong = 0;
    uint64_t requested_bytes = 0, missed_bytes = 0;
    uint8_t rec[RECORD_LEN];
    int status = 0;
    size_t n;
    while ((n = fread(rec, 1, RECORD_LEN, trace)) == RECORD_LEN) {
        uint64_t id = le(rec + 4, 8);
        uint32_t size = (uint32_t)le(rec + 12, 4);
        uint8_t key[8];
        for (int k = 0; k < 8; k++)
            key[k] = (uint8_t)(id >> (8 * k));
        requests++;
        requested_bytes += size;
        size_t len = 0;
        r = dcache_get(c, key, sizeof key, got, max, &len);
        if (r == DCACHE_OK) {
            fill_value(id, want, len);
            if (memcmp(got, want, len) != 0)
                wrong++;
        } else if (r == DCACHE_NOT_FOUND) {
            misses++;
            missed_bytes += size;
            if (size > max) {
                too_large++;
                continue;
            }
            fill_value(id, want, size);
            r = dcache_put(c, key, sizeof key, want, size, 0);
            if (r != DCACHE_OK) {
                status = fail("dcache_put", r);
                break;
            }
        } else {
            status = fail("dcache_get", r);
            break;
        }
    }
    if (n != 0 && n != RECORD_LEN) {
        fprintf(stderr, "replay: record %" PRIu64 " is truncated\n", requests + 1);
        status = 1;
    }
    printf("{\"requests\": %" PRIu64 ", \"misses\": %" PRIu64 ", \"miss_ratio\": %.6f, "
           "\"byte_miss_ratio\": %.6f, \"too_large\": %" PRIu64 ", \"wrong_values\": %" PRIu64 "}\n",
           requests, misses, requests ? (double)misses / (double)requests : 0.0,
           requested_bytes ? (double)missed_bytes / (double)requested_bytes : 0.0, too_large,
           wrong);
    free(got);
    free(want);
    fclose(trace);
    r = dcache_close(c);
    remove(argv[3]);
    if (r != DCACHE_OK)
        return fail("dcache_close", r);
    return status || wrong ? 1 : 0;
}

/* dcache_get_stats: the caller sets struct_size and at most that many bytes are written (a
 * shorter, older struct gets its prefix; a longer, newer one keeps its tail); the values are
 * exact where the operations make them so: a fresh cache is empty, 10 puts are 10 puts and 10
 * entries, 5 hits, 3 misses, 2 deletes, nothing evicted, expired or corrupt; direct_io and
 * alignment agree with dcache_is_direct_io/dcache_alignment; capacity is what was asked;
 * used_bytes grows with the data and stays within capacity; bytes_written and bytes_read
 * cover at least the value bytes moved. */
#include "common.h"

#include <stddef.h>

static dcache_stats get(dcache *c)
{
    dcache_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RC(dcache_get_stats(c, &st), DCACHE_OK);
    return st;
}

static void struct_size_rules(dcache *c)
{
    /* a struct from a newer header: bigger; the tail beyond sizeof must stay untouched */
    struct {
        dcache_stats s;
        uint8_t tail[64];
    } big;
    memset(&big, 0xCD, sizeof big);
    big.s.struct_size = sizeof big;
    CHECK_RC(dcache_get_stats(c, &big.s), DCACHE_OK);
    uint8_t cd[sizeof(dcache_stats) + 64];
    memset(cd, 0xCD, sizeof cd);
    CHECK_MEM(big.tail, cd, sizeof big.tail, "bytes past sizeof(dcache_stats) untouched");
    CHECK_EQ(big.s.capacity, 16 * MiB);

    /* a struct from an older header: only the first struct_size bytes are written */
    size_t prefix = offsetof(dcache_stats, used_bytes);
    dcache_stats small;
    memset(&small, 0xCD, sizeof small);
    small.struct_size = (uint32_t)prefix;
    CHECK_RC(dcache_get_stats(c, &small), DCACHE_OK);
    CHECK_EQ(small.capacity, 16 * MiB);
    CHECK_EQ(small.struct_size, prefix);
    CHECK_MEM((uint8_t *)&small + prefix, cd, sizeof small - prefix,
              "bytes past struct_size untouched");

    /* the smallest: just struct_size itself */
    memset(&small, 0xCD, sizeof small);
    small.struct_size = 4;
    dcache_result rc = dcache_get_stats(c, &small);
    CHECK_RC_IN(rc, DCACHE_OK, DCACHE_INVALID_ARGUMENT);
    CHECK_MEM((uint8_t *)&small + 4, cd, sizeof small - 4, "bytes past struct_size 4 untouched");
    memset(&small, 0xCD, sizeof small);
    small.struct_size = 0;
    rc = dcache_get_stats(c, &small);
    CHECK_RC_IN(rc, DCACHE_OK, DCACHE_INVALID_ARGUMENT);
    CHECK_MEM((uint8_t *)&small + 4, cd, sizeof small - 4, "struct_size 0: nothing written");
}

/* dcache_stats_format: the size rule (NULL, 0 asks; too small leaves the buffer alone), a
 * NUL-terminated text whose length + 1 is *needed, and the values of dcache_get_stats in it. */
static void format_rules(dcache *c, const dcache_stats *s)
{
    size_t needed = 0;
    CHECK_RC(dcache_stats_format(c, DCACHE_STATS_PROMETHEUS, NULL, 0, &needed),
             DCACHE_BUFFER_TOO_SMALL);
    CHECKF(needed > 1000, "needed %zu", needed);
    char small[8] = "abcdefg";
    size_t n2 = 0;
    CHECK_RC(dcache_stats_format(c, DCACHE_STATS_JSON, small, sizeof small, &n2),
             DCACHE_BUFFER_TOO_SMALL);
    CHECK_MEM(small, "abcdefg", sizeof small, "a buffer too small stays untouched");
    CHECK_RC(dcache_stats_format(c, 7, small, sizeof small, &n2), DCACHE_INVALID_ARGUMENT);
    CHECK(strstr(dcache_last_error_message(), "format") != NULL);
    CHECK_RC(dcache_stats_format(c, DCACHE_STATS_JSON, small, sizeof small, NULL),
             DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_stats_format(NULL, DCACHE_STATS_JSON, small, sizeof small, &n2),
             DCACHE_INVALID_ARGUMENT);

    char want[128];
    const uint32_t formats[2] = {DCACHE_STATS_PROMETHEUS, DCACHE_STATS_JSON};
    for (int f = 0; f < 2; f++) {
        CHECK_RC(dcache_stats_format(c, formats[f], NULL, 0, &needed), DCACHE_BUFFER_TOO_SMALL);
        char *text = malloc(needed);
        CHECK(text != NULL);
        if (!text)
            return;
        size_t got = 0;
        CHECK_RC(dcache_stats_format(c, formats[f], text, needed, &got), DCACHE_OK);
        CHECK_EQ(got, needed);
        CHECK_EQ(strlen(text) + 1, needed);
        if (formats[f] == DCACHE_STATS_PROMETHEUS)
            snprintf(want, sizeof want, "\ndcache_hits_total %llu\n", (unsigned long long)s->hits);
        else
            snprintf(want, sizeof want, "\"hits\":%llu,", (unsigned long long)s->hits);
        CHECKF(strstr(text, want) != NULL, "format %u holds %s", formats[f], want);
        free(text);
    }
}

TEST_MAIN(cache_stats)
{
    (void)argc;
    (void)argv;
    tst_begin("cache_stats");
    char path[4096];
    tst_path(path, sizeof path, "stats.dc");
    dcache *c = cache_create(path, 16 * MiB, 0);

    dcache_stats s = get(c);
    CHECK_EQ(s.struct_size, sizeof s);
    CHECK_EQ(s.direct_io, dcache_is_direct_io(c));
    CHECK_EQ(s.direct_io, 1);
    CHECK_EQ(s.alignment, dcache_alignment(c));
    CHECKF(is_pow2_u64(s.alignment) && s.alignment >= 512, "alignment %u", s.alignment);
    CHECK_EQ(s.capacity, 16 * MiB);
    CHECK_EQ(s.entries, 0);
    CHECK_EQ(s.hits, 0);
    CHECK_EQ(s.misses, 0);
    CHECK_EQ(s.puts, 0);
    CHECK_EQ(s.deletes, 0);
    CHECK_EQ(s.evictions, 0);
    CHECK_EQ(s.expirations, 0);
    CHECK_EQ(s.checksum_failures, 0);
    CHECK_EQ(s.io_errors, 0);
    CHECK(s.used_bytes <= s.capacity);
    uint64_t used0 = s.used_bytes;

    struct_size_rules(c);

    uint8_t key[16], val[10000], out[10000];
    uint64_t put_bytes = 0, read_bytes = 0;
    for (uint64_t i = 0; i < 10; i++) {
        key_make(key, i, sizeof key);
        size_t vl = 1000 * (size_t)(i + 1) - 1;
        val_fill(val, vl, key, sizeof key, 1);
        CHECK_RC(dcache_put(c, key, sizeof key, val, vl, 0), DCACHE_OK);
        put_bytes += vl;
    }
    for (uint64_t i = 0; i < 5; i++) {
        size_t n = 0;
        key_make(key, i, sizeof key);
        CHECK_RC(dcache_get(c, key, sizeof key, out, sizeof out, &n), DCACHE_OK);
        read_bytes += n;
    }
    for (uint64_t i = 100; i < 103; i++) {
        size_t n = 0;
        key_make(key, i, sizeof key);
        CHECK_RC(dcache_get(c, key, sizeof key, out, sizeof out, &n), DCACHE_NOT_FOUND);
    }
    s = get(c);
    CHECK_EQ(s.puts, 10);
    CHECK_EQ(s.entries, 10);
    CHECK_EQ(s.hits, 5);
    CHECK_EQ(s.misses, 3);
    CHECK_EQ(s.deletes, 0);
    format_rules(c, &s);
    CHECK(s.used_bytes >= used0 + put_bytes);
    CHECK(s.used_bytes <= s.capacity);
    CHECK_RC(dcache_flush(c), DCACHE_OK);
    s = get(c);
    CHECKF(s.bytes_written >= put_bytes, "bytes_written %llu >= %llu value bytes after a flush",
           (unsigned long long)s.bytes_written, (unsigned long long)put_bytes);
    (void)read_bytes;

    for (uint64_t i = 0; i < 2; i++) {
        key_make(key, i, sizeof key);
        CHECK_RC(dcache_delete(c, key, sizeof key), DCACHE_OK);
    }
    s = get(c);
    CHECK_EQ(s.deletes, 2);
    CHECK_EQ(s.entries, 8);
    CHECK_EQ(s.evictions, 0);
    CHECK_EQ(s.expirations, 0);
    CHECK_EQ(s.checksum_failures, 0);
    CHECK_EQ(s.io_errors, 0);

    /* after a reopen the reads come from the device: bytes_read covers them */
    CHECK_RC(dcache_close(c), DCACHE_OK);
    c = NULL;
    if (CHECK_RC(dcache_open(path, NULL, &c), DCACHE_OK)) {
        s = get(c);
        CHECK_EQ(s.entries, 8);
        CHECK_EQ(s.capacity, 16 * MiB);
        uint64_t br0 = s.bytes_read, hits0 = s.hits, want = 0;
        for (uint64_t i = 2; i < 10; i++) {
            size_t n = 0;
            key_make(key, i, sizeof key);
            CHECK_RC(dcache_get(c, key, sizeof key, out, sizeof out, &n), DCACHE_OK);
            want += n;
        }
        s = get(c);
        CHECK_EQ(s.hits - hits0, 8);
        CHECKF(s.bytes_read - br0 >= want, "bytes_read grew by %llu, at least the %llu value bytes",
               (unsigned long long)(s.bytes_read - br0), (unsigned long long)want);
        CHECK_RC(dcache_close(c), DCACHE_OK);
    }
    return tst_finish();
}

/* Range reads: for values of many sizes (1 byte to 2 MiB, the alignment edges included),
 * thousands of get_range calls at random offsets and lengths (and the edges: 0, size-1, size,
 * size+1, lengths 0 and past the end), each compared with the full value: read_len is exactly
 * min(len, size - offset), the bytes are exact, offset == size reads 0 bytes, offset > size
 * is DCACHE_RANGE with read_len untouched. Buffers at odd addresses. */
#include "common.h"

struct val {
    uint8_t key[24];
    size_t len;
};

static void one_range(dcache *c, const struct val *v, uint64_t off, size_t len, uint8_t *buf,
                      uint8_t *want)
{
    size_t n = (size_t)-7;
    uint8_t *b = buf + (off % 13);
    dcache_result rc = dcache_get_range(c, v->key, sizeof v->key, off, len ? b : NULL, len, &n);
    if (off > v->len) {
        CHECKF(rc == DCACHE_RANGE, "range(size %zu, off %llu, len %zu) = %s, want DCACHE_RANGE",
               v->len, (unsigned long long)off, len, rc_name(rc));
        CHECK_EQ(n, (size_t)-7);
        return;
    }
    if (!CHECKF(rc == DCACHE_OK, "range(size %zu, off %llu, len %zu) = %s [%s]", v->len,
                (unsigned long long)off, len, rc_name(rc), dcache_last_error_message()))
        return;
    size_t expect = v->len - off < len ? (size_t)(v->len - off) : len;
    if (!CHECKF(n == expect, "range(size %zu, off %llu, len %zu) read %zu, want %zu", v->len,
                (unsigned long long)off, len, n, expect))
        return;
    val_slice(want, v->len, off, n, v->key, sizeof v->key, 1);
    CHECK_MEM(b, want, n, "range bytes = the value's bytes");
}

TEST_MAIN(cache_range)
{
    (void)argc;
    (void)argv;
    tst_begin("cache_range");
    rng_t r;
    rng_seed(&r, tst_seed());
    char path[4096];
    tst_path(path, sizeof path, "range.dc");
    dcache *c = cache_create(path, 64 * MiB, 0);
    const size_t sizes[] = {1, 2, 23, 24, 100, 511, 512, 513, 4095, 4096, 4097, 8191, 65536,
                            65537, 300001, 1048576, 2 * MiB - 3};
    enum { NV = sizeof sizes / sizeof sizes[0] };
    struct val vals[NV];
    uint8_t *buf = malloc(2 * MiB + 64), *want = malloc(2 * MiB + 64);
    for (size_t i = 0; i < NV; i++) {
        key_make(vals[i].key, i, sizeof vals[i].key);
        vals[i].len = sizes[i];
        val_fill(buf, sizes[i], vals[i].key, sizeof vals[i].key, 1);
        CHECK_RC(dcache_put(c, vals[i].key, sizeof vals[i].key, buf, sizes[i], 0), DCACHE_OK);
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < NV; i++) {
            const struct val *v = &vals[i];
            /* the edges */
            const uint64_t offs[] = {0, 1, v->len / 2, v->len - 1, v->len, v->len + 1,
                                     v->len + 4096, UINT64_MAX};
            const size_t lens[] = {0, 1, 511, 512, 4096, v->len, v->len + 1, 3 * MiB};
            for (size_t a = 0; a < sizeof offs / sizeof offs[0]; a++)
                for (size_t b = 0; b < sizeof lens / sizeof lens[0]; b++)
                    if (lens[b] <= 2 * MiB)
                        one_range(c, v, offs[a], lens[b], buf, want);
            /* random ranges */
            int n = tst_quick() ? 20 : 150;
            for (int k = 0; k < n; k++) {
                uint64_t off = rng_below(&r, v->len + 2);
                size_t len = rng_below(&r, 4) == 0 ? (size_t)rng_range(&r, 0, 600)
                                                   : (size_t)rng_range(&r, 0, v->len + 10);
                if (len > 2 * MiB)
                    len = 2 * MiB;
                one_range(c, v, off, len, buf, want);
            }
        }
        /* the second pass after a reopen: the ranges come from the device, not a buffer */
        if (pass == 0) {
            CHECK_RC(dcache_close(c), DCACHE_OK);
            c = NULL;
            if (!CHECK_RC(dcache_open(path, NULL, &c), DCACHE_OK))
                break;
        }
    }
    /* the full value by ranges of 4097 bytes, stitched together */
    if (c) {
        const struct val *v = &vals[NV - 1];
        size_t off = 0, n = 0;
        while (off < v->len &&
               dcache_get_range(c, v->key, sizeof v->key, off, buf + off, 4097, &n) == DCACHE_OK &&
               n > 0)
            off += n;
        CHECK_EQ(off, v->len);
        CHECK(val_check(buf, v->len, v->key, sizeof v->key, 1));
        dcache_stats st;
        memset(&st, 0, sizeof st);
        st.struct_size = sizeof st;
        CHECK_RC(dcache_get_stats(c, &st), DCACHE_OK);
        CHECK_EQ(st.checksum_failures, 0);
        CHECK_RC(dcache_close(c), DCACHE_OK);
    }
    free(buf);
    free(want);
    return tst_finish();
}

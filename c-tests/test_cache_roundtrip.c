/* Round trips through the cache: thousands of keys of lengths 1..4096 (binary bytes, zeros
 * included), values from 0 bytes to over 1 MiB including 511, 512, 4095, 4096, 4097, each
 * derived from key + version so that any byte returned can be checked. Every value is read
 * back exactly (exact buffer, larger buffer, (NULL,0) and one byte short: BUFFER_TOO_SMALL with
 * the size), a third are overwritten with new versions and sizes, and everything is read again
 * after a close and reopen. The cache (256 MiB) is large enough that nothing is evicted. */
#include "common.h"

struct item {
    uint8_t *key;
    size_t klen;
    size_t vlen;
    uint64_t version;
};

static size_t pick_klen(rng_t *r, size_t i)
{
    static const size_t special[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 100, 255, 256, 1000, 4095, 4096};
    size_t n = sizeof special / sizeof special[0];
    if (i < 4 * n)
        return special[i % n];
    uint64_t p = rng_below(r, 100);
    if (p < 70)
        return (size_t)rng_range(r, 9, 64);
    if (p < 95)
        return (size_t)rng_range(r, 65, 1024);
    return (size_t)rng_range(r, 1025, 4096);
}

static size_t pick_vlen(rng_t *r, size_t i, uint64_t *budget)
{
    static const size_t special[] = {0, 1, 23, 24, 25, 511, 512, 513, 4095, 4096, 4097,
                                     65535, 65536, 65537, 1048575, 1048576, 1048577, 1572864};
    size_t n = sizeof special / sizeof special[0];
    size_t v;
    if (i < n) {
        v = special[i];
    } else {
        uint64_t p = rng_below(r, 100);
        if (p < 85)
            v = (size_t)rng_range(r, 0, 8192);
        else if (p < 97)
            v = (size_t)rng_range(r, 8193, 131072);
        else
            v = (size_t)rng_range(r, 131073, 1300000);
    }
    if (v > *budget)
        v = (size_t)rng_below(r, 4096);
    *budget -= v;
    return v;
}

static void make_keys(struct item *items, size_t n, rng_t *r)
{
    uint64_t short_counter[9] = {0};
    for (size_t i = 0; i < n; i++) {
        size_t kl = pick_klen(r, i);
        items[i].klen = kl;
        items[i].key = malloc(kl);
        if (kl < 9) {
            uint64_t c = short_counter[kl]++;
            for (size_t b = 0; b < kl; b++)
                items[i].key[b] = (uint8_t)(c >> (8 * b));   /* zeros included */
        } else {
            key_make(items[i].key, i, kl);
        }
    }
}

static void verify_one(dcache *c, const struct item *it, uint8_t *buf, size_t bufcap, bool extra)
{
    size_t n = (size_t)-1;
    dcache_result rc = dcache_get(c, it->key, it->klen, buf, it->vlen, &n);
    if (!CHECKF(rc == DCACHE_OK, "get(klen %zu, vlen %zu) = %s", it->klen, it->vlen, rc_name(rc)))
        return;
    CHECK_EQ(n, it->vlen);
    CHECKF(n == it->vlen && val_check(buf, n, it->key, it->klen, it->version),
           "value of key (klen %zu) is version %llu, %zu bytes, exactly", it->klen,
           (unsigned long long)it->version, it->vlen);
    if (it->vlen >= VAL_HDR) {
        uint64_t v = 0;
        CHECK(val_parse(buf, n, it->key, it->klen, &v) && v == it->version);
    }
    if (!extra)
        return;
    uint64_t sz = 0;
    CHECK_RC(dcache_value_size(c, it->key, it->klen, &sz), DCACHE_OK);
    CHECK_EQ(sz, it->vlen);
    n = (size_t)-1;
    if (it->vlen == 0) {
        CHECK_RC(dcache_get(c, it->key, it->klen, NULL, 0, &n), DCACHE_OK);
        CHECK_EQ(n, 0);
    } else {
        CHECK_RC(dcache_get(c, it->key, it->klen, NULL, 0, &n), DCACHE_BUFFER_TOO_SMALL);
        CHECK_EQ(n, it->vlen);
        n = (size_t)-1;
        CHECK_RC(dcache_get(c, it->key, it->klen, buf, it->vlen - 1, &n), DCACHE_BUFFER_TOO_SMALL);
        CHECK_EQ(n, it->vlen);
    }
    if (it->vlen + 100 <= bufcap) {
        n = 0;
        CHECK_RC(dcache_get(c, it->key, it->klen, buf, it->vlen + 100, &n), DCACHE_OK);
        CHECK(n == it->vlen && val_check(buf, n, it->key, it->klen, it->version));
    }
}

static void verify_all(dcache *c, struct item *items, size_t n, uint8_t *buf, size_t bufcap,
                       const char *when)
{
    unsigned long f0 = tst_failures();
    for (size_t i = 0; i < n && tst_failures() - f0 < 20; i++)
        verify_one(c, &items[i], buf, bufcap, i % 7 == 0);
    CHECKF(tst_failures() == f0, "all %zu values right %s", n, when);
}

static void put_one(dcache *c, struct item *it, uint8_t *buf)
{
    val_fill(buf, it->vlen, it->key, it->klen, it->version);
    CHECKF(dcache_put(c, it->key, it->klen, it->vlen ? buf : NULL, it->vlen, 0) == DCACHE_OK,
           "put(klen %zu, vlen %zu) [%s]", it->klen, it->vlen, dcache_last_error_message());
}

TEST_MAIN(cache_roundtrip)
{
    (void)argc;
    (void)argv;
    tst_begin("cache_roundtrip");
    rng_t r;
    rng_seed(&r, tst_seed());
    char path[4096];
    tst_path(path, sizeof path, "roundtrip.dc");
    size_t n = tst_quick() ? 400 : 4000;
    uint64_t budget = 110 * MiB;
    struct item *items = calloc(n, sizeof *items);
    make_keys(items, n, &r);
    for (size_t i = 0; i < n; i++) {
        items[i].vlen = pick_vlen(&r, i, &budget);
        items[i].version = 1;
    }
    size_t bufcap = 2 * MiB;
    uint8_t *buf = malloc(bufcap);

    dcache *c = cache_create(path, 256 * MiB, 0);
    CHECK_EQ(dcache_is_direct_io(c), 1);
    for (size_t i = 0; i < n; i++)
        put_one(c, &items[i], buf);
    verify_all(c, items, n, buf, bufcap, "after the puts");

    /* overwrite a third with new versions and new sizes */
    budget = 40 * MiB;
    for (size_t i = 0; i < n; i += 3) {
        items[i].version++;
        items[i].vlen = pick_vlen(&r, n, &budget);
        put_one(c, &items[i], buf);
    }
    verify_all(c, items, n, buf, bufcap, "after the overwrites");

    dcache_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RC(dcache_get_stats(c, &st), DCACHE_OK);
    CHECK_EQ(st.evictions, 0);
    CHECK_EQ(st.entries, n);
    CHECK_EQ(st.checksum_failures, 0);
    CHECK_RC(dcache_close(c), DCACHE_OK);

    c = NULL;
    if (CHECK_RC(dcache_open(path, NULL, &c), DCACHE_OK)) {
        verify_all(c, items, n, buf, bufcap, "after close and reopen");
        CHECK_RC(dcache_close(c), DCACHE_OK);
    }
    for (size_t i = 0; i < n; i++)
        free(items[i].key);
    free(items);
    free(buf);
    return tst_finish();
}

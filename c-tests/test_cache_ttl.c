/* Time to live: entries put with ttl_secs=1 (by put, by a streaming writer, or through the
 * cache's default_ttl_secs) are DCACHE_NOT_FOUND to get, get_range and value_size after 2 s,
 * and counted in stats.expirations; entries with a long TTL or none stay. The TTL is kept
 * across close and reopen (it is the entry's, not the handle's). */
#include "common.h"

#define K(s) ((const uint8_t *)(s)), (sizeof(s) - 1)

static void expect_value(dcache *c, const uint8_t *key, size_t klen, size_t vlen, uint64_t ver,
                         const char *name)
{
    uint8_t buf[2048];
    size_t n = 0;
    dcache_result rc = dcache_get(c, key, klen, buf, sizeof buf, &n);
    CHECKF(rc == DCACHE_OK, "%s: get = %s, want DCACHE_OK", name, rc_name(rc));
    if (rc == DCACHE_OK)
        CHECKF(n == vlen && val_check(buf, n, key, klen, ver), "%s: the right value", name);
}

static void expect_gone(dcache *c, const uint8_t *key, size_t klen, const char *name)
{
    uint8_t buf[2048];
    size_t n = 77;
    uint64_t sz = 77;
    dcache_result rc = dcache_get_range(c, key, klen, 0, buf, 10, &n);
    CHECKF(rc == DCACHE_NOT_FOUND, "%s: get_range = %s, want DCACHE_NOT_FOUND", name, rc_name(rc));
    rc = dcache_get(c, key, klen, buf, sizeof buf, &n);
    CHECKF(rc == DCACHE_NOT_FOUND, "%s: get = %s, want DCACHE_NOT_FOUND", name, rc_name(rc));
    rc = dcache_value_size(c, key, klen, &sz);
    CHECKF(rc == DCACHE_NOT_FOUND, "%s: value_size = %s, want DCACHE_NOT_FOUND", name,
           rc_name(rc));
    CHECK_EQ(n, 77);
    CHECK_EQ(sz, 77);
}

static void put_v(dcache *c, const uint8_t *key, size_t klen, size_t vlen, uint64_t ver,
                  uint64_t ttl)
{
    uint8_t buf[2048];
    val_fill(buf, vlen, key, klen, ver);
    CHECK_RC(dcache_put(c, key, klen, buf, vlen, ttl), DCACHE_OK);
}

TEST_MAIN(cache_ttl)
{
    (void)argc;
    (void)argv;
    tst_begin("cache_ttl");
    char pa[4096], pb[4096];
    tst_path(pa, sizeof pa, "ttl-a.dc");
    tst_path(pb, sizeof pb, "ttl-b.dc");

    /* A: no default TTL; per-entry TTLs */
    dcache *a = cache_create(pa, 16 * MiB, 0);
    put_v(a, K("t1"), 100, 1, 1);
    put_v(a, K("t1-big"), 1500, 1, 1);
    put_v(a, K("t100"), 100, 1, 100);
    put_v(a, K("t0"), 100, 1, 0);
    put_v(a, K("t1-then-0"), 100, 1, 1);
    put_v(a, K("t1-then-0"), 120, 2, 0);   /* an overwrite takes the new TTL */
    uint8_t wv[1000];
    val_fill(wv, sizeof wv, K("w1"), 1);
    dcache_writer *w = NULL;
    if (CHECK_RC(dcache_writer_open(a, K("w1"), 1, &w), DCACHE_OK)) {
        CHECK_RC(dcache_writer_write(w, wv, 500), DCACHE_OK);
        CHECK_RC(dcache_writer_write(w, wv + 500, 500), DCACHE_OK);
        CHECK_RC(dcache_writer_commit(w), DCACHE_OK);
    }
    expect_value(a, K("t1"), 100, 1, "t1 before expiry");
    expect_value(a, K("w1"), 1000, 1, "w1 before expiry");

    /* B: default TTL of 1 s, closed before the wait */
    dcache_options o;
    cache_opts(&o, 16 * MiB, DCACHE_OPEN_CREATE);
    o.default_ttl_secs = 1;
    dcache *b = NULL;
    if (CHECK_RC(dcache_open(pb, &o, &b), DCACHE_OK)) {
        put_v(b, K("d"), 50, 1, 0);       /* takes the default: 1 s */
        put_v(b, K("d100"), 50, 1, 100);
        expect_value(b, K("d"), 50, 1, "d before expiry");
        CHECK_RC(dcache_close(b), DCACHE_OK);
    }

    sleep_ms(2500);

    expect_gone(a, K("t1"), "t1 after 2.5 s");
    expect_gone(a, K("t1-big"), "t1-big after 2.5 s");
    expect_gone(a, K("w1"), "w1 (writer, ttl 1) after 2.5 s");
    expect_value(a, K("t100"), 100, 1, "t100 after 2.5 s");
    expect_value(a, K("t0"), 100, 1, "t0 after 2.5 s");
    expect_value(a, K("t1-then-0"), 120, 2, "t1-then-0 after 2.5 s");
    CHECK_RC(dcache_delete(a, K("t1")), DCACHE_NOT_FOUND);
    dcache_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RC(dcache_get_stats(a, &st), DCACHE_OK);
    CHECKF(st.expirations >= 3, "stats.expirations = %llu, want >= 3 (t1, t1-big, w1)",
           (unsigned long long)st.expirations);
    CHECKF(st.expirations <= 12, "stats.expirations = %llu, at most one per lookup",
           (unsigned long long)st.expirations);
    CHECK(st.misses >= st.expirations);
    /* an expired key can be put again */
    put_v(a, K("t1"), 77, 5, 0);
    expect_value(a, K("t1"), 77, 5, "t1 put again");
    CHECK_RC(dcache_close(a), DCACHE_OK);

    /* B reopened without a default: the entry keeps the TTL it was put with */
    b = NULL;
    if (CHECK_RC(dcache_open(pb, NULL, &b), DCACHE_OK)) {
        expect_gone(b, K("d"), "d (default ttl 1) after reopen and 2.5 s");
        expect_value(b, K("d100"), 50, 1, "d100 after reopen");
        CHECK_RC(dcache_close(b), DCACHE_OK);
    }
    /* A reopened: still gone, still there */
    a = NULL;
    if (CHECK_RC(dcache_open(pa, NULL, &a), DCACHE_OK)) {
        expect_gone(a, K("t1-big"), "t1-big after reopen");
        expect_gone(a, K("w1"), "w1 after reopen");
        expect_value(a, K("t100"), 100, 1, "t100 after reopen");
        expect_value(a, K("t1"), 77, 5, "t1 (put again) after reopen");
        CHECK_RC(dcache_close(a), DCACHE_OK);
    }
    return tst_finish();
}

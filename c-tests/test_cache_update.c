/* Overwrite and delete: an overwrite returns the new value (bigger, smaller, empty), a delete
 * makes get/get_range/value_size DCACHE_NOT_FOUND and a second delete DCACHE_NOT_FOUND, a key can
 * be put again after a delete, keys that are prefixes of each other are separate, and
 * stats.puts/deletes/entries count exactly, dcache_contains agrees (NOT_FOUND after a delete
 * is definite). A thousand overwrites of one key leave one entry. */
#include "common.h"

#define K(s) ((const uint8_t *)(s)), (sizeof(s) - 1)

static uint8_t g_buf[300000];

static void put_v(dcache *c, const uint8_t *k, size_t kl, size_t vl, uint64_t ver)
{
    val_fill(g_buf, vl, k, kl, ver);
    CHECKF(dcache_put(c, k, kl, g_buf, vl, 0) == DCACHE_OK, "put(vlen %zu, version %llu)", vl,
           (unsigned long long)ver);
}

static bool has_v(dcache *c, const uint8_t *k, size_t kl, size_t vl, uint64_t ver)
{
    size_t n = 0;
    uint64_t sz = 0;
    if (dcache_get(c, k, kl, g_buf, sizeof g_buf, &n) != DCACHE_OK)
        return false;
    if (n != vl || !val_check(g_buf, n, k, kl, ver))
        return false;
    if (dcache_value_size(c, k, kl, &sz) != DCACHE_OK || sz != vl)
        return false;
    return dcache_contains(c, k, kl) == DCACHE_OK;
}

static bool is_gone(dcache *c, const uint8_t *k, size_t kl)
{
    size_t n = 0;
    uint64_t sz = 0;
    return dcache_get(c, k, kl, g_buf, sizeof g_buf, &n) == DCACHE_NOT_FOUND &&
           dcache_get(c, k, kl, NULL, 0, &n) == DCACHE_NOT_FOUND &&
           dcache_get_range(c, k, kl, 0, g_buf, 1, &n) == DCACHE_NOT_FOUND &&
           dcache_value_size(c, k, kl, &sz) == DCACHE_NOT_FOUND &&
           dcache_contains(c, k, kl) == DCACHE_NOT_FOUND;   /* definite after a delete */
}

static dcache_stats stats(dcache *c)
{
    dcache_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RC(dcache_get_stats(c, &st), DCACHE_OK);
    return st;
}

TEST_MAIN(cache_update)
{
    (void)argc;
    (void)argv;
    tst_begin("cache_update");
    char path[4096];
    tst_path(path, sizeof path, "update.dc");
    dcache *c = cache_create(path, 32 * MiB, 0);

    /* overwrite with bigger, smaller, empty and bigger again */
    const size_t sizes[] = {100, 5000, 3, 0, 200000, 4096, 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        put_v(c, K("over"), sizes[i], i + 1);
        CHECKF(has_v(c, K("over"), sizes[i], i + 1), "overwrite %zu (%zu bytes) is what get returns",
               i, sizes[i]);
    }
    dcache_stats s = stats(c);
    CHECK_EQ(s.puts, sizeof sizes / sizeof sizes[0]);
    CHECK_EQ(s.entries, 1);

    /* prefixes are different keys */
    put_v(c, K("ab"), 10, 1);
    put_v(c, K("abc"), 11, 2);
    put_v(c, K("abcd"), 12, 3);
    put_v(c, (const uint8_t *)"ab\0", 3, 13, 4);
    CHECK(has_v(c, K("ab"), 10, 1));
    CHECK(has_v(c, K("abc"), 11, 2));
    CHECK(has_v(c, K("abcd"), 12, 3));
    CHECK(has_v(c, (const uint8_t *)"ab\0", 3, 13, 4));

    /* delete */
    uint64_t deletes0 = stats(c).deletes;
    CHECK_RC(dcache_delete(c, K("abc")), DCACHE_OK);
    CHECK(is_gone(c, K("abc")));
    CHECK(has_v(c, K("ab"), 10, 1));
    CHECK(has_v(c, K("abcd"), 12, 3));
    CHECK(has_v(c, (const uint8_t *)"ab\0", 3, 13, 4));
    CHECK_RC(dcache_delete(c, K("abc")), DCACHE_NOT_FOUND);
    CHECK_RC(dcache_delete(c, K("never-there")), DCACHE_NOT_FOUND);
    CHECK_RC(dcache_delete(c, K("over")), DCACHE_OK);
    CHECK(is_gone(c, K("over")));
    s = stats(c);
    CHECK_EQ(s.deletes - deletes0, 2);
    CHECK_EQ(s.entries, 3);

    /* put again after a delete */
    put_v(c, K("abc"), 777, 9);
    CHECK(has_v(c, K("abc"), 777, 9));
    CHECK_RC(dcache_delete(c, K("abc")), DCACHE_OK);
    CHECK(is_gone(c, K("abc")));
    put_v(c, K("abc"), 0, 10);
    CHECK(has_v(c, K("abc"), 0, 10));

    /* a thousand overwrites of one key: one entry, the last value */
    rng_t r;
    rng_seed(&r, tst_seed());
    uint64_t entries0 = stats(c).entries;
    size_t last = 0;
    int rounds = tst_quick() ? 200 : 1000;
    for (int i = 0; i < rounds; i++) {
        last = (size_t)rng_range(&r, 0, i % 50 == 0 ? 250000 : 3000);
        put_v(c, K("hot"), last, 100 + (uint64_t)i);
        if (i % 97 == 0)
            CHECK(has_v(c, K("hot"), last, 100 + (uint64_t)i));
    }
    CHECK(has_v(c, K("hot"), last, 100 + (uint64_t)rounds - 1));
    CHECK_EQ(stats(c).entries, entries0 + 1);

    /* the same after a reopen */
    CHECK_RC(dcache_close(c), DCACHE_OK);
    c = NULL;
    if (CHECK_RC(dcache_open(path, NULL, &c), DCACHE_OK)) {
        CHECK(has_v(c, K("hot"), last, 100 + (uint64_t)rounds - 1));
        CHECK(is_gone(c, K("over")));
        CHECK(has_v(c, K("abc"), 0, 10));
        CHECK(has_v(c, K("ab"), 10, 1));
        CHECK(has_v(c, K("abcd"), 12, 3));
        CHECK_EQ(stats(c).entries, entries0 + 1);
        CHECK_RC(dcache_close(c), DCACHE_OK);
    }
    return tst_finish();
}

/* Eviction: 4x the capacity written into a 64 MiB cache (values of 16..160 KiB). Nothing
 * returned may be wrong (every hit is the exact value of that key), the newest entries (the
 * last eighth of the capacity) are all present, stats.evictions > 0, stats.used_bytes <=
 * stats.capacity, and the values present fit in the capacity. The same after a reopen.
 * Reads of old and new keys are mixed into the writes. */
#include "common.h"

#define CAP (64 * MiB)

static uint8_t g_buf[200 * 1024];

static void key_of(uint64_t i, uint8_t *k)
{
    key_make(k, i, 20);
}

/* 1 = present and exact, 0 = NOT_FOUND, -1 = wrong (a failure was recorded) */
static int check_key(dcache *c, uint64_t i, size_t vlen)
{
    uint8_t k[20];
    key_of(i, k);
    size_t n = 0;
    dcache_result rc = dcache_get(c, k, sizeof k, g_buf, sizeof g_buf, &n);
    if (rc == DCACHE_NOT_FOUND)
        return 0;
    if (!CHECKF(rc == DCACHE_OK, "get(key %llu) = %s", (unsigned long long)i, rc_name(rc)))
        return -1;
    if (!CHECKF(n == vlen && val_check(g_buf, n, k, sizeof k, 1),
                "key %llu: a hit returned the wrong bytes (%zu bytes, want %zu)",
                (unsigned long long)i, n, vlen))
        return -1;
    return 1;
}

static void verify(dcache *c, const size_t *vlens, uint64_t nkeys, const char *when)
{
    /* the newest eighth of the capacity must be there */
    uint64_t newest_bytes = 0, i = nkeys;
    unsigned long f0 = tst_failures();
    while (i > 0 && newest_bytes < CAP / 8) {
        i--;
        newest_bytes += vlens[i];
        int st = check_key(c, i, vlens[i]);
        CHECKF(st == 1 || st == -1, "%s: key %llu, among the newest %llu bytes, is present",
               when, (unsigned long long)i, (unsigned long long)newest_bytes);
        if (tst_failures() - f0 > 10)
            return;
    }
    uint64_t present = 0, present_bytes = 0;
    for (uint64_t j = 0; j < nkeys; j++) {
        int st = check_key(c, j, vlens[j]);
        if (st == 1) {
            present++;
            present_bytes += vlens[j];
        }
        if (tst_failures() - f0 > 10)
            return;
    }
    tst_note("%s: %llu of %llu keys present (%llu MiB of values)", when,
             (unsigned long long)present, (unsigned long long)nkeys,
             (unsigned long long)(present_bytes / MiB));
    CHECK(present < nkeys);
    CHECK(present_bytes <= CAP);
    dcache_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RC(dcache_get_stats(c, &st), DCACHE_OK);
    CHECK_EQ(st.capacity, CAP);
    CHECKF(st.used_bytes <= st.capacity, "%s: used_bytes %llu <= capacity %llu", when,
           (unsigned long long)st.used_bytes, (unsigned long long)st.capacity);
    CHECKF(st.entries == present, "%s: stats.entries %llu = %llu keys found", when,
           (unsigned long long)st.entries, (unsigned long long)present);
    CHECK_EQ(st.checksum_failures, 0);
}

TEST_MAIN(cache_evict)
{
    (void)argc;
    (void)argv;
    tst_begin("cache_evict");
    rng_t r;
    rng_seed(&r, tst_seed());
    char path[4096];
    tst_path(path, sizeof path, "evict.dc");
    dcache *c = cache_create(path, CAP, 0);

    uint64_t target = 4 * CAP, written = 0, nkeys = 0;
    size_t cap_keys = (size_t)((target + CAP) / (16 * KiB)) + 1;
    size_t *vlens = calloc(cap_keys, sizeof *vlens);
    uint8_t k[20];
    unsigned long f0 = tst_failures();
    while (written < target && tst_failures() - f0 < 10) {
        size_t vl = (size_t)rng_range(&r, 16 * KiB, 160 * KiB);
        key_of(nkeys, k);
        val_fill(g_buf, vl, k, sizeof k, 1);
        if (!CHECKF(dcache_put(c, k, sizeof k, g_buf, vl, 0) == DCACHE_OK, "put %llu [%s]",
                    (unsigned long long)nkeys, dcache_last_error_message()))
            break;
        vlens[nkeys++] = vl;
        written += vl;
        if (nkeys % 25 == 0) {
            /* a recent key must be there; an old one may be gone but never wrong */
            uint64_t recent = nkeys - 1 - rng_below(&r, nkeys < 20 ? nkeys : 20);
            CHECKF(check_key(c, recent, vlens[recent]) != 0, "recent key %llu present",
                   (unsigned long long)recent);
            uint64_t old = rng_below(&r, nkeys);
            check_key(c, old, vlens[old]);
        }
    }
    dcache_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RC(dcache_get_stats(c, &st), DCACHE_OK);
    tst_note("%llu keys, %llu MiB written; evictions %llu", (unsigned long long)nkeys,
             (unsigned long long)(written / MiB), (unsigned long long)st.evictions);
    CHECK(st.evictions > 0);
    CHECK_EQ(st.puts, nkeys);
    verify(c, vlens, nkeys, "after 4x capacity");
    CHECK_RC(dcache_close(c), DCACHE_OK);

    c = NULL;
    if (CHECK_RC(dcache_open(path, NULL, &c), DCACHE_OK)) {
        verify(c, vlens, nkeys, "after reopen");
        /* and it keeps working: another capacity's worth, then the newest are there */
        written = 0;
        while (written < CAP && nkeys < cap_keys) {
            size_t vl = (size_t)rng_range(&r, 16 * KiB, 160 * KiB);
            key_of(nkeys, k);
            val_fill(g_buf, vl, k, sizeof k, 1);
            if (!CHECK_RC(dcache_put(c, k, sizeof k, g_buf, vl, 0), DCACHE_OK))
                break;
            vlens[nkeys++] = vl;
            written += vl;
        }
        verify(c, vlens, nkeys, "after another capacity's worth");
        CHECK_RC(dcache_close(c), DCACHE_OK);
    }
    free(vlens);
    return tst_finish();
}

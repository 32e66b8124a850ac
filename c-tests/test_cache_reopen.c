/* Reopen: over several close/open cycles (and flushes in between), every key written is back
 * byte-exact, deleted keys stay deleted, overwritten keys have their last value, and
 * stats.entries is the same before the close and after the open. Writes after a reopen must
 * not clobber what was there (the write position is recovered, not restarted). A read-only
 * reopen sees the same. */
#include "common.h"

#define NKEYS 1500

struct key_state {
    uint64_t version;   /* 0 = absent (never written or deleted) */
    size_t vlen;
};

static struct key_state g_state[NKEYS];
static uint8_t g_buf[40000];

static void key_of(uint64_t i, uint8_t *k, size_t *kl)
{
    *kl = 8 + (size_t)(i % 57);
    key_make(k, i, *kl);
}

static void do_put(dcache *c, uint64_t i, rng_t *r)
{
    uint8_t k[64];
    size_t kl;
    key_of(i, k, &kl);
    size_t vl = (size_t)rng_range(r, 0, rng_below(r, 10) == 0 ? sizeof g_buf : 2000);
    uint64_t ver = g_state[i].version + 1 + rng_below(r, 3);
    val_fill(g_buf, vl, k, kl, ver);
    if (CHECK_RC(dcache_put(c, k, kl, g_buf, vl, 0), DCACHE_OK)) {
        g_state[i].version = ver;
        g_state[i].vlen = vl;
    }
}

static void do_delete(dcache *c, uint64_t i)
{
    uint8_t k[64];
    size_t kl;
    key_of(i, k, &kl);
    CHECK_RC(dcache_delete(c, k, kl), g_state[i].version ? DCACHE_OK : DCACHE_NOT_FOUND);
    g_state[i].version = 0;
}

static uint64_t expected_entries(void)
{
    uint64_t n = 0;
    for (int i = 0; i < NKEYS; i++)
        n += g_state[i].version != 0;
    return n;
}

static uint64_t entries(dcache *c)
{
    dcache_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RC(dcache_get_stats(c, &st), DCACHE_OK);
    return st.entries;
}

static void verify(dcache *c, const char *when)
{
    unsigned long f0 = tst_failures();
    for (uint64_t i = 0; i < NKEYS && tst_failures() - f0 < 10; i++) {
        uint8_t k[64];
        size_t kl, n = 0;
        key_of(i, k, &kl);
        dcache_result rc = dcache_get(c, k, kl, g_buf, sizeof g_buf, &n);
        if (g_state[i].version == 0) {
            CHECKF(rc == DCACHE_NOT_FOUND, "%s: key %llu (deleted or never put) = %s", when,
                   (unsigned long long)i, rc_name(rc));
        } else if (CHECKF(rc == DCACHE_OK, "%s: key %llu = %s", when, (unsigned long long)i,
                          rc_name(rc))) {
            CHECKF(n == g_state[i].vlen &&
                       val_check(g_buf, n, k, kl, g_state[i].version),
                   "%s: key %llu has version %llu exactly", when, (unsigned long long)i,
                   (unsigned long long)g_state[i].version);
        }
    }
    CHECKF(tst_failures() == f0, "%s: all %d keys as expected", when, NKEYS);
    CHECK_EQ(entries(c), expected_entries());
}

TEST_MAIN(cache_reopen)
{
    (void)argc;
    (void)argv;
    tst_begin("cache_reopen");
    rng_t r;
    rng_seed(&r, tst_seed());
    char path[4096];
    tst_path(path, sizeof path, "reopen.dc");
    dcache *c = cache_create(path, 64 * MiB, 0);
    int cycles = tst_quick() ? 3 : 6;
    for (int cycle = 0; cycle < cycles; cycle++) {
        int ops = cycle == 0 ? NKEYS : 400;
        for (int k = 0; k < ops; k++) {
            uint64_t i = cycle == 0 ? (uint64_t)k : rng_below(&r, NKEYS);
            if (cycle > 0 && rng_below(&r, 4) == 0)
                do_delete(c, i);
            else
                do_put(c, i, &r);
            if (k == ops / 2)
                CHECK_RC(dcache_flush(c), DCACHE_OK);
        }
        char when[64];
        snprintf(when, sizeof when, "cycle %d before close", cycle);
        verify(c, when);
        uint64_t before = entries(c);
        CHECK_RC(dcache_close(c), DCACHE_OK);

        if (cycle == 1) {
            dcache_options o;
            cache_opts(&o, 0, DCACHE_OPEN_READ_ONLY);
            c = NULL;
            if (CHECK_RC(dcache_open(path, &o, &c), DCACHE_OK)) {
                verify(c, "read-only reopen");
                CHECK_RC(dcache_close(c), DCACHE_OK);
            }
        }
        c = NULL;
        if (!CHECK_RC(dcache_open(path, NULL, &c), DCACHE_OK))
            break;
        snprintf(when, sizeof when, "cycle %d after reopen", cycle);
        CHECK_EQ(entries(c), before);
        verify(c, when);
    }
    if (c)
        CHECK_RC(dcache_close(c), DCACHE_OK);
    return tst_finish();
}

/* Corruption: a cache is written and closed, then bytes of its file are flipped with ordinary
 * pwrite, and it is reopened. No crash; the open succeeds or fails with a clean code; every
 * get, get_range and value_size is either exactly right or DCACHE_NOT_FOUND; the cache keeps
 * working for new puts.
 * - Targeted: one byte flipped inside the stored bytes of chosen values (found by searching the
 *   file for them): those keys are DCACHE_NOT_FOUND to get, a range over the flipped byte is
 *   DCACHE_NOT_FOUND, all other keys are exact, stats.checksum_failures > 0.
 * - Random: rounds of hundreds of flips spread over the whole file, or concentrated on its
 *   first and last MiB (where headers and summaries tend to live), or on the written part.
 *   When a flip hit a value's stored bytes and that key was then not found,
 *   stats.checksum_failures must be > 0. */
#include "common.h"

#include <fcntl.h>
#include <unistd.h>

#define CAP (32 * MiB)
#define NKEYS 300

struct kv {
    uint8_t key[32];
    size_t klen, vlen;
    int64_t pos;      /* where the value's bytes were found in the file, -1 if not contiguous */
};

static struct kv g_kv[NKEYS];

static void write_cache(const char *path, rng_t *r)
{
    rm_rf(path);
    dcache *c = cache_create(path, CAP, 0);
    uint8_t *v = malloc(100 * KiB);
    for (int i = 0; i < NKEYS; i++) {
        g_kv[i].klen = 8 + (size_t)rng_below(r, 24);
        key_make(g_kv[i].key, (uint64_t)i, g_kv[i].klen);
        g_kv[i].vlen = (size_t)rng_range(r, 64, rng_below(r, 5) ? 20000 : 100 * KiB);
        val_fill(v, g_kv[i].vlen, g_kv[i].key, g_kv[i].klen, 1);
        CHECK_RC(dcache_put(c, g_kv[i].key, g_kv[i].klen, v, g_kv[i].vlen, 0), DCACHE_OK);
    }
    free(v);
    CHECK_RC(dcache_close(c), DCACHE_OK);
}

/* finds each value's bytes in the file image (contiguous copies only) */
static void locate_values(const uint8_t *img, size_t len)
{
    uint8_t *v = malloc(100 * KiB);
    for (int i = 0; i < NKEYS; i++) {
        struct kv *e = &g_kv[i];
        val_fill(v, e->vlen, e->key, e->klen, 1);
        e->pos = -1;
        const uint8_t *p = memmem(img, len, v, 64);
        while (p) {
            size_t at = (size_t)(p - img);
            if (at + e->vlen <= len && memcmp(p, v, e->vlen) == 0) {
                e->pos = (int64_t)at;
                break;
            }
            p = memmem(p + 1, len - at - 1, v, 64);
        }
    }
    free(v);
}

static void flip(int fd, uint64_t off, uint8_t mask)
{
    uint8_t b;
    if (pread(fd, &b, 1, (off_t)off) != 1)
        tst_die("pread");
    b ^= mask ? mask : 0x01;
    if (pwrite(fd, &b, 1, (off_t)off) != 1)
        tst_die("pwrite");
}

static dcache_stats stats_of(dcache *c)
{
    dcache_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RC(dcache_get_stats(c, &st), DCACHE_OK);
    return st;
}

/* get/value_size/get_range of key i: exact or NOT_FOUND. Returns 1 found, 0 not found. */
static int check_key(dcache *c, int i, uint8_t *buf, rng_t *r, const char *when)
{
    struct kv *e = &g_kv[i];
    uint64_t sz = 0;
    dcache_result rs = dcache_value_size(c, e->key, e->klen, &sz);
    CHECKF(rs == DCACHE_NOT_FOUND || (rs == DCACHE_OK && sz == e->vlen),
           "%s: value_size(key %d) = %s, %llu (want %zu)", when, i, rc_name(rs),
           (unsigned long long)sz, e->vlen);
    /* a range first (before a full get may drop the entry) */
    uint64_t off = rng_below(r, e->vlen);
    size_t len = (size_t)rng_range(r, 1, 5000), n = 0;
    dcache_result rr = dcache_get_range(c, e->key, e->klen, off, buf, len, &n);
    if (CHECKF(rr == DCACHE_OK || rr == DCACHE_NOT_FOUND, "%s: get_range(key %d) = %s", when, i,
               rc_name(rr)) &&
        rr == DCACHE_OK) {
        size_t want = e->vlen - off < len ? (size_t)(e->vlen - off) : len;
        uint8_t *exp = malloc(want + 1);
        val_slice(exp, e->vlen, off, want, e->key, e->klen, 1);
        CHECKF(n == want && memcmp(buf, exp, want) == 0,
               "%s: get_range(key %d) returned wrong bytes", when, i);
        free(exp);
    }
    n = 0;
    dcache_result rc = dcache_get(c, e->key, e->klen, buf, 100 * KiB, &n);
    if (!CHECKF(rc == DCACHE_OK || rc == DCACHE_NOT_FOUND, "%s: get(key %d) = %s", when, i,
                rc_name(rc)))
        return 0;
    if (rc == DCACHE_NOT_FOUND)
        return 0;
    CHECKF(n == e->vlen && val_check(buf, n, e->key, e->klen, 1),
           "%s: get(key %d) returned wrong bytes (%zu, want %zu)", when, i, n, e->vlen);
    return 1;
}

/* Writes a fresh cache, returns its bytes as a plain read sees them (the caller frees them)
 * and locates each value in them. */
static uint8_t *written_image(const char *path, rng_t *r, size_t *len)
{
    write_cache(path, r);
    uint8_t *img = NULL;
    if (!file_read_all_plain(path, &img, len))
        tst_die("read %s", path);
    locate_values(img, *len);
    return img;
}

static void targeted(const char *path, rng_t *r)
{
    size_t len = 0;
    uint8_t *img = written_image(path, r, &len);
    int located = 0;
    for (int i = 0; i < NKEYS; i++)
        located += g_kv[i].pos >= 0;
    tst_note("targeted: %d of %d values found stored contiguously", located, NKEYS);
    CHECKF(located >= NKEYS / 2, "most values are found in the file (%d of %d)", located, NKEYS);

    /* flip one byte in the middle of 20 located values */
    bool hit[NKEYS] = {false};
    uint64_t hit_off[NKEYS] = {0};
    int fd = open(path, O_RDWR);
    int nhit = 0;
    for (int i = 0; i < NKEYS && nhit < 20; i += 7) {
        if (g_kv[i].pos < 0)
            continue;
        hit_off[i] = g_kv[i].vlen / 2;
        flip(fd, (uint64_t)g_kv[i].pos + hit_off[i], (uint8_t)(1u << rng_below(r, 8)));
        hit[i] = true;
        nhit++;
    }
    fsync(fd);
    close(fd);
    free(img);

    dcache *c = NULL;
    if (!CHECK_RC(dcache_open(path, NULL, &c), DCACHE_OK))
        return;
    uint8_t *buf = malloc(100 * KiB + 16);
    for (int i = 0; i < NKEYS; i++) {
        struct kv *e = &g_kv[i];
        if (hit[i]) {
            size_t n = 0;
            uint64_t start = hit_off[i] > 10 ? hit_off[i] - 10 : 0;
            CHECKF(dcache_get_range(c, e->key, e->klen, start, buf, 20, &n) == DCACHE_NOT_FOUND,
                   "a range over a flipped byte of key %d is DCACHE_NOT_FOUND", i);
            CHECKF(dcache_get(c, e->key, e->klen, buf, 100 * KiB, &n) == DCACHE_NOT_FOUND,
                   "key %d with a flipped byte is DCACHE_NOT_FOUND", i);
        } else {
            CHECKF(check_key(c, i, buf, r, "targeted") == 1, "untouched key %d is intact", i);
        }
    }
    dcache_stats st = stats_of(c);
    CHECKF(st.checksum_failures > 0, "stats.checksum_failures %llu > 0 after %d corrupt values",
           (unsigned long long)st.checksum_failures, nhit);
    /* still a working cache */
    CHECK_RC(dcache_put(c, (const uint8_t *)"new", 3, (const uint8_t *)"value", 5, 0), DCACHE_OK);
    size_t n = 0;
    CHECK_RC(dcache_get(c, (const uint8_t *)"new", 3, buf, 16, &n), DCACHE_OK);
    CHECK(n == 5 && memcmp(buf, "value", 5) == 0);
    CHECK_RC(dcache_close(c), DCACHE_OK);
    free(buf);
}

static void random_round(const char *path, rng_t *r, int round, int nflips)
{
    size_t len = 0;
    uint8_t *img = written_image(path, r, &len);
    uint64_t used_end = 0;
    for (int i = 0; i < NKEYS; i++)
        if (g_kv[i].pos >= 0 && (uint64_t)g_kv[i].pos + g_kv[i].vlen > used_end)
            used_end = (uint64_t)g_kv[i].pos + g_kv[i].vlen;
    free(img);
    if (used_end == 0)
        used_end = len;

    int fd = open(path, O_RDWR);
    bool hit[NKEYS] = {false};
    int mode = round % 3;
    for (int f = 0; f < nflips; f++) {
        uint64_t off;
        if (mode == 0)
            off = rng_below(r, len);
        else if (mode == 1)
            off = rng_below(r, 2) ? rng_below(r, MiB) : len - 1 - rng_below(r, MiB);
        else
            off = rng_below(r, used_end);
        flip(fd, off, (uint8_t)rng_range(r, 1, 255));
        for (int i = 0; i < NKEYS; i++)
            if (g_kv[i].pos >= 0 && off >= (uint64_t)g_kv[i].pos &&
                off < (uint64_t)g_kv[i].pos + g_kv[i].vlen)
                hit[i] = true;
    }
    fsync(fd);
    close(fd);

    static const char *const modes[] = {"whole file", "first/last MiB", "written part"};
    char when[64];
    snprintf(when, sizeof when, "random round %d (%s)", round, modes[mode]);
    dcache *c = NULL;
    dcache_result rc = dcache_open(path, NULL, &c);
    CHECKF(rc == DCACHE_OK || rc == DCACHE_NOT_A_CACHE || rc == DCACHE_INCOMPATIBLE ||
               rc == DCACHE_IO_ERROR,
           "%s: open = %s, want OK or a clean refusal", when, rc_name(rc));
    if (rc != DCACHE_OK) {
        tst_note("%s: open refused with %s: %s", when, rc_name(rc), dcache_last_error_message());
        return;
    }
    uint8_t *buf = malloc(100 * KiB + 16);
    int found = 0, hit_missing = 0, hits = 0;
    for (int i = 0; i < NKEYS; i++) {
        int st = check_key(c, i, buf, r, when);
        found += st;
        hits += hit[i];
        if (hit[i] && !st)
            hit_missing++;
    }
    dcache_stats st = stats_of(c);
    tst_note("%s: %d flips hit %d values; %d of %d keys found; checksum_failures %llu", when,
             nflips, hits, found, NKEYS, (unsigned long long)st.checksum_failures);
    if (hit_missing > 0)
        CHECKF(st.checksum_failures > 0, "%s: %d corrupted values were refused, so "
               "checksum_failures > 0", when, hit_missing);
    /* and it still works */
    for (int i = 0; i < 20; i++) {
        uint8_t k[16], v[3000];
        size_t n = 0;
        key_make(k, 100000 + (uint64_t)i, sizeof k);
        val_fill(v, sizeof v, k, sizeof k, 2);
        CHECK_RC(dcache_put(c, k, sizeof k, v, sizeof v, 0), DCACHE_OK);
        CHECK_RC(dcache_get(c, k, sizeof k, buf, 100 * KiB, &n), DCACHE_OK);
        CHECK(n == sizeof v && val_check(buf, n, k, sizeof k, 2));
    }
    CHECK_RC(dcache_close(c), DCACHE_OK);
    /* and reopens */
    c = NULL;
    if (CHECK_RC(dcache_open(path, NULL, &c), DCACHE_OK)) {
        for (int i = 0; i < NKEYS; i++)
            check_key(c, i, buf, r, when);
        CHECK_RC(dcache_close(c), DCACHE_OK);
    }
    free(buf);
}

TEST_MAIN(cache_corrupt)
{
    (void)argc;
    (void)argv;
    tst_begin("cache_corrupt");
    rng_t r;
    rng_seed(&r, tst_seed());
    char path[4096];
    tst_path(path, sizeof path, "corrupt.dc");
    targeted(path, &r);
    int rounds = tst_quick() ? 3 : 9;
    for (int round = 0; round < rounds; round++)
        random_round(path, &r, round, 200 + (int)rng_below(&r, 300));
    return tst_finish();
}

/* The streaming writer: the value is invisible until commit (an older value stays visible
 * meanwhile), commit makes it visible whole; abort leaves nothing (and the old value); many
 * small writes (thousands, 1..50 bytes, at odd addresses) add up exactly; an empty commit
 * stores an empty value; several writers at once on different keys; a writer whose cache was
 * closed first fails its commit with DCACHE_IO_ERROR (and nothing crashes). */
#include "common.h"

#define K(s) ((const uint8_t *)(s)), (sizeof(s) - 1)

static bool get_is(dcache *c, const uint8_t *k, size_t kl, size_t vl, uint64_t ver)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    dcache_result rc = cache_get_alloc(c, k, kl, &buf, &n);
    bool ok = rc == DCACHE_OK && n == vl && val_check(buf, n, k, kl, ver);
    free(buf);
    return ok;
}

static bool absent(dcache *c, const uint8_t *k, size_t kl)
{
    size_t n = 0;
    uint64_t sz = 0;
    return dcache_get(c, k, kl, NULL, 0, &n) == DCACHE_NOT_FOUND &&
           dcache_value_size(c, k, kl, &sz) == DCACHE_NOT_FOUND;
}

/* streams the value for (key, ver, vl) in pieces of 1..maxpiece bytes */
static dcache_result stream(dcache_writer *w, const uint8_t *k, size_t kl, size_t vl,
                            uint64_t ver, size_t maxpiece, rng_t *r, size_t *npieces)
{
    uint8_t *v = malloc(vl + 64);
    val_fill(v + 7, vl, k, kl, ver);
    size_t off = 0, pieces = 0;
    dcache_result rc = DCACHE_OK;
    while (off < vl && rc == DCACHE_OK) {
        size_t n = (size_t)rng_range(r, 1, maxpiece);
        if (n > vl - off)
            n = vl - off;
        rc = dcache_writer_write(w, v + 7 + off, n);
        off += n;
        pieces++;
        if (pieces % 100 == 0 && rc == DCACHE_OK)
            rc = dcache_writer_write(w, NULL, 0);   /* (NULL, 0) does nothing */
    }
    free(v);
    if (npieces)
        *npieces = pieces;
    return rc;
}

TEST_MAIN(cache_writer)
{
    (void)argc;
    (void)argv;
    tst_begin("cache_writer");
    rng_t r;
    rng_seed(&r, tst_seed());
    char path[4096];
    tst_path(path, sizeof path, "writer.dc");
    dcache *c = cache_create(path, 64 * MiB, 0);

    /* invisible before commit, whole after */
    dcache_writer *w = NULL;
    if (CHECK_RC(dcache_writer_open(c, K("s1"), 0, &w), DCACHE_OK)) {
        CHECK_RC(stream(w, K("s1"), 300000, 1, 65536, &r, NULL), DCACHE_OK);
        CHECK(absent(c, K("s1")));
        CHECK_RC(dcache_writer_commit(w), DCACHE_OK);
        CHECK(get_is(c, K("s1"), 300000, 1));
    }
    /* replacing: the old value stays visible until the commit */
    w = NULL;
    if (CHECK_RC(dcache_writer_open(c, K("s1"), 0, &w), DCACHE_OK)) {
        CHECK_RC(stream(w, K("s1"), 5000, 2, 700, &r, NULL), DCACHE_OK);
        CHECK(get_is(c, K("s1"), 300000, 1));
        CHECK_RC(dcache_writer_commit(w), DCACHE_OK);
        CHECK(get_is(c, K("s1"), 5000, 2));
    }
    /* abort: nothing new, the old value kept; a fresh key stays absent */
    w = NULL;
    if (CHECK_RC(dcache_writer_open(c, K("s1"), 0, &w), DCACHE_OK)) {
        CHECK_RC(stream(w, K("s1"), 9000, 3, 1000, &r, NULL), DCACHE_OK);
        dcache_writer_abort(w);
        CHECK(get_is(c, K("s1"), 5000, 2));
    }
    w = NULL;
    if (CHECK_RC(dcache_writer_open(c, K("aborted"), 0, &w), DCACHE_OK)) {
        CHECK_RC(stream(w, K("aborted"), 100000, 1, 4096, &r, NULL), DCACHE_OK);
        dcache_writer_abort(w);
        CHECK(absent(c, K("aborted")));
    }
    w = NULL;
    if (CHECK_RC(dcache_writer_open(c, K("aborted-empty"), 0, &w), DCACHE_OK)) {
        dcache_writer_abort(w);
        CHECK(absent(c, K("aborted-empty")));
    }

    /* many small writes */
    size_t small_total = tst_quick() ? 30000 : 250000, pieces = 0;
    w = NULL;
    if (CHECK_RC(dcache_writer_open(c, K("small"), 0, &w), DCACHE_OK)) {
        CHECK_RC(stream(w, K("small"), small_total, 7, 50, &r, &pieces), DCACHE_OK);
        CHECK_RC(dcache_writer_commit(w), DCACHE_OK);
        CHECKF(pieces > 1000 || tst_quick(), "%zu small writes", pieces);
        CHECK(get_is(c, K("small"), small_total, 7));
    }
    /* the special sizes, written in pieces */
    const size_t sizes[] = {0, 1, 511, 512, 513, 4095, 4096, 4097, 1048577};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t key[16];
        key_make(key, i, sizeof key);
        w = NULL;
        if (!CHECK_RC(dcache_writer_open(c, key, sizeof key, 0, &w), DCACHE_OK))
            continue;
        CHECK_RC(stream(w, key, sizeof key, sizes[i], 11, 3000, &r, NULL), DCACHE_OK);
        CHECK_RC(dcache_writer_commit(w), DCACHE_OK);
        CHECKF(get_is(c, key, sizeof key, sizes[i], 11), "streamed value of %zu bytes", sizes[i]);
    }

    /* several writers at once, committed in another order than opened */
    enum { NW = 5 };
    dcache_writer *ws[NW] = {0};
    uint8_t keys[NW][20];
    for (int i = 0; i < NW; i++) {
        key_make(keys[i], 1000 + (uint64_t)i, sizeof keys[i]);
        CHECK_RC(dcache_writer_open(c, keys[i], sizeof keys[i], 0, &ws[i]), DCACHE_OK);
    }
    for (int i = 0; i < NW; i++)
        if (ws[i])
            CHECK_RC(stream(ws[i], keys[i], sizeof keys[i], 20000 + (size_t)i, 21, 999, &r, NULL),
                     DCACHE_OK);
    for (int i = NW - 1; i >= 0; i--) {
        if (!ws[i])
            continue;
        if (i == 2) {
            dcache_writer_abort(ws[i]);
            continue;
        }
        CHECK_RC(dcache_writer_commit(ws[i]), DCACHE_OK);
    }
    for (int i = 0; i < NW; i++) {
        if (i == 2)
            CHECK(absent(c, keys[i], sizeof keys[i]));
        else
            CHECK(get_is(c, keys[i], sizeof keys[i], 20000 + (size_t)i, 21));
    }
    /* a put while a writer on the same key is open: the commit, coming later, wins */
    w = NULL;
    if (CHECK_RC(dcache_writer_open(c, K("race"), 0, &w), DCACHE_OK)) {
        CHECK_RC(stream(w, K("race"), 3000, 2, 500, &r, NULL), DCACHE_OK);
        uint8_t v[100];
        val_fill(v, sizeof v, K("race"), 1);
        CHECK_RC(dcache_put(c, K("race"), v, sizeof v, 0), DCACHE_OK);
        CHECK(get_is(c, K("race"), 100, 1));
        CHECK_RC(dcache_writer_commit(w), DCACHE_OK);
        CHECK(get_is(c, K("race"), 3000, 2));
    }

    /* committed values survive a reopen; aborted ones stay absent */
    CHECK_RC(dcache_close(c), DCACHE_OK);
    c = NULL;
    if (CHECK_RC(dcache_open(path, NULL, &c), DCACHE_OK)) {
        CHECK(get_is(c, K("s1"), 5000, 2));
        CHECK(get_is(c, K("small"), small_total, 7));
        CHECK(absent(c, K("aborted")));
        CHECK(absent(c, keys[2], sizeof keys[2]));
        CHECK(get_is(c, keys[4], sizeof keys[4], 20004, 21));

        /* a writer outliving its cache: usable, but its commit fails */
        w = NULL;
        dcache_writer *w2 = NULL;
        CHECK_RC(dcache_writer_open(c, K("orphan"), 0, &w), DCACHE_OK);
        CHECK_RC(dcache_writer_open(c, K("orphan2"), 0, &w2), DCACHE_OK);
        CHECK_RC(dcache_writer_write(w, (const uint8_t *)"abc", 3), DCACHE_OK);
        CHECK_RC(dcache_close(c), DCACHE_OK);
        if (w) {
            dcache_result rc = dcache_writer_write(w, (const uint8_t *)"def", 3);
            CHECK_RC_IN(rc, DCACHE_OK, DCACHE_IO_ERROR);
            CHECK_RC(dcache_writer_commit(w), DCACHE_IO_ERROR);
        }
        dcache_writer_abort(w2);
    }
    c = NULL;
    if (CHECK_RC(dcache_open(path, NULL, &c), DCACHE_OK)) {
        CHECK(absent(c, K("orphan")));
        CHECK_RC(dcache_close(c), DCACHE_OK);
    }
    return tst_finish();
}

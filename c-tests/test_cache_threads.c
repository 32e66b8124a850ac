/* Concurrency: four threads share one dcache handle for ~3 seconds, doing puts (plain and
 * streamed), gets, range reads, value_size and deletes on a shared key space, with
 * self-verifying values (the value names its version and length). Zero wrong results: every
 * hit must be exactly some version written for that key, sizes must agree with the bytes.
 * A fifth thread reads stats and flushes meanwhile. Misses are fine (deletes, eviction). */
#include "common.h"

#include <pthread.h>

#define NTHREADS 4
#define NKEYS 400

struct ctx {
    dcache *c;
    int tid;
    double until;
    unsigned long ops, hits, wrong;
};

static volatile int g_stop;

static void key_of(uint64_t i, uint8_t *k, size_t *kl)
{
    *kl = 12 + (size_t)(i % 20);
    key_make(k, i, *kl);
}

static void *worker(void *arg)
{
    struct ctx *x = arg;
    rng_t r;
    rng_seed(&r, tst_seed() * 31 + (uint64_t)x->tid);
    size_t cap = 96 * KiB;
    uint8_t *buf = malloc(cap + 16), *part = malloc(cap + 16);
    uint64_t seq = 0;
    while (now_sec() < x->until) {
        uint64_t i = rng_below(&r, NKEYS);
        uint8_t k[40];
        size_t kl;
        key_of(i, k, &kl);
        unsigned op = (unsigned)rng_below(&r, 100);
        x->ops++;
        if (op < 35) {
            size_t vl = (size_t)rng_range(&r, VAL_HDR, rng_below(&r, 8) ? 4096 : cap);
            uint64_t ver = ((uint64_t)x->tid << 48) | ++seq;
            val_fill(buf, vl, k, kl, ver);
            dcache_result rc = dcache_put(x->c, k, kl, buf, vl, 0);
            if (!CHECKF(rc == DCACHE_OK, "thread %d: put = %s", x->tid, rc_name(rc)))
                x->wrong++;
        } else if (op < 40) {
            size_t vl = (size_t)rng_range(&r, VAL_HDR, 20000);
            uint64_t ver = ((uint64_t)x->tid << 48) | ++seq;
            val_fill(buf, vl, k, kl, ver);
            dcache_writer *w = NULL;
            dcache_result rc = dcache_writer_open(x->c, k, kl, 0, &w);
            for (size_t off = 0; rc == DCACHE_OK && off < vl; off += 1000)
                rc = dcache_writer_write(w, buf + off, vl - off < 1000 ? vl - off : 1000);
            if (w)
                rc = rc == DCACHE_OK ? dcache_writer_commit(w) : (dcache_writer_abort(w), rc);
            if (!CHECKF(rc == DCACHE_OK, "thread %d: streamed put = %s", x->tid, rc_name(rc)))
                x->wrong++;
        } else if (op < 80) {
            size_t n = 0;
            dcache_result rc = dcache_get(x->c, k, kl, buf, cap, &n);
            if (rc == DCACHE_OK) {
                x->hits++;
                if (!CHECKF(val_parse(buf, n, k, kl, NULL),
                            "thread %d: get of key %llu returned %zu bytes that are no version "
                            "of that key", x->tid, (unsigned long long)i, n))
                    x->wrong++;
            } else if (!CHECKF(rc == DCACHE_NOT_FOUND, "thread %d: get = %s", x->tid,
                               rc_name(rc))) {
                x->wrong++;
            }
        } else if (op < 90) {
            /* a range read between two reads of the header: when both headers name the same
             * version, that version was current throughout (versions are never reused), so
             * the range must be exactly its bytes */
            size_t n1 = 0, n2 = 0, m = 0;
            uint8_t h1[VAL_HDR], h2[VAL_HDR];
            uint64_t off = rng_below(&r, 3000);
            size_t len = (size_t)rng_range(&r, 0, 3000);
            dcache_result rc1 = dcache_get_range(x->c, k, kl, 0, h1, VAL_HDR, &n1);
            dcache_result rc = dcache_get_range(x->c, k, kl, off, part, len, &m);
            dcache_result rc2 = dcache_get_range(x->c, k, kl, 0, h2, VAL_HDR, &n2);
            if (!CHECKF((rc1 == DCACHE_OK || rc1 == DCACHE_NOT_FOUND) &&
                            (rc2 == DCACHE_OK || rc2 == DCACHE_NOT_FOUND) &&
                            (rc == DCACHE_OK || rc == DCACHE_NOT_FOUND || rc == DCACHE_RANGE),
                        "thread %d: get_range = %s, %s, %s", x->tid, rc_name(rc1), rc_name(rc),
                        rc_name(rc2))) {
                x->wrong++;
            } else if (rc1 == DCACHE_OK && rc2 == DCACHE_OK && n1 == VAL_HDR && n2 == VAL_HDR &&
                       memcmp(h1, h2, VAL_HDR) == 0) {
                uint64_t ver, vlen;
                memcpy(&ver, h1, 8);
                memcpy(&vlen, h1 + 8, 8);
                bool ok;
                if (off > vlen) {
                    ok = rc == DCACHE_RANGE;
                } else {
                    size_t want = vlen - off < len ? (size_t)(vlen - off) : len;
                    val_slice(buf, (size_t)vlen, off, want, k, kl, ver);
                    ok = rc == DCACHE_OK && m == want && memcmp(buf, part, want) == 0;
                }
                if (!CHECKF(ok, "thread %d: range (%llu, %zu) of key %llu (version %llx, %llu "
                            "bytes) = %s, %zu bytes: not that version's bytes", x->tid,
                            (unsigned long long)off, len, (unsigned long long)i,
                            (unsigned long long)ver, (unsigned long long)vlen, rc_name(rc), m))
                    x->wrong++;
                else
                    x->hits++;
            }
        } else if (op < 95) {
            uint64_t sz = 0;
            dcache_result rc = dcache_value_size(x->c, k, kl, &sz);
            if (!CHECKF(rc == DCACHE_NOT_FOUND || (rc == DCACHE_OK && sz >= VAL_HDR && sz <= cap),
                        "thread %d: value_size = %s, %llu", x->tid, rc_name(rc),
                        (unsigned long long)sz))
                x->wrong++;
        } else {
            dcache_result rc = dcache_delete(x->c, k, kl);
            if (!CHECKF(rc == DCACHE_OK || rc == DCACHE_NOT_FOUND, "thread %d: delete = %s",
                        x->tid, rc_name(rc)))
                x->wrong++;
        }
    }
    free(buf);
    free(part);
    return NULL;
}

static void *observer(void *arg)
{
    dcache *c = arg;
    while (!g_stop) {
        dcache_stats st;
        memset(&st, 0, sizeof st);
        st.struct_size = sizeof st;
        CHECK_RC(dcache_get_stats(c, &st), DCACHE_OK);
        CHECK(st.used_bytes <= st.capacity);
        CHECK_RC(dcache_flush(c), DCACHE_OK);
        sleep_ms(50);
    }
    return NULL;
}

TEST_MAIN(cache_threads)
{
    (void)argc;
    (void)argv;
    tst_begin("cache_threads");
    tst_seed();
    char path[4096];
    tst_path(path, sizeof path, "threads.dc");
    dcache *c = cache_create(path, 64 * MiB, 0);
    double secs = tst_quick() ? 1.0 : 3.0;
    struct ctx ctx[NTHREADS];
    pthread_t th[NTHREADS], obs;
    double until = now_sec() + secs;
    g_stop = 0;
    for (int t = 0; t < NTHREADS; t++) {
        ctx[t] = (struct ctx){c, t, until, 0, 0, 0};
        pthread_create(&th[t], NULL, worker, &ctx[t]);
    }
    pthread_create(&obs, NULL, observer, c);
    unsigned long ops = 0, hits = 0, wrong = 0;
    for (int t = 0; t < NTHREADS; t++) {
        pthread_join(th[t], NULL);
        ops += ctx[t].ops;
        hits += ctx[t].hits;
        wrong += ctx[t].wrong;
    }
    g_stop = 1;
    pthread_join(obs, NULL);
    tst_note("%lu operations, %lu hits, %lu wrong", ops, hits, wrong);
    CHECK_EQ(wrong, 0);
    CHECK(hits > 0);
    CHECK(ops > 1000);

    /* afterwards, single-threaded: every key present is a valid version */
    uint8_t *buf = malloc(100 * KiB);
    unsigned long present = 0;
    for (uint64_t i = 0; i < NKEYS; i++) {
        uint8_t k[40];
        size_t kl, n = 0;
        key_of(i, k, &kl);
        dcache_result rc = dcache_get(c, k, kl, buf, 100 * KiB, &n);
        if (rc == DCACHE_OK) {
            present++;
            CHECKF(val_parse(buf, n, k, kl, NULL), "key %llu holds a valid version",
                   (unsigned long long)i);
        } else {
            CHECK_RC(rc, DCACHE_NOT_FOUND);
        }
    }
    dcache_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RC(dcache_get_stats(c, &st), DCACHE_OK);
    CHECK_EQ(st.entries, present);
    CHECK_EQ(st.checksum_failures, 0);
    free(buf);
    CHECK_RC(dcache_close(c), DCACHE_OK);
    return tst_finish();
}

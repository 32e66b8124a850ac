/* Reinsertion: when the log reclaims a region, the entries read since they were written are
 * written again in the main ring (moved there from probation, or again at its head). On a
 * small cache (7 regions of 1 MiB) that reclaims a region every ten puts:
 *   - threads: three writers, each owning 40 keys, put new versions, delete and get them,
 *     and two readers get any key, all at once. Every value read is whole, and a writer never
 *     reads an older version of its own key than its last put, nor a key it deleted; after a
 *     clean reopen every key holds its last version or nothing.
 *   - kill -9: a child puts and gets (so that it reinserts) and flushes now and then, telling
 *     the parent each put and each completed flush through a pipe; the parent kills it at a
 *     random moment, reopens and checks that no key comes back older than its last put before
 *     the last completed flush, and that every value is whole. */
#include "common.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define CAP (8 * MiB)
#define KEYS_PER_WRITER 40
#define WRITERS 3
#define VMAX (90 * KiB)

static void key_of(unsigned w, unsigned k, uint8_t *buf, size_t *kl)
{
    *kl = 16;
    key_make(buf, (uint64_t)w * 1000 + k, *kl);
}

/* The version of the value under the key, 0 on a miss; a wrong value fails the check. */
static uint64_t read_version(dcache *c, const uint8_t *key, size_t kl, uint8_t *buf)
{
    size_t n = 0;
    dcache_result rc = dcache_get(c, key, kl, buf, VMAX, &n);
    if (rc == DCACHE_NOT_FOUND)
        return 0;
    uint64_t v = 0;
    if (!CHECKF(rc == DCACHE_OK && val_parse(buf, n, key, kl, &v), "a get returned %s or wrong bytes",
                rc_name(rc)))
        return 0;
    return v;
}

struct writer {
    dcache *c;
    unsigned w;
    uint64_t last[KEYS_PER_WRITER]; /* last version put; 0: deleted or never put */
};

static void *writer_main(void *arg)
{
    struct writer *wr = arg;
    rng_t r;
    rng_seed(&r, tst_seed() + wr->w);
    uint8_t *buf = malloc(VMAX);
    unsigned steps = tst_quick() ? 600 : 3000;
    for (unsigned step = 1; step <= steps; step++) {
        unsigned k = (unsigned)rng_below(&r, KEYS_PER_WRITER);
        uint8_t key[16];
        size_t kl;
        key_of(wr->w, k, key, &kl);
        unsigned p = (unsigned)rng_below(&r, 8);
        if (p == 0) {
            CHECK_RC_IN(dcache_delete(wr->c, key, kl), DCACHE_OK, DCACHE_NOT_FOUND);
            wr->last[k] = 0;
        } else if (p <= 3) {
            size_t len = (size_t)rng_range(&r, 20 * KiB, 80 * KiB);
            uint64_t version = (uint64_t)step;
            val_fill(buf, len, key, kl, version);
            CHECK_RC(dcache_put(wr->c, key, kl, buf, len, 0), DCACHE_OK);
            wr->last[k] = version;
        } else {
            uint64_t v = read_version(wr->c, key, kl, buf);
            CHECKF(v == 0 || v == wr->last[k], "key %u/%u: read version %llu, last put %llu",
                   wr->w, k, (unsigned long long)v, (unsigned long long)wr->last[k]);
        }
    }
    free(buf);
    return NULL;
}

struct reader {
    dcache *c;
    volatile bool *stop;
    unsigned long reads;
};

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    rng_t r;
    rng_seed(&r, tst_seed() ^ 0x5eed);
    uint8_t *buf = malloc(VMAX);
    while (!__atomic_load_n(rd->stop, __ATOMIC_RELAXED)) {
        uint8_t key[16];
        size_t kl;
        key_of((unsigned)rng_below(&r, WRITERS), (unsigned)rng_below(&r, KEYS_PER_WRITER), key, &kl);
        read_version(rd->c, key, kl, buf);
        rd->reads++;
    }
    free(buf);
    return NULL;
}

static void threads(void)
{
    char path[4096];
    tst_path(path, sizeof path, "threads.dc");
    dcache *c = cache_create(path, CAP, 0);
    struct writer wr[WRITERS];
    struct reader rd[2];
    pthread_t wt[WRITERS], rt[2];
    volatile bool stop = false;
    for (unsigned i = 0; i < 2; i++) {
        rd[i] = (struct reader){.c = c, .stop = &stop};
        pthread_create(&rt[i], NULL, reader_main, &rd[i]);
    }
    for (unsigned w = 0; w < WRITERS; w++) {
        memset(&wr[w], 0, sizeof wr[w]);
        wr[w].c = c;
        wr[w].w = w;
        pthread_create(&wt[w], NULL, writer_main, &wr[w]);
    }
    for (unsigned w = 0; w < WRITERS; w++)
        pthread_join(wt[w], NULL);
    __atomic_store_n(&stop, true, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < 2; i++)
        pthread_join(rt[i], NULL);
    dcache_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    CHECK_RC(dcache_get_stats(c, &s), DCACHE_OK);
    CHECKF(s.promoted > 0 && s.promoted_bytes > 0, "promoted %llu entries",
           (unsigned long long)s.promoted);
    CHECK_EQ(s.checksum_failures, 0);
    tst_note("%llu promoted, %llu reinserted, %llu ghost hits, %llu evictions, %lu reads by the readers",
             (unsigned long long)s.promoted, (unsigned long long)s.reinserted,
             (unsigned long long)s.ghost_hits, (unsigned long long)s.evictions,
             rd[0].reads + rd[1].reads);
    CHECK_RC(dcache_close(c), DCACHE_OK);
    /* After a clean reopen: the last version of every key, or nothing. */
    c = cache_create(path, CAP, 0);
    uint8_t *buf = malloc(VMAX);
    for (unsigned w = 0; w < WRITERS; w++) {
        for (unsigned k = 0; k < KEYS_PER_WRITER; k++) {
            uint8_t key[16];
            size_t kl;
            key_of(w, k, key, &kl);
            uint64_t v = read_version(c, key, kl, buf);
            CHECKF(v == 0 || v == wr[w].last[k], "after a reopen, key %u/%u: version %llu, last %llu",
                   w, k, (unsigned long long)v, (unsigned long long)wr[w].last[k]);
        }
    }
    free(buf);
    CHECK_RC(dcache_close(c), DCACHE_OK);
}

/* ---- kill -9 in the middle of reinsertions ------------------------------------------------ */

struct rec {
    uint32_t type; /* 'P' put of (key, version) about to start, 'F' flush completed */
    uint32_t key;
    uint64_t version;
};

static int child_main(const char *path, uint64_t seed, uint64_t base, int fd)
{
    dcache *c = NULL;
    if (dcache_open(path, NULL, &c) != DCACHE_OK)
        return 3;
    rng_t r;
    rng_seed(&r, seed);
    uint8_t *buf = malloc(VMAX);
    for (uint64_t step = 1;; step++) {
        unsigned k = (unsigned)rng_below(&r, KEYS_PER_WRITER);
        uint8_t key[16];
        size_t kl;
        key_of(0, k, key, &kl);
        unsigned p = (unsigned)rng_below(&r, 20);
        if (p == 0) {
            if (dcache_flush(c) != DCACHE_OK)
                return 4;
            struct rec f = {'F', 0, 0};
            if (write(fd, &f, sizeof f) != (ssize_t)sizeof f)
                return 5;
        } else if (p < 8) {
            size_t len = (size_t)rng_range(&r, 20 * KiB, 80 * KiB);
            uint64_t version = base + step;
            struct rec pr = {'P', k, version};
            if (write(fd, &pr, sizeof pr) != (ssize_t)sizeof pr)
                return 5;
            val_fill(buf, len, key, kl, version);
            if (dcache_put(c, key, kl, buf, len, 0) != DCACHE_OK)
                return 4;
        } else {
            size_t n;
            dcache_get(c, key, kl, buf, VMAX, &n);
        }
    }
}

static void crash_rounds(void)
{
    char path[4096];
    tst_path(path, sizeof path, "crash.dc");
    CHECK_RC(dcache_close(cache_create(path, CAP, 0)), DCACHE_OK);
    rng_t r;
    rng_seed(&r, tst_seed() ^ 0xc0ffee);
    /* What survives a flush: the last put of each key before the last completed flush (0:
     * none), and every version put since (any of which may be on the device). */
    uint64_t durable[KEYS_PER_WRITER] = {0};
    unsigned rounds = tst_quick() ? 3 : 12;
    uint8_t *buf = malloc(VMAX);
    for (unsigned round = 0; round < rounds; round++) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0)
            tst_die("pipe");
        /* Versions grow from round to round: each round's start above every earlier one. */
        char seed_s[32], base_s[32], fd_s[16];
        snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)rng_next(&r));
        snprintf(base_s, sizeof base_s, "%llu", (unsigned long long)(round + 1) * 1000000000ull);
        snprintf(fd_s, sizeof fd_s, "%d", fds[1]);
        char *args[] = {"--reinsert-child", path, seed_s, base_s, fd_s, NULL};
        pid_t pid = spawn_self(args, fds[1]);
        close(fds[1]);
        sleep_ms(300 + (unsigned)rng_below(&r, 700));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        uint64_t pending[KEYS_PER_WRITER] = {0};
        struct rec rec;
        while (read(fds[0], &rec, sizeof rec) == (ssize_t)sizeof rec) {
            if (rec.type == 'F') {
                for (unsigned k = 0; k < KEYS_PER_WRITER; k++)
                    if (pending[k])
                        durable[k] = pending[k];
                memset(pending, 0, sizeof pending);
            } else if (rec.key < KEYS_PER_WRITER) {
                pending[rec.key] = rec.version;
            }
        }
        close(fds[0]);
        CHECKF(WIFSIGNALED(status), "the child was killed, not exited (status %d)", status);
        dcache *c = NULL;
        if (!CHECK_RC(dcache_open(path, NULL, &c), DCACHE_OK))
            return;
        for (unsigned k = 0; k < KEYS_PER_WRITER; k++) {
            uint8_t key[16];
            size_t kl;
            key_of(0, k, key, &kl);
            uint64_t v = read_version(c, key, kl, buf);
            /* Missing is allowed (evicted); if there, never older than the durable version. */
            CHECKF(v == 0 || v >= durable[k], "round %u, key %u: version %llu, durable %llu", round,
                   k, (unsigned long long)v, (unsigned long long)durable[k]);
            durable[k] = v; /* what the next round starts from */
        }
        CHECK_RC(dcache_close(c), DCACHE_OK);
    }
    free(buf);
}

TEST_MAIN(cache_reinsert)
{
    if (argc == 6 && strcmp(argv[1], "--reinsert-child") == 0)
        return child_main(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10),
                          atoi(argv[5]));
    tst_begin("cache_reinsert");
    threads();
    crash_rounds();
    return tst_finish();
}

/* Four threads write interleaved 100-byte records through one dcache_file handle: record i at
 * offset i*100 is written by thread i%4, so neighbouring records of different threads share
 * every aligned block and each write is a read-modify-write of blocks others are modifying.
 * No record may be lost. Rounds: ascending order on a new file (all threads race through the
 * same blocks), then shuffled order over the previous round's records (an update lost to a
 * stale read-modify-write would leave the old round's bytes). */
#include "common.h"

#include <pthread.h>

#define NTHREADS 4
#define REC 100

struct ctx {
    dcache_file *f;
    uint32_t nrec;
    uint32_t round;
    int tid;
    bool shuffled;
    pthread_barrier_t *barrier;
    unsigned long errors;
};

static void record_bytes(uint8_t *out, uint32_t i, uint32_t round)
{
    uint64_t s = ((uint64_t)round << 32) ^ i;
    for (int k = 0; k < REC; k += 8) {
        uint64_t v = splitmix64(&s);
        memcpy(out + k, &v, REC - k < 8 ? (size_t)(REC - k) : 8);
    }
    memcpy(out, &i, 4);   /* readable in a hex dump */
}

static void *writer(void *arg)
{
    struct ctx *c = arg;
    uint32_t mine = (c->nrec - (uint32_t)c->tid + NTHREADS - 1) / NTHREADS;
    uint32_t *order = malloc(sizeof *order * mine);
    for (uint32_t k = 0; k < mine; k++)
        order[k] = (uint32_t)c->tid + k * NTHREADS;
    if (c->shuffled) {
        rng_t r;
        rng_seed(&r, tst_seed() + (uint64_t)c->tid * 7919 + c->round);
        for (uint32_t k = mine; k > 1; k--) {
            uint32_t j = (uint32_t)rng_below(&r, k);
            uint32_t t = order[k - 1];
            order[k - 1] = order[j];
            order[j] = t;
        }
    }
    pthread_barrier_wait(c->barrier);
    uint8_t rec[REC + 8];
    for (uint32_t k = 0; k < mine; k++) {
        uint32_t i = order[k];
        uint8_t *b = rec + (i % 7);   /* odd buffer addresses */
        record_bytes(b, i, c->round);
        dcache_result rc = dcache_file_pwrite(c->f, b, REC, (uint64_t)i * REC);
        if (rc != DCACHE_OK) {
            c->errors++;
            CHECKF(false, "thread %d: pwrite(record %u) = %s", c->tid, i, rc_name(rc));
        }
    }
    free(order);
    return NULL;
}

static void verify(const uint8_t *data, size_t len, uint32_t nrec, uint32_t round, const char *how)
{
    CHECKF(len == (size_t)nrec * REC, "%s: %zu bytes, want %zu", how, len, (size_t)nrec * REC);
    unsigned long bad = 0;
    uint32_t first_bad = 0;
    uint8_t want[REC];
    for (uint32_t i = 0; i < nrec && (size_t)(i + 1) * REC <= len; i++) {
        record_bytes(want, i, round);
        if (memcmp(data + (size_t)i * REC, want, REC) != 0) {
            if (!bad)
                first_bad = i;
            bad++;
        }
    }
    CHECKF(bad == 0, "%s: %lu of %u records wrong (first: record %u, thread %u)", how, bad, nrec,
           first_bad, first_bad % NTHREADS);
}

static void run_round(const char *path, uint32_t io_mode, uint32_t nrec, uint32_t round,
                      bool shuffled, bool truncate)
{
    dcache_file_options o;
    dcache_file_options_init(&o);
    o.io_mode = io_mode;
    o.flags = DCACHE_FILE_CREATE | (truncate ? DCACHE_FILE_TRUNCATE : 0);
    dcache_file *f = NULL;
    if (!CHECK_RC(dcache_file_open(path, &o, &f), DCACHE_OK))
        return;
    if (io_mode != DCACHE_IO_BUFFERED)
        CHECK_EQ(dcache_file_is_direct_io(f), 1);

    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    struct ctx ctx[NTHREADS];
    pthread_t th[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        ctx[t] = (struct ctx){f, nrec, round, t, shuffled, &barrier, 0};
        pthread_create(&th[t], NULL, writer, &ctx[t]);
    }
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&barrier);

    uint64_t sz = 0;
    CHECK_RC(dcache_file_size(f, &sz), DCACHE_OK);
    CHECK_EQ(sz, (uint64_t)nrec * REC);
    size_t n = (size_t)nrec * REC;
    uint8_t *all = malloc(n + 1);
    size_t got = 0;
    CHECK_RC(dcache_file_pread(f, all + 1, n, 0, &got), DCACHE_OK);
    verify(all + 1, got, nrec, round, "pread through the library");
    free(all);
    CHECK_RC(dcache_file_close(f), DCACHE_OK);

    uint8_t *disk = NULL;
    size_t disk_len = 0;
    if (CHECK(file_read_all_plain(path, &disk, &disk_len))) {
        verify(disk, disk_len, nrec, round, "ordinary read of the file");
        free(disk);
    }
}

TEST_MAIN(file_threads)
{
    (void)argc;
    (void)argv;
    tst_begin("file_threads");
    char path[4096];
    tst_path(path, sizeof path, "records.dat");
    uint32_t nrec = tst_quick() ? 4000 : 40000;
    uint32_t round = 1;
    tst_note("direct: ascending, new file");
    run_round(path, DCACHE_IO_AUTO, nrec, round++, false, true);
    for (int i = 0; i < 3; i++) {
        tst_note("direct: shuffled over the previous round");
        run_round(path, DCACHE_IO_AUTO, nrec, round++, true, false);
    }
    tst_note("DIRECT mode: shuffled, new file");
    run_round(path, DCACHE_IO_DIRECT, nrec, round++, true, true);
    tst_note("buffered: shuffled over the previous round");
    run_round(path, DCACHE_IO_BUFFERED, nrec, round++, true, false);
    return tst_finish();
}

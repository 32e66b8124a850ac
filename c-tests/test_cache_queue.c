/* The completion queue, on each backend (io_uring where the kernel allows it, and the
 * thread pool, forced with DCACHE_QUEUE_BACKEND=threads; the valgrind build runs the thread
 * pool only, since valgrind does not see what io_uring writes): full depth and DCACHE_BUSY;
 * batches (dcache_submit_batch) up to the first read refused; the fd driven by
 * poll, readable exactly while completions wait; absent keys, buffers too small (untouched),
 * ranges (inside, across the end, past it); values still in the write buffer completing
 * within the submit; several submitting threads with one reaper; reads racing overwrites and
 * eviction (every byte verified); dcache_close with a queue open; dcache_queue_close with
 * reads in flight; read errors (pread/preadv fail for the cache file while armed, the way a
 * bad block fails them) completing as DCACHE_IO_ERROR, counted: on the thread pool only,
 * since io_uring reads do not call pread (tests/queue.rs injects them on both backends with
 * the library's own fault hook). */
#include "common.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define KLEN 16
#define NV 120

/* The backend this pass asks for. */
static uint32_t want_backend = DCACHE_QUEUE_THREADS;

/* ---- read errors: pread and preadv of one file fail with EIO while armed ---------------- */
static _Atomic int fail_armed;
static dev_t fail_dev;
static ino_t fail_ino;

static bool failing(int fd)
{
    struct stat st;
    return atomic_load(&fail_armed) && fstat(fd, &st) == 0 && st.st_dev == fail_dev &&
           st.st_ino == fail_ino;
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    if (failing(fd)) {
        errno = EIO;
        return -1;
    }
    return syscall(SYS_pread64, fd, buf, n, off);
}

ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
    if (failing(fd)) {
        errno = EIO;
        return -1;
    }
    return syscall(SYS_preadv, fd, iov, cnt, (unsigned long)off, 0UL);
}

static void arm_failures(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        tst_die("stat %s", path);
    fail_dev = st.st_dev;
    fail_ino = st.st_ino;
    atomic_store(&fail_armed, 1);
}

/* ---- values ------------------------------------------------------------------------------ */
static size_t value_len(uint64_t i)
{
    return (size_t)(1000 + (i * 7919) % (200 * KiB));
}

static void key_of(uint8_t *k, uint64_t i)
{
    key_make(k, i, KLEN);
}

static void put_value(dcache *c, uint64_t i, uint64_t ver)
{
    uint8_t k[KLEN];
    key_of(k, i);
    size_t n = value_len(i);
    uint8_t *v = malloc(n);
    val_fill(v, n, k, KLEN, ver);
    CHECK_RC(dcache_put(c, k, KLEN, v, n, 0), DCACHE_OK);
    free(v);
}

static bool fd_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Reaps exactly `want` completions into `out`, waiting on the fd with poll between reaps. */
static size_t reap_by_poll(dcache_queue *q, dcache_completion *out, size_t want)
{
    size_t got = 0;
    while (got < want) {
        struct pollfd p = {.fd = dcache_queue_fd(q), .events = POLLIN};
        if (poll(&p, 1, 10000) != 1) {
            CHECKF(false, "the queue's fd never became readable (%zu of %zu reaped)", got, want);
            return got;
        }
        size_t n = 0;
        CHECK_RC(dcache_queue_reap(q, out + got, want - got, 0, &n), DCACHE_OK);
        CHECKF(n > 0, "a readable fd gives completions");
        got += n;
    }
    return got;
}

struct slot {
    uint8_t *buf;
    size_t len;
};

/* ---- full depth, BUSY, the fd, verification ------------------------------------------------ */
static void depth_and_busy(dcache *c)
{
    enum { DEPTH = 16 };
    dcache_queue *q = NULL;
    if (!CHECK_RC(dcache_queue_open(c, DEPTH, &q), DCACHE_OK))
        return;
    CHECK_EQ(dcache_queue_backend(q), want_backend);
    CHECK(dcache_queue_fd(q) >= 0);
    CHECK(!fd_readable(dcache_queue_fd(q)));
    struct slot s[DEPTH];
    uint8_t k[KLEN];
    for (uint64_t round = 0; round < 3; round++) {
        for (uint64_t i = 0; i < DEPTH; i++) {
            uint64_t idx = (round * DEPTH + i) % NV;
            key_of(k, idx);
            s[i].len = value_len(idx);
            s[i].buf = malloc(s[i].len);
            CHECK_RC(dcache_submit_get(q, k, KLEN, s[i].buf, s[i].len, idx), DCACHE_OK);
        }
        uint8_t extra[16];
        CHECK_RC(dcache_submit_get(q, k, KLEN, extra, sizeof extra, 999), DCACHE_BUSY);
        dcache_completion done[DEPTH];
        CHECK_EQ(reap_by_poll(q, done, DEPTH), DEPTH);
        CHECK(!fd_readable(dcache_queue_fd(q)));
        for (size_t j = 0; j < DEPTH; j++) {
            uint64_t idx = done[j].user_data;
            size_t i = (size_t)((idx + NV - (round * DEPTH) % NV) % NV);
            CHECK_RC(done[j].result, DCACHE_OK);
            key_of(k, idx);
            CHECKF(i < DEPTH && done[j].len == value_len(idx) &&
                       val_check(s[i].buf, done[j].len, k, KLEN, 1),
                   "completion %zu (key %llu) holds its value", j, (unsigned long long)idx);
        }
        for (size_t i = 0; i < DEPTH; i++)
            free(s[i].buf);
    }
    /* min waits: everything submitted, then one blocking reap of all of it */
    for (uint64_t i = 0; i < DEPTH; i++) {
        key_of(k, i);
        s[i].len = value_len(i);
        s[i].buf = malloc(s[i].len);
        CHECK_RC(dcache_submit_get(q, k, KLEN, s[i].buf, s[i].len, i), DCACHE_OK);
    }
    dcache_completion done[DEPTH];
    size_t n = 0;
    CHECK_RC(dcache_queue_reap(q, done, DEPTH, DEPTH + 1, &n), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_queue_reap(q, done, DEPTH, DEPTH, &n), DCACHE_OK);
    CHECK_EQ(n, DEPTH);
    for (size_t j = 0; j < n; j++) {
        key_of(k, done[j].user_data);
        CHECK(done[j].result == DCACHE_OK &&
              val_check(s[done[j].user_data].buf, done[j].len, k, KLEN, 1));
    }
    for (size_t i = 0; i < DEPTH; i++)
        free(s[i].buf);
    CHECK_RC(dcache_queue_reap(q, done, DEPTH, 1, &n), DCACHE_INVALID_ARGUMENT);
    dcache_queue_close(q);
}

/* ---- results other than OK, and what completes within the submit ---------------------------- */
static dcache_completion one(dcache_queue *q)
{
    dcache_completion c = {0};
    size_t n = 0;
    CHECK_RC(dcache_queue_reap(q, &c, 1, 1, &n), DCACHE_OK);
    CHECK_EQ(n, 1);
    return c;
}

static void results(dcache *c)
{
    dcache_queue *q = NULL;
    if (!CHECK_RC(dcache_queue_open(c, 0, &q), DCACHE_OK))
        return;
    uint8_t k[KLEN];
    /* argument errors make no completion */
    uint8_t b[64];
    CHECK_RC(dcache_submit_get(q, NULL, 0, b, sizeof b, 1), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_submit_get(q, k, KLEN, NULL, 10, 1), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_submit_get(NULL, k, KLEN, b, sizeof b, 1), DCACHE_INVALID_ARGUMENT);
    uint8_t *longkey = calloc(1, DCACHE_MAX_KEY_LEN + 1);
    CHECK_RC(dcache_submit_get(q, longkey, DCACHE_MAX_KEY_LEN + 1, b, sizeof b, 1),
             DCACHE_TOO_LARGE);
    free(longkey);
    size_t n = 7;
    CHECK_RC(dcache_queue_reap(q, NULL, 4, 0, &n), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_queue_reap(q, NULL, 0, 0, &n), DCACHE_OK);
    CHECK_EQ(n, 0);

    /* an absent key completes within the submit */
    key_of(k, 100000);
    CHECK_RC(dcache_submit_get(q, k, KLEN, b, sizeof b, 42), DCACHE_OK);
    CHECK(fd_readable(dcache_queue_fd(q)));
    dcache_completion d = {0};
    CHECK_RC(dcache_queue_reap(q, &d, 1, 0, &n), DCACHE_OK);
    CHECK(n == 1 && d.user_data == 42 && d.result == DCACHE_NOT_FOUND);

    /* too small: the size, and the buffer untouched */
    key_of(k, 7);
    uint8_t small[100];
    memset(small, 0xAB, sizeof small);
    CHECK_RC(dcache_submit_get(q, k, KLEN, small, sizeof small, 7), DCACHE_OK);
    d = one(q);
    CHECK_RC(d.result, DCACHE_BUFFER_TOO_SMALL);
    CHECK_EQ(d.len, value_len(7));
    bool untouched = true;
    for (size_t i = 0; i < sizeof small; i++)
        untouched &= small[i] == 0xAB;
    CHECKF(untouched, "a buffer too small is untouched");

    /* ranges: inside, across the end, past it */
    size_t total = value_len(7);
    uint8_t want[4096], got[4096];
    CHECK_RC(dcache_submit_get_range(q, k, KLEN, 500, got, sizeof got, 1), DCACHE_OK);
    d = one(q);
    val_slice(want, total, 500, sizeof want, k, KLEN, 1);
    CHECK(d.result == DCACHE_OK && d.len == sizeof got);
    CHECK_MEM(got, want, sizeof got, "a range inside the value");
    CHECK_RC(dcache_submit_get_range(q, k, KLEN, total - 100, got, sizeof got, 2), DCACHE_OK);
    d = one(q);
    val_slice(want, total, total - 100, 100, k, KLEN, 1);
    CHECK(d.result == DCACHE_OK && d.len == 100);
    CHECK_MEM(got, want, 100, "a range across the end");
    CHECK_RC(dcache_submit_get_range(q, k, KLEN, total + 1, got, sizeof got, 3), DCACHE_OK);
    CHECK_RC(one(q).result, DCACHE_RANGE);

    /* a value still in the write buffer completes within the submit */
    put_value(c, NV + 1, 1);
    key_of(k, NV + 1);
    uint8_t *v = malloc(value_len(NV + 1));
    CHECK_RC(dcache_submit_get(q, k, KLEN, v, value_len(NV + 1), 5), DCACHE_OK);
    CHECK_RC(dcache_queue_reap(q, &d, 1, 0, &n), DCACHE_OK);
    CHECKF(n == 1 && d.result == DCACHE_OK && val_check(v, d.len, k, KLEN, 1),
           "a buffered value completes at once (n %zu)", n);
    free(v);
    dcache_queue_close(q);
    dcache_queue_close(NULL);
    CHECK_EQ(dcache_queue_fd(NULL), -1);
    CHECK_EQ(dcache_queue_backend(NULL), 0);
    CHECK_RC(dcache_queue_open(c, 4097, &q), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_queue_open(c, 4, NULL), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_queue_open(NULL, 4, &q), DCACHE_INVALID_ARGUMENT);
}

/* ---- several submitting threads, one reaper --------------------------------------------- */
#define SUBMITTERS 4
struct submitter {
    dcache_queue *q;
    uint64_t first, count;
    struct slot *slots;
};

static void *submit_many(void *arg)
{
    struct submitter *s = arg;
    uint8_t k[KLEN];
    for (uint64_t i = 0; i < s->count; i++) {
        uint64_t id = s->first + i;
        key_of(k, id % NV);
        dcache_result rc;
        while ((rc = dcache_submit_get(s->q, k, KLEN, s->slots[id].buf, s->slots[id].len, id)) ==
               DCACHE_BUSY)
            usleep(50);
        if (rc != DCACHE_OK)
            s->slots[id].len = 0; /* marks a failed submit for the checks */
    }
    return NULL;
}

static void threads(dcache *c)
{
    enum { EACH = 150 };
    uint64_t total = SUBMITTERS * EACH;
    dcache_queue *q = NULL;
    if (!CHECK_RC(dcache_queue_open(c, 32, &q), DCACHE_OK))
        return;
    struct slot *slots = calloc(total, sizeof *slots);
    for (uint64_t id = 0; id < total; id++) {
        slots[id].len = value_len(id % NV);
        slots[id].buf = malloc(slots[id].len);
    }
    pthread_t th[SUBMITTERS];
    struct submitter sub[SUBMITTERS];
    for (int t = 0; t < SUBMITTERS; t++) {
        sub[t] = (struct submitter){q, (uint64_t)t * EACH, EACH, slots};
        pthread_create(&th[t], NULL, submit_many, &sub[t]);
    }
    uint64_t reaped = 0, right = 0;
    uint8_t k[KLEN];
    dcache_completion done[32];
    while (reaped < total) {
        size_t n = 0;
        struct pollfd p = {.fd = dcache_queue_fd(q), .events = POLLIN};
        poll(&p, 1, 100);
        if (dcache_queue_reap(q, done, 32, 0, &n) != DCACHE_OK)
            break;
        for (size_t j = 0; j < n; j++) {
            uint64_t id = done[j].user_data;
            key_of(k, id % NV);
            right += done[j].result == DCACHE_OK &&
                     val_check(slots[id].buf, done[j].len, k, KLEN, 1);
        }
        reaped += n;
    }
    for (int t = 0; t < SUBMITTERS; t++)
        pthread_join(th[t], NULL);
    CHECK_EQ(reaped, total);
    CHECK_EQ(right, total);
    for (uint64_t id = 0; id < total; id++)
        free(slots[id].buf);
    free(slots);
    dcache_queue_close(q);
}

/* ---- completions announced on a socket (dcache_queue_notify) -------------------------------- */
/* Waits only on the socket: a completion whose byte never came would stall it (and fail). */
static void notify(dcache *c)
{
    enum { TOTAL = 300, DEPTH = 32 };
    dcache_queue *q = NULL;
    if (!CHECK_RC(dcache_queue_open(c, DEPTH, &q), DCACHE_OK))
        return;
    int sv[2];
    if (!CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0)) {
        dcache_queue_close(q);
        return;
    }
    CHECK_RC(dcache_queue_notify(NULL, sv[1]), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_queue_notify(q, -2), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_queue_notify(q, sv[1]), DCACHE_OK);
    struct slot *slots = calloc(TOTAL, sizeof *slots);
    uint64_t submitted = 0, reaped = 0, right = 0, absent = 0, wakeups = 0;
    uint8_t k[KLEN];
    dcache_completion done[DEPTH];
    while (reaped < TOTAL) {
        while (submitted < TOTAL && submitted - reaped < DEPTH) {
            uint64_t id = submitted;
            /* every seventh read is of a key never stored: it completes within the submit */
            key_of(k, id % 7 == 0 ? NV + 1000 + id : id % NV);
            slots[id].len = value_len(id % NV);
            slots[id].buf = malloc(slots[id].len);
            if (!CHECK_RC(dcache_submit_get(q, k, KLEN, slots[id].buf, slots[id].len, id), DCACHE_OK))
                goto out;
            submitted++;
        }
        struct pollfd p = {.fd = sv[0], .events = POLLIN};
        if (!CHECKF(poll(&p, 1, 10000) == 1, "no byte on the socket with %" PRIu64 " reads outstanding",
                    submitted - reaped))
            goto out;
        wakeups++;
        char bytes[256];
        while (read(sv[0], bytes, sizeof bytes) > 0) {
        }
        size_t n = 0;
        if (!CHECK_RC(dcache_queue_reap(q, done, DEPTH, 0, &n), DCACHE_OK))
            goto out;
        for (size_t j = 0; j < n; j++) {
            uint64_t id = done[j].user_data;
            key_of(k, id % NV);
            if (id % 7 == 0)
                absent += done[j].result == DCACHE_NOT_FOUND;
            else
                right += done[j].result == DCACHE_OK && val_check(slots[id].buf, done[j].len, k, KLEN, 1);
        }
        reaped += n;
    }
out:
    CHECK_EQ(reaped, TOTAL);
    CHECK_EQ(right + absent, TOTAL);
    tst_note("notify: %" PRIu64 " reads reaped after %" PRIu64 " wake-ups of the socket", reaped, wakeups);
    CHECK_RC(dcache_queue_notify(q, -1), DCACHE_OK);
    dcache_queue_close(q);
    close(sv[0]);
    close(sv[1]);
    for (uint64_t id = 0; id < TOTAL; id++)
        free(slots[id].buf);
    free(slots);
}

/* ---- reads racing overwrites and eviction --------------------------------------------------- */
struct churn {
    dcache *c;
    _Atomic int stop;
    _Atomic uint64_t max_ver;
};

static void *overwrite(void *arg)
{
    struct churn *ch = arg;
    rng_t r;
    rng_seed(&r, 7);
    for (uint64_t ver = 2; !atomic_load(&ch->stop); ver++) {
        atomic_store(&ch->max_ver, ver);
        for (int i = 0; i < 20; i++)
            put_value(ch->c, rng_below(&r, 40), ver);
        for (int i = 0; i < 10; i++)   /* new keys: the small cache evicts */
            put_value(ch->c, 1000 + rng_below(&r, 100000), 1);
    }
    return NULL;
}

static void races(void)
{
    char path[4096];
    tst_path(path, sizeof path, "races.dc");
    unlink(path);   /* a new cache each pass: versions start again at 1 */
    dcache *c = cache_create(path, 16 * MiB, 0);
    for (uint64_t i = 0; i < 40; i++)
        put_value(c, i, 1);
    dcache_queue *q = NULL;
    if (!CHECK_RC(dcache_queue_open(c, 8, &q), DCACHE_OK)) {
        dcache_close(c);
        return;
    }
    struct churn ch = {.c = c};
    atomic_store(&ch.max_ver, 1);
    pthread_t th;
    pthread_create(&th, NULL, overwrite, &ch);
    struct slot s[8];
    for (int i = 0; i < 8; i++) {
        s[i].len = 200 * KiB + 2000;
        s[i].buf = malloc(s[i].len);
    }
    uint64_t ok = 0, miss = 0, wrong = 0, other = 0;
    uint8_t k[KLEN];
    rng_t r;
    rng_seed(&r, tst_seed());
    int rounds = tst_quick() ? 30 : 300;
    for (int round = 0; round < rounds; round++) {
        uint64_t idx[8];
        for (int i = 0; i < 8; i++) {
            idx[i] = rng_below(&r, 40);
            key_of(k, idx[i]);
            CHECK_RC(dcache_submit_get(q, k, KLEN, s[i].buf, s[i].len, (uint64_t)i), DCACHE_OK);
        }
        dcache_completion done[8];
        size_t n = 0;
        CHECK_RC(dcache_queue_reap(q, done, 8, 8, &n), DCACHE_OK);
        for (size_t j = 0; j < n; j++) {
            uint64_t i = done[j].user_data, ver = 0;
            key_of(k, idx[i]);
            if (done[j].result == DCACHE_OK) {
                bool right = done[j].len == value_len(idx[i]) &&
                             val_parse(s[i].buf, done[j].len, k, KLEN, &ver) &&
                             ver <= atomic_load(&ch.max_ver);
                ok += right;
                wrong += !right;
            } else if (done[j].result == DCACHE_NOT_FOUND) {
                miss++;
            } else {
                other++;
            }
        }
    }
    atomic_store(&ch.stop, 1);
    pthread_join(th, NULL);
    tst_note("racing reads: %llu right, %llu misses, %llu wrong, %llu other",
             (unsigned long long)ok, (unsigned long long)miss, (unsigned long long)wrong,
             (unsigned long long)other);
    CHECK_EQ(wrong, 0);
    CHECK_EQ(other, 0);
    CHECK(ok > 0);
    for (int i = 0; i < 8; i++)
        free(s[i].buf);
    dcache_queue_close(q);
    CHECK_RC(dcache_close(c), DCACHE_OK);
}

/* The cache at path, opened again; NULL after a failed check. */
static dcache *reopen(const char *path)
{
    dcache_options o;
    cache_opts(&o, 0, 0);
    dcache *c = NULL;
    return CHECK_RC(dcache_open(path, &o, &c), DCACHE_OK) ? c : NULL;
}

/* Submits gets of keys 0..n-1 (user_data = the key's number) into new buffers in s. */
static void submit_first(dcache_queue *q, struct slot *s, uint64_t n)
{
    uint8_t k[KLEN];
    for (uint64_t i = 0; i < n; i++) {
        key_of(k, i % NV);
        s[i].len = value_len(i % NV);
        s[i].buf = malloc(s[i].len);
        CHECK_RC(dcache_submit_get(q, k, KLEN, s[i].buf, s[i].len, i), DCACHE_OK);
    }
}

/* ---- closing: the cache with a queue open, the queue with reads in flight -------------------- */
static void closing(const char *path)
{
    dcache *c = reopen(path);
    if (!c)
        return;
    dcache_queue *q = NULL;
    if (!CHECK_RC(dcache_queue_open(c, 8, &q), DCACHE_OK))
        return;
    struct slot s[8];
    uint8_t k[KLEN];
    submit_first(q, s, 8);
    CHECK_RC(dcache_close(c), DCACHE_OK);
    dcache_completion done[8];
    size_t n = 0;
    CHECK_RC(dcache_queue_reap(q, done, 8, 8, &n), DCACHE_OK);
    for (size_t j = 0; j < n; j++) {
        key_of(k, done[j].user_data);
        CHECKF(done[j].result == DCACHE_OK &&
                   val_check(s[done[j].user_data].buf, done[j].len, k, KLEN, 1),
               "a read in flight at dcache_close completes with its value");
    }
    key_of(k, 0);
    CHECK_RC(dcache_submit_get(q, k, KLEN, s[0].buf, s[0].len, 0), DCACHE_INVALID_ARGUMENT);
    dcache_queue_close(q);
    for (int i = 0; i < 8; i++)
        free(s[i].buf);

    /* the queue closed with reads in flight: the buffers are ours again when it returns */
    c = reopen(path);
    if (!c)
        return;
    q = NULL;
    CHECK_RC(dcache_queue_open(c, 64, &q), DCACHE_OK);
    struct slot many[64];
    submit_first(q, many, 64);
    dcache_queue_close(q);
    for (int i = 0; i < 64; i++)
        free(many[i].buf);
    CHECK_RC(dcache_close(c), DCACHE_OK);
}

/* ---- read errors -------------------------------------------------------------------------- */
static void read_errors(const char *path)
{
    dcache *c = reopen(path);
    if (!c)
        return;
    dcache_queue *q = NULL;
    CHECK_RC(dcache_queue_open(c, 8, &q), DCACHE_OK);
    dcache_stats before = {.struct_size = sizeof before};
    CHECK_RC(dcache_get_stats(c, &before), DCACHE_OK);
    struct slot s[8];
    uint8_t k[KLEN];
    arm_failures(path);
    submit_first(q, s, 8);
    dcache_completion done[8];
    size_t n = 0;
    CHECK_RC(dcache_queue_reap(q, done, 8, 8, &n), DCACHE_OK);
    atomic_store(&fail_armed, 0);
    for (size_t j = 0; j < n; j++)
        CHECK_RC(done[j].result, DCACHE_IO_ERROR);
    dcache_stats after = {.struct_size = sizeof after};
    CHECK_RC(dcache_get_stats(c, &after), DCACHE_OK);
    CHECKF(after.io_errors >= before.io_errors + 8, "io_errors %llu -> %llu",
           (unsigned long long)before.io_errors, (unsigned long long)after.io_errors);
    /* and the same reads succeed once the device reads again */
    for (uint64_t i = 0; i < 8; i++) {
        key_of(k, i);
        CHECK_RC(dcache_submit_get(q, k, KLEN, s[i].buf, s[i].len, i), DCACHE_OK);
    }
    CHECK_RC(dcache_queue_reap(q, done, 8, 8, &n), DCACHE_OK);
    for (size_t j = 0; j < n; j++) {
        key_of(k, done[j].user_data);
        CHECK(done[j].result == DCACHE_OK &&
              val_check(s[done[j].user_data].buf, done[j].len, k, KLEN, 1));
    }
    for (int i = 0; i < 8; i++)
        free(s[i].buf);
    dcache_queue_close(q);
    CHECK_RC(dcache_close(c), DCACHE_OK);
}

/* ---- batches: in order up to the first refused, one completion per read accepted ---------- */
enum { BATCH_DEPTH = 16, BATCH_N = 20, BATCH_ABSENT = 18, BATCH_RANGE = 17 };

/* Each of `n` completions of the batch `reads` holds what its read asked for. */
static void check_batch(const dcache_read *reads, const dcache_completion *done, size_t n,
                        bool *seen)
{
    for (size_t j = 0; j < n; j++) {
        uint64_t i = done[j].user_data;
        CHECKF(i < BATCH_N && !seen[i], "read %llu completes once", (unsigned long long)i);
        if (i >= BATCH_N)
            continue;
        seen[i] = true;
        if (i == BATCH_ABSENT) {
            CHECK_RC(done[j].result, DCACHE_NOT_FOUND);
            continue;
        }
        size_t len = value_len(i);
        uint8_t *want = malloc(len);
        val_fill(want, len, reads[i].key, KLEN, 1);
        const uint8_t *from = i == BATCH_RANGE ? want + reads[i].offset : want;
        CHECK_RC(done[j].result, DCACHE_OK);
        CHECKF(done[j].len == reads[i].buf_len &&
                   memcmp(reads[i].buf, from, reads[i].buf_len) == 0,
               "read %llu holds its bytes", (unsigned long long)i);
        free(want);
    }
}

static void batches(dcache *c)
{
    dcache_queue *q = NULL;
    if (!CHECK_RC(dcache_queue_open(c, BATCH_DEPTH, &q), DCACHE_OK))
        return;
    uint8_t keys[BATCH_N][KLEN];
    dcache_read reads[BATCH_N];
    for (uint64_t i = 0; i < BATCH_N; i++) {
        key_of(keys[i], i == BATCH_ABSENT ? 100000 + i : i);
        size_t len = i == BATCH_RANGE ? 50 : value_len(i);
        reads[i] = (dcache_read){.key = keys[i], .key_len = KLEN, .buf = malloc(len),
                                 .buf_len = len, .offset = 100,
                                 .flags = i == BATCH_RANGE ? DCACHE_READ_RANGE : 0,
                                 .user_data = i};
    }
    bool seen[BATCH_N] = {false};
    size_t submitted = 99;
    CHECK_RC(dcache_submit_batch(q, reads, BATCH_N, &submitted), DCACHE_BUSY);
    CHECK_EQ(submitted, BATCH_DEPTH);
    CHECKF(strstr(dcache_last_error_message(), "reads[16]") != NULL,
           "the message names the read: %s", dcache_last_error_message());
    dcache_completion done[BATCH_DEPTH];
    CHECK_EQ(reap_by_poll(q, done, BATCH_DEPTH), BATCH_DEPTH);
    check_batch(reads, done, BATCH_DEPTH, seen);
    size_t rest = BATCH_N - BATCH_DEPTH, n = 0;
    CHECK_RC(dcache_submit_batch(q, reads + BATCH_DEPTH, rest, &submitted), DCACHE_OK);
    CHECK_EQ(submitted, rest);
    CHECK_RC(dcache_queue_reap(q, done, rest, rest, &n), DCACHE_OK);
    CHECK_EQ(n, rest);
    check_batch(reads, done, n, seen);
    for (size_t i = 0; i < BATCH_N; i++)
        CHECKF(seen[i], "read %zu completed", i);
    /* argument errors: the reads before the refused one are accepted */
    dcache_read bad[2] = {reads[0], reads[1]};
    bad[1].key = NULL;
    CHECK_RC(dcache_submit_batch(q, bad, 2, &submitted), DCACHE_INVALID_ARGUMENT);
    CHECK_EQ(submitted, 1);
    CHECK_EQ(one(q).user_data, 0);
    bad[0].flags = 0x80;
    CHECK_RC(dcache_submit_batch(q, bad, 2, &submitted), DCACHE_INVALID_ARGUMENT);
    CHECK_EQ(submitted, 0);
    CHECK_RC(dcache_submit_batch(q, NULL, 1, &submitted), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_submit_batch(q, NULL, 0, &submitted), DCACHE_OK);
    CHECK_EQ(submitted, 0);
    CHECK_RC(dcache_submit_batch(q, reads, 1, NULL), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_submit_batch(NULL, reads, 1, &submitted), DCACHE_INVALID_ARGUMENT);
    /* nothing more completes: a reap that does not wait finds nothing and clears the fd */
    CHECK_RC(dcache_queue_reap(q, done, 1, 0, &n), DCACHE_OK);
    CHECK_EQ(n, 0);
    CHECK(!fd_readable(dcache_queue_fd(q)));
    dcache_queue_close(q);
    for (size_t i = 0; i < BATCH_N; i++)
        free(reads[i].buf);
}

/* Every part of the suite, on the backend `backend` (DCACHE_QUEUE_THREADS is forced). */
static void suite(const char *path, uint32_t backend)
{
    want_backend = backend;
    if (backend == DCACHE_QUEUE_THREADS)
        setenv("DCACHE_QUEUE_BACKEND", "threads", 1);
    else
        unsetenv("DCACHE_QUEUE_BACKEND");
    dcache *c = reopen(path);
    if (c) {
        dcache_queue *q = NULL;
        if (CHECK_RC(dcache_queue_open(c, 4, &q), DCACHE_OK) &&
            dcache_queue_backend(q) != backend) {
            tst_note("io_uring is not available here: the io_uring pass runs on threads");
            want_backend = dcache_queue_backend(q);
        }
        dcache_queue_close(q);
        depth_and_busy(c);
        batches(c);
        results(c);
        threads(c);
        notify(c);
        CHECK_RC(dcache_close(c), DCACHE_OK);
    }
    closing(path);
    if (want_backend == DCACHE_QUEUE_THREADS)
        read_errors(path);
    races();
}

TEST_MAIN(cache_queue)
{
    (void)argc;
    (void)argv;
    tst_begin("cache_queue");
    char path[4096];
    tst_path(path, sizeof path, "queue.dc");
    dcache *c = cache_create(path, 64 * MiB, 0);
    for (uint64_t i = 0; i < NV; i++)
        put_value(c, i, 1);
    CHECK_RC(dcache_close(c), DCACHE_OK);   /* on the device, not in the write buffer */
    suite(path, DCACHE_QUEUE_THREADS);
    if (!tst_quick())
        suite(path, DCACHE_QUEUE_IO_URING);
    unsetenv("DCACHE_QUEUE_BACKEND");
    return tst_finish();
}

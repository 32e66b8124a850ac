/* Crash safety: a child process (this program re-executed with --crash-child) opens the
 * cache and puts and deletes keys with self-verifying values (key + sequence number), calling
 * dcache_flush now and then. Before each operation it writes a record of it to a pipe, and
 * after each completed flush an 'F' record, so the parent knows which operations a completed
 * flush covers. The parent kills the child with SIGKILL at a random moment (sometimes during
 * the open, that is during recovery), reopens the cache and checks every key:
 *   - a key whose last operation before the last completed flush was a put, with no operation
 *     after that flush, is back byte-exact with that version; a key deleted and flushed stays
 *     deleted;
 *   - a key with operations after the last flush holds the flushed state or the state after
 *     one of those later operations, never anything else;
 *   - every value returned is exactly a version written for that key.
 * What the parent sees (then made durable by a clean close) is the next round's baseline.
 * At least 30 rounds, within about 50 s. The cache is large enough that nothing is evicted. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define NKEYS 256
#define CAP (512 * MiB)
#define CHILD_BYTE_BUDGET (6 * MiB)

struct rec {
    uint8_t type;   /* 'O' opened, 'P' put, 'D' delete, 'F' flush completed, 'E' error */
    uint8_t pad[3];
    uint32_t key;
    uint64_t seq;
    uint32_t vlen;
    uint32_t rc;
};

static void key_of(uint32_t k, uint8_t *buf, size_t *kl)
{
    *kl = 10 + k % 30;
    key_make(buf, k, *kl);
}

static void send_rec(int fd, char type, uint32_t key, uint64_t seq, uint32_t vlen, uint32_t rc)
{
    struct rec r;
    memset(&r, 0, sizeof r);
    r.type = (uint8_t)type;
    r.key = key;
    r.seq = seq;
    r.vlen = vlen;
    r.rc = rc;
    if (write(fd, &r, sizeof r) != (ssize_t)sizeof r)
        _exit(5);
}

static int child_main(const char *path, uint64_t seq, uint64_t seed, int fd)
{
    dcache *c = NULL;
    dcache_result rc = dcache_open(path, NULL, &c);
    if (rc != DCACHE_OK) {
        send_rec(fd, 'E', 0, 0, 0, rc);
        return 3;
    }
    send_rec(fd, 'O', 0, 0, 0, 0);
    rng_t r;
    rng_seed(&r, seed);
    uint8_t *val = malloc(64 * KiB);
    uint64_t bytes = 0;
    for (;;) {
        if (bytes > CHILD_BYTE_BUDGET) {   /* enough for one round: wait for the kill */
            sleep_ms(5);
            continue;
        }
        uint32_t k = (uint32_t)rng_below(&r, NKEYS);
        uint8_t key[64];
        size_t kl;
        key_of(k, key, &kl);
        unsigned p = (unsigned)rng_below(&r, 100);
        if (p < 6) {
            rc = dcache_flush(c);
            if (rc != DCACHE_OK) {
                send_rec(fd, 'E', 0, 0, 0, rc);
                return 4;
            }
            send_rec(fd, 'F', 0, 0, 0, 0);
        } else if (p < 16) {
            send_rec(fd, 'D', k, seq, 0, 0);
            rc = dcache_delete(c, key, kl);
            if (rc != DCACHE_OK && rc != DCACHE_NOT_FOUND) {
                send_rec(fd, 'E', k, seq, 0, rc);
                return 4;
            }
            seq++;
        } else {
            uint32_t vl = (uint32_t)rng_range(&r, VAL_HDR, rng_below(&r, 20) ? 16 * KiB : 64 * KiB);
            val_fill(val, vl, key, kl, seq);
            send_rec(fd, 'P', k, seq, vl, 0);
            rc = dcache_put(c, key, kl, val, vl, 0);
            if (rc != DCACHE_OK) {
                send_rec(fd, 'E', k, seq, vl, rc);
                return 4;
            }
            bytes += vl;
            seq++;
        }
    }
}

/* ---- the parent ------------------------------------------------------------------------ */

struct kstate {
    bool present;
    uint64_t seq;
    uint32_t vlen;
};

struct stats {
    unsigned rounds, rounds_with_flush, flushes, puts, deletes, opened;
    unsigned exact_after_flush, later_state, killed_in_open;
};

/* Reads the child's records until it dies. The child is killed `delay` seconds after its
 * start, or, with after_open, `delay` seconds after its 'O' record (or after 20 s). */
static size_t read_all_records(int fd, double delay, bool after_open, pid_t pid, uint8_t **data,
                               size_t *cap, int *status)
{
    size_t len = 0;
    bool killed = false;
    double deadline = now_sec() + (after_open ? 20.0 : delay);
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    for (;;) {
        if (!killed) {
            double left = deadline - now_sec();
            if (left <= 0) {
                kill(pid, SIGKILL);
                killed = true;
                fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
                continue;
            }
            struct pollfd pfd = {fd, POLLIN, 0};
            poll(&pfd, 1, (int)(left * 1000) + 1);
        }
        if (*cap - len < 4096) {
            *cap = *cap * 2 + 65536;
            *data = realloc(*data, *cap);
        }
        ssize_t n = read(fd, *data + len, *cap - len);
        if (n > 0) {
            if (after_open && len < sizeof(struct rec) && len + (size_t)n >= sizeof(struct rec)) {
                after_open = false;
                deadline = now_sec() + delay;
            }
            len += (size_t)n;
            continue;
        }
        if (n == 0)
            break;   /* EOF: the child is gone */
        if (errno != EAGAIN && errno != EINTR)
            break;
    }
    if (!killed)
        kill(pid, SIGKILL);   /* exited by itself (an error): make sure */
    waitpid(pid, status, 0);
    return len;
}

static bool same_state(const struct kstate *a, bool present, uint64_t seq, uint32_t vlen)
{
    if (!a->present || !present)
        return a->present == present;
    return a->seq == seq && a->vlen == vlen;
}

static void verify_round(const char *path, struct kstate *base, const struct rec *recs,
                         size_t nrec, struct stats *s)
{
    /* flushed state per key, and the operations after the last completed flush */
    struct kstate flushed[NKEYS];
    memcpy(flushed, base, sizeof flushed);
    size_t last_flush = 0;   /* index after the last 'F' */
    for (size_t i = 0; i < nrec; i++)
        if (recs[i].type == 'F')
            last_flush = i + 1;
    for (size_t i = 0; i < last_flush; i++) {
        const struct rec *r = &recs[i];
        if (r->type == 'P')
            flushed[r->key] = (struct kstate){true, r->seq, r->vlen};
        else if (r->type == 'D')
            flushed[r->key] = (struct kstate){false, 0, 0};
    }

    dcache *c = NULL;
    if (!CHECK_RC(dcache_open(path, NULL, &c), DCACHE_OK))
        tst_die("the cache does not reopen after a kill: %s", dcache_last_error_message());
    uint8_t *buf = malloc(64 * KiB + 1);
    unsigned long f0 = tst_failures();
    uint64_t present = 0;
    for (uint32_t k = 0; k < NKEYS && tst_failures() - f0 < 10; k++) {
        uint8_t key[64];
        size_t kl, n = 0;
        key_of(k, key, &kl);
        dcache_result rc = dcache_get(c, key, kl, buf, 64 * KiB + 1, &n);
        bool got_present = rc == DCACHE_OK;
        uint64_t got_seq = 0;
        if (rc == DCACHE_OK) {
            present++;
            if (!CHECKF(val_parse(buf, n, key, kl, &got_seq),
                        "round %u: key %u holds %zu bytes that are no version of it", s->rounds,
                        k, n))
                continue;
        } else if (!CHECKF(rc == DCACHE_NOT_FOUND, "round %u: get(key %u) = %s", s->rounds, k,
                           rc_name(rc))) {
            continue;
        }
        /* allowed: the flushed state, or the state after any later operation on k */
        bool ok = same_state(&flushed[k], got_present, got_seq, (uint32_t)n);
        bool any_later = false;
        struct kstate later = flushed[k];
        for (size_t i = last_flush; i < nrec && !ok; i++) {
            const struct rec *r = &recs[i];
            if (r->key != k || (r->type != 'P' && r->type != 'D'))
                continue;
            any_later = true;
            later = r->type == 'P' ? (struct kstate){true, r->seq, r->vlen}
                                   : (struct kstate){false, 0, 0};
            ok = same_state(&later, got_present, got_seq, (uint32_t)n);
            if (ok)
                s->later_state++;
        }
        for (size_t i = last_flush; i < nrec && !any_later; i++)
            any_later = recs[i].key == k && (recs[i].type == 'P' || recs[i].type == 'D');
        if (ok && !any_later)
            s->exact_after_flush++;
        CHECKF(ok, "round %u: key %u is %s (seq %llu, %zu bytes); flushed state: %s seq %llu; %s",
               s->rounds, k, got_present ? "present" : "absent", (unsigned long long)got_seq, n,
               flushed[k].present ? "present" : "absent", (unsigned long long)flushed[k].seq,
               any_later ? "with later operations" : "no later operation");
        base[k] = (struct kstate){got_present, got_seq, (uint32_t)n};
    }
    dcache_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RC(dcache_get_stats(c, &st), DCACHE_OK);
    CHECKF(st.entries == present, "round %u: stats.entries %llu = %llu keys found", s->rounds,
           (unsigned long long)st.entries, (unsigned long long)present);
    CHECK_EQ(st.evictions, 0);
    free(buf);
    /* a clean close makes what we saw the next baseline */
    CHECK_RC(dcache_close(c), DCACHE_OK);
}

TEST_MAIN(cache_crash)
{
    if (argc == 6 && strcmp(argv[1], "--crash-child") == 0)
        return child_main(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10),
                          atoi(argv[5]));
    tst_begin("cache_crash");
    rng_t r;
    rng_seed(&r, tst_seed());
    char path[4096];
    tst_path(path, sizeof path, "crash.dc");
    dcache *c = cache_create(path, CAP, 0);
    CHECK_RC(dcache_close(c), DCACHE_OK);

    struct kstate base[NKEYS];
    memset(base, 0, sizeof base);
    struct stats s;
    memset(&s, 0, sizeof s);
    uint64_t seq = 1;
    uint8_t *data = NULL;
    size_t cap = 0;
    double t0 = now_sec();
    const unsigned min_rounds = 30, max_rounds = 45;
    while (s.rounds < max_rounds && (s.rounds < min_rounds || now_sec() - t0 < 40) &&
           tst_failures() == 0) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0)
            tst_die("pipe");
        char seq_s[32], seed_s[32], fd_s[16];
        snprintf(seq_s, sizeof seq_s, "%llu", (unsigned long long)seq);
        snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)rng_next(&r));
        snprintf(fd_s, sizeof fd_s, "%d", fds[1]);
        char *args[] = {(char *)"--crash-child", path, seq_s, seed_s, fd_s, NULL};
        pid_t pid = spawn_self(args, fds[1]);
        close(fds[1]);
        if (pid < 0)
            tst_die("fork");
        /* a random moment: mostly while writing (counted from the end of the open), sometimes
         * during the open (counted from the start), that is during recovery */
        bool during_open = rng_below(&r, 6) == 0;
        double delay = during_open ? (double)rng_below(&r, 150) / 1000.0
                                   : (double)rng_range(&r, 5, 200) / 1000.0;
        int status = 0;
        size_t len = read_all_records(fds[0], delay, !during_open, pid, &data, &cap, &status);
        close(fds[0]);
        size_t nrec = len / sizeof(struct rec);
        const struct rec *recs = (const struct rec *)data;
        s.rounds++;
        bool opened = false, flushed = false;
        for (size_t i = 0; i < nrec; i++) {
            switch (recs[i].type) {
            case 'O': opened = true; break;
            case 'F': flushed = true; s.flushes++; break;
            case 'P': s.puts++; break;
            case 'D': s.deletes++; break;
            case 'E':
                CHECKF(false, "round %u: the child failed: %s on key %u", s.rounds,
                       rc_name(recs[i].rc), recs[i].key);
                break;
            }
            if (recs[i].seq >= seq)
                seq = recs[i].seq + 1;
        }
        CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
               "round %u: the child died of SIGKILL (status 0x%x)", s.rounds, status);
        s.opened += opened;
        s.killed_in_open += !opened;
        s.rounds_with_flush += flushed;
        verify_round(path, base, recs, nrec, &s);
    }
    free(data);
    tst_note("%u rounds in %.1f s: %u killed during open, %u puts, %u deletes, %u flushes "
             "(%u rounds with one); %u keys checked exact after a flush, %u in a later state",
             s.rounds, now_sec() - t0, s.killed_in_open, s.puts, s.deletes, s.flushes,
             s.rounds_with_flush, s.exact_after_flush, s.later_state);
    CHECKF(s.rounds >= min_rounds, "at least %u rounds (%u)", min_rounds, s.rounds);
    CHECKF(s.rounds_with_flush >= 20, "at least 20 rounds had a completed flush (%u)",
           s.rounds_with_flush);
    CHECK(s.puts > 1000);
    return tst_finish();
}

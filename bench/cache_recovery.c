/* bench/cache_recovery.c: index memory per entry and the cost of reopening.
 *
 * A fresh cache receives a million small values; dcache_get_stats gives index_bytes /
 * entries. It is closed, and the following dcache_open is timed (the clean reopen). Then a
 * child process opens it, puts more values, calls dcache_flush, tells the parent through a
 * pipe and waits; the parent kills it with SIGKILL and times the next dcache_open (the
 * reopen after a crash). After each reopen the entry count must be what was flushed, and a
 * sample of the values, old and new, is compared byte for byte.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cacheops.h"
#include "phases.h"
#include "report.h"

#define SMALL_VALUE 64
#define CHILD_READY 'R'
#define CHILD_FAILED 'E'
#define CHILD_TIMEOUT_MS 60000

/* ---- the million entries ---------------------------------------------------------------- */
/* Puts the load's keys, final flush timed; records ops/s under key unless key is NULL. */
static int put_small(cache_load *l, const char *label, const char *key, const char *mode)
{
    run_spec s = {.name = label, .threads = 1, .max_ops = l->count, .op = cache_put_op,
                  .finish = cache_flush_finish, .ctx = l, .seed = 50};
    run_result r;
    if (run_ops(&s, &r) != 0)
        return -1;
    return key ? record_run(GROUP_MEM, key, label, &r, mode, REC_OPS) : 0;
}

static int record_index_memory(dcache *c, uint64_t expected, const char *mode)
{
    dcache_stats st;
    if (cache_stats(c, &st) != 0)
        return -1;
    if (st.entries != expected)
        return bench_fail("index: %llu entries after %llu distinct puts and no eviction",
                          (unsigned long long)st.entries, (unsigned long long)expected);
    int rc = fig_set(GROUP_MEM, "cache.index.entries", "entries in the index", (double)st.entries,
                     "count", mode);
    rc |= fig_set(GROUP_MEM, "cache.index.bytes", "index memory (stats.index_bytes)",
                  (double)st.index_bytes / (double)MIB, "MiB", mode);
    rc |= fig_set(GROUP_MEM, "cache.index.bytes_per_entry", "index memory per entry",
                  st.entries ? (double)st.index_bytes / (double)st.entries : 0, "B/entry", mode);
    return rc ? -1 : 0;
}

/* ---- reopening -------------------------------------------------------------------------- */
static int reopen_fig(const char *key, const char *suffix, const char *label, const char *text,
                      double value, const char *unit, const char *mode)
{
    char k[64], l[128];
    snprintf(k, sizeof k, "%s.%s", key, suffix);
    snprintf(l, sizeof l, "%s: %s", label, text);
    return fig_set(GROUP_MEM, k, l, value, unit, mode);
}

static int record_reopen(const char *key, const char *label, const dcache_stats *st,
                         double sec, const char *mode)
{
    double pct = st->used_bytes ? 100.0 * (double)st->recovery_bytes_read / (double)st->used_bytes
                                : 0;
    int rc = reopen_fig(key, "entries", label, "entries", (double)st->entries, "count", mode);
    rc |= reopen_fig(key, "sec", label, "dcache_open wall time", sec, "s", mode);
    rc |= reopen_fig(key, "recovery_ms", label, "stats.recovery_micros",
                     (double)st->recovery_micros / 1e3, "ms", mode);
    rc |= reopen_fig(key, "recovery_mib", label, "stats.recovery_bytes_read",
                     (double)st->recovery_bytes_read / (double)MIB, "MiB", mode);
    rc |= reopen_fig(key, "recovery_pct_used", label, "recovery bytes read / used bytes", pct,
                     "%", mode);
    rc |= reopen_fig(key, "was_clean", label, "stats.recovery_was_clean",
                     (double)st->recovery_was_clean, "flag", mode);
    return rc ? -1 : 0;
}

/* Opens the cache (*out is set even when a later check fails), checks its entry count and
 * records the open's figures under key.* */
static int timed_reopen(const char *path, const char *key, const char *label,
                        uint64_t expected, dcache **out)
{
    double sec;
    if (cache_open_existing(path, out, &sec) != 0)
        return -1;
    dcache_stats st;
    if (cache_stats(*out, &st) != 0)
        return -1;
    fprintf(stderr, "   reopened %s: %llu entries in %.3f s, was_clean %u, dropped %llu\n",
            label, (unsigned long long)st.entries, sec, st.recovery_was_clean,
            (unsigned long long)st.recovery_entries_dropped);
    if (st.entries != expected)
        return bench_fail("%s: %llu entries, %llu were flushed", label,
                          (unsigned long long)st.entries, (unsigned long long)expected);
    return record_reopen(key, label, &st, sec, cache_mode(*out));
}

/* ---- the child that is killed ----------------------------------------------------------- */
static void child_report(int fd, char c)
{
    ssize_t n = write(fd, &c, 1);
    (void)n;
}

/* Runs in the child: open, put, flush, say so, wait for SIGKILL. Never returns. */
static void crash_child(const bench_config *cfg, const char *path, int fd)
{
    dcache *c;
    double sec;
    if (cache_open_existing(path, &c, &sec) == 0) {
        cache_load l;
        cache_load_init(&l, c, &cfg->pool, "idx", SMALL_VALUE, cfg->index_entries,
                        cfg->crash_entries);
        if (put_small(&l, "child puts", NULL, NULL) == 0) {
            child_report(fd, CHILD_READY);
            for (;;)
                pause();
        }
    }
    child_report(fd, CHILD_FAILED);
    _exit(1);
}

/* Waits for the child's byte; 0 when it reported ready. */
static int await_child(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, CHILD_TIMEOUT_MS);
    if (n < 0)
        return sys_fail("poll");
    if (n == 0)
        return bench_fail("the child did not report within %d s", CHILD_TIMEOUT_MS / 1000);
    char c = 0;
    if (read(fd, &c, 1) != 1 || c != CHILD_READY)
        return bench_fail("the child failed before its flush (see its error above)");
    return 0;
}

static int kill_child(pid_t pid)
{
    if (kill(pid, SIGKILL) != 0)
        return sys_fail("kill");
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return sys_fail("waitpid");
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
        return bench_fail("the child ended otherwise than by SIGKILL (status %d)", status);
    return 0;
}

/* Forks the child, waits until its puts are flushed, kills it with SIGKILL. The parent must
 * have closed the cache and have no other thread running. */
static int crash_a_writer(const bench_config *cfg, const char *path)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return sys_fail("pipe");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return sys_fail("fork");
    }
    if (pid == 0) {
        close(pipefd[0]);
        crash_child(cfg, path, pipefd[1]);
    }
    close(pipefd[1]);
    int rc = await_child(pipefd[0]);
    close(pipefd[0]);
    if (kill_child(pid) != 0)
        rc = -1;
    return rc;
}

/* ---- the phase -------------------------------------------------------------------------- */
static int verify_sets(const bench_config *cfg, dcache *c, uint64_t old_count, bool child_set)
{
    cache_load old, fresh;
    cache_load_init(&old, c, &cfg->pool, "idx", SMALL_VALUE, 0, old_count);
    if (cache_verify_sample(&old, cfg->verify_samples, 60) != 0)
        return -1;
    if (!child_set)
        return 0;
    cache_load_init(&fresh, c, &cfg->pool, "idx", SMALL_VALUE, cfg->index_entries,
                    cfg->crash_entries);
    return cache_verify_sample(&fresh, cfg->verify_samples, 61);
}

static int fill_and_measure_index(const bench_config *cfg, const char *path)
{
    dcache *c;
    if (cache_create(path, cfg->cache_capacity, DCACHE_IO_AUTO, &c) != 0)
        return -1;
    const char *mode = cache_mode(c);
    if (fig_set(GROUP_MODE, "cache.idx.is_direct_io",
                "million-entry cache, DCACHE_IO_AUTO: dcache_is_direct_io",
                dcache_is_direct_io(c), "flag", mode) != 0) {
        cache_close(c);
        return -1;
    }
    cache_load l;
    cache_load_init(&l, c, &cfg->pool, "idx", SMALL_VALUE, 0, cfg->index_entries);
    progress("cache: %llu puts of %d-byte values (%s)", (unsigned long long)l.count,
             SMALL_VALUE, mode);
    int rc = put_small(&l, "64-byte puts + final flush", "cache.index.put64b", mode);
    if (rc == 0)
        rc = record_index_memory(c, l.count, mode);
    if (rc == 0)
        rc = cache_verify_sample(&l, cfg->verify_samples, 62);
    if (cache_close(c) != 0)
        rc = -1;
    return rc;
}

static int reopen_and_verify(const bench_config *cfg, const char *path, const char *key,
                             const char *label, uint64_t expected, bool child_set)
{
    dcache *c = NULL;
    progress("cache: reopen %s", label);
    int rc = timed_reopen(path, key, label, expected, &c);
    if (rc == 0)
        rc = verify_sets(cfg, c, cfg->index_entries, child_set);
    if (cache_close(c) != 0)
        rc = -1;
    return rc;
}

int phase_recovery(const bench_config *cfg)
{
    char path[PATH_MAX];
    bench_path(cfg, FILE_INDEX, path);
    const uint64_t n = cfg->index_entries, all = n + cfg->crash_entries;
    int rc = fill_and_measure_index(cfg, path);
    if (rc == 0)
        rc = reopen_and_verify(cfg, path, "cache.reopen.clean", "after a clean close", n, false);
    if (rc == 0) {
        progress("cache: child puts %llu more values, flushes, is killed with SIGKILL",
                 (unsigned long long)cfg->crash_entries);
        rc = crash_a_writer(cfg, path);
    }
    if (rc == 0)
        rc = reopen_and_verify(cfg, path, "cache.reopen.crash", "after kill -9", all, true);
    if (remove_if_present(path) != 0)
        rc = -1;
    return rc;
}

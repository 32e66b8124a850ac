/* The test framework: checks and their counts, cleanup actions, the work directory. See
 * harness.h. */
#include "common.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <linux/magic.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

/* ---- the test framework ------------------------------------------------------------------ */

#define MAX_PRINTED_FAILURES 40

static const char *g_name = "test";
static unsigned long g_pass, g_fail;        /* updated with __atomic builtins */
static unsigned long g_total_pass, g_total_fail;
static pthread_mutex_t g_print_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_workdir[PATH_MAX];
static bool g_workdir_made;
static bool g_handlers_installed;

bool tst_quick(void)
{
#ifdef DC_COMBINED
    return true;
#else
    return getenv("DCACHE_TEST_QUICK") != NULL;
#endif
}

void tst_totals(unsigned long *passed, unsigned long *failed)
{
    *passed = g_total_pass;
    *failed = g_total_fail;
}

unsigned long tst_failures(void)
{
    return __atomic_load_n(&g_fail, __ATOMIC_SEQ_CST);
}

static void on_signal(int sig)
{
    static volatile sig_atomic_t in_handler;
    if (sig == SIGALRM) {
        static const char msg[] = "FAIL: the test did not finish in time (hung?)\n";
        if (write(1, msg, sizeof msg - 1) < 0) {
        }
    }
    if (!in_handler) {
        in_handler = 1;
        /* not async-signal-safe, but this is a test about to die: detaching a loop device
         * and unmounting are worth the risk */
        tst_cleanup_all();
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void at_exit_cleanup(void)
{
    tst_cleanup_all();
}

void tst_begin(const char *name)
{
    g_name = name;
    __atomic_store_n(&g_pass, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_fail, 0, __ATOMIC_SEQ_CST);
    g_workdir_made = false;
    if (!g_handlers_installed) {
        g_handlers_installed = true;
        atexit(at_exit_cleanup);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sigaction(SIGALRM, &sa, NULL);
        setvbuf(stdout, NULL, _IOLBF, 0);
    }
    printf("== %s\n", name);
    /* a watchdog: a hung call fails the test (after the cleanup) instead of stalling the run */
    const char *w = getenv("DCACHE_TEST_WATCHDOG");
    alarm(w && *w ? (unsigned)atoi(w) : tst_quick() ? 1200u : 300u);
}

int tst_finish(void)
{
    alarm(0);
    tst_cleanup_all();
    unsigned long p = __atomic_load_n(&g_pass, __ATOMIC_SEQ_CST);
    unsigned long f = __atomic_load_n(&g_fail, __ATOMIC_SEQ_CST);
    g_total_pass += p;
    g_total_fail += f;
    __atomic_store_n(&g_pass, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_fail, 0, __ATOMIC_SEQ_CST);
#ifdef DC_COMBINED
    printf("[%s] %lu passed, %lu failed\n", g_name, p, f);
#else
    printf("%lu passed, %lu failed\n", p, f);
#endif
    fflush(stdout);
    return f ? 1 : 0;
}

int tst_skip(const char *reason)
{
    tst_cleanup_all();
    printf("SKIP: %s\n", reason);
    printf("0 passed, 0 failed\n");
    fflush(stdout);
    return 0;
}

void tst_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&g_print_lock);
    printf("   ");
    vprintf(fmt, ap);
    printf("\n");
    pthread_mutex_unlock(&g_print_lock);
    va_end(ap);
}

static bool record(bool ok)
{
    if (ok) {
        __atomic_add_fetch(&g_pass, 1, __ATOMIC_RELAXED);
        return true;
    }
    if (__atomic_add_fetch(&g_fail, 1, __ATOMIC_SEQ_CST) == MAX_PRINTED_FAILURES + 1)
        printf("   (further failures are counted but not printed)\n");
    return false;
}

static bool should_print(void)
{
    return __atomic_load_n(&g_fail, __ATOMIC_SEQ_CST) <= MAX_PRINTED_FAILURES;
}

bool tst_check(bool ok, const char *file, int line, const char *fmt, ...)
{
    record(ok);
    if (!ok && should_print()) {
        va_list ap;
        va_start(ap, fmt);
        pthread_mutex_lock(&g_print_lock);
        printf("FAIL %s:%d: ", file, line);
        vprintf(fmt, ap);
        printf("\n");
        fflush(stdout);
        pthread_mutex_unlock(&g_print_lock);
        va_end(ap);
    }
    return ok;
}

static void print_rc_failure(dcache_result got, const char *file, int line, const char *expr,
                             const char *want)
{
    /* copy the message first: any later dcache call may replace it */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", got == DCACHE_OK ? "" : dcache_last_error_message());
    pthread_mutex_lock(&g_print_lock);
    printf("FAIL %s:%d: %s = %s, want %s%s%s%s\n", file, line, expr, rc_name(got), want,
           msg[0] ? " [" : "", msg, msg[0] ? "]" : "");
    fflush(stdout);
    pthread_mutex_unlock(&g_print_lock);
}

bool tst_check_rc(dcache_result got, dcache_result want, const char *file, int line,
                  const char *expr, const char *want_name)
{
    bool ok = got == want;
    record(ok);
    if (!ok && should_print())
        print_rc_failure(got, file, line, expr, want_name);
    return ok;
}

bool tst_check_rc_in(dcache_result got, const dcache_result *allowed, size_t n,
                     const char *file, int line, const char *expr)
{
    bool ok = false;
    for (size_t i = 0; i < n; i++)
        ok = ok || got == allowed[i];
    record(ok);
    if (!ok && should_print()) {
        char want[256] = "one of";
        for (size_t i = 0; i < n; i++) {
            size_t l = strlen(want);
            snprintf(want + l, sizeof want - l, " %s", rc_name(allowed[i]));
        }
        print_rc_failure(got, file, line, expr, want);
    }
    return ok;
}

bool tst_check_u64(uint64_t got, uint64_t want, const char *file, int line, const char *expr,
                   const char *want_expr)
{
    bool ok = got == want;
    record(ok);
    if (!ok && should_print()) {
        pthread_mutex_lock(&g_print_lock);
        printf("FAIL %s:%d: %s = %llu, want %s = %llu\n", file, line, expr,
               (unsigned long long)got, want_expr, (unsigned long long)want);
        fflush(stdout);
        pthread_mutex_unlock(&g_print_lock);
    }
    return ok;
}

bool tst_check_mem(const void *got, const void *want, size_t len, const char *file, int line,
                   const char *what)
{
    const uint8_t *g = got, *w = want;
    bool ok = len == 0 || memcmp(g, w, len) == 0;
    record(ok);
    if (!ok && should_print()) {
        size_t i = 0, diffs = 0, first = 0;
        for (i = 0; i < len; i++)
            if (g[i] != w[i]) {
                if (!diffs)
                    first = i;
                diffs++;
            }
        pthread_mutex_lock(&g_print_lock);
        printf("FAIL %s:%d: %s: %zu of %zu bytes differ, first at %zu (got 0x%02x, want 0x%02x)\n",
               file, line, what, diffs, len, first, g[first], w[first]);
        fflush(stdout);
        pthread_mutex_unlock(&g_print_lock);
    }
    return ok;
}

void tst_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FATAL (%s): ", g_name);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    __atomic_add_fetch(&g_fail, 1, __ATOMIC_SEQ_CST);
    tst_finish();
    exit(1);
}

/* ---- cleanup ------------------------------------------------------------------------------ */

#define MAX_CLEANUPS 64
static struct {
    tst_cleanup_fn fn;
    void *arg;
} g_cleanups[MAX_CLEANUPS];
static int g_ncleanups;
static pthread_mutex_t g_cleanup_lock = PTHREAD_MUTEX_INITIALIZER;

int tst_defer(tst_cleanup_fn fn, void *arg)
{
    pthread_mutex_lock(&g_cleanup_lock);
    if (g_ncleanups == MAX_CLEANUPS) {
        pthread_mutex_unlock(&g_cleanup_lock);
        fn(arg);
        tst_die("too many cleanup actions");
    }
    int h = g_ncleanups++;
    g_cleanups[h].fn = fn;
    g_cleanups[h].arg = arg;
    pthread_mutex_unlock(&g_cleanup_lock);
    return h;
}

void tst_cleanup_run_one(int h)
{
    pthread_mutex_lock(&g_cleanup_lock);
    tst_cleanup_fn fn = NULL;
    void *arg = NULL;
    if (h >= 0 && h < g_ncleanups && g_cleanups[h].fn) {
        fn = g_cleanups[h].fn;
        arg = g_cleanups[h].arg;
        g_cleanups[h].fn = NULL;
    }
    pthread_mutex_unlock(&g_cleanup_lock);
    if (fn)
        fn(arg);
}

void tst_cleanup_all(void)
{
    for (;;) {
        pthread_mutex_lock(&g_cleanup_lock);
        if (g_ncleanups == 0) {
            pthread_mutex_unlock(&g_cleanup_lock);
            return;
        }
        int h = --g_ncleanups;
        tst_cleanup_fn fn = g_cleanups[h].fn;
        void *arg = g_cleanups[h].arg;
        g_cleanups[h].fn = NULL;
        pthread_mutex_unlock(&g_cleanup_lock);
        if (fn)
            fn(arg);
    }
}

/* ---- work directory ------------------------------------------------------------------------ */

long statfs_type(const char *path)
{
    struct statfs sf;
    if (statfs(path, &sf) != 0)
        return -1;
    return (long)sf.f_type;
}

static void mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    }
    mkdir(tmp, 0755);
}

static void remove_workdir(void *arg)
{
    (void)arg;
    if (g_workdir_made && !getenv("DCACHE_TEST_KEEP"))
        rm_rf(g_workdir);
    g_workdir_made = false;
}

const char *tst_workdir(void)
{
    if (g_workdir_made)
        return g_workdir;
    const char *base = getenv("DCACHE_TEST_TMPDIR");
    if (!base || !*base)
        base = getenv("TMPDIR");
    if (!base || !*base)
        base = "build/tmp";
    mkdir_p(base);
    if (statfs_type(base) == (long)TMPFS_MAGIC) {
        tst_note("%s is tmpfs, which takes O_DIRECT even unaligned: using build/tmp", base);
        base = "build/tmp";
        mkdir_p(base);
    }
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/dctest-%s-XXXXXX", base, g_name);
    if (!mkdtemp(tmpl))
        tst_die("mkdtemp(%s): %s", tmpl, strerror(errno));
    if (!realpath(tmpl, g_workdir))
        tst_die("realpath(%s): %s", tmpl, strerror(errno));
    g_workdir_made = true;
    tst_defer(remove_workdir, NULL);
    return g_workdir;
}

char *tst_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tst_workdir(), name);
    return buf;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

bool path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

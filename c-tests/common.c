/* Shared helpers for the libdcache C tests: see common.h. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
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

/* ---- random numbers ------------------------------------------------------------------------ */

#define GOLDEN UINT64_C(0x9E3779B97F4A7C15)

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

uint64_t splitmix64(uint64_t *state)
{
    *state += GOLDEN;
    return mix64(*state);
}

void rng_seed(rng_t *r, uint64_t seed)
{
    r->s = seed;
}

uint64_t rng_next(rng_t *r)
{
    return splitmix64(&r->s);
}

uint64_t rng_below(rng_t *r, uint64_t n)
{
    return n ? rng_next(r) % n : 0;
}

uint64_t rng_range(rng_t *r, uint64_t lo, uint64_t hi)
{
    if (hi <= lo)
        return lo;
    if (lo == 0 && hi == UINT64_MAX)
        return rng_next(r);
    return lo + rng_below(r, hi - lo + 1);
}

void rng_fill(rng_t *r, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len >= 8) {
        uint64_t v = rng_next(r);
        memcpy(p, &v, 8);
        p += 8;
        len -= 8;
    }
    if (len) {
        uint64_t v = rng_next(r);
        memcpy(p, &v, len);
    }
}

uint64_t tst_seed(void)
{
    static bool printed;
    static uint64_t seed;
    if (!printed) {
        const char *e = getenv("DCACHE_TEST_SEED");
        if (e && *e) {
            seed = strtoull(e, NULL, 0);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            seed = mix64((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
                   (uint64_t)getpid();
        }
        printed = true;
        printf("   seed %llu (set DCACHE_TEST_SEED to repeat)\n", (unsigned long long)seed);
    }
    return seed;
}

/* ---- hashing ---------------------------------------------------------------------------------- */

uint64_t fnv1a64(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* ---- self-verifying keys and values -------------------------------------------------------- */

void key_make(uint8_t *buf, uint64_t idx, size_t len)
{
    if (len == 0)
        return;
    buf[0] = 'k';
    size_t n = len - 1 < 8 ? len - 1 : 8;
    for (size_t i = 0; i < n; i++)
        buf[1 + i] = (uint8_t)(idx >> (8 * i));
    uint64_t s = mix64(idx * GOLDEN ^ (uint64_t)len);
    for (size_t i = 1 + n; i < len; i++) {
        if ((i - 1 - n) % 8 == 0)
            s = mix64(s + GOLDEN);
        buf[i] = (uint8_t)(s >> (8 * ((i - 1 - n) % 8)));
    }
}

static uint64_t val_seed(const uint8_t *key, size_t klen, uint64_t version, size_t len)
{
    return fnv1a64(key, klen) ^ mix64(version * GOLDEN) ^
           mix64((uint64_t)len * UINT64_C(0xD6E8FEB86659FD93));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void val_slice(uint8_t *out, size_t total_len, uint64_t off, size_t n, const uint8_t *key,
               size_t klen, uint64_t version)
{
    uint64_t seed = val_seed(key, klen, version, total_len);
    uint8_t hdr[VAL_HDR];
    if (total_len >= VAL_HDR) {
        put_le64(hdr, version);
        put_le64(hdr + 8, (uint64_t)total_len);
        put_le64(hdr + 16, fnv1a64(key, klen) ^ version);
    }
    size_t i = 0;
    while (i < n) {
        uint64_t pos = off + i;
        if (total_len >= VAL_HDR && pos < VAL_HDR) {
            out[i++] = hdr[pos];
            continue;
        }
        uint64_t word = mix64(seed + (pos / 8 + 1) * GOLDEN);
        unsigned b = (unsigned)(pos % 8);
        for (; b < 8 && i < n; b++)
            out[i++] = (uint8_t)(word >> (8 * b));
    }
}

void val_fill(uint8_t *buf, size_t len, const uint8_t *key, size_t klen, uint64_t version)
{
    val_slice(buf, len, 0, len, key, klen, version);
}

bool val_check(const uint8_t *buf, size_t len, const uint8_t *key, size_t klen, uint64_t version)
{
    uint8_t tmp[4096];
    for (size_t off = 0; off < len; off += sizeof tmp) {
        size_t n = len - off < sizeof tmp ? len - off : sizeof tmp;
        val_slice(tmp, len, off, n, key, klen, version);
        if (memcmp(tmp, buf + off, n) != 0)
            return false;
    }
    return true;
}

bool val_parse(const uint8_t *buf, size_t len, const uint8_t *key, size_t klen, uint64_t *version)
{
    if (len < VAL_HDR)
        return false;
    uint64_t v = get_le64(buf);
    if (get_le64(buf + 8) != (uint64_t)len)
        return false;
    if (get_le64(buf + 16) != (fnv1a64(key, klen) ^ v))
        return false;
    if (!val_check(buf, len, key, klen, v))
        return false;
    if (version)
        *version = v;
    return true;
}

/* ---- files ------------------------------------------------------------------------------------- */

bool file_read_all_plain(const char *path, uint8_t **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return false;
    }
    size_t cap = (size_t)st.st_size;
    if (S_ISBLK(st.st_mode)) {
        uint64_t sz = 0;
        ioctl(fd, BLKGETSIZE64, &sz);
        cap = (size_t)sz;
    }
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) {
        close(fd);
        return false;
    }
    size_t got = 0;
    while (got < cap) {
        ssize_t r = pread(fd, buf + got, cap - got, (off_t)got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            close(fd);
            return false;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = got;
    return true;
}

bool file_write_plain(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return false;
    const uint8_t *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return false;
        }
        done += (size_t)w;
    }
    bool ok = fsync(fd) == 0;
    return close(fd) == 0 && ok;
}

bool file_hash(const char *path, uint64_t *hash, uint64_t *size, struct timespec *mtime)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return false;
    }
    uint64_t h = UINT64_C(0xcbf29ce484222325), total = 0;
    static uint8_t buf[1 << 16];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++) {
            h ^= buf[i];
            h *= UINT64_C(0x100000001b3);
        }
        total += (uint64_t)r;
    }
    close(fd);
    if (hash)
        *hash = h;
    if (size)
        *size = total;
    if (mtime)
        *mtime = st.st_mtim;
    return true;
}

int64_t file_size_plain(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return (int64_t)st.st_size;
}

/* ---- guarded memory ----------------------------------------------------------------------- */

uint8_t *guarded_alloc(size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = (len + page - 1) / page;
    size_t total = (data_pages + 1) * page;
    uint8_t *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        tst_die("mmap: %s", strerror(errno));
    if (mprotect(base + data_pages * page, page, PROT_NONE) != 0)
        tst_die("mprotect: %s", strerror(errno));
    return base + data_pages * page - len;
}

void guarded_free(uint8_t *p, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = (len + page - 1) / page;
    uint8_t *base = p + len - data_pages * page;
    munmap(base, (data_pages + 1) * page);
}

/* ---- privileges, loop devices, ramfs ---------------------------------------------------------- */

bool tst_is_root(void)
{
    return geteuid() == 0;
}

static void loop_detach(void *arg)
{
    char *dev = arg;
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "losetup -d '%s' 2>/dev/null", dev);
    for (int i = 0; i < 20; i++) {
        int st = system(cmd);
        if (st == 0)
            break;
        sleep_ms(100);
    }
    free(dev);
}

bool tst_loop_image(const char *name, uint64_t size, unsigned sector_size, char *dev, size_t devlen)
{
    char img[4096];
    tst_path(img, sizeof img, name);
    int fd = open(img, O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0)
        tst_die("cannot make %s", img);
    close(fd);
    return tst_loop_attach(img, sector_size, dev, devlen);
}

bool tst_loop_attach(const char *img, unsigned sector_size, char *dev, size_t devlen)
{
    char cmd[PATH_MAX + 128];
    if (sector_size)
        snprintf(cmd, sizeof cmd, "losetup --find --show --sector-size %u '%s' 2>&1",
                 sector_size, img);
    else
        snprintf(cmd, sizeof cmd, "losetup --find --show '%s' 2>&1", img);
    FILE *p = popen(cmd, "r");
    if (!p) {
        tst_note("popen(losetup): %s", strerror(errno));
        return false;
    }
    char line[512] = "";
    if (!fgets(line, sizeof line, p))
        line[0] = 0;
    int st = pclose(p);
    line[strcspn(line, "\n")] = 0;
    if (st != 0 || strncmp(line, "/dev/loop", 9) != 0) {
        tst_note("losetup failed: %s", line);
        return false;
    }
    snprintf(dev, devlen, "%s", line);
    tst_defer(loop_detach, strdup(line));
    return true;
}

static void ramfs_unmount(void *arg)
{
    char *dir = arg;
    if (umount2(dir, 0) != 0 && errno != EINVAL)
        umount2(dir, MNT_DETACH);
    rmdir(dir);
    free(dir);
}

bool tst_mount_ramfs(const char *dir)
{
    mkdir(dir, 0755);
    if (mount("ramfs", dir, "ramfs", 0, NULL) != 0) {
        tst_note("mount -t ramfs %s: %s", dir, strerror(errno));
        return false;
    }
    tst_defer(ramfs_unmount, strdup(dir));
    return true;
}

uint64_t blockdev_size(const char *dev)
{
    int fd = open(dev, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    uint64_t sz = 0;
    if (ioctl(fd, BLKGETSIZE64, &sz) != 0)
        sz = 0;
    close(fd);
    return sz;
}

/* ---- the log callback ----------------------------------------------------------------------- */

static log_counts_t *g_log_counts;
static pthread_mutex_t g_log_lock = PTHREAD_MUTEX_INITIALIZER;

static void counting_log(void *userdata, uint32_t level, const char *message)
{
    log_counts_t *c = userdata;
    pthread_mutex_lock(&g_log_lock);
    c->count[level >= 1 && level <= 4 ? level : 0]++;
    if (level == DCACHE_LOG_WARN)
        snprintf(c->last_warn, sizeof c->last_warn, "%s", message ? message : "(null)");
    pthread_mutex_unlock(&g_log_lock);
}

void log_capture_start(log_counts_t *counts)
{
    memset(counts, 0, sizeof *counts);
    g_log_counts = counts;
    dcache_set_log_callback(counting_log, counts);
}

void log_capture_stop(void)
{
    dcache_set_log_callback(NULL, NULL);
    g_log_counts = NULL;
}

/* ---- cache helpers ---------------------------------------------------------------------------- */

void cache_opts(dcache_options *o, uint64_t capacity, uint32_t flags)
{
    dcache_options_init(o);
    o->capacity = capacity;
    o->flags = flags;
}

dcache *cache_create(const char *path, uint64_t capacity, uint32_t extra_flags)
{
    dcache_options o;
    cache_opts(&o, capacity, DCACHE_OPEN_CREATE | extra_flags);
    dcache *c = NULL;
    dcache_result r = dcache_open(path, &o, &c);
    if (r != DCACHE_OK || !c)
        tst_die("dcache_open(%s, capacity %llu) = %s: %s", path, (unsigned long long)capacity,
                rc_name(r), dcache_last_error_message());
    return c;
}

dcache_result cache_get_alloc(dcache *c, const uint8_t *key, size_t klen, uint8_t **out,
                              size_t *len)
{
    *out = NULL;
    size_t need = 0;
    dcache_result r = dcache_get(c, key, klen, NULL, 0, &need);
    if (r == DCACHE_OK) {
        *out = malloc(1);
        *len = 0;
        return r;
    }
    if (r != DCACHE_BUFFER_TOO_SMALL)
        return r;
    uint8_t *buf = malloc(need);
    if (!buf)
        tst_die("malloc(%zu)", need);
    size_t got = 0;
    r = dcache_get(c, key, klen, buf, need, &got);
    if (r != DCACHE_OK) {
        free(buf);
        return r;
    }
    *out = buf;
    *len = got;
    return r;
}

/* ---- misc --------------------------------------------------------------------------------------- */

double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

bool is_pow2_u64(uint64_t x)
{
    return x && !(x & (x - 1));
}

const char *rc_name(dcache_result r)
{
    static __thread char buf[32];
#define NAME(x) if (r == x) return #x
    NAME(DCACHE_OK);
    NAME(DCACHE_NOT_FOUND);
    NAME(DCACHE_BUFFER_TOO_SMALL);
    NAME(DCACHE_INVALID_ARGUMENT);
    NAME(DCACHE_TOO_LARGE);
    NAME(DCACHE_RANGE);
    NAME(DCACHE_IO_ERROR);
    NAME(DCACHE_NO_SPACE);
    NAME(DCACHE_NOT_A_CACHE);
    NAME(DCACHE_INCOMPATIBLE);
    NAME(DCACHE_LOCKED);
    NAME(DCACHE_UNSUPPORTED);
    NAME(DCACHE_READ_ONLY);
    NAME(DCACHE_OUT_OF_MEMORY);
    NAME(DCACHE_INTERNAL);
#undef NAME
    snprintf(buf, sizeof buf, "unknown(%u)", (unsigned)r);
    return buf;
}

uint32_t unknown_io_mode(void)
{
    uint32_t m = 1000;
    while (m == DCACHE_IO_AUTO || m == DCACHE_IO_DIRECT || m == DCACHE_IO_BUFFERED)
        m++;
    return m;
}

uint32_t unknown_flag_bit(uint32_t known)
{
    for (int b = 31; b >= 0; b--)
        if (!(known & (UINT32_C(1) << b)))
            return UINT32_C(1) << b;
    return 0;
}

const char *self_exe(void)
{
    return "/proc/self/exe";
}

pid_t spawn_self(char *const args[], int extra_fd)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* child */
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
        dup2(devnull, 0);
        close(devnull);
    }
    if (extra_fd >= 0) {
        int fl = fcntl(extra_fd, F_GETFD);
        fcntl(extra_fd, F_SETFD, fl & ~FD_CLOEXEC);
    }
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)"dcache-test-child";
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    execv(self_exe(), argv);
    _exit(127);
}

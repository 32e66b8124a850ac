/* Safety of other people's data, and the lock.
 * - A file of foreign data (16 MiB of random bytes) is refused with DCACHE_NOT_A_CACHE with
 *   every flag combination short of DCACHE_OPEN_FORMAT, CREATE included, and left
 *   byte-for-byte untouched (hash, size and mtime compared); FORMAT then formats it (capacity 0
 *   = the file's size) and it works as a cache.
 * - Files that look empty but are not: zeros written to real blocks, a sparse file with one
 *   block of data far from the start, a file whose first 4 KiB are zero: all refused, untouched.
 * - Files that are empty: size 0 (capacity needed) and sparse without data blocks: formatted
 *   with DCACHE_OPEN_CREATE.
 * - FORMAT on an existing cache destroys its entries.
 * - The lock: a second dcache_open of the same file in this process is DCACHE_LOCKED, also by
 *   another path (hard link, symlink, "./" spelling), and from another process; after the
 *   close, another process can open it. */
#include "common.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define K(s) ((const uint8_t *)(s)), (sizeof(s) - 1)

struct fstate {
    uint64_t hash, size;
    struct timespec mtime;
    bool ok;
};

static struct fstate snapshot(const char *path)
{
    struct fstate s;
    memset(&s, 0, sizeof s);
    s.ok = file_hash(path, &s.hash, &s.size, &s.mtime);
    return s;
}

static void expect_untouched(const char *path, const struct fstate *before, const char *what)
{
    struct fstate after = snapshot(path);
    CHECKF(after.ok && after.hash == before->hash && after.size == before->size,
           "%s: content unchanged (size %llu -> %llu)", what, (unsigned long long)before->size,
           (unsigned long long)after.size);
    CHECKF(after.mtime.tv_sec == before->mtime.tv_sec &&
               after.mtime.tv_nsec == before->mtime.tv_nsec,
           "%s: mtime unchanged", what);
}

/* every way of opening short of FORMAT: NOT_A_CACHE, the file untouched */
static void expect_refused(const char *path, const char *what)
{
    struct fstate before = snapshot(path);
    sleep_ms(20);   /* so that a write would show in the mtime */
    struct {
        uint64_t cap;
        uint32_t flags;
        uint32_t mode;
    } tries[] = {
        {0, 0, DCACHE_IO_AUTO},
        {0, DCACHE_OPEN_CREATE, DCACHE_IO_AUTO},
        {16 * MiB, DCACHE_OPEN_CREATE, DCACHE_IO_AUTO},
        {8 * MiB, DCACHE_OPEN_CREATE | DCACHE_OPEN_SYNC_WRITES, DCACHE_IO_DIRECT},
        {0, DCACHE_OPEN_READ_ONLY, DCACHE_IO_AUTO},
        {16 * MiB, DCACHE_OPEN_CREATE, DCACHE_IO_BUFFERED},
    };
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        dcache_options o;
        cache_opts(&o, tries[i].cap, tries[i].flags);
        o.io_mode = tries[i].mode;
        dcache *c = (dcache *)(uintptr_t)0x99;
        dcache_result rc = dcache_open(path, &o, &c);
        CHECKF(rc == DCACHE_NOT_A_CACHE, "%s: open(capacity %llu, flags 0x%x, mode %u) = %s, want "
               "DCACHE_NOT_A_CACHE", what, (unsigned long long)tries[i].cap, tries[i].flags,
               tries[i].mode, rc_name(rc));
        if (rc == DCACHE_OK)
            dcache_close(c);
        else
            CHECK(c == (dcache *)(uintptr_t)0x99);
    }
    dcache_result rc = dcache_open(path, NULL, &(dcache *){NULL});
    CHECK_RC(rc, DCACHE_NOT_A_CACHE);
    const char *m = dcache_last_error_message();
    CHECKF(m && m[0], "NOT_A_CACHE explains itself");
    expect_untouched(path, &before, what);
}

static void make_file(const char *path, uint64_t size, uint64_t data_off, uint64_t data_len,
                      int fill /* -1 random, else the byte */)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0)
        tst_die("cannot make %s", path);
    uint8_t *buf = malloc(1 * MiB);
    rng_t r;
    rng_seed(&r, tst_seed() ^ data_off);
    for (uint64_t off = 0; off < data_len; off += MiB) {
        size_t n = data_len - off < MiB ? (size_t)(data_len - off) : (size_t)MiB;
        if (fill < 0)
            rng_fill(&r, buf, n);
        else
            memset(buf, fill, n);
        if (pwrite(fd, buf, n, (off_t)(data_off + off)) != (ssize_t)n)
            tst_die("pwrite %s", path);
    }
    fsync(fd);
    close(fd);
    free(buf);
}

static void foreign_data(void)
{
    char path[4096];
    tst_path(path, sizeof path, "foreign.bin");
    make_file(path, 16 * MiB, 0, 16 * MiB, -1);
    expect_refused(path, "16 MiB of random bytes");

    /* FORMAT takes it; capacity 0 = the file's size */
    dcache_options o;
    cache_opts(&o, 0, DCACHE_OPEN_FORMAT);
    dcache *c = NULL;
    if (CHECK_RC(dcache_open(path, &o, &c), DCACHE_OK)) {
        dcache_stats st;
        memset(&st, 0, sizeof st);
        st.struct_size = sizeof st;
        CHECK_RC(dcache_get_stats(c, &st), DCACHE_OK);
        CHECK_EQ(st.capacity, 16 * MiB);
        CHECK_EQ(st.entries, 0);
        CHECK_RC(dcache_put(c, K("after-format"), K("works"), 0), DCACHE_OK);
        CHECK_RC(dcache_close(c), DCACHE_OK);
    }
    c = NULL;
    if (CHECK_RC(dcache_open(path, NULL, &c), DCACHE_OK)) {
        uint8_t buf[16];
        size_t n = 0;
        CHECK_RC(dcache_get(c, K("after-format"), buf, sizeof buf, &n), DCACHE_OK);
        CHECK(n == 5 && memcmp(buf, "works", 5) == 0);
        CHECK_RC(dcache_close(c), DCACHE_OK);
    }
    /* FORMAT of an existing cache destroys its entries */
    cache_opts(&o, 0, DCACHE_OPEN_FORMAT);
    c = NULL;
    if (CHECK_RC(dcache_open(path, &o, &c), DCACHE_OK)) {
        size_t n = 0;
        CHECK_RC(dcache_get(c, K("after-format"), NULL, 0, &n), DCACHE_NOT_FOUND);
        CHECK_RC(dcache_close(c), DCACHE_OK);
    }
}

static void look_empty_but_are_not(void)
{
    char path[4096];
    tst_path(path, sizeof path, "zeros.bin");
    make_file(path, 16 * MiB, 0, 16 * MiB, 0);
    expect_refused(path, "16 MiB of zeros in real blocks");

    tst_path(path, sizeof path, "sparse-with-data.bin");
    make_file(path, 32 * MiB, 20 * MiB, 4096, -1);
    expect_refused(path, "a sparse file with one block of data at 20 MiB");

    tst_path(path, sizeof path, "zero-head.bin");
    make_file(path, 16 * MiB, 4096, 16 * MiB - 4096, -1);
    expect_refused(path, "random data after 4 KiB of holes");

    tst_path(path, sizeof path, "tiny.bin");
    make_file(path, 1, 0, 1, 'x');
    expect_refused(path, "a 1-byte file");
}

static void empty_files(void)
{
    char path[4096];
    tst_path(path, sizeof path, "empty.bin");
    make_file(path, 0, 0, 0, 0);
    dcache *c = NULL;
    dcache_options o;
    cache_opts(&o, 0, DCACHE_OPEN_CREATE);
    CHECK_RC(dcache_open(path, &o, &c), DCACHE_INVALID_ARGUMENT);   /* needs a capacity */
    cache_opts(&o, 16 * MiB, DCACHE_OPEN_CREATE);
    c = NULL;
    if (CHECK_RC(dcache_open(path, &o, &c), DCACHE_OK)) {
        CHECK_RC(dcache_put(c, K("k"), K("v"), 0), DCACHE_OK);
        CHECK_RC(dcache_close(c), DCACHE_OK);
    }
    CHECK_EQ(file_size_plain(path), 16 * MiB);

    tst_path(path, sizeof path, "sparse.bin");
    make_file(path, 32 * MiB, 0, 0, 0);
    cache_opts(&o, 0, DCACHE_OPEN_CREATE);
    c = NULL;
    if (CHECK_RC(dcache_open(path, &o, &c), DCACHE_OK)) {
        dcache_stats st;
        memset(&st, 0, sizeof st);
        st.struct_size = sizeof st;
        CHECK_RC(dcache_get_stats(c, &st), DCACHE_OK);
        CHECK_EQ(st.capacity, 32 * MiB);
        CHECK_RC(dcache_close(c), DCACHE_OK);
    }
}

static int child_try_open(const char *path)
{
    dcache *c = NULL;
    dcache_result rc = dcache_open(path, NULL, &c);
    if (rc == DCACHE_OK)
        dcache_close(c);
    return (int)rc;
}

static int other_process_open(const char *path)
{
    char *args[] = {(char *)"--try-open", (char *)path, NULL};
    pid_t pid = spawn_self(args, -1);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static void locking(void)
{
    char path[4096], link_path[4096], sym_path[4096], dot_path[4096];
    tst_path(path, sizeof path, "locked.dc");
    tst_path(link_path, sizeof link_path, "locked-hardlink.dc");
    tst_path(sym_path, sizeof sym_path, "locked-symlink.dc");
    snprintf(dot_path, sizeof dot_path, "%s/./locked.dc", tst_workdir());
    dcache *c = cache_create(path, 16 * MiB, 0);
    CHECK(link(path, link_path) == 0);
    CHECK(symlink(path, sym_path) == 0);
    const char *paths[] = {path, link_path, sym_path, dot_path};
    for (size_t i = 0; i < 4; i++) {
        dcache *c2 = (dcache *)(uintptr_t)0x99;
        dcache_result rc = dcache_open(paths[i], NULL, &c2);
        CHECKF(rc == DCACHE_LOCKED, "second open via %s = %s, want DCACHE_LOCKED", paths[i],
               rc_name(rc));
        if (rc == DCACHE_OK)
            dcache_close(c2);
    }
    int rc = other_process_open(path);
    CHECKF(rc == DCACHE_LOCKED, "open from another process = %d (%s), want DCACHE_LOCKED", rc,
           rc >= 0 ? rc_name((dcache_result)rc) : "crashed");
    CHECK_RC(dcache_close(c), DCACHE_OK);
    rc = other_process_open(path);
    CHECKF(rc == DCACHE_OK, "open from another process after the close = %d (%s)", rc,
           rc >= 0 ? rc_name((dcache_result)rc) : "crashed");
    c = NULL;
    if (CHECK_RC(dcache_open(link_path, NULL, &c), DCACHE_OK))
        CHECK_RC(dcache_close(c), DCACHE_OK);

    /* not a regular file or device */
    c = (dcache *)(uintptr_t)0x99;
    CHECK_RC_IN(dcache_open(tst_workdir(), NULL, &c), DCACHE_INVALID_ARGUMENT, DCACHE_IO_ERROR,
                DCACHE_NOT_A_CACHE);
    CHECK(c == (dcache *)(uintptr_t)0x99);
}

TEST_MAIN(cache_safety)
{
    if (argc == 3 && strcmp(argv[1], "--try-open") == 0)
        return child_try_open(argv[2]);
    tst_begin("cache_safety");
    foreign_data();
    look_empty_but_are_not();
    empty_files();
    locking();
    return tst_finish();
}

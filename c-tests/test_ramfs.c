/* The fallback to buffered I/O on a file system that refuses O_DIRECT: a real ramfs mount
 * (root only). DCACHE_IO_AUTO must give is_direct_io()==0 and exactly one WARN through the
 * log callback, and then work correctly; DCACHE_IO_DIRECT must give DCACHE_UNSUPPORTED with a
 * non-empty message and leave the out-parameter alone. Same for the file layer and the cache
 * (ramfs also refuses fallocate, so the cache must reserve its capacity another way). */
#include "common.h"

#include <fcntl.h>
#include <unistd.h>

static void file_layer(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/file.dat", dir);
    log_counts_t logs;
    log_capture_start(&logs);

    dcache_file_options o;
    dcache_file_options_init(&o);
    o.io_mode = DCACHE_IO_AUTO;
    o.flags = DCACHE_FILE_CREATE;
    dcache_file *f = NULL;
    if (CHECK_RC(dcache_file_open(path, &o, &f), DCACHE_OK)) {
        CHECK_EQ(dcache_file_is_direct_io(f), 0);
        CHECK_EQ(logs.count[DCACHE_LOG_WARN], 1);
        CHECKF(logs.last_warn[0] != 0, "the warning has text");
        tst_note("warning: %s", logs.last_warn);
        uint32_t a = dcache_file_alignment(f);
        CHECKF(a == 0 || is_pow2_u64(a), "alignment %u is 0 or a power of two", a);

        /* buffered, but every byte still right */
        rng_t r;
        rng_seed(&r, tst_seed());
        size_t cap = 2 * MiB;
        uint8_t *mirror = calloc(cap, 1), *buf = malloc(256 * KiB);
        uint64_t size = 0;
        for (int i = 0; i < 500; i++) {
            size_t len = (size_t)rng_range(&r, 0, 200 * KiB);
            uint64_t off = rng_below(&r, cap - len);
            if (rng_below(&r, 2)) {
                rng_fill(&r, buf, len);
                CHECK_RC(dcache_file_pwrite(f, buf, len, off), DCACHE_OK);
                memcpy(mirror + off, buf, len);
                if (len && off + len > size)
                    size = off + len;
            } else {
                size_t got = 0;
                CHECK_RC(dcache_file_pread(f, buf, len, off, &got), DCACHE_OK);
                size_t want = off >= size ? 0 : (size - off < len ? (size_t)(size - off) : len);
                CHECK_EQ(got, want);
                CHECK_MEM(buf, mirror + off, got < want ? got : want, "ramfs pread = mirror");
            }
        }
        uint64_t sz = 0;
        CHECK_RC(dcache_file_size(f, &sz), DCACHE_OK);
        CHECK_EQ(sz, size);
        CHECK_RC(dcache_file_sync(f), DCACHE_OK);
        CHECK_RC(dcache_file_close(f), DCACHE_OK);
        CHECKF(logs.count[DCACHE_LOG_WARN] == 1, "still exactly one warning after I/O (got %lu)",
               logs.count[DCACHE_LOG_WARN]);
        uint8_t *disk = NULL;
        size_t dlen = 0;
        if (CHECK(file_read_all_plain(path, &disk, &dlen))) {
            CHECK_EQ(dlen, size);
            CHECK_MEM(disk, mirror, dlen < size ? dlen : size, "ramfs file = mirror");
            free(disk);
        }
        free(mirror);
        free(buf);
    }

    /* DIRECT is refused, with a message, and the handle is not written */
    dcache_file_options_init(&o);
    o.io_mode = DCACHE_IO_DIRECT;
    o.flags = DCACHE_FILE_CREATE;
    f = (dcache_file *)(uintptr_t)0x1234;
    CHECK_RC(dcache_file_open(path, &o, &f), DCACHE_UNSUPPORTED);
    const char *msg = dcache_last_error_message();
    CHECKF(msg && msg[0], "DCACHE_UNSUPPORTED has a message");
    if (msg)
        tst_note("message: %s", msg);
    CHECK(f == (dcache_file *)(uintptr_t)0x1234);

    /* write_all / read_all with DIRECT refused too; AUTO works */
    CHECK_RC(dcache_file_write_all(path, (const uint8_t *)"abc", 3, &o), DCACHE_UNSUPPORTED);
    dcache_file_options_init(&o);
    CHECK_RC(dcache_file_write_all(path, (const uint8_t *)"abc", 3, &o), DCACHE_OK);
    uint8_t *data = NULL;
    size_t len = 0;
    if (CHECK_RC(dcache_file_read_all(path, &o, &data, &len), DCACHE_OK)) {
        CHECK_EQ(len, 3);
        CHECK(len == 3 && memcmp(data, "abc", 3) == 0);
        dcache_buffer_free(data, len);
    }
    log_capture_stop();
}

static void cache_layer(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/cache.dc", dir);
    log_counts_t logs;
    log_capture_start(&logs);

    dcache_options o;
    cache_opts(&o, 16 * MiB, DCACHE_OPEN_CREATE);
    o.io_mode = DCACHE_IO_DIRECT;
    dcache *c = (dcache *)(uintptr_t)0x1234;
    CHECK_RC(dcache_open(path, &o, &c), DCACHE_UNSUPPORTED);
    const char *msg = dcache_last_error_message();
    CHECKF(msg && msg[0], "DCACHE_UNSUPPORTED has a message");
    CHECK(c == (dcache *)(uintptr_t)0x1234);

    memset(&logs, 0, sizeof logs);
    o.io_mode = DCACHE_IO_AUTO;
    c = NULL;
    if (!CHECK_RC(dcache_open(path, &o, &c), DCACHE_OK)) {
        log_capture_stop();
        return;
    }
    CHECK_EQ(dcache_is_direct_io(c), 0);
    CHECK_EQ(logs.count[DCACHE_LOG_WARN], 1);
    dcache_stats st;
    memset(&st, 0xAB, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RC(dcache_get_stats(c, &st), DCACHE_OK);
    CHECK_EQ(st.direct_io, 0);
    CHECK_EQ(st.capacity, 16 * MiB);

    uint8_t key[40], val[70000], out[70000];
    for (uint64_t i = 0; i < 200; i++) {
        size_t vl = (size_t)(i * 331 % sizeof val);
        key_make(key, i, sizeof key);
        val_fill(val, vl, key, sizeof key, 1);
        CHECK_RC(dcache_put(c, key, sizeof key, val, vl, 0), DCACHE_OK);
    }
    CHECK_RC(dcache_close(c), DCACHE_OK);
    CHECK_EQ(logs.count[DCACHE_LOG_WARN], 1);

    c = NULL;
    if (CHECK_RC(dcache_open(path, &o, &c), DCACHE_OK)) {
        CHECK_EQ(dcache_is_direct_io(c), 0);
        for (uint64_t i = 0; i < 200; i++) {
            size_t vl = (size_t)(i * 331 % sizeof val), got = 0;
            key_make(key, i, sizeof key);
            CHECK_RC(dcache_get(c, key, sizeof key, out, sizeof out, &got), DCACHE_OK);
            CHECK_EQ(got, vl);
            CHECK(got == vl && val_check(out, got, key, sizeof key, 1));
        }
        CHECK_RC(dcache_close(c), DCACHE_OK);
    }
    log_capture_stop();
}

/* the default callback: the warning goes to stderr, nothing at all to stdout */
static void default_log_goes_to_stderr(const char *dir)
{
    char path[4096], out_path[4096], err_path[4096];
    snprintf(path, sizeof path, "%s/default-log.dat", dir);
    tst_path(out_path, sizeof out_path, "stdout.txt");
    tst_path(err_path, sizeof err_path, "stderr.txt");
    dcache_set_log_callback(NULL, NULL);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    int fo = open(out_path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    int fe = open(err_path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (saved_out < 0 || saved_err < 0 || fo < 0 || fe < 0)
        tst_die("cannot redirect stdout/stderr");
    dup2(fo, 1);
    dup2(fe, 2);
    dcache_file_options o;
    dcache_file_options_init(&o);
    o.flags = DCACHE_FILE_CREATE;
    dcache_file *f = NULL;
    dcache_result rc = dcache_file_open(path, &o, &f);
    uint32_t direct = dcache_file_is_direct_io(f);
    if (rc == DCACHE_OK) {
        dcache_file_pwrite(f, (const uint8_t *)"x", 1, 0);
        dcache_file_close(f);
    }
    dcache_file_open(NULL, NULL, &f);   /* a failure: reported by code, not printed */
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    close(fo);
    close(fe);
    CHECK_RC(rc, DCACHE_OK);
    CHECK_EQ(direct, 0);
    CHECKF(file_size_plain(out_path) == 0, "nothing written to stdout (%lld bytes)",
           (long long)file_size_plain(out_path));
    CHECKF(file_size_plain(err_path) > 0, "the default callback wrote the warning to stderr");
}

TEST_MAIN(ramfs)
{
    (void)argc;
    (void)argv;
    tst_begin("ramfs");
    if (!tst_is_root())
        return tst_skip("not root: mounting ramfs needs root");
    char dir[4096];
    tst_path(dir, sizeof dir, "ramfs");
    if (!tst_mount_ramfs(dir))
        return tst_skip("mount -t ramfs failed");
    CHECKF(statfs_type(dir) == (long)0x858458f6, "%s is ramfs", dir);
    file_layer(dir);
    cache_layer(dir);
    default_log_goes_to_stderr(dir);
    return tst_finish();
}

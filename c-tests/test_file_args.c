/* Every file-layer function (and the shared ones: strerror, last_error_message, logging)
 * given NULLs, zero lengths and huge lengths: exact result codes, out-parameters untouched on
 * failure, never a crash. Huge lengths point at memory that ends at an inaccessible page, so
 * a library that read behind a length it should have refused would fault. */
#include "common.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#define SENTINEL_F ((dcache_file *)(uintptr_t)0xDEADBEE0)

static void results_and_strerror(void)
{
    const dcache_result codes[] = {
        DCACHE_OK, DCACHE_NOT_FOUND, DCACHE_BUFFER_TOO_SMALL, DCACHE_INVALID_ARGUMENT,
        DCACHE_TOO_LARGE, DCACHE_RANGE, DCACHE_IO_ERROR, DCACHE_NO_SPACE, DCACHE_NOT_A_CACHE,
        DCACHE_INCOMPATIBLE, DCACHE_LOCKED, DCACHE_UNSUPPORTED, DCACHE_READ_ONLY,
        DCACHE_OUT_OF_MEMORY, DCACHE_INTERNAL,
    };
    size_t n = sizeof codes / sizeof codes[0];
    CHECK_EQ(DCACHE_OK, 0);
    CHECK_EQ(sizeof(dcache_result), 4);
    for (size_t i = 0; i < n; i++) {
        const char *s = dcache_strerror(codes[i]);
        CHECKF(s && s[0], "strerror(%s) is non-empty text", rc_name(codes[i]));
        for (size_t j = 0; j < i; j++) {
            CHECKF(codes[i] != codes[j], "%s and %s are different numbers", rc_name(codes[i]),
                   rc_name(codes[j]));
            CHECKF(strcmp(s ? s : "", dcache_strerror(codes[j])) != 0,
                   "strerror(%s) differs from strerror(%s)", rc_name(codes[i]),
                   rc_name(codes[j]));
        }
    }
    const dcache_result odd[] = {9999, 15, 16, 100, 0x7FFFFFFF, 0x80000000u, UINT32_MAX};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        const char *s = dcache_strerror(odd[i]);
        CHECKF(s != NULL, "strerror(%u) is not NULL", odd[i]);
        if (s)
            CHECKF(strlen(s) < 1000, "strerror(%u) is a sane string", odd[i]);
    }
    for (uint32_t v = 0; v < 300; v++)
        CHECK(dcache_strerror(v) != NULL);
    /* static text: the same pointer content on a second call */
    CHECK(strcmp(dcache_strerror(DCACHE_NOT_FOUND), dcache_strerror(DCACHE_NOT_FOUND)) == 0);
}

static void *fresh_thread_message(void *arg)
{
    const char **out = arg;
    const char *m = dcache_last_error_message();
    out[0] = m && m[0] == 0 ? "empty" : "not empty";
    /* a failure here must not show in the main thread's message */
    dcache_file *f = NULL;
    dcache_file_open(NULL, NULL, &f);
    m = dcache_last_error_message();
    out[1] = m && m[0] ? "set" : "unset";
    return NULL;
}

static void last_error_is_per_thread(void)
{
    char missing[4096];
    tst_path(missing, sizeof missing, "no/such/dir/marker-main-thread");
    dcache_file_options o;
    dcache_file_options_init(&o);
    dcache_file *f = NULL;
    CHECK_RC(dcache_file_open(missing, &o, &f), DCACHE_IO_ERROR);
    char mine[1024];
    snprintf(mine, sizeof mine, "%s", dcache_last_error_message());
    CHECKF(strstr(mine, "marker-main-thread") != NULL, "message names the path: \"%s\"", mine);

    const char *res[2] = {NULL, NULL};
    pthread_t t;
    pthread_create(&t, NULL, fresh_thread_message, res);
    pthread_join(t, NULL);
    CHECKF(res[0] && strcmp(res[0], "empty") == 0,
           "a thread with no failure gets \"\" from dcache_last_error_message");
    CHECKF(res[1] && strcmp(res[1], "set") == 0, "the thread's own failure sets its message");
    const char *after = dcache_last_error_message();
    CHECKF(after && strcmp(after, mine) == 0,
           "another thread's failure does not change this thread's message (\"%s\")",
           after ? after : "(null)");
}

static void log_callback_args(void)
{
    /* installing and restoring; NULL restores the default */
    log_counts_t logs;
    log_capture_start(&logs);
    log_capture_stop();
    dcache_set_log_callback(NULL, NULL);
    dcache_set_log_callback(NULL, (void *)&logs);   /* userdata without fn: still default */
    dcache_set_log_callback(NULL, NULL);
    CHECK(1);
}

static void open_args(const char *path)
{
    dcache_file_options o;
    dcache_file_options_init(NULL);    /* must not crash */
    dcache_file_options_init(&o);
    CHECK_EQ(o.struct_size, sizeof o);
    CHECK_EQ(o.io_mode, DCACHE_IO_AUTO);
    CHECK_EQ(o.flags, 0);
    CHECK_EQ(o.alignment, 0);
    CHECK_EQ(o.min_io_size, 0);

    dcache_file *f = SENTINEL_F;
    o.flags = DCACHE_FILE_CREATE;
    CHECK_RC(dcache_file_open(NULL, &o, &f), DCACHE_INVALID_ARGUMENT);
    CHECK(f == SENTINEL_F);
    CHECK_RC(dcache_file_open(path, &o, NULL), DCACHE_INVALID_ARGUMENT);
    CHECK(!path_exists(path) || file_size_plain(path) == 0);

    uint32_t known = DCACHE_FILE_CREATE | DCACHE_FILE_TRUNCATE | DCACHE_FILE_READ_ONLY |
                     DCACHE_FILE_SYNC_WRITES;
    dcache_file_options_init(&o);
    o.flags = DCACHE_FILE_CREATE | unknown_flag_bit(known);
    CHECK_RC(dcache_file_open(path, &o, &f), DCACHE_INVALID_ARGUMENT);
    CHECK(f == SENTINEL_F);

    dcache_file_options_init(&o);
    o.flags = DCACHE_FILE_CREATE;
    o.io_mode = unknown_io_mode();
    CHECK_RC(dcache_file_open(path, &o, &f), DCACHE_INVALID_ARGUMENT);
    o.io_mode = UINT32_MAX;
    CHECK_RC(dcache_file_open(path, &o, &f), DCACHE_INVALID_ARGUMENT);
    CHECK(f == SENTINEL_F);

    const uint32_t bad_align[] = {1, 3, 256, 511, 513, 1000, 3000, 4095, 0x80000001u};
    for (size_t i = 0; i < sizeof bad_align / sizeof bad_align[0]; i++) {
        dcache_file_options_init(&o);
        o.flags = DCACHE_FILE_CREATE;
        o.alignment = bad_align[i];
        CHECKF(dcache_file_open(path, &o, &f) == DCACHE_INVALID_ARGUMENT,
               "alignment %u is refused with DCACHE_INVALID_ARGUMENT", bad_align[i]);
        CHECK(f == SENTINEL_F);
    }
    /* alignments that are powers of two >= 512 and multiples of what the file needs */
    const uint32_t good_align[] = {4096, 8192, 65536};
    for (size_t i = 0; i < sizeof good_align / sizeof good_align[0]; i++) {
        dcache_file_options_init(&o);
        o.flags = DCACHE_FILE_CREATE;
        o.alignment = good_align[i];
        f = NULL;
        if (CHECKF(dcache_file_open(path, &o, &f) == DCACHE_OK, "alignment %u accepted [%s]",
                   good_align[i], dcache_last_error_message())) {
            CHECK_EQ(dcache_file_alignment(f), good_align[i]);
            const uint8_t data[5] = {1, 2, 3, 4, 5};
            uint8_t back[5];
            size_t got = 0;
            CHECK_RC(dcache_file_pwrite(f, data, 5, 7), DCACHE_OK);
            CHECK_RC(dcache_file_pread(f, back, 5, 7, &got), DCACHE_OK);
            CHECK(got == 5 && memcmp(back, data, 5) == 0);
            CHECK_RC(dcache_file_close(f), DCACHE_OK);
        }
    }
    /* NULL options: the defaults (no CREATE), on an existing file */
    f = NULL;
    if (CHECK_RC(dcache_file_open(path, NULL, &f), DCACHE_OK))
        CHECK_RC(dcache_file_close(f), DCACHE_OK);
}

static void io_args(const char *path)
{
    dcache_file_options o;
    dcache_file_options_init(&o);
    o.flags = DCACHE_FILE_CREATE | DCACHE_FILE_TRUNCATE;
    dcache_file *f = NULL;
    if (!CHECK_RC(dcache_file_open(path, &o, &f), DCACHE_OK))
        return;
    uint8_t data[100];
    for (int i = 0; i < 100; i++)
        data[i] = (uint8_t)(i * 7 + 1);
    CHECK_RC(dcache_file_pwrite(f, data, 100, 0), DCACHE_OK);

    /* NULL handle */
    uint8_t buf[200];
    size_t got = 12345;
    uint64_t sz = 12345;
    CHECK_RC(dcache_file_pread(NULL, buf, 10, 0, &got), DCACHE_INVALID_ARGUMENT);
    CHECK_EQ(got, 12345);
    CHECK_RC(dcache_file_pwrite(NULL, data, 10, 0), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_file_size(NULL, &sz), DCACHE_INVALID_ARGUMENT);
    CHECK_EQ(sz, 12345);
    CHECK_RC(dcache_file_sync(NULL), DCACHE_INVALID_ARGUMENT);
    CHECK_EQ(dcache_file_is_direct_io(NULL), 0);
    CHECK_EQ(dcache_file_alignment(NULL), 0);
    CHECK_RC(dcache_file_close(NULL), DCACHE_OK);

    /* NULL buffers and out-pointers */
    CHECK_RC(dcache_file_pread(f, NULL, 10, 0, &got), DCACHE_INVALID_ARGUMENT);
    CHECK_EQ(got, 12345);
    CHECK_RC(dcache_file_pread(f, buf, 10, 0, NULL), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_file_pwrite(f, NULL, 10, 0), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_file_size(f, NULL), DCACHE_INVALID_ARGUMENT);

    /* (NULL, 0) and zero lengths: succeed and do nothing */
    CHECK_RC(dcache_file_pwrite(f, NULL, 0, 0), DCACHE_OK);
    CHECK_RC(dcache_file_pwrite(f, NULL, 0, 1000000), DCACHE_OK);
    CHECK_RC(dcache_file_pwrite(f, data, 0, 5000), DCACHE_OK);
    CHECK_RC(dcache_file_pwrite(f, data, 0, UINT64_MAX), DCACHE_OK);
    CHECK_RC(dcache_file_size(f, &sz), DCACHE_OK);
    CHECK_EQ(sz, 100);
    got = 12345;
    CHECK_RC(dcache_file_pread(f, NULL, 0, 0, &got), DCACHE_OK);
    CHECK_EQ(got, 0);
    got = 12345;
    CHECK_RC(dcache_file_pread(f, buf, 0, 50, &got), DCACHE_OK);
    CHECK_EQ(got, 0);
    got = 12345;
    CHECK_RC(dcache_file_pread(f, buf, 0, UINT64_MAX, &got), DCACHE_OK);
    CHECK_EQ(got, 0);

    /* reads at and past the end: 0 bytes, OK */
    got = 12345;
    CHECK_RC(dcache_file_pread(f, buf, 10, 100, &got), DCACHE_OK);
    CHECK_EQ(got, 0);
    got = 12345;
    CHECK_RC(dcache_file_pread(f, buf, 10, 1 * MiB, &got), DCACHE_OK);
    CHECK_EQ(got, 0);
    got = 12345;
    CHECK_RC(dcache_file_pread(f, buf, 200, 90, &got), DCACHE_OK);
    CHECK_EQ(got, 10);
    CHECK_MEM(buf, data + 90, 10, "short read at the end");

    /* huge lengths and offsets: refused or harmless, never a crash or a stray write */
    uint8_t *g = guarded_alloc(100);
    memcpy(g, data, 100);
    CHECK_RC_IN(dcache_file_pwrite(f, g, SIZE_MAX, 0), DCACHE_INVALID_ARGUMENT, DCACHE_TOO_LARGE);
    CHECK_RC_IN(dcache_file_pwrite(f, g, (size_t)PTRDIFF_MAX + 1, 0), DCACHE_INVALID_ARGUMENT,
                DCACHE_TOO_LARGE);
    /* offset + len past 2^64 */
    CHECK_RC_IN(dcache_file_pwrite(f, g, 10, UINT64_MAX - 5), DCACHE_INVALID_ARGUMENT,
                DCACHE_IO_ERROR, DCACHE_NO_SPACE);
    CHECK_RC_IN(dcache_file_pwrite(f, g, 1, UINT64_MAX), DCACHE_INVALID_ARGUMENT,
                DCACHE_IO_ERROR, DCACHE_NO_SPACE);
    /* past what an off_t or the file system can hold */
    CHECK_RC_IN(dcache_file_pwrite(f, g, 10, UINT64_C(1) << 63), DCACHE_INVALID_ARGUMENT,
                DCACHE_IO_ERROR, DCACHE_NO_SPACE);
    CHECK_RC_IN(dcache_file_pwrite(f, g, 10, UINT64_C(1) << 62), DCACHE_INVALID_ARGUMENT,
                DCACHE_IO_ERROR, DCACHE_NO_SPACE);
    {
        const char *m = dcache_last_error_message();
        CHECKF(m && m[0], "a refused huge write explains itself");
    }
    CHECK_RC(dcache_file_size(f, &sz), DCACHE_OK);
    CHECK_EQ(sz, 100);

    /* a huge read length into a buffer that really has room for what is there */
    uint8_t *rb = guarded_alloc(100);
    got = 12345;
    dcache_result rc = dcache_file_pread(f, rb, SIZE_MAX, 0, &got);
    CHECK_RC_IN(rc, DCACHE_OK, DCACHE_INVALID_ARGUMENT, DCACHE_TOO_LARGE);
    if (rc == DCACHE_OK) {
        CHECK_EQ(got, 100);
        CHECK_MEM(rb, data, 100, "read with a huge length");
    } else {
        CHECK_EQ(got, 12345);
    }
    got = 12345;
    rc = dcache_file_pread(f, rb, 10, UINT64_MAX - 5, &got);
    CHECK_RC_IN(rc, DCACHE_OK, DCACHE_INVALID_ARGUMENT);
    if (rc == DCACHE_OK)
        CHECK_EQ(got, 0);
    got = 12345;
    rc = dcache_file_pread(f, rb, 10, UINT64_MAX, &got);
    CHECK_RC_IN(rc, DCACHE_OK, DCACHE_INVALID_ARGUMENT);
    if (rc == DCACHE_OK)
        CHECK_EQ(got, 0);
    guarded_free(g, 100);
    guarded_free(rb, 100);

    CHECK_RC(dcache_file_close(f), DCACHE_OK);

    /* the file is exactly what was written */
    uint8_t *disk = NULL;
    size_t dlen = 0;
    if (CHECK(file_read_all_plain(path, &disk, &dlen))) {
        CHECK_EQ(dlen, 100);
        CHECK_MEM(disk, data, dlen < 100 ? dlen : 100, "file after the argument tests");
        free(disk);
    }
}

static void whole_file_args(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/whole.dat", dir);
    uint8_t *data = (uint8_t *)(uintptr_t)0x1111;
    size_t len = 4242;
    CHECK_RC(dcache_file_write_all(NULL, (const uint8_t *)"x", 1, NULL), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_file_write_all(path, NULL, 5, NULL), DCACHE_INVALID_ARGUMENT);
    CHECK(!path_exists(path));
    uint8_t *g = guarded_alloc(16);
    CHECK_RC_IN(dcache_file_write_all(path, g, SIZE_MAX, NULL), DCACHE_INVALID_ARGUMENT,
                DCACHE_TOO_LARGE);
    guarded_free(g, 16);
    CHECK(!path_exists(path));
    CHECK_RC(dcache_file_read_all(NULL, NULL, &data, &len), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_file_write_all(path, NULL, 0, NULL), DCACHE_OK);
    CHECK_EQ(file_size_plain(path), 0);
    CHECK_RC(dcache_file_read_all(path, NULL, NULL, &len), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_file_read_all(path, NULL, &data, NULL), DCACHE_INVALID_ARGUMENT);
    CHECK(data == (uint8_t *)(uintptr_t)0x1111);
    CHECK_EQ(len, 4242);
    dcache_file_options o;
    dcache_file_options_init(&o);
    o.io_mode = unknown_io_mode();
    CHECK_RC(dcache_file_write_all(path, (const uint8_t *)"x", 1, &o), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_file_read_all(path, &o, &data, &len), DCACHE_INVALID_ARGUMENT);
    CHECK_EQ(file_size_plain(path), 0);
    dcache_buffer_free(NULL, 0);
    dcache_buffer_free(NULL, 12345);
}

TEST_MAIN(file_args)
{
    (void)argc;
    (void)argv;
    tst_begin("file_args");
    char path[4096];
    tst_path(path, sizeof path, "args.dat");
    results_and_strerror();
    last_error_is_per_thread();
    log_callback_args();
    open_args(path);
    io_args(path);
    whole_file_args(tst_workdir());
    return tst_finish();
}

/* What the dcache_file_open flags do: a missing file without DCACHE_FILE_CREATE is
 * DCACHE_IO_ERROR naming the path; CREATE makes an empty file and keeps an existing one's
 * bytes; TRUNCATE empties it; READ_ONLY refuses pwrite with DCACHE_READ_ONLY and leaves the file
 * alone; SYNC_WRITES still writes the right bytes. */
#include "common.h"

static dcache_file *open_with(const char *path, uint32_t flags, dcache_result want)
{
    dcache_file_options o;
    dcache_file_options_init(&o);
    o.flags = flags;
    dcache_file *f = NULL;
    dcache_result rc = dcache_file_open(path, &o, &f);
    CHECKF(rc == want, "open(flags 0x%x) = %s, want %s [%s]", flags, rc_name(rc), rc_name(want),
           rc == DCACHE_OK ? "" : dcache_last_error_message());
    if (rc != DCACHE_OK)
        return NULL;
    return f;
}

TEST_MAIN(file_flags)
{
    (void)argc;
    (void)argv;
    tst_begin("file_flags");
    char path[4096];
    tst_path(path, sizeof path, "flags.dat");

    /* missing file */
    dcache_file *f = open_with(path, 0, DCACHE_IO_ERROR);
    const char *m = dcache_last_error_message();
    CHECKF(m && strstr(m, path), "the message names the path: \"%s\"", m ? m : "(null)");
    CHECK(!path_exists(path));
    f = open_with(path, DCACHE_FILE_TRUNCATE, DCACHE_IO_ERROR);
    f = open_with(path, DCACHE_FILE_READ_ONLY, DCACHE_IO_ERROR);
    CHECK(!path_exists(path));

    /* CREATE: an empty file */
    f = open_with(path, DCACHE_FILE_CREATE, DCACHE_OK);
    if (f) {
        uint64_t sz = 99;
        CHECK_RC(dcache_file_size(f, &sz), DCACHE_OK);
        CHECK_EQ(sz, 0);
        CHECK_RC(dcache_file_pwrite(f, (const uint8_t *)"hello, world", 12, 3), DCACHE_OK);
        CHECK_RC(dcache_file_close(f), DCACHE_OK);
    }
    const uint8_t want[15] = {0, 0, 0, 'h', 'e', 'l', 'l', 'o', ',', ' ', 'w', 'o', 'r', 'l', 'd'};
    uint8_t *disk = NULL;
    size_t dlen = 0;
    if (CHECK(file_read_all_plain(path, &disk, &dlen))) {
        CHECK_EQ(dlen, 15);
        CHECK_MEM(disk, want, dlen < 15 ? dlen : 15, "file after CREATE + pwrite at 3");
        free(disk);
    }

    /* CREATE on an existing file keeps it */
    f = open_with(path, DCACHE_FILE_CREATE, DCACHE_OK);
    if (f) {
        uint8_t buf[32];
        size_t got = 0;
        CHECK_RC(dcache_file_pread(f, buf, sizeof buf, 0, &got), DCACHE_OK);
        CHECK_EQ(got, 15);
        CHECK_MEM(buf, want, got < 15 ? got : 15, "CREATE kept the bytes");
        CHECK_RC(dcache_file_close(f), DCACHE_OK);
    }

    /* READ_ONLY: reads work, writes are refused and change nothing */
    f = open_with(path, DCACHE_FILE_READ_ONLY, DCACHE_OK);
    if (f) {
        uint8_t buf[32];
        size_t got = 0;
        CHECK_RC(dcache_file_pread(f, buf, 5, 3, &got), DCACHE_OK);
        CHECK(got == 5 && memcmp(buf, "hello", 5) == 0);
        CHECK_RC(dcache_file_pwrite(f, (const uint8_t *)"XX", 2, 0), DCACHE_READ_ONLY);
        CHECK_RC(dcache_file_pwrite(f, (const uint8_t *)"XX", 2, 100), DCACHE_READ_ONLY);
        uint64_t sz = 0;
        CHECK_RC(dcache_file_size(f, &sz), DCACHE_OK);
        CHECK_EQ(sz, 15);
        CHECK_RC(dcache_file_close(f), DCACHE_OK);
    }
    if (CHECK(file_read_all_plain(path, &disk, &dlen))) {
        CHECK_EQ(dlen, 15);
        CHECK_MEM(disk, want, dlen < 15 ? dlen : 15, "READ_ONLY left the file alone");
        free(disk);
    }

    /* TRUNCATE empties it */
    f = open_with(path, DCACHE_FILE_TRUNCATE, DCACHE_OK);
    if (f) {
        uint64_t sz = 99;
        CHECK_RC(dcache_file_size(f, &sz), DCACHE_OK);
        CHECK_EQ(sz, 0);
        CHECK_RC(dcache_file_close(f), DCACHE_OK);
    }
    CHECK_EQ(file_size_plain(path), 0);

    /* SYNC_WRITES: the same bytes, durable at return */
    f = open_with(path, DCACHE_FILE_SYNC_WRITES | DCACHE_FILE_CREATE, DCACHE_OK);
    if (f) {
        uint8_t data[10000];
        rng_t r;
        rng_seed(&r, tst_seed());
        rng_fill(&r, data, sizeof data);
        for (int i = 0; i < 10; i++)
            CHECK_RC(dcache_file_pwrite(f, data + i * 1000, 1000, 5 + (uint64_t)i * 1000),
                     DCACHE_OK);
        CHECK_RC(dcache_file_close(f), DCACHE_OK);
        if (CHECK(file_read_all_plain(path, &disk, &dlen))) {
            CHECK_EQ(dlen, 10005);
            if (dlen == 10005) {
                CHECK(disk[0] == 0 && disk[4] == 0);
                CHECK_MEM(disk + 5, data, 10000, "SYNC_WRITES bytes");
            }
            free(disk);
        }
    }
    return tst_finish();
}

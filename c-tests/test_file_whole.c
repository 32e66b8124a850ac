/* dcache_file_write_all / dcache_file_read_all: round trips of 0, 1, 4097 bytes and 3 MiB
 * (checked with ordinary reads too), atomic replace of an existing file (a reader holding the
 * old file keeps seeing the old bytes, the new file has exactly the new bytes and size, no
 * temporary file is left behind), read_all of a missing file (DCACHE_IO_ERROR, a message
 * naming the path, out-parameters untouched), and dcache_buffer_free(NULL, 0). */
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

static int count_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void round_trip(const char *path, size_t len, const dcache_file_options *opts,
                       const char *mode)
{
    uint8_t *data = malloc(len ? len : 1);
    rng_t r;
    rng_seed(&r, tst_seed() ^ len);
    rng_fill(&r, data, len);
    if (!CHECKF(dcache_file_write_all(path, len ? data : NULL, len, opts) == DCACHE_OK,
                "write_all(%zu bytes, %s) [%s]", len, mode, dcache_last_error_message())) {
        free(data);
        return;
    }
    CHECKF(file_size_plain(path) == (int64_t)len, "size on disk after write_all(%zu, %s) is %lld",
           len, mode, (long long)file_size_plain(path));
    uint8_t *disk = NULL;
    size_t dlen = 0;
    if (CHECK(file_read_all_plain(path, &disk, &dlen))) {
        CHECK_EQ(dlen, len);
        CHECK_MEM(disk, data, dlen < len ? dlen : len, "ordinary read after write_all");
        free(disk);
    }
    uint8_t *back = NULL;
    size_t blen = 999;
    if (CHECKF(dcache_file_read_all(path, opts, &back, &blen) == DCACHE_OK,
               "read_all(%zu bytes, %s) [%s]", len, mode, dcache_last_error_message())) {
        CHECK_EQ(blen, len);
        CHECK(len == 0 || back != NULL);
        if (back && blen == len)
            CHECK_MEM(back, data, len, "read_all = what write_all wrote");
        dcache_buffer_free(back, blen);
    }
    free(data);
}

static void atomic_replace(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/replace.dat", dir);
    size_t old_len = 2 * MiB + 123, new_len = 100 * KiB + 7;
    uint8_t *old_data = malloc(old_len), *new_data = malloc(new_len);
    rng_t r;
    rng_seed(&r, tst_seed() + 1);
    rng_fill(&r, old_data, old_len);
    rng_fill(&r, new_data, new_len);
    if (!file_write_plain(path, old_data, old_len))
        tst_die("cannot write %s", path);
    int before = count_dir_entries(dir);
    int fd = open(path, O_RDONLY);   /* a reader of the old version */
    CHECK_RC(dcache_file_write_all(path, new_data, new_len, NULL), DCACHE_OK);
    CHECK_EQ(file_size_plain(path), new_len);
    uint8_t *disk = NULL;
    size_t dlen = 0;
    if (CHECK(file_read_all_plain(path, &disk, &dlen))) {
        CHECK_EQ(dlen, new_len);
        CHECK_MEM(disk, new_data, dlen < new_len ? dlen : new_len, "replaced file = new bytes");
        free(disk);
    }
    /* the reader still sees the whole old file: the new one was renamed over it */
    uint8_t *seen = malloc(old_len);
    size_t got = 0;
    ssize_t n;
    while (fd >= 0 && got < old_len && (n = pread(fd, seen + got, old_len - got, (off_t)got)) > 0)
        got += (size_t)n;
    CHECKF(got == old_len, "the old file's reader read %zu of %zu bytes", got, old_len);
    CHECK_MEM(seen, old_data, got < old_len ? got : old_len, "old reader sees old bytes");
    if (fd >= 0)
        close(fd);
    CHECKF(count_dir_entries(dir) == before, "no temporary file left (%d entries, was %d)",
           count_dir_entries(dir), before);
    /* replacing with a bigger file and with an empty one */
    CHECK_RC(dcache_file_write_all(path, old_data, old_len, NULL), DCACHE_OK);
    CHECK_EQ(file_size_plain(path), old_len);
    CHECK_RC(dcache_file_write_all(path, NULL, 0, NULL), DCACHE_OK);
    CHECK_EQ(file_size_plain(path), 0);
    CHECKF(count_dir_entries(dir) == before, "no temporary file left");
    free(seen);
    free(old_data);
    free(new_data);
}

static void missing(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/does-not-exist-7f3a9.dat", dir);
    uint8_t *data = (uint8_t *)(uintptr_t)0x5555;
    size_t len = 777;
    CHECK_RC(dcache_file_read_all(path, NULL, &data, &len), DCACHE_IO_ERROR);
    const char *m = dcache_last_error_message();
    CHECKF(m && strstr(m, path) != NULL, "message contains the path: \"%s\"", m ? m : "(null)");
    CHECK(data == (uint8_t *)(uintptr_t)0x5555);
    CHECK_EQ(len, 777);
    /* a write into a directory that does not exist */
    snprintf(path, sizeof path, "%s/no-such-dir/x.dat", dir);
    CHECK_RC(dcache_file_write_all(path, (const uint8_t *)"abc", 3, NULL), DCACHE_IO_ERROR);
    m = dcache_last_error_message();
    CHECKF(m && m[0], "write_all into a missing directory explains itself");
}

TEST_MAIN(file_whole)
{
    (void)argc;
    (void)argv;
    tst_begin("file_whole");
    const char *dir = tst_workdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/whole.dat", dir);
    const size_t sizes[] = {0, 1, 4097, 3 * MiB, 4096, 511, 3 * MiB + 1};
    dcache_file_options direct;
    dcache_file_options_init(&direct);
    direct.io_mode = DCACHE_IO_DIRECT;
    dcache_file_options buffered;
    dcache_file_options_init(&buffered);
    buffered.io_mode = DCACHE_IO_BUFFERED;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        round_trip(path, sizes[i], NULL, "defaults");
        round_trip(path, sizes[i], &direct, "DIRECT");
        round_trip(path, sizes[i], &buffered, "BUFFERED");
    }
    atomic_replace(dir);
    missing(dir);
    dcache_buffer_free(NULL, 0);
    CHECK(1);
    return tst_finish();
}

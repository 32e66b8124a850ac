/* The direct-I/O file layer against an in-memory mirror: thousands of random unaligned
 * pwrite/pread calls (offsets and lengths up to a few hundred KiB, buffers at odd addresses),
 * then the bytes and the exact size are checked with ordinary open/read/fstat.
 *
 * Passes: AUTO on the working tree's ext4 (must be direct: is_direct_io()==1, alignment a
 * power of two >= 512, and no page of the file left in the page cache), DIRECT, BUFFERED,
 * and AUTO with min_io_size (small transfers through the page cache, large ones direct, on
 * the same file: the two must stay coherent). */
#include "common.h"

#include <fcntl.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_SPAN (6 * MiB)

struct pass {
    const char *name;
    uint32_t io_mode;
    uint64_t min_io_size;
    int ops;
    size_t max_len;
    int expect_direct; /* 1, 0, or -1 = either */
    bool expect_no_page_cache;
};

static uint64_t pick_offset(rng_t *r, uint64_t align, uint64_t size, size_t len)
{
    uint64_t off;
    switch (rng_below(r, 6)) {
    case 0: off = rng_below(r, FILE_SPAN / align) * align; break;          /* aligned */
    case 1: off = rng_below(r, FILE_SPAN / align) * align + align - 1; break;
    case 2: off = size > 16 ? size - rng_below(r, 16) : 0; break;          /* near the end */
    case 3: off = size + rng_below(r, 3 * align); break;                   /* past the end */
    default: off = rng_below(r, FILE_SPAN); break;
    }
    if (off + len > FILE_SPAN + 512 * KiB)
        off = FILE_SPAN + 512 * KiB - len;
    return off;
}

static size_t pick_len(rng_t *r, uint64_t align, size_t max_len)
{
    switch (rng_below(r, 8)) {
    case 0: return 0;
    case 1: return (size_t)rng_range(r, 1, 100);
    case 2: return (size_t)align - 1 + rng_below(r, 3);                      /* align-1..align+1 */
    case 3: return (size_t)(align * rng_range(r, 1, 8));
    case 4: return (size_t)rng_range(r, 1, 3 * align);
    default: return (size_t)rng_range(r, 1, max_len);
    }
}

/* pages of path resident in the page cache */
static long resident_pages(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    struct stat st;
    fstat(fd, &st);
    if (st.st_size == 0) {
        close(fd);
        return 0;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return -1;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t n = ((size_t)st.st_size + page - 1) / page;
    unsigned char *vec = malloc(n);
    long res = 0;
    if (mincore(m, (size_t)st.st_size, vec) == 0) {
        for (size_t i = 0; i < n; i++)
            res += vec[i] & 1;
    } else {
        res = -1;
    }
    free(vec);
    munmap(m, (size_t)st.st_size);
    return res;
}

static void run_pass(rng_t *r, const struct pass *p)
{
    tst_note("pass %s: %d ops", p->name, p->ops);
    char path[4096];
    char fname[64];
    snprintf(fname, sizeof fname, "random-%s.dat", p->name);
    tst_path(path, sizeof path, fname);

    dcache_file_options o;
    dcache_file_options_init(&o);
    CHECK_EQ(o.struct_size, sizeof o);
    o.io_mode = p->io_mode;
    o.flags = DCACHE_FILE_CREATE | DCACHE_FILE_TRUNCATE;
    o.min_io_size = p->min_io_size;
    dcache_file *f = NULL;
    if (!CHECK_RC(dcache_file_open(path, &o, &f), DCACHE_OK))
        return;
    CHECK(f != NULL);
    if (p->expect_direct >= 0)
        CHECK_EQ(dcache_file_is_direct_io(f), (uint32_t)p->expect_direct);
    uint64_t align = dcache_file_alignment(f);
    CHECKF(is_pow2_u64(align) && align >= 512, "alignment %llu is a power of two >= 512",
           (unsigned long long)align);
    if (!is_pow2_u64(align) || align < 512)
        align = 512;

    size_t mirror_cap = FILE_SPAN + 1 * MiB;
    uint8_t *mirror = calloc(mirror_cap, 1);
    uint8_t *src = malloc(p->max_len + 4 * align + 64);
    uint8_t *dst = malloc(p->max_len + 4 * align + 64);
    uint64_t size = 0;
    uint64_t sz = 0;
    CHECK_RC(dcache_file_size(f, &sz), DCACHE_OK);
    CHECK_EQ(sz, 0);

    unsigned long fails_before = tst_failures();
    for (int i = 0; i < p->ops && tst_failures() - fails_before < 10; i++) {
        unsigned op = (unsigned)rng_below(r, 100);
        size_t len = pick_len(r, align, p->max_len);
        uint64_t off = pick_offset(r, align, size, len);
        size_t shift = (size_t)rng_below(r, 64);    /* buffers at odd addresses */
        if (op < 55) {
            uint8_t *b = src + shift;
            rng_fill(r, b, len);
            if (!CHECKF(dcache_file_pwrite(f, b, len, off) == DCACHE_OK,
                        "op %d: pwrite(len %zu, off %llu) ok [%s]", i, len,
                        (unsigned long long)off, dcache_last_error_message()))
                continue;
            if (len) {
                memcpy(mirror + off, b, len);
                if (off + len > size)
                    size = off + len;
            }
        } else if (op < 95) {
            uint8_t *b = dst + shift;
            size_t got = (size_t)-1;
            dcache_result rc = dcache_file_pread(f, b, len, off, &got);
            if (!CHECKF(rc == DCACHE_OK, "op %d: pread(len %zu, off %llu) = %s [%s]", i, len,
                        (unsigned long long)off, rc_name(rc), dcache_last_error_message()))
                continue;
            size_t want = off >= size ? 0 : (size_t)(size - off < len ? size - off : len);
            if (CHECKF(got == want, "op %d: pread(len %zu, off %llu) read %zu, want %zu (size %llu)",
                       i, len, (unsigned long long)off, got, want, (unsigned long long)size))
                CHECK_MEM(b, mirror + off, want, "pread bytes = mirror");
        } else if (op < 98) {
            CHECK_RC(dcache_file_size(f, &sz), DCACHE_OK);
            CHECK_EQ(sz, size);
        } else {
            CHECK_RC(dcache_file_sync(f), DCACHE_OK);
        }
    }
    CHECK_RC(dcache_file_size(f, &sz), DCACHE_OK);
    CHECK_EQ(sz, size);
    CHECK_RC(dcache_file_sync(f), DCACHE_OK);
    CHECK_RC(dcache_file_close(f), DCACHE_OK);

    /* Under valgrind the measurement itself pollutes: valgrind reads the start of every file
     * a program maps (looking for ELF headers), and readahead brings in pages. The
     * sanitizer build of this test makes the check. */
    if (p->expect_no_page_cache && RUNNING_ON_VALGRIND) {
        printf("SKIP: %s: page-cache residency is not measurable under valgrind (it reads "
               "mapped files); the sanitizer run checks it\n", p->name);
    } else if (p->expect_no_page_cache) {
        long res = resident_pages(path);
        CHECKF(res == 0, "%s: %ld pages of the file are in the page cache after direct I/O only",
               p->name, res);
    }

    /* the file, read the ordinary way */
    int fd = open(path, O_RDONLY);
    struct stat st;
    memset(&st, 0, sizeof st);
    CHECK(fd >= 0 && fstat(fd, &st) == 0);
    if (fd >= 0)
        close(fd);
    CHECK_EQ(st.st_size, size);
    uint8_t *disk = NULL;
    size_t disk_len = 0;
    if (CHECK(file_read_all_plain(path, &disk, &disk_len))) {
        CHECK_EQ(disk_len, size);
        CHECK_MEM(disk, mirror, disk_len < size ? disk_len : size, "file on disk = mirror");
        free(disk);
    }

    /* and through the library again, as one large unaligned read */
    dcache_file_options_init(&o);
    o.io_mode = p->io_mode;
    o.flags = DCACHE_FILE_READ_ONLY;
    f = NULL;
    if (CHECK_RC(dcache_file_open(path, &o, &f), DCACHE_OK)) {
        uint8_t *all = malloc(size + 100);
        size_t got = 0;
        CHECK_RC(dcache_file_pread(f, all + 3, size + 50, 0, &got), DCACHE_OK);
        CHECK_EQ(got, size);
        CHECK_MEM(all + 3, mirror, got < size ? got : size, "reopened pread = mirror");
        free(all);
        CHECK_RC(dcache_file_close(f), DCACHE_OK);
    }
    free(mirror);
    free(src);
    free(dst);
}

TEST_MAIN(file_random)
{
    (void)argc;
    (void)argv;
    tst_begin("file_random");
    rng_t r;
    rng_seed(&r, tst_seed());
    int scale = tst_quick() ? 10 : 1;
    const struct pass passes[] = {
        {"auto", DCACHE_IO_AUTO, 0, 3000 / scale, 300 * KiB, 1, true},
        {"direct", DCACHE_IO_DIRECT, 0, 1500 / scale, 300 * KiB, 1, true},
        {"buffered", DCACHE_IO_BUFFERED, 0, 800 / scale, 300 * KiB, 0, false},
        {"auto-min-io", DCACHE_IO_AUTO, 16 * KiB, 2000 / scale, 100 * KiB, 1, false},
    };
    for (size_t i = 0; i < sizeof passes / sizeof passes[0]; i++)
        run_pass(&r, &passes[i]);
    return tst_finish();
}

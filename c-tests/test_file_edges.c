/* The direct-I/O file layer at its edges, deterministically: every combination of
 *   buffer address: page-aligned, +1, +16 bytes;
 *   file offset:    0, 1, a-1, a, 3a+17   (a = the file's alignment);
 *   length:         1, a-1, a, a+1, 2a, and around the sizes where an implementation switches
 *                   strategy (256 KiB, 1 MiB, 4 MiB, 8 MiB: one less, exact, one more);
 * written with pwrite and read back with pread (at the same and at another address), against a
 * mirror; then the whole file is compared with ordinary reads. A page-aligned buffer at an
 * aligned offset with a length that is not a multiple of the alignment is the case the
 * random test hits only by luck of malloc. */
#include "common.h"

#include <sys/stat.h>

#define SPAN (12 * MiB)

TEST_MAIN(file_edges)
{
    (void)argc;
    (void)argv;
    tst_begin("file_edges");
    rng_t r;
    rng_seed(&r, tst_seed());
    char path[4096];
    tst_path(path, sizeof path, "edges.dat");
    dcache_file_options o;
    dcache_file_options_init(&o);
    o.flags = DCACHE_FILE_CREATE | DCACHE_FILE_TRUNCATE;
    dcache_file *f = NULL;
    if (!CHECK_RC(dcache_file_open(path, &o, &f), DCACHE_OK))
        return tst_finish();
    CHECK_EQ(dcache_file_is_direct_io(f), 1);
    size_t a = dcache_file_alignment(f);
    if (!CHECKF(is_pow2_u64(a) && a >= 512, "alignment %zu", a))
        a = 512;

    const size_t mem_offs[] = {0, 1, 16};
    const uint64_t file_offs[] = {0, 1, a - 1, a, 3 * a + 17};
    const size_t lens[] = {1, a - 1, a, a + 1, 2 * a,
                           256 * KiB - 1, 256 * KiB, 256 * KiB + 1,
                           MiB - 1, MiB, MiB + 1,
                           4 * MiB - 1, 4 * MiB + 1, 4 * MiB + a,
                           8 * MiB + 3};
    size_t nlens = sizeof lens / sizeof lens[0];
    if (tst_quick())
        nlens = 11;
    uint8_t *mirror = calloc(SPAN, 1);
    uint8_t *wbuf = NULL, *rbuf = NULL;
    if (posix_memalign((void **)&wbuf, 4096, 9 * MiB + 8192) != 0 ||
        posix_memalign((void **)&rbuf, 4096, 9 * MiB + 8192) != 0)
        tst_die("posix_memalign");
    uint64_t size = 0;
    unsigned long f0 = tst_failures();
    for (size_t li = 0; li < nlens; li++) {
        for (size_t fi = 0; fi < sizeof file_offs / sizeof file_offs[0]; fi++) {
            for (size_t mi = 0; mi < sizeof mem_offs / sizeof mem_offs[0]; mi++) {
                if (tst_failures() - f0 > 20)
                    goto done;
                size_t len = lens[li];
                uint64_t off = file_offs[fi];
                uint8_t *w = wbuf + mem_offs[mi];
                rng_fill(&r, w, len);
                dcache_result rc = dcache_file_pwrite(f, w, len, off);
                if (!CHECKF(rc == DCACHE_OK, "pwrite(mem +%zu, off %llu, len %zu) = %s",
                            mem_offs[mi], (unsigned long long)off, len, rc_name(rc)))
                    continue;
                memcpy(mirror + off, w, len);
                if (off + len > size)
                    size = off + len;
                for (int pass = 0; pass < 2; pass++) {
                    size_t ro = pass == 0 ? mem_offs[mi] : mem_offs[(mi + 1) % 3];
                    uint8_t *rb = rbuf + ro;
                    size_t got = 0;
                    rc = dcache_file_pread(f, rb, len, off, &got);
                    if (!CHECKF(rc == DCACHE_OK && got == len,
                                "pread(mem +%zu, off %llu, len %zu) = %s, %zu bytes", ro,
                                (unsigned long long)off, len, rc_name(rc), got))
                        continue;
                    CHECK_MEM(rb, mirror + off, len, "pread after pwrite");
                }
            }
        }
    }
done:;
    uint64_t sz = 0;
    CHECK_RC(dcache_file_size(f, &sz), DCACHE_OK);
    CHECK_EQ(sz, size);
    /* the whole file in one read, from an aligned buffer, at an odd length */
    size_t got = 0;
    CHECK_RC(dcache_file_pread(f, rbuf, (size_t)size + 5, 0, &got), DCACHE_OK);
    CHECK_EQ(got, size);
    CHECK_MEM(rbuf, mirror, got < size ? got : size, "whole file through the library");
    CHECK_RC(dcache_file_close(f), DCACHE_OK);
    CHECK_EQ(file_size_plain(path), size);
    uint8_t *disk = NULL;
    size_t dlen = 0;
    if (CHECK(file_read_all_plain(path, &disk, &dlen))) {
        CHECK_EQ(dlen, size);
        CHECK_MEM(disk, mirror, dlen < size ? dlen : size, "file on disk = mirror");
        free(disk);
    }
    free(mirror);
    free(wbuf);
    free(rbuf);
    return tst_finish();
}

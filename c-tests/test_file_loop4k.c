/* The file layer on a raw 4Kn block device (root only): a 64 MiB image attached with
 * `losetup --sector-size 4096`. dcache_file_alignment() must be 4096 (asked of the device,
 * not assumed), dcache_file_size() the device size, and unaligned pwrite/pread must match a
 * mirror, checked again with ordinary reads of the device. The loop device is detached in
 * every path (cleanup handler, signals, exit). */
#include "common.h"

#include <fcntl.h>
#include <unistd.h>

#define DEV_SIZE (64 * MiB)

TEST_MAIN(file_loop4k)
{
    (void)argc;
    (void)argv;
    tst_begin("file_loop4k");
    if (!tst_is_root())
        return tst_skip("not root: losetup needs root");
    char dev[256];
    if (!tst_loop_image("disk4k.img", DEV_SIZE, 4096, dev, sizeof dev))
        return tst_skip("losetup --sector-size 4096 failed (no loop devices here?)");
    tst_note("device %s", dev);
    CHECK_EQ(blockdev_size(dev), DEV_SIZE);

    dcache_file_options o;
    dcache_file_options_init(&o);
    o.io_mode = DCACHE_IO_AUTO;
    dcache_file *f = NULL;
    if (!CHECK_RC(dcache_file_open(dev, &o, &f), DCACHE_OK))
        return tst_finish();
    CHECK_EQ(dcache_file_alignment(f), 4096);
    CHECK_EQ(dcache_file_is_direct_io(f), 1);
    uint64_t sz = 0;
    CHECK_RC(dcache_file_size(f, &sz), DCACHE_OK);
    CHECK_EQ(sz, DEV_SIZE);

    rng_t r;
    rng_seed(&r, tst_seed());
    uint8_t *mirror = calloc(DEV_SIZE, 1);
    uint8_t *buf = malloc(512 * KiB + 64);
    int ops = tst_quick() ? 300 : 3000;
    unsigned long fails0 = tst_failures();
    for (int i = 0; i < ops && tst_failures() - fails0 < 10; i++) {
        size_t len;
        switch (rng_below(&r, 4)) {
        case 0: len = (size_t)rng_range(&r, 1, 600); break;
        case 1: len = 4096 * (size_t)rng_range(&r, 1, 4) + (size_t)rng_range(&r, 0, 2) - 1; break;
        default: len = (size_t)rng_range(&r, 0, 400 * KiB); break;
        }
        uint64_t off = rng_below(&r, DEV_SIZE - len + 1);
        if (rng_below(&r, 4) == 0)
            off = (off / 4096) * 4096 + (rng_below(&r, 2) ? 4095 : 512);
        if (off + len > DEV_SIZE)
            off = DEV_SIZE - len;
        uint8_t *b = buf + rng_below(&r, 64);
        if (rng_below(&r, 2)) {
            rng_fill(&r, b, len);
            CHECKF(dcache_file_pwrite(f, b, len, off) == DCACHE_OK, "pwrite(%zu @ %llu) [%s]",
                   len, (unsigned long long)off, dcache_last_error_message());
            memcpy(mirror + off, b, len);
        } else {
            size_t got = 0;
            CHECK_RC(dcache_file_pread(f, b, len, off, &got), DCACHE_OK);
            CHECK_EQ(got, len);
            CHECK_MEM(b, mirror + off, got < len ? got : len, "device pread = mirror");
        }
    }
    /* the last bytes of the device, and reads at and past its end */
    memset(buf, 0x5A, 10);
    CHECK_RC(dcache_file_pwrite(f, buf, 10, DEV_SIZE - 10), DCACHE_OK);
    memset(mirror + DEV_SIZE - 10, 0x5A, 10);
    size_t got = 99;
    CHECK_RC(dcache_file_pread(f, buf, 100, DEV_SIZE - 10, &got), DCACHE_OK);
    CHECK_EQ(got, 10);
    CHECK_MEM(buf, mirror + DEV_SIZE - 10, 10, "last 10 bytes");
    got = 99;
    CHECK_RC(dcache_file_pread(f, buf, 100, DEV_SIZE, &got), DCACHE_OK);
    CHECK_EQ(got, 0);
    CHECK_RC(dcache_file_size(f, &sz), DCACHE_OK);
    CHECK_EQ(sz, DEV_SIZE);
    CHECK_RC(dcache_file_sync(f), DCACHE_OK);
    CHECK_RC(dcache_file_close(f), DCACHE_OK);

    /* the device read the ordinary way */
    uint8_t *disk = NULL;
    size_t dlen = 0;
    if (CHECK(file_read_all_plain(dev, &disk, &dlen))) {
        CHECK_EQ(dlen, DEV_SIZE);
        CHECK_MEM(disk, mirror, dlen < DEV_SIZE ? dlen : DEV_SIZE, "device content = mirror");
        free(disk);
    }
    free(mirror);
    free(buf);
    return tst_finish();
}

/* The cache on a raw 4Kn block device (root only): a 64 MiB loop device with 4096-byte
 * sectors. DCACHE_OPEN_CREATE alone does not format a device (DCACHE_NOT_A_CACHE, device
 * untouched); DCACHE_OPEN_FORMAT with capacity 0 takes the device's size; dcache_alignment()
 * is 4096 and direct I/O is in effect; values of awkward sizes round-trip, also after a reopen
 * and through range reads. A read-only device: opening it writable is DCACHE_READ_ONLY,
 * read-only works. A device turned read-only under an open cache: the flush fails (never
 * claims durability), reads of what is there keep working, nothing crashes. */
#include "common.h"

#include <fcntl.h>
#include <unistd.h>

#define DEV_SIZE (64 * MiB)
#define NV 400

static size_t vlen_of(int i)
{
    static const size_t special[] = {0, 1, 511, 512, 513, 4095, 4096, 4097, 8191, 65537, 300000};
    if (i < (int)(sizeof special / sizeof special[0]))
        return special[i];
    return (size_t)((uint64_t)i * 7919 % 60000);
}

static void put_all(dcache *c, int from, int to, uint64_t ver, bool may_fail)
{
    uint8_t *v = malloc(300000);
    for (int i = from; i < to; i++) {
        uint8_t k[20];
        key_make(k, (uint64_t)i, sizeof k);
        val_fill(v, vlen_of(i), k, sizeof k, ver);
        dcache_result rc = dcache_put(c, k, sizeof k, v, vlen_of(i), 0);
        if (may_fail)
            CHECK_RC_IN(rc, DCACHE_OK, DCACHE_IO_ERROR, DCACHE_READ_ONLY);
        else
            CHECKF(rc == DCACHE_OK, "put %d = %s [%s]", i, rc_name(rc),
                   dcache_last_error_message());
    }
    free(v);
}

static int check_all(dcache *c, int from, int to, uint64_t ver, const char *when)
{
    uint8_t *v = malloc(300000 + 64);
    int bad = 0;
    for (int i = from; i < to; i++) {
        uint8_t k[20];
        size_t n = 0;
        key_make(k, (uint64_t)i, sizeof k);
        dcache_result rc = dcache_get(c, k, sizeof k, v + 3, 300000, &n);
        if (rc != DCACHE_OK || n != vlen_of(i) || !val_check(v + 3, n, k, sizeof k, ver))
            bad++;
        if (vlen_of(i) > 5000) {
            size_t m = 0;
            uint8_t exp[4100];
            rc = dcache_get_range(c, k, sizeof k, 4095, v + 1, 4098, &m);
            val_slice(exp, vlen_of(i), 4095, 4098 < vlen_of(i) - 4095 ? 4098 : vlen_of(i) - 4095,
                      k, sizeof k, ver);
            if (rc != DCACHE_OK || m != (4098 < vlen_of(i) - 4095 ? 4098 : vlen_of(i) - 4095) ||
                memcmp(v + 1, exp, m) != 0)
                bad++;
        }
    }
    free(v);
    CHECKF(bad == 0, "%s: %d of %d values wrong or missing", when, bad, to - from);
    return bad;
}

static int run(const char *cmd)
{
    int st = system(cmd);
    return st;
}

TEST_MAIN(cache_loop4k)
{
    (void)argc;
    (void)argv;
    tst_begin("cache_loop4k");
    if (!tst_is_root())
        return tst_skip("not root: losetup needs root");
    char dev[256], cmd[512];
    if (!tst_loop_image("cache4k.img", DEV_SIZE, 4096, dev, sizeof dev))
        return tst_skip("losetup --sector-size 4096 failed (no loop devices here?)");
    tst_note("device %s", dev);

    /* CREATE alone never formats a device */
    uint64_t h0 = 0, h1 = 1;
    file_hash(dev, &h0, NULL, NULL);
    dcache_options o;
    cache_opts(&o, 0, DCACHE_OPEN_CREATE);
    dcache *c = (dcache *)(uintptr_t)0x99;
    CHECK_RC(dcache_open(dev, &o, &c), DCACHE_NOT_A_CACHE);
    CHECK_RC(dcache_open(dev, NULL, &c), DCACHE_NOT_A_CACHE);
    CHECK(c == (dcache *)(uintptr_t)0x99);
    file_hash(dev, &h1, NULL, NULL);
    CHECKF(h0 == h1, "the device is untouched by refused opens");

    /* FORMAT, capacity 0 = the device */
    cache_opts(&o, 0, DCACHE_OPEN_FORMAT);
    c = NULL;
    if (!CHECK_RC(dcache_open(dev, &o, &c), DCACHE_OK))
        return tst_finish();
    CHECK_EQ(dcache_alignment(c), 4096);
    CHECK_EQ(dcache_is_direct_io(c), 1);
    dcache_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RC(dcache_get_stats(c, &st), DCACHE_OK);
    CHECK_EQ(st.capacity, DEV_SIZE);
    CHECK_EQ(st.alignment, 4096);
    put_all(c, 0, NV, 1, false);
    check_all(c, 0, NV, 1, "before close");
    CHECK_RC(dcache_close(c), DCACHE_OK);

    c = NULL;
    if (CHECK_RC(dcache_open(dev, NULL, &c), DCACHE_OK)) {
        CHECK_EQ(dcache_alignment(c), 4096);
        check_all(c, 0, NV, 1, "after reopen");
        CHECK_RC(dcache_close(c), DCACHE_OK);
    }

    /* a read-only device */
    snprintf(cmd, sizeof cmd, "blockdev --setro %s", dev);
    if (run(cmd) == 0) {
        c = (dcache *)(uintptr_t)0x99;
        CHECK_RC(dcache_open(dev, NULL, &c), DCACHE_READ_ONLY);
        CHECK(c == (dcache *)(uintptr_t)0x99);
        cache_opts(&o, 0, DCACHE_OPEN_READ_ONLY);
        c = NULL;
        if (CHECK_RC(dcache_open(dev, &o, &c), DCACHE_OK)) {
            check_all(c, 0, NV, 1, "read-only device");
            CHECK_RC(dcache_close(c), DCACHE_OK);
        }
        snprintf(cmd, sizeof cmd, "blockdev --setrw %s", dev);
        CHECK(run(cmd) == 0);
    } else {
        tst_note("blockdev --setro failed: read-only part skipped");
    }

    /* turned read-only under an open cache */
    c = NULL;
    if (CHECK_RC(dcache_open(dev, NULL, &c), DCACHE_OK)) {
        snprintf(cmd, sizeof cmd, "blockdev --setro %s", dev);
        if (run(cmd) == 0) {
            put_all(c, NV, NV + 50, 1, true);   /* may succeed into memory, or fail */
            dcache_result rc = dcache_flush(c);
            CHECKF(rc != DCACHE_OK, "flush on a device turned read-only = %s: must not claim "
                   "durability", rc_name(rc));
            CHECK_RC_IN(rc, DCACHE_IO_ERROR, DCACHE_READ_ONLY);
            check_all(c, 0, NV, 1, "reads after the device turned read-only");
            memset(&st, 0, sizeof st);
            st.struct_size = sizeof st;
            CHECK_RC(dcache_get_stats(c, &st), DCACHE_OK);
            CHECKF(st.io_errors > 0, "stats.io_errors %llu > 0", (unsigned long long)st.io_errors);
            snprintf(cmd, sizeof cmd, "blockdev --setrw %s", dev);
            CHECK(run(cmd) == 0);
        }
        dcache_close(c);   /* whatever it returns */
        c = NULL;
        if (CHECK_RC(dcache_open(dev, NULL, &c), DCACHE_OK)) {
            check_all(c, 0, NV, 1, "reopen after the read-only episode");
            CHECK_RC(dcache_close(c), DCACHE_OK);
        }
    }
    return tst_finish();
}

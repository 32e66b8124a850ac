/* bench/file_layer.c: the direct-I/O file layer (dcache_file_pwrite / dcache_file_pread)
 * against raw O_DIRECT pwrite / pread on the same file, in alternating slices: 1 MiB
 * aligned transfers, and 64 KiB + 1 byte at unaligned offsets from unaligned memory (what a
 * caller who knows nothing of alignment does) against raw aligned 64 KiB.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dcache.h"
#include "phases.h"
#include "raw.h"
#include "report.h"

#define GROUP_FILE "file layer: dcache_file_pwrite/pread vs raw O_DIRECT, same file"
#define FILE_LAYER "filelayer.bin"
#define SMALL (64u * 1024u)
#define BIG (1024u * 1024u)

/* One kind of dcache_file call: `len` bytes at slot * stride + skew, from or into memory
 * `skew` bytes past the worker's aligned buffer. */
typedef struct file_load {
    dcache_file *f;
    size_t len, stride, skew;
    uint64_t slots;
    const uint8_t *src;   /* writes: len + skew bytes */
} file_load;

static int file_fail(const char *what, dcache_result r)
{
    return bench_fail("%s: %s: %s", what, dcache_strerror(r), dcache_last_error_message());
}

static int file_write_op(void *ctx, worker *w, uint64_t seq, uint64_t *bytes)
{
    (void)w;
    const file_load *l = ctx;
    uint64_t off = seq % l->slots * l->stride + l->skew;
    dcache_result r = dcache_file_pwrite(l->f, l->src + l->skew, l->len, off);
    if (r != DCACHE_OK)
        return file_fail("dcache_file_pwrite", r);
    *bytes += l->len;
    return 0;
}

static int file_read_op(void *ctx, worker *w, uint64_t seq, uint64_t *bytes)
{
    (void)seq;
    const file_load *l = ctx;
    uint64_t off = rng_below(&w->rng, l->slots) * l->stride + l->skew;
    size_t n = 0;
    dcache_result r = dcache_file_pread(l->f, w->buf + l->skew, l->len, off, &n);
    if (r != DCACHE_OK)
        return file_fail("dcache_file_pread", r);
    if (n != l->len)
        return bench_fail("dcache_file_pread: %zu bytes of %zu", n, l->len);
    *bytes += n;
    return 0;
}

static int file_sync_finish(void *ctx)
{
    const file_load *l = ctx;
    dcache_result r = dcache_file_sync(l->f);
    return r == DCACHE_OK ? 0 : file_fail("dcache_file_sync", r);
}

typedef struct slot {
    const char *key, *label, *mode;
    run_spec spec;
    run_series rs;
} slot;

#define SLOT(k, l, m, s) {.key = (k), .label = (l), .mode = (m), .spec = (s)}

static run_spec spec_of(const char *name, op_fn op, finish_fn finish, void *ctx, double sec)
{
    return (run_spec){.name = name, .threads = 1, .seconds = sec, .buf_size = BIG + SMALL,
                      .op = op, .finish = finish, .ctx = ctx, .seed = mix64((uintptr_t)name)};
}

int phase_file_layer(const bench_config *cfg)
{
    char path[PATH_MAX];
    bench_path(cfg, FILE_LAYER, path);
    uint64_t size = cfg->quick ? (256ull << 20) : (512ull << 20);
    int fd = raw_create(path);
    if (fd < 0)
        return -1;
    dcache_file *f = NULL;
    dcache_result r = dcache_file_open(path, NULL, &f);
    if (r != DCACHE_OK) {
        close(fd);
        return file_fail("dcache_file_open", r);
    }
    const char *mode = dcache_file_is_direct_io(f) ? "direct" : "buffered";
    uint8_t *src = NULL;   /* aligned, for the raw writes; the unaligned ones use src + 1 */
    if (posix_memalign((void **)&src, 4096, BIG + SMALL) != 0) {
        dcache_file_close(f);
        close(fd);
        return bench_fail("out of memory");
    }
    memcpy(src, pool_value(&cfg->pool, 1, BIG + SMALL), BIG + SMALL);
    raw_load raw_big = {.fd = fd, .block = BIG, .blocks = size / BIG, .src = src};
    raw_load raw_small = {.fd = fd, .block = SMALL, .blocks = size / SMALL, .src = src};
    file_load big = {.f = f, .len = BIG, .stride = BIG, .slots = size / BIG, .src = src};
    file_load odd = {.f = f, .len = SMALL + 1, .stride = SMALL + 3, .skew = 1,
                     .slots = size / (SMALL + 3) - 1, .src = src};
    double sec = cfg->slice_sec / 2;
    slot slots[] = {
        SLOT("raw.file.w1m", "raw 1 MiB pwrite, sequential", MODE_RAW,
         spec_of("raw w1m", raw_write_op, raw_sync_finish, &raw_big, sec)),
        SLOT("file.w1m", "dcache_file_pwrite 1 MiB aligned, sequential", mode,
         spec_of("file w1m", file_write_op, file_sync_finish, &big, sec)),
        SLOT("raw.file.w64k", "raw 64 KiB pwrite, sequential", MODE_RAW,
         spec_of("raw w64k", raw_write_op, raw_sync_finish, &raw_small, sec)),
        SLOT("file.w64k1", "dcache_file_pwrite 64 KiB+1 unaligned, sequential", mode,
         spec_of("file w64k1", file_write_op, file_sync_finish, &odd, sec)),
        SLOT("raw.file.r1m", "raw 1 MiB pread, random", MODE_RAW,
         spec_of("raw r1m", raw_read_op, NULL, &raw_big, sec)),
        SLOT("file.r1m", "dcache_file_pread 1 MiB aligned, random", mode,
         spec_of("file r1m", file_read_op, NULL, &big, sec)),
        SLOT("raw.file.r64k", "raw 64 KiB pread, random", MODE_RAW,
         spec_of("raw r64k", raw_read_op, NULL, &raw_small, sec)),
        SLOT("file.r64k1", "dcache_file_pread 64 KiB+1 unaligned, random", mode,
         spec_of("file r64k1", file_read_op, NULL, &odd, sec)),
    };
    size_t n = sizeof slots / sizeof slots[0];
    int rc = 0;
    /* Fill the file first, so that reads read data and writes overwrite it. */
    run_result fill;
    run_spec fill_spec = spec_of("file fill", raw_write_op, raw_sync_finish, &raw_big, 0);
    fill_spec.max_ops = raw_big.blocks;
    rc = run_ops(&fill_spec, &fill);
    for (unsigned round = 0; rc == 0 && round < cfg->rounds; round++) {
        progress("file layer, round %u/%u: %zu measurements, alternating", round + 1,
                 cfg->rounds, n);
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = series_run(&slots[i].rs, &slots[i].spec);
    }
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            rc = record_run(GROUP_FILE, slots[i].key, slots[i].label,
                            series_result(&slots[i].rs), slots[i].mode, REC_MBPS);
        series_free(&slots[i].rs);
    }
    r = dcache_file_close(f);
    if (rc == 0 && r != DCACHE_OK)
        rc = file_fail("dcache_file_close", r);
    close(fd);
    unlink(path);
    free(src);
    return rc;
}

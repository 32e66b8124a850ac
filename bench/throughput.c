/* bench/throughput.c: throughput and latency, raw and through the cache, in one phase.
 *
 * Every figure that becomes a ratio is measured in slices that alternate with the slices of
 * its roofline, `rounds` times, so that the disk's drift during the run (large on a virtio
 * disk) falls on both sides of the ratio instead of favouring whichever ran first.
 *
 * 1. Writes. The roofline file and three fresh 1 GiB caches (DCACHE_IO_AUTO) are created;
 *    then, each round: sequential 1 MiB O_DIRECT pwrites (fdatasync at the end of the
 *    slice), 64 KiB, 1 MiB and 4 KiB puts (dcache_flush at the end of the slice), each a
 *    1/rounds share of its total: the whole file (1 GiB), put_class_bytes per cache (less
 *    than its capacity: no eviction). A sample of every cache is then compared byte for
 *    byte, and the 1 MiB cache removed.
 * 2. Reads, each round: random 64 KiB reads at 1 and 4 threads / 64 KiB gets at 1 and 4
 *    threads; raw io_uring reads of the 64 KiB and 4 KiB caches' files / gets through a
 *    completion queue, each kept 1, 8 and 32 deep from one thread;
 *    random 4 KiB reads / 4 KiB gets, 1 thread; 1 reader beside a writer: raw
 *    64 KiB reads beside sequential 1 MiB pwrites, 64 KiB gets beside a thread that re-puts
 *    the stored keys in their original order with the same bytes (the log wraps but only
 *    ever reclaims superseded copies: no get misses).
 * 3. The caches are closed; the 64 KiB cache file's page-cache residency is read (mincore).
 * phase_buffered_residency repeats the 64 KiB fill and gets on a smaller buffered cache.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cacheops.h"
#include "depth.h"
#include "phases.h"
#include "raw.h"
#include "report.h"

/* ---- caches ----------------------------------------------------------------------------- */
typedef struct size_class {
    const char *file, *prefix;
    size_t value_len;
    uint64_t capacity, fill_bytes;
    uint32_t io_mode;
    const char *label;   /* for the dcache_is_direct_io figure */
} size_class;

typedef struct filled_cache {
    char path[PATH_MAX];
    dcache *c;
    const char *mode;   /* "direct" or "buffered", as in effect */
    cache_load load;    /* the keys it receives */
} filled_cache;

static int create_cache(const bench_config *cfg, const size_class *sc, filled_cache *fc)
{
    bench_path(cfg, sc->file, fc->path);
    if (cache_create(fc->path, sc->capacity, sc->io_mode, &fc->c) != 0)
        return -1;
    fc->mode = cache_mode(fc->c);
    char key[64];
    snprintf(key, sizeof key, "cache.%s.is_direct_io", sc->prefix);
    if (fig_set(GROUP_MODE, key, sc->label, dcache_is_direct_io(fc->c), "flag", fc->mode) != 0)
        return -1;
    cache_load_init(&fc->load, fc->c, &cfg->pool, sc->prefix, sc->value_len, 0,
                    sc->fill_bytes / sc->value_len);
    return 0;
}

/* After the fill: every key stored, none evicted, a sample byte for byte. */
static int check_filled(const bench_config *cfg, filled_cache *fc)
{
    dcache_stats st;
    if (cache_stats(fc->c, &st) != 0)
        return -1;
    if (st.evictions != 0 || st.entries != fc->load.count)
        return bench_fail("%s: %llu entries and %llu evictions after %llu puts of distinct keys",
                          fc->path, (unsigned long long)st.entries,
                          (unsigned long long)st.evictions, (unsigned long long)fc->load.count);
    return cache_verify_sample(&fc->load, cfg->verify_samples, 21);
}

/* Closes the cache (if open), records its file's residency if asked, removes the file. */
static int drop_cache(filled_cache *fc, const char *residency_key, const char *residency_label)
{
    int rc = 0;
    if (fc->c && cache_close(fc->c) != 0)
        rc = -1;
    fc->c = NULL;
    if (rc == 0 && residency_key && fc->path[0]) {
        uint64_t resident, size;
        rc = file_residency(fc->path, &resident, &size);
        char k[64];
        snprintf(k, sizeof k, "%s.pct", residency_key);
        if (rc == 0)
            rc = fig_set(GROUP_RES, k, residency_label,
                         size ? 100.0 * (double)resident / (double)size : 0, "%", fc->mode);
        snprintf(k, sizeof k, "%s.mib", residency_key);
        if (rc == 0)
            rc = fig_set(GROUP_RES, k, "  the same, in MiB", (double)resident / (double)MIB,
                         "MiB", fc->mode);
    }
    if (fc->path[0] && remove_if_present(fc->path) != 0)
        rc = -1;
    return rc;
}

/* ---- alternated measurements ------------------------------------------------------------ */
typedef struct measurement {
    const char *group, *key, *label, *mode;
    unsigned what;           /* REC_* */
    run_spec reader;         /* the measured run */
    run_spec writer;         /* run in the background beside it when writer.op is set */
    run_series rs, ws;
} measurement;

static int measure_slice(measurement *m)
{
    if (!m->writer.op)
        return series_run(&m->rs, &m->reader);
    atomic_bool stop;
    atomic_init(&stop, false);
    m->writer.stop = &stop;
    run_handle *w;
    if (series_start(&m->ws, &m->writer, &w) != 0)
        return -1;
    int rc = series_run(&m->rs, &m->reader);
    atomic_store(&stop, true);
    if (series_join(&m->ws, w) != 0)
        rc = -1;
    m->writer.stop = NULL;
    return rc;
}

static int measure_rounds(const char *what, unsigned rounds, measurement *ms, size_t n)
{
    for (unsigned r = 0; r < rounds; r++) {
        if (n == 1)
            progress("%s: %s (%s)", what, ms[0].label, ms[0].mode);
        else
            progress("%s, round %u/%u: %zu measurements, alternating", what, r + 1, rounds, n);
        /* The order rotates each round, so that no measurement always follows the same
         * one (the first cache fill after the raw write's fdatasync ran slower every time). */
        for (size_t k = 0; k < n; k++)
            if (measure_slice(&ms[(k + r) % n]) != 0)
                return -1;
    }
    return 0;
}

static int record_measurement(measurement *m)
{
    const run_result *r = series_result(&m->rs);
    if (record_run(m->group, m->key, m->label, r, m->mode, m->what) != 0)
        return -1;
    if (!m->writer.op)
        return 0;
    char k[64], l[128];
    snprintf(k, sizeof k, "%s.writer_mbps", m->key);
    snprintf(l, sizeof l, "  its writer, beside the reader");
    return fig_set(m->group, k, l, result_mbps(series_result(&m->ws)), "MB/s", m->mode);
}

static run_spec reader_spec(const char *name, unsigned threads, double sec, size_t buf,
                            op_fn op, void *ctx)
{
    return (run_spec){.name = name, .threads = threads, .seconds = sec, .buf_size = buf,
                      .op = op, .ctx = ctx, .seed = mix64((uintptr_t)name) + threads};
}

/* A background writer, ended by the stop flag measure_slice sets. */
static run_spec writer_spec(const char *name, op_fn op, finish_fn finish, void *ctx)
{
    return (run_spec){.name = name, .threads = 1, .op = op, .finish = finish, .ctx = ctx,
                      .seed = 9};
}

/* One of `slices` equal shares of `total` writes (rounded up: a few of the first keys or
 * blocks may be written twice), the slice's sync timed with it. */
static run_spec fill_spec(const char *name, uint64_t total, unsigned slices, op_fn op,
                          finish_fn finish, void *ctx)
{
    return (run_spec){.name = name, .threads = 1, .max_ops = (total + slices - 1) / slices,
                      .op = op, .finish = finish, .ctx = ctx, .seed = 7};
}

/* ---- the phase -------------------------------------------------------------------------- */
typedef struct throughput {
    int fd;
    char raw_path[PATH_MAX];
    raw_load seq, r64k, r4k, rwriter;
    int cache_fd;           /* the 64 KiB cache's file, for raw reads of it */
    raw_load rcache64k;
    filled_cache c64k, c1m, c4k;
    cache_load mixed_reader, mixed_writer;
    int cache4k_fd;         /* the 4 KiB cache's file, for raw io_uring reads of it */
    /* Reads kept 1, 8 and 32 deep from one thread, 64 KiB and 4 KiB: raw io_uring reads of
     * each cache's file, and gets through a completion queue. */
    depth_load raw_depth[2][3], queue_depth[2][3];
    /* Raw io_uring reads shaped as each size's entries (the value and one unit more, at any
     * unit), depth 32: what the entry's shape costs the device. */
    depth_load raw_entry_shape[2];
    char depth_names[2][3][2][2][96];   /* [size][depth][raw, queue][key, label] */
    char entry_shape_names[2][2][128];  /* [size][key, label] */
    measurement ms[23];     /* the most a plan holds: plan_reads adds 23 */
    size_t n_ms;
} throughput;

static int create_files(const bench_config *cfg, throughput *t)
{
    bench_path(cfg, FILE_RAW, t->raw_path);
    t->fd = raw_create(t->raw_path);
    if (t->fd < 0)
        return -1;
    /* Reserve the roofline file as the caches reserve theirs, before them: both sides then
     * write into reserved, never-written extents, and the file created first is not
     * always the same side (whichever file was reserved first wrote slowest). */
    int err = posix_fallocate(t->fd, 0, (off_t)cfg->raw_file_bytes);
    if (err != 0)
        return bench_fail("posix_fallocate %s: %s", t->raw_path, strerror(err));
    const uint64_t cap = cfg->cache_capacity, bytes = cfg->put_class_bytes;
    const size_class c64k = {FILE_PUT64K, "v64k", 64 * KIB, cap, bytes, DCACHE_IO_AUTO,
                             "64 KiB cache, DCACHE_IO_AUTO: dcache_is_direct_io"};
    const size_class c1m = {FILE_PUT1M, "v1m", MIB, cap, bytes, DCACHE_IO_AUTO,
                            "1 MiB cache, DCACHE_IO_AUTO: dcache_is_direct_io"};
    const size_class c4k = {FILE_PUT4K, "v4k", 4 * KIB, cap, bytes, DCACHE_IO_AUTO,
                            "4 KiB cache, DCACHE_IO_AUTO: dcache_is_direct_io"};
    if (create_cache(cfg, &c64k, &t->c64k) != 0 || create_cache(cfg, &c1m, &t->c1m) != 0 ||
        create_cache(cfg, &c4k, &t->c4k) != 0)
        return -1;
    return 0;
}

static measurement *add_measurement(throughput *t, const char *group, const char *key,
                                    const char *label, const char *mode, unsigned what,
                                    run_spec reader)
{
    measurement *m = &t->ms[t->n_ms++];
    *m = (measurement){.group = group, .key = key, .label = label, .mode = mode,
                       .what = what, .reader = reader};
    return m;
}

static void add_fill(throughput *t, const bench_config *cfg, filled_cache *fc, const char *key,
                     const char *label)
{
    add_measurement(t, GROUP_PUT, key, label, fc->mode, REC_MBPS | REC_OPS | REC_CPU,
                    fill_spec(label, fc->load.count, cfg->rounds, cache_put_op,
                              cache_flush_finish, &fc->load));
}

static void plan_writes(const bench_config *cfg, throughput *t)
{
    const uint64_t blocks = cfg->raw_file_bytes / MIB;
    t->seq = (raw_load){.fd = t->fd, .block = MIB, .blocks = blocks, .src = cfg->pool.bytes};
    t->n_ms = 0;
    add_measurement(t, GROUP_ROOF, "raw.seqwrite", "sequential 1 MiB writes + fdatasync",
                    MODE_RAW, REC_MBPS | REC_CPU,
                    fill_spec("raw sequential write", blocks, cfg->rounds, raw_write_op,
                              raw_sync_finish, &t->seq));
    add_fill(t, cfg, &t->c64k, "cache.put64k", "64 KiB puts + flush");
    add_fill(t, cfg, &t->c1m, "cache.put1m", "1 MiB puts + flush");
    add_fill(t, cfg, &t->c4k, "cache.put4k", "4 KiB puts + flush");
}

static const unsigned depths[3] = {1, 8, 32};

/* Raw io_uring reads of each cache's file beside gets through a queue, at each depth. */
static void plan_depths(const bench_config *cfg, throughput *t)
{
    /* Latency at depth 1 only: deeper, an operation mostly hands out a read already reaped. */
    const unsigned rates = REC_MBPS | REC_OPS | REC_CPU;
    const filled_cache *caches[2] = {&t->c64k, &t->c4k};
    const char *sizes[2] = {"64k", "4k"}, *labels[2] = {"64 KiB", "4 KiB"};
    for (int c = 0; c < 2; c++) {
        for (int i = 0; i < 3; i++) {
            char(*raw)[96] = t->depth_names[c][i][0], (*queued)[96] = t->depth_names[c][i][1];
            snprintf(raw[0], 96, "raw.uring%s.d%u", sizes[c], depths[i]);
            snprintf(raw[1], 96, "io_uring random %s reads of the cache's file, depth %u",
                     labels[c], depths[i]);
            const unsigned all = depths[i] == 1 ? rates | REC_LAT : rates;
            add_measurement(t, GROUP_ROOF, raw[0], raw[1], MODE_RAW, all,
                            (run_spec){.name = "raw io_uring", .threads = 1,
                                       .seconds = cfg->slice_sec, .buf_size = 4096,
                                       .op = depth_raw_op, .finish = depth_raw_finish,
                                       .ctx = &t->raw_depth[c][i], .seed = 3});
            snprintf(queued[0], 96, "cache.queue%s.d%u", sizes[c], depths[i]);
            snprintf(queued[1], 96, "%s gets through the queue, depth %u", labels[c],
                     depths[i]);
            add_measurement(t, GROUP_GET, queued[0], queued[1], caches[c]->mode, all,
                            (run_spec){.name = "queued gets", .threads = 1,
                                       .seconds = cfg->slice_sec, .buf_size = 4096,
                                       .op = depth_cache_op, .finish = depth_cache_finish,
                                       .ctx = &t->queue_depth[c][i], .seed = 4});
        }
    }
    for (int c = 0; c < 2; c++) {
        char(*shape)[128] = t->entry_shape_names[c];
        snprintf(shape[0], 128, "raw.uring%s.entryshape.d32", sizes[c]);
        snprintf(shape[1], 128,
                 "io_uring reads shaped as %s values' entries (%s + a unit, at any unit), "
                 "depth 32",
                 labels[c], labels[c]);
        add_measurement(t, GROUP_ROOF, shape[0], shape[1], MODE_RAW, REC_OPS | REC_CPU,
                        (run_spec){.name = "raw io_uring, entry shape", .threads = 1,
                                   .seconds = cfg->slice_sec, .buf_size = 4096,
                                   .op = depth_raw_op, .finish = depth_raw_finish,
                                   .ctx = &t->raw_entry_shape[c], .seed = 5});
    }
}

/* The loads plan_depths measures: 0 or -1. */
static int open_depths(const bench_config *cfg, throughput *t)
{
    t->cache4k_fd = open(t->c4k.path, O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (t->cache4k_fd < 0)
        return sys_fail(t->c4k.path);
    const int fds[2] = {t->cache_fd, t->cache4k_fd};
    const size_t blocks[2] = {64 * KIB, 4 * KIB};
    const cache_load *keys[2] = {&t->c64k.load, &t->c4k.load};
    const size_t unit = dcache_alignment(t->c64k.c);
    for (int c = 0; c < 2; c++) {
        for (int i = 0; i < 3; i++)
            if (depth_raw_init(&t->raw_depth[c][i], fds[c], blocks[c], blocks[c],
                               cfg->put_class_bytes, depths[i]) != 0 ||
                depth_cache_init(&t->queue_depth[c][i], keys[c], depths[i]) != 0)
                return -1;
        if (depth_raw_init(&t->raw_entry_shape[c], fds[c], blocks[c] + unit, unit,
                           cfg->put_class_bytes, 32) != 0)
            return -1;
    }
    return 0;
}

static void plan_reads(const bench_config *cfg, throughput *t)
{
    const unsigned all = REC_MBPS | REC_OPS | REC_CPU | REC_LAT;
    const double sec = cfg->slice_sec;
    const char *m64 = t->c64k.mode, *m4 = t->c4k.mode;
    t->r64k = (raw_load){.fd = t->fd, .block = 64 * KIB,
                         .blocks = cfg->raw_file_bytes / (64 * KIB)};
    t->r4k = (raw_load){.fd = t->fd, .block = 4 * KIB, .blocks = cfg->raw_file_bytes / (4 * KIB)};
    t->rwriter = t->seq;
    t->n_ms = 0;
    cache_load *l64 = &t->c64k.load, *l4 = &t->c4k.load;
    cache_load_init(&t->mixed_reader, t->c64k.c, &cfg->pool, l64->prefix, l64->value_len, 0,
                    l64->count);
    t->mixed_reader.allow_miss = true;
    cache_load_init(&t->mixed_writer, t->c64k.c, &cfg->pool, l64->prefix, l64->value_len, 0,
                    l64->count);

    add_measurement(t, GROUP_ROOF, "raw.r64k.t1", "random 64 KiB reads, 1 thread", MODE_RAW,
                    all, reader_spec("raw 64k t1", 1, sec, 64 * KIB, raw_read_op, &t->r64k));
    add_measurement(t, GROUP_GET, "cache.get64k.t1", "64 KiB gets, 1 thread", m64, all,
                    reader_spec("get 64k t1", 1, sec, 64 * KIB, cache_get_op, l64));
    /* The same raw reads on the cache's own file: how much of a gap is the file (where
     * the file system put it, how the host backs it) rather than the cache. */
    t->rcache64k = (raw_load){.fd = t->cache_fd, .block = 64 * KIB,
                              .blocks = cfg->put_class_bytes / (64 * KIB)};
    add_measurement(t, GROUP_ROOF, "raw.r64k.cachefile.t1",
                    "random 64 KiB reads of the 64 KiB cache's file, 1 thread", MODE_RAW,
                    REC_MBPS | REC_OPS | REC_LAT,
                    reader_spec("raw 64k cache file t1", 1, sec, 64 * KIB, raw_read_op,
                                &t->rcache64k));
    add_measurement(t, GROUP_ROOF, "raw.r64k.t4", "random 64 KiB reads, 4 threads", MODE_RAW,
                    all, reader_spec("raw 64k t4", 4, sec, 64 * KIB, raw_read_op, &t->r64k));
    add_measurement(t, GROUP_GET, "cache.get64k.t4", "64 KiB gets, 4 threads", m64, all,
                    reader_spec("get 64k t4", 4, sec, 64 * KIB, cache_get_op, l64));
    add_measurement(t, GROUP_ROOF, "raw.r4k.t1", "random 4 KiB reads, 1 thread", MODE_RAW,
                    REC_OPS | REC_LAT, reader_spec("raw 4k t1", 1, sec, 4 * KIB, raw_read_op,
                                                   &t->r4k));
    add_measurement(t, GROUP_GET, "cache.get4k.t1", "4 KiB gets, 1 thread", m4,
                    REC_OPS | REC_LAT | REC_CPU,
                    reader_spec("get 4k t1", 1, sec, 4 * KIB, cache_get_op, l4));
    measurement *m;
    m = add_measurement(t, GROUP_ROOF, "raw.mixed", "random 64 KiB reads, 1 thread, beside a writer",
                        MODE_RAW, REC_MBPS | REC_LAT,
                        reader_spec("raw 64k beside writer", 1, sec, 64 * KIB, raw_read_op,
                                    &t->r64k));
    m->writer = writer_spec("raw writer", raw_write_op, raw_sync_finish, &t->rwriter);
    m = add_measurement(t, GROUP_GET, "cache.mixed", "64 KiB gets, 1 thread, beside a writer",
                        m64, REC_MBPS | REC_LAT,
                        reader_spec("get 64k beside writer", 1, sec, 64 * KIB, cache_get_op,
                                    &t->mixed_reader));
    m->writer = writer_spec("cache writer", cache_put_op, cache_flush_finish, &t->mixed_writer);
    plan_depths(cfg, t);
}

/* Records every planned measurement and empties the plan. */
static int record_planned(throughput *t)
{
    int rc = 0;
    for (size_t i = 0; i < t->n_ms; i++) {
        if (rc == 0 && record_measurement(&t->ms[i]) != 0)
            rc = -1;
        series_free(&t->ms[i].rs);
        series_free(&t->ms[i].ws);
    }
    t->n_ms = 0;
    return rc;
}

static int record_misses(throughput *t)
{
    uint64_t misses = atomic_load(&t->mixed_reader.misses);
    if (misses)
        report_note("%llu gets missed while the writer re-put stored keys (none should)",
                    (unsigned long long)misses);
    return fig_set(GROUP_GET, "cache.mixed.misses", "  its gets that missed", (double)misses,
                   "count", t->c64k.mode);
}

/* Closes and removes everything; the residency figure only after a complete phase. */
static int teardown(const bench_config *cfg, throughput *t, bool complete)
{
    char label[128];
    snprintf(label, sizeof label, "%llu MiB cache, DCACHE_IO_AUTO, after 64 KiB puts + gets",
             (unsigned long long)(cfg->cache_capacity / MIB));
    int rc = 0;
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 3; i++) {
            depth_free(&t->raw_depth[c][i]);
            depth_free(&t->queue_depth[c][i]);
        }
    for (int c = 0; c < 2; c++)
        depth_free(&t->raw_entry_shape[c]);
    if (t->cache4k_fd >= 0)
        close(t->cache4k_fd);
    if (drop_cache(&t->c64k, complete ? "cache.residency.direct" : NULL, label) != 0)
        rc = -1;
    if (drop_cache(&t->c1m, NULL, NULL) != 0 || drop_cache(&t->c4k, NULL, NULL) != 0)
        rc = -1;
    if (t->fd >= 0)
        close(t->fd);
    if (t->cache_fd >= 0)
        close(t->cache_fd);
    if (t->raw_path[0] && remove_if_present(t->raw_path) != 0)
        rc = -1;
    for (size_t i = 0; i < t->n_ms; i++) {
        series_free(&t->ms[i].rs);
        series_free(&t->ms[i].ws);
    }
    t->n_ms = 0;
    return rc;
}

static int measure_writes(const bench_config *cfg, throughput *t)
{
    plan_writes(cfg, t);
    if (measure_rounds("writes", cfg->rounds, t->ms, t->n_ms) != 0 || record_planned(t) != 0)
        return -1;
    if (check_filled(cfg, &t->c64k) != 0 || check_filled(cfg, &t->c1m) != 0 ||
        check_filled(cfg, &t->c4k) != 0)
        return -1;
    return drop_cache(&t->c1m, NULL, NULL);   /* only its puts are measured */
}

static int measure_reads(const bench_config *cfg, throughput *t)
{
    t->cache_fd = open(t->c64k.path, O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (t->cache_fd < 0)
        return sys_fail(t->c64k.path);
    if (open_depths(cfg, t) != 0)
        return -1;
    plan_reads(cfg, t);
    if (measure_rounds("reads", cfg->rounds, t->ms, t->n_ms) != 0 || record_planned(t) != 0 ||
        record_misses(t) != 0)
        return -1;
    return cache_verify_sample(&t->c64k.load, cfg->verify_samples, 22);
}

int phase_throughput(const bench_config *cfg)
{
    static throughput t;   /* large (paths); one at a time */
    t = (throughput){.fd = -1, .cache_fd = -1, .cache4k_fd = -1};
    int rc = create_files(cfg, &t);
    if (rc == 0)
        rc = measure_writes(cfg, &t);
    if (rc == 0)
        rc = measure_reads(cfg, &t);
    if (teardown(cfg, &t, rc == 0) != 0)
        rc = -1;
    return rc;
}

/* ---- buffered mode ---------------------------------------------------------------------- */
int phase_buffered_residency(const bench_config *cfg)
{
    const char *group = "cache: buffered mode (for the residency comparison)";
    const size_class sc = {FILE_BUFFERED, "b64k", 64 * KIB, cfg->buffered_capacity,
                           cfg->buffered_bytes, DCACHE_IO_BUFFERED,
                           "buffered cache, DCACHE_IO_BUFFERED: dcache_is_direct_io"};
    static filled_cache fc;
    fc = (filled_cache){0};
    int rc = create_cache(cfg, &sc, &fc);
    measurement ms[] = {
        {.group = group, .key = "cache.buffered.put64k", .label = "64 KiB puts + flush",
         .mode = fc.mode, .what = REC_MBPS | REC_OPS | REC_CPU,
         .reader = fill_spec("buffered puts", fc.load.count, 1, cache_put_op,
                             cache_flush_finish, &fc.load)},
        {.group = group, .key = "cache.buffered.get64k.t1", .label = "64 KiB gets, 1 thread",
         .mode = fc.mode, .what = REC_MBPS | REC_OPS | REC_LAT,
         .reader = reader_spec("buffered gets", 1, cfg->slice_sec, 64 * KIB, cache_get_op,
                               &fc.load)},
    };
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        rc = measure_rounds("buffered", 1, &ms[i], 1);
        if (rc == 0)
            rc = record_measurement(&ms[i]);
        if (rc == 0 && i == 0)
            rc = check_filled(cfg, &fc);
    }
    series_free(&ms[0].rs);
    series_free(&ms[1].rs);
    char label[128];
    snprintf(label, sizeof label, "%llu MiB cache, DCACHE_IO_BUFFERED, after 64 KiB puts + gets",
             (unsigned long long)(cfg->buffered_capacity / MIB));
    if (drop_cache(&fc, rc == 0 ? "cache.residency.buffered" : NULL, label) != 0)
        rc = -1;
    return rc;
}

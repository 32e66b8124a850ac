/* bench/phases.h: the benchmark's configuration and its phases. Each phase measures on
 * files in cfg->dir, records figures (report.h), removes its files, and returns 0, or -1
 * after printing an error (a failed call, or a value that did not read back).
 */
#ifndef BENCH_PHASES_H
#define BENCH_PHASES_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "driver.h"
#include "util.h"

typedef struct bench_config {
    char dir[PATH_MAX - 64];     /* room for "/" + a file name below */
    bool quick;
    unsigned rounds;             /* the read measurements alternate this many times... */
    double slice_sec;            /* ...for this long each time */
    uint64_t raw_file_bytes;     /* the roofline file, written by the sequential test */
    uint64_t cache_capacity;     /* the direct-mode caches */
    uint64_t put_class_bytes;    /* values put per size class, below the capacity */
    uint64_t index_entries;      /* small entries for the index and reopen figures */
    uint64_t crash_entries;      /* put by the child that is killed */
    uint64_t buffered_capacity;  /* the buffered-mode cache of the residency comparison */
    uint64_t buffered_bytes;     /* values put into it */
    unsigned verify_samples;     /* gets compared byte for byte after each fill */
    value_pool pool;             /* the bytes of every value */
} bench_config;

/* Files the phases create in cfg->dir (main removes any left after an error). */
#define FILE_RAW "roofline.bin"
#define FILE_PUT4K "put-4k.dcache"
#define FILE_PUT64K "put-64k.dcache"
#define FILE_PUT1M "put-1m.dcache"
#define FILE_INDEX "index.dcache"
#define FILE_BUFFERED "buffered.dcache"

/* cfg->dir + "/" + name into buf (PATH_MAX bytes). */
const char *bench_path(const bench_config *cfg, const char *name, char *buf);

/* What record_run stores for a run. */
enum { REC_MBPS = 1, REC_OPS = 2, REC_CPU = 4, REC_LAT = 8 };
/* Records key.mbps, key.ops, key.cpu_s_per_gb, key.p50_us/p99_us/p999_us as `what` asks. */
int record_run(const char *group, const char *key, const char *label, const run_result *r,
               const char *mode, unsigned what);
/* One progress line on stderr. */
void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* throughput.c: the roofline (raw O_DIRECT pwrite/pread on one file), puts per value size,
 * gets at 1 and 4 threads and beside a writer, alternating raw and cache, and the
 * page-cache residency of a direct-mode cache file. */
int phase_throughput(const bench_config *cfg);
/* throughput.c: the 64 KiB pattern on a smaller cache in buffered mode, and its residency. */
int phase_buffered_residency(const bench_config *cfg);
/* file_layer.c: dcache_file_pwrite/pread, 1 MiB aligned and 64 KiB+1 unaligned, against raw
 * O_DIRECT on the same file. */
int phase_file_layer(const bench_config *cfg);
/* cache_recovery.c: index bytes per entry, reopen after a clean close and after kill -9. */
int phase_recovery(const bench_config *cfg);

#define GROUP_MODE "I/O mode in effect"
#define GROUP_ROOF "roofline: raw O_DIRECT system calls"
#define GROUP_PUT "cache: puts (fresh 1 GiB cache per value size)"
#define GROUP_GET "cache: gets (random stored keys)"
#define GROUP_MEM "cache: index memory and reopen"
#define GROUP_RES "cache: page-cache residency of the cache file"

#endif

/* bench/driver.h: the one load driver used by every measurement, raw and cache alike.
 *
 * A run starts `threads` threads together; each repeatedly takes the next operation number
 * from a counter shared by the run and calls `op` on it, timing every call with
 * CLOCK_MONOTONIC, until the time limit, the operation limit, an external stop flag or a
 * failure ends the run. `finish` (an fdatasync, a dcache_flush) then runs inside the timing.
 * The result has operations, bytes, wall time, CPU time of the whole process over the run
 * (getrusage) and latency percentiles.
 */
#ifndef BENCH_DRIVER_H
#define BENCH_DRIVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What one thread of a run owns. */
typedef struct worker {
    unsigned index;   /* 0 .. threads-1 */
    uint8_t *buf;     /* buf_size bytes, 4096-aligned, this thread's only */
    size_t buf_size;
    uint64_t rng;     /* this thread's random state (rng_next) */
} worker;

/* Performs operation number `seq`, adds the bytes it moved to *bytes; 0 on success, -1
 * after printing an error (the run then stops and fails). */
typedef int (*op_fn)(void *ctx, worker *w, uint64_t seq, uint64_t *bytes);
typedef int (*finish_fn)(void *ctx);

typedef struct run_spec {
    const char *name;            /* for messages */
    unsigned threads;
    double seconds;              /* time limit; 0 = none */
    uint64_t max_ops;            /* operation limit over all threads; 0 = none */
    const atomic_bool *stop;     /* optional: the run ends when it becomes true */
    size_t buf_size;             /* per-thread buffer */
    op_fn op;
    finish_fn finish;            /* optional, timed */
    void *ctx;
    uint64_t seed;
    uint64_t first_seq;          /* the first operation number (a series continues it) */
} run_spec;

typedef struct lat_summary {
    uint64_t count;
    double mean_us, p50_us, p99_us, p999_us, max_us;
} lat_summary;

typedef struct run_result {
    uint64_t ops, bytes;
    double seconds;       /* wall time, start of the threads to the end of finish */
    double cpu_seconds;   /* the process's user + system CPU over the same span */
    lat_summary lat;
} run_result;

typedef struct run_handle run_handle;

/* Latencies in nanoseconds, in a growing array. */
typedef struct lat_vec {
    uint64_t *ns;
    size_t len, cap;
} lat_vec;

/* Several runs of one measurement, added up (operations, bytes, wall and CPU time, every
 * latency). Alternating the short runs of two measurements (raw, cache) spreads the disk's
 * drift over both instead of favouring whichever ran first. */
typedef struct run_series {
    run_result sum;
    lat_vec lat;
} run_series;

/* Starts a run in the background; 0 or -1. */
int run_start(const run_spec *spec, run_handle **out);
/* Waits for a started run to end, runs `finish`, fills *out, frees h; 0, or -1 if an
 * operation or finish failed. */
int run_join(run_handle *h, run_result *out);
/* run_start + run_join. */
int run_ops(const run_spec *spec, run_result *out);

/* A series' runs continue one numbering of operations: each starts at the number after
 * the last one done (spec->first_seq is ignored). series_start + series_join run one in
 * the background; series_run runs one and waits. */
int series_start(run_series *s, const run_spec *spec, run_handle **out);
int series_join(run_series *s, run_handle *h);
int series_run(run_series *s, const run_spec *spec);
/* The sum so far, percentiles over every run's latencies. */
const run_result *series_result(run_series *s);
void series_free(run_series *s);   /* a zeroed series is empty and valid */

double result_mbps(const run_result *r);          /* 10^6 bytes per second */
double result_ops_per_sec(const run_result *r);
double result_cpu_per_gb(const run_result *r);    /* CPU seconds per 10^9 bytes */

/* Percentiles (nearest rank) of n latencies in nanoseconds; sorts ns in place. */
lat_summary summarize_latencies(uint64_t *ns, size_t n);

#endif

/* bench/cacheops.h: cache operations for the load driver, and the handful of dcache calls
 * every cache phase makes (create, open, close, stats, verify), each checked.
 */
#ifndef BENCH_CACHEOPS_H
#define BENCH_CACHEOPS_H

#include <stdatomic.h>
#include <stdbool.h>

#include "driver.h"
#include "util.h"

/* A set of keys "<prefix>-<id>", id in [first, first + count), each with the value
 * pool_value(id, value_len). */
typedef struct cache_load {
    dcache *c;
    const value_pool *pool;
    const char *prefix;
    size_t value_len;
    uint64_t first, count;
    bool allow_miss;              /* gets: count NOT_FOUND instead of failing */
    atomic_uint_fast64_t misses;
} cache_load;

void cache_load_init(cache_load *l, dcache *c, const value_pool *pool, const char *prefix,
                     size_t value_len, uint64_t first, uint64_t count);

/* Puts key first + seq % count: the first pass stores the set, later passes overwrite it
 * in the same order with the same bytes. */
int cache_put_op(void *ctx, worker *w, uint64_t seq, uint64_t *bytes);
/* Gets a random key of the set into the worker's buffer and checks its length. */
int cache_get_op(void *ctx, worker *w, uint64_t seq, uint64_t *bytes);
/* dcache_flush, as a run's timed finish. */
int cache_flush_finish(void *ctx);

/* Removes path, then creates and formats a cache of `capacity` there. */
int cache_create(const char *path, uint64_t capacity, uint32_t io_mode, dcache **out);
/* Opens an existing cache; *open_sec = the wall time of dcache_open. */
int cache_open_existing(const char *path, dcache **out, double *open_sec);
int cache_close(dcache *c);
int cache_stats(const dcache *c, dcache_stats *out);
const char *cache_mode(const dcache *c);   /* "direct" or "buffered" */

/* Gets the first and last keys of the set and `samples` random ones, and compares every
 * byte with what was put; -1 on any difference or miss. */
int cache_verify_sample(cache_load *l, unsigned samples, uint64_t seed);

#endif

/* bench/depth.h: reads kept `depth` deep from one thread, as the load driver's operations:
 * raw io_uring reads of a file (liburing), and gets through a dcache completion queue. Each
 * operation waits for one read to complete and starts another in its place.
 */
#ifndef BENCH_DEPTH_H
#define BENCH_DEPTH_H

#include <liburing.h>
#include <stdbool.h>

#include "cacheops.h"

typedef struct depth_load {
    unsigned depth, in_flight;
    size_t block;         /* bytes per read */
    uint8_t *bufs;        /* depth buffers of `block` bytes, 4096-aligned */
    uint64_t rng;
    /* raw */
    struct io_uring ring;
    bool ring_ready;
    int fd;
    uint64_t blocks;      /* offsets are step * [0, blocks) */
    size_t step;          /* block, or a smaller alignment for reads shaped as entries */
    /* cache */
    dcache_queue *queue;
    const cache_load *keys;
} depth_load;

/* Random `block`-byte reads of fd at `depth`, at offsets that are multiples of `step`
 * below `size`; 0 or -1. */
int depth_raw_init(depth_load *d, int fd, size_t block, size_t step, uint64_t size,
                   unsigned depth);
/* Gets of random keys of `keys` at `depth`, through a queue of its own; 0 or -1. */
int depth_cache_init(depth_load *d, const cache_load *keys, unsigned depth);
void depth_free(depth_load *d);

int depth_raw_op(void *ctx, worker *w, uint64_t seq, uint64_t *bytes);
int depth_cache_op(void *ctx, worker *w, uint64_t seq, uint64_t *bytes);
/* Waits for the reads in flight (a run's finish). */
int depth_raw_finish(void *ctx);
int depth_cache_finish(void *ctx);

#endif

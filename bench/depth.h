/* bench/depth.h: reads kept `depth` deep from one thread, as the load driver's operations:
 * raw io_uring reads of a file (liburing), and gets through a dcache completion queue. Each
 * operation hands out one completed read and queues its slot to start again; when it has
 * none in hand, it starts the queued slots in one batch (one system call) and waits for
 * completions, taking all there are: as an event loop reaps and submits. Both sides do the
 * same, so a ratio compares what each read costs, not the loop.
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
    /* slots whose reads completed, handed out one per operation: ready[next_ready..n_ready] */
    unsigned *ready, n_ready, next_ready;
    /* slots to start again, at the next batch: restart[0..n_restart] */
    unsigned *restart, n_restart;
    /* raw */
    struct io_uring ring;
    bool ring_ready;
    int fd;
    uint64_t blocks;      /* offsets are step * [0, blocks) */
    size_t step;          /* block, or a smaller alignment for reads shaped as entries */
    /* cache */
    dcache_queue *queue;
    const cache_load *keys;
    dcache_completion *done;   /* depth, for a reap */
    dcache_read *reads;        /* depth, for a batch */
    char *key_bytes;           /* depth keys of KEY_MAX bytes, for a batch */
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

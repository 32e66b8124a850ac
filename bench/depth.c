/* bench/depth.c: see depth.h. */
#define _GNU_SOURCE
#include "depth.h"

#include <stdlib.h>
#include <string.h>

static int alloc_bufs(depth_load *d, size_t block, unsigned depth, uint64_t seed)
{
    memset(d, 0, sizeof *d);
    d->depth = depth;
    d->block = block;
    d->rng = seed;
    d->fd = -1;
    d->bufs = alloc_aligned(block * depth);
    d->ready = calloc(depth, sizeof *d->ready);
    d->restart = calloc(depth, sizeof *d->restart);
    return d->bufs && d->ready && d->restart ? 0 : bench_fail("out of memory");
}

static uint8_t *buf_of(const depth_load *d, unsigned slot)
{
    return d->bufs + (size_t)slot * d->block;
}

int depth_raw_init(depth_load *d, int fd, size_t block, size_t step, uint64_t size,
                   unsigned depth)
{
    if (alloc_bufs(d, block, depth, mix64(block + step + depth)) != 0)
        return -1;
    d->fd = fd;
    d->step = step;
    d->blocks = (size - block) / step;
    int r = io_uring_queue_init(depth, &d->ring, 0);
    if (r < 0)
        return bench_fail("io_uring_queue_init: %s", strerror(-r));
    d->ring_ready = true;
    return 0;
}

int depth_cache_init(depth_load *d, const cache_load *keys, unsigned depth)
{
    if (alloc_bufs(d, keys->value_len, depth, mix64(keys->value_len + depth + 1)) != 0)
        return -1;
    d->keys = keys;
    d->done = calloc(depth, sizeof *d->done);
    d->reads = calloc(depth, sizeof *d->reads);
    d->key_bytes = calloc(depth, KEY_MAX);
    if (!d->done || !d->reads || !d->key_bytes)
        return bench_fail("out of memory");
    return dc_check(dcache_queue_open(keys->c, depth, &d->queue), "dcache_queue_open");
}

void depth_free(depth_load *d)
{
    if (d->ring_ready)
        io_uring_queue_exit(&d->ring);
    dcache_queue_close(d->queue);
    free(d->bufs);
    free(d->ready);
    free(d->restart);
    free(d->done);
    free(d->reads);
    free(d->key_bytes);
    memset(d, 0, sizeof *d);
}

/* ---- raw io_uring ----------------------------------------------------------------------- */
/* Starts a read into each slot to restart, with one io_uring_submit. */
static int raw_start(depth_load *d)
{
    for (unsigned i = 0; i < d->n_restart; i++) {
        unsigned slot = d->restart[i];
        struct io_uring_sqe *sqe = io_uring_get_sqe(&d->ring);
        off_t off = (off_t)(rng_below(&d->rng, d->blocks) * d->step);
        io_uring_prep_read(sqe, d->fd, buf_of(d, slot), (unsigned)d->block, off);
        io_uring_sqe_set_data(sqe, (void *)(uintptr_t)slot);
    }
    int r = d->n_restart ? io_uring_submit(&d->ring) : 0;
    if (r < 0)
        return bench_fail("io_uring_submit: %s", strerror(-r));
    d->in_flight += d->n_restart;
    d->n_restart = 0;
    return 0;
}

/* Waits for one completion, then takes every one there is into d->ready; 0 or -1. */
static int raw_reap(depth_load *d)
{
    struct io_uring_cqe *cqe;
    int r = io_uring_wait_cqe(&d->ring, &cqe);
    if (r < 0)
        return bench_fail("io_uring_wait_cqe: %s", strerror(-r));
    unsigned head, n = 0;
    int bad = 0;
    io_uring_for_each_cqe(&d->ring, head, cqe)
    {
        if (cqe->res != (int)d->block && !bad)
            bad = cqe->res < 0 ? -cqe->res : -1;
        d->ready[n++] = (unsigned)(uintptr_t)io_uring_cqe_get_data(cqe);
    }
    io_uring_cq_advance(&d->ring, n);
    d->in_flight -= n;
    d->n_ready = n;
    d->next_ready = 0;
    if (bad)
        return bad > 0 ? bench_fail("io_uring read: %s", strerror(bad))
                       : bench_fail("short io_uring read");
    return 0;
}

/* ---- the dcache queue ------------------------------------------------------------------- */
/* Submits a get of a random key into each slot to restart, as one batch. */
static int cache_start(depth_load *d)
{
    const cache_load *l = d->keys;
    for (unsigned i = 0; i < d->n_restart; i++) {
        unsigned slot = d->restart[i];
        char *key = d->key_bytes + (size_t)i * KEY_MAX;
        size_t klen = make_key(key, l->prefix, l->first + rng_below(&d->rng, l->count));
        d->reads[i] = (dcache_read){.key = (const uint8_t *)key, .key_len = klen,
                                    .buf = buf_of(d, slot), .buf_len = d->block,
                                    .user_data = slot};
    }
    size_t submitted = 0;
    if (dc_check(dcache_submit_batch(d->queue, d->reads, d->n_restart, &submitted),
                 "dcache_submit_batch") != 0)
        return -1;
    d->in_flight += d->n_restart;
    d->n_restart = 0;
    return 0;
}

/* Waits for one completion, then takes every one there is into d->ready; 0 or -1. */
static int cache_reap(depth_load *d)
{
    size_t n = 0;
    if (dc_check(dcache_queue_reap(d->queue, d->done, d->depth, 1, &n), "dcache_queue_reap") != 0)
        return -1;
    d->in_flight -= (unsigned)n;
    for (size_t i = 0; i < n; i++) {
        const dcache_completion *c = &d->done[i];
        if (dc_check(c->result, "a queued get") != 0)
            return -1;
        if (c->len != d->keys->value_len)
            return bench_fail("a queued get: %llu bytes, %zu were put",
                              (unsigned long long)c->len, d->keys->value_len);
        d->ready[i] = (unsigned)c->user_data;
    }
    d->n_ready = (unsigned)n;
    d->next_ready = 0;
    return 0;
}

/* ---- both: one completion per operation, the reads started again in batches ----------- */
typedef int (*step_fn)(depth_load *d);

/* Hands out one completed read, and queues its slot to be started again. When none is in
 * hand, starts the slots queued (one batch, one system call) and waits for completions:
 * as an event loop does, which reaps what is ready and submits what it calls for. */
static int depth_op(depth_load *d, step_fn start, step_fn reap, uint64_t *bytes)
{
    if (d->in_flight == 0 && d->n_ready == d->next_ready && d->n_restart == 0) {
        for (unsigned s = 0; s < d->depth; s++)
            d->restart[d->n_restart++] = s;
    }
    if (d->next_ready == d->n_ready && (start(d) != 0 || reap(d) != 0))
        return -1;
    d->restart[d->n_restart++] = d->ready[d->next_ready++];
    *bytes += d->block;
    return 0;
}

/* Starts nothing more; waits for the reads in flight. */
static int depth_drain(depth_load *d, step_fn reap)
{
    d->n_restart = 0;
    while (d->in_flight > 0)
        if (reap(d) != 0)
            return -1;
    d->n_ready = d->next_ready = 0;
    return 0;
}

int depth_raw_op(void *ctx, worker *w, uint64_t seq, uint64_t *bytes)
{
    (void)w;
    (void)seq;
    return depth_op(ctx, raw_start, raw_reap, bytes);
}

int depth_cache_op(void *ctx, worker *w, uint64_t seq, uint64_t *bytes)
{
    (void)w;
    (void)seq;
    return depth_op(ctx, cache_start, cache_reap, bytes);
}

int depth_raw_finish(void *ctx)
{
    return depth_drain(ctx, raw_reap);
}

int depth_cache_finish(void *ctx)
{
    return depth_drain(ctx, cache_reap);
}

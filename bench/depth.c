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
    return d->bufs ? 0 : -1;
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
    return dc_check(dcache_queue_open(keys->c, depth, &d->queue), "dcache_queue_open");
}

void depth_free(depth_load *d)
{
    if (d->ring_ready)
        io_uring_queue_exit(&d->ring);
    dcache_queue_close(d->queue);
    free(d->bufs);
    memset(d, 0, sizeof *d);
}

/* ---- raw io_uring ----------------------------------------------------------------------- */
static void raw_start(depth_load *d, unsigned slot)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&d->ring);
    off_t off = (off_t)(rng_below(&d->rng, d->blocks) * d->step);
    io_uring_prep_read(sqe, d->fd, buf_of(d, slot), (unsigned)d->block, off);
    io_uring_sqe_set_data(sqe, (void *)(uintptr_t)slot);
}

/* The next completion: its slot, or -1 after an error. */
static int raw_wait(depth_load *d)
{
    struct io_uring_cqe *cqe;
    int r = io_uring_wait_cqe(&d->ring, &cqe);
    if (r < 0)
        return bench_fail("io_uring_wait_cqe: %s", strerror(-r));
    int res = cqe->res;
    unsigned slot = (unsigned)(uintptr_t)io_uring_cqe_get_data(cqe);
    io_uring_cqe_seen(&d->ring, cqe);
    d->in_flight--;
    if (res != (int)d->block)
        return res < 0 ? bench_fail("io_uring read: %s", strerror(-res))
                       : bench_fail("short io_uring read: %d", res);
    return (int)slot;
}

int depth_raw_op(void *ctx, worker *w, uint64_t seq, uint64_t *bytes)
{
    (void)w;
    (void)seq;
    depth_load *d = ctx;
    if (d->in_flight == 0) {
        for (unsigned s = 0; s < d->depth; s++)
            raw_start(d, s);
        d->in_flight = d->depth;
        io_uring_submit(&d->ring);
    }
    int slot = raw_wait(d);
    if (slot < 0)
        return -1;
    *bytes += d->block;
    raw_start(d, (unsigned)slot);
    d->in_flight++;
    io_uring_submit(&d->ring);
    return 0;
}

int depth_raw_finish(void *ctx)
{
    depth_load *d = ctx;
    while (d->in_flight > 0)
        if (raw_wait(d) < 0)
            return -1;
    return 0;
}

/* ---- the dcache queue ------------------------------------------------------------------- */
static int cache_start(depth_load *d, unsigned slot)
{
    const cache_load *l = d->keys;
    char key[KEY_MAX];
    size_t klen = make_key(key, l->prefix, l->first + rng_below(&d->rng, l->count));
    return dc_check(dcache_submit_get(d->queue, (const uint8_t *)key, klen, buf_of(d, slot),
                                      d->block, slot),
                    "dcache_submit_get");
}

/* The next completion: its slot, or -1 after an error. */
static int cache_wait(depth_load *d)
{
    dcache_completion c;
    size_t n = 0;
    if (dc_check(dcache_queue_reap(d->queue, &c, 1, 1, &n), "dcache_queue_reap") != 0)
        return -1;
    d->in_flight--;
    if (dc_check(c.result, "a queued get") != 0)
        return -1;
    if (c.len != d->keys->value_len)
        return bench_fail("a queued get: %llu bytes, %zu were put", (unsigned long long)c.len,
                          d->keys->value_len);
    return (int)c.user_data;
}

int depth_cache_op(void *ctx, worker *w, uint64_t seq, uint64_t *bytes)
{
    (void)w;
    (void)seq;
    depth_load *d = ctx;
    if (d->in_flight == 0) {
        for (unsigned s = 0; s < d->depth; s++)
            if (cache_start(d, s) != 0)
                return -1;
        d->in_flight = d->depth;
    }
    int slot = cache_wait(d);
    if (slot < 0)
        return -1;
    *bytes += d->block;
    d->in_flight++;
    return cache_start(d, (unsigned)slot);
}

int depth_cache_finish(void *ctx)
{
    depth_load *d = ctx;
    while (d->in_flight > 0)
        if (cache_wait(d) < 0)
            return -1;
    return 0;
}

/* bench/cacheops.c: see cacheops.h. */
#define _GNU_SOURCE
#include "cacheops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cache_load_init(cache_load *l, dcache *c, const value_pool *pool, const char *prefix,
                     size_t value_len, uint64_t first, uint64_t count)
{
    l->c = c;
    l->pool = pool;
    l->prefix = prefix;
    l->value_len = value_len;
    l->first = first;
    l->count = count;
    l->allow_miss = false;
    atomic_init(&l->misses, 0);
}

int cache_put_op(void *ctx, worker *w, uint64_t seq, uint64_t *bytes)
{
    (void)w;
    const cache_load *l = ctx;
    uint64_t id = l->first + seq % l->count;
    char key[KEY_MAX];
    size_t klen = make_key(key, l->prefix, id);
    dcache_result r = dcache_put(l->c, (const uint8_t *)key, klen,
                                 pool_value(l->pool, id, l->value_len), l->value_len, 0);
    if (dc_check(r, "dcache_put") != 0)
        return -1;
    *bytes += l->value_len;
    return 0;
}

/* Reads key `id` into buf; 1 on a miss, 0 on a hit of the right length, -1 on an error. */
static int get_one(cache_load *l, uint64_t id, uint8_t *buf, size_t cap)
{
    char key[KEY_MAX];
    size_t klen = make_key(key, l->prefix, id), len = 0;
    dcache_result r = dcache_get(l->c, (const uint8_t *)key, klen, buf, cap, &len);
    if (r == DCACHE_NOT_FOUND)
        return 1;
    if (dc_check(r, "dcache_get") != 0)
        return -1;
    if (len != l->value_len)
        return bench_fail("dcache_get %s: %zu bytes, %zu were put", key, len, l->value_len);
    return 0;
}

int cache_get_op(void *ctx, worker *w, uint64_t seq, uint64_t *bytes)
{
    (void)seq;
    cache_load *l = ctx;
    uint64_t id = l->first + rng_below(&w->rng, l->count);
    int rc = get_one(l, id, w->buf, w->buf_size);
    if (rc == 1 && l->allow_miss) {
        atomic_fetch_add_explicit(&l->misses, 1, memory_order_relaxed);
        return 0;
    }
    if (rc == 1)
        return bench_fail("dcache_get %s-%llu: NOT_FOUND, but it was put and nothing evicts",
                          l->prefix, (unsigned long long)id);
    if (rc == 0)
        *bytes += l->value_len;
    return rc;
}

int cache_flush_finish(void *ctx)
{
    const cache_load *l = ctx;
    return dc_check(dcache_flush(l->c), "dcache_flush");
}

/* ---- lifecycle -------------------------------------------------------------------------- */
int cache_create(const char *path, uint64_t capacity, uint32_t io_mode, dcache **out)
{
    if (remove_if_present(path) != 0)
        return -1;
    dcache_options o;
    dcache_options_init(&o);
    o.flags = DCACHE_OPEN_CREATE | DCACHE_OPEN_FORMAT;
    o.capacity = capacity;
    o.io_mode = io_mode;
    if (dc_check(dcache_open(path, &o, out), "dcache_open (create)") != 0)
        return -1;
    fprintf(stderr, "   cache %s: %llu MiB, dcache_is_direct_io = %u, alignment %u\n", path,
            (unsigned long long)(capacity / MIB), dcache_is_direct_io(*out),
            dcache_alignment(*out));
    return 0;
}

int cache_open_existing(const char *path, dcache **out, double *open_sec)
{
    double t0 = now_sec();
    dcache_result r = dcache_open(path, NULL, out);
    *open_sec = now_sec() - t0;
    return dc_check(r, "dcache_open (existing)");
}

int cache_close(dcache *c)
{
    return dc_check(dcache_close(c), "dcache_close");
}

int cache_stats(const dcache *c, dcache_stats *out)
{
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    return dc_check(dcache_get_stats(c, out), "dcache_get_stats");
}

const char *cache_mode(const dcache *c)
{
    return dcache_is_direct_io(c) ? "direct" : "buffered";
}

/* ---- verification ----------------------------------------------------------------------- */
static int verify_one(cache_load *l, uint64_t id, uint8_t *buf)
{
    int rc = get_one(l, id, buf, l->value_len);
    if (rc == 1)
        return bench_fail("verify %s-%llu: NOT_FOUND, but it was put", l->prefix,
                          (unsigned long long)id);
    if (rc != 0)
        return -1;
    if (memcmp(buf, pool_value(l->pool, id, l->value_len), l->value_len) != 0)
        return bench_fail("verify %s-%llu: the bytes differ from those put", l->prefix,
                          (unsigned long long)id);
    return 0;
}

int cache_verify_sample(cache_load *l, unsigned samples, uint64_t seed)
{
    uint8_t *buf = alloc_aligned(l->value_len);
    if (!buf)
        return -1;
    uint64_t rng = rng_seed(seed, l->count);
    int rc = verify_one(l, l->first, buf);
    if (rc == 0)
        rc = verify_one(l, l->first + l->count - 1, buf);
    for (unsigned i = 0; rc == 0 && i < samples; i++)
        rc = verify_one(l, l->first + rng_below(&rng, l->count), buf);
    free(buf);
    return rc;
}

/* bench/driver.c: see driver.h. */
#define _GNU_SOURCE
#include "driver.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct thread_state {
    struct run_handle *run;
    pthread_t tid;
    worker w;
    lat_vec lat;
    uint64_t ops, bytes;
} thread_state;

struct run_handle {
    run_spec spec;
    pthread_mutex_t gate_lock;   /* the start gate: threads wait until `open` */
    pthread_cond_t gate_cond;
    bool gate_open;
    atomic_uint_fast64_t next_seq;
    atomic_bool failed;
    uint64_t deadline_ns;   /* 0 = none; written before the gate opens, read after */
    double t0, cpu0;
    thread_state *threads;
    unsigned started;       /* threads created */
};

static int lat_push(lat_vec *v, uint64_t ns)
{
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 65536;
        uint64_t *p = realloc(v->ns, cap * sizeof *p);
        if (!p)
            return sys_fail("realloc (latencies)");
        v->ns = p;
        v->cap = cap;
    }
    v->ns[v->len++] = ns;
    return 0;
}

static bool run_should_stop(struct run_handle *h, uint64_t now)
{
    if (atomic_load_explicit(&h->failed, memory_order_relaxed))
        return true;
    if (h->spec.stop && atomic_load_explicit(h->spec.stop, memory_order_relaxed))
        return true;
    return h->deadline_ns && now >= h->deadline_ns;
}

/* One operation, timed; 0, or -1 when it (or recording its latency) failed. */
static int timed_op(thread_state *t, uint64_t seq)
{
    const run_spec *s = &t->run->spec;
    uint64_t bytes = 0, t0 = now_ns();
    if (s->op(s->ctx, &t->w, seq, &bytes) != 0)
        return -1;
    uint64_t t1 = now_ns();
    if (lat_push(&t->lat, t1 - t0) != 0)
        return -1;
    t->ops++;
    t->bytes += bytes;
    return 0;
}

static void gate_wait(struct run_handle *h)
{
    pthread_mutex_lock(&h->gate_lock);
    while (!h->gate_open)
        pthread_cond_wait(&h->gate_cond, &h->gate_lock);
    pthread_mutex_unlock(&h->gate_lock);
}

static void gate_open(struct run_handle *h)
{
    pthread_mutex_lock(&h->gate_lock);
    h->gate_open = true;
    pthread_cond_broadcast(&h->gate_cond);
    pthread_mutex_unlock(&h->gate_lock);
}

static void *thread_main(void *arg)
{
    thread_state *t = arg;
    struct run_handle *h = t->run;
    gate_wait(h);
    while (!run_should_stop(h, now_ns())) {
        uint64_t seq = atomic_fetch_add_explicit(&h->next_seq, 1, memory_order_relaxed);
        if (h->spec.max_ops && seq >= h->spec.first_seq + h->spec.max_ops)
            break;
        if (timed_op(t, seq) != 0) {
            atomic_store(&h->failed, true);
            break;
        }
    }
    return NULL;
}

static void free_handle(struct run_handle *h)
{
    if (!h)
        return;
    for (unsigned i = 0; h->threads && i < h->spec.threads; i++) {
        free(h->threads[i].w.buf);
        free(h->threads[i].lat.ns);
    }
    free(h->threads);
    pthread_cond_destroy(&h->gate_cond);
    pthread_mutex_destroy(&h->gate_lock);
    free(h);
}

static int init_threads(struct run_handle *h)
{
    const run_spec *s = &h->spec;
    h->threads = calloc(s->threads, sizeof *h->threads);
    if (!h->threads)
        return sys_fail("calloc");
    for (unsigned i = 0; i < s->threads; i++) {
        thread_state *t = &h->threads[i];
        t->run = h;
        t->w.index = i;
        t->w.buf_size = s->buf_size;
        t->w.rng = rng_seed(s->seed, i);
        t->w.buf = alloc_aligned(s->buf_size);
        if (!t->w.buf)
            return -1;
    }
    return 0;
}

/* Creates the threads; they wait at the gate until the caller opens it. */
static int spawn_threads(struct run_handle *h)
{
    for (unsigned i = 0; i < h->spec.threads; i++) {
        int rc = pthread_create(&h->threads[i].tid, NULL, thread_main, &h->threads[i]);
        if (rc != 0) {
            errno = rc;
            return sys_fail("pthread_create");
        }
        h->started++;
    }
    return 0;
}

/* After a failed start: the threads already created see `failed` and leave at once. */
static void abandon_run(struct run_handle *h)
{
    atomic_store(&h->failed, true);
    gate_open(h);
    for (unsigned i = 0; i < h->started; i++)
        pthread_join(h->threads[i].tid, NULL);
    free_handle(h);
}

int run_start(const run_spec *spec, run_handle **out)
{
    if (spec->threads == 0 || !spec->op)
        return bench_fail("run %s: no threads or no operation", spec->name);
    if (spec->seconds <= 0 && spec->max_ops == 0 && !spec->stop)
        return bench_fail("run %s: nothing would end it", spec->name);
    struct run_handle *h = calloc(1, sizeof *h);
    if (!h)
        return sys_fail("calloc");
    h->spec = *spec;
    atomic_init(&h->next_seq, spec->first_seq);
    atomic_init(&h->failed, false);
    pthread_mutex_init(&h->gate_lock, NULL);
    pthread_cond_init(&h->gate_cond, NULL);
    if (init_threads(h) != 0 || spawn_threads(h) != 0) {
        abandon_run(h);
        return -1;
    }
    h->cpu0 = cpu_sec();
    h->t0 = now_sec();
    h->deadline_ns = spec->seconds > 0 ? now_ns() + (uint64_t)(spec->seconds * 1e9) : 0;
    gate_open(h);
    *out = h;
    return 0;
}

static int lat_append(lat_vec *dst, const lat_vec *src)
{
    if (dst->len + src->len > dst->cap) {
        size_t cap = dst->cap ? dst->cap : 65536;
        while (cap < dst->len + src->len)
            cap *= 2;
        uint64_t *p = realloc(dst->ns, cap * sizeof *p);
        if (!p)
            return sys_fail("realloc (latencies)");
        dst->ns = p;
        dst->cap = cap;
    }
    if (src->len)
        memcpy(dst->ns + dst->len, src->ns, src->len * sizeof *src->ns);
    dst->len += src->len;
    return 0;
}

/* Joins the threads, runs `finish`, fills *out (latencies not summarised) and appends every
 * latency to *lat; frees h. 0, or -1 if an operation, finish or the append failed. */
static int join_collect(struct run_handle *h, run_result *out, lat_vec *lat)
{
    for (unsigned i = 0; i < h->spec.threads; i++)
        pthread_join(h->threads[i].tid, NULL);
    bool failed = atomic_load(&h->failed);
    if (!failed && h->spec.finish && h->spec.finish(h->spec.ctx) != 0)
        failed = true;
    double t1 = now_sec(), cpu1 = cpu_sec();
    memset(out, 0, sizeof *out);
    for (unsigned i = 0; i < h->spec.threads; i++) {
        out->ops += h->threads[i].ops;
        out->bytes += h->threads[i].bytes;
        if (!failed && lat_append(lat, &h->threads[i].lat) != 0)
            failed = true;
    }
    out->seconds = t1 - h->t0;
    out->cpu_seconds = cpu1 - h->cpu0;
    if (failed)
        fprintf(stderr, "error: run %s failed\n", h->spec.name);
    free_handle(h);
    return failed ? -1 : 0;
}

int run_join(run_handle *h, run_result *out)
{
    lat_vec lat = {0};
    int rc = join_collect(h, out, &lat);
    out->lat = summarize_latencies(lat.ns, lat.len);
    free(lat.ns);
    return rc;
}

int run_ops(const run_spec *spec, run_result *out)
{
    run_handle *h;
    if (run_start(spec, &h) != 0)
        return -1;
    return run_join(h, out);
}

/* ---- series ----------------------------------------------------------------------------- */
int series_join(run_series *s, run_handle *h)
{
    run_result r;
    int rc = join_collect(h, &r, &s->lat);
    s->sum.ops += r.ops;
    s->sum.bytes += r.bytes;
    s->sum.seconds += r.seconds;
    s->sum.cpu_seconds += r.cpu_seconds;
    return rc;
}

int series_start(run_series *s, const run_spec *spec, run_handle **out)
{
    run_spec next = *spec;
    next.first_seq = s->sum.ops;
    return run_start(&next, out);
}

int series_run(run_series *s, const run_spec *spec)
{
    run_handle *h;
    if (series_start(s, spec, &h) != 0)
        return -1;
    return series_join(s, h);
}

const run_result *series_result(run_series *s)
{
    s->sum.lat = summarize_latencies(s->lat.ns, s->lat.len);
    return &s->sum;
}

void series_free(run_series *s)
{
    free(s->lat.ns);
    memset(s, 0, sizeof *s);
}

double result_mbps(const run_result *r)
{
    return r->seconds > 0 ? (double)r->bytes / r->seconds / 1e6 : 0.0;
}

double result_ops_per_sec(const run_result *r)
{
    return r->seconds > 0 ? (double)r->ops / r->seconds : 0.0;
}

double result_cpu_per_gb(const run_result *r)
{
    return r->bytes ? r->cpu_seconds / ((double)r->bytes / 1e9) : 0.0;
}

/* ---- percentiles ------------------------------------------------------------------------ */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least p of the sample at or below it. */
static double percentile_us(const uint64_t *sorted, size_t n, double p)
{
    double rank = p * (double)n;
    size_t k = (size_t)rank;
    if ((double)k < rank)
        k++;
    size_t idx = k ? k - 1 : 0;
    if (idx >= n)
        idx = n - 1;
    return (double)sorted[idx] / 1e3;
}

lat_summary summarize_latencies(uint64_t *ns, size_t n)
{
    lat_summary s = {0};
    if (n == 0)
        return s;
    qsort(ns, n, sizeof *ns, cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)ns[i];
    s.count = n;
    s.mean_us = sum / (double)n / 1e3;
    s.p50_us = percentile_us(ns, n, 0.50);
    s.p99_us = percentile_us(ns, n, 0.99);
    s.p999_us = percentile_us(ns, n, 0.999);
    s.max_us = (double)ns[n - 1] / 1e3;
    return s;
}

/* C shims for the Go binding (included by the cgo preambles of this package).
 *
 * Every shim calls one dcache function and returns, in one struct: the result code, one
 * number (a length or a size), one pointer (a new handle or buffer) and, on failure, a
 * malloc'd copy of dcache_last_error_message() taken right after the failing call, on the
 * same OS thread. Go frees msg. Doing this inside one C call matters: a goroutine may move
 * to another OS thread between two cgo calls, and the library keeps the message per thread.
 */
#ifndef DCACHE_GO_SHIM_H
#define DCACHE_GO_SHIM_H

#include <stdlib.h>
#include <string.h>
#include "dcache.h"

typedef struct {
    uint32_t code;
    uint64_t n;
    void *ptr;
    char *msg;
} dcg_res;

static inline dcg_res dcg_make(dcache_result r, uint64_t n, void *ptr) {
    dcg_res out;
    out.code = r;
    out.n = n;
    out.ptr = ptr;
    out.msg = NULL;
    if (r != DCACHE_OK) {
    	const char *m = dcache_last_error_message();
    	if (m != NULL && m[0] != '\0') out.msg = strdup(m);
    }
    return out;
}

static inline dcg_res dcg_open(const char *path, const dcache_options *opts) {
    dcache *c = NULL;
    dcache_result r = dcache_open(path, opts, &c);
    return dcg_make(r, 0, r == DCACHE_OK ? c : NULL);
}
static inline dcg_res dcg_close(dcache *c) { return dcg_make(dcache_close(c), 0, NULL); }
static inline dcg_res dcg_flush(dcache *c) { return dcg_make(dcache_flush(c), 0, NULL); }
static inline dcg_res dcg_put(dcache *c, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
                       uint64_t ttl) {
    return dcg_make(dcache_put(c, k, kl, v, vl, ttl), 0, NULL);
}
static inline dcg_res dcg_get(dcache *c, const uint8_t *k, size_t kl, uint8_t *buf, size_t bl) {
    size_t n = 0;
    dcache_result r = dcache_get(c, k, kl, buf, bl, &n);
    return dcg_make(r, (r == DCACHE_OK || r == DCACHE_BUFFER_TOO_SMALL) ? n : 0, NULL);
}
static inline dcg_res dcg_get_range(dcache *c, const uint8_t *k, size_t kl, uint64_t off, uint8_t *buf,
                             size_t len) {
    size_t n = 0;
    dcache_result r = dcache_get_range(c, k, kl, off, buf, len, &n);
    return dcg_make(r, r == DCACHE_OK ? n : 0, NULL);
}
static inline dcg_res dcg_value_size(dcache *c, const uint8_t *k, size_t kl) {
    uint64_t n = 0;
    dcache_result r = dcache_value_size(c, k, kl, &n);
    return dcg_make(r, r == DCACHE_OK ? n : 0, NULL);
}
static inline dcg_res dcg_delete(dcache *c, const uint8_t *k, size_t kl) {
    return dcg_make(dcache_delete(c, k, kl), 0, NULL);
}
static inline dcg_res dcg_stats(dcache *c, dcache_stats *out) {
    memset(out, 0, sizeof *out);
    out->struct_size = (uint32_t)sizeof *out;
    return dcg_make(dcache_get_stats(c, out), 0, NULL);
}
static inline dcg_res dcg_writer_open(dcache *c, const uint8_t *k, size_t kl, uint64_t ttl) {
    dcache_writer *w = NULL;
    dcache_result r = dcache_writer_open(c, k, kl, ttl, &w);
    return dcg_make(r, 0, r == DCACHE_OK ? w : NULL);
}
static inline dcg_res dcg_writer_write(dcache_writer *w, const uint8_t *d, size_t n) {
    return dcg_make(dcache_writer_write(w, d, n), 0, NULL);
}
static inline dcg_res dcg_writer_commit(dcache_writer *w) {
    return dcg_make(dcache_writer_commit(w), 0, NULL);
}

static inline dcg_res dcg_queue_open(dcache *c, uint32_t depth) {
    dcache_queue *q = NULL;
    dcache_result r = dcache_queue_open(c, depth, &q);
    return dcg_make(r, 0, r == DCACHE_OK ? q : NULL);
}
static inline dcg_res dcg_submit_get(dcache_queue *q, const uint8_t *k, size_t kl, uint8_t *buf,
                                     size_t bl, uint64_t id) {
    return dcg_make(dcache_submit_get(q, k, kl, buf, bl, id), 0, NULL);
}
static inline dcg_res dcg_submit_get_range(dcache_queue *q, const uint8_t *k, size_t kl, uint64_t off,
                                           uint8_t *buf, size_t len, uint64_t id) {
    return dcg_make(dcache_submit_get_range(q, k, kl, off, buf, len, id), 0, NULL);
}
/* Buffers the queue reads into live in C memory (cgo forbids C keeping Go memory past a
 * call), 4096-aligned so that large values are read in place. */
static inline void *dcg_alloc(size_t n) {
    size_t rounded = (n + 4095) / 4096 * 4096;
    return aligned_alloc(4096, rounded ? rounded : 4096);
}

static inline dcg_res dcg_file_open(const char *path, const dcache_file_options *opts) {
    dcache_file *f = NULL;
    dcache_result r = dcache_file_open(path, opts, &f);
    return dcg_make(r, 0, r == DCACHE_OK ? f : NULL);
}
static inline dcg_res dcg_file_close(dcache_file *f) { return dcg_make(dcache_file_close(f), 0, NULL); }
static inline dcg_res dcg_file_pread(dcache_file *f, uint8_t *buf, size_t len, uint64_t off) {
    size_t n = 0;
    dcache_result r = dcache_file_pread(f, buf, len, off, &n);
    return dcg_make(r, r == DCACHE_OK ? n : 0, NULL);
}
static inline dcg_res dcg_file_pwrite(dcache_file *f, const uint8_t *buf, size_t len, uint64_t off) {
    return dcg_make(dcache_file_pwrite(f, buf, len, off), 0, NULL);
}
static inline dcg_res dcg_file_size(dcache_file *f) {
    uint64_t n = 0;
    dcache_result r = dcache_file_size(f, &n);
    return dcg_make(r, r == DCACHE_OK ? n : 0, NULL);
}
static inline dcg_res dcg_file_sync(dcache_file *f) { return dcg_make(dcache_file_sync(f), 0, NULL); }
static inline dcg_res dcg_file_write_all(const char *path, const uint8_t *d, size_t n,
                                  const dcache_file_options *opts) {
    return dcg_make(dcache_file_write_all(path, d, n, opts), 0, NULL);
}
static inline dcg_res dcg_file_read_all(const char *path, const dcache_file_options *opts) {
    uint8_t *d = NULL;
    size_t n = 0;
    dcache_result r = dcache_file_read_all(path, opts, &d, &n);
    return dcg_make(r, r == DCACHE_OK ? n : 0, r == DCACHE_OK ? d : NULL);
}

#endif

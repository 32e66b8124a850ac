/* bench/util.h: small helpers shared by the benchmark's phases: clocks, CPU time, error
 * reporting for dcache results and system calls, aligned buffers, a random generator,
 * deterministic keys and values, and page-cache residency of a file.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "dcache.h"

#define KIB ((uint64_t)1024)
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

/* ---- clocks ---------------------------------------------------------------------------- */
uint64_t now_ns(void);          /* CLOCK_MONOTONIC, nanoseconds */
double now_sec(void);           /* CLOCK_MONOTONIC, seconds */
double cpu_sec(void);           /* user + system CPU of this process (all threads), seconds */

/* ---- errors: each prints one line to stderr and returns -1 ----------------------------- */
/* 0 when r is DCACHE_OK; else prints "error: what: strerror (last_error_message)". Call it
 * right after the failing call: the detail is this thread's and is overwritten by the next. */
int dc_check(dcache_result r, const char *what);
int sys_fail(const char *what);                       /* "error: what: strerror(errno)" */
int bench_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- memory ---------------------------------------------------------------------------- */
void *alloc_aligned(size_t size);   /* 4096-aligned, zeroed; NULL after printing an error */

/* ---- random numbers (xorshift64*, per thread) ------------------------------------------ */
uint64_t mix64(uint64_t x);                 /* splitmix64 finaliser: a well-spread hash */
uint64_t rng_seed(uint64_t a, uint64_t b);  /* a non-zero state from two numbers */
uint64_t rng_next(uint64_t *state);
uint64_t rng_below(uint64_t *state, uint64_t n);   /* uniform enough in [0, n), n > 0 */

/* ---- keys and values ------------------------------------------------------------------- */
/* Values are slices of one random pool: value(id) starts at a hashed offset, so each key
 * has its own bytes (a value returned for the wrong key would not compare equal) and no
 * put needs a copy. */
typedef struct value_pool {
    uint8_t *bytes;
    size_t span;      /* number of distinct start offsets */
    size_t max_len;   /* longest value served */
} value_pool;

int pool_init(value_pool *p, size_t max_len);
void pool_free(value_pool *p);
const uint8_t *pool_value(const value_pool *p, uint64_t id, size_t len);

#define KEY_MAX 48
/* Writes "<prefix>-<id>" into buf (KEY_MAX bytes) and returns its length. */
size_t make_key(char buf[KEY_MAX], const char *prefix, uint64_t id);

/* ---- files ----------------------------------------------------------------------------- */
int remove_if_present(const char *path);
/* Page-cache residency from mincore(2) over a read-only mmap of the file (pages are not
 * faulted in by the check). */
int file_residency(const char *path, uint64_t *resident_bytes, uint64_t *file_bytes);
/* A short name of the file system that holds path ("ext4", "tmpfs", ..., or a hex magic). */
const char *fs_name(const char *path, char buf[32]);

#endif

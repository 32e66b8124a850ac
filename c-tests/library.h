/* Calling the library: options, a cache made for a test, result names, the log callback.
 * Part of the C tests' helpers; tests include common.h, which includes every part. */
#ifndef DC_TEST_LIBRARY_H
#define DC_TEST_LIBRARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "dcache.h"

/* ---- cache helpers ---------------------------------------------------------------------- */
void cache_opts(dcache_options *o, uint64_t capacity, uint32_t flags);
/* opens with CREATE and the given capacity; dies on failure */
dcache *cache_create(const char *path, uint64_t capacity, uint32_t extra_flags);
/* get into a malloc'd buffer; returns the result; *out NULL on failure */
dcache_result cache_get_alloc(dcache *c, const uint8_t *key, size_t klen, uint8_t **out,
                              size_t *len);

/* ---- the log callback ---------------------------------------------------------------------- */
typedef struct {
    unsigned long count[5];      /* by level 1..4; [0] = any other level */
    char last_warn[512];
} log_counts_t;
void log_capture_start(log_counts_t *counts);   /* installs a counting callback */
void log_capture_stop(void);                    /* restores the default (NULL) */

/* ---- result codes, flags and modes ----------------------------------------------------- */
bool is_pow2_u64(uint64_t x);
const char *rc_name(dcache_result r);  /* "DCACHE_NOT_FOUND", ... or "unknown(N)" */
/* an io_mode value that is not AUTO, DIRECT or BUFFERED */
uint32_t unknown_io_mode(void);
/* a flag bit that is none of the given known bits */
uint32_t unknown_flag_bit(uint32_t known);

#endif

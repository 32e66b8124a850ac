/* Value patterns: random numbers, self-verifying keys and values, guarded memory.
 * Part of the C tests' helpers; tests include common.h, which includes every part. */
#ifndef DC_TEST_VALUES_H
#define DC_TEST_VALUES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "dcache.h"

/* ---- random numbers (splitmix64; deterministic per seed) ------------------------------- */
typedef struct { uint64_t s; } rng_t;
uint64_t splitmix64(uint64_t *state);
void rng_seed(rng_t *r, uint64_t seed);
uint64_t rng_next(rng_t *r);
uint64_t rng_below(rng_t *r, uint64_t n);              /* [0, n) ; n > 0 */
uint64_t rng_range(rng_t *r, uint64_t lo, uint64_t hi); /* [lo, hi] */
void rng_fill(rng_t *r, void *buf, size_t len);
uint64_t tst_seed(void);   /* $DCACHE_TEST_SEED or time-based; printed once */

/* ---- hashing ----------------------------------------------------------------------------- */
uint64_t fnv1a64(const void *data, size_t len);

/* ---- self-verifying keys and values ------------------------------------------------------ */
/* Key number idx of length len (len >= 1). Keys with different (idx, len) differ when
 * len >= 5; for len < 5 only idx < 256^(len-1) is unique per length. */
void key_make(uint8_t *buf, uint64_t idx, size_t len);
/* The value for (key, version) of length len. When len >= VAL_HDR, the value starts with a
 * header naming the version and the length, so a value can be checked without knowing the
 * version (val_parse). Shorter values are checked with val_check and a known version. */
#define VAL_HDR 24
void val_fill(uint8_t *buf, size_t len, const uint8_t *key, size_t klen, uint64_t version);
bool val_check(const uint8_t *buf, size_t len, const uint8_t *key, size_t klen, uint64_t version);
/* true when buf is exactly the value of some version for key (len >= VAL_HDR). */
bool val_parse(const uint8_t *buf, size_t len, const uint8_t *key, size_t klen, uint64_t *version);
/* the byte of the value for (key, version, total len) at position pos (for range checks) */
void val_slice(uint8_t *out, size_t total_len, uint64_t off, size_t n, const uint8_t *key,
               size_t klen, uint64_t version);

/* ---- memory that ends at an inaccessible page -------------------------------------------- */
/* len readable+writable bytes immediately followed by a PROT_NONE page: any read past the
 * end faults. */
uint8_t *guarded_alloc(size_t len);
void guarded_free(uint8_t *p, size_t len);

#endif

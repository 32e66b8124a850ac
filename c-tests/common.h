/* Shared helpers for the libdcache C tests.
 *
 * Every test program:
 *   TEST_MAIN(name) { tst_begin("name"); ... return tst_finish(); }
 * prints one closing line "N passed, M failed" and exits non-zero on any failure.
 *
 * When built with -DDC_COMBINED (the plain binary run under valgrind), TEST_MAIN defines a
 * function tmain_<name>() instead of main(), and tst_quick() is true so that loops run fewer
 * iterations (valgrind is 20-50x slower).
 */
#ifndef DC_TEST_COMMON_H
#define DC_TEST_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "dcache.h"

#define KiB ((uint64_t)1024)
#define MiB (1024 * KiB)

#ifdef DC_COMBINED
#define TEST_MAIN(name) int tmain_##name(int argc, char **argv)
#else
#define TEST_MAIN(name) int main(int argc, char **argv)
#endif

/* ---- the test framework -------------------------------------------------------------- */
void tst_begin(const char *name);
int tst_finish(void);                 /* prints "N passed, M failed"; returns the exit code */
int tst_skip(const char *reason);     /* prints "SKIP: reason" and "0 passed, 0 failed"; 0 */
bool tst_quick(void);                 /* true in the valgrind build */
void tst_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
unsigned long tst_failures(void);
/* checks passed and failed by every test finished so far in this process */
void tst_totals(unsigned long *passed, unsigned long *failed);

bool tst_check(bool ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bool tst_check_rc(dcache_result got, dcache_result want, const char *file, int line,
                  const char *expr, const char *want_name);
bool tst_check_rc_in(dcache_result got, const dcache_result *allowed, size_t n,
                     const char *file, int line, const char *expr);
bool tst_check_u64(uint64_t got, uint64_t want, const char *file, int line, const char *expr,
                   const char *want_expr);
bool tst_check_mem(const void *got, const void *want, size_t len, const char *file, int line,
                   const char *what);

#define CHECK(cond) tst_check(!!(cond), __FILE__, __LINE__, "%s", #cond)
#define CHECKF(cond, ...) tst_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define CHECK_RC(expr, want) tst_check_rc((expr), (want), __FILE__, __LINE__, #expr, #want)
#define CHECK_RC_IN(expr, ...)                                                              \
    do {                                                                                    \
        const dcache_result allowed_[] = {__VA_ARGS__};                                     \
        tst_check_rc_in((expr), allowed_, sizeof allowed_ / sizeof allowed_[0], __FILE__,    \
                        __LINE__, #expr);                                                   \
    } while (0)
#define CHECK_EQ(got, want)                                                                 \
    tst_check_u64((uint64_t)(got), (uint64_t)(want), __FILE__, __LINE__, #got, #want)
#define CHECK_MEM(got, want, len, what) tst_check_mem((got), (want), (len), __FILE__, __LINE__, (what))

/* a fatal setup failure (not a test result): prints and exits 1 after cleanup */
void tst_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ---- cleanup ------------------------------------------------------------------------- */
/* Registered actions run in reverse order at tst_finish, at exit and on SIGINT/SIGTERM/
 * SIGHUP/SIGALRM. tst_cleanup_run_one runs (and removes) one action early. */
typedef void (*tst_cleanup_fn)(void *arg);
int tst_defer(tst_cleanup_fn fn, void *arg);          /* returns a handle */
void tst_cleanup_run_one(int handle);
void tst_cleanup_all(void);

/* ---- work directory -------------------------------------------------------------------- */
/* A fresh directory made with mkdtemp under $DCACHE_TEST_TMPDIR, else $TMPDIR, else
 * ./build/tmp, never on tmpfs (tmpfs takes O_DIRECT even unaligned and would prove nothing).
 * Removed recursively by the cleanup. */
const char *tst_workdir(void);
/* snprintf(buf, n, "%s/%s", workdir, name) and returns buf */
char *tst_path(char *buf, size_t n, const char *name);
void rm_rf(const char *path);
bool path_exists(const char *path);
long statfs_type(const char *path);

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

/* ---- files (ordinary, buffered I/O, for checking what the library did) ------------------ */
bool file_read_all_plain(const char *path, uint8_t **data, size_t *len); /* malloc'd */
bool file_write_plain(const char *path, const void *data, size_t len);   /* O_TRUNC + fsync */
bool file_hash(const char *path, uint64_t *hash, uint64_t *size, struct timespec *mtime);
int64_t file_size_plain(const char *path);  /* -1 on error */

/* ---- memory that ends at an inaccessible page -------------------------------------------- */
/* len readable+writable bytes immediately followed by a PROT_NONE page: any read past the
 * end faults. */
uint8_t *guarded_alloc(size_t len);
void guarded_free(uint8_t *p, size_t len);

/* ---- privileges, loop devices, ramfs ------------------------------------------------------- */
bool tst_is_root(void);
/* losetup --find --show [--sector-size N] img; detaches in the cleanup. Returns false and
 * notes why on failure. dev gets e.g. "/dev/loop3". */
bool tst_loop_attach(const char *img, unsigned sector_size, char *dev, size_t devlen);
/* Creates the image `name` of `size` bytes in the work directory and attaches it. */
bool tst_loop_image(const char *name, uint64_t size, unsigned sector_size, char *dev, size_t devlen);
bool tst_mount_ramfs(const char *dir);   /* mkdir + mount -t ramfs; unmounts in the cleanup */
uint64_t blockdev_size(const char *dev);

/* ---- the log callback ---------------------------------------------------------------------- */
typedef struct {
    unsigned long count[5];      /* by level 1..4; [0] = any other level */
    char last_warn[512];
} log_counts_t;
void log_capture_start(log_counts_t *counts);   /* installs a counting callback */
void log_capture_stop(void);                    /* restores the default (NULL) */

/* ---- cache helpers ---------------------------------------------------------------------- */
void cache_opts(dcache_options *o, uint64_t capacity, uint32_t flags);
/* opens with CREATE and the given capacity; dies on failure */
dcache *cache_create(const char *path, uint64_t capacity, uint32_t extra_flags);
/* get into a malloc'd buffer; returns the result; *out NULL on failure */
dcache_result cache_get_alloc(dcache *c, const uint8_t *key, size_t klen, uint8_t **out,
                              size_t *len);

/* ---- misc --------------------------------------------------------------------------------- */
double now_sec(void);                 /* CLOCK_MONOTONIC */
void sleep_ms(unsigned ms);
bool is_pow2_u64(uint64_t x);
const char *rc_name(dcache_result r);  /* "DCACHE_NOT_FOUND", ... or "unknown(N)" */
/* an io_mode value that is not AUTO, DIRECT or BUFFERED */
uint32_t unknown_io_mode(void);
/* a flag bit that is none of the given known bits */
uint32_t unknown_flag_bit(uint32_t known);
/* fork + exec of this same program with the given arguments (argv[0] is set for you);
 * returns the pid, or -1. Child's stdin is /dev/null. extra_fd (if >= 0) stays open. */
pid_t spawn_self(char *const args[], int extra_fd);
const char *self_exe(void);

#endif

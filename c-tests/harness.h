/* The test framework: checks and their counts, cleanup actions, the work directory.
 * Part of the C tests' helpers; tests include common.h, which includes every part. */
#ifndef DC_TEST_HARNESS_H
#define DC_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "dcache.h"

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

#endif

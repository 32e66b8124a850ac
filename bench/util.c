/* bench/util.c: see util.h. */
#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

/* ---- clocks ---------------------------------------------------------------------------- */
uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double now_sec(void)
{
    return (double)now_ns() / 1e9;
}

static double timeval_sec(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

double cpu_sec(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0.0;
    return timeval_sec(ru.ru_utime) + timeval_sec(ru.ru_stime);
}

/* ---- errors ---------------------------------------------------------------------------- */
int dc_check(dcache_result r, const char *what)
{
    if (r == DCACHE_OK)
        return 0;
    const char *detail = dcache_last_error_message();
    fprintf(stderr, "error: %s: %s (%s)\n", what, dcache_strerror(r), detail);
    return -1;
}

int sys_fail(const char *what)
{
    fprintf(stderr, "error: %s: %s\n", what, strerror(errno));
    return -1;
}

int bench_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

/* ---- memory ---------------------------------------------------------------------------- */
void *alloc_aligned(size_t size)
{
    void *p = NULL;
    int rc = posix_memalign(&p, 4096, size ? size : 1);
    if (rc != 0) {
        errno = rc;
        sys_fail("posix_memalign");
        return NULL;
    }
    memset(p, 0, size);
    return p;
}

/* ---- random numbers -------------------------------------------------------------------- */
uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t rng_seed(uint64_t a, uint64_t b)
{
    uint64_t s = mix64(a * 0x100000001b3ull ^ mix64(b));
    return s ? s : 1;
}

uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

uint64_t rng_below(uint64_t *state, uint64_t n)
{
    return rng_next(state) % n;
}

/* ---- keys and values ------------------------------------------------------------------- */
#define POOL_SPAN (1u << 20)

int pool_init(value_pool *p, size_t max_len)
{
    p->span = POOL_SPAN;
    p->max_len = max_len;
    p->bytes = alloc_aligned(p->span + max_len);
    if (!p->bytes)
        return -1;
    uint64_t state = rng_seed(0xdcac4e, max_len);
    for (size_t i = 0; i + 8 <= p->span + max_len; i += 8) {
        uint64_t v = rng_next(&state);
        memcpy(p->bytes + i, &v, 8);
    }
    return 0;
}

void pool_free(value_pool *p)
{
    free(p->bytes);
    p->bytes = NULL;
}

const uint8_t *pool_value(const value_pool *p, uint64_t id, size_t len)
{
    (void)len; /* every len up to max_len fits after any start offset */
    return p->bytes + mix64(id) % p->span;
}

size_t make_key(char buf[KEY_MAX], const char *prefix, uint64_t id)
{
    int n = snprintf(buf, KEY_MAX, "%s-%llu", prefix, (unsigned long long)id);
    return n < 0 ? 0 : (size_t)n;
}

/* ---- files ----------------------------------------------------------------------------- */
int remove_if_present(const char *path)
{
    if (unlink(path) != 0 && errno != ENOENT)
        return sys_fail(path);
    return 0;
}

static uint64_t count_resident(const unsigned char *vec, size_t pages)
{
    uint64_t n = 0;
    for (size_t i = 0; i < pages; i++)
        n += vec[i] & 1;
    return n;
}

int file_residency(const char *path, uint64_t *resident_bytes, uint64_t *file_bytes)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sys_fail(path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        sys_fail("fstat");
        close(fd);
        return -1;
    }
    size_t len = (size_t)st.st_size, page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (len + page - 1) / page;
    int rc = -1;
    void *map = MAP_FAILED;
    unsigned char *vec = malloc(pages ? pages : 1);
    if (!vec) {
        sys_fail("malloc");
        goto out;
    }
    if (len > 0) {
        map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            sys_fail("mmap");
            goto out;
        }
        if (mincore(map, len, vec) != 0) {
            sys_fail("mincore");
            goto out;
        }
    }
    *resident_bytes = count_resident(vec, len ? pages : 0) * page;
    *file_bytes = (uint64_t)len;
    rc = 0;
out:
    if (map != MAP_FAILED)
        munmap(map, len);
    free(vec);
    close(fd);
    return rc;
}

const char *fs_name(const char *path, char buf[32])
{
    static const struct { unsigned long magic; const char *name; } known[] = {
        {0xEF53, "ext4"},      {0x01021994, "tmpfs"}, {0x58465342, "xfs"},
        {0x9123683E, "btrfs"}, {0x858458f6, "ramfs"}, {0x794c7630, "overlayfs"},
        {0x6969, "nfs"},       {0x65735546, "fuse"},
    };
    struct statfs sf;
    if (statfs(path, &sf) != 0)
        return "unknown";
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if ((unsigned long)sf.f_type == known[i].magic)
            return known[i].name;
    snprintf(buf, 32, "0x%lx", (unsigned long)sf.f_type);
    return buf;
}

/* Calling the library: options, a cache made for a test, result names, the log callback. See
 * library.h. */
#include "common.h"

#include <pthread.h>

/* ---- cache helpers ---------------------------------------------------------------------------- */

void cache_opts(dcache_options *o, uint64_t capacity, uint32_t flags)
{
    dcache_options_init(o);
    o->capacity = capacity;
    o->flags = flags;
}

dcache *cache_create(const char *path, uint64_t capacity, uint32_t extra_flags)
{
    dcache_options o;
    cache_opts(&o, capacity, DCACHE_OPEN_CREATE | extra_flags);
    dcache *c = NULL;
    dcache_result r = dcache_open(path, &o, &c);
    if (r != DCACHE_OK || !c)
        tst_die("dcache_open(%s, capacity %llu) = %s: %s", path, (unsigned long long)capacity,
                rc_name(r), dcache_last_error_message());
    return c;
}

dcache_result cache_get_alloc(dcache *c, const uint8_t *key, size_t klen, uint8_t **out,
                              size_t *len)
{
    *out = NULL;
    size_t need = 0;
    dcache_result r = dcache_get(c, key, klen, NULL, 0, &need);
    if (r == DCACHE_OK) {
        *out = malloc(1);
        *len = 0;
        return r;
    }
    if (r != DCACHE_BUFFER_TOO_SMALL)
        return r;
    uint8_t *buf = malloc(need);
    if (!buf)
        tst_die("malloc(%zu)", need);
    size_t got = 0;
    r = dcache_get(c, key, klen, buf, need, &got);
    if (r != DCACHE_OK) {
        free(buf);
        return r;
    }
    *out = buf;
    *len = got;
    return r;
}

/* ---- the log callback ----------------------------------------------------------------------- */

static log_counts_t *g_log_counts;
static pthread_mutex_t g_log_lock = PTHREAD_MUTEX_INITIALIZER;

static void counting_log(void *userdata, uint32_t level, const char *message)
{
    log_counts_t *c = userdata;
    pthread_mutex_lock(&g_log_lock);
    c->count[level >= 1 && level <= 4 ? level : 0]++;
    if (level == DCACHE_LOG_WARN)
        snprintf(c->last_warn, sizeof c->last_warn, "%s", message ? message : "(null)");
    pthread_mutex_unlock(&g_log_lock);
}

void log_capture_start(log_counts_t *counts)
{
    memset(counts, 0, sizeof *counts);
    g_log_counts = counts;
    dcache_set_log_callback(counting_log, counts);
}

void log_capture_stop(void)
{
    dcache_set_log_callback(NULL, NULL);
    g_log_counts = NULL;
}

/* ---- result codes, flags and modes -------------------------------------------------------- */

bool is_pow2_u64(uint64_t x)
{
    return x && !(x & (x - 1));
}

const char *rc_name(dcache_result r)
{
    static __thread char buf[32];
#define NAME(x) if (r == x) return #x
    NAME(DCACHE_OK);
    NAME(DCACHE_NOT_FOUND);
    NAME(DCACHE_BUFFER_TOO_SMALL);
    NAME(DCACHE_INVALID_ARGUMENT);
    NAME(DCACHE_TOO_LARGE);
    NAME(DCACHE_RANGE);
    NAME(DCACHE_IO_ERROR);
    NAME(DCACHE_NO_SPACE);
    NAME(DCACHE_NOT_A_CACHE);
    NAME(DCACHE_INCOMPATIBLE);
    NAME(DCACHE_LOCKED);
    NAME(DCACHE_UNSUPPORTED);
    NAME(DCACHE_READ_ONLY);
    NAME(DCACHE_OUT_OF_MEMORY);
    NAME(DCACHE_INTERNAL);
#undef NAME
    snprintf(buf, sizeof buf, "unknown(%u)", (unsigned)r);
    return buf;
}

uint32_t unknown_io_mode(void)
{
    uint32_t m = 1000;
    while (m == DCACHE_IO_AUTO || m == DCACHE_IO_DIRECT || m == DCACHE_IO_BUFFERED)
        m++;
    return m;
}

uint32_t unknown_flag_bit(uint32_t known)
{
    for (int b = 31; b >= 0; b--)
        if (!(known & (UINT32_C(1) << b)))
            return UINT32_C(1) << b;
    return 0;
}

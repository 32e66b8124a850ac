/* Value patterns: random numbers, self-verifying keys and values, guarded memory. See values.h. */
#include "common.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- random numbers ------------------------------------------------------------------------ */

#define GOLDEN UINT64_C(0x9E3779B97F4A7C15)

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

uint64_t splitmix64(uint64_t *state)
{
    *state += GOLDEN;
    return mix64(*state);
}

void rng_seed(rng_t *r, uint64_t seed)
{
    r->s = seed;
}

uint64_t rng_next(rng_t *r)
{
    return splitmix64(&r->s);
}

uint64_t rng_below(rng_t *r, uint64_t n)
{
    return n ? rng_next(r) % n : 0;
}

uint64_t rng_range(rng_t *r, uint64_t lo, uint64_t hi)
{
    if (hi <= lo)
        return lo;
    if (lo == 0 && hi == UINT64_MAX)
        return rng_next(r);
    return lo + rng_below(r, hi - lo + 1);
}

void rng_fill(rng_t *r, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len >= 8) {
        uint64_t v = rng_next(r);
        memcpy(p, &v, 8);
        p += 8;
        len -= 8;
    }
    if (len) {
        uint64_t v = rng_next(r);
        memcpy(p, &v, len);
    }
}

uint64_t tst_seed(void)
{
    static bool printed;
    static uint64_t seed;
    if (!printed) {
        const char *e = getenv("DCACHE_TEST_SEED");
        if (e && *e) {
            seed = strtoull(e, NULL, 0);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            seed = mix64((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
                   (uint64_t)getpid();
        }
        printed = true;
        printf("   seed %llu (set DCACHE_TEST_SEED to repeat)\n", (unsigned long long)seed);
    }
    return seed;
}

/* ---- hashing ---------------------------------------------------------------------------------- */

uint64_t fnv1a64(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* ---- self-verifying keys and values -------------------------------------------------------- */

void key_make(uint8_t *buf, uint64_t idx, size_t len)
{
    if (len == 0)
        return;
    buf[0] = 'k';
    size_t n = len - 1 < 8 ? len - 1 : 8;
    for (size_t i = 0; i < n; i++)
        buf[1 + i] = (uint8_t)(idx >> (8 * i));
    uint64_t s = mix64(idx * GOLDEN ^ (uint64_t)len);
    for (size_t i = 1 + n; i < len; i++) {
        if ((i - 1 - n) % 8 == 0)
            s = mix64(s + GOLDEN);
        buf[i] = (uint8_t)(s >> (8 * ((i - 1 - n) % 8)));
    }
}

static uint64_t val_seed(const uint8_t *key, size_t klen, uint64_t version, size_t len)
{
    return fnv1a64(key, klen) ^ mix64(version * GOLDEN) ^
           mix64((uint64_t)len * UINT64_C(0xD6E8FEB86659FD93));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void val_slice(uint8_t *out, size_t total_len, uint64_t off, size_t n, const uint8_t *key,
               size_t klen, uint64_t version)
{
    uint64_t seed = val_seed(key, klen, version, total_len);
    uint8_t hdr[VAL_HDR];
    if (total_len >= VAL_HDR) {
        put_le64(hdr, version);
        put_le64(hdr + 8, (uint64_t)total_len);
        put_le64(hdr + 16, fnv1a64(key, klen) ^ version);
    }
    size_t i = 0;
    while (i < n) {
        uint64_t pos = off + i;
        if (total_len >= VAL_HDR && pos < VAL_HDR) {
            out[i++] = hdr[pos];
            continue;
        }
        uint64_t word = mix64(seed + (pos / 8 + 1) * GOLDEN);
        unsigned b = (unsigned)(pos % 8);
        for (; b < 8 && i < n; b++)
            out[i++] = (uint8_t)(word >> (8 * b));
    }
}

void val_fill(uint8_t *buf, size_t len, const uint8_t *key, size_t klen, uint64_t version)
{
    val_slice(buf, len, 0, len, key, klen, version);
}

bool val_check(const uint8_t *buf, size_t len, const uint8_t *key, size_t klen, uint64_t version)
{
    uint8_t tmp[4096];
    for (size_t off = 0; off < len; off += sizeof tmp) {
        size_t n = len - off < sizeof tmp ? len - off : sizeof tmp;
        val_slice(tmp, len, off, n, key, klen, version);
        if (memcmp(tmp, buf + off, n) != 0)
            return false;
    }
    return true;
}

bool val_parse(const uint8_t *buf, size_t len, const uint8_t *key, size_t klen, uint64_t *version)
{
    if (len < VAL_HDR)
        return false;
    uint64_t v = get_le64(buf);
    if (get_le64(buf + 8) != (uint64_t)len)
        return false;
    if (get_le64(buf + 16) != (fnv1a64(key, klen) ^ v))
        return false;
    if (!val_check(buf, len, key, klen, v))
        return false;
    if (version)
        *version = v;
    return true;
}

/* ---- guarded memory ----------------------------------------------------------------------- */

uint8_t *guarded_alloc(size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = (len + page - 1) / page;
    size_t total = (data_pages + 1) * page;
    uint8_t *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        tst_die("mmap: %s", strerror(errno));
    if (mprotect(base + data_pages * page, page, PROT_NONE) != 0)
        tst_die("mprotect: %s", strerror(errno));
    return base + data_pages * page - len;
}

void guarded_free(uint8_t *p, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = (len + page - 1) / page;
    uint8_t *base = p + len - data_pages * page;
    munmap(base, (data_pages + 1) * page);
}

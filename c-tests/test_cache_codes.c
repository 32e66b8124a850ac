/* Every result code API.md names for the cache, each from the call that should give it:
 * INVALID_ARGUMENT (NULL cache, key, value or out-pointer; empty key; unknown flag bits or
 * io_mode; alignment not a power of two >= 512; capacity missing or under 8 MiB for a new
 * cache; max_value_size over what the geometry holds), TOO_LARGE (key of 4097 bytes, value over
 * max_value_size: refused before the memory behind the length is read, which the guard page
 * proves), NOT_FOUND, BUFFER_TOO_SMALL (with the size; buf untouched), RANGE, NOT_A_CACHE,
 * LOCKED, READ_ONLY, INCOMPATIBLE, IO_ERROR. Out-parameters are written only on DCACHE_OK.
 * The lead's decisions tested here: key limit 4096, minimum capacity 8 MiB, default
 * max_value_size 16 MiB at 256 MiB and up and at least ~900 KiB at 8 MiB. */
#include "common.h"

#include <fcntl.h>
#include <unistd.h>

#define SENT_C ((dcache *)(uintptr_t)0xDEADBEE0)
#define K(s) ((const uint8_t *)(s)), (sizeof(s) - 1)
#define MAX_KEY 4096

static char g_path[4096];

static dcache_result try_open(const char *path, uint64_t capacity, uint32_t flags,
                              void (*tweak)(dcache_options *), dcache **out)
{
    dcache_options o;
    cache_opts(&o, capacity, flags);
    if (tweak)
        tweak(&o);
    return dcache_open(path, &o, out);
}

static uint32_t g_tweak_u32;
static uint64_t g_tweak_u64;
static void tweak_flags(dcache_options *o) { o->flags |= g_tweak_u32; }
static void tweak_mode(dcache_options *o) { o->io_mode = g_tweak_u32; }
static void tweak_align(dcache_options *o) { o->alignment = g_tweak_u32; }
static void tweak_maxval(dcache_options *o) { o->max_value_size = g_tweak_u64; }

static void open_codes(void)
{
    char path[4096];
    tst_path(path, sizeof path, "open-codes.dc");
    dcache *c = SENT_C;
    dcache_options o;
    dcache_options_init_size(NULL, sizeof o);   /* ignored, no crash */
    (dcache_options_init)(NULL);                /* the 0.1.0 symbol: the same */
    dcache_options_init(&o);
    CHECK_EQ(o.struct_size, sizeof o);
    CHECK_EQ(o.admission, DCACHE_ADMIT_ALL);
    CHECK_EQ(o.write_budget, 0);
    {
        /* The 0.1.0 symbol fills only the 0.1.0 struct: the fields after it keep their bytes. */
        dcache_options old;
        memset(&old, 0xAB, sizeof old);
        (dcache_options_init)(&old);
        CHECK_EQ(old.struct_size, offsetof(dcache_options, admission));
        CHECK_EQ(old.admission, 0xABABABABu);
    }
    CHECK_EQ(o.io_mode, DCACHE_IO_AUTO);
    CHECK_EQ(o.flags, 0);
    CHECK_EQ(o.alignment, 0);
    CHECK_EQ(o.capacity, 0);
    CHECK_EQ(o.default_ttl_secs, 0);
    CHECK_EQ(o.max_value_size, 0);

    CHECK_RC(dcache_open(NULL, &o, &c), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(try_open(path, 16 * MiB, DCACHE_OPEN_CREATE, NULL, NULL), DCACHE_INVALID_ARGUMENT);
    CHECK(c == SENT_C);

    /* missing path without CREATE: IO_ERROR naming the path */
    CHECK_RC(dcache_open(path, NULL, &c), DCACHE_IO_ERROR);
    const char *m = dcache_last_error_message();
    CHECKF(m && strstr(m, path), "message names the path: \"%s\"", m ? m : "(null)");
    CHECKF(m && strstr(m, "DCACHE_OPEN_CREATE"), "message names the flag that creates it: \"%s\"",
           m ? m : "(null)");
    CHECK_RC(try_open(path, 16 * MiB, 0, NULL, &c), DCACHE_IO_ERROR);
    CHECK_RC(try_open(path, 16 * MiB, DCACHE_OPEN_READ_ONLY, NULL, &c), DCACHE_IO_ERROR);
    CHECK(c == SENT_C);
    CHECK(!path_exists(path));

    /* capacity: needed for a new file, at least 8 MiB */
    CHECK_RC(try_open(path, 0, DCACHE_OPEN_CREATE, NULL, &c), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(try_open(path, 8 * MiB - 1, DCACHE_OPEN_CREATE, NULL, &c), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(try_open(path, 4 * MiB, DCACHE_OPEN_CREATE, NULL, &c), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(try_open(path, 1, DCACHE_OPEN_CREATE, NULL, &c), DCACHE_INVALID_ARGUMENT);
    CHECK(c == SENT_C);

    /* unknown flags and modes */
    g_tweak_u32 = unknown_flag_bit(DCACHE_OPEN_CREATE | DCACHE_OPEN_FORMAT |
                                   DCACHE_OPEN_SYNC_WRITES | DCACHE_OPEN_READ_ONLY);
    CHECK_RC(try_open(path, 16 * MiB, DCACHE_OPEN_CREATE, tweak_flags, &c),
             DCACHE_INVALID_ARGUMENT);
    g_tweak_u32 = unknown_io_mode();
    CHECK_RC(try_open(path, 16 * MiB, DCACHE_OPEN_CREATE, tweak_mode, &c),
             DCACHE_INVALID_ARGUMENT);
    g_tweak_u32 = UINT32_MAX;
    CHECK_RC(try_open(path, 16 * MiB, DCACHE_OPEN_CREATE, tweak_mode, &c),
             DCACHE_INVALID_ARGUMENT);
    const uint32_t bad_align[] = {1, 2, 3, 256, 511, 513, 768, 1000, 4097, 6144};
    for (size_t i = 0; i < sizeof bad_align / sizeof bad_align[0]; i++) {
        g_tweak_u32 = bad_align[i];
        CHECKF(try_open(path, 16 * MiB, DCACHE_OPEN_CREATE, tweak_align, &c) ==
                   DCACHE_INVALID_ARGUMENT,
               "alignment %u gives DCACHE_INVALID_ARGUMENT", bad_align[i]);
    }
    /* max_value_size larger than the geometry holds */
    g_tweak_u64 = 1024 * MiB;
    CHECK_RC(try_open(path, 8 * MiB, DCACHE_OPEN_CREATE, tweak_maxval, &c),
             DCACHE_INVALID_ARGUMENT);
    g_tweak_u64 = UINT64_MAX;
    CHECK_RC(try_open(path, 64 * MiB, DCACHE_OPEN_CREATE, tweak_maxval, &c),
             DCACHE_INVALID_ARGUMENT);
    CHECK(c == SENT_C);

    /* the smallest cache: 8 MiB, holding values of at least ~900 KiB by default */
    c = NULL;
    if (CHECK_RC(try_open(path, 8 * MiB, DCACHE_OPEN_CREATE, NULL, &c), DCACHE_OK)) {
        uint64_t maxv = dcache_max_value_size(c);
        tst_note("8 MiB cache: max_value_size %llu", (unsigned long long)maxv);
        CHECKF(maxv >= 900000, "8 MiB cache holds values of at least ~900 KiB (max %llu)",
               (unsigned long long)maxv);
        size_t vl = 900000;
        uint8_t *v = malloc(vl);
        val_fill(v, vl, K("big"), 1);
        CHECK_RC(dcache_put(c, K("big"), v, vl, 0), DCACHE_OK);
        uint8_t *back = NULL;
        size_t bl = 0;
        if (CHECK_RC(cache_get_alloc(c, K("big"), &back, &bl), DCACHE_OK)) {
            CHECK_EQ(bl, vl);
            CHECK(bl == vl && val_check(back, bl, K("big"), 1));
        }
        free(back);
        free(v);
        /* one byte over the maximum is refused before it is read */
        if (maxv && maxv < 64 * MiB) {
            uint8_t *g = guarded_alloc((size_t)maxv);
            CHECK_RC(dcache_put(c, K("over"), g, (size_t)maxv + 1, 0), DCACHE_TOO_LARGE);
            CHECK_RC(dcache_put(c, K("over"), g, SIZE_MAX, 0), DCACHE_TOO_LARGE);
            guarded_free(g, (size_t)maxv);
        }
        CHECK_RC(dcache_close(c), DCACHE_OK);
    }
    rm_rf(path);
}

static void default_max_value_256(void)
{
    char path[4096];
    tst_path(path, sizeof path, "big256.dc");
    dcache *c = cache_create(path, 256 * MiB, 0);
    CHECK_EQ(dcache_max_value_size(c), 16 * MiB);
    size_t vl = 16 * MiB;
    uint8_t *g = guarded_alloc(vl);
    val_fill(g, vl, K("sixteen"), 3);
    CHECK_RC(dcache_put(c, K("sixteen"), g, vl + 1, 0), DCACHE_TOO_LARGE);
    CHECK_RC(dcache_put(c, K("sixteen"), g, vl, 0), DCACHE_OK);
    uint64_t sz = 0;
    CHECK_RC(dcache_value_size(c, K("sixteen"), &sz), DCACHE_OK);
    CHECK_EQ(sz, vl);
    uint8_t *back = NULL;
    size_t bl = 0;
    if (CHECK_RC(cache_get_alloc(c, K("sixteen"), &back, &bl), DCACHE_OK))
        CHECK(bl == vl && val_check(back, bl, K("sixteen"), 3));
    free(back);
    guarded_free(g, vl);
    CHECK_RC(dcache_close(c), DCACHE_OK);
    rm_rf(path);
}

static void explicit_max_value(void)
{
    char path[4096];
    tst_path(path, sizeof path, "maxval.dc");
    dcache_options o;
    cache_opts(&o, 16 * MiB, DCACHE_OPEN_CREATE);
    o.max_value_size = 100000;
    dcache *c = NULL;
    if (!CHECK_RC(dcache_open(path, &o, &c), DCACHE_OK))
        return;
    CHECK_EQ(dcache_max_value_size(c), 100000);
    uint8_t *g = guarded_alloc(100000);
    val_fill(g, 100000, K("mv"), 1);
    CHECK_RC(dcache_put(c, K("mv"), g, 100001, 0), DCACHE_TOO_LARGE);
    const char *m = dcache_last_error_message();
    CHECKF(m && m[0], "TOO_LARGE explains which limit");
    CHECK_RC(dcache_put(c, K("mv"), g, 100000, 0), DCACHE_OK);
    /* the streaming writer keeps the same limit */
    dcache_writer *w = NULL;
    if (CHECK_RC(dcache_writer_open(c, K("mvw"), 0, &w), DCACHE_OK)) {
        CHECK_RC(dcache_writer_write(w, g, 60000), DCACHE_OK);
        CHECK_RC(dcache_writer_write(w, g, 40000), DCACHE_OK);
        CHECK_RC(dcache_writer_write(w, g, 1), DCACHE_TOO_LARGE);
        CHECK_RC(dcache_writer_commit(w), DCACHE_TOO_LARGE);
    }
    CHECK_RC(dcache_value_size(c, K("mvw"), &(uint64_t){0}), DCACHE_NOT_FOUND);
    guarded_free(g, 100000);
    CHECK_RC(dcache_close(c), DCACHE_OK);
}

static void key_codes(dcache *c)
{
    uint8_t *k = guarded_alloc(MAX_KEY);
    key_make(k, 1, MAX_KEY);
    uint8_t buf[64];
    size_t n = 77;
    uint64_t sz = 77;
    dcache_writer *w = (dcache_writer *)(uintptr_t)0x77;
#ifdef DCACHE_MAX_KEY_LEN
    CHECK_EQ(DCACHE_MAX_KEY_LEN, MAX_KEY);
#endif
    /* 4096 is fine everywhere */
    CHECK_RC(dcache_put(c, k, MAX_KEY, (const uint8_t *)"v", 1, 0), DCACHE_OK);
    CHECK_RC(dcache_get(c, k, MAX_KEY, buf, sizeof buf, &n), DCACHE_OK);
    CHECK(n == 1 && buf[0] == 'v');
    CHECK_RC(dcache_contains(c, k, MAX_KEY), DCACHE_OK);
    CHECK_RC(dcache_contains(c, k, MAX_KEY + 1), DCACHE_TOO_LARGE);
    CHECK_RC(dcache_contains(c, k, SIZE_MAX), DCACHE_TOO_LARGE);
    /* 4097: TOO_LARGE, without reading past the 4096 bytes that exist (guard page) */
    CHECK_RC(dcache_put(c, k, MAX_KEY + 1, (const uint8_t *)"v", 1, 0), DCACHE_TOO_LARGE);
    n = 77;
    CHECK_RC(dcache_get(c, k, MAX_KEY + 1, buf, sizeof buf, &n), DCACHE_TOO_LARGE);
    CHECK_EQ(n, 77);
    CHECK_RC(dcache_get_range(c, k, MAX_KEY + 1, 0, buf, 1, &n), DCACHE_TOO_LARGE);
    CHECK_RC(dcache_value_size(c, k, MAX_KEY + 1, &sz), DCACHE_TOO_LARGE);
    CHECK_EQ(sz, 77);
    CHECK_RC(dcache_delete(c, k, MAX_KEY + 1), DCACHE_TOO_LARGE);
    CHECK_RC(dcache_writer_open(c, k, MAX_KEY + 1, 0, &w), DCACHE_TOO_LARGE);
    CHECK(w == (dcache_writer *)(uintptr_t)0x77);
    CHECK_RC(dcache_put(c, k, SIZE_MAX, (const uint8_t *)"v", 1, 0), DCACHE_TOO_LARGE);
    CHECK_RC(dcache_get(c, k, SIZE_MAX, buf, sizeof buf, &n), DCACHE_TOO_LARGE);
    /* the 4096-byte key is still there and one byte shorter is another key */
    CHECK_RC(dcache_get(c, k, MAX_KEY - 1, buf, sizeof buf, &n), DCACHE_NOT_FOUND);
    CHECK_RC(dcache_delete(c, k, MAX_KEY), DCACHE_OK);
    guarded_free(k, MAX_KEY);

    /* empty and NULL keys */
    const uint8_t *e = (const uint8_t *)"x";
    CHECK_RC(dcache_put(c, NULL, 0, e, 1, 0), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_put(c, e, 0, e, 1, 0), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_put(c, NULL, 5, e, 1, 0), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_get(c, NULL, 0, buf, sizeof buf, &n), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_get(c, e, 0, buf, sizeof buf, &n), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_get(c, NULL, 3, buf, sizeof buf, &n), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_get_range(c, e, 0, 0, buf, 1, &n), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_get_range(c, NULL, 3, 0, buf, 1, &n), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_value_size(c, e, 0, &sz), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_value_size(c, NULL, 3, &sz), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_delete(c, e, 0), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_delete(c, NULL, 3), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_contains(c, e, 0), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_contains(c, NULL, 0), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_contains(c, NULL, 3), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_writer_open(c, e, 0, 0, &w), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_writer_open(c, NULL, 3, 0, &w), DCACHE_INVALID_ARGUMENT);
    CHECK(w == (dcache_writer *)(uintptr_t)0x77);
    CHECK_EQ(n, 77);
    CHECK_EQ(sz, 77);
}

static void null_cache_codes(void)
{
    uint8_t buf[8];
    size_t n = 5;
    uint64_t sz = 5;
    dcache_writer *w = NULL;
    dcache_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RC(dcache_put(NULL, K("k"), K("v"), 0), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_get(NULL, K("k"), buf, sizeof buf, &n), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_get_range(NULL, K("k"), 0, buf, sizeof buf, &n), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_value_size(NULL, K("k"), &sz), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_delete(NULL, K("k")), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_contains(NULL, K("k")), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_flush(NULL), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_writer_open(NULL, K("k"), 0, &w), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_get_stats(NULL, &st), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_close(NULL), DCACHE_OK);
    CHECK_EQ(dcache_is_direct_io(NULL), 0);
    CHECK_EQ(dcache_alignment(NULL), 0);
    CHECK_EQ(dcache_max_value_size(NULL), 0);
    CHECK_RC(dcache_writer_write(NULL, buf, 1), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_writer_write(NULL, NULL, 0), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_writer_commit(NULL), DCACHE_INVALID_ARGUMENT);
    dcache_writer_abort(NULL);
    CHECK(w == NULL);
    CHECK_EQ(n, 5);
    CHECK_EQ(sz, 5);
}

static void value_codes(dcache *c)
{
    uint8_t buf[100];
    size_t n = 77;
    uint64_t sz = 77;
    /* NULL value with a length; (NULL, 0) is the empty value */
    CHECK_RC(dcache_put(c, K("nv"), NULL, 3, 0), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_get(c, K("nv"), buf, sizeof buf, &n), DCACHE_NOT_FOUND);
    CHECK_EQ(n, 77);
    CHECK_RC(dcache_put(c, K("empty"), NULL, 0, 0), DCACHE_OK);
    n = 77;
    CHECK_RC(dcache_get(c, K("empty"), NULL, 0, &n), DCACHE_OK);
    CHECK_EQ(n, 0);
    n = 77;
    CHECK_RC(dcache_get(c, K("empty"), buf, sizeof buf, &n), DCACHE_OK);
    CHECK_EQ(n, 0);
    CHECK_RC(dcache_value_size(c, K("empty"), &sz), DCACHE_OK);
    CHECK_EQ(sz, 0);
    n = 77;
    CHECK_RC(dcache_get_range(c, K("empty"), 0, NULL, 0, &n), DCACHE_OK);
    CHECK_EQ(n, 0);
    n = 77;
    CHECK_RC(dcache_get_range(c, K("empty"), 1, buf, 10, &n), DCACHE_RANGE);
    CHECK_EQ(n, 77);

    /* BUFFER_TOO_SMALL: the size needed, and the buffer untouched */
    uint8_t val[50];
    val_fill(val, sizeof val, K("fifty"), 9);
    CHECK_RC(dcache_put(c, K("fifty"), val, sizeof val, 0), DCACHE_OK);
    n = 77;
    CHECK_RC(dcache_get(c, K("fifty"), NULL, 0, &n), DCACHE_BUFFER_TOO_SMALL);
    CHECK_EQ(n, 50);
    memset(buf, 0xEE, sizeof buf);
    n = 77;
    CHECK_RC(dcache_get(c, K("fifty"), buf, 49, &n), DCACHE_BUFFER_TOO_SMALL);
    CHECK_EQ(n, 50);
    uint8_t ee[100];
    memset(ee, 0xEE, sizeof ee);
    CHECK_MEM(buf, ee, sizeof buf, "buffer untouched on BUFFER_TOO_SMALL");
    n = 77;
    CHECK_RC(dcache_get(c, K("fifty"), buf, 50, &n), DCACHE_OK);
    CHECK_EQ(n, 50);
    CHECK_MEM(buf, val, 50, "value in an exact-size buffer");
    n = 77;
    CHECK_RC(dcache_get(c, K("fifty"), buf, sizeof buf, &n), DCACHE_OK);
    CHECK_EQ(n, 50);
    CHECK_MEM(buf, val, 50, "value in a larger buffer");
    /* NULL buffer with a length, NULL out-pointers */
    CHECK_RC(dcache_get(c, K("fifty"), NULL, 10, &n), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_get(c, K("fifty"), buf, sizeof buf, NULL), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_get_range(c, K("fifty"), 0, NULL, 10, &n), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_get_range(c, K("fifty"), 0, buf, 10, NULL), DCACHE_INVALID_ARGUMENT);
    CHECK_RC(dcache_value_size(c, K("fifty"), NULL), DCACHE_INVALID_ARGUMENT);

    /* NOT_FOUND leaves out-parameters alone */
    n = 77;
    sz = 77;
    memset(buf, 0xEE, sizeof buf);
    CHECK_RC(dcache_get(c, K("absent"), buf, sizeof buf, &n), DCACHE_NOT_FOUND);
    CHECK_RC(dcache_get(c, K("absent"), NULL, 0, &n), DCACHE_NOT_FOUND);
    CHECK_RC(dcache_get_range(c, K("absent"), 0, buf, 10, &n), DCACHE_NOT_FOUND);
    CHECK_RC(dcache_value_size(c, K("absent"), &sz), DCACHE_NOT_FOUND);
    CHECK_RC(dcache_delete(c, K("absent")), DCACHE_NOT_FOUND);
    CHECK_RC(dcache_contains(c, K("absent")), DCACHE_NOT_FOUND);
    CHECK_RC(dcache_contains(c, K("fifty")), DCACHE_OK);
    CHECK_RC(dcache_contains(c, K("empty")), DCACHE_OK);
    CHECK_EQ(n, 77);
    CHECK_EQ(sz, 77);
    CHECK_MEM(buf, ee, sizeof buf, "buffer untouched on NOT_FOUND");

    /* RANGE: offset past the end; offset == size reads 0 bytes */
    n = 77;
    CHECK_RC(dcache_get_range(c, K("fifty"), 51, buf, 10, &n), DCACHE_RANGE);
    CHECK_RC(dcache_get_range(c, K("fifty"), UINT64_MAX, buf, 10, &n), DCACHE_RANGE);
    CHECK_EQ(n, 77);
    CHECK_RC(dcache_get_range(c, K("fifty"), 50, buf, 10, &n), DCACHE_OK);
    CHECK_EQ(n, 0);
    n = 77;
    CHECK_RC(dcache_get_range(c, K("fifty"), 45, buf, 10, &n), DCACHE_OK);
    CHECK_EQ(n, 5);
    CHECK_MEM(buf, val + 45, 5, "range at the end");

    /* writer argument codes */
    dcache_writer *w = NULL;
    CHECK_RC(dcache_writer_open(c, K("w"), 0, NULL), DCACHE_INVALID_ARGUMENT);
    if (CHECK_RC(dcache_writer_open(c, K("w"), 0, &w), DCACHE_OK)) {
        CHECK_RC(dcache_writer_write(w, NULL, 5), DCACHE_INVALID_ARGUMENT);
        CHECK_RC(dcache_writer_write(w, NULL, 0), DCACHE_OK);
        dcache_writer_abort(w);
    }
    CHECK_RC(dcache_get_stats(c, NULL), DCACHE_INVALID_ARGUMENT);
}

static void lock_and_read_only_codes(void)
{
    dcache *c = cache_create(g_path, 16 * MiB, 0);
    CHECK_RC(dcache_put(c, K("ro-key"), K("ro-value"), 0), DCACHE_OK);
    /* LOCKED: a second handle while one is open, writable or read-only */
    dcache *c2 = SENT_C;
    CHECK_RC(dcache_open(g_path, NULL, &c2), DCACHE_LOCKED);
    CHECK_RC(try_open(g_path, 0, DCACHE_OPEN_READ_ONLY, NULL, &c2), DCACHE_LOCKED);
    CHECK_RC(try_open(g_path, 0, DCACHE_OPEN_CREATE, NULL, &c2), DCACHE_LOCKED);
    CHECK(c2 == SENT_C);
    CHECK_RC(dcache_close(c), DCACHE_OK);

    /* READ_ONLY: lookups work, every write is refused */
    dcache *r1 = NULL, *r2 = NULL;
    if (!CHECK_RC(try_open(g_path, 0, DCACHE_OPEN_READ_ONLY, NULL, &r1), DCACHE_OK))
        return;
    uint8_t buf[32];
    size_t n = 0;
    CHECK_RC(dcache_get(r1, K("ro-key"), buf, sizeof buf, &n), DCACHE_OK);
    CHECK(n == 8 && memcmp(buf, "ro-value", 8) == 0);
    CHECK_RC(dcache_put(r1, K("ro-key"), K("other"), 0), DCACHE_READ_ONLY);
    CHECK_RC(dcache_put(r1, K("new-key"), K("other"), 0), DCACHE_READ_ONLY);
    CHECK_RC(dcache_delete(r1, K("ro-key")), DCACHE_READ_ONLY);
    dcache_writer *w = (dcache_writer *)(uintptr_t)0x77;
    CHECK_RC(dcache_writer_open(r1, K("w"), 0, &w), DCACHE_READ_ONLY);
    CHECK(w == (dcache_writer *)(uintptr_t)0x77);
    CHECK_RC_IN(dcache_flush(r1), DCACHE_OK, DCACHE_READ_ONLY);
    /* several read-only handles may share it; a writable one may not join */
    if (CHECK_RC(try_open(g_path, 0, DCACHE_OPEN_READ_ONLY, NULL, &r2), DCACHE_OK)) {
        n = 0;
        CHECK_RC(dcache_get(r2, K("ro-key"), buf, sizeof buf, &n), DCACHE_OK);
        CHECK_EQ(n, 8);
    }
    c2 = SENT_C;
    CHECK_RC(dcache_open(g_path, NULL, &c2), DCACHE_LOCKED);
    CHECK(c2 == SENT_C);
    CHECK_RC(dcache_close(r2), DCACHE_OK);
    CHECK_RC(dcache_close(r1), DCACHE_OK);
    n = 0;
    c = NULL;
    if (CHECK_RC(dcache_open(g_path, NULL, &c), DCACHE_OK)) {
        CHECK_RC(dcache_get(c, K("ro-key"), buf, sizeof buf, &n), DCACHE_OK);
        CHECK(n == 8 && memcmp(buf, "ro-value", 8) == 0);
        CHECK_RC(dcache_close(c), DCACHE_OK);
    }
}

static void incompatible_and_not_a_cache(void)
{
    /* a capacity or alignment other than the cache's */
    dcache *c = SENT_C;
    CHECK_RC(try_open(g_path, 32 * MiB, 0, NULL, &c), DCACHE_INCOMPATIBLE);
    CHECK_RC(try_open(g_path, 32 * MiB, DCACHE_OPEN_CREATE, NULL, &c), DCACHE_INCOMPATIBLE);
    CHECK(c == SENT_C);
    c = NULL;
    if (CHECK_RC(try_open(g_path, 16 * MiB, 0, NULL, &c), DCACHE_OK)) {
        uint32_t a = dcache_alignment(c);
        CHECK_RC(dcache_close(c), DCACHE_OK);
        g_tweak_u32 = a * 2;
        c = SENT_C;
        CHECK_RC(try_open(g_path, 0, 0, tweak_align, &c), DCACHE_INCOMPATIBLE);
        CHECK(c == SENT_C);
        g_tweak_u32 = a;
        c = NULL;
        if (CHECK_RC(try_open(g_path, 0, 0, tweak_align, &c), DCACHE_OK))
            dcache_close(c);
    }

    /* NOT_A_CACHE: a small text file, with or without CREATE, and it stays as it was */
    char path[4096];
    tst_path(path, sizeof path, "text.txt");
    const char *text = "this is not a cache\n";
    file_write_plain(path, text, strlen(text));
    c = SENT_C;
    CHECK_RC(dcache_open(path, NULL, &c), DCACHE_NOT_A_CACHE);
    const char *m = dcache_last_error_message();
    CHECKF(m && strstr(m, "not a dcache") && strstr(m, "DCACHE_OPEN_FORMAT"),
           "message says what the path holds and which flag formats it: \"%s\"", m ? m : "(null)");
    CHECK_RC(try_open(path, 16 * MiB, DCACHE_OPEN_CREATE, NULL, &c), DCACHE_NOT_A_CACHE);
    CHECK_RC(try_open(path, 0, DCACHE_OPEN_READ_ONLY, NULL, &c), DCACHE_NOT_A_CACHE);
    CHECK(c == SENT_C);
    uint8_t *d = NULL;
    size_t dl = 0;
    if (CHECK(file_read_all_plain(path, &d, &dl))) {
        CHECK(dl == strlen(text) && memcmp(d, text, dl) == 0);
        free(d);
    }
}

TEST_MAIN(cache_codes)
{
    (void)argc;
    (void)argv;
    tst_begin("cache_codes");
    tst_path(g_path, sizeof g_path, "codes.dc");
    open_codes();
    default_max_value_256();
    explicit_max_value();
    null_cache_codes();
    dcache *c = cache_create(g_path, 16 * MiB, 0);
    key_codes(c);
    value_codes(c);
    CHECK_RC(dcache_close(c), DCACHE_OK);
    rm_rf(g_path);
    lock_and_read_only_codes();
    incompatible_and_not_a_cache();
    return tst_finish();
}

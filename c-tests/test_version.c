/* The version macros of dcache.h agree with the library it is linked against:
 * DCACHE_VERSION_STRING == dcache_version() == "MAJOR.MINOR.PATCH", and
 * dcache_version_number() == MAJOR*10000 + MINOR*100 + PATCH. The macros are usable in #if. */
#include "common.h"

#if !defined(DCACHE_VERSION_MAJOR) || !defined(DCACHE_VERSION_MINOR) || \
    !defined(DCACHE_VERSION_PATCH) || !defined(DCACHE_VERSION_STRING)
#error "dcache.h must define DCACHE_VERSION_MAJOR/_MINOR/_PATCH/_STRING"
#endif
#if DCACHE_VERSION_MAJOR < 0 || DCACHE_VERSION_MINOR < 0 || DCACHE_VERSION_MINOR > 99 || \
    DCACHE_VERSION_PATCH < 0 || DCACHE_VERSION_PATCH > 99
#error "version parts out of range for MAJOR*10000 + MINOR*100 + PATCH"
#endif

TEST_MAIN(version)
{
    (void)argc;
    (void)argv;
    tst_begin("version");
    const char *v = dcache_version();
    CHECK(v != NULL);
    if (!v)
        return tst_finish();
    tst_note("library %s, header %s", v, DCACHE_VERSION_STRING);
    CHECKF(strcmp(v, DCACHE_VERSION_STRING) == 0, "dcache_version() \"%s\" == \"%s\"", v,
           DCACHE_VERSION_STRING);
    char expect[64];
    snprintf(expect, sizeof expect, "%u.%u.%u", (unsigned)DCACHE_VERSION_MAJOR,
             (unsigned)DCACHE_VERSION_MINOR, (unsigned)DCACHE_VERSION_PATCH);
    CHECKF(strcmp(v, expect) == 0, "dcache_version() \"%s\" == \"%s\"", v, expect);
    CHECK_EQ(dcache_version_number(),
             DCACHE_VERSION_MAJOR * 10000u + DCACHE_VERSION_MINOR * 100u + DCACHE_VERSION_PATCH);
    unsigned a = 99, b = 99, c = 99;
    char tail = 0;
    CHECK(sscanf(v, "%u.%u.%u%c", &a, &b, &c, &tail) == 3);
    CHECK_EQ(dcache_version_number(), a * 10000u + b * 100u + c);
    /* the same static string every time */
    CHECK(dcache_version() == v || strcmp(dcache_version(), v) == 0);
    return tst_finish();
}

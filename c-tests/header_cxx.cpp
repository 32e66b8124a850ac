// Header hygiene, C++ side: dcache.h included twice, compiled as
// -std=c++11 -Wall -Wextra -Wpedantic -Werror, every name of API.md with its exact type
// (header_api.inc), linked (so the declarations must be extern "C") and run.
#include "dcache.h"
#include "dcache.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "header_api.inc"

static_assert(sizeof(dcache_result) == 4, "dcache_result is a uint32_t");
static_assert(DCACHE_OK == 0, "DCACHE_OK is 0");
static_assert(offsetof(dcache_stats, struct_size) == 0, "struct_size comes first");

int main()
{
    int passed = 0, failed = 0;
    int f = api_surface_check();
    failed += f;
    passed += f == 0;
    dcache_file_options fo;
    dcache_file_options_init(&fo);
    if (fo.struct_size == sizeof fo)
        passed++;
    else
        failed++;
    if (dcache_strerror(9999) != nullptr && dcache_version_number() ==
            DCACHE_VERSION_MAJOR * 10000u + DCACHE_VERSION_MINOR * 100u + DCACHE_VERSION_PATCH)
        passed++;
    else
        failed++;
    if (failed)
        std::printf("FAIL: header_cxx: %d checks failed\n", failed);
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

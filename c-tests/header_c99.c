/* Header hygiene, C side: dcache.h included twice, compiled as
 * -std=c99 -Wall -Wextra -Wpedantic -Werror; every name of API.md with its exact type
 * (header_api.inc). Linked against the library and run, it checks a few calls work from a
 * plain C99 program. Prints "N passed, M failed". */
#include "dcache.h"
#include "dcache.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "header_api.inc"

int main(void)
{
    int passed = 0, failed = 0;
    int f = api_surface_check();
    failed += f;
    passed += f == 0;
    const char *v = dcache_version();
    if (v && strcmp(v, DCACHE_VERSION_STRING) == 0)
        passed++;
    else
        failed++;
    dcache_options o;
    dcache_options_init(&o);
    if (o.struct_size == sizeof o)
        passed++;
    else
        failed++;
    if (dcache_close(NULL) == DCACHE_OK && dcache_file_close(NULL) == DCACHE_OK)
        passed++;
    else
        failed++;
    if (failed)
        printf("FAIL: header_c99: %d checks failed\n", failed);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/* Built by `make test-install` with only `pkg-config --cflags --libs dcache` against a staged
 * `make install`: proves the installed header, library, soname links and .pc file work. */
#include <dcache.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    if (strcmp(dcache_version(), DCACHE_VERSION_STRING) != 0) {
        fprintf(stderr, "header %s, library %s\n", DCACHE_VERSION_STRING, dcache_version());
        return 1;
    }
    if (dcache_open(NULL, NULL, NULL) != DCACHE_INVALID_ARGUMENT) {
        fprintf(stderr, "dcache_open(NULL...) did not give DCACHE_INVALID_ARGUMENT\n");
        return 1;
    }
    printf("installed libdcache %s works\n", dcache_version());
    return 0;
}

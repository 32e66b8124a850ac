/* The plain (no sanitizer) binary run under valgrind: the functional tests listed in
 * CT_VALGRIND_TESTS (c-tests.mk writes them to tests.def as T(name) lines), each compiled
 * with -DDC_COMBINED so that its TEST_MAIN is a function tmain_<name>, run one after the other
 * with fewer iterations (tst_quick). Closing line: the total "N passed, M failed". */
#include "common.h"

#define T(name) int tmain_##name(int argc, char **argv);
#include "tests.def"
#undef T

int main(int argc, char **argv)
{
    struct {
        const char *name;
        int (*fn)(int, char **);
    } tests[] = {
#define T(name) {#name, tmain_##name},
#include "tests.def"
#undef T
    };
    unsigned long passed = 0, failed = 0;
    int bad_exit = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (tests[i].fn(argc, argv) != 0)
            bad_exit = 1;
        unsigned long p = 0, f = 0;
        tst_totals(&p, &f);
        passed = p;
        failed = f;
    }
    printf("%lu passed, %lu failed\n", passed, failed);
    return failed || bad_exit ? 1 : 0;
}

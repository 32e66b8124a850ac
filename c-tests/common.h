/* The helpers of the libdcache C tests, one header for each thing they serve (harness.h,
 * values.h, process.h, devices.h, library.h), each with its .c file.
 *
 * Every test program:
 *   TEST_MAIN(name) { tst_begin("name"); ... return tst_finish(); }
 * prints one closing line "N passed, M failed" and exits non-zero on any failure.
 *
 * When built with -DDC_COMBINED (the plain binary run under valgrind), TEST_MAIN defines a
 * function tmain_<name>() instead of main(), and tst_quick() is true so that loops run fewer
 * iterations (valgrind is 20-50x slower).
 */
#ifndef DC_TEST_COMMON_H
#define DC_TEST_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "dcache.h"

#define KiB ((uint64_t)1024)
#define MiB (1024 * KiB)

#include "harness.h"
#include "values.h"
#include "process.h"
#include "devices.h"
#include "library.h"

#endif

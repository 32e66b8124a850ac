/* Process helpers: clocks, sleeping, and running this program again as a child.
 * Part of the C tests' helpers; tests include common.h, which includes every part. */
#ifndef DC_TEST_PROCESS_H
#define DC_TEST_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "dcache.h"

/* ---- clocks and child processes -------------------------------------------------------- */
double now_sec(void);                 /* CLOCK_MONOTONIC */
void sleep_ms(unsigned ms);
/* fork + exec of this same program with the given arguments (argv[0] is set for you);
 * returns the pid, or -1. Child's stdin is /dev/null. extra_fd (if >= 0) stays open. */
pid_t spawn_self(char *const args[], int extra_fd);
const char *self_exe(void);

#endif

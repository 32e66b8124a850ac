/* bench/raw.h: the roofline's file, driven with raw O_DIRECT system calls (open with
 * O_DIRECT, posix_memalign buffers, pwrite/pread), as the load driver's operations.
 */
#ifndef BENCH_RAW_H
#define BENCH_RAW_H

#include <stddef.h>
#include <stdint.h>

#include "driver.h"

/* The file and one kind of call on it. */
typedef struct raw_load {
    int fd;
    size_t block;        /* bytes per call, aligned */
    uint64_t blocks;     /* the calls' offsets are block * [0, blocks) */
    const uint8_t *src;  /* writes: `block` aligned bytes */
} raw_load;

/* Creates the file with O_DIRECT (truncating it); the descriptor, or -1 after an error. */
int raw_create(const char *path);

/* pwrite of block seq % blocks: sequential, wrapping to the start. */
int raw_write_op(void *ctx, worker *w, uint64_t seq, uint64_t *bytes);
/* pread of a random block into the worker's buffer. */
int raw_read_op(void *ctx, worker *w, uint64_t seq, uint64_t *bytes);
/* fdatasync, as a run's timed finish. */
int raw_sync_finish(void *ctx);

#endif

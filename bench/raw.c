/* bench/raw.c: see raw.h. */
#define _GNU_SOURCE
#include "raw.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "util.h"

int raw_create(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EINVAL)
        bench_fail("%s: the file system refuses O_DIRECT; no roofline here", path);
    else if (fd < 0)
        sys_fail(path);
    return fd;
}

int raw_write_op(void *ctx, worker *w, uint64_t seq, uint64_t *bytes)
{
    (void)w;
    const raw_load *l = ctx;
    off_t off = (off_t)(seq % l->blocks * l->block);
    ssize_t n = pwrite(l->fd, l->src, l->block, off);
    if (n != (ssize_t)l->block)
        return n < 0 ? sys_fail("pwrite (O_DIRECT)") : bench_fail("short pwrite: %zd", n);
    *bytes += l->block;
    return 0;
}

int raw_read_op(void *ctx, worker *w, uint64_t seq, uint64_t *bytes)
{
    (void)seq;
    const raw_load *l = ctx;
    off_t off = (off_t)(rng_below(&w->rng, l->blocks) * l->block);
    ssize_t n = pread(l->fd, w->buf, l->block, off);
    if (n != (ssize_t)l->block)
        return n < 0 ? sys_fail("pread (O_DIRECT)") : bench_fail("short pread: %zd", n);
    *bytes += l->block;
    return 0;
}

int raw_sync_finish(void *ctx)
{
    const raw_load *l = ctx;
    return fdatasync(l->fd) == 0 ? 0 : sys_fail("fdatasync");
}

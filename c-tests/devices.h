/* Device set-up: privileges, loop devices, ramfs, and plain files to check what the
 * library wrote.
 * Part of the C tests' helpers; tests include common.h, which includes every part. */
#ifndef DC_TEST_DEVICES_H
#define DC_TEST_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "dcache.h"

/* ---- files (ordinary, buffered I/O, for checking what the library did) ------------------ */
bool file_read_all_plain(const char *path, uint8_t **data, size_t *len); /* malloc'd */
bool file_write_plain(const char *path, const void *data, size_t len);   /* O_TRUNC + fsync */
bool file_hash(const char *path, uint64_t *hash, uint64_t *size, struct timespec *mtime);
int64_t file_size_plain(const char *path);  /* -1 on error */

/* ---- privileges, loop devices, ramfs ------------------------------------------------------- */
bool tst_is_root(void);
/* losetup --find --show [--sector-size N] img; detaches in the cleanup. Returns false and
 * notes why on failure. dev gets e.g. "/dev/loop3". */
bool tst_loop_attach(const char *img, unsigned sector_size, char *dev, size_t devlen);
/* Creates the image `name` of `size` bytes in the work directory and attaches it. */
bool tst_loop_image(const char *name, uint64_t size, unsigned sector_size, char *dev, size_t devlen);
bool tst_mount_ramfs(const char *dir);   /* mkdir + mount -t ramfs; unmounts in the cleanup */
uint64_t blockdev_size(const char *dev);

#endif

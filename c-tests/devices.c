/* Device set-up: privileges, loop devices, ramfs, and plain files to check what the library
 * wrote. See devices.h. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- files ------------------------------------------------------------------------------------- */

bool file_read_all_plain(const char *path, uint8_t **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return false;
    }
    size_t cap = (size_t)st.st_size;
    if (S_ISBLK(st.st_mode)) {
        uint64_t sz = 0;
        ioctl(fd, BLKGETSIZE64, &sz);
        cap = (size_t)sz;
    }
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) {
        close(fd);
        return false;
    }
    size_t got = 0;
    while (got < cap) {
        ssize_t r = pread(fd, buf + got, cap - got, (off_t)got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            close(fd);
            return false;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = got;
    return true;
}

bool file_write_plain(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return false;
    const uint8_t *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return false;
        }
        done += (size_t)w;
    }
    bool ok = fsync(fd) == 0;
    return close(fd) == 0 && ok;
}

bool file_hash(const char *path, uint64_t *hash, uint64_t *size, struct timespec *mtime)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return false;
    }
    uint64_t h = UINT64_C(0xcbf29ce484222325), total = 0;
    static uint8_t buf[1 << 16];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++) {
            h ^= buf[i];
            h *= UINT64_C(0x100000001b3);
        }
        total += (uint64_t)r;
    }
    close(fd);
    if (hash)
        *hash = h;
    if (size)
        *size = total;
    if (mtime)
        *mtime = st.st_mtim;
    return true;
}

int64_t file_size_plain(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return (int64_t)st.st_size;
}

/* ---- privileges, loop devices, ramfs ---------------------------------------------------------- */

bool tst_is_root(void)
{
    return geteuid() == 0;
}

static void loop_detach(void *arg)
{
    char *dev = arg;
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "losetup -d '%s' 2>/dev/null", dev);
    for (int i = 0; i < 20; i++) {
        int st = system(cmd);
        if (st == 0)
            break;
        sleep_ms(100);
    }
    free(dev);
}

bool tst_loop_image(const char *name, uint64_t size, unsigned sector_size, char *dev, size_t devlen)
{
    char img[4096];
    tst_path(img, sizeof img, name);
    int fd = open(img, O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0)
        tst_die("cannot make %s", img);
    close(fd);
    return tst_loop_attach(img, sector_size, dev, devlen);
}

bool tst_loop_attach(const char *img, unsigned sector_size, char *dev, size_t devlen)
{
    char cmd[PATH_MAX + 128];
    if (sector_size)
        snprintf(cmd, sizeof cmd, "losetup --find --show --sector-size %u '%s' 2>&1",
                 sector_size, img);
    else
        snprintf(cmd, sizeof cmd, "losetup --find --show '%s' 2>&1", img);
    FILE *p = popen(cmd, "r");
    if (!p) {
        tst_note("popen(losetup): %s", strerror(errno));
        return false;
    }
    char line[512] = "";
    if (!fgets(line, sizeof line, p))
        line[0] = 0;
    int st = pclose(p);
    line[strcspn(line, "\n")] = 0;
    if (st != 0 || strncmp(line, "/dev/loop", 9) != 0) {
        tst_note("losetup failed: %s", line);
        return false;
    }
    snprintf(dev, devlen, "%s", line);
    tst_defer(loop_detach, strdup(line));
    return true;
}

static void ramfs_unmount(void *arg)
{
    char *dir = arg;
    if (umount2(dir, 0) != 0 && errno != EINVAL)
        umount2(dir, MNT_DETACH);
    rmdir(dir);
    free(dir);
}

bool tst_mount_ramfs(const char *dir)
{
    mkdir(dir, 0755);
    if (mount("ramfs", dir, "ramfs", 0, NULL) != 0) {
        tst_note("mount -t ramfs %s: %s", dir, strerror(errno));
        return false;
    }
    tst_defer(ramfs_unmount, strdup(dir));
    return true;
}

uint64_t blockdev_size(const char *dev)
{
    int fd = open(dev, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    uint64_t sz = 0;
    if (ioctl(fd, BLKGETSIZE64, &sz) != 0)
        sz = 0;
    close(fd);
    return sz;
}

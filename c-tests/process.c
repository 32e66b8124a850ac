/* Process helpers: clocks, sleeping, and running this program again as a child. See process.h. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

/* ---- clocks and child processes ---------------------------------------------------------- */

double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

const char *self_exe(void)
{
    return "/proc/self/exe";
}

pid_t spawn_self(char *const args[], int extra_fd)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* child */
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
        dup2(devnull, 0);
        close(devnull);
    }
    if (extra_fd >= 0) {
        int fl = fcntl(extra_fd, F_GETFD);
        fcntl(extra_fd, F_SETFD, fl & ~FD_CLOEXEC);
    }
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)"dcache-test-child";
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    execv(self_exe(), argv);
    _exit(127);
}

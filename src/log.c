#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static int log_fd = 2;
static enum log_level log_min = LOG_INFO_L;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int log_open(const char *path, enum log_level level)
{
    int fd = 2;
    if (path && strcmp(path, "stderr") != 0) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0)
            return -1;
    }
    int old = log_fd;
    __atomic_store_n(&log_fd, fd, __ATOMIC_RELEASE);
    if (old != 2 && old != fd)
        close(old);
    log_min = level;
    return 0;
}

void log_set_level(enum log_level level) { log_min = level; }

int log_enabled(enum log_level level) { return level >= log_min; }

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < log_min)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03ld [%s] ", ts.tv_nsec / 1000000,
                          level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    /* One write per line: O_APPEND makes it atomic for files, and stderr lines stay whole. */
    ssize_t w = write(__atomic_load_n(&log_fd, __ATOMIC_ACQUIRE), line, n);
    (void)w;
}

struct access_log {
    int fd;
    int owned;
};

struct access_log *access_log_open(const char *path, char *err, size_t errlen)
{
    struct access_log *al = calloc(1, sizeof *al);
    if (!al) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (strcmp(path, "stderr") == 0) {
        al->fd = 2;
        return al;
    }
    al->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (al->fd < 0) {
        snprintf(err, errlen, "cannot open access log %s: %s", path, strerror(errno));
        free(al);
        return NULL;
    }
    al->owned = 1;
    return al;
}

void access_log_write(struct access_log *al, const char *line, size_t len)
{
    ssize_t w = write(al->fd, line, len);
    (void)w;
}

void access_log_close(struct access_log *al)
{
    if (!al)
        return;
    if (al->owned)
        close(al->fd);
    free(al);
}

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

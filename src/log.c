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
static char *log_path;   /* the error log's file, NULL = stderr (nothing to reopen) */

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int log_open(const char *path, enum log_level level)
{
    int fd = 2;
    if (path && strcmp(path, "stderr") != 0) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0)
            return -1;
    }
    char *copy = NULL;
    if (fd != 2 && !(copy = strdup(path))) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    int old = log_fd;
    __atomic_store_n(&log_fd, fd, __ATOMIC_RELEASE);
    if (old != 2 && old != fd)
        close(old);
    free(log_path);
    log_path = copy;
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
    char *path;                      /* owned files only: reopened by log_reopen_all */
    struct access_log *next;         /* every open access log, for log_reopen_all */
};

/* --- log reopening (SIGUSR1, after logrotate moved the files) ------------------------
 * Every owned file is opened anew by path and dup2()ed over its old descriptor: the fd
 * number stays the same and the switch is atomic for threads writing to it, so no writer
 * ever sees a closed or reused descriptor. */
static pthread_mutex_t al_lock = PTHREAD_MUTEX_INITIALIZER;
static struct access_log *al_list;

static int reopen_fd(int fd, const char *path, char *err, size_t errlen)
{
    int nfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (nfd < 0) {
        snprintf(err, errlen, "cannot reopen %s: %s", path, strerror(errno));
        return -1;
    }
    int r = dup3(nfd, fd, O_CLOEXEC);
    if (r < 0)
        snprintf(err, errlen, "cannot reopen %s: dup3: %s", path, strerror(errno));
    close(nfd);
    return r < 0 ? -1 : 0;
}

int log_reopen_all(void)
{
    char err[512];
    int failed = 0, n = 0;
    int fd = __atomic_load_n(&log_fd, __ATOMIC_ACQUIRE);
    if (log_path && fd != 2) {
        if (reopen_fd(fd, log_path, err, sizeof err) < 0) {
            log_error("error_log: %s; still writing to the old file", err);
            failed++;
        } else {
            n++;
        }
    }
    pthread_mutex_lock(&al_lock);
    for (struct access_log *al = al_list; al; al = al->next) {
        if (!al->owned)
            continue;
        if (reopen_fd(al->fd, al->path, err, sizeof err) < 0) {
            log_error("access_log: %s; still writing to the old file", err);
            failed++;
        } else {
            n++;
        }
    }
    pthread_mutex_unlock(&al_lock);
    log_info("log files reopened: %d%s", n, failed ? " (some failed: see above)" : "");
    return failed ? -1 : 0;
}

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
    al->path = strdup(path);
    if (!al->path) {
        snprintf(err, errlen, "out of memory");
        close(al->fd);
        free(al);
        return NULL;
    }
    pthread_mutex_lock(&al_lock);
    al->next = al_list;
    al_list = al;
    pthread_mutex_unlock(&al_lock);
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
    if (al->owned) {
        pthread_mutex_lock(&al_lock);
        for (struct access_log **pp = &al_list; *pp; pp = &(*pp)->next)
            if (*pp == al) {
                *pp = al->next;
                break;
            }
        pthread_mutex_unlock(&al_lock);
        close(al->fd);
    }
    free(al->path);
    free(al);
}

/* A worker's request path asks for the time a dozen times per request, and each read of the
 * clock costs as much as a small function's whole work (~25 ns here, more on some virtual
 * clocks). Workers mark their loop turns instead: the first call after a wait reads the
 * clock and the rest of the turn reuses it, as nginx and HAProxy do, so a deadline set in a
 * turn runs from the turn's start. libevent may run several passes before a turn returns
 * (deferred callbacks keep it going under load): every TURN_READ_CALLS calls read the clock
 * again, so that time cannot stand still while work is done, and timers check their
 * deadlines against a fresh reading (now_ms_fresh). */
#define TURN_READ_CALLS 256

static __thread int turn_clock;          /* this thread calls now_ms_new_turn() */
static __thread uint64_t turn_ms;        /* 0: not read yet in this turn */
static __thread unsigned turn_calls;     /* since the last reading */

static uint64_t read_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t now_ms_fresh(void)
{
    uint64_t t = read_clock_ms();
    if (turn_clock) {
        turn_ms = t;
        turn_calls = 0;
    }
    return t;
}

uint64_t now_ms(void)
{
    if (!turn_clock || !turn_ms || ++turn_calls >= TURN_READ_CALLS)
        return now_ms_fresh();
    return turn_ms;
}

void now_ms_new_turn(void)
{
    turn_clock = 1;
    turn_ms = 0;
}

void now_ms_no_turns(void) { turn_clock = 0; }

#include "notify.h"

#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"
#include "worker.h"

#ifndef HAVE_LIBSYSTEMD
/* The sd_notify datagram protocol: one datagram of newline-separated assignments to the
 * AF_UNIX socket named by NOTIFY_SOCKET ("/path", or "@name" for the abstract namespace). */
static int send_datagram(const char *msg)
{
    const char *e = getenv("NOTIFY_SOCKET");
    if (!e || !*e)
        return 0;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t len = strlen(e);
    if ((e[0] != '/' && e[0] != '@') || len < 2 || len > sizeof sa.sun_path) {
        errno = EINVAL;
        return -1;
    }
    if (e[0] == '/' && len == sizeof sa.sun_path) {   /* no room for the terminating NUL */
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, e, len);
    if (e[0] == '@')
        sa.sun_path[0] = '\0';
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (e[0] == '/'));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    ssize_t n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
    int saved = errno;
    close(fd);
    errno = saved;
    return n < 0 ? -1 : 1;
}
#endif

int notify_send(const char *fmt, ...)
{
    const char *e = getenv("NOTIFY_SOCKET");
    if (!e || !*e)
        return 0;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
#ifdef HAVE_LIBSYSTEMD
    int r = sd_notify(0, msg);
    return r > 0 ? 1 : r == 0 ? 0 : -1;
#else
    return send_datagram(msg);
#endif
}

int notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long usec = (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u;
    return notify_send("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the configuration", usec);
}

uint64_t notify_watchdog_usec(void)
{
#ifdef HAVE_LIBSYSTEMD
    uint64_t usec = 0;
    return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
#else
    const char *s = getenv("WATCHDOG_USEC");
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    unsigned long long usec = strtoull(s, &end, 10);
    if (errno || *end || usec == 0)
        return 0;
    const char *p = getenv("WATCHDOG_PID");
    if (p && *p) {
        errno = 0;
        unsigned long long pid = strtoull(p, &end, 10);
        if (errno || *end || pid != (unsigned long long)getpid())
            return 0;
    }
    return usec;
#endif
}

/* ------------------------------------------------------------------ the monitor */

struct heartbeat {
    struct worker *w;
    struct event *ev;          /* timer on the worker's base */
    uint64_t beats;            /* atomic: written by the worker thread */
    uint32_t nsessions;        /* atomic: the worker's connection count at its last beat */
    uint64_t seen;             /* main thread: beats at the previous watchdog check */
};

struct notify_monitor {
    struct event *tick;        /* timer on the main base */
    struct heartbeat *hb;
    uint32_t nhb;
    uint64_t watchdog_usec;    /* 0 = watchdog off */
    uint64_t last_status_ms;
    int stopping;
    int stalled;               /* a worker missed its heartbeat: logged once per episode */
};

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
    /* Runs on the worker thread, so it proves that worker's event loop turns. */
    struct heartbeat *h = arg;
    __atomic_store_n(&h->nsessions, h->w->nsessions, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->beats, 1, __ATOMIC_RELEASE);
}

uint64_t notify_monitor_connections(const struct notify_monitor *m)
{
    uint64_t n = 0;
    for (uint32_t i = 0; m && i < m->nhb; i++)
        n += __atomic_load_n(&m->hb[i].nsessions, __ATOMIC_RELAXED);
    return n;
}

static void send_stopping_status(struct notify_monitor *m)
{
    m->last_status_ms = now_ms();
    notify_send("STATUS=stopping: %llu connections left",
                (unsigned long long)notify_monitor_connections(m));
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct notify_monitor *m = arg;
    if (m->watchdog_usec) {
        int alive = 1;
        for (uint32_t i = 0; i < m->nhb; i++) {
            uint64_t b = __atomic_load_n(&m->hb[i].beats, __ATOMIC_ACQUIRE);
            if (b == m->hb[i].seen && !m->stopping) {
                alive = 0;
                if (!m->stalled)
                    log_error("watchdog: worker %d has not run its event loop for %llums; "
                              "not feeding the service manager's watchdog",
                              m->hb[i].w->id, (unsigned long long)(m->watchdog_usec / 2000));
            }
            m->hb[i].seen = b;
        }
        m->stalled = !alive;
        if (alive)
            notify_send("WATCHDOG=1");
    }
    if (m->stopping && now_ms() - m->last_status_ms >= 1000)
        send_stopping_status(m);
}

static struct timeval usec_tv(uint64_t usec)
{
    if (usec < 1000)
        usec = 1000;
    struct timeval tv = { (time_t)(usec / 1000000), (suseconds_t)(usec % 1000000) };
    return tv;
}

struct notify_monitor *notify_monitor_start(struct event_base *main_base, struct worker *workers,
                                            uint32_t nworkers)
{
    const char *e = getenv("NOTIFY_SOCKET");
    if (!e || !*e)
        return NULL;
    struct notify_monitor *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->watchdog_usec = notify_watchdog_usec();
    /* Workers beat four times per watchdog period at least; without the watchdog the beats
     * only carry connection counts for STATUS= while stopping. */
    uint64_t tick_usec = m->watchdog_usec ? m->watchdog_usec / 2 : 1000000;
    if (tick_usec > 1000000)
        tick_usec = 1000000;
    m->hb = calloc(nworkers, sizeof *m->hb);
    m->tick = event_new(main_base, -1, EV_PERSIST, tick_cb, m);
    if (!m->hb || !m->tick)
        goto fail;
    for (uint32_t i = 0; i < nworkers; i++) {
        struct heartbeat *h = &m->hb[i];
        h->w = &workers[i];
        h->ev = event_new(workers[i].base, -1, EV_PERSIST, heartbeat_cb, h);
        if (!h->ev)
            goto fail;
        m->nhb = i + 1;
        struct timeval tv = usec_tv(tick_usec / 4);
        event_add(h->ev, &tv);
    }
    struct timeval tv = usec_tv(tick_usec);
    event_add(m->tick, &tv);
    if (m->watchdog_usec) {
        log_info("watchdog: WATCHDOG=1 every %llums while every worker's event loop runs",
                 (unsigned long long)(tick_usec / 1000));
        notify_send("WATCHDOG=1");   /* the workers are about to start */
    }
    return m;
fail:
    notify_monitor_free(m);
    return NULL;
}

void notify_monitor_stopping(struct notify_monitor *m)
{
    if (!m || m->stopping)
        return;
    m->stopping = 1;
    send_stopping_status(m);
}

void notify_monitor_free(struct notify_monitor *m)
{
    if (!m)
        return;
    /* Worker bases have no lock: called only once the worker threads were joined. */
    for (uint32_t i = 0; m->hb && i < m->nhb; i++)
        if (m->hb[i].ev)
            event_free(m->hb[i].ev);
    free(m->hb);
    if (m->tick)
        event_free(m->tick);
    free(m);
}

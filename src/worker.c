#include "worker.h"

#include <event2/event.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <string.h>

#include "listener.h"
#include "log.h"
#include "pool.h"
#include "upstream.h"

static void drain_cb(evutil_socket_t fd, short what, void *arg);
static void stop_cb(evutil_socket_t fd, short what, void *arg);

int worker_init(struct worker *w, int id, const struct runtime *rt)
{
    const struct ferry_config *cfg = rt->cfg;
    memset(w, 0, sizeof *w);
    w->id = id;
    w->rt = rt;
    TAILQ_INIT(&w->sessions);
    TAILQ_INIT(&w->idle_lru);
    if (cfg->max_idle_upstream_connections) {
        w->idle_cap = cfg->max_idle_upstream_connections / cfg->workers;
        if (!w->idle_cap)
            w->idle_cap = 1;
    }
    struct event_config *ec = event_config_new();
    if (!ec)
        return -1;
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (!w->base)
        return -1;
    w->drain_ev = event_new(w->base, -1, 0, drain_cb, w);
    w->stop_ev = event_new(w->base, -1, 0, stop_cb, w);
    if (!w->drain_ev || !w->stop_ev)
        return -1;

    w->nupstreams = cfg->nupstreams;
    w->upstreams = calloc(cfg->nupstreams, sizeof *w->upstreams);
    if (!w->upstreams)
        return -1;
    for (size_t i = 0; i < cfg->nupstreams; i++)
        if (upstream_rt_init(&w->upstreams[i], w, &cfg->upstreams[i], rt->servers[i]) < 0)
            return -1;

    w->nlisteners = cfg->nlisteners;
    w->listeners = calloc(cfg->nlisteners, sizeof *w->listeners);
    if (!w->listeners)
        return -1;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct cfg_listener *lc = &cfg->listeners[i];
        int *fds = calloc(lc->naddrs, sizeof *fds);
        if (!fds)
            return -1;
        for (size_t a = 0; a < lc->naddrs; a++)
            fds[a] = rt->listen_fds[i][a * cfg->workers + (size_t)id];
        w->listeners[i].access_log = rt->access_logs[i];
        w->listeners[i].tls = rt->tls[i];
        int r = listener_start(&w->listeners[i], w, lc, fds, lc->naddrs);
        free(fds);
        if (r < 0)
            return -1;
    }
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    event_base_dispatch(w->base);
    const struct worker_stats *st = &w->stats;
    log_info("worker %d: %llu client connections, %llu requests; upstream connections opened %llu, "
             "reused %llu times, retries %llu; closed: idle_timeout %llu, by peer %llu, by limits %llu, "
             "on errors %llu, at shutdown %llu",
             w->id, (unsigned long long)st->ds_accepted, (unsigned long long)st->ds_requests,
             (unsigned long long)st->us_opened, (unsigned long long)st->us_reused,
             (unsigned long long)st->us_retries, (unsigned long long)st->us_closed_idle_timeout,
             (unsigned long long)st->us_closed_peer, (unsigned long long)st->us_closed_limit,
             (unsigned long long)st->us_closed_error, (unsigned long long)st->us_closed_shutdown);
    if (w->exited)
        w->exited(w);
    return NULL;
}

int worker_start(struct worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

static void maybe_exit(struct worker *w)
{
    if (w->draining && w->nsessions == 0)
        event_base_loopexit(w->base, NULL);
}

static void stop_listeners(struct worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++)
        listener_stop(&w->listeners[i]);
}

static void close_idle_upstreams(struct worker *w)
{
    for (size_t i = 0; i < w->nupstreams; i++)
        for (size_t s = 0; s < w->upstreams[i].nservers; s++)
            pool_close_idle(w->upstreams[i].pools[s]);
}

static void close_all_sessions(struct worker *w)
{
    while (!TAILQ_EMPTY(&w->sessions)) {
        struct ds_conn *c = TAILQ_FIRST(&w->sessions);
        c->ops->close_now(c);
    }
}

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    if (w->draining)
        return;
    w->draining = 1;
    stop_listeners(w);
    struct ds_conn *c, *next;
    for (c = TAILQ_FIRST(&w->sessions); c; c = next) {
        next = TAILQ_NEXT(c, link);
        c->ops->drain(c);
    }
    close_idle_upstreams(w);
    maybe_exit(w);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    w->draining = 1;
    stop_listeners(w);
    close_all_sessions(w);
    close_idle_upstreams(w);
    event_base_loopexit(w->base, NULL);
}

void worker_request_drain(struct worker *w) { event_active(w->drain_ev, 0, 0); }

void worker_request_stop(struct worker *w) { event_active(w->stop_ev, 0, 0); }

void worker_conn_count_close(struct listener_rt *l, enum ds_close_reason why)
{
    STAT_INC(l->stats.closed[why]);
}

void worker_conn_add(struct worker *w, struct listener_rt *l, struct ds_conn *c)
{
    TAILQ_INSERT_TAIL(&w->sessions, c, link);
    w->nsessions++;
    l->nconns++;
}

void worker_conn_replace(struct worker *w, struct ds_conn *old, struct ds_conn *c)
{
    TAILQ_INSERT_AFTER(&w->sessions, old, c, link);
    TAILQ_REMOVE(&w->sessions, old, link);
}

void worker_conn_closed(struct worker *w, struct listener_rt *l, struct ds_conn *c)
{
    TAILQ_REMOVE(&w->sessions, c, link);
    w->nsessions--;
    l->nconns--;
    listener_fd_freed(l);
    if (l->paused && l->nconns < l->cfg->max_connections && !w->draining) {
        l->paused = 0;
        for (size_t i = 0; i < l->nevl; i++)
            evconnlistener_enable(l->evl[i]);
    }
    maybe_exit(w);
}

void worker_join_and_free(struct worker *w)
{
    if (w->thread)
        pthread_join(w->thread, NULL);
    if (w->base) {
        /* Deferred frees (sessions, connections) still queued: let them run. */
        event_base_loop(w->base, EVLOOP_NONBLOCK);
        close_all_sessions(w);
        event_base_loop(w->base, EVLOOP_NONBLOCK);
    }
    if (w->listeners) {
        stop_listeners(w);
        free(w->listeners);
    }
    if (w->upstreams) {
        for (size_t i = 0; i < w->nupstreams; i++)
            upstream_rt_free(&w->upstreams[i]);
        free(w->upstreams);
    }
    if (w->base)
        event_base_loop(w->base, EVLOOP_NONBLOCK);
    if (w->drain_ev)
        event_free(w->drain_ev);
    if (w->stop_ev)
        event_free(w->stop_ev);
    if (w->base)
        event_base_free(w->base);
}

#include "worker.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "blockcache.h"
#include "h1_server.h"
#include "listener.h"
#include "log.h"
#include "pool.h"
#include "sockio.h"
#include "upstream.h"

static void wake_cb(evutil_socket_t fd, short what, void *arg);
static void handle_swap(struct worker *w);
static void gc_cb(evutil_socket_t fd, short what, void *arg);

/* Mailbox bits (struct worker wake_pending): what other threads ask of the worker. */
enum {
    WAKE_STOP = 1u << 0,     /* close everything, end the loop */
    WAKE_DRAIN = 1u << 1,    /* stop accepting, finish in-flight work, end the loop */
    WAKE_SWAP = 1u << 2,     /* switch to pending_rt */
    WAKE_HEALTH = 1u << 3,   /* a server's health changed */
};

void (*runtime_free_fn)(struct runtime *rt);

void runtime_ref(struct runtime *rt) { __atomic_add_fetch(&rt->refs, 1, __ATOMIC_RELAXED); }

void runtime_unref(struct runtime *rt)
{
    if (rt && __atomic_sub_fetch(&rt->refs, 1, __ATOMIC_ACQ_REL) == 0 && runtime_free_fn)
        runtime_free_fn(rt);
}

static void gen_free(struct worker_gen *g)
{
    for (size_t i = 0; g->listeners && i < g->nlisteners; i++)
        listener_stop(&g->listeners[i]);
    free(g->listeners);
    for (size_t i = 0; g->upstreams && i < g->nupstreams; i++)
        upstream_rt_free(&g->upstreams[i]);
    free(g->upstreams);
    runtime_unref(g->rt);
    free(g);
}

/* The worker's listeners and upstream groups for <rt>. The listening sockets of this worker
 * are adopted (closed with the listeners); on failure the ones not adopted are closed. */
static struct worker_gen *gen_build(struct worker *w, struct runtime *rt)
{
    const struct ferry_config *cfg = rt->cfg;
    struct worker_gen *g = calloc(1, sizeof *g);
    size_t adopted_listeners = 0;
    if (!g)
        goto fail;
    g->rt = rt;
    runtime_ref(rt);
    g->upstreams = calloc(cfg->nupstreams, sizeof *g->upstreams);
    g->listeners = calloc(cfg->nlisteners, sizeof *g->listeners);
    if (!g->upstreams || !g->listeners)
        goto fail;
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        if (upstream_rt_init(&g->upstreams[i], w, &rt->ups[i], rt->servers[i],
                             rt->tls_up ? rt->tls_up[i] : NULL, rt->generation) < 0)
            goto fail;
        g->nupstreams = i + 1;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct cfg_listener *lc = &cfg->listeners[i];
        int fds[lc->naddrs];
        for (size_t a = 0; a < lc->naddrs; a++)
            fds[a] = rt->listen_fds[i][a * cfg->workers + (size_t)w->id];
        struct listener_rt *l = &g->listeners[i];
        l->gen = g;
        l->access_log = rt->access_logs[i];
        l->tls = rt->tls[i];
        g->nlisteners = i + 1;
        adopted_listeners = i + 1;
        if (listener_start(l, w, lc, fds, lc->naddrs) < 0)
            goto fail;
    }
    g->refs = 1;   /* current */
    return g;
fail:
    /* Sockets of the listeners not started (and of a half-started one) are still ours. */
    for (size_t i = adopted_listeners ? adopted_listeners - 1 : 0; i < cfg->nlisteners; i++) {
        const struct cfg_listener *lc = &cfg->listeners[i];
        for (size_t a = (g && i + 1 == adopted_listeners) ? g->listeners[i].nevl : 0; a < lc->naddrs; a++)
            close(rt->listen_fds[i][a * cfg->workers + (size_t)w->id]);
    }
    if (g)
        gen_free(g);
    return NULL;
}

static void set_current(struct worker *w, struct worker_gen *g)
{
    const struct ferry_config *cfg = g->rt->cfg;
    w->gen = g;
    w->rt = g->rt;
    w->listeners = g->listeners;
    w->nlisteners = g->nlisteners;
    w->upstreams = g->upstreams;
    w->nupstreams = g->nupstreams;
    w->idle_cap = 0;
    if (cfg->max_idle_upstream_connections) {
        w->idle_cap = cfg->max_idle_upstream_connections / cfg->workers;
        if (!w->idle_cap)
            w->idle_cap = 1;
    }
}

int worker_init(struct worker *w, int id, struct runtime *rt)
{
    memset(w, 0, sizeof *w);
    w->id = id;
    w->wake_fd = -1;
    TAILQ_INIT(&w->sessions);
    TAILQ_INIT(&w->idle_lru);
    TAILQ_INIT(&w->old_gens);
    TAILQ_INIT(&w->pools);
    pthread_rwlock_init(&w->lock, NULL);
    pthread_mutex_init(&w->swap_mu, NULL);
    /* No base lock: only this worker's thread uses the base (see worker.h). */
    struct event_config *ec = event_config_new();
    if (!ec)
        return -1;
    if (event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK) < 0) {
        event_config_free(ec);
        return -1;
    }
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (!w->base)
        return -1;
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd < 0) {
        log_error("worker %d: eventfd: %s", id, strerror(errno));
        return -1;
    }
    w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, wake_cb, w);
    w->gc_ev = event_new(w->base, -1, 0, gc_cb, w);
    if (!w->wake_ev || !w->gc_ev || event_add(w->wake_ev, NULL) < 0)
        return -1;
    struct worker_gen *g = gen_build(w, rt);
    if (!g)
        return -1;
    set_current(w, g);
    pool_prewarm_all(w);
    return 0;
}

/* event_base_dispatch, one turn at a time (EVLOOP_ONCE returns once the events a wait found
 * have run), so that now_ms() reads the clock once per turn. */
static void run_loop(struct event_base *base)
{
    for (;;) {
        now_ms_new_turn();
        if (event_base_loop(base, EVLOOP_ONCE) != 0 || event_base_got_exit(base) ||
            event_base_got_break(base))
            break;
    }
    now_ms_no_turns();
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    run_loop(w->base);
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
    h1_server_thread_end();
    sockio_thread_end();
    bc_thread_flush();
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

static void close_idle_upstreams(struct worker *w) { pool_close_idle_all(w); }

static void close_all_sessions(struct worker *w)
{
    while (!TAILQ_EMPTY(&w->sessions)) {
        struct ds_conn *c = TAILQ_FIRST(&w->sessions);
        c->ops->close_now(c);
    }
}

static void handle_drain(struct worker *w)
{
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

static void handle_stop(struct worker *w)
{
    w->draining = 1;
    stop_listeners(w);
    close_all_sessions(w);
    close_idle_upstreams(w);
    event_base_loopexit(w->base, NULL);
}

/* ---- mailbox ----------------------------------------------------------------------- */

/* Any thread. The release half of the fetch_or publishes what the sender wrote before (e.g.
 * pending_rt) to the worker's acquiring exchange in wake_cb. Only the sender that finds the
 * word empty writes the eventfd: the others' bits are taken by the same exchange, which the
 * worker makes only after reading that write (so no wake-up is lost, and a burst of requests
 * costs one write and one wake-up). */
static void wake(struct worker *w, uint32_t bits)
{
    if (__atomic_fetch_or(&w->wake_pending, bits, __ATOMIC_ACQ_REL) != 0)
        return;
    uint64_t one = 1;
    while (write(w->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
    /* EAGAIN would mean a counter near 2^64: the worker is woken already. */
}

/* Worker thread (or main after the join). Reads the eventfd first, then takes the bits: a
 * sender that finds the word empty after the exchange writes again, so the event fires once
 * more (at worst a spurious wake-up that finds nothing). */
static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    uint64_t n;
    while (read(fd, &n, sizeof n) < 0 && errno == EINTR)
        ;
    uint32_t bits = __atomic_exchange_n(&w->wake_pending, 0, __ATOMIC_ACQ_REL);
    /* Stop before drain (a drain would only be undone), both before a swap (a draining
     * worker declines it, releasing the runtime), health last (the pools of the new
     * generation, if any, are the ones to act on; a draining worker skips it). */
    if (bits & WAKE_STOP)
        handle_stop(w);
    if (bits & WAKE_DRAIN)
        handle_drain(w);
    if (bits & WAKE_SWAP)
        handle_swap(w);
    if ((bits & WAKE_HEALTH) && !w->draining)
        pool_health_changed_all(w);
}

void worker_request_drain(struct worker *w) { wake(w, WAKE_DRAIN); }

void worker_request_stop(struct worker *w) { wake(w, WAKE_STOP); }

void worker_health_changed(struct worker *w) { wake(w, WAKE_HEALTH); }

/* ---- reload ------------------------------------------------------------------------ */

void worker_request_swap(struct worker *w, struct runtime *rt)
{
    runtime_ref(rt);
    pthread_mutex_lock(&w->swap_mu);
    struct runtime *old = w->pending_rt;
    w->pending_rt = rt;
    pthread_mutex_unlock(&w->swap_mu);
    if (old)
        runtime_unref(old);   /* superseded before the worker got to it */
    wake(w, WAKE_SWAP);
}

static struct listener_rt *find_listener(struct worker_gen *g, const char *name)
{
    for (size_t i = 0; i < g->nlisteners; i++)
        if (strcmp(g->listeners[i].cfg->name, name) == 0)
            return &g->listeners[i];
    return NULL;
}

/* Points the listeners of an older generation at the same listener in <g> (new requests on
 * old connections are routed with the new configuration), or at nothing when it is gone. */
static void link_successors(struct worker_gen *old, struct worker_gen *g)
{
    for (size_t i = 0; i < old->nlisteners; i++) {
        struct listener_rt *l = &old->listeners[i];
        l->successor = find_listener(g, l->cfg->name);
    }
}

static void handle_swap(struct worker *w)
{
    pthread_mutex_lock(&w->swap_mu);
    struct runtime *rt = w->pending_rt;
    w->pending_rt = NULL;
    pthread_mutex_unlock(&w->swap_mu);
    if (!rt)
        return;
    if (w->draining) {
        runtime_unref(rt);
        if (w->swapped)
            w->swapped(w);
        return;
    }
    struct worker_gen *old = w->gen;
    struct worker_gen *g = gen_build(w, rt);
    if (!g)
        log_error("worker %d: cannot set up generation %llu; still serving generation %llu",
                  w->id, (unsigned long long)rt->generation, (unsigned long long)old->rt->generation);
    if (!g) {
        /* Pools the failed generation adopted serve the running one again. */
        for (size_t u = 0; u < old->nupstreams; u++) {
            const struct cfg_upstream *uc = old->upstreams[u].cfg;
            for (size_t i = 0; i < old->upstreams[u].nservers; i++)
                pool_adopt(old->upstreams[u].pools[i], uc, &uc->servers[i],
                           &old->rt->servers[u][i], old->rt->tls_up ? old->rt->tls_up[u] : NULL,
                           old->rt->generation);
        }
        runtime_unref(rt);
        if (w->swapped)
            w->swapped(w);
        return;
    }
    runtime_unref(rt);   /* the generation holds its own reference */
    pthread_rwlock_wrlock(&w->lock);
    for (size_t i = 0; i < old->nlisteners; i++) {
        struct listener_rt *ol = &old->listeners[i];
        struct listener_rt *nl = find_listener(g, ol->cfg->name);
        if (nl)
            nl->stats = ol->stats;   /* counters go on across reloads */
        listener_stop(ol);           /* same sockets: the new listener accepts on them */
    }
    link_successors(old, g);
    struct worker_gen *og;
    TAILQ_FOREACH(og, &w->old_gens, link)
        link_successors(og, g);
    /* Pools no server of the new configuration took over: drain them. */
    pool_retire_unclaimed(w, g->rt->generation, old->rt, g->rt->lender ? CLOSE_DNS : CLOSE_RELOAD);
    set_current(w, g);
    TAILQ_INSERT_TAIL(&w->old_gens, old, link);
    pthread_rwlock_unlock(&w->lock);
    /* Connections of listeners that are gone finish what they carry, then close. */
    struct ds_conn *c, *next;
    for (c = TAILQ_FIRST(&w->sessions); c; c = next) {
        next = TAILQ_NEXT(c, link);
        if (c->l && c->l->gen != g && !c->l->successor)
            c->ops->drain(c);
    }
    worker_gen_unref(w, old);
    worker_collect_pools(w);
    pool_prewarm_all(w);
    if (w->swapped)
        w->swapped(w);
}

void worker_gen_ref(struct worker_gen *g) { g->refs++; }

void worker_gen_unref(struct worker *w, struct worker_gen *g)
{
    if (--g->refs == 0 && g != w->gen)
        event_active(w->gc_ev, 0, 0);   /* callers up the stack may still use it */
}

void worker_collect_pools(struct worker *w) { event_active(w->gc_ev, 0, 0); }

static void gc_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct worker_gen *g, *gnext;
    pthread_rwlock_wrlock(&w->lock);
    pool_free_retired(w);
    for (g = TAILQ_FIRST(&w->old_gens); g; g = gnext) {
        gnext = TAILQ_NEXT(g, link);
        if (g->refs == 0) {
            TAILQ_REMOVE(&w->old_gens, g, link);
            gen_free(g);
        }
    }
    pthread_rwlock_unlock(&w->lock);
}

/* ---- connections ------------------------------------------------------------------- */

void worker_conn_count_close(struct listener_rt *l, enum ds_close_reason why)
{
    STAT_INC(listener_newest(l)->stats.closed[why]);
}

void worker_conn_add(struct worker *w, struct listener_rt *l, struct ds_conn *c)
{
    TAILQ_INSERT_TAIL(&w->sessions, c, link);
    c->l = l;
    w->nsessions++;
    STAT_INC(l->nconns);
    worker_gen_ref(l->gen);
}

void worker_conn_replace(struct worker *w, struct ds_conn *old, struct ds_conn *c)
{
    c->l = old->l;
    TAILQ_INSERT_AFTER(&w->sessions, old, c, link);
    TAILQ_REMOVE(&w->sessions, old, link);
}

void worker_conn_closed(struct worker *w, struct listener_rt *l, struct ds_conn *c)
{
    TAILQ_REMOVE(&w->sessions, c, link);
    w->nsessions--;
    STAT_DEC(l->nconns);
    if (l->gen == w->gen) {
        listener_fd_freed(l);
        if (l->paused && l->nconns < l->cfg->max_connections && !w->draining) {
            l->paused = 0;
            for (size_t i = 0; i < l->nevl; i++)
                evconnlistener_enable(l->evl[i]);
        }
    }
    worker_gen_unref(w, l->gen);
    maybe_exit(w);
}

void worker_join(struct worker *w)
{
    if (w->thread) {
        pthread_join(w->thread, NULL);
        w->thread = 0;
    }
}

void worker_join_and_free(struct worker *w)
{
    worker_join(w);
    if (w->base) {
        /* Deferred frees (sessions, connections) still queued: let them run. */
        event_base_loop(w->base, EVLOOP_NONBLOCK);
        close_all_sessions(w);
        event_base_loop(w->base, EVLOOP_NONBLOCK);
    }
    pool_free_all(w);
    if (w->base)
        event_base_loop(w->base, EVLOOP_NONBLOCK);
    if (w->gen)
        gen_free(w->gen);
    while (!TAILQ_EMPTY(&w->old_gens)) {
        struct worker_gen *g = TAILQ_FIRST(&w->old_gens);
        TAILQ_REMOVE(&w->old_gens, g, link);
        gen_free(g);
    }
    pthread_mutex_lock(&w->swap_mu);
    if (w->pending_rt)
        runtime_unref(w->pending_rt);
    w->pending_rt = NULL;
    pthread_mutex_unlock(&w->swap_mu);
    if (w->wake_ev)
        event_free(w->wake_ev);
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    w->wake_fd = -1;
    if (w->gc_ev)
        event_free(w->gc_ev);
    if (w->base)
        event_base_free(w->base);
    pthread_rwlock_destroy(&w->lock);
    pthread_mutex_destroy(&w->swap_mu);
}

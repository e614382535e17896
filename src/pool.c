#include "pool.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "deadline.h"
#include "h1_client.h"
#include "h2_client.h"
#include "log.h"
#include "updial.h"
#include "worker.h"

#include <openssl/ssl.h>

struct pool {
    struct worker *w;
    const struct cfg_upstream *up;
    const struct cfg_server *srv;
    struct server_state *state;
    struct upconn_list idle;          /* most recently used first */
    struct upconn_list all;           /* every connection not yet closed */
    uint32_t nidle;
    uint32_t nbusy;                   /* ACTIVE + CONNECTING */
    TAILQ_HEAD(, pool_waiter) waiters;
    uint32_t nwaiters;
    struct upconn_list mux;           /* h2 connections that may take streams */
    uint32_t h2_dialing;              /* h2 connections dialling or waiting for the peer's
                                         first SETTINGS: each will offer streams soon */
    uint32_t h2_active;               /* h2 connections in state ACTIVE */
    uint32_t streams;                 /* h2 streams open on this pool's connections */
    uint32_t h2_stream_limit;         /* h2: the newest connection's stream limit (peer's
                                         SETTINGS, capped), for /status; 0 = none yet */
    int serving;                      /* inside serve_waiters */
    int mux_mode;                     /* requests share connections (h2c, h2; auto once a
                                         connection negotiated h2) */
    void *tls_session;                /* SSL_SESSION to resume with, or NULL */
    struct tls_client *tls;           /* the upstream's TLS client context, or NULL */
    struct runtime *retired_rt;       /* retired: the runtime its cfg pointers live in */
    enum close_reason retired_why;    /* retired: reload or dns */
    uint32_t busy_peak;               /* recent peak of busy connections (see idle_cap) */
    uint64_t busy_peak_at_ms;
    uint64_t idle_close_age_ms;       /* an idle close not yet confirmed (see learn_idle_close) */
    uint64_t idle_close_at_ms;
    uint64_t generation;              /* the last runtime generation that claimed it */
    TAILQ_ENTRY(pool) w_link;         /* worker's list of pools */
    struct event *prewarm_timer;      /* min_idle: refill a moment after a loss */
    struct pool_stats stats;
};

/* Backend closes younger than this are not taken as its idle timeout: they are restarts or
 * crashes, and learning them would switch reuse off. A learned value is forgotten after
 * LEARN_EXPIRE_MS so a one-off event cannot lower the timeout for good. */
#define LEARN_MIN_MS 250
#define LEARN_EXPIRE_MS ((uint64_t)10 * 60 * 1000)

_Static_assert(CLOSE_DNS + 1 == UPSTREAM_CLOSE_REASONS, "pool_stats.closed has one slot per reason");

const char *close_reason_str(enum close_reason r)
{
    static const char *const names[] = {
        "idle_timeout", "peer_idle_close", "peer_close", "keepalive_requests",
        "keepalive_time", "pool_full", "error", "abort", "shutdown", "goaway", "ping_timeout",
        "reload", "health", "dns",
    };
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

static void upconn_free_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upconn *c = arg;
    if (c->ops)
        c->ops->free(c);
    updial_free(c);
    event_free(c->free_ev);
    free(c);
}

static void idle_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upconn *c = arg;
    if (deadline_fired(&c->idle) && c->state == UC_IDLE)
        pool_close(c, CLOSE_IDLE_TIMEOUT);
}

struct pool *pool_new(struct worker *w, const struct cfg_upstream *up, const struct cfg_server *srv,
                      struct server_state *state, struct tls_client *tls, uint64_t generation)
{
    struct pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->w = w;
    p->up = up;
    p->srv = srv;
    p->state = state;
    p->tls = tls;
    p->generation = generation;
    TAILQ_INSERT_TAIL(&w->pools, p, w_link);
    TAILQ_INIT(&p->idle);
    TAILQ_INIT(&p->all);
    TAILQ_INIT(&p->waiters);
    TAILQ_INIT(&p->mux);
    p->mux_mode = up->protocol == PROTO_H2C || up->protocol == PROTO_H2;
    return p;
}

void pool_free(struct pool *p)
{
    /* Dials whose exchange went away are in no other list. */
    while (!TAILQ_EMPTY(&p->all))
        pool_close(TAILQ_FIRST(&p->all), CLOSE_SHUTDOWN);
    if (p->tls_session)
        SSL_SESSION_free(p->tls_session);
    if (p->prewarm_timer)
        event_free(p->prewarm_timer);
    TAILQ_REMOVE(&p->w->pools, p, w_link);
    if (p->retired_rt)
        runtime_unref(p->retired_rt);
    free(p);
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int same_tls(const struct cfg_upstream_tls *a, const struct cfg_upstream_tls *b)
{
    if (!a || !b)
        return !a && !b;
    return same_str(a->server_name, b->server_name) && same_str(a->ca_file, b->ca_file) &&
           a->verify == b->verify && same_str(a->cert, b->cert) && same_str(a->key, b->key) &&
           a->session_reuse == b->session_reuse;
}

struct pool *pool_find_reusable(struct worker *w, const struct cfg_upstream *up,
                                const struct cfg_server *srv, uint64_t generation)
{
    struct pool *p;
    TAILQ_FOREACH(p, &w->pools, w_link) {
        if (p->retired_rt || p->generation == generation)
            continue;
        /* The connection identity: where (same address text and resolved address), how
         * (protocol) and with which TLS settings; same upstream name for the limits. */
        if (strcmp(p->up->name, up->name) == 0 && strcmp(p->srv->address, srv->address) == 0 &&
            p->srv->sslen == srv->sslen && memcmp(&p->srv->ss, &srv->ss, srv->sslen) == 0 &&
            p->up->protocol == up->protocol && same_tls(p->up->tls, up->tls))
            return p;
    }
    return NULL;
}

void pool_adopt(struct pool *p, const struct cfg_upstream *up, const struct cfg_server *srv,
                struct server_state *state, struct tls_client *tls, uint64_t generation)
{
    p->up = up;
    p->srv = srv;
    p->state = state;
    p->tls = tls;
    p->generation = generation;
}

void pool_retire(struct pool *p, struct runtime *rt, enum close_reason why)
{
    runtime_ref(rt);
    p->retired_rt = rt;
    p->retired_why = why;
    if (why == CLOSE_DNS)
        log_info("upstream %s server %s: no longer in the DNS answer for %s; draining its %u "
                 "connections", p->up->name, p->srv->address, p->srv->name, p->nbusy + p->nidle);
    else
        log_info("upstream %s server %s: no longer configured; draining its %u connections",
                 p->up->name, p->srv->address, p->nbusy + p->nidle);
    while (!TAILQ_EMPTY(&p->idle))
        pool_close(TAILQ_FIRST(&p->idle), why);
}

int pool_is_retired(const struct pool *p) { return p->retired_rt != NULL; }

void pool_retire_unclaimed(struct worker *w, uint64_t generation, struct runtime *old,
                           enum close_reason why)
{
    struct pool *p;
    TAILQ_FOREACH(p, &w->pools, w_link)
        if (!p->retired_rt && p->generation != generation)
            pool_retire(p, old, why);
}

void pool_free_retired(struct worker *w)
{
    struct pool *p, *next;
    for (p = TAILQ_FIRST(&w->pools); p; p = next) {
        next = TAILQ_NEXT(p, w_link);
        if (p->retired_rt && pool_is_empty(p))
            pool_free(p);
    }
}

void pool_close_idle_all(struct worker *w)
{
    struct pool *p;
    TAILQ_FOREACH(p, &w->pools, w_link)
        pool_close_idle(p);
}

struct server_state *pool_server_state(const struct pool *p) { return p->state; }

static int server_down(const struct pool *p)
{
    return __atomic_load_n(&p->state->down, __ATOMIC_RELAXED) != 0;
}

/* A connection became busy: remember the peak. */
static void note_busy(struct pool *p)
{
    if (p->nbusy >= p->busy_peak) {
        p->busy_peak = p->nbusy;
        p->busy_peak_at_ms = now_ms();
    }
}

static int dial(struct pool *p, struct pool_waiter *wt);
static int below_max(const struct pool *p);

/* Pre-warming: connections (TLS handshakes done) opened before requests need them, so
 * that the first requests after a start, a reload or a recovery do not pay the dial. */
static void prewarm(struct pool *p)
{
    if (!p->up->min_idle || p->retired_rt || p->w->draining || server_down(p))
        return;
    uint32_t have = p->nidle + p->nbusy;
    while (have < p->up->min_idle && below_max(p)) {
        struct pool_waiter none = { 0 };   /* no exchange waits for it: it will idle */
        if (dial(p, &none) < 0)
            break;
        have++;
    }
}

static void prewarm_timer_cb(evutil_socket_t fd, short what, void *arg) { prewarm(arg); }

/* A connection was lost: refill to min_idle after a second (not at once: a server that
 * refuses connections must not be dialled in a loop). */
static void schedule_prewarm(struct pool *p)
{
    if (!p->up->min_idle || p->retired_rt || p->w->draining)
        return;
    if (!p->prewarm_timer && !(p->prewarm_timer = evtimer_new(p->w->base, prewarm_timer_cb, p)))
        return;
    if (!evtimer_pending(p->prewarm_timer, NULL)) {
        struct timeval tv = { 1, 0 };
        evtimer_add(p->prewarm_timer, &tv);
    }
}

void pool_prewarm_all(struct worker *w)
{
    struct pool *p;
    TAILQ_FOREACH(p, &w->pools, w_link)
        prewarm(p);
}

void pool_health_changed_all(struct worker *w)
{
    struct pool *p;
    TAILQ_FOREACH(p, &w->pools, w_link) {
        if (p->retired_rt)
            continue;
        if (server_down(p)) {
            while (!TAILQ_EMPTY(&p->idle))
                pool_close(TAILQ_FIRST(&p->idle), CLOSE_HEALTH);
        } else
            prewarm(p);
    }
}

void pool_free_all(struct worker *w)
{
    /* pool_free unlinks the pool from p->w->pools, which is w->pools (pool_new puts each pool
     * in its own worker's list): the analyzer cannot tell and sees the freed pool again. */
    while (!TAILQ_EMPTY(&w->pools))
        pool_free(TAILQ_FIRST(&w->pools));   /* NOLINT(clang-analyzer-unix.Malloc) */
}

int pool_is_empty(const struct pool *p) { return TAILQ_EMPTY(&p->all) && !p->nwaiters; }

uint64_t pool_generation(const struct pool *p) { return p->generation; }

struct tls_client *pool_tls_client(const struct pool *p) { return p->tls; }

void *pool_tls_session(struct pool *p) { return p->tls_session; }

void pool_set_tls_session(struct pool *p, void *sess)
{
    if (p->tls_session)
        SSL_SESSION_free(p->tls_session);
    p->tls_session = sess;
}

uint32_t pool_ping_backoff(const struct pool *p)
{
    uint32_t b = __atomic_load_n(&p->state->ping_backoff, __ATOMIC_RELAXED);
    return b ? b : 1;
}

void pool_double_ping_backoff(struct pool *p)
{
    uint32_t b = pool_ping_backoff(p);
    if (b < 1024)
        __atomic_store_n(&p->state->ping_backoff, b * 2, __ATOMIC_RELAXED);
    log_warn("upstream %s server %s: backend sent GOAWAY too_many_pings; PING interval for this "
             "server is now %ux h2_read_idle_timeout", p->up->name, p->srv->address, b * 2);
}

const struct cfg_server *pool_server(const struct pool *p) { return p->srv; }
const struct cfg_upstream *pool_upstream(const struct pool *p) { return p->up; }
struct worker *pool_worker(const struct pool *p) { return p->w; }
uint32_t pool_active(const struct pool *p) { return __atomic_load_n(&p->nbusy, __ATOMIC_RELAXED); }
uint32_t pool_streams(const struct pool *p) { return __atomic_load_n(&p->streams, __ATOMIC_RELAXED); }
uint32_t pool_h2_stream_limit(const struct pool *p)
{
    return __atomic_load_n(&p->h2_stream_limit, __ATOMIC_RELAXED);
}
uint32_t pool_inflight(const struct pool *p) { return p->nbusy - p->h2_active + p->streams; }
uint32_t pool_idle_count(const struct pool *p) { return __atomic_load_n(&p->nidle, __ATOMIC_RELAXED); }
uint32_t pool_queue_len(const struct pool *p) { return __atomic_load_n(&p->nwaiters, __ATOMIC_RELAXED); }
struct pool_stats *pool_stats(struct pool *p) { return &p->stats; }

static uint64_t margin_below(uint64_t ms)
{
    uint64_t m = ms / 5;
    if (m < 100)
        m = 100;
    if (m > 5000)
        m = 5000;
    return ms > m ? ms - m : 0;
}

static uint64_t learned_ms(const struct pool *p)
{
    uint64_t at = __atomic_load_n(&p->state->learned_at_ms, __ATOMIC_RELAXED);
    if (!at || now_ms() - at > LEARN_EXPIRE_MS)
        return 0;
    return __atomic_load_n(&p->state->learned_idle_ms, __ATOMIC_RELAXED);
}

uint64_t pool_learned_idle_ms(const struct pool *p) { return learned_ms(p); }

uint64_t pool_idle_timeout_ms(const struct pool *p)
{
    uint64_t t = p->up->keepalive_timeout_ms;
    uint64_t l = learned_ms(p);
    if (l) {
        uint64_t m = margin_below(l);
        if (m < t)
            t = m;
    }
    return t;
}

static uint64_t conn_idle_timeout_ms(const struct upconn *c)
{
    uint64_t t = pool_idle_timeout_ms(c->pool);
    if (c->hint_idle_ms) {
        uint64_t m = margin_below(c->hint_idle_ms);
        if (m < t)
            t = m;
    }
    return t;
}

static void learn(struct pool *p, uint64_t age, const char *how)
{
    if (age < LEARN_MIN_MS || age >= p->up->keepalive_timeout_ms)
        return;
    uint64_t old = learned_ms(p);
    uint64_t now = now_ms();
    if (old && age >= old) {
        if (age - old < old / 5 + 100)   /* same timeout seen again: keep it fresh */
            __atomic_store_n(&p->state->learned_at_ms, now, __ATOMIC_RELAXED);
        return;
    }
    __atomic_store_n(&p->state->learned_idle_ms, age, __ATOMIC_RELAXED);
    __atomic_store_n(&p->state->learned_at_ms, now, __ATOMIC_RELAXED);
    log_info("upstream %s server %s: backend closed a connection idle for %llums (%s); "
             "learned idle timeout, ferry now keeps its idle connections at most %llums",
             p->up->name, p->srv->address, (unsigned long long)age, how,
             (unsigned long long)pool_idle_timeout_ms(p));
}

void pool_learn_race(struct upconn *c, uint64_t idle_age_ms)
{
    learn(c->pool, idle_age_ms, "request raced the close");
}

static void unlink_idle(struct upconn *c)
{
    struct pool *p = c->pool;
    TAILQ_REMOVE(&p->idle, c, pool_link);
    TAILQ_REMOVE(&p->w->idle_lru, c, lru_link);
    STAT_DEC(p->nidle);
    p->w->nidle--;
    deadline_clear(&c->idle);
}

static void count_close(struct pool *p, enum close_reason why)
{
    STAT_INC(p->stats.closed[why]);
    struct worker_stats *st = &p->w->stats;
    switch (why) {
    case CLOSE_IDLE_TIMEOUT: st->us_closed_idle_timeout++; break;
    case CLOSE_PEER_IDLE:
    case CLOSE_GOAWAY:
    case CLOSE_PEER: st->us_closed_peer++; break;
    case CLOSE_LIMIT_REQUESTS:
    case CLOSE_LIMIT_TIME:
    case CLOSE_POOL_FULL: st->us_closed_limit++; break;
    case CLOSE_RELOAD:
    case CLOSE_DNS:
    case CLOSE_HEALTH:
    case CLOSE_SHUTDOWN: st->us_closed_shutdown++; break;
    default: st->us_closed_error++; break;
    }
}

static int dial(struct pool *p, struct pool_waiter *wt)
{
    struct upconn *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->pool = p;
    c->state = UC_CONNECTING;
    c->created_ms = now_ms();
    c->ex = wt->ex;
    c->free_ev = event_new(p->w->base, -1, 0, upconn_free_cb, c);
    c->idle.ev = evtimer_new(p->w->base, idle_timer_cb, c);
    if (!c->free_ev || !c->idle.ev || updial_start(c) < 0) {
        if (c->free_ev)
            event_free(c->free_ev);
        if (c->idle.ev)
            event_free(c->idle.ev);
        updial_free(c);
        free(c);
        return -1;
    }
    if (p->mux_mode) {
        p->h2_dialing++;
        c->mux_dial = 1;
    }
    STAT_INC(p->nbusy);
    note_busy(p);
    p->w->stats.us_opened++;
    STAT_INC(p->stats.opened);
    TAILQ_INSERT_TAIL(&p->all, c, all_link);
    wt->dialing = c;
    log_debug("upstream %s server %s: dialling a new connection", p->up->name, p->srv->address);
    return 0;
}

static void queue_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pool_waiter *wt = arg;
    STAT_INC(wt->pool->stats.queue_timeouts);
    pool_cancel(wt);
    exchange_upstream_error(wt->ex, UPERR_QUEUE_TIMEOUT, 0, 0, 0);
}

static uint32_t total_conns(const struct pool *p) { return p->nbusy + p->nidle; }

static int below_max(const struct pool *p)
{
    return !p->up->max_connections || total_conns(p) < p->up->max_connections;
}

/* The streams one new h2 connection is expected to offer before its SETTINGS say. */
static uint32_t h2_guess_streams(const struct pool *p)
{
    return p->up->max_concurrent_streams < 100 ? p->up->max_concurrent_streams : 100;
}

/* h2: will the connections on their way offer a stream to <waiters> more requests (each
 * also carries the request that dialled it)? */
static int dials_cover(const struct pool *p, uint32_t waiters)
{
    return p->h2_dialing && waiters < (uint64_t)p->h2_dialing * (h2_guess_streams(p) - 1);
}

/* An idle connection becomes busy. */
static void take_idle(struct upconn *c)
{
    unlink_idle(c);
    c->state = UC_ACTIVE;
    STAT_INC(c->pool->nbusy);
    note_busy(c->pool);
    if (c->is_h2)
        c->pool->h2_active++;
}

/* h2: a connection of the mux list that can take one more stream now, or NULL. Limits met
 * on the way send their connection into drain. */
static struct upconn *mux_pick(struct pool *p)
{
    uint64_t now = now_ms();
    struct upconn *c;
again:
    TAILQ_FOREACH(c, &p->mux, mux_link) {
        if (p->up->keepalive_time_ms && now - c->created_ms >= p->up->keepalive_time_ms) {
            pool_h2_drain(c, CLOSE_LIMIT_TIME);   /* leaves the list: start over */
            goto again;
        }
        /* Before the peer's SETTINGS, only the first stream: its limit may be lower. */
        if (c->streams < (c->h2_ready ? c->max_streams : 1))
            return c;
    }
    return NULL;
}

static void count_reuse(struct upconn *c)
{
    if (c->requests > 0) {
        c->pool->w->stats.us_reused++;
        STAT_INC(c->pool->stats.reused);
    }
}

/* h2: <c> will carry one more stream (the exchange's start() opens it). */
static void mux_take(struct upconn *c)
{
    if (c->state == UC_IDLE)
        take_idle(c);
    count_reuse(c);
}

/* Queues <wt> for <ms>. -1 when its timer cannot be made (nothing queued). */
static int queue_waiter(struct pool *p, struct pool_waiter *wt, uint64_t ms)
{
    /* Made only for requests that do wait: most never do. */
    if (!wt->timer && !(wt->timer = evtimer_new(p->w->base, queue_timeout_cb, wt)))
        return -1;
    struct timeval tv = ms_timeval(ms);
    evtimer_add(wt->timer, &tv);
    TAILQ_INSERT_TAIL(&p->waiters, wt, link);
    wt->queued = 1;
    p->nwaiters++;
    return 0;
}

/* How long a request waits for a dial in progress: the dial's own bounds. */
static uint64_t dial_wait_ms(const struct pool *p)
{
    uint64_t ms = p->up->connect_timeout_ms;
    if (p->up->tls)
        ms += p->up->tls->handshake_timeout_ms;
    return ms > p->up->queue_timeout_ms ? ms : p->up->queue_timeout_ms;
}

/* Below this idle time a retryable request takes a pooled connection without peeking. */
#define PEEK_SKIP_IDLE_MS 1000

struct upconn *pool_acquire(struct pool *p, struct pool_waiter *wt, int fresh,
                            enum upstream_error *err)
{
    *err = UPERR_NONE;
    wt->pool = p;
    wt->dialing = NULL;
    if (p->mux_mode) {
        struct upconn *c = mux_pick(p);
        if (c) {
            mux_take(c);
            return c;
        }
    }
    while (!p->mux_mode && !fresh && !TAILQ_EMPTY(&p->idle)) {
        struct upconn *c = TAILQ_FIRST(&p->idle);
        /* The idle watch only sees what the loop has delivered; peek so that a close
         * already queued in the kernel is not handed out — unless the request would be
         * retried after such a failure anyway and the connection idled only briefly (under
         * load, microseconds: a close in that window is rare), where the peek would cost a
         * syscall per request for nothing nginx or HAProxy spend. */
        int cheap = wt->retryable && now_ms() - c->idle_since_ms < PEEK_SKIP_IDLE_MS;
        if (!c->ops->seems_alive(c, cheap)) {
            learn(p, now_ms() - c->idle_since_ms, "seen at reuse");
            pool_close(c, CLOSE_PEER_IDLE);
            continue;
        }
        take_idle(c);
        count_reuse(c);
        return c;
    }
    if (p->mux_mode && dials_cover(p, p->nwaiters) && p->nwaiters < p->up->max_queue) {
        if (queue_waiter(p, wt, dial_wait_ms(p)) < 0)
            *err = UPERR_QUEUE_FULL;
        return NULL;
    }
    if (fresh && !p->mux_mode && p->up->max_connections && !below_max(p) && !TAILQ_EMPTY(&p->idle))
        pool_close(TAILQ_LAST(&p->idle, upconn_list), CLOSE_POOL_FULL);
    if (below_max(p)) {
        if (dial(p, wt) < 0)
            *err = UPERR_CONNECT;
        return NULL;
    }
    if (p->nwaiters >= p->up->max_queue || p->up->queue_timeout_ms == 0) {
        STAT_INC(p->stats.queue_full);
        *err = UPERR_QUEUE_FULL;
        return NULL;
    }
    if (queue_waiter(p, wt, p->up->queue_timeout_ms) < 0)
        *err = UPERR_QUEUE_FULL;
    return NULL;
}

void pool_cancel(struct pool_waiter *wt)
{
    if (wt->queued) {
        TAILQ_REMOVE(&wt->pool->waiters, wt, link);
        wt->pool->nwaiters--;
        wt->queued = 0;
    }
    if (wt->timer) {
        event_free(wt->timer);
        wt->timer = NULL;
    }
    if (wt->dialing) {
        /* The dial goes on; its connection will serve someone else or idle. */
        wt->dialing->ex = NULL;
        wt->dialing = NULL;
    }
}

static struct pool_waiter *pop_waiter(struct pool *p)
{
    struct pool_waiter *wt = TAILQ_FIRST(&p->waiters);
    if (!wt)
        return NULL;
    TAILQ_REMOVE(&p->waiters, wt, link);
    p->nwaiters--;
    wt->queued = 0;
    if (wt->timer) {
        event_free(wt->timer);
        wt->timer = NULL;
    }
    return wt;
}

/* Capacity appeared (a close, a stream ended, a connection ready): serve the oldest waiters
 * from h2 streams, then by dialling. A re-entrant call (an attach that fails at once) only
 * marks the work to do again. */
static void serve_waiters(struct pool *p)
{
    if (p->serving)
        return;
    p->serving = 1;
    while (p->nwaiters) {
        if (p->mux_mode) {
            struct upconn *c = mux_pick(p);
            if (c) {
                struct pool_waiter *wt = pop_waiter(p);
                mux_take(c);
                exchange_attach(wt->ex, c);
                continue;
            }
            if (dials_cover(p, p->nwaiters - 1))
                break;
        }
        if (!below_max(p))
            break;
        struct pool_waiter *wt = pop_waiter(p);
        if (dial(p, wt) < 0)
            exchange_upstream_error(wt->ex, UPERR_CONNECT, 0, 0, 0);
    }
    p->serving = 0;
}

/* An h2 connection with no stream: idle list, idle timer, PINGs. */
static void go_idle(struct upconn *c);

void pool_connected(struct upconn *c, enum upstream_error err)
{
    struct pool *p = c->pool;
    struct exchange *ex = c->ex;
    if (err == UPERR_NONE) {
        if (p->up->protocol == PROTO_AUTO && !p->mux_mode && updial_negotiated_h2(c)) {
            p->mux_mode = 1;   /* ALPN chose h2: from now on requests share connections */
            log_info("upstream %s server %s: ALPN selected h2; requests are multiplexed",
                     p->up->name, p->srv->address);
        }
        c->is_h2 = p->up->protocol == PROTO_H2C || p->up->protocol == PROTO_H2 ||
                   (p->up->protocol == PROTO_AUTO && updial_negotiated_h2(c));
        c->ops = c->is_h2 ? &h2u_ops : &h1c_ops;
        if (c->ops->init(c) < 0) {
            c->ops->free(c);
            c->ops = NULL;
            err = UPERR_CONNECT;
        }
    }
    if (err != UPERR_NONE) {
        c->ex = NULL;
        pool_close(c, CLOSE_ERROR);
        if (ex)
            exchange_upstream_error(ex, err, 0, 0, 0);
        return;
    }
    c->state = UC_ACTIVE;
    if (c->mux_dial && !c->is_h2) {
        c->mux_dial = 0;   /* auto chose HTTP/1.1 */
        p->h2_dialing--;
    }
    if (c->is_h2) {
        p->h2_active++;
        c->max_streams = h2_guess_streams(p);
        TAILQ_INSERT_TAIL(&p->mux, c, mux_link);
        c->in_mux = 1;
        c->ex = NULL;
        if (ex)
            exchange_attach(ex, c);
        else if (c->state == UC_ACTIVE && !c->streams)
            go_idle(c);
        return;
    }
    if (ex) {
        exchange_attach(ex, c);
        return;
    }
    /* Its exchange went away while dialling: offer it to the queue or keep it idle. */
    pool_release(c, 1, CLOSE_ABORT);
}

/* How many idle connections the pool keeps. nginx keeps at most keepalive: when clients
 * outnumber it, every burst closes the surplus as it ebbs and dials it again at the next,
 * and reuse collapses. ferry keeps as many as were busy at the recent peak (never fewer than
 * keepalive), forgetting a quarter of the surplus every IDLE_PEAK_DECAY_MS without a new
 * peak; idle connections past the cap then close as they come back. keepalive_strict: the
 * nginx way. */
#define IDLE_PEAK_DECAY_MS 10000
static uint32_t idle_cap(struct pool *p)
{
    uint32_t floor = p->up->keepalive;
    if (p->up->keepalive_strict || p->busy_peak <= floor)
        return floor;
    uint64_t now = now_ms();
    while (p->busy_peak > floor && now - p->busy_peak_at_ms >= IDLE_PEAK_DECAY_MS) {
        uint32_t surplus = p->busy_peak - floor;
        p->busy_peak -= surplus > 3 ? surplus / 4 : surplus;
        p->busy_peak_at_ms += IDLE_PEAK_DECAY_MS;
    }
    return p->busy_peak > floor ? p->busy_peak : floor;
}

static void arm_idle(struct upconn *c, uint64_t timeout)
{
    struct pool *p = c->pool;
    struct worker *w = p->w;
    c->state = UC_IDLE;
    c->idle_since_ms = now_ms();
    TAILQ_INSERT_HEAD(&p->idle, c, pool_link);
    TAILQ_INSERT_HEAD(&w->idle_lru, c, lru_link);
    STAT_INC(p->nidle);
    w->nidle++;
    deadline_set(&c->idle, c->idle_since_ms, timeout);   /* after every response: lazy */
    c->ops->watch_idle(c);
    /* Oldest first: the least recently used connection is the likeliest to be stale. */
    uint32_t cap = idle_cap(p);
    while (p->nidle > cap)
        pool_close(TAILQ_LAST(&p->idle, upconn_list), CLOSE_POOL_FULL);
    while (w->idle_cap && w->nidle > w->idle_cap)
        pool_close(TAILQ_LAST(&w->idle_lru, upconn_list), CLOSE_POOL_FULL);
}

static void go_idle(struct upconn *c)
{
    struct pool *p = c->pool;
    uint64_t timeout = conn_idle_timeout_ms(c);
    if (p->w->draining || p->retired_rt) {
        pool_close(c, p->retired_rt && !p->w->draining ? p->retired_why : CLOSE_SHUTDOWN);
        return;
    }
    if (p->up->keepalive == 0 || timeout == 0) {
        pool_close(c, p->up->keepalive == 0 ? CLOSE_POOL_FULL : CLOSE_IDLE_TIMEOUT);
        return;
    }
    STAT_DEC(p->nbusy);
    p->h2_active--;
    arm_idle(c, timeout);
}

void pool_release(struct upconn *c, int reusable, enum close_reason why)
{
    struct pool *p = c->pool;
    struct worker *w = p->w;
    uint64_t now = now_ms();
    c->ex = NULL;
    if (reusable) {
        if (p->up->keepalive_requests && c->requests >= p->up->keepalive_requests) {
            reusable = 0;
            why = CLOSE_LIMIT_REQUESTS;
        } else if (p->up->keepalive_time_ms && now - c->created_ms >= p->up->keepalive_time_ms) {
            reusable = 0;
            why = CLOSE_LIMIT_TIME;
        } else if (w->draining || p->retired_rt) {
            reusable = 0;
            why = p->retired_rt && !w->draining ? p->retired_why : CLOSE_SHUTDOWN;
        }
    }
    if (!reusable) {
        pool_close(c, why);
        return;
    }
    struct pool_waiter *wt = p->mux_mode ? NULL : pop_waiter(p);
    if (wt) {
        c->state = UC_ACTIVE;
        count_reuse(c);
        exchange_attach(wt->ex, c);
        return;
    }
    uint64_t timeout = conn_idle_timeout_ms(c);
    if (p->up->keepalive == 0 || timeout == 0) {
        pool_close(c, p->up->keepalive == 0 ? CLOSE_POOL_FULL : CLOSE_IDLE_TIMEOUT);
        return;
    }
    STAT_DEC(p->nbusy);
    arm_idle(c, timeout);
    if (p->nwaiters)
        serve_waiters(p);
}

void pool_stream_opened(struct upconn *c)
{
    struct pool *p = c->pool;
    c->streams++;
    p->streams++;
    c->requests++;
    if (p->up->keepalive_requests && c->requests >= p->up->keepalive_requests)
        pool_h2_drain(c, CLOSE_LIMIT_REQUESTS);
}

void pool_stream_done(struct upconn *c)
{
    struct pool *p = c->pool;
    c->streams--;
    p->streams--;
    if (c->state != UC_ACTIVE)
        return;
    if (c->streams == 0) {
        if (c->no_new_streams) {
            pool_close(c, c->drain_why);
            return;
        }
        if (!p->nwaiters) {
            go_idle(c);
            return;
        }
    }
    if (p->nwaiters)
        serve_waiters(p);
}

void pool_h2_update(struct upconn *c)
{
    if (c->state == UC_CLOSED)
        return;
    if (c->h2_ready && c->mux_dial) {
        c->mux_dial = 0;
        c->pool->h2_dialing--;
    }
    if (c->h2_ready)
        __atomic_store_n(&c->pool->h2_stream_limit, c->max_streams, __ATOMIC_RELAXED);
    if (c->no_new_streams && c->streams == 0) {
        pool_close(c, c->drain_why);
        return;
    }
    if (c->pool->nwaiters)
        serve_waiters(c->pool);
}

void pool_h2_drain(struct upconn *c, enum close_reason why)
{
    struct pool *p = c->pool;
    if (c->no_new_streams)
        return;
    c->no_new_streams = 1;
    c->drain_why = why;
    if (c->in_mux) {
        TAILQ_REMOVE(&p->mux, c, mux_link);
        c->in_mux = 0;
    }
    log_debug("upstream %s server %s: h2 connection takes no new streams (%s), %u open",
              p->up->name, p->srv->address, close_reason_str(why), c->streams);
    if (!c->streams)
        pool_close(c, why);
}

void pool_start_failed(struct upconn *c)
{
    if (!c->is_h2 || c->state != UC_ACTIVE || c->streams)
        return;
    if (c->no_new_streams)
        pool_close(c, c->drain_why);
    else
        go_idle(c);
}

void pool_close(struct upconn *c, enum close_reason why)
{
    struct pool *p = c->pool;
    if (c->state == UC_CLOSED)
        return;
    if (c->state == UC_IDLE)
        unlink_idle(c);
    else {
        STAT_DEC(p->nbusy);
        if (c->is_h2 && c->state == UC_ACTIVE && c->ops)
            p->h2_active--;
    }
    if (c->mux_dial) {
        c->mux_dial = 0;
        p->h2_dialing--;
    }
    if (c->in_mux) {
        TAILQ_REMOVE(&p->mux, c, mux_link);
        c->in_mux = 0;
    }
    c->state = UC_CLOSED;
    TAILQ_REMOVE(&p->all, c, all_link);
    count_close(p, why);
    log_debug("upstream %s server %s: connection closed (%s) after %u requests",
              p->up->name, p->srv->address, close_reason_str(why), c->requests);
    /* The session tells its streams' exchanges (h2: each open stream fails). */
    if (c->ops && c->ops->closing)
        c->ops->closing(c);
    if (c->bev) {
        updial_release_bev(c);
    }
    if (c->idle.ev) {
        event_free(c->idle.ev);
        c->idle.ev = NULL;
    }
    /* Callers up the stack may still look at c->state: free on the next loop turn. */
    event_active(c->free_ev, 0, 0);
    serve_waiters(p);
    if (p->retired_rt && pool_is_empty(p))
        worker_collect_pools(p->w);
    else if (p->up->min_idle && p->nidle + p->nbusy < p->up->min_idle)
        schedule_prewarm(p);
}

/* A backend that crashes or restarts closes every idle connection at once, whatever their
 * ages; an idle timeout closes each connection at the same age, again and again. So an idle
 * close teaches only when another one, at least IDLE_CONFIRM_GAP_MS later, agrees on the
 * age (a request that raced a close, or a dead connection found at reuse, teaches at once). */
#define IDLE_CONFIRM_GAP_MS 200
static void learn_idle_close(struct pool *p, uint64_t age)
{
    uint64_t now = now_ms();
    uint64_t seen = p->idle_close_age_ms, at = p->idle_close_at_ms;
    if (at && now - at < IDLE_CONFIRM_GAP_MS)
        return;                       /* the same burst of closes */
    uint64_t lo = seen < age ? seen : age, hi = seen < age ? age : seen;
    if (at && now - at < LEARN_EXPIRE_MS && hi - lo <= lo / 5 + 100) {
        p->idle_close_at_ms = 0;
        learn(p, hi, "idle close, twice");
        return;
    }
    p->idle_close_age_ms = age;
    p->idle_close_at_ms = now;
}

void pool_idle_lost(struct upconn *c, int eof)
{
    if (eof)
        learn_idle_close(c->pool, now_ms() - c->idle_since_ms);
    pool_close(c, eof ? CLOSE_PEER_IDLE : CLOSE_ERROR);
}

void pool_close_idle(struct pool *p)
{
    while (!TAILQ_EMPTY(&p->idle))
        pool_close(TAILQ_FIRST(&p->idle), CLOSE_SHUTDOWN);
}

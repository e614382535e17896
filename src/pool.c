#include "pool.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "h1_client.h"
#include "log.h"
#include "worker.h"

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
    struct pool_stats stats;
};

/* Backend closes younger than this are not taken as its idle timeout: they are restarts or
 * crashes, and learning them would switch reuse off. A learned value is forgotten after
 * LEARN_EXPIRE_MS so a one-off event cannot lower the timeout for good. */
#define LEARN_MIN_MS 250
#define LEARN_EXPIRE_MS (10 * 60 * 1000)

_Static_assert(CLOSE_SHUTDOWN + 1 == UPSTREAM_CLOSE_REASONS, "pool_stats.closed has one slot per reason");

const char *close_reason_str(enum close_reason r)
{
    static const char *const names[] = {
        "idle_timeout", "peer_idle_close", "peer_close", "keepalive_requests",
        "keepalive_time", "pool_full", "error", "abort", "shutdown",
    };
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

static void upconn_free_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upconn *c = arg;
    h1c_free(c);
    event_free(c->free_ev);
    free(c);
}

static void idle_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    pool_close(arg, CLOSE_IDLE_TIMEOUT);
}

struct pool *pool_new(struct worker *w, const struct cfg_upstream *up, const struct cfg_server *srv,
                      struct server_state *state)
{
    struct pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->w = w;
    p->up = up;
    p->srv = srv;
    p->state = state;
    TAILQ_INIT(&p->idle);
    TAILQ_INIT(&p->all);
    TAILQ_INIT(&p->waiters);
    return p;
}

void pool_free(struct pool *p)
{
    /* Dials whose exchange went away are in no other list. */
    while (!TAILQ_EMPTY(&p->all))
        pool_close(TAILQ_FIRST(&p->all), CLOSE_SHUTDOWN);
    free(p);
}

const struct cfg_server *pool_server(const struct pool *p) { return p->srv; }
const struct cfg_upstream *pool_upstream(const struct pool *p) { return p->up; }
struct worker *pool_worker(const struct pool *p) { return p->w; }
uint32_t pool_active(const struct pool *p) { return __atomic_load_n(&p->nbusy, __ATOMIC_RELAXED); }
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
    p->nidle--;
    p->w->nidle--;
    if (c->idle_timer)
        event_del(c->idle_timer);
}

static void count_close(struct pool *p, enum close_reason why)
{
    STAT_INC(p->stats.closed[why]);
    struct worker_stats *st = &p->w->stats;
    switch (why) {
    case CLOSE_IDLE_TIMEOUT: st->us_closed_idle_timeout++; break;
    case CLOSE_PEER_IDLE:
    case CLOSE_PEER: st->us_closed_peer++; break;
    case CLOSE_LIMIT_REQUESTS:
    case CLOSE_LIMIT_TIME:
    case CLOSE_POOL_FULL: st->us_closed_limit++; break;
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
    c->idle_timer = evtimer_new(p->w->base, idle_timer_cb, c);
    if (!c->free_ev || !c->idle_timer || h1c_connect(c) < 0) {
        if (c->free_ev)
            event_free(c->free_ev);
        if (c->idle_timer)
            event_free(c->idle_timer);
        h1c_free(c);
        free(c);
        return -1;
    }
    p->nbusy++;
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

struct upconn *pool_acquire(struct pool *p, struct pool_waiter *wt, int fresh,
                            enum upstream_error *err)
{
    *err = UPERR_NONE;
    wt->pool = p;
    wt->dialing = NULL;
    while (!fresh && !TAILQ_EMPTY(&p->idle)) {
        struct upconn *c = TAILQ_FIRST(&p->idle);
        unlink_idle(c);
        /* The idle watch only sees what the loop has delivered; peek so that a close
         * already queued in the kernel is not handed out. */
        if (!h1c_seems_alive(c)) {
            learn(p, now_ms() - c->idle_since_ms, "seen at reuse");
            c->state = UC_ACTIVE;
            p->nbusy++;
            pool_close(c, CLOSE_PEER_IDLE);
            continue;
        }
        c->state = UC_ACTIVE;
        p->nbusy++;
        p->w->stats.us_reused++;
        STAT_INC(p->stats.reused);
        return c;
    }
    if (fresh && p->up->max_connections && total_conns(p) >= p->up->max_connections &&
        !TAILQ_EMPTY(&p->idle)) {
        struct upconn *old = TAILQ_LAST(&p->idle, upconn_list);
        unlink_idle(old);
        old->state = UC_ACTIVE;
        p->nbusy++;
        pool_close(old, CLOSE_POOL_FULL);
    }
    if (!p->up->max_connections || total_conns(p) < p->up->max_connections) {
        if (dial(p, wt) < 0)
            *err = UPERR_CONNECT;
        return NULL;
    }
    if (p->nwaiters >= p->up->max_queue || p->up->queue_timeout_ms == 0) {
        STAT_INC(p->stats.queue_full);
        *err = UPERR_QUEUE_FULL;
        return NULL;
    }
    if (!wt->timer)
        wt->timer = evtimer_new(p->w->base, queue_timeout_cb, wt);
    if (!wt->timer) {
        *err = UPERR_QUEUE_FULL;
        return NULL;
    }
    struct timeval tv = { (time_t)(p->up->queue_timeout_ms / 1000),
                          (suseconds_t)(p->up->queue_timeout_ms % 1000) * 1000 };
    evtimer_add(wt->timer, &tv);
    TAILQ_INSERT_TAIL(&p->waiters, wt, link);
    wt->queued = 1;
    p->nwaiters++;
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

/* Capacity appeared (a close): let the oldest waiter dial. */
static void serve_waiters(struct pool *p)
{
    while (p->nwaiters && (!p->up->max_connections || total_conns(p) < p->up->max_connections)) {
        struct pool_waiter *wt = pop_waiter(p);
        if (dial(p, wt) < 0)
            exchange_upstream_error(wt->ex, UPERR_CONNECT, 0, 0, 0);
    }
}

void pool_connected(struct upconn *c, enum upstream_error err)
{
    struct exchange *ex = c->ex;
    if (err != UPERR_NONE) {
        c->ex = NULL;
        pool_close(c, CLOSE_ERROR);
        if (ex)
            exchange_upstream_error(ex, err, 0, 0, 0);
        return;
    }
    c->state = UC_ACTIVE;
    if (ex) {
        exchange_attach(ex, c);
        return;
    }
    /* Its exchange went away while dialling: offer it to the queue or keep it idle. */
    pool_release(c, 1, CLOSE_ABORT);
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
        } else if (w->draining) {
            reusable = 0;
            why = CLOSE_SHUTDOWN;
        }
    }
    if (!reusable) {
        pool_close(c, why);
        return;
    }
    struct pool_waiter *wt = pop_waiter(p);
    if (wt) {
        c->state = UC_ACTIVE;
        w->stats.us_reused++;
        STAT_INC(p->stats.reused);
        exchange_attach(wt->ex, c);
        return;
    }
    uint64_t timeout = conn_idle_timeout_ms(c);
    if (p->up->keepalive == 0 || timeout == 0) {
        pool_close(c, p->up->keepalive == 0 ? CLOSE_POOL_FULL : CLOSE_IDLE_TIMEOUT);
        return;
    }
    p->nbusy--;
    c->state = UC_IDLE;
    c->idle_since_ms = now;
    TAILQ_INSERT_HEAD(&p->idle, c, pool_link);
    TAILQ_INSERT_HEAD(&w->idle_lru, c, lru_link);
    p->nidle++;
    w->nidle++;
    struct timeval tv = { (time_t)(timeout / 1000), (suseconds_t)(timeout % 1000) * 1000 };
    evtimer_add(c->idle_timer, &tv);
    h1c_watch_idle(c);
    /* Oldest first: the least recently used connection is the likeliest to be stale. */
    while (p->nidle > p->up->keepalive)
        pool_close(TAILQ_LAST(&p->idle, upconn_list), CLOSE_POOL_FULL);
    while (w->idle_cap && w->nidle > w->idle_cap)
        pool_close(TAILQ_LAST(&w->idle_lru, upconn_list), CLOSE_POOL_FULL);
}

void pool_close(struct upconn *c, enum close_reason why)
{
    struct pool *p = c->pool;
    if (c->state == UC_CLOSED)
        return;
    if (c->state == UC_IDLE)
        unlink_idle(c);
    else
        p->nbusy--;
    c->state = UC_CLOSED;
    TAILQ_REMOVE(&p->all, c, all_link);
    count_close(p, why);
    log_debug("upstream %s server %s: connection closed (%s) after %u requests",
              p->up->name, p->srv->address, close_reason_str(why), c->requests);
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->idle_timer) {
        event_free(c->idle_timer);
        c->idle_timer = NULL;
    }
    /* Callers up the stack may still look at c->state: free on the next loop turn. */
    event_active(c->free_ev, 0, 0);
    serve_waiters(p);
}

void pool_idle_lost(struct upconn *c, int eof)
{
    if (eof)
        learn(c->pool, now_ms() - c->idle_since_ms, "idle close");
    pool_close(c, eof ? CLOSE_PEER_IDLE : CLOSE_ERROR);
}

void pool_close_idle(struct pool *p)
{
    while (!TAILQ_EMPTY(&p->idle))
        pool_close(TAILQ_FIRST(&p->idle), CLOSE_SHUTDOWN);
}

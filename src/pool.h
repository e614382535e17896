/* pool — the idle and busy upstream connections of one server, in one worker.
 *
 * Idle connections are kept most-recently-used first (the warmest connection is the one
 * least likely to have been closed by the backend) and each is watched for readability, so
 * a backend close, RST or stray byte evicts it at once. A connection returns to the idle list
 * only when its session says the last exchange ended cleanly and the limits allow.
 */
#ifndef FERRY_POOL_H
#define FERRY_POOL_H

#include <stdint.h>
#include <sys/queue.h>

#include "config.h"
#include "exchange.h"
#include "metrics.h"

struct worker;
struct bufferevent;
struct event;
struct server_state;
struct pool;

enum upconn_state {
    UC_CONNECTING,   /* dialling; bound to the exchange that asked, if it still waits */
    UC_ACTIVE,       /* carrying an exchange */
    UC_IDLE,         /* in the idle list, watched for close */
    UC_CLOSED,       /* closed; freed by the deferred free event */
};

enum close_reason {
    CLOSE_IDLE_TIMEOUT,     /* our idle timeout (configured or learned) */
    CLOSE_PEER_IDLE,        /* backend closed it while idle */
    CLOSE_PEER,             /* backend asked: Connection: close */
    CLOSE_LIMIT_REQUESTS,   /* keepalive_requests reached */
    CLOSE_LIMIT_TIME,       /* keepalive_time reached */
    CLOSE_POOL_FULL,        /* more idle than keepalive / global cap */
    CLOSE_ERROR,            /* I/O error, timeout, bad framing */
    CLOSE_ABORT,            /* exchange abandoned mid-way */
    CLOSE_SHUTDOWN,
};
const char *close_reason_str(enum close_reason r);

/* One upstream connection (HTTP/1.1 now; an h2 connection will add its own session). */
struct upconn {
    struct pool *pool;
    struct bufferevent *bev;
    enum upconn_state state;
    struct exchange *ex;          /* attached exchange or NULL */
    uint64_t created_ms;
    uint64_t idle_since_ms;       /* when it last became idle */
    uint32_t requests;            /* exchanges carried so far */
    uint64_t hint_idle_ms;        /* from the backend's Keep-Alive: timeout=N, 0 = none */
    struct event *idle_timer;
    struct event *free_ev;
    TAILQ_ENTRY(upconn) pool_link;   /* pool idle list */
    TAILQ_ENTRY(upconn) lru_link;    /* worker idle LRU */
    TAILQ_ENTRY(upconn) all_link;    /* every open connection of the pool */
    void *proto;                  /* protocol session state (h1_client) */
};

TAILQ_HEAD(upconn_list, upconn);

/* Embedded in an exchange while it waits for a connection. */
struct pool_waiter {
    struct exchange *ex;
    struct pool *pool;
    struct event *timer;          /* queue_timeout while queued */
    struct upconn *dialing;       /* the connection being dialled for it, if any */
    TAILQ_ENTRY(pool_waiter) link;
    int queued;
};

struct pool *pool_new(struct worker *w, const struct cfg_upstream *up, const struct cfg_server *srv,
                      struct server_state *state);
void pool_free(struct pool *p);      /* closes every connection, whatever its state;
                                        waiters must be gone */

/* Gets a connection for <wt>->ex. Returns an idle connection at once (state ACTIVE, not yet
 * attached), or NULL. NULL with *err == UPERR_NONE: a connection is being dialled or the
 * waiter was queued, and exchange_attach() or exchange_upstream_error() follows later, from
 * the event loop. NULL with *err set: failed now (queue full, socket error); nothing will
 * follow. When <fresh> is set, idle connections are skipped (a retry after a stale one). */
struct upconn *pool_acquire(struct pool *p, struct pool_waiter *wt, int fresh,
                            enum upstream_error *err);

/* Withdraws a waiter (its exchange went away). Safe if not waiting. */
void pool_cancel(struct pool_waiter *wt);

/* The connection's exchange ended. <reusable>: the session proved the connection clean. */
void pool_release(struct upconn *c, int reusable, enum close_reason why);

/* Closes and schedules the free of <c>, whatever its state; <why> is counted. */
void pool_close(struct upconn *c, enum close_reason why);

/* Called by the session when a dial finished (err = UPERR_NONE on success). */
void pool_connected(struct upconn *c, enum upstream_error err);

/* The backend closed an idle connection or sent stray bytes: evict it. <eof> = clean close,
 * whose idle age teaches the pool the backend's idle timeout. */
void pool_idle_lost(struct upconn *c, int eof);

/* A reused connection failed before any response byte: the backend's idle close raced our
 * request. Learn from its idle age as from an idle close. */
void pool_learn_race(struct upconn *c, uint64_t idle_age_ms);

/* Effective idle timeout for this server now (configured, hint and learned), in ms. */
uint64_t pool_idle_timeout_ms(const struct pool *p);

/* Counters and gauges for metrics: written by the owning worker only, read by anyone. */
struct pool_stats *pool_stats(struct pool *p);
uint32_t pool_idle_count(const struct pool *p);
uint32_t pool_queue_len(const struct pool *p);
uint64_t pool_learned_idle_ms(const struct pool *p);   /* 0 = nothing learned */

const struct cfg_server *pool_server(const struct pool *p);
const struct cfg_upstream *pool_upstream(const struct pool *p);
struct worker *pool_worker(const struct pool *p);
uint32_t pool_active(const struct pool *p);   /* busy + dialling: for least_request */

/* Closes all idle connections (drain). */
void pool_close_idle(struct pool *p);

#endif

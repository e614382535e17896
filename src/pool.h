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
#include "deadline.h"
#include "exchange.h"
#include "metrics.h"

struct evbuffer;

struct worker;
struct bufferevent;
struct event;
struct server_state;
struct sockio;
struct tls_handshake;
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
    CLOSE_GOAWAY,           /* h2: the backend sent GOAWAY; closed once drained */
    CLOSE_PING_TIMEOUT,     /* h2: a PING went unanswered */
    CLOSE_RELOAD,           /* its server left the configuration at a reload */
    CLOSE_HEALTH,           /* its server failed its health checks (idle connections) */
    CLOSE_DNS,              /* its address left the DNS answer of its server name */
};
const char *close_reason_str(enum close_reason r);

struct upconn;

/* What a protocol session (h1_client, h2_client) offers the pool and the exchange. <st> is
 * the stream handle start() returned (HTTP/1.1: the connection itself). */
struct upconn_ops {
    /* The connection is up (TCP, and TLS when configured): take over its bufferevent.
     * 0, or -1 (out of memory; the pool closes it). */
    int (*init)(struct upconn *c);
    /* Begins <ex> on the connection and writes its request head. NULL: the connection can
     * take no stream now (h2 after a GOAWAY); nothing was sent. */
    void *(*start)(struct upconn *c, struct exchange *ex);
    void (*send_body)(struct upconn *c, void *st, struct evbuffer *data);
    void (*send_end)(struct upconn *c, void *st, const struct http_head *trailers);
    size_t (*output_pending)(struct upconn *c, void *st);
    void (*pause_response)(struct upconn *c, void *st, int pause);
    /* The exchange went away mid-way. */
    void (*abort)(struct upconn *c, void *st);
    /* No stream left: watch the idle connection for a close (and, h2, PING it). */
    void (*watch_idle)(struct upconn *c);
    /* Non-blocking liveness probe before reuse: 1 = looks alive. <cheap>: skip what costs
     * a syscall. */
    int (*seems_alive)(struct upconn *c, int cheap);
    /* The pool closes the connection: fail what is still attached (h2 streams). */
    void (*closing)(struct upconn *c);
    /* Frees the protocol state (the pool frees the connection). */
    void (*free)(struct upconn *c);
};

/* One upstream connection. HTTP/1.1 carries one exchange at a time; HTTP/2 many streams. */
struct upconn {
    struct pool *pool;
    struct bufferevent *bev;
    const struct upconn_ops *ops;   /* NULL while dialling */
    enum upconn_state state;
    struct exchange *ex;          /* h1: attached exchange; while dialling: who waits */
    uint64_t created_ms;
    uint64_t idle_since_ms;       /* when it last became idle */
    uint32_t requests;            /* exchanges carried so far */
    uint64_t hint_idle_ms;        /* from the backend's Keep-Alive: timeout=N, 0 = none */
    struct deadline idle;         /* idle timeout while idle (a lazy timer, see arm_idle) */
    struct event *free_ev;
    TAILQ_ENTRY(upconn) pool_link;   /* pool idle list */
    TAILQ_ENTRY(upconn) lru_link;    /* worker idle LRU */
    TAILQ_ENTRY(upconn) all_link;    /* every open connection of the pool */
    TAILQ_ENTRY(upconn) mux_link;    /* h2: pool's list of connections taking streams */
    void *proto;                  /* protocol session state (h1c / h2u) */
    void *ssl;                    /* SSL * when TLS: see updial.h for its owner */
    struct tls_handshake *hs;     /* TLS: the handshake under way */
    struct sockio *tls_io;        /* TLS after the handshake: the socket's reads and writes */
    unsigned is_h2 : 1,           /* the session speaks HTTP/2 */
        in_mux : 1,               /* in the pool's mux list */
        h2_ready : 1,             /* the peer's first SETTINGS arrived */
        no_new_streams : 1,       /* GOAWAY received or a limit reached: drain */
        mux_dial : 1;             /* counted in the pool's h2 dials in progress */
    enum close_reason drain_why;  /* h2: why no new streams; counted at the close */
    uint32_t streams;             /* h2: open streams */
    uint32_t max_streams;         /* h2: min(peer's SETTINGS, configured cap) */
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
    int retryable;                /* a reused connection failing before any response byte
                                   * would be retried (idempotent, a retry left) */
};

struct tls_client;
struct runtime;

/* A pool of <w>, listed in w->pools. <tls> is the upstream's client context or NULL;
 * <generation> the runtime generation that created it. */
struct pool *pool_new(struct worker *w, const struct cfg_upstream *up, const struct cfg_server *srv,
                      struct server_state *state, struct tls_client *tls, uint64_t generation);
void pool_free(struct pool *p);      /* closes every connection, whatever its state;
                                        waiters must be gone */

/* Reload. pool_find_reusable: a pool of <w> not yet claimed by <generation> whose
 * connections a server of the new configuration can use (same upstream name, address,
 * protocol and TLS settings). pool_adopt: it now serves <srv> of the new configuration,
 * idle and busy connections included. pool_retire: its server left; idle connections close,
 * busy ones close when done, and the pool is freed when empty (worker_collect_pools); it
 * keeps a reference on <rt>, where its configuration lives. */
struct pool *pool_find_reusable(struct worker *w, const struct cfg_upstream *up,
                                const struct cfg_server *srv, uint64_t generation);
void pool_adopt(struct pool *p, const struct cfg_upstream *up, const struct cfg_server *srv,
                struct server_state *state, struct tls_client *tls, uint64_t generation);
void pool_retire(struct pool *p, struct runtime *rt, enum close_reason why);
int pool_is_retired(const struct pool *p);
/* Over all pools of <w>: retire those <generation> did not claim (holding <old>); free the
 * retired ones left empty; close idle connections (drain); free all (exit). */
void pool_retire_unclaimed(struct worker *w, uint64_t generation, struct runtime *old,
                           enum close_reason why);
void pool_free_retired(struct worker *w);
void pool_close_idle_all(struct worker *w);
void pool_free_all(struct worker *w);
/* Health: close idle connections of servers now down, pre-warm the others (min_idle). */
void pool_health_changed_all(struct worker *w);
/* Opens connections up to min_idle in every pool that wants them. */
void pool_prewarm_all(struct worker *w);
struct server_state *pool_server_state(const struct pool *p);
int pool_is_empty(const struct pool *p);
uint64_t pool_generation(const struct pool *p);
struct tls_client *pool_tls_client(const struct pool *p);

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

/* Called when a dial finished (err = UPERR_NONE on success). */
void pool_connected(struct upconn *c, enum upstream_error err);

/* h2: one of the connection's streams ended (the exchange was told). <clean>: the stream
 * finished without resetting anything. */
void pool_stream_done(struct upconn *c);
/* h2: a stream was opened for an exchange (counts requests and limits). */
void pool_stream_opened(struct upconn *c);
/* h2: the connection's capacity changed (peer SETTINGS arrived, GOAWAY, limits): waiters
 * may be served, or it may close once drained. */
void pool_h2_update(struct upconn *c);
/* h2: the connection must take no new stream (GOAWAY, keepalive limits); <why> is the
 * close reason counted when its last stream ends. */
void pool_h2_drain(struct upconn *c, enum close_reason why);
/* The exchange could not start on <c> (ops->start returned NULL): give it back. */
void pool_start_failed(struct upconn *c);

/* TLS session to offer the next connection to this server (NULL = none). */
void *pool_tls_session(struct pool *p);
void pool_set_tls_session(struct pool *p, void *sess);

/* Server's PING interval multiplier (doubled after a too_many_pings GOAWAY). */
uint32_t pool_ping_backoff(const struct pool *p);
void pool_double_ping_backoff(struct pool *p);

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
uint32_t pool_active(const struct pool *p);   /* connections busy + dialling */
uint32_t pool_inflight(const struct pool *p); /* requests in flight: for least_request */
uint32_t pool_streams(const struct pool *p);  /* h2 streams open */
uint32_t pool_h2_stream_limit(const struct pool *p);  /* streams per h2 connection: the
                                                         peer's limit, capped; 0 = unknown */

/* Closes all idle connections (drain). */
void pool_close_idle(struct pool *p);

#endif

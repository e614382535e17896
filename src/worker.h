/* worker — one thread, one event_base, its own listening sockets, downstream sessions and
 * upstream pools. Nothing a worker touches on the request path is shared with another
 * worker except read-only config and per-server atomics (struct server_state).
 *
 * A worker's event_base is created with EVENT_BASE_FLAG_NOLOCK: libevent takes no mutex in
 * event_add/del/active/pending on it (they run several times per request). So only the
 * worker's own thread may touch its base and the events, timers, bufferevents and listeners
 * on it — before worker_start (main, setting it up) and after the thread is joined (main,
 * tearing it down) nobody else runs it. The one way in from another thread is the worker's
 * mailbox: worker_request_drain/stop/swap and worker_health_changed set a bit in
 * <wake_pending> and write its eventfd, which a read event on the worker's base watches. */
#ifndef FERRY_WORKER_H
#define FERRY_WORKER_H

#include <pthread.h>
#include <stdint.h>
#include <sys/queue.h>

#include "config.h"
#include "metrics.h"

struct event_base;
struct event;
struct evconnlistener;
struct access_log;
struct tls_server;
struct ds_conn;
struct upconn;
struct upstream_rt;
struct pool;

/* Every downstream connection (TLS handshake, h1 session, h2 session) starts with this, so
 * the worker can drain or stop them without knowing their kind. */
struct ds_conn_ops {
    void (*drain)(struct ds_conn *c);       /* graceful: finish in-flight work, then close */
    void (*close_now)(struct ds_conn *c);   /* hard stop: must unlink <c> from the worker */
};

struct ds_conn {
    TAILQ_ENTRY(ds_conn) link;
    const struct ds_conn_ops *ops;
    struct listener_rt *l;                  /* set by worker_conn_add */
};

/* Process-wide state of one configured server, written by any worker with atomics. */
struct server_state {
    uint64_t learned_idle_ms;   /* shortest idle age at which the backend closed a pooled
                                   connection; 0 = nothing learned yet */
    uint64_t learned_at_ms;     /* when it was last lowered or confirmed */
    uint32_t ping_backoff;      /* h2 PING interval multiplier: 1, doubled on each
                                   too_many_pings GOAWAY (grpc-go's keepalive policy) */
    /* Active health (written by main's checker, read by workers). */
    int down;                   /* 1 = failed its checks: no new requests */
    uint32_t rise, fall;        /* consecutive passes / failures (main only) */
    int64_t changed_at;         /* wall time of the last transition, 0 = none */
    uint64_t checks_passed, checks_failed, transitions;
    /* Passive outlier detection (any worker, atomics). */
    uint32_t consecutive_failures;
    uint64_t ejected_until_ms;  /* now_ms() clock; 0 = not ejected */
    uint32_t ejections;         /* how many times in all */
    uint32_t ejection_streak;   /* in a row (lengthens the next one) */
};

/* What main builds once per configuration generation and hands to every worker (read-only
 * for them). Reference-counted: main holds one while it is current, each worker one per
 * generation it still serves, each retired pool one (it points into the configuration). */
struct runtime {
    int refs;                            /* atomic */
    uint64_t generation;                 /* 1, 2, ... */
    struct ferry_config *cfg;
    /* cfg's upstreams as the workers use them: each server name expanded to one server per
     * address of its DNS answer when this runtime was built (main.c expand_upstreams). */
    struct cfg_upstream *ups;            /* [upstream] */
    struct server_state **servers;       /* [upstream][server of ups] */
    struct access_log **access_logs;     /* [listener], NULL = off */
    struct tls_server **tls;             /* [listener], NULL = cleartext */
    struct tls_client **tls_up;          /* [upstream], NULL = cleartext */
    int **listen_fds;                    /* [listener][addr * workers + worker] */
    /* A DNS change rebuilds the runtime of the same configuration: it borrows the access
     * logs and TLS contexts of the runtime that built them (and holds a reference to it),
     * so TLS session tickets and caches go on. NULL when it owns them. */
    struct runtime *lender;
};

struct worker_gen;

struct listener_rt {
    struct worker *w;
    struct worker_gen *gen;               /* the generation it belongs to */
    struct listener_rt *successor;        /* same listener in a newer generation, or NULL */
    const struct cfg_listener *cfg;
    struct access_log *access_log;
    struct tls_server *tls;               /* shared by all workers; NULL = cleartext */
    struct evconnlistener **evl;          /* one per address */
    size_t nevl;
    uint32_t nconns;
    uint32_t nparked;                     /* of them idle without buffers (h1_server park) */
    int paused;                           /* accept disabled at max_connections */
    int fd_starved;                       /* accept disabled: out of descriptors */
    struct event *accept_retry;           /* re-enables accept after fd starvation */
    struct listener_stats stats;
};

/* The same listener in the newest generation (counters of connections accepted before a
 * reload go to it, so they carry on). */
static inline struct listener_rt *listener_newest(struct listener_rt *l)
{
    while (l->successor)
        l = l->successor;
    return l;
}

struct worker_stats {
    uint64_t ds_accepted, ds_requests;
    uint64_t us_opened, us_reused, us_retries;
    uint64_t us_closed_idle_timeout, us_closed_peer, us_closed_limit, us_closed_error,
        us_closed_shutdown;
};

/* What one worker runs for one runtime: its listeners and upstream groups. A generation
 * lives while it is current, or while connections accepted by its listeners or requests
 * routed with its upstreams remain (requests in flight finish on the generation they
 * started with). */
struct worker_gen {
    struct runtime *rt;
    struct listener_rt *listeners;        /* parallel to rt->cfg->listeners */
    size_t nlisteners;
    struct upstream_rt *upstreams;        /* parallel to rt->cfg->upstreams */
    size_t nupstreams;
    uint32_t refs;                        /* sessions + exchanges (+1 while current) */
    TAILQ_ENTRY(worker_gen) link;
};

struct worker {
    int id;
    struct event_base *base;
    /* The current generation and aliases of its fields (written only by the worker thread,
     * at a reload, under <lock>). */
    struct worker_gen *gen;
    const struct runtime *rt;
    struct listener_rt *listeners;
    size_t nlisteners;
    struct upstream_rt *upstreams;
    size_t nupstreams;
    TAILQ_HEAD(, worker_gen) old_gens;    /* retired generations still in use */
    TAILQ_HEAD(, pool) pools;             /* every pool, current or retired */
    pthread_rwlock_t lock;                /* reload (write) vs the admin's renderers (read) */
    pthread_mutex_t swap_mu;
    struct runtime *pending_rt;           /* main -> worker: switch to it (under swap_mu) */
    struct event *gc_ev;                  /* frees unused generations and retired pools
                                             (activated by the worker thread only) */
    /* The mailbox: other threads set WAKE_* bits in <wake_pending> (atomic) and, when it was
     * empty, write <wake_fd> (an eventfd); <wake_ev> (EV_READ|EV_PERSIST on the worker's
     * base) reads it, takes the bits and runs what they ask for. */
    int wake_fd;
    struct event *wake_ev;
    uint32_t wake_pending;
    void (*swapped)(struct worker *w);    /* called on the worker thread after a switch */
    pthread_t thread;

    TAILQ_HEAD(, ds_conn) sessions;       /* every downstream connection, for drain/stop */
    uint32_t nsessions;
    TAILQ_HEAD(, upconn) idle_lru;        /* idle upstream conns, most recent first */
    uint32_t nidle;
    uint32_t idle_cap;                    /* worker share of max_idle_upstream_connections */

    int draining;
    void (*exited)(struct worker *w);     /* called on the worker thread after its loop ends */
    struct worker_stats stats;
};

/* Creates the worker's base, listeners (adopting rt->listen_fds) and pools. 0 or -1. */
int worker_init(struct worker *w, int id, struct runtime *rt);
/* Thread-safe: the worker switches to <rt> at its next turn (takes a reference), keeping
 * pools whose server is still configured alike, then calls w->swapped. */
void worker_request_swap(struct worker *w, struct runtime *rt);
/* Thread-safe: a server's health changed; the worker closes idle connections of servers
 * that are down and pre-warms those that came back. */
void worker_health_changed(struct worker *w);
/* A generation's reference count: sessions and exchanges that use it. */
void worker_gen_ref(struct worker_gen *g);
void worker_gen_unref(struct worker *w, struct worker_gen *g);

/* Frees, at the next loop turn, the retired pools that have no connection left. */
void worker_collect_pools(struct worker *w);

/* Runtime references (any thread). */
void runtime_ref(struct runtime *rt);
void runtime_unref(struct runtime *rt);
/* Set by main: frees a runtime whose last reference went. */
extern void (*runtime_free_fn)(struct runtime *rt);
int worker_start(struct worker *w);       /* spawns the thread */
/* Thread-safe (through the mailbox): drain = stop accepting, finish in-flight work, then
 * end the loop; stop = close everything and end the loop now (shutdown_timeout, SIGQUIT). */
void worker_request_drain(struct worker *w);
void worker_request_stop(struct worker *w);
/* Waits for the worker's thread to end (its loop must have been asked to: drain or stop);
 * afterwards the caller may touch the worker's base. No-op if not started or joined. */
void worker_join(struct worker *w);
/* worker_join, then frees everything; also for a worker whose worker_init failed. */
void worker_join_and_free(struct worker *w);

/* A downstream connection starts (counted against the listener's max_connections) and
 * ends (so a draining worker knows when it may exit). A connection that changes kind (TLS
 * handshake -> h1 -> h2) calls worker_conn_replace instead, keeping its place and count. */
void worker_conn_add(struct worker *w, struct listener_rt *l, struct ds_conn *c);
void worker_conn_replace(struct worker *w, struct ds_conn *old, struct ds_conn *c);
void worker_conn_closed(struct worker *w, struct listener_rt *l, struct ds_conn *c);
/* Counts why a client connection ended (for metrics); call once per connection. */
void worker_conn_count_close(struct listener_rt *l, enum ds_close_reason why);

#endif

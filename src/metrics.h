/* metrics — counters kept by each worker for its own listeners and pools, summed by the main
 * thread when /metrics or /status is scraped. Each counter has one writer (its worker), so
 * no lock and no atomic read-modify-write is needed on the request path: writes and reads
 * are relaxed atomic stores and loads of aligned 64-bit words. */
#ifndef FERRY_METRICS_H
#define FERRY_METRICS_H

#include <stdint.h>
#include <time.h>

#define STAT_ADD(field, n) \
    __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)
#define STAT_INC(field) STAT_ADD(field, 1)
#define STAT_DEC(field) STAT_ADD(field, -1)
#define STAT_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

/* Why a client connection ended. */
enum ds_close_reason {
    DSC_KEEPALIVE_REQUESTS, DSC_KEEPALIVE_TIME, DSC_KEEPALIVE_TIMEOUT, DSC_CLIENT_CLOSE,
    DSC_ERROR, DSC_SHUTDOWN, DSC_COUNT,
};
const char *ds_close_reason_str(enum ds_close_reason r);

struct listener_stats {
    uint64_t accepted;
    uint64_t requests_h1, requests_h2;
    uint64_t closed[DSC_COUNT];
};

#define RT_BUCKETS 12
#define UPSTREAM_CLOSE_REASONS 14  /* enum close_reason in pool.h */

struct pool_stats {
    uint64_t opened;              /* connections dialled */
    uint64_t reused;              /* requests served on a connection that carried one before */
    uint64_t closed[UPSTREAM_CLOSE_REASONS];
    uint64_t queue_timeouts, queue_full;
    uint64_t responses[6];        /* [0] no response (error), [1..5] 1xx..5xx */
    uint64_t retries;
    uint64_t rt_buckets[RT_BUCKETS + 1];   /* response time (head received), last = +Inf */
    uint64_t rt_sum_us, rt_count;
};

/* Records one upstream response time. */
void metrics_observe_rt(struct pool_stats *st, uint64_t us);

struct worker;
struct runtime;
struct evbuffer;

/* What the renderers read: the running workers and their configuration. */
struct metrics_view {
    const struct runtime *rt;
    struct worker *workers;
    uint32_t nworkers;
    time_t started;
    uint64_t generation;
    uint64_t reloads_ok, reloads_failed;
    uint64_t dns_updates;               /* server sets changed by DNS answers */
    time_t loaded_at;                 /* when the current generation was loaded */
    time_t last_reload_at;            /* 0 = no reload yet */
    char last_reload_error[512];      /* "" = the last reload succeeded */
};

/* Recent per-server samples for the status page's sparklines, so a page opened now shows
 * the last minutes at once. Kept by the admin (main thread only): every
 * METRICS_HISTORY_INTERVAL_S it sums each server's counters over the workers and keeps the
 * increase of the last METRICS_HISTORY_SAMPLES intervals. Servers are known by upstream name
 * and address, so a reload that keeps a server keeps its history. */
#define METRICS_HISTORY_INTERVAL_S 5
#define METRICS_HISTORY_SAMPLES 60
struct metrics_history;
struct metrics_history *metrics_history_new(void);   /* NULL when out of memory */
void metrics_history_free(struct metrics_history *h);
/* Takes one sample of <v> (the first one of a server only sets its baseline). */
void metrics_history_sample(struct metrics_history *h, const struct metrics_view *v);

/* Prometheus text exposition format 0.0.4. */
void metrics_render_prometheus(struct evbuffer *out, const struct metrics_view *v);
/* The /status JSON document; each server gets a "history" from <h> (may be NULL). */
void metrics_render_status(struct evbuffer *out, const struct metrics_view *v,
                           const struct metrics_history *h);

#endif

#include "metrics.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pool.h"
#include "upstream.h"
#include "worker.h"

/* Upper bounds of the response-time histogram, in microseconds. */
static const uint64_t rt_bounds_us[RT_BUCKETS] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 10000000,
};

const char *ds_close_reason_str(enum ds_close_reason r)
{
    static const char *const names[DSC_COUNT] = {
        "keepalive_requests", "keepalive_time", "keepalive_timeout", "client_close", "error",
        "shutdown",
    };
    return (unsigned)r < DSC_COUNT ? names[r] : "?";
}

void metrics_observe_rt(struct pool_stats *st, uint64_t us)
{
    size_t i = 0;
    while (i < RT_BUCKETS && us > rt_bounds_us[i])
        i++;
    STAT_INC(st->rt_buckets[i]);
    STAT_ADD(st->rt_sum_us, us);
    STAT_INC(st->rt_count);
}

/* Label values are configuration names and addresses; escape them as the format asks. */
static void label(struct evbuffer *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            evbuffer_add_printf(b, "\\%c", *s);
        else if (*s == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, s, 1);
    }
}

static void family(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void server_labels(struct evbuffer *b, const struct cfg_upstream *u, const struct cfg_server *s)
{
    evbuffer_add(b, "upstream=\"", 10);
    label(b, u->name);
    evbuffer_add(b, "\",server=\"", 10);
    label(b, s->address);
    evbuffer_add(b, "\"", 1);
}

/* A worker switches generation on its own thread a moment after main: until it has, its
 * arrays do not match v->rt and it is left out. */
static int current(const struct metrics_view *v, uint32_t w) { return v->workers[w].rt == v->rt; }

static void lock_workers(const struct metrics_view *v, int lock)
{
    for (uint32_t w = 0; w < v->nworkers; w++) {
        if (lock)
            pthread_rwlock_rdlock(&v->workers[w].lock);
        else
            pthread_rwlock_unlock(&v->workers[w].lock);
    }
}

static const struct pool *first_pool(const struct metrics_view *v, size_t u, size_t s)
{
    for (uint32_t w = 0; w < v->nworkers; w++)
        if (current(v, w))
            return v->workers[w].upstreams[u].pools[s];
    return NULL;
}

/* Sum over workers of one pool field, selected by offset into struct pool_stats. */
static uint64_t pool_sum(const struct metrics_view *v, size_t u, size_t s, size_t off)
{
    uint64_t n = 0;
    for (uint32_t w = 0; w < v->nworkers; w++) {
        if (!current(v, w))
            continue;
        const uint64_t *f = (const uint64_t *)((const char *)pool_stats(v->workers[w].upstreams[u].pools[s]) + off);
        n += STAT_GET(*f);
    }
    return n;
}

typedef uint32_t (*pool_gauge_fn)(const struct pool *);

static uint64_t pool_gauge(const struct metrics_view *v, size_t u, size_t s, pool_gauge_fn fn)
{
    uint64_t n = 0;
    for (uint32_t w = 0; w < v->nworkers; w++)
        if (current(v, w))
            n += fn(v->workers[w].upstreams[u].pools[s]);
    return n;
}

#define FOR_SERVERS(v, u, s) \
    for (size_t u = 0; (u) < (v)->rt->cfg->nupstreams; (u)++) \
        for (size_t s = 0; (s) < (v)->rt->ups[(u)].nservers; (s)++)

static void render_pool_counter(struct evbuffer *b, const struct metrics_view *v, const char *name,
                                const char *help, size_t off)
{
    const struct ferry_config *cfg = v->rt->cfg;
    family(b, name, "counter", help);
    FOR_SERVERS(v, u, s) {
        evbuffer_add_printf(b, "%s{", name);
        server_labels(b, &cfg->upstreams[u], &v->rt->ups[u].servers[s]);
        evbuffer_add_printf(b, "} %llu\n", (unsigned long long)pool_sum(v, u, s, off));
    }
}

static void render_pool_gauge(struct evbuffer *b, const struct metrics_view *v, const char *name,
                              const char *help, pool_gauge_fn fn)
{
    const struct ferry_config *cfg = v->rt->cfg;
    family(b, name, "gauge", help);
    FOR_SERVERS(v, u, s) {
        evbuffer_add_printf(b, "%s{", name);
        server_labels(b, &cfg->upstreams[u], &v->rt->ups[u].servers[s]);
        evbuffer_add_printf(b, "} %llu\n", (unsigned long long)pool_gauge(v, u, s, fn));
    }
}

static void render_upstreams(struct evbuffer *b, const struct metrics_view *v)
{
    const struct ferry_config *cfg = v->rt->cfg;
    render_pool_counter(b, v, "ferry_upstream_connections_opened_total",
                        "Upstream connections dialled.", offsetof(struct pool_stats, opened));
    render_pool_counter(b, v, "ferry_upstream_connections_reused_total",
                        "Requests served on an upstream connection that had carried one before.",
                        offsetof(struct pool_stats, reused));
    family(b, "ferry_upstream_connections_closed_total", "counter",
           "Upstream connections closed, by reason.");
    FOR_SERVERS(v, u, s) {
        for (int r = 0; r < UPSTREAM_CLOSE_REASONS; r++) {
            evbuffer_add(b, "ferry_upstream_connections_closed_total{", 40);
            server_labels(b, &cfg->upstreams[u], &v->rt->ups[u].servers[s]);
            evbuffer_add_printf(b, ",reason=\"%s\"} %llu\n", close_reason_str((enum close_reason)r),
                                (unsigned long long)pool_sum(v, u, s, offsetof(struct pool_stats, closed) +
                                                                          (size_t)r * sizeof(uint64_t)));
        }
    }
    render_pool_gauge(b, v, "ferry_upstream_connections_idle", "Idle pooled upstream connections.",
                      pool_idle_count);
    render_pool_gauge(b, v, "ferry_upstream_connections_active",
                      "Upstream connections carrying a request or being dialled.", pool_active);
    family(b, "ferry_upstream_server_healthy", "gauge",
           "1 when the server takes new requests (not down by health checks, not ejected).");
    FOR_SERVERS(v, u, s) {
        const struct server_state *st = &v->rt->servers[u][s];
        int ejected = STAT_GET(st->ejected_until_ms) > now_ms();
        evbuffer_add(b, "ferry_upstream_server_healthy{", 30);
        server_labels(b, &cfg->upstreams[u], &v->rt->ups[u].servers[s]);
        evbuffer_add_printf(b, "} %d\n", !STAT_GET(st->down) && !ejected);
    }
    family(b, "ferry_upstream_health_checks_total", "counter", "Active health checks, by result.");
    FOR_SERVERS(v, u, s) {
        const struct server_state *st = &v->rt->servers[u][s];
        for (int pass = 1; pass >= 0; pass--) {
            evbuffer_add(b, "ferry_upstream_health_checks_total{", 35);
            server_labels(b, &cfg->upstreams[u], &v->rt->ups[u].servers[s]);
            evbuffer_add_printf(b, ",result=\"%s\"} %llu\n", pass ? "pass" : "fail",
                                (unsigned long long)(pass ? STAT_GET(st->checks_passed)
                                                          : STAT_GET(st->checks_failed)));
        }
    }
    family(b, "ferry_upstream_health_transitions_total", "counter",
           "Changes of a server's health-check verdict (up to down and back).");
    FOR_SERVERS(v, u, s) {
        evbuffer_add(b, "ferry_upstream_health_transitions_total{", 40);
        server_labels(b, &cfg->upstreams[u], &v->rt->ups[u].servers[s]);
        evbuffer_add_printf(b, "} %llu\n", (unsigned long long)STAT_GET(v->rt->servers[u][s].transitions));
    }
    family(b, "ferry_upstream_ejections_total", "counter", "Passive outlier ejections.");
    FOR_SERVERS(v, u, s) {
        evbuffer_add(b, "ferry_upstream_ejections_total{", 31);
        server_labels(b, &cfg->upstreams[u], &v->rt->ups[u].servers[s]);
        evbuffer_add_printf(b, "} %u\n", STAT_GET(v->rt->servers[u][s].ejections));
    }
    render_pool_gauge(b, v, "ferry_upstream_streams_active",
                      "HTTP/2 streams open on upstream connections (h2c, h2).", pool_streams);
    render_pool_gauge(b, v, "ferry_upstream_queue_waiting",
                      "Requests waiting for a connection (max_connections reached).", pool_queue_len);
    render_pool_counter(b, v, "ferry_upstream_queue_timeouts_total",
                        "Requests that waited queue_timeout for a connection in vain.",
                        offsetof(struct pool_stats, queue_timeouts));
    render_pool_counter(b, v, "ferry_upstream_queue_full_total",
                        "Requests refused because the wait queue was full.",
                        offsetof(struct pool_stats, queue_full));
    render_pool_counter(b, v, "ferry_upstream_retries_total", "Safe retries of failed requests.",
                        offsetof(struct pool_stats, retries));
    family(b, "ferry_upstream_responses_total", "counter",
           "Upstream responses by status class; code=\"none\" when no response came.");
    static const char *const classes[6] = { "none", "1xx", "2xx", "3xx", "4xx", "5xx" };
    FOR_SERVERS(v, u, s) {
        for (int k = 0; k < 6; k++) {
            evbuffer_add(b, "ferry_upstream_responses_total{", 31);
            server_labels(b, &cfg->upstreams[u], &v->rt->ups[u].servers[s]);
            evbuffer_add_printf(b, ",code=\"%s\"} %llu\n", classes[k],
                                (unsigned long long)pool_sum(v, u, s, offsetof(struct pool_stats, responses) +
                                                                          (size_t)k * sizeof(uint64_t)));
        }
    }
    family(b, "ferry_upstream_response_seconds", "histogram",
           "Time from the request's connection attempt to the upstream response head.");
    FOR_SERVERS(v, u, s) {
        uint64_t cum = 0;
        for (int k = 0; k <= RT_BUCKETS; k++) {
            cum += pool_sum(v, u, s, offsetof(struct pool_stats, rt_buckets) + (size_t)k * sizeof(uint64_t));
            evbuffer_add(b, "ferry_upstream_response_seconds_bucket{", 39);
            server_labels(b, &cfg->upstreams[u], &v->rt->ups[u].servers[s]);
            if (k < RT_BUCKETS)
                evbuffer_add_printf(b, ",le=\"%g\"} %llu\n", (double)rt_bounds_us[k] / 1e6, (unsigned long long)cum);
            else
                evbuffer_add_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        evbuffer_add(b, "ferry_upstream_response_seconds_sum{", 36);
        server_labels(b, &cfg->upstreams[u], &v->rt->ups[u].servers[s]);
        evbuffer_add_printf(b, "} %.6f\n", (double)pool_sum(v, u, s, offsetof(struct pool_stats, rt_sum_us)) / 1e6);
        evbuffer_add(b, "ferry_upstream_response_seconds_count{", 38);
        server_labels(b, &cfg->upstreams[u], &v->rt->ups[u].servers[s]);
        evbuffer_add_printf(b, "} %llu\n",
                            (unsigned long long)pool_sum(v, u, s, offsetof(struct pool_stats, rt_count)));
    }
    family(b, "ferry_upstream_learned_idle_timeout_seconds", "gauge",
           "Idle age at which the backend was seen closing pooled connections (0: not learned).");
    FOR_SERVERS(v, u, s) {
        evbuffer_add(b, "ferry_upstream_learned_idle_timeout_seconds{", 44);
        server_labels(b, &cfg->upstreams[u], &v->rt->ups[u].servers[s]);
        uint64_t ms = first_pool(v, u, s) ? pool_learned_idle_ms(first_pool(v, u, s)) : 0;
        evbuffer_add_printf(b, "} %.3f\n", (double)ms / 1e3);
    }
}

static uint64_t listener_sum(const struct metrics_view *v, size_t l, size_t off)
{
    uint64_t n = 0;
    for (uint32_t w = 0; w < v->nworkers; w++)
        if (current(v, w))
            n += STAT_GET(*(const uint64_t *)((const char *)&v->workers[w].listeners[l].stats + off));
    return n;
}

static void listener_label(struct evbuffer *b, const struct cfg_listener *l)
{
    evbuffer_add(b, "listener=\"", 10);
    label(b, l->name);
    evbuffer_add(b, "\"", 1);
}

/* A uint32_t count of struct listener_rt at <off> for listener <l> of the current
 * generation, summed over the workers (each writes its own; read here without a lock). */
static uint64_t listener_gauge(const struct metrics_view *v, size_t l, size_t off)
{
    uint64_t n = 0;
    for (uint32_t w = 0; w < v->nworkers; w++)
        if (current(v, w))
            n += __atomic_load_n((const uint32_t *)((const char *)&v->workers[w].listeners[l] + off),
                                 __ATOMIC_RELAXED);
    return n;
}

static void listener_gauge_family(struct evbuffer *b, const struct metrics_view *v, const char *name,
                                  const char *help, size_t off)
{
    const struct ferry_config *cfg = v->rt->cfg;
    family(b, name, "gauge", help);
    for (size_t l = 0; l < cfg->nlisteners; l++) {
        evbuffer_add_printf(b, "%s{", name);
        listener_label(b, &cfg->listeners[l]);
        evbuffer_add_printf(b, "} %llu\n", (unsigned long long)listener_gauge(v, l, off));
    }
}

static void render_listeners(struct evbuffer *b, const struct metrics_view *v)
{
    const struct ferry_config *cfg = v->rt->cfg;
    family(b, "ferry_listener_connections_accepted_total", "counter", "Client connections accepted.");
    for (size_t l = 0; l < cfg->nlisteners; l++) {
        evbuffer_add(b, "ferry_listener_connections_accepted_total{", 42);
        listener_label(b, &cfg->listeners[l]);
        evbuffer_add_printf(b, "} %llu\n",
                            (unsigned long long)listener_sum(v, l, offsetof(struct listener_stats, accepted)));
    }
    listener_gauge_family(b, v, "ferry_listener_connections_active", "Client connections open.",
                          offsetof(struct listener_rt, nconns));
    listener_gauge_family(b, v, "ferry_listener_connections_parked",
                          "Idle HTTP/1.1 client connections holding no buffers.",
                          offsetof(struct listener_rt, nparked));
    family(b, "ferry_listener_requests_total", "counter", "Requests (HTTP/2: streams) received.");
    for (size_t l = 0; l < cfg->nlisteners; l++) {
        evbuffer_add(b, "ferry_listener_requests_total{", 30);
        listener_label(b, &cfg->listeners[l]);
        evbuffer_add_printf(b, ",protocol=\"http1\"} %llu\n",
                            (unsigned long long)listener_sum(v, l, offsetof(struct listener_stats, requests_h1)));
        evbuffer_add(b, "ferry_listener_requests_total{", 30);
        listener_label(b, &cfg->listeners[l]);
        evbuffer_add_printf(b, ",protocol=\"h2\"} %llu\n",
                            (unsigned long long)listener_sum(v, l, offsetof(struct listener_stats, requests_h2)));
    }
    family(b, "ferry_listener_connections_closed_total", "counter", "Client connections closed, by reason.");
    for (size_t l = 0; l < cfg->nlisteners; l++)
        for (int r = 0; r < DSC_COUNT; r++) {
            evbuffer_add(b, "ferry_listener_connections_closed_total{", 40);
            listener_label(b, &cfg->listeners[l]);
            evbuffer_add_printf(b, ",reason=\"%s\"} %llu\n", ds_close_reason_str((enum ds_close_reason)r),
                                (unsigned long long)listener_sum(v, l, offsetof(struct listener_stats, closed) +
                                                                           (size_t)r * sizeof(uint64_t)));
        }
}

static void render_prometheus(struct evbuffer *b, const struct metrics_view *v)
{
    family(b, "ferry_start_time_seconds", "gauge", "Start time of the process, seconds since the epoch.");
    evbuffer_add_printf(b, "ferry_start_time_seconds %lld\n", (long long)v->started);
    family(b, "ferry_workers", "gauge", "Worker threads.");
    evbuffer_add_printf(b, "ferry_workers %u\n", v->nworkers);
    family(b, "ferry_config_generation", "gauge", "Configuration generation in use (1 at start).");
    evbuffer_add_printf(b, "ferry_config_generation %llu\n", (unsigned long long)v->generation);
    family(b, "ferry_config_reloads_total", "counter", "Configuration reloads, by result.");
    evbuffer_add_printf(b, "ferry_config_reloads_total{result=\"ok\"} %llu\n", (unsigned long long)v->reloads_ok);
    evbuffer_add_printf(b, "ferry_config_reloads_total{result=\"failed\"} %llu\n",
                        (unsigned long long)v->reloads_failed);
    family(b, "ferry_dns_updates_total", "counter",
           "Server sets changed by DNS answers (each a new generation).");
    evbuffer_add_printf(b, "ferry_dns_updates_total %llu\n", (unsigned long long)v->dns_updates);
    render_listeners(b, v);
    render_upstreams(b, v);
}

static void json_str(struct evbuffer *b, const char *s)
{
    evbuffer_add(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            evbuffer_add_printf(b, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            evbuffer_add_printf(b, "\\u%04x", (unsigned char)*s);
        else
            evbuffer_add(b, s, 1);
    }
    evbuffer_add(b, "\"", 1);
}

/* ---------------------------------------------------------------- status page history */

/* The upstreams as the workers run them: rt->servers and the workers' pools are parallel to
 * their servers. The status code below reads servers only through these. */
static const struct cfg_upstream *run_ups(const struct metrics_view *v) { return v->rt->ups; }
static size_t run_nups(const struct metrics_view *v) { return v->rt->cfg->nupstreams; }

/* One server's recent increases, a ring of METRICS_HISTORY_SAMPLES intervals. */
struct history_series {
    char *upstream, *address;             /* owned copies: the server's identity */
    int primed;                           /* base_* hold the previous sample */
    uint64_t base_requests, base_opened;  /* cumulative counts at the previous sample */
    uint32_t n;                           /* samples kept */
    uint32_t next;                        /* ring slot of the next sample */
    uint32_t requests[METRICS_HISTORY_SAMPLES];
    uint32_t opened[METRICS_HISTORY_SAMPLES];
};

struct metrics_history {
    struct history_series *series;        /* in the order of the configuration last sampled */
    size_t nseries;
};

/* Requests a server finished (answered, or failed for good): the sum of its response
 * classes, "none" included. */
static uint64_t server_requests(const struct metrics_view *v, size_t u, size_t s)
{
    uint64_t n = 0;
    for (size_t k = 0; k < 6; k++)
        n += pool_sum(v, u, s, offsetof(struct pool_stats, responses) + k * sizeof(uint64_t));
    return n;
}

/* A series without names (moved away, or out of memory) matches nothing. */
static int series_is(const struct history_series *sr, const char *upstream, const char *address)
{
    return sr->upstream && sr->address && strcmp(sr->upstream, upstream) == 0 &&
           strcmp(sr->address, address) == 0;
}

static void series_clear(struct history_series *sr)
{
    free(sr->upstream);
    free(sr->address);
}

struct metrics_history *metrics_history_new(void) { return calloc(1, sizeof(struct metrics_history)); }

void metrics_history_free(struct metrics_history *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->nseries; i++)
        series_clear(&h->series[i]);
    free(h->series);
    free(h);
}

static size_t count_servers(const struct metrics_view *v)
{
    size_t n = 0;
    for (size_t u = 0; u < run_nups(v); u++)
        n += run_ups(v)[u].nservers;
    return n;
}

/* Does h->series list exactly the servers of <v>, in order? */
static int history_aligned(const struct metrics_history *h, const struct metrics_view *v)
{
    if (h->nseries != count_servers(v))
        return 0;
    size_t i = 0;
    FOR_SERVERS(v, u, s)
        if (!series_is(&h->series[i++], run_ups(v)[u].name, run_ups(v)[u].servers[s].address))
            return 0;
    return 1;
}

/* Lays h->series out parallel to the servers of <v>: a series whose server is still
 * configured moves to its new place, a new server starts empty, the others are freed. Each
 * old series is taken once (its names are cleared), so duplicate addresses stay apart. A
 * series whose names could not be copied stays nameless and matches nothing. */
static int history_rebuild(struct metrics_history *h, const struct metrics_view *v)
{
    size_t n = count_servers(v), i = 0;
    struct history_series *out = calloc(n ? n : 1, sizeof *out);
    if (!out)
        return -1;
    FOR_SERVERS(v, u, s) {
        const char *un = run_ups(v)[u].name, *addr = run_ups(v)[u].servers[s].address;
        for (size_t j = 0; j < h->nseries; j++) {
            if (series_is(&h->series[j], un, addr)) {
                out[i] = h->series[j];
                h->series[j].upstream = h->series[j].address = NULL;
                break;
            }
        }
        if (!out[i].upstream) {   /* new: empty until its second sample */
            out[i].upstream = strdup(un);
            out[i].address = strdup(addr);
        }
        i++;
    }
    for (size_t j = 0; j < h->nseries; j++)
        series_clear(&h->series[j]);
    free(h->series);
    h->series = out;
    h->nseries = n;
    return 0;
}

static uint32_t clamp32(uint64_t x) { return x > UINT32_MAX ? UINT32_MAX : (uint32_t)x; }

/* Counters that went down belong to a new pool (its server came back with other settings):
 * start again from them. */
static void series_add(struct history_series *sr, uint64_t requests, uint64_t opened)
{
    if (sr->primed && requests >= sr->base_requests && opened >= sr->base_opened) {
        sr->requests[sr->next] = clamp32(requests - sr->base_requests);
        sr->opened[sr->next] = clamp32(opened - sr->base_opened);
        sr->next = (sr->next + 1) % METRICS_HISTORY_SAMPLES;
        if (sr->n < METRICS_HISTORY_SAMPLES)
            sr->n++;
    }
    sr->primed = 1;
    sr->base_requests = requests;
    sr->base_opened = opened;
}

static int all_current(const struct metrics_view *v)
{
    for (uint32_t w = 0; w < v->nworkers; w++)
        if (!current(v, w))
            return 0;
    return 1;
}

void metrics_history_sample(struct metrics_history *h, const struct metrics_view *v)
{
    lock_workers(v, 1);
    /* A worker still on the old generation is left out of the sums: its counts would show
     * as a dip now and a burst at the next sample. Skip this sample instead. */
    if (all_current(v) && (history_aligned(h, v) || history_rebuild(h, v) == 0)) {
        size_t i = 0;
        FOR_SERVERS(v, u, s)
            series_add(&h->series[i++], server_requests(v, u, s),
                       pool_sum(v, u, s, offsetof(struct pool_stats, opened)));
    }
    lock_workers(v, 0);
}

/* The series of server <s> of upstream <u>, whose index in the configuration is <i>. */
static const struct history_series *history_find(const struct metrics_history *h,
                                                 const struct cfg_upstream *up, size_t s, size_t i)
{
    if (!h)
        return NULL;
    const char *addr = up->servers[s].address;
    if (i < h->nseries && series_is(&h->series[i], up->name, addr))
        return &h->series[i];
    for (size_t j = 0; j < h->nseries; j++)   /* a reload since the last sample */
        if (series_is(&h->series[j], up->name, addr))
            return &h->series[j];
    return NULL;
}

static void json_ring(struct evbuffer *b, const struct history_series *sr, const uint32_t *ring)
{
    evbuffer_add(b, "[", 1);
    for (uint32_t k = 0; sr && k < sr->n; k++) {
        uint32_t slot = (sr->next + METRICS_HISTORY_SAMPLES - sr->n + k) % METRICS_HISTORY_SAMPLES;
        evbuffer_add_printf(b, "%s%u", k ? "," : "", ring[slot]);
    }
    evbuffer_add(b, "]", 1);
}

/* "history": oldest sample first; empty arrays until two samples were taken. */
static void render_history(struct evbuffer *b, const struct history_series *sr)
{
    evbuffer_add_printf(b, ",\"history\":{\"interval_s\":%d,\"requests\":", METRICS_HISTORY_INTERVAL_S);
    json_ring(b, sr, sr ? sr->requests : NULL);
    evbuffer_add(b, ",\"connections_opened\":", 22);
    json_ring(b, sr, sr ? sr->opened : NULL);
    evbuffer_add(b, "}", 1);
}

/* ---------------------------------------------------------------- /status */

/* {"name":count,...} over <n> counters at offsets <off> + k * 8, named by <name>. */
typedef uint64_t (*sum_fn)(const struct metrics_view *v, size_t a, size_t b, size_t off);
typedef const char *(*name_fn)(int k);

static const char *upstream_close_name(int k) { return close_reason_str((enum close_reason)k); }
static const char *listener_close_name(int k) { return ds_close_reason_str((enum ds_close_reason)k); }
static const char *response_class_name(int k)
{
    static const char *const classes[6] = { "none", "1xx", "2xx", "3xx", "4xx", "5xx" };
    return classes[k];
}

static uint64_t listener_sum2(const struct metrics_view *v, size_t l, size_t unused, size_t off)
{
    return listener_sum(v, l, off);
}

static void json_counts(struct evbuffer *b, const char *key, const struct metrics_view *v, size_t a,
                        size_t c, sum_fn sum, size_t off, int n, name_fn name)
{
    evbuffer_add_printf(b, ",\"%s\":{", key);
    for (int k = 0; k < n; k++) {
        evbuffer_add_printf(b, "%s", k ? "," : "");
        json_str(b, name(k));
        evbuffer_add_printf(b, ":%llu", (unsigned long long)sum(v, a, c, off + (size_t)k * sizeof(uint64_t)));
    }
    evbuffer_add(b, "}", 1);
}

static void render_status_process(struct evbuffer *b, const struct metrics_view *v)
{
    const struct ferry_config *cfg = v->rt->cfg;
    time_t now = time(NULL);
    evbuffer_add_printf(b, "{\"generation\":%llu,\"started\":%lld,\"uptime_seconds\":%lld,\"workers\":%u,"
                           "\"config\":",
                        (unsigned long long)v->generation, (long long)v->started,
                        (long long)(now - v->started), v->nworkers);
    json_str(b, cfg->path ? cfg->path : "");
    evbuffer_add_printf(b, ",\"loaded_at\":%lld,\"reloads_ok\":%llu,\"reloads_failed\":%llu,"
                           "\"last_reload\":\"%s\",\"last_reload_error\":",
                        (long long)v->loaded_at, (unsigned long long)v->reloads_ok,
                        (unsigned long long)v->reloads_failed,
                        !v->last_reload_at ? "none" : v->last_reload_error[0] ? "failed" : "ok");
    json_str(b, v->last_reload_error);
    evbuffer_add_printf(b, ",\"last_reload_at\":%lld,\"dns_updates\":%llu,\"now\":%lld",
                        (long long)v->last_reload_at, (unsigned long long)v->dns_updates,
                        (long long)now);
}

static void render_status_listener(struct evbuffer *b, const struct metrics_view *v, size_t l)
{
    const struct ferry_config *cfg = v->rt->cfg;
    uint64_t active = listener_gauge(v, l, offsetof(struct listener_rt, nconns));
    evbuffer_add_printf(b, "%s{\"name\":", l ? "," : "");
    json_str(b, cfg->listeners[l].name);
    evbuffer_add_printf(b, ",\"tls\":%s,\"connections\":%llu,\"accepted\":%llu,\"requests_http1\":%llu,"
                           "\"requests_h2\":%llu",
                        cfg->listeners[l].tls ? "true" : "false", (unsigned long long)active,
                        (unsigned long long)listener_sum(v, l, offsetof(struct listener_stats, accepted)),
                        (unsigned long long)listener_sum(v, l, offsetof(struct listener_stats, requests_h1)),
                        (unsigned long long)listener_sum(v, l, offsetof(struct listener_stats, requests_h2)));
    json_counts(b, "closed", v, l, 0, listener_sum2, offsetof(struct listener_stats, closed), DSC_COUNT,
                listener_close_name);
    evbuffer_add(b, "}", 1);
}

static uint32_t pool_limit_max(const struct metrics_view *v, size_t u, size_t s)
{
    uint32_t m = 0;
    for (uint32_t w = 0; w < v->nworkers; w++) {
        if (!current(v, w))
            continue;
        uint32_t x = pool_h2_stream_limit(v->workers[w].upstreams[u].pools[s]);
        m = x > m ? x : m;
    }
    return m;
}

static void render_status_server(struct evbuffer *b, const struct metrics_view *v, size_t u, size_t s,
                                 const struct history_series *hist)
{
    const struct cfg_upstream *up = &run_ups(v)[u];
    const struct pool *first = first_pool(v, u, s);
    uint64_t learned = first ? pool_learned_idle_ms(first) : 0;
    const struct server_state *ss = &v->rt->servers[u][s];
    evbuffer_add_printf(b, "%s{\"address\":", s ? "," : "");
    json_str(b, up->servers[s].address);
    evbuffer_add(b, ",\"name\":", 8);
    json_str(b, up->servers[s].name ? up->servers[s].name : up->servers[s].address);
    evbuffer_add_printf(b, ",\"weight\":%u", up->servers[s].weight);
    evbuffer_add_printf(b, ",\"healthy\":%s,\"ejected\":%s,\"health_changed_at\":%lld,"
                           "\"checks_passed\":%llu,\"checks_failed\":%llu",
                        STAT_GET(ss->down) ? "false" : "true",
                        STAT_GET(ss->ejected_until_ms) > now_ms() ? "true" : "false",
                        (long long)STAT_GET(ss->changed_at), (unsigned long long)STAT_GET(ss->checks_passed),
                        (unsigned long long)STAT_GET(ss->checks_failed));
    evbuffer_add_printf(b, ",\"idle\":%llu,\"active\":%llu,\"streams\":%llu,\"queued\":%llu,"
                           "\"opened\":%llu,\"reused\":%llu,\"learned_idle_timeout_ms\":%llu",
                        (unsigned long long)pool_gauge(v, u, s, pool_idle_count),
                        (unsigned long long)pool_gauge(v, u, s, pool_active),
                        (unsigned long long)pool_gauge(v, u, s, pool_streams),
                        (unsigned long long)pool_gauge(v, u, s, pool_queue_len),
                        (unsigned long long)pool_sum(v, u, s, offsetof(struct pool_stats, opened)),
                        (unsigned long long)pool_sum(v, u, s, offsetof(struct pool_stats, reused)),
                        (unsigned long long)learned);
    evbuffer_add_printf(b, ",\"idle_timeout_ms\":%llu,\"h2_stream_limit\":%u,\"requests\":%llu,"
                           "\"retries\":%llu,\"queue_timeouts\":%llu,\"queue_full\":%llu,\"ejections\":%u",
                        (unsigned long long)(first ? pool_idle_timeout_ms(first) : up->keepalive_timeout_ms),
                        pool_limit_max(v, u, s), (unsigned long long)server_requests(v, u, s),
                        (unsigned long long)pool_sum(v, u, s, offsetof(struct pool_stats, retries)),
                        (unsigned long long)pool_sum(v, u, s, offsetof(struct pool_stats, queue_timeouts)),
                        (unsigned long long)pool_sum(v, u, s, offsetof(struct pool_stats, queue_full)),
                        STAT_GET(ss->ejections));
    json_counts(b, "responses", v, u, s, pool_sum, offsetof(struct pool_stats, responses), 6,
                response_class_name);
    json_counts(b, "closed", v, u, s, pool_sum, offsetof(struct pool_stats, closed), UPSTREAM_CLOSE_REASONS,
                upstream_close_name);
    render_history(b, hist);
    evbuffer_add(b, "}", 1);
}

static void render_status_upstream_head(struct evbuffer *b, const struct cfg_upstream *up, size_t u)
{
    static const char *const protocols[] = { "http1", "h2c", "h2", "auto" };
    evbuffer_add_printf(b, "%s{\"name\":", u ? "," : "");
    json_str(b, up->name);
    evbuffer_add_printf(b, ",\"protocol\":\"%s\",\"health_check\":",
                        (unsigned)up->protocol < 4 ? protocols[up->protocol] : "?");
    if (up->health)
        evbuffer_add_printf(b, "{\"interval_ms\":%llu,\"timeout_ms\":%llu,\"fall\":%u,\"rise\":%u}",
                            (unsigned long long)up->health->interval_ms,
                            (unsigned long long)up->health->timeout_ms, up->health->unhealthy_threshold,
                            up->health->healthy_threshold);
    else
        evbuffer_add(b, "null", 4);
}

static void render_status(struct evbuffer *b, const struct metrics_view *v, const struct metrics_history *h)
{
    const struct ferry_config *cfg = v->rt->cfg;
    render_status_process(b, v);
    evbuffer_add(b, ",\"listeners\":[", 14);
    for (size_t l = 0; l < cfg->nlisteners; l++)
        render_status_listener(b, v, l);
    evbuffer_add(b, "],\"upstreams\":[", 15);
    size_t i = 0;
    for (size_t u = 0; u < run_nups(v); u++) {
        render_status_upstream_head(b, &run_ups(v)[u], u);
        evbuffer_add(b, ",\"servers\":[", 12);
        for (size_t s = 0; s < run_ups(v)[u].nservers; s++, i++)
            render_status_server(b, v, u, s, history_find(h, &run_ups(v)[u], s, i));
        evbuffer_add(b, "]}", 2);
    }
    evbuffer_add(b, "]}\n", 3);
}

void metrics_render_prometheus(struct evbuffer *b, const struct metrics_view *v)
{
    lock_workers(v, 1);
    render_prometheus(b, v);
    lock_workers(v, 0);
}

void metrics_render_status(struct evbuffer *b, const struct metrics_view *v, const struct metrics_history *h)
{
    lock_workers(v, 1);
    render_status(b, v, h);
    lock_workers(v, 0);
}

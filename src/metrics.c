#include "metrics.h"

#include <event2/buffer.h>
#include <stdio.h>
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
    family(b, "ferry_listener_connections_active", "gauge", "Client connections open.");
    for (size_t l = 0; l < cfg->nlisteners; l++) {
        uint64_t n = 0;
        for (uint32_t w = 0; w < v->nworkers; w++)
            n += current(v, w) ? __atomic_load_n(&v->workers[w].listeners[l].nconns, __ATOMIC_RELAXED) : 0;
        evbuffer_add(b, "ferry_listener_connections_active{", 34);
        listener_label(b, &cfg->listeners[l]);
        evbuffer_add_printf(b, "} %llu\n", (unsigned long long)n);
    }
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

static void render_status(struct evbuffer *b, const struct metrics_view *v)
{
    const struct ferry_config *cfg = v->rt->cfg;
    evbuffer_add_printf(b, "{\"generation\":%llu,\"started\":%lld,\"uptime_seconds\":%lld,\"workers\":%u,"
                           "\"config\":",
                        (unsigned long long)v->generation, (long long)v->started,
                        (long long)(time(NULL) - v->started), v->nworkers);
    json_str(b, cfg->path ? cfg->path : "");
    evbuffer_add_printf(b, ",\"loaded_at\":%lld,\"reloads_ok\":%llu,\"reloads_failed\":%llu,"
                           "\"dns_updates\":%llu,\"last_reload\":\"%s\",\"last_reload_error\":",
                        (long long)v->loaded_at, (unsigned long long)v->reloads_ok,
                        (unsigned long long)v->reloads_failed, (unsigned long long)v->dns_updates,
                        !v->last_reload_at ? "none" : v->last_reload_error[0] ? "failed" : "ok");
    json_str(b, v->last_reload_error);
    evbuffer_add(b, ",\"listeners\":[", 14);
    for (size_t l = 0; l < cfg->nlisteners; l++) {
        uint64_t active = 0;
        for (uint32_t w = 0; w < v->nworkers; w++)
            active += current(v, w) ? __atomic_load_n(&v->workers[w].listeners[l].nconns, __ATOMIC_RELAXED) : 0;
        evbuffer_add_printf(b, "%s{\"name\":", l ? "," : "");
        json_str(b, cfg->listeners[l].name);
        evbuffer_add_printf(b, ",\"tls\":%s,\"connections\":%llu,\"accepted\":%llu,\"requests_http1\":%llu,"
                               "\"requests_h2\":%llu}",
                            cfg->listeners[l].tls ? "true" : "false", (unsigned long long)active,
                            (unsigned long long)listener_sum(v, l, offsetof(struct listener_stats, accepted)),
                            (unsigned long long)listener_sum(v, l, offsetof(struct listener_stats, requests_h1)),
                            (unsigned long long)listener_sum(v, l, offsetof(struct listener_stats, requests_h2)));
    }
    evbuffer_add(b, "],\"upstreams\":[", 15);
    for (size_t u = 0; u < cfg->nupstreams; u++) {
        evbuffer_add_printf(b, "%s{\"name\":", u ? "," : "");
        json_str(b, cfg->upstreams[u].name);
        evbuffer_add(b, ",\"servers\":[", 12);
        for (size_t s = 0; s < v->rt->ups[u].nservers; s++) {
            evbuffer_add_printf(b, "%s{\"address\":", s ? "," : "");
            json_str(b, v->rt->ups[u].servers[s].address);
            evbuffer_add(b, ",\"name\":", 8);
            json_str(b, v->rt->ups[u].servers[s].name);
            uint64_t learned = first_pool(v, u, s) ? pool_learned_idle_ms(first_pool(v, u, s)) : 0;
            const struct server_state *ss = &v->rt->servers[u][s];
            evbuffer_add_printf(b, ",\"healthy\":%s,\"ejected\":%s,\"health_changed_at\":%lld,"
                                   "\"checks_passed\":%llu,\"checks_failed\":%llu",
                                STAT_GET(ss->down) ? "false" : "true",
                                STAT_GET(ss->ejected_until_ms) > now_ms() ? "true" : "false",
                                (long long)STAT_GET(ss->changed_at),
                                (unsigned long long)STAT_GET(ss->checks_passed),
                                (unsigned long long)STAT_GET(ss->checks_failed));
            evbuffer_add_printf(b, ",\"idle\":%llu,\"active\":%llu,\"streams\":%llu,\"queued\":%llu,"
                                   "\"opened\":%llu,\"reused\":%llu,\"learned_idle_timeout_ms\":%llu}",
                                (unsigned long long)pool_gauge(v, u, s, pool_idle_count),
                                (unsigned long long)pool_gauge(v, u, s, pool_active),
                                (unsigned long long)pool_gauge(v, u, s, pool_streams),
                                (unsigned long long)pool_gauge(v, u, s, pool_queue_len),
                                (unsigned long long)pool_sum(v, u, s, offsetof(struct pool_stats, opened)),
                                (unsigned long long)pool_sum(v, u, s, offsetof(struct pool_stats, reused)),
                                (unsigned long long)learned);
        }
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

void metrics_render_status(struct evbuffer *b, const struct metrics_view *v)
{
    lock_workers(v, 1);
    render_status(b, v);
    lock_workers(v, 0);
}

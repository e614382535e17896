#include "upstream.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pool.h"
#include "worker.h"

int upstream_rt_init(struct upstream_rt *u, struct worker *w, const struct cfg_upstream *cfg,
                     struct server_state *states, struct tls_client *tls, uint64_t generation)
{
    memset(u, 0, sizeof *u);
    u->cfg = cfg;
    u->nservers = cfg->nservers;
    u->pools = calloc(cfg->nservers, sizeof *u->pools);
    u->rr_current = calloc(cfg->nservers, sizeof *u->rr_current);
    if (!u->pools || !u->rr_current)
        return -1;
    for (size_t i = 0; i < cfg->nservers; i++) {
        /* After a reload, a server configured alike keeps its pool: warm connections. */
        struct pool *p = pool_find_reusable(w, cfg, &cfg->servers[i], generation);
        if (p)
            pool_adopt(p, cfg, &cfg->servers[i], &states[i], tls, generation);
        else
            p = pool_new(w, cfg, &cfg->servers[i], &states[i], tls, generation);
        if (!p)
            return -1;
        u->pools[i] = p;
    }
    /* Workers start their round robin at different servers so that N workers do not hit
     * server 0 together. */
    u->rand_state = 0x9E3779B97F4A7C15ull * (uint64_t)(w->id + 1);
    return 0;
}

void upstream_rt_free(struct upstream_rt *u)
{
    free(u->pools);   /* the pools belong to the worker (w->pools) */
    free(u->rr_current);
    memset(u, 0, sizeof *u);
}

static uint64_t next_rand(struct upstream_rt *u)
{
    /* xorshift64*: cheap, per worker, no locking. */
    uint64_t x = u->rand_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    u->rand_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Smooth weighted round robin (as nginx): every pick adds each weight to its server's
 * current value, takes the largest and subtracts the total from it. */
static size_t pick_round_robin(struct upstream_rt *u, size_t avoid)
{
    int64_t total = 0;
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < u->nservers; i++) {
        if (i == avoid)
            continue;
        int64_t wgt = u->cfg->servers[i].weight;
        u->rr_current[i] += wgt;
        total += wgt;
        if (best == SIZE_MAX || u->rr_current[i] > u->rr_current[best])
            best = i;
    }
    u->rr_current[best] -= total;
    return best;
}

static size_t pick_weighted_random(struct upstream_rt *u, size_t avoid)
{
    uint64_t total = 0;
    for (size_t i = 0; i < u->nservers; i++)
        if (i != avoid)
            total += u->cfg->servers[i].weight;
    if (total == 0)   /* weights are >= 1 and there are >= 2 servers: cannot happen */
        return 0;
    uint64_t r = next_rand(u) % total;
    for (size_t i = 0; i < u->nservers; i++) {
        if (i == avoid)
            continue;
        if (r < u->cfg->servers[i].weight)
            return i;
        r -= u->cfg->servers[i].weight;
    }
    return 0;
}

/* Power of two choices: of two random servers, the one with fewer requests in flight per
 * unit of weight. */
static size_t pick_least_request(struct upstream_rt *u, size_t avoid)
{
    size_t a = pick_weighted_random(u, avoid);
    size_t b = pick_weighted_random(u, avoid);
    uint64_t la = (uint64_t)pool_inflight(u->pools[a]) * u->cfg->servers[b].weight;
    uint64_t lb = (uint64_t)pool_inflight(u->pools[b]) * u->cfg->servers[a].weight;
    return lb < la ? b : a;
}

size_t upstream_pick(struct upstream_rt *u, size_t avoid)
{
    if (u->nservers == 1)
        return 0;
    switch (u->cfg->balance) {
    case BALANCE_RANDOM:
        return pick_weighted_random(u, avoid);
    case BALANCE_LEAST_REQUEST:
        return pick_least_request(u, avoid);
    default:
        return pick_round_robin(u, avoid);
    }
}

static int host_matches(const char *want, const char *host, size_t host_len)
{
    /* Compare without the port: "api.example.com:8080" matches "api.example.com". */
    size_t n = host_len;
    if (n && host[0] == '[') {
        const char *end = memchr(host, ']', n);
        if (end)
            n = (size_t)(end - host) + 1;
    } else {
        const char *colon = memchr(host, ':', n);
        if (colon)
            n = (size_t)(colon - host);
    }
    return strlen(want) == n && strncasecmp(want, host, n) == 0;
}

const struct cfg_route *router_match(const struct cfg_listener *l, const char *host, size_t host_len,
                                     const char *path, size_t path_len)
{
    for (size_t i = 0; i < l->nroutes; i++) {
        const struct cfg_route *r = &l->routes[i];
        if (r->host && (!host || !host_matches(r->host, host, host_len)))
            continue;
        if (r->path) {
            size_t n = strlen(r->path);
            if (!path || path_len < n || memcmp(path, r->path, n) != 0)
                continue;
        }
        return r;
    }
    return NULL;
}

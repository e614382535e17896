#include "upstream.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "pool.h"
#include "worker.h"

static uint64_t hash64(const void *data, size_t n, uint64_t seed)
{
    /* FNV-1a, then a 64-bit finaliser (murmur3's fmix64) to spread short keys. */
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static int ring_cmp(const void *a, const void *b)
{
    const struct ring_point *x = a, *y = b;
    return x->hash < y->hash ? -1 : x->hash > y->hash;
}

/* Consistent hash ring (ketama-like): RING_POINTS points per unit of weight, placed by the
 * server's address, so that a server leaving moves only the keys it held. */
#define RING_POINTS 160

static int build_ring(struct upstream_rt *u)
{
    size_t n = 0;
    for (size_t i = 0; i < u->nservers; i++)
        n += (size_t)u->cfg->servers[i].weight * RING_POINTS;
    if (!(u->ring = calloc(n, sizeof *u->ring)))
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < u->nservers; i++) {
        const char *a = u->cfg->servers[i].address;
        for (uint32_t j = 0; j < u->cfg->servers[i].weight * RING_POINTS; j++) {
            u->ring[k].hash = hash64(a, strlen(a), j);
            u->ring[k].server = (uint32_t)i;
            k++;
        }
    }
    qsort(u->ring, n, sizeof *u->ring, ring_cmp);
    u->nring = n;
    return 0;
}

int upstream_rt_init(struct upstream_rt *u, struct worker *w, const struct cfg_upstream *cfg,
                     struct server_state *states, struct tls_client *tls, uint64_t generation)
{
    memset(u, 0, sizeof *u);
    u->cfg = cfg;
    u->nservers = cfg->nservers;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers; sizeof *p is right */
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
    if (cfg->balance == BALANCE_HASH && build_ring(u) < 0)
        return -1;
    return 0;
}

void upstream_rt_free(struct upstream_rt *u)
{
    free(u->pools);   /* the pools belong to the worker (w->pools) */
    free(u->ring);
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
static size_t pick_round_robin(struct upstream_rt *u, const uint8_t *ok)
{
    int64_t total = 0;
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < u->nservers; i++) {
        if (!ok[i])
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

static size_t pick_weighted_random(struct upstream_rt *u, const uint8_t *ok)
{
    uint64_t total = 0;
    size_t last = 0;
    for (size_t i = 0; i < u->nservers; i++)
        if (ok[i]) {
            total += u->cfg->servers[i].weight;
            last = i;
        }
    if (!total)   /* callers pass at least one allowed server; weights are >= 1 */
        return last;
    uint64_t r = next_rand(u) % total;
    for (size_t i = 0; i < u->nservers; i++) {
        if (!ok[i])
            continue;
        if (r < u->cfg->servers[i].weight)
            return i;
        r -= u->cfg->servers[i].weight;
    }
    return last;
}

/* Power of two choices: of two random servers, the one with fewer requests in flight per
 * unit of weight. */
static size_t pick_least_request(struct upstream_rt *u, const uint8_t *ok)
{
    size_t a = pick_weighted_random(u, ok);
    size_t b = pick_weighted_random(u, ok);
    uint64_t la = (uint64_t)pool_inflight(u->pools[a]) * u->cfg->servers[b].weight;
    uint64_t lb = (uint64_t)pool_inflight(u->pools[b]) * u->cfg->servers[a].weight;
    return lb < la ? b : a;
}

/* The first point at or after the key's hash, walking on past servers that cannot take it. */
static size_t pick_hash(struct upstream_rt *u, const uint8_t *ok, const char *key, size_t keylen)
{
    uint64_t h = hash64(key, keylen, 0);
    size_t lo = 0, hi = u->nring;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u->ring[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t n = 0; n < u->nring; n++) {
        const struct ring_point *pt = &u->ring[(lo + n) % u->nring];
        if (ok[pt->server])
            return pt->server;
    }
    return pick_round_robin(u, ok);
}

/* Can server <i> take a new request: not failing its health checks, not ejected. */
static int usable(const struct upstream_rt *u, size_t i, uint64_t now)
{
    const struct server_state *st = pool_server_state(u->pools[i]);
    if (__atomic_load_n(&st->down, __ATOMIC_RELAXED))
        return 0;
    uint64_t until = __atomic_load_n(&st->ejected_until_ms, __ATOMIC_RELAXED);
    return !until || until <= now;
}

size_t upstream_pick(struct upstream_rt *u, size_t avoid, const char *key, size_t keylen)
{
    uint8_t ok[u->nservers];
    size_t n = 0;
    uint64_t now = now_ms();
    for (size_t i = 0; i < u->nservers; i++)
        n += ok[i] = (uint8_t)usable(u, i, now);
    if (n == 0) {
        if (!u->cfg->health || !u->cfg->health->panic) {
            /* Ejection alone never empties a group: then everyone is tried again. */
            int any_down = 0;
            for (size_t i = 0; i < u->nservers; i++)
                any_down |= __atomic_load_n(&pool_server_state(u->pools[i])->down, __ATOMIC_RELAXED);
            if (any_down)
                return SIZE_MAX;
        }
        for (size_t i = 0; i < u->nservers; i++)
            ok[i] = 1;   /* panic: every server */
        n = u->nservers;
    }
    if (avoid < u->nservers && ok[avoid] && n > 1) {
        ok[avoid] = 0;
        n--;
    }
    if (n == 1)
        for (size_t i = 0; i < u->nservers; i++)
            if (ok[i])
                return i;
    switch (u->cfg->balance) {
    case BALANCE_RANDOM:
        return pick_weighted_random(u, ok);
    case BALANCE_LEAST_REQUEST:
        return pick_least_request(u, ok);
    case BALANCE_HASH:
        return pick_hash(u, ok, key ? key : "", key ? keylen : 0);
    default:
        return pick_round_robin(u, ok);
    }
}

void upstream_report(struct upstream_rt *u, size_t i, int ok)
{
    const struct cfg_outlier *o = u->cfg->outlier;
    if (!o || i >= u->nservers)
        return;
    struct server_state *st = pool_server_state(u->pools[i]);
    if (ok) {
        if (__atomic_load_n(&st->consecutive_failures, __ATOMIC_RELAXED))
            __atomic_store_n(&st->consecutive_failures, 0, __ATOMIC_RELAXED);
        return;
    }
    uint32_t n = __atomic_add_fetch(&st->consecutive_failures, 1, __ATOMIC_RELAXED);
    if (n < o->consecutive_failures)
        return;
    uint64_t now = now_ms();
    uint64_t until = __atomic_load_n(&st->ejected_until_ms, __ATOMIC_RELAXED);
    if (until > now)
        return;   /* already out */
    /* At most max_ejection_percent of the group out at once. */
    size_t out = 0;
    for (size_t k = 0; k < u->nservers; k++)
        out += __atomic_load_n(&pool_server_state(u->pools[k])->ejected_until_ms, __ATOMIC_RELAXED) > now;
    if ((out + 1) * 100 > (size_t)o->max_ejection_percent * u->nservers)
        return;
    /* A server that stayed in for max_ejection_time since its last ejection starts over. */
    if (until && now - until > o->max_ejection_ms)
        __atomic_store_n(&st->ejection_streak, 0, __ATOMIC_RELAXED);
    __atomic_add_fetch(&st->ejections, 1, __ATOMIC_RELAXED);
    uint32_t times = __atomic_add_fetch(&st->ejection_streak, 1, __ATOMIC_RELAXED);
    uint64_t ms = o->base_ejection_ms * times;
    if (ms > o->max_ejection_ms || ms / times != o->base_ejection_ms)
        ms = o->max_ejection_ms;
    if (!__atomic_compare_exchange_n(&st->ejected_until_ms, &until, now + ms, 0, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED))
        return;   /* another worker ejected it first */
    __atomic_store_n(&st->consecutive_failures, 0, __ATOMIC_RELAXED);
    log_warn("upstream %s server %s: %u consecutive failures; ejected for %llums (ejection %u)",
             u->cfg->name, u->cfg->servers[i].address, n, (unsigned long long)ms, times);
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

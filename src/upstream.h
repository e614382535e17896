/* upstream — one upstream group inside one worker: its servers' pools and the balancer
 * state, plus the router that picks a route for a request. */
#ifndef FERRY_UPSTREAM_H
#define FERRY_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct pool;
struct worker;
struct server_state;

struct ring_point {
    uint64_t hash;
    uint32_t server;
};

struct upstream_rt {
    const struct cfg_upstream *cfg;
    struct ring_point *ring;    /* balance hash: sorted points */
    size_t nring;
    struct pool **pools;        /* [nservers] */
    int64_t *rr_current;        /* smooth weighted round robin state */
    size_t nservers;
    uint64_t rand_state;
};

struct tls_client;
/* Pools are taken over from an earlier generation when pool_find_reusable finds one. */
int upstream_rt_init(struct upstream_rt *u, struct worker *w, const struct cfg_upstream *cfg,
                     struct server_state *states, struct tls_client *tls, uint64_t generation);
void upstream_rt_free(struct upstream_rt *u);

/* Chooses a server that can take a request (not down by health checks, not ejected),
 * avoiding <avoid> (SIZE_MAX = none) when another exists; <key> is what balance: hash
 * hashes. SIZE_MAX when no server is healthy (and health_check panic is off). */
size_t upstream_pick(struct upstream_rt *u, size_t avoid, const char *key, size_t keylen);
/* Passive outlier detection: the outcome of one request on server <i> (connect failure,
 * reset, 5xx when counted = failure). */
void upstream_report(struct upstream_rt *u, size_t i, int ok);

/* First route of <l> matching <host> (port ignored, case-insensitive) and <path> prefix;
 * NULL when none matches. */
const struct cfg_route *router_match(const struct cfg_listener *l, const char *host, size_t host_len,
                                     const char *path, size_t path_len);

#endif

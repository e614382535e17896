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

struct upstream_rt {
    const struct cfg_upstream *cfg;
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

/* Chooses a server index, avoiding <avoid> (SIZE_MAX = none) when another exists. */
size_t upstream_pick(struct upstream_rt *u, size_t avoid);

/* First route of <l> matching <host> (port ignored, case-insensitive) and <path> prefix;
 * NULL when none matches. */
const struct cfg_route *router_match(const struct cfg_listener *l, const char *host, size_t host_len,
                                     const char *path, size_t path_len);

#endif

/* health — active health checks, run once per process on the main thread whatever the
 * number of workers. Each server of an upstream with health_check: is checked every
 * interval (+ jitter) over a connection of its own, with the upstream's protocol and TLS
 * settings: a TCP connect, an HTTP request (status ranges, optional body substring) or the
 * standard grpc.health.v1.Health/Check (SERVING is healthy). After unhealthy_threshold
 * failures in a row a server is marked down in its struct server_state (an atomic the
 * workers read when they choose a server: no lock on the request path), and the workers are
 * told to close its idle connections; after healthy_threshold passes it is up again and the
 * workers pre-warm its pools (min_idle). */
#ifndef FERRY_HEALTH_H
#define FERRY_HEALTH_H

#include <stdint.h>

struct event_base;
struct runtime;
struct worker;
struct health;

/* Starts checking the servers of <rt>'s upstreams that have health_check (NULL when none
 * has, or on ENOMEM). Servers never checked before take the configured initial state. */
struct health *health_start(struct event_base *base, struct runtime *rt, struct worker *workers,
                            uint32_t nworkers);
/* Stops every check (connections in progress are closed). NULL is allowed. */
void health_stop(struct health *h);

#endif

/* listener — listening sockets: created and bound by main before the workers start (so a
 * bind error stops the start with a clear message), then adopted by each worker's
 * evconnlistener. One socket per worker per address with SO_REUSEPORT, so the kernel spreads
 * connections over workers without a shared accept lock. */
#ifndef FERRY_LISTENER_H
#define FERRY_LISTENER_H

#include <stddef.h>

#include "config.h"

struct worker;
struct listener_rt;

/* Creates, binds and listens on a socket for <a>. Returns the fd or -1 with a message. */
int listener_bind(const struct cfg_sockaddr *a, char *err, size_t errlen);

/* Starts accepting on the worker's fds for listener <l>. 0 or -1. */
int listener_start(struct listener_rt *l, struct worker *w, const struct cfg_listener *cfg,
                   const int *fds, size_t nfds);
void listener_stop(struct listener_rt *l);   /* stop accepting; close the sockets */

#endif

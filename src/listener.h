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

/* Socket activation (sd_listen_fds(3) semantics). listener_passed_fds reads LISTEN_FDS and
 * LISTEN_PID (honoured only when LISTEN_PID is this process), unsets both (and
 * LISTEN_FDNAMES), marks the fds 3.. close-on-exec and returns how many were passed, with a
 * malloc'd array of them in *out (free it; NULL when 0). listener_take_passed returns the
 * passed listening TCP socket bound to exactly <a> (made non-blocking; its slot in <fds>
 * becomes -1) or -1. listener_close_passed logs a warning for, and closes, every fd still
 * in <fds>. */
size_t listener_passed_fds(int **out);
int listener_take_passed(int *fds, size_t nfds, const struct cfg_sockaddr *a);
void listener_close_passed(int *fds, size_t nfds);

/* Starts accepting on the worker's fds for listener <l>. 0 or -1. */
int listener_start(struct listener_rt *l, struct worker *w, const struct cfg_listener *cfg,
                   const int *fds, size_t nfds);
void listener_stop(struct listener_rt *l);

/* One of <l>'s connections closed: if accepting was paused for want of descriptors,
 * resume now rather than at the next retry. */
void listener_fd_freed(struct listener_rt *l);   /* stop accepting; close the sockets */

#endif

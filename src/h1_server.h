/* h1_server — a downstream HTTP/1.1 connection: reads requests with h1_parse, runs one
 * exchange at a time (pipelined requests wait in the input buffer, answered in order), writes
 * responses with the framing the client understands, and applies the listener's keep-alive
 * limits with nginx's semantics. */
#ifndef FERRY_H1_SERVER_H
#define FERRY_H1_SERVER_H

#include <sys/socket.h>

struct worker;
struct listener_rt;
struct h1_session;

/* Takes ownership of <fd>. Returns NULL (fd closed) on ENOMEM. */
struct h1_session *h1s_new(struct worker *w, struct listener_rt *l, int fd,
                           const struct sockaddr *peer, socklen_t peerlen);

/* Graceful stop: idle connections close now, busy ones after their current response. */
void h1s_drain(struct h1_session *s);

/* h1s_drain for every session of <w>. */
void h1s_drain_all(struct worker *w);

/* Hard stop: close now, whatever is in flight. */
void h1s_close_now(struct h1_session *s);

#endif

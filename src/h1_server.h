/* h1_server — a downstream HTTP/1.1 connection: reads requests with h1_parse, runs one
 * exchange at a time (pipelined requests wait in the input buffer, answered in order), writes
 * responses with the framing the client understands, and applies the listener's keep-alive
 * limits with nginx's semantics. */
#ifndef FERRY_H1_SERVER_H
#define FERRY_H1_SERVER_H

#include <sys/socket.h>

struct worker;
struct listener_rt;
struct bufferevent;
struct ds_conn;
struct h1_session;
struct sockio;

/* Takes ownership of <bev> (a connected socket; for TLS, a bufferevent without one and
 * <tls>, the sockio over the connection after its handshake; NULL for plain TCP) and takes
 * <replaces>'s place in the worker's connection list, or adds itself when <replaces> is
 * NULL. Returns NULL on ENOMEM, with <bev> (and <tls>) freed and the connection gone. Drain
 * and hard stop go through the worker's ds_conn list. */
struct h1_session *h1s_new(struct worker *w, struct listener_rt *l, struct bufferevent *bev,
                           const struct sockaddr *peer, struct sockio *tls,
                           struct ds_conn *replaces);

/* Frees the thread's parking timer: when a worker thread ends, after its connections. */
void h1_server_thread_end(void);

#endif

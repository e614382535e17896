/* h1_client — an upstream HTTP/1.1 connection: writes requests, parses responses with
 * h1_parse, relays bodies with backpressure, and decides whether the connection is clean
 * enough to go back to its pool. */
#ifndef FERRY_H1_CLIENT_H
#define FERRY_H1_CLIENT_H

#include "pool.h"

/* Starts dialling <c>->pool's server. 0, or -1 when the socket could not even be created
 * (the caller reports UPERR_CONNECT). On completion calls pool_connected(). */
int h1c_connect(struct upconn *c);

/* Attaches <ex> and writes its request head. */
void h1c_start(struct upconn *c, struct exchange *ex);
void h1c_send_body(struct upconn *c, struct evbuffer *data);
void h1c_send_end(struct upconn *c, const struct http_head *trailers);
size_t h1c_output_pending(const struct upconn *c);
void h1c_pause_response(struct upconn *c, int pause);
/* The exchange went away mid-way: the connection cannot be trusted again. */
void h1c_abort(struct upconn *c);
/* Enter idle state: watch for close/stray bytes. */
void h1c_watch_idle(struct upconn *c);
/* Non-blocking liveness probe before reuse: 1 = looks alive. */
int h1c_seems_alive(struct upconn *c);
void h1c_free(struct upconn *c);

#endif

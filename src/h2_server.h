/* h2_server — a downstream HTTP/2 connection on nghttp2. Every stream becomes an exchange,
 * exactly as an HTTP/1.1 request does. Flow control is tied to the upstream side: DATA from
 * the client is acknowledged (WINDOW_UPDATE) only as the backend takes it, and response DATA
 * leaves only as the client's window allows, so neither side makes ferry buffer a body.
 *
 * The per-listener keep-alive limits apply as nginx applies them to h2: GOAWAY after
 * keepalive_requests streams or keepalive_time, and after keepalive_timeout with no open
 * stream. A drain sends GOAWAY in two steps (2^31-1, then the real last stream after a PING
 * round trip) so no request in flight is lost.
 */
#ifndef FERRY_H2_SERVER_H
#define FERRY_H2_SERVER_H

#include <stddef.h>
#include <sys/socket.h>

struct worker;
struct listener_rt;
struct bufferevent;
struct ds_conn;
struct http_head;
struct h2_session;
struct sockio;

/* The client's connection preface, which a prior-knowledge h2c client starts with. */
#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24

/* Takes over <bev> (its callbacks are replaced; bytes already in its input are the client's
 * first bytes) and, for TLS, <tls> (the connection's sockio; NULL for plain TCP, as for
 * h1s_new) and takes <replaces>'s place in the worker's connection list. NULL on failure,
 * when <bev> (and <tls>) have been freed and <replaces> unlinked (the connection is gone). */
struct h2_session *h2s_new(struct worker *w, struct listener_rt *l, struct bufferevent *bev,
                           const struct sockaddr *peer, struct sockio *tls,
                           struct ds_conn *replaces);

/* True when <settings> (an HTTP2-Settings value) decodes to a well-formed SETTINGS payload:
 * checked before answering 101, so a bad one leaves the request on HTTP/1.1. */
int h2_upgrade_settings_valid(const char *settings, size_t len);

/* h2c by Upgrade (RFC 7540 §3.2): <req> (moved) becomes stream 1; <settings> is the
 * HTTP2-Settings header value (base64url). The caller has written the 101 response.
 * Returns as h2s_new. */
struct h2_session *h2s_upgrade(struct worker *w, struct listener_rt *l, struct bufferevent *bev,
                               const struct sockaddr *peer, struct ds_conn *replaces,
                               struct http_head *req, const char *settings, size_t settings_len,
                               const char *request_line, size_t request_line_len);

#endif

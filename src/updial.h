/* updial — opening an upstream connection: TCP connect, then the TLS handshake when the
 * upstream has tls (SNI, verification, ALPN, session resumption; tls_handshake.c), each
 * bounded by its timeout. When it is done it calls pool_connected(), which hands the
 * connection to the protocol session chosen by configuration or ALPN.
 *
 * What a connection is made of, and who frees it: the bufferevent (c->bev) holds the
 * session's buffers; for plain TCP it owns the socket too. Over TLS the socket and the SSL
 * (c->ssl) belong to the handshake while it runs (c->hs), then to a TLS sockio (c->tls_io,
 * ferry's own record I/O, as for clients), which is the connection's: its session borrows
 * it (updial_io). updial_release_bev frees whichever exists. */
#ifndef FERRY_UPDIAL_H
#define FERRY_UPDIAL_H

#include <event2/bufferevent.h>
#include <stddef.h>

struct upconn;
struct sockio;
typedef struct ssl_session_st SSL_SESSION;

/* Starts dialling <c>->pool's server. 0, or -1 when not even a socket could be made. */
int updial_start(struct upconn *c);
/* The OpenSSL reason of a failed TLS connection (an alert from the backend, e.g. a
 * client certificate refused after a TLS 1.3 handshake), or NULL when none. */
const char *updial_tls_error(struct upconn *c, char *buf, size_t len);
/* After the handshake: ALPN chose h2. */
int updial_negotiated_h2(const struct upconn *c);
/* The I/O of <c> for its session, with the session's callbacks (arg <c>) and the
 * upstream's send_timeout; reading off. Over TLS: the connection's sockio (borrowed). Plain
 * TCP: a new sockio over the bufferevent, the session's, or NULL when none could be made:
 * the bufferevent's own I/O then, with the callbacks set. */
struct sockio *updial_io(struct upconn *c, bufferevent_data_cb read_cb,
                         bufferevent_data_cb write_cb, bufferevent_event_cb event_cb);
/* The session is done with <io> (from updial_io, or NULL): frees it unless it is the
 * connection's TLS sockio. */
void updial_io_done(struct upconn *c, struct sockio *io);
/* The connection's socket, once connected. */
evutil_socket_t updial_fd(const struct upconn *c);
/* Ends the connection: its handshake, TLS sockio (close_notify when all was written, the
 * TLS session kept resumable), SSL, socket and bufferevent, whichever exist. */
void updial_release_bev(struct upconn *c);
/* The TLS client's new-session callback: keeps the session for the connection's pool. */
void updial_tls_session(void *app, SSL_SESSION *sess);
/* Frees everything updial created for <c> (timer, bufferevent). */
void updial_free(struct upconn *c);

#endif

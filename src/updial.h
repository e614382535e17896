/* updial — opening an upstream connection: TCP connect, then the TLS handshake when the
 * upstream has tls (SNI, verification, ALPN, session resumption), each bounded by its
 * timeout. When it is done it calls pool_connected(), which hands the connection to the
 * protocol session chosen by configuration or ALPN. */
#ifndef FERRY_UPDIAL_H
#define FERRY_UPDIAL_H

#include <stddef.h>

struct upconn;
typedef struct ssl_session_st SSL_SESSION;

/* Starts dialling <c>->pool's server. 0, or -1 when not even a socket could be made. */
int updial_start(struct upconn *c);
/* The OpenSSL reason of a failed TLS connection (an alert from the backend, e.g. a
 * client certificate refused after a TLS 1.3 handshake), or NULL when none. */
const char *updial_tls_error(struct upconn *c, char *buf, size_t len);
/* After the handshake: ALPN chose h2. */
int updial_negotiated_h2(const struct upconn *c);
/* Frees the connection's bufferevent (and SSL) in a way that keeps its TLS session
 * resumable; safe when there is none. */
void updial_release_bev(struct upconn *c);
/* The TLS client's new-session callback: keeps the session for the connection's pool. */
void updial_tls_session(void *app, SSL_SESSION *sess);
/* Frees everything updial created for <c> (timer, bufferevent). */
void updial_free(struct upconn *c);

#endif

/* tls_accept — the server side of a TLS handshake on an accepted socket, until the
 * connection becomes a session over a sockio.
 *
 * libevent's OpenSSL bufferevent, which did this before, woke once for writability before
 * the client had sent anything, read every record in two read(2)s (its 5-byte header, then
 * the rest) and wrote every record in its own write(2): TLS 1.3's two session tickets went
 * out as two TCP segments, each running the client's receive path on loopback. Here
 * OpenSSL reads ahead (a client flight in one read) and writes into memory, and what a
 * handshake step produced leaves in one send(2). Bytes the client sent after its Finished
 * (often its first request, in the same segment) stay in OpenSSL's read buffer, which the
 * sockio delivers as soon as its owner reads (sockio.c, arm_read).
 *
 * The handshake timeout is a deadline from the accept, not a pause between reads: a client
 * sending its ClientHello a byte at a time is closed on time too. */
#ifndef FERRY_TLS_ACCEPT_H
#define FERRY_TLS_ACCEPT_H

#include <event2/event.h>
#include <openssl/types.h>
#include <stdint.h>

struct tls_accept;

/* The end of a handshake, called once and last (the tls_accept is already freed). Success:
 * <ssl> is the connection's, and so is its socket (SSL_get_fd), reading and writing the
 * socket directly (no memory BIO left). Failure: <ssl> is NULL, the SSL and the socket are
 * closed, and <why> says what happened ("handshake_timeout", "connection closed" or
 * OpenSSL's reason). */
typedef void (*tls_accept_done_fn)(SSL *ssl, const char *why, void *arg);

/* Starts the server handshake of <ssl> (made by tls_server_ssl_new, no BIOs yet) on the
 * non-blocking socket <fd>, finishing within <timeout_ms>. NULL on allocation failure, and
 * <ssl> and <fd> stay the caller's. */
struct tls_accept *tls_accept_start(struct event_base *base, evutil_socket_t fd, SSL *ssl,
                                    uint64_t timeout_ms, tls_accept_done_fn done, void *arg);

/* Gives up a handshake still under way (shutdown): the SSL and the socket are closed and
 * the callback is not called. */
void tls_accept_abort(struct tls_accept *a);

#endif

/* tls_handshake — a TLS handshake on a connected socket, until the connection becomes a
 * session over a sockio: the server side for an accepted client (listener), the client side
 * for an upstream connection (updial).
 *
 * libevent's OpenSSL bufferevent, which did this before, woke once for writability before
 * the peer had sent anything, read every record in two read(2)s (its 5-byte header, then
 * the rest) and wrote every record in its own write(2): TLS 1.3's two session tickets went
 * out as two TCP segments, each running the client's receive path on loopback. Here
 * OpenSSL reads ahead (a peer's flight in one read) and writes into memory, and what a
 * handshake step produced leaves in one send(2). Bytes the peer sent after its last
 * handshake message (a client's first request in the same segment as its Finished, a
 * server's session tickets or HTTP/2 SETTINGS) stay in OpenSSL's read buffer, which the
 * sockio delivers as soon as its owner reads (sockio.c, arm_read).
 *
 * The handshake timeout is a deadline from the start, not a pause between reads: a peer
 * sending its flight a byte at a time is closed on time too. */
#ifndef FERRY_TLS_HANDSHAKE_H
#define FERRY_TLS_HANDSHAKE_H

#include <event2/event.h>
#include <openssl/types.h>
#include <stdint.h>

struct tls_handshake;

/* The end of a handshake, called once and last (the tls_handshake is already freed).
 * Success: <ssl> is the caller's, and so is its socket (SSL_get_fd), reading and writing
 * the socket directly (no memory BIO left). Failure: <ssl> is NULL, the SSL and the socket
 * are closed, and <why> says what happened ("handshake_timeout", "connection closed",
 * "certificate verification failed: <reason>" on the client side, or OpenSSL's reason);
 * the string lives until the callback returns. */
typedef void (*tls_handshake_done_fn)(SSL *ssl, const char *why, void *arg);

/* Starts the server handshake of <ssl> (made by tls_server_ssl_new, no BIOs yet) on the
 * non-blocking accepted socket <fd>, finishing within <timeout_ms>. NULL on allocation
 * failure, and <ssl> and <fd> stay the caller's. */
struct tls_handshake *tls_handshake_accept(struct event_base *base, evutil_socket_t fd, SSL *ssl,
                                           uint64_t timeout_ms, tls_handshake_done_fn done,
                                           void *arg);

/* The same for the client side: <ssl> made by tls_client_ssl_new (no BIOs yet), <fd> a
 * connected non-blocking socket. The ClientHello is sent from the loop, soon. NULL on
 * allocation failure, and <ssl> and <fd> stay the caller's. */
struct tls_handshake *tls_handshake_connect(struct event_base *base, evutil_socket_t fd,
                                            SSL *ssl, uint64_t timeout_ms,
                                            tls_handshake_done_fn done, void *arg);

/* Gives up a handshake still under way (shutdown, or the connection's owner went away):
 * the SSL and the socket are closed and the callback is not called. */
void tls_handshake_abort(struct tls_handshake *a);

#endif

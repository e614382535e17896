/* tls — server-side TLS for listeners (OpenSSL 3): certificates chosen by SNI, ALPN, minimum
 * version and ciphers, session resumption by tickets and by a server-side cache.
 *
 * One struct tls_server per TLS listener, shared by every worker: an SSL_CTX is safe to use
 * from several threads, so its session cache and ticket keys are common to all workers and a
 * session resumes whatever worker accepts the next connection. Nothing here runs per request;
 * only SSL_new per connection and the ticket-key callback per handshake.
 */
#ifndef FERRY_TLS_H
#define FERRY_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "config.h"

struct tls_server;

/* Builds the contexts for <cfg> (certificate chains, keys, SNI, ALPN list, versions, ciphers,
 * tickets, cache). Returns NULL with a message in <err> naming the file and the OpenSSL
 * reason on any failure. */
struct tls_server *tls_server_new(const struct cfg_tls *cfg, char *err, size_t errlen);
void tls_server_free(struct tls_server *t);

/* A new server SSL for one accepted connection; NULL on ENOMEM. The caller owns it (after
 * the handshake, the connection's sockio: sockio_new_tls). Note: OpenSSL drops a
 * connection's session from the server-side cache when the SSL is freed before a
 * close_notify was sent; to keep it resumable after a timeout or a client's abrupt close,
 * call SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN) first, as nginx
 * does. (Tickets do not depend on this.) */
SSL *tls_server_ssl_new(struct tls_server *t);

/* After the handshake: 1 when ALPN chose "h2", else 0 (http/1.1 or no ALPN). */
int tls_negotiated_h2(const SSL *ssl);

/* Rotates the ticket keys (called by main on a timer; thread-safe). The previous key still
 * decrypts tickets for one more period so that resumption survives a rotation. */
void tls_server_rotate_tickets(struct tls_server *t);

/* Loads and checks a certificate chain and its key (readable, parseable, matching) without
 * keeping them: used by config validation so `ferry -t` reports bad files. Returns 0, or -1
 * with a message in <err>. */
int tls_check_cert_key(const char *cert, const char *key, char *err, size_t errlen);

/* Checks a TLS 1.2 cipher list in OpenSSL's syntax (<tls13> 0: at least one cipher must
 * result) or TLS 1.3 ciphersuites (<tls13> 1: every ':'-separated name must be known), as
 * config validation does for `ciphers` and `ciphersuites`. Returns 0, or -1 with what is
 * wrong in <err>. */
int tls_check_ciphers(const char *list, int tls13, char *err, size_t errlen);

/* ---- client side: ferry connecting to TLS upstreams ---- */

struct tls_client;
/* Receives each resumable session a connection's server sends; takes the reference. */
typedef void (*tls_session_fn)(void *app, SSL_SESSION *sess);

/* A client context for one upstream: verification (CA file or the system store), client
 * certificate, ALPN for <proto> (h2; h2 + http/1.1 for auto; http/1.1), session tickets. */
struct tls_client *tls_client_new(const struct cfg_upstream_tls *cfg, enum upstream_protocol proto,
                                  tls_session_fn on_session, char *err, size_t errlen);
void tls_client_free(struct tls_client *t);
/* A client SSL for a connection to <host> (SNI and verified name, unless server_name is
 * configured), offering <session> (may be NULL); <app> is handed to on_session. */
SSL *tls_client_ssl_new(struct tls_client *t, const char *host, SSL_SESSION *session, void *app);
/* The connection is going away: no more on_session calls for it. */
void tls_client_ssl_detach(SSL *ssl);
/* Why a client handshake failed (verification result, else the OpenSSL reason). */
const char *tls_client_failure(SSL *ssl, char *buf, size_t len);
/* Checks that <path> holds PEM CA certificates (config validation). */
int tls_check_ca_file(const char *path, char *err, size_t errlen);

#endif

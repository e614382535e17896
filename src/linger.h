/* linger — closing a client connection without losing what we last wrote.
 *
 * Closing a socket that still has unread input makes the kernel send RST, and an RST can
 * destroy the final response or GOAWAY still in flight to the client. So a connection that
 * ferry decides to close first flushes its output, half-closes (cleartext only: TLS needs
 * its own framing), then reads and discards until the client closes or a short time passes,
 * as nginx's lingering close does. */
#ifndef FERRY_LINGER_H
#define FERRY_LINGER_H

struct worker;
struct listener_rt;
struct bufferevent;
struct ds_conn;
struct sockio;

/* Frees a client connection: <bev>, and for TLS its sockio <tls> (which owns the SSL and
 * the socket; see sockio_free); NULL for plain TCP, whose socket is <bev>'s. */
void conn_free(struct bufferevent *bev, struct sockio *tls);

/* Ends a session's connection: with <linger>, hands <bev> (and <tls>) to a lingering close
 * that takes <c>'s place in the worker's list; otherwise frees them and unlinks <c>. Either
 * way they are no longer the caller's, and <c> may be freed by its owner once this returns.
 * A plain connection's sockio must be freed before. */
void conn_end(struct worker *w, struct listener_rt *l, struct ds_conn *c, struct bufferevent *bev,
              struct sockio *tls, int linger);

/* Takes over <bev>, <tls> and <replaces>'s place in the worker's connection list. */
void linger_close(struct worker *w, struct listener_rt *l, struct bufferevent *bev,
                  struct sockio *tls, struct ds_conn *replaces);

#endif

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

/* Frees a client connection's bufferevent. For TLS, the SSL is first marked as shut down:
 * OpenSSL otherwise takes a session freed without close_notify for a bad one and drops it
 * from the cache, and clients that simply hang up (most) could not resume (nginx does the
 * same). */
void conn_bufferevent_free(struct bufferevent *bev, int tls);

/* Ends a session's connection: with <linger>, hands <bev> to a lingering close that takes
 * <c>'s place in the worker's list; otherwise frees <bev> and unlinks <c>. Either way <bev>
 * is no longer the caller's, and <c> may be freed by its owner once this returns. */
void conn_end(struct worker *w, struct listener_rt *l, struct ds_conn *c, struct bufferevent *bev,
              int tls, int linger);

/* Takes over <bev> and <replaces>'s place in the worker's connection list. */
void linger_close(struct worker *w, struct listener_rt *l, struct bufferevent *bev, int tls,
                  struct ds_conn *replaces);

#endif

/* sockio — ferry's own reads and writes for plain-socket bufferevents.
 *
 * A bufferevent costs, per proxied keep-alive request and per side: an ioctl(FIONREAD)
 * before every read (and reads capped at 4 KiB in libevent 2.1), an epoll_ctl to watch for
 * writability when a response is queued and another to stop once it is written. A sockio
 * keeps the bufferevent as the owner of the socket and its two buffers, but:
 *  - reads with its own persistent read event, straight into the input buffer's free space,
 *    up to 64 KiB at a time, and calls the read / event callbacks as libevent would (EOF,
 *    errors and read timeouts stop reading first; reading pauses at the read high watermark
 *    and resumes when the input drains below it);
 *  - keeps the bufferevent's EV_WRITE disabled and writes the output itself once per loop
 *    turn in which something was queued (a response head and its body leave in one writev).
 *    Only when the socket does not take everything is EV_WRITE enabled, and libevent's own
 *    write path (send_timeout, errors, the write callback) carries on until the buffer is
 *    empty again.
 * The owner therefore turns reading on and off, sets the read timeout and triggers a
 * deferred read callback through sockio_*, never through bufferevent_enable/disable(EV_READ),
 * bufferevent_set_timeouts (read part) or bufferevent_trigger.
 *
 * TLS connections on both sides use a sockio too (sockio_new_tls, after tls_handshake's
 * handshake), not libevent's OpenSSL bufferevent: that one reads a TLS record in two read(2)s (its 5-byte header, then the
 * rest), one record per readable event, and adds and drops write interest (two epoll_ctl)
 * around every flush, whether or not writing is enabled. A TLS sockio owns the socket and
 * the SSL over it; its bufferevent has no descriptor (so libevent can never send or take
 * plaintext on it by mistake) and only holds the plaintext buffers. It reads with OpenSSL's
 * read-ahead (a burst of records in one read(2)), delivers what OpenSSL still holds
 * without waiting for the socket, writes a record per write(2) at the end of the loop turn
 * and waits for writability with its own event and send timeout. (Health checks over TLS
 * keep libevent's OpenSSL bufferevent: one request per connection.) */
#ifndef FERRY_SOCKIO_H
#define FERRY_SOCKIO_H

#include <event2/bufferevent.h>
#include <openssl/types.h>
#include <stdint.h>

struct sockio;

/* Takes over <bev>'s callbacks (as bufferevent_setcb); reading starts off, EV_WRITE and
 * EV_READ of the bufferevent stay disabled. Read high watermark: the bufferevent's, as set
 * before or after. NULL on allocation failure. */
struct sockio *sockio_new(struct event_base *base, struct bufferevent *bev,
                          bufferevent_data_cb read_cb, bufferevent_data_cb write_cb,
                          bufferevent_event_cb event_cb, void *arg);

/* A TLS connection after its handshake: <ssl> (and the socket it reads and writes, which
 * <bev> must not have: a bufferevent made with fd -1) become the sockio's, freed with it;
 * on failure (NULL) they stay the caller's. No callbacks and no reading until sockio_take;
 * then bytes OpenSSL already holds (a request sent with the client's Finished, read ahead)
 * are delivered without waiting for the socket. Output found in <bev> is written. */
struct sockio *sockio_new_tls(struct event_base *base, struct bufferevent *bev, SSL *ssl);

/* A TLS sockio's new owner (a client session after the handshake, a lingering close after
 * the session, the session of an upstream connection): its callbacks (as
 * bufferevent_setcb), reading on with no read timeout, and <write_timeout_ms> for the socket
 * to take more of the output (0 = none). Returns <so>.
 * (Plain TCP uses the bufferevent's own write timeout, bufferevent_set_timeouts.) */
struct sockio *sockio_take(struct sockio *so, bufferevent_data_cb read_cb,
                           bufferevent_data_cb write_cb, bufferevent_event_cb event_cb,
                           void *arg, uint64_t write_timeout_ms);

/* The SSL of a TLS sockio; NULL for plain TCP or a NULL sockio. */
SSL *sockio_ssl(const struct sockio *so);

/* TLS: the OpenSSL error (ERR_get_error's code) that ended the stream (an alert from the
 * peer, a bad record), or 0 while there is none or the stream only met EOF. */
unsigned long sockio_tls_error(const struct sockio *so);

/* The I/O a connection starts with: for <plain> TCP a sockio, reading (NULL when none could
 * be had); otherwise, or then, libevent's own bufferevent with the callbacks set and EV_READ
 * and EV_WRITE enabled (TLS). Returns the sockio or NULL. */
struct sockio *sockio_attach(struct event_base *base, struct bufferevent *bev, int plain,
                             bufferevent_data_cb read_cb, bufferevent_data_cb write_cb,
                             bufferevent_event_cb event_cb, void *arg);

/* Plain TCP: detaches from the bufferevent (before it is freed or handed to another owner,
 * which enables what it needs); output not yet written stays in the buffer with EV_WRITE
 * enabled. TLS: ends the connection: close_notify if all output was written and the stream
 * did not fail, then the SSL and the socket are freed (output not yet written is dropped);
 * the bufferevent is left to the caller to free. NULL is allowed. */
void sockio_free(struct sockio *so);

/* Reading on or off (bufferevent_enable / disable of EV_READ). */
void sockio_read(struct sockio *so, int on);

/* Time allowed between two reads while reading is on; 0 = none. Re-armed from now. */
void sockio_set_read_timeout(struct sockio *so, uint64_t ms);

/* Calls the read callback from the loop, soon (bufferevent_trigger with
 * BEV_TRIG_DEFER_CALLBACKS): bytes may wait in the input that no read event will announce. */
void sockio_trigger_read(struct sockio *so);

/* Frees the thread's deferred-work event: when a thread that used sockios ends, before its
 * event base is freed. */
void sockio_thread_end(void);

#endif

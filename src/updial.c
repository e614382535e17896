#include "updial.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "deadline.h"
#include "log.h"
#include "pool.h"
#include "sockio.h"
#include "tls.h"
#include "tls_handshake.h"
#include "worker.h"

static const char *upname(const struct upconn *c) { return pool_upstream(c->pool)->name; }
static const char *srvaddr(const struct upconn *c) { return pool_server(c->pool)->address; }

static void fail(struct upconn *c, enum upstream_error err, const char *what, const char *why)
{
    log_warn("upstream %s server %s: %s: %s", upname(c), srvaddr(c), what, why);
    pool_connected(c, err);
}

/* The end of the TLS handshake (tls_handshake.c): the SSL and the socket become a sockio,
 * the connection's own, which its session borrows (updial_io). */
static void handshake_done(SSL *ssl, const char *why, void *arg)
{
    struct upconn *c = arg;
    c->hs = NULL;
    if (!ssl) {
        c->ssl = NULL;   /* freed with the socket */
        int timeout = strcmp(why, "handshake_timeout") == 0;
        fail(c, timeout ? UPERR_CONNECT_TIMEOUT : UPERR_CONNECT, "TLS handshake",
             timeout ? "timed out" : why);
        return;
    }
    evutil_socket_t fd = SSL_get_fd(ssl);
    c->tls_io = sockio_new_tls(bufferevent_get_base(c->bev), c->bev, ssl);
    if (!c->tls_io) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        c->ssl = NULL;
        fail(c, UPERR_CONNECT, "TLS handshake", "out of memory");
        return;
    }
    log_debug("upstream %s server %s: TLS %s, %s, ALPN %s", upname(c), srvaddr(c),
              SSL_get_version(ssl), SSL_session_reused(ssl) ? "resumed" : "full handshake",
              updial_negotiated_h2(c) ? "h2" : "http/1.1 or none");
    pool_connected(c, UPERR_NONE);
}

/* Only dial events arrive here: the session sets its own callbacks in init(). */
static void dial_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct upconn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        evutil_socket_t fd = bufferevent_getfd(bev);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        bufferevent_set_timeouts(bev, NULL, NULL);
        if (!c->ssl) {
            pool_connected(c, UPERR_NONE);
            return;
        }
        /* The socket leaves the bufferevent, which keeps only the plaintext buffers. The
         * handshake has what the connect left of connect_timeout + handshake_timeout
         * (ferry.yaml(5)). */
        const struct cfg_upstream *up = pool_upstream(c->pool);
        uint64_t spent = now_ms() - c->created_ms;
        uint64_t left = up->connect_timeout_ms > spent ? up->connect_timeout_ms - spent : 0;
        bufferevent_setfd(bev, -1);
        c->hs = tls_handshake_connect(bufferevent_get_base(bev), fd, c->ssl,
                                      left + up->tls->handshake_timeout_ms, handshake_done, c);
        if (!c->hs) {
            evutil_closesocket(fd);
            fail(c, UPERR_CONNECT, "TLS handshake", "out of memory");
        }
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        fail(c, UPERR_CONNECT_TIMEOUT, "connect", "timed out");
        return;
    }
    fail(c, UPERR_CONNECT, "connect failed", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

void updial_tls_session(void *app, SSL_SESSION *sess)
{
    struct upconn *c = app;
    pool_set_tls_session(c->pool, sess);
}

int updial_start(struct upconn *c)
{
    const struct cfg_server *srv = pool_server(c->pool);
    const struct cfg_upstream *up = pool_upstream(c->pool);
    struct worker *w = pool_worker(c->pool);
    struct tls_client *tc = pool_tls_client(c->pool);
    /* TLS: the TCP connect first, then the handshake (tls_handshake). */
    if (tc && !(c->ssl = tls_client_ssl_new(tc, srv->host, pool_tls_session(c->pool), c)))
        return -1;
    c->bev = bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev)
        return -1;
    bufferevent_setcb(c->bev, NULL, NULL, dial_event_cb, c);
    struct timeval tv = ms_timeval(up->connect_timeout_ms);
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)&srv->ss, (int)srv->sslen) < 0) {
        log_warn("upstream %s server %s: connect: %s", up->name, srv->address, strerror(errno));
        return -1;
    }
    return 0;
}

const char *updial_tls_error(struct upconn *c, char *buf, size_t len)
{
    unsigned long e = c->tls_io ? sockio_tls_error(c->tls_io) : 0;
    if (!e)
        return NULL;
    const char *r = ERR_reason_error_string(e);
    if (r)
        snprintf(buf, len, "TLS: %s", r);
    else
        snprintf(buf, len, "TLS: OpenSSL error %lx", e);
    return buf;
}

int updial_negotiated_h2(const struct upconn *c)
{
    return c->ssl && tls_negotiated_h2(c->ssl);
}

struct sockio *updial_io(struct upconn *c, bufferevent_data_cb read_cb,
                         bufferevent_data_cb write_cb, bufferevent_event_cb event_cb)
{
    uint64_t send_ms = pool_upstream(c->pool)->send_timeout_ms;
    if (c->tls_io) {
        sockio_take(c->tls_io, read_cb, write_cb, event_cb, c, send_ms);
        sockio_read(c->tls_io, 0);
        return c->tls_io;
    }
    struct timeval w = ms_timeval(send_ms);
    bufferevent_set_timeouts(c->bev, NULL, send_ms ? &w : NULL);
    struct sockio *io = sockio_new(bufferevent_get_base(c->bev), c->bev, read_cb, write_cb,
                                   event_cb, c);
    if (!io)
        bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    return io;
}

void updial_io_done(struct upconn *c, struct sockio *io)
{
    if (io != c->tls_io)
        sockio_free(io);
}

evutil_socket_t updial_fd(const struct upconn *c)
{
    return c->tls_io ? SSL_get_fd(c->ssl) : bufferevent_getfd(c->bev);
}

void updial_release_bev(struct upconn *c)
{
    if (c->hs) {
        tls_handshake_abort(c->hs);   /* the SSL and the socket with it */
        c->hs = NULL;
    } else if (c->tls_io) {
        tls_client_ssl_detach(c->ssl);
        sockio_free(c->tls_io);   /* close_notify when it can, the SSL and the socket */
        c->tls_io = NULL;
    } else if (c->ssl) {
        SSL_free(c->ssl);   /* never connected */
    }
    c->ssl = NULL;
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
}

void updial_free(struct upconn *c) { updial_release_bev(c); }

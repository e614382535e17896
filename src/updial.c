#include "updial.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
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
#include "tls.h"
#include "worker.h"

static void fail(struct upconn *c, enum upstream_error err, const char *what, const char *why)
{
    log_warn("upstream %s server %s: %s: %s", pool_upstream(c->pool)->name,
             pool_server(c->pool)->address, what, why);
    pool_connected(c, err);
}

static void handshake_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upconn *c = arg;
    fail(c, UPERR_CONNECT_TIMEOUT, "TLS handshake", "timed out");
}

/* Only dial events arrive here: the session sets its own callbacks in init(). */
static void dial_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct upconn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        /* For an SSL bufferevent, CONNECTED means the handshake finished. */
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        bufferevent_set_timeouts(bev, NULL, NULL);
        if (c->dial_timer)
            event_del(c->dial_timer);
        if (c->ssl)
            log_debug("upstream %s server %s: TLS %s, %s, ALPN %s", pool_upstream(c->pool)->name,
                      pool_server(c->pool)->address, SSL_get_version(c->ssl),
                      SSL_session_reused(c->ssl) ? "resumed" : "full handshake",
                      updial_negotiated_h2(c) ? "h2" : "http/1.1 or none");
        pool_connected(c, UPERR_NONE);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        fail(c, UPERR_CONNECT_TIMEOUT, "connect", "timed out");
        return;
    }
    char why[256];
    int err = EVUTIL_SOCKET_ERROR();
    unsigned long e = c->ssl ? bufferevent_get_openssl_error(bev) : 0;
    if (c->ssl && (e || SSL_get_verify_result(c->ssl) != X509_V_OK)) {
        if (SSL_get_verify_result(c->ssl) != X509_V_OK)
            tls_client_failure(c->ssl, why, sizeof why);
        else
            snprintf(why, sizeof why, "%s", ERR_reason_error_string(e) ? ERR_reason_error_string(e)
                                                                      : "handshake failed");
        while (bufferevent_get_openssl_error(bev))
            ;
        fail(c, UPERR_CONNECT, "TLS handshake", why);
        return;
    }
    fail(c, UPERR_CONNECT, "connect failed",
         (what & BEV_EVENT_EOF) ? "connection closed during the handshake"
                                : evutil_socket_error_to_string(err));
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
    struct timeval tv;
    if (tc) {
        SSL *ssl = tls_client_ssl_new(tc, srv->host, pool_tls_session(c->pool), c);
        if (!ssl)
            return -1;
        c->bev = bufferevent_openssl_socket_new(w->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev) {
            SSL_free(ssl);
            return -1;
        }
        c->ssl = ssl;
        /* Backends often close without close_notify: an EOF, not an error. */
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        c->dial_timer = evtimer_new(w->base, handshake_timeout_cb, c);
        if (!c->dial_timer)
            return -1;
        tv = ms_timeval(up->connect_timeout_ms + up->tls->handshake_timeout_ms);
        evtimer_add(c->dial_timer, &tv);
    } else {
        c->bev = bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev)
            return -1;
    }
    bufferevent_setcb(c->bev, NULL, NULL, dial_event_cb, c);
    tv = ms_timeval(up->connect_timeout_ms);
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)&srv->ss, (int)srv->sslen) < 0) {
        log_warn("upstream %s server %s: connect: %s", up->name, srv->address, strerror(errno));
        return -1;
    }
    return 0;
}

const char *updial_tls_error(struct upconn *c, char *buf, size_t len)
{
    unsigned long e, first = 0;
    if (!c->ssl || !c->bev)
        return NULL;
    while ((e = bufferevent_get_openssl_error(c->bev)))
        if (!first)
            first = e;
    /* libevent also queues SSL_get_error() codes (SSL_ERROR_SYSCALL = a plain close): those
     * say nothing TLS-specific. */
    if (first <= SSL_ERROR_WANT_CLIENT_HELLO_CB)
        return NULL;
    const char *r = ERR_SYSTEM_ERROR(first) ? strerror(ERR_GET_REASON(first))
                                            : ERR_reason_error_string(first);
    if (r)
        snprintf(buf, len, "TLS: %s", r);
    else
        snprintf(buf, len, "TLS: OpenSSL error %lx", first);
    return buf;
}

int updial_negotiated_h2(const struct upconn *c)
{
    return c->ssl && tls_negotiated_h2(c->ssl);
}

void updial_release_bev(struct upconn *c)
{
    if (c->dial_timer) {
        event_free(c->dial_timer);
        c->dial_timer = NULL;
    }
    if (!c->bev)
        return;
    if (c->ssl) {
        tls_client_ssl_detach(c->ssl);
        /* Freed without close_notify, OpenSSL would mark the session unresumable. */
        SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        c->ssl = NULL;
    }
    bufferevent_free(c->bev);
    c->bev = NULL;
}

void updial_free(struct upconn *c) { updial_release_bev(c); }

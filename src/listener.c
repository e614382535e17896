#include "listener.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <openssl/err.h>
#include <unistd.h>

#include "h1_server.h"
#include "h2_server.h"
#include "tls.h"
#include "log.h"
#include "worker.h"

int listener_bind(const struct cfg_sockaddr *a, char *err, size_t errlen)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: socket: %s", a->text, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    /* "[::]:80" next to "0.0.0.0:80" must not claim the IPv4 side too. */
    if (a->ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, 511) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", a->text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* A TLS connection until its handshake is done; then it becomes an h1 or h2 session by
 * ALPN, in the same place of the worker's connection list. */
struct tls_pending {
    struct ds_conn base;
    struct listener_rt *l;
    struct bufferevent *bev;
    struct sockaddr_storage peer;
    struct event *free_ev;
};

static void pending_free_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tls_pending *p = arg;
    event_free(p->free_ev);
    free(p);
}

/* Ends the pending connection; its bufferevent is freed unless it was handed on. */
static void pending_end(struct tls_pending *p, int closed)
{
    if (p->bev && closed) {
        bufferevent_free(p->bev);
        worker_conn_closed(p->l->w, p->l, &p->base);
    }
    p->bev = NULL;
    event_active(p->free_ev, 0, 0);
}

static void handshake_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct tls_pending *p = arg;
    struct listener_rt *l = p->l;
    if (!(what & BEV_EVENT_CONNECTED)) {
        unsigned long e = bufferevent_get_openssl_error(bev);
        log_debug("listener %s: TLS handshake failed: %s", l->cfg->name,
                  (what & BEV_EVENT_TIMEOUT) ? "handshake_timeout"
                  : e ? ERR_reason_error_string(e) : "connection closed");
        pending_end(p, 1);
        return;
    }
    bufferevent_set_timeouts(bev, NULL, NULL);
    struct bufferevent *b = p->bev;
    p->bev = NULL;
    SSL *ssl = bufferevent_openssl_get_ssl(b);
    log_debug("listener %s: TLS handshake in worker %d: %s, %s, %s", l->cfg->name, l->w->id,
              SSL_session_reused(ssl) ? "resumed" : "full", SSL_get_version(ssl),
              tls_negotiated_h2(ssl) ? "h2" : "http/1.1");
    if (tls_negotiated_h2(ssl))
        h2s_new(l->w, l, b, (const struct sockaddr *)&p->peer, 1, &p->base);
    else
        h1s_new(l->w, l, b, (const struct sockaddr *)&p->peer, 1, &p->base);
    pending_end(p, 0);
}

static void pending_drain(struct ds_conn *c)
{
    pending_end((struct tls_pending *)c, 1);
}

static const struct ds_conn_ops pending_ops = { pending_drain, pending_drain };

static void start_tls(struct listener_rt *l, evutil_socket_t fd, const struct sockaddr *sa)
{
    struct worker *w = l->w;
    struct tls_pending *p = calloc(1, sizeof *p);
    SSL *ssl = tls_server_ssl_new(l->tls);
    if (!p || !ssl || !(p->free_ev = event_new(w->base, -1, 0, pending_free_cb, p))) {
        if (ssl)
            SSL_free(ssl);
        free(p);
        close(fd);
        return;
    }
    p->bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (!p->bev) {
        SSL_free(ssl);
        close(fd);
        event_free(p->free_ev);
        free(p);
        return;
    }
    /* A client that hangs up without close_notify is normal for HTTP: not an error. */
    bufferevent_openssl_set_allow_dirty_shutdown(p->bev, 1);
    p->base.ops = &pending_ops;
    p->l = l;
    memcpy(&p->peer, sa, sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    uint64_t ms = l->cfg->tls->handshake_timeout_ms;
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    bufferevent_set_timeouts(p->bev, &tv, &tv);
    bufferevent_setcb(p->bev, NULL, NULL, handshake_event_cb, p);
    bufferevent_enable(p->bev, EV_READ | EV_WRITE);
    worker_conn_add(w, l, &p->base);
}

static void accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    struct listener_rt *l = arg;
    struct worker *w = l->w;
    if (w->draining) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    w->stats.ds_accepted++;
    if (l->tls) {
        start_tls(l, fd, sa);
    } else {
        struct bufferevent *bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (!bev)
            close(fd);
        else
            h1s_new(w, l, bev, sa, 0, NULL);
    }
    if (l->cfg->max_connections && l->nconns >= l->cfg->max_connections && !l->paused) {
        l->paused = 1;
        for (size_t i = 0; i < l->nevl; i++)
            evconnlistener_disable(l->evl[i]);
        log_warn("listener %s: max_connections (%u) reached in worker %d; not accepting until "
                 "connections close", l->cfg->name, l->cfg->max_connections, w->id);
    }
}

static void accept_error_cb(struct evconnlistener *evl, void *arg)
{
    struct listener_rt *l = arg;
    int err = EVUTIL_SOCKET_ERROR();
    /* EMFILE/ENFILE: out of descriptors. Log and carry on; existing connections go on. */
    log_error("listener %s: accept: %s", l->cfg->name, evutil_socket_error_to_string(err));
}

int listener_start(struct listener_rt *l, struct worker *w, const struct cfg_listener *cfg,
                   const int *fds, size_t nfds)
{
    l->w = w;
    l->cfg = cfg;
    l->evl = calloc(nfds, sizeof *l->evl);
    if (!l->evl)
        return -1;
    for (size_t i = 0; i < nfds; i++) {
        l->evl[i] = evconnlistener_new(w->base, accept_cb, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                       -1, fds[i]);
        if (!l->evl[i])
            return -1;
        evconnlistener_set_error_cb(l->evl[i], accept_error_cb);
        l->nevl++;
    }
    return 0;
}

void listener_stop(struct listener_rt *l)
{
    for (size_t i = 0; i < l->nevl; i++)
        evconnlistener_free(l->evl[i]);
    free(l->evl);
    l->evl = NULL;
    l->nevl = 0;
}

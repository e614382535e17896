#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#include "blockcache.h"
#include "h1_server.h"
#include "h2_server.h"
#include "tls.h"
#include "tls_handshake.h"
#include "log.h"
#include "sockio.h"
#include "worker.h"

/* Linux copies TCP_NODELAY from a listening socket to each socket it accepts: set once here,
 * not by a setsockopt per connection. */
static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

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
    set_nodelay(fd);
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, 511) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", a->text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* --- socket activation (sd_listen_fds(3) semantics) ---------------------------------- */

#define LISTEN_FDS_START 3

size_t listener_passed_fds(int **out)
{
    *out = NULL;
    const char *s_pid = getenv("LISTEN_PID"), *s_fds = getenv("LISTEN_FDS");
    size_t n = 0;
    if (s_pid && s_fds) {
        char *end;
        errno = 0;
        unsigned long long pid = strtoull(s_pid, &end, 10);
        int ok = !errno && !*end && *s_pid && pid == (unsigned long long)getpid();
        errno = 0;
        unsigned long long cnt = strtoull(s_fds, &end, 10);
        if (ok && !errno && !*end && *s_fds && cnt > 0 && cnt <= 4096)
            n = (size_t)cnt;
    }
    /* Not for our children, whatever we did with them. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (!n)
        return 0;
    int *fds = malloc(n * sizeof *fds);
    if (!fds) {
        log_error("socket activation: out of memory; ignoring %zu passed sockets", n);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        int fd = LISTEN_FDS_START + (int)i;
        int fl = fcntl(fd, F_GETFD);
        if (fl < 0) {
            log_warn("socket activation: passed fd %d is not open", fd);
            fds[i] = -1;
            continue;
        }
        fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
        fds[i] = fd;
    }
    *out = fds;
    return n;
}

static int same_address(const struct sockaddr_storage *x, const struct cfg_sockaddr *a)
{
    if (x->ss_family != a->ss.ss_family)
        return 0;
    if (x->ss_family == AF_INET) {
        const struct sockaddr_in *p = (const struct sockaddr_in *)x;
        const struct sockaddr_in *q = (const struct sockaddr_in *)&a->ss;
        return p->sin_port == q->sin_port && p->sin_addr.s_addr == q->sin_addr.s_addr;
    }
    if (x->ss_family == AF_INET6) {
        const struct sockaddr_in6 *p = (const struct sockaddr_in6 *)x;
        const struct sockaddr_in6 *q = (const struct sockaddr_in6 *)&a->ss;
        return p->sin6_port == q->sin6_port &&
               memcmp(&p->sin6_addr, &q->sin6_addr, sizeof p->sin6_addr) == 0 &&
               (!q->sin6_scope_id || p->sin6_scope_id == q->sin6_scope_id);
    }
    return 0;
}

int listener_take_passed(int *fds, size_t nfds, const struct cfg_sockaddr *a)
{
    for (size_t i = 0; i < nfds; i++) {
        if (fds[i] < 0)
            continue;
        struct sockaddr_storage ss = { 0 };
        socklen_t len = sizeof ss;
        int type = 0, acc = 0;
        socklen_t tl = sizeof type, al = sizeof acc;
        if (getsockname(fds[i], (struct sockaddr *)&ss, &len) < 0 ||
            getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM ||
            getsockopt(fds[i], SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) < 0 || !acc ||
            !same_address(&ss, a))
            continue;
        int fd = fds[i];
        fds[i] = -1;
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        set_nodelay(fd);
        return fd;
    }
    return -1;
}

void listener_close_passed(int *fds, size_t nfds)
{
    for (size_t i = 0; i < nfds; i++) {
        if (fds[i] < 0)
            continue;
        char text[INET6_ADDRSTRLEN + 16] = "?";
        struct sockaddr_storage ss = { 0 };
        socklen_t len = sizeof ss;
        if (getsockname(fds[i], (struct sockaddr *)&ss, &len) == 0) {
            char host[INET6_ADDRSTRLEN];
            if (ss.ss_family == AF_INET &&
                inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof host))
                snprintf(text, sizeof text, "%s:%u", host, ntohs(((struct sockaddr_in *)&ss)->sin_port));
            else if (ss.ss_family == AF_INET6 &&
                     inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof host))
                snprintf(text, sizeof text, "[%s]:%u", host, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
            else if (ss.ss_family == AF_UNIX)
                snprintf(text, sizeof text, "a unix socket");
        }
        log_warn("socket activation: passed fd %d (%s) matches no configured listen address; "
                 "closing it", fds[i], text);
        close(fds[i]);
        fds[i] = -1;
    }
}

/* A TLS connection until its handshake is done; then it becomes an h1 or h2 session by
 * ALPN, in the same place of the worker's connection list. */
struct tls_pending {
    struct ds_conn base;
    struct listener_rt *l;
    struct tls_handshake *hs;   /* NULL once the handshake has ended */
    struct sockaddr_storage peer;
    struct event *free_ev;
};

static void pending_free_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tls_pending *p = arg;
    event_free(p->free_ev);
    bc_free(p);
}

/* Ends the pending connection (<closed>: it did not become a session). */
static void pending_end(struct tls_pending *p, int closed)
{
    if (closed)
        worker_conn_closed(p->l->w, p->l, &p->base);
    p->hs = NULL;
    event_active(p->free_ev, 0, 0);
}

static void handshake_done(SSL *ssl, const char *why, void *arg)
{
    struct tls_pending *p = arg;
    struct listener_rt *l = p->l;
    p->hs = NULL;
    if (!ssl) {
        worker_conn_count_close(l, DSC_ERROR);
        log_debug("listener %s: TLS handshake failed: %s", l->cfg->name, why);
        pending_end(p, 1);
        return;
    }
    log_debug("listener %s: TLS handshake in worker %d: %s, %s, %s", l->cfg->name, l->w->id,
              SSL_session_reused(ssl) ? "resumed" : "full", SSL_get_version(ssl),
              tls_negotiated_h2(ssl) ? "h2" : "http/1.1");
    /* From here ferry reads and writes the records itself (sockio.h says why); the
     * session's bufferevent only holds plaintext. */
    struct bufferevent *b = bufferevent_socket_new(l->w->base, -1, 0);
    struct sockio *io = b ? sockio_new_tls(l->w->base, b, ssl) : NULL;
    if (!io) {
        log_warn("listener %s: client connection closed: out of memory", l->cfg->name);
        if (b)
            bufferevent_free(b);
        evutil_closesocket(SSL_get_fd(ssl));
        SSL_free(ssl);
        worker_conn_count_close(l, DSC_ERROR);
        pending_end(p, 1);
        return;
    }
    if (tls_negotiated_h2(ssl))
        h2s_new(l->w, l, b, (const struct sockaddr *)&p->peer, io, &p->base);
    else
        h1s_new(l->w, l, b, (const struct sockaddr *)&p->peer, io, &p->base);
    pending_end(p, 0);
}

static void pending_drain(struct ds_conn *c)
{
    struct tls_pending *p = (struct tls_pending *)c;
    worker_conn_count_close(p->l, DSC_SHUTDOWN);
    if (p->hs)
        tls_handshake_abort(p->hs);
    pending_end(p, 1);
}

static const struct ds_conn_ops pending_ops = { pending_drain, pending_drain };

static void start_tls(struct listener_rt *l, evutil_socket_t fd, const struct sockaddr *sa)
{
    struct worker *w = l->w;
    struct tls_pending *p = bc_calloc(1, sizeof *p);
    SSL *ssl = tls_server_ssl_new(l->tls);
    if (!p || !ssl || !(p->free_ev = event_new(w->base, -1, 0, pending_free_cb, p)) ||
        !(p->hs = tls_handshake_accept(w->base, fd, ssl, l->cfg->tls->handshake_timeout_ms,
                                       handshake_done, p))) {
        if (ssl)
            SSL_free(ssl);
        if (p && p->free_ev)
            event_free(p->free_ev);
        bc_free(p);
        close(fd);
        return;
    }
    p->base.ops = &pending_ops;
    p->l = l;
    memcpy(&p->peer, sa, sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
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
    if (l->fd_starved) {
        l->fd_starved = 0;
        log_info("listener %s: descriptors available again; accepting", l->cfg->name);
    }
    w->stats.ds_accepted++;
    STAT_INC(l->stats.accepted);
    if (l->tls) {
        start_tls(l, fd, sa);
    } else {
        struct bufferevent *bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (!bev)
            close(fd);
        else
            h1s_new(w, l, bev, sa, NULL, NULL);
    }
    if (l->cfg->max_connections && l->nconns >= l->cfg->max_connections && !l->paused) {
        l->paused = 1;
        for (size_t i = 0; i < l->nevl; i++)
            evconnlistener_disable(l->evl[i]);
        log_warn("listener %s: max_connections (%u) reached in worker %d; not accepting until "
                 "connections close", l->cfg->name, l->cfg->max_connections, w->id);
    }
}

static void set_accepting(struct listener_rt *l, int on)
{
    for (size_t i = 0; i < l->nevl; i++) {
        if (on)
            evconnlistener_enable(l->evl[i]);
        else
            evconnlistener_disable(l->evl[i]);
    }
}

/* Out of descriptors: the listening socket stays readable, so accepting again at once would
 * spin. Pause for a moment (or until one of our connections closes, see
 * listener_fd_freed), log once per episode; existing connections go on. */
#define ACCEPT_RETRY_MS 100

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct listener_rt *l = arg;
    if (l->fd_starved && !l->paused && !l->w->draining)
        set_accepting(l, 1);
}

static void accept_error_cb(struct evconnlistener *evl, void *arg)
{
    struct listener_rt *l = arg;
    int err = EVUTIL_SOCKET_ERROR();
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
        log_error("listener %s: accept: %s", l->cfg->name, evutil_socket_error_to_string(err));
        return;
    }
    if (!l->fd_starved)
        log_error("listener %s: accept: %s; not accepting new connections until descriptors "
                  "free up (existing connections are served)", l->cfg->name,
                  evutil_socket_error_to_string(err));
    l->fd_starved = 1;
    set_accepting(l, 0);
    struct timeval tv = { 0, (suseconds_t)ACCEPT_RETRY_MS * 1000 };
    if (l->accept_retry)
        evtimer_add(l->accept_retry, &tv);
}

void listener_fd_freed(struct listener_rt *l)
{
    if (l->fd_starved && !l->paused && !l->w->draining)
        set_accepting(l, 1);
}

int listener_start(struct listener_rt *l, struct worker *w, const struct cfg_listener *cfg,
                   const int *fds, size_t nfds)
{
    l->w = w;
    l->cfg = cfg;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers; sizeof *p is right */
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
    l->accept_retry = evtimer_new(w->base, accept_retry_cb, l);
    return l->accept_retry ? 0 : -1;
}

void listener_stop(struct listener_rt *l)
{
    if (l->accept_retry) {
        event_free(l->accept_retry);
        l->accept_retry = NULL;
    }
    for (size_t i = 0; i < l->nevl; i++)
        evconnlistener_free(l->evl[i]);
    free(l->evl);
    l->evl = NULL;
    l->nevl = 0;
}

#include "listener.h"

#include <errno.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "h1_server.h"
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

static void accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    struct listener_rt *l = arg;
    if (l->w->draining) {
        close(fd);
        return;
    }
    h1s_new(l->w, l, fd, sa, (socklen_t)salen);
    if (l->cfg->max_connections && l->nconns >= l->cfg->max_connections && !l->paused) {
        l->paused = 1;
        for (size_t i = 0; i < l->nevl; i++)
            evconnlistener_disable(l->evl[i]);
        log_warn("listener %s: max_connections (%u) reached in worker %d; not accepting until "
                 "connections close", l->cfg->name, l->cfg->max_connections, l->w->id);
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

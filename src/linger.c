#include "linger.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "blockcache.h"
#include "deadline.h"
#include "sockio.h"
#include "worker.h"

/* Long enough for a client to read a GOAWAY and close; short enough that a hostile one
 * holds nothing for long. */
#define LINGER_MS 2000

struct lingerer {
    struct ds_conn base;
    struct worker *w;
    struct listener_rt *l;
    struct bufferevent *bev;
    struct event *timer;
    struct event *free_ev;
    struct sockio *tls;
    int shut;
};

void conn_free(struct bufferevent *bev, struct sockio *tls)
{
    sockio_free(tls);
    bufferevent_free(bev);
}

static void free_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lingerer *g = arg;
    event_free(g->free_ev);
    bc_free(g);
}

static void finish(struct lingerer *g)
{
    if (!g->bev)
        return;
    conn_free(g->bev, g->tls);
    g->bev = NULL;
    event_free(g->timer);
    worker_conn_closed(g->w, g->l, &g->base);
    event_active(g->free_ev, 0, 0);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct lingerer *g = arg;
    if (g->shut || evbuffer_get_length(bufferevent_get_output(bev)))
        return;
    g->shut = 1;
    SSL *ssl = sockio_ssl(g->tls);
    if (ssl) {
        /* close_notify first: a client reading to the end of the stream (HTTP/1.0,
         * Connection: close) waits for it, or for our FIN, before it closes. Best effort: a
         * full socket buffer only costs the alert, the FIN still follows. */
        (void)SSL_shutdown(ssl);
        ERR_clear_error();
    }
    shutdown(ssl ? SSL_get_fd(ssl) : bufferevent_getfd(bev), SHUT_WR);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    finish(arg);   /* the client closed (or reset): nothing left to protect */
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    finish(arg);
}

static void ds_drain(struct ds_conn *c) { (void)c; /* ends by itself within LINGER_MS */ }

static void ds_close_now(struct ds_conn *c)
{
    finish((struct lingerer *)c);
}

static const struct ds_conn_ops linger_ops = { ds_drain, ds_close_now };

void linger_close(struct worker *w, struct listener_rt *l, struct bufferevent *bev,
                  struct sockio *tls, struct ds_conn *replaces)
{
    struct lingerer *g = bc_calloc(1, sizeof *g);
    if (g) {
        g->timer = evtimer_new(w->base, timer_cb, g);
        g->free_ev = event_new(w->base, -1, 0, free_cb, g);
    }
    if (!g || !g->timer || !g->free_ev) {
        if (g && g->timer)
            event_free(g->timer);
        if (g && g->free_ev)
            event_free(g->free_ev);
        bc_free(g);
        conn_free(bev, tls);
        worker_conn_closed(w, l, replaces);
        return;
    }
    g->base.ops = &linger_ops;
    g->w = w;
    g->l = l;
    g->bev = bev;
    g->tls = tls;
    worker_conn_replace(w, replaces, &g->base);
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    bufferevent_setwatermark(bev, EV_READ, 0, 0);
    if (tls) {
        sockio_take(tls, read_cb, write_cb, event_cb, g, 0);
    } else {
        bufferevent_setcb(bev, read_cb, write_cb, event_cb, g);
        bufferevent_set_timeouts(bev, NULL, NULL);
        bufferevent_enable(bev, EV_READ | EV_WRITE);
    }
    struct timeval tv = ms_timeval(LINGER_MS);
    evtimer_add(g->timer, &tv);
    read_cb(bev, g);
    write_cb(bev, g);
}

void conn_end(struct worker *w, struct listener_rt *l, struct ds_conn *c, struct bufferevent *bev,
              struct sockio *tls, int linger)
{
    if (linger) {
        linger_close(w, l, bev, tls, c);
        return;
    }
    conn_free(bev, tls);
    worker_conn_closed(w, l, c);
}

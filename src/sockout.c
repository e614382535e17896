#include "sockout.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <sys/ioctl.h>

struct sockout {
    struct bufferevent *bev;
    struct evbuffer_cb_entry *watch;
    struct event *flush_ev;
    bufferevent_data_cb read_cb;
    bufferevent_data_cb write_cb;
    bufferevent_event_cb event_cb;
    void *arg;
    int scheduled;
    int queued;        /* the kernel's send queue when libevent last took over or timed out */
};

static int send_queue(const struct sockout *so)
{
    int q = -1;
    if (ioctl(bufferevent_getfd(so->bev), SIOCOUTQ, &q) < 0)
        return -1;
    return q;
}

static int libevent_writes(const struct sockout *so)
{
    return (bufferevent_get_enabled(so->bev) & EV_WRITE) != 0;
}

/* Something was queued: write it once the current callbacks are done, so that everything a
 * loop turn produces (a response head and its body) goes out in one writev. */
static void output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct sockout *so = arg;
    (void)buf;
    if (!info->n_added || so->scheduled || libevent_writes(so))
        return;
    so->scheduled = 1;
    event_active(so->flush_ev, EV_WRITE, 1);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sockout *so = arg;
    struct bufferevent *bev = so->bev;
    struct evbuffer *out = bufferevent_get_output(bev);
    (void)fd;
    (void)what;
    so->scheduled = 0;
    if (libevent_writes(so) || !evbuffer_get_length(out))
        return;
    /* A socket bufferevent keeps its output's front frozen against others draining it;
     * libevent's own write path thaws it the same way around its write. */
    evbuffer_unfreeze(out, 1);
    int n = evbuffer_write(out, bufferevent_getfd(bev));
    evbuffer_freeze(out, 1);
    size_t left = evbuffer_get_length(out);
    /* The socket is full (EAGAIN), or failed: libevent waits for writability, or meets the
     * error itself and reports it through the event callback with the usual flags. */
    if (left) {
        so->queued = send_queue(so);
        bufferevent_enable(bev, EV_WRITE);
    }
    if (n <= 0)
        return;
    size_t low = 0;
    bufferevent_getwatermark(bev, EV_WRITE, &low, NULL);
    /* Last: the callback may end the connection and free us. */
    if (left <= low && so->write_cb)
        so->write_cb(bev, so->arg);
}

static void read_tramp(struct bufferevent *bev, void *arg)
{
    struct sockout *so = arg;
    so->read_cb(bev, so->arg);
}

static void write_tramp(struct bufferevent *bev, void *arg)
{
    struct sockout *so = arg;
    /* libevent emptied the buffer: back to direct writes. */
    if (!evbuffer_get_length(bufferevent_get_output(bev)))
        bufferevent_disable(bev, EV_WRITE);
    if (so->write_cb)
        so->write_cb(bev, so->arg);
}

static void event_tramp(struct bufferevent *bev, short what, void *arg)
{
    struct sockout *so = arg;
    /* No EPOLLOUT within send_timeout does not mean the client stopped reading: the kernel
     * reports writability only once a third of a send buffer autotuned up to megabytes is
     * free, which a client reading steadily but slowly may take longer than that to drain.
     * Its send queue shrinking is the progress that counts. */
    if (what == (BEV_EVENT_TIMEOUT | BEV_EVENT_WRITING)) {
        int q = send_queue(so);
        if (q >= 0 && so->queued >= 0 && q < so->queued) {
            so->queued = q;
            bufferevent_enable(bev, EV_WRITE);
            return;
        }
    }
    so->event_cb(bev, what, so->arg);
}

struct sockout *sockout_new(struct event_base *base, struct bufferevent *bev,
                            bufferevent_data_cb read_cb, bufferevent_data_cb write_cb,
                            bufferevent_event_cb event_cb, void *arg)
{
    struct sockout *so = calloc(1, sizeof *so);
    if (!so)
        return NULL;
    so->bev = bev;
    so->read_cb = read_cb;
    so->write_cb = write_cb;
    so->event_cb = event_cb;
    so->arg = arg;
    so->flush_ev = event_new(base, -1, 0, flush_cb, so);
    if (so->flush_ev)
        so->watch = evbuffer_add_cb(bufferevent_get_output(bev), output_cb, so);
    if (!so->watch) {
        if (so->flush_ev)
            event_free(so->flush_ev);
        free(so);
        return NULL;
    }
    bufferevent_setcb(bev, read_tramp, write_tramp, event_tramp, so);
    bufferevent_disable(bev, EV_WRITE);
    if (evbuffer_get_length(bufferevent_get_output(bev))) {
        so->scheduled = 1;
        event_active(so->flush_ev, EV_WRITE, 1);
    }
    return so;
}

void sockout_free(struct sockout *so)
{
    if (!so)
        return;
    struct bufferevent *bev = so->bev;
    evbuffer_remove_cb_entry(bufferevent_get_output(bev), so->watch);
    event_free(so->flush_ev);
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    if (evbuffer_get_length(bufferevent_get_output(bev)))
        bufferevent_enable(bev, EV_WRITE);
    free(so);
}

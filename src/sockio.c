#include "sockio.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/uio.h>
#include <unistd.h>

#include "deadline.h"
#include "log.h"

/* Reads start at READ_MIN bytes and double while the socket fills them, up to READ_MAX:
 * small requests do not allocate big chunks, a streamed body is read in few calls. */
#define READ_MIN ((size_t)16 * 1024)
#define READ_MAX ((size_t)256 * 1024)

enum { DO_FLUSH = 1, DO_TRIGGER_READ = 2 };

struct sockio {
    struct bufferevent *bev;
    struct evbuffer_cb_entry *out_watch;
    struct evbuffer_cb_entry *in_watch;
    struct event *read_ev;
    /* The read timeout runs from the last read while the owner wants input: a lazy deadline
     * (its timer made at the first timeout set), not read_ev's own timeout, which costs
     * timer-heap work on every read and every request of a pooled connection. */
    struct deadline rto;
    LIST_ENTRY(sockio) defer_link;   /* in the thread's queue while <pending> */
    bufferevent_data_cb read_cb;
    bufferevent_data_cb write_cb;
    bufferevent_event_cb event_cb;
    void *arg;
    uint64_t read_timeout_ms;
    size_t read_size;
    int pending;       /* DO_* */
    int reading;       /* the owner wants input */
    int suspended;     /* the input is at its high watermark */
    int queued;        /* the kernel's send queue when libevent last took over or timed out */
};

static int libevent_writes(const struct sockio *so)
{
    return (bufferevent_get_enabled(so->bev) & EV_WRITE) != 0;
}

/* Deferred work of all sockios of a thread goes through one event (a worker thread runs one
 * event base): an event per connection would cost ~150 bytes of every idle connection. */
LIST_HEAD(sockio_list, sockio);
static __thread struct event *deferred_ev;
static __thread struct event_base *deferred_base;
static __thread struct sockio_list deferred;

static void deferred_cb(evutil_socket_t fd, short what, void *arg);

static int deferred_attach(struct event_base *base)
{
    if (deferred_ev)
        return deferred_base == base ? 0 : -1;
    if (!(deferred_ev = event_new(base, -1, 0, deferred_cb, NULL)))
        return -1;
    deferred_base = base;
    LIST_INIT(&deferred);
    return 0;
}

void sockio_thread_end(void)
{
    if (deferred_ev)
        event_free(deferred_ev);
    deferred_ev = NULL;
    deferred_base = NULL;
}

static void defer(struct sockio *so, int what)
{
    if (!so->pending) {
        if (LIST_EMPTY(&deferred))
            event_active(deferred_ev, 0, 1);
        LIST_INSERT_HEAD(&deferred, so, defer_link);
    }
    so->pending |= what;
}

/* ---- reading ----------------------------------------------------------------------------- */

static size_t read_high(const struct sockio *so)
{
    size_t high = 0;
    bufferevent_getwatermark(so->bev, EV_READ, NULL, &high);
    return high;
}

static void read_ended(struct sockio *so, short what);

static void arm_read(struct sockio *so)
{
    if (!so->reading || so->suspended) {
        event_del(so->read_ev);
        deadline_clear(&so->rto);
        return;
    }
    if (so->read_timeout_ms && !so->rto.ev) {
        /* No timer could be made: read_ev carries the timeout. */
        struct timeval tv = ms_timeval(so->read_timeout_ms);
        event_add(so->read_ev, &tv);
        return;
    }
    event_add(so->read_ev, NULL);
    deadline_after(&so->rto, so->read_timeout_ms);
}

static void read_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sockio *so = arg;
    if (deadline_fired(&so->rto))
        read_ended(so, BEV_EVENT_TIMEOUT);
}

/* The owner drained the input: below the high watermark, read again. */
static void input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct sockio *so = arg;
    if (!info->n_deleted || !so->suspended || evbuffer_get_length(buf) >= read_high(so))
        return;
    so->suspended = 0;
    arm_read(so);
}

/* Like libevent: reading stops before the owner hears of EOF, an error or a timeout. */
static void read_ended(struct sockio *so, short what)
{
    so->reading = 0;
    arm_read(so);
    so->event_cb(so->bev, (short)(BEV_EVENT_READING | what), so->arg);
}

/* Reads into the input's free space (no FIONREAD first, unlike evbuffer_read). -1 with
 * errno on failure, 0 at EOF, else the bytes read. */
static ssize_t read_some(struct sockio *so, struct evbuffer *in, size_t want)
{
    struct evbuffer_iovec v[2];
    evbuffer_unfreeze(in, 0);   /* the bufferevent freezes its input's end against others */
    ssize_t n = -1;
    int nv = 0;
    if (want <= READ_MIN) {
        /* Small reads (requests, small responses) go through the stack: the input is
         * usually empty, and reserving READ_MIN in it would malloc and later free a chunk
         * that size for a hundred bytes. */
        char buf[READ_MIN];
        n = read(bufferevent_getfd(so->bev), buf, want);
        if (n > 0 && evbuffer_add(in, buf, (size_t)n) < 0) {
            errno = ENOMEM;
            n = -1;
        }
    } else if ((nv = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2)) <= 0) {
        errno = ENOMEM;
    } else {
        struct iovec iov[2];
        size_t room = want;
        int used = 0;
        for (; used < nv && room; used++) {
            iov[used].iov_base = v[used].iov_base;
            iov[used].iov_len = v[used].iov_len < room ? v[used].iov_len : room;
            room -= iov[used].iov_len;
        }
        n = readv(bufferevent_getfd(so->bev), iov, used);
        if (n > 0) {
            size_t left = (size_t)n;
            int i = 0;
            for (; i < used && left; i++) {
                v[i].iov_len = iov[i].iov_len < left ? iov[i].iov_len : left;
                left -= v[i].iov_len;
            }
            evbuffer_commit_space(in, v, i);
        }
    }
    evbuffer_freeze(in, 0);
    return n;
}

static void read_ev_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sockio *so = arg;
    (void)fd;
    if (!(what & EV_READ)) {
        read_ended(so, BEV_EVENT_TIMEOUT);
        return;
    }
    struct evbuffer *in = bufferevent_get_input(so->bev);
    size_t len = evbuffer_get_length(in), high = read_high(so), want = so->read_size;
    if (high && len >= high) {
        so->suspended = 1;
        arm_read(so);
        return;
    }
    if (high && high - len < want)
        want = high - len;
    ssize_t n = read_some(so, in, want);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        read_ended(so, BEV_EVENT_ERROR);
        return;
    }
    if (n == 0) {
        read_ended(so, BEV_EVENT_EOF);
        return;
    }
    if ((size_t)n == want && so->read_size < READ_MAX)
        so->read_size *= 2;
    else if ((size_t)n < READ_MIN / 4)
        so->read_size = READ_MIN;
    if (high && len + (size_t)n >= high) {
        so->suspended = 1;
        arm_read(so);
    } else if (so->rto.ev) {
        deadline_after(&so->rto, so->read_timeout_ms);   /* moved later: no timer work */
    }
    so->read_cb(so->bev, so->arg);   /* last: it may end the connection and free us */
}

void sockio_read(struct sockio *so, int on)
{
    so->reading = on;
    arm_read(so);
}

void sockio_set_read_timeout(struct sockio *so, uint64_t ms)
{
    if (ms == so->read_timeout_ms)
        return;
    so->read_timeout_ms = ms;
    if (ms && !so->rto.ev)
        so->rto.ev = evtimer_new(event_get_base(so->read_ev), read_timeout_cb, so);
    if (!ms) {
        deadline_clear(&so->rto);
        if (event_pending(so->read_ev, EV_TIMEOUT, NULL))
            event_remove_timer(so->read_ev);   /* set while no timer could be made */
    } else {
        arm_read(so);
    }
}

void sockio_trigger_read(struct sockio *so) { defer(so, DO_TRIGGER_READ); }

/* ---- writing ----------------------------------------------------------------------------- */

/* Something was queued: write it once the current callbacks are done, so that everything a
 * loop turn produces (a response head and its body) goes out in one writev. */
static void output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct sockio *so = arg;
    (void)buf;
    if (info->n_added && !libevent_writes(so))
        defer(so, DO_FLUSH);
}

static int send_queue(const struct sockio *so)
{
    int q = -1;
    if (ioctl(bufferevent_getfd(so->bev), SIOCOUTQ, &q) < 0)
        return -1;
    return q;
}

static void flush(struct sockio *so)
{
    struct bufferevent *bev = so->bev;
    struct evbuffer *out = bufferevent_get_output(bev);
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

static void run_pending(struct sockio *so, int pending)
{
    if (pending & DO_TRIGGER_READ) {
        /* The read callback may free us: the flush, if any, goes on in another turn. */
        if (pending & DO_FLUSH)
            defer(so, DO_FLUSH);
        so->read_cb(so->bev, so->arg);
        return;
    }
    flush(so);
}

static void deferred_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    /* This turn's work only: what it defers again waits for the event's next run. A sockio
     * freed meanwhile leaves the batch (LIST_REMOVE needs no head). */
    struct sockio_list batch;
    LIST_INIT(&batch);
    struct sockio *so;
    while ((so = LIST_FIRST(&deferred))) {
        LIST_REMOVE(so, defer_link);
        LIST_INSERT_HEAD(&batch, so, defer_link);
    }
    while ((so = LIST_FIRST(&batch))) {
        LIST_REMOVE(so, defer_link);
        int pending = so->pending;
        so->pending = 0;
        run_pending(so, pending);
    }
}

static void read_tramp(struct bufferevent *bev, void *arg)
{
    struct sockio *so = arg;
    so->read_cb(bev, so->arg);
}

static void write_tramp(struct bufferevent *bev, void *arg)
{
    struct sockio *so = arg;
    /* libevent emptied the buffer: back to direct writes. */
    if (!evbuffer_get_length(bufferevent_get_output(bev)))
        bufferevent_disable(bev, EV_WRITE);
    if (so->write_cb)
        so->write_cb(bev, so->arg);
}

static void event_tramp(struct bufferevent *bev, short what, void *arg)
{
    struct sockio *so = arg;
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

/* ---- life ------------------------------------------------------------------------------- */

struct sockio *sockio_new(struct event_base *base, struct bufferevent *bev,
                          bufferevent_data_cb read_cb, bufferevent_data_cb write_cb,
                          bufferevent_event_cb event_cb, void *arg)
{
    struct sockio *so = calloc(1, sizeof *so);
    if (!so)
        return NULL;
    so->bev = bev;
    so->read_cb = read_cb;
    so->write_cb = write_cb;
    so->event_cb = event_cb;
    so->arg = arg;
    so->read_size = READ_MIN;
    so->read_ev = event_new(base, bufferevent_getfd(bev), EV_READ | EV_PERSIST, read_ev_cb, so);
    if (so->read_ev && deferred_attach(base) == 0) {
        so->out_watch = evbuffer_add_cb(bufferevent_get_output(bev), output_cb, so);
        so->in_watch = evbuffer_add_cb(bufferevent_get_input(bev), input_cb, so);
    }
    if (!so->out_watch || !so->in_watch) {
        if (so->out_watch)
            evbuffer_remove_cb_entry(bufferevent_get_output(bev), so->out_watch);
        if (so->read_ev)
            event_free(so->read_ev);
        free(so);
        return NULL;
    }
    bufferevent_setcb(bev, read_tramp, write_tramp, event_tramp, so);
    bufferevent_disable(bev, EV_READ | EV_WRITE);
    if (evbuffer_get_length(bufferevent_get_output(bev)))
        defer(so, DO_FLUSH);
    return so;
}

struct sockio *sockio_attach(struct event_base *base, struct bufferevent *bev, int plain,
                             bufferevent_data_cb read_cb, bufferevent_data_cb write_cb,
                             bufferevent_event_cb event_cb, void *arg)
{
    struct sockio *so = plain ? sockio_new(base, bev, read_cb, write_cb, event_cb, arg) : NULL;
    if (so) {
        sockio_read(so, 1);
        return so;
    }
    bufferevent_setcb(bev, read_cb, write_cb, event_cb, arg);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    return NULL;
}

void sockio_free(struct sockio *so)
{
    if (!so)
        return;
    struct bufferevent *bev = so->bev;
    evbuffer_remove_cb_entry(bufferevent_get_output(bev), so->out_watch);
    evbuffer_remove_cb_entry(bufferevent_get_input(bev), so->in_watch);
    event_free(so->read_ev);
    if (so->rto.ev)
        event_free(so->rto.ev);
    if (so->pending)
        LIST_REMOVE(so, defer_link);
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    if (evbuffer_get_length(bufferevent_get_output(bev)))
        bufferevent_enable(bev, EV_WRITE);
    free(so);
}

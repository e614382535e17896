#include "sockio.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <linux/sockios.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "blockcache.h"
#include "deadline.h"
#include "log.h"

/* Reads start at READ_MIN bytes and double while the socket fills them, up to READ_MAX:
 * small requests do not allocate big chunks, a streamed body is read in few calls. */
#define READ_MIN ((size_t)16 * 1024)
#define READ_MAX ((size_t)256 * 1024)

/* TLS: at most one record's payload per SSL_write, so that one write(2) carries it. */
#define TLS_RECORD ((size_t)16 * 1024)

enum { DO_FLUSH = 1, DO_TRIGGER_READ = 2, DO_TLS_READ = 4 };

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
    /* TLS only: the socket, the SSL over it and the wait for writability are ours; the
     * bufferevent holds the plaintext buffers and no descriptor. */
    SSL *ssl;
    evutil_socket_t fd;
    struct event *write_ev;     /* while an SSL_write waits for the socket to take more */
    uint64_t write_timeout_ms;
    short tls_end;              /* EOF or error met after bytes still to be delivered */
    int tls_failed;             /* a fatal TLS error: no close_notify (OpenSSL forbids it) */
    unsigned long tls_error;    /* the first OpenSSL error that ended the stream, or 0 */
    int read_wants_write;       /* SSL_read needs the socket writable (a KeyUpdate answer) */
    int write_wants_read;       /* SSL_write needs input first */
};

/* A write waits for the socket: libevent's (plain) or our TLS write event. */
static int write_waits(const struct sockio *so)
{
    if (so->ssl)
        return event_pending(so->write_ev, EV_WRITE, NULL) != 0;
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

static evutil_socket_t sock_fd(const struct sockio *so)
{
    return so->ssl ? so->fd : bufferevent_getfd(so->bev);
}

static void read_ended(struct sockio *so, short what);

static void arm_read(struct sockio *so)
{
    /* (While SSL_read waits for writability, a readable socket would only spin.) */
    if (!so->reading || so->suspended || so->read_wants_write) {
        event_del(so->read_ev);
        deadline_clear(&so->rto);
        return;
    }
    if (so->read_timeout_ms && !so->rto.ev) {
        /* No timer could be made: read_ev carries the timeout. */
        struct timeval tv = ms_timeval(so->read_timeout_ms);
        event_add(so->read_ev, &tv);
    } else {
        event_add(so->read_ev, NULL);
        deadline_after(&so->rto, so->read_timeout_ms);
    }
    /* Records OpenSSL already holds (read ahead, or left when reading paused) would wait for
     * the socket's next bytes, which may never come. */
    if (so->ssl && (so->tls_end || SSL_has_pending(so->ssl)))
        defer(so, DO_TLS_READ);
}

/* How much may be read now, at most <want>; 0 at the read high watermark, where reading is
 * suspended until the owner drains the input (input_cb). Sets <high> and the input's <len>
 * for read_filled. */
static size_t read_room(struct sockio *so, size_t want, size_t *high, size_t *len)
{
    *len = evbuffer_get_length(bufferevent_get_input(so->bev));
    *high = read_high(so);
    if (*high && *len >= *high) {
        so->suspended = 1;
        arm_read(so);
        return 0;
    }
    return *high && *high - *len < want ? *high - *len : want;
}

/* After reading <n> bytes: suspended if they reached the high watermark (1), else 0. */
static int read_filled(struct sockio *so, size_t high, size_t len, size_t n)
{
    if (!high || len + n < high)
        return 0;
    so->suspended = 1;
    arm_read(so);
    return 1;
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
 * errno on failure, 0 at EOF, else the bytes read. recv/recvmsg rather than read/readv: the
 * socket calls skip the file layer (fdget_pos, vfs_read, fsnotify). */
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
        n = recv(bufferevent_getfd(so->bev), buf, want, 0);
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
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)used };
        n = recvmsg(bufferevent_getfd(so->bev), &msg, 0);
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

/* ---- TLS -------------------------------------------------------------------------------- */

static void tls_read(struct sockio *so);
static void flush(struct sockio *so);

/* How a failed SSL_read or SSL_write ends the stream: a peer that hangs up without
 * close_notify is normal for HTTP (an EOF, as libevent's allow_dirty_shutdown), anything
 * else an error. Clears the thread's OpenSSL error queue for the next connection. */
static short tls_failure(struct sockio *so, int err, int ret)
{
    short what = BEV_EVENT_ERROR;
    so->tls_failed = err != SSL_ERROR_ZERO_RETURN;
    unsigned long e = ERR_peek_error();
    if (err == SSL_ERROR_ZERO_RETURN ||
        (err == SSL_ERROR_SYSCALL && !e && (ret == 0 || errno == 0)) ||
        (err == SSL_ERROR_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING))
        what = BEV_EVENT_EOF;
    else if (err == SSL_ERROR_SSL) {
        log_debug("TLS connection failed: %s", ERR_reason_error_string(e));
        if (!so->tls_error)
            so->tls_error = e;
    }
    ERR_clear_error();
    return what;
}

static int send_queue(const struct sockio *so);

static void wait_writable(struct sockio *so)
{
    if (event_pending(so->write_ev, EV_WRITE, NULL))
        return;
    so->queued = send_queue(so);
    struct timeval tv = ms_timeval(so->write_timeout_ms);
    if (event_add(so->write_ev, so->write_timeout_ms ? &tv : NULL) < 0)
        event_active(so->write_ev, EV_WRITE, 0);   /* try again rather than stall */
}

static void write_ev_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sockio *so = arg;
    (void)fd;
    if (!(what & EV_WRITE)) {
        /* As libevent's path for plain TCP below (event_tramp): a shrinking send queue is
         * a client reading slowly, not a stalled one. */
        int q = send_queue(so);
        if (q >= 0 && so->queued >= 0 && q < so->queued) {
            wait_writable(so);
            return;
        }
        so->event_cb(so->bev, (short)(BEV_EVENT_WRITING | BEV_EVENT_TIMEOUT), so->arg);
        return;
    }
    if (so->read_wants_write) {
        so->read_wants_write = 0;
        arm_read(so);
        defer(so, DO_TLS_READ);
    }
    flush(so);
}

/* Decrypts what the socket and OpenSSL hold, up to the read high watermark: with OpenSSL's
 * read-ahead one read(2) takes a burst of records, not a 5-byte header and then a body. */
static void tls_read(struct sockio *so)
{
    if (!so->reading || so->suspended)
        return;   /* a deferred read that came after reading stopped */
    if (so->tls_end) {
        read_ended(so, so->tls_end);
        return;
    }
    if (so->write_wants_read) {
        so->write_wants_read = 0;
        defer(so, DO_FLUSH);
    }
    struct evbuffer *in = bufferevent_get_input(so->bev);
    size_t high, len, want = read_room(so, READ_MAX, &high, &len), got = 0;
    if (!want)
        return;
    char buf[TLS_RECORD];
    short end = 0;
    ERR_clear_error();   /* SSL_get_error reads the thread's queue: no other's errors in it */
    evbuffer_unfreeze(in, 0);   /* the bufferevent freezes its input's end against others */
    while (got < want && !end) {
        size_t ask = want - got < sizeof buf ? want - got : sizeof buf;
        int n = SSL_read(so->ssl, buf, (int)ask);
        if (n > 0) {
            if (evbuffer_add(in, buf, (size_t)n) < 0)
                end = BEV_EVENT_ERROR;
            got += (size_t)n;
            /* Nothing buffered: another SSL_read would only meet EAGAIN; the socket, level-
             * triggered, says when there is more. */
            if (!SSL_has_pending(so->ssl))
                break;
            continue;
        }
        int err = SSL_get_error(so->ssl, n);
        if (err == SSL_ERROR_WANT_READ)
            break;
        if (err == SSL_ERROR_WANT_WRITE) {
            so->read_wants_write = 1;
            arm_read(so);
            wait_writable(so);
            break;
        }
        end = tls_failure(so, err, n);
    }
    evbuffer_freeze(in, 0);
    if (end && !got) {
        read_ended(so, end);
        return;
    }
    if (end) {
        so->tls_end = end;   /* after the owner has had the bytes */
        defer(so, DO_TLS_READ);
    }
    if (!got)
        return;
    /* Once suspended, reading resumes (with what OpenSSL holds) when the input drains. */
    if (!read_filled(so, high, len, got)) {
        if (got >= want && SSL_has_pending(so->ssl))
            defer(so, DO_TLS_READ);   /* the rest of the burst, after the owner's turn */
        if (so->rto.ev && !so->read_wants_write)
            deadline_after(&so->rto, so->read_timeout_ms);
    }
    so->read_cb(so->bev, so->arg);   /* last: it may end the connection and free us */
}

/* Encrypts the output a record at a time (small chunks gathered into one), each record one
 * write(2). A record the socket would not take is retried once it is writable, from the
 * same front of the output, which only grows meanwhile: at least as long, as OpenSSL
 * requires (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets the bytes move). */
static void tls_flush(struct sockio *so)
{
    struct evbuffer *out = bufferevent_get_output(so->bev);
    char buf[TLS_RECORD];
    size_t written = 0, left;
    ERR_clear_error();
    evbuffer_unfreeze(out, 1);
    while ((left = evbuffer_get_length(out))) {
        size_t n = left < sizeof buf ? left : sizeof buf;
        struct evbuffer_iovec v;
        const void *p = buf;
        if (evbuffer_peek(out, (ev_ssize_t)n, NULL, &v, 1) >= 1 && v.iov_len >= n)
            p = v.iov_base;
        else
            evbuffer_copyout(out, buf, n);
        int r = SSL_write(so->ssl, p, (int)n);
        if (r > 0) {
            evbuffer_drain(out, (size_t)r);
            written += (size_t)r;
            continue;
        }
        int err = SSL_get_error(so->ssl, r);
        if (err == SSL_ERROR_WANT_WRITE) {
            wait_writable(so);
            break;
        }
        if (err == SSL_ERROR_WANT_READ) {
            so->write_wants_read = 1;
            break;
        }
        evbuffer_freeze(out, 1);
        (void)tls_failure(so, err, r);
        so->event_cb(so->bev, (short)(BEV_EVENT_WRITING | BEV_EVENT_ERROR), so->arg);
        return;
    }
    evbuffer_freeze(out, 1);
    size_t low = 0;
    bufferevent_getwatermark(so->bev, EV_WRITE, &low, NULL);
    /* Last: the callback may end the connection and free us. */
    if (written && evbuffer_get_length(out) <= low && so->write_cb)
        so->write_cb(so->bev, so->arg);
}

/* ---- plain reads ------------------------------------------------------------------------- */

static void read_ev_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sockio *so = arg;
    (void)fd;
    if (!(what & EV_READ)) {
        read_ended(so, BEV_EVENT_TIMEOUT);
        return;
    }
    if (so->ssl) {
        tls_read(so);
        return;
    }
    struct evbuffer *in = bufferevent_get_input(so->bev);
    size_t high, len, want = read_room(so, so->read_size, &high, &len);
    if (!want)
        return;
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
    if (!read_filled(so, high, len, (size_t)n) && so->rto.ev) {
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
    if (info->n_added && !write_waits(so))
        defer(so, DO_FLUSH);
}

static int send_queue(const struct sockio *so)
{
    int q = -1;
    if (ioctl(sock_fd(so), SIOCOUTQ, &q) < 0)
        return -1;
    return q;
}

#define SEND_IOV 64

/* Writes the front of <out> (up to SEND_IOV chains) in one sendmsg and drains what it wrote;
 * as evbuffer_write: the bytes written, or -1 with errno. sendmsg rather than writev, as
 * read_some: no file layer, and MSG_NOSIGNAL. On Linux libevent's evbuffer_iovec is struct
 * iovec itself (a macro), so the peeked extents go to the kernel as they are (were it not,
 * the msg_iov assignment would be an incompatible-pointer diagnostic). */
static ssize_t send_some(struct evbuffer *out, int fd)
{
    struct evbuffer_iovec v[SEND_IOV];
    int nv = evbuffer_peek(out, -1, NULL, v, SEND_IOV);
    if (nv > SEND_IOV)
        nv = SEND_IOV;
    struct msghdr msg = { .msg_iov = v, .msg_iovlen = (size_t)nv };
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n > 0)
        evbuffer_drain(out, (size_t)n);
    return n;
}

static void flush(struct sockio *so)
{
    struct bufferevent *bev = so->bev;
    struct evbuffer *out = bufferevent_get_output(bev);
    if (write_waits(so) || !evbuffer_get_length(out))
        return;
    if (so->ssl) {
        if (!so->write_wants_read)
            tls_flush(so);
        return;
    }
    /* A socket bufferevent keeps its output's front frozen against others draining it;
     * libevent's own write path thaws it the same way around its write. */
    evbuffer_unfreeze(out, 1);
    ssize_t n = send_some(out, bufferevent_getfd(bev));
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
    /* One piece of work now; each may free us, so the rest is queued again first. */
    int now = (pending & DO_TRIGGER_READ) ? DO_TRIGGER_READ
              : (pending & DO_FLUSH)      ? DO_FLUSH
                                          : DO_TLS_READ;
    if (pending & ~now)
        defer(so, pending & ~now);
    if (now == DO_TRIGGER_READ)
        so->read_cb(so->bev, so->arg);
    else if (now == DO_FLUSH)
        flush(so);
    else
        tls_read(so);
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

static struct sockio *sockio_make(struct event_base *base, struct bufferevent *bev, SSL *ssl,
                                  bufferevent_data_cb read_cb, bufferevent_data_cb write_cb,
                                  bufferevent_event_cb event_cb, void *arg)
{
    struct sockio *so = bc_calloc(1, sizeof *so);
    if (!so)
        return NULL;
    so->bev = bev;
    so->read_cb = read_cb;
    so->write_cb = write_cb;
    so->event_cb = event_cb;
    so->arg = arg;
    so->read_size = READ_MIN;
    so->ssl = ssl;
    so->fd = ssl ? SSL_get_fd(ssl) : -1;
    so->read_ev = event_new(base, sock_fd(so), EV_READ | EV_PERSIST, read_ev_cb, so);
    if (ssl && so->read_ev)
        so->write_ev = event_new(base, so->fd, EV_WRITE, write_ev_cb, so);
    if (so->read_ev && (!ssl || so->write_ev) && deferred_attach(base) == 0) {
        so->out_watch = evbuffer_add_cb(bufferevent_get_output(bev), output_cb, so);
        so->in_watch = evbuffer_add_cb(bufferevent_get_input(bev), input_cb, so);
    }
    if (!so->out_watch || !so->in_watch) {
        if (so->out_watch)
            evbuffer_remove_cb_entry(bufferevent_get_output(bev), so->out_watch);
        if (so->write_ev)
            event_free(so->write_ev);
        if (so->read_ev)
            event_free(so->read_ev);
        bc_free(so);
        return NULL;
    }
    bufferevent_disable(bev, EV_READ | EV_WRITE);
    if (ssl) {
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_set_read_ahead(ssl, 1);
    } else {
        bufferevent_setcb(bev, read_tramp, write_tramp, event_tramp, so);
    }
    if (evbuffer_get_length(bufferevent_get_output(bev)))
        defer(so, DO_FLUSH);
    return so;
}

struct sockio *sockio_new(struct event_base *base, struct bufferevent *bev,
                          bufferevent_data_cb read_cb, bufferevent_data_cb write_cb,
                          bufferevent_event_cb event_cb, void *arg)
{
    return sockio_make(base, bev, NULL, read_cb, write_cb, event_cb, arg);
}

struct sockio *sockio_new_tls(struct event_base *base, struct bufferevent *bev, SSL *ssl)
{
    return sockio_make(base, bev, ssl, NULL, NULL, NULL, NULL);
}

struct sockio *sockio_take(struct sockio *so, bufferevent_data_cb read_cb,
                           bufferevent_data_cb write_cb, bufferevent_event_cb event_cb,
                           void *arg, uint64_t write_timeout_ms)
{
    so->read_cb = read_cb;
    so->write_cb = write_cb;
    so->event_cb = event_cb;
    so->arg = arg;
    so->write_timeout_ms = write_timeout_ms;
    if (so->ssl && event_pending(so->write_ev, EV_WRITE, NULL)) {
        event_del(so->write_ev);
        wait_writable(so);   /* the wait goes on under the new timeout */
    }
    sockio_set_read_timeout(so, 0);
    sockio_read(so, 1);
    return so;
}

SSL *sockio_ssl(const struct sockio *so) { return so ? so->ssl : NULL; }

unsigned long sockio_tls_error(const struct sockio *so) { return so->tls_error; }

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
    if (so->ssl) {
        /* The connection ends with us: close_notify (RFC 8446 6.1) when all was written
         * and the stream did not fail (never after output we drop: a client must not take
         * a cut response for a whole one; a lingering close has sent it already). Then
         * marked as shut down both ways: OpenSSL otherwise takes a session freed without
         * the client's close_notify for a bad one and drops it from the cache, and clients
         * that simply hang up (most) could not resume (nginx does the same). */
        if (!so->tls_failed && !evbuffer_get_length(bufferevent_get_output(bev)) &&
            !(SSL_get_shutdown(so->ssl) & SSL_SENT_SHUTDOWN)) {
            (void)SSL_shutdown(so->ssl);
            ERR_clear_error();
        }
        event_free(so->write_ev);
        SSL_set_shutdown(so->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_free(so->ssl);
        evutil_closesocket(so->fd);
    } else if (evbuffer_get_length(bufferevent_get_output(bev))) {
        bufferevent_enable(bev, EV_WRITE);
    }
    bc_free(so);
}

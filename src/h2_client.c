#include "h2_client.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "blockcache.h"
#include "deadline.h"
#include "exchange.h"
#include "h1_parse.h"
#include "h1_write.h"
#include "log.h"
#include "outbatch.h"
#include "sockio.h"
#include "updial.h"
#include "worker.h"

/* nghttp2 generates output only while less than this is queued on the socket. */
#define OUT_HIGH_MARK ((size_t)64 * 1024)
/* A request body buffer that falls below this lets the client side read again. */
#define BODY_LOW_MARK ((size_t)64 * 1024)
/* Connection-level receive window: large, so that paused streams (each holding at most its
 * own window) cannot starve the others. */
#define CONN_WINDOW (64 * 1024 * 1024)
/* Request header fields beyond this many are not forwarded (the listener limits them far
 * lower; this bounds the stack array). */
#define MAX_NV 256

static const uint8_t PING_DATA[8] = { 'f', 'e', 'r', 'r', 'y', 'u', 'p', '1' };

struct h2u_stream {
    struct h2u *s;
    int32_t id;
    struct exchange *ex;              /* NULL once told how it ended */
    TAILQ_ENTRY(h2u_stream) link;
    struct http_head head;            /* response head being collected */
    struct http_head trailers;        /* response trailers */
    struct http_head req_trailers;
    struct evbuffer *out;             /* request body waiting for nghttp2 */
    struct deadline timer;            /* read_timeout of the exchange: moved by every frame */
    uint64_t read_timeout_ms;
    size_t unconsumed;                /* DATA received while the exchange was paused */
    unsigned head_done : 1, in_trailers : 1, req_end : 1, has_body : 1, deferred : 1,
        paused : 1, sent_headers : 1, got_any : 1, reused : 1, was_high : 1,
        drained_pending : 1, closed : 1;
};

struct h2u {
    struct upconn *c;
    nghttp2_session *ng;
    TAILQ_HEAD(, h2u_stream) streams;   /* open in nghttp2 */
    TAILQ_HEAD(, h2u_stream) dead;      /* closed by nghttp2: freed at settle */
    struct evbuffer *rx;                /* response DATA on its way (reused) */
    struct event *ping_timer;           /* read-idle, then the PING's deadline */
    struct sockio *io;                  /* ferry's own socket I/O (updial_io) */
    int in_ng;                          /* inside nghttp2 (recv/send): defer sends */
    int want_flush;
    struct event *flush_ev;             /* flush_soon: after the loop turn's other events */
    int flush_pending;
    int settling;
    int ping_outstanding;
    int ping_allowed;                   /* peer sent HEADERS/DATA since our last PING */
    int settings_changed;
    int32_t goaway_last;                /* last stream id of a received GOAWAY, else -1 */
};

static void flush(struct h2u *s);
static void flush_soon(struct h2u *s);
static void settle(struct h2u *s);

static struct pool *pool_of(struct h2u *s) { return s->c->pool; }
static const char *up_name(struct h2u *s) { return pool_upstream(pool_of(s))->name; }
static const char *srv_addr(struct h2u *s) { return pool_server(pool_of(s))->address; }

/* ---- PING health ------------------------------------------------------------------- */

static void arm_read_idle(struct h2u *s)
{
    uint64_t ms = pool_upstream(pool_of(s))->h2_read_idle_timeout_ms;
    if (!ms || !s->ping_timer)
        return;
    struct timeval tv;
    tv = ms_timeval(ms * pool_ping_backoff(pool_of(s)));
    evtimer_add(s->ping_timer, &tv);
}

static void ping_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct h2u *s = arg;
    if (s->c->state == UC_CLOSED)
        return;
    if (s->ping_outstanding) {
        log_warn("upstream %s server %s: h2 PING not answered within %llums; closing the "
                 "connection (%u streams open)", up_name(s), srv_addr(s),
                 (unsigned long long)pool_upstream(pool_of(s))->h2_ping_timeout_ms, s->c->streams);
        pool_close(s->c, CLOSE_PING_TIMEOUT);
        return;
    }
    if (!s->ping_allowed) {
        /* No HEADERS or DATA since the last PING: another would be a keepalive-policy
         * strike at a gRPC server. The next response re-enables it. */
        return;
    }
    s->ping_allowed = 0;
    s->ping_outstanding = 1;
    nghttp2_submit_ping(s->ng, NGHTTP2_FLAG_NONE, PING_DATA);
    struct timeval tv;
    tv = ms_timeval(pool_upstream(pool_of(s))->h2_ping_timeout_ms);
    evtimer_add(s->ping_timer, &tv);
    log_debug("upstream %s server %s: h2 connection silent, PING sent", up_name(s), srv_addr(s));
    flush(s);
}

/* ---- streams ----------------------------------------------------------------------- */

static void stream_timer_cb(evutil_socket_t fd, short what, void *arg);

static void stream_free(struct h2u_stream *st)
{
    http_head_free(&st->head);
    http_head_free(&st->trailers);
    http_head_free(&st->req_trailers);
    if (st->out)
        evbuffer_free(st->out);
    if (st->timer.ev)
        event_free(st->timer.ev);
    bc_free(st);
}

static void touch_stream(struct h2u_stream *st)
{
    if (st->timer.ev && st->ex)
        deadline_after(&st->timer, st->read_timeout_ms);
}

/* Tells the exchange its stream failed; the stream stays until nghttp2 closes it. */
static void stream_fail(struct h2u_stream *st, enum upstream_error err)
{
    struct exchange *ex = st->ex;
    if (!ex)
        return;
    st->ex = NULL;
    if (st->timer.ev)
        deadline_clear(&st->timer);
    exchange_upstream_error(ex, err, st->sent_headers, st->got_any, st->reused);
}

static void stream_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct h2u_stream *st = arg;
    struct h2u *s = st->s;
    if (!deadline_fired(&st->timer) || !st->ex || st->closed)
        return;
    log_warn("upstream %s server %s: read timed out on stream %d", up_name(s), srv_addr(s), st->id);
    nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    stream_fail(st, UPERR_READ_TIMEOUT);
    flush(s);
}

/* Response complete: hand it over and stop sending what the backend no longer wants. */
static void stream_complete(struct h2u_stream *st)
{
    struct exchange *ex = st->ex;
    if (!ex)
        return;
    st->ex = NULL;
    if (st->timer.ev)
        deadline_clear(&st->timer);
    if (!st->req_end || evbuffer_get_length(st->out))
        nghttp2_submit_rst_stream(st->s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    exchange_upstream_end(ex, st->trailers.nfields ? &st->trailers : NULL);
}

static int64_t parse_content_length(const struct http_head *h)
{
    const struct http_field *f = http_head_get(h, "content-length");
    if (!f || !f->value_len || f->value_len > 18)
        return -1;
    int64_t n = 0;
    for (uint32_t i = 0; i < f->value_len; i++) {
        if (f->value[i] < '0' || f->value[i] > '9')
            return -1;
        n = n * 10 + (f->value[i] - '0');
    }
    return n;
}

/* ---- nghttp2 callbacks --------------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    struct h2u_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (st && st->head_done)
        st->in_trailers = 1;
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct h2u_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (!st || !st->ex || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (st->in_trailers) {
        if (namelen && name[0] != ':')
            http_head_add(&st->trailers, (const char *)name, namelen, (const char *)value, valuelen, 1);
        return 0;
    }
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int v = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            v = v * 10 + (value[i] - '0');
        st->head.status = v;
        return 0;
    }
    if (namelen && name[0] != ':')
        http_head_add(&st->head, (const char *)name, namelen, (const char *)value, valuelen, 1);
    return 0;
}

static void on_response_headers(struct h2u *s, struct h2u_stream *st, const nghttp2_frame *frame)
{
    int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    st->got_any = 1;
    if (st->in_trailers) {
        if (end)
            stream_complete(st);
        return;
    }
    if (st->head.status < 200) {
        /* Interim (100, 103): the final head follows. */
        http_head_free(&st->head);
        http_head_init(&st->head);
        return;
    }
    st->head_done = 1;
    int64_t clen = parse_content_length(&st->head);
    exchange_upstream_head(st->ex, &st->head, !end, end ? -1 : clen);
    if (end)
        stream_complete(st);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    struct h2u *s = user;
    struct h2u_stream *st = frame->hd.stream_id
        ? nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id) : NULL;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        s->ping_allowed = 1;
        if (st && st->ex) {
            touch_stream(st);
            on_response_headers(s, st, frame);
        }
        break;
    case NGHTTP2_DATA:
        s->ping_allowed = 1;
        if (st && st->ex && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            stream_complete(st);
        break;
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            s->settings_changed = 1;
        break;
    case NGHTTP2_GOAWAY: {
        const nghttp2_goaway *g = &frame->goaway;
        s->goaway_last = g->last_stream_id;
        if (g->error_code == NGHTTP2_ENHANCE_YOUR_CALM && g->opaque_data_len >= 14 &&
            memcmp(g->opaque_data, "too_many_pings", 14) == 0)
            pool_double_ping_backoff(pool_of(s));
        log_info("upstream %s server %s: GOAWAY (%s, last stream %d%s%.*s); draining %u streams",
                 up_name(s), srv_addr(s), nghttp2_http2_strerror(g->error_code), g->last_stream_id,
                 g->opaque_data_len ? ", " : "", (int)(g->opaque_data_len < 64 ? g->opaque_data_len : 64),
                 g->opaque_data ? (const char *)g->opaque_data : "", s->c->streams);
        pool_h2_drain(s->c, CLOSE_GOAWAY);
        break;
    }
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    struct h2u *s = user;
    struct h2u_stream *st = nghttp2_session_get_stream_user_data(ng, id);
    if (!st || !st->ex) {
        nghttp2_session_consume(ng, id, len);   /* nobody wants it: keep the window open */
        return 0;
    }
    st->got_any = 1;
    touch_stream(st);
    evbuffer_add(s->rx, data, len);
    exchange_upstream_body(st->ex, s->rx);
    evbuffer_drain(s->rx, evbuffer_get_length(s->rx));
    if (st->paused)
        st->unconsumed += len;
    else
        nghttp2_session_consume(ng, id, len);
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    if (frame->hd.type == NGHTTP2_HEADERS) {
        struct h2u_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
        if (st)
            st->sent_headers = 1;
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
    struct h2u *s = user;
    struct h2u_stream *st = nghttp2_session_get_stream_user_data(ng, id);
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    if (st->ex) {
        /* Not processed by the backend: refused, above a GOAWAY's last stream, or never
         * sent. Safe to send again, whatever the method. */
        int refused = !st->got_any && (code == NGHTTP2_REFUSED_STREAM || !st->sent_headers ||
                                       (s->goaway_last >= 0 && id > s->goaway_last));
        if (!refused)
            log_warn("upstream %s server %s: stream %d reset (%s) %s", up_name(s), srv_addr(s),
                     id, nghttp2_http2_strerror(code),
                     st->got_any ? "mid-response" : "before the response");
        stream_fail(st, refused ? UPERR_REFUSED : UPERR_RESET);
    }
    st->closed = 1;
    TAILQ_REMOVE(&s->streams, st, link);
    TAILQ_INSERT_TAIL(&s->dead, st, link);
    return 0;
}

static ssize_t body_read_cb(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    struct h2u_stream *st = src->ptr;
    size_t len = evbuffer_get_length(st->out);
    if (!len && !st->req_end) {
        st->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = len < length ? len : length;
    if (n)
        evbuffer_remove(st->out, buf, n);
    if (st->req_end && n == len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->req_trailers.nfields) {
            nghttp2_nv nv[64];
            size_t k = 0;
            for (uint32_t i = 0; i < st->req_trailers.nfields && k < 64; i++) {
                const struct http_field *f = &st->req_trailers.fields[i];
                nv[k++] = (nghttp2_nv){ (uint8_t *)f->name, (uint8_t *)f->value, f->name_len,
                                        f->value_len, NGHTTP2_NV_FLAG_NONE };
            }
            /* Names of h1 trailers may carry capitals; h2 wants lower case. */
            for (size_t i = 0; i < k; i++)
                for (size_t j = 0; j < nv[i].namelen; j++)
                    if (nv[i].name[j] >= 'A' && nv[i].name[j] <= 'Z')
                        nv[i].name[j] = (uint8_t)(nv[i].name[j] + 32);
            if (nghttp2_submit_trailer(ng, id, nv, k) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
    }
    if (st->was_high && evbuffer_get_length(st->out) < BODY_LOW_MARK) {
        st->was_high = 0;
        st->drained_pending = 1;
    }
    return (ssize_t)n;
}

static ssize_t send_unused(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *user)
{
    return NGHTTP2_ERR_WOULDBLOCK;   /* we use nghttp2_session_mem_send */
}

/* ---- I/O --------------------------------------------------------------------------- */

static void conn_failed(struct h2u *s, enum close_reason why)
{
    if (s->c->state != UC_CLOSED)
        pool_close(s->c, why);
}

static void flush(struct h2u *s)
{
    if (s->c->state == UC_CLOSED || !s->c->bev)
        return;
    if (s->in_ng) {
        s->want_flush = 1;
        return;
    }
    struct outbatch b;
    outbatch_init(&b, bufferevent_get_output(s->c->bev));
    size_t queued = evbuffer_get_length(b.out);
    s->in_ng = 1;
    int err = 0;
    while (queued + outbatch_pending(&b) < OUT_HIGH_MARK) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(s->ng, &data);
        if (n < 0) {
            log_warn("upstream %s server %s: h2: %s", up_name(s), srv_addr(s), nghttp2_strerror((int)n));
            err = 1;
            break;
        }
        if (n == 0)
            break;
        outbatch_add(&b, data, (size_t)n);
    }
    outbatch_flush(&b);
    s->in_ng = 0;
    s->want_flush = 0;
    if (err) {
        conn_failed(s, CLOSE_ERROR);
        return;
    }
    settle(s);
}

/* Requests start, and their bodies arrive, from the client side's callbacks, often for many
 * streams in one loop turn: their frames are serialized together once that turn is done. */
static void flush_soon(struct h2u *s)
{
    if (s->flush_pending)
        return;
    s->flush_pending = 1;
    event_active(s->flush_ev, 0, 0);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct h2u *s = arg;
    s->flush_pending = 0;
    flush(s);
}

/* Applies what nghttp2 reported: streams ended (pool capacity), SETTINGS (capacity),
 * request bodies drained (the client may send more). */
static void settle(struct h2u *s)
{
    if (s->settling || s->in_ng)
        return;
    s->settling = 1;
    struct upconn *c = s->c;
    if (s->settings_changed && c->state != UC_CLOSED) {
        s->settings_changed = 0;
        uint32_t peer = nghttp2_session_get_remote_settings(s->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
        uint32_t cap = pool_upstream(c->pool)->max_concurrent_streams;
        c->max_streams = peer < cap ? peer : cap;
        c->h2_ready = 1;
        pool_h2_update(c);
    }
    struct h2u_stream *st, *next;
    for (st = TAILQ_FIRST(&s->streams); st; st = next) {
        next = TAILQ_NEXT(st, link);
        if (st->drained_pending && st->ex) {
            st->drained_pending = 0;
            exchange_upstream_drained(st->ex);
        }
    }
    while ((st = TAILQ_FIRST(&s->dead))) {
        TAILQ_REMOVE(&s->dead, st, link);
        stream_free(st);
        pool_stream_done(c);
    }
    s->settling = 0;
    if (s->want_flush && c->state != UC_CLOSED)
        flush(s);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct upconn *c = arg;
    struct h2u *s = c->proto;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    if (!len || c->state == UC_CLOSED)
        return;
    s->ping_outstanding = 0;   /* any frame proves the peer alive */
    arm_read_idle(s);
    const uint8_t *data = evbuffer_pullup(in, -1);
    s->in_ng = 1;
    ssize_t n = nghttp2_session_mem_recv(s->ng, data, len);
    s->in_ng = 0;
    if (n < 0) {
        log_warn("upstream %s server %s: h2 protocol error from the backend: %s", up_name(s),
                 srv_addr(s), nghttp2_strerror((int)n));
        conn_failed(s, CLOSE_ERROR);
        return;
    }
    if (c->state == UC_CLOSED)
        return;
    evbuffer_drain(in, (size_t)n);
    settle(s);
    if (c->state == UC_CLOSED)
        return;
    flush(s);
    if (c->state != UC_CLOSED && !nghttp2_session_want_read(s->ng) &&
        !nghttp2_session_want_write(s->ng))
        conn_failed(s, s->goaway_last >= 0 ? CLOSE_GOAWAY : CLOSE_ERROR);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct upconn *c = arg;
    if (c->state != UC_CLOSED)
        flush(c->proto);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct upconn *c = arg;
    struct h2u *s = c->proto;
    if (c->state == UC_CLOSED)
        return;
    if (what & BEV_EVENT_EOF) {
        /* Process what arrived before the close first. */
        read_cb(bev, c);
        if (c->state == UC_CLOSED)
            return;
    }
    if (c->state == UC_IDLE) {
        pool_idle_lost(c, (what & BEV_EVENT_EOF) != 0);
        return;
    }
    char why[160];
    const char *tls = updial_tls_error(c, why, sizeof why);
    if (what & BEV_EVENT_TIMEOUT)
        log_warn("upstream %s server %s: h2 send timed out", up_name(s), srv_addr(s));
    else if ((c->streams && s->goaway_last < 0) || tls)
        log_warn("upstream %s server %s: h2 connection %s with %u streams open%s%s", up_name(s),
                 srv_addr(s), (what & BEV_EVENT_EOF) ? "closed" : "failed", c->streams,
                 tls ? ": " : "", tls ? tls : "");
    conn_failed(s, s->goaway_last >= 0 ? CLOSE_GOAWAY
                   : (what & BEV_EVENT_EOF) && !c->streams ? CLOSE_PEER : CLOSE_ERROR);
}

/* ---- upconn_ops -------------------------------------------------------------------- */

static int h2u_init(struct upconn *c)
{
    const struct cfg_upstream *up = pool_upstream(c->pool);
    struct worker *w = pool_worker(c->pool);
    struct h2u *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    c->proto = s;
    s->c = c;
    s->goaway_last = -1;
    s->ping_allowed = 1;
    TAILQ_INIT(&s->streams);
    TAILQ_INIT(&s->dead);
    s->rx = evbuffer_new();
    s->ping_timer = evtimer_new(w->base, ping_timer_cb, s);
    s->flush_ev = event_new(w->base, -1, 0, flush_cb, s);
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    if (!s->rx || !s->ping_timer || !s->flush_ev || nghttp2_session_callbacks_new(&cbs) != 0 ||
        nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return -1;
    }
    nghttp2_session_callbacks_set_send_callback(cbs, send_unused);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    uint32_t guess = up->max_concurrent_streams < 100 ? up->max_concurrent_streams : 100;
    nghttp2_option_set_peer_max_concurrent_streams(opt, guess);
    nghttp2_option_set_no_closed_streams(opt, 1);   /* no priority tree to keep them for */
    int r = nghttp2_session_client_new3(&s->ng, cbs, s, opt, bc_nghttp2_mem());
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (r != 0)
        return -1;
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, up->buffer_size },
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 0 },   /* no pushed streams */
    };
    if (nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, 3) != 0 ||
        nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0)
        return -1;
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    s->io = updial_io(c, read_cb, write_cb, event_cb);
    if (s->io)
        sockio_read(s->io, 1);
    else
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    arm_read_idle(s);
    flush(s);
    return 0;
}

/* <v> (not NUL-terminated) holds <word>, case-insensitively. */
static int has_token(const char *v, size_t n, const char *word)
{
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= n; i++)
        if (strncasecmp(v + i, word, w) == 0)
            return 1;
    return 0;
}

/* Request head -> HTTP/2 header list. Connection-specific fields go (RFC 9113 §8.2.2),
 * Host becomes :authority, TE only as "trailers"; <scratch> holds X-Forwarded-For and
 * Content-Length. */
static size_t build_request(struct h2u *s, struct exchange *ex, nghttp2_nv *nv, char *scratch,
                            size_t scap, int *has_body)
{
    const struct http_head *req = exchange_request_head(ex);
    size_t n = 0, used = 0;
    int64_t clen = -1;
    *has_body = exchange_request_has_body(ex, &clen);
#define NV(N, NL, V, VL) \
    nv[n++] = (nghttp2_nv){ (uint8_t *)(N), (uint8_t *)(V), (NL), (VL), NGHTTP2_NV_FLAG_NONE }
    NV(":method", 7, req->method, req->method_len);
    const char *scheme = s->c->ssl ? "https" : "http";
    NV(":scheme", 7, scheme, strlen(scheme));
    const char *auth = req->authority ? req->authority : pool_server(s->c->pool)->address;
    NV(":authority", 10, auth, req->authority ? req->authority_len : strlen(auth));
    NV(":path", 5, req->path, req->path_len);
    int te_trailers = 0;
    for (uint32_t i = 0; i < req->nfields && n < MAX_NV - 6; i++) {
        const struct http_field *f = &req->fields[i];
        if (h1_name_eq(f->name, f->name_len, "te")) {
            te_trailers |= has_token(f->value, f->value_len, "trailers");
            continue;
        }
        if (h1_request_field_rewritten(req, f))
            continue;
        NV(f->name, f->name_len, f->value, f->value_len);   /* nghttp2 lower-cases copied names */
    }
    if (te_trailers)
        NV("te", 2, "trailers", 8);
    /* X-Forwarded-For: the client's list plus the client, as for HTTP/1.1. */
    size_t xstart = used;
    for (uint32_t i = 0; i < req->nfields; i++) {
        const struct http_field *f = &req->fields[i];
        if (h1_name_eq(f->name, f->name_len, "x-forwarded-for") && used + f->value_len + 2 < scap) {
            memcpy(scratch + used, f->value, f->value_len);
            used += f->value_len;
            scratch[used++] = ',';
            scratch[used++] = ' ';
        }
    }
    const char *ip = exchange_client_ip(ex);
    size_t iplen = strlen(ip);
    if (used + iplen < scap) {
        /* <scratch> holds counted strings (nghttp2_nv has lengths), not NUL-terminated ones. */
        memcpy(scratch + used, ip, iplen);   /* NOLINT(bugprone-not-null-terminated-result) */
        used += iplen;
        NV("x-forwarded-for", 15, scratch + xstart, used - xstart);
    }
    const char *proto = req->scheme ? req->scheme : "http";
    NV("x-forwarded-proto", 17, proto, req->scheme ? req->scheme_len : 4);
    if (*has_body && clen >= 0) {
        int k = snprintf(scratch + used, scap - used, "%lld", (long long)clen);
        if (k > 0 && used + (size_t)k < scap)
            NV("content-length", 14, scratch + used, (size_t)k);   /* the last use of <scratch> */
    }
#undef NV
    return n;
}

static void *h2u_start(struct upconn *c, struct exchange *ex)
{
    struct h2u *s = c->proto;
    if (c->state == UC_CLOSED || c->no_new_streams)
        return NULL;
    struct h2u_stream *st = bc_calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->s = s;
    st->ex = ex;
    st->reused = c->requests > 0;
    http_head_init(&st->head);
    http_head_init(&st->trailers);
    http_head_init(&st->req_trailers);
    st->read_timeout_ms = exchange_read_timeout_ms(ex);
    st->out = evbuffer_new();
    if (st->read_timeout_ms)
        st->timer.ev = evtimer_new(pool_worker(c->pool)->base, stream_timer_cb, st);
    nghttp2_nv nv[MAX_NV];
    char scratch[16384];
    int has_body = 0;
    size_t n = build_request(s, ex, nv, scratch, sizeof scratch, &has_body);
    st->has_body = has_body;
    nghttp2_data_provider prd = { .source.ptr = st, .read_callback = body_read_cb };
    int32_t id = (!st->out || (st->read_timeout_ms && !st->timer.ev))
        ? NGHTTP2_ERR_NOMEM : nghttp2_submit_request(s->ng, NULL, nv, n, has_body ? &prd : NULL, st);
    if (id < 0) {
        if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE)
            pool_h2_drain(c, CLOSE_LIMIT_REQUESTS);
        else
            log_warn("upstream %s server %s: cannot start a stream: %s", up_name(s), srv_addr(s),
                     nghttp2_strerror(id));
        stream_free(st);
        return NULL;
    }
    st->id = id;
    if (!has_body)
        st->req_end = 1;
    TAILQ_INSERT_TAIL(&s->streams, st, link);
    pool_stream_opened(c);
    touch_stream(st);
    flush_soon(s);
    return st;
}

static void h2u_send_body(struct upconn *c, void *p, struct evbuffer *data)
{
    struct h2u_stream *st = p;
    struct h2u *s = c->proto;
    if (st->closed || st->req_end) {
        evbuffer_drain(data, evbuffer_get_length(data));
        return;
    }
    evbuffer_add_buffer(st->out, data);
    if (evbuffer_get_length(st->out) >= BODY_LOW_MARK)
        st->was_high = 1;
    if (st->deferred) {
        st->deferred = 0;
        nghttp2_session_resume_data(s->ng, st->id);
    }
    flush_soon(s);
}

static void h2u_send_end(struct upconn *c, void *p, const struct http_head *trailers)
{
    struct h2u_stream *st = p;
    struct h2u *s = c->proto;
    if (st->closed || st->req_end)
        return;
    st->req_end = 1;
    for (uint32_t i = 0; trailers && i < trailers->nfields; i++) {
        const struct http_field *f = &trailers->fields[i];
        if (!h1_is_hop_by_hop(f->name, f->name_len))
            http_head_add(&st->req_trailers, f->name, f->name_len, f->value, f->value_len, 1);
    }
    if (st->deferred) {
        st->deferred = 0;
        nghttp2_session_resume_data(s->ng, st->id);
    }
    flush_soon(s);
}

static size_t h2u_output_pending(struct upconn *c, void *p)
{
    struct h2u_stream *st = p;
    return evbuffer_get_length(st->out);
}

static void h2u_pause_response(struct upconn *c, void *p, int pause)
{
    struct h2u_stream *st = p;
    struct h2u *s = c->proto;
    st->paused = pause ? 1 : 0;
    if (!pause && st->unconsumed && !st->closed) {
        nghttp2_session_consume(s->ng, st->id, st->unconsumed);
        st->unconsumed = 0;
        flush_soon(s);
    }
}

static void h2u_abort(struct upconn *c, void *p)
{
    struct h2u_stream *st = p;
    struct h2u *s = c->proto;
    st->ex = NULL;
    if (st->timer.ev)
        deadline_clear(&st->timer);
    if (st->closed || c->state == UC_CLOSED)
        return;
    /* The client went away: cancel the stream, keep the connection. */
    nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    if (st->unconsumed) {
        nghttp2_session_consume(s->ng, st->id, st->unconsumed);
        st->unconsumed = 0;
    }
    flush_soon(s);
}

static void h2u_watch_idle(struct upconn *c)
{
    /* Reading never stops on an h2 connection: closes, GOAWAY and PINGs are seen anyway. */
}

static int h2u_seems_alive(struct upconn *c, int cheap)
{
    return c->state != UC_CLOSED && !c->no_new_streams;
}

/* The pool closes the connection: every stream still attached fails. */
static void h2u_closing(struct upconn *c)
{
    struct h2u *s = c->proto;
    updial_io_done(c, s->io);   /* before the pool releases the bufferevent */
    s->io = NULL;
    if (s->ping_timer)
        event_del(s->ping_timer);
    struct h2u_stream *st;
    while ((st = TAILQ_FIRST(&s->streams))) {
        TAILQ_REMOVE(&s->streams, st, link);
        nghttp2_session_set_stream_user_data(s->ng, st->id, NULL);
        st->closed = 1;
        int refused = !st->got_any && (!st->sent_headers ||
                                       (s->goaway_last >= 0 && st->id > s->goaway_last));
        stream_fail(st, refused ? UPERR_REFUSED : UPERR_RESET);
        TAILQ_INSERT_TAIL(&s->dead, st, link);
    }
    while ((st = TAILQ_FIRST(&s->dead))) {
        TAILQ_REMOVE(&s->dead, st, link);
        stream_free(st);
        pool_stream_done(c);
    }
}

static void h2u_free(struct upconn *c)
{
    struct h2u *s = c->proto;
    if (!s)
        return;
    struct h2u_stream *st;
    while ((st = TAILQ_FIRST(&s->streams))) {
        TAILQ_REMOVE(&s->streams, st, link);
        stream_free(st);
    }
    while ((st = TAILQ_FIRST(&s->dead))) {
        TAILQ_REMOVE(&s->dead, st, link);
        stream_free(st);
    }
    nghttp2_session_del(s->ng);
    updial_io_done(c, s->io);
    if (s->ping_timer)
        event_free(s->ping_timer);
    if (s->flush_ev)
        event_free(s->flush_ev);
    if (s->rx)
        evbuffer_free(s->rx);
    free(s);
    c->proto = NULL;
}

const struct upconn_ops h2u_ops = {
    .init = h2u_init,
    .start = h2u_start,
    .send_body = h2u_send_body,
    .send_end = h2u_send_end,
    .output_pending = h2u_output_pending,
    .pause_response = h2u_pause_response,
    .abort = h2u_abort,
    .watch_idle = h2u_watch_idle,
    .seems_alive = h2u_seems_alive,
    .closing = h2u_closing,
    .free = h2u_free,
};

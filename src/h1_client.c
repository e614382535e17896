/* Upstream HTTP/1.1 connection. One exchange at a time; the response is parsed with the same
 * strict parser as requests, and the connection goes back to the pool only when both
 * messages were framed exactly and nothing unexpected arrived. */
#include "h1_client.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "deadline.h"
#include "h1_parse.h"
#include "h1_write.h"
#include "log.h"
#include "sockio.h"
#include "updial.h"
#include "worker.h"

#define RESP_HEAD_MAX ((size_t)64 * 1024)
#define OUT_LOW_MARK ((size_t)64 * 1024)
#define IN_HIGH_MARK ((size_t)256 * 1024)

enum resp_state {
    RS_HEAD,          /* waiting for the status line and fields */
    RS_LENGTH,        /* Content-Length body */
    RS_CHUNKED,       /* chunked body */
    RS_TRAILERS,      /* after the last chunk */
    RS_UNTIL_CLOSE,   /* body ends at EOF: never reusable */
    RS_DONE,
};

struct h1c {
    enum resp_state rs;
    uint64_t remaining;
    struct h1_chunked ck;
    int req_chunked;        /* request body sent with chunked coding */
    int req_end_queued;     /* the whole request is in the output buffer */
    int got_bytes;          /* any response byte seen */
    int conn_close;         /* the backend will not keep the connection */
    int head_request;
    int reused;
    uint64_t idle_age_ms;   /* how long it idled before this exchange */
    int resp_paused;
    struct http_head trailers;
    struct evbuffer *tmp;
    struct sockio *io;     /* ferry's own socket I/O (updial_io); NULL: the bufferevent's */
};

static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

static void set_timeouts(struct upconn *c, uint64_t read_ms, uint64_t write_ms)
{
    struct h1c *h = c->proto;
    if (h->io) {
        /* The send timeout of a pool's connections never changes: set once, by updial_io. */
        sockio_set_read_timeout(h->io, read_ms);
        return;
    }
    struct timeval r = ms_timeval(read_ms);
    struct timeval w = ms_timeval(write_ms);
    bufferevent_set_timeouts(c->bev, read_ms ? &r : NULL, write_ms ? &w : NULL);
}

static void reading(struct upconn *c, int on)
{
    struct h1c *h = c->proto;
    if (h->io)
        sockio_read(h->io, on);
    else if (on)
        bufferevent_enable(c->bev, EV_READ);
    else
        bufferevent_disable(c->bev, EV_READ);
}

static int h1c_init(struct upconn *c)
{
    struct h1c *h = calloc(1, sizeof *h);
    if (!h)
        return -1;
    c->proto = h;
    http_head_init(&h->trailers);
    if (!(h->tmp = evbuffer_new()))
        return -1;
    h->io = updial_io(c, read_cb, write_cb, event_cb);
    bufferevent_setwatermark(c->bev, EV_WRITE, OUT_LOW_MARK, 0);
    bufferevent_setwatermark(c->bev, EV_READ, 0, IN_HIGH_MARK);
    return 0;
}

/* Before the pool frees the bufferevent. */
static void h1c_closing(struct upconn *c)
{
    struct h1c *h = c->proto;
    if (h) {
        updial_io_done(c, h->io);
        h->io = NULL;
    }
}

static void h1c_free(struct upconn *c)
{
    struct h1c *h = c->proto;
    if (!h)
        return;
    http_head_free(&h->trailers);
    if (h->tmp)
        evbuffer_free(h->tmp);
    updial_io_done(c, h->io);
    free(h);
    c->proto = NULL;
}

static void write_request_head(struct upconn *c, struct exchange *ex)
{
    struct h1c *h = c->proto;
    int64_t clen = -1;
    int has_body = exchange_request_has_body(ex, &clen);
    h1_write_request_head(bufferevent_get_output(c->bev), exchange_request_head(ex), has_body,
                          clen, exchange_client_ip(ex), pool_server(c->pool)->address,
                          &h->req_chunked);
}

static void *h1c_start(struct upconn *c, struct exchange *ex)
{
    struct h1c *h = c->proto;
    const struct http_head *req = exchange_request_head(ex);
    h->reused = c->requests > 0;
    h->idle_age_ms = h->reused ? now_ms() - c->idle_since_ms : 0;
    c->requests++;
    c->ex = ex;
    h->rs = RS_HEAD;
    h->got_bytes = 0;
    h->conn_close = 0;
    h->req_end_queued = 0;
    h->resp_paused = 0;
    h->head_request = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
    http_head_free(&h->trailers);
    write_request_head(c, ex);
    set_timeouts(c, exchange_read_timeout_ms(ex), pool_upstream(c->pool)->send_timeout_ms);
    if (h->io)
        sockio_read(h->io, 1);
    else
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    return c;
}

static void h1c_send_body(struct upconn *c, void *st, struct evbuffer *data)
{
    struct h1c *h = c->proto;
    if (evbuffer_get_length(data))
        h1_write_body(bufferevent_get_output(c->bev), data, h->req_chunked);
}

static void finish_response(struct upconn *c);

static void h1c_send_end(struct upconn *c, void *st, const struct http_head *trailers)
{
    struct h1c *h = c->proto;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (h->req_chunked)
        h1_write_last_chunk(out, trailers);
    h->req_end_queued = 1;
}

static size_t h1c_output_pending(struct upconn *c, void *st)
{
    return c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

static void h1c_pause_response(struct upconn *c, void *st, int pause)
{
    struct h1c *h = c->proto;
    if (!c->bev || h->resp_paused == pause)
        return;
    h->resp_paused = pause;
    if (pause)
        reading(c, 0);
    else {
        reading(c, 1);
        /* Bytes may already wait in the input buffer, or the response may be complete: no
         * new read event would announce either. Deferred, because we are inside the client
         * side's callback and must not re-enter the exchange from here. */
        if (h->io)
            sockio_trigger_read(h->io);
        else
            bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
    }
}

static void h1c_abort(struct upconn *c, void *st)
{
    c->ex = NULL;
    pool_close(c, CLOSE_ABORT);
}

static void h1c_watch_idle(struct upconn *c)
{
    set_timeouts(c, 0, 0);
    reading(c, 1);
}

static int h1c_seems_alive(struct upconn *c, int cheap)
{
    if (!c->bev || evbuffer_get_length(bufferevent_get_input(c->bev)))
        return 0;
    if (cheap)
        return 1;
    char b;
    ssize_t r = recv(updial_fd(c), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r > 0)
        return c->ssl != NULL;   /* TLS: a record (a late ticket?) the loop has not read */
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* The exchange failed on this connection: detach, close, tell the exchange. */
static void fail(struct upconn *c, enum upstream_error err)
{
    struct h1c *h = c->proto;
    struct exchange *ex = c->ex;
    c->ex = NULL;
    if (h->reused && !h->got_bytes && (err == UPERR_RESET))
        pool_learn_race(c, h->idle_age_ms);
    pool_close(c, CLOSE_ERROR);
    if (ex)
        exchange_upstream_error(ex, err, 1, h->got_bytes, h->reused);
}

static void finish_response(struct upconn *c)
{
    struct h1c *h = c->proto;
    struct exchange *ex = c->ex;
    int stray = evbuffer_get_length(bufferevent_get_input(c->bev)) > 0;
    int reusable = !h->conn_close && h->req_end_queued && !stray;
    enum close_reason why = h->conn_close ? CLOSE_PEER : CLOSE_ERROR;
    if (!h->req_end_queued)
        why = CLOSE_ABORT;
    struct http_head tr = h->trailers;   /* moved: release may start another exchange */
    http_head_init(&h->trailers);
    h->rs = RS_DONE;
    set_timeouts(c, 0, 0);
    c->ex = NULL;
    pool_release(c, reusable, why);
    if (ex)
        exchange_upstream_end(ex, tr.nfields ? &tr : NULL);
    http_head_free(&tr);
}

static int parse_head(struct upconn *c, struct evbuffer *in)
{
    struct h1c *h = c->proto;
    size_t len = evbuffer_get_length(in);
    size_t n = len < RESP_HEAD_MAX ? len : RESP_HEAD_MAX;
    const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)n);
    struct h1_response resp;
    struct h1_limits lim = { RESP_HEAD_MAX, RESP_HEAD_MAX, H1_MAX_HEADERS };
    const char *why = NULL;
    h->got_bytes = 1;
    int r = h1_parse_response(buf, n, &lim, h->head_request, 0, &resp, &why);
    if (r == H1_INCOMPLETE)
        return 0;
    if (r < 0) {
        log_warn("upstream %s server %s: invalid response: %s", pool_upstream(c->pool)->name,
                 pool_server(c->pool)->address, why ? why : "malformed");
        fail(c, UPERR_BAD_RESPONSE);
        return -1;
    }
    if (resp.msg.body_kind == H1_BODY_CHUNKED) {
        /* "gzip, chunked": we de-chunk, and would have to re-announce the other coding;
         * no backend we front does this, so refuse rather than pass mislabelled bytes. */
        for (size_t i = 0; i < resp.msg.num_headers; i++) {
            const struct h1_header *f = &resp.msg.headers[i];
            if (h1_name_eq(f->name, f->name_len, "transfer-encoding") &&
                !(f->value_len == 7 && strncasecmp(f->value, "chunked", 7) == 0)) {
                log_warn("upstream %s server %s: unsupported transfer coding in response",
                         pool_upstream(c->pool)->name, pool_server(c->pool)->address);
                fail(c, UPERR_BAD_RESPONSE);
                return -1;
            }
        }
    }
    if (resp.status < 200) {
        evbuffer_drain(in, (size_t)r);
        if (resp.status == 101) {
            log_warn("upstream %s server %s: unexpected 101 Switching Protocols",
                     pool_upstream(c->pool)->name, pool_server(c->pool)->address);
            fail(c, UPERR_BAD_RESPONSE);
            return -1;
        }
        return 1;   /* interim response (100, 103): the final one follows */
    }
    /* The head points into the input buffer, not copied: the downstream writes (HTTP/1) or
     * copies (nghttp2) it before exchange_upstream_head returns, and the bytes are drained
     * only then. */
    struct http_head head;
    http_head_init(&head);
    head.status = resp.status;
    head.version_minor = resp.msg.version_minor;
    head.reason = resp.reason;
    head.reason_len = (uint32_t)resp.reason_len;
    for (size_t i = 0; i < resp.msg.num_headers; i++) {
        const struct h1_header *f = &resp.msg.headers[i];
        http_head_add(&head, f->name, f->name_len, f->value, f->value_len, 0);
    }
    h->conn_close = h1_message_closes(&resp.msg);
    if (resp.msg.keep_alive_timeout > 0)
        c->hint_idle_ms = (uint64_t)resp.msg.keep_alive_timeout * 1000;

    int has_body = 1;
    int64_t clen = -1;
    switch (resp.msg.body_kind) {
    case H1_BODY_NONE:
        has_body = 0;
        h->rs = RS_DONE;
        break;
    case H1_BODY_LENGTH:
        clen = (int64_t)resp.msg.content_length;
        h->remaining = resp.msg.content_length;
        h->rs = RS_LENGTH;
        break;
    case H1_BODY_CHUNKED:
        h1_chunked_init(&h->ck);
        h->rs = RS_CHUNKED;
        break;
    case H1_BODY_UNTIL_CLOSE:
        h->conn_close = 1;
        h->rs = RS_UNTIL_CLOSE;
        break;
    }
    if (h->rs == RS_LENGTH && h->remaining == 0)
        h->rs = RS_DONE;
    exchange_upstream_head(c->ex, &head, has_body, clen);
    http_head_free(&head);
    if (c->state == UC_CLOSED)
        return -1;
    evbuffer_drain(in, (size_t)r);
    return 1;
}

static void deliver(struct upconn *c)
{
    struct h1c *h = c->proto;
    if (evbuffer_get_length(h->tmp) && c->ex)
        exchange_upstream_body(c->ex, h->tmp);
    evbuffer_drain(h->tmp, evbuffer_get_length(h->tmp));
}

/* Decodes what the input holds of a chunked body. Returns -1 after a failure. */
static int read_chunked(struct upconn *c, struct evbuffer *in)
{
    struct h1c *h = c->proto;
    size_t len = evbuffer_get_length(in);
    const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)len);
    size_t off = 0;
    while (off < len && h->rs == RS_CHUNKED) {
        size_t used = 0, dlen = 0;
        const char *data = NULL, *why = NULL;
        enum h1_chunk_event e = h1_chunked_decode(&h->ck, buf + off, len - off, &used, &data, &dlen, &why);
        off += used;
        if (e == H1_CHUNK_DATA)
            evbuffer_add(h->tmp, data, dlen);
        else if (e == H1_CHUNK_LAST)
            h->rs = RS_TRAILERS;
        else if (e == H1_CHUNK_ERROR) {
            log_warn("upstream %s server %s: bad chunked body: %s", pool_upstream(c->pool)->name,
                     pool_server(c->pool)->address, why ? why : "malformed");
            evbuffer_drain(in, off);
            deliver(c);
            fail(c, UPERR_BAD_RESPONSE);
            return -1;
        } else
            break;
    }
    if (h->rs == RS_TRAILERS && off < len) {
        struct h1_header f[32];
        size_t nf = 0;
        const char *why = NULL;
        int r = h1_parse_trailers(buf + off, len - off, RESP_HEAD_MAX, f, 32, &nf, &why);
        if (r < 0) {
            evbuffer_drain(in, off);
            deliver(c);
            fail(c, UPERR_BAD_RESPONSE);
            return -1;
        }
        if (r > 0) {
            for (size_t i = 0; i < nf; i++)
                http_head_add(&h->trailers, f[i].name, f[i].name_len, f[i].value, f[i].value_len, 1);
            off += (size_t)r;
            h->rs = RS_DONE;
        }
    }
    evbuffer_drain(in, off);
    deliver(c);
    return c->state == UC_CLOSED ? -1 : 0;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct upconn *c = arg;
    struct h1c *h = c->proto;
    struct evbuffer *in = bufferevent_get_input(bev);

    if (c->state == UC_IDLE) {
        pool_idle_lost(c, 0);   /* bytes nobody asked for: the framing can't be trusted */
        return;
    }
    while (c->state == UC_ACTIVE && c->ex) {
        size_t len = evbuffer_get_length(in);
        /* Finishing needs no reading: do it even while paused, or a response whose last
         * bytes filled the client's buffer would wait for a timeout. */
        if (h->rs == RS_DONE) {
            finish_response(c);
            return;
        }
        if (h->resp_paused || !len)
            return;
        if (h->rs == RS_HEAD) {
            int r = parse_head(c, in);
            if (r <= 0)
                return;
            continue;
        }
        if (h->rs == RS_LENGTH) {
            size_t n = len < h->remaining ? len : (size_t)h->remaining;
            evbuffer_remove_buffer(in, h->tmp, n);
            h->remaining -= n;
            if (!h->remaining)
                h->rs = RS_DONE;
            deliver(c);
        } else if (h->rs == RS_UNTIL_CLOSE) {
            evbuffer_remove_buffer(in, h->tmp, len);
            deliver(c);
        } else if (read_chunked(c, in) < 0 ||
                   (h->rs != RS_DONE && evbuffer_get_length(in) == len))
            return;   /* after a failure; or nothing consumed: wait for more */
    }
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct upconn *c = arg;
    if (c->state == UC_ACTIVE && c->ex)
        exchange_upstream_drained(c->ex);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct upconn *c = arg;
    struct h1c *h = c->proto;
    if (c->state == UC_IDLE) {
        pool_idle_lost(c, (what & BEV_EVENT_EOF) != 0);
        return;
    }
    if (c->state != UC_ACTIVE || !c->ex) {
        pool_close(c, CLOSE_ERROR);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        log_warn("upstream %s server %s: %s timed out", pool_upstream(c->pool)->name,
                 pool_server(c->pool)->address, (what & BEV_EVENT_READING) ? "read" : "send");
        fail(c, (what & BEV_EVENT_READING) ? UPERR_READ_TIMEOUT : UPERR_SEND_TIMEOUT);
        return;
    }
    if ((what & BEV_EVENT_EOF) && h->rs == RS_UNTIL_CLOSE) {
        evbuffer_remove_buffer(bufferevent_get_input(bev), h->tmp,
                               evbuffer_get_length(bufferevent_get_input(bev)));
        deliver(c);
        if (c->state == UC_ACTIVE && c->ex) {
            h->rs = RS_DONE;
            finish_response(c);
        }
        return;
    }
    if (what & BEV_EVENT_EOF) {
        /* Process what arrived before the close first: a complete response may be there. */
        read_cb(bev, c);
        if (c->state != UC_ACTIVE || !c->ex)
            return;
    }
    char why[160];
    const char *tls = updial_tls_error(c, why, sizeof why);
    log_warn("upstream %s server %s: connection %s %s%s%s", pool_upstream(c->pool)->name,
             pool_server(c->pool)->address, (what & BEV_EVENT_EOF) ? "closed" : "failed",
             h->got_bytes ? "mid-response" : "before the response", tls ? ": " : "",
             tls ? tls : "");
    fail(c, UPERR_RESET);
}

const struct upconn_ops h1c_ops = {
    .init = h1c_init,
    .start = h1c_start,
    .send_body = h1c_send_body,
    .send_end = h1c_send_end,
    .output_pending = h1c_output_pending,
    .pause_response = h1c_pause_response,
    .abort = h1c_abort,
    .watch_idle = h1c_watch_idle,
    .seems_alive = h1c_seems_alive,
    .closing = h1c_closing,
    .free = h1c_free,
};

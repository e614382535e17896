#include "h1_server.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "blockcache.h"
#include "deadline.h"
#include "exchange.h"
#include "h1_parse.h"
#include "h1_write.h"
#include "h2_server.h"
#include "linger.h"
#include "log.h"
#include "sockio.h"
#include "worker.h"

#define OUT_LOW_MARK ((size_t)64 * 1024)
#define IN_HIGH_MARK ((size_t)128 * 1024)
/* A plain connection idle this long gives back its bufferevent and sockio (see park). */
#define PARK_AFTER_MS 250

enum h1s_state {
    HS_IDLE,      /* between requests: keepalive_timeout runs (client_header_timeout first) */
    HS_HEAD,      /* part of a request head received: client_header_timeout runs */
    HS_BODY,      /* reading the request body: client_body_timeout between reads */
    HS_WAIT,      /* request read; the exchange is producing the response */
    HS_CLOSING,   /* flushing the last bytes, then close */
    HS_DEAD,      /* closed; memory freed on the next loop turn */
};

struct h1_session {
    struct ds_conn base;
    struct worker *w;
    struct listener_rt *l;
    struct bufferevent *bev;
    struct peer_addr peer;
    enum h1s_state state;
    struct exchange *ex;
    struct exchange *done_ex;    /* finished exchange, freed by the process event */
    uint32_t requests;
    uint64_t created_ms;

    /* request body decoding */
    enum h1_body_kind req_body;
    uint64_t req_remaining;
    uint64_t req_bytes;
    struct h1_chunked ck;
    int in_trailers;
    int req_paused;

    /* response encoding */
    int client_minor;            /* HTTP/1.<minor> of the current request */
    int head_request;
    int keep_alive;              /* this response leaves the connection open */
    int resp_chunked;
    int resp_started;
    int client_eof;
    int client_closes;           /* this request asked to close (or is HTTP/1.0 without
                                  * keep-alive): the client sends nothing after it */
    int close_at_once;           /* no lingering close needed (see process_cb) */
    int draining;
    int tls;
    enum ds_close_reason close_why;  /* counted when the connection ends */

    struct deadline timer;       /* idle / header deadline (see arm_timer) */
    struct event *process_ev;    /* deferred work: free the finished exchange, next request */
    struct evbuffer *tmp;        /* request body pieces on their way to the exchange */
    struct sockio *io;          /* plain TCP: ferry reads and writes the socket itself */

    /* Parking (see park): */
    TAILQ_ENTRY(h1_session) idle_link;   /* in the thread's idle list while <in_idle_list> */
    uint64_t idle_since_ms;
    int in_idle_list;
    int parked;                  /* process_ev waits for the client's next bytes or its close */
};

static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);
static void close_session(struct h1_session *s);

/* The header/idle deadline (client_header_timeout, then keepalive_timeout) moves with every
 * request: a lazy deadline timer. Returns now_ms(), or 0 for no deadline. */
static uint64_t arm_timer(struct h1_session *s, uint64_t ms)
{
    if (!ms) {
        deadline_clear(&s->timer);
        return 0;
    }
    uint64_t now = now_ms();
    deadline_set(&s->timer, now, ms);
    return now;
}

static void stop_timer(struct h1_session *s) { deadline_clear(&s->timer); }

/* Read timeouts change per request phase; the send timeout is set once, at attach_io (or
 * with each change when libevent does the I/O: bufferevent_set_timeouts sets both). */
static void set_read_timeout(struct h1_session *s, uint64_t ms)
{
    if (s->io) {
        sockio_set_read_timeout(s->io, ms);
        return;
    }
    struct timeval r = ms_timeval(ms), wt = ms_timeval(s->l->cfg->send_timeout_ms);
    bufferevent_set_timeouts(s->bev, ms ? &r : NULL, s->l->cfg->send_timeout_ms ? &wt : NULL);
}

static void reading(struct h1_session *s, int on)
{
    if (s->io)
        sockio_read(s->io, on);
    else if (on)
        bufferevent_enable(s->bev, EV_READ);
    else
        bufferevent_disable(s->bev, EV_READ);
}

static void trigger_read(struct h1_session *s)
{
    if (s->io)
        sockio_trigger_read(s->io);
    else
        bufferevent_trigger(s->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg);
static void process_cb(evutil_socket_t fd, short what, void *arg);

static const struct ds_conn_ops h1_conn_ops;

/* Gives <s> the bufferevent for its socket and ferry's own socket I/O: <tls>'s for TLS,
 * a new sockio for plain TCP (libevent's when none can be had). Reading starts. */
static void attach_io(struct h1_session *s, struct bufferevent *bev, struct sockio *tls)
{
    s->bev = bev;
    bufferevent_setwatermark(bev, EV_WRITE, OUT_LOW_MARK, 0);
    bufferevent_setwatermark(bev, EV_READ, 0, IN_HIGH_MARK);
    if (tls) {
        s->io = sockio_take(tls, read_cb, write_cb, event_cb, s, s->l->cfg->send_timeout_ms);
        return;
    }
    set_read_timeout(s, 0);   /* (and the send timeout) */
    s->io = sockio_attach(s->w->base, bev, 1, read_cb, write_cb, event_cb, s);
}

/* ---- parking ----
 * An idle keep-alive connection needs its socket, its timer and a read event; its
 * bufferevent (with two evbuffers and their callbacks) and its sockio are over 1 KiB that
 * only a request uses. A plain connection idle for PARK_AFTER_MS with nothing buffered
 * gives them back and waits with one read event; the client's next bytes (or its close)
 * bring them back. The delay keeps busy connections from paying for this per request.
 * Idle sessions of a thread queue in the order they became idle, so one timer finds those
 * due. TLS connections keep their state (OpenSSL's buffers are tied to the SSL object). */
TAILQ_HEAD(h1_idle_list, h1_session);
static __thread struct h1_idle_list idle_list;
static __thread struct event *park_timer;   /* pending while idle_list is not empty */
static __thread int park_timer_armed;

static void park_sweep_cb(evutil_socket_t fd, short what, void *arg);

static void arm_park_timer(uint64_t ms)
{
    struct timeval tv = ms_timeval(ms);
    evtimer_add(park_timer, &tv);
    park_timer_armed = 1;
}

static void idle_list_remove(struct h1_session *s)
{
    if (!s->in_idle_list)
        return;
    TAILQ_REMOVE(&idle_list, s, idle_link);
    s->in_idle_list = 0;
    if (TAILQ_EMPTY(&idle_list) && park_timer_armed) {
        event_del(park_timer);
        park_timer_armed = 0;
    }
}

/* <s> became idle at <now>: to the back of the queue. (Only plain sessions park.) */
static void idle_list_push(struct h1_session *s, uint64_t now)
{
    if (!s->io || s->tls)
        return;
    if (!park_timer) {
        TAILQ_INIT(&idle_list);
        if (!(park_timer = evtimer_new(s->w->base, park_sweep_cb, NULL)))
            return;
    }
    if (s->in_idle_list)
        TAILQ_REMOVE(&idle_list, s, idle_link);
    TAILQ_INSERT_TAIL(&idle_list, s, idle_link);
    s->in_idle_list = 1;
    s->idle_since_ms = now;
    if (!park_timer_armed)
        arm_park_timer(PARK_AFTER_MS);
}

/* A parked session waits with its process event watching the socket (no deferred work is
 * pending while idle); this puts it back to deferred work. */
static void unpark_event(struct h1_session *s)
{
    event_del(s->process_ev);
    event_assign(s->process_ev, s->w->base, -1, 0, process_cb, s);
    s->parked = 0;
    STAT_DEC(s->l->nparked);
}

static void unpark_cb(evutil_socket_t fd, short what, void *arg)
{
    struct h1_session *s = arg;
    unpark_event(s);
    struct bufferevent *bev = bufferevent_socket_new(s->w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        log_warn("client connection closed: out of memory for its buffers");
        close(fd);
        s->close_why = DSC_ERROR;
        close_session(s);
        return;
    }
    /* The waiting bytes (or the EOF) are announced to the sockio on the next loop turn. */
    attach_io(s, bev, NULL);
    idle_list_push(s, now_ms());
}

static void park(struct h1_session *s)
{
    evutil_socket_t fd = bufferevent_getfd(s->bev);
    event_assign(s->process_ev, s->w->base, fd, EV_READ, unpark_cb, s);
    if (event_add(s->process_ev, NULL) < 0) {
        event_assign(s->process_ev, s->w->base, -1, 0, process_cb, s);
        return;   /* stays as it is */
    }
    s->parked = 1;
    STAT_INC(s->l->nparked);
    sockio_free(s->io);
    s->io = NULL;
    bufferevent_setfd(s->bev, -1);   /* the socket stays open: it is the parked connection */
    bufferevent_free(s->bev);
    s->bev = NULL;
    if (s->tmp) {
        evbuffer_free(s->tmp);
        s->tmp = NULL;
    }
}

static int parkable(const struct h1_session *s)
{
    return s->state == HS_IDLE && s->io && !s->ex && !s->done_ex &&
           !evbuffer_get_length(bufferevent_get_input(s->bev)) &&
           !evbuffer_get_length(bufferevent_get_output(s->bev));
}

/* Connections opened in a burst go idle together: park them a batch per loop turn, so that
 * busy connections are not held up by thousands of parkings at once. */
#define PARK_BATCH 256

static void park_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    park_timer_armed = 0;
    uint64_t now = now_ms();
    struct h1_session *s;
    int n = 0;
    while ((s = TAILQ_FIRST(&idle_list)) && s->idle_since_ms + PARK_AFTER_MS <= now) {
        if (n++ == PARK_BATCH) {
            arm_park_timer(0);
            return;
        }
        TAILQ_REMOVE(&idle_list, s, idle_link);
        s->in_idle_list = 0;
        if (parkable(s))
            park(s);
        else if (s->state == HS_IDLE && s->io)
            idle_list_push(s, now);   /* e.g. its last response is still being written */
    }
    if (s)
        arm_park_timer(s->idle_since_ms + PARK_AFTER_MS - now);
}

void h1_server_thread_end(void)
{
    if (park_timer)
        event_free(park_timer);
    park_timer = NULL;
    park_timer_armed = 0;
}

struct h1_session *h1s_new(struct worker *w, struct listener_rt *l, struct bufferevent *bev,
                           const struct sockaddr *peer, struct sockio *tls,
                           struct ds_conn *replaces)
{
    struct h1_session *s = bc_calloc(1, sizeof *s);
    if (s) {
        s->timer.ev = evtimer_new(w->base, timer_cb, s);
        s->process_ev = event_new(w->base, -1, 0, process_cb, s);
    }
    if (!s || !s->timer.ev || !s->process_ev) {
        if (s && s->timer.ev)
            event_free(s->timer.ev);
        if (s && s->process_ev)
            event_free(s->process_ev);
        bc_free(s);
        conn_free(bev, tls);
        if (replaces)
            worker_conn_closed(w, l, replaces);
        return NULL;
    }
    s->base.ops = &h1_conn_ops;
    s->w = w;
    s->l = l;
    s->tls = tls != NULL;
    s->close_why = DSC_CLIENT_CLOSE;
    peer_addr_set(&s->peer, peer);
    s->created_ms = now_ms();
    attach_io(s, bev, tls);
    s->state = HS_IDLE;
    /* The first request gets client_header_timeout, as in nginx; later ones keepalive_timeout. */
    arm_timer(s, l->cfg->client_header_timeout_ms);
    if (replaces)
        worker_conn_replace(w, replaces, &s->base);
    else
        worker_conn_add(w, l, &s->base);
    if (evbuffer_get_length(bufferevent_get_input(s->bev)))
        read_cb(s->bev, s);
    else
        idle_list_push(s, s->created_ms);
    return s;
}

/* Sends a response of ferry's own and closes: used for protocol errors, where the rest of
 * the input cannot be framed any more. */
static void send_error_and_close(struct h1_session *s, int status, const char *why)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);
    char body[160];
    int n = snprintf(body, sizeof body, "%d %s\n", status, http_reason_phrase(status));
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                             "Connection: close\r\n\r\n%s",
                        status, http_reason_phrase(status), n, body);
    log_info("client request rejected with %d: %s", status, why ? why : "");
    s->close_why = DSC_ERROR;
    if (s->ex) {
        exchange_downstream_abort(s->ex);
        exchange_free(s->ex);
        s->ex = NULL;
    }
    s->state = HS_CLOSING;
    reading(s, 0);
    stop_timer(s);
    if (!evbuffer_get_length(out))
        close_session(s);
}

/* Whether this response may keep the connection open; if not, why it will close. After
 * client_closes is set for the request. */
static int wants_keep_alive(struct h1_session *s)
{
    const struct cfg_listener *c = s->l->cfg;
    if (s->draining || s->w->draining) {
        s->close_why = DSC_SHUTDOWN;
        return 0;
    }
    if (c->keepalive_timeout_ms == 0 || s->client_closes) {
        s->close_why = DSC_CLIENT_CLOSE;
        return 0;
    }
    if (c->keepalive_requests && s->requests >= c->keepalive_requests) {
        s->close_why = DSC_KEEPALIVE_REQUESTS;
        return 0;
    }
    if (c->keepalive_time_ms && now_ms() - s->created_ms >= c->keepalive_time_ms) {
        s->close_why = DSC_KEEPALIVE_TIME;
        return 0;
    }
    return 1;
}

/* Splits the request-target into authority and origin-form path (RFC 9112 §3.2). Returns 0,
 * or an HTTP status to reject with. */
static int set_target(struct http_head *h, const struct h1_request *r)
{
    const char *t = r->target;
    size_t n = r->target_len;
    const char *auth = r->host;
    size_t auth_len = r->host_len;
    if (n >= 7 && (strncasecmp(t, "http://", 7) == 0 || (n >= 8 && strncasecmp(t, "https://", 8) == 0))) {
        size_t skip = t[4] == ':' ? 7 : 8;
        const char *a = t + skip;
        const char *end = t + n;
        const char *p = memchr(a, '/', (size_t)(end - a));
        const char *q = memchr(a, '?', (size_t)(end - a));
        if (q && (!p || q < p))
            p = q;
        auth = a;
        auth_len = (size_t)((p ? p : end) - a);
        if (!auth_len || !h1_host_valid(auth, auth_len))
            return 400;   /* the authority becomes Host: the same rules */
        t = p ? p : "/";
        n = p ? (size_t)(end - p) : 1;
    } else if (n == 1 && t[0] == '*') {
        if (!(r->method_len == 7 && memcmp(r->method, "OPTIONS", 7) == 0))
            return 400;
    } else if (r->method_len == 7 && memcmp(r->method, "CONNECT", 7) == 0) {
        return 405;
    } else if (!n || t[0] != '/') {
        return 400;
    }
    if (n && t[0] == '?') {
        /* "http://host?q" has an empty path: it is "/?q" in origin form. */
        char *p = malloc(n + 1);
        if (!p)
            return 500;
        p[0] = '/';
        memcpy(p + 1, t, n);
        h->path = http_head_copy(h, p, n + 1);
        h->path_len = (uint32_t)(n + 1);
        free(p);
    } else {
        h->path = http_head_copy(h, t, n);
        h->path_len = (uint32_t)n;
    }
    if (auth) {
        h->authority = http_head_copy(h, auth, auth_len);
        h->authority_len = (uint32_t)auth_len;
    }
    return 0;
}

static void start_body_timeout(struct h1_session *s)
{
    set_read_timeout(s, s->l->cfg->client_body_timeout_ms);
}

static void read_body(struct h1_session *s);

static const struct downstream_ops h1s_ops;

/* The connection becomes HTTP/2: the bufferevent moves to the h2 session, which takes this
 * session's place in the worker's list; only our own memory is left to free. */
static struct bufferevent *hand_over(struct h1_session *s)
{
    struct bufferevent *bev = s->bev;
    idle_list_remove(s);
    sockio_free(s->io);
    s->io = NULL;
    s->bev = NULL;
    s->state = HS_DEAD;
    deadline_stop(&s->timer);
    event_active(s->process_ev, 0, 0);
    return bev;
}

/* A prior-knowledge h2c client starts with the connection preface instead of a request.
 * Returns 1 when the connection was handed over, -1 when more bytes are needed to tell. */
static int try_preface(struct h1_session *s, const char *buf, size_t len)
{
    size_t n = len < H2_PREFACE_LEN ? len : H2_PREFACE_LEN;
    if (memcmp(buf, H2_PREFACE, n) != 0)
        return 0;
    if (n < H2_PREFACE_LEN)
        return -1;
    h2s_new(s->w, s->l, hand_over(s), &s->peer.addr.sa, NULL, &s->base);   /* (plain only) */
    return 1;
}

/* RFC 7540 §3.2: "Upgrade: h2c" with exactly one HTTP2-Settings, named in Connection, on a
 * request without a body. Anything else is served as HTTP/1.1 (the Upgrade field is
 * hop-by-hop and dropped), which the RFC allows. */
static const struct http_field *h2c_upgrade_settings(const struct h1_session *s, const struct h1_request *r,
                                                     const struct http_head *h)
{
    if (!s->l->cfg->http2 || s->tls || s->requests || r->msg.version_minor != 1 ||
        !r->msg.has_upgrade || !r->msg.conn_upgrade || r->msg.body_kind != H1_BODY_NONE)
        return NULL;
    const struct http_field *up = http_head_get(h, "upgrade");
    const struct http_field *settings = http_head_get(h, "http2-settings");
    if (!up || !settings || !h1_list_has_token(up->value, up->value_len, "h2c") ||
        !h2_upgrade_settings_valid(settings->value, settings->value_len))
        return NULL;
    const struct http_field *conn = http_head_get(h, "connection");
    if (!conn || !h1_list_has_token(conn->value, conn->value_len, "http2-settings"))
        return NULL;
    for (uint32_t i = 0, n = 0; i < h->nfields; i++)
        if (h1_name_eq(h->fields[i].name, h->fields[i].name_len, "http2-settings") && ++n > 1)
            return NULL;
    return settings;
}

static void parse_head(struct h1_session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t len = evbuffer_get_length(in);
    if (!len)
        return;
    if (s->state == HS_IDLE) {
        s->state = HS_HEAD;
        arm_timer(s, s->l->cfg->client_header_timeout_ms);
    }
    const struct cfg_listener *c = s->l->cfg;
    size_t n = len < c->max_header_size + 4 ? len : c->max_header_size + 4;
    const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)n);
    if (s->requests == 0 && c->http2 && !s->tls) {
        int p = try_preface(s, buf, n);
        if (p > 0)
            return;
        if (p < 0 && !s->client_eof)
            return;
    }
    struct h1_request r;
    struct h1_limits lim = { c->max_header_size, c->max_request_line, c->max_headers };
    int status = 400;
    const char *why = NULL;
    int hl = h1_parse_request(buf, n, &lim, &r, &status, &why);
    if (hl == H1_INCOMPLETE) {
        if (s->client_eof)
            close_session(s);
        return;
    }
    if (hl < 0) {
        send_error_and_close(s, status, why);
        return;
    }

    struct http_head h;
    http_head_init(&h);
    h.method = http_head_copy(&h, r.method, r.method_len);
    h.method_len = (uint32_t)r.method_len;
    h.scheme = s->tls ? "https" : "http";
    h.scheme_len = s->tls ? 5 : 4;
    h.version_minor = r.msg.version_minor;
    int st = set_target(&h, &r);
    if (st) {
        http_head_free(&h);
        send_error_and_close(s, st, "unsupported request target");
        return;
    }
    for (size_t i = 0; i < r.msg.num_headers; i++) {
        const struct h1_header *f = &r.msg.headers[i];
        http_head_add(&h, f->name, f->name_len, f->value, f->value_len, 1);
    }
    if (c->client_max_body_size && r.msg.body_kind == H1_BODY_LENGTH &&
        r.msg.content_length > c->client_max_body_size) {
        http_head_free(&h);
        send_error_and_close(s, 413, "request body larger than client_max_body_size");
        return;
    }
    /* Request line for the access log: what the client sent, before we drain it. */
    /* (From the method on: empty lines may precede the request line, RFC 9112 §2.2.) */
    const char *rl_start = r.method;
    const char *eol = memchr(rl_start, '\r', (size_t)(buf + hl - rl_start));
    size_t rl_len = eol ? (size_t)(eol - rl_start) : r.method_len;

    const struct http_field *settings = h2c_upgrade_settings(s, &r, &h);
    if (settings) {
        char line[512];
        int ln = snprintf(line, sizeof line, "%.*s", (int)(rl_len < 500 ? rl_len : 500), rl_start);
        evbuffer_drain(in, (size_t)hl);
        evbuffer_add(bufferevent_get_output(s->bev),
                     "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", 71);
        s->requests++;
        h2s_upgrade(s->w, s->l, hand_over(s), &s->peer.addr.sa, &s->base, &h,
                    settings->value, settings->value_len, line, (size_t)ln);
        http_head_free(&h);
        return;
    }

    s->requests++;
    s->w->stats.ds_requests++;
    STAT_INC(listener_newest(s->l)->stats.requests_h1);
    s->client_minor = r.msg.version_minor;
    s->head_request = r.method_len == 4 && memcmp(r.method, "HEAD", 4) == 0;
    s->client_closes = h1_message_closes(&r.msg);
    s->keep_alive = wants_keep_alive(s);
    s->resp_started = 0;
    s->resp_chunked = 0;
    s->req_body = r.msg.body_kind;
    s->req_remaining = r.msg.content_length;
    s->req_bytes = 0;
    s->in_trailers = 0;
    h1_chunked_init(&s->ck);
    int has_body = r.msg.body_kind == H1_BODY_CHUNKED ||
                   (r.msg.body_kind == H1_BODY_LENGTH && r.msg.content_length > 0);
    int expect = r.msg.expect_continue && has_body && r.msg.version_minor == 1;
    stop_timer(s);

    struct exchange_init init = {
        .w = s->w, .listener = s->l, .ops = &h1s_ops, .session = s, .req = &h,
        .has_body = has_body,
        .content_length = r.msg.body_kind == H1_BODY_LENGTH ? (int64_t)r.msg.content_length : -1,
        .client = &s->peer, .request_line = rl_start,
        .request_line_len = rl_len,
    };
    /* The exchange copies the request line; drain only after it has. */
    s->state = has_body ? HS_BODY : HS_WAIT;
    if (has_body)
        start_body_timeout(s);
    else
        set_read_timeout(s, 0);
    struct exchange *ex = exchange_start(&init);
    evbuffer_drain(in, (size_t)hl);
    http_head_free(&h);
    if (!ex) {
        send_error_and_close(s, 500, "out of memory");
        return;
    }
    if (s->state == HS_DEAD)
        return;
    if (s->done_ex != ex)   /* it may have answered already (404, 503) */
        s->ex = ex;
    if (expect && !s->resp_started)
        evbuffer_add(bufferevent_get_output(s->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
    if (!has_body)
        exchange_request_end(ex, NULL);
    else
        read_body(s);
}

static void body_done(struct h1_session *s, const struct http_head *trailers)
{
    s->state = HS_WAIT;
    set_read_timeout(s, 0);
    if (s->ex)
        exchange_request_end(s->ex, trailers);
}

static void read_body(struct h1_session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    const struct cfg_listener *c = s->l->cfg;
    /* Made for the first body: most connections never carry one. */
    if (!s->tmp && !(s->tmp = evbuffer_new())) {
        send_error_and_close(s, 500, "out of memory");
        return;
    }
    while (s->state == HS_BODY && !s->req_paused && s->ex) {
        size_t len = evbuffer_get_length(in);
        if (!len)
            return;
        if (s->req_body == H1_BODY_LENGTH) {
            size_t n = len < s->req_remaining ? len : (size_t)s->req_remaining;
            evbuffer_remove_buffer(in, s->tmp, n);
            s->req_remaining -= n;
            exchange_request_body(s->ex, s->tmp);
            evbuffer_drain(s->tmp, evbuffer_get_length(s->tmp));
            if (!s->req_remaining)
                body_done(s, NULL);
            continue;
        }
        /* chunked */
        const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)len);
        size_t off = 0;
        while (off < len && !s->in_trailers) {
            size_t used = 0, dlen = 0;
            const char *data = NULL, *why = NULL;
            enum h1_chunk_event e = h1_chunked_decode(&s->ck, buf + off, len - off, &used, &data, &dlen, &why);
            off += used;
            if (e == H1_CHUNK_DATA) {
                evbuffer_add(s->tmp, data, dlen);
                s->req_bytes += dlen;
            } else if (e == H1_CHUNK_LAST) {
                s->in_trailers = 1;
            } else if (e == H1_CHUNK_ERROR) {
                evbuffer_drain(in, off);
                if (s->resp_started) {
                    close_session(s);
                } else
                    send_error_and_close(s, 400, why);
                return;
            } else
                break;
        }
        int finished = 0;
        struct http_head tr;
        http_head_init(&tr);
        if (s->in_trailers && off < len) {
            struct h1_header f[32];
            size_t nf = 0;
            const char *why = NULL;
            int r = h1_parse_trailers(buf + off, len - off, c->max_header_size, f, 32, &nf, &why);
            if (r < 0) {
                evbuffer_drain(in, off);
                send_error_and_close(s, 400, why);
                return;
            }
            if (r > 0) {
                for (size_t i = 0; i < nf; i++)
                    if (!h1_is_hop_by_hop(f[i].name, f[i].name_len))
                        http_head_add(&tr, f[i].name, f[i].name_len, f[i].value, f[i].value_len, 1);
                off += (size_t)r;
                finished = 1;
            }
        }
        evbuffer_drain(in, off);
        if (c->client_max_body_size && s->req_bytes > c->client_max_body_size) {
            http_head_free(&tr);
            evbuffer_drain(s->tmp, evbuffer_get_length(s->tmp));
            if (s->resp_started)
                close_session(s);
            else
                send_error_and_close(s, 413, "chunked body larger than client_max_body_size");
            return;
        }
        if (evbuffer_get_length(s->tmp))
            exchange_request_body(s->ex, s->tmp);
        evbuffer_drain(s->tmp, evbuffer_get_length(s->tmp));
        if (finished)
            body_done(s, &tr);
        http_head_free(&tr);
        if (!finished && off == 0)
            return;
    }
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct h1_session *s = arg;
    switch (s->state) {
    case HS_IDLE:
    case HS_HEAD:
        parse_head(s);
        break;
    case HS_BODY:
        read_body(s);
        break;
    default:
        break;   /* pipelined bytes wait for the current response */
    }
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct h1_session *s = arg;
    if (s->state == HS_CLOSING && !evbuffer_get_length(bufferevent_get_output(bev))) {
        close_session(s);
        return;
    }
    if (s->ex)
        exchange_downstream_drained(s->ex);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct h1_session *s = arg;
    if (what & BEV_EVENT_TIMEOUT) {
        if ((what & BEV_EVENT_READING) && s->state == HS_BODY && !s->resp_started) {
            send_error_and_close(s, 408, "client_body_timeout");
            return;
        }
        log_info("client %s timed out (%s)", s->state == HS_BODY ? "body" : "connection",
                 (what & BEV_EVENT_READING) ? "client_body_timeout" : "send_timeout");
        close_session(s);
        return;
    }
    s->close_why = (what & BEV_EVENT_EOF) && s->state == HS_IDLE ? DSC_CLIENT_CLOSE : DSC_ERROR;
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_WRITING)) {
        s->client_eof = 1;
        reading(s, 0);
        /* A client may half-close after its request and still read the response. */
        if (s->state == HS_WAIT || s->state == HS_CLOSING)
            return;
        if (s->state == HS_HEAD && evbuffer_get_length(bufferevent_get_input(bev))) {
            parse_head(s);
            return;
        }
    }
    close_session(s);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct h1_session *s = arg;
    if (!deadline_fired(&s->timer))
        return;
    if (s->state == HS_HEAD) {
        send_error_and_close(s, 408, "client_header_timeout");
        return;
    }
    if (s->state == HS_IDLE) {
        s->close_why = DSC_KEEPALIVE_TIMEOUT;
        close_session(s);
    }
}

/* Finishes a response: free the exchange, then close or go back for the next request. */
static void process_cb(evutil_socket_t fd, short what, void *arg)
{
    struct h1_session *s = arg;
    if (s->state == HS_DEAD) {
        exchange_free(s->done_ex);
        exchange_free(s->ex);
        if (s->tmp)
            evbuffer_free(s->tmp);
        event_free(s->timer.ev);
        event_free(s->process_ev);
        bc_free(s);
        return;
    }
    if (!s->done_ex)
        return;
    int body_left = s->state == HS_BODY;
    exchange_free(s->done_ex);
    s->done_ex = NULL;
    if (!s->keep_alive || body_left || s->client_eof || s->draining || s->w->draining) {
        if (s->client_eof)
            s->close_why = DSC_CLIENT_CLOSE;
        else if (s->draining || s->w->draining)
            s->close_why = DSC_SHUTDOWN;
        s->state = HS_CLOSING;
        /* The lingering close protects a response from the RST that bytes the client still
         * sends would cause. A plain-TCP client that asked to close, whose request was read
         * to its end and left nothing behind, sends none: close at once, as nginx does (the
         * FIN follows the response). TLS lingers anyway, to send close_notify. */
        s->close_at_once = s->client_closes && !body_left && !s->tls &&
                           !evbuffer_get_length(bufferevent_get_input(s->bev));
        reading(s, 0);
        if (!evbuffer_get_length(bufferevent_get_output(s->bev)))
            close_session(s);
        return;
    }
    s->state = HS_IDLE;
    set_read_timeout(s, 0);
    uint64_t now = arm_timer(s, s->l->cfg->keepalive_timeout_ms);
    reading(s, 1);
    if (evbuffer_get_length(bufferevent_get_input(s->bev)))
        parse_head(s);
    else
        idle_list_push(s, now ? now : now_ms());
}

static void close_session(struct h1_session *s)
{
    if (s->state == HS_DEAD)
        return;
    if (s->ex)
        exchange_downstream_abort(s->ex);
    /* We chose to close after a response: the client may still be sending (a body we did
     * not read, pipelined requests), and an RST now could destroy that response. */
    int linger = s->state == HS_CLOSING && !s->client_eof && !s->close_at_once;
    s->state = HS_DEAD;
    worker_conn_count_close(s->l, s->close_why);
    deadline_stop(&s->timer);
    idle_list_remove(s);
    struct sockio *tls = s->tls ? s->io : NULL;   /* goes with the connection */
    if (!tls)
        sockio_free(s->io);
    s->io = NULL;
    if (s->parked) {
        evutil_socket_t fd = event_get_fd(s->process_ev);
        unpark_event(s);   /* (out of epoll before the descriptor is closed) */
        evutil_closesocket(fd);
        worker_conn_closed(s->w, s->l, &s->base);
    } else if (s->bev) {
        conn_end(s->w, s->l, &s->base, s->bev, tls, linger);
    } else {
        worker_conn_closed(s->w, s->l, &s->base);   /* unparking failed: socket closed */
    }
    s->bev = NULL;
    event_active(s->process_ev, 0, 0);
}

/* Graceful stop: an idle connection closes now, a busy one after its current response
 * (which says Connection: close). */
static void ds_drain(struct ds_conn *c)
{
    struct h1_session *s = (struct h1_session *)c;
    s->draining = 1;
    if (s->state == HS_IDLE) {
        s->close_why = DSC_SHUTDOWN;
        close_session(s);
    }
}

static void ds_close_now(struct ds_conn *c)
{
    ((struct h1_session *)c)->close_why = DSC_SHUTDOWN;
    close_session((struct h1_session *)c);
}

static const struct ds_conn_ops h1_conn_ops = { ds_drain, ds_close_now };

/* ---- downstream_ops: the exchange writes the response through these ---- */

#define EXTRA_LIT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) + sizeof(lit) - 1)

static void op_response_head(void *arg, const struct http_head *h, int has_body, int64_t clen)
{
    struct h1_session *s = arg;
    if (s->state == HS_DEAD)
        return;
    s->resp_started = 1;
    /* An answer that comes before the body was read ends the connection: the unread rest of
     * the body could otherwise be taken for the next request. */
    if (s->state == HS_BODY)
        s->keep_alive = 0;
    const char *reason = h->reason && h->reason_len ? h->reason : http_reason_phrase(h->status);
    size_t reason_len = h->reason && h->reason_len ? h->reason_len : strlen(reason);
    /* Framing and connection lines, after the backend's fields. */
    char extra[160];
    char *p = extra;
    if (!has_body) {
        /* HEAD and 304 keep the length of the body they describe. */
        const struct http_field *cl = http_head_get(h, "content-length");
        const char *v;
        size_t vn, pos = 0;
        if (cl && (s->head_request || h->status == 304)) {
            /* The first element: "5" of "5, 5" (a list was accepted only when its elements
             * agree, and each is digits). */
            if (h1_list_next(cl->value, cl->value_len, &pos, &v, &vn) && vn > 0 &&
                vn <= FMT_U64_MAX) {
                p = EXTRA_LIT(p, "Content-Length: ");
                memcpy(p, v, vn);
                p = EXTRA_LIT(p + vn, "\r\n");
            }
        } else if (h->status >= 200 && h->status != 204 && h->status != 304 && !s->head_request) {
            p = EXTRA_LIT(p, "Content-Length: 0\r\n");
        }
    } else if (clen >= 0 && !(s->client_minor >= 1 && http_head_get(h, "trailer"))) {
        /* (Announced trailers need chunked coding, whatever length an h2 backend gave.) */
        p = EXTRA_LIT(p, "Content-Length: ");
        p += fmt_u64(p, (uint64_t)clen);
        p = EXTRA_LIT(p, "\r\n");
    } else if (s->client_minor >= 1) {
        p = EXTRA_LIT(p, "Transfer-Encoding: chunked\r\n");
        s->resp_chunked = !s->head_request;
    } else {
        s->keep_alive = 0;   /* HTTP/1.0 client: the close delimits the body */
    }
    if (s->w->draining)
        s->keep_alive = 0;
    if (!s->keep_alive)
        p = EXTRA_LIT(p, "Connection: close\r\n");
    else if (s->client_minor == 0)
        p = EXTRA_LIT(p, "Connection: keep-alive\r\n");
    if (s->keep_alive && s->l->cfg->keepalive_header_timeout_ms) {
        p = EXTRA_LIT(p, "Keep-Alive: timeout=");
        p += fmt_u64(p, s->l->cfg->keepalive_header_timeout_ms / 1000);
        p = EXTRA_LIT(p, "\r\n");
    }
    h1_write_response_head(bufferevent_get_output(s->bev), h, reason, reason_len, 0, extra,
                           (size_t)(p - extra));
}

static void op_response_body(void *arg, struct evbuffer *data)
{
    struct h1_session *s = arg;
    size_t len = evbuffer_get_length(data);
    if (s->state == HS_DEAD || !len || s->head_request) {
        evbuffer_drain(data, len);
        return;
    }
    h1_write_body(bufferevent_get_output(s->bev), data, s->resp_chunked);
}

static void op_response_end(void *arg, const struct http_head *trailers)
{
    struct h1_session *s = arg;
    if (s->state == HS_DEAD || !s->resp_chunked)
        return;
    h1_write_last_chunk(bufferevent_get_output(s->bev), trailers);
}

static void op_response_abort(void *arg)
{
    struct h1_session *s = arg;
    if (s->state == HS_DEAD)
        return;
    /* Flush what the client already has coming, then cut: with a length or chunked framing
     * left incomplete, the client knows the response is broken. */
    s->keep_alive = 0;
    s->close_why = DSC_ERROR;
    s->state = HS_CLOSING;
    reading(s, 0);
    if (!evbuffer_get_length(bufferevent_get_output(s->bev)))
        close_session(s);
}

static void op_pause_request(void *arg, int pause)
{
    struct h1_session *s = arg;
    if (s->state == HS_DEAD || s->req_paused == pause)
        return;
    s->req_paused = pause;
    if (pause) {
        reading(s, 0);
        return;
    }
    reading(s, 1);
    /* Body bytes may already wait in the input buffer. Deferred: the exchange is on the
     * stack, and reading may end it. */
    if (s->state == HS_BODY)
        trigger_read(s);
}

static size_t op_response_pending(void *arg)
{
    struct h1_session *s = arg;
    return s->bev ? evbuffer_get_length(bufferevent_get_output(s->bev)) : 0;
}

static void op_done(void *arg, struct exchange *ex)
{
    struct h1_session *s = arg;
    if (s->ex == ex)
        s->ex = NULL;
    s->done_ex = ex;
    if (s->state == HS_DEAD)
        return;
    /* Not here: we may be deep inside the exchange's own call stack. */
    event_active(s->process_ev, 0, 0);
}

static const struct downstream_ops h1s_ops = {
    .response_head = op_response_head,
    .response_body = op_response_body,
    .response_end = op_response_end,
    .response_abort = op_response_abort,
    .pause_request = op_pause_request,
    .response_pending = op_response_pending,
    .done = op_done,
};

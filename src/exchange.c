/* One request/response between a downstream session and an upstream connection: routing,
 * server choice, safe retries, error responses, backpressure and the access log line. */
#include "exchange.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "blockcache.h"
#include "h1_parse.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "upstream.h"
#include "worker.h"

/* Above high_mark() bytes queued on the other side, the reading side pauses. Resumption
 * comes from the writing side's low-watermark callback. Before a route is chosen the
 * default applies. */
#define DEFAULT_HIGH_MARK (256 * 1024)
/* Request bodies up to this size are kept so that a safe retry can send them again. */
#define REPLAY_MAX ((size_t)64 * 1024)

struct exchange {
    struct worker *w;
    struct listener_rt *l;        /* newest generation of the session's listener */
    struct worker_gen *gen;       /* the generation its route and upstream come from */
    const struct downstream_ops *ops;
    void *s;
    struct http_head req;
    struct http_head req_trailers;
    int has_body;
    int64_t content_length;
    char client_ip[INET6_ADDRSTRLEN];
    char *request_line;

    struct upstream_rt *up;
    size_t server_idx;
    struct pool_waiter wt;
    struct upconn *conn;
    void *stream;                 /* the connection's handle for this exchange */
    struct evbuffer *pending;     /* request body not yet given to a connection */
    struct evbuffer *replay;      /* body given so far, while <= REPLAY_MAX; NULL = too big */
    uint64_t read_timeout_ms;

    unsigned req_done : 1, resp_started : 1, resp_done : 1, finished : 1, req_paused : 1,
        resp_paused : 1, discard_body : 1;
    int retries;
    int refusals;                 /* transparent retries of requests never processed */
    int grpc;                     /* content-type application/grpc: errors the gRPC way */
    const char *retry_reason;
    int status;                   /* sent to the client */
    int upstream_status;
    uint64_t resp_bytes;
    int reused;
    uint64_t idle_ms;
    uint32_t ureqs;
    const char *server_addr;
    uint64_t start_ms, attempt_ms;
    int64_t connect_ms;
    int64_t response_ms;
    time_t start_wall;
};

const char *upstream_error_str(enum upstream_error e)
{
    switch (e) {
    case UPERR_NONE: return "none";
    case UPERR_CONNECT: return "connect_failed";
    case UPERR_CONNECT_TIMEOUT: return "connect_timeout";
    case UPERR_RESET: return "connection_reset";
    case UPERR_READ_TIMEOUT: return "read_timeout";
    case UPERR_SEND_TIMEOUT: return "send_timeout";
    case UPERR_BAD_RESPONSE: return "invalid_response";
    case UPERR_QUEUE_FULL: return "queue_full";
    case UPERR_QUEUE_TIMEOUT: return "queue_timeout";
    case UPERR_NO_SERVER: return "no_server";
    case UPERR_REFUSED: return "refused_stream";
    }
    return "?";
}

static int error_status(enum upstream_error e)
{
    switch (e) {
    case UPERR_CONNECT_TIMEOUT:
    case UPERR_READ_TIMEOUT:
    case UPERR_SEND_TIMEOUT:
        return 504;
    case UPERR_QUEUE_FULL:
    case UPERR_QUEUE_TIMEOUT:
    case UPERR_NO_SERVER:
        return 503;
    default:
        return 502;
    }
}

static void json_escape(struct evbuffer *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            evbuffer_add_printf(b, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            evbuffer_add_printf(b, "\\u%04x", ch);
        else
            evbuffer_add(b, &s[i], 1);
    }
}

static void field_or_dash(const struct http_head *h, const char *name, const char **v, size_t *n)
{
    const struct http_field *f = http_head_get(h, name);
    *v = f ? f->value : "-";
    *n = f ? f->value_len : 1;
}

static void write_access_log(struct exchange *ex)
{
    if (!ex->l->access_log)
        return;
    struct evbuffer *b = evbuffer_new();
    if (!b)
        return;
    const char *ref, *ua;
    size_t refn, uan;
    field_or_dash(&ex->req, "referer", &ref, &refn);
    field_or_dash(&ex->req, "user-agent", &ua, &uan);
    const char *rl = ex->request_line ? ex->request_line : "-";
    unsigned long long total = (unsigned long long)(now_ms() - ex->start_ms);
    if (ex->l->cfg->access_log_format == ACCESS_LOG_JSON) {
        evbuffer_add_printf(b, "{\"time\":%lld,\"remote_addr\":\"%s\",\"request\":\"",
                            (long long)ex->start_wall, ex->client_ip);
        json_escape(b, rl, strlen(rl));
        evbuffer_add_printf(b, "\",\"status\":%d,\"body_bytes_sent\":%llu,\"referer\":\"", ex->status,
                            (unsigned long long)ex->resp_bytes);
        json_escape(b, ref, refn);
        evbuffer_add(b, "\",\"user_agent\":\"", 16);
        json_escape(b, ua, uan);
        evbuffer_add_printf(b, "\",\"upstream\":\"%s\",\"upstream_status\":%d,\"reused\":%d,"
                               "\"idle_ms\":%llu,\"upstream_requests\":%u,\"retries\":%d,"
                               "\"retry_reason\":\"%s\",\"connect_ms\":%lld,\"response_ms\":%lld,"
                               "\"request_ms\":%llu}\n",
                            ex->server_addr ? ex->server_addr : "-", ex->upstream_status, ex->reused,
                            (unsigned long long)ex->idle_ms, ex->ureqs, ex->retries + ex->refusals,
                            ex->retry_reason ? ex->retry_reason : "-", (long long)ex->connect_ms,
                            (long long)ex->response_ms, total);
    } else {
        struct tm tm;
        char ts[64];
        localtime_r(&ex->start_wall, &tm);
        strftime(ts, sizeof ts, "%d/%b/%Y:%H:%M:%S %z", &tm);
        evbuffer_add_printf(b, "%s - - [%s] \"", ex->client_ip, ts);
        json_escape(b, rl, strlen(rl));
        evbuffer_add_printf(b, "\" %d %llu \"", ex->status, (unsigned long long)ex->resp_bytes);
        json_escape(b, ref, refn);
        evbuffer_add(b, "\" \"", 3);
        json_escape(b, ua, uan);
        evbuffer_add_printf(b, "\" upstream=%s ustatus=%d reused=%d idle_ms=%llu ureqs=%u retries=%d "
                               "retry_reason=%s connect_ms=%lld response_ms=%lld request_ms=%llu\n",
                            ex->server_addr ? ex->server_addr : "-", ex->upstream_status, ex->reused,
                            (unsigned long long)ex->idle_ms, ex->ureqs, ex->retries + ex->refusals,
                            ex->retry_reason ? ex->retry_reason : "-", (long long)ex->connect_ms,
                            (long long)ex->response_ms, total);
    }
    size_t len = evbuffer_get_length(b);
    access_log_write(ex->l->access_log, (const char *)evbuffer_pullup(b, -1), len);
    evbuffer_free(b);
}

static void finish(struct exchange *ex)
{
    if (ex->finished)
        return;
    ex->finished = 1;
    write_access_log(ex);
    ex->ops->done(ex->s, ex);
}

/* gRPC clients read errors from grpc-status, not from the HTTP status: answer 200 with a
 * trailers-only response (gRPC over HTTP/2, "Trailers-Only"). */
static void respond_grpc_error(struct exchange *ex, int status, const char *detail)
{
    struct http_head h;
    http_head_init(&h);
    h.status = 200;
    const char *code = status == 504 ? "4" : "14";   /* DEADLINE_EXCEEDED : UNAVAILABLE */
    /* grpc-message is percent-encoded (gRPC over HTTP/2): keep it to safe characters. */
    char msg[256];
    size_t n = 0;
    for (const char *p = detail ? detail : "unavailable"; *p && n + 4 < sizeof msg; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch >= 0x20 && ch < 0x7f && ch != '%')
            msg[n++] = (char)ch;
        else
            n += (size_t)snprintf(msg + n, sizeof msg - n, "%%%02X", ch);
    }
    http_head_add(&h, "content-type", 12, "application/grpc", 16, 0);
    http_head_add(&h, "grpc-status", 11, code, strlen(code), 0);
    http_head_add(&h, "grpc-message", 12, msg, n, 1);
    ex->status = 200;
    ex->upstream_status = 0;
    ex->resp_started = 1;
    ex->ops->response_head(ex->s, &h, 0, 0);
    http_head_free(&h);
    ex->resp_done = 1;
    ex->ops->response_end(ex->s, NULL);
    if (!ex->req_done)
        ex->discard_body = 1;
    finish(ex);
}

/* Answers the client with a short error of ferry's own. */
static void respond_error(struct exchange *ex, int status, const char *detail)
{
    if (ex->grpc && status >= 500) {
        respond_grpc_error(ex, status, detail);
        return;
    }
    struct http_head h;
    http_head_init(&h);
    h.status = status;
    char body[256];
    int n = snprintf(body, sizeof body, "%d %s\n%s%s", status, http_reason_phrase(status),
                     detail ? detail : "", detail ? "\n" : "");
    http_head_add(&h, "Content-Type", 12, "text/plain", 10, 0);
    ex->status = status;
    ex->resp_started = 1;
    ex->ops->response_head(ex->s, &h, 1, n);
    struct evbuffer *b = evbuffer_new();
    if (b) {
        evbuffer_add(b, body, (size_t)n);
        ex->resp_bytes += (uint64_t)n;
        ex->ops->response_body(ex->s, b);
        evbuffer_free(b);
    }
    http_head_free(&h);
    ex->resp_done = 1;
    ex->ops->response_end(ex->s, NULL);
    if (!ex->req_done)
        ex->discard_body = 1;
    finish(ex);
}

static void acquire(struct exchange *ex, int fresh);

static size_t high_mark(const struct exchange *ex)
{
    return ex->up ? ex->up->cfg->buffer_size : DEFAULT_HIGH_MARK;
}

void peer_addr_set(struct peer_addr *p, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET6) {
        memcpy(&p->addr.in6, sa, sizeof p->addr.in6);
        inet_ntop(AF_INET6, &p->addr.in6.sin6_addr, p->ip, sizeof p->ip);
    } else {
        /* By hand: glibc's inet_ntop formats IPv4 with sprintf, once per connection. */
        memcpy(&p->addr.in, sa, sizeof p->addr.in);
        const unsigned char *b = (const unsigned char *)&p->addr.in.sin_addr;
        char *o = p->ip;
        for (int i = 0; i < 4; i++) {
            if (i)
                *o++ = '.';
            if (b[i] >= 100)
                *o++ = (char)('0' + b[i] / 100);
            if (b[i] >= 10)
                *o++ = (char)('0' + b[i] / 10 % 10);
            *o++ = (char)('0' + b[i] % 10);
        }
        *o = '\0';
    }
}

struct exchange *exchange_start(const struct exchange_init *in)
{
    struct exchange *ex = bc_calloc(1, sizeof *ex);
    if (!ex)
        return NULL;
    ex->w = in->w;
    /* A connection accepted before a reload is served by the listener's newest routes
     * (and access log); its connection limits stay those it was accepted with. */
    ex->l = listener_newest(in->listener);
    ex->gen = ex->l->gen;
    worker_gen_ref(ex->gen);
    ex->ops = in->ops;
    ex->s = in->session;
    ex->req = *in->req;
    http_head_init(in->req);
    http_head_init(&ex->req_trailers);
    ex->has_body = in->has_body;
    ex->content_length = in->content_length;
    ex->start_ms = now_ms();
    ex->start_wall = time(NULL);
    ex->connect_ms = -1;
    ex->response_ms = -1;
    ex->wt.ex = ex;
    if ((ex->request_line = bc_malloc(in->request_line_len + 1))) {
        memcpy(ex->request_line, in->request_line, in->request_line_len);
        ex->request_line[in->request_line_len] = '\0';
    }
    memcpy(ex->client_ip, in->client->ip, sizeof ex->client_ip);
    if (ex->has_body) {
        ex->pending = evbuffer_new();
        ex->replay = evbuffer_new();
    }
    const struct http_field *ct = http_head_get(&ex->req, "content-type");
    ex->grpc = ct && ct->value_len >= 16 && strncasecmp(ct->value, "application/grpc", 16) == 0;

    const struct cfg_route *route = router_match(ex->l->cfg, ex->req.authority, ex->req.authority_len,
                                                 ex->req.path, ex->req.path_len);
    if (!route) {
        respond_error(ex, 404, "no route matches this request");
        return ex;
    }
    ex->up = &ex->gen->upstreams[route->upstream - ex->gen->rt->cfg->upstreams];
    ex->read_timeout_ms = route->has_timeout ? route->timeout_ms : ex->up->cfg->read_timeout_ms;
    ex->server_idx = SIZE_MAX;
    acquire(ex, 0);
    return ex;
}

static void fail_now(struct exchange *ex, enum upstream_error err);

/* What balance: hash hashes: a request header, a cookie, or the client's address. */
static const char *hash_key(const struct exchange *ex, size_t *len)
{
    const char *spec = ex->up->cfg->hash_key;
    if (spec && strncmp(spec, "header:", 7) == 0) {
        const struct http_field *f = NULL;
        for (uint32_t i = 0; i < ex->req.nfields && !f; i++)
            if (strlen(spec + 7) == ex->req.fields[i].name_len &&
                strncasecmp(ex->req.fields[i].name, spec + 7, ex->req.fields[i].name_len) == 0)
                f = &ex->req.fields[i];
        if (f) {
            *len = f->value_len;
            return f->value;
        }
    } else if (spec && strncmp(spec, "cookie:", 7) == 0) {
        const char *name = spec + 7;
        size_t nlen = strlen(name);
        for (uint32_t i = 0; i < ex->req.nfields; i++) {
            const struct http_field *f = &ex->req.fields[i];
            if (f->name_len != 6 || strncasecmp(f->name, "cookie", 6) != 0)
                continue;
            const char *p = f->value, *end = f->value + f->value_len;
            while (p < end) {
                while (p < end && (*p == ' ' || *p == ';'))
                    p++;
                const char *eq = memchr(p, '=', (size_t)(end - p));
                const char *semi = memchr(p, ';', (size_t)(end - p));
                if (!semi)
                    semi = end;
                if (eq && eq < semi && (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
                    *len = (size_t)(semi - eq - 1);
                    return eq + 1;
                }
                p = semi;
            }
        }
    }
    *len = strlen(ex->client_ip);   /* client_ip, and the fallback when the key is absent */
    return ex->client_ip;
}

static int may_retry(const struct exchange *ex, enum upstream_error err, int got_any, int reused);

static void acquire(struct exchange *ex, int fresh)
{
    size_t keylen = 0;
    const char *key = ex->up->cfg->balance == BALANCE_HASH ? hash_key(ex, &keylen) : NULL;
    ex->server_idx = upstream_pick(ex->up, fresh ? ex->server_idx : SIZE_MAX, key, keylen);
    if (ex->server_idx == SIZE_MAX) {
        ex->server_addr = NULL;
        fail_now(ex, UPERR_NO_SERVER);
        return;
    }
    struct pool *p = ex->up->pools[ex->server_idx];
    ex->server_addr = pool_server(p)->address;
    ex->attempt_ms = now_ms();
    enum upstream_error err;
    /* (A body may outgrow its replay copy before a failure shows.) */
    ex->wt.retryable = !ex->has_body && may_retry(ex, UPERR_RESET, 0, 1);
    struct upconn *c = pool_acquire(p, &ex->wt, fresh, &err);
    if (c)
        exchange_attach(ex, c);
    else if (err != UPERR_NONE)
        fail_now(ex, err);
}

/* Gives body bytes to the connection, keeping a copy while a retry could still need it. */
static void send_body(struct exchange *ex, struct evbuffer *data)
{
    if (ex->replay) {
        if (evbuffer_get_length(ex->replay) + evbuffer_get_length(data) <= REPLAY_MAX) {
            struct evbuffer_iovec v[16];
            int n = evbuffer_peek(data, -1, NULL, v, 16);
            if (n > 16) {
                evbuffer_free(ex->replay);
                ex->replay = NULL;
            } else
                for (int i = 0; i < n; i++)
                    evbuffer_add(ex->replay, v[i].iov_base, v[i].iov_len);
        } else {
            evbuffer_free(ex->replay);
            ex->replay = NULL;
        }
    }
    struct upconn *c = ex->conn;
    c->ops->send_body(c, ex->stream, data);
    /* (Sending may have failed the connection and detached it: ex->conn is then NULL.) */
    if (!ex->req_paused && ex->conn && ex->conn->ops->output_pending(ex->conn, ex->stream) > high_mark(ex)) {
        ex->req_paused = 1;
        ex->ops->pause_request(ex->s, 1);
    }
}

void exchange_attach(struct exchange *ex, struct upconn *c)
{
    ex->wt.dialing = NULL;
    ex->reused = c->requests > 0;
    ex->idle_ms = ex->reused && c->state == UC_ACTIVE && !c->streams ? now_ms() - c->idle_since_ms : 0;
    ex->ureqs = c->requests + 1;
    ex->connect_ms = (int64_t)(now_ms() - ex->attempt_ms);
    void *st = c->ops->start(c, ex);
    if (!st) {
        /* The connection took no stream (a GOAWAY raced us): nothing was sent. */
        pool_start_failed(c);
        exchange_upstream_error(ex, UPERR_REFUSED, 0, 0, ex->reused);
        return;
    }
    ex->conn = c;
    ex->stream = st;
    if (ex->replay && evbuffer_get_length(ex->replay)) {
        /* A retry: what the failed attempt sent goes again, from the kept copy. */
        struct evbuffer *copy = evbuffer_new();
        if (copy) {
            /* At most REPLAY_MAX bytes, and only on a retry: one contiguous copy is simplest
             * and can never leave a chain behind. */
            size_t len = evbuffer_get_length(ex->replay);
            evbuffer_add(copy, evbuffer_pullup(ex->replay, -1), len);
            c->ops->send_body(c, st, copy);
            evbuffer_free(copy);
        }
    }
    if (ex->conn && ex->pending && evbuffer_get_length(ex->pending))
        send_body(ex, ex->pending);
    if (ex->conn && ex->req_done)
        c->ops->send_end(c, st, ex->req_trailers.nfields ? &ex->req_trailers : NULL);
    if (ex->conn && ex->req_paused && c->ops->output_pending(c, st) <= high_mark(ex)) {
        ex->req_paused = 0;
        ex->ops->pause_request(ex->s, 0);
    }
}

void exchange_request_body(struct exchange *ex, struct evbuffer *data)
{
    if (ex->discard_body || ex->finished) {
        evbuffer_drain(data, evbuffer_get_length(data));
        return;
    }
    if (ex->conn) {
        send_body(ex, data);
        return;
    }
    evbuffer_add_buffer(ex->pending, data);
    if (!ex->req_paused && evbuffer_get_length(ex->pending) > high_mark(ex)) {
        ex->req_paused = 1;
        ex->ops->pause_request(ex->s, 1);
    }
}

void exchange_request_end(struct exchange *ex, const struct http_head *trailers)
{
    ex->req_done = 1;
    if (ex->finished || ex->discard_body)
        return;
    for (uint32_t i = 0; trailers && i < trailers->nfields; i++)
        http_head_add(&ex->req_trailers, trailers->fields[i].name, trailers->fields[i].name_len,
                      trailers->fields[i].value, trailers->fields[i].value_len, 1);
    if (ex->conn)
        ex->conn->ops->send_end(ex->conn, ex->stream, ex->req_trailers.nfields ? &ex->req_trailers : NULL);
}

void exchange_upstream_drained(struct exchange *ex)
{
    if (ex->req_paused) {
        ex->req_paused = 0;
        ex->ops->pause_request(ex->s, 0);
    }
}

void exchange_downstream_drained(struct exchange *ex)
{
    if (ex->resp_paused && ex->conn) {
        ex->resp_paused = 0;
        ex->conn->ops->pause_response(ex->conn, ex->stream, 0);
    }
}

static struct pool_stats *server_stats(struct exchange *ex)
{
    return ex->up && ex->server_idx != SIZE_MAX ? pool_stats(ex->up->pools[ex->server_idx]) : NULL;
}

void exchange_upstream_head(struct exchange *ex, const struct http_head *h, int has_body,
                            int64_t content_length)
{
    struct pool_stats *st = server_stats(ex);
    if (st) {
        int cls = h->status / 100;
        STAT_INC(st->responses[cls >= 1 && cls <= 5 ? cls : 0]);
        metrics_observe_rt(st, (now_ms() - ex->attempt_ms) * 1000);
    }
    upstream_report(ex->up, ex->server_idx,
                    !(h->status >= 500 && ex->up->cfg->outlier && ex->up->cfg->outlier->count_5xx));
    ex->upstream_status = h->status;
    ex->status = h->status;
    ex->response_ms = (int64_t)(now_ms() - ex->attempt_ms);
    ex->resp_started = 1;
    ex->ops->response_head(ex->s, h, has_body, content_length);
}

void exchange_upstream_body(struct exchange *ex, struct evbuffer *data)
{
    ex->resp_bytes += evbuffer_get_length(data);
    ex->ops->response_body(ex->s, data);
    if (!ex->resp_paused && ex->conn && ex->ops->response_pending(ex->s) > high_mark(ex)) {
        ex->resp_paused = 1;
        ex->conn->ops->pause_response(ex->conn, ex->stream, 1);
    }
}

void exchange_upstream_end(struct exchange *ex, const struct http_head *trailers)
{
    ex->conn = NULL;
    ex->stream = NULL;
    ex->resp_done = 1;
    ex->ops->response_end(ex->s, trailers);
    if (!ex->req_done)
        ex->discard_body = 1;   /* answered early: the rest of the body is not wanted */
    finish(ex);
}

/* Requests the backend said it never processed (h2 REFUSED_STREAM, streams above a
 * GOAWAY's last id) are retried whatever their method, up to this many times. */
#define MAX_REFUSALS 5

static int may_retry(const struct exchange *ex, enum upstream_error err, int got_any, int reused)
{
    if (got_any || ex->resp_started)
        return 0;
    if (ex->has_body && !ex->replay)
        return 0;           /* the body is gone: nothing to send again */
    if (err == UPERR_REFUSED)
        return ex->refusals < MAX_REFUSALS;
    if (ex->retries >= (int)ex->up->cfg->retries)
        return 0;
    if (err == UPERR_CONNECT || err == UPERR_CONNECT_TIMEOUT)
        return 1;           /* never reached the wire: safe whatever the method */
    /* A connection that died before answering: a reused one the backend closed as we
     * wrote, or a fresh one to a backend going down (accepted, then reset). Only
     * idempotent requests, since it may have been processed (nginx's "error" case). */
    (void)reused;
    return err == UPERR_RESET && h1_method_is_idempotent(ex->req.method, ex->req.method_len);
}

static void fail_now(struct exchange *ex, enum upstream_error err)
{
    ex->upstream_status = 0;
    if (ex->resp_started) {
        ex->resp_done = 1;
        ex->ops->response_abort(ex->s);
        finish(ex);
        return;
    }
    char detail[192];
    snprintf(detail, sizeof detail, "upstream %s: %s", ex->up ? ex->up->cfg->name : "-",
             err == UPERR_NO_SERVER ? "no healthy server" : upstream_error_str(err));
    respond_error(ex, error_status(err), detail);
}

void exchange_upstream_error(struct exchange *ex, enum upstream_error err, int sent_any, int got_any,
                             int reused)
{
    ex->conn = NULL;
    ex->stream = NULL;
    ex->wt.dialing = NULL;
    if (ex->finished)
        return;
    struct pool_stats *st = server_stats(ex);
    if (err != UPERR_QUEUE_FULL && err != UPERR_QUEUE_TIMEOUT && err != UPERR_REFUSED &&
        err != UPERR_NO_SERVER)
        upstream_report(ex->up, ex->server_idx, 0);
    if (may_retry(ex, err, got_any, reused)) {
        if (st)
            STAT_INC(st->retries);
        if (err == UPERR_REFUSED)
            ex->refusals++;
        else
            ex->retries++;
        ex->retry_reason = upstream_error_str(err);
        ex->w->stats.us_retries++;
        log_info("upstream %s server %s: %s; retrying \"%s\" on another connection", ex->up->cfg->name,
                 ex->server_addr, upstream_error_str(err), ex->request_line ? ex->request_line : "");
        acquire(ex, err != UPERR_REFUSED);
        return;
    }
    if (st && !got_any)
        STAT_INC(st->responses[0]);
    log_error("upstream %s server %s: %s (%s) for \"%s\" from %s", ex->up ? ex->up->cfg->name : "-",
              ex->server_addr ? ex->server_addr : "-", upstream_error_str(err),
              got_any ? "after part of the response" : sent_any ? "request sent, no response" : "before sending",
              ex->request_line ? ex->request_line : "", ex->client_ip);
    fail_now(ex, err);
}

void exchange_downstream_abort(struct exchange *ex)
{
    pool_cancel(&ex->wt);
    if (ex->conn) {
        struct upconn *c = ex->conn;
        void *st = ex->stream;
        ex->conn = NULL;
        ex->stream = NULL;
        c->ops->abort(c, st);
    }
    if (!ex->finished) {
        ex->finished = 1;
        if (!ex->resp_done)
            ex->status = 499;   /* nginx's "client closed request" */
        write_access_log(ex);
    }
}

void exchange_free(struct exchange *ex)
{
    if (!ex)
        return;
    pool_cancel(&ex->wt);
    if (ex->conn)
        ex->conn->ops->abort(ex->conn, ex->stream);
    http_head_free(&ex->req);
    http_head_free(&ex->req_trailers);
    if (ex->pending)
        evbuffer_free(ex->pending);
    if (ex->replay)
        evbuffer_free(ex->replay);
    bc_free(ex->request_line);
    worker_gen_unref(ex->w, ex->gen);
    bc_free(ex);
}

const struct http_head *exchange_request_head(const struct exchange *ex) { return &ex->req; }

int exchange_request_has_body(const struct exchange *ex, int64_t *content_length)
{
    *content_length = ex->content_length;
    return ex->has_body;
}

const char *exchange_client_ip(const struct exchange *ex) { return ex->client_ip; }

uint64_t exchange_read_timeout_ms(const struct exchange *ex) { return ex->read_timeout_ms; }

int exchange_is_grpc(const struct exchange *ex) { return ex->grpc; }

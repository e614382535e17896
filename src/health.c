#include "health.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blockcache.h"
#include "deadline.h"
#include "h1_parse.h"
#include "log.h"
#include "tls.h"
#include "worker.h"

/* Bytes of a check response kept (head and body); beyond, the check fails. */
#define CHECK_MAX_BYTES ((size_t)64 * 1024)

struct check;

struct hc_server {
    struct health *h;
    const struct cfg_upstream *up;
    const struct cfg_server *srv;
    struct server_state *st;
    struct tls_client *tls;
    struct event *timer;          /* next check */
    struct check *cur;            /* in progress, or NULL */
};

struct health {
    struct event_base *base;
    struct runtime *rt;
    struct worker *workers;
    uint32_t nworkers;
    struct hc_server *servers;
    size_t nservers;
    uint64_t rand_state;
    struct check *ended;          /* ended checks waiting for their free event */
};

struct check {
    struct hc_server *hs;
    struct bufferevent *bev;
    SSL *ssl;
    struct event *timer;          /* the check's timeout */
    struct event *free_ev;        /* frees it after the callbacks that ended it return */
    nghttp2_session *ng;          /* HTTP/2 checks */
    int32_t stream;
    int status;                   /* HTTP status seen, 0 = none */
    int grpc_status;              /* -1 = none */
    struct evbuffer *body;
    int h2;
    int done;
    struct check *next_ended;
};

static uint64_t next_rand(struct health *h)
{
    uint64_t x = h->rand_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    h->rand_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static void schedule(struct hc_server *hs, uint64_t ms)
{
    const struct cfg_health *c = hs->up->health;
    if (c->jitter_ms)
        ms += next_rand(hs->h) % (c->jitter_ms + 1);
    struct timeval tv;
    tv = ms_timeval(ms);
    evtimer_add(hs->timer, &tv);
}

static void notify_workers(struct health *h)
{
    for (uint32_t i = 0; i < h->nworkers; i++)
        worker_health_changed(&h->workers[i]);
}

/* One result: counts, thresholds, the transition and its log line. */
static void record(struct hc_server *hs, int pass, const char *why)
{
    struct server_state *st = hs->st;
    const struct cfg_health *c = hs->up->health;
    int down = __atomic_load_n(&st->down, __ATOMIC_RELAXED);
    if (pass) {
        STAT_INC(st->checks_passed);
        st->fall = 0;
        st->rise++;
        if (down && st->rise >= c->healthy_threshold) {
            __atomic_store_n(&st->down, 0, __ATOMIC_RELAXED);
            STAT_INC(st->transitions);
            st->changed_at = (int64_t)time(NULL);
            /* An ejection is lifted by a recovery the checks confirm. */
            __atomic_store_n(&st->ejected_until_ms, 0, __ATOMIC_RELAXED);
            log_info("upstream %s server %s: healthy again (%u checks passed)", hs->up->name,
                     hs->srv->address, st->rise);
            notify_workers(hs->h);
        }
    } else {
        STAT_INC(st->checks_failed);
        st->rise = 0;
        st->fall++;
        log_debug("upstream %s server %s: health check failed: %s", hs->up->name,
                  hs->srv->address, why);
        if (!down && st->fall >= c->unhealthy_threshold) {
            __atomic_store_n(&st->down, 1, __ATOMIC_RELAXED);
            STAT_INC(st->transitions);
            st->changed_at = (int64_t)time(NULL);
            log_warn("upstream %s server %s: unhealthy after %u failed checks (last: %s); no new "
                     "requests go to it", hs->up->name, hs->srv->address, st->fall, why);
            notify_workers(hs->h);
        }
    }
}

static void check_free(struct check *k)
{
    if (k->bev) {
        if (k->ssl)
            SSL_set_shutdown(k->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        bufferevent_free(k->bev);
    }
    if (k->timer)
        event_free(k->timer);
    if (k->free_ev)
        event_free(k->free_ev);
    if (k->ng)
        nghttp2_session_del(k->ng);
    if (k->body)
        evbuffer_free(k->body);
    free(k);
}

/* Ends the check in progress with a result and schedules the next one. */
static void finish(struct check *k, int pass, const char *why)
{
    if (k->done)
        return;
    k->done = 1;
    struct hc_server *hs = k->hs;
    hs->cur = NULL;
    record(hs, pass, why);
    schedule(hs, hs->up->health->interval_ms);
    event_del(k->timer);
    bufferevent_disable(k->bev, EV_READ | EV_WRITE);
    /* We may be inside nghttp2 or libevent callbacks of this check: free it later. */
    k->next_ended = hs->h->ended;
    hs->h->ended = k;
    event_active(k->free_ev, 0, 0);
}

static void free_cb(evutil_socket_t fd, short what, void *arg)
{
    struct check *k = arg;
    for (struct check **pp = &k->hs->h->ended; *pp; pp = &(*pp)->next_ended)
        if (*pp == k) {
            *pp = k->next_ended;
            break;
        }
    check_free(k);
}

static int status_ok(const struct cfg_health *c, int status)
{
    for (size_t i = 0; i < c->nstatus; i++)
        if (status >= c->status[i][0] && status <= c->status[i][1])
            return 1;
    return 0;
}

static int body_has(struct evbuffer *b, const char *want)
{
    size_t n = strlen(want);
    struct evbuffer_ptr p = evbuffer_search(b, want, n, NULL);
    return p.pos >= 0;
}

/* HTTP check verdict once the response (or what fits) is in. */
static void judge_http(struct check *k, int complete)
{
    const struct cfg_health *c = k->hs->up->health;
    char why[128];
    if (c->type == HC_GRPC) {
        if (k->grpc_status != 0) {
            snprintf(why, sizeof why, "grpc-status %d", k->grpc_status);
            finish(k, 0, why);
            return;
        }
        /* HealthCheckResponse after the 5-byte gRPC prefix: field 1 (status), SERVING = 1. */
        unsigned char m[7];
        if (evbuffer_copyout(k->body, m, sizeof m) >= 7 && m[5] == 0x08 && m[6] == 0x01)
            finish(k, 1, "SERVING");
        else
            finish(k, 0, "not SERVING");
        return;
    }
    if (!status_ok(c, k->status)) {
        snprintf(why, sizeof why, "status %d", k->status);
        finish(k, 0, why);
        return;
    }
    if (c->body && !body_has(k->body, c->body)) {
        if (complete)
            finish(k, 0, "body does not contain expect_body");
        return;
    }
    finish(k, 1, "ok");
}

/* ---- HTTP/1.1 ---------------------------------------------------------------------- */

static void h1_read(struct check *k, int eof)
{
    struct evbuffer *in = bufferevent_get_input(k->bev);
    size_t len = evbuffer_get_length(in);
    if (len > CHECK_MAX_BYTES) {
        finish(k, 0, "response too large");
        return;
    }
    if (!k->status) {
        struct h1_response r;
        struct h1_limits lim = { CHECK_MAX_BYTES, CHECK_MAX_BYTES, H1_MAX_HEADERS };
        const char *why = NULL;
        int n = h1_parse_response((const char *)evbuffer_pullup(in, -1), len, &lim, 0, 0, &r, &why);
        if (n == H1_INCOMPLETE) {
            if (eof)
                finish(k, 0, "connection closed before a response");
            return;
        }
        if (n < 0) {
            finish(k, 0, why ? why : "invalid response");
            return;
        }
        if (r.status < 200) {
            evbuffer_drain(in, (size_t)n);
            h1_read(k, eof);
            return;
        }
        k->status = r.status;
        evbuffer_drain(in, (size_t)n);
    }
    evbuffer_add_buffer(k->body, in);
    judge_http(k, eof);
}

/* Host / :authority of a check without health_check.host: the server as written; for an
 * SRV server (whose name is no host) its address. */
static const char *check_authority(const struct cfg_server *srv)
{
    return srv->is_srv ? srv->address : srv->name;
}

static void h1_send(struct check *k)
{
    const struct cfg_health *c = k->hs->up->health;
    struct evbuffer *out = bufferevent_get_output(k->bev);
    evbuffer_add_printf(out, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ferry-health-check\r\n"
                             "Connection: close\r\n\r\n",
                        c->method, c->path, c->host ? c->host : check_authority(k->hs->srv));
}

/* ---- HTTP/2 ------------------------------------------------------------------------ */

static ssize_t ng_send_unused(nghttp2_session *ng, const uint8_t *d, size_t n, int f, void *u)
{
    return NGHTTP2_ERR_WOULDBLOCK;
}

static int ng_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
    struct check *k = user;
    if (frame->hd.stream_id != k->stream)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        k->status = atoi((const char *)value);
    else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
        k->grpc_status = atoi((const char *)value);
    return 0;
}

static int ng_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *user)
{
    struct check *k = user;
    if (id == k->stream && evbuffer_get_length(k->body) < CHECK_MAX_BYTES)
        evbuffer_add(k->body, data, len);
    return 0;
}

static int ng_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
    struct check *k = user;
    if (id != k->stream || k->done)
        return 0;
    if (code != NGHTTP2_NO_ERROR && !k->status) {
        finish(k, 0, nghttp2_http2_strerror(code));
        return 0;
    }
    judge_http(k, 1);
    return 0;
}

static ssize_t grpc_body_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                              uint32_t *flags, nghttp2_data_source *src, void *user)
{
    struct check *k = user;
    const char *svc = k->hs->up->health->service ? k->hs->up->health->service : "";
    size_t sl = strlen(svc) > 120 ? 120 : strlen(svc);
    /* gRPC frame: uncompressed, length, then HealthCheckRequest { string service = 1; } */
    size_t msg = sl ? 2 + sl : 0;
    if (length < 5 + msg)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    buf[0] = 0;
    buf[1] = 0;
    buf[2] = 0;
    buf[3] = 0;
    buf[4] = (uint8_t)msg;
    if (sl) {
        buf[5] = 0x0a;
        buf[6] = (uint8_t)sl;
        memcpy(buf + 7, svc, sl);
    }
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)(5 + msg);
}

static int h2_flush(struct check *k)
{
    struct evbuffer *out = bufferevent_get_output(k->bev);
    for (;;) {
        const uint8_t *d;
        ssize_t n = nghttp2_session_mem_send(k->ng, &d);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        evbuffer_add(out, d, (size_t)n);
    }
}

static int h2_start(struct check *k)
{
    const struct cfg_health *c = k->hs->up->health;
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return -1;
    nghttp2_session_callbacks_set_send_callback(cbs, ng_send_unused);
    nghttp2_session_callbacks_set_on_header_callback(cbs, ng_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, ng_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, ng_stream_close);
    int r = nghttp2_session_client_new3(&k->ng, cbs, k, NULL, bc_nghttp2_mem());
    nghttp2_session_callbacks_del(cbs);
    if (r != 0)
        return -1;
    nghttp2_settings_entry iv[] = { { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 } };
    nghttp2_submit_settings(k->ng, NGHTTP2_FLAG_NONE, iv, 1);
    const char *auth = c->host ? c->host : check_authority(k->hs->srv);
    const char *scheme = k->ssl ? "https" : "http";
    int grpc = c->type == HC_GRPC;
    const char *method = grpc ? "POST" : c->method;
    const char *path = grpc ? "/grpc.health.v1.Health/Check" : c->path;
#define NV(N, V) { (uint8_t *)(N), (uint8_t *)(V), strlen(N), strlen(V), NGHTTP2_NV_FLAG_NONE }
    nghttp2_nv nv[] = {
        NV(":method", method), NV(":scheme", scheme), NV(":authority", auth), NV(":path", path),
        NV("user-agent", "ferry-health-check"), NV("content-type", "application/grpc"),
        NV("te", "trailers"),
    };
#undef NV
    nghttp2_data_provider prd = { .source.ptr = k, .read_callback = grpc_body_read };
    k->stream = nghttp2_submit_request(k->ng, NULL, nv, grpc ? 7 : 5, grpc ? &prd : NULL, k);
    if (k->stream < 0)
        return -1;
    return h2_flush(k);
}

static void h2_read(struct check *k)
{
    struct evbuffer *in = bufferevent_get_input(k->bev);
    size_t len = evbuffer_get_length(in);
    ssize_t n = nghttp2_session_mem_recv(k->ng, evbuffer_pullup(in, -1), len);
    if (k->done)
        return;
    if (n < 0) {
        finish(k, 0, nghttp2_strerror((int)n));
        return;
    }
    evbuffer_drain(in, (size_t)n);
    if (h2_flush(k) < 0)
        finish(k, 0, "HTTP/2 error");
}

/* ---- connection -------------------------------------------------------------------- */

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct check *k = arg;
    if (k->h2)
        h2_read(k);
    else
        h1_read(k, 0);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct check *k = arg;
    const struct cfg_health *c = k->hs->up->health;
    if (what & BEV_EVENT_CONNECTED) {
        if (c->type == HC_TCP) {
            finish(k, 1, "connected");
            return;
        }
        const struct cfg_upstream *up = k->hs->up;
        k->h2 = c->type == HC_GRPC || up->protocol == PROTO_H2C || up->protocol == PROTO_H2 ||
                (up->protocol == PROTO_AUTO && k->ssl && tls_negotiated_h2(k->ssl));
        if (k->h2 ? h2_start(k) < 0 : (h1_send(k), 0)) {
            finish(k, 0, "cannot start the request");
            return;
        }
        bufferevent_enable(bev, EV_READ | EV_WRITE);
        return;
    }
    if (!k->h2 && (what & BEV_EVENT_EOF) && k->status >= 0 && !(what & BEV_EVENT_ERROR)) {
        h1_read(k, 1);
        if (k->done)
            return;
    }
    if (k->h2 && (what & BEV_EVENT_EOF))
        h2_read(k);
    if (!k->done)
        finish(k, 0, (what & BEV_EVENT_EOF) ? "connection closed"
                     : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    finish(arg, 0, "timed out");
}

static void start_check(evutil_socket_t fd, short what, void *arg)
{
    struct hc_server *hs = arg;
    struct health *h = hs->h;
    if (hs->cur)
        return;
    struct check *k = calloc(1, sizeof *k);
    if (!k) {
        schedule(hs, hs->up->health->interval_ms);
        return;
    }
    k->hs = hs;
    k->grpc_status = -1;
    k->body = evbuffer_new();
    k->timer = evtimer_new(h->base, timeout_cb, k);
    k->free_ev = event_new(h->base, -1, 0, free_cb, k);
    if (hs->tls) {
        k->ssl = tls_client_ssl_new(hs->tls, hs->srv->host, NULL, NULL);
        if (k->ssl) {
            k->bev = bufferevent_openssl_socket_new(h->base, -1, k->ssl, BUFFEREVENT_SSL_CONNECTING,
                                                    BEV_OPT_CLOSE_ON_FREE);
            if (!k->bev)
                SSL_free(k->ssl);
            else
                bufferevent_openssl_set_allow_dirty_shutdown(k->bev, 1);
        }
    } else
        k->bev = bufferevent_socket_new(h->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!k->body || !k->timer || !k->free_ev || !k->bev) {
        if (!k->bev)
            k->ssl = NULL;
        check_free(k);
        schedule(hs, hs->up->health->interval_ms);
        return;
    }
    hs->cur = k;
    struct timeval tv;
    tv = ms_timeval(hs->up->health->timeout_ms);
    evtimer_add(k->timer, &tv);
    bufferevent_setcb(k->bev, read_cb, NULL, event_cb, k);
    if (bufferevent_socket_connect(k->bev, (const struct sockaddr *)&hs->srv->ss, (int)hs->srv->sslen) < 0)
        finish(k, 0, "connect failed");
}

struct health *health_start(struct event_base *base, struct runtime *rt, struct worker *workers,
                            uint32_t nworkers)
{
    const struct ferry_config *cfg = rt->cfg;
    size_t n = 0;
    for (size_t u = 0; u < cfg->nupstreams; u++)
        if (rt->ups[u].health)
            n += rt->ups[u].nservers;
    if (!n)
        return NULL;
    struct health *h = calloc(1, sizeof *h);
    if (!h || !(h->servers = calloc(n, sizeof *h->servers))) {
        free(h);
        return NULL;
    }
    h->base = base;
    h->rt = rt;
    runtime_ref(rt);
    h->workers = workers;
    h->nworkers = nworkers;
    h->rand_state = 0x9E3779B97F4A7C15ull ^ (uint64_t)time(NULL);
    for (size_t u = 0; u < cfg->nupstreams; u++) {
        const struct cfg_upstream *up = &rt->ups[u];
        if (!up->health)
            continue;
        for (size_t s = 0; s < up->nservers; s++) {
            struct hc_server *hs = &h->servers[h->nservers++];
            hs->h = h;
            hs->up = up;
            hs->srv = &up->servers[s];
            hs->st = &rt->servers[u][s];
            hs->tls = rt->tls_up ? rt->tls_up[u] : NULL;
            hs->timer = evtimer_new(base, start_check, hs);
            if (!hs->st->checks_passed && !hs->st->checks_failed && !hs->st->changed_at)
                __atomic_store_n(&hs->st->down, !up->health->initial_healthy, __ATOMIC_RELAXED);
            if (hs->timer) {
                /* First checks spread over a short moment, not all at once. */
                uint64_t ms = next_rand(h) % (up->health->interval_ms < 500 ? up->health->interval_ms : 500);
                struct timeval tv;
                tv = ms_timeval(ms);
                evtimer_add(hs->timer, &tv);
            }
        }
    }
    return h;
}

void health_stop(struct health *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->nservers; i++) {
        struct hc_server *hs = &h->servers[i];
        if (hs->cur)
            check_free(hs->cur);
        if (hs->timer)
            event_free(hs->timer);
    }
    while (h->ended) {
        struct check *k = h->ended;
        h->ended = k->next_ended;
        check_free(k);
    }
    free(h->servers);
    runtime_unref(h->rt);
    free(h);
}

#include "admin.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "listener.h"
#include "metrics.h"

struct admin {
    struct evhttp *http;
    const struct metrics_view *view;
    struct metrics_history *history;   /* owned; sampled by <sampler> */
    struct event *sampler;
    char csp[512];                     /* the page's Content-Security-Policy */
};

/* Read-only: GET and HEAD, anything else is 405 (evhttp itself would say 501). */
static int refuse_method(struct evhttp_request *req)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD)
        return 0;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
    evhttp_send_error(req, 405, "the admin listener is read-only");
    return 1;
}

static void reply(struct evhttp_request *req, const char *type, struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_send_reply(req, HTTP_OK, "OK", body);
}

typedef void (*render_fn)(struct evbuffer *out, const struct admin *a);

static void serve(struct evhttp_request *req, struct admin *a, const char *type, render_fn render)
{
    if (refuse_method(req))
        return;
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    render(b, a);
    reply(req, type, b);
    evbuffer_free(b);
}

static void render_metrics(struct evbuffer *out, const struct admin *a)
{
    metrics_render_prometheus(out, a->view);
}

static void render_status(struct evbuffer *out, const struct admin *a)
{
    metrics_render_status(out, a->view, a->history);
}

static void render_healthz(struct evbuffer *out, const struct admin *a) { evbuffer_add(out, "ok\n", 3); }

/* The page is static: evbuffer_add_reference would avoid the copy, but 20 KB at human
 * rates does not matter and a copy keeps the buffer's lifetime simple. */
static void render_page(struct evbuffer *out, const struct admin *a)
{
    evbuffer_add(out, admin_page, admin_page_len);
}

static void metrics_cb(struct evhttp_request *req, void *arg)
{
    serve(req, arg, "text/plain; version=0.0.4; charset=utf-8", render_metrics);
}

static void status_cb(struct evhttp_request *req, void *arg)
{
    serve(req, arg, "application/json", render_status);
}

static void healthz_cb(struct evhttp_request *req, void *arg)
{
    serve(req, arg, "text/plain", render_healthz);
}

/* The page runs only its own inline script and style (allowed by hash, so an injected
 * <script> or style attribute would not run even if escaping failed), fetches only
 * /status from this origin, and may not be framed (clickjacking). */
static void page_cb(struct evhttp_request *req, void *arg)
{
    struct admin *a = arg;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (evhttp_request_get_command(req) == EVHTTP_REQ_GET || evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        evhttp_add_header(h, "Content-Security-Policy", a->csp);
        evhttp_add_header(h, "X-Frame-Options", "DENY");
        evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    }
    serve(req, a, "text/html; charset=utf-8", render_page);
}

static void other_cb(struct evhttp_request *req, void *arg)
{
    evhttp_send_error(req, HTTP_NOTFOUND, "try / (status page), /metrics, /status or /healthz");
}

/* 'sha256-BASE64' of the text between <open> and the next <close> in the page; "" when
 * the page has no such element or hashing fails (the CSP then blocks it: visible at once). */
static void element_hash(const char *open, const char *close, char *out, size_t outlen)
{
    out[0] = 0;
    const char *page = (const char *)admin_page;
    const char *start = strstr(page, open);
    const char *end = start ? strstr(start + strlen(open), close) : NULL;
    if (!end)
        return;
    start += strlen(open);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    if (!EVP_Digest(start, (size_t)(end - start), md, &mdlen, EVP_sha256(), NULL))
        return;
    EVP_EncodeBlock(b64, md, (int)mdlen);
    snprintf(out, outlen, "'sha256-%s'", (const char *)b64);
}

static void build_csp(struct admin *a)
{
    char script[128], style[128];   /* room for any digest EVP_MAX_MD_SIZE allows */
    element_hash("<script>", "</script>", script, sizeof script);
    element_hash("<style>", "</style>", style, sizeof style);
    snprintf(a->csp, sizeof a->csp,
             "default-src 'none'; script-src %s; style-src %s; connect-src 'self'; img-src data:; "
             "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
             script[0] ? script : "'none'", style[0] ? style : "'none'");
}

static void sample_cb(evutil_socket_t fd, short what, void *arg)
{
    struct admin *a = arg;
    metrics_history_sample(a->history, a->view);
}

/* The history's first sample is its baseline: taken now, the page has data one interval
 * after start. */
static int start_sampler(struct admin *a, struct event_base *base)
{
    a->history = metrics_history_new();
    a->sampler = event_new(base, -1, EV_PERSIST, sample_cb, a);
    struct timeval every = { METRICS_HISTORY_INTERVAL_S, 0 };
    if (!a->history || !a->sampler || event_add(a->sampler, &every) < 0)
        return -1;
    metrics_history_sample(a->history, a->view);
    return 0;
}

static void admin_free(struct admin *a)
{
    if (a->sampler)
        event_free(a->sampler);
    metrics_history_free(a->history);
    if (a->http)
        evhttp_free(a->http);
    free(a);
}

static void set_routes(struct admin *a)
{
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                                            EVHTTP_REQ_OPTIONS);
    evhttp_set_timeout(a->http, 10);
    evhttp_set_max_headers_size(a->http, 8192);
    evhttp_set_max_body_size(a->http, 0);
    evhttp_set_cb(a->http, "/", page_cb, a);
    evhttp_set_cb(a->http, "/metrics", metrics_cb, a);
    evhttp_set_cb(a->http, "/status", status_cb, a);
    evhttp_set_cb(a->http, "/healthz", healthz_cb, a);
    evhttp_set_gencb(a->http, other_cb, a);
}

struct admin *admin_start(struct event_base *base, const struct cfg_admin *cfg,
                          const struct metrics_view *view, char *err, size_t errlen)
{
    struct admin *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->view = view;
    build_csp(a);
    if (start_sampler(a, base) < 0 || !(a->http = evhttp_new(base))) {
        snprintf(err, errlen, "out of memory");
        admin_free(a);
        return NULL;
    }
    int fd = listener_bind(&cfg->addr, err, errlen);
    if (fd < 0) {
        admin_free(a);
        return NULL;
    }
    set_routes(a);
    if (!evhttp_accept_socket_with_handle(a->http, fd)) {
        snprintf(err, errlen, "cannot serve the admin listener on %s", cfg->addr.text);
        close(fd);
        admin_free(a);
        return NULL;
    }
    return a;
}

void admin_stop(struct admin *a)
{
    if (a)
        admin_free(a);
}

#include "admin.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "listener.h"
#include "metrics.h"

struct admin {
    struct evhttp *http;
    const struct metrics_view *view;
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
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
    evhttp_send_reply(req, HTTP_OK, "OK", body);
}

typedef void (*render_fn)(struct evbuffer *out, const struct metrics_view *v);

static void serve(struct evhttp_request *req, struct admin *a, const char *type, render_fn render)
{
    if (refuse_method(req))
        return;
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    render(b, a->view);
    reply(req, type, b);
    evbuffer_free(b);
}

static void metrics_cb(struct evhttp_request *req, void *arg)
{
    serve(req, arg, "text/plain; version=0.0.4; charset=utf-8", metrics_render_prometheus);
}

static void status_cb(struct evhttp_request *req, void *arg)
{
    serve(req, arg, "application/json", metrics_render_status);
}

static void healthz_cb(struct evhttp_request *req, void *arg)
{
    if (refuse_method(req))
        return;
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evbuffer_add(b, "ok\n", 3);
    reply(req, "text/plain", b);
    evbuffer_free(b);
}

static void other_cb(struct evhttp_request *req, void *arg)
{
    evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics, /status or /healthz");
}

struct admin *admin_start(struct event_base *base, const struct cfg_admin *cfg,
                          const struct metrics_view *view, char *err, size_t errlen)
{
    struct admin *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->view = view;
    int fd = listener_bind(&cfg->addr, err, errlen);
    if (fd < 0 || !(a->http = evhttp_new(base))) {
        if (fd >= 0)
            close(fd);
        free(a);
        return NULL;
    }
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                                            EVHTTP_REQ_OPTIONS);
    evhttp_set_timeout(a->http, 10);
    evhttp_set_max_headers_size(a->http, 8192);
    evhttp_set_max_body_size(a->http, 0);
    evhttp_set_cb(a->http, "/metrics", metrics_cb, a);
    evhttp_set_cb(a->http, "/status", status_cb, a);
    evhttp_set_cb(a->http, "/healthz", healthz_cb, a);
    evhttp_set_gencb(a->http, other_cb, a);
    if (!evhttp_accept_socket_with_handle(a->http, fd)) {
        snprintf(err, errlen, "cannot serve the admin listener on %s", cfg->addr.text);
        close(fd);
        evhttp_free(a->http);
        free(a);
        return NULL;
    }
    return a;
}

void admin_stop(struct admin *a)
{
    if (!a)
        return;
    evhttp_free(a->http);
    free(a);
}

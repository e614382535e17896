#include "h1_write.h"

#include <event2/buffer.h>
#include <string.h>
#include <strings.h>

#include "h1_parse.h"

void h1_write_field(struct evbuffer *out, const struct http_field *f)
{
    evbuffer_add(out, f->name, f->name_len);
    evbuffer_add(out, ": ", 2);
    evbuffer_add(out, f->value, f->value_len);
    evbuffer_add(out, "\r\n", 2);
}

void h1_write_last_chunk(struct evbuffer *out, const struct http_head *trailers)
{
    evbuffer_add(out, "0\r\n", 3);
    for (uint32_t i = 0; trailers && i < trailers->nfields; i++)
        h1_write_field(out, &trailers->fields[i]);
    evbuffer_add(out, "\r\n", 2);
}

/* True when the comma-separated <list> holds <name> as an element (case-insensitive). */
static int list_has(const char *list, size_t len, const char *name, size_t nlen)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (list[i] == ',' || list[i] == ' ' || list[i] == '\t'))
            i++;
        size_t start = i;
        while (i < len && list[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t'))
            end--;
        if (end - start == nlen && strncasecmp(list + start, name, nlen) == 0)
            return 1;
    }
    return 0;
}

int h1_field_is_hop(const struct http_head *h, const struct http_field *f)
{
    if (h1_is_hop_by_hop(f->name, f->name_len))
        return 1;
    for (uint32_t i = 0; i < h->nfields; i++) {
        const struct http_field *c = &h->fields[i];
        if (h1_name_eq(c->name, c->name_len, "connection") &&
            list_has(c->value, c->value_len, f->name, f->name_len))
            return 1;
    }
    return 0;
}

int h1_request_field_rewritten(const struct http_head *req, const struct http_field *f)
{
    return h1_field_is_hop(req, f) || h1_name_eq(f->name, f->name_len, "host") ||
           h1_name_eq(f->name, f->name_len, "content-length") ||
           h1_name_eq(f->name, f->name_len, "expect") ||
           h1_name_eq(f->name, f->name_len, "x-forwarded-for") ||
           h1_name_eq(f->name, f->name_len, "x-forwarded-proto");
}

void h1_write_request_head(struct evbuffer *out, const struct http_head *req, int has_body,
                           int64_t content_length, const char *client_ip,
                           const char *default_host, int *chunked)
{
    evbuffer_add(out, req->method, req->method_len);
    evbuffer_add(out, " ", 1);
    evbuffer_add(out, req->path, req->path_len);
    evbuffer_add(out, " HTTP/1.1\r\nHost: ", 17);
    if (req->authority)
        evbuffer_add(out, req->authority, req->authority_len);
    else
        evbuffer_add_printf(out, "%s", default_host);
    evbuffer_add(out, "\r\n", 2);

    for (uint32_t i = 0; i < req->nfields; i++) {
        const struct http_field *f = &req->fields[i];
        if (!h1_request_field_rewritten(req, f))
            h1_write_field(out, f);
    }
    /* X-Forwarded-For: the client's list (several fields joined) plus the client. */
    evbuffer_add(out, "X-Forwarded-For: ", 17);
    for (uint32_t i = 0; i < req->nfields; i++) {
        const struct http_field *f = &req->fields[i];
        if (h1_name_eq(f->name, f->name_len, "x-forwarded-for")) {
            evbuffer_add(out, f->value, f->value_len);
            evbuffer_add(out, ", ", 2);
        }
    }
    evbuffer_add_printf(out, "%s\r\nX-Forwarded-Proto: %s\r\n", client_ip,
                        req->scheme ? req->scheme : "http");
    *chunked = 0;
    if (has_body && content_length >= 0)
        evbuffer_add_printf(out, "Content-Length: %lld\r\n", (long long)content_length);
    else if (has_body) {
        evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28);
        *chunked = 1;
    } else if ((req->method_len == 4 && memcmp(req->method, "POST", 4) == 0) ||
               (req->method_len == 3 && memcmp(req->method, "PUT", 3) == 0)) {
        evbuffer_add(out, "Content-Length: 0\r\n", 19);   /* some backends want a length */
    }
    evbuffer_add(out, "\r\n", 2);
}

#include "h1_write.h"

#include <event2/buffer.h>
#include <string.h>
#include <strings.h>

#include "ascii.h"
#include "h1_parse.h"

/* ---- integers ---- */

size_t fmt_u64(char *dst, uint64_t v)
{
    size_t n = 1;
    for (uint64_t t = v; t >= 10; t /= 10)
        n++;
    for (size_t i = n; i > 0; i--) {
        dst[i - 1] = (char)('0' + v % 10);
        v /= 10;
    }
    return n;
}

size_t fmt_x64(char *dst, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 1;
    for (uint64_t t = v; t >= 16; t >>= 4)
        n++;
    for (size_t i = n; i > 0; i--) {
        dst[i - 1] = hex[v & 15];
        v >>= 4;
    }
    return n;
}

/* ---- one contiguous append ---- */

/* Room for <n> contiguous bytes at the end of <out>, or NULL (ENOMEM). Fill it, then
 * commit() exactly once: that single commit is the one change the buffer's callbacks see. */
static char *reserve(struct evbuffer *out, size_t n, struct evbuffer_iovec *v)
{
    if (evbuffer_reserve_space(out, (ev_ssize_t)n, v, 1) != 1 || v->iov_len < n)
        return NULL;
    return v->iov_base;
}

static void commit(struct evbuffer *out, struct evbuffer_iovec *v, const char *end)
{
    v->iov_len = (size_t)(end - (const char *)v->iov_base);
    evbuffer_commit_space(out, v, 1);
}

static char *put(char *p, const void *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

static size_t field_size(const struct http_field *f)
{
    return (size_t)f->name_len + f->value_len + 4;
}

static char *put_field(char *p, const struct http_field *f)
{
    p = put(p, f->name, f->name_len);
    *p++ = ':';
    *p++ = ' ';
    p = put(p, f->value, f->value_len);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

void h1_write_body(struct evbuffer *out, struct evbuffer *data, int chunked)
{
    if (!chunked) {
        evbuffer_add_buffer(out, data);
        return;
    }
    char size[FMT_X64_MAX + 2];
    size_t n = fmt_x64(size, evbuffer_get_length(data));
    size[n++] = '\r';
    size[n++] = '\n';
    evbuffer_add(out, size, n);
    evbuffer_add_buffer(out, data);
    evbuffer_add(out, "\r\n", 2);
}

void h1_write_field(struct evbuffer *out, const struct http_field *f)
{
    struct evbuffer_iovec v;
    char *p = reserve(out, field_size(f), &v);
    if (p)
        commit(out, &v, put_field(p, f));
}

void h1_write_last_chunk(struct evbuffer *out, const struct http_head *trailers)
{
    size_t n = 5;
    uint32_t nf = trailers ? trailers->nfields : 0;
    for (uint32_t i = 0; i < nf; i++)
        n += field_size(&trailers->fields[i]);
    struct evbuffer_iovec v;
    char *p = reserve(out, n, &v);
    if (!p)
        return;
    p = PUT_LIT(p, "0\r\n");
    for (uint32_t i = 0; i < nf; i++)
        p = put_field(p, &trailers->fields[i]);
    p = PUT_LIT(p, "\r\n");
    commit(out, &v, p);
}

/* ---- field names ---- */

#define NAME_IS(name, len, lit) \
    ((len) == sizeof(lit) - 1 && ascii_eq_lower((name), (lit), sizeof(lit) - 1))

/* What a field name means to the request writer. NK_HOP and NK_CONNECTION together are
 * exactly h1_is_hop_by_hop; the others are the fields h1_write_request_head writes itself. */
enum name_kind { NK_OTHER, NK_HOP, NK_CONNECTION, NK_HOST, NK_CLEN, NK_EXPECT, NK_XFF, NK_XFP };

static enum name_kind name_kind(const char *n, size_t len)
{
    switch (len) {
    case 2: return ascii_eq_lower(n, "te", 2) ? NK_HOP : NK_OTHER;
    case 4: return ascii_eq_lower(n, "host", 4) ? NK_HOST : NK_OTHER;
    case 6: return ascii_eq_lower(n, "expect", 6) ? NK_EXPECT : NK_OTHER;
    case 7: return ascii_eq_lower(n, "upgrade", 7) ? NK_HOP : NK_OTHER;
    case 10:
        switch (ascii_lower((unsigned char)n[0])) {
        case 'c': return ascii_eq_lower(n, "connection", 10) ? NK_CONNECTION : NK_OTHER;
        case 'k': return ascii_eq_lower(n, "keep-alive", 10) ? NK_HOP : NK_OTHER;
        default: return NK_OTHER;
        }
    case 14:
        switch (ascii_lower((unsigned char)n[0])) {
        case 'c': return ascii_eq_lower(n, "content-length", 14) ? NK_CLEN : NK_OTHER;
        case 'h': return ascii_eq_lower(n, "http2-settings", 14) ? NK_HOP : NK_OTHER;
        default: return NK_OTHER;
        }
    case 15: return ascii_eq_lower(n, "x-forwarded-for", 15) ? NK_XFF : NK_OTHER;
    case 16: return ascii_eq_lower(n, "proxy-connection", 16) ? NK_HOP : NK_OTHER;
    case 17:
        switch (ascii_lower((unsigned char)n[0])) {
        case 't': return ascii_eq_lower(n, "transfer-encoding", 17) ? NK_HOP : NK_OTHER;
        case 'x': return ascii_eq_lower(n, "x-forwarded-proto", 17) ? NK_XFP : NK_OTHER;
        default: return NK_OTHER;
        }
    default: return NK_OTHER;
    }
}

static int kind_is_hop(enum name_kind k)
{
    return k == NK_HOP || k == NK_CONNECTION;
}

/* ---- hop-by-hop ---- */

/* True when the comma-separated <list> holds <name> as an element (case-insensitive); an
 * empty element names nothing. */
static int list_has(const char *list, size_t len, const char *name, size_t nlen)
{
    size_t pos = 0, n;
    const char *el;
    while (h1_list_next(list, len, &pos, &el, &n))
        if (n && n == nlen && strncasecmp(el, name, nlen) == 0)
            return 1;
    return 0;
}

/* True when some Connection field of <h> lists <name>. */
static int connection_lists(const struct http_head *h, const char *name, size_t nlen)
{
    for (uint32_t i = 0; i < h->nfields; i++) {
        const struct http_field *c = &h->fields[i];
        if (NAME_IS(c->name, c->name_len, "connection") &&
            list_has(c->value, c->value_len, name, nlen))
            return 1;
    }
    return 0;
}

int h1_field_is_hop(const struct http_head *h, const struct http_field *f)
{
    return h1_is_hop_by_hop(f->name, f->name_len) || connection_lists(h, f->name, f->name_len);
}

static void hop_begin(struct h1_hop *hop, const struct http_head *h)
{
    hop->head = h;
    hop->ntok = 0;
    hop->overflow = 0;
}

/* Records the elements of one Connection value, split as list_has splits it. */
static void hop_add_list(struct h1_hop *hop, const char *list, size_t len)
{
    size_t pos = 0, n;
    const char *el;
    while (!hop->overflow && h1_list_next(list, len, &pos, &el, &n)) {
        if (!n || kind_is_hop(name_kind(el, n)))
            continue;               /* names no field, or one that is hop-by-hop anyway */
        if (hop->ntok == H1_HOP_TOKENS) {
            hop->overflow = 1;      /* hop_listed scans the head instead */
            break;
        }
        hop->tok[hop->ntok].p = el;
        hop->tok[hop->ntok].len = (uint32_t)n;
        hop->ntok++;
    }
}

/* True when a Connection field of the head lists <name>, for a name that is not a fixed
 * hop-by-hop one. */
static int hop_listed(const struct h1_hop *hop, const char *name, size_t nlen)
{
    if (hop->overflow)
        return connection_lists(hop->head, name, nlen);
    for (uint32_t i = 0; i < hop->ntok; i++)
        if (hop->tok[i].len == nlen && strncasecmp(hop->tok[i].p, name, nlen) == 0)
            return 1;
    return 0;
}

void h1_hop_init(struct h1_hop *hop, const struct http_head *h)
{
    hop_begin(hop, h);
    for (uint32_t i = 0; i < h->nfields; i++) {
        const struct http_field *c = &h->fields[i];
        if (NAME_IS(c->name, c->name_len, "connection"))
            hop_add_list(hop, c->value, c->value_len);
    }
}

enum h1_fwd h1_hop_forward(const struct h1_hop *hop, const char *name, size_t name_len)
{
    enum name_kind k = name_kind(name, name_len);
    if (k == NK_CLEN)
        return H1_FWD_LENGTH;
    return kind_is_hop(k) || hop_listed(hop, name, name_len) ? H1_FWD_DROP : H1_FWD_KEEP;
}

int h1_request_field_rewritten(const struct http_head *req, const struct http_field *f)
{
    return name_kind(f->name, f->name_len) != NK_OTHER ||
           connection_lists(req, f->name, f->name_len);
}

/* ---- request head ---- */

void h1_write_request_head(struct evbuffer *out, const struct http_head *req, int has_body,
                           int64_t content_length, const char *client_ip,
                           const char *default_host, int *chunked)
{
    const char *host = req->authority ? req->authority : default_host;
    size_t host_len = req->authority ? req->authority_len : strlen(default_host);
    const char *scheme = req->scheme ? req->scheme : "http";
    size_t scheme_len = strlen(scheme), ip_len = strlen(client_ip);
    char num[FMT_U64_MAX];
    size_t num_len = 0;

    /* One pass for the size (every field counted: the kept ones plus the X-Forwarded-For
     * values, each shorter than its field line, fit in that) and the Connection tokens. */
    struct h1_hop hop;
    size_t fields_size = 0;
    hop_begin(&hop, req);
    for (uint32_t i = 0; i < req->nfields; i++) {
        const struct http_field *f = &req->fields[i];
        fields_size += field_size(f);
        if (NAME_IS(f->name, f->name_len, "connection"))
            hop_add_list(&hop, f->value, f->value_len);
    }

    enum { FR_NONE, FR_LENGTH, FR_CHUNKED, FR_ZERO } framing = FR_NONE;
    size_t framing_size = 0;
    *chunked = 0;
    if (has_body && content_length >= 0) {
        framing = FR_LENGTH;
        num_len = fmt_u64(num, (uint64_t)content_length);
        framing_size = sizeof("Content-Length: \r\n") - 1 + num_len;
    } else if (has_body) {
        framing = FR_CHUNKED;
        framing_size = sizeof("Transfer-Encoding: chunked\r\n") - 1;
        *chunked = 1;
    } else if ((req->method_len == 4 && memcmp(req->method, "POST", 4) == 0) ||
               (req->method_len == 3 && memcmp(req->method, "PUT", 3) == 0)) {
        framing = FR_ZERO;                  /* some backends want a length */
        framing_size = sizeof("Content-Length: 0\r\n") - 1;
    }

    size_t bound = (size_t)req->method_len + 1 + req->path_len +
                   sizeof(" HTTP/1.1\r\nHost: ") - 1 + host_len + 2 + fields_size +
                   sizeof("X-Forwarded-For: ") - 1 + ip_len +
                   sizeof("\r\nX-Forwarded-Proto: ") - 1 + scheme_len + 2 + framing_size + 2;
    struct evbuffer_iovec v;
    char *p = reserve(out, bound, &v);
    if (!p)
        return;

    p = put(p, req->method, req->method_len);
    *p++ = ' ';
    p = put(p, req->path, req->path_len);
    p = PUT_LIT(p, " HTTP/1.1\r\nHost: ");
    p = put(p, host, host_len);
    p = PUT_LIT(p, "\r\n");

    uint32_t xff_first = req->nfields;
    for (uint32_t i = 0; i < req->nfields; i++) {
        const struct http_field *f = &req->fields[i];
        enum name_kind k = name_kind(f->name, f->name_len);
        if (k == NK_OTHER) {
            if (!(hop.ntok || hop.overflow) || !hop_listed(&hop, f->name, f->name_len))
                p = put_field(p, f);
        } else if (k == NK_XFF && xff_first == req->nfields) {
            xff_first = i;
        }
    }
    /* X-Forwarded-For: the client's list (several fields joined) plus the client. */
    p = PUT_LIT(p, "X-Forwarded-For: ");
    for (uint32_t i = xff_first; i < req->nfields; i++) {
        const struct http_field *f = &req->fields[i];
        if (NAME_IS(f->name, f->name_len, "x-forwarded-for")) {
            p = put(p, f->value, f->value_len);
            p = PUT_LIT(p, ", ");
        }
    }
    p = put(p, client_ip, ip_len);
    p = PUT_LIT(p, "\r\nX-Forwarded-Proto: ");
    p = put(p, scheme, scheme_len);
    p = PUT_LIT(p, "\r\n");
    switch (framing) {
    case FR_LENGTH:
        p = PUT_LIT(p, "Content-Length: ");
        p = put(p, num, num_len);
        p = PUT_LIT(p, "\r\n");
        break;
    case FR_CHUNKED:
        p = PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
        break;
    case FR_ZERO:
        p = PUT_LIT(p, "Content-Length: 0\r\n");
        break;
    case FR_NONE:
        break;
    }
    p = PUT_LIT(p, "\r\n");
    commit(out, &v, p);
}

void h1_write_response_head(struct evbuffer *out, const struct http_head *h, const char *reason,
                            size_t reason_len, int keep_length, const char *extra,
                            size_t extra_len)
{
    struct h1_hop hop;
    h1_hop_init(&hop, h);
    size_t n = sizeof "HTTP/1.1 000 " - 1 + reason_len + 2 + extra_len + 2;
    for (uint32_t i = 0; i < h->nfields; i++)
        n += field_size(&h->fields[i]);
    struct evbuffer_iovec v;
    char *p = reserve(out, n, &v);
    if (!p)
        return;
    int status = h->status >= 100 && h->status <= 999 ? h->status : 502;
    p = PUT_LIT(p, "HTTP/1.1 ");
    *p++ = (char)('0' + status / 100);
    *p++ = (char)('0' + status / 10 % 10);
    *p++ = (char)('0' + status % 10);
    *p++ = ' ';
    p = put(p, reason, reason_len);
    p = PUT_LIT(p, "\r\n");
    for (uint32_t i = 0; i < h->nfields; i++) {
        const struct http_field *f = &h->fields[i];
        enum name_kind k = name_kind(f->name, f->name_len);
        if (kind_is_hop(k) || (k == NK_CLEN && !keep_length) || hop_listed(&hop, f->name, f->name_len))
            continue;
        p = put_field(p, f);
    }
    p = put(p, extra, extra_len);
    p = PUT_LIT(p, "\r\n");
    commit(out, &v, p);
}

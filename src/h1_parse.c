/* h1_parse — strict, incremental HTTP/1.x parser (RFC 9112, RFC 9110). See h1_parse.h.
 *
 * Policy, in one place, because a proxy that is lenient where its backend is strict (or the
 * reverse) is how request smuggling happens:
 *  - Lines end with CRLF only. A bare CR is an error, and so is a bare LF: RFC 9112 §2.2 lets
 *    a recipient accept a lone LF, but a backend that does not would see a different message.
 *  - obs-fold, whitespace before the colon, controls (NUL included) in a field are errors.
 *  - Framing headers (Content-Length, Transfer-Encoding) must be unambiguous or the message is
 *    refused; nothing is repaired.
 *
 * The head parsers restart from byte 0 on each call (the caller re-offers the whole buffer),
 * which keeps them stateless. Each byte is classified as soon as it is seen, so a bad byte is
 * reported even while the head is still incomplete.
 */
#include "h1_parse.h"

#include <stdint.h>
#include <string.h>

#include "ascii.h"

#define DEFAULT_MAX_HEAD 8192
#define DEFAULT_MAX_LINE 4096
#define DEFAULT_MAX_HEADERS 100
#define MAX_CONTENT_LENGTH (UINT64_C(1) << 62)
#define MAX_CHUNK_EXT 1024          /* bytes of chunk extensions on one chunk-size line */
#define MAX_CHUNK_SIZE_DIGITS 16    /* 16 hex digits fill a uint64_t */

/* Byte classes, one table lookup per byte. */
enum {
    C_TCHAR = 1,    /* token character (RFC 9110 §5.6.2) */
    C_VCHAR = 2,    /* visible ASCII 0x21..0x7e: request-target bytes */
    C_FIELD = 4,    /* field-value bytes: VCHAR, obs-text, SP, HTAB */
    C_HEX = 8,
    C_DIGIT = 16,
    C_HOST = 32,    /* reg-name: unreserved and sub-delims except ',' (see host_valid) */
};

/* Generated; row = high nibble. */
static const unsigned char cls[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0,  4,  0,  0,  0,  0,  0,  0,  /* 00 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 10 */
     4, 39,  6,  7, 39,  7, 39, 39, 38, 38, 39, 39,  6, 39, 39,  6,  /* 20 */
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63,  6, 38,  6, 38,  6,  6,  /* 30 */
     6, 47, 47, 47, 47, 47, 47, 39, 39, 39, 39, 39, 39, 39, 39, 39,  /* 40 */
    39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39,  6,  6,  6,  7, 39,  /* 50 */
     7, 47, 47, 47, 47, 47, 47, 39, 39, 39, 39, 39, 39, 39, 39, 39,  /* 60 */
    39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39,  6,  7,  6, 39,  0,  /* 70 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 80 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 90 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* a0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* b0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* c0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* d0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* e0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* f0 */
};

#define IS(c, k) (cls[(unsigned char)(c)] & (k))
#define IS_OWS(c) ((c) == ' ' || (c) == '\t')

/* An error being reported: HTTP status for the client and a static reason for the log. */
struct perr {
    int status;
    const char *reason;
};

static long fail(struct perr *e, int status, const char *reason)
{
    e->status = status;
    e->reason = reason;
    return -1;
}

/* ---- helpers (public) ---- */

int h1_name_eq(const char *name, size_t name_len, const char *lower)
{
    size_t i;

    for (i = 0; i < name_len; i++)
        if (lower[i] == '\0' || ascii_lower((unsigned char)name[i]) != (unsigned char)lower[i])
            return 0;
    return lower[i] == '\0';
}

int h1_list_next(const char *v, size_t n, size_t *pos, const char **el, size_t *el_len)
{
    size_t s = *pos, e;

    if (s > n)
        return 0;
    for (e = s; e < n && v[e] != ','; e++)
        ;
    *pos = e + 1;
    while (s < e && IS_OWS(v[s]))
        s++;
    while (e > s && IS_OWS(v[e - 1]))
        e--;
    *el = v + s;
    *el_len = e - s;
    return 1;
}

int h1_list_has_token(const char *value, size_t value_len, const char *token)
{
    size_t pos = 0, n;
    const char *el;

    while (h1_list_next(value, value_len, &pos, &el, &n))
        if (n > 0 && h1_name_eq(el, n, token))
            return 1;
    return 0;
}

int h1_is_hop_by_hop(const char *name, size_t name_len)
{
    switch (name_len) {
    case 2: return h1_name_eq(name, name_len, "te");
    case 7: return h1_name_eq(name, name_len, "upgrade");
    case 10: return h1_name_eq(name, name_len, "connection") ||
                    h1_name_eq(name, name_len, "keep-alive");
    case 14: return h1_name_eq(name, name_len, "http2-settings");
    case 16: return h1_name_eq(name, name_len, "proxy-connection");
    case 17: return h1_name_eq(name, name_len, "transfer-encoding");
    default: return 0;
    }
}

/* Method names are case-sensitive (RFC 9110 §9.1): "get" is not GET. */
int h1_method_is_idempotent(const char *m, size_t len)
{
    static const char *const idem[] = { "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE" };
    size_t i;

    for (i = 0; i < sizeof(idem) / sizeof(idem[0]); i++)
        if (strlen(idem[i]) == len && memcmp(idem[i], m, len) == 0)
            return 1;
    return 0;
}

/* ---- head syntax ---- */

/* Matches "HTTP/" DIGIT "." DIGIT at buf[p]. Returns 1 (and the digits), 0 when the buffer
 * ends first, -1 on a mismatch. HTTP-name is case-sensitive (RFC 9112 §2.3). */
static int match_version(const char *buf, size_t p, size_t end, int *major, int *minor)
{
    static const char pat[] = "HTTP/d.d";
    size_t i;

    if (p + 8 <= end) {   /* the usual case, in one comparison */
        if (memcmp(buf + p, "HTTP/", 5) != 0 || !IS(buf[p + 5], C_DIGIT) || buf[p + 6] != '.' ||
            !IS(buf[p + 7], C_DIGIT))
            return -1;
    } else {
        for (i = 0; i < 8; i++) {
            if (p + i >= end)
                return 0;
            if (pat[i] == 'd' ? !IS(buf[p + i], C_DIGIT) : buf[p + i] != pat[i])
                return -1;
        }
    }
    *major = buf[p + 5] - '0';
    *minor = buf[p + 7] - '0';
    return 1;
}

/* The end of the run of field-value bytes (C_FIELD) from <p>. Eight bytes at a time while
 * none is a control byte (< 0x20, HTAB included) or DEL; the byte loop decides the rest. */
static inline __attribute__((always_inline)) size_t skip_field_bytes(const char *buf, size_t p, size_t end)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (end - p >= 8) {
        uint64_t x, y;
        memcpy(&x, buf + p, 8);
        y = x ^ (ones * 0x7f);
        if (((x - ones * 0x20) & ~x & highs) | ((y - ones) & ~y & highs))
            break;
        p += 8;
    }
    while (p < end && IS(buf[p], C_FIELD))
        p++;
    return p;
}

/* Length of a start line cut short by the end of the buffer, not counting a final CR that
 * may be the first half of its CRLF: a line of exactly max_line bytes must not trip 414. */
static size_t partial_line_len(const char *buf, size_t start, size_t end)
{
    return end - start - (end > start && buf[end - 1] == '\r');
}

/* request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 §3), nothing
 * more: no extra spaces, no HTTP/0.9. Returns the offset after the CRLF, 0, or -1. */
static long parse_request_line(const char *buf, size_t p, size_t end, size_t max_line,
                               struct h1_request *req, struct perr *e)
{
    size_t start = p, t;
    int major, minor, r;

    while (p < end && IS(buf[p], C_TCHAR))
        p++;
    if (p >= end)
        goto more;
    if (p == start || buf[p] != ' ')
        return fail(e, 400, "invalid method");
    req->method = buf + start;
    req->method_len = p - start;

    t = ++p;
    while (p < end && IS(buf[p], C_VCHAR))
        p++;
    if (p >= end)
        goto more;
    if (p == t || buf[p] != ' ')
        return fail(e, 400, "invalid request-target");
    req->target = buf + t;
    req->target_len = p - t;

    r = match_version(buf, ++p, end, &major, &minor);
    if (r == 0)
        goto more;
    if (r < 0)
        return fail(e, 400, "invalid HTTP version");
    p += 8;
    if (p >= end)
        goto more;
    if (buf[p] != '\r')
        return fail(e, 400, "invalid HTTP version");
    if (p + 1 >= end)
        goto more;
    if (buf[p + 1] != '\n')
        return fail(e, 400, "bare CR in request line");
    if (p - start > max_line)
        return fail(e, 414, "request line too long");
    if (major != 1 || minor > 1)
        return fail(e, 505, "unsupported HTTP version");
    req->msg.version_minor = minor;
    return (long)(p + 2);
more:
    if (partial_line_len(buf, start, end) > max_line)
        return fail(e, 414, "request line too long");
    return 0;
}

/* status-line = HTTP-version SP 3DIGIT SP [reason-phrase] CRLF (RFC 9112 §4). The SP before
 * an empty reason is optional here because real servers omit it. */
static long parse_status_line(const char *buf, size_t end, size_t max_line,
                              struct h1_response *resp, struct perr *e)
{
    size_t p = 0, reason;
    int major, minor, r, i;

    r = match_version(buf, 0, end, &major, &minor);
    if (r == 0)
        goto more;
    if (r < 0)
        return fail(e, 502, "invalid status line");
    if (major != 1 || minor > 1)
        return fail(e, 502, "unsupported HTTP version in response");
    p = 8;
    if (p >= end)
        goto more;
    if (buf[p++] != ' ')
        return fail(e, 502, "invalid status line");
    resp->status = 0;
    for (i = 0; i < 3; i++, p++) {
        if (p >= end)
            goto more;
        if (!IS(buf[p], C_DIGIT))
            return fail(e, 502, "invalid status code");
        resp->status = resp->status * 10 + (buf[p] - '0');
    }
    if (p >= end)
        goto more;
    if (buf[p] == ' ')
        p++;
    else if (buf[p] != '\r')
        return fail(e, 502, "invalid status line");
    reason = p;
    p = skip_field_bytes(buf, p, end);
    if (p >= end)
        goto more;
    if (buf[p] != '\r')
        return fail(e, 502, "invalid character in reason phrase");
    if (p + 1 >= end)
        goto more;
    if (buf[p + 1] != '\n')
        return fail(e, 502, "bare CR in status line");
    if (p > max_line)
        return fail(e, 502, "status line too long");
    if (resp->status < 100 || resp->status > 599)
        return fail(e, 502, "status code out of range");
    resp->msg.version_minor = minor;
    resp->reason = buf + reason;
    resp->reason_len = p - reason;
    return (long)(p + 2);
more:
    if (partial_line_len(buf, 0, end) > max_line)
        return fail(e, 502, "status line too long");
    return 0;
}

/* Parses field lines from buf[p..end) through the empty line that ends the section
 * (RFC 9112 §5). Returns the offset after that empty line, 0 when more bytes are needed, -1
 * on error. <*num> is always the number of complete fields stored. */
static long parse_fields(const char *buf, size_t p, size_t end, struct h1_header *hdrs,
                         size_t max, size_t *num, struct perr *e)
{
    size_t n = 0, name, val, val_end;
    long ret = 0;

    for (;;) {
        if (p >= end)
            break;
        if (buf[p] == '\r') {
            if (p + 1 >= end)
                break;
            if (buf[p + 1] != '\n') {
                ret = fail(e, 400, "bare CR in header section");
                break;
            }
            ret = (long)(p + 2);
            break;
        }
        /* A line starting with whitespace is obs-fold (or junk after the start line):
         * unfolding it is one more chance to disagree with the backend. */
        if (IS_OWS(buf[p])) {
            ret = fail(e, 400, "obsolete line folding");
            break;
        }
        if (n >= max) {
            ret = fail(e, 431, "too many header fields");
            break;
        }
        name = p;
        while (p < end && IS(buf[p], C_TCHAR))
            p++;
        if (p >= end)
            break;
        if (buf[p] != ':' || p == name) {
            ret = fail(e, 400, IS_OWS(buf[p]) ? "whitespace before colon"
                                                : "invalid header field name");
            break;
        }
        hdrs[n].name = buf + name;
        hdrs[n].name_len = p - name;
        p++;
        while (p < end && IS_OWS(buf[p]))
            p++;
        val = p;
        p = skip_field_bytes(buf, p, end);
        if (p >= end)
            break;
        for (val_end = p; val_end > val && IS_OWS(buf[val_end - 1]); val_end--)
            ;
        if (buf[p] != '\r') {   /* NUL, bare LF, other controls, DEL */
            ret = fail(e, 400, "invalid character in header field value");
            break;
        }
        if (p + 1 >= end)
            break;
        if (buf[p + 1] != '\n') {
            ret = fail(e, 400, "bare CR in header field");
            break;
        }
        hdrs[n].value = buf + val;
        hdrs[n].value_len = val_end - val;
        n++;
        p += 2;
    }
    *num = n;
    return ret;
}

/* ---- head semantics ---- */

/* What the header walk found about framing. */
struct framing {
    int cl_seen;
    uint64_t cl;
    int te_seen;
    int te_malformed;       /* an empty or non-token coding (parameters included) */
    int te_chunked;         /* how many times "chunked" appears */
    int te_last_chunked;    /* the final coding is "chunked" */
    int te_other;           /* codings other than chunked */
    int host_count;
    const struct h1_header *host;
};

/* Content-Length = 1*DIGIT; a list or repeated field is accepted only when every element
 * is the same number (RFC 9110 §8.6). Returns 0 or -1. */
static int add_content_length(struct framing *f, const char *v, size_t n)
{
    size_t pos = 0, len, i;
    const char *el;
    uint64_t x;

    while (h1_list_next(v, n, &pos, &el, &len)) {
        if (len == 0)
            return -1;
        for (x = 0, i = 0; i < len; i++) {
            unsigned d = (unsigned char)el[i] - '0';
            if (d > 9 || x > (MAX_CONTENT_LENGTH - d) / 10)
                return -1;
            x = x * 10 + d;
        }
        if (f->cl_seen && x != f->cl)
            return -1;
        f->cl_seen = 1;
        f->cl = x;
    }
    return 0;
}

/* Codings across every Transfer-Encoding field, in order (a repeated field is one list). */
static void add_transfer_encoding(struct framing *f, const char *v, size_t n)
{
    size_t pos = 0, len, i;
    const char *el;

    f->te_seen = 1;
    while (h1_list_next(v, n, &pos, &el, &len)) {
        for (i = 0; i < len && IS(el[i], C_TCHAR); i++)
            ;
        if (len == 0 || i < len) {
            f->te_malformed = 1;
            f->te_last_chunked = 0;
        } else if (h1_name_eq(el, len, "chunked")) {
            f->te_chunked++;
            f->te_last_chunked = 1;
        } else {
            f->te_other++;
            f->te_last_chunked = 0;
        }
    }
}

/* Keep-Alive: timeout=N[, max=M] (RFC 2068 §19.7.1). Anything unparsable is ignored: the
 * value is only a hint for how long an idle backend connection may be kept. */
static void parse_keep_alive(const char *v, size_t n, int64_t *timeout)
{
    size_t pos = 0, len, i;
    const char *el;
    int64_t x;

    while (h1_list_next(v, n, &pos, &el, &len)) {
        if (len <= 8 || !h1_name_eq(el, 8, "timeout="))
            continue;
        for (x = 0, i = 8; i < len && IS(el[i], C_DIGIT) && x < 1000000000; i++)
            x = x * 10 + (el[i] - '0');
        if (i == len)
            *timeout = x;
    }
}

/* uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2). A comma is refused although
 * reg-name allows it: "a,b" reads as a list of two hosts to some implementations. */
int h1_host_valid(const char *h, size_t n)
{
    size_t i = 0;

    if (n > 0 && h[0] == '[') {   /* IP-literal: hex digits, ':', '.', IPvFuture chars */
        for (i = 1; i < n && h[i] != ']'; i++)
            if (!IS(h[i], C_HOST) && h[i] != ':')
                return 0;
        if (i >= n || i == 1)
            return 0;
        i++;
    } else {
        while (i < n && h[i] != ':') {
            if (h[i] == '%') {
                if (i + 2 >= n || !IS(h[i + 1], C_HEX) || !IS(h[i + 2], C_HEX))
                    return 0;
                i += 3;
            } else if (IS(h[i], C_HOST)) {
                i++;
            } else {
                return 0;
            }
        }
    }
    if (i < n) {
        if (h[i] != ':')
            return 0;
        for (i++; i < n; i++)
            if (!IS(h[i], C_DIGIT))
                return 0;
    }
    return 1;
}

/* For a name whose length is already known to be the literal's. */
#define NAME_IS_LIT(name, lit) ascii_eq_lower((name), (lit), sizeof(lit) - 1)

/* One walk over a Connection value for the tokens that set flags in <m>. */
static void connection_tokens(struct h1_message *m, const char *v, size_t n)
{
    size_t pos = 0, len;
    const char *el;

    while (h1_list_next(v, n, &pos, &el, &len)) {
        switch (len) {
        case 5:
            m->conn_close |= NAME_IS_LIT(el, "close");
            break;
        case 7:
            m->conn_upgrade |= NAME_IS_LIT(el, "upgrade");
            break;
        case 10:
            m->conn_keep_alive |= NAME_IS_LIT(el, "keep-alive");
            break;
        }
    }
}

/* Walks the fields once, recording framing facts and connection flags in <m>. */
static int scan_headers(struct h1_message *m, struct framing *f, int is_request, struct perr *e)
{
    size_t i;

    memset(f, 0, sizeof(*f));
    for (i = 0; i < m->num_headers; i++) {
        const struct h1_header *h = &m->headers[i];
        const char *n = h->name, *v = h->value;
        size_t nl = h->name_len, vl = h->value_len;

        switch (nl) {
        case 14:
            if (NAME_IS_LIT(n, "content-length") && add_content_length(f, v, vl) < 0)
                return (int)fail(e, 400, "invalid or conflicting Content-Length");
            break;
        case 17:
            if (NAME_IS_LIT(n, "transfer-encoding"))
                add_transfer_encoding(f, v, vl);
            break;
        case 4:
            if (NAME_IS_LIT(n, "host")) {
                f->host_count++;
                f->host = h;
            }
            break;
        case 10:
            if (NAME_IS_LIT(n, "connection"))
                connection_tokens(m, v, vl);
            else if (!is_request && NAME_IS_LIT(n, "keep-alive"))
                parse_keep_alive(v, vl, &m->keep_alive_timeout);
            break;
        case 7:
            if (NAME_IS_LIT(n, "upgrade"))
                m->has_upgrade = 1;
            break;
        case 6:
            if (is_request && NAME_IS_LIT(n, "expect") && h1_name_eq(v, vl, "100-continue"))
                m->expect_continue = 1;
            break;
        case 2:
            if (is_request && NAME_IS_LIT(n, "te") && h1_list_has_token(v, vl, "trailers"))
                m->has_te_trailers = 1;
            break;
        }
    }
    return 0;
}

static void reset_message(struct h1_message *m)
{
    m->version_minor = 0;
    m->num_headers = 0;
    m->body_kind = H1_BODY_NONE;
    m->content_length = 0;
    m->conn_close = m->conn_keep_alive = m->conn_upgrade = 0;
    m->has_upgrade = m->expect_continue = m->has_te_trailers = 0;
    m->keep_alive_timeout = -1;
}

/* Request framing, RFC 9112 §6.1 and §6.3. */
static int request_semantics(struct h1_request *req, struct perr *e)
{
    struct h1_message *m = &req->msg;
    struct framing f;

    if (scan_headers(m, &f, 1, e) < 0)
        return -1;
    if (f.host_count > 1)
        return (int)fail(e, 400, "duplicate Host header");
    if (f.host_count == 0 && m->version_minor == 1)
        return (int)fail(e, 400, "missing Host header");
    if (f.host) {
        if (!h1_host_valid(f.host->value, f.host->value_len))
            return (int)fail(e, 400, "invalid Host header");
        req->host = f.host->value;
        req->host_len = f.host->value_len;
    }
    if (f.te_seen) {
        if (f.cl_seen)
            return (int)fail(e, 400, "both Transfer-Encoding and Content-Length");
        if (m->version_minor == 0)
            return (int)fail(e, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (f.te_malformed)
            return (int)fail(e, 400, "malformed Transfer-Encoding");
        if (f.te_chunked > 1)
            return (int)fail(e, 400, "chunked applied more than once");
        if (f.te_chunked == 1 && !f.te_last_chunked)
            return (int)fail(e, 400, "chunked is not the final transfer coding");
        if (f.te_other)   /* we decode nothing but chunked, so refuse rather than forward */
            return (int)fail(e, 501, "unsupported transfer coding");
        m->body_kind = H1_BODY_CHUNKED;
    } else if (f.cl_seen) {
        m->body_kind = H1_BODY_LENGTH;
        m->content_length = f.cl;
    }
    return 0;
}

/* Response framing, RFC 9112 §6.3 in its order. */
static int response_semantics(struct h1_response *resp, int head, int connect, struct perr *e)
{
    struct h1_message *m = &resp->msg;
    struct framing f;
    int s = resp->status;

    if (scan_headers(m, &f, 0, e) < 0)
        return -1;
    if (f.te_seen) {
        /* RFC 9112 §6.3 lets a recipient let TE win over CL; a proxy refuses instead, since
         * whoever is behind us may pick the other one. */
        if (f.cl_seen)
            return (int)fail(e, 502, "both Transfer-Encoding and Content-Length");
        if (m->version_minor == 0)   /* §6.1: faulty framing */
            return (int)fail(e, 502, "Transfer-Encoding in an HTTP/1.0 response");
        if (f.te_malformed || f.te_chunked > 1 || (f.te_chunked && !f.te_last_chunked))
            return (int)fail(e, 502, "malformed Transfer-Encoding");
        m->body_kind = f.te_last_chunked ? H1_BODY_CHUNKED : H1_BODY_UNTIL_CLOSE;
    } else if (f.cl_seen) {
        m->body_kind = H1_BODY_LENGTH;
        m->content_length = f.cl;
    } else {
        m->body_kind = H1_BODY_UNTIL_CLOSE;
    }
    /* Rules 1 and 2 of §6.3 override the fields (still checked above: garbage is garbage). */
    if (head || s < 200 || s == 204 || s == 304 || (connect && s < 300)) {
        m->body_kind = H1_BODY_NONE;
        m->content_length = 0;
    }
    return 0;
}

static void limits(const struct h1_limits *lim, size_t *head, size_t *line, size_t *hdrs)
{
    *head = lim && lim->max_head ? lim->max_head : DEFAULT_MAX_HEAD;
    *line = lim && lim->max_line ? lim->max_line : DEFAULT_MAX_LINE;
    *hdrs = lim && lim->max_headers ? lim->max_headers : DEFAULT_MAX_HEADERS;
    if (*hdrs > H1_MAX_HEADERS)
        *hdrs = H1_MAX_HEADERS;
    if (*head > 0x7fffffff)   /* the return value is an int */
        *head = 0x7fffffff;
}

/* ---- public head parsers ---- */

int h1_parse_request(const char *buf, size_t len, const struct h1_limits *lim,
                     struct h1_request *req, int *err_status, const char **err_reason)
{
    struct perr e = { 400, "" };
    size_t max_head, max_line, max_hdrs, end, p = 0;
    long r;

    limits(lim, &max_head, &max_line, &max_hdrs);
    end = len < max_head ? len : max_head;   /* the head must fit in max_head bytes */
    reset_message(&req->msg);
    req->method = req->target = req->host = NULL;
    req->method_len = req->target_len = req->host_len = 0;

    /* RFC 9112 §2.2: ignore empty lines before the request-line (CRLF only, as everywhere). */
    while (p < end && buf[p] == '\r') {
        if (p + 1 >= end)
            goto more;
        if (buf[p + 1] != '\n')
            goto bad_cr;
        p += 2;
    }
    r = parse_request_line(buf, p, end, max_line, req, &e);
    if (r < 0)
        goto error;
    if (r == 0)
        goto more;
    r = parse_fields(buf, (size_t)r, end, req->msg.headers, max_hdrs, &req->msg.num_headers, &e);
    if (r < 0)
        goto error;
    if (r == 0)
        goto more;
    if (request_semantics(req, &e) < 0)
        goto error;
    return (int)r;

more:
    if (len < max_head)
        return H1_INCOMPLETE;
    fail(&e, 431, "request header section too large");
    goto error;
bad_cr:
    fail(&e, 400, "bare CR before request line");
error:
    if (err_status)
        *err_status = e.status;
    if (err_reason)
        *err_reason = e.reason;
    return H1_ERROR;
}

int h1_parse_response(const char *buf, size_t len, const struct h1_limits *lim,
                      int request_method_head, int request_was_connect,
                      struct h1_response *resp, const char **err_reason)
{
    struct perr e = { 502, "" };
    size_t max_head, max_line, max_hdrs, end;
    long r;

    limits(lim, &max_head, &max_line, &max_hdrs);
    end = len < max_head ? len : max_head;
    reset_message(&resp->msg);
    resp->status = 0;
    resp->reason = NULL;
    resp->reason_len = 0;

    r = parse_status_line(buf, end, max_line, resp, &e);
    if (r > 0)
        r = parse_fields(buf, (size_t)r, end, resp->msg.headers, max_hdrs,
                         &resp->msg.num_headers, &e);
    if (r > 0 && response_semantics(resp, request_method_head, request_was_connect, &e) == 0)
        return (int)r;
    if (r == 0) {
        if (len < max_head)
            return H1_INCOMPLETE;
        fail(&e, 502, "response header section too large");
    }
    if (err_reason)
        *err_reason = e.reason;
    return H1_ERROR;
}

int h1_parse_trailers(const char *buf, size_t len, size_t max_bytes,
                      struct h1_header *headers, size_t max, size_t *num,
                      const char **err_reason)
{
    struct perr e = { 400, "" };
    size_t end, n = 0;
    long r;

    if (max_bytes == 0)
        max_bytes = DEFAULT_MAX_HEAD;
    if (max_bytes > 0x7fffffff)
        max_bytes = 0x7fffffff;
    end = len < max_bytes ? len : max_bytes;
    r = parse_fields(buf, 0, end, headers, max, &n, &e);
    if (num)
        *num = n;
    if (r > 0)
        return (int)r;
    if (r == 0) {
        if (len < max_bytes)
            return H1_INCOMPLETE;
        fail(&e, 431, "trailer section too large");
    }
    if (err_reason)
        *err_reason = e.reason;
    return H1_ERROR;
}

/* ---- chunked decoder (RFC 9112 §7.1) ----
 *
 * A byte-at-a-time state machine for the framing lines, and a bulk copy-free pass over data,
 * so any split of the input decodes identically. Stricter than the grammar: no BWS around
 * ';' and '=' in extensions (deprecated, and the classic place for parsers to disagree). */
enum {
    CS_SIZE = 0,    /* chunk-size hex digits (h1_chunked_init zeroes the state) */
    CS_EXT_NAME0,   /* after ';': first byte of an extension name */
    CS_EXT_NAME,    /* in a name: tchar, '=', ';' or CR */
    CS_EXT_VAL0,    /* after '=': token or quoted-string */
    CS_EXT_TOKEN,   /* in a token value */
    CS_EXT_QUOTED,  /* in a quoted-string */
    CS_EXT_QESC,    /* after '\' in a quoted-string */
    CS_EXT_QEND,    /* after the closing quote: ';' or CR */
    CS_SIZE_LF,     /* CR seen at the end of the size line */
    CS_DATA,        /* c->remaining bytes of data */
    CS_DATA_CR,     /* CRLF after the data */
    CS_DATA_LF,
    CS_DONE,        /* last-chunk consumed; the trailers are the caller's */
    CS_ERROR,
};

void h1_chunked_init(struct h1_chunked *c)
{
    memset(c, 0, sizeof(*c));
}

static int hexval(unsigned char ch)
{
    return ch <= '9' ? ch - '0' : ascii_lower(ch) - 'a' + 10;
}

enum h1_chunk_event h1_chunked_decode(struct h1_chunked *c, const char *in, size_t len,
                                      size_t *consumed, const char **data, size_t *data_len,
                                      const char **err_reason)
{
    const char *why;
    size_t p = 0, n;

    *data = NULL;
    *data_len = 0;
    *consumed = 0;
    if (c->state == CS_DONE)
        return H1_CHUNK_LAST;
    if (c->state == CS_ERROR) {
        why = "chunked decoder already failed";
        goto error;
    }
    while (p < len) {
        unsigned char ch = (unsigned char)in[p];

        if (c->state >= CS_EXT_NAME0 && c->state <= CS_EXT_QEND && ++c->ext_len > MAX_CHUNK_EXT) {
            why = "chunk extensions too long";
            goto error;
        }
        switch (c->state) {
        case CS_DATA:
            n = len - p;
            if (n > c->remaining)
                n = (size_t)c->remaining;
            *data = in + p;
            *data_len = n;
            *consumed = p + n;
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = CS_DATA_CR;
            return H1_CHUNK_DATA;
        case CS_SIZE:
            if (IS(ch, C_HEX)) {
                if (c->size_digits == MAX_CHUNK_SIZE_DIGITS) {
                    why = "chunk size too long";
                    goto error;
                }
                c->remaining = (c->remaining << 4) | (uint64_t)hexval(ch);
                c->size_digits++;
                break;
            }
            if (c->size_digits == 0) {
                why = "invalid chunk size";
                goto error;
            }
            if (ch == ';')
                c->state = CS_EXT_NAME0;
            else if (ch == '\r')
                c->state = CS_SIZE_LF;
            else {
                why = "invalid character after chunk size";
                goto error;
            }
            break;
        case CS_EXT_NAME0:
            if (!IS(ch, C_TCHAR))
                goto bad_ext;
            c->state = CS_EXT_NAME;
            break;
        case CS_EXT_NAME:
        case CS_EXT_TOKEN:
        case CS_EXT_QEND:
            if (IS(ch, C_TCHAR) && c->state != CS_EXT_QEND)
                ;
            else if (ch == '=' && c->state == CS_EXT_NAME)
                c->state = CS_EXT_VAL0;
            else if (ch == ';')
                c->state = CS_EXT_NAME0;
            else if (ch == '\r')
                c->state = CS_SIZE_LF;
            else
                goto bad_ext;
            break;
        case CS_EXT_VAL0:
            if (ch == '"')
                c->state = CS_EXT_QUOTED;
            else if (IS(ch, C_TCHAR))
                c->state = CS_EXT_TOKEN;
            else
                goto bad_ext;
            break;
        case CS_EXT_QUOTED:   /* qdtext = field bytes except '"' and '\' */
            if (ch == '"')
                c->state = CS_EXT_QEND;
            else if (ch == '\\')
                c->state = CS_EXT_QESC;
            else if (!IS(ch, C_FIELD))
                goto bad_ext;
            break;
        case CS_EXT_QESC:
            if (!IS(ch, C_FIELD))
                goto bad_ext;
            c->state = CS_EXT_QUOTED;
            break;
        case CS_SIZE_LF:
            if (ch != '\n') {
                why = "bare CR in chunk size line";
                goto error;
            }
            p++;
            c->ext_len = 0;
            c->size_digits = 0;
            if (c->remaining == 0) {
                c->state = CS_DONE;
                *consumed = p;
                return H1_CHUNK_LAST;
            }
            c->state = CS_DATA;
            continue;
        case CS_DATA_CR:
        case CS_DATA_LF:
            if (ch != (c->state == CS_DATA_CR ? '\r' : '\n')) {
                why = "missing CRLF after chunk data";
                goto error;
            }
            c->state = c->state == CS_DATA_CR ? CS_DATA_LF : CS_SIZE;
            break;
        }
        p++;
    }
    *consumed = len;
    return H1_CHUNK_NEED_MORE;

bad_ext:
    why = "invalid chunk extension";
error:
    c->state = CS_ERROR;
    *consumed = p;
    if (err_reason)
        *err_reason = why;
    return H1_CHUNK_ERROR;
}

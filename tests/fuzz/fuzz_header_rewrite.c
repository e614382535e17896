/* fuzz_header_rewrite — h1_write_request_head, the request head ferry sends to an HTTP/1.1
 * backend, built from a request head as either session produces it.
 *
 * Input: byte 0 holds flags (bit 0: HTTP/2-style head with lowercase names; bit 1: the
 * request has a body; bit 2: its length is known, byte 1 * 1000 + nfields; bit 3: no
 * authority (the server address is used); bit 4: scheme https; bit 5: IPv6 client). The rest
 * is split at LF into the method, the path, the authority, then one "name:value" field per
 * line (split at the first ':'; for HTTP/2-style heads the name is lowercased).
 *
 * The sessions refuse CR, LF, NUL and the other bytes the HTTP/1 parser rejects before a
 * head reaches this point, so inputs holding such bytes are skipped, using the parser itself
 * as the judge. Then the output must parse with h1_parse_request as exactly one complete
 * request spanning the whole output, framed as the body info says, with one Host, the same
 * method and path, and no hop-by-hop field (fixed list or named by a Connection field). */
#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h1_parse.h"
#include "h1_write.h"
#include "http_msg.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define MAX_FIELDS 120          /* the output adds at most 4: stay under H1_MAX_HEADERS */
#define DEFAULT_HOST "127.0.0.1:9000"

struct line {
    const char *p;
    size_t n;
};

/* True when "name:value" alone is a field line the HTTP/1 parser accepts. */
static int field_ok(const char *name, size_t nlen, const char *value, size_t vlen)
{
    size_t len = nlen + 1 + vlen + 4;
    char *buf = malloc(len);
    struct h1_header h[2];
    size_t num = 0;
    CHECK(buf);
    memcpy(buf, name, nlen);
    buf[nlen] = ':';
    memcpy(buf + nlen + 1, value, vlen);
    memcpy(buf + nlen + 1 + vlen, "\r\n\r\n", 4);
    int r = h1_parse_trailers(buf, len, len + 1, h, 2, &num, NULL);
    free(buf);
    return r == (int)len && num == 1 && h[0].name_len == nlen;
}

/* True when the method, path and Host value make a request line and Host the parser takes. */
static int start_ok(const char *m, size_t mlen, const char *path, size_t plen, const char *host,
                    size_t hlen)
{
    struct evbuffer *b = evbuffer_new();
    static struct h1_request req;
    CHECK(b);
    evbuffer_add(b, m, mlen);
    evbuffer_add(b, " ", 1);
    evbuffer_add(b, path, plen);
    evbuffer_add(b, " HTTP/1.1\r\nHost: ", 17);
    evbuffer_add(b, host, hlen);
    evbuffer_add(b, "\r\n\r\n", 4);
    size_t len = evbuffer_get_length(b);
    struct h1_limits lim = { .max_head = len + 1, .max_line = len + 1, .max_headers = 0 };
    int r = h1_parse_request((const char *)evbuffer_pullup(b, -1), len, &lim, &req, NULL, NULL);
    evbuffer_free(b);
    return r == (int)len && req.method_len == mlen && req.target_len == plen &&
           req.host_len == hlen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned flags = data[0];
    int h2 = flags & 1, has_body = (flags >> 1) & 1, no_authority = (flags >> 3) & 1;
    const char *client_ip = (flags >> 5) & 1 ? "2001:db8::7" : "192.0.2.7";

    struct line lines[MAX_FIELDS + 3];
    size_t nlines = 0;
    const char *p = (const char *)data + 2, *end = (const char *)data + size;
    for (;;) {
        if (nlines == MAX_FIELDS + 3)
            return 0;   /* more fields than one h1 head may carry */
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        lines[nlines].p = p;
        lines[nlines].n = (size_t)(e - p);
        nlines++;
        if (!nl)
            break;
        p = nl + 1;
    }
    if (nlines < 3)
        return 0;
    size_t nfields = nlines - 3;
    int64_t clen = -1;
    if ((flags >> 2) & 1)
        clen = (int64_t)data[1] * 1000 + (int64_t)nfields;

    const char *authority = no_authority ? DEFAULT_HOST : lines[2].p;
    size_t alen = no_authority ? strlen(DEFAULT_HOST) : lines[2].n;
    if (!start_ok(lines[0].p, lines[0].n, lines[1].p, lines[1].n, authority, alen))
        return 0;

    struct http_head req;
    http_head_init(&req);
    req.method = http_head_copy(&req, lines[0].p, lines[0].n);
    req.method_len = (uint32_t)lines[0].n;
    req.path = http_head_copy(&req, lines[1].p, lines[1].n);
    req.path_len = (uint32_t)lines[1].n;
    if (!no_authority) {
        req.authority = http_head_copy(&req, lines[2].p, lines[2].n);
        req.authority_len = (uint32_t)lines[2].n;
    }
    if ((flags >> 4) & 1) {
        req.scheme = http_head_copy(&req, "https", 5);
        req.scheme_len = 5;
    } else if (h2) {
        req.scheme = http_head_copy(&req, "http", 4);
        req.scheme_len = 4;
    }
    CHECK(req.method && req.path);
    for (size_t i = 3; i < nlines; i++) {
        const char *colon = memchr(lines[i].p, ':', lines[i].n);
        size_t nlen = colon ? (size_t)(colon - lines[i].p) : 0;
        char name[256];
        if (nlen == 0 || nlen >= sizeof name) {
            http_head_free(&req);   /* not a field line the sessions could produce */
            return 0;
        }
        memcpy(name, lines[i].p, nlen);
        for (size_t k = 0; h2 && k < nlen; k++)
            if (name[k] >= 'A' && name[k] <= 'Z')
                name[k] = (char)(name[k] | 0x20);
        size_t vlen = lines[i].n - nlen - 1;
        if (!field_ok(name, nlen, colon + 1, vlen)) {
            http_head_free(&req);
            return 0;
        }
        CHECK(http_head_add(&req, name, nlen, colon + 1, vlen, 1) == 0);
    }

    struct evbuffer *out = evbuffer_new();
    CHECK(out);
    int chunked = -1;
    h1_write_request_head(out, &req, has_body, clen, client_ip, DEFAULT_HOST, &chunked);
    size_t olen = evbuffer_get_length(out);
    char *buf = malloc(olen);   /* exact size: the parser must not read past the head */
    CHECK(buf);
    evbuffer_copyout(out, buf, olen);
    evbuffer_free(out);

    static struct h1_request r;
    struct h1_limits lim = { .max_head = olen + 1, .max_line = olen + 1, .max_headers = H1_MAX_HEADERS };
    int st = 0;
    const char *why = NULL;
    int n = h1_parse_request(buf, olen, &lim, &r, &st, &why);

    /* Exactly one complete request: the head ends where the output ends. */
    CHECK(n > 0 && (size_t)n == olen);
    CHECK(r.msg.version_minor == 1);
    CHECK(r.method_len == req.method_len && memcmp(r.method, req.method, req.method_len) == 0);
    CHECK(r.target_len == req.path_len && memcmp(r.target, req.path, req.path_len) == 0);
    CHECK(r.host && r.host_len == alen && memcmp(r.host, authority, alen) == 0);

    /* Framing as the body info says, and nothing else. */
    int is_post = req.method_len == 4 && memcmp(req.method, "POST", 4) == 0;
    int is_put = req.method_len == 3 && memcmp(req.method, "PUT", 3) == 0;
    if (has_body && clen >= 0) {
        CHECK(r.msg.body_kind == H1_BODY_LENGTH && r.msg.content_length == (uint64_t)clen);
        CHECK(chunked == 0);
    } else if (has_body) {
        CHECK(r.msg.body_kind == H1_BODY_CHUNKED && chunked == 1);
    } else if (is_post || is_put) {
        CHECK(r.msg.body_kind == H1_BODY_LENGTH && r.msg.content_length == 0 && chunked == 0);
    } else {
        CHECK(r.msg.body_kind == H1_BODY_NONE && chunked == 0);
    }
    CHECK(!r.msg.conn_close && !r.msg.conn_upgrade && !r.msg.has_upgrade);
    CHECK(!r.msg.expect_continue);

    /* No hop-by-hop field survives; ours appear once each. */
    size_t xff = 0, xfp = 0, framing = 0, kept = 0;
    for (size_t i = 0; i < r.msg.num_headers; i++) {
        const struct h1_header *h = &r.msg.headers[i];
        struct http_field f = { h->name, h->value, (uint32_t)h->name_len, (uint32_t)h->value_len };
        CHECK(!h1_is_hop_by_hop(h->name, h->name_len) || h1_name_eq(h->name, h->name_len, "transfer-encoding"));
        CHECK(!h1_field_is_hop(&req, &f) || h1_name_eq(h->name, h->name_len, "transfer-encoding") ||
              h1_name_eq(h->name, h->name_len, "content-length") ||
              h1_name_eq(h->name, h->name_len, "host") ||
              h1_name_eq(h->name, h->name_len, "x-forwarded-for") ||
              h1_name_eq(h->name, h->name_len, "x-forwarded-proto"));
        CHECK(!h1_name_eq(h->name, h->name_len, "expect"));
        if (h1_name_eq(h->name, h->name_len, "x-forwarded-for")) {
            size_t il = strlen(client_ip);
            CHECK(h->value_len >= il && memcmp(h->value + h->value_len - il, client_ip, il) == 0);
            xff++;
        } else if (h1_name_eq(h->name, h->name_len, "x-forwarded-proto")) {
            xfp++;
        } else if (h1_name_eq(h->name, h->name_len, "transfer-encoding") ||
                   h1_name_eq(h->name, h->name_len, "content-length")) {
            framing++;
        } else if (!h1_name_eq(h->name, h->name_len, "host")) {
            kept++;
        }
    }
    CHECK(xff == 1 && xfp == 1 && framing <= 1);
    size_t expect_kept = 0;
    for (uint32_t i = 0; i < req.nfields; i++) {
        const struct http_field *f = &req.fields[i];
        if (!h1_field_is_hop(&req, f) && !h1_name_eq(f->name, f->name_len, "host") &&
            !h1_name_eq(f->name, f->name_len, "content-length") &&
            !h1_name_eq(f->name, f->name_len, "expect") &&
            !h1_name_eq(f->name, f->name_len, "x-forwarded-for") &&
            !h1_name_eq(f->name, f->name_len, "x-forwarded-proto"))
            expect_kept++;
    }
    CHECK(kept == expect_kept);
    free(buf);
    http_head_free(&req);
    return 0;
}

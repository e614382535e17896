/* Unit tests for h1_parse: request/response heads, limits, framing rules, trailers, the
 * chunked decoder and the helpers. Tables hold the raw bytes; every table case is also
 * re-parsed on every prefix to prove the incremental contract (INCOMPLETE until complete,
 * never a different success). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "ascii.h"
#include "h1_parse.h"
#include "h1_write.h"

/* A string literal with its exact length, so cases may hold NUL bytes. */
#define R(s) s, sizeof(s) - 1
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static struct h1_request req;
static struct h1_response resp;

static int parse_req(const char *buf, size_t len, const struct h1_limits *lim, int *st,
                     const char **why)
{
    *st = 0;
    *why = NULL;
    return h1_parse_request(buf, len, lim, &req, st, why);
}

static int span_eq(const char *p, size_t n, const char *s)
{
    return p != NULL && strlen(s) == n && memcmp(p, s, n) == 0;
}

/* ---------------------------------------------------------------- valid requests */

struct vreq {
    const char *raw;
    size_t len;
    size_t tail;                /* bytes after the head (body, next request) */
    const char *method, *target, *host;
    int minor;
    enum h1_body_kind body;
    uint64_t cl;
};

static const struct vreq valid_reqs[] = {
    { R("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), 0, "GET", "/", "example.com", 1,
      H1_BODY_NONE, 0 },
    { R("POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"), 5, "POST",
      "/submit", "a", 1, H1_BODY_LENGTH, 5 },
    { R("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), 0, "POST", "/up",
      "a", 1, H1_BODY_CHUNKED, 0 },
    { R("GET /old HTTP/1.0\r\n\r\n"), 0, "GET", "/old", NULL, 0, H1_BODY_NONE, 0 },
    { R("POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc"), 3, "POST", "/", NULL, 0,
      H1_BODY_LENGTH, 3 },
    /* pipelining: only the first head is reported */
    { R("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"), 28, "GET",
      "/1", "a", 1, H1_BODY_NONE, 0 },
    { R("GET http://example.com/x?y=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"), 0, "GET",
      "http://example.com/x?y=1", "example.com", 1, H1_BODY_NONE, 0 },
    { R("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), 0, "CONNECT",
      "example.com:443", "example.com:443", 1, H1_BODY_NONE, 0 },
    { R("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 0, "OPTIONS", "*", "a", 1, H1_BODY_NONE, 0 },
    { R("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0, "GET", "/", "a", 1, H1_BODY_NONE, 0 },
    { R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  chunked  \r\n\r\n"), 0, "POST", "/",
      "a", 1, H1_BODY_CHUNKED, 0 },
    { R("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: Chunked\r\n\r\n"), 0, "POST", "/",
      "a", 1, H1_BODY_CHUNKED, 0 },
    { R("GET / HTTP/1.1\r\nHost:\texample.com\t\r\n\r\n"), 0, "GET", "/", "example.com", 1,
      H1_BODY_NONE, 0 },
    { R("GET / HTTP/1.1\r\nHost:example.com\r\n\r\n"), 0, "GET", "/", "example.com", 1,
      H1_BODY_NONE, 0 },
    { R("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n"), 0, "PUT",
      "/", "a", 1, H1_BODY_LENGTH, 7 },
    { R("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 7 , 7\r\n\r\n"), 0, "PUT", "/", "a", 1,
      H1_BODY_LENGTH, 7 },
    { R("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n"), 0, "PUT", "/", "a", 1,
      H1_BODY_LENGTH, 7 },
    { R("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), 0, "PUT", "/", "a", 1,
      H1_BODY_LENGTH, 0 },
    { R("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387904\r\n\r\n"), 0, "PUT",
      "/", "a", 1, H1_BODY_LENGTH, UINT64_C(1) << 62 },
    { R("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), 0, "GET", "/", "[::1]:8080", 1,
      H1_BODY_NONE, 0 },
    { R("GET / HTTP/1.1\r\nHost: 10.0.0.1:80\r\n\r\n"), 0, "GET", "/", "10.0.0.1:80", 1,
      H1_BODY_NONE, 0 },
    { R("GET / HTTP/1.1\r\nHost: xn--bcher-kva.example%2D\r\n\r\n"), 0, "GET", "/",
      "xn--bcher-kva.example%2D", 1, H1_BODY_NONE, 0 },
    { R("GET / HTTP/1.1\r\nHost: a\r\nX-Obs: caf\xc3\xa9\r\nX-Empty:\r\n\r\n"), 0, "GET", "/",
      "a", 1, H1_BODY_NONE, 0 },
    { R("M-SEARCH!#$%&'*+.^_`|~ /%7e?a=b&c HTTP/1.1\r\nHost: a\r\n\r\n"), 0,
      "M-SEARCH!#$%&'*+.^_`|~", "/%7e?a=b&c", "a", 1, H1_BODY_NONE, 0 },
};

static void check_valid_req(const struct vreq *v, int r)
{
    size_t head_len = v->len - v->tail;

    ck_assert_int_eq(r, (int)head_len);
    ck_assert(span_eq(req.method, req.method_len, v->method));
    ck_assert(span_eq(req.target, req.target_len, v->target));
    if (v->host)
        ck_assert(span_eq(req.host, req.host_len, v->host));
    else
        ck_assert_ptr_null(req.host);
    ck_assert_int_eq(req.msg.version_minor, v->minor);
    ck_assert_int_eq(req.msg.body_kind, v->body);
    if (v->body == H1_BODY_LENGTH)
        ck_assert_uint_eq(req.msg.content_length, v->cl);
}

START_TEST(test_valid_request)
{
    const struct vreq *v = &valid_reqs[_i];
    size_t head_len = v->len - v->tail, n;
    const char *why;
    int st, r;

    r = parse_req(v->raw, v->len, NULL, &st, &why);
    if (r <= 0)
        ck_abort_msg("case %d: r=%d status=%d reason=%s", _i, r, st, why ? why : "-");
    check_valid_req(v, r);

    /* Every strict prefix, including byte-by-byte growth, is INCOMPLETE. */
    for (n = 0; n < head_len; n++) {
        r = parse_req(v->raw, n, NULL, &st, &why);
        ck_assert_msg(r == H1_INCOMPLETE, "case %d prefix %zu: r=%d (%s)", _i, n, r,
                      why ? why : "-");
    }
    /* A copy in a buffer with no spare bytes (ASan catches any read past the end). */
    {
        char *copy = malloc(head_len);
        memcpy(copy, v->raw, head_len);
        r = parse_req(copy, head_len, NULL, &st, &why);
        check_valid_req(v, r);
        free(copy);
    }
}
END_TEST

START_TEST(test_request_fields)
{
    static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad:  a b \t\r\nX-E:\r\n"
                              "Connection: keep-alive\r\nconnection: Upgrade , foo\r\n"
                              "Upgrade: websocket\r\nExpect: 100-Continue\r\n"
                              "TE: deflate, trailers\r\n\r\n";
    const char *why;
    int st, r;

    r = parse_req(raw, sizeof(raw) - 1, NULL, &st, &why);
    ck_assert_int_eq(r, (int)sizeof(raw) - 1);
    ck_assert_uint_eq(req.msg.num_headers, 8);
    ck_assert(span_eq(req.msg.headers[1].name, req.msg.headers[1].name_len, "X-Pad"));
    ck_assert(span_eq(req.msg.headers[1].value, req.msg.headers[1].value_len, "a b"));
    ck_assert_uint_eq(req.msg.headers[2].value_len, 0);
    ck_assert(req.msg.conn_keep_alive);
    ck_assert(req.msg.conn_upgrade);
    ck_assert(!req.msg.conn_close);
    ck_assert(req.msg.has_upgrade);
    ck_assert(req.msg.expect_continue);
    ck_assert(req.msg.has_te_trailers);
    ck_assert_int_eq(req.msg.keep_alive_timeout, -1);

    /* and the flags are reset on the next parse */
    r = parse_req(R("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nExpect: foo\r\n\r\n"),
                  NULL, &st, &why);
    ck_assert_int_gt(r, 0);
    ck_assert(req.msg.conn_close);
    ck_assert(!req.msg.conn_keep_alive && !req.msg.conn_upgrade && !req.msg.has_upgrade);
    ck_assert(!req.msg.expect_continue && !req.msg.has_te_trailers);
}
END_TEST

/* Every byte value at every position of a 24-byte field value and reason phrase: the
 * parser scans them eight at a time, so each byte must be judged the same wherever it is. */
static int is_field_byte(int b)
{
    return b == '\t' || (b >= 0x20 && b != 0x7f);
}

START_TEST(test_field_value_bytes)
{
    char buf[128], val[25];
    const char *why;
    int st, r;

    for (int b = 0; b < 256; b++) {
        for (int k = 0; k < 24; k++) {
            memset(val, 'a', 24);
            val[k] = (char)b;
            val[24] = 0;
            int n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
            memcpy(buf + n, val, 24);
            n += 24;
            memcpy(buf + n, "\r\n\r\n", 4);
            n += 4;
            r = parse_req(buf, (size_t)n, NULL, &st, &why);
            if (is_field_byte(b)) {
                ck_assert_msg(r == n, "byte 0x%02x at %d: %d", b, k, r);
                /* OWS at either end is not part of the value */
                int ows = b == ' ' || b == '\t';
                const char *want = val + (k == 0 && ows);
                if (k == 23 && ows)
                    val[23] = 0;
                ck_assert_msg(span_eq(req.msg.headers[1].value, req.msg.headers[1].value_len, want),
                              "byte 0x%02x at %d: value", b, k);
                val[23] = (char)(k == 23 ? b : 'a');
            } else {
                ck_assert_msg(r < 0 && st == 400, "byte 0x%02x at %d: %d/%d", b, k, r, st);
            }

            n = snprintf(buf, sizeof buf, "HTTP/1.1 200 ");
            memcpy(buf + n, val, 24);
            n += 24;
            memcpy(buf + n, "\r\n\r\n", 4);
            n += 4;
            r = h1_parse_response(buf, (size_t)n, NULL, 0, 0, &resp, &why);
            if (is_field_byte(b))
                ck_assert_msg(r == n && span_eq(resp.reason, resp.reason_len, val),
                              "reason byte 0x%02x at %d: %d", b, k, r);
            else
                ck_assert_msg(r < 0, "reason byte 0x%02x at %d: %d", b, k, r);
        }
    }
}
END_TEST

/* ascii_eq_lower against a byte-wise reference: every byte value at every position of
 * names of 2 to 17 bytes (the word-wise paths: < 4, 4..7, 8 and over, overlapping tails). */
START_TEST(test_ascii_eq_lower)
{
    static const char *const lits[] = { "te", "via", "host", "expect", "upgrade", "trailers",
                                         "keep-alive", "content-length", "x-forwarded-for",
                                         "proxy-connection", "transfer-encoding" };
    char name[32];
    for (size_t l = 0; l < NELEM(lits); l++) {
        size_t n = strlen(lits[l]);
        for (size_t i = 0; i < n; i++)
            name[i] = (char)(lits[l][i] >= 'a' && lits[l][i] <= 'z' ? lits[l][i] - 32 : lits[l][i]);
        ck_assert_msg(ascii_eq_lower(name, lits[l], n), "%s in capitals", lits[l]);
        for (size_t pos = 0; pos < n; pos++) {
            memcpy(name, lits[l], n);
            for (int b = 0; b < 256; b++) {
                name[pos] = (char)b;
                int want = b == (unsigned char)lits[l][pos] ||
                           (b >= 'A' && b <= 'Z' && (b | 0x20) == (unsigned char)lits[l][pos]);
                ck_assert_msg(ascii_eq_lower(name, lits[l], n) == want, "%s: byte 0x%02x at %zu",
                              lits[l], b, pos);
            }
        }
    }
}
END_TEST

START_TEST(test_connection_tokens)
{
    const char *why;
    int st;

    ck_assert_int_gt(parse_req(R("GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive,CLOSE , upgrade\r\n\r\n"),
                               NULL, &st, &why), 0);
    ck_assert(req.msg.conn_close && req.msg.conn_keep_alive && req.msg.conn_upgrade);
    ck_assert_int_gt(parse_req(R("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed, keep-alive2, upgrades,"
                                 " clos, , x-close\r\n\r\n"), NULL, &st, &why), 0);
    ck_assert(!req.msg.conn_close && !req.msg.conn_keep_alive && !req.msg.conn_upgrade);
    ck_assert(!h1_message_closes(&req.msg));

    /* who closes after the message */
    ck_assert_int_gt(parse_req(R("GET / HTTP/1.0\r\n\r\n"), NULL, &st, &why), 0);
    ck_assert(h1_message_closes(&req.msg));
    ck_assert_int_gt(parse_req(R("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), NULL, &st, &why), 0);
    ck_assert(!h1_message_closes(&req.msg));
    ck_assert_int_gt(parse_req(R("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), NULL, &st, &why), 0);
    ck_assert(h1_message_closes(&req.msg));
}
END_TEST

/* ---------------------------------------------------------------- rejected requests */

struct breq {
    const char *raw;
    size_t len;
    int status;
};

#define H11 "POST / HTTP/1.1\r\nHost: a\r\n"

static const struct breq bad_reqs[] = {
    /* framing */
    { R(H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), 400 },
    { R(H11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), 400 },
    { R(H11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"), 400 },
    { R(H11 "Content-Length: 5, 6\r\n\r\n"), 400 },
    { R(H11 "Content-Length: 5,\r\n\r\n"), 400 },
    { R(H11 "Content-Length: +5\r\n\r\n"), 400 },
    { R(H11 "Content-Length: -1\r\n\r\n"), 400 },
    { R(H11 "Content-Length: 1 2\r\n\r\n"), 400 },
    { R(H11 "Content-Length: 0x5\r\n\r\n"), 400 },
    { R(H11 "Content-Length: 5a\r\n\r\n"), 400 },
    { R(H11 "Content-Length:\r\n\r\n"), 400 },
    { R(H11 "Content-Length: 4611686018427387905\r\n\r\n"), 400 },
    { R(H11 "Content-Length: 18446744073709551616\r\n\r\n"), 400 },
    { R(H11 "Content-Length: 99999999999999999999999999\r\n\r\n"), 400 },
    { R(H11 "Transfer-Encoding: xchunked\r\n\r\n"), 501 },
    { R(H11 "Transfer-Encoding: identity\r\n\r\n"), 501 },
    { R(H11 "Transfer-Encoding: gzip\r\n\r\n"), 501 },
    { R(H11 "Transfer-Encoding: gzip, chunked\r\n\r\n"), 501 },
    { R(H11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"), 501 },
    { R(H11 "Transfer-Encoding: chunked, identity\r\n\r\n"), 400 },
    { R(H11 "Transfer-Encoding: chunked, chunked\r\n\r\n"), 400 },
    { R(H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), 400 },
    { R(H11 "Transfer-Encoding: chunked;x=1\r\n\r\n"), 400 },
    { R(H11 "Transfer-Encoding: chunked,\r\n\r\n"), 400 },
    { R(H11 "Transfer-Encoding: \"chunked\"\r\n\r\n"), 400 },
    { R(H11 "Transfer-Encoding:\r\n\r\n"), 400 },
    { R("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400 },
    /* field syntax */
    { R(H11 "X: a\r\n b\r\n\r\n"), 400 },                      /* obs-fold */
    { R(H11 "X: a\r\n\tb\r\n\r\n"), 400 },
    { R("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400 },          /* SP after start line */
    { R("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400 },          /* space before colon */
    { R("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), 400 },
    { R(H11 "Content-Length : 5\r\n\r\n"), 400 },
    { R(H11 ": x\r\n\r\n"), 400 },                             /* empty name */
    { R(H11 "X(y): z\r\n\r\n"), 400 },
    { R(H11 "X-No-Colon\r\n\r\n"), 400 },
    { R(H11 "X: a\rb\r\n\r\n"), 400 },                         /* bare CR in value */
    { R(H11 "X: a\r\r\n\r\n"), 400 },
    { R(H11 "X: a\r\n\rX\r\n"), 400 },                         /* bare CR at line start */
    { R(H11 "X: a\0b\r\n\r\n"), 400 },                         /* NUL */
    { R(H11 "X: a\x01\r\n\r\n"), 400 },
    { R(H11 "X: a\x1b[0m\r\n\r\n"), 400 },
    { R(H11 "X: a\x7f\r\n\r\n"), 400 },
    { R(H11 "X: a\nY: b\r\n\r\n"), 400 },                      /* bare LF in the head */
    { R("GET / HTTP/1.1\nHost: a\n\n"), 400 },
    { R(H11 "X: a\r\n\n"), 400 },
    /* request line */
    { R("G ET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400 },
    { R("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400 },
    { R("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), 400 },
    { R(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400 },
    { R("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400 },
    { R("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), 400 },
    { R("GE(T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400 },
    { R(" / HTTP/1.1\r\nHost: a\r\n\r\n"), 400 },
    { R("GET /a\x80 HTTP/1.1\r\nHost: a\r\n\r\n"), 400 },
    { R("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), 400 },
    { R("GET /\r\n\r\n"), 400 },                               /* HTTP/0.9 */
    { R("GET / http/1.1\r\nHost: a\r\n\r\n"), 400 },
    { R("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), 400 },
    { R("GET / HTTP/11\r\nHost: a\r\n\r\n"), 400 },
    { R("GET / HTTP/1.x\r\nHost: a\r\n\r\n"), 400 },
    { R("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505 },
    { R("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 505 },
    { R("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), 505 },
    { R("GET / HTTP/1.1\rHost: a\r\n\r\n"), 400 },
    { R("\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400 },
    { R("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400 },
    /* Host */
    { R("GET / HTTP/1.1\r\n\r\n"), 400 },
    { R("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400 },
    { R("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), 400 },
    { R("GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n"), 400 },
    { R("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400 },
    { R("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"), 400 },
    { R("GET / HTTP/1.1\r\nHost: a,b\r\n\r\n"), 400 },
    { R("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n"), 400 },
    { R("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), 400 },
    { R("GET / HTTP/1.1\r\nHost: []\r\n\r\n"), 400 },
    { R("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n"), 400 },
    { R("GET / HTTP/1.1\r\nHost: a%2\r\n\r\n"), 400 },
    { R("GET / HTTP/1.0\r\nHost: a b\r\n\r\n"), 400 },
};

START_TEST(test_bad_request)
{
    const struct breq *b = &bad_reqs[_i];
    const char *why;
    size_t n;
    int st, r;

    r = parse_req(b->raw, b->len, NULL, &st, &why);
    ck_assert_msg(r == H1_ERROR && st == b->status, "case %d: r=%d status=%d want %d (%s)", _i,
                  r, st, b->status, why ? why : "-");
    ck_assert_ptr_nonnull(why);
    /* No prefix may ever parse as a complete head. */
    for (n = 0; n < b->len; n++) {
        r = parse_req(b->raw, n, NULL, &st, &why);
        ck_assert_msg(r == H1_INCOMPLETE || r == H1_ERROR, "case %d prefix %zu: r=%d", _i, n, r);
    }
}
END_TEST

/* Garbage is reported as soon as it is in the buffer, before the head is complete. */
START_TEST(test_early_errors)
{
    static const struct breq early[] = {
        { R("G\x01"), 400 },
        { R("GET /\x00"), 400 },
        { R("GET / HTTP/1.1\r\nHost: a\r\nX: a\0"), 400 },
        { R("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b"), 400 },
        { R("GET / HTTP/1.1\r\nHost : "), 400 },
        { R("GET / HTTP/1.1\r\nX: a\rb"), 400 },
        { R("GET / HTTX"), 400 },
        { R("GET / HTTP/3.0\r\n"), 505 },
    };
    const char *why;
    size_t i;
    int st, r;

    for (i = 0; i < NELEM(early); i++) {
        r = parse_req(early[i].raw, early[i].len, NULL, &st, &why);
        ck_assert_msg(r == H1_ERROR && st == early[i].status, "early %zu: r=%d st=%d", i, r, st);
    }
}
END_TEST

/* ---------------------------------------------------------------- limits */

START_TEST(test_line_limit)
{
    struct h1_limits lim = { 0, 32, 0 };
    char buf[16384];
    const char *why;
    int st, r, n;

    /* "GET /<pad> HTTP/1.1" is 14 + pad bytes: pad 18 -> exactly 32 */
    n = sprintf(buf, "GET /%s HTTP/1.1\r\nHost: a\r\n\r\n", "aaaaaaaaaaaaaaaaaa");
    ck_assert_int_eq(parse_req(buf, (size_t)n, &lim, &st, &why), n);
    ck_assert_int_eq(parse_req(buf, 32, &lim, &st, &why), H1_INCOMPLETE);
    ck_assert_int_eq(parse_req(buf, 33, &lim, &st, &why), H1_INCOMPLETE);   /* ends in CR */
    n = sprintf(buf, "GET /%s HTTP/1.1\r\nHost: a\r\n\r\n", "aaaaaaaaaaaaaaaaaaa");
    r = parse_req(buf, (size_t)n, &lim, &st, &why);
    ck_assert_int_eq(r, H1_ERROR);
    ck_assert_int_eq(st, 414);
    r = parse_req(buf, 33, &lim, &st, &why);   /* incomplete but already too long */
    ck_assert_int_eq(r, H1_ERROR);
    ck_assert_int_eq(st, 414);

    /* default limit 4096 */
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'x', 5000);
    n = 5005 + sprintf(buf + 5005, " HTTP/1.1\r\nHost: a\r\n\r\n");
    r = parse_req(buf, (size_t)n, NULL, &st, &why);
    ck_assert_int_eq(r, H1_ERROR);
    ck_assert_int_eq(st, 414);
    ck_assert_int_eq(parse_req(buf, 4000, NULL, &st, &why), H1_INCOMPLETE);
    r = parse_req(buf, 4200, NULL, &st, &why);
    ck_assert_int_eq(r, H1_ERROR);
    ck_assert_int_eq(st, 414);
}
END_TEST

static int build_headers(char *buf, int nhdr)
{
    int n = sprintf(buf, "GET / HTTP/1.1\r\nHost: a\r\n"), i;

    for (i = 1; i < nhdr; i++)
        n += sprintf(buf + n, "X-H%d: v\r\n", i);
    return n + sprintf(buf + n, "\r\n");
}

START_TEST(test_header_count_limit)
{
    static char buf[8192];
    struct h1_limits lim = { 0, 0, 3 }, big = { 65536, 0, 1000 };
    const char *why;
    int st, r, n;

    n = build_headers(buf, 100);
    r = parse_req(buf, (size_t)n, NULL, &st, &why);
    ck_assert_int_eq(r, n);
    ck_assert_uint_eq(req.msg.num_headers, 100);
    n = build_headers(buf, 101);
    r = parse_req(buf, (size_t)n, NULL, &st, &why);
    ck_assert_int_eq(r, H1_ERROR);
    ck_assert_int_eq(st, 431);

    n = build_headers(buf, 3);
    ck_assert_int_eq(parse_req(buf, (size_t)n, &lim, &st, &why), n);
    n = build_headers(buf, 4);
    ck_assert_int_eq(parse_req(buf, (size_t)n, &lim, &st, &why), H1_ERROR);
    ck_assert_int_eq(st, 431);

    /* a max_headers above H1_MAX_HEADERS is clamped, never overflows the array */
    n = build_headers(buf, H1_MAX_HEADERS);
    ck_assert_int_eq(parse_req(buf, (size_t)n, &big, &st, &why), n);
    n = build_headers(buf, H1_MAX_HEADERS + 1);
    ck_assert_int_eq(parse_req(buf, (size_t)n, &big, &st, &why), H1_ERROR);
    ck_assert_int_eq(st, 431);
}
END_TEST

/* A request head of exactly <total> bytes, padded with one big field. */
static int build_sized(char *buf, int total)
{
    int n = sprintf(buf, "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ");
    int pad = total - n - 4;

    memset(buf + n, 'p', (size_t)pad);
    memcpy(buf + n + pad, "\r\n\r\n", 4);
    return n + pad + 4;
}

START_TEST(test_head_size_limit)
{
    static char buf[20000];
    const char *why;
    int st, r, n;

    n = build_sized(buf, 8192);
    ck_assert_int_eq(parse_req(buf, (size_t)n, NULL, &st, &why), 8192);
    ck_assert_int_eq(parse_req(buf, 8191, NULL, &st, &why), H1_INCOMPLETE);

    n = build_sized(buf, 8193);
    ck_assert_int_eq(parse_req(buf, 8000, NULL, &st, &why), H1_INCOMPLETE);
    r = parse_req(buf, 8192, NULL, &st, &why);
    ck_assert_int_eq(r, H1_ERROR);
    ck_assert_int_eq(st, 431);
    r = parse_req(buf, (size_t)n, NULL, &st, &why);
    ck_assert_int_eq(r, H1_ERROR);
    ck_assert_int_eq(st, 431);

    /* custom limit; a pipelined second request after a head that fits is fine */
    {
        struct h1_limits lim = { 64, 0, 0 };
        static const char two[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
                                  "GET /2 HTTP/1.1\r\nHost: a\r\nX: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n\r\n";
        ck_assert_int_eq(parse_req(two, sizeof(two) - 1, &lim, &st, &why), 27);
        r = parse_req(two + 27, sizeof(two) - 1 - 27, &lim, &st, &why);
        ck_assert_int_eq(r, H1_ERROR);
        ck_assert_int_eq(st, 431);
    }
}
END_TEST

/* ---------------------------------------------------------------- responses */

struct vresp {
    const char *raw;
    size_t len;
    int head, connect;
    int status;
    enum h1_body_kind body;
    uint64_t cl;
    int64_t ka;
    const char *reason;
};

static const struct vresp valid_resps[] = {
    { R("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), 0, 0, 200, H1_BODY_LENGTH, 5, -1, "OK" },
    { R("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"), 0, 0, 200,
      H1_BODY_LENGTH, 5, -1, "OK" },
    { R("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), 0, 0, 200, H1_BODY_CHUNKED, 0,
      -1, "OK" },
    { R("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 0, 0, 200,
      H1_BODY_CHUNKED, 0, -1, "OK" },
    { R("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), 0, 0, 200, H1_BODY_UNTIL_CLOSE, 0,
      -1, "OK" },
    { R("HTTP/1.1 200 OK\r\n\r\n"), 0, 0, 200, H1_BODY_UNTIL_CLOSE, 0, -1, "OK" },
    { R("HTTP/1.0 200 OK\r\n\r\n"), 0, 0, 200, H1_BODY_UNTIL_CLOSE, 0, -1, "OK" },
    { R("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"), 1, 0, 200, H1_BODY_NONE, 0, -1, "OK" },
    { R("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), 1, 0, 200, H1_BODY_NONE, 0, -1,
      "OK" },
    { R("HTTP/1.1 204 No Content\r\n\r\n"), 0, 0, 204, H1_BODY_NONE, 0, -1, "No Content" },
    { R("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"), 0, 0, 304, H1_BODY_NONE, 0,
      -1, "Not Modified" },
    { R("HTTP/1.1 100 Continue\r\n\r\n"), 0, 0, 100, H1_BODY_NONE, 0, -1, "Continue" },
    { R("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"),
      0, 0, 101, H1_BODY_NONE, 0, -1, "Switching Protocols" },
    { R("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"), 0, 0, 103, H1_BODY_NONE, 0, -1,
      "Early Hints" },
    { R("HTTP/1.1 200 Connection established\r\n\r\n"), 0, 1, 200, H1_BODY_NONE, 0, -1,
      "Connection established" },
    { R("HTTP/1.1 407 Auth\r\nContent-Length: 3\r\n\r\n"), 0, 1, 407, H1_BODY_LENGTH, 3, -1,
      "Auth" },
    { R("HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\n\r\n"), 0, 0, 200,
      H1_BODY_UNTIL_CLOSE, 0, 5, "OK" },
    { R("HTTP/1.1 200 OK\r\nkeep-alive: max=100,Timeout=15\r\n\r\n"), 0, 0, 200,
      H1_BODY_UNTIL_CLOSE, 0, 15, "OK" },
    { R("HTTP/1.1 200 OK\r\nKeep-Alive: timeout=abc\r\n\r\n"), 0, 0, 200, H1_BODY_UNTIL_CLOSE, 0,
      -1, "OK" },
    { R("HTTP/1.1 200 OK\r\nKeep-Alive: timeout=\r\n\r\n"), 0, 0, 200, H1_BODY_UNTIL_CLOSE, 0,
      -1, "OK" },
    { R("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"), 0, 0, 200, H1_BODY_LENGTH, 0, -1, "" },
    { R("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"), 0, 0, 200, H1_BODY_LENGTH, 0, -1, "" },
    { R("HTTP/1.1 599 Odd \xe9t\xe9 \t\r\n\r\n"), 0, 0, 599, H1_BODY_UNTIL_CLOSE, 0, -1,
      "Odd \xe9t\xe9 \t" },
};

START_TEST(test_valid_response)
{
    const struct vresp *v = &valid_resps[_i];
    const char *why = NULL;
    size_t n;
    int r;

    r = h1_parse_response(v->raw, v->len, NULL, v->head, v->connect, &resp, &why);
    ck_assert_msg(r == (int)v->len, "case %d: r=%d (%s)", _i, r, why ? why : "-");
    ck_assert_int_eq(resp.status, v->status);
    ck_assert_int_eq(resp.msg.body_kind, v->body);
    if (v->body == H1_BODY_LENGTH)
        ck_assert_uint_eq(resp.msg.content_length, v->cl);
    ck_assert_int_eq(resp.msg.keep_alive_timeout, v->ka);
    ck_assert(span_eq(resp.reason, resp.reason_len, v->reason));
    for (n = 0; n < v->len; n++)
        ck_assert_int_eq(h1_parse_response(v->raw, n, NULL, v->head, v->connect, &resp, &why),
                         H1_INCOMPLETE);
}
END_TEST

START_TEST(test_response_flags)
{
    static const char raw[] = "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
                              "Keep-Alive: timeout=30\r\nContent-Length: 2\r\n\r\nhi";
    const char *why;
    int r;

    r = h1_parse_response(raw, sizeof(raw) - 1, NULL, 0, 0, &resp, &why);
    ck_assert_int_eq(r, (int)sizeof(raw) - 3);
    ck_assert_int_eq(resp.msg.version_minor, 0);
    ck_assert(resp.msg.conn_keep_alive && !resp.msg.conn_close);
    ck_assert_int_eq(resp.msg.keep_alive_timeout, 30);
    ck_assert_uint_eq(resp.msg.num_headers, 3);
}
END_TEST

static const struct breq bad_resps[] = {
    { R("HTTP/1.1 20 OK\r\n\r\n"), 0 },
    { R("HTTP/1.1 2000 OK\r\n\r\n"), 0 },
    { R("HTTP/1.1 099 Low\r\n\r\n"), 0 },
    { R("HTTP/1.1 600 High\r\n\r\n"), 0 },
    { R("HTTP/1.1 2x0 OK\r\n\r\n"), 0 },
    { R("HTTP/1.1  200 OK\r\n\r\n"), 0 },
    { R("HTTP/2 200 OK\r\n\r\n"), 0 },
    { R("HTTP/2.0 200 OK\r\n\r\n"), 0 },
    { R("HTTP/1.2 200 OK\r\n\r\n"), 0 },
    { R("http/1.1 200 OK\r\n\r\n"), 0 },
    { R("ICY 200 OK\r\n\r\n"), 0 },
    { R("HTTP/1.1 200 OK\n\n"), 0 },
    { R("HTTP/1.1 200 O\rK\r\n\r\n"), 0 },
    { R("HTTP/1.1 200 O\x01K\r\n\r\n"), 0 },
    { R("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), 0 },
    { R("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), 0 },
    { R("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), 0 },
    { R("HTTP/1.1 304 OK\r\nContent-Length: x\r\n\r\n"), 0 },
    { R("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), 0 },
    { R("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 0 },
    { R("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), 0 },
    { R("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), 0 },
    { R("HTTP/1.1 200 OK\r\nX : a\r\n\r\n"), 0 },
    { R("HTTP/1.1 200 OK\r\nX: a\0\r\n\r\n"), 0 },
};

START_TEST(test_bad_response)
{
    const struct breq *b = &bad_resps[_i];
    const char *why = NULL;
    size_t n;
    int r;

    r = h1_parse_response(b->raw, b->len, NULL, 0, 0, &resp, &why);
    ck_assert_msg(r == H1_ERROR, "case %d: r=%d", _i, r);
    ck_assert_ptr_nonnull(why);
    for (n = 0; n < b->len; n++) {
        r = h1_parse_response(b->raw, n, NULL, 0, 0, &resp, &why);
        ck_assert(r == H1_INCOMPLETE || r == H1_ERROR);
    }
}
END_TEST

START_TEST(test_response_limits)
{
    static char buf[10000];
    struct h1_limits lim = { 0, 20, 0 };
    const char *why;
    int n;

    ck_assert_int_eq(h1_parse_response(R("HTTP/1.1 200 Fine\r\n\r\n"), &lim, 0, 0, &resp, &why),
                     21);
    ck_assert_int_eq(h1_parse_response(R("HTTP/1.1 200 Fine Fine\r\n\r\n"), &lim, 0, 0, &resp,
                                       &why), H1_ERROR);   /* status line of 22 bytes > 20 */
    n = sprintf(buf, "HTTP/1.1 200 OK\r\nX: ");
    memset(buf + n, 'v', 9000);
    ck_assert_int_eq(h1_parse_response(buf, 8000, NULL, 0, 0, &resp, &why), H1_INCOMPLETE);
    ck_assert_int_eq(h1_parse_response(buf, 9000, NULL, 0, 0, &resp, &why), H1_ERROR);
}
END_TEST

/* ---------------------------------------------------------------- trailers */

START_TEST(test_trailers)
{
    struct h1_header h[4];
    const char *why = NULL;
    size_t num = 99;

    ck_assert_int_eq(h1_parse_trailers(R("\r\n"), 0, h, 4, &num, &why), 2);
    ck_assert_uint_eq(num, 0);
    ck_assert_int_eq(h1_parse_trailers(R("X-Sum: abc \r\nX-B:1\r\n\r\nNEXT"), 0, h, 4, &num,
                                       &why), 22);
    ck_assert_uint_eq(num, 2);
    ck_assert(span_eq(h[0].value, h[0].value_len, "abc"));
    ck_assert(span_eq(h[1].name, h[1].name_len, "X-B"));
    ck_assert_int_eq(h1_parse_trailers(R("X-Sum: abc\r\n"), 0, h, 4, &num, &why), H1_INCOMPLETE);
    ck_assert_int_eq(h1_parse_trailers(R("\r"), 0, h, 4, &num, &why), H1_INCOMPLETE);
    ck_assert_int_eq(h1_parse_trailers(R(""), 0, h, 4, &num, &why), H1_INCOMPLETE);
    ck_assert_int_eq(h1_parse_trailers(R("X: a\r\n b\r\n\r\n"), 0, h, 4, &num, &why), H1_ERROR);
    ck_assert_int_eq(h1_parse_trailers(R("X : a\r\n\r\n"), 0, h, 4, &num, &why), H1_ERROR);
    ck_assert_int_eq(h1_parse_trailers(R("X: a\nY: b\r\n\r\n"), 0, h, 4, &num, &why), H1_ERROR);
    ck_assert_int_eq(h1_parse_trailers(R("X: \x01\r\n\r\n"), 0, h, 4, &num, &why), H1_ERROR);
    ck_assert_int_eq(h1_parse_trailers(R("A: 1\r\nB: 2\r\nC: 3\r\n\r\n"), 0, h, 2, &num, &why),
                     H1_ERROR);
    /* max_bytes */
    ck_assert_int_eq(h1_parse_trailers(R("A: 1\r\n\r\n"), 8, h, 4, &num, &why), 8);
    ck_assert_int_eq(h1_parse_trailers(R("A: 12\r\n\r\n"), 8, h, 4, &num, &why), H1_ERROR);
    ck_assert_int_eq(h1_parse_trailers(R("A: 12\r\n"), 8, h, 4, &num, &why), H1_INCOMPLETE);
    ck_assert_ptr_nonnull(why);
}
END_TEST

/* ---------------------------------------------------------------- chunked decoder */

struct dec_out {
    char data[4096];
    size_t data_len;
    enum h1_chunk_event last;   /* H1_CHUNK_LAST, H1_CHUNK_ERROR or H1_CHUNK_NEED_MORE */
    size_t end_off;             /* absolute offset just after the last-chunk line / error */
};

/* Feeds in[off, off+len) to the decoder until the piece is used up or decoding stops. */
static int feed(struct h1_chunked *c, const char *in, size_t off, size_t len, struct dec_out *o)
{
    const char *p = in + off, *data, *why = NULL;
    size_t consumed, data_len;
    enum h1_chunk_event ev;

    while (len > 0) {
        ev = h1_chunked_decode(c, p, len, &consumed, &data, &data_len, &why);
        ck_assert_uint_le(consumed, len);
        switch (ev) {
        case H1_CHUNK_DATA:
            ck_assert(data >= p && data + data_len <= p + consumed);   /* zero copy */
            ck_assert_uint_gt(data_len, 0);
            ck_assert_uint_le(o->data_len + data_len, sizeof(o->data));
            memcpy(o->data + o->data_len, data, data_len);
            o->data_len += data_len;
            break;
        case H1_CHUNK_NEED_MORE:
            ck_assert_uint_eq(consumed, len);
            break;
        case H1_CHUNK_LAST:
        case H1_CHUNK_ERROR:
            if (ev == H1_CHUNK_ERROR)
                ck_assert_ptr_nonnull(why);
            o->last = ev;
            o->end_off = (size_t)(p - in) + consumed;
            return 1;
        }
        p += consumed;
        len -= consumed;
    }
    return 0;
}

/* Decodes <in> cut at <cut>, then in pieces of <step> bytes. */
static void decode_split(const char *in, size_t len, size_t cut, size_t step, struct dec_out *o)
{
    struct h1_chunked c;
    size_t off;

    memset(o, 0, sizeof(*o));
    o->last = H1_CHUNK_NEED_MORE;
    h1_chunked_init(&c);
    if (feed(&c, in, 0, cut, o))
        return;
    for (off = cut; off < len; off += step)
        if (feed(&c, in, off, off + step <= len ? step : len - off, o))
            return;
}

struct chunk_case {
    const char *raw;
    size_t len;
    enum h1_chunk_event last;
    const char *data;           /* decoded data (for LAST) */
    size_t trailer_len;         /* h1_parse_trailers result on the rest (for LAST) */
};

static const struct chunk_case chunk_cases[] = {
    { R("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), H1_CHUNK_LAST, "hello world", 2 },
    { R("A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n"), H1_CHUNK_LAST,
      "0123456789abcdefghij", 2 },
    { R("0000000000000005\r\nhello\r\n000\r\n\r\n"), H1_CHUNK_LAST, "hello", 2 },
    { R("0\r\n\r\n"), H1_CHUNK_LAST, "", 2 },
    { R("5;name=value\r\nhello\r\n0;last\r\n\r\n"), H1_CHUNK_LAST, "hello", 2 },
    { R("3;a;b=c;d=\"q;\\\"x\"\r\nabc\r\n0\r\n\r\n"), H1_CHUNK_LAST, "abc", 2 },
    { R("1\r\n\n\r\n1\r\n\r\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n"), H1_CHUNK_LAST, "\n\r", 18 },
    /* errors */
    { R("x\r\nhello\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("\r\nhello\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R(" 5\r\nhello\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("5 \r\nhello\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("0x5\r\nhello\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("-5\r\nhello\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("+5\r\nhello\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("5\nhello\r\n0\r\n\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("5\rhello\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("5\r\nhelloX\r\n0\r\n\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("5\r\nhello\n0\r\n\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("5\r\nhello\r0\r\n\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("5\r\nhello0\r\n\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("00000000000000005\r\nhello\r\n"), H1_CHUNK_ERROR, NULL, 0 },   /* 17 digits */
    { R("10000000000000000\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("5;\r\nhello\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("5; a\r\nhello\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("5 ;a\r\nhello\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("5;a=\r\nhello\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("5;a b\r\nhello\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("5;a=\"x\r\nhello\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("5;a=\"x\"y\r\nhello\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("5;a\0\r\nhello\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("5;a\nhello\r\n"), H1_CHUNK_ERROR, NULL, 0 },
    { R("0\n\r\n"), H1_CHUNK_ERROR, NULL, 0 },
};

START_TEST(test_chunked_cases)
{
    const struct chunk_case *k = &chunk_cases[_i];
    struct dec_out ref, o;
    size_t cut;

    decode_split(k->raw, k->len, k->len, 1, &ref);
    ck_assert_msg(ref.last == k->last, "case %d: event %d", _i, ref.last);
    if (k->last == H1_CHUNK_LAST) {
        struct h1_header h[4];
        size_t num;
        const char *why = NULL;

        ck_assert_uint_eq(ref.data_len, strlen(k->data));
        ck_assert(memcmp(ref.data, k->data, ref.data_len) == 0);
        ck_assert_int_eq(h1_parse_trailers(k->raw + ref.end_off, k->len - ref.end_off, 0, h, 4,
                                           &num, &why), (int)k->trailer_len);
        ck_assert_uint_eq(ref.end_off + k->trailer_len, k->len);
    }
    /* Every two-piece split, and byte by byte, decode identically. */
    for (cut = 0; cut <= k->len; cut++) {
        decode_split(k->raw, k->len, cut, k->len, &o);
        ck_assert_msg(o.last == ref.last && o.end_off == ref.end_off &&
                      o.data_len == ref.data_len && !memcmp(o.data, ref.data, o.data_len),
                      "case %d cut %zu", _i, cut);
    }
    decode_split(k->raw, k->len, 0, 1, &o);
    ck_assert(o.last == ref.last && o.end_off == ref.end_off && o.data_len == ref.data_len);
    ck_assert(memcmp(o.data, ref.data, o.data_len) == 0);
}
END_TEST

START_TEST(test_chunked_states)
{
    struct h1_chunked c;
    const char *data, *why = NULL;
    size_t consumed, dl;
    static char big[2100];
    int n;

    /* data is handed out as soon as it arrives, bounded by the chunk */
    h1_chunked_init(&c);
    ck_assert_int_eq(h1_chunked_decode(&c, R("a\r\nabc"), &consumed, &data, &dl, &why),
                     H1_CHUNK_DATA);
    ck_assert_uint_eq(consumed, 6);
    ck_assert_uint_eq(dl, 3);
    ck_assert_uint_eq(c.remaining, 7);
    ck_assert_int_eq(h1_chunked_decode(&c, R(""), &consumed, &data, &dl, &why),
                     H1_CHUNK_NEED_MORE);
    ck_assert_uint_eq(consumed, 0);

    /* 16 hex digits is the maximum and is accepted */
    h1_chunked_init(&c);
    ck_assert_int_eq(h1_chunked_decode(&c, R("ffffffffffffffff\r\nxy"), &consumed, &data, &dl,
                                       &why), H1_CHUNK_DATA);
    ck_assert_uint_eq(c.remaining, UINT64_MAX - 2);

    /* after the last chunk the decoder stays done; after an error it stays failed */
    h1_chunked_init(&c);
    ck_assert_int_eq(h1_chunked_decode(&c, R("0\r\nX: y\r\n"), &consumed, &data, &dl, &why),
                     H1_CHUNK_LAST);
    ck_assert_uint_eq(consumed, 3);
    ck_assert_int_eq(h1_chunked_decode(&c, R("X: y"), &consumed, &data, &dl, &why),
                     H1_CHUNK_LAST);
    ck_assert_uint_eq(consumed, 0);
    h1_chunked_init(&c);
    ck_assert_int_eq(h1_chunked_decode(&c, R("g"), &consumed, &data, &dl, &why),
                     H1_CHUNK_ERROR);
    why = NULL;
    ck_assert_int_eq(h1_chunked_decode(&c, R("5\r\n"), &consumed, &data, &dl, &why),
                     H1_CHUNK_ERROR);
    ck_assert_ptr_nonnull(why);

    /* chunk extensions are bounded: 1024 bytes pass, more do not */
    n = sprintf(big, "1;x=");
    memset(big + n, 'v', 1020);
    memcpy(big + n + 1020, "\r\nZ", 3);
    h1_chunked_init(&c);
    ck_assert_int_eq(h1_chunked_decode(&c, big, (size_t)n + 1023, &consumed, &data, &dl, &why),
                     H1_CHUNK_DATA);
    memset(big + n, 'v', 2000);
    memcpy(big + n + 2000, "\r\nZ", 3);
    h1_chunked_init(&c);
    ck_assert_int_eq(h1_chunked_decode(&c, big, (size_t)n + 2003, &consumed, &data, &dl, &why),
                     H1_CHUNK_ERROR);
}
END_TEST

/* ---------------------------------------------------------------- helpers */

START_TEST(test_helpers)
{
    ck_assert(h1_name_eq(R("Content-Length"), "content-length"));
    ck_assert(h1_name_eq(R("HOST"), "host"));
    ck_assert(!h1_name_eq(R("Hos"), "host"));
    ck_assert(!h1_name_eq(R("Hosts"), "host"));
    ck_assert(!h1_name_eq(R("Ho\0t"), "host"));
    ck_assert(h1_name_eq(R(""), ""));

    ck_assert(h1_list_has_token(R("keep-alive, Upgrade"), "upgrade"));
    ck_assert(h1_list_has_token(R(" ,\t,close ,"), "close"));
    ck_assert(h1_list_has_token(R("CLOSE"), "close"));
    ck_assert(!h1_list_has_token(R("closed"), "close"));
    ck_assert(!h1_list_has_token(R("x-close, clos"), "close"));
    ck_assert(!h1_list_has_token(R(""), "close"));
    ck_assert(!h1_list_has_token(R(",,"), "close"));

    ck_assert(h1_is_hop_by_hop(R("Connection")));
    ck_assert(h1_is_hop_by_hop(R("keep-alive")));
    ck_assert(h1_is_hop_by_hop(R("Proxy-Connection")));
    ck_assert(h1_is_hop_by_hop(R("TE")));
    ck_assert(h1_is_hop_by_hop(R("Transfer-Encoding")));
    ck_assert(h1_is_hop_by_hop(R("UPGRADE")));
    ck_assert(h1_is_hop_by_hop(R("HTTP2-Settings")));
    ck_assert(!h1_is_hop_by_hop(R("Trailer")));
    ck_assert(!h1_is_hop_by_hop(R("Content-Length")));
    ck_assert(!h1_is_hop_by_hop(R("Host")));
    ck_assert(!h1_is_hop_by_hop(R("tee")));
    ck_assert(!h1_is_hop_by_hop(R("")));

    ck_assert(h1_method_is_idempotent(R("GET")));
    ck_assert(h1_method_is_idempotent(R("HEAD")));
    ck_assert(h1_method_is_idempotent(R("OPTIONS")));
    ck_assert(h1_method_is_idempotent(R("TRACE")));
    ck_assert(h1_method_is_idempotent(R("PUT")));
    ck_assert(h1_method_is_idempotent(R("DELETE")));
    ck_assert(!h1_method_is_idempotent(R("get")));
    ck_assert(!h1_method_is_idempotent(R("POST")));
    ck_assert(!h1_method_is_idempotent(R("PATCH")));
    ck_assert(!h1_method_is_idempotent(R("CONNECT")));
    ck_assert(!h1_method_is_idempotent(R("GETX")));
    ck_assert(!h1_method_is_idempotent(R("GE")));
    ck_assert(!h1_method_is_idempotent(R("")));
}
END_TEST

/* h1_write_request_head: the exact bytes sent to an HTTP/1.1 backend (pinned when it moved
 * out of h1_client.c), and that they parse back as one request. */
static void check_written(struct http_head *h, int has_body, int64_t clen, const char *want,
                          int want_chunked)
{
    struct evbuffer *out = evbuffer_new();
    int chunked = -1, st;
    const char *why;
    ck_assert_ptr_nonnull(out);
    h1_write_request_head(out, h, has_body, clen, "192.0.2.7", "10.0.0.1:9000", &chunked);
    size_t len = evbuffer_get_length(out);
    const char *got = (const char *)evbuffer_pullup(out, -1);
    ck_assert_msg(len == strlen(want) && memcmp(got, want, len) == 0, "wrote [%.*s]", (int)len, got);
    ck_assert_int_eq(chunked, want_chunked);
    ck_assert_int_eq(parse_req(got, len, NULL, &st, &why), (int)len);
    evbuffer_free(out);
}

START_TEST(test_write_request_head)
{
    struct http_head h;
    http_head_init(&h);
    h.method = "GET";
    h.method_len = 3;
    h.path = "/a?b";
    h.path_len = 4;
    h.authority = "example.com";
    h.authority_len = 11;
    ck_assert_int_eq(http_head_add(&h, R("Accept"), R("*/*"), 1), 0);
    ck_assert_int_eq(http_head_add(&h, R("Connection"), R("keep-alive, X-Drop"), 1), 0);
    ck_assert_int_eq(http_head_add(&h, R("X-Drop"), R("1"), 1), 0);
    ck_assert_int_eq(http_head_add(&h, R("Keep-Alive"), R("timeout=5"), 1), 0);
    ck_assert_int_eq(http_head_add(&h, R("TE"), R("trailers"), 1), 0);
    ck_assert_int_eq(http_head_add(&h, R("Host"), R("ignored"), 1), 0);
    ck_assert_int_eq(http_head_add(&h, R("Expect"), R("100-continue"), 1), 0);
    ck_assert_int_eq(http_head_add(&h, R("Content-Length"), R("5"), 1), 0);
    ck_assert_int_eq(http_head_add(&h, R("X-Forwarded-For"), R("10.1.1.1"), 1), 0);
    ck_assert_int_eq(http_head_add(&h, R("x-forwarded-for"), R("10.2.2.2"), 1), 0);
    ck_assert_int_eq(http_head_add(&h, R("X-Forwarded-Proto"), R("gopher"), 1), 0);
    ck_assert_int_eq(http_head_add(&h, R("Cookie"), R("a=b"), 1), 0);
    check_written(&h, 0, -1,
                  "GET /a?b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nCookie: a=b\r\n"
                  "X-Forwarded-For: 10.1.1.1, 10.2.2.2, 192.0.2.7\r\nX-Forwarded-Proto: http\r\n\r\n", 0);
    check_written(&h, 1, 5,
                  "GET /a?b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nCookie: a=b\r\n"
                  "X-Forwarded-For: 10.1.1.1, 10.2.2.2, 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
                  "Content-Length: 5\r\n\r\n", 0);
    http_head_free(&h);

    http_head_init(&h);
    h.method = "POST";
    h.method_len = 4;
    h.path = "/";
    h.path_len = 1;
    h.scheme = "https";
    h.scheme_len = 5;
    check_written(&h, 0, -1,
                  "POST / HTTP/1.1\r\nHost: 10.0.0.1:9000\r\nX-Forwarded-For: 192.0.2.7\r\n"
                  "X-Forwarded-Proto: https\r\nContent-Length: 0\r\n\r\n", 0);
    check_written(&h, 1, -1,
                  "POST / HTTP/1.1\r\nHost: 10.0.0.1:9000\r\nX-Forwarded-For: 192.0.2.7\r\n"
                  "X-Forwarded-Proto: https\r\nTransfer-Encoding: chunked\r\n\r\n", 1);
    h.method = "PUT";
    h.method_len = 3;
    check_written(&h, 0, -1,
                  "PUT / HTTP/1.1\r\nHost: 10.0.0.1:9000\r\nX-Forwarded-For: 192.0.2.7\r\n"
                  "X-Forwarded-Proto: https\r\nContent-Length: 0\r\n\r\n", 0);
    http_head_free(&h);
}
END_TEST

static Suite *h1_suite(void)
{
    Suite *s = suite_create("h1_parse");
    TCase *tc;

    tc = tcase_create("request");
    tcase_add_loop_test(tc, test_valid_request, 0, (int)NELEM(valid_reqs));
    tcase_add_test(tc, test_request_fields);
    tcase_add_test(tc, test_field_value_bytes);
    tcase_add_test(tc, test_connection_tokens);
    tcase_add_test(tc, test_ascii_eq_lower);
    tcase_add_loop_test(tc, test_bad_request, 0, (int)NELEM(bad_reqs));
    tcase_add_test(tc, test_early_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_test(tc, test_line_limit);
    tcase_add_test(tc, test_header_count_limit);
    tcase_add_test(tc, test_head_size_limit);
    suite_add_tcase(s, tc);

    tc = tcase_create("response");
    tcase_add_loop_test(tc, test_valid_response, 0, (int)NELEM(valid_resps));
    tcase_add_test(tc, test_response_flags);
    tcase_add_loop_test(tc, test_bad_response, 0, (int)NELEM(bad_resps));
    tcase_add_test(tc, test_response_limits);
    suite_add_tcase(s, tc);

    tc = tcase_create("chunked");
    tcase_add_test(tc, test_trailers);
    tcase_add_loop_test(tc, test_chunked_cases, 0, (int)NELEM(chunk_cases));
    tcase_add_test(tc, test_chunked_states);
    suite_add_tcase(s, tc);

    tc = tcase_create("helpers");
    tcase_add_test(tc, test_helpers);
    tcase_add_test(tc, test_write_request_head);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(h1_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Unit tests for h1_write: the exact bytes of request heads, fields and last chunks, the
 * integer formatters, the hop-by-hop classification, that each writer appends in one piece
 * (the buffer's callbacks run once), and a randomised comparison with the straightforward
 * field-by-field writer that h1_write replaced (kept below as the reference). */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "h1_parse.h"
#include "h1_write.h"

#define R(s) s, sizeof(s) - 1
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define CLIENT_IP "192.0.2.7"
#define DEFAULT_HOST "10.0.0.1:9000"

/* ---------------------------------------------------------------- reference writer */

static int ref_list_has(const char *list, size_t len, const char *name, size_t nlen)
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
        if (end > start && end - start == nlen && strncasecmp(list + start, name, nlen) == 0)
            return 1;
    }
    return 0;
}

static int ref_field_is_hop(const struct http_head *h, const struct http_field *f)
{
    if (h1_is_hop_by_hop(f->name, f->name_len))
        return 1;
    for (uint32_t i = 0; i < h->nfields; i++) {
        const struct http_field *c = &h->fields[i];
        if (h1_name_eq(c->name, c->name_len, "connection") &&
            ref_list_has(c->value, c->value_len, f->name, f->name_len))
            return 1;
    }
    return 0;
}

static enum h1_fwd ref_forward(const struct http_head *h, const struct http_field *f)
{
    if (h1_name_eq(f->name, f->name_len, "content-length"))
        return H1_FWD_LENGTH;
    return ref_field_is_hop(h, f) ? H1_FWD_DROP : H1_FWD_KEEP;
}

static int ref_rewritten(const struct http_head *req, const struct http_field *f)
{
    return ref_field_is_hop(req, f) || h1_name_eq(f->name, f->name_len, "host") ||
           h1_name_eq(f->name, f->name_len, "content-length") ||
           h1_name_eq(f->name, f->name_len, "expect") ||
           h1_name_eq(f->name, f->name_len, "x-forwarded-for") ||
           h1_name_eq(f->name, f->name_len, "x-forwarded-proto");
}

static void ref_write_field(struct evbuffer *out, const struct http_field *f)
{
    evbuffer_add(out, f->name, f->name_len);
    evbuffer_add(out, ": ", 2);
    evbuffer_add(out, f->value, f->value_len);
    evbuffer_add(out, "\r\n", 2);
}

static void ref_write_last_chunk(struct evbuffer *out, const struct http_head *trailers)
{
    evbuffer_add(out, "0\r\n", 3);
    for (uint32_t i = 0; trailers && i < trailers->nfields; i++)
        ref_write_field(out, &trailers->fields[i]);
    evbuffer_add(out, "\r\n", 2);
}

static void ref_write_request_head(struct evbuffer *out, const struct http_head *req,
                                   int has_body, int64_t content_length,
                                   const char *client_ip, const char *default_host,
                                   int *chunked)
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
        if (!ref_rewritten(req, f))
            ref_write_field(out, f);
    }
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
        evbuffer_add(out, "Content-Length: 0\r\n", 19);
    }
    evbuffer_add(out, "\r\n", 2);
}

/* ---------------------------------------------------------------- helpers */

static void count_cb(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    if (info->n_added)
        (*(int *)arg)++;
}

static int buf_eq(struct evbuffer *a, struct evbuffer *b)
{
    size_t la = evbuffer_get_length(a), lb = evbuffer_get_length(b);
    if (la != lb)
        return 0;
    return la == 0 || memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1), la) == 0;
}

static void set_request(struct http_head *h, const char *method, const char *path,
                        const char *authority, const char *scheme)
{
    http_head_init(h);
    h->method = method;
    h->method_len = (uint32_t)strlen(method);
    h->path = path;
    h->path_len = (uint32_t)strlen(path);
    h->authority = authority;
    h->authority_len = authority ? (uint32_t)strlen(authority) : 0;
    h->scheme = scheme;
    h->scheme_len = scheme ? (uint32_t)strlen(scheme) : 0;
}

static void add(struct http_head *h, const char *name, const char *value)
{
    ck_assert_int_eq(http_head_add(h, name, strlen(name), value, strlen(value), 1), 0);
}

/* Writes <h> and checks the exact bytes, the chunked flag, that the buffer's callbacks ran
 * once, that the reference writer agrees, and that the output parses as one request. */
static void check_head_len(const struct http_head *h, int has_body, int64_t clen,
                           const char *want, size_t want_len, int want_chunked)
{
    struct evbuffer *out = evbuffer_new(), *ref = evbuffer_new();
    int chunked = -1, ref_chunked = -1, calls = 0;
    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(ref);
    ck_assert_ptr_nonnull(evbuffer_add_cb(out, count_cb, &calls));
    h1_write_request_head(out, h, has_body, clen, CLIENT_IP, DEFAULT_HOST, &chunked);
    ck_assert_int_eq(calls, 1);
    size_t len = evbuffer_get_length(out);
    const char *got = (const char *)evbuffer_pullup(out, -1);
    ck_assert_msg(len == want_len && memcmp(got, want, len) == 0, "wrote [%.*s]",
                  (int)(len > 2000 ? 2000 : len), got);
    ck_assert_int_eq(chunked, want_chunked);

    ref_write_request_head(ref, h, has_body, clen, CLIENT_IP, DEFAULT_HOST, &ref_chunked);
    ck_assert(buf_eq(out, ref));
    ck_assert_int_eq(chunked, ref_chunked);

    if (h->nfields <= 100 && clen < 1000000000) {   /* within what the parser takes */
        struct h1_limits lim = { 0 };
        static struct h1_request req;
        int st = 0;
        const char *why = NULL;
        lim.max_head = len + 1;
        lim.max_line = len + 1;
        ck_assert_msg(h1_parse_request(got, len, &lim, &req, &st, &why) == (int)len, "%s", why);
    }
    evbuffer_free(out);
    evbuffer_free(ref);
}

static void check_head(const struct http_head *h, int has_body, int64_t clen, const char *want,
                       int want_chunked)
{
    check_head_len(h, has_body, clen, want, strlen(want), want_chunked);
}

/* ---------------------------------------------------------------- formatters */

START_TEST(test_fmt)
{
    static const struct {
        uint64_t v;
        const char *dec, *hex;
    } cases[] = {
        { 0, "0", "0" },
        { 9, "9", "9" },
        { 10, "10", "a" },
        { 15, "15", "f" },
        { 16, "16", "10" },
        { 99, "99", "63" },
        { 100, "100", "64" },
        { 255, "255", "ff" },
        { 4096, "4096", "1000" },
        { 999999999, "999999999", "3b9ac9ff" },
        { 1000000000, "1000000000", "3b9aca00" },
        { UINT32_MAX, "4294967295", "ffffffff" },
        { (uint64_t)INT64_MAX, "9223372036854775807", "7fffffffffffffff" },
        { 10000000000000000000ull, "10000000000000000000", "8ac7230489e80000" },
        { UINT64_MAX, "18446744073709551615", "ffffffffffffffff" },
    };
    for (size_t i = 0; i < NELEM(cases); i++) {
        char buf[FMT_U64_MAX + 8];
        memset(buf, '#', sizeof buf);
        size_t n = fmt_u64(buf, cases[i].v);
        ck_assert_uint_eq(n, strlen(cases[i].dec));
        ck_assert(memcmp(buf, cases[i].dec, n) == 0);
        ck_assert_int_eq(buf[n], '#');          /* nothing written past the digits */
        memset(buf, '#', sizeof buf);
        n = fmt_x64(buf, cases[i].v);
        ck_assert_uint_eq(n, strlen(cases[i].hex));
        ck_assert(memcmp(buf, cases[i].hex, n) == 0);
        ck_assert_int_eq(buf[n], '#');
    }
    ck_assert_uint_eq(fmt_u64((char[FMT_U64_MAX]){ 0 }, UINT64_MAX), FMT_U64_MAX);
    ck_assert_uint_eq(fmt_x64((char[FMT_X64_MAX]){ 0 }, UINT64_MAX), FMT_X64_MAX);

    /* Against printf over powers of ten and two, their neighbours and a pseudo-random walk. */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 20000; i++) {
        uint64_t v;
        if (i < 64 * 3)
            v = (1ull << (i / 3)) + (uint64_t)(i % 3) - 1;
        else if (i < 64 * 3 + 20 * 3) {
            uint64_t p = 1;
            for (int k = 0; k < (i - 64 * 3) / 3; k++)
                p *= 10;
            v = p + (uint64_t)((i - 64 * 3) % 3) - 1;
        } else {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            v = x >> (x & 63);
        }
        char a[32], b[32];
        size_t n = fmt_u64(a, v);
        int m = snprintf(b, sizeof b, "%" PRIu64, v);
        ck_assert_msg((int)n == m && memcmp(a, b, n) == 0, "%s", b);
        n = fmt_x64(a, v);
        m = snprintf(b, sizeof b, "%" PRIx64, v);
        ck_assert_msg((int)n == m && memcmp(a, b, n) == 0, "%s", b);
    }
}
END_TEST

/* ---------------------------------------------------------------- request heads */

START_TEST(test_simple_get)
{
    struct http_head h;
    set_request(&h, "GET", "/", "example.com", "http");
    check_head(&h, 0, -1,
               "GET / HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: " CLIENT_IP "\r\n"
               "X-Forwarded-Proto: http\r\n\r\n", 0);
    add(&h, "Accept", "*/*");
    add(&h, "User-Agent", "curl/8.0");
    check_head(&h, 0, -1,
               "GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nUser-Agent: curl/8.0\r\n"
               "X-Forwarded-For: " CLIENT_IP "\r\nX-Forwarded-Proto: http\r\n\r\n", 0);
    http_head_free(&h);
}
END_TEST

START_TEST(test_host)
{
    struct http_head h;
    /* The authority wins over any Host field; no authority gives the default host. */
    set_request(&h, "GET", "/x?y=1", "a.example:8080", NULL);
    add(&h, "Host", "b.example");
    add(&h, "hOsT", "c.example");
    check_head(&h, 0, -1,
               "GET /x?y=1 HTTP/1.1\r\nHost: a.example:8080\r\nX-Forwarded-For: " CLIENT_IP "\r\n"
               "X-Forwarded-Proto: http\r\n\r\n", 0);
    h.authority = NULL;
    h.authority_len = 0;
    check_head(&h, 0, -1,
               "GET /x?y=1 HTTP/1.1\r\nHost: " DEFAULT_HOST "\r\nX-Forwarded-For: " CLIENT_IP
               "\r\nX-Forwarded-Proto: http\r\n\r\n", 0);
    h.scheme = "https";
    h.scheme_len = 5;
    check_head(&h, 0, -1,
               "GET /x?y=1 HTTP/1.1\r\nHost: " DEFAULT_HOST "\r\nX-Forwarded-For: " CLIENT_IP
               "\r\nX-Forwarded-Proto: https\r\n\r\n", 0);
    http_head_free(&h);
}
END_TEST

START_TEST(test_hop_by_hop)
{
    struct http_head h;
    set_request(&h, "GET", "/", "example.com", "http");
    add(&h, "Accept", "*/*");
    add(&h, "Connection", "keep-alive, X-Drop");
    add(&h, "X-Drop", "1");
    add(&h, "x-drop", "2");
    add(&h, "X-Dropped", "kept");
    add(&h, "Keep-Alive", "timeout=5");
    add(&h, "TE", "trailers");
    add(&h, "Upgrade", "h2c");
    add(&h, "HTTP2-Settings", "AAA");
    add(&h, "Proxy-Connection", "keep-alive");
    add(&h, "Transfer-Encoding", "chunked");
    add(&h, "connection", " ,\tX-Other , Close,, ");
    add(&h, "X-Other", "gone");
    add(&h, "close", "gone too");
    add(&h, "Expect", "100-continue");
    add(&h, "Content-Length", "5");
    add(&h, "X-Forwarded-Proto", "gopher");
    add(&h, "X-Forwarded-Host", "kept.example");
    add(&h, "Cookie", "a=b");
    check_head(&h, 0, -1,
               "GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Dropped: kept\r\n"
               "X-Forwarded-Host: kept.example\r\nCookie: a=b\r\n"
               "X-Forwarded-For: " CLIENT_IP "\r\nX-Forwarded-Proto: http\r\n\r\n", 0);

    /* The same answers one field at a time, with and without the precomputed token set. */
    struct h1_hop hop;
    h1_hop_init(&hop, &h);
    static const struct {
        const char *name;
        int hop, rewritten;
    } names[] = {
        { "Accept", 0, 0 }, { "Connection", 1, 1 }, { "X-DROP", 1, 1 }, { "X-Dropped", 0, 0 },
        { "keep-alive", 1, 1 }, { "te", 1, 1 }, { "Upgrade", 1, 1 }, { "http2-settings", 1, 1 },
        { "proxy-connection", 1, 1 }, { "transfer-encoding", 1, 1 }, { "x-other", 1, 1 },
        { "CLOSE", 1, 1 }, { "Expect", 0, 1 }, { "Host", 0, 1 }, { "content-length", 0, 1 },
        { "X-Forwarded-For", 0, 1 }, { "X-Forwarded-Proto", 0, 1 },
        { "X-Forwarded-Host", 0, 0 }, { "Cookie", 0, 0 }, { "Tee", 0, 0 },
    };
    for (size_t i = 0; i < NELEM(names); i++) {
        struct http_field f = { names[i].name, "v", (uint32_t)strlen(names[i].name), 1 };
        ck_assert_msg(h1_field_is_hop(&h, &f) == names[i].hop, "%s", names[i].name);
        enum h1_fwd fwd = strcasecmp(names[i].name, "content-length") == 0 ? H1_FWD_LENGTH
                          : names[i].hop                                   ? H1_FWD_DROP
                                                                           : H1_FWD_KEEP;
        ck_assert_msg(h1_hop_forward(&hop, f.name, f.name_len) == fwd, "%s", names[i].name);
        ck_assert_msg(h1_request_field_rewritten(&h, &f) == names[i].rewritten, "%s",
                      names[i].name);
    }
    http_head_free(&h);
}
END_TEST

/* More tokens in Connection than struct h1_hop keeps: the slow path gives the same answer. */
START_TEST(test_many_connection_tokens)
{
    struct http_head h;
    char list[2048] = "keep-alive, upgrade";
    set_request(&h, "GET", "/", "example.com", "http");
    for (int i = 0; i < 3 * H1_HOP_TOKENS; i++) {
        char t[32];
        snprintf(t, sizeof t, ", X-T%d", i);
        strcat(list, t);
    }
    add(&h, "Connection", list);
    add(&h, "X-T0", "a");
    add(&h, "X-T47", "b");
    add(&h, "X-T48", "kept");
    add(&h, "X-T", "kept");
    check_head(&h, 0, -1,
               "GET / HTTP/1.1\r\nHost: example.com\r\nX-T48: kept\r\nX-T: kept\r\n"
               "X-Forwarded-For: " CLIENT_IP "\r\nX-Forwarded-Proto: http\r\n\r\n", 0);
    struct h1_hop hop;
    h1_hop_init(&hop, &h);
    ck_assert(hop.overflow);
    for (uint32_t i = 0; i < h.nfields; i++)
        ck_assert_int_eq(h1_hop_forward(&hop, h.fields[i].name, h.fields[i].name_len),
                         ref_forward(&h, &h.fields[i]));
    http_head_free(&h);
}
END_TEST

START_TEST(test_xff)
{
    struct http_head h;
    set_request(&h, "GET", "/", "example.com", "http");
    add(&h, "X-Forwarded-For", "10.1.1.1");
    add(&h, "Accept", "*/*");
    add(&h, "x-forwarded-for", "10.2.2.2, 10.3.3.3");
    add(&h, "X-FORWARDED-FOR", "");
    add(&h, "X-Forwarded-Fo", "kept");
    check_head(&h, 0, -1,
               "GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Forwarded-Fo: kept\r\n"
               "X-Forwarded-For: 10.1.1.1, 10.2.2.2, 10.3.3.3, , " CLIENT_IP "\r\n"
               "X-Forwarded-Proto: http\r\n\r\n", 0);
    http_head_free(&h);

    /* An X-Forwarded-For named in Connection is still joined (it is rewritten, not dropped). */
    set_request(&h, "GET", "/", "example.com", "http");
    add(&h, "Connection", "X-Forwarded-For");
    add(&h, "X-Forwarded-For", "10.9.9.9");
    check_head(&h, 0, -1,
               "GET / HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 10.9.9.9, " CLIENT_IP
               "\r\nX-Forwarded-Proto: http\r\n\r\n", 0);
    http_head_free(&h);
}
END_TEST

START_TEST(test_framing)
{
    struct http_head h;
    set_request(&h, "POST", "/up", "example.com", "https");
    add(&h, "Content-Length", "12");
    add(&h, "Transfer-Encoding", "chunked");
    add(&h, "Content-Type", "text/plain");
#define PRE "POST /up HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\n" \
            "X-Forwarded-For: " CLIENT_IP "\r\nX-Forwarded-Proto: https\r\n"
    check_head(&h, 1, 12, PRE "Content-Length: 12\r\n\r\n", 0);
    check_head(&h, 1, 0, PRE "Content-Length: 0\r\n\r\n", 0);
    check_head(&h, 1, INT64_MAX, PRE "Content-Length: 9223372036854775807\r\n\r\n", 0);
    check_head(&h, 1, -1, PRE "Transfer-Encoding: chunked\r\n\r\n", 1);
    check_head(&h, 0, -1, PRE "Content-Length: 0\r\n\r\n", 0);    /* bodiless POST */
    check_head(&h, 0, 7, PRE "Content-Length: 0\r\n\r\n", 0);
#undef PRE
    h.method = "PUT";
    h.method_len = 3;
    check_head(&h, 0, -1,
               "PUT /up HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\n"
               "X-Forwarded-For: " CLIENT_IP "\r\nX-Forwarded-Proto: https\r\n"
               "Content-Length: 0\r\n\r\n", 0);
    h.method = "PATCH";
    h.method_len = 5;
    check_head(&h, 0, -1,
               "PATCH /up HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\n"
               "X-Forwarded-For: " CLIENT_IP "\r\nX-Forwarded-Proto: https\r\n\r\n", 0);
    h.method = "post";                          /* methods are case-sensitive */
    h.method_len = 4;
    check_head(&h, 0, -1,
               "post /up HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\n"
               "X-Forwarded-For: " CLIENT_IP "\r\nX-Forwarded-Proto: https\r\n\r\n", 0);
    h.method = "GET";
    h.method_len = 3;
    check_head(&h, 1, -1,
               "GET /up HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\n"
               "X-Forwarded-For: " CLIENT_IP "\r\nX-Forwarded-Proto: https\r\n"
               "Transfer-Encoding: chunked\r\n\r\n", 1);
    http_head_free(&h);
}
END_TEST

/* About 40 KiB of fields, added to a buffer that already holds data: one piece, nothing cut. */
START_TEST(test_large_head)
{
    struct http_head h;
    size_t cap = 64 * 1024, n = 0;
    char *want = malloc(cap), value[101];
    ck_assert_ptr_nonnull(want);
    memset(value, 'v', 100);
    value[100] = '\0';
    set_request(&h, "GET", "/big", "example.com", "http");
    n += (size_t)snprintf(want + n, cap - n, "GET /big HTTP/1.1\r\nHost: example.com\r\n");
    for (int i = 0; i < 400; i++) {
        char name[32];
        snprintf(name, sizeof name, "X-Field-%03d", i);
        add(&h, name, value);
        n += (size_t)snprintf(want + n, cap - n, "%s: %s\r\n", name, value);
        if (i % 100 == 0) {
            add(&h, "X-Forwarded-For", "10.0.0.9");
            add(&h, "Connection", "X-Gone");
            add(&h, "X-Gone", value);
        }
    }
    n += (size_t)snprintf(want + n, cap - n,
                          "X-Forwarded-For: 10.0.0.9, 10.0.0.9, 10.0.0.9, 10.0.0.9, " CLIENT_IP
                          "\r\nX-Forwarded-Proto: http\r\nTransfer-Encoding: chunked\r\n\r\n");
    ck_assert_uint_gt(n, 40 * 1024);
    ck_assert_uint_lt(n, cap - 1);
    check_head_len(&h, 1, -1, want, n, 1);

    struct evbuffer *out = evbuffer_new();
    int chunked, calls = 0;
    evbuffer_add(out, "prefix", 6);
    ck_assert_ptr_nonnull(evbuffer_add_cb(out, count_cb, &calls));
    h1_write_request_head(out, &h, 1, -1, CLIENT_IP, DEFAULT_HOST, &chunked);
    ck_assert_int_eq(calls, 1);
    ck_assert_uint_eq(evbuffer_get_length(out), n + 6);
    const char *got = (const char *)evbuffer_pullup(out, -1);
    ck_assert(memcmp(got, "prefix", 6) == 0 && memcmp(got + 6, want, n) == 0);
    evbuffer_free(out);
    free(want);
    http_head_free(&h);
}
END_TEST

/* ---------------------------------------------------------------- fields and trailers */

START_TEST(test_body)
{
    struct evbuffer *out = evbuffer_new(), *data = evbuffer_new();
    evbuffer_add(data, "hello", 5);
    h1_write_body(out, data, 0);
    ck_assert_uint_eq(evbuffer_get_length(data), 0);
    ck_assert_uint_eq(evbuffer_get_length(out), 5);
    ck_assert(memcmp(evbuffer_pullup(out, -1), "hello", 5) == 0);
    evbuffer_drain(out, 5);

    char big[300];
    memset(big, 'x', sizeof big);
    evbuffer_add(data, big, sizeof big);
    h1_write_body(out, data, 1);
    ck_assert_uint_eq(evbuffer_get_length(data), 0);
    ck_assert_uint_eq(evbuffer_get_length(out), 5 + sizeof big + 2);
    const char *got = (const char *)evbuffer_pullup(out, -1);
    ck_assert(memcmp(got, "12c\r\n", 5) == 0);
    ck_assert(memcmp(got + 5, big, sizeof big) == 0);
    ck_assert(memcmp(got + 5 + sizeof big, "\r\n", 2) == 0);
    evbuffer_free(data);
    evbuffer_free(out);
}
END_TEST

START_TEST(test_field_and_last_chunk)
{
    struct evbuffer *out = evbuffer_new();
    int calls = 0;
    ck_assert_ptr_nonnull(evbuffer_add_cb(out, count_cb, &calls));
    struct http_field f = { "Name", "value with spaces", 4, 17 };
    h1_write_field(out, &f);
    ck_assert_int_eq(calls, 1);
    struct http_field e = { "X-Empty", "", 7, 0 };
    h1_write_field(out, &e);
    ck_assert_int_eq(calls, 2);
    ck_assert_uint_eq(evbuffer_get_length(out), 36);
    ck_assert(memcmp(evbuffer_pullup(out, -1), "Name: value with spaces\r\nX-Empty: \r\n", 36) == 0);
    evbuffer_drain(out, 36);

    calls = 0;
    h1_write_last_chunk(out, NULL);
    ck_assert_int_eq(calls, 1);
    ck_assert_uint_eq(evbuffer_get_length(out), 5);
    ck_assert(memcmp(evbuffer_pullup(out, -1), "0\r\n\r\n", 5) == 0);
    evbuffer_drain(out, 5);

    struct http_head t;
    http_head_init(&t);
    calls = 0;
    h1_write_last_chunk(out, &t);
    ck_assert_int_eq(calls, 1);
    ck_assert(memcmp(evbuffer_pullup(out, -1), "0\r\n\r\n", 5) == 0);
    evbuffer_drain(out, 5);

    add(&t, "Grpc-Status", "0");
    add(&t, "Grpc-Message", "");
    add(&t, "X-Checksum", "abc");
    calls = 0;
    h1_write_last_chunk(out, &t);
    ck_assert_int_eq(calls, 1);
    static const char want[] = "0\r\nGrpc-Status: 0\r\nGrpc-Message: \r\nX-Checksum: abc\r\n\r\n";
    ck_assert_uint_eq(evbuffer_get_length(out), sizeof want - 1);
    ck_assert(memcmp(evbuffer_pullup(out, -1), want, sizeof want - 1) == 0);
    http_head_free(&t);
    evbuffer_free(out);
}
END_TEST

/* ---------------------------------------------------------------- randomised comparison */

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)((rng >> 11) % n);
}

static const char *const pool_names[] = {
    "Accept", "Host", "HOST", "host", "Content-Length", "content-length", "CONTENT-LENGTH",
    "Expect", "eXpEcT", "X-Forwarded-For", "x-forwarded-for", "X-Forwarded-Proto",
    "x-forwarded-PROTO", "Connection", "connection", "CONNECTION", "Keep-Alive", "TE", "te",
    "Upgrade", "Transfer-Encoding", "Proxy-Connection", "HTTP2-Settings", "X-Drop", "x-drop",
    "Close", "close", "Cookie", "X-Forwarded-Host", "Content-Type", "Tee", "T", "Hostx",
    "Hos", "A", "Connectiox", "Konnection", "Kxep-Alive", "X-Forwarded-Fox",
    "X-Forwarded-Prota", "Transfer-Encodinx", "Content-Lengtx", "Http2-Settingz",
    "Proxy-Connectioo", "Upgradf", "Expecu", "x-forwarded-fo", "Y-Forwarded-For",
    "Content-Encoding", "Keep-Alivf", "Proxy-Authorization", "Trailer", "X-\xc3\xa9t\xc3\xa9",
};

static const char *const seps[] = { ",", ", ", " ,", ",\t", ",,", " , ,", "\t,\t" };

static void random_connection_value(char *buf, size_t cap)
{
    size_t n = 0;
    uint32_t k = rnd(8) == 0 ? 10 + rnd(30) : rnd(5);
    buf[0] = '\0';
    if (rnd(4) == 0)
        n += (size_t)snprintf(buf + n, cap - n, "%s", rnd(2) ? " " : ",");
    for (uint32_t i = 0; i < k && n < cap - 64; i++) {
        if (i)
            n += (size_t)snprintf(buf + n, cap - n, "%s", seps[rnd(NELEM(seps))]);
        if (rnd(6) == 0)
            n += (size_t)snprintf(buf + n, cap - n, "X-Tok%u", rnd(40));
        else
            n += (size_t)snprintf(buf + n, cap - n, "%s", pool_names[rnd(NELEM(pool_names))]);
    }
    if (rnd(4) == 0 && n < cap - 4)
        n += (size_t)snprintf(buf + n, cap - n, "%s", rnd(2) ? ", " : " \t");
}

START_TEST(test_random_against_reference)
{
    static const char *const methods[] = { "GET", "POST", "PUT", "HEAD", "PATCH", "POS", "PUTT" };
    for (int iter = 0; iter < 6000; iter++) {
        struct http_head h;
        set_request(&h, methods[rnd(NELEM(methods))], rnd(2) ? "/" : "/a/b?c=d&e",
                    rnd(3) ? "example.com" : NULL, rnd(3) == 0 ? NULL : rnd(2) ? "https" : "http");
        uint32_t nf = rnd(8) == 0 ? rnd(130) : rnd(20);
        for (uint32_t i = 0; i < nf; i++) {
            char name[32], value[1024];
            const char *nm = pool_names[rnd(NELEM(pool_names))];
            if (rnd(8) == 0) {
                snprintf(name, sizeof name, "X-Tok%u", rnd(40));
                nm = name;
            }
            if (h1_name_eq(nm, strlen(nm), "connection") && rnd(4))
                random_connection_value(value, sizeof value);
            else
                snprintf(value, sizeof value, "%.*s", (int)rnd(40),
                         "10.0.0.1, some value with ,commas\tand tabs");
            add(&h, nm, value);
        }
        int has_body = (int)rnd(2);
        int64_t clen = rnd(3) == 0 ? -1 : rnd(2) ? (int64_t)rnd(100000) : INT64_MAX - rnd(10);

        struct evbuffer *out = evbuffer_new(), *ref = evbuffer_new();
        int c1 = -1, c2 = -2, calls = 0;
        if (rnd(2)) {                   /* sometimes after data already queued */
            evbuffer_add(out, "queued", 6);
            evbuffer_add(ref, "queued", 6);
        }
        evbuffer_add_cb(out, count_cb, &calls);
        h1_write_request_head(out, &h, has_body, clen, CLIENT_IP, DEFAULT_HOST, &c1);
        ref_write_request_head(ref, &h, has_body, clen, CLIENT_IP, DEFAULT_HOST, &c2);
        ck_assert_int_eq(calls, 1);
        ck_assert_int_eq(c1, c2);
        ck_assert_msg(buf_eq(out, ref), "iteration %d: [%.*s] vs [%.*s]", iter,
                      (int)evbuffer_get_length(out), (const char *)evbuffer_pullup(out, -1),
                      (int)evbuffer_get_length(ref), (const char *)evbuffer_pullup(ref, -1));

        struct h1_hop hop;
        h1_hop_init(&hop, &h);
        for (uint32_t i = 0; i < h.nfields; i++) {
            const struct http_field *f = &h.fields[i];
            int hop_ref = ref_field_is_hop(&h, f);
            ck_assert_int_eq(h1_field_is_hop(&h, f), hop_ref);
            ck_assert_int_eq(h1_hop_forward(&hop, f->name, f->name_len), ref_forward(&h, f));
            ck_assert_int_eq(h1_request_field_rewritten(&h, f), ref_rewritten(&h, f));
        }
        /* Names that are not in the head at all, including empty and near misses. */
        for (size_t i = 0; i < NELEM(pool_names); i++) {
            struct http_field f = { pool_names[i], "", (uint32_t)strlen(pool_names[i]), 0 };
            ck_assert_int_eq(h1_hop_forward(&hop, f.name, f.name_len), ref_forward(&h, &f));
            ck_assert_int_eq(h1_request_field_rewritten(&h, &f), ref_rewritten(&h, &f));
        }
        struct http_field empty = { "", "", 0, 0 };
        ck_assert_int_eq(h1_field_is_hop(&h, &empty), ref_field_is_hop(&h, &empty));
        ck_assert_int_eq(h1_hop_forward(&hop, empty.name, empty.name_len), ref_forward(&h, &empty));

        /* The same head as a trailer section. */
        evbuffer_drain(out, evbuffer_get_length(out));
        evbuffer_drain(ref, evbuffer_get_length(ref));
        calls = 0;
        h1_write_last_chunk(out, &h);
        ref_write_last_chunk(ref, &h);
        ck_assert_int_eq(calls, 1);
        ck_assert(buf_eq(out, ref));

        evbuffer_free(out);
        evbuffer_free(ref);
        http_head_free(&h);
    }
}
END_TEST

static void check_response(const struct http_head *h, int keep_length, const char *extra,
                           const char *want)
{
    struct evbuffer *out = evbuffer_new();
    h1_write_response_head(out, h, "OK", 2, keep_length, extra, strlen(extra));
    size_t n = evbuffer_get_length(out);
    char *got = malloc(n + 1);
    evbuffer_remove(out, got, n);
    got[n] = '\0';
    ck_assert_str_eq(got, want);
    free(got);
    evbuffer_free(out);
}

START_TEST(test_response_head)
{
    struct http_head h;
    http_head_init(&h);
    h.status = 200;
    add(&h, "Content-Type", "text/plain");
    add(&h, "Connection", "keep-alive, X-Private");
    add(&h, "Keep-Alive", "timeout=5");
    add(&h, "X-Private", "secret");
    add(&h, "Transfer-Encoding", "chunked");
    add(&h, "content-length", "5");
    add(&h, "Set-Cookie", "a=b");
    check_response(&h, 0, "Content-Length: 5\r\n",
                   "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=b\r\n"
                   "Content-Length: 5\r\n\r\n");
    check_response(&h, 1, "",
                   "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 5\r\n"
                   "Set-Cookie: a=b\r\n\r\n");
    h.status = 1000;   /* never from a parser; written as 502 rather than garbage */
    check_response(&h, 0, "Connection: close\r\n",
                   "HTTP/1.1 502 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=b\r\n"
                   "Connection: close\r\n\r\n");
    http_head_free(&h);
}
END_TEST

static Suite *h1_write_suite(void)
{
    Suite *s = suite_create("h1_write");
    TCase *tc;

    tc = tcase_create("format");
    tcase_add_test(tc, test_fmt);
    suite_add_tcase(s, tc);

    tc = tcase_create("request head");
    tcase_add_test(tc, test_simple_get);
    tcase_add_test(tc, test_host);
    tcase_add_test(tc, test_hop_by_hop);
    tcase_add_test(tc, test_many_connection_tokens);
    tcase_add_test(tc, test_xff);
    tcase_add_test(tc, test_framing);
    tcase_add_test(tc, test_large_head);
    suite_add_tcase(s, tc);

    tc = tcase_create("fields");
    tcase_add_test(tc, test_body);
    tcase_add_test(tc, test_field_and_last_chunk);
    tcase_add_test(tc, test_response_head);
    suite_add_tcase(s, tc);

    tc = tcase_create("reference");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_random_against_reference);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(h1_write_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

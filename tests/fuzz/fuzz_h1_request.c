/* fuzz_h1_request — h1_parse_request with the default limits over the input, then every
 * prefix of it again: the parser is re-run from byte 0 as bytes arrive, so a prefix must
 * never see a complete head of a different length than the whole input does, and an error
 * seen on a prefix must stay an error (otherwise the verdict would depend on how TCP cut
 * the stream). Prefixes are copied into buffers of their exact size, so reading past <len>
 * is caught by ASan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h1_parse.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

static int in(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && p + n <= buf + len;
}

static void check_complete(const char *buf, size_t len, int r, const struct h1_request *req)
{
    CHECK(r > 0 && (size_t)r <= len && r <= 8192);
    CHECK(req->method && req->method_len > 0 && in(req->method, req->method_len, buf, (size_t)r));
    CHECK(req->target && req->target_len > 0 && in(req->target, req->target_len, buf, (size_t)r));
    CHECK(req->msg.version_minor == 0 || req->msg.version_minor == 1);
    CHECK(req->msg.num_headers <= 100);
    CHECK(req->msg.version_minor == 0 || req->host);
    for (size_t i = 0; i < req->msg.num_headers; i++) {
        const struct h1_header *h = &req->msg.headers[i];
        CHECK(h->name_len > 0 && in(h->name, h->name_len, buf, (size_t)r));
        CHECK(in(h->value, h->value_len, buf, (size_t)r));
        CHECK(!memchr(h->value, '\r', h->value_len) && !memchr(h->value, '\n', h->value_len));
        CHECK(!memchr(h->value, '\0', h->value_len));
    }
    if (req->msg.body_kind == H1_BODY_CHUNKED)
        CHECK(req->msg.version_minor == 1);
    CHECK(req->msg.body_kind != H1_BODY_UNTIL_CLOSE);
    CHECK(req->msg.content_length <= (UINT64_C(1) << 62));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct h1_request full, part;
    const char *buf = (const char *)data;
    const char *why = NULL;
    int st = 0;

    int r = h1_parse_request(buf, size, NULL, &full, &st, &why);
    if (r > 0)
        check_complete(buf, size, r, &full);
    else if (r == H1_ERROR)
        CHECK(why && (st == 400 || st == 414 || st == 431 || st == 501 || st == 505));
    else
        CHECK(r == H1_INCOMPLETE && size < 8192);

    for (size_t k = 0; k < size; k++) {
        char *p = malloc(k ? k : 1);
        const char *pwhy = NULL;
        int pst = 0;
        CHECK(p);
        memcpy(p, buf, k);
        int pr = h1_parse_request(p, k, NULL, &part, &pst, &pwhy);
        if (pr > 0) {
            check_complete(p, k, pr, &part);
            CHECK(r == pr);   /* a complete prefix head must be the head of the whole */
        } else if (pr == H1_ERROR) {
            CHECK(r == H1_ERROR && pst == st);
        }
        free(p);
    }
    return 0;
}

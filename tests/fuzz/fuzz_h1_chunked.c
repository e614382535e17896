/* fuzz_h1_chunked — differential test of the chunked decoder and the trailer parser. The
 * input after its first byte is a chunked body (then trailers). It is fed once whole and
 * once in two pieces split where the first byte says, the way the sessions feed it: decode
 * until the last chunk, then h1_parse_trailers over what is buffered (re-offered from its
 * start when more arrives). Both runs must decode the same body bytes, stop at the same
 * offset in the same state and find the same trailers. Each piece lives in a buffer of its
 * exact size so that reading past it is caught by ASan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h1_parse.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define MAX_TRAILERS 32
#define MAX_TRAILER_BYTES 8192

enum phase { P_CHUNKS, P_TRAILERS, P_DONE, P_ERROR };

struct run {
    struct h1_chunked ck;
    enum phase phase;
    unsigned char *body;     /* decoded body bytes */
    size_t body_len;
    size_t consumed;         /* input bytes used so far (data, framing, trailers) */
    char *pending;           /* bytes received but not consumed (trailers in progress) */
    size_t pending_len;
    char *trailers;          /* "name\0value\0" for each trailer field */
    size_t trailers_len;
    size_t ntrailers;
};

static void append(char **dst, size_t *len, const void *src, size_t n)
{
    char *p = realloc(*dst, *len + n + 1);
    CHECK(p);
    memcpy(p + *len, src, n);
    *dst = p;
    *len += n;
}

/* Delivers <n> more bytes of the stream to <r>. */
static void feed(struct run *r, const char *bytes, size_t n)
{
    if (r->phase == P_DONE || r->phase == P_ERROR)
        return;
    size_t len = r->pending_len + n;
    char *buf = malloc(len ? len : 1);   /* exactly the bytes buffered: no slack to read */
    CHECK(buf);
    if (r->pending_len)
        memcpy(buf, r->pending, r->pending_len);
    if (n)
        memcpy(buf + r->pending_len, bytes, n);
    free(r->pending);
    r->pending = NULL;
    r->pending_len = 0;

    size_t off = 0;
    while (off < len && r->phase == P_CHUNKS) {
        size_t used = 0, dlen = 0;
        const char *d = NULL, *why = NULL;
        enum h1_chunk_event e = h1_chunked_decode(&r->ck, buf + off, len - off, &used, &d, &dlen, &why);
        CHECK(used <= len - off);
        if (e == H1_CHUNK_DATA) {
            CHECK(d >= buf + off && dlen > 0 && d + dlen <= buf + off + used);
            append((char **)&r->body, &r->body_len, d, dlen);
        } else {
            CHECK(d == NULL && dlen == 0);
        }
        off += used;
        if (e == H1_CHUNK_LAST) {
            r->phase = P_TRAILERS;
        } else if (e == H1_CHUNK_ERROR) {
            CHECK(why != NULL);
            r->phase = P_ERROR;
        } else if (e == H1_CHUNK_NEED_MORE) {
            CHECK(off == len);
            break;
        } else {
            CHECK(e == H1_CHUNK_DATA && used > 0);
        }
    }
    if (r->phase == P_TRAILERS && off < len) {
        struct h1_header f[MAX_TRAILERS];
        size_t nf = 0;
        const char *why = NULL;
        int t = h1_parse_trailers(buf + off, len - off, MAX_TRAILER_BYTES, f, MAX_TRAILERS, &nf, &why);
        CHECK(nf <= MAX_TRAILERS);
        if (t < 0) {
            CHECK(t == H1_ERROR && why != NULL);
            r->phase = P_ERROR;
        } else if (t > 0) {
            CHECK((size_t)t <= len - off && t >= 2);
            for (size_t i = 0; i < nf; i++) {
                CHECK(f[i].name_len > 0);
                append(&r->trailers, &r->trailers_len, f[i].name, f[i].name_len);
                append(&r->trailers, &r->trailers_len, "", 1);
                append(&r->trailers, &r->trailers_len, f[i].value, f[i].value_len);
                append(&r->trailers, &r->trailers_len, "", 1);
            }
            r->ntrailers = nf;
            off += (size_t)t;
            r->phase = P_DONE;
        }
    }
    r->consumed += off;
    if (off < len && r->phase == P_TRAILERS)
        append(&r->pending, &r->pending_len, buf + off, len - off);
    free(buf);
}

static void run_free(struct run *r)
{
    free(r->body);
    free(r->pending);
    free(r->trailers);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    size_t split = len ? (size_t)data[0] * len / 255 : 0;

    struct run whole, two;
    memset(&whole, 0, sizeof whole);
    memset(&two, 0, sizeof two);
    h1_chunked_init(&whole.ck);
    h1_chunked_init(&two.ck);

    char *all = malloc(len ? len : 1);
    char *a = malloc(split ? split : 1);
    char *b = malloc(len - split ? len - split : 1);
    CHECK(all && a && b);
    memcpy(all, in, len);
    memcpy(a, in, split);
    memcpy(b, in + split, len - split);

    feed(&whole, all, len);
    feed(&two, a, split);
    feed(&two, b, len - split);

    CHECK(whole.phase == two.phase);
    CHECK(whole.consumed == two.consumed);
    CHECK(whole.consumed <= len);
    CHECK(whole.body_len == two.body_len);
    CHECK(whole.body_len == 0 || memcmp(whole.body, two.body, whole.body_len) == 0);
    CHECK(whole.ntrailers == two.ntrailers);
    CHECK(whole.trailers_len == two.trailers_len);
    CHECK(whole.trailers_len == 0 || memcmp(whole.trailers, two.trailers, whole.trailers_len) == 0);
    CHECK(whole.ck.state == two.ck.state && whole.ck.remaining == two.ck.remaining);
    CHECK(whole.ck.size_digits == two.ck.size_digits && whole.ck.ext_len == two.ck.ext_len);
    if (whole.phase == P_CHUNKS)
        CHECK(whole.consumed == len);
    CHECK(whole.body_len <= whole.consumed);

    /* Once finished, the decoder keeps saying so and consumes nothing more. */
    if (whole.phase == P_DONE || whole.phase == P_TRAILERS) {
        size_t used = 1, dlen = 1;
        const char *d = in, *why = NULL;
        CHECK(h1_chunked_decode(&whole.ck, "0\r\n", 3, &used, &d, &dlen, &why) == H1_CHUNK_LAST);
        CHECK(used == 0 && d == NULL && dlen == 0);
    }

    run_free(&whole);
    run_free(&two);
    free(all);
    free(a);
    free(b);
    return 0;
}

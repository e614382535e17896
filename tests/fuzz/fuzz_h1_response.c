/* fuzz_h1_response — h1_parse_response over the input after its first byte, whose low bits
 * say whether the request was HEAD (bit 0) and CONNECT (bit 1). As for requests, every
 * prefix is parsed again (copied to an exact-size buffer): a complete prefix head must be
 * the whole input's head, and an error on a prefix must stay an error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h1_parse.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

static void check_complete(const char *buf, size_t len, int r, const struct h1_response *resp,
                           int head, int connect)
{
    CHECK(r > 0 && (size_t)r <= len && r <= 8192);
    CHECK(resp->status >= 100 && resp->status <= 599);
    CHECK(resp->reason && resp->reason >= buf && resp->reason + resp->reason_len <= buf + r);
    CHECK(resp->msg.num_headers <= 100);
    for (size_t i = 0; i < resp->msg.num_headers; i++) {
        const struct h1_header *h = &resp->msg.headers[i];
        CHECK(h->name_len > 0 && h->name >= buf && h->name + h->name_len <= buf + r);
        CHECK(h->value >= buf && h->value + h->value_len <= buf + r);
    }
    int s = resp->status;
    if (head || s < 200 || s == 204 || s == 304 || (connect && s < 300))
        CHECK(resp->msg.body_kind == H1_BODY_NONE);
    if (resp->msg.body_kind == H1_BODY_CHUNKED)
        CHECK(resp->msg.version_minor == 1);
    CHECK(resp->msg.keep_alive_timeout >= -1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct h1_response full, part;
    if (size < 1)
        return 0;
    int head = data[0] & 1, connect = (data[0] >> 1) & 1;
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    const char *why = NULL;

    int r = h1_parse_response(buf, len, NULL, head, connect, &full, &why);
    if (r > 0)
        check_complete(buf, len, r, &full, head, connect);
    else if (r == H1_ERROR)
        CHECK(why != NULL);
    else
        CHECK(r == H1_INCOMPLETE && len < 8192);

    for (size_t k = 0; k < len; k++) {
        char *p = malloc(k ? k : 1);
        const char *pwhy = NULL;
        CHECK(p);
        memcpy(p, buf, k);
        int pr = h1_parse_response(p, k, NULL, head, connect, &part, &pwhy);
        if (pr > 0) {
            check_complete(p, k, pr, &part, head, connect);
            CHECK(pr == r);
        } else if (pr == H1_ERROR) {
            CHECK(r == H1_ERROR);
        }
        free(p);
    }
    return 0;
}

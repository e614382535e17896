/* http_msg — the protocol-neutral message head that both session kinds (HTTP/1.1 now,
 * HTTP/2 later) produce and consume. Requests carry h2-style pseudo fields (method, scheme,
 * authority, path); responses a status. Regular fields keep their order and spelling.
 * All strings live in the head's own arena and stay valid until http_head_free. */
#ifndef FERRY_HTTP_MSG_H
#define FERRY_HTTP_MSG_H

#include <stddef.h>
#include <stdint.h>

struct http_field {
    const char *name;
    const char *value;
    uint32_t name_len;
    uint32_t value_len;
};

struct arena_block;

struct http_head {
    const char *method;
    const char *scheme;          /* "http" / "https" */
    const char *authority;       /* Host or :authority; may be NULL for HTTP/1.0 */
    const char *path;            /* origin-form: path and query */
    uint32_t method_len, scheme_len, authority_len, path_len;
    int status;                  /* responses */
    const char *reason;
    uint32_t reason_len;
    int version_minor;           /* HTTP/1.<minor> as received (h1 only) */
    struct http_field *fields;
    uint32_t nfields, cap;
    struct arena_block *arena;
};

void http_head_init(struct http_head *h);
void http_head_free(struct http_head *h);          /* frees fields and arena; h reusable */

/* Copies <len> bytes into the head's arena. Returns the stable copy or NULL (ENOMEM). */
char *http_head_copy(struct http_head *h, const char *s, size_t len);

/* Appends a field; the strings are copied unless <copy> is 0 (then they must live in this
 * head's arena, or outlive every use of the head). Returns 0 or -1 (ENOMEM). */
int http_head_add(struct http_head *h, const char *name, size_t nlen, const char *value,
                  size_t vlen, int copy);

/* First field named <lower> (case-insensitive), or NULL. */
const struct http_field *http_head_get(const struct http_head *h, const char *lower);

const char *http_reason_phrase(int status);

#endif

/* h1_parse — strict, incremental HTTP/1.x message parser (RFC 9112). No I/O, no allocation.
 *
 * The head parsers work on one contiguous buffer (the caller pulls up at most its header
 * size limit from an evbuffer) and return pointers into it: nothing is copied. Call again with
 * more bytes when they return H1_INCOMPLETE. Body framing is decided here, once, so that the
 * server and client sides can never disagree about where a message ends.
 *
 * Anything ambiguous is an error, never "fixed up": a proxy that guesses differently from its
 * backend is how request smuggling happens. On error the connection must be closed after
 * (optionally) sending the status in *err_status.
 */
#ifndef FERRY_H1_PARSE_H
#define FERRY_H1_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define H1_MAX_HEADERS 128

enum h1_result {
    H1_INCOMPLETE = 0,   /* need more bytes; nothing consumed */
    H1_ERROR = -1,       /* malformed; see err_status / err_reason */
};

/* How the message body is delimited (RFC 9112 §6.3). */
enum h1_body_kind {
    H1_BODY_NONE,        /* no body at all (no CL/TE on a request; 1xx/204/304/HEAD response) */
    H1_BODY_LENGTH,      /* exactly content_length bytes (may be 0) */
    H1_BODY_CHUNKED,     /* chunked transfer coding, then optional trailers */
    H1_BODY_UNTIL_CLOSE, /* response only: read until the connection closes */
};

struct h1_header {
    const char *name;
    size_t name_len;
    const char *value;   /* leading/trailing OWS already trimmed */
    size_t value_len;
};

/* Fields common to requests and responses. */
struct h1_message {
    int version_minor;              /* HTTP/1.<minor>: 0 or 1 */
    struct h1_header headers[H1_MAX_HEADERS];
    size_t num_headers;

    enum h1_body_kind body_kind;
    uint64_t content_length;        /* valid when body_kind == H1_BODY_LENGTH */

    /* Connection-management facts derived from the Connection header(s). */
    unsigned conn_close : 1;        /* "close" token present */
    unsigned conn_keep_alive : 1;   /* "keep-alive" token present */
    unsigned conn_upgrade : 1;      /* "upgrade" token present */
    unsigned has_upgrade : 1;       /* an Upgrade header is present */
    unsigned expect_continue : 1;   /* request: Expect: 100-continue */
    unsigned has_te_trailers : 1;   /* request: TE: trailers */

    /* Response only: Keep-Alive: timeout=N from the backend, -1 when absent. */
    int64_t keep_alive_timeout;
};

struct h1_request {
    struct h1_message msg;
    const char *method;
    size_t method_len;
    const char *target;             /* request-target as sent (origin/absolute/authority/asterisk form) */
    size_t target_len;
    const char *host;               /* the single Host header value, NULL if absent */
    size_t host_len;
};

struct h1_response {
    struct h1_message msg;
    int status;                     /* 100..599 */
    const char *reason;
    size_t reason_len;
};

/* Limits enforced while parsing. A zero field means the default shown. */
struct h1_limits {
    size_t max_head;                /* whole head incl. request line: default 8192 -> 431 */
    size_t max_line;                /* request line: default 4096 -> 414 */
    size_t max_headers;             /* number of header fields: default 100 (<= H1_MAX_HEADERS) -> 431 */
};

/* Parses one request head from <buf,len>.
 * Returns the head's length in bytes (> 0, including the final CRLF) when complete,
 * H1_INCOMPLETE when more bytes are needed (and the limits are not yet exceeded), or
 * H1_ERROR with *err_status set to 400, 414, 431, 501 (unsupported transfer coding) or 505
 * (unsupported version) and *err_reason to a static string for the error log.
 * Leading empty lines before the request line (RFC 9112 §2.2) are skipped and counted. */
int h1_parse_request(const char *buf, size_t len, const struct h1_limits *lim,
                     struct h1_request *req, int *err_status, const char **err_reason);

/* Parses one response head. <request_method_head> and <request_was_connect> decide the body
 * framing for responses to HEAD/CONNECT. Returns as h1_parse_request; on error *err_reason
 * explains (the proxy answers its client with 502). 1xx responses parse normally (body
 * NONE): the caller decides what to do with them. */
/* uri-host [ ":" port ] as Host (and an absolute-form or :authority authority) may carry;
 * a comma is refused (lists of hosts), as are userinfo and any other delimiter. */
int h1_host_valid(const char *h, size_t n);

int h1_parse_response(const char *buf, size_t len, const struct h1_limits *lim,
                      int request_method_head, int request_was_connect,
                      struct h1_response *resp, const char **err_reason);

/* Parses a trailer section (the field lines after the last chunk, then the empty line).
 * <headers>/<num> receive the fields; <max> bounds them. Returns the length consumed
 * including the final CRLF, H1_INCOMPLETE, or H1_ERROR. */
int h1_parse_trailers(const char *buf, size_t len, size_t max_bytes,
                      struct h1_header *headers, size_t max, size_t *num,
                      const char **err_reason);

/* Incremental chunked-coding decoder (RFC 9112 §7.1). Feed any bytes; it returns body data
 * as pointers into the input, so the caller can move or copy exactly those bytes. */
struct h1_chunked {
    int state;
    uint64_t remaining;     /* bytes left in the current chunk */
    unsigned size_digits;   /* digits seen in the current chunk-size line */
    unsigned ext_len;       /* bytes of chunk extension seen (bounded) */
};

enum h1_chunk_event {
    H1_CHUNK_NEED_MORE,     /* all input consumed; nothing to report */
    H1_CHUNK_DATA,          /* *data, *data_len: body bytes inside the input */
    H1_CHUNK_LAST,          /* the last-chunk line ("0\r\n") was consumed; the trailer
                               section (possibly just "\r\n") follows: parse it with
                               h1_parse_trailers */
    H1_CHUNK_ERROR,         /* malformed: *err_reason says why */
};

void h1_chunked_init(struct h1_chunked *c);

/* Decodes from <in,len>. *consumed is set to the bytes used (always <= len); call again with
 * the rest. For H1_CHUNK_DATA, *data points into <in> and *data_len <= *consumed. */
enum h1_chunk_event h1_chunked_decode(struct h1_chunked *c, const char *in, size_t len,
                                      size_t *consumed, const char **data, size_t *data_len,
                                      const char **err_reason);

/* Helpers shared by the sessions. */

/* Case-insensitive comparison of a header name with a NUL-terminated lowercase literal. */
int h1_name_eq(const char *name, size_t name_len, const char *lower);

/* True when <value> contains <token> as a comma-separated list element (case-insensitive). */
int h1_list_has_token(const char *value, size_t value_len, const char *token);

/* True for hop-by-hop header names a proxy must not forward (RFC 9110 §7.6.1): Connection,
 * Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade, Trailer is NOT hop-by-hop. */
int h1_is_hop_by_hop(const char *name, size_t name_len);

/* Steps through a comma-separated list (RFC 9110 §5.6.1): sets <el,el_len> to the next
 * element with OWS trimmed (possibly empty) and returns 1, or returns 0 at the end.
 * <*pos> starts at 0. Quoted strings are not special: our lists hold tokens and digits. */
int h1_list_next(const char *v, size_t n, size_t *pos, const char **el, size_t *el_len);

/* True when the sender closes the connection after message <m> (RFC 9112 §9.3): it said
 * "Connection: close", or it is HTTP/1.0 without "Connection: keep-alive". */
static inline int h1_message_closes(const struct h1_message *m)
{
    return m->conn_close || (m->version_minor == 0 && !m->conn_keep_alive);
}

/* True for a method that RFC 9110 §9.2.2 calls idempotent. */
int h1_method_is_idempotent(const char *method, size_t len);

#endif

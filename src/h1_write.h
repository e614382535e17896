/* h1_write — HTTP/1.1 serialisation shared by the downstream session and the upstream
 * client: fields, trailer sections, and which fields a proxy must not pass on. Each writer
 * appends what it writes to the evbuffer in one piece (one reservation, one commit), so the
 * buffer's callbacks run once per call. */
#ifndef FERRY_H1_WRITE_H
#define FERRY_H1_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "http_msg.h"

struct evbuffer;

/* Integer formatting without printf. Each writes the digits of <v> at <dst> (no sign, no
 * leading zeros, "0" for 0, no NUL) and returns how many it wrote: at most FMT_U64_MAX
 * decimal digits, FMT_X64_MAX lowercase hex digits (what "%llu" / "%llx" print). */
#define FMT_U64_MAX 20
#define FMT_X64_MAX 16
size_t fmt_u64(char *dst, uint64_t v);
size_t fmt_x64(char *dst, uint64_t v);

/* Moves all of <data> (not empty) to the end of <out>: as one chunk of the chunked coding
 * when <chunked>, as it is otherwise. */
void h1_write_body(struct evbuffer *out, struct evbuffer *data, int chunked);

/* Appends "Name: value\r\n". */
void h1_write_field(struct evbuffer *out, const struct http_field *f);

/* Appends the last chunk, <trailers> (may be NULL) and the final CRLF. */
void h1_write_last_chunk(struct evbuffer *out, const struct http_head *trailers);

/* True when <f> is hop-by-hop for <h>: a fixed hop-by-hop name (RFC 9110 §7.6.1) or one
 * that a Connection field of <h> lists. Scans <h> for Connection fields on every call: to
 * classify many fields of one head, use struct h1_hop below. */
int h1_field_is_hop(const struct http_head *h, const struct http_field *f);

/* The Connection fields of one head, read once, for the fields of that head forwarded into
 * another framing: h1_hop_init(&hop, h), then h1_hop_forward(&hop, ...) for each field. <h>
 * must not change in between. Tokens naming a fixed hop-by-hop field are not kept (those
 * fields are hop-by-hop anyway); when more than H1_HOP_TOKENS others are listed, the head is
 * scanned instead. */
#define H1_HOP_TOKENS 16
struct h1_hop {
    const struct http_head *head;
    uint32_t ntok;
    int overflow;
    struct {
        const char *p;
        uint32_t len;
    } tok[H1_HOP_TOKENS];
};
void h1_hop_init(struct h1_hop *hop, const struct http_head *h);

/* A field of <hop>'s head, by its name, forwarded where the framing is not HTTP/1.1's (an
 * HTTP/2 response head): Content-Length, which the caller writes from the framing whatever
 * Connection lists; dropped where h1_field_is_hop would say hop-by-hop; or kept. One pass
 * over the name. */
enum h1_fwd { H1_FWD_KEEP, H1_FWD_DROP, H1_FWD_LENGTH };
enum h1_fwd h1_hop_forward(const struct h1_hop *hop, const char *name, size_t name_len);

/* True when a request field is not forwarded as it came, whatever the upstream protocol:
 * hop-by-hop, or one ferry writes itself (Host, Content-Length, Expect, X-Forwarded-For,
 * X-Forwarded-Proto). */
int h1_request_field_rewritten(const struct http_head *req, const struct http_field *f);

/* Appends the head of <req> as an HTTP/1.1 request for a backend: the request line
 * (method, origin-form path, HTTP/1.1), Host first (the authority, or <default_host> when
 * the request has none), every field except hop-by-hop ones (h1_field_is_hop), Host,
 * Content-Length, Expect and X-Forwarded-For/-Proto, then X-Forwarded-For (the client's
 * values joined, then <client_ip>), X-Forwarded-Proto, the framing field and the empty line.
 * Framing: <has_body> with <content_length> >= 0 gives Content-Length; <has_body> with -1
 * gives chunked (*chunked = 1, else 0); no body gives Content-Length: 0 for POST and PUT
 * and nothing otherwise. The whole head is added with one reservation of contiguous space,
 * whatever its size; if that cannot be had (ENOMEM) nothing is added. Pure: no I/O. <req>
 * must already hold only field bytes an HTTP/1 parser accepts (the sessions reject CR, LF
 * and NUL before this point); <client_ip>, <default_host> and req->scheme (when set) are
 * NUL-terminated strings. */
void h1_write_request_head(struct evbuffer *out, const struct http_head *req, int has_body,
                           int64_t content_length, const char *client_ip,
                           const char *default_host, int *chunked);

/* Appends an HTTP/1.1 response head for a client: "HTTP/1.1 <status> <reason>", every field
 * of <h> except hop-by-hop ones and (unless <keep_length>) Content-Length, then <extra>
 * (complete "Name: value\r\n" lines the caller chose: framing, Connection) and the empty
 * line, in one piece. A status outside 100..999 is written as 502. */
void h1_write_response_head(struct evbuffer *out, const struct http_head *h, const char *reason,
                            size_t reason_len, int keep_length, const char *extra,
                            size_t extra_len);

#endif

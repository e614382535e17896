/* h1_write — HTTP/1.1 serialisation shared by the downstream session and the upstream
 * client: fields, trailer sections, and which fields a proxy must not pass on. */
#ifndef FERRY_H1_WRITE_H
#define FERRY_H1_WRITE_H

#include "http_msg.h"

struct evbuffer;

/* Appends "Name: value\r\n". */
void h1_write_field(struct evbuffer *out, const struct http_field *f);

/* Appends the last chunk, <trailers> (may be NULL) and the final CRLF. */
void h1_write_last_chunk(struct evbuffer *out, const struct http_head *trailers);

/* True when <f> is hop-by-hop for <h>: a fixed hop-by-hop name (RFC 9110 §7.6.1) or one
 * that a Connection field of <h> lists. */
int h1_field_is_hop(const struct http_head *h, const struct http_field *f);

/* True when a request field is not forwarded as it came, whatever the upstream protocol:
 * hop-by-hop, or one ferry writes itself (Host, Content-Length, Expect, X-Forwarded-*). */
int h1_request_field_rewritten(const struct http_head *req, const struct http_field *f);

/* Appends the head of <req> as an HTTP/1.1 request for a backend: the request line
 * (method, origin-form path, HTTP/1.1), Host first (the authority, or <default_host> when
 * the request has none), every field except hop-by-hop ones (h1_field_is_hop), Host,
 * Content-Length, Expect and X-Forwarded-*, then X-Forwarded-For (the client's values
 * joined, then <client_ip>), X-Forwarded-Proto, the framing field and the empty line.
 * Framing: <has_body> with <content_length> >= 0 gives Content-Length; <has_body> with -1
 * gives chunked (*chunked = 1, else 0); no body gives Content-Length: 0 for POST and PUT
 * and nothing otherwise. Pure: no I/O. <req> must already hold only field bytes an HTTP/1
 * parser accepts (the sessions reject CR, LF and NUL before this point). */
void h1_write_request_head(struct evbuffer *out, const struct http_head *req, int has_body,
                           int64_t content_length, const char *client_ip,
                           const char *default_host, int *chunked);

#endif

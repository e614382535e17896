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

#endif

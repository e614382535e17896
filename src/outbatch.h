/* outbatch — gathers small writes (nghttp2's serialized frames) on the stack and appends them
 * to an evbuffer together: each evbuffer_add runs the buffer's callbacks (a bufferevent's
 * write scheduling), and one pass over an h2 session serializes frames for many streams. */
#ifndef FERRY_OUTBATCH_H
#define FERRY_OUTBATCH_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

struct outbatch {
    struct evbuffer *out;
    size_t used;
    uint8_t buf[16384];
};

static inline void outbatch_init(struct outbatch *b, struct evbuffer *out)
{
    b->out = out;
    b->used = 0;
}

/* What the output will hold once flushed, beyond what it holds now. */
static inline size_t outbatch_pending(const struct outbatch *b) { return b->used; }

void outbatch_add(struct outbatch *b, const uint8_t *data, size_t n);
void outbatch_flush(struct outbatch *b);

#endif

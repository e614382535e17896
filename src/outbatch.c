#include "outbatch.h"

#include <event2/buffer.h>
#include <string.h>

void outbatch_flush(struct outbatch *b)
{
    if (b->used)
        evbuffer_add(b->out, b->buf, b->used);
    b->used = 0;
}

void outbatch_add(struct outbatch *b, const uint8_t *data, size_t n)
{
    if (b->used + n > sizeof b->buf)
        outbatch_flush(b);
    if (n > sizeof b->buf) {
        evbuffer_add(b->out, data, n);   /* a large DATA frame: no point copying it twice */
        return;
    }
    memcpy(b->buf + b->used, data, n);
    b->used += n;
}

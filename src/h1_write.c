#include "h1_write.h"

#include <event2/buffer.h>
#include <strings.h>

#include "h1_parse.h"

void h1_write_field(struct evbuffer *out, const struct http_field *f)
{
    evbuffer_add(out, f->name, f->name_len);
    evbuffer_add(out, ": ", 2);
    evbuffer_add(out, f->value, f->value_len);
    evbuffer_add(out, "\r\n", 2);
}

void h1_write_last_chunk(struct evbuffer *out, const struct http_head *trailers)
{
    evbuffer_add(out, "0\r\n", 3);
    for (uint32_t i = 0; trailers && i < trailers->nfields; i++)
        h1_write_field(out, &trailers->fields[i]);
    evbuffer_add(out, "\r\n", 2);
}

/* True when the comma-separated <list> holds <name> as an element (case-insensitive). */
static int list_has(const char *list, size_t len, const char *name, size_t nlen)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (list[i] == ',' || list[i] == ' ' || list[i] == '\t'))
            i++;
        size_t start = i;
        while (i < len && list[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t'))
            end--;
        if (end - start == nlen && strncasecmp(list + start, name, nlen) == 0)
            return 1;
    }
    return 0;
}

int h1_field_is_hop(const struct http_head *h, const struct http_field *f)
{
    if (h1_is_hop_by_hop(f->name, f->name_len))
        return 1;
    for (uint32_t i = 0; i < h->nfields; i++) {
        const struct http_field *c = &h->fields[i];
        if (h1_name_eq(c->name, c->name_len, "connection") &&
            list_has(c->value, c->value_len, f->name, f->name_len))
            return 1;
    }
    return 0;
}

#include "http_msg.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "blockcache.h"

struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    char data[];
};

void http_head_init(struct http_head *h)
{
    memset(h, 0, sizeof *h);
    h->version_minor = 1;
}

void http_head_free(struct http_head *h)
{
    struct arena_block *b = h->arena;
    while (b) {
        struct arena_block *next = b->next;
        bc_free(b);
        b = next;
    }
    bc_free(h->fields);
    http_head_init(h);
}

char *http_head_copy(struct http_head *h, const char *s, size_t len)
{
    struct arena_block *b = h->arena;
    if (!b || b->cap - b->used < len + 1) {
        /* The first block of a head fits glibc's per-thread cache (chunks up to 1 KiB), where
         * a typical head's strings do; later ones are larger. */
        size_t first = 1000 - sizeof *b, cap = h->arena ? 4096 : first;
        if (cap < len + 1)
            cap = len + 1;
        b = bc_malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = h->arena;
        h->arena = b;
    }
    char *p = b->data + b->used;
    memcpy(p, s, len);
    p[len] = '\0';
    b->used += len + 1;
    return p;
}

int http_head_add(struct http_head *h, const char *name, size_t nlen, const char *value,
                  size_t vlen, int copy)
{
    if (h->nfields == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 16;
        struct http_field *f = bc_realloc(h->fields, cap * sizeof *f);
        if (!f)
            return -1;
        h->fields = f;
        h->cap = cap;
    }
    if (copy) {
        name = http_head_copy(h, name, nlen);
        value = http_head_copy(h, value, vlen);
        if (!name || !value)
            return -1;
    }
    struct http_field *f = &h->fields[h->nfields++];
    f->name = name;
    f->name_len = (uint32_t)nlen;
    f->value = value;
    f->value_len = (uint32_t)vlen;
    return 0;
}

const struct http_field *http_head_get(const struct http_head *h, const char *lower)
{
    size_t n = strlen(lower);
    for (uint32_t i = 0; i < h->nfields; i++)
        if (h->fields[i].name_len == n && strncasecmp(h->fields[i].name, lower, n) == 0)
            return &h->fields[i];
    return NULL;
}

const char *http_reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

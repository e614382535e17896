#include "blockcache.h"

#include <event2/event.h>
#include <malloc.h>
#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* glibc chunks: the request plus an 8-byte header, rounded up to 16, at least 32 bytes;
 * malloc_usable_size is the chunk less 8. Sizes are cached in two kinds of lists: one per
 * chunk size up to glibc's own cache limit, and a few slots that adopt whatever larger size
 * is freed (OpenSSL's record buffers are a handful of fixed sizes). */
#define MIN_CHUNK 32
#define SMALL_CLASSES 64                                  /* chunks of 32 .. 1,040 bytes */
#define SMALL_MAX_CHUNK (MIN_CHUNK + 16 * (SMALL_CLASSES - 1))
#define LARGE_SLOTS 4
#define LARGE_MAX_CHUNK ((size_t)64 * 1024)
#define SMALL_MAX_BLOCKS 1024   /* per size: 100 streams on each of a few connections */
#define LARGE_MAX_BLOCKS 16
#define THREAD_MAX_BYTES ((size_t)2 << 20)

struct freelist {
    void *head;       /* each cached block's first word links the next */
    unsigned n;
    size_t chunk;     /* large slots: the chunk size held (0: free slot) */
};

static __thread struct freelist small[SMALL_CLASSES];
static __thread struct freelist large[LARGE_SLOTS];
static __thread size_t cached_bytes;
static int enabled;   /* set once by bc_install, before any thread starts */

static size_t request_chunk(size_t n)
{
    if (n > LARGE_MAX_CHUNK)
        return 0;
    size_t c = (n + 8 + 15) & ~(size_t)15;
    return c < MIN_CHUNK ? MIN_CHUNK : c;
}

/* 0 when the block is not an ordinary heap chunk of a size we keep (mmapped chunks have a
 * usable size that is not 8 mod 16). */
static size_t block_chunk(void *p)
{
    size_t c = malloc_usable_size(p) + 8;
    return (c & 15) || c < MIN_CHUNK || c > LARGE_MAX_CHUNK ? 0 : c;
}

static struct freelist *list_for(size_t chunk, int adopt)
{
    if (chunk <= SMALL_MAX_CHUNK)
        return &small[(chunk - MIN_CHUNK) / 16];
    struct freelist *empty = NULL;
    for (int i = 0; i < LARGE_SLOTS; i++) {
        if (large[i].chunk == chunk)
            return &large[i];
        if (!large[i].n && !empty)
            empty = &large[i];
    }
    if (!adopt || !empty)
        return NULL;
    empty->chunk = chunk;
    return empty;
}

void *bc_malloc(size_t n)
{
    if (!n)
        n = 1;   /* a unique pointer, as glibc's malloc(0) */
    size_t c = enabled ? request_chunk(n) : 0;
    struct freelist *fl = c ? list_for(c, 0) : NULL;
    if (!fl || !fl->n)
        return malloc(n);
    void *p = fl->head;
    memcpy(&fl->head, p, sizeof(void *));
    fl->n--;
    cached_bytes -= c;
    return p;
}

void *bc_calloc(size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size)
        return NULL;
    size_t n = nmemb * size;
    if (!n)
        n = 1;
    if (!enabled || n > LARGE_MAX_CHUNK)
        return calloc(1, n);
    void *p = bc_malloc(n);
    if (p)
        memset(p, 0, n);
    return p;
}

void *bc_realloc(void *p, size_t n) { return p ? realloc(p, n) : bc_malloc(n); }

void bc_free(void *p)
{
    if (!p)
        return;
    size_t c = enabled ? block_chunk(p) : 0;
    struct freelist *fl = c ? list_for(c, 1) : NULL;
    if (!fl || fl->n >= (c <= SMALL_MAX_CHUNK ? SMALL_MAX_BLOCKS : LARGE_MAX_BLOCKS) ||
        cached_bytes + c > THREAD_MAX_BYTES) {
        free(p);
        return;
    }
    memcpy(p, &fl->head, sizeof(void *));
    fl->head = p;
    fl->n++;
    cached_bytes += c;
}

void bc_thread_flush(void)
{
    for (int k = 0; k < 2; k++) {
        struct freelist *lists = k ? large : small;
        int count = k ? LARGE_SLOTS : SMALL_CLASSES;
        for (int i = 0; i < count; i++) {
            while (lists[i].n) {
                void *p = lists[i].head;
                memcpy(&lists[i].head, p, sizeof(void *));
                lists[i].n--;
                free(p);
            }
            lists[i].head = NULL;
            if (k)
                lists[i].chunk = 0;
        }
    }
    cached_bytes = 0;
}

int bc_active(void) { return enabled; }

size_t bc_thread_cached_bytes(void) { return cached_bytes; }

/* ---- the libraries' hooks ---- */

static void *ssl_malloc(size_t n, const char *file, int line)
{
    (void)file, (void)line;
    return n ? bc_malloc(n) : NULL;   /* CRYPTO_malloc(0) is NULL */
}

static void *ssl_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file, (void)line;
    if (!p)
        return ssl_malloc(n, file, line);
    if (!n) {
        bc_free(p);
        return NULL;
    }
    return bc_realloc(p, n);
}

static void ssl_free(void *p, const char *file, int line)
{
    (void)file, (void)line;
    bc_free(p);
}

static void *ng_malloc(size_t n, void *ud) { (void)ud; return bc_malloc(n); }
static void ng_free(void *p, void *ud) { (void)ud; bc_free(p); }
static void *ng_calloc(size_t nmemb, size_t size, void *ud) { (void)ud; return bc_calloc(nmemb, size); }
static void *ng_realloc(void *p, size_t n, void *ud) { (void)ud; return bc_realloc(p, n); }

static nghttp2_mem ng_mem = { NULL, ng_malloc, ng_free, ng_calloc, ng_realloc };

nghttp2_mem *bc_nghttp2_mem(void) { return &ng_mem; }

/* Tools that replace malloc to watch it (memcheck, helgrind, drd, massif, dhat) preload a
 * library of their own; callgrind and cachegrind preload only the core one. */
static int under_valgrind_malloc(void)
{
    static const char tag[] = "vgpreload_";
    const char *preload = getenv("LD_PRELOAD");
    for (const char *q = preload ? strstr(preload, tag) : NULL; q; q = strstr(q + 1, tag))
        if (strncmp(q + sizeof tag - 1, "core", 4) != 0)
            return 1;
    return 0;
}

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

void bc_install(void)
{
    if (SANITIZED || under_valgrind_malloc())
        return;
    enabled = 1;
    event_set_mem_functions(bc_malloc, bc_realloc, bc_free);
    /* Refused once OpenSSL has allocated: it then keeps its own, which is only slower. */
    CRYPTO_set_mem_functions(ssl_malloc, ssl_realloc, ssl_free);
}

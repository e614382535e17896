#include "evmem.h"

#include <event2/event.h>
#include <malloc.h>
#include <stdlib.h>

#define EVMEM_BLOCK 1024   /* libevent's MIN_BUFFER_SIZE: what a small chain asks for */
#define EVMEM_CACHE 64

static __thread void *cache[EVMEM_CACHE];
static __thread unsigned ncached;
static size_t block_usable;   /* malloc_usable_size of a malloc(EVMEM_BLOCK) block */

static void *ev_malloc(size_t n)
{
    if (n == EVMEM_BLOCK && ncached)
        return cache[--ncached];
    return malloc(n);
}

static void *ev_realloc(void *p, size_t n) { return realloc(p, n); }

static void ev_free(void *p)
{
    /* Any block of the same usable size serves as well, whoever allocated it. */
    if (p && ncached < EVMEM_CACHE && malloc_usable_size(p) == block_usable) {
        cache[ncached++] = p;
        return;
    }
    free(p);
}

void evmem_install(void)
{
    void *p = malloc(EVMEM_BLOCK);
    if (!p)
        return;   /* libevent keeps plain malloc */
    block_usable = malloc_usable_size(p);
    free(p);
    event_set_mem_functions(ev_malloc, ev_realloc, ev_free);
}

void evmem_thread_flush(void)
{
    while (ncached)
        free(cache[--ncached]);
}

/* blockcache — a per-thread cache of freed malloc blocks, for the objects every request
 * allocates and frees: ferry's streams, exchanges and heads, and what libevent, nghttp2 and
 * OpenSSL allocate for them.
 *
 * glibc's own per-thread cache keeps 7 chunks per size and nothing above 1 KiB; an h2
 * connection with 100 streams in flight allocates a hundred of each of its objects before
 * it frees any, and OpenSSL frees and allocates its ~17 KiB record buffers whenever a busy
 * connection's buffer empties (SSL_MODE_RELEASE_BUFFERS). Everything past glibc's cache
 * took malloc's slow path and back: ~4,000 instructions per h2 request. This cache keeps
 * freed blocks by their real chunk size (malloc_usable_size), up to a bound per size and
 * per thread, and hands them out again to requests that round to the same chunk. Blocks
 * stay ordinary malloc blocks: free() releases any of them, from any thread.
 *
 * Built with AddressSanitizer, or run under valgrind's memcheck, it passes everything
 * through, so that those tools see every allocation and every use after free. */
#ifndef FERRY_BLOCKCACHE_H
#define FERRY_BLOCKCACHE_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>

void *bc_malloc(size_t n);
void *bc_calloc(size_t nmemb, size_t size);
void *bc_realloc(void *p, size_t n);
void bc_free(void *p);

/* Routes libevent's and OpenSSL's allocations through the cache. First thing in main:
 * before either allocates anything. */
void bc_install(void);

/* nghttp2's allocator, for nghttp2_session_*_new3. */
nghttp2_mem *bc_nghttp2_mem(void);

/* Frees the calling thread's cached blocks: when a thread ends. */
void bc_thread_flush(void);

/* 1 when bc_install enabled the cache (not under ASan or memcheck); what the calling thread
 * holds, in chunk bytes (at most 2 MiB). */
int bc_active(void);
size_t bc_thread_cached_bytes(void);

#endif

/* evmem — libevent's allocator, with a per-thread cache of its 1 KiB buffer chunks.
 *
 * An evbuffer allocates each new chain as at least 1024 bytes plus nothing: just above what
 * glibc keeps in its per-thread cache (chunks up to 1032 bytes with header), so every chain
 * of a small message — a request read, a response head written — went through malloc's
 * slow path and back (~450 instructions per pair, four pairs per proxied request). The
 * cache keeps up to EVMEM_CACHE such blocks per thread. */
#ifndef FERRY_EVMEM_H
#define FERRY_EVMEM_H

/* Before any other libevent call. */
void evmem_install(void);

/* Frees the calling thread's cached blocks: when a thread that used libevent ends. */
void evmem_thread_flush(void);

#endif

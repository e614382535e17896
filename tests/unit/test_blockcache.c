/* blockcache: freed blocks come back to requests of the same chunk size and only to those,
 * always large enough and (calloc) zeroed; what a thread keeps stays within its bounds and
 * goes back to malloc when the thread flushes. Under ASan or memcheck the cache is off by
 * design and only the pass-through is checked. */
#include <check.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blockcache.h"

static void setup(void) { bc_install(); }
static void teardown(void) { bc_thread_flush(); }

START_TEST(test_reuse_same_chunk)
{
    if (!bc_active())
        return;
    void *p = bc_malloc(100);   /* a 112-byte chunk */
    ck_assert_ptr_nonnull(p);
    bc_free(p);
    ck_assert_uint_eq(bc_thread_cached_bytes(), 112);
    void *q = bc_malloc(90);    /* rounds to the same chunk */
    ck_assert_ptr_eq(q, p);
    ck_assert_uint_eq(bc_thread_cached_bytes(), 0);
    bc_free(q);
    void *r = bc_malloc(200);   /* another size: not that block */
    ck_assert_ptr_ne(r, p);
    bc_free(r);
}
END_TEST

START_TEST(test_always_large_enough)
{
    /* Every size from 1 byte to past the largest cached chunk, allocated, filled, freed in
     * an order unlike the allocation's, then allocated again. */
    enum { N = 600 };
    static void *blocks[N];
    static size_t sizes[N];
    unsigned seed = 7;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            seed = seed * 1103515245u + 12345u;
            sizes[i] = i < 300 ? (size_t)i + 1 : 1 + (seed >> 8) % 70000;
            blocks[i] = bc_malloc(sizes[i]);
            ck_assert_ptr_nonnull(blocks[i]);
            ck_assert_uint_ge(malloc_usable_size(blocks[i]), sizes[i]);
            memset(blocks[i], 0x5a, sizes[i]);
        }
        for (int i = 0; i < N; i++)
            bc_free(blocks[(i * 7) % N]);   /* 7 and 600 are coprime: each once */
        ck_assert_uint_le(bc_thread_cached_bytes(), (size_t)2 << 20);
    }
}
END_TEST

START_TEST(test_calloc_zeroes_recycled)
{
    unsigned char *p = bc_malloc(64);
    ck_assert_ptr_nonnull(p);
    memset(p, 0xab, 64);
    bc_free(p);
    unsigned char *q = bc_calloc(8, 8);
    ck_assert_ptr_nonnull(q);
    if (bc_active())
        ck_assert_ptr_eq(q, p);
    for (int i = 0; i < 64; i++)
        ck_assert_uint_eq(q[i], 0);
    bc_free(q);
    ck_assert_ptr_null(bc_calloc(SIZE_MAX / 2, 4));   /* overflow */
}
END_TEST

START_TEST(test_bounds)
{
    if (!bc_active())
        return;
    /* One size: at most 1,024 blocks of it are kept. */
    enum { N = 1500 };
    static void *b[N];
    for (int i = 0; i < N; i++)
        b[i] = bc_malloc(40);   /* 48-byte chunks */
    for (int i = 0; i < N; i++)
        bc_free(b[i]);
    /* (malloc may hand out a slightly larger chunk now and then: it is kept in its class) */
    ck_assert_uint_ge(bc_thread_cached_bytes(), 1024 * 48);
    ck_assert_uint_lt(bc_thread_cached_bytes(), 1024 * 48 + 1024);
    bc_thread_flush();
    ck_assert_uint_eq(bc_thread_cached_bytes(), 0);
    /* Large blocks: a few sizes, 16 of each; beyond 64 KiB none. */
    for (int i = 0; i < 20; i++)
        b[i] = bc_malloc(17000);
    for (int i = 0; i < 20; i++)
        bc_free(b[i]);
    size_t chunk = (17000 + 8 + 15) & ~(size_t)15;
    ck_assert_uint_eq(bc_thread_cached_bytes(), 16 * chunk);
    void *big = bc_malloc(100000);
    bc_free(big);
    ck_assert_uint_eq(bc_thread_cached_bytes(), 16 * chunk);
    /* The whole thread: never above 2 MiB, however many sizes. */
    for (int i = 0; i < N; i++)
        b[i] = bc_malloc(1000 + (size_t)(i % 2) * 16);
    for (int i = 0; i < N; i++)
        bc_free(b[i]);
    ck_assert_uint_le(bc_thread_cached_bytes(), (size_t)2 << 20);
    ck_assert_uint_gt(bc_thread_cached_bytes(), (size_t)1 << 20);
}
END_TEST

static void *free_on_other_thread(void *p)
{
    bc_free(p);
    size_t held = bc_thread_cached_bytes();
    bc_thread_flush();
    return (void *)held;
}

START_TEST(test_threads_keep_their_own)
{
    void *p = bc_malloc(300);
    pthread_t t;
    void *held;
    ck_assert_int_eq(pthread_create(&t, NULL, free_on_other_thread, p), 0);
    ck_assert_int_eq(pthread_join(t, &held), 0);
    ck_assert_uint_eq((size_t)held, bc_active() ? 320 : 0);   /* the other thread's cache */
    ck_assert_uint_eq(bc_thread_cached_bytes(), 0);           /* not this one's */
}
END_TEST

START_TEST(test_realloc)
{
    char *p = bc_realloc(NULL, 50);   /* like malloc */
    ck_assert_ptr_nonnull(p);
    memcpy(p, "0123456789", 10);
    p = bc_realloc(p, 5000);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(memcmp(p, "0123456789", 10), 0);
    bc_free(p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("blockcache");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_reuse_same_chunk);
    tcase_add_test(tc, test_always_large_enough);
    tcase_add_test(tc, test_calloc_zeroes_recycled);
    tcase_add_test(tc, test_bounds);
    tcase_add_test(tc, test_threads_keep_their_own);
    tcase_add_test(tc, test_realloc);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

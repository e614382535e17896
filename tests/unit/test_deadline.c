/* deadline: the lazy timer fires once per deadline that passes, never before it, however
 * often the deadline moved; a cleared deadline (or deadline_after 0) lets its armed timer
 * fire for nothing. Runs a real event base: each case ends when no event is left (no
 * sleeps). */
#include <check.h>
#include <event2/event.h>
#include <stdlib.h>
#include <time.h>

#include "deadline.h"
#include "log.h"

struct probe {
    struct deadline d;
    int calls;        /* timer callbacks */
    int fired;        /* of them, deadlines passed */
    uint64_t fired_at;
};

static void cb(evutil_socket_t fd, short what, void *arg)
{
    struct probe *p = arg;
    (void)fd;
    (void)what;
    p->calls++;
    if (deadline_fired(&p->d)) {
        p->fired++;
        p->fired_at = now_ms();
    }
}

static struct event_base *setup(struct probe *p)
{
    struct event_base *base = event_base_new();
    ck_assert_ptr_nonnull(base);
    *p = (struct probe){ 0 };
    p->d.ev = evtimer_new(base, cb, p);
    ck_assert_ptr_nonnull(p->d.ev);
    return base;
}

START_TEST(test_moved_later)
{
    struct probe p;
    struct event_base *base = setup(&p);
    uint64_t t0 = now_ms();
    deadline_set(&p.d, t0, 20);
    deadline_set(&p.d, now_ms(), 80);   /* later: the timer stays armed for 20 ms */
    ck_assert_uint_eq(p.d.armed_ms, t0 + 20);
    event_base_dispatch(base);          /* returns when no event is pending */
    ck_assert_int_eq(p.fired, 1);
    ck_assert_int_eq(p.calls, 2);       /* early at ~20 ms, re-armed, then due */
    ck_assert_uint_ge(p.fired_at - t0, 80);
    ck_assert_uint_eq(p.d.due_ms, 0);
    ck_assert_uint_eq(p.d.armed_ms, 0);
    event_free(p.d.ev);
    event_base_free(base);
}
END_TEST

START_TEST(test_moved_earlier)
{
    struct probe p;
    struct event_base *base = setup(&p);
    uint64_t t0 = now_ms();
    deadline_set(&p.d, t0, 5000);
    deadline_set(&p.d, now_ms(), 10);   /* earlier: armed again for it */
    event_base_dispatch(base);
    ck_assert_int_eq(p.fired, 1);
    ck_assert_int_eq(p.calls, 1);
    ck_assert_uint_lt(p.fired_at - t0, 5000);
    event_free(p.d.ev);
    event_base_free(base);
}
END_TEST

START_TEST(test_cleared_and_stopped)
{
    struct probe p;
    struct event_base *base = setup(&p);
    deadline_set(&p.d, now_ms(), 10);
    deadline_clear(&p.d);
    event_base_dispatch(base);          /* the armed timer runs, finds nothing */
    ck_assert_int_eq(p.calls, 1);
    ck_assert_int_eq(p.fired, 0);

    deadline_set(&p.d, now_ms(), 10);
    deadline_stop(&p.d);
    ck_assert_int_eq(event_base_dispatch(base), 1);   /* 1: no event was left */
    ck_assert_int_eq(p.calls, 1);
    event_free(p.d.ev);
    event_base_free(base);
}
END_TEST

START_TEST(test_after)
{
    /* deadline_after: a timeout of 0 is off (the armed timer fires for nothing); otherwise
     * a deadline from now. */
    struct probe p;
    struct event_base *base = setup(&p);
    uint64_t t0 = now_ms();
    deadline_after(&p.d, 10);
    ck_assert_uint_ge(p.d.due_ms, t0 + 10);
    deadline_after(&p.d, 0);
    ck_assert_uint_eq(p.d.due_ms, 0);
    event_base_dispatch(base);
    ck_assert_int_eq(p.calls, 1);
    ck_assert_int_eq(p.fired, 0);
    deadline_after(&p.d, 15);
    event_base_dispatch(base);
    ck_assert_int_eq(p.fired, 1);
    ck_assert_uint_ge(p.fired_at - t0, 15);
    event_free(p.d.ev);
    event_base_free(base);
}
END_TEST

/* The clock as read directly, to wait a few ms by watching it move (a busy wait on a clock
 * that always moves, not a sleep standing in for a condition). */
static uint64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void until_clock_moved(uint64_t ms)
{
    uint64_t t0 = clock_ms();
    while (clock_ms() - t0 < ms)
        ;
}

START_TEST(test_turn_clock)
{
    /* A thread that marks its turns reads the clock once per turn; one that stops marking
     * reads it every time. */
    now_ms_new_turn();
    uint64_t a = now_ms();
    until_clock_moved(3);
    ck_assert_uint_eq(now_ms(), a);
    now_ms_new_turn();
    ck_assert_uint_ge(now_ms(), a + 3);
    now_ms_no_turns();
    uint64_t b = now_ms();
    until_clock_moved(3);
    ck_assert_uint_ge(now_ms(), b + 3);
}
END_TEST

START_TEST(test_turn_clock_moves_in_long_turns)
{
    /* A turn that never ends (libevent running pass after pass under load) still sees the
     * clock move as work asks for the time. */
    now_ms_new_turn();
    uint64_t a = now_ms();
    until_clock_moved(3);
    uint64_t last = a;
    for (int i = 0; i < 1000; i++)
        last = now_ms();
    ck_assert_uint_ge(last, a + 3);
    now_ms_no_turns();
}
END_TEST

START_TEST(test_fired_checks_a_fresh_clock)
{
    /* A timer libevent fires by its own clock must not be judged early by a turn's stale
     * reading (it would be armed again for its whole remaining time). */
    struct probe p;
    struct event_base *base = setup(&p);
    now_ms_new_turn();
    uint64_t t0 = now_ms();
    deadline_set(&p.d, t0, 5);
    until_clock_moved(10);
    ck_assert_uint_eq(now_ms(), t0);     /* the turn's reading */
    ck_assert_int_eq(deadline_fired(&p.d), 1);
    now_ms_no_turns();
    event_free(p.d.ev);
    event_base_free(base);
}
END_TEST

START_TEST(test_fires_with_turns)
{
    /* The worker's loop: a turn at a time, the clock read once per turn. A deadline moved
     * later still fires once, not before it is due. */
    struct probe p;
    struct event_base *base = setup(&p);
    now_ms_new_turn();
    uint64_t t0 = now_ms();
    deadline_set(&p.d, t0, 20);
    deadline_set(&p.d, now_ms(), 60);
    int turns = 0;
    do {
        now_ms_new_turn();
        turns++;
    } while (event_base_loop(base, EVLOOP_ONCE) == 0 && turns < 1000);
    now_ms_no_turns();
    ck_assert_int_eq(p.fired, 1);
    ck_assert_uint_ge(p.fired_at - t0, 60);
    ck_assert_uint_ge(clock_ms() - t0, 60);
    event_free(p.d.ev);
    event_base_free(base);
}
END_TEST

START_TEST(test_ms_timeval)
{
    struct timeval tv = ms_timeval(12345);
    ck_assert_int_eq(tv.tv_sec, 12);
    ck_assert_int_eq(tv.tv_usec, 345000);
    tv = ms_timeval(0);
    ck_assert_int_eq(tv.tv_sec, 0);
    ck_assert_int_eq(tv.tv_usec, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("deadline");
    TCase *tc = tcase_create("deadline");
    tcase_add_test(tc, test_moved_later);
    tcase_add_test(tc, test_moved_earlier);
    tcase_add_test(tc, test_cleared_and_stopped);
    tcase_add_test(tc, test_after);
    tcase_add_test(tc, test_turn_clock);
    tcase_add_test(tc, test_turn_clock_moves_in_long_turns);
    tcase_add_test(tc, test_fired_checks_a_fresh_clock);
    tcase_add_test(tc, test_fires_with_turns);
    tcase_add_test(tc, test_ms_timeval);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

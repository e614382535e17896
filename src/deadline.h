/* deadline — millisecond timeouts for libevent, and a timer that follows a deadline which
 * moves on every request.
 *
 * A client's keep-alive deadline moves with every request, a pooled connection's idle
 * deadline with every response; re-adding a libevent timer each time is timer-heap work per
 * request. A struct deadline keeps its timer armed at or before the deadline instead: moving
 * the deadline later costs nothing, and when the timer fires early, deadline_fired() re-arms
 * it for what is left. */
#ifndef FERRY_DEADLINE_H
#define FERRY_DEADLINE_H

#include <stdint.h>
#include <sys/time.h>

struct event;

static inline struct timeval ms_timeval(uint64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    return tv;
}

struct deadline {
    struct event *ev;     /* the owner's timer (evtimer_new), freed by the owner */
    uint64_t due_ms;      /* now_ms() clock; 0 = none */
    uint64_t armed_ms;    /* when <ev> fires; 0 = not armed */
};

/* The deadline becomes <now> + <ms> (<now>: now_ms()); the timer is added only when it is not
 * armed or would fire later than that. */
void deadline_set(struct deadline *d, uint64_t now, uint64_t ms);

/* deadline_set from now, or (<ms> 0: a timeout that is off) deadline_clear. */
void deadline_after(struct deadline *d, uint64_t ms);

/* No deadline: the armed timer, when it fires, finds nothing to do. */
static inline void deadline_clear(struct deadline *d) { d->due_ms = 0; }

/* No deadline, and the timer taken out (before its event is freed). */
void deadline_stop(struct deadline *d);

/* From the timer's callback: 1 when the deadline has passed (it is cleared); 0 when there
 * is none, or the timer fired early and was armed again for the rest. */
int deadline_fired(struct deadline *d);

#endif

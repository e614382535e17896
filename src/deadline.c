#include "deadline.h"

#include <event2/event.h>

#include "log.h"

static void arm(struct deadline *d, uint64_t now, uint64_t ms)
{
    struct timeval tv = ms_timeval(ms);
    evtimer_add(d->ev, &tv);
    d->armed_ms = now + ms;
}

void deadline_set(struct deadline *d, uint64_t now, uint64_t ms)
{
    d->due_ms = now + ms;
    if (!d->armed_ms || d->armed_ms > d->due_ms)
        arm(d, now, ms);
}

void deadline_after(struct deadline *d, uint64_t ms)
{
    if (ms)
        deadline_set(d, now_ms(), ms);
    else
        deadline_clear(d);
}

void deadline_stop(struct deadline *d)
{
    d->due_ms = 0;
    d->armed_ms = 0;
    event_del(d->ev);
}

int deadline_fired(struct deadline *d)
{
    d->armed_ms = 0;
    if (!d->due_ms)
        return 0;
    uint64_t now = now_ms_fresh();   /* libevent fired it by a fresher clock than the turn's */
    if (now < d->due_ms) {
        arm(d, now, d->due_ms - now);
        return 0;
    }
    d->due_ms = 0;
    return 1;
}

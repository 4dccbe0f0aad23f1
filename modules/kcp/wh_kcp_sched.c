/*
 * wh_kcp_sched.c -- the per-worker flush scheduler of mKCP sessions (see
 * wh_kcp_sched.h): a min-heap instead of a timer per session, so
 * thousands of idle sessions cost one ev_timer and 8 bytes each.
 */
#include "wh_kcp_sched.h"

static void
place(wh_kcp_sched_t *s, uint32_t i, wh_kcp_timer_t *t)
{
    s->heap[i] = t;
    t->pos = i + 1;
}

static void
sift_up(wh_kcp_sched_t *s, uint32_t i)
{
    wh_kcp_timer_t *t = s->heap[i];

    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (s->heap[parent]->due <= t->due) break;
        place(s, i, s->heap[parent]);
        i = parent;
    }
    place(s, i, t);
}

static void
sift_down(wh_kcp_sched_t *s, uint32_t i)
{
    wh_kcp_timer_t *t = s->heap[i];

    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= s->n) break;
        if (c + 1 < s->n && s->heap[c + 1]->due < s->heap[c]->due) c++;
        if (t->due <= s->heap[c]->due) break;
        place(s, i, s->heap[c]);
        i = c;
    }
    place(s, i, t);
}

int
wh_kcp_sched_set(wh_kcp_sched_t *s, wh_kcp_timer_t *t, uint64_t due)
{
    uint64_t old = t->due;

    if (t->pos == 0) {
        if (s->n == s->cap) {
            uint32_t cap = s->cap ? s->cap * 2 : 64;
            wh_kcp_timer_t **h = realloc(s->heap, cap * sizeof(*h));
            if (h == NULL) return WH_ERROR;
            s->heap = h;
            s->cap = cap;
        }
        t->due = due;
        place(s, s->n++, t);
        sift_up(s, s->n - 1);
        return WH_OK;
    }
    t->due = due;
    if (due < old) {
        sift_up(s, t->pos - 1);
    } else if (due > old) {
        sift_down(s, t->pos - 1);
    }
    return WH_OK;
}

void
wh_kcp_sched_del(wh_kcp_sched_t *s, wh_kcp_timer_t *t)
{
    uint32_t i;
    wh_kcp_timer_t *last;

    if (t->pos == 0) return;
    i = t->pos - 1;
    t->pos = 0;
    last = s->heap[--s->n];
    if (i == s->n) return;
    place(s, i, last);
    sift_up(s, i);
    sift_down(s, last->pos - 1);
}

wh_kcp_timer_t *
wh_kcp_sched_pop(wh_kcp_sched_t *s, uint64_t now)
{
    wh_kcp_timer_t *t;

    if (s->n == 0 || s->heap[0]->due > now) return NULL;
    t = s->heap[0];
    wh_kcp_sched_del(s, t);
    return t;
}

void
wh_kcp_sched_free(wh_kcp_sched_t *s)
{
    free(s->heap);
    s->heap = NULL;
    s->n = s->cap = 0;
}

uint64_t
wh_kcp_now_ms(void)
{
    return (uint64_t) (ev_now(wh_loop) * 1000.0);
}

void
wh_kcp_sched_arm(wh_kcp_sched_t *s)
{
    double after;
    uint64_t now;

    if (s->n == 0) {
        ev_timer_stop(wh_loop, &s->ev);
        s->armed = UINT64_MAX;
        return;
    }
    now = wh_kcp_now_ms();
    s->armed = s->heap[0]->due;
    after = s->heap[0]->due > now ? (double) (s->heap[0]->due - now) / 1000.0 : 0.0;
    ev_timer_stop(wh_loop, &s->ev);
    ev_timer_set(&s->ev, after, 0.0);
    ev_timer_start(wh_loop, &s->ev);
}

void
wh_kcp_sched_touch(wh_kcp_sched_t *s)
{
    if (s->n > 0 && s->heap[0]->due < s->armed) {
        wh_kcp_sched_arm(s);
    }
}

void
wh_kcp_sched_run(wh_kcp_sched_t *s)
{
    uint64_t now;
    wh_kcp_timer_t *t;
    unsigned budget = s->n + 1;     /* each entry once: fire() re-schedules later */

    now = wh_kcp_now_ms();
    s->armed = UINT64_MAX;
    while (budget-- > 0 && (t = wh_kcp_sched_pop(s, now)) != NULL) {
        s->fire(s, t, now);
    }
    wh_kcp_sched_arm(s);
}

/*
 * wh_coalesce.c -- the receive_coalesce policy (see wh_coalesce.h).
 */
#include "wh_coalesce.h"

void
wh_coalesce_init(wh_coalesce_t *c, void (*cb)(struct ev_loop *, ev_timer *, int), void *data)
{
    memset(c, 0, sizeof(*c));
    ev_timer_init(&c->timer, cb, 0., 0.);
    c->timer.data = data;
}

int
wh_coalesce_read(wh_coalesce_t *c, size_t n, size_t size)
{
    if (c->on) {
        /* a read took what a hold kept (the relay read on its own, not
         * told): that was no pause, and the next wait starts a new hold */
        if (ev_is_active(&c->timer)) ev_timer_stop(wh_loop, &c->timer);
        return 0;
    }
    /* a small buffer says nothing; once holding, only a pause ends it (a
     * short read is then the rest of a batch) */
    if (c->timer.repeat <= 0 || size < WH_COALESCE_READ) return 0;
    if (n < WH_COALESCE_READ) {
        c->run = 0;
        return 0;
    }
    return ++c->run >= (WH_COALESCE_RUN << c->backoff);
}

void
wh_coalesce_wait(wh_coalesce_t *c)
{
    if (!ev_is_active(&c->timer)) ev_timer_again(wh_loop, &c->timer);
}

void
wh_coalesce_batch(wh_coalesce_t *c)
{
    if (ev_is_active(&c->timer)) ev_timer_stop(wh_loop, &c->timer);
    c->backoff = 0;
}

int
wh_coalesce_expired(wh_coalesce_t *c, size_t queued)
{
    /* the timer would repeat: the next wait arms it again, a stream whose
     * relay does not read (its upstream is slow) is not woken for nothing */
    ev_timer_stop(wh_loop, &c->timer);
    if (queued >= WH_COALESCE_STREAMING) {
        c->backoff = 0;
        return 1;
    }
    if (c->backoff < WH_COALESCE_BACKOFF) c->backoff++;
    wh_coalesce_stop(c);
    return 0;
}

void
wh_coalesce_stop(wh_coalesce_t *c)
{
    if (ev_is_active(&c->timer)) ev_timer_stop(wh_loop, &c->timer);
    c->on = 0;
    c->run = 0;
}

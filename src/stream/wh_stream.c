/*
 * wh_stream.c -- the helpers every stream implementation shares: calling
 * the relay's callbacks under a reference, and deferred close.
 */
#include "wh_stream.h"

void
wh_stream_notify(wh_stream_t *s, int events)
{
    s->refs++;
    if ((events & WH_EV_READ) && !s->closed && s->on_readable != NULL) {
        s->on_readable(s);
    }
    if ((events & WH_EV_WRITE) && !s->closed && s->on_writable != NULL) {
        s->on_writable(s);
    }
    if (--s->refs == 0 && s->closed) {
        s->ops->destroy(s);
    }
}

void
wh_stream_close(wh_stream_t *s)
{
    if (s->closed) {
        return;
    }
    s->closed = 1;
    s->on_readable = NULL;
    s->on_writable = NULL;
    if (s->refs == 0) {
        s->ops->destroy(s);
    }
}

void
wh_stream_ready(wh_stream_t *s, int events)
{
    events &= s->want;
    s->want &= ~events;
    if (events) {
        wh_stream_notify(s, events);
    }
}

static void
posted_ready(wh_posted_t *ev)
{
    wh_posted_stream_t *ps = wh_container_of(ev, wh_posted_stream_t, posted);
    int events = ps->ready;

    ps->ready = 0;
    wh_stream_ready(&ps->s, events);
}

void
wh_posted_stream_init(wh_posted_stream_t *ps)
{
    ps->posted.handler = posted_ready;
}

void
wh_stream_ready_later(wh_posted_stream_t *ps, int events)
{
    if (ps->s.want & events) {
        ps->ready |= events;
        wh_post(&ps->posted);
    }
}

void
wh_posted_stream_cancel(wh_posted_stream_t *ps)
{
    ps->ready = 0;
    wh_post_cancel(&ps->posted);
}

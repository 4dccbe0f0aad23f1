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

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

size_t
wh_iov_len(const struct iovec *iov, int iovcnt)
{
    size_t len = 0;
    int i;

    for (i = 0; i < iovcnt; i++) len += iov[i].iov_len;
    return len;
}

size_t
wh_iov_copy(uint8_t *dst, const struct iovec *iov, int iovcnt, size_t skip, size_t max)
{
    size_t len = 0, k;
    int i;

    for (i = 0; i < iovcnt && len < max; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        k = wh_min(iov[i].iov_len - skip, max - len);
        memcpy(dst + len, (const uint8_t *) iov[i].iov_base + skip, k);
        len += k;
        skip = 0;
    }
    return len;
}

ssize_t
wh_stream_write_joined(wh_stream_t *s, const struct iovec *iov, int iovcnt)
{
    /* a relay chunk with its frames' headers fits in one */
    static uint8_t joined[65536 + 1024];
    size_t total = 0, len;
    ssize_t n;

    for (;;) {
        len = wh_iov_copy(joined, iov, iovcnt, total, sizeof(joined));
        if (len == 0) return (ssize_t) total;
        n = wh_stream_write(s, joined, len);
        /* what stopped a write after the first is seen again next time */
        if (n < 0) return total > 0 ? (ssize_t) total : n;
        total += (size_t) n;
        if ((size_t) n < len) return (ssize_t) total;
    }
}

ssize_t
wh_stream_writev(wh_stream_t *s, const struct iovec *iov, int iovcnt)
{
    return s->ops->writev != NULL ? s->ops->writev(s, iov, iovcnt)
                                  : wh_stream_write_joined(s, iov, iovcnt);
}

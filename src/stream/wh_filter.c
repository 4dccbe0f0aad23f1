/*
 * wh_filter.c -- the base of every stream that wraps another one.
 *
 * A WebSocket, the tcp "http" header, the http transport's HTTP/1.1
 * chunks and TLS each turn the bytes of a lower stream into the bytes of
 * their own. What they do with those bytes is theirs (the codec); the
 * shell around it is the same for all, and lives here once:
 *
 *  - the lower stream is owned: its callbacks are the filter's, and it is
 *    closed when the filter is destroyed;
 *  - the promise is the seam's own record (s->want): a codec that answers
 *    WH_AGAIN records it, the lower stream's callbacks keep it with
 *    wh_stream_ready(), once. A codec whose read may wait on the lower's
 *    write (TLS) maps lower events to upper ones (lower_event);
 *  - output a codec frames is written whole: what the lower stream does not
 *    take waits in the codec's wh_outbuf_t (out), is written first when it
 *    is writable again, and a failure then sets the filter's err and wakes
 *    whoever waits, so they see it;
 *  - shutdown_write below waits until the last pending byte is out;
 *  - wait, flow and splice_fd follow from the above: the lower stream's,
 *    plus what is pending here.
 *
 * Shaped for memory, as every idle connection carries one: the table of
 * ops is the codec's stream ops extended (s->ops points into it), so the
 * filter costs one pointer beyond the stream; the pending output is the
 * codec's member, found by its offset, so a codec that needs none
 * carries none; the deferred shutdown is a bit of the stream.
 */
#include "wh_filter.h"

#define filter_ops(f) wh_container_of((f)->s.ops, const wh_filter_ops_t, stream)

static wh_outbuf_t *
filter_out(wh_filter_t *f)
{
    size_t off = filter_ops(f)->out;

    return off ? (wh_outbuf_t *) (void *) ((char *) f + off) : NULL;
}

static void
filter_ready(wh_filter_t *f, int events)
{
    const wh_filter_ops_t *ops = filter_ops(f);

    wh_stream_ready(&f->s, ops->lower_event ? ops->lower_event(f, events) : events);
}

static void
lower_readable(wh_stream_t *lower)
{
    wh_filter_t *f = lower->data;

    filter_ready(f, WH_EV_READ);
}

static void
lower_writable(wh_stream_t *lower)
{
    wh_filter_t *f = lower->data;
    wh_outbuf_t *out = filter_out(f);

    if (out != NULL) {
        switch (wh_outbuf_flush(out, lower)) {
        case WH_AGAIN:
            return;
        case WH_ERROR:
            f->s.err = lower->err;
            wh_stream_ready(&f->s, f->s.want);      /* they will see the error */
            return;
        }
    }
    if (f->s.shut_pending) {
        f->s.shut_pending = 0;
        wh_stream_shutdown_write(lower);
    }
    filter_ready(f, WH_EV_WRITE);
}

static wh_inbuf_t *
filter_ahead(wh_filter_t *f, const wh_filter_ops_t *ops)
{
    return ops->ahead ? (wh_inbuf_t *) (void *) ((char *) f + ops->ahead) : NULL;
}

void *
wh_filter_new(size_t size, const wh_filter_ops_t *ops, wh_stream_t *lower, const void *ahead,
              size_t n)
{
    wh_filter_t *f = calloc(1, size);

    if (f == NULL) {
        return NULL;
    }
    if (n > 0 && wh_inbuf_set(filter_ahead(f, ops), ahead, n) != WH_OK) {
        free(f);
        return NULL;
    }
    f->s.ops = &ops->stream;
    f->lower = lower;
    lower->data = f;
    lower->on_readable = lower_readable;
    lower->on_writable = lower_writable;
    return f;
}

static int
filter_sendv(wh_filter_t *f, const struct iovec *iov, int iovcnt)
{
    if (wh_outbuf_sendv(filter_out(f), f->lower, iov, iovcnt) != WH_OK) {
        f->s.err = f->lower->err;
        return WH_ERROR;
    }
    return WH_OK;
}

int
wh_filter_send(wh_filter_t *f, const void *p, size_t n)
{
    struct iovec v = { (void *) p, n };

    return filter_sendv(f, &v, 1);
}

int
wh_filter_flush(wh_filter_t *f)
{
    switch (wh_outbuf_flush(filter_out(f), f->lower)) {
    case WH_OK:
        return WH_OK;
    case WH_AGAIN:
        wh_stream_want(&f->s, WH_EV_WRITE);
        return WH_AGAIN;
    }
    f->s.err = f->lower->err;
    return WH_ERROR;
}

int
wh_filter_shutdown(wh_filter_t *f)
{
    wh_outbuf_t *out = filter_out(f);

    /* pending bytes came with the lower's promise of on_writable */
    if (out != NULL && !wh_outbuf_empty(out)) {
        f->s.shut_pending = 1;
        return WH_OK;
    }
    return wh_stream_shutdown_write(f->lower);
}

void
wh_filter_await(wh_filter_t *f, int upper, int lower)
{
    wh_stream_want(&f->s, upper);
    wh_stream_wait(f->lower, lower);
}

ssize_t
wh_filter_write(wh_stream_t *s, const void *buf, size_t size)
{
    wh_filter_t *f = wh_filter_of(s);
    const wh_filter_ops_t *ops = filter_ops(f);
    wh_outbuf_t *out = filter_out(f);
    struct iovec iov[WH_FILTER_IOV];
    size_t taken = 0, n;
    int rc, iovcnt;

    rc = wh_filter_flush(f);
    if (rc != WH_OK) {
        return rc;
    }
    while (taken < size && wh_outbuf_empty(out)) {
        n = ops->encode(f, (const uint8_t *) buf + taken, size - taken, iov, &iovcnt);
        /* a unit is promised whole: its tail waits if it must */
        if (filter_sendv(f, iov, iovcnt) != WH_OK) {
            return taken > 0 ? (ssize_t) taken : WH_ERROR;
        }
        taken += n;
    }
    if (!wh_outbuf_empty(out)) wh_stream_want(s, WH_EV_WRITE);
    return taken;
}

void
wh_filter_wait(wh_stream_t *s, int events)
{
    wh_filter_await(wh_filter_of(s), events, events);
}

int
wh_filter_splice_fd(wh_stream_t *s)
{
    wh_filter_t *f = wh_filter_of(s);
    const wh_filter_ops_t *ops = filter_ops(f);
    wh_outbuf_t *out = filter_out(f);

    if (ops->holds == NULL || ops->holds(f) || (out != NULL && !wh_outbuf_empty(out))) {
        return -1;
    }
    return wh_stream_splice_fd(f->lower);
}

int
wh_filter_flow(wh_stream_t *s, wh_stream_flow_t *fl)
{
    wh_filter_t *f = wh_filter_of(s);
    const wh_filter_ops_t *ops = filter_ops(f);
    wh_outbuf_t *out = filter_out(f);
    int rc;

    rc = out != NULL ? wh_outbuf_flow(out, f->lower, fl) : wh_stream_flow(f->lower, fl);
    if (rc == WH_OK && ops->lacks != NULL) ops->lacks(f, fl);
    return rc;
}

void
wh_filter_destroy(wh_stream_t *s)
{
    wh_filter_t *f = wh_filter_of(s);
    const wh_filter_ops_t *ops = filter_ops(f);
    wh_outbuf_t *out = filter_out(f);
    wh_stream_t *lower = f->lower;      /* NULL once detached */

    if (lower != NULL && ops->release != NULL) ops->release(f);
    if (out != NULL) wh_outbuf_free(out);
    if (ops->ahead) wh_inbuf_free(filter_ahead(f, ops));
    free(f);
    if (lower != NULL) wh_stream_close(lower);
}

wh_stream_t *
wh_filter_detach(wh_stream_t *s)
{
    wh_filter_t *f = wh_filter_of(s);
    wh_stream_t *lower = f->lower;

    f->lower = NULL;
    lower->data = NULL;
    lower->on_readable = NULL;
    lower->on_writable = NULL;
    /* now, or when the callback that holds the filter returns */
    wh_stream_close(s);
    return lower;
}

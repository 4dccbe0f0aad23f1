/*
 * wh_replay.c -- a stream that gives first the bytes already read from
 * the stream below, then that stream as it is (see wh_replay.h).
 *
 * A connection one listener's transport refused and a fallback hands to
 * another listener's transport (wh_fallback.h) is read again from its
 * first byte: the second transport's handshake must see the request the
 * first one read. A codec on the filter base that frames nothing: reads
 * and writes pass through once the bytes read ahead are gone, and splice
 * goes to the socket below again from then on.
 */
#include "wh_replay.h"
#include "wh_filter.h"

typedef struct {
    wh_filter_t f;
    wh_inbuf_t ahead;
} wh_replay_t;

#define replay_of(s) wh_container_of(s, wh_replay_t, f.s)

/* What a call below returned, with its promise or its failure made ours. */
static ssize_t
passed(wh_stream_t *s, ssize_t n, int event)
{
    if (n == WH_AGAIN) {
        wh_stream_want(s, event);
    } else if (n < 0) {
        s->err = wh_filter_of(s)->lower->err;
    }
    return n;
}

static ssize_t
replay_read(wh_stream_t *s, void *buf, size_t size)
{
    wh_replay_t *r = replay_of(s);

    if (r->ahead.data != NULL) {
        return wh_inbuf_read(&r->ahead, buf, size);
    }
    return passed(s, wh_stream_read(r->f.lower, buf, size), WH_EV_READ);
}

static ssize_t
replay_write(wh_stream_t *s, const void *buf, size_t size)
{
    return passed(s, wh_stream_write(wh_filter_of(s)->lower, buf, size), WH_EV_WRITE);
}

static int
replay_shutdown_write(wh_stream_t *s)
{
    return wh_filter_shutdown(wh_filter_of(s));
}

static int
replay_holds(wh_filter_t *f)
{
    return wh_container_of(f, wh_replay_t, f)->ahead.data != NULL;
}

static const wh_filter_ops_t replay_ops = {
    .stream = WH_FILTER_STREAM("replay", replay_read, replay_write, replay_shutdown_write),
    .ahead = offsetof(wh_replay_t, ahead),
    .holds = replay_holds,
};

wh_stream_t *
wh_replay_stream(wh_stream_t *lower, const void *read, size_t n)
{
    wh_replay_t *r = wh_filter_new(sizeof(*r), &replay_ops, lower, read, n);

    return r != NULL ? &r->f.s : NULL;
}

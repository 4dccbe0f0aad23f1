/*
 * wh_echo_stream.c -- the built-in "echo" upstream: every byte written is
 * read back.
 *
 * It is a wh_stream_t like any upstream, so the relay needs no special case
 * and it exercises the seam's back-pressure with no socket: it holds at most
 * WH_ECHO_BUFFER bytes (allocated only while some are held); a write beyond
 * that answers WH_AGAIN until the relay has read some back. Readiness is
 * delivered through posted events, never from inside the caller's read or
 * write.
 */
#include "wh_upstream.h"
#include "wh_event.h"

#define WH_ECHO_BUFFER 65536

typedef struct {
    wh_posted_stream_t ps;
    uint8_t *buf;
    uint32_t start, len;
    uint8_t eof;
} wh_echo_stream_t;

#define echo_of(s) wh_container_of(s, wh_echo_stream_t, ps.s)

static void
echo_signal(wh_echo_stream_t *es, int events)
{
    wh_stream_ready_later(&es->ps, events);
}

static void
echo_wait(wh_stream_t *s, int events)
{
    wh_echo_stream_t *es = echo_of(s);

    wh_stream_want(s, events);
    /* readiness that already holds is delivered at once (posted) */
    if ((events & WH_EV_READ) && (es->len > 0 || es->eof)) echo_signal(es, WH_EV_READ);
    if ((events & WH_EV_WRITE) && es->len < WH_ECHO_BUFFER) echo_signal(es, WH_EV_WRITE);
}

static ssize_t
echo_read(wh_stream_t *s, void *buf, size_t size)
{
    wh_echo_stream_t *es = echo_of(s);
    size_t n;

    if (es->len == 0) {
        if (es->eof) return 0;
        wh_stream_want(s, WH_EV_READ);
        return WH_AGAIN;
    }
    n = wh_min(size, es->len);
    memcpy(buf, es->buf + es->start, n);
    es->start += n;
    es->len -= n;
    if (es->len == 0) {
        free(es->buf);      /* an idle echo holds no buffer */
        es->buf = NULL;
        es->start = 0;
    }
    echo_signal(es, WH_EV_WRITE);
    return n;
}

static ssize_t
echo_write(wh_stream_t *s, const void *buf, size_t size)
{
    wh_echo_stream_t *es = echo_of(s);
    size_t n;

    if (es->len == WH_ECHO_BUFFER) {
        wh_stream_want(s, WH_EV_WRITE);
        return WH_AGAIN;
    }
    if (es->buf == NULL) {
        es->buf = malloc(WH_ECHO_BUFFER);
        if (es->buf == NULL) {
            s->err = wh_err_io;
            return WH_ERROR;
        }
    }
    if (es->start > 0) {
        memmove(es->buf, es->buf + es->start, es->len);
        es->start = 0;
    }
    n = wh_min(size, (size_t) (WH_ECHO_BUFFER - es->len));
    memcpy(es->buf + es->len, buf, n);
    es->len += n;
    if (n < size) wh_stream_want(s, WH_EV_WRITE);
    echo_signal(es, WH_EV_READ);
    return n;
}

static int
echo_shutdown_write(wh_stream_t *s)
{
    wh_echo_stream_t *es = echo_of(s);

    es->eof = 1;
    echo_signal(es, WH_EV_READ);
    return WH_OK;
}

static void
echo_destroy(wh_stream_t *s)
{
    wh_echo_stream_t *es = echo_of(s);

    wh_posted_stream_cancel(&es->ps);
    free(es->buf);
    free(es);
}

static const wh_stream_ops_t echo_ops = {
    .name = "echo",
    .read = echo_read,
    .write = echo_write,
    .shutdown_write = echo_shutdown_write,
    .wait = echo_wait,
    .splice_fd = NULL,
    .destroy = echo_destroy,
};

wh_stream_t *
wh_echo_stream_create(void)
{
    wh_echo_stream_t *es = calloc(1, sizeof(*es));

    if (es == NULL) {
        return NULL;
    }
    es->ps.s.ops = &echo_ops;
    wh_posted_stream_init(&es->ps);
    return &es->ps.s;
}

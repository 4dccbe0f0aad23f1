/*
 * test_filter.c -- the filter base (wh_filter.c) with a small framing
 * codec over a scripted lower stream (no sockets, no event loop).
 *
 * The lower stream takes a few bytes a write and a budget a round, then
 * answers WH_AGAIN with the promise of on_writable, which the test keeps
 * by hand (wh_stream_ready), as a socket's watcher would. Checks: every
 * framed byte arrives in order, nothing lost, under partial writes; the
 * lower's shutdown comes only after the last pending byte; a failure
 * during a flush sets the filter's err and wakes whoever waits; a read's
 * WH_AGAIN is kept by one on_readable; destroy closes the lower stream.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_filter.h"

#define FRAME 5                 /* payload bytes per unit */

/* The scripted lower stream. */
typedef struct {
    wh_stream_t s;
    uint8_t got[4096];          /* what the filter wrote */
    size_t got_len;
    size_t per_write;           /* the most one write takes */
    size_t budget;              /* left this round; 0: WH_AGAIN */
    const char *fail;           /* the next write fails with it */
    int shut;                   /* shutdown_write calls */
    size_t shut_at;             /* got_len when it came */
    uint8_t in[64];             /* what reads return */
    size_t in_len;
    int destroyed;
} lower_t;

static ssize_t
lower_read(wh_stream_t *s, void *buf, size_t size)
{
    lower_t *l = (lower_t *) s;
    size_t n = wh_min(size, l->in_len);

    if (n == 0) {
        wh_stream_want(s, WH_EV_READ);
        return WH_AGAIN;
    }
    memcpy(buf, l->in, n);
    memmove(l->in, l->in + n, l->in_len - n);
    l->in_len -= n;
    return n;
}

static ssize_t
lower_write(wh_stream_t *s, const void *buf, size_t size)
{
    lower_t *l = (lower_t *) s;
    size_t n = wh_min(wh_min(size, l->per_write), l->budget);

    if (l->fail != NULL) {
        s->err = l->fail;
        return WH_ERROR;
    }
    assert_int_equal(l->shut, 0);           /* nothing after the FIN */
    if (n == 0) {
        wh_stream_want(s, WH_EV_WRITE);
        return WH_AGAIN;
    }
    memcpy(l->got + l->got_len, buf, n);
    l->got_len += n;
    l->budget -= n;
    if (n < size) wh_stream_want(s, WH_EV_WRITE);
    return n;
}

static int
lower_shutdown(wh_stream_t *s)
{
    lower_t *l = (lower_t *) s;

    l->shut++;
    l->shut_at = l->got_len;
    return WH_OK;
}

static void
lower_wait(wh_stream_t *s, int events)
{
    wh_stream_want(s, events);
}

static void
lower_destroy(wh_stream_t *s)
{
    ((lower_t *) s)->destroyed = 1;
}

static const wh_stream_ops_t lower_ops = {
    .name = "scripted", .read = lower_read, .write = lower_write,
    .shutdown_write = lower_shutdown, .wait = lower_wait, .destroy = lower_destroy,
};

/* The codec: each unit is a length byte and up to FRAME bytes. */
typedef struct {
    wh_filter_t f;
    wh_outbuf_t out;
} codec_t;

static uint8_t unit_buf[1];
static int released;

static ssize_t
codec_read(wh_stream_t *s, void *buf, size_t size)
{
    wh_filter_t *f = wh_filter_of(s);
    ssize_t n = wh_stream_read(f->lower, buf, size);

    if (n == WH_AGAIN) wh_stream_want(s, WH_EV_READ);
    return n;
}

/* the length byte, then the payload where the caller has it */
static size_t
codec_encode(wh_filter_t *f, const uint8_t *p, size_t n, struct iovec *iov, int *iovcnt)
{
    n = wh_min(n, (size_t) FRAME);
    unit_buf[0] = (uint8_t) n;
    iov[0].iov_base = unit_buf;
    iov[0].iov_len = 1;
    iov[1].iov_base = (void *) p;
    iov[1].iov_len = n;
    *iovcnt = 2;
    return n;
}

static int
codec_shutdown(wh_stream_t *s)
{
    return wh_filter_shutdown(wh_filter_of(s));
}

static void
codec_release(wh_filter_t *f)
{
    released++;
}

static const wh_filter_ops_t codec_ops = {
    .stream = WH_FILTER_STREAM("codec", codec_read, wh_filter_write, codec_shutdown),
    .out = offsetof(codec_t, out), .encode = codec_encode, .release = codec_release,
};

static int readable, writable;

static void on_readable(wh_stream_t *s) { readable++; }
static void on_writable(wh_stream_t *s) { writable++; }

static wh_stream_t *
filter_over(lower_t *l, size_t per_write, size_t budget)
{
    codec_t *c;

    memset(l, 0, sizeof(*l));
    l->s.ops = &lower_ops;
    l->per_write = per_write;
    l->budget = budget;
    c = wh_filter_new(sizeof(*c), &codec_ops, &l->s, NULL, 0);
    assert_non_null(c);
    c->f.s.on_readable = on_readable;
    c->f.s.on_writable = on_writable;
    readable = writable = released = 0;
    return &c->f.s;
}

/* What the codec must have sent for data[0..n). */
static size_t
framed(const uint8_t *data, size_t n, uint8_t *out)
{
    size_t len = 0, k;

    for (size_t i = 0; i < n; i += k) {
        k = wh_min(n - i, (size_t) FRAME);
        out[len++] = (uint8_t) k;
        memcpy(out + len, data + i, k);
        len += k;
    }
    return len;
}

/* A new round for the lower stream: its promise of on_writable is kept. */
static void
lower_round(lower_t *l, size_t budget)
{
    l->budget = budget;
    wh_stream_ready(&l->s, WH_EV_WRITE);
}

static void
test_partial_writes_in_order(void **state)
{
    lower_t l;
    wh_stream_t *s = filter_over(&l, 3, 7);
    uint8_t data[200], want[400];
    size_t sent = 0, rounds = 0;
    ssize_t n;

    for (size_t i = 0; i < sizeof(data); i++) data[i] = (uint8_t) (i * 7 + 1);
    while (sent < sizeof(data)) {
        n = wh_stream_write(s, data + sent, sizeof(data) - sent);
        if (n > 0) sent += n;
        else assert_int_equal(n, WH_AGAIN);
        if (sent < sizeof(data)) {
            /* a short write or WH_AGAIN is a promise, kept once */
            int before = writable;
            lower_round(&l, 7);
            assert_true(writable <= before + 1);
            assert_true(++rounds < 1000);
        }
    }
    while (l.s.want & WH_EV_WRITE) lower_round(&l, 7);     /* the tail */
    assert_int_equal(l.got_len, framed(data, sizeof(data), want));
    assert_memory_equal(l.got, want, l.got_len);
    assert_null(s->err);
    wh_stream_close(s);
    assert_int_equal(released, 1);
    assert_true(l.destroyed);
}

static void
test_shutdown_after_pending(void **state)
{
    lower_t l;
    wh_stream_t *s = filter_over(&l, 2, 3);
    uint8_t data[12] = "hello world!", want[32];
    size_t len = framed(data, 5, want);

    assert_int_equal(wh_stream_write(s, data, sizeof(data)), 5);     /* one unit, half out */
    assert_int_equal(wh_stream_shutdown_write(s), WH_OK);
    assert_int_equal(l.shut, 0);                /* bytes still pending */
    lower_round(&l, 2);
    assert_int_equal(l.shut, 0);
    lower_round(&l, 100);
    assert_int_equal(l.shut, 1);
    assert_int_equal(l.shut_at, len);           /* right after the last byte */
    assert_memory_equal(l.got, want, len);
    lower_round(&l, 100);
    assert_int_equal(l.shut, 1);
    wh_stream_close(s);
    assert_true(l.destroyed);
}

static void
test_flush_error_wakes_waiters(void **state)
{
    lower_t l;
    wh_stream_t *s = filter_over(&l, 4, 4);
    uint8_t data[10] = "0123456789", buf[16];

    assert_int_equal(wh_stream_write(s, data, sizeof(data)), 5);
    assert_int_equal(wh_stream_read(s, buf, sizeof(buf)), WH_AGAIN);
    assert_int_equal(s->want, WH_EV_READ | WH_EV_WRITE);
    l.fail = wh_err_io;
    lower_round(&l, 100);
    assert_ptr_equal(s->err, wh_err_io);
    assert_int_equal(writable, 1);
    assert_int_equal(readable, 1);              /* every waiter sees it */
    assert_int_equal(s->want, 0);
    assert_int_equal(wh_stream_write(s, data, sizeof(data)), WH_ERROR);
    wh_stream_close(s);
    assert_true(l.destroyed);
}

static void
test_read_promise_kept_once(void **state)
{
    lower_t l;
    wh_stream_t *s = filter_over(&l, 64, 64);
    uint8_t buf[16];

    assert_int_equal(wh_stream_read(s, buf, sizeof(buf)), WH_AGAIN);
    memcpy(l.in, "abc", 3);
    l.in_len = 3;
    wh_stream_ready(&l.s, WH_EV_READ);
    assert_int_equal(readable, 1);
    assert_int_equal(writable, 0);
    wh_stream_ready(&l.s, WH_EV_READ);           /* no second call */
    assert_int_equal(readable, 1);
    assert_int_equal(wh_stream_read(s, buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "abc", 3);
    wh_stream_close(s);
    assert_true(l.destroyed);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partial_writes_in_order),
        cmocka_unit_test(test_shutdown_after_pending),
        cmocka_unit_test(test_flush_error_wakes_waiters),
        cmocka_unit_test(test_read_promise_kept_once),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

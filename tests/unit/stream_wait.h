/*
 * stream_wait.h -- for the receive coalescing tests: the relay's side of
 * one stream `s` on the worker's loop, which reads it until it says
 * WH_AGAIN and measures how long the stream takes to report readable.
 * The test defines BATCH, what such a stream holds back for, and
 * open_stream(delay), which gives the relay a client stream that coalesces
 * with that delay; stream_in(count), count arrivals
 * of a client that streams, each read at once; and put(n), n more bytes
 * from the client. The scenarios at the end are the policy's
 * (wh_coalesce.h), the same whichever way a stream holds. The delay is
 * long (DELAY) so that "held" and "at once" are told apart with wide
 * margins on a busy machine. Include after cmocka.h, wh_event.h and
 * wh_stream.h.
 */
#ifndef STREAM_WAIT_H
#define STREAM_WAIT_H

#define DELAY   0.6
#define AT_ONCE 0.25        /* well under DELAY */

static void open_stream(double delay);
static void stream_in(int count);
static void put(size_t n);

static wh_stream_t *s;
static int readable;
static uint8_t buf[262144];
static size_t got;          /* bytes read since the last reset */
static int eof;

static void
on_readable(wh_stream_t *st)
{
    readable = 1;
    ev_break(wh_loop, EVBREAK_ONE);
}

static void
timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ONE);
}

/* Reads until the stream says WH_AGAIN (its promise is then made). */
static void
drain(void)
{
    ssize_t n;

    while ((n = wh_stream_read(s, buf, sizeof(buf))) > 0) {
        got += (size_t) n;
    }
    if (n == 0) eof = 1;
    else assert_int_equal(n, WH_AGAIN);
}

/* Runs the loop until the stream reports readable or limit seconds pass;
 * the seconds it took, or -1 when it did not report. */
static double
wait_readable(double limit)
{
    ev_timer t;
    double start;

    readable = 0;
    ev_now_update(wh_loop);
    start = ev_now(wh_loop);
    ev_timer_init(&t, timeout_cb, limit, 0.);
    ev_timer_start(wh_loop, &t);
    while (!readable && ev_is_active(&t)) {
        ev_run(wh_loop, EVRUN_ONCE);
    }
    ev_timer_stop(wh_loop, &t);
    ev_now_update(wh_loop);
    return readable ? ev_now(wh_loop) - start : -1;
}

/* The relay takes st: it reads what is there and waits for more. */
static void
relay_takes(wh_stream_t *st)
{
    s = st;
    s->on_readable = on_readable;
    got = 0;
    eof = 0;
    drain();
}

/* cmocka's setup: the worker's loop */
static int
setup(void **state)
{
    wh_event_init(ev_default_loop(0));
    return 0;
}

/* n bytes put are reported, and read, at once */
static void
read_at_once(size_t n)
{
    double t;

    put(n);
    t = wait_readable(2);
    assert_true(t >= 0 && t < AT_ONCE);
    got = 0;
    drain();
    assert_int_equal(got, n);
}

/* n bytes put are held, then reported when the delay runs out */
static void
read_after_delay(size_t n)
{
    double t;

    put(n);
    t = wait_readable(3);
    assert_true(t >= DELAY - AT_ONCE && t < 3);
    got = 0;
    drain();
    assert_int_equal(got, n);
}

static void
test_streaming_client_is_read_in_batches(void **state)
{
    double t;

    open_stream(DELAY);
    stream_in(4);
    put(1000);
    put(BATCH - 2000);
    assert_true(wait_readable(AT_ONCE) < 0);    /* held: less than a batch */
    put(1000);
    t = wait_readable(2);
    assert_true(t >= 0 && t < AT_ONCE);         /* the batch, not the delay */
    got = 0;
    drain();
    assert_int_equal(got, BATCH);
}

static void
test_pause_is_read_after_delay_then_held_only_on_more_evidence(void **state)
{
    open_stream(DELAY);
    stream_in(4);
    read_after_delay(100);

    /* a pause: 5 more such reads (the run is now 8) hold nothing */
    stream_in(5);
    read_at_once(100);
}

static void
test_slower_stream_stays_held(void **state)
{
    open_stream(DELAY);
    stream_in(4);
    read_after_delay(20000);    /* more than a pause leaves: still streaming */
    read_after_delay(1000);     /* so this is held too; it is a pause */
    read_at_once(100);
}

static void
test_no_delay_holds_nothing(void **state)
{
    open_stream(0);
    stream_in(20);
    read_at_once(100);
}

/* The scenarios above, as entries of a test's cmocka table. */
#define STREAM_WAIT_TESTS(teardown)                                                                \
    cmocka_unit_test_setup_teardown(test_streaming_client_is_read_in_batches, setup, teardown),   \
    cmocka_unit_test_setup_teardown(test_pause_is_read_after_delay_then_held_only_on_more_evidence, \
                                    setup, teardown),                                           \
    cmocka_unit_test_setup_teardown(test_slower_stream_stays_held, setup, teardown),             \
    cmocka_unit_test_setup_teardown(test_no_delay_holds_nothing, setup, teardown)

#endif

/*
 * test_sock_stream.c -- a client socket's receive coalescing
 * (src/stream/wh_sock_stream.c) over a real loopback TCP connection and a
 * real libev loop.
 *
 * Checks: once the client has streamed (several reads of 32 KiB), a small
 * write is held until a batch is queued, and a batch is reported at once;
 * a client that pauses below the batch is read when the delay runs out,
 * and is then held again only after twice the evidence; end of stream is
 * reported at once; with a delay of 0 nothing is ever held. The delay here
 * is long (0.6 s) so that "held" and "at once" are told apart with wide
 * margins on a busy machine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_event.h"
#include "wh_sock_stream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#define DELAY   0.6
#define AT_ONCE 0.25        /* well under DELAY */
#define STREAM  32768       /* one write of a streaming client */

static int client = -1;
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

static void
send_all(size_t n)
{
    static uint8_t out[STREAM * 4];

    while (n > 0) {
        size_t k = wh_min(n, sizeof(out));
        ssize_t w = send(client, out, k, 0);
        assert_true(w > 0);
        n -= (size_t) w;
    }
}

/* A client that streams: each write is read at once, as one read (the
 * fourth sets the mark, which may be as large as two of these writes). */
static void
stream_writes(int count)
{
    for (int i = 0; i < count; i++) {
        send_all(STREAM);
        assert_true(wait_readable(2) >= 0);
        got = 0;
        drain();
        assert_int_equal(got, STREAM);
    }
}

/* n bytes sent are reported, and read, at once */
static void
read_at_once(size_t n)
{
    double t;

    send_all(n);
    t = wait_readable(2);
    assert_true(t >= 0 && t < AT_ONCE);
    got = 0;
    drain();
    assert_int_equal(got, n);
}

static void
open_pair(double delay)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    int ls, fd, one = 1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    assert_int_equal(bind(ls, (struct sockaddr *) &sa, sizeof(sa)), 0);
    assert_int_equal(listen(ls, 1), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *) &sa, &len), 0);
    client = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(client, (struct sockaddr *) &sa, sizeof(sa)), 0);
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
    assert_true(fd >= 0);
    close(ls);
    s = wh_sock_stream_create(fd, 0);
    assert_non_null(s);
    wh_sock_stream_coalesce(s, delay);
    s->on_readable = on_readable;
    got = 0;
    eof = 0;
    drain();
}

static int
setup(void **state)
{
    wh_event_init(ev_default_loop(0));
    return 0;
}

static int
teardown(void **state)
{
    if (s != NULL) wh_stream_close(s);
    s = NULL;
    if (client != -1) close(client);
    client = -1;
    return 0;
}

static void
test_streaming_client_is_read_in_batches(void **state)
{
    double t;

    open_pair(DELAY);
    stream_writes(4);
    send_all(1000);
    assert_true(wait_readable(AT_ONCE) < 0);    /* held: less than a batch */
    send_all(70000);
    t = wait_readable(2);
    assert_true(t >= 0 && t < AT_ONCE);         /* the batch, not the delay */
    got = 0;
    drain();
    assert_int_equal(got, 71000);
}

static void
test_pause_is_read_after_delay_then_held_only_on_more_evidence(void **state)
{
    double t;

    open_pair(DELAY);
    stream_writes(4);
    send_all(100);
    t = wait_readable(3);
    assert_true(t >= DELAY - AT_ONCE && t < 3);
    got = 0;
    drain();
    assert_int_equal(got, 100);

    /* the wait ran out: 5 more such reads (the run is now 8) hold nothing */
    stream_writes(5);
    read_at_once(100);
}

static void
test_end_of_stream_is_reported_at_once(void **state)
{
    double t;

    open_pair(DELAY);
    stream_writes(4);
    send_all(100);
    shutdown(client, SHUT_WR);
    t = wait_readable(2);
    assert_true(t >= 0 && t < AT_ONCE);
    got = 0;
    drain();
    if (!eof) {
        assert_true(wait_readable(AT_ONCE) >= 0);
        drain();
    }
    assert_int_equal(got, 100);
    assert_true(eof);
}

static void
test_no_delay_holds_nothing(void **state)
{
    open_pair(0);
    stream_writes(20);
    read_at_once(100);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_streaming_client_is_read_in_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_is_read_after_delay_then_held_only_on_more_evidence,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_of_stream_is_reported_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_delay_holds_nothing, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

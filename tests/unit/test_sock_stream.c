/*
 * test_sock_stream.c -- a client socket's receive coalescing
 * (src/stream/wh_sock_stream.c) over a real loopback TCP connection and a
 * real libev loop.
 *
 * The policy's scenarios (stream_wait.h) with client writes of 32 KiB,
 * each read at once as one read (the fourth sets the mark), and end of
 * stream, which is reported at once whatever the mark. The server socket's
 * buffer is fixed, large enough for the whole batch to be the mark.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_coalesce.h"
#include "wh_event.h"
#include "wh_sock_stream.h"

#define BATCH   WH_COALESCE_LOWAT
#include "stream_wait.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#define STREAM  32768       /* one write of a streaming client */

static int client = -1;

static void
put(size_t n)
{
    static uint8_t out[STREAM * 4];

    while (n > 0) {
        size_t k = wh_min(n, sizeof(out));
        ssize_t w = send(client, out, k, 0);
        assert_true(w > 0);
        n -= (size_t) w;
    }
}

/* A client that streams: each write is read at once, as one read. */
static void
stream_in(int count)
{
    for (int i = 0; i < count; i++) {
        put(STREAM);
        assert_true(wait_readable(2) >= 0);
        got = 0;
        drain();
        assert_int_equal(got, STREAM);
    }
}

static void
open_stream(double delay)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    wh_stream_t *st;
    int ls, fd, one = 1, rcvbuf = 2 * BATCH;     /* the kernel doubles it */

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    assert_int_equal(setsockopt(ls, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
    assert_int_equal(bind(ls, (struct sockaddr *) &sa, sizeof(sa)), 0);
    assert_int_equal(listen(ls, 1), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *) &sa, &len), 0);
    client = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(client, (struct sockaddr *) &sa, sizeof(sa)), 0);
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
    assert_true(fd >= 0);
    close(ls);
    st = wh_sock_stream_create(fd, 0);
    assert_non_null(st);
    wh_sock_stream_coalesce(st, delay);
    relay_takes(st);
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
test_end_of_stream_is_reported_at_once(void **state)
{
    double t;

    open_stream(DELAY);
    stream_in(4);
    put(100);
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        STREAM_WAIT_TESTS(teardown),
        cmocka_unit_test_setup_teardown(test_end_of_stream_is_reported_at_once, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

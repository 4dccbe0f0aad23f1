/*
 * test_udp_hold.c -- a QUIC listener's socket held while a client streams
 * (src/udp/wh_udp.c, receive_coalesce) over a real loopback UDP socket and
 * a real libev loop, with a module that only counts what it is handed.
 *
 * The evidence and the back-off are the policy's (wh_coalesce.h, tested
 * with the streams); what is the socket's own: a held socket is read once
 * per delay, whatever comes; a hold that finds more than one read takes
 * ends at once, so a fast client never waits on a full buffer; small
 * datagrams are never evidence. The delay is long (DELAY) so that "held"
 * and "at once" are told apart with wide margins on a busy machine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_event.h"
#include "wh_module.h"
#include "wh_udp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#define DELAY   0.6
#define AT_ONCE 0.25        /* well under DELAY */
#define FULL    1200        /* a QUIC packet of a client that streams */

static int handed;          /* datagrams the module was handed */
static size_t bytes;

static void
datagram(wh_listener_t *ls, wh_udp_packet_t *pkt)
{
    handed++;
    bytes += pkt->len;
    ev_break(wh_loop, EVBREAK_ONE);
}

static const wh_module_t counter = { .name = "counter", .datagram = datagram };

/* one listener per test, kept, as a worker keeps its reading state */
static wh_listener_t listeners[8], *ls;
static int nlisteners;
static wh_stats_counters_t counters;
static wh_worker_ctx_t ctx = { .index = 0, .count = 1, .mailbox = -1 };
static int sock = -1, client = -1;

static void
timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ONE);
}

/* Runs the loop until the module has been handed `want` datagrams in all
 * or limit seconds pass; the seconds it took, or -1. */
static double
wait_handed(int want, double limit)
{
    ev_timer t;
    double start;

    ev_now_update(wh_loop);
    start = ev_now(wh_loop);
    ev_timer_init(&t, timeout_cb, limit, 0.);
    ev_timer_start(wh_loop, &t);
    while (handed < want && ev_is_active(&t)) {
        ev_run(wh_loop, EVRUN_ONCE);
    }
    ev_timer_stop(wh_loop, &t);
    ev_now_update(wh_loop);
    return handed >= want ? ev_now(wh_loop) - start : -1;
}

static void
send_n(int n, size_t len)
{
    static uint8_t out[FULL];

    for (int i = 0; i < n; i++) {
        assert_int_equal(send(client, out, len, 0), (ssize_t) len);
    }
}

/* n datagrams of len bytes, handed at once */
static void
handed_at_once(int n, size_t len)
{
    double t;

    handed = 0;
    send_n(n, len);
    t = wait_handed(n, 2);
    assert_true(t >= 0 && t < AT_ONCE);
}

/* n datagrams of len bytes, held, then handed together when the delay runs out */
static void
handed_after_delay(int n, size_t len)
{
    double t;

    handed = 0;
    send_n(n, len);
    assert_true(wait_handed(1, AT_ONCE) < 0);
    t = wait_handed(n, 3);
    assert_true(t >= DELAY - 2 * AT_ONCE && t < 3);
    assert_int_equal(handed, n);
}

/* A client that streams: each full datagram handed at once, alone. */
static void
stream_in(int count)
{
    for (int i = 0; i < count; i++) {
        handed_at_once(1, FULL);
    }
}

static void
open_listener(double delay)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    int buf = 4 << 20;

    if (sock != -1) {
        wh_udp_stop(ls);
        close(sock);
        close(client);
    }
    assert_true(nlisteners < 8);
    ls = &listeners[nlisteners++];
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    assert_true(sock >= 0);
    /* room for what a hold leaves queued (the listeners' own size) */
    if (setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) == -1) {
        setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    }
    assert_int_equal(bind(sock, (struct sockaddr *) &sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(sock, (struct sockaddr *) &sa, &len), 0);
    client = socket(AF_INET, SOCK_DGRAM, 0);
    assert_int_equal(connect(client, (struct sockaddr *) &sa, sizeof(sa)), 0);

    ls->addr.len = len;
    memcpy(&ls->addr.sa, &sa, len);
    snprintf(ls->addr_text, sizeof(ls->addr_text), "127.0.0.1:%d", ntohs(sa.sin_port));
    ls->module = &counter;
    ls->fd = sock;
    ls->fds = &ls->fd;
    ls->nfds = 1;
    ls->stats = &counters;
    ctx.loop = wh_loop;
    assert_int_equal(wh_udp_start(ls, &ctx), WH_OK);
    wh_udp_coalesce(ls, delay);
}

static int
setup(void **state)
{
    wh_event_init(ev_default_loop(0));
    return 0;
}

static void
test_streaming_client_is_read_once_per_delay(void **state)
{
    open_listener(DELAY);
    stream_in(4);
    /* held: 20 packets (24,000 bytes) handed together after the delay */
    handed_after_delay(20, FULL);
    /* that was a hold's worth (16 KiB or more): the next one is held too */
    handed_after_delay(1, FULL);
}

static void
test_pause_ends_the_hold_and_doubles_the_evidence(void **state)
{
    open_listener(DELAY);
    stream_in(4);
    handed_after_delay(1, FULL);       /* a pause */
    stream_in(7);                      /* the run asked is now 8 */
    handed_at_once(1, FULL);           /* the eighth */
    handed_after_delay(1, FULL);
}

static void
test_more_than_a_read_ends_the_hold(void **state)
{
    double t;

    open_listener(DELAY);
    stream_in(4);
    /* more than the 128 datagrams one read takes: the hold ends when it
     * finds them, and the rest is read at once, not a delay later */
    handed = 0;
    send_n(300, FULL);
    assert_true(wait_handed(1, AT_ONCE) < 0);
    t = wait_handed(300, 3);
    assert_true(t >= DELAY - 2 * AT_ONCE && t < DELAY + AT_ONCE);
    /* and it is not held: evidence starts again */
    handed_at_once(1, FULL);
}

static void
test_small_datagrams_are_never_held(void **state)
{
    open_listener(DELAY);
    for (int i = 0; i < 12; i++) {
        handed_at_once(1, 100);        /* acknowledgements, requests */
    }
    stream_in(3);
    handed_at_once(1, 100);            /* breaks the run */
    stream_in(3);
    handed_at_once(1, 100);            /* and again: never four in a row */
    handed_at_once(1, 100);
}

static void
test_zero_delay_holds_nothing(void **state)
{
    open_listener(0);
    stream_in(12);
    handed_at_once(20, FULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streaming_client_is_read_once_per_delay),
        cmocka_unit_test(test_pause_ends_the_hold_and_doubles_the_evidence),
        cmocka_unit_test(test_more_than_a_read_ends_the_hold),
        cmocka_unit_test(test_small_datagrams_are_never_held),
        cmocka_unit_test(test_zero_delay_holds_nothing),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}

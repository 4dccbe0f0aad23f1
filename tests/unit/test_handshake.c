/*
 * test_handshake.c -- the handshake pipeline on streams: the fuzz targets'
 * scripted stream, played so that every read of the greeting first answers
 * WH_AGAIN, and a transport whose own stage reads a four-byte greeting a
 * byte a round; then a socket stream that brings a PROXY header first.
 *
 * Checks: the stage is called again each time the stream keeps its
 * promise, ends once, and the relay (the built-in echo) takes the stream
 * exactly once, with the bytes after the greeting; a refused greeting, an
 * expired deadline and a PROXY listener over a stream with no socket are
 * each counted once by cause, close the stream and never reach the relay;
 * the PROXY stage waits through the socket stream and names the client.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../fuzz/fuzz_stream.h"
#include "wh_sock_stream.h"

#include <sys/socket.h>
#include <unistd.h>

#define GREETING "HELO"

/* the transport's own stage: GREETING, one byte a round at most */
static int stage_calls, stage_ends, stage_expired;
static int stage_stalls;        /* waits on nothing: a client gone silent */
static char stage_peer[64];

static int
greeting(wh_handshake_t *hs, int *cause)
{
    char b;
    ssize_t n;

    stage_calls++;
    wh_addr_format((struct sockaddr *) &hs->peer, hs->peerlen, stage_peer, sizeof(stage_peer));
    if (stage_stalls) return WH_AGAIN;
    while (hs->module_step < (int) strlen(GREETING)) {
        n = wh_stream_read(hs->top, &b, 1);
        if (n == WH_AGAIN) return WH_AGAIN;
        if (n != 1 || b != GREETING[hs->module_step]) {
            hs->top->err = "not a greeting";
            *cause = WH_CLOSE_BAD_INPUT;
            return WH_ERROR;
        }
        hs->module_step++;
    }
    return WH_OK;
}

static void
greeting_end(wh_handshake_t *hs, int expired)
{
    stage_ends++;
    stage_expired = expired;
}

static wh_module_t module = {
    .name = "greeting",
    .handshake = greeting,
    .handshake_end = greeting_end,
};

static wh_cycle_t cycle;
static wh_listener_t ls;
static wh_stats_counters_t counters;
static struct sockaddr_storage peer = { .ss_family = AF_UNIX };
static uint8_t played[64];
static wh_upstream_conf_t echo;

static int
setup(void **state)
{
    const char *err;

    memset(&counters, 0, sizeof(counters));
    memset(&ls, 0, sizeof(ls));
    cycle.policy = (wh_policy_t) { 60, 300, 1, 1 };
    module.handshake_timeout = 0;
    ls.tag = "t";
    ls.cycle = &cycle;
    ls.stats = &counters;
    ls.module = &module;
    assert_int_equal(wh_upstream_parse("echo", &echo, &err), WH_OK);
    ls.dest.upstream = &echo;
    stage_calls = stage_ends = stage_expired = stage_stalls = 0;
    stage_peer[0] = '\0';
    wh_fuzz_written = (size_t) -1;      /* until a stream is destroyed */
    return 0;
}

static int
teardown(void **state)
{
    wh_upstream_free(&echo);
    return 0;
}

/* A client sending in, the first four reads a byte each after a WH_AGAIN
 * (fuzz_stream.h's read plan), then the rest at once, then its end. */
static wh_stream_t *
client(const char *in)
{
    size_t i, n = strlen(in);

    played[0] = 4;
    for (i = 0; i < 4; i++) {
        played[1 + 2 * i] = 1;
        played[2 + 2 * i] = 0x80;
    }
    memcpy(played + 9, in, n);
    return &wh_fuzz_stream(played, 9 + n)->s;
}

static void
start(wh_stream_t *s)
{
    wh_live_t live;

    wh_live_open(&live, &ls, WH_LIVE_STREAM);
    wh_handshake_start(&live, s, (struct sockaddr *) &peer, sizeof(sa_family_t));
}

static void
run_until(int (*done)(void), int ms)
{
    while (ms-- > 0 && !done()) {
        ev_run(wh_loop, EVRUN_NOWAIT);
        usleep(1000);
    }
}

static int
destroyed(void)
{
    return wh_fuzz_written != (size_t) -1;
}

/* Relays still open: each closed now counts once as shutdown. */
static uint64_t
relays_open(void)
{
    uint64_t before = counters.closed[WH_CLOSE_SHUTDOWN];

    wh_relay_close_all(WH_CLOSE_SHUTDOWN);
    return counters.closed[WH_CLOSE_SHUTDOWN] - before;
}

/* The stream closed, its stage ended once, it was counted once (by cause),
 * and no relay is left over. */
static void
assert_ended_once(int cause)
{
    uint64_t closed = 0;
    int i;

    for (i = 0; i < WH_CLOSE_NCAUSES; i++) closed += counters.closed[i];
    assert_true(destroyed());
    assert_int_equal(stage_ends, 1);
    assert_int_equal(counters.closed[cause], 1);
    assert_int_equal(closed, 1);
    assert_int_equal(relays_open(), 0);
    assert_int_equal(counters.active, 0);
    assert_int_equal(wh_live_count(), 0);
}

static void
test_stage_rounds_then_relay_once(void **state)
{
    start(client(GREETING "payload"));
    assert_int_equal(stage_calls, 1);
    run_until(destroyed, 500);

    /* the relay had what came after the greeting, once, then the end */
    assert_ended_once(WH_CLOSE_DONE);
    assert_int_equal(stage_calls, (int) strlen(GREETING) + 1);
    assert_int_equal(stage_expired, 0);
    assert_int_equal(wh_fuzz_written, strlen("payload"));
}

static void
test_refused_stage_counted_once(void **state)
{
    start(client("HELX" "payload"));
    run_until(destroyed, 500);

    assert_ended_once(WH_CLOSE_BAD_INPUT);
    assert_int_equal(stage_calls, 4 + 1);
    assert_int_equal(stage_expired, 0);
    assert_int_equal(wh_fuzz_written, 0);
}

static void
test_deadline_counted_once(void **state)
{
    module.handshake_timeout = 0.02;
    stage_stalls = 1;
    start(client(GREETING));
    run_until(destroyed, 500);

    assert_ended_once(WH_CLOSE_TIMEOUT);
    assert_int_equal(stage_calls, 1);
    assert_int_equal(stage_expired, 1);
}

static void
test_proxy_without_socket_refused(void **state)
{
    ls.proxy_protocol = 1;
    start(client("PROXY UNKNOWN\r\n" GREETING));

    assert_true(destroyed());
    assert_int_equal(stage_calls, 0);
    assert_int_equal(counters.closed[WH_CLOSE_ERROR], 1);
    assert_int_equal(counters.active, 0);
    assert_int_equal(wh_live_count(), 0);
}

static void
test_proxy_on_socket_stream(void **state)
{
    const char *first = "PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\nHE";
    const char *rest = "LOpayload";
    char buf[64];
    size_t got = 0;
    ssize_t n;
    int fds[2], i;

    ls.proxy_protocol = 1;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    start(wh_sock_stream_create(fds[0], 0));
    ev_run(wh_loop, EVRUN_NOWAIT);
    assert_int_equal(stage_calls, 0);       /* waiting for the header */

    assert_int_equal(write(fds[1], first, strlen(first)), (ssize_t) strlen(first));
    for (i = 0; i < 50; i++) ev_run(wh_loop, EVRUN_NOWAIT);
    assert_int_equal(stage_calls, 1);       /* after the header: "HE" and a wait */
    assert_string_equal(stage_peer, "192.0.2.1:1234");

    assert_int_equal(write(fds[1], rest, strlen(rest)), (ssize_t) strlen(rest));
    for (i = 0; i < 500 && got < strlen("payload"); i++) {
        usleep(1000);
        ev_run(wh_loop, EVRUN_NOWAIT);
        n = read(fds[1], buf + got, sizeof(buf) - got);
        if (n > 0) got += n;
    }
    assert_int_equal(got, strlen("payload"));
    assert_memory_equal(buf, "payload", got);
    assert_int_equal(stage_ends, 1);
    assert_int_equal(relays_open(), 1);
    assert_int_equal(counters.active, 0);
    assert_int_equal(wh_live_count(), 0);
    close(fds[1]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stage_rounds_then_relay_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_stage_counted_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_counted_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proxy_without_socket_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proxy_on_socket_stream, setup, teardown),
    };

    wh_fuzz_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}

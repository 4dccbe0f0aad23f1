/*
 * test_relay.c -- the relay's buffer accounting and back-pressure, with a
 * scripted client stream and the built-in echo upstream (no sockets).
 *
 * Checks: a client that never reads stops the relay from reading it after a
 * bounded number of bytes (a read's worth stashed per direction, a big
 * read only after a chunk went on whole, plus the echo's buffer); every
 * byte comes back in order once the client reads; an idle
 * relay holds no buffers (heap back to its size before the transfer); the
 * counters add up; end of stream closes the relay as "done". What goes
 * to the upstream first: the PROXY header (xver), then the bytes a
 * handshake read ahead (replay), then the client's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_event.h"
#include "wh_log.h"
#include "wh_relay.h"

#include <arpa/inet.h>
#include <malloc.h>

#define CHUNK 65536
#define BIG (4 * CHUNK)         /* a read while the destination keeps up */

typedef struct {
    wh_stream_t s;
    uint8_t *in;            /* what the client sends */
    size_t in_len, in_pos;
    int in_eof;             /* after in_len, read() says end of stream */
    size_t asked;           /* the most one read asked for */
    uint8_t *out;           /* what the client received */
    size_t out_len, out_room;
    int want;
    int destroyed;
} script_t;

static ssize_t
script_read(wh_stream_t *s, void *buf, size_t size)
{
    script_t *c = (script_t *) s;
    size_t n = wh_min(size, c->in_len - c->in_pos);

    c->asked = wh_max(c->asked, size);
    if (n == 0) {
        if (c->in_eof) return 0;
        c->want |= WH_EV_READ;
        return WH_AGAIN;
    }
    memcpy(buf, c->in + c->in_pos, n);
    c->in_pos += n;
    return n;
}

static ssize_t
script_write(wh_stream_t *s, const void *buf, size_t size)
{
    script_t *c = (script_t *) s;
    size_t n = wh_min(size, c->out_room);

    if (n == 0) {
        c->want |= WH_EV_WRITE;
        return WH_AGAIN;
    }
    memcpy(c->out + c->out_len, buf, n);
    c->out_len += n;
    c->out_room -= n;
    if (n < size) c->want |= WH_EV_WRITE;
    return n;
}

static int script_shutdown(wh_stream_t *s) { return WH_OK; }
static void script_wait(wh_stream_t *s, int ev) { ((script_t *) s)->want |= ev; }
static void script_destroy(wh_stream_t *s) { ((script_t *) s)->destroyed = 1; }

static const wh_stream_ops_t script_ops = {
    .name = "script", .read = script_read, .write = script_write,
    .shutdown_write = script_shutdown, .wait = script_wait, .destroy = script_destroy,
};

static wh_cycle_t cycle;
static wh_listener_t ls;
static wh_stats_counters_t counters;
static wh_upstream_conf_t echo;

static void
spin(script_t *c)
{
    int i, ev;

    for (i = 0; i < 200; i++) {
        ev_run(wh_loop, EVRUN_NOWAIT);
        ev = c->want & ((c->in_pos < c->in_len || c->in_eof ? WH_EV_READ : 0)
                        | (c->out_room ? WH_EV_WRITE : 0));
        if (ev) {
            c->want &= ~ev;
            wh_stream_notify(&c->s, ev);
        }
    }
}

static int
setup(void **state)
{
    const char *err;

    memset(&counters, 0, sizeof(counters));
    cycle.policy = (wh_policy_t) { 60, 300, 1, 1 };
    ls.tag = "t";
    ls.cycle = &cycle;
    ls.stats = &counters;
    assert_int_equal(wh_upstream_parse("echo", &echo, &err), WH_OK);
    ls.dest.upstream = &echo;
    ls.dest.xver = 0;
    return 0;
}

static int
teardown(void **state)
{
    wh_upstream_free(&echo);
    return 0;
}

static void
test_backpressure_and_no_idle_buffers(void **state)
{
    size_t total = 4 * 1024 * 1024, before;
    script_t *c = calloc(1, sizeof(*c));
    size_t i;
    struct sockaddr_storage peer = { .ss_family = AF_UNIX };
    wh_live_t live;

    c->s.ops = &script_ops;
    c->in = malloc(total);
    c->out = malloc(total);
    for (i = 0; i < total; i++) c->in[i] = (uint8_t) (i * 7 + (i >> 13));
    c->in_len = total;

    before = mallinfo2().uordblks;
    wh_live_open(&live, &ls, WH_LIVE_STREAM);
    wh_relay_start(&live, &ls.dest, &c->s, (struct sockaddr *) &peer, sizeof(sa_family_t),
                   NULL, 0, NULL);
    spin(c);

    /* the client never reads: the relay stops taking its bytes, once the
     * echo holds a chunk, the down stash the chunk the client did not
     * take, and the up stash what is left of a big read (the first chunk
     * went on whole) */
    assert_true(c->in_pos > 0);
    assert_true(c->in_pos <= 2 * CHUNK + BIG);
    assert_int_equal(c->asked, BIG);
    assert_int_equal(counters.bytes_up, c->in_pos);

    /* the client reads a little at a time: everything comes back in order */
    while (c->out_len < total) {
        size_t was = c->out_len;
        c->out_room = 100000;
        spin(c);
        assert_true(c->out_len > was);
        assert_true(c->in_pos - c->out_len <= 2 * CHUNK + BIG + 100000);
    }
    assert_memory_equal(c->in, c->out, total);
    assert_int_equal(counters.bytes_up, total);
    assert_int_equal(counters.bytes_down, total);

    /* idle: no stash, no echo buffer left */
    c->out_room = 0;
    spin(c);
    assert_true(mallinfo2().uordblks - before < 2048);
    assert_int_equal(counters.active, 1);

    /* the client ends: the echo ends, the relay closes as done */
    c->in_eof = 1;
    c->out_room = 1;
    spin(c);
    assert_true(c->destroyed);
    assert_int_equal(counters.active, 0);
    assert_int_equal(counters.closed[WH_CLOSE_DONE], 1);
    assert_int_equal(wh_live_count(), 0);
    free(c->in);
    free(c->out);
    free(c);
}

/* The echo sends back what the upstream got, in order. */
static void
test_proxy_header_and_replay_first(void **state)
{
    static const char expect[] = "PROXY TCP4 203.0.113.7 0.0.0.0 1234 0\r\nearly, late";
    script_t *c = calloc(1, sizeof(*c));
    struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(1234) };
    wh_live_t live;

    inet_pton(AF_INET, "203.0.113.7", &peer.sin_addr);
    c->s.ops = &script_ops;
    c->in = (uint8_t *) strdup(", late");
    c->in_len = 6;
    c->in_eof = 1;
    c->out = malloc(256);
    c->out_room = 256;
    ls.dest.xver = 1;       /* no socket under the script: the listener's address, none */

    wh_live_open(&live, &ls, WH_LIVE_STREAM);
    wh_relay_start(&live, &ls.dest, &c->s, (struct sockaddr *) &peer, sizeof(peer), "early", 5,
                   NULL);
    spin(c);
    assert_int_equal(c->out_len, sizeof(expect) - 1);
    assert_memory_equal(c->out, expect, sizeof(expect) - 1);
    /* the replayed bytes are the client's; the header is not */
    assert_int_equal(counters.bytes_up, 11);
    assert_true(c->destroyed);
    assert_int_equal(counters.closed[WH_CLOSE_DONE], 1);
    free(c->in);
    free(c->out);
    free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backpressure_and_no_idle_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proxy_header_and_replay_first, setup, teardown),
    };

    wh_log_level = WH_LOG_EMERG;
    wh_event_init(ev_loop_new(EVFLAG_AUTO));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_mux_stream.c -- a multiplexed stream's receive coalescing
 * (src/stream/wh_mux_stream.c with src/stream/wh_coalesce.c): what the
 * relay hears of a client's bytes, with a carrier that only counts and a
 * real libev loop.
 *
 * The policy's scenarios (stream_wait.h) with arrivals of 4 KiB, and two
 * of this holder's own: the end is never held, and a relay that reads on
 * its own while a hold runs does not make it a pause.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_event.h"
#include "wh_mux_stream.h"

#define BATCH   WH_COALESCE_BYTES
#include "stream_wait.h"

#define PACKET  4096        /* what one arrival of a streaming client brings */

typedef struct {
    wh_mux_stream_t m;
    size_t consumed;
} carrier_t;

static carrier_t *c;

static ssize_t
fake_write(wh_stream_t *st, const void *p, size_t n)
{
    return (ssize_t) n;
}

static void
fake_consumed(wh_mux_stream_t *m, size_t n)
{
    wh_container_of(m, carrier_t, m)->consumed += n;
}

static int
fake_writable(wh_mux_stream_t *m)
{
    return 1;
}

static void
fake_nothing(wh_mux_stream_t *m)
{
}

static void
fake_free(wh_mux_stream_t *m)
{
    free(wh_container_of(m, carrier_t, m));
}

static const wh_mux_ops_t fake_ops = WH_MUX_OPS("fake", fake_write, NULL, fake_consumed, fake_writable,
                                                fake_nothing, fake_nothing, fake_free);

static void
arrive(size_t n, int fin)
{
    static uint8_t in[128 * 1024];

    assert_true(n <= sizeof(in));
    assert_int_equal(wh_mux_received(&c->m, in, n, fin), WH_OK);
}

static void
put(size_t n)
{
    arrive(n, 0);
}

static void
open_stream(double delay)
{
    c = calloc(1, sizeof(*c));
    assert_non_null(c);
    wh_mux_init(&c->m, &fake_ops, WH_MUX_RELAY);
    wh_mux_coalesce(&c->m, delay);
    relay_takes(&c->m.ps.s);
}

static int
teardown(void **state)
{
    wh_mux_carrier_gone(&c->m, NULL);
    wh_stream_close(s);             /* the relay's reference, the last */
    s = NULL;
    c = NULL;
    return 0;
}

static void
stream_in(int count)
{
    for (int i = 0; i < count; i++) read_at_once(PACKET);
}

static void
test_end_is_told_at_once(void **state)
{
    double t;

    open_stream(DELAY);
    stream_in(4);
    arrive(100, 1);
    t = wait_readable(2);
    assert_true(t >= 0 && t < AT_ONCE);
    got = 0;
    drain();
    assert_int_equal(got, 100);
    assert_true(eof);
    assert_int_equal(c->consumed, 4 * PACKET + 100);   /* the window opened as read */
}

/* Regression: the relay read a held stream on its own (its upstream had
 * room again); the hold's timer then ran out on an empty buffer, which
 * looked like a pause and ended the holding. */
static void
test_read_during_a_hold_is_no_pause(void **state)
{
    open_stream(DELAY);
    stream_in(4);
    arrive(100, 0);
    assert_true(wait_readable(AT_ONCE) < 0);
    got = 0;
    drain();
    assert_int_equal(got, 100);
    assert_true(wait_readable(DELAY + AT_ONCE) < 0);   /* nothing to tell */
    read_after_delay(1000);                            /* still held */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        STREAM_WAIT_TESTS(teardown),
        cmocka_unit_test_setup_teardown(test_end_is_told_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_during_a_hold_is_no_pause, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

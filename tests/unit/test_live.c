/*
 * test_live.c -- live handles (wh_live.h): a draining worker's end comes
 * exactly when the last live thing closes, and the counters a handle keeps
 * add up whichever way it goes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_live.h"

static wh_listener_t ls;
static wh_stats_counters_t counters;
static int emptied;

static void
on_empty(void)
{
    emptied++;
}

static int
setup(void **state)
{
    memset(&counters, 0, sizeof(counters));
    memset(&ls, 0, sizeof(ls));
    ls.stats = &counters;
    emptied = 0;
    wh_live_on_empty(on_empty);
    return 0;
}

static void
test_empty_exactly_at_the_last_close(void **state)
{
    wh_live_t stream, carrier, linger;

    wh_live_open(&stream, &ls, WH_LIVE_STREAM);
    wh_live_open(&carrier, &ls, WH_LIVE_CARRIER);
    wh_live_open(&linger, &ls, WH_LIVE_LINGER);
    assert_int_equal(wh_live_count(), 3);

    wh_live_close(&carrier, 0);
    wh_live_close(&stream, WH_CLOSE_DONE);
    assert_int_equal(emptied, 0);
    /* a second close of the same handle changes nothing */
    wh_live_close(&stream, WH_CLOSE_ERROR);
    wh_live_close(&carrier, 0);
    assert_int_equal(wh_live_count(), 1);
    assert_int_equal(emptied, 0);

    wh_live_close(&linger, 0);
    assert_int_equal(wh_live_count(), 0);
    assert_int_equal(emptied, 1);
    wh_live_close(&linger, 0);
    assert_int_equal(emptied, 1);
}

static void
test_stream_counters(void **state)
{
    wh_live_t a, b;

    wh_live_open(&a, &ls, WH_LIVE_STREAM);
    wh_live_open(&b, &ls, WH_LIVE_STREAM);
    assert_int_equal(counters.accepted, 2);
    assert_int_equal(counters.active, 2);
    wh_live_close(&a, WH_CLOSE_TIMEOUT);
    wh_live_close(&b, WH_CLOSE_DONE);
    assert_int_equal(counters.accepted, 2);
    assert_int_equal(counters.active, 0);
    assert_int_equal(counters.closed[WH_CLOSE_TIMEOUT], 1);
    assert_int_equal(counters.closed[WH_CLOSE_DONE], 1);
    assert_int_equal(emptied, 1);
}

/* A stream connection that carries streams leaves the stream counters as
 * if it had never been one, and is still one live thing. */
static void
test_carry(void **state)
{
    wh_live_t conn, moved;

    wh_live_open(&conn, &ls, WH_LIVE_STREAM);
    wh_live_move(&moved, &conn);
    wh_live_close(&conn, WH_CLOSE_ERROR);           /* moved away: nothing */
    assert_int_equal(wh_live_count(), 1);
    wh_live_carry(&moved);
    assert_int_equal(counters.accepted, 0);
    assert_int_equal(counters.active, 0);
    assert_int_equal(counters.connections, 1);
    assert_int_equal(counters.connections_active, 1);
    assert_int_equal(wh_live_count(), 1);
    wh_live_close(&moved, WH_CLOSE_ERROR);
    assert_int_equal(counters.connections_active, 0);
    assert_int_equal(counters.closed[WH_CLOSE_ERROR], 0);
    assert_int_equal(emptied, 1);
}

static void
test_refused(void **state)
{
    wh_live_t held;

    wh_live_open(&held, &ls, WH_LIVE_LINGER);
    wh_live_refused(&ls, WH_CLOSE_LIMIT);
    assert_int_equal(counters.accepted, 1);
    assert_int_equal(counters.active, 0);
    assert_int_equal(counters.closed[WH_CLOSE_LIMIT], 1);
    assert_int_equal(emptied, 0);
    wh_live_close(&held, 0);
    assert_int_equal(emptied, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_empty_exactly_at_the_last_close, setup),
        cmocka_unit_test_setup(test_stream_counters, setup),
        cmocka_unit_test_setup(test_carry, setup),
        cmocka_unit_test_setup(test_refused, setup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

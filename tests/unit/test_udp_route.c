/*
 * test_udp_route.c -- the shared session-owner table (src/udp/wh_udp_route.c)
 * that routes UDP sessions to their worker across a reload: claim, update,
 * release, a dead worker forgotten, deleted slots reused without breaking
 * the probe chains behind them, and the probe bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_udp_route.h"

#define SIZE 64

static wh_udp_route_t slots[SIZE];
static wh_udp_routes_t table = { slots, SIZE - 1, 12345 };

static int
setup(void **state)
{
    memset(slots, 0, sizeof(slots));
    return 0;
}

static wh_sockaddr_t
ip(const char *text, int port)
{
    wh_sockaddr_t a;

    assert_int_equal(wh_addr_parse_ip(text, port, &a), WH_OK);
    return a;
}

static void
test_own_and_release(void **state)
{
    wh_sockaddr_t local = ip("127.0.0.1", 443), p1 = ip("10.0.0.1", 5000), p2 = ip("10.0.0.1", 5001);
    uint64_t k1 = wh_udp_route_key(&table, &local, &p1), k2 = wh_udp_route_key(&table, &local, &p2);

    assert_true(k1 > 1 && k2 > 1 && k1 != k2);
    assert_int_equal(wh_udp_route_get(&table, k1), 0);
    assert_int_equal(wh_udp_route_set(&table, k1, 7), WH_OK);
    assert_int_equal(wh_udp_route_set(&table, k2, 8), WH_OK);
    assert_int_equal(wh_udp_route_get(&table, k1), 7);
    assert_int_equal(wh_udp_route_get(&table, k2), 8);

    /* only the owner releases */
    wh_udp_route_del(&table, k1, 8);
    assert_int_equal(wh_udp_route_get(&table, k1), 7);
    wh_udp_route_del(&table, k1, 7);
    assert_int_equal(wh_udp_route_get(&table, k1), 0);
    assert_int_equal(wh_udp_route_get(&table, k2), 8);

    /* a new owner of the same peer (a new session after the old ended) */
    assert_int_equal(wh_udp_route_set(&table, k2, 9), WH_OK);
    assert_int_equal(wh_udp_route_get(&table, k2), 9);
}

static void
test_listener_address_is_part_of_the_key(void **state)
{
    wh_sockaddr_t l1 = ip("127.0.0.1", 443), l2 = ip("127.0.0.1", 444), p = ip("::1", 9);

    assert_true(wh_udp_route_key(&table, &l1, &p) != wh_udp_route_key(&table, &l2, &p));
}

static void
test_collisions_and_deleted_slots(void **state)
{
    /* keys that all hash to slot 5: a probe chain */
    uint64_t a = 5 + 1 * SIZE, b = 5 + 2 * SIZE, c = 5 + 3 * SIZE;

    assert_int_equal(wh_udp_route_set(&table, a, 1), WH_OK);
    assert_int_equal(wh_udp_route_set(&table, b, 2), WH_OK);
    assert_int_equal(wh_udp_route_set(&table, c, 3), WH_OK);
    wh_udp_route_del(&table, b, 2);
    /* c is still found past b's deleted slot */
    assert_int_equal(wh_udp_route_get(&table, c), 3);
    /* and the deleted slot is reused */
    assert_int_equal(wh_udp_route_set(&table, b + SIZE * 10, 4), WH_OK);
    assert_int_equal(slots[6].key, b + SIZE * 10);
    assert_int_equal(wh_udp_route_get(&table, a), 1);
}

static void
test_forget_a_dead_worker(void **state)
{
    uint64_t k;

    for (k = 2; k < 40; k++) {
        assert_int_equal(wh_udp_route_set(&table, k, k % 2 ? 11 : 12), WH_OK);
    }
    wh_udp_route_forget(&table, 11);
    for (k = 2; k < 40; k++) {
        assert_int_equal(wh_udp_route_get(&table, k), k % 2 ? 0 : 12);
    }
}

static void
test_full_table_refuses(void **state)
{
    uint64_t k;

    for (k = 0; k < SIZE; k++) {
        assert_int_equal(wh_udp_route_set(&table, 2 + k, 1), WH_OK);
    }
    assert_int_equal(wh_udp_route_set(&table, 1000, 1), WH_ERROR);
    assert_int_equal(wh_udp_route_get(&table, 1000), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_own_and_release, setup),
        cmocka_unit_test_setup(test_listener_address_is_part_of_the_key, setup),
        cmocka_unit_test_setup(test_collisions_and_deleted_slots, setup),
        cmocka_unit_test_setup(test_forget_a_dead_worker, setup),
        cmocka_unit_test_setup(test_full_table_refuses, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

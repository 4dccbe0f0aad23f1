/*
 * test_limit.c -- the connection limits (src/core/wh_limit.c) on a real
 * statistics segment, with two worker slots standing for two workers:
 * worker_connections, maxConnections and maxConnectionsPerAddress summed
 * over the slots, an IPv6 client counted by its /64, a PROXY address taking
 * over the count, and a retired slot's counts gone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_event.h"
#include "wh_limit.h"
#include "wh_log.h"

#include <unistd.h>

static wh_cycle_t cycle;
static wh_listener_t ls;
static int slot_a, slot_b;

static int
setup(void **state)
{
    wh_event_init(ev_default_loop(0));
    assert_int_equal(wh_stats_create(getpid()), WH_OK);
    slot_a = wh_stats_slot_alloc();
    slot_b = wh_stats_slot_alloc();
    memset(&cycle, 0, sizeof(cycle));
    memset(&ls, 0, sizeof(ls));
    cycle.worker_connections = 1000;
    cycle.listeners = &ls;
    cycle.nlisteners = 1;
    ls.tag = "t";
    ls.cycle = &cycle;
    ls.stats_index = wh_stats_listener("t");
    ls.stats = wh_stats_counters(slot_a, ls.stats_index);
    wh_limit_init(&cycle, slot_a);
    return 0;
}

static int
teardown(void **state)
{
    wh_stats_destroy();
    return 0;
}

static struct sockaddr *
ip(const char *text)
{
    static wh_sockaddr_t a[8];
    static int i;
    wh_sockaddr_t *p = &a[i++ % 8];

    assert_int_equal(wh_addr_parse_ip(text, 1234, p), WH_OK);
    return (struct sockaddr *) &p->sa;
}

/* Admits as the worker of slot (its counters and its part of the sketch). */
static int
admit_in(int slot, const char *addr, wh_conn_slot_t *s)
{
    ls.stats = wh_stats_counters(slot, ls.stats_index);
    wh_limit_init(&cycle, slot);
    return wh_limit_admit(&ls, ip(addr), s);
}

static void
test_per_address_over_two_workers(void **state)
{
    wh_conn_slot_t s[6];

    ls.max_conns_per_address = 2;
    assert_int_equal(admit_in(slot_a, "192.0.2.1", &s[0]), WH_OK);
    assert_int_equal(admit_in(slot_b, "192.0.2.1", &s[1]), WH_OK);
    /* the third from either worker is over */
    assert_int_equal(admit_in(slot_a, "192.0.2.1", &s[2]), WH_DECLINED);
    assert_false(s[2].held);
    assert_int_equal(admit_in(slot_b, "192.0.2.1", &s[2]), WH_DECLINED);
    /* another address is not */
    assert_int_equal(admit_in(slot_b, "192.0.2.2", &s[3]), WH_OK);
    assert_int_equal(wh_stats_clients(ls.stats_index), 3);

    /* a place given back (by the worker that holds it) is free again */
    wh_limit_init(&cycle, slot_a);
    wh_limit_release(&ls, &s[0]);
    assert_false(s[0].held);
    wh_limit_release(&ls, &s[0]);                    /* twice is harmless */
    assert_int_equal(admit_in(slot_b, "192.0.2.1", &s[0]), WH_OK);
    assert_int_equal(wh_stats_clients(ls.stats_index), 3);

    wh_limit_init(&cycle, slot_b);
    wh_limit_release(&ls, &s[0]);
    wh_limit_release(&ls, &s[1]);
    wh_limit_release(&ls, &s[3]);
    assert_int_equal(wh_stats_clients(ls.stats_index), 0);
    ls.max_conns_per_address = 0;
}

static void
test_ipv6_by_prefix(void **state)
{
    wh_conn_slot_t s[3];

    ls.max_conns_per_address = 2;
    assert_int_equal(admit_in(slot_a, "2001:db8:1:2::1", &s[0]), WH_OK);
    assert_int_equal(admit_in(slot_a, "2001:db8:1:2:ffff::9", &s[1]), WH_OK);
    assert_int_equal(admit_in(slot_a, "2001:db8:1:2::77", &s[2]), WH_DECLINED);
    assert_int_equal(admit_in(slot_a, "2001:db8:1:3::1", &s[2]), WH_OK);
    wh_limit_release(&ls, &s[0]);
    wh_limit_release(&ls, &s[1]);
    wh_limit_release(&ls, &s[2]);
    ls.max_conns_per_address = 0;
}

static void
test_per_listener(void **state)
{
    wh_conn_slot_t s[3];

    ls.max_conns = 2;
    assert_int_equal(admit_in(slot_a, "198.51.100.1", &s[0]), WH_OK);
    assert_int_equal(admit_in(slot_b, "198.51.100.2", &s[1]), WH_OK);
    assert_int_equal(admit_in(slot_a, "198.51.100.3", &s[2]), WH_DECLINED);
    assert_int_equal(wh_stats_clients(ls.stats_index), 2);
    wh_limit_init(&cycle, slot_a);
    wh_limit_release(&ls, &s[0]);
    wh_limit_init(&cycle, slot_b);
    wh_limit_release(&ls, &s[1]);
    ls.max_conns = 0;
}

static void
test_readdress(void **state)
{
    wh_conn_slot_t s[2];

    ls.max_conns_per_address = 1;
    assert_int_equal(admit_in(slot_a, "127.0.0.1", &s[0]), WH_OK);
    assert_int_equal(admit_in(slot_a, "127.0.0.1", &s[1]), WH_DECLINED);
    /* behind a proxy: the first is really 203.0.113.5, so 127.0.0.1 is free */
    assert_int_equal(wh_limit_readdress(&ls, &s[0], ip("203.0.113.5")), WH_OK);
    assert_int_equal(admit_in(slot_a, "127.0.0.1", &s[1]), WH_OK);
    assert_int_equal(wh_limit_readdress(&ls, &s[1], ip("203.0.113.5")), WH_DECLINED);
    assert_false(s[1].held);
    assert_int_equal(wh_stats_clients(ls.stats_index), 1);
    wh_limit_release(&ls, &s[0]);
    assert_int_equal(wh_stats_clients(ls.stats_index), 0);
    ls.max_conns_per_address = 0;
}

static void
test_worker_connections(void **state)
{
    wh_conn_slot_t s[3];

    cycle.worker_connections = 2;
    assert_int_equal(admit_in(slot_a, "192.0.2.9", &s[0]), WH_OK);
    assert_false(wh_limit_full());
    assert_int_equal(wh_limit_admit(&ls, ip("192.0.2.9"), &s[1]), WH_OK);
    assert_true(wh_limit_full());
    assert_int_equal(wh_limit_admit(&ls, ip("192.0.2.9"), &s[2]), WH_AGAIN);
    assert_int_equal(ls.stats->paused, 1);
    wh_limit_release(&ls, &s[0]);
    assert_false(wh_limit_full());
    assert_int_equal(wh_clients, 1);
    wh_limit_release(&ls, &s[1]);
    cycle.worker_connections = 1000;
}

static void
test_retired_worker_counts_vanish(void **state)
{
    wh_conn_slot_t s[2];

    ls.max_conns_per_address = 1;
    ls.max_conns = 1;
    assert_int_equal(admit_in(slot_b, "192.0.2.50", &s[0]), WH_OK);
    assert_int_equal(admit_in(slot_a, "192.0.2.50", &s[1]), WH_DECLINED);
    wh_stats_slot_retire(slot_b);               /* its worker died */
    assert_int_equal(admit_in(slot_a, "192.0.2.50", &s[1]), WH_OK);
    wh_limit_release(&ls, &s[1]);
    slot_b = wh_stats_slot_alloc();
    ls.max_conns_per_address = 0;
    ls.max_conns = 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_address_over_two_workers),
        cmocka_unit_test(test_ipv6_by_prefix),
        cmocka_unit_test(test_per_listener),
        cmocka_unit_test(test_readdress),
        cmocka_unit_test(test_worker_connections),
        cmocka_unit_test(test_retired_worker_counts_vanish),
    };

    wh_log_level = WH_LOG_ERROR;
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * test_conf.c -- configuration errors: every kind is refused with the
 * message and the FILE:LINE of the offending setting, and good files load
 * with V2Ray's defaults.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_cycle.h"
#include "wh_log.h"

#include "conf_load.h"

#define L(tail) "listeners = ( { tag = \"a\"; listen = \"127.0.0.1\"; port = 1000; " \
                "upstream = \"echo\"; " tail " } );\n"

static void
test_syntax(void **state)
{
    refused("user = \"nobody\";\nworker_processes = ;\n", 2, "syntax error");
    refused("listeners = ( { tag = \"a\"; \n", 2, "syntax error");
}

static void
test_unknown_names(void **state)
{
    refused("\n\nfoo = 1;\n", 3, "unknown directive \"foo\"");
    refused("listeners = ( {\n tag = \"a\";\n bogus = 1; } );\n", 3, "unknown directive \"bogus\"");
    refused(L("streamSettings = {\n tcpSettings = {\n nope = true; }; };"), 3,
            "unknown directive \"nope\"");
    refused("policy = {\n idle = 3; };\n", 2, "unknown directive \"idle\"");
    refused(L("streamSettings = { sockopt = {\n tos = 1; }; };"), 2, "unknown directive \"tos\"");
}

static void
test_types_and_ranges(void **state)
{
    refused("listeners = ( { tag = \"a\"; listen = \"127.0.0.1\";\n port = \"80\"; upstream = \"echo\"; } );",
            2, "\"port\" must be an integer");
    refused("listeners = ( { tag = \"a\"; listen = \"127.0.0.1\";\n port = 0; upstream = \"echo\"; } );",
            2, "\"port\" must be 1..65535");
    refused("listeners = ( { tag = \"a\"; listen = \"127.0.0.1\";\n port = 70000; upstream = \"echo\"; } );",
            2, "\"port\" must be 1..65535");
    refused("\nworker_processes = 0;\n", 2, "\"worker_processes\" must be 1..64");
    refused("worker_processes = \"many\";\n", 1, "must be a number or \"auto\"");
    refused("log_level = \"loud\";\n", 1, "\"log_level\" must be debug");
    refused("policy = {\n connIdle = -1; };\n", 2, "\"connIdle\" must be");
    refused("daemon = 1;\n", 1, "\"daemon\" must be true or false");
    refused("shutdown_timeout = \"x\";\n", 1, "must be a number of seconds");
    refused("policy = 3;\n", 1, "\"policy\" must be a group");
    refused("user = \"no-such-user-here\";\n", 1, "unknown user");
    refused("stats = { listen = \"localhost\"; };\n", 1, "is not an IP address");
}

static void
test_listeners(void **state)
{
    refused("listeners = { };\n", 1, "\"listeners\" must be a list");
    refused("listeners = ( {\n listen = \"127.0.0.1\"; port = 1; upstream = \"echo\"; } );\n",
            1, "has no \"tag\"");
    refused("listeners = ( { tag = \"a\"; listen = \"127.0.0.1\"; port = 1; upstream = \"echo\"; },\n"
            "{ tag = \"a\"; listen = \"127.0.0.1\"; port = 2; upstream = \"echo\"; } );\n",
            2, "duplicate tag \"a\"");
    refused("listeners = ( { tag = \"a\"; listen = \"127.0.0.1\"; port = 1; upstream = \"echo\"; },\n"
            "{ tag = \"b\";\n listen = \"127.0.0.1\"; port = 1; upstream = \"echo\"; } );\n",
            3, "duplicate listen address 127.0.0.1:1");
    refused("listeners = ( { tag = \"a b\"; listen = \"127.0.0.1\"; port = 1; upstream = \"echo\"; } );\n",
            1, "\"tag\" must be");
    refused("listeners = ( { tag = \"a\";\n listen = \"1.2.3\"; port = 1; upstream = \"echo\"; } );\n",
            2, "is not an IP address");
    refused("listeners = ( { tag = \"a\"; listen = \"127.0.0.1\"; upstream = \"echo\"; } );\n",
            1, "has no \"port\"");
    refused("listeners = ( { tag = \"a\"; listen = \"127.0.0.1\"; port = 1; } );\n",
            1, "has no \"upstream\"");
    refused("listeners = ( { tag = \"a\"; listen = \"127.0.0.1\"; port = 1;\n upstream = \"nohost\"; } );\n",
            2, "has no port");
    refused("listeners = ( { tag = \"a\"; listen = \"127.0.0.1\"; port = 1;\n upstream = \"h:99999\"; } );\n",
            2, "has an invalid port");
    refused("listeners = ( { tag = \"a\"; listen = \"127.0.0.1\"; port = 1;\n upstream = \"::1:80\"; } );\n",
            2, "needs [brackets]");
    refused(L("streamSettings = {\n network = \"carrier-pigeon\"; };"), 2,
            "unknown network \"carrier-pigeon\"");
#ifndef WH_HAVE_MODULE_KCP
    refused(L("streamSettings = {\n network = \"kcp\"; };"), 2, "is not built into this wharf");
#endif
#ifndef WH_HAVE_MODULE_QUIC
    refused(L("streamSettings = {\n network = \"quic\"; };"), 2, "is not built into this wharf");
#endif
    refused(L("streamSettings = {\n tcpSettings = { header = {\n type = \"bogus\"; }; }; };"), 3,
            "unknown header type \"bogus\"");
    refused(L("streamSettings = {\n tcpSettings = {\n header = { }; }; };"), 3, "has no \"type\"");
    refused(L("streamSettings = { sockopt = {\n tproxy = \"tproxy\"; }; };"), 2, "must be \"off\"");
}

static void
test_good(void **state)
{
    wh_conf_t cf;
    wh_cycle_t *c = load("daemon = false;\nworker_processes = \"auto\";\n"
                         "listeners = ( { tag = \"a\"; listen = \"::1\"; port = 1;\n"
                         "  upstream = \"[::1]:80\"; streamSettings = { network = \"TCP\";\n"
                         "  tcpSettings = { acceptProxyProtocol = true; header = { type = \"none\"; }; }; }; },\n"
                         "{ tag = \"u\"; listen = \"@abstract\"; upstream = \"unix:/run/x.sock\"; } );\n",
                         &cf);

    if (c == NULL) fail_msg("%s", cf.error);
    assert_int_equal(c->daemon, 0);
    assert_true(c->worker_processes >= 1);
    assert_int_equal(c->nlisteners, 2);
    assert_true(c->policy.handshake == 60 && c->policy.conn_idle == 300);
    assert_true(c->policy.uplink_only == 1 && c->policy.downlink_only == 1);
    assert_string_equal(c->listeners[0].addr_text, "[::1]:1");
    assert_string_equal(c->listeners[1].addr_text, "unix:@abstract");
    assert_string_equal(c->pid_path, "/tmp/" WH_PID_PATH);
    wh_cycle_free(c);
    unlink(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_unknown_names),
        cmocka_unit_test(test_types_and_ranges),
        cmocka_unit_test(test_listeners),
        cmocka_unit_test(test_good),
    };

    wh_log_level = WH_LOG_EMERG;    /* warnings about client-only fields stay quiet */
    return cmocka_run_group_tests(tests, NULL, NULL);
}

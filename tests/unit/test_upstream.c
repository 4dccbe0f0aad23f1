/*
 * test_upstream.c -- upstream groups (src/stream/wh_upstream.c): the list
 * form of "upstream" and its errors at FILE:LINE, xver and
 * upstreamFailTimeout, and how a stream's connect picks a member (round
 * robin, down members skipped, the least recently failed when all are
 * down, each member once per stream).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_cycle.h"
#include "wh_log.h"

#include "conf_load.h"

#define L(upstream) "listeners = ( { tag = \"a\"; listen = \"127.0.0.1\"; port = 1000;\n" \
                    "  upstream = " upstream "; } );\n"

static wh_cycle_t *
loaded(const char *text)
{
    wh_conf_t cf;
    wh_cycle_t *c = load(text, &cf);

    unlink(path);
    if (c == NULL) {
        fail_msg("refused: %s", cf.error);
    }
    return c;
}

static void
test_conf_forms(void **state)
{
    wh_cycle_t *c;
    wh_upstream_conf_t *u;

    /* a string is a group of one, as it always was */
    c = loaded(L("\"127.0.0.1:9000\""));
    u = c->listeners[0].dest.upstream;
    assert_int_equal(u->kind, WH_UPSTREAM_SOCKET);
    assert_int_equal(u->nmembers, 1);
    assert_string_equal(u->members[0].text, "127.0.0.1:9000");
    assert_string_equal(u->name, "a");
    assert_int_equal(c->listeners[0].dest.xver, 0);
    assert_true(c->upstream_fail_timeout == 10);
    assert_true(u->fail_timeout == 10);
    wh_cycle_free(c);

    c = loaded(L("\"echo\""));
    assert_int_equal(c->listeners[0].dest.upstream->kind, WH_UPSTREAM_ECHO);
    assert_int_equal(c->listeners[0].dest.upstream->nmembers, 1);
    wh_cycle_free(c);

    /* an array and a list; unix members; xver; the fail timeout */
    c = loaded("upstreamFailTimeout = 2.5;\n"
               "listeners = ( { tag = \"a\"; listen = \"127.0.0.1\"; port = 1000; xver = 2;\n"
               "  upstream = [ \"127.0.0.1:9000\", \"[::1]:9001\", \"unix:/run/x.sock\" ]; },\n"
               "  { tag = \"b\"; listen = \"127.0.0.1\"; port = 1001;\n"
               "  upstream = ( \"10.0.0.1:1\", \"unix:@abstract\" ); } );\n");
    u = c->listeners[0].dest.upstream;
    assert_int_equal(c->listeners[0].dest.xver, 2);
    assert_int_equal(u->nmembers, 3);
    assert_string_equal(u->members[1].text, "[::1]:9001");
    assert_string_equal(u->members[2].text, "unix:/run/x.sock");
    assert_true(u->fail_timeout == 2.5);
    u = c->listeners[1].dest.upstream;
    assert_int_equal(u->nmembers, 2);
    assert_string_equal(u->members[1].text, "unix:@abstract");
    assert_string_equal(u->name, "b");
    wh_cycle_free(c);

    /* a name is every address it has */
    c = loaded(L("[ \"localhost:9000\" ]"));
    u = c->listeners[0].dest.upstream;
    assert_true(u->nmembers >= 1);
    for (int i = 0; i < u->nmembers; i++) {
        assert_true(strcmp(u->members[i].text, "127.0.0.1:9000") == 0
                    || strcmp(u->members[i].text, "[::1]:9000") == 0);
    }
    wh_cycle_free(c);
}

static void
test_conf_errors(void **state)
{
    refused(L("[]"), 2, "\"upstream\" is an empty list");
    refused(L("()"), 2, "\"upstream\" is an empty list");
    refused(L("[ \"127.0.0.1:1\",\n \"echo\" ]"), 3, "\"upstream\" member \"echo\" cannot be");
    refused(L("( \"127.0.0.1:1\",\n \"127.0.0.1\" )"), 3,
            "\"upstream\" member \"127.0.0.1\" has no port");
    refused(L("( \"127.0.0.1:1\",\n \"no.such.host.invalid:80\" )"), 3, "does not resolve");
    refused(L("( \"127.0.0.1:1\",\n \"unix:\" )"), 3, "has an empty or too long unix path");
    refused(L("( \"127.0.0.1:1\",\n \"127.0.0.1:1\" )"), 3, "repeats a member");
    refused(L("( \"127.0.0.1:1\",\n 80 )"), 3, "must be a string or a list of strings");
    refused(L("( \"127.0.0.1:1\",\n { a = 1; } )"), 3, "must be a string or a list of strings");
    refused(L("80"), 2, "must be a string or a list of strings");
    refused(L("\"127.0.0.1:0\""), 2, "\"upstream\" \"127.0.0.1:0\" has an invalid port");
    refused("listeners = ( { tag = \"a\"; listen = \"127.0.0.1\"; port = 1000;\n"
            "  xver = 3; upstream = \"echo\"; } );\n", 2, "\"xver\"");
    refused("listeners = ( { tag = \"a\"; listen = \"127.0.0.1\"; port = 1000;\n"
            "  xver = \"1\"; upstream = \"echo\"; } );\n", 2, "\"xver\"");
    refused("\nupstreamFailTimeout = -1;\n", 2, "\"upstreamFailTimeout\"");
}

static wh_upstream_conf_t *
group(int n)
{
    static char text[64 * 24];
    static wh_upstream_conf_t u;
    config_t cfg;
    wh_conf_t cf = { .file = "t.conf" };
    size_t len = 0;
    int i;

    len += snprintf(text + len, sizeof(text) - len, "upstream = [");
    for (i = 0; i < n; i++) {
        len += snprintf(text + len, sizeof(text) - len, "%s\"127.0.0.1:%d\"", i ? ", " : "",
                        1000 + i);
    }
    snprintf(text + len, sizeof(text) - len, " ];");
    config_init(&cfg);
    assert_int_equal(config_read_string(&cfg, text), CONFIG_TRUE);
    wh_upstream_free(&u);
    assert_int_equal(wh_upstream_conf(&cf, config_lookup(&cfg, "upstream"), &u), WH_OK);
    config_destroy(&cfg);
    u.fail_timeout = 10;
    return &u;
}

static int
pick(wh_upstream_conf_t *u, uint64_t *tried, double now)
{
    wh_upstream_member_t *m = wh_upstream_pick(u, tried, now);

    return m == NULL ? -1 : (int) (m - u->members);
}

static void
test_pick(void **state)
{
    wh_upstream_conf_t *u = group(3);
    uint64_t tried;
    int i, counts[3] = { 0, 0, 0 };

    /* round robin */
    for (i = 0; i < 30; i++) {
        tried = 0;
        counts[pick(u, &tried, 100)]++;
    }
    assert_int_equal(counts[0], 10);
    assert_int_equal(counts[1], 10);
    assert_int_equal(counts[2], 10);

    /* a stream tries each member once, then there is none */
    tried = 0;
    assert_int_equal(pick(u, &tried, 100), 0);
    assert_int_equal(pick(u, &tried, 100), 1);
    assert_int_equal(pick(u, &tried, 100), 2);
    assert_int_equal(pick(u, &tried, 100), -1);

    /* a failed member is skipped until its fail timeout is over */
    wh_upstream_failed(u, &u->members[1], 100);
    assert_true(u->members[1].down_until == 110);
    for (i = 0; i < 6; i++) {
        tried = 0;
        assert_int_not_equal(pick(u, &tried, 105), 1);
    }
    tried = 0;
    u->next = 1;
    assert_int_equal(pick(u, &tried, 110), 1);      /* up again */

    /* all down: the one whose down time ends first, then the others */
    wh_upstream_failed(u, &u->members[0], 103);
    wh_upstream_failed(u, &u->members[1], 101);
    wh_upstream_failed(u, &u->members[2], 102);
    tried = 0;
    assert_int_equal(pick(u, &tried, 104), 1);
    assert_int_equal(pick(u, &tried, 104), 2);
    assert_int_equal(pick(u, &tried, 104), 0);
    assert_int_equal(pick(u, &tried, 104), -1);

    /* a connect that succeeds brings it up at once */
    wh_upstream_connected(&u->members[0]);
    tried = 0;
    u->next = 1;
    assert_int_equal(pick(u, &tried, 104), 0);
}

/* the tried set is a 64-bit mask: the largest group works whole */
static void
test_pick_largest_group(void **state)
{
    wh_upstream_conf_t *u = group(WH_UPSTREAM_MAX_MEMBERS);
    uint64_t tried = 0;
    int i;

    for (i = 0; i < WH_UPSTREAM_MAX_MEMBERS; i++) {
        assert_int_equal(pick(u, &tried, 1), i);
    }
    assert_int_equal(pick(u, &tried, 1), -1);
    assert_true(tried == ~0ull);
    wh_upstream_free(u);
}

static void
test_group_too_large(void **state)
{
    char text[(WH_UPSTREAM_MAX_MEMBERS + 1) * 24 + 200];
    size_t len;
    int i;

    len = snprintf(text, sizeof(text), "listeners = ( { tag = \"a\"; listen = \"127.0.0.1\"; "
                                       "port = 1000;\n upstream = [");
    for (i = 0; i <= WH_UPSTREAM_MAX_MEMBERS; i++) {
        len += snprintf(text + len, sizeof(text) - len, "%s\"127.0.0.1:%d\"%s", i ? ", " : "",
                        1000 + i, i == WH_UPSTREAM_MAX_MEMBERS - 1 ? "\n" : "");
    }
    snprintf(text + len, sizeof(text) - len, " ]; } );\n");
    refused(text, 3, "one member too many");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_forms),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_pick),
        cmocka_unit_test(test_pick_largest_group),
        cmocka_unit_test(test_group_too_large),
    };

    wh_log_level = WH_LOG_EMERG;
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_access_log.c -- the access log's format compiler and line writer
 * (wh_access_log.h): literals and variables, ${name}, unknown or empty
 * names refused, values that are absent written as "-", bytes a client
 * chose escaped, and a line cut to its buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_access_log.h"
#include "wh_stats.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static struct sockaddr_in peer;

static wh_access_rec_t
record(const wh_access_facts_t *facts)
{
    peer.sin_family = AF_INET;
    peer.sin_port = htons(40000);
    inet_pton(AF_INET, "192.0.2.7", &peer.sin_addr);
    return (wh_access_rec_t) {
        .listener = "in", .network = "ws", .peer = (struct sockaddr *) &peer, .facts = facts,
        .upstream = "127.0.0.1:9", .start = 1000.0, .end = 1002.5, .connect_time = 0.25,
        .bytes_sent = 11, .bytes_received = 22, .cause = WH_CLOSE_DONE };
}

static const char *
line(const char *fmt, const wh_access_rec_t *r)
{
    static char buf[512];
    char err[128];
    wh_access_format_t *f = wh_access_format_compile(fmt, err, sizeof(err));

    assert_non_null(f);
    wh_access_format_line(f, r, buf, sizeof(buf));
    wh_access_format_free(f);
    return buf;
}

static void
test_variables(void **state)
{
    wh_access_facts_t facts = { .ssl_protocol = "TLSv1.3", .sni = "a.example", .alpn = "h2",
                                .path = "/ray" };
    wh_access_rec_t r = record(&facts);

    assert_string_equal(line("$remote_addr:$remote_port $bytes_sent/$bytes_received", &r),
                        "192.0.2.7:40000 11/22");
    assert_string_equal(line("[${status}]${listener}-$network $session_time $msec", &r),
                        "[200]in-ws 2.500 1002.500");
    assert_string_equal(line("$upstream_addr $upstream_connect_time $close_cause", &r),
                        "127.0.0.1:9 0.250 done");
    assert_string_equal(line("$ssl_server_name $ssl_protocol $ssl_alpn $request_path $fallback",
                             &r), "a.example TLSv1.3 h2 /ray -");
    assert_string_equal(line("no variables", &r), "no variables");
    assert_string_equal(line("", &r), "");
}

static void
test_absent_and_status(void **state)
{
    wh_access_rec_t r = record(NULL);

    r.upstream = NULL;
    r.connect_time = -1;
    r.cause = WH_CLOSE_BAD_INPUT;
    r.refused = 1;
    assert_string_equal(line("$upstream_addr $upstream_connect_time $ssl_server_name $status", &r),
                        "- - - 400");
    r.cause = WH_CLOSE_TIMEOUT;
    assert_string_equal(line("$status", &r), "400");
    r.refused = 0;
    assert_string_equal(line("$status", &r), "200");
    assert_int_equal(wh_access_status(WH_CLOSE_UPSTREAM, 0), 502);
    assert_int_equal(wh_access_status(WH_CLOSE_LIMIT, 1), 503);
    assert_int_equal(wh_access_status(WH_CLOSE_ERROR, 0), 500);
}

static void
test_escaped(void **state)
{
    wh_access_facts_t facts = { .path = "/a\"b\\c\n\x80" };
    wh_access_rec_t r = record(&facts);

    assert_string_equal(line("$request_path", &r), "/a\\x22b\\x5Cc\\x0A\\x80");
}

static void
test_refused(void **state)
{
    char err[128];

    assert_null(wh_access_format_compile("$remote_addr $nope", err, sizeof(err)));
    assert_string_equal(err, "unknown variable \"$nope\"");
    assert_null(wh_access_format_compile("cost: $", err, sizeof(err)));
    assert_non_null(strstr(err, "invalid variable name"));
    assert_null(wh_access_format_compile("${status", err, sizeof(err)));
    assert_non_null(strstr(err, "invalid variable name"));
    /* a name is the longest run of name characters: $status_x is unknown */
    assert_null(wh_access_format_compile("$status_x", err, sizeof(err)));
}

static void
test_cut(void **state)
{
    wh_access_rec_t r = record(NULL);
    char err[128], buf[8];
    wh_access_format_t *f = wh_access_format_compile("$listener-$remote_addr", err, sizeof(err));

    assert_int_equal(wh_access_format_line(f, &r, buf, sizeof(buf)), 7);
    assert_string_equal(buf, "in-192.");
    wh_access_format_free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_variables),
        cmocka_unit_test(test_absent_and_status),
        cmocka_unit_test(test_escaped),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_cut),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

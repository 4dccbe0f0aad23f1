/*
 * test_addr.c -- socket addresses as the configuration writes them,
 * above all V2Ray's abstract-name padding (spec 6.2).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_addr.h"

#include <sys/un.h>

static void
test_unix_forms(void **state)
{
    wh_sockaddr_t a;
    struct sockaddr_un *sun = (struct sockaddr_un *) &a.sa;
    char text[160], name[120];
    int i;

    assert_int_equal(wh_addr_parse_unix("/run/x.sock", &a), WH_OK);
    assert_int_equal(a.len, 2 + 11 + 1);
    assert_string_equal(wh_addr_unix_path(&a), "/run/x.sock");

    /* abstract: NUL, name; length 2 + 1 + len(name) */
    assert_int_equal(wh_addr_parse_unix("@name", &a), WH_OK);
    assert_int_equal(a.len, 2 + 1 + 4);
    assert_int_equal(sun->sun_path[0], 0);
    assert_memory_equal(sun->sun_path + 1, "name", 4);
    assert_null(wh_addr_unix_path(&a));
    wh_addr_format((struct sockaddr *) &a.sa, a.len, text, sizeof(text));
    assert_string_equal(text, "unix:@name");

    /* padded: NUL, name, NULs up to 108; length 110 */
    assert_int_equal(wh_addr_parse_unix("@@name", &a), WH_OK);
    assert_int_equal(a.len, 110);
    assert_int_equal(sun->sun_path[0], 0);
    assert_memory_equal(sun->sun_path + 1, "name", 4);
    for (i = 5; i < 108; i++) assert_int_equal(sun->sun_path[i], 0);

    /* 107 bytes fit after the NUL; 108 do not */
    memset(name, 'n', sizeof(name));
    name[0] = name[1] = '@';
    name[2 + 107] = '\0';
    assert_int_equal(wh_addr_parse_unix(name, &a), WH_OK);
    name[2 + 108] = '\0';
    name[2 + 107] = 'n';
    assert_int_equal(wh_addr_parse_unix(name, &a), WH_ERROR);
    assert_int_equal(wh_addr_parse_unix("@", &a), WH_ERROR);
    assert_int_equal(wh_addr_parse_unix("", &a), WH_ERROR);
}

static void
test_hostport(void **state)
{
    wh_sockaddr_t a;
    const char *err;
    char text[64];

    assert_int_equal(wh_addr_parse_hostport("127.0.0.1:80", &a, &err), WH_OK);
    wh_addr_format((struct sockaddr *) &a.sa, a.len, text, sizeof(text));
    assert_string_equal(text, "127.0.0.1:80");
    assert_int_equal(wh_addr_parse_hostport("[::1]:443", &a, &err), WH_OK);
    wh_addr_format((struct sockaddr *) &a.sa, a.len, text, sizeof(text));
    assert_string_equal(text, "[::1]:443");
    assert_int_equal(wh_addr_parse_hostport("localhost:8080", &a, &err), WH_OK);
    assert_int_equal(wh_addr_parse_hostport("::1:80", &a, &err), WH_ERROR);
    assert_int_equal(wh_addr_parse_hostport("host", &a, &err), WH_ERROR);
    assert_int_equal(wh_addr_parse_hostport("h:0", &a, &err), WH_ERROR);
    assert_int_equal(wh_addr_parse_hostport("h:+80", &a, &err), WH_ERROR);
    assert_int_equal(wh_addr_parse_hostport(":80", &a, &err), WH_ERROR);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unix_forms),
        cmocka_unit_test(test_hostport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

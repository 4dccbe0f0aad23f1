/*
 * test_match.c -- configured values as matchers (wh_match.h): exact values
 * (caseless for host names only), nginx's "~" and "~*" regular expressions
 * searched anywhere unless anchored, and a bad pattern refused with PCRE2's
 * reason and offset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_match.h"

static int
matches(const char *pattern, int caseless, const char *s)
{
    wh_match_t m;
    char err[256];
    int r;

    assert_int_equal(wh_match_compile(&m, pattern, caseless, err, sizeof(err)), WH_OK);
    r = wh_match(&m, s, strlen(s));
    wh_match_free(&m);
    return r;
}

static void
test_exact(void **state)
{
    assert_true(matches("/b", 0, "/b"));
    assert_false(matches("/b", 0, "/B"));
    assert_false(matches("/b", 0, "/b/"));
    assert_false(matches("/b", 0, "/"));
    assert_true(matches("Example.COM", 1, "example.com"));
    assert_false(matches("example.com", 1, "www.example.com"));
    assert_true(matches("", 0, ""));
}

static void
test_regex(void **state)
{
    assert_true(matches("~^/api/v[0-9]+/", 0, "/api/v2/users"));
    assert_false(matches("~^/api/v[0-9]+/", 0, "/api/vx/"));
    assert_false(matches("~^/api/v[0-9]+/", 0, "/x/api/v1/"));
    assert_true(matches("~api", 0, "/x/api/v1/"));       /* searched, as nginx */
    assert_false(matches("~^static\\.", 0, "STATIC.example.com"));
    assert_true(matches("~*^static\\.", 0, "STATIC.example.com"));
    assert_true(matches("~h2$", 0, "h2"));
}

static void
test_subject_not_terminated(void **state)
{
    wh_match_t m;
    char err[256];
    const char s[] = "/bxyz";

    assert_int_equal(wh_match_compile(&m, "/b", 0, err, sizeof(err)), WH_OK);
    assert_true(wh_match(&m, s, 2));
    wh_match_free(&m);
    assert_int_equal(wh_match_compile(&m, "~^/b$", 0, err, sizeof(err)), WH_OK);
    assert_true(wh_match(&m, s, 2));
    assert_false(wh_match(&m, s, 3));
    wh_match_free(&m);
}

static void
test_unset_matches_all(void **state)
{
    wh_match_t m;

    memset(&m, 0, sizeof(m));
    assert_true(wh_match(&m, "anything", 8));
}

static void
test_bad_pattern(void **state)
{
    wh_match_t m;
    char err[256];

    assert_int_equal(wh_match_compile(&m, "~^/api/(v[0-9]", 0, err, sizeof(err)), WH_ERROR);
    assert_non_null(strstr(err, "missing closing parenthesis"));
    assert_non_null(strstr(err, "at offset 13"));
    assert_int_equal(wh_match_compile(&m, "~*[z-a]", 0, err, sizeof(err)), WH_ERROR);
    assert_non_null(strstr(err, "range out of order"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_subject_not_terminated),
        cmocka_unit_test(test_unset_matches_all),
        cmocka_unit_test(test_bad_pattern),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

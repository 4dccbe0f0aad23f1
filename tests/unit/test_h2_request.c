/*
 * test_h2_request.c -- the http transport's request validation (spec 5.3):
 * :authority equal to one of the hosts (a port makes it differ), the
 * decoded path (query removed) starting with the configured path.
 */
#include "wh_config.h"

#ifdef WH_HAVE_MODULE_H2

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../modules/h2/wh_h2.h"

static int
ok(const wh_h2_conf_t *c, const char *authority, const char *path)
{
    return wh_h2_request_ok(c, authority, authority ? strlen(authority) : 0, path,
                            path ? strlen(path) : 0);
}

static void
test_validation(void **state)
{
    char *hosts[] = { "localhost", "h2.example.com", " spaced" };
    wh_h2_conf_t c = { { hosts, 3 }, "/wharf-h2" };

    assert_true(ok(&c, "localhost", "/wharf-h2"));
    assert_true(ok(&c, "h2.example.com", "/wharf-h2"));
    assert_true(ok(&c, " spaced", "/wharf-h2"));           /* kept as split, untrimmed */
    assert_false(ok(&c, "spaced", "/wharf-h2"));
    assert_false(ok(&c, "localhost:443", "/wharf-h2"));    /* a port makes it differ */
    assert_false(ok(&c, "LOCALHOST", "/wharf-h2"));        /* byte comparison */
    assert_false(ok(&c, NULL, "/wharf-h2"));
    assert_true(ok(&c, "localhost", "/wharf-h2xyz/abc"));  /* a plain prefix */
    assert_true(ok(&c, "localhost", "/wharf-h2?x=1"));
    assert_true(ok(&c, "localhost", "/wharf%2Dh2"));       /* decoded */
    assert_false(ok(&c, "localhost", "/wharf-h"));
    assert_false(ok(&c, "localhost", "/other"));
    assert_false(ok(&c, "localhost", NULL));
    assert_false(ok(&c, "localhost", "/wharf%zz-h2"));     /* bad escape */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* the module is not built: nothing to test */

#include <stdio.h>

int
main(void)
{
    puts("skipped: module not built");
    return 0;
}

#endif

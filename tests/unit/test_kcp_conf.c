/*
 * test_kcp_conf.c -- kcpSettings (modules/kcp/wh_kcp_conf.c, spec 9.1):
 * defaults, every field, V2Ray's ranges as errors naming file:line, the
 * header and seed, and the derived values.
 */
#include "wh_config.h"

#ifdef WH_HAVE_MODULE_KCP

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wh_cycle.h"

/* module folders are not on the include path: name it from here */
#include "../../modules/kcp/wh_kcp_conf.h"

static wh_conf_t cf;
static wh_listener_t ls;

extern const wh_module_t wh_kcp_module;

/* streamSettings through the module's descriptor, as the core reads them */
static wh_kcp_conf_t *
load(const char *text, int *rc)
{
    config_t cfg;
    config_setting_t *ss;

    config_init(&cfg);
    memset(&cf, 0, sizeof(cf));
    memset(&ls, 0, sizeof(ls));
    cf.file = "test.conf";
    ls.module = &wh_kcp_module;
    if (config_read_string(&cfg, text) != CONFIG_TRUE) {
        fail_msg("libconfig: %s at line %d", config_error_text(&cfg), config_error_line(&cfg));
    }
    ss = config_lookup(&cfg, "streamSettings");
    assert_non_null(ss);
    *rc = wh_listener_conf(&cf, &ls, ss);
    config_destroy(&cfg);
    return ls.module_conf;
}

static void
wh_kcp_conf_free(wh_kcp_conf_t *c)
{
    assert_ptr_equal(c, ls.module_conf);
    wh_listener_conf_free(&ls);
}

static void
bad(const char *text, const char *what, const char *where)
{
    int rc;
    wh_kcp_conf_t *c = load(text, &rc);

    assert_int_equal(rc, WH_ERROR);
    if (strstr(cf.error, what) == NULL || strstr(cf.error, where) == NULL) {
        fail_msg("error \"%s\" lacks \"%s\" or \"%s\"", cf.error, what, where);
    }
    wh_kcp_conf_free(c);
}

static void
test_defaults(void **state)
{
    int rc;
    wh_kcp_conf_t *c = load("streamSettings = { network = \"kcp\"; };", &rc);

    assert_int_equal(rc, WH_OK);
    assert_int_equal(c->params.mtu, 1350);
    assert_int_equal(c->params.tti, 50);
    assert_int_equal(c->params.send_in_flight, 194);
    assert_int_equal(c->params.recv_window, 776);
    assert_int_equal(c->params.send_queue, 1553);
    assert_int_equal(c->params.mss, 1326);
    assert_false(c->params.congestion);
    assert_null(c->seed);
    assert_int_equal(c->header->size, 0);
    wh_kcp_conf_free(c);
}

static void
test_fields(void **state)
{
    int rc;
    wh_kcp_conf_t *c = load(
        "streamSettings = { kcpSettings = { mtu = 1460; tti = 10; uplinkCapacity = 4096;\n"
        " downlinkCapacity = 0; congestion = true; readBufferSize = 0; writeBufferSize = 0;\n"
        " header = { type = \"DTLS\"; }; seed = \"\"; }; };", &rc);

    assert_int_equal(rc, WH_OK);
    assert_int_equal(c->params.send_in_flight, 8);      /* 4096 MB wraps to 0 */
    assert_int_equal(c->params.recv_window, 8);
    assert_int_equal(c->params.send_queue, 512 * 1024 / 1460);
    assert_true(c->params.congestion);
    assert_non_null(c->seed);
    assert_int_equal(c->seed_len, 0);
    assert_int_equal(c->header->size, 13);
    assert_int_equal(c->params.mss, 1460 - 13 - 16 - 18);
    wh_kcp_conf_free(c);
}

static void
test_errors(void **state)
{
    bad("streamSettings = { kcpSettings = {\n mtu = 575; }; };", "mtu", "test.conf:2");
    bad("streamSettings = { kcpSettings = {\n mtu = 1461; }; };", "mtu", "test.conf:2");
    bad("streamSettings = { kcpSettings = {\n tti = 9; }; };", "tti", "test.conf:2");
    bad("streamSettings = { kcpSettings = {\n tti = 101; }; };", "tti", "test.conf:2");
    bad("streamSettings = { kcpSettings = {\n uplinkCapacity = -1; }; };", "uplinkCapacity",
        "test.conf:2");
    bad("streamSettings = { kcpSettings = {\n writeBufferSize = 4294967296L; }; };",
        "writeBufferSize", "test.conf:2");
    bad("streamSettings = { kcpSettings = {\n congestion = 1; }; };", "congestion",
        "test.conf:2");
    bad("streamSettings = { kcpSettings = {\n seed = 1; }; };", "seed", "test.conf:2");
    bad("streamSettings = { kcpSettings = {\n header = { }; }; };", "type", "test.conf:2");
    bad("streamSettings = { kcpSettings = { header = {\n type = \"bogus\"; }; }; };", "bogus",
        "test.conf:2");
    bad("streamSettings = { kcpSettings = {\n mtuu = 1; }; };", "mtuu", "test.conf:2");
    bad("streamSettings = {\n kcpSettings = 1; };", "kcpSettings", "test.conf:2");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_errors),
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

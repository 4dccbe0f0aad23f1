/*
 * test_directive.c -- settings tables (src/core/wh_directive.c): every
 * type read into its field, defaults when absent, ranges and types refused
 * with wh_conf.c's words and FILE:LINE, unknown names refused, a nested
 * group read into the same struct, and what the table filled freed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_directive.h"
#include "wh_log.h"

typedef struct {
    int flag;
    long count;
    double wait;
    char *name;
    char *file;
    char *url;
    int mode;
    wh_str_list_t hosts;
    long inner;
    int custom;             /* the handler's: 1 + whether the group was there */
} conf_t;

static const char *const modes[] = { "none", "fast", "safe", NULL };

static int
custom(wh_conf_t *cf, const config_setting_t *group, const wh_directive_t *d, void *field)
{
    *(int *) field = 1 + (group != NULL);
    return WH_DECLINED;
}

static const wh_directive_t inner[] = {
    { .name = "inner", .type = WH_DIR_INT, .offset = offsetof(conf_t, inner),
      .min = 1, .max = 9, .dflt = 5 },
    wh_null_directive
};

static const wh_directive_t table[] = {
    { .name = "flag", .type = WH_DIR_BOOL, .offset = offsetof(conf_t, flag), .dflt = 1 },
    { .name = "count", .type = WH_DIR_INT, .offset = offsetof(conf_t, count),
      .min = 0, .max = 100, .dflt = 7 },
    { .name = "wait", .type = WH_DIR_SECONDS, .offset = offsetof(conf_t, wait),
      .min = 0.5, .max = 60, .dflt = 2.5 },
    { .name = "name", .type = WH_DIR_STRING, .offset = offsetof(conf_t, name),
      .dflt_str = "anon" },
    { .name = "file", .type = WH_DIR_PATH, .offset = offsetof(conf_t, file),
      .dflt_str = "logs/x.log" },
    { .name = "url", .type = WH_DIR_URL_PATH, .offset = offsetof(conf_t, url), .dflt_str = "" },
    { .name = "mode", .type = WH_DIR_ENUM, .offset = offsetof(conf_t, mode), .values = modes,
      .what = "mode", .dflt = 2 },
    { .name = "hosts", .type = WH_DIR_LIST, .offset = offsetof(conf_t, hosts),
      .dflt_str = "example.com" },
    { .name = "group", .type = WH_DIR_GROUP, .group = inner },
    { .name = "custom", .type = WH_DIR_CUSTOM, .offset = offsetof(conf_t, custom),
      .handler = custom },
    { .name = "later", .type = WH_DIR_MODULE },
    { .name = "clientOnly", .type = WH_DIR_CLIENT },
    wh_null_directive
};

static wh_conf_t cf;
static conf_t conf;

/* text's group "g" (absent: NULL) through the table */
static int
apply(const char *text)
{
    config_t cfg;
    int rc;

    config_init(&cfg);
    memset(&cf, 0, sizeof(cf));
    memset(&conf, 0, sizeof(conf));
    cf.file = "test.conf";
    cf.prefix = "/pre";
    if (config_read_string(&cfg, text) != CONFIG_TRUE) {
        fail_msg("libconfig: %s at line %d", config_error_text(&cfg), config_error_line(&cfg));
    }
    rc = wh_directives_apply(&cf, config_lookup(&cfg, "g"), table, &conf);
    config_destroy(&cfg);       /* what the table filled must not point into it */
    return rc;
}

static void
refused(const char *text, const char *what)
{
    if (apply(text) != WH_ERROR) {
        fail_msg("accepted: %s", text);
    }
    if (strcmp(cf.error, what) != 0) {
        fail_msg("error \"%s\", not \"%s\"", cf.error, what);
    }
    wh_directives_free(table, &conf);
}

static void
test_defaults(void **state)
{
    assert_int_equal(apply("x = 1;"), WH_OK);
    assert_int_equal(conf.flag, 1);
    assert_int_equal(conf.count, 7);
    assert_true(conf.wait == 2.5);
    assert_string_equal(conf.name, "anon");
    assert_string_equal(conf.file, "/pre/logs/x.log");
    assert_string_equal(conf.url, "/");
    assert_int_equal(conf.mode, 2);
    assert_int_equal(conf.hosts.n, 1);
    assert_string_equal(conf.hosts.v[0], "example.com");
    assert_int_equal(conf.inner, 5);
    assert_int_equal(conf.custom, 1);
    wh_directives_free(table, &conf);
    assert_null(conf.name);
    assert_null(conf.hosts.v);

    /* an empty group: the same, and the handler sees it */
    assert_int_equal(apply("g = { };"), WH_OK);
    assert_int_equal(conf.count, 7);
    assert_int_equal(conf.inner, 5);
    assert_int_equal(conf.custom, 2);
    wh_directives_free(table, &conf);
}

static void
test_every_type(void **state)
{
    assert_int_equal(apply("g = { flag = false; count = 100; wait = 60; name = \"n\";\n"
                           " file = \"/abs\"; url = \"p/q\"; mode = \"FAST\";\n"
                           " hosts = \"a,,b\"; group = { inner = 9; }; later = 1;\n"
                           " clientOnly = \"x\"; };"), WH_OK);
    assert_int_equal(conf.flag, 0);
    assert_int_equal(conf.count, 100);
    assert_true(conf.wait == 60);
    assert_string_equal(conf.name, "n");
    assert_string_equal(conf.file, "/abs");
    assert_string_equal(conf.url, "/p/q");
    assert_int_equal(conf.mode, 1);
    assert_int_equal(conf.hosts.n, 3);
    assert_string_equal(conf.hosts.v[0], "a");
    assert_string_equal(conf.hosts.v[1], "");
    assert_string_equal(conf.hosts.v[2], "b");
    assert_int_equal(conf.inner, 9);
    wh_directives_free(table, &conf);

    assert_int_equal(apply("g = { wait = 0.5; file = \"rel\"; url = \"/u\"; hosts = [ \"h\" ]; };"),
                     WH_OK);
    assert_true(conf.wait == 0.5);
    assert_string_equal(conf.file, "/pre/rel");
    assert_string_equal(conf.url, "/u");
    assert_int_equal(conf.hosts.n, 1);
    assert_string_equal(conf.hosts.v[0], "h");
    wh_directives_free(table, &conf);

    /* "" is an absent URL path; [] the default list */
    assert_int_equal(apply("g = { url = \"\"; hosts = ( ); };"), WH_OK);
    assert_string_equal(conf.url, "/");
    assert_int_equal(conf.hosts.n, 1);
    assert_string_equal(conf.hosts.v[0], "example.com");
    wh_directives_free(table, &conf);
}

static void
test_refused(void **state)
{
    refused("g = {\n nope = 1; };", "unknown directive \"nope\" in test.conf:2");
    refused("g = { group = {\n\n nope = 1; }; };", "unknown directive \"nope\" in test.conf:3");
    refused("g = {\n count = 101; };", "\"count\" must be 0..100, not 101 in test.conf:2");
    refused("g = {\n count = -1; };", "\"count\" must be 0..100, not -1 in test.conf:2");
    refused("g = {\n count = 1.5; };", "\"count\" must be an integer, not a number in test.conf:2");
    refused("g = {\n wait = 0.25; };", "\"wait\" must be 0.5..60 seconds, not 0.25 in test.conf:2");
    refused("g = {\n wait = \"1\"; };",
            "\"wait\" must be a number of seconds, not a string in test.conf:2");
    refused("g = {\n flag = 1; };", "\"flag\" must be true or false, not an integer in test.conf:2");
    refused("g = {\n name = 1; };", "\"name\" must be a string, not an integer in test.conf:2");
    refused("g = {\n mode = \"slow\"; };",
            "unknown mode \"slow\" (none, fast or safe) in test.conf:2");
    refused("g = {\n hosts = 1; };",
            "\"hosts\" must be a string or a list of strings in test.conf:2");
    refused("g = {\n hosts = ( \"a\", 1 ); };", "\"hosts\" must list strings in test.conf:2");
    refused("g = {\n group = 1; };",
            "\"group\" must be a group { ... }, not an integer in test.conf:2");
    refused("g = { group = {\n inner = 10; }; };", "\"inner\" must be 1..9, not 10 in test.conf:2");
    /* the first error in table order wins */
    refused("g = { wait = 0;\n count = 200; };", "\"count\" must be 0..100, not 200 in test.conf:2");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_type),
        cmocka_unit_test(test_refused),
    };

    wh_log_level = WH_LOG_EMERG;    /* the client-only warning stays quiet */
    return cmocka_run_group_tests(tests, NULL, NULL);
}

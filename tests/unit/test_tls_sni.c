/*
 * test_tls_sni.c -- certificate choice by SNI (spec 2.4): exact name
 * (CN or DNS SAN, case-insensitive), then wildcard, then the first; with an
 * "issue" CA every name without an exact certificate is minted. Also the
 * tlsSettings errors that name the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_log.h"
#include "wh_tls.h"

#include <unistd.h>

static char dir[] = "/tmp/wh-test-sni-XXXXXX";

static void
mkcert(const char *name, const char *cn, const char *san)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
             "-subj '/CN=%s' %s%s -keyout %s/%s.key -out %s/%s.pem >/dev/null 2>&1",
             cn, san ? "-addext subjectAltName=" : "", san ? san : "", dir, name, dir, name);
    assert_int_equal(system(cmd), 0);
}

static wh_tls_conf_t *
parse(const char *tls_text, wh_conf_t *cf)
{
    static const char *const alpn[] = { "h2", NULL };
    static config_t cfg;
    static int cfg_used;
    config_setting_t *tls;
    wh_tls_conf_t *t = NULL;
    char text[4096];

    snprintf(text, sizeof(text), "tls = %s;\n", tls_text);
    /* the last test's conf is freed by now; its settings go with it */
    if (cfg_used) config_destroy(&cfg);
    cfg_used = 1;
    config_init(&cfg);
    if (!config_read_string(&cfg, text)) fail_msg("bad test config: %s", config_error_text(&cfg));
    tls = config_lookup(&cfg, "tls");
    cf->file = "test";
    cf->error[0] = '\0';
    if (wh_tls_parse(cf, tls, tls, alpn, &t) != WH_OK) {
        wh_tls_free(t);
        t = NULL;
    }
    return t;
}

#define CERT(n) "{ certificateFile = \"%s/" n ".pem\"; keyFile = \"%s/" n ".key\"; }"

static void
test_choice(void **state)
{
    char text[2048];
    wh_conf_t cf;
    wh_tls_conf_t *t;

    snprintf(text, sizeof(text), "{ certificates = ( " CERT("a") ", " CERT("b") ", " CERT("w") " ); }",
             dir, dir, dir, dir, dir, dir);
    t = parse(text, &cf);
    if (t == NULL) fail_msg("%s", cf.error);

    assert_int_equal(wh_tls_choose(t, "a.example"), 0);
    assert_int_equal(wh_tls_choose(t, "b.example"), 1);          /* CN */
    assert_int_equal(wh_tls_choose(t, "alt.b.example"), 1);      /* DNS SAN */
    assert_int_equal(wh_tls_choose(t, "B.EXAMPLE"), 1);          /* lower-cased */
    assert_int_equal(wh_tls_choose(t, "x.w.example"), 2);        /* wildcard */
    assert_int_equal(wh_tls_choose(t, "w.example"), 0);          /* not covered by *.w: first */
    assert_int_equal(wh_tls_choose(t, "y.x.w.example"), 0);      /* one label only */
    assert_int_equal(wh_tls_choose(t, "unknown.test"), 0);
    assert_int_equal(wh_tls_choose(t, NULL), 0);                 /* no SNI */
    wh_tls_free(t);
}

static void
test_issue(void **state)
{
    char text[2048];
    wh_conf_t cf;
    wh_tls_conf_t *t;

    snprintf(text, sizeof(text),
             "{ certificates = ( { certificateFile = \"%s/ca.pem\"; keyFile = \"%s/ca.key\"; "
             "usage = \"issue\"; }, " CERT("a") " ); }", dir, dir, dir, dir);
    t = parse(text, &cf);
    if (t == NULL) fail_msg("%s", cf.error);
    assert_int_equal(wh_tls_choose(t, "a.example"), 1);
    assert_int_equal(wh_tls_choose(t, "x.w.example"), WH_TLS_MINT);
    assert_int_equal(wh_tls_choose(t, NULL), 1);
    wh_tls_free(t);
}

static void
test_errors(void **state)
{
    char text[2048];
    wh_conf_t cf;

    snprintf(text, sizeof(text), "{ certificates = ( { certificateFile = \"%s/a.pem\"; "
             "keyFile = \"%s/b.key\"; } ); }", dir, dir);
    assert_null(parse(text, &cf));
    assert_non_null(strstr(cf.error, "b.key\" does not match the certificate"));
    assert_non_null(strstr(cf.error, " in test:"));

    snprintf(text, sizeof(text), "{ certificates = ( { certificateFile = \"%s/none.pem\"; "
             "keyFile = \"%s/a.key\"; } ); }", dir, dir);
    assert_null(parse(text, &cf));
    assert_non_null(strstr(cf.error, "none.pem"));

    assert_null(parse("{ alpn = [ \"h2\" ]; }", &cf));
    assert_non_null(strstr(cf.error, "needs a certificate"));

    assert_null(parse("{ bogus = 1; }", &cf));
    assert_non_null(strstr(cf.error, "unknown directive \"bogus\""));
}

static int
setup(void **state)
{
    assert_non_null(mkdtemp(dir));
    mkcert("a", "a.example", NULL);
    mkcert("b", "b.example", "DNS:alt.b.example");
    mkcert("w", "wild", "DNS:*.w.example");
    mkcert("ca", "Test CA", NULL);
    return 0;
}

static int
teardown(void **state)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choice),
        cmocka_unit_test(test_issue),
        cmocka_unit_test(test_errors),
    };

    wh_log_level = WH_LOG_EMERG;
    return cmocka_run_group_tests(tests, setup, teardown);
}

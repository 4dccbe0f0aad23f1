/*
 * test_quic_conf.c -- quicSettings as a listener reads them (spec 8.1):
 * V2Ray's default when the object is absent, the values of a present one,
 * and every refusal with its FILE:LINE.
 */
#include "wh_config.h"

#ifdef WH_HAVE_MODULE_QUIC

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_cycle.h"
#include "wh_log.h"
#include "../../modules/quic/wh_quic.h"

#include "conf_load.h"

static const wh_quic_conf_t *
loaded(const char *text, wh_cycle_t **c)
{
    wh_conf_t cf;

    *c = load(text, &cf);
    unlink(path);
    if (*c == NULL) fail_msg("refused: %s", cf.error);
    assert_int_equal((*c)->nlisteners, 1);
    assert_string_equal((*c)->listeners[0].module->name, "quic");
    return (*c)->listeners[0].module_conf;
}

#define L(tail) "listeners = ( { tag = \"q\"; listen = \"127.0.0.1\"; port = 1000; " \
                "upstream = \"echo\"; " tail " } );\n"

static const uint8_t k_empty[32] = {
    0x44, 0x5a, 0xc9, 0x5f, 0xc8, 0xde, 0xb3, 0x09, 0x9f, 0xd1, 0xa8, 0xce, 0x33, 0x17, 0xf8, 0x87,
    0x39, 0xdc, 0xe6, 0x2f, 0x8a, 0x3e, 0xcc, 0xda, 0xa3, 0x9f, 0x2c, 0x54, 0x07, 0x83, 0x33, 0x61,
};
static const uint8_t k_interop[32] = {
    0xae, 0xbc, 0x32, 0xcf, 0xf1, 0xdc, 0x20, 0x8b, 0x43, 0x99, 0x13, 0x27, 0x27, 0xa5, 0x63, 0xfd,
    0xf5, 0xb9, 0x37, 0x0e, 0xbb, 0x0e, 0x8b, 0x4b, 0x94, 0xb3, 0x32, 0xad, 0xcc, 0x3a, 0x40, 0x4c,
};

static void
test_absent_is_v2ray_default(void **state)
{
    wh_cycle_t *c;
    const wh_quic_conf_t *q = loaded(L("streamSettings = { network = \"quic\"; };"), &c);

    assert_int_equal(q->outer.security, WH_QUIC_SEC_AES_128_GCM);
    assert_memory_equal(q->outer.key, k_empty, 32);
    assert_ptr_equal(q->outer.header, &wh_pkt_header_none);
    assert_true(q->default_outer);
    assert_null(c->listeners[0].tls);
    wh_cycle_free(c);
}

static void
test_empty_is_none(void **state)
{
    wh_cycle_t *c;
    const wh_quic_conf_t *q = loaded(L("streamSettings = { network = \"quic\"; quicSettings = { }; };"),
                                     &c);

    assert_int_equal(q->outer.security, WH_QUIC_SEC_NONE);
    assert_false(q->default_outer);
    wh_cycle_free(c);
}

static void
test_values(void **state)
{
    wh_cycle_t *c;
    const wh_quic_conf_t *q = loaded(L("streamSettings = { network = \"QUIC\"; quicSettings = {"
                                       " security = \"ChaCha20-Poly1305\";"
                                       " key = \"wharf-interop-quic-key\";"
                                       " header = { type = \"WireGuard\"; }; }; };"), &c);

    assert_int_equal(q->outer.security, WH_QUIC_SEC_CHACHA20_POLY1305);
    assert_memory_equal(q->outer.key, k_interop, 32);
    assert_ptr_equal(q->outer.header, &wh_pkt_header_wireguard);
    wh_cycle_free(c);

    q = loaded(L("streamSettings = { network = \"quic\"; quicSettings = {"
                 " security = \"aes-128-gcm\"; header = { type = \"srtp\"; }; }; };"), &c);
    assert_int_equal(q->outer.security, WH_QUIC_SEC_AES_128_GCM);
    assert_ptr_equal(q->outer.header, &wh_pkt_header_srtp);
    wh_cycle_free(c);

    /* any other security is none, as in V2Ray */
    q = loaded(L("streamSettings = { network = \"quic\"; quicSettings = {"
                 " security = \"rot13\"; }; };"), &c);
    assert_int_equal(q->outer.security, WH_QUIC_SEC_NONE);
    wh_cycle_free(c);
}

static void
test_refused(void **state)
{
    refused(L("streamSettings = { network = \"quic\";\n quicSettings = { secret = \"x\"; }; };"),
            2, "secret");
    refused(L("streamSettings = { network = \"quic\"; quicSettings = {\n"
              " header = { type = \"nope\"; }; }; };"), 2, "nope");
    refused(L("streamSettings = { network = \"quic\"; quicSettings = {\n"
              " header = { }; }; };"), 2, "type");
    refused(L("streamSettings = { network = \"quic\";\n quicSettings = { key = 5; }; };"), 2,
            "key");
    refused(L("streamSettings = { network = \"quic\";\n quicSettings = 5; };"), 2, "quicSettings");
    refused("listeners = ( { tag = \"q\"; listen = \"/tmp/wh-q.sock\"; port = 1000;\n"
            " upstream = \"echo\"; streamSettings = { network = \"quic\"; }; } );\n", 2,
            "IP address");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_absent_is_v2ray_default),
        cmocka_unit_test(test_empty_is_none),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_refused),
    };

    wh_log_level = WH_LOG_ERROR;
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

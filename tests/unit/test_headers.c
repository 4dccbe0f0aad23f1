/*
 * test_headers.c -- the mKCP / QUIC packet header obfuscators
 * (src/headers/wh_headers.c): every type's size and byte layout, the counter
 * rules, the observed captures of transports spec 7 and 10, the name parser
 * and the "header" config group, and the receive-side strip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../src/headers/wh_headers.h"

static void
hex(const char *s, uint8_t *out, size_t *len)
{
    size_t n = 0;
    int hi = -1, v = 0;

    for (; *s != '\0'; s++) {
        if (*s == ' ')
            continue;           /* the vectors are spaced for reading */
        if (*s >= '0' && *s <= '9')
            v = *s - '0';
        else if (*s >= 'a' && *s <= 'f')
            v = *s - 'a' + 10;
        else
            fail_msg("bad hex digit '%c'", *s);
        if (hi < 0) {
            hi = v;
        } else {
            out[n++] = (uint8_t) (hi << 4 | v);
            hi = -1;
        }
    }
    assert_int_equal(hi, -1);
    *len = n;
}

/* Writes one header with (h, st) and compares it to the expected hex. */
static void
expect_write(const wh_pkt_header_t *h, wh_pkt_header_state_t *st, const char *want)
{
    uint8_t buf[32], exp[32];
    size_t n;

    memset(buf, 0xee, sizeof(buf));
    hex(want, exp, &n);
    assert_int_equal(n, h->size);
    wh_pkt_header_write(h, st, buf);
    assert_memory_equal(buf, exp, n);
    assert_int_equal(buf[n], 0xee);     /* nothing past size */
}

static void
test_sizes(void **state)
{
    (void) state;
    assert_int_equal(wh_pkt_header_none.size, 0);
    assert_int_equal(wh_pkt_header_srtp.size, 4);
    assert_int_equal(wh_pkt_header_utp.size, 4);
    assert_int_equal(wh_pkt_header_wechat_video.size, 13);
    assert_int_equal(wh_pkt_header_dtls.size, 13);
    assert_int_equal(wh_pkt_header_wireguard.size, 4);
    assert_true(wh_pkt_header_dtls.size <= WH_PKT_HEADER_MAX_SIZE);
    assert_true(wh_pkt_header_wechat_video.size <= WH_PKT_HEADER_MAX_SIZE);
}

static void
test_by_name(void **state)
{
    (void) state;
    assert_ptr_equal(wh_pkt_header_by_name("none"), &wh_pkt_header_none);
    assert_ptr_equal(wh_pkt_header_by_name("srtp"), &wh_pkt_header_srtp);
    assert_ptr_equal(wh_pkt_header_by_name("SRTP"), &wh_pkt_header_srtp);
    assert_ptr_equal(wh_pkt_header_by_name("uTp"), &wh_pkt_header_utp);
    assert_ptr_equal(wh_pkt_header_by_name("wechat-video"), &wh_pkt_header_wechat_video);
    assert_ptr_equal(wh_pkt_header_by_name("WeChat-Video"), &wh_pkt_header_wechat_video);
    assert_ptr_equal(wh_pkt_header_by_name("DTLS"), &wh_pkt_header_dtls);
    assert_ptr_equal(wh_pkt_header_by_name("wireguard"), &wh_pkt_header_wireguard);
    assert_ptr_equal(wh_pkt_header_by_name("NONE"), &wh_pkt_header_none);

    assert_null(wh_pkt_header_by_name(NULL));
    assert_null(wh_pkt_header_by_name(""));
    assert_null(wh_pkt_header_by_name("wechat"));
    assert_null(wh_pkt_header_by_name("wechat_video"));
    assert_null(wh_pkt_header_by_name("srtp "));
    assert_null(wh_pkt_header_by_name("http"));     /* tcp's header, not a packet one */
    assert_null(wh_pkt_header_by_name("tls"));
}

static void
test_none_wireguard(void **state)
{
    wh_pkt_header_state_t st;
    uint8_t buf[4] = { 0xee, 0xee, 0xee, 0xee };

    (void) state;
    wh_pkt_header_init_with(&wh_pkt_header_none, &st, 0x1234);
    wh_pkt_header_write(&wh_pkt_header_none, &st, buf);
    assert_int_equal(buf[0], 0xee);

    wh_pkt_header_init_with(&wh_pkt_header_wireguard, &st, 0x1234);
    expect_write(&wh_pkt_header_wireguard, &st, "04000000");
    expect_write(&wh_pkt_header_wireguard, &st, "04000000");
}

/* Spec 7 observed: srtp b5 e8 e6 f3 then b5 e8 e6 f4 (start 0xe6f2). */
static void
test_srtp(void **state)
{
    wh_pkt_header_state_t st;

    (void) state;
    wh_pkt_header_init_with(&wh_pkt_header_srtp, &st, 0xe6f2);
    expect_write(&wh_pkt_header_srtp, &st, "b5e8e6f3");
    expect_write(&wh_pkt_header_srtp, &st, "b5e8e6f4");

    /* A 16-bit counter: wraps to 0 as V2Ray's uint16 does. */
    wh_pkt_header_init_with(&wh_pkt_header_srtp, &st, 0xfffe);
    expect_write(&wh_pkt_header_srtp, &st, "b5e8ffff");
    expect_write(&wh_pkt_header_srtp, &st, "b5e80000");
    expect_write(&wh_pkt_header_srtp, &st, "b5e80001");
}

static void
test_utp(void **state)
{
    wh_pkt_header_state_t st;

    (void) state;
    wh_pkt_header_init_with(&wh_pkt_header_utp, &st, 0xabcd);
    expect_write(&wh_pkt_header_utp, &st, "abcd0100");
    expect_write(&wh_pkt_header_utp, &st, "abcd0100");   /* id fixed */
}

/* Spec 7 observed a1 08 00 00 37 23 ...; spec 10's mKCP capture carries
 * sequence 0x000001d1. */
static void
test_wechat_video(void **state)
{
    wh_pkt_header_state_t st;

    (void) state;
    wh_pkt_header_init_with(&wh_pkt_header_wechat_video, &st, 0x3722);
    expect_write(&wh_pkt_header_wechat_video, &st, "a10800003723 00101118302230");
    expect_write(&wh_pkt_header_wechat_video, &st, "a10800003724 00101118302230");

    wh_pkt_header_init_with(&wh_pkt_header_wechat_video, &st, 0x01d0);
    expect_write(&wh_pkt_header_wechat_video, &st, "a108000001d100101118302230");

    /* 32 bits wide: a 16-bit start carries past 0xffff instead of wrapping. */
    wh_pkt_header_init_with(&wh_pkt_header_wechat_video, &st, 0xffff);
    expect_write(&wh_pkt_header_wechat_video, &st, "a10800010000 00101118302230");
    st.seq = 0xffffffff;
    expect_write(&wh_pkt_header_wechat_video, &st, "a10800000000 00101118302230");
}

/* Spec 7 observed: 17 fe fd 47 dc 00 00 00 00 00 00 00 11, next
 * ... 00 00 00 01 00 22; L runs 17, 34, 51, 68, 85, 52, 69, 86, 53, ... */
static void
test_dtls(void **state)
{
    static const uint16_t lengths[] = { 17, 34, 51, 68, 85, 52, 69, 86, 53, 70, 87, 54 };
    wh_pkt_header_state_t st;
    uint8_t buf[13];

    (void) state;
    wh_pkt_header_init_with(&wh_pkt_header_dtls, &st, 0x47dc);
    expect_write(&wh_pkt_header_dtls, &st, "17fefd47dc 0000 00000000 0011");
    expect_write(&wh_pkt_header_dtls, &st, "17fefd47dc 0000 00000001 0022");

    wh_pkt_header_init_with(&wh_pkt_header_dtls, &st, 0x0102);
    for (size_t i = 0; i < wh_nelems(lengths); i++) {
        wh_pkt_header_write(&wh_pkt_header_dtls, &st, buf);
        assert_int_equal(buf[3] << 8 | buf[4], 0x0102);
        assert_int_equal((uint32_t) buf[7] << 24 | buf[8] << 16 | buf[9] << 8 | buf[10], i);
        assert_int_equal(buf[11] << 8 | buf[12], lengths[i]);
    }
    /* It stays in 17..100 forever. */
    for (int i = 0; i < 1000; i++) {
        wh_pkt_header_write(&wh_pkt_header_dtls, &st, buf);
        int l = buf[11] << 8 | buf[12];
        assert_true(l >= 17 && l <= 100);
    }
}

/* Random init draws a value per instance; fixed bytes stay fixed. */
static void
test_random_init(void **state)
{
    const wh_pkt_header_t *all[] = {
        &wh_pkt_header_none, &wh_pkt_header_srtp, &wh_pkt_header_utp,
        &wh_pkt_header_wechat_video, &wh_pkt_header_dtls, &wh_pkt_header_wireguard
    };
    wh_pkt_header_state_t st;
    uint8_t buf[13];
    int differ = 0;
    uint16_t first = 0;

    (void) state;
    for (size_t i = 0; i < wh_nelems(all); i++)
        assert_int_equal(wh_pkt_header_init(all[i], &st), WH_OK);

    wh_pkt_header_init(&wh_pkt_header_dtls, &st);
    wh_pkt_header_write(&wh_pkt_header_dtls, &st, buf);
    assert_memory_equal(buf, "\x17\xfe\xfd", 3);
    assert_memory_equal(buf + 5, "\0\0\0\0\0\0\0\x11", 8);

    /* 16 draws of a 16-bit epoch all equal: 2^-240, i.e. broken. */
    for (int i = 0; i < 16; i++) {
        wh_pkt_header_init(&wh_pkt_header_utp, &st);
        if (i == 0)
            first = st.id;
        else if (st.id != first)
            differ = 1;
    }
    assert_true(differ);

    /* wechat-video starts from a 16-bit value. */
    for (int i = 0; i < 64; i++) {
        wh_pkt_header_init(&wh_pkt_header_wechat_video, &st);
        assert_true(st.seq <= 0xffff);
    }
}

static void
test_strip(void **state)
{
    /* Spec 10's mKCP capture with a wechat-video header. */
    static const char *cap =
        "a108000001d100101118302230af201580af357d94af357d94ac3d7d94ac3d7d94ac3d7c94ac3d7c";
    uint8_t dgram[64];
    const uint8_t *p;
    size_t n, len;

    (void) state;
    hex(cap, dgram, &n);
    p = dgram;
    len = n;
    assert_int_equal(wh_pkt_header_strip(&wh_pkt_header_wechat_video, &p, &len), WH_OK);
    assert_ptr_equal(p, dgram + 13);
    assert_int_equal(len, n - 13);
    assert_int_equal(p[0], 0xaf);

    /* Unchecked: any 13 bytes are stripped. */
    memset(dgram, 0, 14);
    p = dgram;
    len = 14;
    assert_int_equal(wh_pkt_header_strip(&wh_pkt_header_dtls, &p, &len), WH_OK);
    assert_int_equal(len, 1);

    /* size bytes or less: dropped, untouched. */
    p = dgram;
    len = 13;
    assert_int_equal(wh_pkt_header_strip(&wh_pkt_header_dtls, &p, &len), WH_ERROR);
    assert_ptr_equal(p, dgram);
    assert_int_equal(len, 13);
    len = 4;
    assert_int_equal(wh_pkt_header_strip(&wh_pkt_header_srtp, &p, &len), WH_ERROR);
    len = 5;
    assert_int_equal(wh_pkt_header_strip(&wh_pkt_header_wireguard, &p, &len), WH_OK);
    assert_int_equal(len, 1);

    /* none: only the empty datagram is dropped. */
    p = dgram;
    len = 0;
    assert_int_equal(wh_pkt_header_strip(&wh_pkt_header_none, &p, &len), WH_ERROR);
    len = 1;
    assert_int_equal(wh_pkt_header_strip(&wh_pkt_header_none, &p, &len), WH_OK);
    assert_ptr_equal(p, dgram);
    assert_int_equal(len, 1);
}

/* Parses text as a libconfig file and runs wh_pkt_header_conf on "s". */
static int
conf(const char *text, const wh_pkt_header_t **h, wh_conf_t *cf)
{
    config_t c;
    config_setting_t *s;
    int rc;

    config_init(&c);
    assert_int_equal(config_read_string(&c, text), CONFIG_TRUE);
    s = config_lookup(&c, "s");
    assert_non_null(s);
    memset(cf, 0, sizeof(*cf));
    cf->file = "t.conf";
    *h = NULL;
    rc = wh_pkt_header_conf(cf, s, h);
    config_destroy(&c);
    return rc;
}

static void
test_conf(void **state)
{
    const wh_pkt_header_t *h;
    wh_conf_t cf;

    (void) state;
    assert_int_equal(conf("s = { };", &h, &cf), WH_DECLINED);
    assert_ptr_equal(h, &wh_pkt_header_none);
    assert_int_equal(conf("s = { header = { type = \"SRTP\"; }; };", &h, &cf), WH_OK);
    assert_ptr_equal(h, &wh_pkt_header_srtp);
    assert_int_equal(conf("s = { header = { type = \"none\"; }; };", &h, &cf), WH_OK);
    assert_ptr_equal(h, &wh_pkt_header_none);

    assert_int_equal(conf("s = {\n header = { };\n};", &h, &cf), WH_ERROR);
    assert_non_null(strstr(cf.error, "\"type\""));
    assert_non_null(strstr(cf.error, " in t.conf:2"));

    assert_int_equal(conf("s = {\n header = {\n type = \"quic\"; }; };", &h, &cf), WH_ERROR);
    assert_non_null(strstr(cf.error, "unknown header type \"quic\""));
    assert_non_null(strstr(cf.error, " in t.conf:3"));

    assert_int_equal(conf("s = { header = { type = 3; }; };", &h, &cf), WH_ERROR);
    assert_string_not_equal(cf.error, "");
    assert_int_equal(conf("s = { header = \"srtp\"; };", &h, &cf), WH_ERROR);
    assert_string_not_equal(cf.error, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_by_name),
        cmocka_unit_test(test_none_wireguard),
        cmocka_unit_test(test_srtp),
        cmocka_unit_test(test_utp),
        cmocka_unit_test(test_wechat_video),
        cmocka_unit_test(test_dtls),
        cmocka_unit_test(test_random_init),
        cmocka_unit_test(test_strip),
        cmocka_unit_test(test_conf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

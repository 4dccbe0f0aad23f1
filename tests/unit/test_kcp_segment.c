/*
 * test_kcp_segment.c -- the mKCP segment codec (modules/kcp/wh_kcp_segment.c,
 * spec 9.3): the segments of spec 10 decoded field by field and re-encoded
 * byte for byte, DATA round trips, several segments in one datagram, every
 * truncation of every type, lengths and counts beyond the datagram, and
 * V2Ray's parsing quirks (empty DATA last, unknown cmd as command-only).
 * Inputs sit at the end of exact-size heap blocks so an over-read shows
 * under a memory checker.
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

#include "wh_core.h"

/* module folders are not on the include path: name it from here */
#include "../../modules/kcp/wh_kcp_segment.h"

static const char ping_hex[] = "ccac0300000000050000000500000005";
static const char term_hex[] = "ccac0200000000050000000500000005";
static const char ack1_hex[] = "ccac00000000030800000000000000010100000000";
static const char ack2_hex[] = "ccac00000000030a0000000200000033020000000000000001";
static const char ack8_hex[] =
    "04190000000003080000000000000001080000000000000001000000020000000300000004000000050000000600000007";
static const char wechat_ack_hex[] = "681400000000030800000000000000000100000000";

static size_t
unhex(uint8_t *dst, size_t size, const char *hex)
{
    size_t n = strlen(hex) / 2, i;
    unsigned v;

    assert_true(n <= size);
    for (i = 0; i < n; i++) {
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        dst[i] = (uint8_t) v;
    }
    return n;
}

/* a heap copy of exactly len bytes: the decoder must stay inside it */
static uint8_t *
exact(const uint8_t *p, size_t len)
{
    uint8_t *c = malloc(len ? len : 1);

    assert_non_null(c);
    memcpy(c, p, len);
    return c;
}

static void
check_reencode(const wh_kcp_seg_t *s, const uint8_t *want, size_t len)
{
    uint8_t out[2048];

    assert_int_equal(wh_kcp_seg_size(s), len);
    assert_int_equal(wh_kcp_seg_encode(s, out, sizeof(out)), (ssize_t) len);
    assert_memory_equal(out, want, len);
    /* one byte short of room */
    assert_int_equal(wh_kcp_seg_encode(s, out, len - 1), -1);
}

static void
test_cmd_vectors(void **state)
{
    uint8_t b[64], *c;
    size_t len;
    wh_kcp_seg_t s;

    len = unhex(b, sizeof(b), ping_hex);
    c = exact(b, len);
    assert_int_equal(wh_kcp_seg_decode(c, len, &s), 16);
    assert_int_equal(s.conv, 0xccac);
    assert_int_equal(s.cmd, WH_KCP_CMD_PING);
    assert_int_equal(s.opt, 0);
    assert_int_equal(s.u.cmd.una, 5);
    assert_int_equal(s.u.cmd.rcv_next, 5);
    assert_int_equal(s.u.cmd.rto, 5);
    check_reencode(&s, b, len);
    free(c);

    len = unhex(b, sizeof(b), term_hex);
    c = exact(b, len);
    assert_int_equal(wh_kcp_seg_decode(c, len, &s), 16);
    assert_int_equal(s.cmd, WH_KCP_CMD_TERMINATE);
    assert_int_equal(s.u.cmd.una, 5);
    assert_int_equal(s.u.cmd.rcv_next, 5);
    assert_int_equal(s.u.cmd.rto, 5);
    check_reencode(&s, b, len);
    free(c);

    /* built from fields, not from a decode */
    memset(&s, 0, sizeof(s));
    s.conv = 0xccac;
    s.cmd = WH_KCP_CMD_PING;
    s.u.cmd.una = 5;
    s.u.cmd.rcv_next = 5;
    s.u.cmd.rto = 5;
    len = unhex(b, sizeof(b), ping_hex);
    check_reencode(&s, b, len);
}

static void
test_ack_vectors(void **state)
{
    uint8_t b[128], *c;
    size_t len;
    unsigned i;
    wh_kcp_seg_t s;
    uint32_t sns[8];

    len = unhex(b, sizeof(b), ack1_hex);
    c = exact(b, len);
    assert_int_equal(wh_kcp_seg_decode(c, len, &s), 21);
    assert_int_equal(s.conv, 0xccac);
    assert_int_equal(s.cmd, WH_KCP_CMD_ACK);
    assert_int_equal(s.u.ack.wnd, 776);
    assert_int_equal(s.u.ack.rcv_next, 0);
    assert_int_equal(s.u.ack.ts, 1);
    assert_int_equal(s.u.ack.count, 1);
    assert_int_equal(wh_kcp_ack_sn(&s.u.ack, 0), 0);
    check_reencode(&s, b, len);
    free(c);

    len = unhex(b, sizeof(b), ack2_hex);
    c = exact(b, len);
    assert_int_equal(wh_kcp_seg_decode(c, len, &s), 25);
    assert_int_equal(s.u.ack.wnd, 778);
    assert_int_equal(s.u.ack.rcv_next, 2);
    assert_int_equal(s.u.ack.ts, 51);
    assert_int_equal(s.u.ack.count, 2);
    assert_int_equal(wh_kcp_ack_sn(&s.u.ack, 0), 0);
    assert_int_equal(wh_kcp_ack_sn(&s.u.ack, 1), 1);
    check_reencode(&s, b, len);
    free(c);

    len = unhex(b, sizeof(b), ack8_hex);
    c = exact(b, len);
    assert_int_equal(wh_kcp_seg_decode(c, len, &s), 17 + 32);
    assert_int_equal(s.conv, 0x0419);
    assert_int_equal(s.u.ack.wnd, 776);
    assert_int_equal(s.u.ack.rcv_next, 0);
    assert_int_equal(s.u.ack.ts, 1);
    assert_int_equal(s.u.ack.count, 8);
    for (i = 0; i < 8; i++) {
        assert_int_equal(wh_kcp_ack_sn(&s.u.ack, i), i);
    }
    check_reencode(&s, b, len);
    free(c);

    /* the same ACK from a host-order sn list */
    memset(&s, 0, sizeof(s));
    for (i = 0; i < 8; i++) {
        sns[i] = i;
    }
    s.conv = 0x0419;
    s.cmd = WH_KCP_CMD_ACK;
    s.u.ack.wnd = 776;
    s.u.ack.ts = 1;
    s.u.ack.count = 8;
    s.u.ack.sn_list = sns;
    check_reencode(&s, b, len);

    len = unhex(b, sizeof(b), wechat_ack_hex);
    assert_int_equal(wh_kcp_seg_decode(b, len, &s), 21);
    assert_int_equal(s.conv, 0x6814);
    assert_int_equal(s.u.ack.wnd, 776);
    assert_int_equal(s.u.ack.ts, 0);
    assert_int_equal(s.u.ack.count, 1);
    assert_int_equal(wh_kcp_ack_sn(&s.u.ack, 0), 0);
}

static void
test_ack_limits(void **state)
{
    static uint32_t sns[255];
    uint8_t out[2048];
    wh_kcp_seg_t s, d;
    unsigned i;

    for (i = 0; i < 255; i++) {
        sns[i] = 0x01020304u * i;
    }
    memset(&s, 0, sizeof(s));
    s.cmd = WH_KCP_CMD_ACK;
    s.u.ack.sn_list = sns;

    /* empty ACK: 17 bytes */
    assert_int_equal(wh_kcp_seg_encode(&s, out, sizeof(out)), 17);
    assert_int_equal(wh_kcp_seg_decode(out, 17, &d), 17);
    assert_int_equal(d.u.ack.count, 0);

    s.u.ack.count = 128;
    assert_int_equal(wh_kcp_seg_encode(&s, out, sizeof(out)), 17 + 512);
    assert_int_equal(wh_kcp_seg_decode(out, 17 + 512, &d), 17 + 512);
    assert_int_equal(wh_kcp_ack_sn(&d.u.ack, 127), sns[127]);

    /* more than V2Ray's 128 is not sent ... */
    s.u.ack.count = 129;
    assert_int_equal(wh_kcp_seg_size(&s), 0);
    assert_int_equal(wh_kcp_seg_encode(&s, out, sizeof(out)), -1);

    /* ... but is accepted, as V2Ray accepts it */
    out[16] = 255;
    for (i = 0; i < 255; i++) {
        out[17 + 4 * i] = (uint8_t) (sns[i] >> 24);
        out[18 + 4 * i] = (uint8_t) (sns[i] >> 16);
        out[19 + 4 * i] = (uint8_t) (sns[i] >> 8);
        out[20 + 4 * i] = (uint8_t) sns[i];
    }
    assert_int_equal(wh_kcp_seg_decode(out, 17 + 1020, &d), 17 + 1020);
    assert_int_equal(d.u.ack.count, 255);
    assert_int_equal(wh_kcp_ack_sn(&d.u.ack, 254), sns[254]);
}

static void
test_data_round_trip(void **state)
{
    uint8_t payload[1326], out[1400], *c;
    wh_kcp_seg_t s, d;
    size_t len;
    ssize_t n;

    for (len = 0; len < sizeof(payload); len++) {
        payload[len] = (uint8_t) (len * 13);
    }

    for (len = 1; len <= sizeof(payload); len += 265) {
        memset(&s, 0, sizeof(s));
        s.conv = 0xbeef;
        s.cmd = WH_KCP_CMD_DATA;
        s.opt = WH_KCP_OPT_CLOSE;
        s.u.data.ts = 0xfedcba98;
        s.u.data.sn = 0x01020304;
        s.u.data.una = 0x7fffffff;
        s.u.data.len = (uint16_t) len;
        s.u.data.payload = payload;

        n = wh_kcp_seg_encode(&s, out, sizeof(out));
        assert_int_equal(n, (ssize_t) (18 + len));
        /* layout of 9.3, big-endian */
        assert_int_equal(out[0], 0xbe);
        assert_int_equal(out[1], 0xef);
        assert_int_equal(out[2], 1);
        assert_int_equal(out[3], 1);
        assert_int_equal(out[4], 0xfe);
        assert_int_equal(out[8], 0x01);
        assert_int_equal(out[11], 0x04);
        assert_int_equal(out[12], 0x7f);
        assert_int_equal(out[16], (uint8_t) (len >> 8));
        assert_int_equal(out[17], (uint8_t) len);
        assert_memory_equal(out + 18, payload, len);

        c = exact(out, (size_t) n);
        assert_int_equal(wh_kcp_seg_decode(c, (size_t) n, &d), n);
        assert_int_equal(d.conv, 0xbeef);
        assert_int_equal(d.cmd, WH_KCP_CMD_DATA);
        assert_int_equal(d.opt, WH_KCP_OPT_CLOSE);
        assert_int_equal(d.u.data.ts, 0xfedcba98);
        assert_int_equal(d.u.data.sn, 0x01020304);
        assert_int_equal(d.u.data.una, 0x7fffffff);
        assert_int_equal(d.u.data.len, len);
        /* the payload is not copied: it points into the datagram */
        assert_ptr_equal(d.u.data.payload, c + 18);
        check_reencode(&d, out, (size_t) n);
        free(c);
    }
}

static void
test_empty_data_quirk(void **state)
{
    uint8_t out[64], *c;
    wh_kcp_seg_t s, segs[4];
    size_t used;
    ssize_t n;

    memset(&s, 0, sizeof(s));
    s.conv = 1;
    s.cmd = WH_KCP_CMD_DATA;
    s.u.data.sn = 9;
    n = wh_kcp_seg_encode(&s, out, sizeof(out));
    assert_int_equal(n, 18);

    /* alone, V2Ray refuses it: it wants 15 bytes after the prefix */
    c = exact(out, 18);
    assert_int_equal(wh_kcp_seg_decode(c, 18, &s), -1);
    assert_int_equal(wh_kcp_segs_decode(c, 18, segs, 4, &used), -1);
    assert_int_equal(used, 0);
    free(c);

    /* followed by a PING it parses, and so does the PING */
    unhex(out + 18, sizeof(out) - 18, ping_hex);
    c = exact(out, 34);
    assert_int_equal(wh_kcp_segs_decode(c, 34, segs, 4, &used), 2);
    assert_int_equal(used, 34);
    assert_int_equal(segs[0].cmd, WH_KCP_CMD_DATA);
    assert_int_equal(segs[0].u.data.len, 0);
    assert_int_equal(segs[0].u.data.sn, 9);
    assert_int_equal(segs[1].cmd, WH_KCP_CMD_PING);
    free(c);
}

static void
test_unknown_cmd(void **state)
{
    uint8_t b[16];
    wh_kcp_seg_t s;

    unhex(b, sizeof(b), ping_hex);
    b[2] = 0x77;
    b[3] = 0xfe;
    assert_int_equal(wh_kcp_seg_decode(b, 16, &s), 16);
    assert_int_equal(s.cmd, 0x77);
    assert_int_equal(s.opt, 0xfe);
    assert_int_equal(s.u.cmd.rto, 5);
    check_reencode(&s, b, 16);
}

static void
test_several_per_datagram(void **state)
{
    uint8_t dgram[256], *c;
    uint8_t payload[5] = { 'h', 'e', 'l', 'l', 'o' };
    wh_kcp_seg_t s, segs[8];
    size_t len = 0, used;
    ssize_t n;

    memset(&s, 0, sizeof(s));
    s.conv = 0x0419;
    s.cmd = WH_KCP_CMD_DATA;
    s.u.data.sn = 3;
    s.u.data.len = sizeof(payload);
    s.u.data.payload = payload;
    n = wh_kcp_seg_encode(&s, dgram, sizeof(dgram));
    assert_int_equal(n, 23);
    len += (size_t) n;
    len += unhex(dgram + len, sizeof(dgram) - len, ack8_hex);
    len += unhex(dgram + len, sizeof(dgram) - len, term_hex);
    len += unhex(dgram + len, sizeof(dgram) - len, ack1_hex);

    c = exact(dgram, len);
    assert_int_equal(wh_kcp_segs_decode(c, len, segs, 8, &used), 4);
    assert_int_equal(used, len);
    assert_int_equal(segs[0].cmd, WH_KCP_CMD_DATA);
    assert_memory_equal(segs[0].u.data.payload, "hello", 5);
    assert_int_equal(segs[1].cmd, WH_KCP_CMD_ACK);
    assert_int_equal(segs[1].u.ack.count, 8);
    assert_int_equal(wh_kcp_ack_sn(&segs[1].u.ack, 7), 7);
    assert_int_equal(segs[2].cmd, WH_KCP_CMD_TERMINATE);
    assert_int_equal(segs[3].cmd, WH_KCP_CMD_ACK);
    assert_int_equal(segs[3].conv, 0xccac);

    /* max reached: stop there, the caller may go on from used */
    assert_int_equal(wh_kcp_segs_decode(c, len, segs, 2, &used), 2);
    assert_int_equal(used, 23 + 49);
    assert_int_equal(wh_kcp_segs_decode(c + used, len - used, segs, 8, &used), 2);
    free(c);

    /* trailing junk: the good segments are kept, parsing stops there */
    memcpy(dgram + len, "\x01\x02\x03", 3);
    c = exact(dgram, len + 3);
    assert_int_equal(wh_kcp_segs_decode(c, len + 3, segs, 8, &used), 4);
    assert_int_equal(used, len);
    free(c);

    /* the second one truncated: only the first survives */
    c = exact(dgram, 23 + 30);
    assert_int_equal(wh_kcp_segs_decode(c, 23 + 30, segs, 8, NULL), 1);
    free(c);

    /* nothing at all */
    assert_int_equal(wh_kcp_segs_decode(dgram, 0, segs, 8, &used), -1);
    assert_int_equal(used, 0);
}

/* every proper prefix of a segment is refused, on an exact-size buffer */
static void
check_all_prefixes_fail(const uint8_t *seg, size_t len)
{
    wh_kcp_seg_t s;
    uint8_t *c;
    size_t cut;

    for (cut = 0; cut < len; cut++) {
        c = exact(seg, cut);
        assert_int_equal(wh_kcp_seg_decode(c, cut, &s), -1);
        free(c);
    }
    c = exact(seg, len);
    assert_int_equal(wh_kcp_seg_decode(c, len, &s), (ssize_t) len);
    free(c);
}

static void
test_truncated(void **state)
{
    uint8_t b[256];
    uint8_t payload[40];
    wh_kcp_seg_t s;
    size_t len;

    check_all_prefixes_fail(b, unhex(b, sizeof(b), ping_hex));
    check_all_prefixes_fail(b, unhex(b, sizeof(b), term_hex));
    check_all_prefixes_fail(b, unhex(b, sizeof(b), ack1_hex));
    check_all_prefixes_fail(b, unhex(b, sizeof(b), ack8_hex));

    memset(payload, 0xab, sizeof(payload));
    memset(&s, 0, sizeof(s));
    s.cmd = WH_KCP_CMD_DATA;
    s.u.data.len = sizeof(payload);
    s.u.data.payload = payload;
    len = (size_t) wh_kcp_seg_encode(&s, b, sizeof(b));
    check_all_prefixes_fail(b, len);

    s.u.data.len = 1;
    len = (size_t) wh_kcp_seg_encode(&s, b, sizeof(b));
    assert_int_equal(len, 19);
    check_all_prefixes_fail(b, len);
}

static void
test_oversized_lengths(void **state)
{
    uint8_t b[64], *c;
    wh_kcp_seg_t s;

    /* DATA claiming 100 payload bytes with 10 present */
    memset(b, 0, sizeof(b));
    b[2] = WH_KCP_CMD_DATA;
    b[16] = 0;
    b[17] = 100;
    c = exact(b, 28);
    assert_int_equal(wh_kcp_seg_decode(c, 28, &s), -1);
    free(c);

    /* the largest length field, 65535, in a small datagram */
    b[16] = 0xff;
    b[17] = 0xff;
    c = exact(b, 40);
    assert_int_equal(wh_kcp_seg_decode(c, 40, &s), -1);
    free(c);

    /* one byte more than the datagram holds */
    b[16] = 0;
    b[17] = 11;
    c = exact(b, 28);
    assert_int_equal(wh_kcp_seg_decode(c, 28, &s), -1);
    free(c);
    b[17] = 10;
    c = exact(b, 28);
    assert_int_equal(wh_kcp_seg_decode(c, 28, &s), 28);
    free(c);

    /* ACK claiming 5 sns with 2 present, and 255 with none */
    memset(b, 0, sizeof(b));
    b[2] = WH_KCP_CMD_ACK;
    b[16] = 5;
    c = exact(b, 25);
    assert_int_equal(wh_kcp_seg_decode(c, 25, &s), -1);
    free(c);
    b[16] = 255;
    c = exact(b, 17);
    assert_int_equal(wh_kcp_seg_decode(c, 17, &s), -1);
    free(c);
}

static void
test_encode_rejects(void **state)
{
    uint8_t out[64];
    wh_kcp_seg_t s;

    /* a DATA length without its payload */
    memset(&s, 0, sizeof(s));
    s.cmd = WH_KCP_CMD_DATA;
    s.u.data.len = 4;
    assert_int_equal(wh_kcp_seg_encode(&s, out, sizeof(out)), -1);

    /* an ACK count without sns */
    memset(&s, 0, sizeof(s));
    s.cmd = WH_KCP_CMD_ACK;
    s.u.ack.count = 2;
    assert_int_equal(wh_kcp_seg_encode(&s, out, sizeof(out)), -1);

    /* no room for a command-only segment */
    memset(&s, 0, sizeof(s));
    s.cmd = WH_KCP_CMD_TERMINATE;
    assert_int_equal(wh_kcp_seg_encode(&s, out, 15), -1);
    assert_int_equal(wh_kcp_seg_encode(&s, out, 16), 16);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmd_vectors),
        cmocka_unit_test(test_ack_vectors),
        cmocka_unit_test(test_ack_limits),
        cmocka_unit_test(test_data_round_trip),
        cmocka_unit_test(test_empty_data_quirk),
        cmocka_unit_test(test_unknown_cmd),
        cmocka_unit_test(test_several_per_datagram),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_oversized_lengths),
        cmocka_unit_test(test_encode_rejects),
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

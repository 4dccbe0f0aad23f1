/*
 * Unit tests for the PROXY protocol codec (src/stream/wh_proxy_protocol.c):
 * the parser on good, bad and cut headers; the encoder through the parser.
 * Build: gcc -std=gnu11 -Wall -Wextra -Werror -Isrc/stream \
 *        tests/unit/test_proxy_protocol.c src/stream/wh_proxy_protocol.c -lcmocka
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <cmocka.h>

#include "wh_proxy_protocol.h"

static const uint8_t SIG[12] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

static ssize_t parse_str(const char *s, wh_proxy_header_t *h, const char **err)
{
    return wh_proxy_parse((const uint8_t *)s, strlen(s), h, err);
}

/* The transport peeks a growing window: no prefix may be refused or accepted. */
static void assert_all_prefixes_need_more(const uint8_t *buf, size_t len)
{
    for (size_t n = 0; n < len; n++) {
        wh_proxy_header_t h;
        const char *err = NULL;
        ssize_t r = wh_proxy_parse(buf, n, &h, &err);
        if (r != 0)
            fail_msg("prefix of %zu/%zu bytes returned %zd (%s)", n, len, r,
                     err ? err : "-");
    }
}

static void assert_rejected(const void *buf, size_t len, const char *why)
{
    const char *err = NULL;
    wh_proxy_header_t h;

    assert_int_equal(wh_proxy_parse(buf, len, &h, &err), -1);
    assert_non_null(err);
    if (why)
        assert_string_equal(err, why);
}

static void assert_rejected_str(const char *s, const char *why)
{
    assert_rejected(s, strlen(s), why);
}

static void assert_v4(const struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
    char txt[INET_ADDRSTRLEN];

    assert_int_equal(sin->sin_family, AF_INET);
    assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, txt, sizeof(txt)));
    assert_string_equal(txt, ip);
    assert_int_equal(ntohs(sin->sin_port), port);
}

static void assert_v6(const struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
    struct in6_addr want;

    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(inet_pton(AF_INET6, ip, &want), 1);
    assert_memory_equal(&sin6->sin6_addr, &want, sizeof(want));
    assert_int_equal(ntohs(sin6->sin6_port), port);
}

/* ---- v1 good ---- */

static void test_v1_tcp4(void **state)
{
    (void)state;
    const char *hdr = "PROXY TCP4 192.168.0.1 10.0.0.2 56324 443\r\n";
    char buf[128];
    wh_proxy_header_t h;

    snprintf(buf, sizeof(buf), "%sGET / HTTP/1.1\r\n", hdr);
    assert_int_equal(parse_str(buf, &h, NULL), (ssize_t)strlen(hdr));
    assert_int_equal(h.version, 1);
    assert_int_equal(h.local, 0);
    assert_v4(&h.src, "192.168.0.1", 56324);
    assert_v4(&h.dst, "10.0.0.2", 443);
    assert_int_equal(parse_str(hdr, &h, NULL), (ssize_t)strlen(hdr));
    assert_all_prefixes_need_more((const uint8_t *)hdr, strlen(hdr));

    assert_int_equal(parse_str("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", &h, NULL), 44);
    assert_v4(&h.dst, "255.255.255.255", 65535);
    /* the parser must not need h */
    assert_int_equal(parse_str(hdr, NULL, NULL), (ssize_t)strlen(hdr));
}

static void test_v1_tcp6(void **state)
{
    (void)state;
    const char *hdr = "PROXY TCP6 2001:db8::1 ::ffff:192.0.2.7 1 8080\r\n";
    char buf[128];
    wh_proxy_header_t h;

    snprintf(buf, sizeof(buf), "%s\x16\x03\x01", hdr);
    assert_int_equal(parse_str(buf, &h, NULL), (ssize_t)strlen(hdr));
    assert_int_equal(h.version, 1);
    assert_int_equal(h.local, 0);
    assert_v6(&h.src, "2001:db8::1", 1);
    assert_v6(&h.dst, "::ffff:192.0.2.7", 8080);
    assert_all_prefixes_need_more((const uint8_t *)hdr, strlen(hdr));
}

/* Every prefix of every textual IPv6 form must be "need more". */
static void test_v1_tcp6_address_prefixes(void **state)
{
    (void)state;
    static const char *const addrs[] = {
        "::", "::1", "1::", "fe80::1:2:3:4:5:6", "1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7::", "ABCD:ef01::2345:6789", "::ffff:10.20.30.40",
        "1:2:3:4:5:6:255.255.255.255", "1::0.0.0.0",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    };
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        char line[WH_PROXY_V1_MAX + 1];
        wh_proxy_header_t h;
        int n = snprintf(line, sizeof(line), "PROXY TCP6 %s ::1 1 2\r\n", addrs[i]);
        assert_true(n > 0 && n <= WH_PROXY_V1_MAX);
        assert_int_equal(parse_str(line, &h, NULL), n);
        assert_v6(&h.src, addrs[i], 1);
        assert_all_prefixes_need_more((const uint8_t *)line, (size_t)n);
    }
}

static void test_v1_unknown(void **state)
{
    (void)state;
    wh_proxy_header_t h;
    const char *a = "PROXY UNKNOWN\r\n";
    const char *b = "PROXY UNKNOWN ffff:f...f:ffff 1.2.3.4 junk\r\nPAYLOAD";
    char line[WH_PROXY_V1_MAX + 2];

    h.local = 0;
    assert_int_equal(parse_str(a, &h, NULL), 15);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.local, 1);
    assert_all_prefixes_need_more((const uint8_t *)a, strlen(a));
    assert_int_equal(parse_str(b, &h, NULL), (ssize_t)(strstr(b, "PAYLOAD") - b));
    assert_int_equal(h.local, 1);
    assert_all_prefixes_need_more((const uint8_t *)b, (size_t)(strstr(b, "PAYLOAD") - b));

    /* exactly the spec maximum is fine, one more byte is not */
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + WH_PROXY_V1_MAX - 2, "\r\n", 2);
    assert_int_equal(wh_proxy_parse((uint8_t *)line, WH_PROXY_V1_MAX, &h, NULL), WH_PROXY_V1_MAX);
    assert_all_prefixes_need_more((uint8_t *)line, WH_PROXY_V1_MAX);
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + WH_PROXY_V1_MAX - 1, "\r\n", 2);
    assert_rejected(line, WH_PROXY_V1_MAX + 1, "v1 line too long");
}

/* ---- v1 malformed ---- */

static void test_v1_bad_signature(void **state)
{
    (void)state;
    assert_rejected_str("GET / HTTP/1.1\r\n", "bad signature");
    assert_rejected_str("G", "bad signature");          /* at once, from the first byte */
    assert_rejected_str("PROX!", "bad signature");
    assert_rejected_str("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "bad signature");
    assert_rejected_str("PROXY\r\n", "bad signature");
    assert_rejected_str("\x16\x03\x01\x02\x00", "bad signature");
}

static void test_v1_malformed(void **state)
{
    (void)state;
    assert_rejected_str("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "bad v1 protocol");
    assert_rejected_str("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "bad v1 address");
    assert_rejected_str("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "bad v1 address");
    assert_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n", "bad v1 port");
    assert_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "bad v1 line");
    assert_rejected_str("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "bad v1 protocol");
    assert_rejected_str("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "bad v1 protocol");
    assert_rejected_str("PROXY UNKNOWNX\r\n", "bad v1 protocol");
    assert_rejected_str("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "bad v1 address");
    assert_rejected_str("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "bad v1 address");
    assert_rejected_str("PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "bad v1 address");
    assert_rejected_str("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "bad v1 address");
    assert_rejected_str("PROXY TCP6 ::1 1:::2 1 2\r\n", "bad v1 address");
    assert_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "bad v1 port");
    assert_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", "bad v1 port");
    assert_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", "bad v1 port");
    assert_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "bad v1 port");
    assert_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 0x50\r\n", "bad v1 port");
    assert_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "bad v1 line");
    assert_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "bad v1 line");
    assert_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "bad v1 line");
    assert_rejected_str("PROXY TCP4\r\n", "bad v1 line");
    assert_rejected_str("PROXY UNKNOWN\rX", "bad v1 line");
}

/* A bad field is refused as soon as it cannot grow into a good one. */
static void test_v1_early_verdicts(void **state)
{
    (void)state;
    wh_proxy_header_t h;

    assert_int_equal(parse_str("PROXY TCP4 1.2.", &h, NULL), 0);
    assert_int_equal(parse_str("PROXY TCP6 2001:db8:", &h, NULL), 0);
    assert_int_equal(parse_str("PROXY TCP6 ::ffff:1.2", &h, NULL), 0);
    assert_int_equal(parse_str("PROXY TCP4 1.2.3.4 5.6.7.8 6553", &h, NULL), 0);
    assert_rejected_str("PROXY TCP4 256", "bad v1 address");
    assert_rejected_str("PROXY TCP4 1.2.3.4.", "bad v1 address");
    assert_rejected_str("PROXY TCP4 1..", "bad v1 address");
    assert_rejected_str("PROXY TCP6 1:::", "bad v1 address");
    assert_rejected_str("PROXY TCP6 12345", "bad v1 address");
    assert_rejected_str("PROXY TCP6 1:2:3:4:5:6:7:8:", "bad v1 address");
    assert_rejected_str("PROXY TCP6 1:1.2.", "bad v1 address");
    assert_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 65536", "bad v1 port");
    assert_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 +", "bad v1 port");
    assert_rejected_str("PROXY TCPX", "bad v1 protocol");
}

static void test_v1_too_long(void **state)
{
    (void)state;
    char line[300];
    wh_proxy_header_t h;

    /* UNKNOWN never ending: need more up to 106 bytes, refused at 107 */
    memset(line, 'a', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    assert_int_equal(wh_proxy_parse((uint8_t *)line, WH_PROXY_V1_MAX - 1, &h, NULL), 0);
    assert_rejected(line, WH_PROXY_V1_MAX, "v1 line too long");
    assert_rejected(line, sizeof(line), "v1 line too long");

    /* a TCP6 line of valid fields whose CRLF comes too late */
    snprintf(line, sizeof(line),
             "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 "
             "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 65535 65535\r\n");
    assert_true(strlen(line) > WH_PROXY_V1_MAX);
    assert_rejected_str(line, "v1 line too long");
}

/* ---- v2 ---- */

static size_t v2_build(uint8_t *out, uint8_t vercmd, uint8_t fam,
                       const void *addrs, size_t alen, size_t tlvlen)
{
    size_t plen = alen + tlvlen;

    memcpy(out, SIG, 12);
    out[12] = vercmd;
    out[13] = fam;
    out[14] = (uint8_t)(plen >> 8);
    out[15] = (uint8_t)plen;
    if (alen)
        memcpy(out + 16, addrs, alen);
    for (size_t i = 0; i < tlvlen; i++)
        out[16 + alen + i] = (uint8_t)(0xa0 + i);
    return 16 + plen;
}

static void test_v2_inet(void **state)
{
    (void)state;
    static const uint8_t a4[12] = { 192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb };
    /* an ALPN TLV ("h2") plus a NOOP TLV, then payload */
    static const uint8_t tlv[] = { 0x01, 0x00, 0x02, 'h', '2', 0x04, 0x00, 0x01, 0x00 };
    uint8_t buf[256];
    wh_proxy_header_t h;

    for (int with_tlv = 0; with_tlv < 2; with_tlv++) {
        for (uint8_t fam = 0x11; fam <= 0x12; fam++) {
            size_t n = v2_build(buf, 0x21, fam, a4, sizeof(a4), 0);
            if (with_tlv) {
                memcpy(buf + n, tlv, sizeof(tlv));
                n += sizeof(tlv);
                buf[15] = (uint8_t)(12 + sizeof(tlv));
            }
            memcpy(buf + n, "PAYLOAD", 7);
            assert_int_equal(wh_proxy_parse(buf, n + 7, &h, NULL), (ssize_t)n);
            assert_int_equal(wh_proxy_parse(buf, n, &h, NULL), (ssize_t)n);
            assert_int_equal(h.version, 2);
            assert_int_equal(h.local, 0);
            assert_v4(&h.src, "192.0.2.1", 56324);
            assert_v4(&h.dst, "198.51.100.2", 443);
            assert_all_prefixes_need_more(buf, n);
        }
    }
}

static void test_v2_inet6(void **state)
{
    (void)state;
    uint8_t a6[36];
    uint8_t buf[256];
    wh_proxy_header_t h;

    inet_pton(AF_INET6, "2001:db8::7", a6);
    inet_pton(AF_INET6, "fe80::1", a6 + 16);
    a6[32] = 0x1f; a6[33] = 0x90;   /* 8080 */
    a6[34] = 0x00; a6[35] = 0x50;   /* 80 */
    for (size_t tlvlen = 0; tlvlen <= 20; tlvlen += 20) {
        for (uint8_t fam = 0x21; fam <= 0x22; fam++) {
            size_t n = v2_build(buf, 0x21, fam, a6, sizeof(a6), tlvlen);
            memcpy(buf + n, "\x16\x03\x01", 3);
            assert_int_equal(wh_proxy_parse(buf, n + 3, &h, NULL), (ssize_t)(16 + 36 + tlvlen));
            assert_int_equal(h.version, 2);
            assert_int_equal(h.local, 0);
            assert_v6(&h.src, "2001:db8::7", 8080);
            assert_v6(&h.dst, "fe80::1", 80);
            assert_all_prefixes_need_more(buf, n);
        }
    }
}

static void test_v2_local(void **state)
{
    (void)state;
    static const uint8_t a4[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2 };
    uint8_t buf[64];
    wh_proxy_header_t h;
    size_t n;

    /* the usual health check: LOCAL, UNSPEC, no address block */
    n = v2_build(buf, 0x20, 0x00, NULL, 0, 0);
    buf[n] = 'x';
    h.local = 0;
    assert_int_equal(wh_proxy_parse(buf, n + 1, &h, NULL), 16);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.local, 1);
    assert_all_prefixes_need_more(buf, n);

    /* LOCAL carrying addresses: they are ignored, the length still skipped */
    n = v2_build(buf, 0x20, 0x11, a4, sizeof(a4), 3);
    assert_int_equal(wh_proxy_parse(buf, n, &h, NULL), 16 + 15);
    assert_int_equal(h.local, 1);
    assert_all_prefixes_need_more(buf, n);
}

static void test_v2_unspec_and_unix(void **state)
{
    (void)state;
    uint8_t unixaddr[216] = { 0 };
    uint8_t buf[512];
    wh_proxy_header_t h;
    size_t n;

    /* PROXY command with AF_UNSPEC: keep the real peer */
    n = v2_build(buf, 0x21, 0x00, NULL, 0, 4);
    assert_int_equal(wh_proxy_parse(buf, n, &h, NULL), 20);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.local, 1);
    assert_all_prefixes_need_more(buf, n);

    memcpy(unixaddr, "/run/a.sock", 11);
    for (uint8_t fam = 0x31; fam <= 0x32; fam++) {
        n = v2_build(buf, 0x21, fam, unixaddr, sizeof(unixaddr), 0);
        assert_int_equal(wh_proxy_parse(buf, n, &h, NULL), 16 + 216);
        assert_int_equal(h.local, 1);
        assert_all_prefixes_need_more(buf, n);
    }
    n = v2_build(buf, 0x21, 0x31, unixaddr, 215, 0);
    assert_rejected(buf, n, "v2 length too short for family");
}

static void test_v2_malformed(void **state)
{
    (void)state;
    static const uint8_t a[36] = { 0 };
    uint8_t buf[128];
    size_t n;

    memcpy(buf, SIG, 12);
    buf[3] = 0x0b;
    assert_rejected(buf, 4, "bad signature");
    buf[3] = 0x0a;
    buf[11] = 0x0b;
    assert_rejected(buf, 12, "bad signature");

    /* version 1 in the binary header; refused with only 13 bytes seen */
    n = v2_build(buf, 0x11, 0x11, a, 12, 0);
    assert_rejected(buf, n, "bad v2 version");
    assert_rejected(buf, 13, "bad v2 version");
    n = v2_build(buf, 0x31, 0x11, a, 12, 0);
    assert_rejected(buf, n, "bad v2 version");

    n = v2_build(buf, 0x22, 0x11, a, 12, 0);
    assert_rejected(buf, n, "bad v2 command");
    assert_rejected(buf, 13, "bad v2 command");
    n = v2_build(buf, 0x2f, 0x11, a, 12, 0);
    assert_rejected(buf, n, "bad v2 command");

    static const uint8_t bad_fams[] = { 0x41, 0x10, 0x13, 0x20, 0x23, 0x30, 0x01, 0xff };
    for (size_t i = 0; i < sizeof(bad_fams); i++) {
        n = v2_build(buf, 0x21, bad_fams[i], a, 36, 0);
        assert_rejected(buf, n, "bad v2 family");
        assert_rejected(buf, 14, "bad v2 family");
    }

    /* length shorter than the address block, refused from the 16-byte header alone */
    n = v2_build(buf, 0x21, 0x21, a, 12, 0);
    assert_rejected(buf, n, "v2 length too short for family");
    assert_rejected(buf, 16, "v2 length too short for family");
    n = v2_build(buf, 0x21, 0x21, a, 35, 0);
    assert_rejected(buf, n, "v2 length too short for family");
    n = v2_build(buf, 0x21, 0x11, a, 11, 0);
    assert_rejected(buf, n, "v2 length too short for family");
}

static void test_v2_truncated(void **state)
{
    (void)state;
    static const uint8_t a4[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2 };
    uint8_t buf[128];
    wh_proxy_header_t h;
    size_t n = v2_build(buf, 0x21, 0x11, a4, sizeof(a4), 40);

    /* the announced TLVs have not all arrived yet */
    assert_int_equal(wh_proxy_parse(buf, n - 1, &h, NULL), 0);
    assert_int_equal(wh_proxy_parse(buf, 16 + 12, &h, NULL), 0);
    assert_int_equal(wh_proxy_parse(buf, n, &h, NULL), (ssize_t)n);
}

/* ---- encoder, read back by the parser ---- */

static struct sockaddr_storage ip_addr(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
    } else {
        assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
    }
    return ss;
}

/* Encodes src -> dst, checks the parser takes exactly the header (with a
 * payload behind it, and no prefix of it), and returns what it read. */
static wh_proxy_header_t round_trip(int version, const struct sockaddr_storage *src,
                                    const struct sockaddr_storage *dst, size_t *len)
{
    uint8_t buf[WH_PROXY_HEADER_MAX + 8];
    wh_proxy_header_t h;
    const char *err = NULL;
    size_t n;

    memset(buf, 0xee, sizeof(buf));
    n = wh_proxy_encode(version, (const struct sockaddr *)src, (const struct sockaddr *)dst, buf);
    assert_true(n > 0 && n <= WH_PROXY_HEADER_MAX);
    assert_int_equal(buf[WH_PROXY_HEADER_MAX], 0xee);   /* nothing written past the room */
    memcpy(buf + n, "payload", 7);
    if (wh_proxy_parse(buf, n + 7, &h, &err) != (ssize_t)n)
        fail_msg("v%d header of %zu bytes not read back (%s)", version, n, err ? err : "-");
    assert_int_equal(h.version, version);
    assert_all_prefixes_need_more(buf, n);
    if (len)
        *len = n;
    return h;
}

static void test_encode_inet(void **state)
{
    (void)state;
    struct sockaddr_storage src = ip_addr("203.0.113.7", 56324);
    struct sockaddr_storage dst = ip_addr("192.0.2.1", 443);
    uint8_t buf[WH_PROXY_HEADER_MAX];
    wh_proxy_header_t h;
    size_t n;

    for (int v = 1; v <= 2; v++) {
        h = round_trip(v, &src, &dst, &n);
        assert_int_equal(h.local, 0);
        assert_v4(&h.src, "203.0.113.7", 56324);
        assert_v4(&h.dst, "192.0.2.1", 443);
        assert_int_equal(n, v == 1 ? 44 : 28);
    }
    n = wh_proxy_encode(1, (struct sockaddr *)&src, (struct sockaddr *)&dst, buf);
    assert_memory_equal(buf, "PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n", n);
    /* version 2, PROXY command, TCP over IPv4, 12 address bytes */
    n = wh_proxy_encode(2, (struct sockaddr *)&src, (struct sockaddr *)&dst, buf);
    assert_memory_equal(buf, SIG, sizeof(SIG));
    assert_int_equal(buf[12], 0x21);
    assert_int_equal(buf[13], 0x11);
    assert_int_equal(buf[14] << 8 | buf[15], 12);
    assert_int_equal(wh_proxy_encode(3, (struct sockaddr *)&src, (struct sockaddr *)&dst, buf), 0);
}

static void test_encode_inet6(void **state)
{
    (void)state;
    /* the longest v1 line there is */
    struct sockaddr_storage src = ip_addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535);
    struct sockaddr_storage dst = ip_addr("2001:db8::1", 8443);
    wh_proxy_header_t h;
    size_t n;

    for (int v = 1; v <= 2; v++) {
        h = round_trip(v, &src, &dst, &n);
        assert_int_equal(h.local, 0);
        assert_v6(&h.src, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535);
        assert_v6(&h.dst, "2001:db8::1", 8443);
        assert_int_equal(n, v == 1 ? 75 : 52);
    }
}

/* One family per header: IPv4 beside IPv6 is written IPv4-mapped. */
static void test_encode_mixed_families(void **state)
{
    (void)state;
    struct sockaddr_storage v4 = ip_addr("198.51.100.9", 40000);
    struct sockaddr_storage v6 = ip_addr("::1", 443);
    wh_proxy_header_t h;

    for (int v = 1; v <= 2; v++) {
        h = round_trip(v, &v4, &v6, NULL);
        assert_v6(&h.src, "::ffff:198.51.100.9", 40000);
        assert_v6(&h.dst, "::1", 443);
        h = round_trip(v, &v6, &v4, NULL);
        assert_v6(&h.src, "::1", 443);
        assert_v6(&h.dst, "::ffff:198.51.100.9", 40000);
    }
}

/* A client without an IP address (a unix socket): UNKNOWN, LOCAL; a
 * destination without one: the unspecified address of the client's. */
static void test_encode_unix(void **state)
{
    (void)state;
    struct sockaddr_storage un, v4 = ip_addr("203.0.113.7", 1234);
    uint8_t buf[WH_PROXY_HEADER_MAX];
    wh_proxy_header_t h;
    size_t n;

    memset(&un, 0, sizeof(un));
    ((struct sockaddr_un *)&un)->sun_family = AF_UNIX;
    strcpy(((struct sockaddr_un *)&un)->sun_path, "/run/x.sock");

    n = wh_proxy_encode(1, (struct sockaddr *)&un, (struct sockaddr *)&v4, buf);
    assert_int_equal(n, 15);
    assert_memory_equal(buf, "PROXY UNKNOWN\r\n", 15);
    h = round_trip(1, &un, &un, NULL);
    assert_int_equal(h.local, 1);

    n = wh_proxy_encode(2, (struct sockaddr *)&un, NULL, buf);
    assert_int_equal(n, 16);
    assert_int_equal(buf[12], 0x20);                    /* LOCAL */
    assert_int_equal(buf[13], 0x00);                    /* UNSPEC */
    h = round_trip(2, &un, &un, NULL);
    assert_int_equal(h.local, 1);

    for (int v = 1; v <= 2; v++) {
        h = round_trip(v, &v4, &un, NULL);
        assert_int_equal(h.local, 0);
        assert_v4(&h.src, "203.0.113.7", 1234);
        assert_v4(&h.dst, "0.0.0.0", 0);
    }
    n = wh_proxy_encode(1, (struct sockaddr *)&v4, NULL, buf);
    assert_memory_equal(buf, "PROXY TCP4 203.0.113.7 0.0.0.0 1234 0\r\n", n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),
        cmocka_unit_test(test_v1_tcp6),
        cmocka_unit_test(test_v1_tcp6_address_prefixes),
        cmocka_unit_test(test_v1_unknown),
        cmocka_unit_test(test_v1_bad_signature),
        cmocka_unit_test(test_v1_malformed),
        cmocka_unit_test(test_v1_early_verdicts),
        cmocka_unit_test(test_v1_too_long),
        cmocka_unit_test(test_v2_inet),
        cmocka_unit_test(test_v2_inet6),
        cmocka_unit_test(test_v2_local),
        cmocka_unit_test(test_v2_unspec_and_unix),
        cmocka_unit_test(test_v2_malformed),
        cmocka_unit_test(test_v2_truncated),
        cmocka_unit_test(test_encode_inet),
        cmocka_unit_test(test_encode_inet6),
        cmocka_unit_test(test_encode_mixed_families),
        cmocka_unit_test(test_encode_unix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

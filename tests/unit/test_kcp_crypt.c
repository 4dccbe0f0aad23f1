/*
 * test_kcp_crypt.c -- the mKCP security envelope (modules/kcp/wh_kcp_crypt.c,
 * spec 9.2): every mKCP vector of spec 10 opened and re-sealed byte for byte
 * (simple security, the wechat-video capture's body, the seed capture with
 * its nonce), round trips, and the datagrams that must be dropped: short,
 * truncated, tampered at every byte, wrong length field, wrong seed.
 */
#include "wh_config.h"

#ifdef WH_HAVE_MODULE_KCP

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "wh_core.h"

/* module folders are not on the include path: name it from here */
#include "../../modules/kcp/wh_kcp_crypt.h"

#define SEED "wharf-interop-kcp-seed"

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

/* spec 10, simple security, conv 0xccac: plaintext segment, datagram */
static const char *const simple_vectors[][2] = {
    { "ccac0300000000050000000500000005",
      "9d12069d9d02ca319e02ca319e07ca319e02ca319e07" },
    { "ccac0200000000050000000500000005",
      "e1369918e12655b4e32655b4e32355b4e32655b4e323" },
    { "ccac00000000030800000000000000010100000000",
      "7d37eb317d22279d7d22279d7e2a279d7e2a279d7e2b269d7e2b26" },
    { "ccac00000000030a0000000200000033020000000000000001",
      "ea1b9c41ea0250edea0250ede90850ede90a50ede93952ede93952ede93953" },
};

static const char seed_datagram[] =
    "428d4e2941c93ad3b42358cf37108c88dcf3e99e8ddf9d3b3b8c8e9bd99e3b321ec8751ed1162f640590f708b5adce452d8113ee3eb170418a1e23c0fab18c3d2c04cd7bcf3a8159360d373afe";
static const char seed_plain[] =
    "04190000000003080000000000000001080000000000000001000000020000000300000004000000050000000600000007";

static void
test_fnv1a(void **state)
{
    assert_int_equal(wh_kcp_fnv1a32((const uint8_t *) "", 0), 0x811c9dc5u);
    assert_int_equal(wh_kcp_fnv1a32((const uint8_t *) "a", 1), 0xe40c292cu);
}

static void
test_simple_vectors(void **state)
{
    uint8_t plain[256], wire[256], body[256], out[256], *p;
    size_t i, plen, wlen;
    ssize_t n;
    wh_kcp_crypt_t c;

    assert_int_equal(wh_kcp_crypt_init(&c, NULL, 0), WH_OK);
    for (i = 0; i < wh_nelems(simple_vectors); i++) {
        plen = unhex(plain, sizeof(plain), simple_vectors[i][0]);
        wlen = unhex(wire, sizeof(wire), simple_vectors[i][1]);
        assert_int_equal(wlen, plen + 6);

        memcpy(body, wire, wlen);
        p = NULL;
        n = wh_kcp_crypt_open(&c, body, wlen, &p);
        assert_int_equal(n, (ssize_t) plen);
        assert_ptr_equal(p, body + 6);
        assert_memory_equal(p, plain, plen);

        n = wh_kcp_crypt_seal(&c, out, sizeof(out), plain, plen, NULL);
        assert_int_equal(n, (ssize_t) wlen);
        assert_memory_equal(out, wire, wlen);

        /* the context-free pair gives the same bytes */
        n = wh_kcp_simple_seal(out, wlen, plain, plen);
        assert_int_equal(n, (ssize_t) wlen);
        assert_memory_equal(out, wire, wlen);
        n = wh_kcp_simple_open(out, wlen, &p);
        assert_int_equal(n, (ssize_t) plen);
        assert_memory_equal(p, plain, plen);
    }
    wh_kcp_crypt_free(&c);
}

static void
test_wechat_video_body(void **state)
{
    uint8_t dgram[128], plain[64], out[128], *p;
    size_t dlen, plen;
    ssize_t n;

    dlen = unhex(dgram, sizeof(dgram),
                 "a108000001d100101118302230af201580af357d94af357d94ac3d7d94ac3d7d94ac3d7c94ac3d7c");
    plen = unhex(plain, sizeof(plain), "681400000000030800000000000000000100000000");

    /* the wechat-video header is 13 bytes; the body follows */
    n = wh_kcp_simple_open(dgram + 13, dlen - 13, &p);
    assert_int_equal(n, (ssize_t) plen);
    assert_memory_equal(p, plain, plen);

    dlen = unhex(dgram, sizeof(dgram),
                 "a108000001d100101118302230af201580af357d94af357d94ac3d7d94ac3d7d94ac3d7c94ac3d7c");
    n = wh_kcp_simple_seal(out, sizeof(out), plain, plen);
    assert_int_equal(n, (ssize_t) (dlen - 13));
    assert_memory_equal(out, dgram + 13, dlen - 13);
}

static void
test_simple_round_trip(void **state)
{
    uint8_t plain[1400], out[1500], *p;
    size_t len, i;
    ssize_t n;

    for (i = 0; i < sizeof(plain); i++) {
        plain[i] = (uint8_t) (i * 7 + 3);
    }
    /* every length mod 4, so the XOR chain ends at each phase */
    for (len = 1; len <= sizeof(plain); len += (len < 40 ? 1 : 97)) {
        n = wh_kcp_simple_seal(out, sizeof(out), plain, len);
        assert_int_equal(n, (ssize_t) (len + 6));
        n = wh_kcp_simple_open(out, len + 6, &p);
        assert_int_equal(n, (ssize_t) len);
        assert_memory_equal(p, plain, len);
    }
}

static void
test_simple_short_and_truncated(void **state)
{
    uint8_t wire[64], body[64], out[64], *p = NULL;
    size_t wlen, len;

    wlen = unhex(wire, sizeof(wire), simple_vectors[2][1]);
    /* 6 bytes or less: nothing to open */
    for (len = 0; len <= 6; len++) {
        memcpy(body, wire, wlen);
        assert_int_equal(wh_kcp_simple_open(body, len, &p), -1);
    }
    /* cut anywhere: the length field or checksum no longer agree */
    for (len = 7; len < wlen; len++) {
        memcpy(body, wire, wlen);
        assert_int_equal(wh_kcp_simple_open(body, len, &p), -1);
    }
    /* an empty plaintext seals (6 bytes) but never opens, as in V2Ray */
    assert_int_equal(wh_kcp_simple_seal(out, sizeof(out), NULL, 0), 6);
    assert_int_equal(wh_kcp_simple_open(out, 6, &p), -1);
    assert_null(p);
}

static void
test_simple_tampered(void **state)
{
    uint8_t wire[64], body[64], *p;
    size_t wlen, i;
    int bit;

    wlen = unhex(wire, sizeof(wire), simple_vectors[3][1]);
    for (i = 0; i < wlen; i++) {
        for (bit = 0; bit < 8; bit++) {
            memcpy(body, wire, wlen);
            body[i] ^= (uint8_t) (1u << bit);
            assert_int_equal(wh_kcp_simple_open(body, wlen, &p), -1);
        }
    }
}

static void
test_simple_wrong_length_field(void **state)
{
    uint8_t b[32], *p;
    uint32_t h;
    size_t i, len = 10;

    /* a valid checksum over L ‖ P, but L says 9 for 10 bytes of P */
    memset(b, 0x5a, sizeof(b));
    b[4] = 0;
    b[5] = 9;
    h = wh_kcp_fnv1a32(b + 4, len + 2);
    b[0] = (uint8_t) (h >> 24);
    b[1] = (uint8_t) (h >> 16);
    b[2] = (uint8_t) (h >> 8);
    b[3] = (uint8_t) h;
    for (i = 4; i < len + 6; i++) {
        b[i] ^= b[i - 4];
    }
    assert_int_equal(wh_kcp_simple_open(b, len + 6, &p), -1);
}

static void
test_simple_seal_limits(void **state)
{
    static uint8_t big[65536 + 6], src[65536];
    uint8_t out[32], plain[16] = { 1 };

    /* out one byte short */
    assert_int_equal(wh_kcp_simple_seal(out, 6 + 15, plain, 16), -1);
    assert_int_equal(wh_kcp_simple_seal(out, 6 + 16, plain, 16), 22);
    /* L is 16 bits */
    assert_int_equal(wh_kcp_simple_seal(big, sizeof(big), src, 65536), -1);
    assert_int_equal(wh_kcp_simple_seal(big, sizeof(big), src, 65535), 65535 + 6);
}

static void
test_seed_key(void **state)
{
    uint8_t key[16], want[16];

    unhex(want, sizeof(want), "c2204f3f1181985eed57d0bcf52ce270");
    assert_int_equal(wh_kcp_seed_key(SEED, strlen(SEED), key), WH_OK);
    assert_memory_equal(key, want, 16);

    /* "" is a seed too: SHA-256 of nothing */
    unhex(want, sizeof(want), "e3b0c44298fc1c149afbf4c8996fb924");
    assert_int_equal(wh_kcp_seed_key("", 0, key), WH_OK);
    assert_memory_equal(key, want, 16);
}

static void
test_seed_vector(void **state)
{
    uint8_t wire[256], body[256], plain[128], out[256], *p = NULL;
    size_t wlen, plen;
    ssize_t n;
    wh_kcp_crypt_t c;

    wlen = unhex(wire, sizeof(wire), seed_datagram);
    plen = unhex(plain, sizeof(plain), seed_plain);
    assert_int_equal(wlen, plen + 28);

    assert_int_equal(wh_kcp_crypt_init(&c, SEED, strlen(SEED)), WH_OK);
    assert_int_equal(c.seeded, 1);

    memcpy(body, wire, wlen);
    n = wh_kcp_crypt_open(&c, body, wlen, &p);
    assert_int_equal(n, (ssize_t) plen);
    assert_ptr_equal(p, body + 12);
    assert_memory_equal(p, plain, plen);

    /* the same nonce seals to the captured bytes */
    n = wh_kcp_crypt_seal(&c, out, sizeof(out), plain, plen, wire);
    assert_int_equal(n, (ssize_t) wlen);
    assert_memory_equal(out, wire, wlen);

    /* the contexts are reusable: open the capture a second time */
    memcpy(body, wire, wlen);
    assert_int_equal(wh_kcp_crypt_open(&c, body, wlen, &p), (ssize_t) plen);
    assert_memory_equal(p, plain, plen);

    wh_kcp_crypt_free(&c);
}

static void
test_seed_round_trip(void **state)
{
    uint8_t plain[1350], a[1400], b[1400], *p;
    size_t len, i;
    ssize_t n;
    wh_kcp_crypt_t c;

    for (i = 0; i < sizeof(plain); i++) {
        plain[i] = (uint8_t) (i ^ 0xa5);
    }
    assert_int_equal(wh_kcp_crypt_init(&c, "", 0), WH_OK);
    assert_int_equal(c.seeded, 1);

    for (len = 1; len <= sizeof(plain); len += 149) {
        n = wh_kcp_crypt_seal(&c, a, sizeof(a), plain, len, NULL);
        assert_int_equal(n, (ssize_t) (len + 28));
        n = wh_kcp_crypt_seal(&c, b, sizeof(b), plain, len, NULL);
        assert_int_equal(n, (ssize_t) (len + 28));
        /* random nonces: two seals of the same bytes differ */
        assert_memory_not_equal(a, b, 12);

        n = wh_kcp_crypt_open(&c, a, len + 28, &p);
        assert_int_equal(n, (ssize_t) len);
        assert_memory_equal(p, plain, len);
        n = wh_kcp_crypt_open(&c, b, len + 28, &p);
        assert_int_equal(n, (ssize_t) len);
        assert_memory_equal(p, plain, len);
    }

    /* out too small by one */
    assert_int_equal(wh_kcp_crypt_seal(&c, a, 28 + 9, plain, 10, NULL), -1);
    wh_kcp_crypt_free(&c);
}

static void
test_seed_rejects(void **state)
{
    uint8_t wire[256], body[256], *p;
    size_t wlen, i, len;
    wh_kcp_crypt_t c, other;

    wlen = unhex(wire, sizeof(wire), seed_datagram);
    assert_int_equal(wh_kcp_crypt_init(&c, SEED, strlen(SEED)), WH_OK);

    /* 28 bytes or less: dropped before any decryption */
    for (len = 0; len <= 28; len++) {
        memcpy(body, wire, wlen);
        assert_int_equal(wh_kcp_crypt_open(&c, body, len, &p), -1);
    }
    /* truncated: the tag moves */
    for (len = 29; len < wlen; len++) {
        memcpy(body, wire, wlen);
        assert_int_equal(wh_kcp_crypt_open(&c, body, len, &p), -1);
    }
    /* one flipped bit in nonce, ciphertext or tag */
    for (i = 0; i < wlen; i++) {
        memcpy(body, wire, wlen);
        body[i] ^= 0x10;
        assert_int_equal(wh_kcp_crypt_open(&c, body, wlen, &p), -1);
    }
    /* a failed open leaves the context usable */
    memcpy(body, wire, wlen);
    assert_int_equal(wh_kcp_crypt_open(&c, body, wlen, &p), (ssize_t) (wlen - 28));

    /* another seed, and the empty seed, cannot open it */
    assert_int_equal(wh_kcp_crypt_init(&other, SEED "x", strlen(SEED) + 1), WH_OK);
    memcpy(body, wire, wlen);
    assert_int_equal(wh_kcp_crypt_open(&other, body, wlen, &p), -1);
    wh_kcp_crypt_free(&other);
    assert_int_equal(wh_kcp_crypt_init(&other, "", 0), WH_OK);
    memcpy(body, wire, wlen);
    assert_int_equal(wh_kcp_crypt_open(&other, body, wlen, &p), -1);
    wh_kcp_crypt_free(&other);

    /* simple security does not take a seed datagram either */
    assert_int_equal(wh_kcp_crypt_init(&other, NULL, 0), WH_OK);
    memcpy(body, wire, wlen);
    assert_int_equal(wh_kcp_crypt_open(&other, body, wlen, &p), -1);
    wh_kcp_crypt_free(&other);

    wh_kcp_crypt_free(&c);
}

static void
test_overhead_and_mss(void **state)
{
    wh_kcp_crypt_t simple, seed;

    assert_int_equal(wh_kcp_crypt_init(&simple, NULL, 0), WH_OK);
    assert_int_equal(wh_kcp_crypt_init(&seed, SEED, strlen(SEED)), WH_OK);

    assert_int_equal(wh_kcp_crypt_overhead(&simple), 6);
    assert_int_equal(wh_kcp_crypt_overhead(&seed), 28);

    /* spec 9.1 defaults: mtu 1350, no header -> MSS 1326 */
    assert_int_equal(wh_kcp_crypt_mss(&simple, 1350, 0), 1326);
    /* seed only subtracts the tag: a full datagram is 1316+18+28 = 1362 */
    assert_int_equal(wh_kcp_crypt_mss(&seed, 1350, 0), 1316);
    assert_int_equal(wh_kcp_crypt_mss(&seed, 1350, 0) + 18 + wh_kcp_crypt_overhead(&seed), 1362);
    /* a 13-byte wechat-video header */
    assert_int_equal(wh_kcp_crypt_mss(&simple, 1350, 13), 1313);
    assert_int_equal(wh_kcp_crypt_mss(&simple, 20, 0), 0);

    wh_kcp_crypt_free(&simple);
    wh_kcp_crypt_free(&seed);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv1a),
        cmocka_unit_test(test_simple_vectors),
        cmocka_unit_test(test_wechat_video_body),
        cmocka_unit_test(test_simple_round_trip),
        cmocka_unit_test(test_simple_short_and_truncated),
        cmocka_unit_test(test_simple_tampered),
        cmocka_unit_test(test_simple_wrong_length_field),
        cmocka_unit_test(test_simple_seal_limits),
        cmocka_unit_test(test_seed_key),
        cmocka_unit_test(test_seed_vector),
        cmocka_unit_test(test_seed_round_trip),
        cmocka_unit_test(test_seed_rejects),
        cmocka_unit_test(test_overhead_and_mss),
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

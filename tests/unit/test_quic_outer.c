/*
 * test_quic_outer.c -- V2Ray's QUIC outer datagram layer
 * (src/headers/wh_quic_outer.c): spec 10's key vectors, the defaults of spec
 * 8.1, the layout of 8.2 checked against an independent EVP one-shot with
 * the vector keys, round trips for both AEADs and every header, short and
 * tampered datagrams, and the 1452-byte inner limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../src/headers/wh_quic_outer.h"

/* Spec 10. */
static const uint8_t K_INTEROP[32] = {
    0xae, 0xbc, 0x32, 0xcf, 0xf1, 0xdc, 0x20, 0x8b, 0x43, 0x99, 0x13, 0x27,
    0x27, 0xa5, 0x63, 0xfd, 0xf5, 0xb9, 0x37, 0x0e, 0xbb, 0x0e, 0x8b, 0x4b,
    0x94, 0xb3, 0x32, 0xad, 0xcc, 0x3a, 0x40, 0x4c
};
static const uint8_t K_EMPTY[32] = {
    0x44, 0x5a, 0xc9, 0x5f, 0xc8, 0xde, 0xb3, 0x09, 0x9f, 0xd1, 0xa8, 0xce,
    0x33, 0x17, 0xf8, 0x87, 0x39, 0xdc, 0xe6, 0x2f, 0x8a, 0x3e, 0xcc, 0xda,
    0xa3, 0x9f, 0x2c, 0x54, 0x07, 0x83, 0x33, 0x61
};

static const wh_pkt_header_t *const HEADERS[] = {
    &wh_pkt_header_none, &wh_pkt_header_srtp, &wh_pkt_header_utp,
    &wh_pkt_header_wechat_video, &wh_pkt_header_dtls, &wh_pkt_header_wireguard
};

static void
make(wh_quic_outer_t *o, const char *sec, const char *key, const wh_pkt_header_t *h)
{
    wh_quic_outer_conf_t conf;

    assert_int_equal(wh_quic_outer_conf_set(&conf, sec, key, h), WH_OK);
    assert_int_equal(wh_quic_outer_init(o, &conf), WH_OK);
}

static void
fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t) (seed * 31 + i * 7);
}

/* Independent AEAD, one-shot, so the tests do not only check the code
 * against itself. */
static int
ref_aead(int enc, wh_quic_security_e sec, const uint8_t *k, const uint8_t *nonce,
         const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
    const EVP_CIPHER *c = sec == WH_QUIC_SEC_AES_128_GCM ? EVP_aes_128_gcm()
                                                         : EVP_chacha20_poly1305();
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, f = 0, ok;

    ok = EVP_CipherInit_ex(ctx, c, NULL, k, nonce, enc) == 1;
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, tag) == 1;
    ok = ok && EVP_CipherUpdate(ctx, out, &n, in, (int) len) == 1
         && EVP_CipherFinal_ex(ctx, out + n, &f) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

static void
test_key_vectors(void **state)
{
    uint8_t k[32];

    (void) state;
    assert_int_equal(wh_quic_outer_derive_key("wharf-interop-quic-key", k), WH_OK);
    assert_memory_equal(k, K_INTEROP, 32);
    assert_int_equal(wh_quic_outer_derive_key("", k), WH_OK);
    assert_memory_equal(k, K_EMPTY, 32);
    assert_int_equal(wh_quic_outer_derive_key(NULL, k), WH_OK);
    assert_memory_equal(k, K_EMPTY, 32);
}

static void
test_security_names(void **state)
{
    (void) state;
    assert_int_equal(wh_quic_security_by_name("aes-128-gcm"), WH_QUIC_SEC_AES_128_GCM);
    assert_int_equal(wh_quic_security_by_name("AES-128-GCM"), WH_QUIC_SEC_AES_128_GCM);
    assert_int_equal(wh_quic_security_by_name("chacha20-poly1305"),
                     WH_QUIC_SEC_CHACHA20_POLY1305);
    assert_int_equal(wh_quic_security_by_name("ChaCha20-Poly1305"),
                     WH_QUIC_SEC_CHACHA20_POLY1305);
    /* Anything else is none, silently (spec 8.1). */
    assert_int_equal(wh_quic_security_by_name(NULL), WH_QUIC_SEC_NONE);
    assert_int_equal(wh_quic_security_by_name("none"), WH_QUIC_SEC_NONE);
    assert_int_equal(wh_quic_security_by_name(""), WH_QUIC_SEC_NONE);
    assert_int_equal(wh_quic_security_by_name("auto"), WH_QUIC_SEC_NONE);
    assert_int_equal(wh_quic_security_by_name("aes-256-gcm"), WH_QUIC_SEC_NONE);
    assert_int_equal(wh_quic_security_by_name("aes-128-gcm "), WH_QUIC_SEC_NONE);
    assert_int_equal(wh_quic_security_by_name("aes-128"), WH_QUIC_SEC_NONE);
    assert_string_equal(wh_quic_security_name(WH_QUIC_SEC_AES_128_GCM), "aes-128-gcm");
    assert_string_equal(wh_quic_security_name(WH_QUIC_SEC_CHACHA20_POLY1305),
                        "chacha20-poly1305");
    assert_string_equal(wh_quic_security_name(WH_QUIC_SEC_NONE), "none");
}

static int
conf_read(const char *text, wh_quic_outer_conf_t *qc, wh_conf_t *cf)
{
    config_t c;
    int rc;

    config_init(&c);
    assert_int_equal(config_read_string(&c, text), CONFIG_TRUE);
    memset(cf, 0, sizeof(*cf));
    cf->file = "t.conf";
    rc = wh_quic_outer_conf_read(cf, config_lookup(&c, "quic"), qc);
    config_destroy(&c);
    return rc;
}

static void
test_conf(void **state)
{
    wh_quic_outer_conf_t qc;
    wh_conf_t cf;

    (void) state;
    /* Absent quicSettings: AES-128-GCM under K(""), no header (8.1). */
    assert_int_equal(conf_read("x = 1;", &qc, &cf), WH_OK);
    assert_int_equal(qc.security, WH_QUIC_SEC_AES_128_GCM);
    assert_memory_equal(qc.key, K_EMPTY, 32);
    assert_ptr_equal(qc.header, &wh_pkt_header_none);
    assert_int_equal(wh_quic_outer_conf_default(&qc), WH_OK);
    assert_int_equal(qc.security, WH_QUIC_SEC_AES_128_GCM);
    assert_memory_equal(qc.key, K_EMPTY, 32);

    /* Present but empty: none. */
    assert_int_equal(conf_read("quic = { };", &qc, &cf), WH_OK);
    assert_int_equal(qc.security, WH_QUIC_SEC_NONE);
    assert_ptr_equal(qc.header, &wh_pkt_header_none);

    assert_int_equal(conf_read("quic = { security = \"Chacha20-Poly1305\"; "
                               "key = \"wharf-interop-quic-key\"; "
                               "header = { type = \"wireguard\"; }; };", &qc, &cf), WH_OK);
    assert_int_equal(qc.security, WH_QUIC_SEC_CHACHA20_POLY1305);
    assert_memory_equal(qc.key, K_INTEROP, 32);
    assert_ptr_equal(qc.header, &wh_pkt_header_wireguard);

    assert_int_equal(conf_read("quic = { security = \"rot13\"; };", &qc, &cf), WH_OK);
    assert_int_equal(qc.security, WH_QUIC_SEC_NONE);

    assert_int_equal(conf_read("quic = {\n header = { };\n};", &qc, &cf), WH_ERROR);
    assert_non_null(strstr(cf.error, " in t.conf:2"));
    assert_int_equal(conf_read("quic = {\n\n header = { type = \"x\"; }; };", &qc, &cf),
                     WH_ERROR);
    assert_non_null(strstr(cf.error, " in t.conf:3"));
    assert_int_equal(conf_read("quic = { key = 5; };", &qc, &cf), WH_ERROR);
    assert_string_not_equal(cf.error, "");
}

static void
test_sizes(void **state)
{
    wh_quic_outer_t o;

    (void) state;
    make(&o, "aes-128-gcm", "", &wh_pkt_header_dtls);
    assert_int_equal(wh_quic_outer_prefix(&o), 13 + 12);
    assert_int_equal(wh_quic_outer_overhead(&o), 13 + 28);
    assert_int_equal(wh_quic_outer_max_inner(&o, 0), 1452);
    assert_int_equal(wh_quic_outer_max_inner(&o, 65527), 1452);
    assert_int_equal(wh_quic_outer_max_inner(&o, 1472), 1472 - 41);  /* IPv4, MTU 1500 */
    assert_int_equal(wh_quic_outer_max_inner(&o, 1452 + 41), 1452);
    assert_int_equal(wh_quic_outer_max_inner(&o, 1452 + 40), 1451);
    assert_int_equal(wh_quic_outer_max_inner(&o, 41), 0);
    assert_int_equal(wh_quic_outer_max_inner(&o, 10), 0);
    wh_quic_outer_free(&o);

    make(&o, NULL, NULL, NULL);
    assert_int_equal(wh_quic_outer_prefix(&o), 0);
    assert_int_equal(wh_quic_outer_overhead(&o), 0);
    assert_int_equal(wh_quic_outer_max_inner(&o, 1472), 1452);
    wh_quic_outer_free(&o);

    make(&o, "chacha20-poly1305", "k", &wh_pkt_header_srtp);
    assert_int_equal(wh_quic_outer_prefix(&o), 16);
    assert_int_equal(wh_quic_outer_overhead(&o), 32);
    wh_quic_outer_free(&o);

    /* Our largest datagram fits V2Ray's read buffer. */
    assert_true(WH_QUIC_OUTER_MAX_OUTER <= WH_QUIC_OUTER_PEER_READ_BUF);
}

/* Seal with every header and both AEADs; check the layout with the
 * reference AEAD under spec 10's K, then open. */
static void
roundtrip(const char *sec, wh_quic_security_e want_sec, const uint8_t *k)
{
    static const size_t lens[] = { 0, 1, 15, 16, 17, 100, 1252, 1451, 1452 };
    uint8_t buf[WH_QUIC_OUTER_MAX_OUTER + 8], inner[1452], ref[1452], *out;

    for (size_t hi = 0; hi < wh_nelems(HEADERS); hi++) {
        const wh_pkt_header_t *h = HEADERS[hi];
        wh_quic_outer_t tx, rx;
        uint8_t nonce_prev[12] = { 0 };

        make(&tx, sec, "wharf-interop-quic-key", h);
        make(&rx, sec, "wharf-interop-quic-key", h);
        assert_int_equal(tx.conf.security, want_sec);
        /* A sender with a known header state, to check the bytes too. */
        wh_pkt_header_init_with(h, &tx.hstate, 0x1000);

        for (size_t li = 0; li < wh_nelems(lens); li++) {
            size_t len = lens[li], pre = h->size + 12;
            wh_pkt_header_state_t exp_st;
            uint8_t exp_hdr[WH_PKT_HEADER_MAX_SIZE];
            ssize_t n;

            exp_st = tx.hstate;
            wh_pkt_header_write(h, &exp_st, exp_hdr);

            fill(inner, len, (unsigned) (li + hi));
            memcpy(buf + pre, inner, len);
            n = wh_quic_outer_seal(&tx, buf, sizeof(buf), len);
            assert_int_equal(n, (ssize_t) (h->size + 12 + len + 16));
            assert_memory_equal(buf, exp_hdr, h->size);
            assert_memory_equal(&tx.hstate, &exp_st, sizeof(exp_st));
            /* Fresh nonce each time. */
            assert_memory_not_equal(buf + h->size, nonce_prev, 12);
            memcpy(nonce_prev, buf + h->size, 12);

            assert_true(ref_aead(0, want_sec, k, buf + h->size, buf + pre, len,
                                 ref, buf + pre + len));
            assert_memory_equal(ref, inner, len);

            assert_int_equal(wh_quic_outer_open(&rx, buf, (size_t) n, &out),
                             (ssize_t) len);
            assert_ptr_equal(out, buf + pre);
            assert_memory_equal(out, inner, len);
        }
        wh_quic_outer_free(&tx);
        wh_quic_outer_free(&rx);
    }
}

static void
test_roundtrip_aes(void **state)
{
    (void) state;
    roundtrip("aes-128-gcm", WH_QUIC_SEC_AES_128_GCM, K_INTEROP);
}

static void
test_roundtrip_chacha(void **state)
{
    (void) state;
    roundtrip("chacha20-poly1305", WH_QUIC_SEC_CHACHA20_POLY1305, K_INTEROP);
}

/* A datagram built by the reference AEAD (as a V2Ray peer would) opens: the
 * default conf with K("") and no header, and chacha with a wireguard header. */
static void
test_open_foreign(void **state)
{
    static const uint8_t nonce[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
    uint8_t inner[1252], buf[1400], *out;
    wh_quic_outer_conf_t qc;
    wh_quic_outer_t o;

    (void) state;
    fill(inner, sizeof(inner), 3);
    inner[0] = 0xc0;            /* looks like a long-header Initial; irrelevant */

    memcpy(buf, nonce, 12);
    assert_true(ref_aead(1, WH_QUIC_SEC_AES_128_GCM, K_EMPTY, nonce, inner,
                         sizeof(inner), buf + 12, buf + 12 + sizeof(inner)));
    assert_int_equal(wh_quic_outer_conf_default(&qc), WH_OK);
    assert_int_equal(wh_quic_outer_init(&o, &qc), WH_OK);
    assert_int_equal(wh_quic_outer_open(&o, buf, 12 + sizeof(inner) + 16, &out),
                     (ssize_t) sizeof(inner));
    assert_memory_equal(out, inner, sizeof(inner));
    wh_quic_outer_free(&o);

    memcpy(buf, "\x04\0\0\0", 4);
    memcpy(buf + 4, nonce, 12);
    assert_true(ref_aead(1, WH_QUIC_SEC_CHACHA20_POLY1305, K_INTEROP, nonce, inner,
                         100, buf + 16, buf + 16 + 100));
    make(&o, "chacha20-poly1305", "wharf-interop-quic-key", &wh_pkt_header_wireguard);
    assert_int_equal(wh_quic_outer_open(&o, buf, 16 + 100 + 16, &out), 100);
    assert_memory_equal(out, inner, 100);
    wh_quic_outer_free(&o);
}

static void
test_security_none(void **state)
{
    uint8_t buf[64], *out;
    wh_quic_outer_t o;

    (void) state;
    make(&o, "none", "ignored", &wh_pkt_header_srtp);
    wh_pkt_header_init_with(&wh_pkt_header_srtp, &o.hstate, 0xe6f2);
    memcpy(buf + 4, "hello", 5);
    assert_int_equal(wh_quic_outer_seal(&o, buf, sizeof(buf), 5), 9);
    assert_memory_equal(buf, "\xb5\xe8\xe6\xf3hello", 9);
    assert_int_equal(wh_quic_outer_open(&o, buf, 9, &out), 5);
    assert_ptr_equal(out, buf + 4);
    assert_int_equal(wh_quic_outer_open(&o, buf, 5, &out), 1);
    assert_int_equal(wh_quic_outer_open(&o, buf, 4, &out), -1);
    assert_int_equal(wh_quic_outer_open(&o, buf, 0, &out), -1);
    wh_quic_outer_free(&o);

    make(&o, NULL, NULL, NULL);
    memcpy(buf, "abc", 3);
    assert_int_equal(wh_quic_outer_seal(&o, buf, sizeof(buf), 3), 3);
    assert_memory_equal(buf, "abc", 3);
    assert_int_equal(wh_quic_outer_open(&o, buf, 3, &out), 3);
    assert_ptr_equal(out, buf);
    assert_int_equal(wh_quic_outer_open(&o, buf, 0, &out), -1);
    wh_quic_outer_free(&o);
}

static void
test_short(void **state)
{
    uint8_t buf[128], *out;
    wh_quic_outer_t o;
    ssize_t n;

    (void) state;
    for (int c = 0; c < 2; c++) {
        make(&o, c ? "chacha20-poly1305" : "aes-128-gcm", "k", &wh_pkt_header_dtls);
        for (size_t len = 0; len < 13 + 28; len++) {
            memset(buf, 0, sizeof(buf));
            assert_int_equal(wh_quic_outer_open(&o, buf, len, &out), -1);
        }
        /* An empty inner datagram is the shortest valid one (Go opens it). */
        n = wh_quic_outer_seal(&o, buf, sizeof(buf), 0);
        assert_int_equal(n, 13 + 28);
        assert_int_equal(wh_quic_outer_open(&o, buf, (size_t) n, &out), 0);
        /* Truncated by one: the tag no longer matches. */
        n = wh_quic_outer_seal(&o, buf, sizeof(buf), 50);
        assert_int_equal(wh_quic_outer_open(&o, buf, (size_t) n - 1, &out), -1);
        wh_quic_outer_free(&o);
    }
}

static void
test_tampered(void **state)
{
    uint8_t buf[256], copy[256], *out;
    wh_quic_outer_t tx, rx, other;
    ssize_t n;

    (void) state;
    for (int c = 0; c < 2; c++) {
        const char *sec = c ? "chacha20-poly1305" : "aes-128-gcm";

        make(&tx, sec, "wharf-interop-quic-key", &wh_pkt_header_srtp);
        make(&rx, sec, "wharf-interop-quic-key", &wh_pkt_header_srtp);
        fill(buf + 16, 100, 9);
        n = wh_quic_outer_seal(&tx, buf, sizeof(buf), 100);
        assert_int_equal(n, 4 + 12 + 100 + 16);
        memcpy(copy, buf, (size_t) n);

        /* Every bit of nonce, ciphertext and tag is authenticated. */
        for (ssize_t i = 4; i < n; i++) {
            for (int bit = 0; bit < 8; bit += 3) {
                memcpy(buf, copy, (size_t) n);
                buf[i] ^= (uint8_t) (1 << bit);
                assert_int_equal(wh_quic_outer_open(&rx, buf, (size_t) n, &out), -1);
            }
        }
        /* The header is not (spec 7: stripped unchecked). */
        memcpy(buf, copy, (size_t) n);
        memset(buf, 0xff, 4);
        assert_int_equal(wh_quic_outer_open(&rx, buf, (size_t) n, &out), 100);

        /* Wrong key, wrong AEAD, wrong header size. */
        make(&other, sec, "wharf-interop-quic-ke", &wh_pkt_header_srtp);
        memcpy(buf, copy, (size_t) n);
        assert_int_equal(wh_quic_outer_open(&other, buf, (size_t) n, &out), -1);
        wh_quic_outer_free(&other);
        make(&other, c ? "aes-128-gcm" : "chacha20-poly1305", "wharf-interop-quic-key",
             &wh_pkt_header_srtp);
        memcpy(buf, copy, (size_t) n);
        assert_int_equal(wh_quic_outer_open(&other, buf, (size_t) n, &out), -1);
        wh_quic_outer_free(&other);
        make(&other, sec, "wharf-interop-quic-key", &wh_pkt_header_none);
        memcpy(buf, copy, (size_t) n);
        assert_int_equal(wh_quic_outer_open(&other, buf, (size_t) n, &out), -1);
        wh_quic_outer_free(&other);

        /* The receiver still works after failures. */
        memcpy(buf, copy, (size_t) n);
        assert_int_equal(wh_quic_outer_open(&rx, buf, (size_t) n, &out), 100);
        wh_quic_outer_free(&tx);
        wh_quic_outer_free(&rx);
    }
}

/* Spec 8.2: never an inner datagram over 1452; a refused seal writes
 * nothing that counts (header counters do not move). */
static void
test_size_limit(void **state)
{
    static uint8_t buf[4096];
    const char *secs[] = { "none", "aes-128-gcm", "chacha20-poly1305" };
    wh_quic_outer_t o;

    (void) state;
    for (size_t s = 0; s < wh_nelems(secs); s++) {
        wh_pkt_header_state_t before;
        size_t over;

        make(&o, secs[s], "", &wh_pkt_header_wechat_video);
        over = wh_quic_outer_overhead(&o);
        before = o.hstate;
        assert_int_equal(wh_quic_outer_seal(&o, buf, sizeof(buf), 1453), -1);
        assert_int_equal(wh_quic_outer_seal(&o, buf, sizeof(buf), 1600), -1);
        assert_int_equal(wh_quic_outer_seal(&o, buf, sizeof(buf), SIZE_MAX), -1);
        /* Buffer one byte short. */
        assert_int_equal(wh_quic_outer_seal(&o, buf, over + 99, 100), -1);
        assert_memory_equal(&o.hstate, &before, sizeof(before));

        assert_int_equal(wh_quic_outer_seal(&o, buf, over + 100, 100),
                         (ssize_t) (over + 100));
        assert_int_equal(wh_quic_outer_seal(&o, buf, sizeof(buf), 1452),
                         (ssize_t) (over + 1452));
        assert_true(over + 1452 <= WH_QUIC_OUTER_MAX_OUTER);
        assert_int_equal(o.hstate.seq, before.seq + 2);
        wh_quic_outer_free(&o);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_vectors),
        cmocka_unit_test(test_security_names),
        cmocka_unit_test(test_conf),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_roundtrip_aes),
        cmocka_unit_test(test_roundtrip_chacha),
        cmocka_unit_test(test_open_foreign),
        cmocka_unit_test(test_security_none),
        cmocka_unit_test(test_short),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_size_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

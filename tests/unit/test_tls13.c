/*
 * test_tls13.c -- the TLS 1.3 record layer (wh_tls13.h) against OpenSSL's
 * own client: a real handshake between an OpenSSL client and server over
 * memory BIOs, the server's traffic secrets taken from its key log as the
 * stream takes them, and then records both ways through wh_tls13 and the
 * client's SSL object, for each of the three cipher suites: data of every
 * size up to a full record, a record sealed from pieces, padded records, a KeyUpdate the client asks an
 * answer for, our own KeyUpdate at the sequence limit, close_notify, and
 * records that must be refused (a flipped bit, a bad header, an empty
 * content type).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_tls13.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <unistd.h>

static char dir[] = "/tmp/wh-test-tls13-XXXXXX";
static char cert[256], key[256];

typedef struct {
    SSL *client, *server;
    BIO *c_in, *c_out;          /* the client's read and write BIOs (memory) */
    BIO *s_in, *s_out;
    wh_tls13_t t;
    uint8_t rx[WH_TLS13_SECRET_MAX], tx[WH_TLS13_SECRET_MAX];
    int secrets;
} session_t;

static int session_index;

static void
keylog(const SSL *ssl, const char *line)
{
    session_t *s = SSL_get_ex_data(ssl, session_index);
    const char *hex = strrchr(line, ' ') + 1;

    if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0) {
        assert_int_equal(OPENSSL_hexstr2buf_ex(s->rx, sizeof(s->rx), NULL, hex, '\0'), 1);
        s->secrets |= 1;
    } else if (strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) == 0) {
        assert_int_equal(OPENSSL_hexstr2buf_ex(s->tx, sizeof(s->tx), NULL, hex, '\0'), 1);
        s->secrets |= 2;
    }
}

/* moves what one side wrote to the other's read BIO */
static void
pump(BIO *from, BIO *to)
{
    char buf[65536];
    int n;

    while ((n = BIO_read(from, buf, sizeof(buf))) > 0) assert_int_equal(BIO_write(to, buf, n), n);
}

static void
start(session_t *s, const char *suite, int padding)
{
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
    int i, sr = 0, cr = 0;

    memset(s, 0, sizeof(*s));
    assert_non_null(sctx);
    assert_non_null(cctx);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(sctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(sctx, key, SSL_FILETYPE_PEM), 1);
    SSL_CTX_set_num_tickets(sctx, 0);
    SSL_CTX_set_keylog_callback(sctx, keylog);
    SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
    assert_int_equal(SSL_CTX_set_ciphersuites(cctx, suite), 1);
    if (padding) SSL_CTX_set_block_padding(cctx, 512);
    s->server = SSL_new(sctx);
    s->client = SSL_new(cctx);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    SSL_set_ex_data(s->server, session_index, s);
    s->c_in = BIO_new(BIO_s_mem());
    s->c_out = BIO_new(BIO_s_mem());
    s->s_in = BIO_new(BIO_s_mem());
    s->s_out = BIO_new(BIO_s_mem());
    SSL_set_bio(s->client, s->c_in, s->c_out);
    SSL_set_bio(s->server, s->s_in, s->s_out);
    SSL_set_connect_state(s->client);
    SSL_set_accept_state(s->server);
    for (i = 0; i < 10 && (sr != 1 || cr != 1); i++) {
        if (cr != 1) cr = SSL_do_handshake(s->client);
        pump(s->c_out, s->s_in);
        if (sr != 1) sr = SSL_do_handshake(s->server);
        pump(s->s_out, s->c_in);
    }
    assert_int_equal(cr, 1);
    assert_int_equal(sr, 1);
    assert_int_equal(s->secrets, 3);
    /* the server read exactly the handshake: its read BIO is empty */
    assert_int_equal(BIO_ctrl_pending(s->s_in), 0);
    assert_int_equal(SSL_has_pending(s->server), 0);
    i = wh_tls13_suite(SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(s->server)));
    assert_true(i >= 0);
    memcpy(s->t.rx.secret, s->rx, sizeof(s->rx));
    memcpy(s->t.tx.secret, s->tx, sizeof(s->tx));
    assert_int_equal(wh_tls13_init(&s->t, i), WH_OK);
    SSL_free(s->server);        /* as the stream does */
    s->server = NULL;
}

static void
finish(session_t *s)
{
    wh_tls13_free(&s->t);
    SSL_free(s->client);
    ERR_clear_error();
}

/* Opens the next record the client wrote: its content, type and length,
 * or WH_ERROR. */
static ssize_t
open_from_client(session_t *s, uint8_t *out, uint8_t *type)
{
    static uint8_t rec[WH_TLS13_MAX_RECORD + 64];
    ssize_t len;

    assert_int_equal(BIO_read(s->c_out, rec, WH_TLS13_HEADER), WH_TLS13_HEADER);
    assert_int_equal(wh_tls13_record_len(&s->t, rec, 4), 0);
    len = wh_tls13_record_len(&s->t, rec, WH_TLS13_HEADER);
    assert_true(len > WH_TLS13_HEADER);
    assert_int_equal(BIO_read(s->c_out, rec + WH_TLS13_HEADER, (int) len - WH_TLS13_HEADER),
                     (int) len - WH_TLS13_HEADER);
    return wh_tls13_open(&s->t, rec, (size_t) len, out, type);
}

static void
client_reads(session_t *s, const uint8_t *want, size_t n)
{
    static uint8_t got[WH_TLS13_MAX_PLAIN];
    size_t have = 0;
    int r;

    while (have < n) {
        r = SSL_read(s->client, got + have, (int) (n - have));
        assert_true(r > 0);
        have += (size_t) r;
    }
    assert_memory_equal(got, want, n);
}

static void
test_both_ways(void **state, const char *suite, int padding)
{
    static uint8_t data[WH_TLS13_MAX_PLAIN], out[WH_TLS13_MAX_RECORD], rec[WH_TLS13_MAX_RECORD];
    static const size_t sizes[] = { 1, 2, 15, 16, 17, 100, 1000, 4096, 16383, 16384 };
    session_t s;
    uint8_t type;
    size_t i, j, len;

    for (i = 0; i < sizeof(data); i++) data[i] = (uint8_t) (i * 7 + 3);
    start(&s, suite, padding);
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        /* client to server, opened in another buffer and in place */
        assert_int_equal(SSL_write(s.client, data, (int) sizes[i]), (int) sizes[i]);
        assert_int_equal(open_from_client(&s, out, &type), (ssize_t) sizes[i]);
        assert_int_equal(type, WH_TLS13_DATA);
        assert_memory_equal(out, data, sizes[i]);
        /* server to client */
        len = wh_tls13_seal(&s.t, WH_TLS13_DATA, data, sizes[i], rec);
        assert_int_equal(len, sizes[i] + WH_TLS13_OVERHEAD);
        assert_int_equal(BIO_write(s.c_in, rec, (int) len), (int) len);
        client_reads(&s, data, sizes[i]);
    }
    /* several records in one piece, opened in place */
    for (j = 0; j < 3; j++) assert_int_equal(SSL_write(s.client, data + j, 500), 500);
    {
        int n = BIO_read(s.c_out, rec, sizeof(rec));
        size_t off = 0;
        ssize_t rl, m;

        for (j = 0; j < 3; j++) {
            rl = wh_tls13_record_len(&s.t, rec + off, (size_t) n - off);
            assert_true(rl > 0);
            m = wh_tls13_open(&s.t, rec + off, (size_t) rl, rec + off + WH_TLS13_HEADER, &type);
            assert_int_equal(m, 500);
            assert_memory_equal(rec + off + WH_TLS13_HEADER, data + j, 500);
            off += (size_t) rl;
        }
        assert_int_equal(off, (size_t) n);
    }
    finish(&s);
}

static void test_aes128(void **state) { test_both_ways(state, "TLS_AES_128_GCM_SHA256", 0); }
static void test_aes256(void **state) { test_both_ways(state, "TLS_AES_256_GCM_SHA384", 0); }
static void test_chacha(void **state) { test_both_ways(state, "TLS_CHACHA20_POLY1305_SHA256", 0); }
static void test_padded(void **state) { test_both_ways(state, "TLS_AES_128_GCM_SHA256", 1); }

/* The client asks for a KeyUpdate answer: the next record it sends is
 * under its new key, and ours after the answer under our new one. */
static void
test_key_update(void **state)
{
    static const char *const suites[] = { "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                          "TLS_CHACHA20_POLY1305_SHA256" };
    uint8_t out[WH_TLS13_MAX_RECORD], rec[WH_TLS13_MAX_RECORD], type;
    session_t s;
    ssize_t n;
    size_t len, i;

    for (i = 0; i < 3; i++) {
        start(&s, suites[i], 0);
        assert_int_equal(SSL_key_update(s.client, SSL_KEY_UPDATE_REQUESTED), 1);
        assert_int_equal(SSL_write(s.client, "after", 5), 5);
        /* the KeyUpdate record, then the data */
        n = open_from_client(&s, out, &type);
        assert_int_equal(n, 5);
        assert_int_equal(type, WH_TLS13_HANDSHAKE);
        assert_int_equal(wh_tls13_control(&s.t, type, out, (size_t) n), WH_OK);
        assert_true(wh_tls13_tx_due(&s.t));
        n = open_from_client(&s, out, &type);
        assert_int_equal(n, 5);
        assert_memory_equal(out, "after", 5);
        len = wh_tls13_key_update(&s.t, rec);
        assert_int_equal(len, WH_TLS13_KEY_UPDATE_LEN);
        assert_false(wh_tls13_tx_due(&s.t));
        len += wh_tls13_seal(&s.t, WH_TLS13_DATA, (const uint8_t *) "new key", 7, rec + len);
        assert_int_equal(BIO_write(s.c_in, rec, (int) len), (int) len);
        client_reads(&s, (const uint8_t *) "new key", 7);
        /* an update not asked to be answered */
        assert_int_equal(SSL_key_update(s.client, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
        assert_int_equal(SSL_write(s.client, "x", 1), 1);
        n = open_from_client(&s, out, &type);
        assert_int_equal(wh_tls13_control(&s.t, type, out, (size_t) n), WH_OK);
        assert_false(wh_tls13_tx_due(&s.t));
        assert_int_equal(open_from_client(&s, out, &type), 1);
        finish(&s);
    }
}

/* 2^24 records under one key: the next goes after our own KeyUpdate. */
static void
test_sequence_limit(void **state)
{
    uint8_t rec[WH_TLS13_MAX_RECORD];
    session_t s;
    size_t len;

    start(&s, "TLS_AES_128_GCM_SHA256", 0);
    assert_false(wh_tls13_tx_due(&s.t));
    s.t.tx.seq = 1ULL << 24;
    assert_true(wh_tls13_tx_due(&s.t));
    /* the client cannot follow a jump; the update alone is what counts */
    s.t.tx.seq = 0;
    len = wh_tls13_key_update(&s.t, rec);
    len += wh_tls13_seal(&s.t, WH_TLS13_DATA, (const uint8_t *) "after", 5, rec + len);
    assert_int_equal(BIO_write(s.c_in, rec, (int) len), (int) len);
    client_reads(&s, (const uint8_t *) "after", 5);
    finish(&s);
}

/* A record sealed from pieces (a websocket header, its payload, empty
 * and one-byte pieces between) reads as their concatenation. */
static void
test_sealed_from_pieces(void **state)
{
    static uint8_t data[WH_TLS13_MAX_PLAIN], rec[WH_TLS13_MAX_RECORD];
    size_t cuts[][6] = { { 4, 0, 1, 7, 100, WH_TLS13_MAX_PLAIN - 112 },
                         { 2, 3, 0, 0, 0, 0 } };
    struct iovec iov[6];
    session_t s;
    size_t i, k, at, len;

    for (i = 0; i < sizeof(data); i++) data[i] = (uint8_t) (i * 13 + 1);
    start(&s, "TLS_AES_128_GCM_SHA256", 0);
    for (k = 0; k < 2; k++) {
        for (i = 0, at = 0; i < 6; i++) {
            iov[i].iov_base = data + at;
            iov[i].iov_len = cuts[k][i];
            at += cuts[k][i];
        }
        len = wh_tls13_sealv(&s.t, WH_TLS13_DATA, iov, 6, rec);
        assert_int_equal(len, at + WH_TLS13_OVERHEAD);
        assert_int_equal(BIO_write(s.c_in, rec, (int) len), (int) len);
        client_reads(&s, data, at);
    }
    finish(&s);
}

static void
test_close_and_alerts(void **state)
{
    uint8_t out[WH_TLS13_MAX_RECORD], type, bad[2] = { 2, SSL_AD_HANDSHAKE_FAILURE };
    session_t s;
    ssize_t n;

    start(&s, "TLS_AES_128_GCM_SHA256", 0);
    assert_int_equal(SSL_shutdown(s.client), 0);
    n = open_from_client(&s, out, &type);
    assert_int_equal(n, 2);
    assert_int_equal(type, WH_TLS13_ALERT);
    assert_int_equal(wh_tls13_control(&s.t, type, out, (size_t) n), WH_DECLINED);
    /* the other alerts end the session, with their name as the reason */
    assert_int_equal(wh_tls13_control(&s.t, WH_TLS13_ALERT, bad, 2), WH_ERROR);
    assert_string_equal(s.t.reason, "handshake failure");
    bad[1] = SSL_AD_USER_CANCELLED;
    assert_int_equal(wh_tls13_control(&s.t, WH_TLS13_ALERT, bad, 2), WH_OK);
    assert_int_equal(wh_tls13_control(&s.t, WH_TLS13_ALERT, bad, 1), WH_ERROR);
    /* handshake messages other than KeyUpdate, or split */
    assert_int_equal(wh_tls13_control(&s.t, WH_TLS13_HANDSHAKE,
                                      (const uint8_t *) "\x04\x00\x00\x01\x00", 5), WH_ERROR);
    assert_int_equal(wh_tls13_control(&s.t, WH_TLS13_HANDSHAKE,
                                      (const uint8_t *) "\x18\x00\x00\x01", 4), WH_ERROR);
    assert_int_equal(wh_tls13_control(&s.t, WH_TLS13_HANDSHAKE,
                                      (const uint8_t *) "\x18\x00\x00\x01\x02", 5), WH_ERROR);
    assert_int_equal(wh_tls13_control(&s.t, 20, (const uint8_t *) "\x01", 1), WH_ERROR);
    finish(&s);
}

static void
test_refused(void **state)
{
    uint8_t rec[WH_TLS13_MAX_RECORD], out[WH_TLS13_MAX_RECORD], type;
    session_t s;
    size_t len;
    int n;

    start(&s, "TLS_AES_128_GCM_SHA256", 0);
    /* a flipped bit anywhere: header (it is the additional data), body, tag */
    assert_int_equal(SSL_write(s.client, "0123456789", 10), 10);
    n = BIO_read(s.c_out, rec, sizeof(rec));
    rec[WH_TLS13_HEADER + 3] ^= 0x10;
    assert_int_equal(wh_tls13_open(&s.t, rec, (size_t) n, out, &type), WH_ERROR);
    assert_string_equal(s.t.reason, "bad record mac");
    /* headers */
    memcpy(rec, "\x14\x03\x03\x00\x01", 5);
    assert_int_equal(wh_tls13_record_len(&s.t, rec, 5), WH_ERROR);
    memcpy(rec, "\x17\x03\x01\x00\x20", 5);
    assert_int_equal(wh_tls13_record_len(&s.t, rec, 5), WH_ERROR);
    memcpy(rec, "\x17\x03\x03\x41\x01", 5);     /* 2^14 + 256 + 1 */
    assert_int_equal(wh_tls13_record_len(&s.t, rec, 5), WH_ERROR);
    memcpy(rec, "\x17\x03\x03\x41\x00", 5);
    assert_int_equal(wh_tls13_record_len(&s.t, rec, 5), 5 + 16640);
    memcpy(rec, "\x17\x03\x03\x00\x10", 5);     /* no room for a type */
    assert_int_equal(wh_tls13_record_len(&s.t, rec, 5), WH_ERROR);
    finish(&s);

    /* all padding, no content type: sealed by hand as a peer could */
    start(&s, "TLS_AES_128_GCM_SHA256", 0);
    {
        wh_tls13_t peer = { 0 };
        uint8_t zero[8] = { 0 };

        /* the client's view: its tx is our rx */
        memcpy(peer.tx.secret, s.rx, sizeof(s.rx));
        memcpy(peer.rx.secret, s.tx, sizeof(s.tx));
        assert_int_equal(wh_tls13_init(&peer, s.t.suite), WH_OK);
        len = wh_tls13_seal(&peer, 0, zero, sizeof(zero), rec);
        assert_int_equal(wh_tls13_open(&s.t, rec, len, out, &type), WH_ERROR);
        assert_string_equal(s.t.reason, "no content type");
        /* more than 2^14 bytes of content */
        {
            static uint8_t big[WH_TLS13_MAX_PLAIN + 1];

            len = wh_tls13_seal(&peer, WH_TLS13_DATA, big, sizeof(big), rec);
            assert_int_equal(wh_tls13_open(&s.t, rec, len, out, &type), WH_ERROR);
            assert_string_equal(s.t.reason, "data length too long");
        }
        wh_tls13_free(&peer);
    }
    finish(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aes128),
        cmocka_unit_test(test_aes256),
        cmocka_unit_test(test_chacha),
        cmocka_unit_test(test_padded),
        cmocka_unit_test(test_key_update),
        cmocka_unit_test(test_sequence_limit),
        cmocka_unit_test(test_sealed_from_pieces),
        cmocka_unit_test(test_close_and_alerts),
        cmocka_unit_test(test_refused),
    };
    char cmd[1024];
    int rc;

    if (mkdtemp(dir) == NULL) return 1;
    snprintf(cert, sizeof(cert), "%s/c.pem", dir);
    snprintf(key, sizeof(key), "%s/c.key", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
             "-subj /CN=localhost -keyout %s -out %s >/dev/null 2>&1", key, cert);
    if (system(cmd) != 0) return 1;
    session_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(cert);
    unlink(key);
    rmdir(dir);
    return rc;
}

/*
 * test_quic_retry.c -- the Retry tokens of the quic transport
 * (wh_quic_retry.c) and quicSettings.retry: a token made for an Initial
 * brings back its original DCID for the same peer within 10 s, and
 * nothing else passes (another address or port, another DCID, a changed
 * byte, an expired one); a forked process (a worker) verifies what its
 * parent made.
 */
#include "wh_config.h"

#ifdef WH_HAVE_MODULE_QUIC

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <sys/wait.h>

#include "wh_cycle.h"
#include "wh_log.h"
#include "../../modules/quic/wh_quic.h"

#include "conf_load.h"

#define T0 (1000 * NGTCP2_SECONDS)

typedef struct {
    uint8_t pkt[512];
    ssize_t len;
    ngtcp2_pkt_hd initial;      /* the client's first Initial */
    ngtcp2_pkt_hd again;        /* its second, with the token */
    wh_sockaddr_t peer;
} retry_t;

static void
peer_set(wh_sockaddr_t *a, const char *ip, int port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *) &a->sa;

    memset(a, 0, sizeof(*a));
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    inet_pton(AF_INET, ip, &sin->sin_addr);
    a->len = sizeof(*sin);
}

static void
cid_set(ngtcp2_cid *cid, uint8_t fill, size_t len)
{
    cid->datalen = len;
    memset(cid->data, fill, len);
}

/* A Retry for an Initial from 192.0.2.7:4433, and the Initial that answers
 * it: DCID = the Retry's SCID, the token copied from the Retry (long header:
 * flags, version, DCID, SCID, token, 16-byte integrity tag). */
static void
retry_make(retry_t *r)
{
    size_t off, dcil, scil;

    memset(r, 0, sizeof(*r));
    peer_set(&r->peer, "192.0.2.7", 4433);
    r->initial.version = NGTCP2_PROTO_VER_V1;
    cid_set(&r->initial.dcid, 0xd1, 8);
    cid_set(&r->initial.scid, 0x5c, 4);
    r->len = wh_quic_retry_write(r->pkt, sizeof(r->pkt), &r->initial, &r->peer, T0);
    assert_true(r->len > 16 + 7);
    assert_int_equal(r->pkt[0] & 0xf0, 0xf0);      /* long header, type Retry */
    dcil = r->pkt[5];
    assert_int_equal(dcil, 4);                      /* to the client's SCID */
    assert_memory_equal(r->pkt + 6, r->initial.scid.data, 4);
    off = 6 + dcil;
    scil = r->pkt[off];
    assert_int_equal(scil, WH_QUIC_CID_LEN);

    r->again.version = NGTCP2_PROTO_VER_V1;
    r->again.dcid.datalen = scil;
    memcpy(r->again.dcid.data, r->pkt + off + 1, scil);
    r->again.scid = r->initial.scid;
    r->again.token.base = r->pkt + off + 1 + scil;
    r->again.token.len = r->len - 16 - (off + 1 + scil);
    assert_int_equal(r->again.token.base[0], NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY);
}

static void
test_token_brings_back_odcid(void **state)
{
    retry_t r;
    ngtcp2_cid odcid;

    retry_make(&r);
    assert_int_equal(wh_quic_retry_verify(&r.again, &r.peer, &odcid, T0 + NGTCP2_SECONDS), WH_OK);
    assert_true(ngtcp2_cid_eq(&odcid, &r.initial.dcid));
    /* still good just short of 10 s */
    assert_int_equal(wh_quic_retry_verify(&r.again, &r.peer, &odcid, T0 + 9 * NGTCP2_SECONDS),
                     WH_OK);
}

static void
test_token_refused(void **state)
{
    retry_t r;
    ngtcp2_cid odcid;
    ngtcp2_pkt_hd hd;
    wh_sockaddr_t other;
    uint64_t now = T0 + NGTCP2_SECONDS;

    retry_make(&r);
    /* expired */
    assert_int_equal(wh_quic_retry_verify(&r.again, &r.peer, &odcid, T0 + 11 * NGTCP2_SECONDS),
                     WH_ERROR);
    /* another port, another address: the token is the address's */
    peer_set(&other, "192.0.2.7", 4434);
    assert_int_equal(wh_quic_retry_verify(&r.again, &other, &odcid, now), WH_ERROR);
    peer_set(&other, "192.0.2.8", 4433);
    assert_int_equal(wh_quic_retry_verify(&r.again, &other, &odcid, now), WH_ERROR);
    /* another DCID than the Retry's SCID */
    hd = r.again;
    hd.dcid.data[0] ^= 1;
    assert_int_equal(wh_quic_retry_verify(&hd, &r.peer, &odcid, now), WH_ERROR);
    /* one byte changed anywhere after the magic */
    for (size_t i = 1; i < r.again.token.len; i++) {
        r.again.token.base[i] ^= 0x40;
        assert_int_equal(wh_quic_retry_verify(&r.again, &r.peer, &odcid, now), WH_ERROR);
        r.again.token.base[i] ^= 0x40;
    }
    /* cut short */
    hd = r.again;
    hd.token.len = 10;
    assert_int_equal(wh_quic_retry_verify(&hd, &r.peer, &odcid, now), WH_ERROR);
    /* the original passes still */
    assert_int_equal(wh_quic_retry_verify(&r.again, &r.peer, &odcid, now), WH_OK);
}

static void
test_no_retry_token(void **state)
{
    retry_t r;
    ngtcp2_cid odcid;
    uint8_t regular[] = { NGTCP2_CRYPTO_TOKEN_MAGIC_REGULAR, 1, 2, 3 };

    retry_make(&r);
    assert_int_equal(wh_quic_retry_verify(&r.initial, &r.peer, &odcid, T0), WH_DECLINED);
    r.again.token.base = regular;
    r.again.token.len = sizeof(regular);
    assert_int_equal(wh_quic_retry_verify(&r.again, &r.peer, &odcid, T0), WH_DECLINED);
}

static void
test_worker_verifies_master_token(void **state)
{
    retry_t r;
    ngtcp2_cid odcid;
    pid_t pid;
    int status;

    retry_make(&r);
    assert_int_equal(wh_quic_retry_init(), WH_OK);     /* again: the secret stays */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        _exit(wh_quic_retry_verify(&r.again, &r.peer, &odcid, T0) == WH_OK
              && ngtcp2_cid_eq(&odcid, &r.initial.dcid) ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

#define L(tail) "listeners = ( { tag = \"q\"; listen = \"127.0.0.1\"; port = 1000; " \
                "upstream = \"echo\"; " tail " } );\n"

static long
retry_of(const char *text)
{
    wh_conf_t cf;
    wh_cycle_t *c = load(text, &cf);
    long v;

    unlink(path);
    if (c == NULL) fail_msg("refused: %s", cf.error);
    v = ((const wh_quic_conf_t *) c->listeners[0].module_conf)->retry;
    wh_cycle_free(c);
    return v;
}

static void
test_conf(void **state)
{
    assert_int_equal(retry_of(L("streamSettings = { network = \"quic\"; };")), 64);
    assert_int_equal(retry_of(L("streamSettings = { network = \"quic\"; quicSettings = { }; };")),
                     64);
    assert_int_equal(retry_of(L("streamSettings = { network = \"quic\";"
                                " quicSettings = { retry = 0; }; };")), 0);
    assert_int_equal(retry_of(L("streamSettings = { network = \"quic\";"
                                " quicSettings = { retry = 1000; }; };")), 1000);
    refused(L("streamSettings = { network = \"quic\";\n quicSettings = { retry = -1; }; };"), 2,
            "retry");
    refused(L("streamSettings = { network = \"quic\";\n quicSettings = { retry = \"64\"; }; };"),
            2, "retry");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_brings_back_odcid),
        cmocka_unit_test(test_token_refused),
        cmocka_unit_test(test_no_retry_token),
        cmocka_unit_test(test_worker_verifies_master_token),
        cmocka_unit_test(test_conf),
    };

    wh_log_level = WH_LOG_ERROR;
    if (wh_quic_retry_init() != WH_OK) return 1;
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

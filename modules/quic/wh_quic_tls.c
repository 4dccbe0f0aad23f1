/*
 * wh_quic_tls.c -- the TLS 1.3 inside QUIC (spec 8.4, 8.7): GnuTLS
 * credentials per listener and one session per connection, configured for
 * ngtcp2's crypto helper.
 *
 * Without security "tls" V2Ray's clients verify nothing and ask for
 * quic.internal.v2ray.com: each worker makes a self-signed ECDSA P-256
 * certificate for that name when it starts, as V2Ray's server does. With
 * security "tls" the certificates are those src/tls read (as PEM, through
 * wh_tls_cert_pem), one GnuTLS credential each, and the one for the
 * client's SNI is chosen after the ClientHello by V2Ray's rules
 * (wh_tls_choose). Minting for "issue" CAs is OpenSSL code in src/tls and
 * is not repeated here: such a listener serves its first "encipherment"
 * certificate.
 *
 * ALPN must be selected (quic-go aborts otherwise): the server's list with
 * server precedence, and no overlap fails the handshake.
 */
#include "wh_quic.h"
#include "wh_log.h"
#include "wh_tls.h"

#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <time.h>

#define WH_QUIC_INTERNAL_NAME "quic.internal.v2ray.com"

/* the ngtcp2 examples' choice (spec 8.7), X25519 first: the client sends
 * only an X25519 key share */
static const char priority[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"
    "+CHACHA20-POLY1305:+AES-128-CCM:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"
    "+GROUP-SECP384R1:+GROUP-SECP521R1:%DISABLE_TLS13_COMPAT_MODE";

static const char *const alpn_default[] = { "h2", "http/1.1", NULL };

struct wh_quic_tls_s {
    const wh_tls_conf_t *conf;  /* NULL: the self-signed certificate */
    gnutls_certificate_credentials_t *creds;    /* per certificate; NULL for "verify" */
    int ncreds;
    int first;                  /* the first "encipherment" one */
    gnutls_priority_t prio;
    gnutls_datum_t alpn[16];
    int nalpn;
    uint8_t alpn_buf[512];
};

static int
self_signed(gnutls_certificate_credentials_t cred)
{
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    uint8_t serial[16];
    time_t now = time(NULL);
    int rc = -1;

    if (gnutls_x509_privkey_init(&key) < 0 || gnutls_x509_crt_init(&crt) < 0) goto done;
    if (gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0)
    {
        goto done;
    }
    gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
    serial[0] &= 0x7f;
    gnutls_x509_crt_set_version(crt, 3);
    gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
    /* V2Ray's validity; its clients never check it */
    gnutls_x509_crt_set_activation_time(crt, now - 3600);
    gnutls_x509_crt_set_expiration_time(crt, now + 3600);
    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, WH_QUIC_INTERNAL_NAME,
                                  sizeof(WH_QUIC_INTERNAL_NAME) - 1);
    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, WH_QUIC_INTERNAL_NAME,
                                         sizeof(WH_QUIC_INTERNAL_NAME) - 1, GNUTLS_FSAN_SET);
    gnutls_x509_crt_set_key(crt, key);
    gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
    if (gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0) goto done;
    if (gnutls_certificate_set_x509_key(cred, &crt, 1, key) < 0) goto done;
    rc = 0;
done:
    if (crt != NULL) gnutls_x509_crt_deinit(crt);
    if (key != NULL) gnutls_x509_privkey_deinit(key);
    return rc;
}

static void
alpn_add(wh_quic_tls_t *t, size_t *used, const uint8_t *name, size_t len)
{
    if (t->nalpn == (int) wh_nelems(t->alpn) || *used + len > sizeof(t->alpn_buf)) return;
    memcpy(t->alpn_buf + *used, name, len);
    t->alpn[t->nalpn].data = t->alpn_buf + *used;
    t->alpn[t->nalpn].size = (unsigned) len;
    t->nalpn++;
    *used += len;
}

wh_quic_tls_t *
wh_quic_tls_new(wh_listener_t *ls)
{
    wh_quic_tls_t *t = calloc(1, sizeof(*t));
    size_t used = 0, wl, i;
    const unsigned char *wire;
    int k;

    if (t == NULL) return NULL;
    t->conf = ls->tls;
    t->first = -1;
    if (gnutls_priority_init(&t->prio, priority, NULL) < 0) goto failed;

    if (ls->tls == NULL) {
        t->ncreds = 1;
        t->creds = calloc(1, sizeof(*t->creds));
        if (t->creds == NULL || gnutls_certificate_allocate_credentials(&t->creds[0]) < 0
            || self_signed(t->creds[0]) != 0)
        {
            wh_log_listener(WH_LOG_ERROR, ls->tag,
                            "quic: cannot make the self-signed certificate");
            goto failed;
        }
        t->first = 0;
        for (k = 0; alpn_default[k] != NULL; k++) {
            alpn_add(t, &used, (const uint8_t *) alpn_default[k], strlen(alpn_default[k]));
        }
        return t;
    }

    t->ncreds = wh_tls_ncerts(ls->tls);
    t->creds = calloc(t->ncreds ? t->ncreds : 1, sizeof(*t->creds));
    if (t->creds == NULL) goto failed;
    for (k = 0; k < t->ncreds; k++) {
        char *cert, *key;
        gnutls_datum_t cd, kd;
        int rc = wh_tls_cert_pem(ls->tls, k, &cert, &key);

        if (rc == WH_DECLINED) continue;
        if (rc != WH_OK) goto failed;
        cd.data = (unsigned char *) cert;
        cd.size = (unsigned) strlen(cert);
        kd.data = (unsigned char *) key;
        kd.size = (unsigned) strlen(key);
        rc = gnutls_certificate_allocate_credentials(&t->creds[k]);
        if (rc >= 0) {
            rc = gnutls_certificate_set_x509_key_mem2(t->creds[k], &cd, &kd, GNUTLS_X509_FMT_PEM,
                                                      NULL, 0);
        }
        gnutls_memset(key, 0, kd.size);
        free(cert);
        free(key);
        if (rc < 0) {
            wh_log_listener(WH_LOG_ERROR, ls->tag, "quic: GnuTLS refuses certificate %d (%s)",
                            k + 1, gnutls_strerror(rc));
            goto failed;
        }
        if (t->first == -1) t->first = k;
    }
    if (t->first == -1) {
        wh_log_listener(WH_LOG_ERROR, ls->tag,
                        "quic: no certificate with a key for QUIC (\"issue\" CAs do not mint here)");
        goto failed;
    }
    wire = wh_tls_alpn_list(ls->tls, &wl);
    for (i = 0; i < wl; i += 1 + wire[i]) {
        alpn_add(t, &used, wire + i + 1, wire[i]);
    }
    return t;

failed:
    wh_quic_tls_free(t);
    return NULL;
}

void
wh_quic_tls_free(wh_quic_tls_t *t)
{
    int k;

    if (t == NULL) return;
    for (k = 0; k < t->ncreds && t->creds != NULL; k++) {
        if (t->creds[k] != NULL) gnutls_certificate_free_credentials(t->creds[k]);
    }
    free(t->creds);
    if (t->prio != NULL) gnutls_priority_deinit(t->prio);
    free(t);
}

/* After the ClientHello: the certificate for its SNI (spec 2.4). */
static int
choose_cert(gnutls_session_t session)
{
    wh_quic_conn_t *c = ((ngtcp2_crypto_conn_ref *) gnutls_session_get_ptr(session))->user_data;
    wh_quic_tls_t *t = c->rt->tls;
    char sni[256];
    size_t len = sizeof(sni) - 1;
    unsigned type;
    int i;

    if (gnutls_server_name_get(session, sni, &len, &type, 0) < 0 || type != GNUTLS_NAME_DNS) {
        len = 0;
    }
    sni[len] = '\0';
    i = wh_tls_choose(t->conf, sni);
    if (i < 0 || i >= t->ncreds || t->creds[i] == NULL) i = t->first;
    return gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, t->creds[i]) < 0 ? -1 : 0;
}

static ngtcp2_conn *
get_conn(ngtcp2_crypto_conn_ref *ref)
{
    return ((wh_quic_conn_t *) ref->user_data)->conn;
}

int
wh_quic_tls_session(wh_quic_tls_t *t, wh_quic_conn_t *c)
{
    gnutls_session_t s;

    if (gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET | GNUTLS_NO_END_OF_EARLY_DATA)
        < 0)
    {
        return WH_ERROR;
    }
    c->tls = s;
    c->ref.get_conn = get_conn;
    c->ref.user_data = c;
    gnutls_session_set_ptr(s, &c->ref);
    if (gnutls_priority_set(s, t->prio) < 0 || ngtcp2_crypto_gnutls_configure_server_session(s) != 0
        || gnutls_alpn_set_protocols(s, t->alpn, t->nalpn,
                                     GNUTLS_ALPN_SERVER_PRECEDENCE | GNUTLS_ALPN_MANDATORY) < 0)
    {
        return WH_ERROR;
    }
    if (t->conf == NULL) {
        if (gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->creds[0]) < 0) return WH_ERROR;
    } else {
        /* a credential must be there for the ClientHello's checks; the
         * right one replaces it once the SNI is known */
        if (gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->creds[t->first]) < 0) {
            return WH_ERROR;
        }
        gnutls_handshake_set_post_client_hello_function(s, choose_cert);
    }
    ngtcp2_conn_set_tls_native_handle(c->conn, s);
    return WH_OK;
}

int
wh_quic_tls_alpn_ok(wh_quic_conn_t *c)
{
    gnutls_datum_t proto;

    return gnutls_alpn_get_selected_protocol(c->tls, &proto) == 0 && proto.size > 0;
}

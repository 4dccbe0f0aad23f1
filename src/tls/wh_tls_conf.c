/*
 * wh_tls_conf.c -- tlsSettings, certificates and the per-listener SSL_CTX.
 *
 * Certificate choice follows V2Ray's server (spec 2.4): the certificate
 * whose names (CN, DNS SANs) equal the lower-cased SNI; else, when "issue"
 * CAs are configured, a leaf minted for that SNI (ECDSA P-256, valid from
 * an hour ago to an hour ahead, cached per worker and minted again once
 * expired); else one whose wildcard matches; else the first. It is chosen
 * in OpenSSL's certificate callback, per connection, with
 * SSL_use_cert_and_key(), so one SSL_CTX serves every name.
 *
 * ALPN follows Go's server (spec 2.2): the first server protocol the client
 * also offers; no overlap is fine when the client offered http/1.1 and the
 * server has h2 (nothing is negotiated); otherwise the handshake fails with
 * no_application_protocol.
 *
 * TLS 1.2 and 1.3 (nginx's default), no session tickets or cache unless
 * enableSessionResumption, no client certificate request, OpenSSL's
 * buffers released while a connection is idle.
 */
#include "wh_tls.h"
#include "wh_log.h"

#include <ctype.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <strings.h>
#include <time.h>

enum { WH_CERT_ENCIPHERMENT, WH_CERT_VERIFY, WH_CERT_ISSUE };

typedef struct {
    int usage;
    X509 *cert;
    EVP_PKEY *key;
    STACK_OF(X509) *chain;
    char **names;               /* lower-cased CN and DNS SANs */
    int nnames;
} wh_tls_cert_t;

typedef struct wh_tls_minted_s wh_tls_minted_t;
struct wh_tls_minted_s {
    wh_tls_minted_t *next;
    char *name;
    X509 *cert;
    EVP_PKEY *key;
    time_t expires;
};

struct wh_tls_conf_s {
    SSL_CTX *ctx;
    wh_tls_cert_t *certs;
    int ncerts;
    unsigned char *alpn;        /* wire format: length-prefixed names */
    size_t alpn_len;
    wh_tls_minted_t *minted;    /* per worker (each has its own copy) */
    int nminted;
};

#define WH_TLS_MINTED_MAX 1024

static const char *const tls_names[] = {
    "alpn", "certificates", "enableSessionResumption", NULL
};
static const char *const tls_client_names[] = {
    "serverName", "allowInsecure", "disableSystemRoot", "pinnedPeerCertificateChainSha256", NULL
};
static const char *const cert_names[] = {
    "certificateFile", "certificate", "keyFile", "key", "usage", NULL
};

static int conf_index = -1;

static const char *
ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    return r ? r : "unknown error";
}

/* A PEM value: a file name, or V2Ray's list of lines joined with "\n". */
static int
read_pem(wh_conf_t *cf, const config_setting_t *entry, const char *file_name,
         const char *inline_name, BIO **out, char *what, size_t what_size)
{
    const char *file = NULL;
    config_setting_t *lines = config_setting_get_member(entry, inline_name);

    if (wh_conf_string(cf, entry, file_name, &file) == WH_ERROR) {
        return WH_ERROR;
    }
    if (file != NULL) {
        snprintf(what, what_size, "\"%s\"", file);
        *out = BIO_new_file(file, "r");
        if (*out == NULL) {
            wh_conf_error(cf, config_setting_get_member(entry, file_name),
                          "cannot read %s \"%s\" (%s)", file_name, file, strerror(errno));
            return WH_ERROR;
        }
        return WH_OK;
    }
    if (lines == NULL) {
        wh_conf_error(cf, entry, "certificate entry has neither \"%s\" nor \"%s\"",
                      file_name, inline_name);
        return WH_ERROR;
    }
    snprintf(what, what_size, "inline \"%s\"", inline_name);
    *out = BIO_new(BIO_s_mem());
    if (config_setting_type(lines) == CONFIG_TYPE_STRING) {
        BIO_puts(*out, config_setting_get_string(lines));
        BIO_puts(*out, "\n");
    } else if (config_setting_is_array(lines) || config_setting_is_list(lines)) {
        int i;
        for (i = 0; i < config_setting_length(lines); i++) {
            const char *line = config_setting_get_string_elem(lines, i);
            if (line == NULL) {
                wh_conf_error(cf, lines, "\"%s\" must list strings", inline_name);
                return WH_ERROR;
            }
            BIO_puts(*out, line);
            BIO_puts(*out, "\n");
        }
    } else {
        wh_conf_error(cf, lines, "\"%s\" must be a list of PEM lines", inline_name);
        return WH_ERROR;
    }
    return WH_OK;
}

static void
add_name(wh_tls_cert_t *c, const char *name, size_t len)
{
    char *n = wh_xalloc(len + 1);
    size_t i;

    for (i = 0; i < len; i++) n[i] = (char) tolower((unsigned char) name[i]);
    c->names = realloc(c->names, sizeof(char *) * (c->nnames + 1));
    c->names[c->nnames++] = n;
}

static void
collect_names(wh_tls_cert_t *c)
{
    X509_NAME *subject = X509_get_subject_name(c->cert);
    GENERAL_NAMES *sans;
    char cn[256];
    int i, n;

    n = X509_NAME_get_text_by_NID(subject, NID_commonName, cn, sizeof(cn));
    if (n > 0) add_name(c, cn, n);
    sans = X509_get_ext_d2i(c->cert, NID_subject_alt_name, NULL, NULL);
    for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS) {
            add_name(c, (const char *) ASN1_STRING_get0_data(g->d.dNSName),
                     ASN1_STRING_length(g->d.dNSName));
        }
    }
    GENERAL_NAMES_free(sans);
}

static int
no_pass_phrase(char *buf, int size, int rwflag, void *u)
{
    return 0;
}

static int
load_cert(wh_conf_t *cf, const config_setting_t *entry, wh_tls_cert_t *c)
{
    const char *usage = "encipherment";
    char what[512], key_what[512];
    BIO *bio = NULL;
    X509 *x;
    int rc = WH_ERROR;

    if (config_setting_type(entry) != CONFIG_TYPE_GROUP) {
        wh_conf_error(cf, entry, "a certificate entry must be a group { ... }");
        return WH_ERROR;
    }
    if (wh_conf_check_names(cf, entry, cert_names, NULL) != WH_OK
        || wh_conf_string(cf, entry, "usage", &usage) == WH_ERROR)
    {
        return WH_ERROR;
    }
    /* V2Ray: any unknown usage means encipherment */
    c->usage = strcasecmp(usage, "verify") == 0 ? WH_CERT_VERIFY
             : strcasecmp(usage, "issue") == 0 ? WH_CERT_ISSUE : WH_CERT_ENCIPHERMENT;

    if (read_pem(cf, entry, "certificateFile", "certificate", &bio, what, sizeof(what)) != WH_OK) {
        goto done;
    }
    c->cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (c->cert == NULL) {
        wh_conf_error(cf, entry, "no PEM certificate in %s (%s)", what, ssl_reason());
        goto done;
    }
    c->chain = sk_X509_new_null();
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        sk_X509_push(c->chain, x);
    }
    ERR_clear_error();
    BIO_free(bio);
    bio = NULL;
    if (c->usage == WH_CERT_VERIFY) {
        rc = WH_OK;         /* a client's trust anchor: no key needed */
        goto done;
    }

    if (read_pem(cf, entry, "keyFile", "key", &bio, key_what, sizeof(key_what)) != WH_OK) {
        goto done;
    }
    /* no pass phrase prompt: an encrypted key is an error, never a hang */
    c->key = PEM_read_bio_PrivateKey(bio, NULL, no_pass_phrase, NULL);
    if (c->key == NULL) {
        wh_conf_error(cf, entry, "no PEM private key in %s (%s)", key_what, ssl_reason());
        goto done;
    }
    if (!X509_check_private_key(c->cert, c->key)) {
        wh_conf_error(cf, entry, "the key in %s does not match the certificate in %s",
                      key_what, what);
        goto done;
    }
    collect_names(c);
    rc = WH_OK;

done:
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

static int
parse_alpn(wh_conf_t *cf, const config_setting_t *tls, const char *const *def,
           wh_tls_conf_t *t)
{
    config_setting_t *s = tls ? config_setting_get_member(tls, "alpn") : NULL;
    const char *list[16];
    char *split = NULL;
    int n = 0, i;
    size_t len = 0;

    if (s == NULL) {
        for (; def[n] != NULL && n < 16; n++) list[n] = def[n];
    } else if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        /* a string is one protocol, as V2Ray's StringList reads it... split at ',' */
        char *p, *save = NULL;
        split = wh_xstrdup(config_setting_get_string(s));
        for (p = strtok_r(split, ",", &save); p && n < 16; p = strtok_r(NULL, ",", &save)) {
            list[n++] = p;
        }
    } else if (config_setting_is_array(s) || config_setting_is_list(s)) {
        for (i = 0; i < config_setting_length(s) && n < 16; i++) {
            list[n] = config_setting_get_string_elem(s, i);
            if (list[n] == NULL) {
                wh_conf_error(cf, s, "\"alpn\" must list strings");
                return WH_ERROR;
            }
            n++;
        }
    } else {
        wh_conf_error(cf, s, "\"alpn\" must be a string or a list of strings");
        return WH_ERROR;
    }
    for (i = 0; i < n; i++) {
        size_t l = strlen(list[i]);
        if (l == 0 || l > 255) {
            wh_conf_error(cf, s, "an \"alpn\" protocol must be 1..255 bytes");
            free(split);
            return WH_ERROR;
        }
        t->alpn = realloc(t->alpn, len + 1 + l);
        t->alpn[len] = (unsigned char) l;
        memcpy(t->alpn + len + 1, list[i], l);
        len += 1 + l;
    }
    t->alpn_len = len;
    free(split);
    return WH_OK;
}

/* Go's negotiateALPN (spec 2.2). */
static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
            const unsigned char *in, unsigned int inlen, void *arg)
{
    wh_tls_conf_t *t = arg;
    size_t i, j;
    int fallback = 0;

    if (t->alpn_len == 0) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    for (i = 0; i < t->alpn_len; i += 1 + t->alpn[i]) {
        const unsigned char *s = t->alpn + i + 1;
        size_t sl = t->alpn[i];
        for (j = 0; j < inlen; j += 1 + in[j]) {
            const unsigned char *c = in + j + 1;
            size_t cl = in[j];
            if (j + 1 + cl > inlen) break;
            if (cl == sl && memcmp(c, s, sl) == 0) {
                *out = s;
                *outlen = (unsigned char) sl;
                return SSL_TLSEXT_ERR_OK;
            }
            if (sl == 2 && memcmp(s, "h2", 2) == 0 && cl == 8 && memcmp(c, "http/1.1", 8) == 0) {
                fallback = 1;
            }
        }
    }
    return fallback ? SSL_TLSEXT_ERR_NOACK : SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int
name_matches(const wh_tls_cert_t *c, const char *name)
{
    int i;

    for (i = 0; i < c->nnames; i++) {
        if (strcmp(c->names[i], name) == 0) return 1;
    }
    return 0;
}

static wh_tls_minted_t *
mint(wh_tls_conf_t *t, const wh_tls_cert_t *ca, const char *name)
{
    wh_tls_minted_t *m;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *subject;
    GENERAL_NAMES *sans;
    GENERAL_NAME *g;
    ASN1_IA5STRING *ia5;
    unsigned char serial[16];
    BIGNUM *bn;
    time_t now = time(NULL);

    if (key == NULL || x == NULL) goto failed;
    X509_set_version(x, 2);
    RAND_bytes(serial, sizeof(serial));
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_time_adj_ex(X509_getm_notBefore(x), 0, -3600, &now);
    X509_time_adj_ex(X509_getm_notAfter(x), 0, 3600, &now);
    subject = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *) name, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(ca->cert));
    X509_set_pubkey(x, key);
    sans = GENERAL_NAMES_new();
    g = GENERAL_NAME_new();
    ia5 = ASN1_IA5STRING_new();
    ASN1_STRING_set(ia5, name, -1);
    GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
    sk_GENERAL_NAME_push(sans, g);
    X509_add1_ext_i2d(x, NID_subject_alt_name, sans, 0, 0);
    GENERAL_NAMES_free(sans);
    if (X509_sign(x, ca->key, EVP_sha256()) == 0) goto failed;

    m = wh_xalloc(sizeof(*m));
    m->name = wh_xstrdup(name);
    m->cert = x;
    m->key = key;
    m->expires = now + 3600 - 60;
    m->next = t->minted;
    t->minted = m;
    t->nminted++;
    return m;

failed:
    wh_log(WH_LOG_ERROR, "minting a certificate for \"%s\" failed (%s)", name, ssl_reason());
    EVP_PKEY_free(key);
    X509_free(x);
    return NULL;
}

static wh_tls_minted_t *
minted_for(wh_tls_conf_t *t, const wh_tls_cert_t *ca, const char *name)
{
    wh_tls_minted_t **p, *m;
    time_t now = time(NULL);

    for (p = &t->minted; (m = *p) != NULL; p = &m->next) {
        if (strcmp(m->name, name) != 0) continue;
        if (m->expires > now) return m;
        *p = m->next;       /* expired: mint again */
        X509_free(m->cert);
        EVP_PKEY_free(m->key);
        free(m->name);
        free(m);
        t->nminted--;
        break;
    }
    if (t->nminted >= WH_TLS_MINTED_MAX) {
        /* drop the oldest (the list's tail) */
        for (p = &t->minted; (*p)->next != NULL; p = &(*p)->next) { /* void */ }
        m = *p;
        *p = NULL;
        X509_free(m->cert);
        EVP_PKEY_free(m->key);
        free(m->name);
        free(m);
        t->nminted--;
    }
    return mint(t, ca, name);
}

int
wh_tls_choose(const wh_tls_conf_t *t, const char *sni)
{
    char name[256], wild[258];
    const char *dot;
    int i, first = -1, ca = -1;
    size_t n = 0;

    for (; sni != NULL && sni[n] && n < sizeof(name) - 1; n++) {
        name[n] = (char) tolower((unsigned char) sni[n]);
    }
    name[n] = '\0';
    for (i = 0; i < t->ncerts; i++) {
        const wh_tls_cert_t *c = &t->certs[i];
        if (c->usage == WH_CERT_ISSUE && ca == -1) ca = i;
        if (c->usage != WH_CERT_ENCIPHERMENT) continue;
        if (first == -1) first = i;
        if (name[0] && name_matches(c, name)) return i;
    }
    if (ca != -1 && name[0]) {
        return WH_TLS_MINT;
    }
    if (name[0] && (dot = strchr(name, '.')) != NULL) {
        snprintf(wild, sizeof(wild), "*%s", dot);
        for (i = 0; i < t->ncerts; i++) {
            if (t->certs[i].usage == WH_CERT_ENCIPHERMENT && name_matches(&t->certs[i], wild)) {
                return i;
            }
        }
    }
    return first;
}

static int
cert_cb(SSL *ssl, void *arg)
{
    wh_tls_conf_t *t = arg;
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    int i = wh_tls_choose(t, sni);
    const wh_tls_cert_t *c;

    if (i == WH_TLS_MINT) {
        wh_tls_minted_t *m;
        char name[256];
        size_t n;
        int ca;

        for (n = 0; sni[n] && n < sizeof(name) - 1; n++) name[n] = (char) tolower((unsigned char) sni[n]);
        name[n] = '\0';
        for (ca = 0; t->certs[ca].usage != WH_CERT_ISSUE; ca++) { /* void */ }
        m = minted_for(t, &t->certs[ca], name);
        return m != NULL && SSL_use_cert_and_key(ssl, m->cert, m->key, NULL, 1);
    }
    if (i < 0) {
        return 0;
    }
    c = &t->certs[i];
    return SSL_use_cert_and_key(ssl, c->cert, c->key, c->chain, 1);
}

int
wh_tls_parse(wh_conf_t *cf, const config_setting_t *tls, const config_setting_t *where,
             const char *const *alpn_default, wh_tls_conf_t **out)
{
    wh_tls_conf_t *t = wh_xalloc(sizeof(*t));
    config_setting_t *certs = NULL;
    int resumption = 0, i, servers = 0;

    *out = t;
    if (tls != NULL
        && (wh_conf_check_names(cf, tls, tls_names, tls_client_names) != WH_OK
            || wh_conf_bool(cf, tls, "enableSessionResumption", &resumption) == WH_ERROR))
    {
        return WH_ERROR;
    }
    if (parse_alpn(cf, tls, alpn_default, t) != WH_OK) {
        return WH_ERROR;
    }
    certs = tls ? config_setting_get_member(tls, "certificates") : NULL;
    if (certs != NULL) {
        if (config_setting_type(certs) != CONFIG_TYPE_LIST) {
            wh_conf_error(cf, certs, "\"certificates\" must be a list ( { ... }, ... )");
            return WH_ERROR;
        }
        t->ncerts = config_setting_length(certs);
        t->certs = wh_xalloc(sizeof(wh_tls_cert_t) * (t->ncerts ? t->ncerts : 1));
        for (i = 0; i < t->ncerts; i++) {
            if (load_cert(cf, config_setting_get_elem(certs, i), &t->certs[i]) != WH_OK) {
                return WH_ERROR;
            }
            servers += t->certs[i].usage != WH_CERT_VERIFY;
        }
    }
    if (servers == 0) {
        wh_conf_error(cf, tls ? tls : where,
                      "security \"tls\" needs a certificate with usage \"encipherment\" or \"issue\"");
        return WH_ERROR;
    }

    if (conf_index == -1) {
        conf_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    }
    t->ctx = SSL_CTX_new(TLS_server_method());
    if (t->ctx == NULL) {
        wh_conf_error(cf, where, "SSL_CTX_new() failed (%s)", ssl_reason());
        return WH_ERROR;
    }
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    /* Go's TLS 1.3 preference (AES-128 first, and the cheapest) */
    SSL_CTX_set_ciphersuites(t->ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:"
                                     "TLS_AES_256_GCM_SHA384");
    SSL_CTX_set_options(t->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION
                                | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                             | SSL_MODE_RELEASE_BUFFERS);
    if (!resumption) {
        SSL_CTX_set_options(t->ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(t->ctx, 0);
        /* nothing OpenSSL writes after the handshake: a TLS 1.3 stream
         * can take its records over (wh_tls_stream.c) */
        SSL_CTX_set_keylog_callback(t->ctx, wh_tls_keylog);
    }
    SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
    /* no read-ahead: the stream reads ahead below OpenSSL instead, so that
     * OpenSSL stops at the end of the handshake (wh_tls_stream.c) */
    SSL_CTX_set_cert_cb(t->ctx, cert_cb, t);
    SSL_CTX_set_alpn_select_cb(t->ctx, alpn_select, t);
    SSL_CTX_set_ex_data(t->ctx, conf_index, t);
    return WH_OK;
}

void
wh_tls_free(wh_tls_conf_t *t)
{
    int i, j;
    wh_tls_minted_t *m;

    if (t == NULL) {
        return;
    }
    SSL_CTX_free(t->ctx);
    for (i = 0; i < t->ncerts; i++) {
        X509_free(t->certs[i].cert);
        EVP_PKEY_free(t->certs[i].key);
        sk_X509_pop_free(t->certs[i].chain, X509_free);
        for (j = 0; j < t->certs[i].nnames; j++) free(t->certs[i].names[j]);
        free(t->certs[i].names);
    }
    while ((m = t->minted) != NULL) {
        t->minted = m->next;
        X509_free(m->cert);
        EVP_PKEY_free(m->key);
        free(m->name);
        free(m);
    }
    free(t->certs);
    free(t->alpn);
    free(t);
}

SSL_CTX *
wh_tls_ctx(wh_tls_conf_t *t)
{
    return t->ctx;
}

int
wh_tls_ncerts(const wh_tls_conf_t *t)
{
    return t->ncerts;
}

static char *
bio_text(BIO *bio)
{
    char *data, *text = NULL;
    long n = BIO_get_mem_data(bio, &data);

    if (n > 0 && (text = malloc(n + 1)) != NULL) {
        memcpy(text, data, n);
        text[n] = '\0';
    }
    BIO_free(bio);
    return text;
}

int
wh_tls_cert_pem(const wh_tls_conf_t *t, int i, char **cert, char **key)
{
    const wh_tls_cert_t *c = &t->certs[i];
    BIO *b;
    int j;

    *cert = *key = NULL;
    if (c->key == NULL || c->usage != WH_CERT_ENCIPHERMENT) {
        return WH_DECLINED;
    }
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, c->cert);
    for (j = 0; j < sk_X509_num(c->chain); j++) PEM_write_bio_X509(b, sk_X509_value(c->chain, j));
    *cert = bio_text(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, c->key, NULL, NULL, 0, NULL, NULL);
    *key = bio_text(b);
    if (*cert == NULL || *key == NULL) {
        free(*cert);
        free(*key);
        *cert = *key = NULL;
        return WH_ERROR;
    }
    return WH_OK;
}

const unsigned char *
wh_tls_alpn_list(const wh_tls_conf_t *t, size_t *len)
{
    *len = t->alpn_len;
    return t->alpn;
}

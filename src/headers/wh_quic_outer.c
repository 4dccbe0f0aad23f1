/*
 * wh_quic_outer.c -- QUIC outer datagram seal/open (transports spec 8.1, 8.2).
 *
 * Layout: header (0-13) | nonce (12, random per datagram) | AEAD(inner) | tag
 * (16), associated data empty, as V2Ray 4.34's transport/internet/quic
 * sysConn does. Both AEADs go through EVP with the key set once per instance
 * and only the nonce per datagram: the per-packet path then allocates
 * nothing. AES-128-GCM uses K[0..15], ChaCha20-Poly1305 all of K.
 */
#include "wh_quic_outer.h"

#include <limits.h>

#include "wh_random.h"

static const char wh_quic_salt[] = "v2ray-quic-salt";

wh_quic_security_e
wh_quic_security_by_name(const char *name)
{
    static const struct {
        const char         *name;
        wh_quic_security_e  sec;
    } names[] = {
        { "aes-128-gcm", WH_QUIC_SEC_AES_128_GCM },
        { "chacha20-poly1305", WH_QUIC_SEC_CHACHA20_POLY1305 },
    };

    if (name == NULL)
        return WH_QUIC_SEC_NONE;
    for (size_t i = 0; i < wh_nelems(names); i++) {
        const char *a = name, *b = names[i].name;
        /* ASCII folding: Go's strings.ToLower folds nothing else into these. */
        while (*a != '\0' && *b != '\0'
               && (*a == *b || (*a >= 'A' && *a <= 'Z' && *a - 'A' + 'a' == *b))) {
            a++;
            b++;
        }
        if (*a == '\0' && *b == '\0')
            return names[i].sec;
    }
    return WH_QUIC_SEC_NONE;
}

const char *
wh_quic_security_name(wh_quic_security_e sec)
{
    switch (sec) {
    case WH_QUIC_SEC_AES_128_GCM:
        return "aes-128-gcm";
    case WH_QUIC_SEC_CHACHA20_POLY1305:
        return "chacha20-poly1305";
    case WH_QUIC_SEC_NONE:
        break;
    }
    return "none";
}

int
wh_quic_outer_derive_key(const char *key, uint8_t out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok;

    if (key == NULL)
        key = "";
    ok = md != NULL
         && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1
         && EVP_DigestUpdate(md, key, strlen(key)) == 1
         && EVP_DigestUpdate(md, wh_quic_salt, sizeof(wh_quic_salt) - 1) == 1
         && EVP_DigestFinal_ex(md, out, NULL) == 1;
    EVP_MD_CTX_free(md);
    return ok ? WH_OK : WH_ERROR;
}

int
wh_quic_outer_conf_set(wh_quic_outer_conf_t *conf, const char *security,
                       const char *key, const wh_pkt_header_t *header)
{
    memset(conf, 0, sizeof(*conf));
    conf->security = wh_quic_security_by_name(security);
    conf->header = header ? header : &wh_pkt_header_none;
    /* The key is ignored with none, but K is cheap and keeps conf complete. */
    return wh_quic_outer_derive_key(key, conf->key);
}

int
wh_quic_outer_conf_default(wh_quic_outer_conf_t *conf)
{
    /* V2Ray's protobuf default is AES-128-GCM on amd64/arm64/s390x builds:
     * the peers wharf meets in practice (spec 8.1). */
    return wh_quic_outer_conf_set(conf, "aes-128-gcm", "", NULL);
}

int
wh_quic_outer_conf_read(wh_conf_t *cf, const config_setting_t *quic,
                        wh_quic_outer_conf_t *conf)
{
    const char *security = NULL, *key = NULL;
    const wh_pkt_header_t *header;

    if (quic == NULL)
        return wh_quic_outer_conf_default(conf);

    if (wh_conf_string(cf, quic, "security", &security) == WH_ERROR
        || wh_conf_string(cf, quic, "key", &key) == WH_ERROR
        || wh_pkt_header_conf(cf, quic, &header) == WH_ERROR)
        return WH_ERROR;

    if (wh_quic_outer_conf_set(conf, security, key, header) != WH_OK) {
        wh_conf_error(cf, quic, "cannot derive the QUIC key");
        return WH_ERROR;
    }
    return WH_OK;
}

static const EVP_CIPHER *
wh_quic_cipher(wh_quic_security_e sec)
{
    switch (sec) {
    case WH_QUIC_SEC_AES_128_GCM:
        return EVP_aes_128_gcm();
    case WH_QUIC_SEC_CHACHA20_POLY1305:
        return EVP_chacha20_poly1305();
    case WH_QUIC_SEC_NONE:
        break;
    }
    return NULL;
}

int
wh_quic_outer_init(wh_quic_outer_t *o, const wh_quic_outer_conf_t *conf)
{
    const EVP_CIPHER *cipher;

    memset(o, 0, sizeof(*o));
    o->conf = *conf;
    if (o->conf.header == NULL)
        o->conf.header = &wh_pkt_header_none;
    if (wh_pkt_header_init(o->conf.header, &o->hstate) != WH_OK)
        return WH_ERROR;

    cipher = wh_quic_cipher(conf->security);
    if (cipher == NULL)
        return WH_OK;

    /* Both ciphers default to a 12-byte IV, the nonce size V2Ray uses, so no
     * EVP_CTRL_AEAD_SET_IVLEN. */
    o->enc = EVP_CIPHER_CTX_new();
    o->dec = EVP_CIPHER_CTX_new();
    if (o->enc == NULL || o->dec == NULL
        || EVP_EncryptInit_ex(o->enc, cipher, NULL, conf->key, NULL) != 1
        || EVP_DecryptInit_ex(o->dec, cipher, NULL, conf->key, NULL) != 1)
        return WH_ERROR;
    return WH_OK;
}

void
wh_quic_outer_free(wh_quic_outer_t *o)
{
    EVP_CIPHER_CTX_free(o->enc);
    EVP_CIPHER_CTX_free(o->dec);
    o->enc = NULL;
    o->dec = NULL;
}

size_t
wh_quic_outer_prefix(const wh_quic_outer_t *o)
{
    return o->conf.header->size
           + (o->conf.security != WH_QUIC_SEC_NONE ? WH_QUIC_OUTER_NONCE_LEN : 0);
}

size_t
wh_quic_outer_overhead(const wh_quic_outer_t *o)
{
    return wh_quic_outer_prefix(o)
           + (o->conf.security != WH_QUIC_SEC_NONE ? WH_QUIC_OUTER_TAG_LEN : 0);
}

size_t
wh_quic_outer_max_inner(const wh_quic_outer_t *o, size_t udp_payload)
{
    size_t over = wh_quic_outer_overhead(o);

    if (udp_payload == 0)
        return WH_QUIC_OUTER_MAX_INNER;
    if (udp_payload <= over)
        return 0;
    return wh_min(udp_payload - over, (size_t) WH_QUIC_OUTER_MAX_INNER);
}

ssize_t
wh_quic_outer_seal(wh_quic_outer_t *o, uint8_t *buf, size_t buf_size,
                   size_t inner_len)
{
    size_t hsize = o->conf.header->size;
    size_t prefix = wh_quic_outer_prefix(o);
    uint8_t *nonce = buf + hsize, *body = buf + prefix;
    int n, fin;

    /* Enforced here, not left to the QUIC stack: one oversized datagram
     * kills the V2Ray peer's whole process (spec 8.2). */
    if (inner_len > WH_QUIC_OUTER_MAX_INNER
        || buf_size < wh_quic_outer_overhead(o) + inner_len)
        return -1;

    if (o->conf.security == WH_QUIC_SEC_NONE) {
        wh_pkt_header_write(o->conf.header, &o->hstate, buf);
        return (ssize_t) (prefix + inner_len);
    }

    if (wh_random_nonce(nonce, WH_QUIC_OUTER_NONCE_LEN) != WH_OK
        || EVP_EncryptInit_ex(o->enc, NULL, NULL, NULL, nonce) != 1
        || EVP_EncryptUpdate(o->enc, body, &n, body, (int) inner_len) != 1
        || EVP_EncryptFinal_ex(o->enc, body + n, &fin) != 1
        || EVP_CIPHER_CTX_ctrl(o->enc, EVP_CTRL_AEAD_GET_TAG, WH_QUIC_OUTER_TAG_LEN,
                               body + inner_len) != 1)
        return -1;

    /* Only now: a failed seal must not advance the header counters. */
    wh_pkt_header_write(o->conf.header, &o->hstate, buf);
    return (ssize_t) (prefix + inner_len + WH_QUIC_OUTER_TAG_LEN);
}

ssize_t
wh_quic_outer_open(wh_quic_outer_t *o, uint8_t *buf, size_t len, uint8_t **inner)
{
    size_t hsize = o->conf.header->size;
    uint8_t *nonce, *body;
    size_t body_len;
    int n, fin;

    /* V2Ray drops a datagram no longer than its header (spec 7). */
    if (len <= hsize)
        return -1;

    if (o->conf.security == WH_QUIC_SEC_NONE) {
        *inner = buf + hsize;
        return (ssize_t) (len - hsize);
    }

    /* Go's AEAD Open refuses anything shorter than nonce + tag too. */
    if (len - hsize < WH_QUIC_OUTER_NONCE_LEN + WH_QUIC_OUTER_TAG_LEN)
        return -1;

    nonce = buf + hsize;
    body = nonce + WH_QUIC_OUTER_NONCE_LEN;
    body_len = len - hsize - WH_QUIC_OUTER_NONCE_LEN - WH_QUIC_OUTER_TAG_LEN;
    if (body_len > INT_MAX)
        return -1;

    if (EVP_DecryptInit_ex(o->dec, NULL, NULL, NULL, nonce) != 1
        || EVP_CIPHER_CTX_ctrl(o->dec, EVP_CTRL_AEAD_SET_TAG, WH_QUIC_OUTER_TAG_LEN,
                               body + body_len) != 1
        || EVP_DecryptUpdate(o->dec, body, &n, body, (int) body_len) != 1
        || EVP_DecryptFinal_ex(o->dec, body + n, &fin) != 1)
        return -1;

    *inner = body;
    return (ssize_t) body_len;
}

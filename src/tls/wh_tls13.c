/*
 * wh_tls13.c -- the TLS 1.3 record layer after the handshake (wh_tls13.h).
 *
 * Hand-written because OpenSSL 3.0 offers no way to run its record layer
 * without the SSL object around it, but only the framing is: the AEAD
 * ciphers and HKDF are OpenSSL's (EVP), fetched once per process. The
 * nonce, the additional data and the inner content type follow RFC 8446
 * section 5.2-5.3; the key schedule for a KeyUpdate, section 7.2.
 */
#include "wh_tls13.h"
#include "wh_stream.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>

/* fixed_iv: the receiver keeps the nonce's first 4 bytes in the cipher
 * and gives it the other 8 with each record's tag (open_params) */
static const struct {
    unsigned id;
    const char *cipher, *md;
    uint8_t key_len, secret_len, fixed_iv;
} suites[] = {
    { 0x1301, "AES-128-GCM", "SHA256", 16, 32, 1 },
    { 0x1302, "AES-256-GCM", "SHA384", 32, 48, 1 },
    { 0x1303, "ChaCha20-Poly1305", "SHA256", 32, 32, 0 },
};

#define NSUITES (sizeof(suites) / sizeof(suites[0]))

static EVP_CIPHER *ciphers[NSUITES];
static EVP_KDF_CTX *hkdf[NSUITES];     /* HKDF-Expand with the suite's hash: made once,
                                        * as a new context per key costs more than the key */

int
wh_tls13_suite(unsigned protocol_id)
{
    size_t i;

    for (i = 0; i < NSUITES; i++) {
        if (suites[i].id == protocol_id) return (int) i;
    }
    return -1;
}

size_t
wh_tls13_secret_len(int suite)
{
    return suites[suite].secret_len;
}

/* HKDF-Expand-Label(secret, label, "", len) (section 7.1) */
static int
expand_label(int suite, const uint8_t *secret, const char *label, uint8_t *out, size_t len)
{
    uint8_t info[2 + 1 + 6 + 16 + 1];
    size_t ll = strlen(label), il = 0;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[3];

    if (hkdf[suite] == NULL) {
        EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);

        params[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
        params[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                     (char *) suites[suite].md, 0);
        params[2] = OSSL_PARAM_construct_end();
        hkdf[suite] = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
        EVP_KDF_free(kdf);                          /* the context holds its own */
        if (hkdf[suite] == NULL || EVP_KDF_CTX_set_params(hkdf[suite], params) != 1) {
            EVP_KDF_CTX_free(hkdf[suite]);
            hkdf[suite] = NULL;
            return WH_ERROR;
        }
    }
    info[il++] = (uint8_t) (len >> 8);
    info[il++] = (uint8_t) len;
    info[il++] = (uint8_t) (6 + ll);
    memcpy(info + il, "tls13 ", 6);
    il += 6;
    memcpy(info + il, label, ll);
    il += ll;
    info[il++] = 0;                 /* no context */
    /* both replace what the last derivation set */
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) secret,
                                                  suites[suite].secret_len);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, il);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_KDF_derive(hkdf[suite], out, len, params) == 1 ? WH_OK : WH_ERROR;
}

/* Keys d from d->secret: a new key and IV, sequence 0. */
static int
dir_key(wh_tls13_t *t, wh_tls13_dir_t *d, int enc)
{
    uint8_t key[32];
    int ok;

    if (ciphers[t->suite] == NULL
        && (ciphers[t->suite] = EVP_CIPHER_fetch(NULL, suites[t->suite].cipher, NULL)) == NULL)
    {
        return WH_ERROR;
    }
    if (expand_label(t->suite, d->secret, "key", key, suites[t->suite].key_len) != WH_OK
        || expand_label(t->suite, d->secret, "iv", d->iv, sizeof(d->iv)) != WH_OK)
    {
        return WH_ERROR;
    }
    if (d->ctx == NULL) {
        d->ctx = EVP_CIPHER_CTX_new();
        ok = d->ctx != NULL && EVP_CipherInit_ex(d->ctx, ciphers[t->suite], NULL, key, NULL, enc);
    } else {
        ok = EVP_CipherInit_ex(d->ctx, NULL, NULL, key, NULL, enc);
    }
    OPENSSL_cleanse(key, sizeof(key));
    d->seq = 0;
    d->fixed = 0;
    if (ok && !enc && suites[t->suite].fixed_iv) {
        OSSL_PARAM p[2] = {
            OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED, d->iv, 4),
            OSSL_PARAM_END
        };

        d->fixed = EVP_CIPHER_CTX_set_params(d->ctx, p) == 1;
    }
    return ok ? WH_OK : WH_ERROR;
}

/* The next traffic secret (section 7.2) and its keys. */
static int
dir_update(wh_tls13_t *t, wh_tls13_dir_t *d, int enc)
{
    uint8_t next[WH_TLS13_SECRET_MAX];
    int rc;

    rc = expand_label(t->suite, d->secret, "traffic upd", next, suites[t->suite].secret_len);
    memcpy(d->secret, next, sizeof(next));
    OPENSSL_cleanse(next, sizeof(next));
    return rc == WH_OK ? dir_key(t, d, enc) : WH_ERROR;
}

int
wh_tls13_init(wh_tls13_t *t, int suite)
{
    t->suite = (uint8_t) suite;
    if (dir_key(t, &t->rx, 0) != WH_OK || dir_key(t, &t->tx, 1) != WH_OK) {
        wh_tls13_free(t);
        return WH_ERROR;
    }
    return WH_OK;
}

void
wh_tls13_free(wh_tls13_t *t)
{
    EVP_CIPHER_CTX_free(t->rx.ctx);
    EVP_CIPHER_CTX_free(t->tx.ctx);
    OPENSSL_cleanse(t, sizeof(*t));
}

/* the per-record nonce: the IV xor the sequence number (section 5.3) */
static void
nonce(const wh_tls13_dir_t *d, uint8_t out[12])
{
    int i;

    memcpy(out, d->iv, 12);
    for (i = 0; i < 8; i++) out[11 - i] ^= (uint8_t) (d->seq >> (8 * i));
}

/* The tag goes in and out as a parameter: EVP_CIPHER_CTX_ctrl() would
 * build the same one each record, after a switch (a 2 KiB record from a
 * V2Ray client costs about 500 ns, 40 of them the tag's) */
static int
tag_param(wh_evp_ctx_t *ctx, uint8_t tag[WH_TLS13_TAG], int enc)
{
    OSSL_PARAM p[2] = {
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, WH_TLS13_TAG),
        OSSL_PARAM_END
    };

    return enc ? EVP_CIPHER_CTX_get_params(ctx, p) : EVP_CIPHER_CTX_set_params(ctx, p);
}

ssize_t
wh_tls13_record_len(wh_tls13_t *t, const uint8_t *p, size_t n)
{
    size_t len;

    if (n < WH_TLS13_HEADER) return 0;
    if (p[0] != WH_TLS13_DATA) {
        /* a change_cipher_spec or a plain alert ended with the handshake */
        t->reason = "unexpected record type";
        return WH_ERROR;
    }
    if (p[1] != 3 || p[2] != 3) {
        t->reason = "wrong version number";
        return WH_ERROR;
    }
    len = (size_t) p[3] << 8 | p[4];
    if (len > WH_TLS13_MAX_RECORD - WH_TLS13_HEADER) {
        t->reason = "encrypted length too long";
        return WH_ERROR;
    }
    if (len < 1 + WH_TLS13_TAG) {
        t->reason = "bad record length";
        return WH_ERROR;
    }
    return (ssize_t) (WH_TLS13_HEADER + len);
}

size_t
wh_tls13_sealv(wh_tls13_t *t, uint8_t type, const struct iovec *iov, int iovcnt, uint8_t *out)
{
    wh_tls13_dir_t *d = &t->tx;
    size_t n = wh_iov_len(iov, iovcnt), len;
    uint8_t iv[12];
    int i, l, ok;

    len = n + 1 + WH_TLS13_TAG;
    out[0] = WH_TLS13_DATA;
    out[1] = 3;
    out[2] = 3;
    out[3] = (uint8_t) (len >> 8);
    out[4] = (uint8_t) len;
    nonce(d, iv);
    ok = EVP_EncryptInit_ex(d->ctx, NULL, NULL, NULL, iv)
         && EVP_EncryptUpdate(d->ctx, NULL, &l, out, WH_TLS13_HEADER);
    out += WH_TLS13_HEADER;
    for (i = 0; ok && i < iovcnt; i++) {
        if (iov[i].iov_len == 0) continue;
        ok = EVP_EncryptUpdate(d->ctx, out, &l, iov[i].iov_base, (int) iov[i].iov_len)
             && (size_t) l == iov[i].iov_len;
        out += iov[i].iov_len;
    }
    ok = ok && EVP_EncryptUpdate(d->ctx, out, &l, &type, 1) && l == 1
         && EVP_EncryptFinal_ex(d->ctx, out + 1, &l) && l == 0
         && tag_param(d->ctx, out + 1, 1);
    d->seq++;
    return ok ? WH_TLS13_HEADER + len : 0;
}

size_t
wh_tls13_seal(wh_tls13_t *t, uint8_t type, const uint8_t *in, size_t n, uint8_t *out)
{
    struct iovec v = { (void *) in, n };

    return wh_tls13_sealv(t, type, &v, 1, out);
}

/* A record's nonce and tag for an AES-GCM receiver, in one call: the
 * last 8 bytes of the nonce as TLS 1.2's invocation field, after the 4
 * the cipher keeps (dir_key). EVP_DecryptInit_ex() with the whole nonce
 * would look up its length through the provider's parameters first, about
 * 60 ns of the 500 that a 2 KiB record from a V2Ray client costs. */
static int
open_params(wh_tls13_dir_t *d, const uint8_t iv[12], uint8_t tag[WH_TLS13_TAG])
{
    OSSL_PARAM p[3] = {
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, WH_TLS13_TAG),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_SET_IV_INV, (uint8_t *) iv + 4, 8),
        OSSL_PARAM_END
    };

    return EVP_CIPHER_CTX_set_params(d->ctx, p);
}

ssize_t
wh_tls13_open(wh_tls13_t *t, const uint8_t *rec, size_t len, uint8_t *out, uint8_t *type)
{
    wh_tls13_dir_t *d = &t->rx;
    size_t clen = len - WH_TLS13_HEADER - WH_TLS13_TAG;
    uint8_t iv[12], tag[WH_TLS13_TAG];
    int l, ok;

    memcpy(tag, rec + WH_TLS13_HEADER + clen, WH_TLS13_TAG);
    nonce(d, iv);
    ok = d->fixed ? open_params(d, iv, tag)
                  : EVP_DecryptInit_ex(d->ctx, NULL, NULL, NULL, iv) && tag_param(d->ctx, tag, 0);
    if (!ok
        || !EVP_DecryptUpdate(d->ctx, NULL, &l, rec, WH_TLS13_HEADER)
        || !EVP_DecryptUpdate(d->ctx, out, &l, rec + WH_TLS13_HEADER, (int) clen)
        || (size_t) l != clen
        || EVP_DecryptFinal_ex(d->ctx, out + clen, &l) <= 0)
    {
        t->reason = "bad record mac";
        return WH_ERROR;
    }
    d->seq++;
    /* the content type is the last byte that is not padding */
    while (clen > 0 && out[clen - 1] == 0) clen--;
    if (clen == 0) {
        t->reason = "no content type";
        return WH_ERROR;
    }
    *type = out[--clen];
    if (clen > WH_TLS13_MAX_PLAIN) {
        t->reason = "data length too long";
        return WH_ERROR;
    }
    return (ssize_t) clen;
}

int
wh_tls13_control(wh_tls13_t *t, uint8_t type, const uint8_t *p, size_t n)
{
    size_t len;

    switch (type) {
    case WH_TLS13_ALERT:
        if (n != 2) break;
        if (p[1] == SSL_AD_CLOSE_NOTIFY) return WH_DECLINED;
        if (p[1] == SSL_AD_USER_CANCELLED) return WH_OK;    /* close_notify follows */
        t->reason = SSL_alert_desc_string_long(p[1]);
        return WH_ERROR;
    case WH_TLS13_HANDSHAKE:
        /* whole messages only: a KeyUpdate is 5 bytes */
        while (n > 0) {
            if (n < 4 || (len = (size_t) p[1] << 16 | (size_t) p[2] << 8 | p[3]) > n - 4) {
                t->reason = "handshake message split across records";
                return WH_ERROR;
            }
            if (p[0] != SSL3_MT_KEY_UPDATE) {
                t->reason = "unexpected message";
                return WH_ERROR;
            }
            if (len != 1 || p[4] > 1) {
                t->reason = "bad key update";
                return WH_ERROR;
            }
            if (dir_update(t, &t->rx, 0) != WH_OK) {
                t->reason = "key update failed";
                return WH_ERROR;
            }
            t->answer |= p[4];
            p += 5;
            n -= 5;
        }
        return WH_OK;
    }
    t->reason = "unexpected message";
    return WH_ERROR;
}

size_t
wh_tls13_key_update(wh_tls13_t *t, uint8_t *out)
{
    static const uint8_t msg[5] = { SSL3_MT_KEY_UPDATE, 0, 0, 1, 0 };
    size_t len = wh_tls13_seal(t, WH_TLS13_HANDSHAKE, msg, sizeof(msg), out);

    t->answer = 0;
    if (len == 0 || dir_update(t, &t->tx, 1) != WH_OK) return 0;
    return len;
}

/*
 * wh_kcp_crypt.c -- the mKCP datagram security envelope (spec 9.2).
 *
 * Simple security is V2Ray's SimpleAuthenticator: B = H(4) L(2) P with
 * H = FNV-1a-32(L P), then B[i] ^= B[i-4] ascending from i = 4; opening
 * undoes the XOR descending and checks H and L. It only detects damage, so
 * it runs in place on the receive buffer.
 *
 * Seed security is V2Ray's NewAEADAESGCMBasedOnSeed(): AES-128-GCM, key =
 * SHA-256(seed)[0..15], a fresh random 12-byte nonce in front of each body
 * (KCPPacketWriter), the 16-byte tag behind, no associated data. The two
 * EVP contexts are keyed once at init so a datagram only sets its nonce.
 *
 * Bodies of at most the overhead (6 or 28 bytes) are dropped as V2Ray's
 * KCPPacketReader drops them: an empty plaintext cannot hold a segment.
 */
#include "wh_core.h"

#include <openssl/evp.h>

#include "wh_kcp_crypt.h"
#include "wh_kcp_segment.h"
#include "wh_random.h"

#define WH_KCP_FNV_OFFSET  0x811c9dc5u
#define WH_KCP_FNV_PRIME   0x01000193u

uint32_t
wh_kcp_fnv1a32(const uint8_t *p, size_t len)
{
    uint32_t h = WH_KCP_FNV_OFFSET;
    size_t i;

    for (i = 0; i < len; i++) {
        h = (h ^ p[i]) * WH_KCP_FNV_PRIME;
    }
    return h;
}

int
wh_kcp_seed_key(const char *seed, size_t seed_len, uint8_t key[WH_KCP_SEED_KEY_LEN])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (EVP_Digest(seed_len > 0 ? seed : "", seed_len, md, &md_len, EVP_sha256(), NULL) != 1) {
        return WH_ERROR;
    }
    memcpy(key, md, WH_KCP_SEED_KEY_LEN);
    return WH_OK;
}

ssize_t
wh_kcp_simple_seal(uint8_t *out, size_t size, const uint8_t *plain, size_t len)
{
    size_t total = WH_KCP_SIMPLE_OVERHEAD + len, i;
    uint32_t h;

    /* V2Ray would truncate L silently; such a body could never open */
    if (len > 0xffff || total > size) {
        return -1;
    }

    out[4] = (uint8_t) (len >> 8);
    out[5] = (uint8_t) len;
    if (len > 0) {
        memcpy(out + WH_KCP_SIMPLE_OVERHEAD, plain, len);
    }
    h = wh_kcp_fnv1a32(out + 4, len + 2);
    out[0] = (uint8_t) (h >> 24);
    out[1] = (uint8_t) (h >> 16);
    out[2] = (uint8_t) (h >> 8);
    out[3] = (uint8_t) h;

    /* ascending: each byte is mixed with the already mixed one 4 before */
    for (i = 4; i < total; i++) {
        out[i] ^= out[i - 4];
    }
    return (ssize_t) total;
}

ssize_t
wh_kcp_simple_open(uint8_t *body, size_t len, uint8_t **plain)
{
    size_t i;
    uint32_t h;

    if (len <= WH_KCP_SIMPLE_OVERHEAD) {
        return -1;
    }

    for (i = len - 1; i >= 4; i--) {
        body[i] ^= body[i - 4];
    }

    h = (uint32_t) body[0] << 24 | (uint32_t) body[1] << 16 | (uint32_t) body[2] << 8 | body[3];
    if (h != wh_kcp_fnv1a32(body + 4, len - 4)) {
        return -1;
    }
    if ((size_t) (body[4] << 8 | body[5]) != len - WH_KCP_SIMPLE_OVERHEAD) {
        return -1;
    }

    *plain = body + WH_KCP_SIMPLE_OVERHEAD;
    return (ssize_t) (len - WH_KCP_SIMPLE_OVERHEAD);
}

int
wh_kcp_crypt_init(wh_kcp_crypt_t *c, const char *seed, size_t seed_len)
{
    EVP_CIPHER_CTX *s = NULL, *o = NULL;

    memset(c, 0, sizeof(*c));
    if (seed == NULL) {
        return WH_OK;
    }

    if (wh_kcp_seed_key(seed, seed_len, c->key) != WH_OK) {
        return WH_ERROR;
    }

    s = EVP_CIPHER_CTX_new();
    o = EVP_CIPHER_CTX_new();
    if (s == NULL || o == NULL
        || EVP_EncryptInit_ex(s, EVP_aes_128_gcm(), NULL, c->key, NULL) != 1
        || EVP_DecryptInit_ex(o, EVP_aes_128_gcm(), NULL, c->key, NULL) != 1)
    {
        EVP_CIPHER_CTX_free(s);
        EVP_CIPHER_CTX_free(o);
        memset(c, 0, sizeof(*c));
        return WH_ERROR;
    }

    c->seeded = 1;
    c->seal_ctx = s;
    c->open_ctx = o;
    return WH_OK;
}

void
wh_kcp_crypt_free(wh_kcp_crypt_t *c)
{
    EVP_CIPHER_CTX_free(c->seal_ctx);
    EVP_CIPHER_CTX_free(c->open_ctx);
    memset(c, 0, sizeof(*c));
}

size_t
wh_kcp_crypt_overhead(const wh_kcp_crypt_t *c)
{
    return c->seeded ? WH_KCP_SEED_OVERHEAD : WH_KCP_SIMPLE_OVERHEAD;
}

size_t
wh_kcp_crypt_mss(const wh_kcp_crypt_t *c, size_t mtu, size_t header_size)
{
    /* V2Ray's AEAD Overhead() leaves the nonce out (spec 9.1 Overhead) */
    size_t sub = header_size + (c->seeded ? WH_KCP_SEED_TAG_LEN : WH_KCP_SIMPLE_OVERHEAD)
                 + WH_KCP_DATA_OVERHEAD;

    return mtu > sub ? mtu - sub : 0;
}

ssize_t
wh_kcp_crypt_seal(wh_kcp_crypt_t *c, uint8_t *out, size_t size,
    const uint8_t *plain, size_t len, const uint8_t *nonce)
{
    EVP_CIPHER_CTX *ctx = c->seal_ctx;
    size_t total = WH_KCP_SEED_OVERHEAD + len;
    uint8_t *ct;
    int n = 0, f = 0;

    if (!c->seeded) {
        return wh_kcp_simple_seal(out, size, plain, len);
    }

    if (total > size || len > INT32_MAX - WH_KCP_SEED_OVERHEAD) {
        return -1;
    }

    if (nonce != NULL) {
        memcpy(out, nonce, WH_KCP_SEED_NONCE_LEN);
    } else if (wh_random_nonce(out, WH_KCP_SEED_NONCE_LEN) != WH_OK) {
        return -1;
    }

    ct = out + WH_KCP_SEED_NONCE_LEN;
    /* the key stays; a NULL cipher and key only reset the nonce */
    if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, out) != 1
        || EVP_EncryptUpdate(ctx, ct, &n, plain, (int) len) != 1
        || EVP_EncryptFinal_ex(ctx, ct + n, &f) != 1
        || (size_t) (n + f) != len
        || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, WH_KCP_SEED_TAG_LEN, ct + len) != 1)
    {
        return -1;
    }
    return (ssize_t) total;
}

ssize_t
wh_kcp_crypt_open(wh_kcp_crypt_t *c, uint8_t *body, size_t len, uint8_t **plain)
{
    EVP_CIPHER_CTX *ctx = c->open_ctx;
    uint8_t *ct;
    size_t clen;
    int n = 0, f = 0;

    if (!c->seeded) {
        return wh_kcp_simple_open(body, len, plain);
    }

    if (len <= WH_KCP_SEED_OVERHEAD || len > INT32_MAX) {
        return -1;
    }

    ct = body + WH_KCP_SEED_NONCE_LEN;
    clen = len - WH_KCP_SEED_OVERHEAD;
    /* in place: GCM is a stream mode, so output may alias input exactly */
    if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, body) != 1
        || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, WH_KCP_SEED_TAG_LEN, ct + clen) != 1
        || EVP_DecryptUpdate(ctx, ct, &n, ct, (int) clen) != 1
        || EVP_DecryptFinal_ex(ctx, ct + n, &f) != 1
        || (size_t) (n + f) != clen)
    {
        return -1;
    }

    *plain = ct;
    return (ssize_t) clen;
}

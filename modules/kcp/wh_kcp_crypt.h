/*
 * wh_kcp_crypt.h -- the mKCP datagram security envelope (spec 9.2): "simple"
 * (FNV-1a-32 checksum, length, chained XOR; no secret) when kcpSettings has
 * no seed, AES-128-GCM keyed by SHA-256(seed) when it has one (even "").
 * Wraps the segment bytes of wh_kcp_segment.h; the obfuscation header of
 * spec 7 goes in front of the sealed body and is not handled here.
 * No I/O. See wh_kcp_crypt.c.
 */
#ifndef WH_KCP_CRYPT_H
#define WH_KCP_CRYPT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WH_KCP_SIMPLE_OVERHEAD  6       /* H(4) L(2) */
#define WH_KCP_SEED_KEY_LEN     16
#define WH_KCP_SEED_NONCE_LEN   12
#define WH_KCP_SEED_TAG_LEN     16
#define WH_KCP_SEED_OVERHEAD    (WH_KCP_SEED_NONCE_LEN + WH_KCP_SEED_TAG_LEN)

typedef struct {
    int seeded;                         /* 0: simple, 1: AES-128-GCM */
    uint8_t key[WH_KCP_SEED_KEY_LEN];
    void *seal_ctx;                     /* EVP_CIPHER_CTX, keyed once */
    void *open_ctx;
} wh_kcp_crypt_t;

/* FNV-1a-32, the simple security's checksum. */
uint32_t wh_kcp_fnv1a32(const uint8_t *p, size_t len);

/* key = SHA-256(seed)[0..15]. Returns WH_OK or WH_ERROR. */
int wh_kcp_seed_key(const char *seed, size_t seed_len, uint8_t key[WH_KCP_SEED_KEY_LEN]);

/* Simple security without a context: seal writes 6 + len bytes to out
 * (len <= 65535; out and plain must not overlap); open works in place and
 * points *plain just after the 6-byte header. Both return the body /
 * plaintext length, or -1 (too small, too long, checksum or length wrong). */
ssize_t wh_kcp_simple_seal(uint8_t *out, size_t size, const uint8_t *plain, size_t len);
ssize_t wh_kcp_simple_open(uint8_t *body, size_t len, uint8_t **plain);

/* seed NULL: simple security; otherwise seed security (seed_len may be 0).
 * Returns WH_OK or WH_ERROR (OpenSSL failed); free with wh_kcp_crypt_free. */
int wh_kcp_crypt_init(wh_kcp_crypt_t *c, const char *seed, size_t seed_len);
void wh_kcp_crypt_free(wh_kcp_crypt_t *c);

/* Bytes a sealed body adds to the segments: 6 or 28. */
size_t wh_kcp_crypt_overhead(const wh_kcp_crypt_t *c);

/* V2Ray's MSS for this security: mtu - header_size - (6 or 16) - 18. Seed
 * security only subtracts the tag (spec 9.1, 9.2), so a full DATA datagram is
 * mtu + 12 bytes; kept so a V2Ray peer sees the segment sizes it would send.
 * Returns 0 if nothing fits. */
size_t wh_kcp_crypt_mss(const wh_kcp_crypt_t *c, size_t mtu, size_t header_size);

/* Seals len bytes of segments into out (no overlap). nonce: 12 bytes to use,
 * or NULL for random ones (the normal case; fixed nonces are for tests).
 * Returns the body length, or -1 if out is too small or sealing failed. */
ssize_t wh_kcp_crypt_seal(wh_kcp_crypt_t *c, uint8_t *out, size_t size,
    const uint8_t *plain, size_t len, const uint8_t *nonce);

/* Opens a body in place (it is overwritten even when the check fails) and
 * points *plain at the segments inside it. Returns their length (>= 1), or
 * -1 if the body must be dropped. */
ssize_t wh_kcp_crypt_open(wh_kcp_crypt_t *c, uint8_t *body, size_t len, uint8_t **plain);

#endif

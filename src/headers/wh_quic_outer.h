/*
 * wh_quic_outer.h -- V2Ray's QUIC outer datagram layer: packet header
 * obfuscator + optional AEAD around every datagram quic-go produces
 * (quicSettings.security / key / header).
 *
 * Transports spec 8.1 (settings and the default when quicSettings is absent)
 * and 8.2 (layout, key derivation, sizes). Shaped for a QUIC stack that owns
 * the sockets: the configuration (wh_quic_outer_conf_t, read once) is apart
 * from the instance (wh_quic_outer_t: header counters and cipher contexts),
 * because spec 7 wants one header instance per listener and per client QUIC
 * connection. Seal and open work in place so the receive and send paths copy
 * nothing: the QUIC stack writes its packet at buf + prefix and reads the
 * inner datagram where open points.
 */
#ifndef WH_QUIC_OUTER_H
#define WH_QUIC_OUTER_H

#include "wh_core.h"
#include "wh_conf.h"
#include "wh_headers.h"

#include <openssl/evp.h>

#define WH_QUIC_OUTER_NONCE_LEN  12
#define WH_QUIC_OUTER_TAG_LEN    16

/* quic-go's limit: a V2Ray peer decrypts into a 1452-byte buffer and panics
 * (the whole process exits) on anything longer (spec 8.2). */
#define WH_QUIC_OUTER_MAX_INNER  1452

/* V2Ray reads outer datagrams into 2048-byte buffers and drops longer ones. */
#define WH_QUIC_OUTER_PEER_READ_BUF 2048

/* Room for the largest outer datagram we ever produce (13 + 12 + 1452 + 16). */
#define WH_QUIC_OUTER_MAX_OUTER \
    (WH_PKT_HEADER_MAX_SIZE + WH_QUIC_OUTER_NONCE_LEN + WH_QUIC_OUTER_MAX_INNER \
     + WH_QUIC_OUTER_TAG_LEN)

typedef enum {
    WH_QUIC_SEC_NONE = 0,
    WH_QUIC_SEC_AES_128_GCM,
    WH_QUIC_SEC_CHACHA20_POLY1305
} wh_quic_security_e;

typedef struct {
    wh_quic_security_e     security;
    uint8_t                key[32];   /* K = SHA-256(key ‖ "v2ray-quic-salt") */
    const wh_pkt_header_t *header;    /* never NULL: &wh_pkt_header_none */
} wh_quic_outer_conf_t;

typedef struct {
    wh_quic_outer_conf_t   conf;
    wh_pkt_header_state_t  hstate;
    EVP_CIPHER_CTX        *enc;       /* keyed once, fresh nonce per datagram */
    EVP_CIPHER_CTX        *dec;
} wh_quic_outer_t;

/* quicSettings.security, case-insensitive; NULL or anything unknown is none,
 * as in V2Ray (no error). */
wh_quic_security_e wh_quic_security_by_name(const char *name);
const char *wh_quic_security_name(wh_quic_security_e sec);

/* K of spec 8.2 for a key string (NULL = ""); WH_ERROR if hashing fails. */
int wh_quic_outer_derive_key(const char *key, uint8_t out[32]);

/* An absent quicSettings (spec 8.1): AES-128-GCM under K("") and no header,
 * which is what amd64/arm64 V2Ray builds use. */
int wh_quic_outer_conf_default(wh_quic_outer_conf_t *conf);

/* A present quicSettings: security (NULL = none), key (NULL = ""), header
 * (NULL = none). */
int wh_quic_outer_conf_set(wh_quic_outer_conf_t *conf, const char *security,
                           const char *key, const wh_pkt_header_t *header);

/* Reads a quicSettings group; quic == NULL means absent (the default above).
 * WH_OK, or WH_ERROR recorded in cf. */
int wh_quic_outer_conf_read(wh_conf_t *cf, const config_setting_t *quic,
                            wh_quic_outer_conf_t *conf);

/* A new instance: cipher contexts keyed with K and a fresh random header
 * state. WH_ERROR if OpenSSL fails; free with wh_quic_outer_free either way. */
int wh_quic_outer_init(wh_quic_outer_t *o, const wh_quic_outer_conf_t *conf);
void wh_quic_outer_free(wh_quic_outer_t *o);

/* Bytes in front of the inner datagram: header + nonce (if any). */
size_t wh_quic_outer_prefix(const wh_quic_outer_t *o);
/* Bytes added in all: prefix + tag (if any). */
size_t wh_quic_outer_overhead(const wh_quic_outer_t *o);

/* The largest inner datagram to produce when outer datagrams may carry at
 * most udp_payload bytes (0: no local limit): never above 1452; 0 if even the
 * overhead does not fit. Use it for the QUIC stack's max UDP payload. */
size_t wh_quic_outer_max_inner(const wh_quic_outer_t *o, size_t udp_payload);

/* Seal in place: the inner datagram (inner_len bytes) is at
 * buf + wh_quic_outer_prefix(o); writes the header and a fresh random nonce
 * before it, encrypts it and appends the tag. Returns the outer length
 * (from buf), or -1 if inner_len is over 1452, buf_size is too small,
 * or OpenSSL fails (nothing sendable then). */
ssize_t wh_quic_outer_seal(wh_quic_outer_t *o, uint8_t *buf, size_t buf_size,
                           size_t inner_len);

/* Open in place: buf holds a received outer datagram of len bytes. Returns
 * the inner length and sets *inner inside buf, or -1 for anything to drop
 * silently: too short for header (+ nonce + tag), authentication failure.
 * There is no 1452 cap here; the receive buffer's size is the caller's.
 * After a failed open the bytes after the nonce are garbage. */
ssize_t wh_quic_outer_open(wh_quic_outer_t *o, uint8_t *buf, size_t len,
                           uint8_t **inner);

#endif

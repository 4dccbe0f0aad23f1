/*
 * wh_tls13.h -- the TLS 1.3 record layer (RFC 8446, section 5) a TLS stream
 * runs once OpenSSL has done the handshake (see wh_tls_stream.c).
 *
 * OpenSSL 3.0's SSL object is 7.8 KB that an idle stream would carry for
 * its whole life, and its SSL_read gives one record per call, allocating
 * and freeing its read buffer each time the buffer empties. After a TLS
 * 1.3 handshake a session is only two keys, two IVs and two sequence
 * numbers, so the stream takes the traffic secrets OpenSSL derived, frees
 * the SSL object and seals and opens records here, with OpenSSL's AEAD
 * ciphers (EVP) and HKDF: records are opened straight into the reader's
 * buffer, many per socket read, and sealed straight into the batch that
 * leaves in one write.
 *
 * What a server's peer may send after the handshake is small: application
 * data, alerts, and KeyUpdate (section 4.6.3), which is answered here. A
 * session ticket, a post-handshake authentication (never asked for) or a
 * handshake message split across records ends the session, as does any
 * record that does not authenticate. A session OpenSSL still has a part in
 * (TLS 1.2, or tickets sent after the handshake) keeps the SSL object.
 */
#ifndef WH_TLS13_H
#define WH_TLS13_H

#include "wh_core.h"

#include <sys/uio.h>

#define WH_TLS13_HEADER         5
#define WH_TLS13_MAX_PLAIN      16384
#define WH_TLS13_TAG            16
/* what sealing adds to the content: the header, the type byte, the tag */
#define WH_TLS13_OVERHEAD       (WH_TLS13_HEADER + 1 + WH_TLS13_TAG)
/* the longest record a peer may send (content, type, padding and tag) */
#define WH_TLS13_MAX_RECORD     (WH_TLS13_HEADER + WH_TLS13_MAX_PLAIN + 256)
#define WH_TLS13_SECRET_MAX     48

/* content types (section 5.1) */
#define WH_TLS13_ALERT          21
#define WH_TLS13_HANDSHAKE      22
#define WH_TLS13_DATA           23

typedef struct evp_cipher_ctx_st wh_evp_ctx_t;

typedef struct {
    wh_evp_ctx_t *ctx;          /* the cipher, keyed */
    uint64_t seq;
    uint8_t iv[12];
    uint8_t fixed;              /* rx, AES-GCM: the IV's first 4 bytes are the cipher's */
    uint8_t secret[WH_TLS13_SECRET_MAX];   /* for the next key update */
} wh_tls13_dir_t;

typedef struct {
    wh_tls13_dir_t rx, tx;
    uint8_t suite;              /* index of the cipher suite */
    uint8_t answer;             /* a KeyUpdate asked for an answer not sent yet */
    const char *reason;         /* why the last WH_ERROR */
} wh_tls13_t;

/* The suite index of a TLS 1.3 cipher suite (0x1301...), or -1 for one
 * this layer does not run; and the length of its traffic secrets. */
int wh_tls13_suite(unsigned protocol_id);
size_t wh_tls13_secret_len(int suite);

/* Keys both directions from the traffic secrets already in rx.secret (the
 * client's) and tx.secret (the server's), sequence numbers 0. WH_OK, or
 * WH_ERROR (without memory), t then freed. */
int wh_tls13_init(wh_tls13_t *t, int suite);
void wh_tls13_free(wh_tls13_t *t);

/* The length of the record that starts p[0..n): header and body; 0 while
 * fewer than its 5 header bytes are in; WH_ERROR (reason set) for a header
 * a TLS 1.3 peer does not send after its handshake. */
ssize_t wh_tls13_record_len(wh_tls13_t *t, const uint8_t *p, size_t n);

/* Seals content in[0..n) of type (n <= WH_TLS13_MAX_PLAIN) as one record
 * at out (n + WH_TLS13_OVERHEAD bytes); returns that length, 0 when the
 * cipher failed. */
size_t wh_tls13_seal(wh_tls13_t *t, uint8_t type, const uint8_t *in, size_t n, uint8_t *out);
/* The same for the content in iov's pieces, one after another (a
 * websocket frame's header and its payload where the relay has it). */
size_t wh_tls13_sealv(wh_tls13_t *t, uint8_t type, const struct iovec *iov, int iovcnt,
                      uint8_t *out);

/* Opens the record rec[0..len) (len from wh_tls13_record_len) into out,
 * which has room for len - WH_TLS13_HEADER - WH_TLS13_TAG bytes and may be
 * rec + WH_TLS13_HEADER. Returns the content's length, its type in *type;
 * WH_ERROR (reason set) for a record that does not authenticate or has no
 * content type or too much content. */
ssize_t wh_tls13_open(wh_tls13_t *t, const uint8_t *rec, size_t len, uint8_t *out, uint8_t *type);

/* What an opened record other than application data says: WH_OK to go on
 * (a KeyUpdate taken; with t->answer set when the peer asked for one: see
 * wh_tls13_key_update), WH_DECLINED at the peer's close_notify, WH_ERROR
 * (reason set) for anything else. */
int wh_tls13_control(wh_tls13_t *t, uint8_t type, const uint8_t *p, size_t n);

/* Whether the sending key must change before the next record: the peer
 * asked, or the key has sealed 2^24 records (section 5.5's margin for
 * AES-GCM). */
static inline int
wh_tls13_tx_due(const wh_tls13_t *t)
{
    return t->answer || t->tx.seq >= (1ULL << 24);
}

/* Seals a KeyUpdate (update_not_requested) at out and changes the sending
 * key after it; returns the record's length, 0 when the cipher failed. */
size_t wh_tls13_key_update(wh_tls13_t *t, uint8_t *out);

#define WH_TLS13_KEY_UPDATE_LEN (4 + 1 + WH_TLS13_OVERHEAD)

#endif

/*
 * fuzz_quic_outer.c -- V2Ray's QUIC outer datagram layer
 * (src/headers/wh_quic_outer.c, transports spec 8.1, 8.2): what the QUIC
 * listener runs on every datagram before ngtcp2 sees it.
 *
 * Input: [0] picks the instance: security (none, aes-128-gcm,
 * chacha20-poly1305 under the spec 10 key, or the default of an absent
 * quicSettings: aes-128-gcm under K("")) times header type (6); [1] picks
 * the operation; [2..3] a position and a mask for the damage; the rest is
 * the datagram, or the inner datagram to seal. Operations:
 *   open      an arbitrary received datagram: -1, or an inner datagram
 *             inside the buffer of exactly len - overhead bytes;
 *   round     seal then open: the original comes back, the sealed length is
 *             overhead + inner, a buffer one byte short or an inner datagram
 *             over 1452 bytes is refused;
 *   damage    seal, change one byte (or cut the datagram short), open: with
 *             an AEAD it must fail unless the byte was in the unchecked
 *             obfuscation header; without one only the changed byte differs;
 *   names     quicSettings.security on an arbitrary string, and
 *             max_inner on an arbitrary UDP payload size.
 * The 24 instances are made once (keying EVP contexts costs more than a
 * datagram), as the listener keeps one per connection; each datagram lives
 * in a malloc'd buffer of its exact size so ASan sees any access past it.
 */
#include "wh_core.h"

#include "wh_quic_outer.h"

#include "fuzz_check.h"

#define FZ_KEY  "wharf-interop-quic-key"    /* spec 10 */
#define FZ_NSEC 4

static const wh_pkt_header_t *const fz_headers[] = {
    &wh_pkt_header_none, &wh_pkt_header_srtp, &wh_pkt_header_utp,
    &wh_pkt_header_wechat_video, &wh_pkt_header_dtls, &wh_pkt_header_wireguard
};

#define FZ_NHDR  ((int) wh_nelems(fz_headers))

static wh_quic_outer_t fz_outer[FZ_NSEC * FZ_NHDR];

static void
fz_setup(void)
{
    static const char *const secs[FZ_NSEC] = {
        "none", "aes-128-gcm", "chacha20-poly1305", NULL
    };
    wh_quic_outer_conf_t conf;

    for (int s = 0; s < FZ_NSEC; s++) {
        for (int h = 0; h < FZ_NHDR; h++) {
            if (secs[s] == NULL) {
                /* the default always comes without header; the header is
                 * added here only to cover the combination */
                FZ_CHECK(wh_quic_outer_conf_default(&conf) == WH_OK);
                conf.header = fz_headers[h];
            } else {
                FZ_CHECK(wh_quic_outer_conf_set(&conf, secs[s], FZ_KEY,
                                                fz_headers[h]) == WH_OK);
            }
            FZ_CHECK(wh_quic_outer_init(&fz_outer[s * FZ_NHDR + h], &conf) == WH_OK);
        }
    }
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    fz_setup();
    return 0;
}

static void
fz_open(wh_quic_outer_t *o, const uint8_t *p, size_t len)
{
    uint8_t *buf = malloc(len ? len : 1), *inner = NULL;
    size_t hsize = o->conf.header->size;
    ssize_t n;

    FZ_CHECK(buf != NULL);
    if (len > 0)
        memcpy(buf, p, len);
    n = wh_quic_outer_open(o, buf, len, &inner);
    if (n >= 0) {
        FZ_CHECK(len > hsize);
        FZ_CHECK((size_t) n + wh_quic_outer_overhead(o) == len);
        FZ_CHECK(inner == buf + wh_quic_outer_prefix(o));
        if (o->conf.security == WH_QUIC_SEC_NONE)
            FZ_CHECK(memcmp(inner, p + hsize, (size_t) n) == 0);
    } else {
        FZ_CHECK(n == -1);
    }
    free(buf);
}

/* Seals inner into a fresh buffer of exactly the sealed size; returns it
 * (NULL when inner is too long to seal, which is checked too). */
static uint8_t *
fz_seal(wh_quic_outer_t *o, const uint8_t *inner, size_t ilen, size_t *olen)
{
    size_t prefix = wh_quic_outer_prefix(o), need = wh_quic_outer_overhead(o) + ilen;
    uint8_t *buf = malloc(need ? need : 1);
    wh_pkt_header_state_t before = o->hstate;
    ssize_t n;

    FZ_CHECK(buf != NULL);
    if (ilen > 0)
        memcpy(buf + prefix, inner, ilen);

    /* one byte short: refused, and the header counters do not move */
    if (need > 0) {
        FZ_CHECK(wh_quic_outer_seal(o, buf, need - 1, ilen) == -1);
        FZ_CHECK(memcmp(&before, &o->hstate, sizeof(before)) == 0);
    }

    n = wh_quic_outer_seal(o, buf, need, ilen);
    if (ilen > WH_QUIC_OUTER_MAX_INNER) {
        FZ_CHECK(n == -1);
        free(buf);
        return NULL;
    }
    FZ_CHECK(n >= 0 && (size_t) n == need);
    FZ_CHECK(need <= WH_QUIC_OUTER_MAX_OUTER);
    *olen = need;
    return buf;
}

static void
fz_round(wh_quic_outer_t *o, const uint8_t *inner, size_t ilen)
{
    uint8_t *buf, *got = NULL;
    size_t olen;
    ssize_t n;

    buf = fz_seal(o, inner, ilen, &olen);
    if (buf == NULL)
        return;
    n = wh_quic_outer_open(o, buf, olen, &got);
    if (olen <= o->conf.header->size) {
        /* only none+none with an empty inner datagram: dropped as V2Ray does */
        FZ_CHECK(n == -1 && ilen == 0);
    } else {
        FZ_CHECK(n >= 0 && (size_t) n == ilen);
        FZ_CHECK(ilen == 0 || memcmp(got, inner, ilen) == 0);
    }
    free(buf);
}

static void
fz_damage(wh_quic_outer_t *o, const uint8_t *inner, size_t ilen, uint8_t where,
          uint8_t mask)
{
    size_t hsize = o->conf.header->size, olen, pos;
    int aead = o->conf.security != WH_QUIC_SEC_NONE;
    uint8_t *buf, *got = NULL;
    ssize_t n;

    buf = fz_seal(o, inner, ilen, &olen);
    if (buf == NULL)
        return;
    if (olen == 0) {
        free(buf);
        return;
    }

    if (mask == 0) {
        /* cut short by `where` bytes (at least one) */
        size_t cut = 1 + where % olen;
        n = wh_quic_outer_open(o, buf, olen - cut, &got);
        if (aead) {
            FZ_CHECK(n == -1);
        } else if (olen - cut > hsize) {
            FZ_CHECK(n >= 0 && (size_t) n == ilen - cut);
            FZ_CHECK(memcmp(got, inner, (size_t) n) == 0);
        } else {
            FZ_CHECK(n == -1);
        }
        free(buf);
        return;
    }

    pos = (size_t) where * olen / 256;
    buf[pos] ^= mask;
    n = wh_quic_outer_open(o, buf, olen, &got);
    if (pos < hsize || !aead) {
        /* the header is stripped unchecked; without AEAD nothing is checked */
        FZ_CHECK(olen > hsize ? n >= 0 && (size_t) n == ilen : n == -1);
        for (size_t i = 0; n > 0 && i < ilen; i++) {
            uint8_t want = inner[i];
            if (!aead && hsize + i == pos)
                want ^= mask;
            FZ_CHECK(got[i] == want);
        }
    } else {
        /* nonce, ciphertext or tag: an AEAD forgery would be the bug */
        FZ_CHECK(n == -1);
    }
    free(buf);
}

static void
fz_names(wh_quic_outer_t *o, const uint8_t *p, size_t len)
{
    char name[32];
    size_t n = wh_min(len, sizeof(name) - 1), udp = 0, mi;
    wh_quic_security_e sec;
    const char *canon;

    memcpy(name, p, n);
    name[n] = '\0';
    sec = wh_quic_security_by_name(name);
    canon = wh_quic_security_name(sec);
    if (sec != WH_QUIC_SEC_NONE) {
        FZ_CHECK(strlen(name) == strlen(canon));
        for (size_t i = 0; name[i] != '\0'; i++) {
            char c = name[i];
            if (c >= 'A' && c <= 'Z')
                c = (char) (c - 'A' + 'a');
            FZ_CHECK(c == canon[i]);
        }
    }

    for (size_t i = 0; i < wh_min(len, sizeof(size_t)); i++)
        udp = udp << 8 | p[i];
    mi = wh_quic_outer_max_inner(o, udp);
    FZ_CHECK(mi <= WH_QUIC_OUTER_MAX_INNER);
    if (udp != 0 && mi > 0)
        FZ_CHECK(mi + wh_quic_outer_overhead(o) <= udp);
    if (udp == 0 || udp >= WH_QUIC_OUTER_MAX_INNER + wh_quic_outer_overhead(o))
        FZ_CHECK(mi == WH_QUIC_OUTER_MAX_INNER);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wh_quic_outer_t *o;

    if (size < 4)
        return 0;
    o = &fz_outer[data[0] % wh_nelems(fz_outer)];
    switch (data[1] % 4) {
    case 0:
        fz_open(o, data + 4, size - 4);
        break;
    case 1:
        fz_round(o, data + 4, size - 4);
        break;
    case 2:
        fz_damage(o, data + 4, size - 4, data[2], data[3]);
        break;
    default:
        fz_names(o, data + 4, size - 4);
        break;
    }
    return 0;
}

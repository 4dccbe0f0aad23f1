/*
 * fuzz_kcp_crypt.c -- the mKCP datagram security envelope
 * (modules/kcp/wh_kcp_crypt.c, transports spec 9.2), which every mKCP
 * datagram goes through once its obfuscation header is stripped.
 *
 * Input: [0] picks the security (simple; seed ""; the spec 10 seed) and the
 * operation; [1] a position, [2] a mask for the damage; the rest is a body
 * or the segments to seal. Operations:
 *   open      an arbitrary body: -1, or >= 1 plaintext bytes inside the
 *             body, len - overhead of them; a body that opens re-seals to
 *             itself byte for byte (simple security is deterministic, seed
 *             security is with the body's own nonce), which is what spec 9.2
 *             observed of every captured datagram;
 *   round     seal (fixed nonce from the input or a random one) then open:
 *             the plaintext comes back; a buffer one byte short is refused;
 *   damage    seal, change one byte or cut bytes off, open: seed security
 *             must refuse any change; simple security every change its
 *             checksum and length provably catch (see fz_damage); a
 *             change FNV-1a may miss is only opened for ASan;
 *   mss       wh_kcp_crypt_mss on arbitrary mtu and header size.
 * The three contexts are made once: keying AES costs more than a datagram.
 * Bodies live in malloc'd buffers of their exact size so that ASan sees any
 * access past them.
 */
#include "wh_config.h"

#ifdef WH_HAVE_MODULE_KCP

#include "wh_core.h"

/* module folders are not on the include path: name it from here */
#include "../../modules/kcp/wh_kcp_crypt.h"
#include "../../modules/kcp/wh_kcp_segment.h"

#include "fuzz_check.h"

#define FZ_SEED "wharf-interop-kcp-seed"        /* spec 10 */

static wh_kcp_crypt_t fz_crypt[3];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    FZ_CHECK(wh_kcp_crypt_init(&fz_crypt[0], NULL, 0) == WH_OK);
    FZ_CHECK(wh_kcp_crypt_init(&fz_crypt[1], "", 0) == WH_OK);
    FZ_CHECK(wh_kcp_crypt_init(&fz_crypt[2], FZ_SEED, strlen(FZ_SEED)) == WH_OK);
    return 0;
}

static uint8_t *
fz_dup(const uint8_t *p, size_t len)
{
    uint8_t *b = malloc(len ? len : 1);

    FZ_CHECK(b != NULL);
    if (len > 0)
        memcpy(b, p, len);
    return b;
}

static void
fz_open(wh_kcp_crypt_t *c, const uint8_t *p, size_t len)
{
    uint8_t *body = fz_dup(p, len), *plain = NULL, *again;
    size_t over = wh_kcp_crypt_overhead(c);
    ssize_t n, m;

    n = wh_kcp_crypt_open(c, body, len, &plain);
    if (n < 0) {
        FZ_CHECK(n == -1);
        free(body);
        return;
    }
    FZ_CHECK(n >= 1 && len > over && (size_t) n == len - over);
    FZ_CHECK(plain == body + (c->seeded ? WH_KCP_SEED_NONCE_LEN : WH_KCP_SIMPLE_OVERHEAD));

    /* re-seal: the same bytes, nonce included */
    again = malloc(len);
    FZ_CHECK(again != NULL);
    m = wh_kcp_crypt_seal(c, again, len, plain, (size_t) n, c->seeded ? p : NULL);
    FZ_CHECK(m >= 0 && (size_t) m == len);
    FZ_CHECK(memcmp(again, p, len) == 0);
    free(again);
    free(body);
}

static uint8_t *
fz_seal(wh_kcp_crypt_t *c, const uint8_t *plain, size_t len, const uint8_t *nonce,
        size_t *blen)
{
    size_t need = wh_kcp_crypt_overhead(c) + len;
    uint8_t *body = malloc(need);
    ssize_t n;

    FZ_CHECK(body != NULL);
    FZ_CHECK(wh_kcp_crypt_seal(c, body, need - 1, plain, len, nonce) == -1);
    n = wh_kcp_crypt_seal(c, body, need, plain, len, nonce);
    if (!c->seeded && len > 0xffff) {
        FZ_CHECK(n == -1);      /* L is 16 bits */
        free(body);
        return NULL;
    }
    FZ_CHECK(n >= 0 && (size_t) n == need);
    if (nonce != NULL)
        FZ_CHECK(memcmp(body, nonce, WH_KCP_SEED_NONCE_LEN) == 0);
    *blen = need;
    return body;
}

static void
fz_round(wh_kcp_crypt_t *c, const uint8_t *p, size_t len, int fixed_nonce)
{
    const uint8_t *nonce = NULL;
    uint8_t *body, *plain = NULL;
    size_t blen;
    ssize_t n;

    if (c->seeded && fixed_nonce) {
        if (len < WH_KCP_SEED_NONCE_LEN)
            return;
        nonce = p;
        p += WH_KCP_SEED_NONCE_LEN;
        len -= WH_KCP_SEED_NONCE_LEN;
    }
    body = fz_seal(c, p, len, nonce, &blen);
    if (body == NULL)
        return;
    n = wh_kcp_crypt_open(c, body, blen, &plain);
    if (len == 0) {
        FZ_CHECK(n == -1);      /* an empty plaintext holds no segment: dropped */
    } else {
        FZ_CHECK(n >= 0 && (size_t) n == len);
        FZ_CHECK(memcmp(plain, p, len) == 0);
    }
    free(body);
}

static void
fz_damage(wh_kcp_crypt_t *c, const uint8_t *p, size_t len, uint8_t where, uint8_t mask)
{
    uint8_t *body, *plain = NULL;
    size_t blen, pos;
    ssize_t n;
    int must_fail;

    body = fz_seal(c, p, len, NULL, &blen);
    if (body == NULL)
        return;

    if (mask == 0) {
        size_t cut = 1 + where % blen;
        n = wh_kcp_crypt_open(c, body, blen - cut, &plain);
        FZ_CHECK(n == -1);
        free(body);
        return;
    }

    pos = (size_t) where * blen / 256;
    body[pos] ^= mask;
    if (c->seeded) {
        must_fail = 1;
    } else {
        /* opening XORs B[i] with B[i-4], so a change of B[pos] reaches
         * decoded byte pos and, if inside, pos + 4. Provably refused: a
         * change that reaches one checksummed byte only (each FNV-1a step
         * is a bijection), H alone (a mismatch), or L (bytes 4, 5: the
         * length check). Two changes (H and a byte, or two bytes 4 apart)
         * can collide, so those are only opened for ASan. */
        must_fail = pos + 4 >= blen || pos <= 1 || pos == 4 || pos == 5;
    }
    n = wh_kcp_crypt_open(c, body, blen, &plain);
    if (must_fail)
        FZ_CHECK(n == -1);
    else if (n >= 0)
        FZ_CHECK((size_t) n == len);
    free(body);
}

static void
fz_mss(wh_kcp_crypt_t *c, const uint8_t *p, size_t len)
{
    size_t mtu, hdr, mss, sub;

    if (len < 3)
        return;
    mtu = (size_t) p[0] << 8 | p[1];
    hdr = p[2] % 14;
    sub = hdr + (c->seeded ? WH_KCP_SEED_TAG_LEN : WH_KCP_SIMPLE_OVERHEAD)
          + WH_KCP_DATA_OVERHEAD;
    mss = wh_kcp_crypt_mss(c, mtu, hdr);
    FZ_CHECK(mtu > sub ? mss == mtu - sub : mss == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wh_kcp_crypt_t *c;
    unsigned op;

    if (size < 3)
        return 0;
    c = &fz_crypt[data[0] % 3];
    op = (data[0] / 3) % 5;
    switch (op) {
    case 0:
        fz_open(c, data + 3, size - 3);
        break;
    case 1:
    case 2:
        fz_round(c, data + 3, size - 3, op == 2);
        break;
    case 3:
        fz_damage(c, data + 3, size - 3, data[1], data[2]);
        break;
    default:
        fz_mss(c, data + 3, size - 3);
        break;
    }
    return 0;
}

#else

#include "fuzz_check.h"

/* mKCP left out by ./configure: nothing to fuzz */
FZ_NOTHING_TO_FUZZ

#endif

/*
 * fuzz_headers.c -- the packet header obfuscators (src/headers/wh_headers.c,
 * transports spec 7): every header type's receive side on arbitrary
 * datagrams, the type-name lookup on arbitrary names, and write-then-strip
 * round trips checked against a model of spec 7's byte table.
 *
 * Input: [0] header type (mod 6), [1..2] the instance's 16-bit random draw,
 * [3] how many headers to write in a row (1..16) and whether the counter
 * starts a few steps before its 32-bit wrap (0x80), then the bytes used as a
 * received datagram, as a type name and as the payload of the round trip.
 * One input drives all three, because each costs a few hundred cycles: more
 * of the fuzzer's time goes to the interesting part, counters and wraps.
 *
 * The model is written from the spec, not from wh_headers.c, so the writer
 * is checked against a second reading of the byte layouts (srtp and
 * wechat-video increment before writing, dtls after, dtls's length cycle).
 */
#include "wh_core.h"

#include "wh_headers.h"

#include "fuzz_check.h"

static const wh_pkt_header_t *const fz_headers[] = {
    &wh_pkt_header_none, &wh_pkt_header_srtp, &wh_pkt_header_utp,
    &wh_pkt_header_wechat_video, &wh_pkt_header_dtls, &wh_pkt_header_wireguard
};

/* Spec 7's fields of one instance, kept apart from wh_pkt_header_state_t. */
typedef struct {
    uint32_t seq;
    uint16_t rnd;
    uint16_t len;
} fz_model_t;

static size_t
fz_model_write(wh_pkt_header_type_e type, fz_model_t *m, uint8_t *out)
{
    switch (type) {
    case WH_PKT_HEADER_NONE:
        return 0;
    case WH_PKT_HEADER_SRTP:
        m->seq = (m->seq + 1) & 0xffff;
        out[0] = 0xb5; out[1] = 0xe8;
        out[2] = (uint8_t) (m->seq >> 8); out[3] = (uint8_t) m->seq;
        return 4;
    case WH_PKT_HEADER_UTP:
        out[0] = (uint8_t) (m->rnd >> 8); out[1] = (uint8_t) m->rnd;
        out[2] = 0x01; out[3] = 0x00;
        return 4;
    case WH_PKT_HEADER_WECHAT_VIDEO: {
        static const uint8_t tail[7] = { 0x00, 0x10, 0x11, 0x18, 0x30, 0x22, 0x30 };
        m->seq++;
        out[0] = 0xa1; out[1] = 0x08;
        for (int i = 0; i < 4; i++)
            out[2 + i] = (uint8_t) (m->seq >> (24 - 8 * i));
        memcpy(out + 6, tail, sizeof(tail));
        return 13;
    }
    case WH_PKT_HEADER_DTLS:
        out[0] = 0x17; out[1] = 0xfe; out[2] = 0xfd;
        out[3] = (uint8_t) (m->rnd >> 8); out[4] = (uint8_t) m->rnd;
        out[5] = 0; out[6] = 0;
        for (int i = 0; i < 4; i++)
            out[7 + i] = (uint8_t) (m->seq >> (24 - 8 * i));
        out[11] = (uint8_t) (m->len >> 8); out[12] = (uint8_t) m->len;
        m->seq++;
        m->len += 17;
        if (m->len > 100)
            m->len -= 50;
        return 13;
    case WH_PKT_HEADER_WIREGUARD:
        out[0] = 0x04; out[1] = 0; out[2] = 0; out[3] = 0;
        return 4;
    }
    FZ_CHECK(!"unknown header type");
    return 0;
}

/* The receive side: a datagram of at most the header's size is dropped, any
 * other loses exactly its first `size` bytes, whatever they are. */
static void
fz_strip(const wh_pkt_header_t *h, const uint8_t *p, size_t len)
{
    const uint8_t *d = p;
    size_t n = len;

    if (wh_pkt_header_strip(h, &d, &n) != WH_OK) {
        FZ_CHECK(len <= h->size);
        FZ_CHECK(d == p && n == len);
        return;
    }
    FZ_CHECK(len > h->size);
    FZ_CHECK(d == p + h->size && n == len - h->size && n > 0);
}

static void
fz_by_name(const uint8_t *p, size_t len)
{
    char name[32];
    const wh_pkt_header_t *h;
    size_t n = wh_min(len, sizeof(name) - 1), i;

    memcpy(name, p, n);
    name[n] = '\0';
    h = wh_pkt_header_by_name(name);
    if (h == NULL)
        return;
    /* a match is the descriptor's own name up to ASCII case, nothing else
     * (the lookup must stay locale-free) */
    FZ_CHECK(strlen(name) == strlen(h->name));
    for (i = 0; name[i] != '\0'; i++) {
        char c = name[i];
        if (c >= 'A' && c <= 'Z')
            c = (char) (c - 'A' + 'a');
        FZ_CHECK(c == h->name[i]);
    }
}

static void
fz_round_trip(const wh_pkt_header_t *h, uint16_t rnd, unsigned writes, int near_wrap,
              const uint8_t *payload, size_t plen)
{
    wh_pkt_header_state_t st;
    fz_model_t m;
    uint8_t want[WH_PKT_HEADER_MAX_SIZE];
    uint8_t *dgram;
    const uint8_t *d;
    size_t n, wn;

    FZ_CHECK(h->size <= WH_PKT_HEADER_MAX_SIZE);
    wh_pkt_header_init_with(h, &st, rnd);
    memset(&m, 0, sizeof(m));
    m.rnd = rnd;
    m.seq = h->type == WH_PKT_HEADER_DTLS ? 0 : rnd;
    m.len = 17;
    if (near_wrap) {
        /* init_with cannot reach the 32-bit wraps of wechat-video and dtls
         * (their start is a 16-bit draw), a long-lived listener can */
        st.seq = m.seq = 0xfffffff8u | (rnd & 7);
    }

    /* exactly header + payload, so ASan sees a write past the header */
    dgram = malloc(h->size + plen + 1);
    FZ_CHECK(dgram != NULL);
    for (unsigned i = 0; i < writes; i++) {
        wn = fz_model_write(h->type, &m, want);
        FZ_CHECK(wn == h->size);
        wh_pkt_header_write(h, &st, dgram);
        FZ_CHECK(memcmp(dgram, want, wn) == 0);
    }
    if (plen > 0)
        memcpy(dgram + h->size, payload, plen);

    d = dgram;
    n = h->size + plen;
    if (plen == 0) {
        FZ_CHECK(wh_pkt_header_strip(h, &d, &n) == WH_ERROR);
    } else {
        FZ_CHECK(wh_pkt_header_strip(h, &d, &n) == WH_OK);
        FZ_CHECK(d == dgram + h->size && n == plen);
        FZ_CHECK(memcmp(d, payload, plen) == 0);
    }
    free(dgram);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const wh_pkt_header_t *h;
    uint16_t rnd;
    unsigned writes;
    int near_wrap;

    if (size < 4)
        return 0;
    h = fz_headers[data[0] % wh_nelems(fz_headers)];
    rnd = (uint16_t) (data[1] << 8 | data[2]);
    writes = 1 + (data[3] & 0x0f);
    near_wrap = (data[3] & 0x80) != 0;
    data += 4;
    size -= 4;

    fz_strip(h, data, size);
    fz_by_name(data, size);
    fz_round_trip(h, rnd, writes, near_wrap, data, wh_min(size, (size_t) 2048));
    return 0;
}

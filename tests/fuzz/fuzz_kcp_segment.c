/*
 * fuzz_kcp_segment.c -- the mKCP segment codec (modules/kcp/wh_kcp_segment.c,
 * transports spec 9.3): what every opened mKCP datagram is parsed with.
 *
 * Two checks per input, both cheap, so one input does both:
 *   decode    the whole input as an opened datagram, as the listener does
 *             (wh_kcp_segs_decode, at most 128 segments): the segments tile
 *             the consumed bytes, each one's payload or sn list lies inside
 *             it, parsing stopped only at the end, at the limit or where a
 *             lone decode fails, and every segment re-encodes to exactly
 *             the bytes it came from -- except an ACK listing more than 128
 *             sns, which V2Ray accepts but never sends, so the encoder
 *             refuses it;
 *   encode    a segment whose fields are taken from the input (cmd, opt,
 *             the three u32s, a payload or up to 255 sns) is encoded into a
 *             buffer of its exact size, then decoded back field for field.
 *             The one segment that does not come back is the empty DATA
 *             segment, which V2Ray's parser refuses at the end of a datagram
 *             (spec 9.3 quirk), and that is checked too.
 * The datagram is the fuzzer's own buffer of exact size, so ASan sees any
 * read past it. The sn list comparisons run up to 255 times per segment:
 * they are kept out of the coverage feedback, where their loop compares
 * cost more than the codec and say nothing about it.
 */
#include "wh_config.h"

#ifdef WH_HAVE_MODULE_KCP

#include "wh_core.h"

/* module folders are not on the include path: name it from here */
#include "../../modules/kcp/wh_kcp_segment.h"

#include "fuzz_check.h"

#define FZ_MAX_SEGS 128     /* the listener's WH_KCP_MAX_SEGS */

#define FZ_NO_COVERAGE __attribute__((no_sanitize("coverage")))

FZ_NO_COVERAGE static uint32_t
fz_get32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* every sn of an ACK against the big-endian list at wire */
FZ_NO_COVERAGE static void
fz_check_sns(const wh_kcp_ack_t *a, const uint8_t *wire)
{
    for (unsigned j = 0; j < a->count; j++)
        FZ_CHECK(wh_kcp_ack_sn(a, j) == fz_get32(wire + 4 * j));
}

/* every sn of an ACK against sns[] */
FZ_NO_COVERAGE static void
fz_check_sn_list(const wh_kcp_ack_t *a, const uint32_t *sns)
{
    for (unsigned i = 0; i < a->count; i++)
        FZ_CHECK(wh_kcp_ack_sn(a, i) == sns[i]);
}

FZ_NO_COVERAGE static void
fz_get_sns(uint32_t *sns, const uint8_t *p, unsigned count)
{
    for (unsigned i = 0; i < count; i++)
        sns[i] = fz_get32(p + 4 * i);
}

static void
fz_decode(const uint8_t *p, size_t len)
{
    static wh_kcp_seg_t segs[FZ_MAX_SEGS];
    static uint8_t out[65536 + 64];
    wh_kcp_seg_t one;
    size_t consumed = 0, off = 0, sz;
    ssize_t n;
    int count;

    count = wh_kcp_segs_decode(p, len, segs, FZ_MAX_SEGS, &consumed);
    FZ_CHECK(consumed <= len);
    if (count < 0) {
        FZ_CHECK(count == -1 && consumed == 0);
        FZ_CHECK(len == 0 || wh_kcp_seg_decode(p, len, &one) == -1);
        return;
    }
    FZ_CHECK(count >= 1 && count <= FZ_MAX_SEGS);

    for (int i = 0; i < count; i++) {
        const wh_kcp_seg_t *s = &segs[i];

        /* a lone decode at the same place agrees */
        n = wh_kcp_seg_decode(p + off, len - off, &one);
        FZ_CHECK(n >= WH_KCP_CMD_SIZE);
        FZ_CHECK(memcmp(&one, s, sizeof(one)) == 0);
        FZ_CHECK(s->conv == (p[off] << 8 | p[off + 1]) && s->cmd == p[off + 2]
                 && s->opt == p[off + 3]);

        if (s->cmd == WH_KCP_CMD_DATA) {
            FZ_CHECK((size_t) n == WH_KCP_DATA_OVERHEAD + s->u.data.len);
            FZ_CHECK(s->u.data.payload == p + off + WH_KCP_DATA_OVERHEAD);
        } else if (s->cmd == WH_KCP_CMD_ACK) {
            FZ_CHECK((size_t) n == WH_KCP_ACK_OVERHEAD + 4 * (size_t) s->u.ack.count);
            FZ_CHECK(s->u.ack.sn_wire == p + off + WH_KCP_ACK_OVERHEAD);
            fz_check_sns(&s->u.ack, p + off + WH_KCP_ACK_OVERHEAD);
        } else {
            FZ_CHECK(n == WH_KCP_CMD_SIZE);
        }
        FZ_CHECK(off + (size_t) n <= len);

        /* re-encode: byte for byte what it came from */
        sz = wh_kcp_seg_size(s);
        if (s->cmd == WH_KCP_CMD_ACK && s->u.ack.count > WH_KCP_ACK_MAX) {
            FZ_CHECK(sz == 0);
            FZ_CHECK(wh_kcp_seg_encode(s, out, sizeof(out)) == -1);
        } else {
            FZ_CHECK(sz == (size_t) n);
            FZ_CHECK(wh_kcp_seg_encode(s, out, sz - 1) == -1);
            FZ_CHECK(wh_kcp_seg_encode(s, out, sz) == n);
            FZ_CHECK(memcmp(out, p + off, sz) == 0);
        }
        off += (size_t) n;
    }
    FZ_CHECK(off == consumed);
    /* V2Ray stops at the first malformed segment and keeps the rest */
    if (consumed < len && count < FZ_MAX_SEGS)
        FZ_CHECK(wh_kcp_seg_decode(p + consumed, len - consumed, &one) == -1);
}

static void
fz_encode(const uint8_t *p, size_t len)
{
    uint32_t sns[255];
    uint8_t buf0[WH_KCP_ACK_OVERHEAD + 4 * 255];
    wh_kcp_seg_t s, d;
    uint8_t *buf;
    size_t sz;
    ssize_t n;

    if (len < 16)
        return;
    memset(&s, 0, sizeof(s));
    s.conv = (uint16_t) (p[0] << 8 | p[1]);
    s.cmd = p[2] % 5;           /* ACK, DATA, TERMINATE, PING, and one unknown */
    s.opt = p[3];
    p += 4;
    len -= 4;

    switch (s.cmd) {
    case WH_KCP_CMD_DATA:
        s.u.data.ts = fz_get32(p);
        s.u.data.sn = fz_get32(p + 4);
        s.u.data.una = fz_get32(p + 8);
        s.u.data.len = (uint16_t) (len - 12 > 0xffff ? 0xffff : len - 12);
        s.u.data.payload = p + 12;
        break;
    case WH_KCP_CMD_ACK:
        s.u.ack.wnd = fz_get32(p);
        s.u.ack.rcv_next = fz_get32(p + 4);
        s.u.ack.ts = fz_get32(p + 8);
        s.u.ack.count = (uint8_t) wh_min((len - 12) / 4, (size_t) 255);
        fz_get_sns(sns, p + 12, s.u.ack.count);
        s.u.ack.sn_list = sns;
        break;
    default:
        s.u.cmd.una = fz_get32(p);
        s.u.cmd.rcv_next = fz_get32(p + 4);
        s.u.cmd.rto = fz_get32(p + 8);
        break;
    }

    sz = wh_kcp_seg_size(&s);
    if (s.cmd == WH_KCP_CMD_ACK && s.u.ack.count > WH_KCP_ACK_MAX) {
        FZ_CHECK(sz == 0);
        FZ_CHECK(wh_kcp_seg_encode(&s, buf0, sizeof(buf0)) == -1);
        return;
    }
    FZ_CHECK(sz >= WH_KCP_CMD_SIZE);
    buf = malloc(sz);
    FZ_CHECK(buf != NULL);
    FZ_CHECK(wh_kcp_seg_encode(&s, buf, sz) == (ssize_t) sz);

    n = wh_kcp_seg_decode(buf, sz, &d);
    if (s.cmd == WH_KCP_CMD_DATA && s.u.data.len == 0) {
        FZ_CHECK(n == -1);
        free(buf);
        return;
    }
    FZ_CHECK(n == (ssize_t) sz);
    FZ_CHECK(d.conv == s.conv && d.cmd == s.cmd && d.opt == s.opt);
    switch (s.cmd) {
    case WH_KCP_CMD_DATA:
        FZ_CHECK(d.u.data.ts == s.u.data.ts && d.u.data.sn == s.u.data.sn
                 && d.u.data.una == s.u.data.una && d.u.data.len == s.u.data.len);
        FZ_CHECK(memcmp(d.u.data.payload, s.u.data.payload, s.u.data.len) == 0);
        break;
    case WH_KCP_CMD_ACK:
        FZ_CHECK(d.u.ack.wnd == s.u.ack.wnd && d.u.ack.rcv_next == s.u.ack.rcv_next
                 && d.u.ack.ts == s.u.ack.ts && d.u.ack.count == s.u.ack.count);
        fz_check_sn_list(&d.u.ack, sns);
        break;
    default:
        FZ_CHECK(d.u.cmd.una == s.u.cmd.una && d.u.cmd.rcv_next == s.u.cmd.rcv_next
                 && d.u.cmd.rto == s.u.cmd.rto);
        break;
    }
    free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_decode(data, size);
    fz_encode(data, size);
    return 0;
}

#else

#include "fuzz_check.h"

/* mKCP left out by ./configure: nothing to fuzz */
FZ_NOTHING_TO_FUZZ

#endif

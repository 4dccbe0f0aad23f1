/*
 * wh_kcp_segment.c -- the mKCP segment codec (spec 9.3).
 *
 * The decoder follows V2Ray's ReadSegment() check for check, quirks
 * included, so wharf accepts exactly what a V2Ray peer accepts: a DATA
 * segment needs 15 bytes after the prefix (an empty DATA segment ending a
 * datagram is refused), an ACK 13 plus its sns, anything else 12; every
 * other cmd value parses as a command-only segment. Decoded segments point
 * into the datagram instead of copying: a payload goes to the receive queue
 * once, from there.
 */
#include "wh_core.h"

#include "wh_kcp_segment.h"

/* the minimum bytes after the prefix, as V2Ray's parse() methods test them */
#define WH_KCP_DATA_MIN_BODY  15
#define WH_KCP_ACK_MIN_BODY   13
#define WH_KCP_CMD_MIN_BODY   12

static void
wh_kcp_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) (v >> 8);
    p[1] = (uint8_t) v;
}

static void
wh_kcp_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}

static uint16_t
wh_kcp_get16(const uint8_t *p)
{
    return (uint16_t) (p[0] << 8 | p[1]);
}

static uint32_t
wh_kcp_get32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

size_t
wh_kcp_seg_size(const wh_kcp_seg_t *s)
{
    switch (s->cmd) {
    case WH_KCP_CMD_DATA:
        return WH_KCP_DATA_OVERHEAD + (size_t) s->u.data.len;
    case WH_KCP_CMD_ACK:
        /* the count is one byte on the wire, but V2Ray never sends more
         * than 128 and sizes its buffers for that */
        if (s->u.ack.count > WH_KCP_ACK_MAX) {
            return 0;
        }
        return WH_KCP_ACK_OVERHEAD + 4 * (size_t) s->u.ack.count;
    default:
        return WH_KCP_CMD_SIZE;
    }
}

ssize_t
wh_kcp_seg_encode(const wh_kcp_seg_t *s, uint8_t *out, size_t size)
{
    size_t need = wh_kcp_seg_size(s);
    unsigned i;

    if (need == 0 || need > size) {
        return -1;
    }

    wh_kcp_put16(out, s->conv);
    out[2] = s->cmd;
    out[3] = s->opt;

    switch (s->cmd) {
    case WH_KCP_CMD_DATA:
        if (s->u.data.len > 0 && s->u.data.payload == NULL) {
            return -1;
        }
        wh_kcp_put32(out + 4, s->u.data.ts);
        wh_kcp_put32(out + 8, s->u.data.sn);
        wh_kcp_put32(out + 12, s->u.data.una);
        wh_kcp_put16(out + 16, s->u.data.len);
        if (s->u.data.len > 0) {
            /* memmove: a caller may build the segment around its payload */
            memmove(out + WH_KCP_DATA_OVERHEAD, s->u.data.payload, s->u.data.len);
        }
        break;

    case WH_KCP_CMD_ACK:
        wh_kcp_put32(out + 4, s->u.ack.wnd);
        wh_kcp_put32(out + 8, s->u.ack.rcv_next);
        wh_kcp_put32(out + 12, s->u.ack.ts);
        out[16] = s->u.ack.count;
        if (s->u.ack.sn_list != NULL) {
            for (i = 0; i < s->u.ack.count; i++) {
                wh_kcp_put32(out + WH_KCP_ACK_OVERHEAD + 4 * i, s->u.ack.sn_list[i]);
            }
        } else if (s->u.ack.count > 0) {
            if (s->u.ack.sn_wire == NULL) {
                return -1;
            }
            memmove(out + WH_KCP_ACK_OVERHEAD, s->u.ack.sn_wire, 4 * (size_t) s->u.ack.count);
        }
        break;

    default:
        wh_kcp_put32(out + 4, s->u.cmd.una);
        wh_kcp_put32(out + 8, s->u.cmd.rcv_next);
        wh_kcp_put32(out + 12, s->u.cmd.rto);
        break;
    }

    return (ssize_t) need;
}

ssize_t
wh_kcp_seg_decode(const uint8_t *p, size_t len, wh_kcp_seg_t *s)
{
    const uint8_t *b;
    size_t left, n;

    if (len < WH_KCP_PREFIX_SIZE) {
        return -1;
    }

    memset(s, 0, sizeof(*s));
    s->conv = wh_kcp_get16(p);
    s->cmd = p[2];
    s->opt = p[3];
    b = p + WH_KCP_PREFIX_SIZE;
    left = len - WH_KCP_PREFIX_SIZE;

    switch (s->cmd) {
    case WH_KCP_CMD_DATA:
        if (left < WH_KCP_DATA_MIN_BODY) {
            return -1;
        }
        s->u.data.ts = wh_kcp_get32(b);
        s->u.data.sn = wh_kcp_get32(b + 4);
        s->u.data.una = wh_kcp_get32(b + 8);
        s->u.data.len = wh_kcp_get16(b + 12);
        left -= 14;
        if (left < s->u.data.len) {
            return -1;
        }
        s->u.data.payload = b + 14;
        return (ssize_t) (WH_KCP_DATA_OVERHEAD + (size_t) s->u.data.len);

    case WH_KCP_CMD_ACK:
        if (left < WH_KCP_ACK_MIN_BODY) {
            return -1;
        }
        s->u.ack.wnd = wh_kcp_get32(b);
        s->u.ack.rcv_next = wh_kcp_get32(b + 4);
        s->u.ack.ts = wh_kcp_get32(b + 8);
        s->u.ack.count = b[12];
        n = 4 * (size_t) s->u.ack.count;
        /* up to 255 sns are accepted, as V2Ray does, though it sends <= 128 */
        if (left - WH_KCP_ACK_MIN_BODY < n) {
            return -1;
        }
        s->u.ack.sn_wire = b + WH_KCP_ACK_MIN_BODY;
        return (ssize_t) (WH_KCP_ACK_OVERHEAD + n);

    default:
        if (left < WH_KCP_CMD_MIN_BODY) {
            return -1;
        }
        s->u.cmd.una = wh_kcp_get32(b);
        s->u.cmd.rcv_next = wh_kcp_get32(b + 4);
        s->u.cmd.rto = wh_kcp_get32(b + 8);
        return WH_KCP_CMD_SIZE;
    }
}

int
wh_kcp_segs_decode(const uint8_t *p, size_t len, wh_kcp_seg_t *segs, int max,
    size_t *consumed)
{
    size_t off = 0;
    ssize_t n;
    int count = 0;

    while (off < len && count < max) {
        n = wh_kcp_seg_decode(p + off, len - off, &segs[count]);
        if (n < 0) {
            break;
        }
        off += (size_t) n;
        count++;
    }

    if (consumed != NULL) {
        *consumed = off;
    }
    return count > 0 ? count : -1;
}

uint32_t
wh_kcp_ack_sn(const wh_kcp_ack_t *a, unsigned i)
{
    return wh_kcp_get32(a->sn_wire + 4 * (size_t) i);
}

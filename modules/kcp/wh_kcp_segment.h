/*
 * wh_kcp_segment.h -- the mKCP segment codec (spec 9.3): DATA, ACK and
 * command-only (TERMINATE, PING, any other cmd) segments as V2Ray 4.34 lays
 * them out, all fields big-endian. No I/O, no allocation: decoded segments
 * point into the caller's datagram, which must outlive them.
 *
 * Groundwork for the mKCP transport; the security envelope around the
 * segments is wh_kcp_crypt.h (spec 9.2).
 */
#ifndef WH_KCP_SEGMENT_H
#define WH_KCP_SEGMENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WH_KCP_CMD_ACK        0
#define WH_KCP_CMD_DATA       1
#define WH_KCP_CMD_TERMINATE  2
#define WH_KCP_CMD_PING       3

#define WH_KCP_OPT_CLOSE      0x01

#define WH_KCP_PREFIX_SIZE    4     /* conv(2) cmd(1) opt(1) */
#define WH_KCP_DATA_OVERHEAD  18    /* V2Ray's DataSegmentOverhead: MSS = mtu - security - 18 */
#define WH_KCP_ACK_OVERHEAD   17    /* + 4 per acknowledged sn */
#define WH_KCP_CMD_SIZE       16
#define WH_KCP_ACK_MAX        128   /* V2Ray's ackNumberLimit: the most sns one ACK carries */

typedef struct {
    uint32_t ts;                    /* sender's clock (ms) at this transmission */
    uint32_t sn;
    uint32_t una;                   /* sender's first unacknowledged sn */
    uint16_t len;
    const uint8_t *payload;         /* len bytes (decode: inside the datagram) */
} wh_kcp_data_t;

typedef struct {
    uint32_t wnd;                   /* first sn the receiver would not accept */
    uint32_t rcv_next;
    uint32_t ts;                    /* echo of the newest acknowledged DATA ts */
    uint8_t count;
    /* encode: count sns in host order; when NULL, sn_wire is copied instead
     * (so a decoded segment re-encodes as it came) */
    const uint32_t *sn_list;
    /* decode: count big-endian u32 inside the datagram; read them with
     * wh_kcp_ack_sn() -- not copied, as most ACKs are consumed at once */
    const uint8_t *sn_wire;
} wh_kcp_ack_t;

typedef struct {
    uint32_t una;
    uint32_t rcv_next;
    uint32_t rto;                   /* sender's current RTO, ms */
} wh_kcp_cmdonly_t;

typedef struct {
    uint16_t conv;
    uint8_t cmd;                    /* WH_KCP_CMD_*; unknown values are command-only */
    uint8_t opt;                    /* WH_KCP_OPT_CLOSE or 0 (other bits kept as sent) */
    union {
        wh_kcp_data_t data;         /* cmd DATA */
        wh_kcp_ack_t ack;           /* cmd ACK */
        wh_kcp_cmdonly_t cmd;       /* any other cmd */
    } u;
} wh_kcp_seg_t;

/* Encoded size of s, or 0 if it cannot be encoded (ACK count above 128). */
size_t wh_kcp_seg_size(const wh_kcp_seg_t *s);

/* Writes s to out. Returns the bytes written, or -1 if out is too small or
 * s cannot be encoded. */
ssize_t wh_kcp_seg_encode(const wh_kcp_seg_t *s, uint8_t *out, size_t size);

/* Decodes the segment at the start of p[0..len). Returns the bytes it takes
 * (>= 16), or -1 if it is truncated or claims more bytes than len. Never
 * reads outside p[0..len). */
ssize_t wh_kcp_seg_decode(const uint8_t *p, size_t len, wh_kcp_seg_t *s);

/*
 * Decodes up to max segments from one (opened) datagram, V2Ray's way: parse
 * until the bytes run out, stop at the first malformed segment and keep the
 * ones before it. Returns how many were decoded (>= 1), or -1 if not even
 * the first one decodes. *consumed (if not NULL) gets the bytes used: less
 * than len when a malformed segment ended parsing or max was reached.
 */
int wh_kcp_segs_decode(const uint8_t *p, size_t len, wh_kcp_seg_t *segs, int max,
    size_t *consumed);

/* The i-th acknowledged sn of a decoded ACK (i < count). */
uint32_t wh_kcp_ack_sn(const wh_kcp_ack_t *a, unsigned i);

#endif

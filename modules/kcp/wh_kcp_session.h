/*
 * wh_kcp_session.h -- the mKCP protocol engine of one conversation (spec
 * 9.4-9.10): receiving and acks, the send queue and its window, RTO, ping
 * and idle, the close/terminate state machine.
 *
 * Pure: no sockets, no clock, no event loop. The caller feeds decoded
 * segments (wh_kcp_input), application bytes (wh_kcp_write / wh_kcp_read)
 * and the session clock (ms since the session was made, u32) to
 * wh_kcp_flush, which emits segments through the output callback. So every
 * rule of the spec is unit-testable with a fake clock.
 *
 * Memory: an idle session is this struct and nothing else. Until the
 * peer first acknowledges a segment we sent (a half-open session: it has
 * not shown it receives our datagrams), the send queue holds at most
 * WH_KCP_HALF_OPEN_QUEUE segments; then kcpSettings' writeBufferSize. Queued segments
 * (sent or received) are allocated one by one at their payload size and
 * freed when acknowledged or read; the ack list grows only while there is
 * something to acknowledge. Files: wh_kcp_recv.c (9.6), wh_kcp_send.c
 * (9.7), wh_kcp_rto.c (9.8), wh_kcp_session.c (9.5, 9.9, 9.10).
 */
#ifndef WH_KCP_SESSION_H
#define WH_KCP_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wh_kcp_segment.h"

/* The derived values of spec 9.1, shared by every session of a listener. */
typedef struct {
    uint32_t mtu;
    uint32_t tti;               /* ms */
    uint32_t mss;               /* payload bytes per DATA segment */
    uint32_t send_in_flight;    /* SendInFlight */
    uint32_t recv_window;       /* RecvWindow */
    uint32_t send_queue;        /* SendQueue */
    int congestion;
} wh_kcp_params_t;

enum {
    WH_KCP_ACTIVE = 0,
    WH_KCP_READY_TO_CLOSE,
    WH_KCP_PEER_CLOSED,
    WH_KCP_TERMINATING,
    WH_KCP_PEER_TERMINATING,
    WH_KCP_TERMINATED
};

#define WH_KCP_IDLE_TIMEOUT      30000  /* Active without input -> close */
#define WH_KCP_PING_INTERVAL     3000
#define WH_KCP_TERMINATING_TIME  8000
#define WH_KCP_PEER_TERM_TIME    4000
#define WH_KCP_READY_CLOSE_TIME  15000
#define WH_KCP_PEER_RTO_HOLD     3000
#define WH_KCP_INITIAL_RTO       100
#define WH_KCP_MAX_RTO           10000
#define WH_KCP_INITIAL_REMOTE_WND 32
#define WH_KCP_BURST             32     /* data transmissions per flush call (pacing) */
/* Segments the send queue holds until the peer first acknowledges one we
 * sent: the window a new peer advertises, all a first flight can use. */
#define WH_KCP_HALF_OPEN_QUEUE   WH_KCP_INITIAL_REMOTE_WND

/* A queued DATA payload: in the send queue until acknowledged, in the
 * receive buffer until read. */
typedef struct wh_kcp_dseg_s wh_kcp_dseg_t;
struct wh_kcp_dseg_s {
    wh_kcp_dseg_t *next;
    uint32_t sn;
    uint32_t ts;                /* send: of the last transmission */
    uint32_t resend_at;         /* send: 0 until first sent */
    uint32_t transmissions;
    uint16_t len;
    uint16_t off;               /* receive: bytes already read */
    uint8_t data[];
};

typedef struct {
    uint32_t sn;
    uint32_t ts;
    uint32_t next_ack;
} wh_kcp_ack_entry_t;

typedef struct {
    uint32_t srtt;
    uint32_t var;
    uint32_t rto;
    uint32_t min_rtt;           /* tti */
    uint32_t updated;           /* when rto was last set */
} wh_kcp_rtt_t;

typedef struct wh_kcp_session_s wh_kcp_session_t;
typedef void (*wh_kcp_output_pt)(wh_kcp_session_t *k, const wh_kcp_seg_t *seg);

struct wh_kcp_session_s {
    const wh_kcp_params_t *p;
    wh_kcp_output_pt output;
    void *data;                 /* the caller's */

    uint16_t conv;
    uint8_t state;
    uint8_t acks_dirty:1;
    uint8_t una_moved:1;        /* snd_una changed since the last flush */
    uint8_t paced:1;            /* the last flush stopped at WH_KCP_BURST: more are due */
    uint8_t had_input:1;        /* something arrived since the last flush */
    uint8_t acked:1;            /* the peer acknowledged a segment we sent */
    uint8_t sent_data:1;        /* first_sent is set */
    uint32_t state_since;
    uint32_t last_receive;
    uint32_t last_ping;
    uint32_t last_probe;        /* a DATA beyond the peer's window was sent */
    uint32_t first_sent;        /* the first DATA transmission */
    wh_kcp_rtt_t rtt;

    /* receiving (9.6) */
    uint32_t rcv_next;
    wh_kcp_dseg_t *rcv_head;    /* sorted by sn, no duplicates */
    wh_kcp_dseg_t *rcv_tail;
    uint32_t rcv_count;
    wh_kcp_ack_entry_t *acks;
    uint32_t nacks;
    uint32_t acks_cap;

    /* sending (9.7) */
    uint32_t snd_next;
    uint32_t snd_una;
    uint32_t remote_wnd;
    uint32_t ctrl_wnd;
    uint32_t snd_count;
    uint32_t in_flight;         /* sent once and not yet removed */
    wh_kcp_dseg_t *snd_head;    /* sorted by sn */
    wh_kcp_dseg_t *snd_tail;
};

/* wrap-aware "a precedes b" (spec 9.5) */
static inline int
wh_kcp_before(uint32_t a, uint32_t b)
{
    return (uint32_t) (b - a) - 1 < 0x7fffffffu;
}

/* The derived values of spec 9.1 from kcpSettings, with V2Ray's unsigned
 * 32-bit wrapping. header_size: the obfuscator's; seeded: seed security. */
void wh_kcp_params_init(wh_kcp_params_t *p, uint32_t mtu, uint32_t tti, uint32_t uplink,
                        uint32_t downlink, uint32_t write_buffer_mb, int congestion,
                        size_t header_size, int seeded);

void wh_kcp_session_init(wh_kcp_session_t *k, const wh_kcp_params_t *p, uint16_t conv,
                         wh_kcp_output_pt output, void *data);
/* Frees every queued segment and the ack list (not k itself). */
void wh_kcp_session_free(wh_kcp_session_t *k);

/* One datagram's decoded segments, in order; stops at the first whose conv
 * differs (spec 9.4). */
void wh_kcp_input(wh_kcp_session_t *k, uint32_t now, const wh_kcp_seg_t *segs, int n);

/* The output procedure (9.6-9.10). */
void wh_kcp_flush(wh_kcp_session_t *k, uint32_t now);

/* Application side. read: >0 bytes, 0 end of stream, WH_AGAIN. write: bytes
 * taken (cut into MSS segments), WH_AGAIN when the queue is full, or all of
 * them when the session no longer sends (dropped, as nobody will read). */
ssize_t wh_kcp_read(wh_kcp_session_t *k, uint8_t *buf, size_t size);
ssize_t wh_kcp_write(wh_kcp_session_t *k, const uint8_t *buf, size_t size);
/* readable: read would not say WH_AGAIN -- unless all it finds in order is
 * empty DATA segments (no V2Ray peer sends them): read uses them up, says
 * WH_AGAIN, and readable is false after it. */
int wh_kcp_readable(const wh_kcp_session_t *k);
int wh_kcp_writable(const wh_kcp_session_t *k);     /* write would take bytes */
/* Half-open: data went out, none of it was ever acknowledged, and the peer
 * has sent nothing at all for `wait` ms since then (the module closes it
 * after policy.handshake). */
int wh_kcp_unanswered(const wh_kcp_session_t *k, uint32_t now, uint32_t wait);
/* The application closes (9.10). */
void wh_kcp_close(wh_kcp_session_t *k, uint32_t now);
/* Something is waiting to go out: flush every tti rather than every 5 s. */
int wh_kcp_busy(const wh_kcp_session_t *k);

/* internal, one file each, exposed for the unit tests */
void wh_kcp_set_state(wh_kcp_session_t *k, int state, uint32_t now);
void wh_kcp_rtt_init(wh_kcp_rtt_t *r, uint32_t tti);
void wh_kcp_rtt_sample(wh_kcp_rtt_t *r, uint32_t rtt, uint32_t now);
void wh_kcp_rtt_peer(wh_kcp_rtt_t *r, uint32_t rto, uint32_t now);

void wh_kcp_recv_data(wh_kcp_session_t *k, const wh_kcp_data_t *d);
void wh_kcp_recv_una(wh_kcp_session_t *k, uint32_t una);
void wh_kcp_recv_flush(wh_kcp_session_t *k, uint32_t now);
void wh_kcp_recv_discard(wh_kcp_session_t *k);

void wh_kcp_send_ack(wh_kcp_session_t *k, uint32_t now, const wh_kcp_ack_t *a);
void wh_kcp_send_rcv_next(wh_kcp_session_t *k, uint32_t rcv_next);
void wh_kcp_send_flush(wh_kcp_session_t *k, uint32_t now);
void wh_kcp_send_discard(wh_kcp_session_t *k);
void wh_kcp_ping(wh_kcp_session_t *k, uint32_t now, uint8_t cmd);

#endif

/*
 * wh_quic.h -- the quic transport's private declarations (spec 8).
 *
 * Four parts, one file each: the module (quicSettings, the datagram hook
 * that opens the outer layer and finds the connection by peer address),
 * the connection (ngtcp2 and its callbacks, timers, sending), the stream
 * (the wh_stream_t the relay sees, one per client bidirectional stream)
 * and the TLS credentials (GnuTLS, which ngtcp2's crypto helper drives).
 * The connection is a carrier, as an HTTP/2 connection is: it counts as
 * live in the worker but not as a stream; each QUIC stream does.
 */
#ifndef WH_QUIC_H
#define WH_QUIC_H

#include "wh_cycle.h"
#include "wh_event.h"
#include "wh_quic_outer.h"
#include "wh_udp.h"
#include "wh_mux_stream.h"
#include "wh_limit.h"
#include "wh_live.h"

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

/* spec 8.5: what V2Ray's server advertises */
#define WH_QUIC_STREAM_WINDOW    (512 * 1024)
#define WH_QUIC_CONN_WINDOW      786432
#define WH_QUIC_MAX_STREAMS      32
#define WH_QUIC_IDLE_TIMEOUT     45
#define WH_QUIC_DRAIN_IDLE       2.0    /* s a draining connection waits for one more stream */
#define WH_QUIC_HANDSHAKE_TIMEOUT 8
#define WH_QUIC_CID_LEN          12

/* Unacknowledged outgoing bytes a stream may hold: ngtcp2 keeps pointers
 * into them until they are acknowledged, so they live in chunks that never
 * move and are freed as acknowledgements arrive. */
#define WH_QUIC_CHUNK            16384
#define WH_QUIC_OUT_CHUNKS       16

typedef struct {
    wh_quic_outer_conf_t outer;
    long retry;                 /* handshakes in progress from which Initials get a Retry */
    unsigned default_outer:1;   /* quicSettings absent: also accept ChaCha20 under the same K */
} wh_quic_conf_t;

#define WH_QUIC_RETRY_DEFAULT    64

typedef struct wh_quic_conn_s wh_quic_conn_t;
typedef struct wh_quic_stream_s wh_quic_stream_t;
typedef struct wh_quic_tls_s wh_quic_tls_t;

/* A listener in a worker (ls->runtime). */
typedef struct {
    wh_listener_t *ls;
    wh_quic_outer_t outer[2];   /* [1]: ChaCha20 beside the default AES-GCM */
    int nouter;
    wh_quic_tls_t *tls;
    wh_quic_conn_t *conns;
    uint8_t reset_secret[32];   /* stateless reset tokens */
    unsigned handshaking;       /* connections whose handshake has not completed */
    uint64_t retry_episode;     /* Retry packets since retrying began */
    ev_tstamp retry_last;
    ev_timer retry_quiet;       /* ends an episode */
    unsigned draining:1;
    unsigned retrying:1;        /* an episode is on (logged at start and end) */
} wh_quic_rt_t;

typedef struct wh_quic_chunk_s wh_quic_chunk_t;
struct wh_quic_chunk_s {
    wh_quic_chunk_t *next;
    uint32_t len;
    uint8_t data[WH_QUIC_CHUNK];
};

struct wh_quic_stream_s {
    wh_mux_stream_t m;          /* owned by the relay and by ngtcp2; aborted:
                                 * RESET_STREAM or STOP_SENDING from the client */
    wh_quic_conn_t *conn;       /* NULL once the connection is gone */
    wh_quic_stream_t *next, **prev;         /* the connection's streams */
    wh_quic_stream_t *sq_next, **sq_prev;   /* its send queue */
    int64_t id;
    wh_quic_chunk_t *head, *tail;           /* written by the relay, not yet acknowledged */
    wh_quic_chunk_t *send;      /* the first chunk with bytes not yet given to ngtcp2 */
    uint32_t head_acked;        /* acknowledged bytes at the start of head */
    uint32_t send_pos;
    uint32_t nchunks;
    unsigned fresh:1;           /* opened, not yet handed to the relay */
    unsigned fin_sent:1;
    unsigned blocked:1;         /* flow control: retried after the next packet in */
};

struct wh_quic_conn_s {
    wh_quic_rt_t *rt;
    wh_listener_t *ls;
    wh_live_t live;             /* a carrier */
    wh_conn_slot_t slot;        /* its place in the connection limits */
    ngtcp2_conn *conn;
    gnutls_session_t tls;
    ngtcp2_crypto_conn_ref ref;
    wh_quic_outer_t *outer;
    wh_sockaddr_t peer;
    wh_sockaddr_t local;
    wh_udp_local_t dst;         /* where the client sends to (wildcard listeners) */
    ngtcp2_path path;
    ev_timer timer;
    ngtcp2_tstamp ts;           /* conn_ts(): the last clock reading given to ngtcp2 */
    wh_posted_t write_ev;
    wh_quic_stream_t *streams;
    wh_quic_stream_t *sq_head, **sq_tail;
    wh_quic_conn_t *next, **prev;           /* the listener's connections */
    wh_quic_conn_t *hnext;                  /* peer hash chain */
    uint64_t hash;
    ev_timer drain;             /* draining, no stream: the close waits a while */
    uint64_t streams_granted;   /* bidi streams the client may open in all */
    uint64_t streams_opened;    /* bidi streams it opened */
    unsigned nstreams;
    unsigned closing:1;
    unsigned handshake_done:1;
    unsigned ts_held:1;         /* from a packet's read to the write after it */
};

/* module */
wh_quic_conn_t *wh_quic_conn_find(wh_quic_rt_t *rt, const wh_sockaddr_t *peer, uint64_t *hash);
void wh_quic_conn_link(wh_quic_conn_t *c);
void wh_quic_conn_unlink(wh_quic_conn_t *c);
uint64_t wh_quic_now(void);

/* connection */
wh_quic_conn_t *wh_quic_conn_accept(wh_quic_rt_t *rt, wh_quic_outer_t *outer,
                                    const wh_sockaddr_t *peer, uint64_t hash,
                                    const ngtcp2_pkt_hd *hd, const ngtcp2_cid *odcid);
int wh_quic_conn_read(wh_quic_conn_t *c, const uint8_t *pkt, size_t len);
void wh_quic_conn_schedule(wh_quic_conn_t *c);
void wh_quic_conn_drain(wh_quic_conn_t *c);
void wh_quic_conn_stream_done(wh_quic_conn_t *c);
void wh_quic_conn_sendq_add(wh_quic_stream_t *st);
void wh_quic_conn_sendq_remove(wh_quic_stream_t *st);

/* stream */
wh_quic_stream_t *wh_quic_stream_new(wh_quic_conn_t *c, int64_t id);
int wh_quic_stream_recv(wh_quic_stream_t *st, const uint8_t *data, size_t len, int fin);
void wh_quic_stream_acked(wh_quic_stream_t *st, uint64_t len);
void wh_quic_stream_closed(wh_quic_stream_t *st, int reset);
void wh_quic_stream_detach(wh_quic_stream_t *st);
int wh_quic_stream_pending(const wh_quic_stream_t *st);
int wh_quic_stream_vecs(wh_quic_stream_t *st, ngtcp2_vec *vec, int max, int *fin);
void wh_quic_stream_sent(wh_quic_stream_t *st, size_t n, int fin);

/* Retry: the secret is drawn once, in the master, before any worker */
int wh_quic_retry_init(void);
/* The Retry packet for the Initial hd from peer, with a fresh token: its
 * length, or -1. */
ssize_t wh_quic_retry_write(uint8_t *dest, size_t destlen, const ngtcp2_pkt_hd *hd,
                            const wh_sockaddr_t *peer, uint64_t now);
/* hd's token: WH_OK and *odcid set (a Retry token of ours for peer, still
 * good), WH_DECLINED (no Retry token) or WH_ERROR (forged, expired, not
 * this peer's). */
int wh_quic_retry_verify(const ngtcp2_pkt_hd *hd, const wh_sockaddr_t *peer, ngtcp2_cid *odcid,
                         uint64_t now);
int wh_quic_retry_wanted(const wh_quic_rt_t *rt);
void wh_quic_retry_send(wh_quic_rt_t *rt, wh_quic_outer_t *outer, const wh_udp_packet_t *pkt,
                        const ngtcp2_pkt_hd *hd, size_t inner_len);
void wh_quic_retry_stop(wh_quic_rt_t *rt);

/* TLS */
wh_quic_tls_t *wh_quic_tls_new(wh_listener_t *ls);
void wh_quic_tls_free(wh_quic_tls_t *t);
int wh_quic_tls_session(wh_quic_tls_t *t, wh_quic_conn_t *c);
int wh_quic_tls_alpn_ok(wh_quic_conn_t *c);

#endif

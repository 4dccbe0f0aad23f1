/*
 * wh_mux_stream.h -- a stream that is one of many on a connection (an
 * HTTP/2 or a QUIC stream): the part the relay sees, which is the same
 * whatever frames the bytes.
 *
 * Two owners hold it, each by one reference: the relay (from the moment
 * the stream is meant for it until the relay destroys it) and the carrier
 * (the connection's protocol stack, until the stack closes the stream or
 * the connection goes). The memory goes when both have let go, so either
 * may go first and neither checks flags of the other.
 *
 * Incoming bytes wait in `in` until the relay reads them; each read tells
 * the carrier (consumed) so it opens the client's window by as much, which
 * bounds `in` by the window. Readiness is posted (wh_posted_stream_t): the
 * protocol library's callbacks never run the relay on their stack. A
 * client that streams (wh_coalesce.h) is held: the relay hears of its
 * bytes once a batch is in, or when the hold's timer runs out, not after
 * every packet or frame, so the upstream gets one send per batch.
 * Outgoing bytes are framed differently by each carrier (HTTP/2 copies
 * them into a buffer a data provider drains; QUIC keeps them in chunks
 * until acknowledged), so write and flow are the carrier's own ops; read,
 * wait, shutdown_write and destroy are these.
 */
#ifndef WH_MUX_STREAM_H
#define WH_MUX_STREAM_H

#include "wh_coalesce.h"
#include "wh_inbuf.h"
#include "wh_stream.h"

#define WH_MUX_RELAY    1
#define WH_MUX_CARRIER  2

typedef struct wh_mux_stream_s wh_mux_stream_t;

typedef struct {
    wh_stream_ops_t stream;     /* first: the stream's ops point here */
    /* the relay read n bytes while the carrier holds the stream */
    void (*consumed)(wh_mux_stream_t *m, size_t n);
    /* 1: a write would take bytes now */
    int (*writable)(wh_mux_stream_t *m);
    /* the relay wrote bytes or ended its side: have them framed and sent */
    void (*resume)(wh_mux_stream_t *m);
    /* the relay let go first: end what is still open towards the client */
    void (*abandon)(wh_mux_stream_t *m);
    /* both let go: free what the carrier added, and the memory */
    void (*free)(wh_mux_stream_t *m);
} wh_mux_ops_t;

/* A carrier's ops: its own write and flow, the shared rest. */
#define WH_MUX_OPS(nm, wr, fl, consumed, writable, resume, abandon, release)              \
    { { .name = nm, .read = wh_mux_read, .write = wr,                                     \
        .shutdown_write = wh_mux_shutdown_write, .wait = wh_mux_wait, .flow = fl,          \
        .destroy = wh_mux_destroy }, consumed, writable, resume, abandon, release }

struct wh_mux_stream_s {
    wh_posted_stream_t ps;
    wh_inbuf_t in;              /* received, not yet read by the relay */
    wh_coalesce_t co;           /* on: the relay hears of `in` a batch at a time */
    uint8_t owners;             /* WH_MUX_* */
    unsigned in_eof:1;          /* the client ended its side */
    unsigned out_eof:1;         /* the relay ended its side */
    unsigned aborted:1;         /* the client reset it: reads fail once in is empty */
};

#define wh_mux_of(s) wh_container_of(s, wh_mux_stream_t, ps.s)

/* The carrier opens it, holding the carrier's reference; owners adds the
 * relay's at once when the stream is meant for the relay from its start. */
void wh_mux_init(wh_mux_stream_t *m, const wh_mux_ops_t *ops, int owners);
static inline void
wh_mux_relayed(wh_mux_stream_t *m)
{
    m->owners |= WH_MUX_RELAY;
}

/* A client stream: it may be held while it streams, up to delay seconds
 * at a time (receive_coalesce); 0: never. */
static inline void
wh_mux_coalesce(wh_mux_stream_t *m, double delay)
{
    wh_coalesce_delay(&m->co, delay);
}

/* Bytes from the client (fin: its last). WH_ERROR without memory. */
int wh_mux_received(wh_mux_stream_t *m, const uint8_t *data, size_t len, int fin);
/* Readiness for the relay, if it holds the stream. */
void wh_mux_signal(wh_mux_stream_t *m, int events);
/* The carrier lets go; err (or NULL) is what the relay reads when the
 * client had not ended its side. */
void wh_mux_carrier_gone(wh_mux_stream_t *m, const char *err);

/* The relay's ops. */
ssize_t wh_mux_read(wh_stream_t *s, void *buf, size_t size);
int wh_mux_shutdown_write(wh_stream_t *s);
void wh_mux_wait(wh_stream_t *s, int events);
void wh_mux_destroy(wh_stream_t *s);

#endif

/*
 * wh_live.h -- what keeps a worker alive: one handle per live thing.
 *
 * A draining worker exits when nothing it serves is left: a relayed or
 * handshaking stream, a connection that carries streams (HTTP/2, QUIC), a
 * session saying goodbye after its stream closed (mKCP). Each of those
 * holds one wh_live_t, opened once when it starts and closed once when it
 * ends; the handle also keeps the listener's counters (accepted, active,
 * closed by cause, connections), so counting and liveness cannot disagree.
 * Closing a handle that is not open does nothing, so an owner may close on
 * every way out without tracking which one ran first.
 *
 * A stream connection that turns out to carry streams becomes a carrier
 * (wh_live_carry): it leaves the stream counters for the connection ones
 * and stays one live thing. A handle moves with its owner (wh_live_move).
 *
 * The handle of a stream connection also holds the client's place in the
 * connection limits (wh_limit.h), given back when it closes: it lives
 * exactly as long as the socket, in every path (relayed, carrying HTTP/2,
 * refused during its handshake), so the place needs no memory of its own.
 */
#ifndef WH_LIVE_H
#define WH_LIVE_H

#include "wh_cycle.h"
#include "wh_limit.h"

enum {
    WH_LIVE_STREAM,             /* counted as accepted, active, then closed by cause */
    WH_LIVE_CARRIER,            /* counted as a connection */
    WH_LIVE_LINGER              /* counted nowhere: only keeps the worker */
};

typedef struct {
    wh_listener_t *ls;          /* NULL: not open */
    wh_conn_slot_t slot;        /* the client's place, if this handle holds it */
    uint8_t kind;
} wh_live_t;

void wh_live_open(wh_live_t *l, wh_listener_t *ls, int kind);
/* cause: a WH_CLOSE_* for a stream; ignored for the other kinds. */
void wh_live_close(wh_live_t *l, int cause);
void wh_live_carry(wh_live_t *l);
void wh_live_move(wh_live_t *to, wh_live_t *from);

/* A stream refused before it lived: opened and closed at once. */
void wh_live_refused(wh_listener_t *ls, int cause);

/* Live things in this worker, and what runs when the last one closes. */
unsigned wh_live_count(void);
void wh_live_on_empty(void (*handler)(void));

#endif

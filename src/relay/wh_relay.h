/*
 * wh_relay.h -- pipes one transport stream to its upstream and back.
 *
 * The transport module accepts, runs its handshake, and hands the resulting
 * wh_stream_t to wh_relay_start(); from there on the relay owns it. Stream
 * accounting is shared with the modules: a connection is counted as
 * accepted (and active) when the transport takes it, and as closed by cause
 * exactly once, either by the module (a failed handshake) or by the relay.
 */
#ifndef WH_RELAY_H
#define WH_RELAY_H

#include "wh_cycle.h"
#include "wh_stream.h"

#include <sys/socket.h>

/* Streams alive in this worker (in a handshake or relayed). */
extern unsigned wh_streams_live;
/* Called when wh_streams_live drops to 0 (the draining worker exits). */
extern void (*wh_streams_drained)(void);

void wh_stream_accepted(wh_listener_t *ls);
/* The accepted connection became a carrier of streams (HTTP/2, QUIC): it no
 * longer counts as a stream, but stays live until wh_carrier_closed(). */
void wh_stream_taken(wh_listener_t *ls);
void wh_carrier_closed(wh_listener_t *ls);
/* Keeps the worker alive (draining) for something that is not a stream,
 * such as an mKCP session saying goodbye after its stream closed. */
void wh_streams_hold(void);
void wh_streams_release(void);
void wh_stream_refused(wh_listener_t *ls, int cause);   /* before the relay took it */

/* Connects the listener's upstream and relays client <-> upstream until
 * both ends finish, a policy timeout fires, or an error. peer is the client
 * address for logs (the PROXY source, when there was one). */
void wh_relay_start(wh_listener_t *ls, wh_stream_t *client,
                    const struct sockaddr *peer, socklen_t peerlen);

/* Closes every relay of this worker with the given cause (fast stop,
 * shutdown_timeout). */
void wh_relay_close_all(int cause);

#endif

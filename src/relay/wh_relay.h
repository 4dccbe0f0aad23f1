/*
 * wh_relay.h -- pipes one transport stream to its upstream and back.
 *
 * The transport module accepts, runs its handshake, and hands the resulting
 * wh_stream_t to wh_relay_start(); from there on the relay owns it, and
 * the stream's live handle (wh_live.h), which counts it closed by cause.
 */
#ifndef WH_RELAY_H
#define WH_RELAY_H

#include "wh_cycle.h"
#include "wh_live.h"
#include "wh_stream.h"

#include <sys/socket.h>

/* Connects the upstream of live's listener and relays client <-> upstream
 * until both ends finish, a policy timeout fires, or an error. The relay
 * takes the client's live handle over (*live is left closed) and closes it
 * with the cause. peer is the client address for logs (the PROXY source,
 * when there was one). */
void wh_relay_start(wh_live_t *live, wh_stream_t *client, const struct sockaddr *peer,
                    socklen_t peerlen);

/* Closes every relay of this worker with the given cause (fast stop,
 * shutdown_timeout). */
void wh_relay_close_all(int cause);

#endif

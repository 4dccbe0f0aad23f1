/*
 * wh_relay.h -- pipes one transport stream to its upstream and back.
 *
 * The transport module accepts, runs its handshake, and hands the resulting
 * wh_stream_t to wh_relay_start(); from there on the relay owns it, and
 * the stream's live handle (wh_live.h), which counts it closed by cause.
 */
#ifndef WH_RELAY_H
#define WH_RELAY_H

#include "wh_access_log.h"
#include "wh_cycle.h"
#include "wh_live.h"
#include "wh_stream.h"

#include <sys/socket.h>

/* Connects to a member of dest's upstream group (the listener's own,
 * &ls->dest, or another a handshake chose) and relays client <-> upstream
 * until both ends finish, a policy timeout fires, or an error. The relay
 * takes the client's live handle over (*live is left closed) and closes it
 * with the cause. peer is the client address for logs and for the PROXY
 * header dest->xver asks for (the PROXY source, when there was one).
 * replay[0..replay_len) are bytes of the client's that a handshake has
 * read already: the upstream gets them right after the PROXY header and
 * before anything else (they are copied; NULL, 0 for none). facts are
 * what the stream's handshake learnt, for the access log (copied when the
 * listener has one; NULL: none). */
void wh_relay_start(wh_live_t *live, const wh_dest_t *dest, wh_stream_t *client,
                    const struct sockaddr *peer, socklen_t peerlen,
                    const void *replay, size_t replay_len, const wh_access_facts_t *facts);

/* The access log line of a stream that ls refused before it was relayed. */
void wh_relay_log_refused(wh_listener_t *ls, const struct sockaddr *peer,
                          const wh_access_facts_t *facts, double start, int cause);

/* Closes every relay of this worker with the given cause (fast stop,
 * shutdown_timeout). */
void wh_relay_close_all(int cause);

#endif

/*
 * wh_limit.h -- how many clients a worker and a listener take.
 *
 * A client is an accepted stream connection, from accept() on (so the
 * handshakes in progress count), or a UDP session (a QUIC connection, an
 * mKCP conversation). Three limits, as nginx and haproxy have them:
 *
 *   worker_connections        per worker. At the limit a worker stops
 *                             accepting and starts again below it, as
 *                             haproxy's maxconn does: the next client waits
 *                             in the listen backlog (or is taken by another
 *                             worker) instead of being accepted and dropped.
 *                             A UDP transport opens no new session meanwhile.
 *   maxConnections            per listener, all workers together;
 *   maxConnectionsPerAddress  per listener and client address (an IPv6
 *                             client by its /64), all workers together.
 *                             Over either, a client is closed at once,
 *                             counted as "limit" and logged at info.
 *
 * Whoever owns the client's lowest layer holds a wh_conn_slot_t and gives
 * it back when the client is gone: the live handle of a stream connection
 * (wh_live.h), the session of a UDP transport. The slot does not name its
 * listener, which its owner knows, so a handle carries it in 12 bytes.
 */
#ifndef WH_LIMIT_H
#define WH_LIMIT_H

#include "wh_cycle.h"

#include <sys/socket.h>

typedef struct {
    uint32_t cell[2];           /* the address's cells in the sketch (wh_stats.h) */
    unsigned held:1;            /* 0: holds nothing */
    unsigned by_address:1;      /* counted in the cells */
} wh_conn_slot_t;

/* In a worker, before its listeners start; slot: its stats slot. */
void wh_limit_init(wh_cycle_t *cycle, int slot);

/* WH_OK: slot now holds a place for a client of ls from peer.
 * WH_AGAIN: the worker is at worker_connections (nothing logged: the
 * episode is). WH_DECLINED: over a cap of ls -- logged, not counted (the
 * caller counts what it refused). */
int wh_limit_admit(wh_listener_t *ls, const struct sockaddr *peer, wh_conn_slot_t *slot);

/* The client turned out to be from peer (a PROXY header): counted there
 * instead. WH_DECLINED as for admit, and slot then holds nothing. */
int wh_limit_readdress(wh_listener_t *ls, wh_conn_slot_t *slot, const struct sockaddr *peer);

/* Gives a place of ls back; a slot holding nothing is fine. */
void wh_limit_release(wh_listener_t *ls, wh_conn_slot_t *slot);

/* The worker is at worker_connections. */
int wh_limit_full(void);

/* Clients of this worker now. */
extern unsigned wh_clients;

#endif

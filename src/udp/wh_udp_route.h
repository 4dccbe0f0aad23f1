/*
 * wh_udp_route.h -- which worker owns the session of a peer address.
 *
 * An open-addressing hash table in memory shared by the master and every
 * worker (wh_udp.c maps it before the first fork). Each entry is a 64-bit
 * key -- a seeded hash of (listener address, peer address) -- and the
 * owning worker's serial. Workers only claim, update and release their own
 * entries (a CAS claims a free slot), the master clears a dead worker's;
 * readers never lock. Probing is bounded: a session that finds no slot is
 * served all the same, it just cannot be found after a reload.
 */
#ifndef WH_UDP_ROUTE_H
#define WH_UDP_ROUTE_H

#include "wh_addr.h"

typedef struct {
    uint64_t key;               /* 0 empty, 1 deleted, else a hash */
    uint32_t owner;             /* worker serial; 0 while claimed or deleted */
    uint32_t pad;
} wh_udp_route_t;

typedef struct {
    wh_udp_route_t *slots;
    size_t mask;                /* size - 1, size a power of two */
    uint64_t seed;
} wh_udp_routes_t;

uint64_t wh_udp_route_key(const wh_udp_routes_t *t, const wh_sockaddr_t *local,
                          const wh_sockaddr_t *peer);
/* WH_OK, or WH_ERROR when no slot was found within the probe bound. */
int wh_udp_route_set(wh_udp_routes_t *t, uint64_t key, uint32_t owner);
/* The owner's serial, 0 for none. */
uint32_t wh_udp_route_get(const wh_udp_routes_t *t, uint64_t key);
/* Releases key if owner still holds it. */
void wh_udp_route_del(wh_udp_routes_t *t, uint64_t key, uint32_t owner);
/* Releases every entry of owner (the master, when a worker exited). */
void wh_udp_route_forget(wh_udp_routes_t *t, uint32_t owner);

#endif

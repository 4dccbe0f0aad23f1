/*
 * wh_udp.h -- the datagram side shared by the UDP transports (quic, kcp).
 *
 * The master binds, per UDP listener, one SO_REUSEPORT socket per worker
 * (wh_udp_bind as the module's bind hook), so the kernel keeps one peer
 * address on one socket. Those sockets are kept across reloads like stream
 * listening sockets: a new worker reads the same sockets its predecessor
 * read, which stops reading them (but keeps them to send) when it drains.
 *
 * Sessions that outlive a reload therefore arrive at a worker that does
 * not own them. Every session is registered, by peer address, in a table
 * shared by all workers (a memfd the master maps, handed to a new binary);
 * a worker that gets a datagram for an unknown peer asks the table, and
 * when an older worker owns that peer it passes the datagram to it over
 * that worker's mailbox (a unix datagram socketpair made by the master).
 * V2Ray clients keep their 4-tuple for the life of a QUIC connection or
 * an mKCP session (one UDP socket per dial, no migration), so the peer
 * address names the session even when the outer layer hides every id.
 *
 * Modules call wh_udp_start/wh_udp_stop from their start/stop hooks and
 * get every datagram through their descriptor's datagram hook.
 */
#ifndef WH_UDP_H
#define WH_UDP_H

#include "wh_cycle.h"
#include "wh_worker_ctx.h"

#include <netinet/in.h>

/* The largest datagram read or forwarded: V2Ray reads into 2048 bytes. */
#define WH_UDP_MAX_DATAGRAM 2048

/* The address a datagram was sent to, on a listener bound to a wildcard
 * address (IP_PKTINFO): replies must leave from it, or a client whose UDP
 * socket is connected to that address drops them. family 0: unknown, the
 * kernel chooses. */
typedef struct {
    sa_family_t family;
    union {
        struct in_addr v4;
        struct in6_addr v6;
    } addr;
    int ifindex;
} wh_udp_local_t;

struct wh_udp_packet_s {
    wh_sockaddr_t peer;
    wh_udp_local_t local;
    uint8_t *data;              /* writable: transports decrypt in place */
    size_t len;
    unsigned forwarded:1;       /* passed on by another worker: the session was
                                 * ours; never open a new one for it */
};

/* master: the module's bind hook for UDP transports */
int wh_udp_bind(wh_listener_t *ls);
/* master, once before the first worker: the routing table */
int wh_udp_init(void);
/* master, binary upgrade: the table's memfd (and seed) to hand to the new
 * binary, and in the new binary the inherited one, used instead of a new
 * table; WH_ERROR if fd is not such a table */
int wh_udp_routes_export(uint64_t *seed);
int wh_udp_routes_inherit(int fd, uint64_t seed);
/* master: a worker exited; forget the sessions it owned */
void wh_udp_forget(uint32_t worker_serial);

/* worker: read this worker's share of ls's sockets (and the mailbox);
 * ctx says which share and which mailbox, and is kept */
int wh_udp_start(wh_listener_t *ls, wh_worker_ctx_t *ctx);
/* worker: stop reading ls's sockets (draining); sending still works */
void wh_udp_stop(wh_listener_t *ls);
/* worker, after wh_udp_start: while a client streams full datagrams, read
 * ls's sockets once per delay seconds rather than on every arrival
 * (receive_coalesce; see wh_udp.c); 0: never */
void wh_udp_coalesce(wh_listener_t *ls, double delay);

/* Sends one datagram to peer from the listener's address (from local,
 * the session's last packet's, when the listener is a wildcard; NULL:
 * the kernel chooses). WH_OK, or WH_ERROR when it was dropped (counted;
 * UDP is lossy, callers go on). */
int wh_udp_send(wh_listener_t *ls, const wh_sockaddr_t *peer, const wh_udp_local_t *local,
                const void *data, size_t len);
/* Sends len bytes cut into datagrams of seg bytes (the last may be
 * shorter) in one system call where the kernel offers UDP GSO. */
int wh_udp_send_gso(wh_listener_t *ls, const wh_sockaddr_t *peer, const wh_udp_local_t *local,
                    const void *data, size_t len, size_t seg);

/* Session ownership, by peer address, for routing across a reload.
 * wh_udp_own when a session is opened, wh_udp_disown when it ends. */
void wh_udp_own(wh_listener_t *ls, const wh_sockaddr_t *peer);
void wh_udp_disown(wh_listener_t *ls, const wh_sockaddr_t *peer);
/* For a datagram that would open a session: 1 if another live worker owns
 * its peer and the datagram was passed to it (the caller drops it), else 0. */
int wh_udp_forward(wh_listener_t *ls, const wh_udp_packet_t *pkt);

/* Counts a dropped datagram (a WH_DROP_* cause, wh_stats.h). */
void wh_udp_dropped(wh_listener_t *ls, int cause);

#endif

/*
 * wh_stats.h -- counters in one POSIX shared-memory segment, "/wharf.PID"
 * (PID of the master), created by the master before it forks.
 *
 * Layout: a slot per worker process and a column per listener tag. A worker
 * writes only its own slot (no locks; relaxed atomic adds so readers never see
 * torn values); readers (-S, the /metrics endpoint) sum the slots. Slot 0
 * holds the totals of workers that have exited: the master folds a dead
 * worker's slot into it and frees the slot, so counters survive reloads and
 * crashes and the segment never grows. A listener keeps its column across
 * reloads as long as its tag stays.
 *
 * Upstream members have a table of the same shape: a column per member of
 * a group (the group's name, a listener's tag, and the member's address),
 * a slot per worker. A member's down state is each worker's own (no
 * shared state on the connect path), so the slot keeps when that worker's
 * down time ends and readers count the workers for which it has not ended:
 * no timer has to clear it.
 *
 * A few counters are the master's own (wh_stats_master_t): its start time,
 * its reloads and the workers it had to respawn. Only the master writes
 * them, so they need no slot.
 *
 * The segment also holds what the connection limits share between workers
 * (wh_limit.c): per slot, the open clients per listener (the "clients"
 * gauge above) and a count-min sketch of open clients per address.
 */
#ifndef WH_STATS_H
#define WH_STATS_H

#include "wh_core.h"

enum {
    WH_CLOSE_DONE = 0,      /* both sides finished, or one finished and the other idled out */
    WH_CLOSE_TIMEOUT,       /* connIdle expired, or PROXY/TLS/header did not finish in handshake */
    WH_CLOSE_UPSTREAM,      /* the upstream could not be reached (in handshake) or failed */
    WH_CLOSE_BAD_INPUT,     /* the client sent bytes we refuse (PROXY header, ...) */
    WH_CLOSE_ERROR,         /* a read/write error or reset, or the worker died */
    WH_CLOSE_SHUTDOWN,      /* closed by a fast stop or at shutdown_timeout */
    WH_CLOSE_LIMIT,         /* refused at once: maxConnections or maxConnectionsPerAddress */
    WH_CLOSE_NCAUSES
};

extern const char *const wh_close_cause_names[WH_CLOSE_NCAUSES];

/* Why a datagram of a UDP transport was dropped. */
enum {
    WH_DROP_AUTH = 0,       /* outer layer failed: header, checksum, AEAD */
    WH_DROP_MALFORMED,      /* the transport could not parse what was inside */
    WH_DROP_REFUSED,        /* no session for it, and none may be opened */
    WH_DROP_SEND,           /* outgoing: the socket buffer was full */
    WH_DROP_NCAUSES
};

extern const char *const wh_drop_cause_names[WH_DROP_NCAUSES];

typedef struct {
    uint64_t accepted;
    uint64_t active;
    uint64_t closed[WH_CLOSE_NCAUSES];
    uint64_t bytes_up;      /* client -> upstream */
    uint64_t bytes_down;    /* upstream -> client */
    uint64_t connections;   /* carriers of streams (HTTP/2, QUIC) accepted */
    uint64_t connections_active;
    uint64_t datagrams_in;  /* UDP transports: read from the sockets */
    uint64_t datagrams_out;
    uint64_t datagrams_passed;              /* handed to the worker owning the session */
    uint64_t datagrams_dropped[WH_DROP_NCAUSES];
    uint64_t clients;       /* client connections and UDP sessions open, handshakes included */
    uint64_t paused;        /* times this listener stopped accepting at worker_connections */
    uint64_t quic_retry;    /* QUIC Retry packets sent (address validation) */
    uint64_t fallbacks;     /* connections its fallbacks took (wh_fallback.h) */
} wh_stats_counters_t;

/* every field is a uint64_t: folding and summing walk them as an array */
#define WH_STATS_NFIELDS ((int) (sizeof(wh_stats_counters_t) / sizeof(uint64_t)))

#define WH_STATS_MAX_LISTENERS 256
#define WH_STATS_MAX_SLOTS     128
#define WH_STATS_TAG_LEN       64

/* One upstream member, in one worker's slot. */
typedef struct {
    uint64_t connects;          /* connections established */
    uint64_t connect_failures;  /* refused, failed or timed out */
    uint64_t down_until;        /* ms since the epoch; this worker does not
                                 * try it first before then */
} wh_stats_upstream_t;

/* The sums over the workers. */
typedef struct {
    uint64_t connects;
    uint64_t connect_failures;
    uint64_t down;              /* workers that hold it down now */
} wh_stats_upstream_sum_t;

#define WH_STATS_MAX_UPSTREAMS 1024
#define WH_STATS_MEMBER_LEN    128  /* "unix:" and a whole sun_path */

/* The master's own counters. */
typedef struct {
    uint64_t start_ms;          /* when the master started, ms since the epoch */
    uint64_t reloads;           /* reloads that took effect */
    uint64_t reloads_failed;    /* reloads refused: the running configuration stayed */
    uint64_t worker_restarts;   /* workers that died unexpectedly and were respawned */
} wh_stats_master_t;

#define wh_stats_add(field, n) __atomic_add_fetch(&(field), (n), __ATOMIC_RELAXED)
#define wh_stats_sub(field, n) __atomic_sub_fetch(&(field), (n), __ATOMIC_RELAXED)

/* master */
int wh_stats_create(pid_t master);
void wh_stats_destroy(void);
int wh_stats_listener(const char *tag);     /* its column, or -1 if the table is full */
int wh_stats_upstream(const char *group, const char *member);  /* the same for a member */
int wh_stats_slot_alloc(void);              /* -1 if all are taken */
void wh_stats_slot_retire(int slot);        /* fold into slot 0 and free */
/* master writes, readers read */
wh_stats_master_t *wh_stats_master(void);

/* worker */
wh_stats_counters_t *wh_stats_counters(int slot, int listener);
wh_stats_upstream_t *wh_stats_upstream_counters(int slot, int member);

/* The per-address sketch: WH_STATS_CELLS counters per slot, written only
 * by the slot's worker, read by all; a retired slot's are zeroed. */
#define WH_STATS_CELLS 16384
uint32_t *wh_stats_cells(int slot);
unsigned wh_stats_cell_sum(uint32_t cell);          /* over the slots in use */
uint64_t wh_stats_clients(int listener);            /* over the slots in use */
uint64_t wh_stats_seed(void);                       /* random, per master start */

/* readers */
int wh_stats_attach(pid_t master);          /* read-only mapping, for -S */
/* Calls fn for each listener column in use, with the sums over all slots. */
void wh_stats_foreach(void (*fn)(const char *tag, const wh_stats_counters_t *sum, void *arg),
                      void *arg);
/* The same for each upstream member column in use. */
void wh_stats_foreach_upstream(void (*fn)(const char *group, const char *member,
                                          const wh_stats_upstream_sum_t *sum, void *arg),
                               void *arg);

#endif

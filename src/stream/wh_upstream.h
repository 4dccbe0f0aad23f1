/*
 * wh_upstream.h -- where streams go: an upstream group (one or more
 * addresses: TCP, a unix socket) or the built-in echo service, and how a
 * stream's connect picks the member it tries.
 *
 * A group is nginx's upstream block with max_fails=1: members are taken
 * round robin; a failed connect marks a member down for the group's
 * fail_timeout, and a stream then tries the next member that is up. When
 * every member it has not tried is down, it tries the one whose down time
 * ends first rather than failing at once (nginx answers "no live
 * upstreams"): a relay has no error page to send, and a member that failed
 * once may well answer now. The down state is each worker's, kept in the
 * configuration each worker has of its own (after fork), so a connect
 * never touches shared memory beyond its counters.
 */
#ifndef WH_UPSTREAM_H
#define WH_UPSTREAM_H

#include "wh_addr.h"
#include "wh_conf.h"
#include "wh_stats.h"
#include "wh_stream.h"

typedef enum {
    WH_UPSTREAM_SOCKET,     /* "host:port", "[v6]:port", "unix:/path", "unix:@name" */
    WH_UPSTREAM_ECHO        /* "echo": sends every byte back */
} wh_upstream_kind_t;

/* a stream's tried members are the bits of a uint64_t */
#define WH_UPSTREAM_MAX_MEMBERS 64

typedef struct {
    wh_sockaddr_t addr;
    char text[WH_STATS_MEMBER_LEN];     /* the address, for logs and stats */
    int stats_index;                    /* its column in the stats segment */

    /* worker side */
    double down_until;                  /* ev_now() time; 0: up */
    wh_stats_upstream_t *stats;         /* this worker's slot; NULL: none */
} wh_upstream_member_t;

typedef struct wh_upstream_conf_s wh_upstream_conf_t;
struct wh_upstream_conf_s {
    wh_upstream_kind_t kind;
    char *name;                         /* names the group in stats */
    double fail_timeout;                /* seconds a failed member is down */
    wh_upstream_member_t *members;      /* one ("echo" too) or more */
    int nmembers;
    int next;                           /* round robin, this worker's */
    wh_upstream_conf_t *link;           /* the configuration's list of groups */
};

/* Where a stream goes: a group and the PROXY header it gets first. */
typedef struct {
    wh_upstream_conf_t *upstream;
    uint8_t xver;                       /* 0: none, 1: v1 text, 2: v2 binary */
} wh_dest_t;

/* Reads an upstream setting s: a string, or an array or list of strings (a
 * group). Host names are resolved now (blocking: while loading only), each
 * of their addresses a member. WH_OK, or WH_ERROR recorded in cf at the
 * line of the offending member; u is to be freed with wh_upstream_free()
 * either way. */
int wh_upstream_conf(wh_conf_t *cf, const config_setting_t *s, wh_upstream_conf_t *u);
/* One string, as a single upstream setting; *err says why on WH_ERROR. */
int wh_upstream_parse(const char *text, wh_upstream_conf_t *u, const char **err);
/* What the two above allocated, not u itself. */
void wh_upstream_free(wh_upstream_conf_t *u);

/* The member for a stream's next connect, added to *tried: round robin
 * over the members that are up and not in *tried, else the one of those
 * not tried whose down time ends first. NULL when all were tried. */
wh_upstream_member_t *wh_upstream_pick(wh_upstream_conf_t *u, uint64_t *tried, double now);
/* Counts the outcome of a connect; a failure marks the member down. now
 * is the loop's wall clock (ev_now), which the stats readers compare with. */
void wh_upstream_connected(wh_upstream_member_t *m);
void wh_upstream_failed(wh_upstream_conf_t *u, wh_upstream_member_t *m, double now);

/* Starts a non-blocking connect to m. *connected: it is over already (the
 * echo service, a unix socket, a TCP connect to this host), so the stream
 * is ready now. Otherwise the stream answers WH_AGAIN until it is connected
 * (its writable event) and reports a failure through its err field
 * (strerror() of the connect's SO_ERROR).
 * NULL when even the socket could not be made (*err set). */
wh_stream_t *wh_upstream_connect(const wh_upstream_conf_t *u, const wh_upstream_member_t *m,
                                 int *connected, const char **err);

/* The built-in echo service (wh_echo_stream.c). */
wh_stream_t *wh_echo_stream_create(void);

#endif

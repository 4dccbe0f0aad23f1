/*
 * wh_fallback.h -- where a listener sends a connection its transport would
 * refuse: Xray's "fallbacks", with its field names (name, alpn, path, dest,
 * xver), so one port serves a website beside its transports (see
 * wh_fallback.c).
 */
#ifndef WH_FALLBACK_H
#define WH_FALLBACK_H

#include "wh_conf.h"
#include "wh_match.h"
#include "wh_upstream.h"

typedef struct wh_listener_s wh_listener_t;
typedef struct wh_cycle_s wh_cycle_t;

typedef struct {
    wh_match_t name;            /* the SNI; unset: any */
    wh_match_t alpn;            /* the negotiated protocol */
    wh_match_t path;            /* the refused request's path */
    wh_dest_t dest;             /* .upstream NULL: a hand-off to "to" */
    const char *to_tag;         /* dest "listener:TAG" (the configuration's) */
    wh_listener_t *to;
    const char *file;           /* where it is, for messages */
    int line;
} wh_fallback_t;

typedef struct {
    wh_fallback_t *v;
    int n;
    unsigned on_connection:1;   /* an entry is tried after TLS (name or alpn, no path) */
} wh_fallbacks_t;

/* A listener's "fallbacks" list into ls->fallbacks (the destinations'
 * groups are the cycle's). WH_OK, or WH_ERROR recorded in cf. */
int wh_fallbacks_conf(wh_conf_t *cf, wh_cycle_t *c, wh_listener_t *ls,
                      const config_setting_t *list);

/* Once every listener is read: hand-off tags resolved, and what can never
 * work refused at its line (a tag that is missing, a target with TLS or
 * with no stream handshake, a loop, an entry its listener can never try). */
int wh_fallbacks_check(wh_conf_t *cf, wh_cycle_t *c);

void wh_fallbacks_free(wh_fallbacks_t *fbs);

/* The entry for a connection right after TLS (its SNI and ALPN, "" when
 * none), or NULL. */
const wh_fallback_t *wh_fallback_connection(const wh_listener_t *ls, const char *sni,
                                            const char *alpn);

/* The entry for a request the transport would refuse: those with a path
 * that matches (path NULL: the request has none, such as bytes that are not
 * HTTP), then those without a condition; or NULL. */
const wh_fallback_t *wh_fallback_request(const wh_listener_t *ls, const char *sni,
                                         const char *alpn, const char *path, size_t path_len);

#endif

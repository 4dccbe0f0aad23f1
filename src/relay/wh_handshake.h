/*
 * wh_handshake.h -- what happens to an accepted stream before the relay
 * takes it, the same for every stream transport: the PROXY header (when
 * the listener accepts one), TLS (when configured), then the transport's
 * own handshake (the tcp "http" header, the WebSocket upgrade...), all
 * bounded together by policy.handshake (spec 3.2 order).
 *
 * The pipeline takes a wh_stream_t, not an fd, so whatever carries the
 * bytes enters it the same way: an accepted socket, an mKCP session with
 * security "tls", or a stream another transport hands over.
 */
#ifndef WH_HANDSHAKE_H
#define WH_HANDSHAKE_H

#include "wh_cycle.h"
#include "wh_event.h"
#include "wh_limit.h"
#include "wh_live.h"
#include "wh_log.h"
#include "wh_stream.h"
#include "wh_worker_ctx.h"

#include <sys/socket.h>
#include <time.h>

typedef struct wh_handshake_s wh_handshake_t;
struct wh_handshake_s {
    wh_listener_t *ls;
    wh_stream_t *top;           /* the stream so far: socket, TLS, ... */
    struct sockaddr_storage peer;
    socklen_t peerlen;
    time_t accepted;            /* wall clock at accept */
    int module_step;            /* the module's own progress, 0 at first */
    void *module_data;          /* the module's, freed by its handshake_end */
    wh_live_t live;             /* the connection's: a module that takes the
                                 * connection (WH_DECLINED) moves it */
    wh_access_facts_t *facts;   /* after the struct when some listener logs, else NULL */

    /* private */
    ev_timer timer;
    int stage;
    uint16_t have;
    uint8_t ending;             /* finishing: no fallback any more */
    uint8_t *proxy;             /* PROXY header bytes, only in that stage */
    wh_stream_t *tls;           /* the TLS stream under top, if any (SNI, ALPN) */
    const wh_fallback_t *fallback;  /* taking the connection, with: */
    uint8_t *replay;            /* the bytes the module read */
    size_t replay_len;
};

/* Takes an accepted stream and its live handle (wh_live.h, moved; its
 * listener is the stream's, and it holds the client's place in the limits
 * unless the stream's owner does, as an mKCP session does), closing both
 * on failure. A PROXY header moves the place to the client it names. The
 * PROXY stage reads the socket under s itself (wh_stream_splice_fd). */
void wh_handshake_start(wh_live_t *live, wh_stream_t *s, const struct sockaddr *peer,
                        socklen_t peerlen);

/* At a point where the module would refuse the client: the first of
 * hs->ls's fallbacks for a refused request (wh_fallback.h; path is the
 * request's, NULL when it has none, as bytes that are not HTTP) takes the
 * connection instead, with read[0..n), all the module has read, to be read
 * again. WH_OK: taken, and the module returns at once (whatever it
 * returns), answering nothing; WH_DECLINED: no entry, the module refuses as
 * it would have. */
int wh_handshake_fallback(wh_handshake_t *hs, const char *path, size_t path_len,
                          const void *read, size_t n);

/* The request's path, kept for the access log (cut to its room) when
 * some listener logs. */
void wh_handshake_note_path(wh_handshake_t *hs, const char *path, size_t len);

/* A request the module refuses, said at info (what was asked: method,
 * host, path, each NULL when not known) and kept for the access log. */
void wh_handshake_refused(wh_handshake_t *hs, const char *why, const char *method, size_t mlen,
                          const char *host, size_t hlen, const char *path, size_t plen);

/* The access log's facts of the connection so far (TLS filled in now), or
 * NULL when no listener logs: a module that takes the connection over
 * copies them. */
const wh_access_facts_t *wh_handshake_facts(wh_handshake_t *hs);

/* What a handshake's log lines are about: its listener and client. */
const wh_log_ctx_t *wh_handshake_log_ctx(const wh_handshake_t *hs, wh_log_ctx_t *ctx);

/* Starts the handshake timer over (a keep-alive request after a refused one). */
void wh_handshake_restart_timer(wh_handshake_t *hs);

/* Seconds left before the handshake deadline, for a module that takes the
 * connection over (WH_DECLINED) and keeps that deadline for its own stage. */
double wh_handshake_time_left(wh_handshake_t *hs);

/* Accepts on ls->fd in this worker and starts each connection's handshake. */
int wh_accept_start(wh_listener_t *ls, wh_worker_ctx_t *ctx);
void wh_accept_stop(wh_listener_t *ls);

/* Every listener of this worker stops accepting, and starts again
 * (worker_connections, wh_limit.c). */
void wh_accept_pause(void);
void wh_accept_resume(void);
/* Every listener of this worker takes connections (none is paused). */
int wh_accept_ready(void);

#endif

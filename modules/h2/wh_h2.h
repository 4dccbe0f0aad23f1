/*
 * wh_h2.h -- the http transport's private declarations: its settings, and
 * the HTTP/2 connection that carries many relayed streams.
 */
#ifndef WH_H2_H
#define WH_H2_H

#include "wh_cycle.h"
#include "wh_handshake.h"

typedef struct {
    wh_str_list_t hosts;        /* accepted :authority values */
    char *path;                 /* normalised; a prefix of the request path */
} wh_h2_conf_t;

/* Runs an HTTP/2 server session on io (the socket or TLS stream below),
 * which it takes. upgrade: the HTTP2-Settings payload and the request of
 * an "Upgrade: h2c" (NULL otherwise), whose body is stream 1's uplink. */
int wh_h2_conn_start(wh_handshake_t *hs, const uint8_t *preread, size_t preread_len,
                     const char *upgrade_settings, size_t settings_len,
                     const char *authority, const char *path, const uint8_t *body,
                     size_t body_len);

/* Checks a request's :authority and :path against the settings. */
int wh_h2_request_ok(const wh_h2_conf_t *conf, const char *authority, size_t alen,
                     const char *path, size_t plen);

/* The HTTP/1.1 service of the same port (spec 5.6): lower becomes a stream
 * whose reads are the request body (chunked, or length bytes) and whose
 * writes go out as chunks. pre: body bytes read with the head. */
wh_stream_t *wh_h2_http1_stream(wh_stream_t *lower, int chunked, uint64_t length,
                                const uint8_t *pre, size_t pre_len);

/* GOAWAY to every connection of the listener in this worker (drain). */
void wh_h2_conn_drain(wh_listener_t *ls);

#endif

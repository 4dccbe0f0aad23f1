/*
 * wh_upstream.h -- where a listener's streams go: a TCP address, a unix
 * socket, or the built-in echo service.
 */
#ifndef WH_UPSTREAM_H
#define WH_UPSTREAM_H

#include "wh_addr.h"
#include "wh_stream.h"

typedef enum {
    WH_UPSTREAM_SOCKET,     /* "host:port", "[v6]:port", "unix:/path", "unix:@name" */
    WH_UPSTREAM_ECHO        /* "echo": sends every byte back */
} wh_upstream_kind_t;

typedef struct {
    wh_upstream_kind_t kind;
    wh_sockaddr_t addr;
    char *text;             /* as configured, for logs */
} wh_upstream_conf_t;

/* Parses the configured string; *err says why on WH_ERROR. */
int wh_upstream_parse(const char *text, wh_upstream_conf_t *u, const char **err);

/* Starts a non-blocking connect; the stream answers WH_AGAIN until it is
 * connected and reports a failure through its err field (strerror() of
 * the connect's SO_ERROR).
 * NULL when even the socket could not be made (*err set). */
wh_stream_t *wh_upstream_connect(const wh_upstream_conf_t *u, const char **err);

/* The built-in echo service (wh_echo_stream.c). */
wh_stream_t *wh_echo_stream_create(void);

#endif

/*
 * wh_sock_stream.h -- a wh_stream_t over a non-blocking socket fd: an
 * accepted TCP or unix connection, or an upstream connection.
 */
#ifndef WH_SOCK_STREAM_H
#define WH_SOCK_STREAM_H

#include "wh_stream.h"

/* Takes ownership of fd (closed by destroy). connecting: a connect() is in
 * progress; the stream answers WH_AGAIN until it completes. */
wh_stream_t *wh_sock_stream_create(int fd, int connecting);

/* Calls release(data) once, when s is destroyed, after its fd is closed:
 * so an accepted client gives its place in the limits back
 * (wh_sock_stream_hold, in wh_limit.c, a layer above this one). */
void wh_sock_stream_on_destroy(wh_stream_t *s, void (*release)(void *data), void *data);

#endif

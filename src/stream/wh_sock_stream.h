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

#endif

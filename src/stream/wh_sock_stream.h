/*
 * wh_sock_stream.h -- a wh_stream_t over a non-blocking socket fd: an
 * accepted TCP or unix connection, or an upstream connection.
 */
#ifndef WH_SOCK_STREAM_H
#define WH_SOCK_STREAM_H

#include "wh_stream.h"

#include <sys/socket.h>

/* Takes ownership of fd (closed by destroy). connecting: a connect() is in
 * progress; the stream answers WH_AGAIN until it completes. */
wh_stream_t *wh_sock_stream_create(int fd, int connecting);

/* Lets a client's socket hold its reads while it streams, up to delay
 * seconds each (receive_coalesce; see wh_sock_stream.c); 0: never. */
void wh_sock_stream_coalesce(wh_stream_t *s, double delay);

/* The local address of the socket that carries s under the filters over
 * it (TLS, a WebSocket, the tcp "http" header): the address a client
 * connected to. WH_DECLINED when no socket of its own carries s (an
 * HTTP/2, QUIC or mKCP stream: one of many on a connection). */
int wh_sock_stream_local(wh_stream_t *s, struct sockaddr_storage *ss, socklen_t *len);

#endif

/*
 * wh_ws_stream.h -- a server WebSocket as a wh_stream_t over the socket or
 * TLS stream below it (see wh_ws_stream.c).
 */
#ifndef WH_WS_STREAM_H
#define WH_WS_STREAM_H

#include "wh_stream.h"

/* Wraps lower (which it then owns) once the 101 went out; early holds
 * bytes to deliver first (early data, may be NULL; copied). */
wh_stream_t *wh_ws_stream(wh_stream_t *lower, const uint8_t *early, size_t early_len);

#endif

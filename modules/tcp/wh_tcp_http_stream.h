/*
 * wh_tcp_http_stream.h -- the tcp "http" header obfuscation as a stream
 * (see wh_tcp_http_stream.c; the codec is wh_tcp_http_header.c).
 */
#ifndef WH_TCP_HTTP_STREAM_H
#define WH_TCP_HTTP_STREAM_H

#include "wh_stream.h"
#include "wh_tcp_http_header.h"

#include <time.h>

/* Wraps lower (which it then owns) for a connection accepted at `accepted`. */
wh_stream_t *wh_tcp_http_stream(wh_stream_t *lower, const wh_http_obfs_conf_t *conf,
                                time_t accepted);

/* Reads the request head: WH_OK (valid, path matched), WH_AGAIN (with the
 * promise of an on_readable), WH_ERROR (the 400/404 answer goes out when
 * the stream is closed). */
int wh_tcp_http_accept(wh_stream_t *s);

/* After wh_tcp_http_accept() refused the request (not a failure below): 1
 * with what was read of it in read[0..*n) and its path (the request
 * line's target up to "?", *path NULL when the bytes have none), valid
 * until the stream goes; 0 otherwise. */
int wh_tcp_http_refused(wh_stream_t *s, const uint8_t **read, size_t *n, const char **path,
                        size_t *path_len);

#endif

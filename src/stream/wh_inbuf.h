/*
 * wh_inbuf.h -- bytes a transport has received for the relay that the
 * relay has not read yet.
 *
 * The stream transports that multiplex (an HTTP/2 or a QUIC stream) get a
 * stream's bytes when their connection's frames or packets arrive, not
 * when the relay reads; they hold them here until it does. The stream's
 * flow-control window bounds what one buffer can hold, and it is opened
 * again only as the relay reads, so the buffer never grows past it. A
 * codec keeps here what it read ahead of its stream (early data, the
 * bytes after a request head). The counterpart of wh_outbuf.h: empty, it
 * holds no memory; a drained buffer that had grown goes to a small pool
 * of the worker's, for the next one that receives (wh_inbuf.c).
 */
#ifndef WH_INBUF_H
#define WH_INBUF_H

#include "wh_core.h"

typedef struct {
    uint8_t *data;
    uint32_t pos, len, cap;
} wh_inbuf_t;

static inline size_t
wh_inbuf_size(const wh_inbuf_t *ib)
{
    return ib->len - ib->pos;
}

/* Keeps p[0..n) after what waits. WH_OK, or WH_ERROR without memory. */
int wh_inbuf_append(wh_inbuf_t *ib, const void *p, size_t n);

/* An empty buffer takes a copy of exactly p[0..n): bytes a stream read
 * ahead (early data, a body read with its head). WH_OK, or WH_ERROR. */
int wh_inbuf_set(wh_inbuf_t *ib, const void *p, size_t n);

/* Room for at least n more bytes at the tail (from the pool, or grown):
 * where to put them, and in *room how many fit; the caller adds what it
 * put to len. NULL without memory. */
uint8_t *wh_inbuf_reserve(wh_inbuf_t *ib, size_t n, size_t *room);

/* Forgets the first n bytes; the memory goes once all are. */
void wh_inbuf_drop(wh_inbuf_t *ib, size_t n);

/* Moves up to size bytes to buf; the memory goes once all is read. */
size_t wh_inbuf_read(wh_inbuf_t *ib, void *buf, size_t size);

void wh_inbuf_free(wh_inbuf_t *ib);

#endif

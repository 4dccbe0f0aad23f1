/*
 * wh_outbuf.h -- bytes a layer has taken from the relay but the stream below
 * has not taken yet.
 *
 * Every layer that frames what it sends (WebSocket frames, the tcp "http"
 * header's response head, HTTP/1.1 chunks, HTTP/2 frames) writes a whole
 * unit below and must keep the part that did not fit until the stream
 * below is writable again. This is that part, in one place: empty, it holds
 * no memory.
 */
#ifndef WH_OUTBUF_H
#define WH_OUTBUF_H

#include "wh_stream.h"

typedef struct {
    uint8_t *data;
    uint32_t pos, len;
} wh_outbuf_t;

static inline int
wh_outbuf_empty(const wh_outbuf_t *ob)
{
    return ob->pos == ob->len;
}

/* Writes p[0..n) below after what waits, keeping what is not taken (lower
 * then promised on_writable). WH_OK, or WH_ERROR with lower->err set. */
int wh_outbuf_send(wh_outbuf_t *ob, wh_stream_t *lower, const void *p, size_t n);
/* The same for iov's pieces, one after another. */
int wh_outbuf_sendv(wh_outbuf_t *ob, wh_stream_t *lower, const struct iovec *iov, int iovcnt);

/* Writes what waits: WH_OK when nothing is left, WH_AGAIN (lower promised
 * on_writable), WH_ERROR. */
int wh_outbuf_flush(wh_outbuf_t *ob, wh_stream_t *lower);

void wh_outbuf_free(wh_outbuf_t *ob);

/* The flow op of a layer whose only output buffer is ob: the lower
 * stream's flow plus what waits here. */
static inline int
wh_outbuf_flow(const wh_outbuf_t *ob, wh_stream_t *lower, wh_stream_flow_t *f)
{
    if (wh_stream_flow(lower, f) != WH_OK) return WH_DECLINED;
    f->unacked += ob->len - ob->pos;
    return WH_OK;
}

#endif

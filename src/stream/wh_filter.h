/*
 * wh_filter.h -- the base of a stream that wraps another one: a codec (a
 * WebSocket, the tcp "http" header, HTTP/1.1 chunks, TLS) over the lower
 * stream it owns (see wh_filter.c).
 */
#ifndef WH_FILTER_H
#define WH_FILTER_H

#include "wh_stream.h"
#include "wh_inbuf.h"
#include "wh_outbuf.h"

typedef struct wh_filter_s wh_filter_t;

#define WH_FILTER_IOV 16

/* The codec's table: its stream ops first, so s->ops is this table too. */
typedef struct {
    /* read, write and shutdown_write are the codec's; wait, flow and
     * destroy are usually the base's (wh_filter_wait...) */
    wh_stream_ops_t stream;
    /* offsetof the codec's wh_outbuf_t; 0 when it has none */
    size_t out;
    /* offsetof the codec's wh_inbuf_t of bytes read ahead of the stream
     * (filled by wh_filter_new, freed with the filter); 0: none */
    size_t ahead;
    /* for wh_filter_write: frames up to n bytes of p as one unit to go
     * below whole, in at most WH_FILTER_IOV pieces (its own bytes and
     * p's, so that p's need not be copied); returns the bytes of p it
     * carries */
    size_t (*encode)(wh_filter_t *f, const uint8_t *p, size_t n, struct iovec *iov,
                     int *iovcnt);
    /* the upper events that lower events fulfil; NULL: the same ones */
    int (*lower_event)(wh_filter_t *f, int events);
    /* for wh_filter_splice_fd: whether the codec holds bytes of its own;
     * NULL: always (every byte is framed) */
    int (*holds)(wh_filter_t *f);
    /* on destroy, before the lower stream is closed: the codec's last
     * bytes (through wh_filter_send) and its memory, not the struct */
    void (*release)(wh_filter_t *f);
    /* for wh_filter_flow, once what waits here and below is counted: adds
     * what the peer still lacks that only the codec can tell; NULL: none */
    void (*lacks)(wh_filter_t *f, wh_stream_flow_t *fl);
} wh_filter_ops_t;

/* The first member of the codec's struct, which it calloc()s. */
struct wh_filter_s {
    wh_stream_t s;
    wh_stream_t *lower;         /* owned: closed with the filter */
};

#define wh_filter_of(s)     wh_container_of(s, wh_filter_t, s)

/* The stream ops of a codec that keeps the base's wait, splice_fd (with
 * holds), flow and destroy. */
#define WH_FILTER_STREAM(nm, rd, wr, shut)                                      \
    { .name = nm, .read = rd, .write = wr, .shutdown_write = shut,              \
      .wait = wh_filter_wait, .splice_fd = wh_filter_splice_fd,                 \
      .flow = wh_filter_flow, .destroy = wh_filter_destroy }

/* The codec's struct of size bytes, zeroed, its filter taking lower over
 * (its callbacks are the filter's from now on), with a copy of
 * ahead[0..n) in the codec's ahead buffer; NULL without memory, lower
 * untouched. */
void *wh_filter_new(size_t size, const wh_filter_ops_t *ops, wh_stream_t *lower,
                    const void *ahead, size_t n);

/* Writes p[0..n) below after what is pending: WH_OK, or WH_ERROR with the
 * filter's err set. */
int wh_filter_send(wh_filter_t *f, const void *p, size_t n);
/* Writes what is pending: WH_OK when nothing is left, WH_AGAIN with the
 * promise of on_writable, WH_ERROR with err set. */
int wh_filter_flush(wh_filter_t *f);
/* Ends the lower stream's direction once what is pending is out. */
int wh_filter_shutdown(wh_filter_t *f);
/* Promises upper events, which come once the lower stream signals lower. */
void wh_filter_await(wh_filter_t *f, int upper, int lower);

/* Stream ops for the codec's table. */
ssize_t wh_filter_write(wh_stream_t *s, const void *buf, size_t size);    /* with encode */
void wh_filter_wait(wh_stream_t *s, int events);
int wh_filter_splice_fd(wh_stream_t *s);                                   /* with holds */
int wh_filter_flow(wh_stream_t *s, wh_stream_flow_t *f);
void wh_filter_destroy(wh_stream_t *s);

/* Closes the filter without a word below (no release; freed once no
 * callback holds it) and gives the lower stream back, its callbacks unset:
 * a codec that turns out not to apply (a fallback takes the connection).
 * Only for codecs whose memory is the base's (pending output, bytes read
 * ahead). */
wh_stream_t *wh_filter_detach(wh_stream_t *s);

#endif

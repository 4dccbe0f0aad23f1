/*
 * wh_stream.h -- THE seam: one byte stream, whatever carries it.
 *
 * Every transport (a TCP connection, a TLS session over any of the others,
 * a WebSocket, an HTTP/2 or QUIC stream, an mKCP session) and every
 * upstream (a socket, the built-in echo) is a wh_stream_t. The relay
 * (wh_relay.c) moves bytes between two of them and knows nothing else; a
 * transport knows nothing of upstreams.
 *
 * Contract, for implementers and for the relay:
 *  - read() returns >0 bytes, 0 at end of stream, WH_AGAIN or WH_ERROR.
 *    write() returns the bytes taken (>0; it copies or sends them before it
 *    returns, so the caller may reuse its buffer), WH_AGAIN or WH_ERROR.
 *    On WH_ERROR the stream's err says why (a wh_err_* constant).
 *  - WH_AGAIN, or a short write, is a promise: the stream calls
 *    on_readable (after WH_AGAIN from read) or on_writable (after WH_AGAIN
 *    or a short write) once, when trying again may succeed -- including for
 *    bytes held inside a library that no fd will signal. wait() asks for the
 *    same promise without a read or write (the relay uses it around
 *    splice(2)). Notifications are one-shot: a stream nobody waits on calls
 *    nothing, which is how back-pressure works: the relay stops reading a
 *    side simply by not reading it.
 *  - An asynchronous failure (a refused connect) sets err and fires
 *    whichever callback is awaited; a failed connect's err is the system's
 *    reason (strerror), errno being long gone by then.
 *  - shutdown_write() ends the direction towards the peer (FIN, close
 *    frame, END_STREAM...) after what was written.
 *  - wh_stream_close() may be called from inside a callback: the memory is
 *    released when the callback returns (redis' connhelpers habit).
 *  - flow() says how far the peer is in taking what was written: bytes
 *    written and not yet acknowledged by the peer (in a layer's buffer,
 *    the kernel's send queue or in flight), and the peer's receive window,
 *    which grows back as the peer's application reads. WH_DECLINED (or no
 *    flow op) when the stream cannot tell. The relay uses it to close a
 *    stream whose upstream ended only once the client has everything.
 *  - The promise has one record, want: what read, write or wait answered
 *    WH_AGAIN for (wh_stream_want). An implementation keeps it there and
 *    fulfils it with wh_stream_ready(), which calls only what is awaited
 *    and forgets it, so a promise is kept once. A stream whose readiness
 *    comes from its own code rather than from an fd (an HTTP/2, QUIC or
 *    mKCP stream, the echo) embeds a wh_posted_stream_t and fulfils it with
 *    wh_stream_ready_later(), from the posted queue, never from inside the
 *    caller's read or write.
 *  - writev() is write() of its pieces one after another, as one write:
 *    a stream that sends or seals straight from the pieces (a socket, a
 *    TLS 1.3 session) has one, so that a framing layer above need not join
 *    its headers and the relay's bytes in a buffer first. Without one,
 *    wh_stream_writev() joins them.
 *  - splice_fd() returns a plain kernel socket that holds no bytes in user
 *    space, or -1; when both sides have one, the relay moves bytes with
 *    splice(2) and never copies them through user space.
 */
#ifndef WH_STREAM_H
#define WH_STREAM_H

#include "wh_core.h"
#include "wh_event.h"

#include <sys/uio.h>

#define WH_EV_READ  1
#define WH_EV_WRITE 2

typedef struct wh_stream_s wh_stream_t;

typedef struct {
    uint64_t unacked;       /* written, not yet acknowledged by the peer */
    uint64_t window;        /* the peer's advertised receive window; 0 if none */
} wh_stream_flow_t;

typedef struct {
    const char *name;
    ssize_t (*read)(wh_stream_t *s, void *buf, size_t size);
    ssize_t (*write)(wh_stream_t *s, const void *buf, size_t size);
    ssize_t (*writev)(wh_stream_t *s, const struct iovec *iov, int iovcnt);   /* may be NULL */
    int (*shutdown_write)(wh_stream_t *s);
    void (*wait)(wh_stream_t *s, int events);
    int (*splice_fd)(wh_stream_t *s);           /* may be NULL: never */
    int (*flow)(wh_stream_t *s, wh_stream_flow_t *f);   /* may be NULL: cannot tell */
    void (*destroy)(wh_stream_t *s);            /* release everything, the memory too */
} wh_stream_ops_t;

struct wh_stream_s {
    const wh_stream_ops_t *ops;
    void *data;                                  /* the relay's */
    void (*on_readable)(wh_stream_t *s);
    void (*on_writable)(wh_stream_t *s);
    const char *err;                             /* why the last WH_ERROR */
    unsigned refs;
    uint8_t want;                                /* WH_EV_* promised */
    unsigned closed:1;
    unsigned shut_pending:1;                     /* a filter's: shutdown once its bytes are out */
};

/* A stream that delivers readiness from the posted queue. */
typedef struct {
    wh_stream_t s;
    wh_posted_t posted;
    uint8_t ready;                               /* WH_EV_* to deliver */
} wh_posted_stream_t;

/* The implementation's struct around the stream s (its first member). */
#define wh_stream_impl(s, type) wh_container_of(s, type, s)

static inline ssize_t
wh_stream_read(wh_stream_t *s, void *buf, size_t size)
{
    return s->ops->read(s, buf, size);
}

static inline ssize_t
wh_stream_write(wh_stream_t *s, const void *buf, size_t size)
{
    return s->ops->write(s, buf, size);
}

/* write() of iov's pieces, through the stream's writev when it has one */
ssize_t wh_stream_writev(wh_stream_t *s, const struct iovec *iov, int iovcnt);
/* ...and without: the pieces joined in a buffer of the worker, written
 * (a buffer at a time where they are longer) */
ssize_t wh_stream_write_joined(wh_stream_t *s, const struct iovec *iov, int iovcnt);

/* Copies the bytes of iov[0..iovcnt) that come after the first skip, at
 * most max of them, to dst; returns how many. */
size_t wh_iov_copy(uint8_t *dst, const struct iovec *iov, int iovcnt, size_t skip, size_t max);
size_t wh_iov_len(const struct iovec *iov, int iovcnt);

static inline int
wh_stream_shutdown_write(wh_stream_t *s)
{
    return s->ops->shutdown_write(s);
}

static inline void
wh_stream_wait(wh_stream_t *s, int events)
{
    s->ops->wait(s, events);
}

static inline int
wh_stream_splice_fd(wh_stream_t *s)
{
    return s->ops->splice_fd ? s->ops->splice_fd(s) : -1;
}

static inline int
wh_stream_flow(wh_stream_t *s, wh_stream_flow_t *f)
{
    return s->ops->flow ? s->ops->flow(s, f) : WH_DECLINED;
}

/* For implementers: call the awaited callbacks for events, holding a
 * reference so a close inside them is deferred. */
void wh_stream_notify(wh_stream_t *s, int events);

static inline void
wh_stream_want(wh_stream_t *s, int events)
{
    s->want |= events;
}

/* Keeps the promise for those of events that are awaited, now. */
void wh_stream_ready(wh_stream_t *s, int events);

void wh_posted_stream_init(wh_posted_stream_t *ps);
/* Keeps it from the posted queue; nothing if none of events is awaited. */
void wh_stream_ready_later(wh_posted_stream_t *ps, int events);
/* Before the memory goes: drops a delivery still queued. */
void wh_posted_stream_cancel(wh_posted_stream_t *ps);
void wh_stream_close(wh_stream_t *s);

#endif

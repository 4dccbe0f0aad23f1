/*
 * wh_coalesce.h -- when a stream may hold back what its client sends, so
 * that the relay wakes once per batch rather than once per write the
 * client makes (receive_coalesce).
 *
 * A V2Ray client uploading writes a few KiB at a time (WebSocket frames,
 * QUIC packets), and each write would otherwise cost the worker a wake-up
 * and the upstream a send. The policy is one for every stream that holds:
 * the evidence that a client streams (reads of WH_COALESCE_READ bytes or
 * more, WH_COALESCE_RUN in a row), the timer that bounds a hold (the
 * directive's delay), and the back-off after a hold that ran out finding
 * the client paused (less than WH_COALESCE_STREAMING in), which doubles
 * the evidence asked next time, so request/response traffic, even with
 * large requests, is almost never held. A hold that runs out finding more
 * is a client that streams slower than a batch per delay: it stays held,
 * and its relay hears of it once per delay. How a stream holds is its
 * own: a socket with a receive low-water mark, a multiplexed stream by not
 * signalling its relay until a batch is in, a QUIC listener's socket
 * (wh_udp.c) by being read once per delay rather than polled.
 */
#ifndef WH_COALESCE_H
#define WH_COALESCE_H

#include "wh_core.h"
#include "wh_event.h"

#define WH_COALESCE_READ      1024    /* a read this big says the peer streams */
#define WH_COALESCE_RUN       4       /* such reads in a row before a stream is held */
#define WH_COALESCE_BYTES     65536   /* the batch a held stream waits for */
/* a socket's batch: the kernel keeps it, in the buffer the window gives
 * the client anyway, so it may be larger than what a multiplexed stream
 * keeps in its own: four relay chunks, one wake-up where there were four */
#define WH_COALESCE_LOWAT     (4 * WH_COALESCE_BYTES)
#define WH_COALESCE_STREAMING 16384   /* a hold that ran out finding less: a pause */
#define WH_COALESCE_BACKOFF   6       /* a pause doubles the run, up to 4 << 6 */

typedef struct {
    ev_timer timer;         /* repeat: the delay; 0 = never hold */
    uint16_t run;           /* reads of WH_COALESCE_READ or more in a row */
    uint8_t backoff;        /* pauses since the client last streamed a hold's worth */
    uint8_t on;             /* holding */
} wh_coalesce_t;

/* Never holding until wh_coalesce_delay() gives it a delay; cb is the
 * timer's, with data in w->data. */
void wh_coalesce_init(wh_coalesce_t *c, void (*cb)(struct ev_loop *, ev_timer *, int), void *data);

static inline void
wh_coalesce_delay(wh_coalesce_t *c, double delay)
{
    c->timer.repeat = delay;
}

/* A read of n bytes into room for size. 1: the stream streams, hold it
 * from now on (the caller turns its holding on, then sets on). */
int wh_coalesce_read(wh_coalesce_t *c, size_t n, size_t size);

/* Holding, and what is in is short of a batch: the wait is bounded. */
void wh_coalesce_wait(wh_coalesce_t *c);

/* A batch came in time. */
void wh_coalesce_batch(wh_coalesce_t *c);

/* The wait ran out with queued bytes in (the timer's callback tells it).
 * 0: the client paused, stop holding (the caller turns its holding off);
 * 1: it still streams, only slower than a batch per delay: keep holding. */
int wh_coalesce_expired(wh_coalesce_t *c, size_t queued);

/* Holding ends for good (the stream goes, or cannot hold). */
void wh_coalesce_stop(wh_coalesce_t *c);

#endif

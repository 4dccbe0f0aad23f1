/*
 * wh_ws_stream.c -- a server WebSocket as a stream (spec 4.4).
 *
 * Reading: bytes from below are read straight into the relay's buffer and
 * decoded there in place (wh_ws_decode): the payload of every data frame,
 * binary or text, fragmented or not, is the stream; a ping is answered with
 * a pong at once; a close is answered with the same code and ends the
 * stream; a violation sends close 1002 and fails the stream as bad input.
 *
 * Writing: each write becomes binary frames of at most WH_WS_FRAME bytes,
 * header and payload built in one per-worker buffer so they go below in one
 * write (one TLS record); what the layer below does not take waits in a
 * stash sized to the remainder, as in the relay, so an idle WebSocket holds
 * no buffer: its whole state is this struct.
 *
 * Ending (spec 1.2, 4.4): there is no half-close. shutdown_write sends
 * nothing; close 1000 goes out when the whole stream is destroyed, which
 * the relay delays until the client has everything (V2Ray's client takes
 * a close frame for an error and drops what it still buffers). A close
 * from the peer is answered with its code and ends the layer below; the
 * stream reads as ended from then on, and what the upstream still sends
 * has nobody to go to and is dropped.
 */
#include "wh_ws_stream.h"
#include "wh_ws_frame.h"
#include "wh_outbuf.h"
#include "wh_log.h"

/* header (4) + payload = 16384: one full TLS record */
#define WH_WS_FRAME 16380

typedef struct {
    wh_stream_t s;
    wh_stream_t *lower;
    wh_ws_decoder_t dec;
    uint8_t *early;             /* early data, then nothing */
    uint32_t early_len;
    wh_outbuf_t out;            /* frame bytes not yet taken below */
    uint8_t want;
    unsigned eof:1;             /* the peer's close was seen */
    unsigned closing:1;         /* our close frame is queued */
    unsigned shut_pending:1;
} wh_ws_stream_t;

static uint8_t frame_buf[10 + WH_WS_FRAME];

static int
send_bytes(wh_ws_stream_t *ws, const uint8_t *p, size_t n)
{
    if (wh_outbuf_send(&ws->out, ws->lower, p, n) != WH_OK) {
        ws->s.err = ws->lower->err;
        return WH_ERROR;
    }
    return WH_OK;
}

static void
lower_readable(wh_stream_t *lower)
{
    wh_ws_stream_t *ws = lower->data;
    int ev = ws->want & WH_EV_READ;

    ws->want &= ~ev;
    wh_stream_notify(&ws->s, ev);
}

static void
lower_writable(wh_stream_t *lower)
{
    wh_ws_stream_t *ws = lower->data;
    int ev;

    switch (wh_outbuf_flush(&ws->out, lower)) {
    case WH_AGAIN:
        return;
    case WH_ERROR:
        ws->s.err = lower->err;
        wh_stream_notify(&ws->s, ws->want);         /* they will see the error */
        return;
    }
    if (ws->shut_pending) {
        ws->shut_pending = 0;
        wh_stream_shutdown_write(lower);
    }
    ev = ws->want & WH_EV_WRITE;
    ws->want &= ~ev;
    wh_stream_notify(&ws->s, ev);
}

/* Acts on what the decoder saw: pong, close reply, violation. */
static int
answer_control(wh_ws_stream_t *ws)
{
    uint8_t f[2 + 2 + 125];
    size_t n;

    if (ws->dec.pong_pending && !ws->closing) {
        ws->dec.pong_pending = 0;
        n = wh_ws_pong_frame(f, ws->dec.pong, ws->dec.pong_len);
        if (send_bytes(ws, f, n) != WH_OK) return WH_ERROR;
    }
    if (ws->dec.close_code && !ws->closing) {
        ws->closing = 1;
        if (ws->dec.close_received) {
            /* the same code back, no reason; an empty close for an empty one */
            n = ws->dec.close_code == 1005 ? wh_ws_close_frame(f, 0, NULL)
                                           : wh_ws_close_frame(f, ws->dec.close_code, NULL);
        } else {
            n = wh_ws_close_frame(f, ws->dec.close_code, ws->dec.close_reason);
        }
        if (send_bytes(ws, f, n) != WH_OK) return WH_ERROR;
        /* then the TCP connection ends (spec 4.4), once the frame is out */
        if (!wh_outbuf_empty(&ws->out)) {
            ws->shut_pending = 1;
        } else {
            wh_stream_shutdown_write(ws->lower);
        }
    }
    return WH_OK;
}

static ssize_t
ws_read(wh_stream_t *s, void *buf, size_t size)
{
    wh_ws_stream_t *ws = (wh_ws_stream_t *) s;
    ssize_t n;
    size_t data, got;

    if (ws->early != NULL) {
        n = wh_min(size, (size_t) ws->early_len);
        memcpy(buf, ws->early, n);
        memmove(ws->early, ws->early + n, ws->early_len - n);
        ws->early_len -= n;
        if (ws->early_len == 0) {
            free(ws->early);
            ws->early = NULL;
        }
        return n;
    }
    /* as many frames as fit: the relay writes on what one read returns */
    if (ws->closing && !ws->dec.close_code) {
        return 0;       /* we closed (spec 4.4): nothing more is read */
    }
    for (got = 0;;) {
        if (ws->dec.close_code) {
            if (got > 0) return got;
            if (ws->dec.close_received) return 0;
            s->err = wh_err_bad_input;
            return WH_ERROR;
        }
        n = wh_stream_read(ws->lower, (uint8_t *) buf + got, size - got);
        if (n == WH_AGAIN) {
            if (got > 0) return got;
            ws->want |= WH_EV_READ;
            return WH_AGAIN;
        }
        if (n <= 0) {
            if (got > 0) return got;        /* the end is seen again next time */
            if (n < 0) s->err = ws->lower->err;
            return n;       /* the connection ended without a close frame */
        }
        data = wh_ws_decode(&ws->dec, (uint8_t *) buf + got, n);
        if (answer_control(ws) != WH_OK) return WH_ERROR;
        got += data;
        if (size - got < 4096 && got > 0) return got;
    }
}

static ssize_t
ws_write(wh_stream_t *s, const void *buf, size_t size)
{
    wh_ws_stream_t *ws = (wh_ws_stream_t *) s;
    size_t taken = 0, n, h;
    int rc;

    if (s->err) return WH_ERROR;
    rc = wh_outbuf_flush(&ws->out, ws->lower);
    if (rc == WH_ERROR) {
        s->err = ws->lower->err;
        return WH_ERROR;
    }
    if (rc == WH_AGAIN) {
        ws->want |= WH_EV_WRITE;
        return WH_AGAIN;
    }
    if (ws->closing) {
        /* the peer closed: what the upstream still says has nobody to go to */
        return size;
    }
    while (taken < size && wh_outbuf_empty(&ws->out)) {
        n = wh_min(size - taken, (size_t) WH_WS_FRAME);
        h = wh_ws_frame_header(frame_buf, 2, n);
        memcpy(frame_buf + h, (const uint8_t *) buf + taken, n);
        /* a frame is promised whole: its tail waits if it must */
        if (send_bytes(ws, frame_buf, h + n) != WH_OK) {
            return taken > 0 ? (ssize_t) taken : WH_ERROR;
        }
        taken += n;
    }
    if (!wh_outbuf_empty(&ws->out)) ws->want |= WH_EV_WRITE;
    return taken;
}

/* No half-close in a websocket (spec 1.2, 4.4): V2Ray's client takes a
 * close frame for an error and drops what it still buffers, so the close
 * frame waits for the end of the whole stream (ws_destroy), which the
 * relay delays until the client has acknowledged everything. */
static int
ws_shutdown_write(wh_stream_t *s)
{
    return WH_OK;
}

static void
ws_wait(wh_stream_t *s, int events)
{
    wh_ws_stream_t *ws = (wh_ws_stream_t *) s;

    ws->want |= events;
    wh_stream_wait(ws->lower, events);
}

static int
ws_flow(wh_stream_t *s, wh_stream_flow_t *f)
{
    wh_ws_stream_t *ws = (wh_ws_stream_t *) s;

    return wh_outbuf_flow(&ws->out, ws->lower, f);
}

static void
ws_destroy(wh_stream_t *s)
{
    wh_ws_stream_t *ws = (wh_ws_stream_t *) s;

    if (!ws->closing && s->err == NULL && wh_outbuf_empty(&ws->out)) {
        uint8_t f[4];
        /* the stream is over: say so, best effort (never inside a frame
         * still waiting to go out) */
        (void) wh_stream_write(ws->lower, f, wh_ws_close_frame(f, WH_WS_CLOSE_NORMAL, NULL));
    }
    free(ws->early);
    wh_outbuf_free(&ws->out);
    wh_stream_close(ws->lower);
    free(ws);
}

static const wh_stream_ops_t ws_ops = {
    .name = "websocket",
    .read = ws_read,
    .write = ws_write,
    .shutdown_write = ws_shutdown_write,
    .wait = ws_wait,
    .splice_fd = NULL,
    .flow = ws_flow,
    .destroy = ws_destroy,
};

wh_stream_t *
wh_ws_stream(wh_stream_t *lower, const uint8_t *early, size_t early_len)
{
    wh_ws_stream_t *ws = calloc(1, sizeof(*ws));

    if (ws == NULL) {
        return NULL;
    }
    if (early_len > 0) {
        ws->early = malloc(early_len);
        if (ws->early == NULL) {
            free(ws);
            return NULL;
        }
        memcpy(ws->early, early, early_len);
        ws->early_len = early_len;
    }
    ws->s.ops = &ws_ops;
    ws->lower = lower;
    wh_ws_decoder_init(&ws->dec);
    lower->data = ws;
    lower->on_readable = lower_readable;
    lower->on_writable = lower_writable;
    return &ws->s;
}

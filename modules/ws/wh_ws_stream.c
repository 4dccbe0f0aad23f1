/*
 * wh_ws_stream.c -- a server WebSocket as a stream (spec 4.4).
 *
 * A codec on the filter base (src/stream/wh_filter.c), which owns the
 * socket or TLS stream below, the frame bytes it has not taken yet and the
 * promise to the relay; this file is the WebSocket part.
 *
 * Reading: bytes from below are read straight into the relay's buffer and
 * decoded there in place (wh_ws_decode): the payload of every data frame,
 * binary or text, fragmented or not, is the stream; a ping is answered with
 * a pong at once; a close is answered with the same code and ends the
 * stream; a violation sends close 1002 and fails the stream as bad input.
 *
 * Writing: each write becomes binary frames of at most WH_WS_FRAME bytes
 * that go below in one write (a TLS stream seals a frame a record), the
 * headers from a per-worker array and the payloads from the relay's
 * buffer, never copied; what the layer below does not take waits in the
 * base's pending output, sized to the remainder, so an idle WebSocket
 * holds no buffer: its whole state is this struct.
 *
 * Ending (spec 1.2, 4.4): there is no half-close. shutdown_write sends
 * nothing; close 1000 goes out when the whole stream is destroyed, which
 * the relay delays until the client has everything (V2Ray's client takes
 * a close frame for an error and drops what it still buffers): the one
 * ping this server sends tells when its reader has read it all
 * (ws_lacks). A close
 * from the peer is answered with its code and ends the layer below; the
 * stream reads as ended from then on, and what the upstream still sends
 * has nobody to go to and is dropped.
 */
#include "wh_ws_stream.h"
#include "wh_ws_frame.h"
#include "wh_filter.h"
#include "wh_log.h"

/* header (4) + payload = 16384: one full TLS record */
#define WH_WS_FRAME 16380
/* payload a write below carries: a whole relay chunk, so that 64 KiB read
 * from the upstream leave in one write (four full frames and a short one,
 * which a TLS stream below seals as five records in one write), not in a
 * second write for the 16 bytes that do not fit four frames */
#define WH_WS_UNIT  65536
#define WH_WS_BATCH ((WH_WS_UNIT + WH_WS_FRAME - 1) / WH_WS_FRAME)
/* seconds a ping of ws_lacks is owed an answer */
#define WH_WS_PONG_WAIT 10

typedef struct {
    wh_filter_t f;
    wh_ws_decoder_t dec;
    wh_inbuf_t early;           /* early data, then nothing */
    wh_outbuf_t out;            /* frame bytes not yet taken below */
    unsigned eof:1;             /* the peer's close was seen */
    unsigned closing:1;         /* our close frame is queued */
    unsigned pinged:1;          /* the ping of ws_lacks went out... */
    uint32_t ping_at;           /* ...at this second */
} wh_ws_stream_t;

#define ws_of(s) wh_container_of(s, wh_ws_stream_t, f.s)

static uint8_t headers[WH_WS_BATCH][10];
_Static_assert(2 * WH_WS_BATCH <= WH_FILTER_IOV, "a unit's pieces");

/* Acts on what the decoder saw: pong, close reply, violation. */
static int
answer_control(wh_ws_stream_t *ws)
{
    uint8_t f[2 + 2 + 125];
    size_t n;

    if (ws->dec.pong_pending && !ws->closing) {
        ws->dec.pong_pending = 0;
        n = wh_ws_control_frame(f, WH_WS_OP_PONG, ws->dec.pong, ws->dec.pong_len);
        if (wh_filter_send(&ws->f, f, n) != WH_OK) return WH_ERROR;
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
        if (wh_filter_send(&ws->f, f, n) != WH_OK) return WH_ERROR;
        /* then the TCP connection ends (spec 4.4), once the frame is out */
        (void) wh_filter_shutdown(&ws->f);
    }
    return WH_OK;
}

static ssize_t
ws_read(wh_stream_t *s, void *buf, size_t size)
{
    wh_ws_stream_t *ws = ws_of(s);
    ssize_t n;
    size_t data, got;

    if (ws->early.data != NULL) {
        return wh_inbuf_read(&ws->early, buf, size);
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
        n = wh_stream_read(ws->f.lower, (uint8_t *) buf + got, size - got);
        if (n == WH_AGAIN) {
            if (got > 0) return got;
            wh_stream_want(s, WH_EV_READ);
            return WH_AGAIN;
        }
        if (n <= 0) {
            if (got > 0) return got;        /* the end is seen again next time */
            if (n < 0) s->err = ws->f.lower->err;
            return n;       /* the connection ended without a close frame */
        }
        data = wh_ws_decode(&ws->dec, (uint8_t *) buf + got, n);
        if (answer_control(ws) != WH_OK) return WH_ERROR;
        got += data;
        if (size - got < 4096 && got > 0) return got;
    }
}

/* Binary frames: each header, then its payload where the relay has it,
 * one write below (one TLS record a frame). */
static size_t
ws_encode(wh_filter_t *f, const uint8_t *p, size_t n, struct iovec *iov, int *iovcnt)
{
    size_t taken = 0, m;
    int i;

    n = wh_min(n, (size_t) WH_WS_UNIT);
    for (i = 0; taken < n; i++) {
        m = wh_min(n - taken, (size_t) WH_WS_FRAME);
        iov[2 * i].iov_base = headers[i];
        iov[2 * i].iov_len = wh_ws_frame_header(headers[i], 2, m);
        iov[2 * i + 1].iov_base = (void *) (p + taken);
        iov[2 * i + 1].iov_len = m;
        taken += m;
    }
    *iovcnt = 2 * i;
    return taken;
}

static ssize_t
ws_write(wh_stream_t *s, const void *buf, size_t size)
{
    wh_ws_stream_t *ws = ws_of(s);
    int rc;

    if (s->err) return WH_ERROR;
    if (!ws->closing) {
        return wh_filter_write(s, buf, size);
    }
    /* the peer closed: what the upstream still says has nobody to go to */
    rc = wh_filter_flush(&ws->f);
    return rc == WH_OK ? (ssize_t) size : rc;
}

/* No half-close in a websocket (spec 1.2, 4.4): V2Ray's client takes a
 * close frame for an error and drops what it still buffers, so the close
 * frame waits for the end of the whole stream (ws_release), which the
 * relay delays until the client has taken everything (ws_lacks). */
static int
ws_shutdown_write(wh_stream_t *s)
{
    return WH_OK;
}

/* The relay asks what the client still lacks before it ends the stream
 * (its linger, wh_relay.c). A V2Ray client's kernel acknowledges bytes
 * long before its reader takes them, and what the reader took but its
 * application has not yet is dropped on the close frame. Once every byte
 * is acknowledged, one ping goes out: its pong comes back only when the
 * client's reader has read every frame before it (pings are answered in
 * order), so until then the client lacks a byte. A client that does not
 * answer is believed after WH_WS_PONG_WAIT seconds. */
static void
ws_lacks(wh_filter_t *f, wh_stream_flow_t *fl)
{
    wh_ws_stream_t *ws = wh_container_of(f, wh_ws_stream_t, f);
    uint32_t now = (uint32_t) ev_now(wh_loop);
    uint8_t ping[2];

    if (ws->closing || f->s.err != NULL) {
        return;
    }
    if (!ws->pinged) {
        if (fl->unacked > 0
            || wh_filter_send(f, ping, wh_ws_control_frame(ping, WH_WS_OP_PING, NULL, 0)) != WH_OK)
        {
            return;
        }
        ws->pinged = 1;
        ws->ping_at = now;
        ws->dec.pong_received = 0;
    }
    if (!ws->dec.pong_received && now - ws->ping_at < WH_WS_PONG_WAIT) {
        fl->unacked++;
    }
}

static void
ws_release(wh_filter_t *f)
{
    wh_ws_stream_t *ws = wh_container_of(f, wh_ws_stream_t, f);
    uint8_t frame[4];

    if (!ws->closing && f->s.err == NULL) {
        /* the stream is over: say so, best effort, after what is pending
         * (a frame never goes inside another) */
        (void) wh_filter_send(f, frame, wh_ws_close_frame(frame, WH_WS_CLOSE_NORMAL, NULL));
    }
}

static const wh_filter_ops_t ws_ops = {
    .stream = WH_FILTER_STREAM("websocket", ws_read, ws_write, ws_shutdown_write),
    .out = offsetof(wh_ws_stream_t, out), .ahead = offsetof(wh_ws_stream_t, early),
    .encode = ws_encode, .release = ws_release, .lacks = ws_lacks,
};

wh_stream_t *
wh_ws_stream(wh_stream_t *lower, const uint8_t *early, size_t early_len)
{
    wh_ws_stream_t *ws = wh_filter_new(sizeof(*ws), &ws_ops, lower, early, early_len);

    if (ws == NULL) return NULL;
    wh_ws_decoder_init(&ws->dec);
    return &ws->f.s;
}

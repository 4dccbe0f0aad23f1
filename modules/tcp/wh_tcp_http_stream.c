/*
 * wh_tcp_http_stream.c -- the tcp "http" header obfuscation as a stream
 * (spec 3.3-3.5) over the socket or TLS stream below it.
 *
 * The request head is read during the handshake stage, before the upstream
 * is dialed (wh_tcp_http_accept); bytes after its blank line are handed to
 * the relay first. The response head is written lazily, in one write with
 * the first relayed bytes (one TCP segment, or one TLS record: the V2Ray
 * client needs the whole head in one read). If the stream ends before any
 * byte went to the client -- path mismatch, garbage, an upstream that could
 * not be reached or sent nothing -- the fixed 404/400 answer goes out
 * instead. Both heads are built from the accept time and a per-connection
 * seed, so nothing but 16 bytes is kept per connection for them.
 *
 * Once the head is answered and no byte is held here, splice_fd() exposes
 * the socket below, so an obfuscated plain connection relays at raw speed.
 */
#include "wh_tcp_http_header.h"
#include "wh_tcp_http_stream.h"
#include "wh_log.h"
#include "wh_outbuf.h"

#include <openssl/rand.h>

#define WH_HTTP_HEAD_MAX  8192
#define WH_HTTP_READ      2048
#define WH_HTTP_OUT_MAX   16384

typedef struct {
    wh_stream_t s;
    wh_stream_t *lower;
    const wh_http_obfs_conf_t *conf;
    uint8_t *in;                /* the request head, then the bytes after it */
    uint32_t in_pos, in_len;
    wh_outbuf_t out;            /* head and first bytes not yet taken below */
    uint32_t seed;
    time_t accepted;
    int16_t error;              /* 400 or 404 to answer if nothing was sent */
    uint8_t want;
    unsigned head_done:1;
    unsigned responded:1;
    unsigned shut_pending:1;
} wh_http_stream_t;

static uint32_t rng_state;

static uint32_t
seeded_rand(void)
{
    /* xorshift32: the picks only need to differ between connections */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void
lower_readable(wh_stream_t *lower)
{
    wh_http_stream_t *hs = lower->data;
    int ev = hs->want & WH_EV_READ;

    hs->want &= ~ev;
    wh_stream_notify(&hs->s, ev);
}

static void
lower_writable(wh_stream_t *lower)
{
    wh_http_stream_t *hs = lower->data;
    int ev;

    if (wh_outbuf_flush(&hs->out, lower) == WH_AGAIN) {
        return;
    }
    if (hs->shut_pending) {
        hs->shut_pending = 0;
        wh_stream_shutdown_write(hs->lower);
    }
    ev = hs->want & WH_EV_WRITE;
    hs->want &= ~ev;
    wh_stream_notify(&hs->s, ev);
}

int
wh_tcp_http_accept(wh_stream_t *s)
{
    wh_http_stream_t *hs = (wh_http_stream_t *) s;
    ssize_t n, rc;

    if (hs->in == NULL && (hs->in = malloc(WH_HTTP_HEAD_MAX + WH_HTTP_READ)) == NULL) {
        s->err = wh_err_io;
        return WH_ERROR;
    }
    for (;;) {
        n = wh_stream_read(hs->lower, hs->in + hs->in_len, WH_HTTP_READ);
        if (n == WH_AGAIN) {
            hs->want |= WH_EV_READ;
            return WH_AGAIN;
        }
        if (n <= 0) {
            /* a client that ends inside the head sent a bad head; one that
             * sent nothing just went away */
            s->err = n < 0 ? hs->lower->err : hs->in_len > 0 ? wh_err_bad_input : wh_err_closed;
            hs->error = 400;
            return WH_ERROR;
        }
        hs->in_len += n;
        rc = wh_http_obfs_request(hs->conf, hs->in, hs->in_len);
        if (rc > 0) {
            hs->in_pos = (uint32_t) rc;
            hs->head_done = 1;
            if (hs->in_pos == hs->in_len) {
                free(hs->in);
                hs->in = NULL;
                hs->in_pos = hs->in_len = 0;
            }
            return WH_OK;
        }
        if (rc < 0) {
            hs->error = rc == WH_HTTP_OBFS_404 ? 404 : 400;
            s->err = wh_err_bad_input;
            return WH_ERROR;
        }
        if (hs->in_len > WH_HTTP_HEAD_MAX) {
            hs->error = 400;
            s->err = wh_err_bad_input;
            return WH_ERROR;
        }
    }
}

static ssize_t
http_read(wh_stream_t *s, void *buf, size_t size)
{
    wh_http_stream_t *hs = (wh_http_stream_t *) s;
    ssize_t n;

    if (hs->in != NULL) {
        n = wh_min(size, (size_t) (hs->in_len - hs->in_pos));
        memcpy(buf, hs->in + hs->in_pos, n);
        hs->in_pos += n;
        if (hs->in_pos == hs->in_len) {
            free(hs->in);
            hs->in = NULL;
        }
        return n;
    }
    n = wh_stream_read(hs->lower, buf, size);
    if (n == WH_AGAIN) hs->want |= WH_EV_READ;
    if (n == WH_ERROR) s->err = hs->lower->err;
    return n;
}

/* The response head followed by up to WH_HTTP_OUT_MAX bytes of buf, as one
 * write below (one TCP segment or TLS record: spec 3.4). */
static ssize_t
respond(wh_http_stream_t *hs, const void *buf, size_t size)
{
    size_t hlen, take = wh_min(size, (size_t) WH_HTTP_OUT_MAX), max = hs->conf->resp_max + 1;
    uint8_t *first = malloc(max + take);
    int rc;

    if (first == NULL) {
        hs->s.err = wh_err_io;
        return WH_ERROR;
    }
    rng_state = hs->seed ? hs->seed : 1;
    hlen = wh_http_obfs_response(hs->conf, hs->accepted, seeded_rand, (char *) first, max);
    memcpy(first + hlen, buf, take);
    hs->responded = 1;
    rc = wh_outbuf_send(&hs->out, hs->lower, first, hlen + take);
    free(first);
    if (rc != WH_OK) {
        hs->s.err = hs->lower->err;
        return WH_ERROR;
    }
    return take;
}

static ssize_t
http_write(wh_stream_t *s, const void *buf, size_t size)
{
    wh_http_stream_t *hs = (wh_http_stream_t *) s;
    ssize_t taken = 0, n;

    switch (wh_outbuf_flush(&hs->out, hs->lower)) {
    case WH_ERROR:
        s->err = hs->lower->err;
        return WH_ERROR;
    case WH_AGAIN:
        hs->want |= WH_EV_WRITE;
        return WH_AGAIN;
    }
    if (!hs->responded) {
        taken = respond(hs, buf, size);
        if (taken < 0) return WH_ERROR;
        buf = (const uint8_t *) buf + taken;
        size -= taken;
    }
    if (size == 0) return taken;
    if (!wh_outbuf_empty(&hs->out)) {
        hs->want |= WH_EV_WRITE;        /* the head waits: the rest after it */
        return taken;
    }
    n = wh_stream_write(hs->lower, buf, size);
    if (n == WH_ERROR) {
        s->err = hs->lower->err;
        return taken > 0 ? taken : WH_ERROR;
    }
    if (n == WH_AGAIN) n = 0;
    if ((size_t) n < size) hs->want |= WH_EV_WRITE;
    taken += n;
    return taken > 0 ? taken : WH_AGAIN;
}

/* The fixed answer for a stream that ends with nothing sent (spec 3.5). */
static void
answer_error(wh_http_stream_t *hs)
{
    char buf[256];
    size_t n;

    if (hs->responded) {
        return;
    }
    hs->responded = 1;
    n = wh_http_obfs_error(hs->error ? hs->error : 400, hs->accepted, buf, sizeof(buf));
    (void) wh_stream_write(hs->lower, buf, n);     /* best effort, as V2Ray's */
}

static int
http_shutdown_write(wh_stream_t *s)
{
    wh_http_stream_t *hs = (wh_http_stream_t *) s;

    answer_error(hs);
    if (wh_outbuf_flush(&hs->out, hs->lower) == WH_AGAIN) {
        hs->shut_pending = 1;
        return WH_OK;
    }
    return wh_stream_shutdown_write(hs->lower);
}

static void
http_wait(wh_stream_t *s, int events)
{
    wh_http_stream_t *hs = (wh_http_stream_t *) s;

    hs->want |= events;
    wh_stream_wait(hs->lower, events);
}

static int
http_splice_fd(wh_stream_t *s)
{
    wh_http_stream_t *hs = (wh_http_stream_t *) s;

    if (!hs->head_done || !hs->responded || hs->in != NULL || !wh_outbuf_empty(&hs->out)) {
        return -1;
    }
    return wh_stream_splice_fd(hs->lower);
}

static int
http_flow(wh_stream_t *s, wh_stream_flow_t *f)
{
    wh_http_stream_t *hs = (wh_http_stream_t *) s;

    return wh_outbuf_flow(&hs->out, hs->lower, f);
}

static void
http_destroy(wh_stream_t *s)
{
    wh_http_stream_t *hs = (wh_http_stream_t *) s;

    if (!hs->responded) {
        answer_error(hs);
        wh_stream_shutdown_write(hs->lower);
    }
    free(hs->in);
    wh_outbuf_free(&hs->out);
    wh_stream_close(hs->lower);
    free(hs);
}

static const wh_stream_ops_t http_ops = {
    .name = "http-header",
    .read = http_read,
    .write = http_write,
    .shutdown_write = http_shutdown_write,
    .wait = http_wait,
    .splice_fd = http_splice_fd,
    .flow = http_flow,
    .destroy = http_destroy,
};

wh_stream_t *
wh_tcp_http_stream(wh_stream_t *lower, const wh_http_obfs_conf_t *conf, time_t accepted)
{
    wh_http_stream_t *hs = calloc(1, sizeof(*hs));

    if (hs == NULL) {
        return NULL;
    }
    hs->s.ops = &http_ops;
    hs->lower = lower;
    hs->conf = conf;
    hs->accepted = accepted;
    RAND_bytes((unsigned char *) &hs->seed, sizeof(hs->seed));
    lower->data = hs;
    lower->on_readable = lower_readable;
    lower->on_writable = lower_writable;
    return &hs->s;
}

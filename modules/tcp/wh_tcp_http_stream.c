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
 * A codec on the filter base (src/stream/wh_filter.c), which owns the
 * stream below, the head bytes it has not taken yet and the deferred
 * shutdown; this file is the obfuscation part.
 *
 * Once the head is answered and no byte is held here, splice_fd() exposes
 * the socket below, so an obfuscated plain connection relays at raw speed.
 */
#include "wh_tcp_http_header.h"
#include "wh_tcp_http_stream.h"
#include "wh_filter.h"
#include "wh_log.h"

#include <openssl/rand.h>

#define WH_HTTP_HEAD_MAX  8192
#define WH_HTTP_READ      2048
#define WH_HTTP_OUT_MAX   16384

typedef struct {
    wh_filter_t f;
    const wh_http_obfs_conf_t *conf;
    wh_inbuf_t in;              /* the request head, then the bytes after it */
    wh_outbuf_t out;            /* head and first bytes not yet taken below */
    time_t accepted;
    uint32_t seed;
    int16_t error;              /* 400 or 404 to answer if nothing was sent */
    unsigned head_done:1;
    unsigned responded:1;
} wh_http_stream_t;

#define http_of(s) wh_container_of(s, wh_http_stream_t, f.s)

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

int
wh_tcp_http_accept(wh_stream_t *s)
{
    wh_http_stream_t *hs = http_of(s);
    wh_inbuf_t *in = &hs->in;
    ssize_t n, rc;

    if (in->data == NULL) {
        if ((in->data = malloc(WH_HTTP_HEAD_MAX + WH_HTTP_READ)) == NULL) {
            s->err = wh_err_io;
            return WH_ERROR;
        }
        in->cap = WH_HTTP_HEAD_MAX + WH_HTTP_READ;
    }
    for (;;) {
        n = wh_stream_read(hs->f.lower, in->data + in->len, WH_HTTP_READ);
        if (n == WH_AGAIN) {
            wh_stream_want(s, WH_EV_READ);
            return WH_AGAIN;
        }
        if (n <= 0) {
            /* a client that ends inside the head sent a bad head; one that
             * sent nothing just went away */
            s->err = n < 0 ? hs->f.lower->err : in->len > 0 ? wh_err_bad_input : wh_err_closed;
            hs->error = 400;
            return WH_ERROR;
        }
        in->len += n;
        rc = wh_http_obfs_request(hs->conf, in->data, in->len);
        if (rc > 0) {
            in->pos = (uint32_t) rc;
            hs->head_done = 1;
            if (in->pos == in->len) {
                wh_inbuf_free(in);
            }
            return WH_OK;
        }
        if (rc < 0) {
            hs->error = rc == WH_HTTP_OBFS_404 ? 404 : 400;
            s->err = wh_err_bad_input;
            return WH_ERROR;
        }
        if (in->len > WH_HTTP_HEAD_MAX) {
            hs->error = 400;
            s->err = wh_err_bad_input;
            return WH_ERROR;
        }
    }
}

int
wh_tcp_http_refused(wh_stream_t *s, const uint8_t **read, size_t *n, const char **path,
                    size_t *path_len)
{
    wh_http_stream_t *hs = http_of(s);
    const uint8_t *p, *end, *sp;

    if (hs->error == 0 || hs->head_done || hs->in.len == 0 || hs->f.lower->err != NULL) {
        return 0;
    }
    *read = hs->in.data;
    *n = hs->in.len;
    *path = NULL;
    *path_len = 0;
    end = memchr(hs->in.data, '\n', hs->in.len) ?: hs->in.data + hs->in.len;
    sp = memchr(hs->in.data, ' ', end - hs->in.data);
    if (sp != NULL) {
        for (p = ++sp; p < end && *p != ' ' && *p != '?' && *p != '\r'; p++) { /* void */ }
        *path = (const char *) sp;
        *path_len = p - sp;
    }
    return 1;
}

static ssize_t
http_read(wh_stream_t *s, void *buf, size_t size)
{
    wh_http_stream_t *hs = http_of(s);
    ssize_t n;

    if (hs->in.data != NULL) {
        return wh_inbuf_read(&hs->in, buf, size);
    }
    n = wh_stream_read(hs->f.lower, buf, size);
    if (n == WH_AGAIN) wh_stream_want(s, WH_EV_READ);
    if (n == WH_ERROR) s->err = hs->f.lower->err;
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
        hs->f.s.err = wh_err_io;
        return WH_ERROR;
    }
    rng_state = hs->seed ? hs->seed : 1;
    hlen = wh_http_obfs_response(hs->conf, hs->accepted, seeded_rand, (char *) first, max);
    memcpy(first + hlen, buf, take);
    hs->responded = 1;
    rc = wh_filter_send(&hs->f, first, hlen + take);
    free(first);
    return rc == WH_OK ? (ssize_t) take : WH_ERROR;
}

static ssize_t
http_write(wh_stream_t *s, const void *buf, size_t size)
{
    wh_http_stream_t *hs = http_of(s);
    ssize_t taken = 0, n;
    int rc;

    rc = wh_filter_flush(&hs->f);
    if (rc != WH_OK) {
        return rc;
    }
    if (!hs->responded) {
        taken = respond(hs, buf, size);
        if (taken < 0) return WH_ERROR;
        buf = (const uint8_t *) buf + taken;
        size -= taken;
    }
    if (size == 0) return taken;
    if (!wh_outbuf_empty(&hs->out)) {
        wh_stream_want(s, WH_EV_WRITE);     /* the head waits: the rest after it */
        return taken;
    }
    /* past the head the bytes go below as they are, never copied */
    n = wh_stream_write(hs->f.lower, buf, size);
    if (n == WH_ERROR) {
        s->err = hs->f.lower->err;
        return taken > 0 ? taken : WH_ERROR;
    }
    if (n == WH_AGAIN) n = 0;
    if ((size_t) n < size) wh_stream_want(s, WH_EV_WRITE);
    taken += n;
    return taken > 0 ? taken : WH_AGAIN;
}

/* The fixed answer for a stream that ends with nothing sent (spec 3.5):
 * best effort, as V2Ray's. */
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
    (void) wh_filter_send(&hs->f, buf, n);
}

static int
http_shutdown_write(wh_stream_t *s)
{
    wh_http_stream_t *hs = http_of(s);

    answer_error(hs);
    return wh_filter_shutdown(&hs->f);
}

static int
http_holds(wh_filter_t *f)
{
    wh_http_stream_t *hs = wh_container_of(f, wh_http_stream_t, f);

    return !hs->head_done || !hs->responded || hs->in.data != NULL;
}

static void
http_release(wh_filter_t *f)
{
    wh_http_stream_t *hs = wh_container_of(f, wh_http_stream_t, f);

    if (!hs->responded) {
        answer_error(hs);
        wh_stream_shutdown_write(f->lower);
    }
}

static const wh_filter_ops_t http_ops = {
    .stream = WH_FILTER_STREAM("http-header", http_read, http_write, http_shutdown_write),
    .out = offsetof(wh_http_stream_t, out), .ahead = offsetof(wh_http_stream_t, in),
    .holds = http_holds, .release = http_release,
};

wh_stream_t *
wh_tcp_http_stream(wh_stream_t *lower, const wh_http_obfs_conf_t *conf, time_t accepted)
{
    wh_http_stream_t *hs = wh_filter_new(sizeof(*hs), &http_ops, lower, NULL, 0);

    if (hs == NULL) return NULL;
    hs->conf = conf;
    hs->accepted = accepted;
    RAND_bytes((unsigned char *) &hs->seed, sizeof(hs->seed));
    return &hs->f.s;
}

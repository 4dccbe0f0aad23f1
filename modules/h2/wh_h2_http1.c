/*
 * wh_h2_http1.c -- the http transport's HTTP/1.1 service (spec 5.6): V2Ray's
 * handler also answers HTTP/1.1 requests on its h2 port (over TLS with ALPN
 * http/1.1, or a plain h2c port without an upgrade), relaying the request
 * body upstream and the upstream's bytes back as a chunked response, as
 * Go's server writes a flushed response of unknown length. V2Ray clients
 * never use it; curl and friends do.
 *
 * The response head goes out as soon as the request is accepted, before
 * the upstream is dialed (spec 5.4). The request body is Content-Length
 * bytes or a chunked body; its end is the client's end of stream.
 */
#include "wh_h2.h"
#include "wh_log.h"
#include "wh_outbuf.h"

#define WH_H1_CHUNK_MAX 16384

enum { BODY_LENGTH, BODY_CHUNK_SIZE, BODY_CHUNK_DATA, BODY_CHUNK_CRLF, BODY_TRAILER, BODY_DONE };

typedef struct {
    wh_stream_t s;
    wh_stream_t *lower;
    uint8_t *pre;               /* body bytes read with the head */
    uint32_t pre_pos, pre_len;
    uint64_t left;              /* of the Content-Length body, or of the chunk */
    wh_outbuf_t out;            /* a chunk not yet taken below */
    uint8_t state;
    uint8_t want;
    char line[32];              /* a chunk-size line being read */
    uint8_t line_len;
    unsigned shut_pending:1;
} wh_h1_stream_t;

static uint8_t chunk_buf[WH_H1_CHUNK_MAX + 32];

static void
lower_readable(wh_stream_t *lower)
{
    wh_h1_stream_t *h = lower->data;
    int ev = h->want & WH_EV_READ;

    h->want &= ~ev;
    wh_stream_notify(&h->s, ev);
}

static void
lower_writable(wh_stream_t *lower)
{
    wh_h1_stream_t *h = lower->data;
    int ev;

    if (wh_outbuf_flush(&h->out, lower) == WH_AGAIN) {
        return;
    }
    if (h->shut_pending) {
        h->shut_pending = 0;
        wh_stream_shutdown_write(lower);
    }
    ev = h->want & WH_EV_WRITE;
    h->want &= ~ev;
    wh_stream_notify(&h->s, ev);
}

/* Decodes body bytes in place: what is payload moves to the front of buf. */
static ssize_t
decode(wh_h1_stream_t *h, uint8_t *buf, size_t n)
{
    size_t i = 0, out = 0, k;

    while (i < n && h->state != BODY_DONE) {
        switch (h->state) {
        case BODY_LENGTH:
        case BODY_CHUNK_DATA:
            k = (size_t) wh_min((uint64_t) (n - i), h->left);
            memmove(buf + out, buf + i, k);
            out += k;
            i += k;
            h->left -= k;
            if (h->left == 0) h->state = h->state == BODY_LENGTH ? BODY_DONE : BODY_CHUNK_CRLF;
            break;
        case BODY_CHUNK_CRLF:
            if (buf[i++] == '\n') h->state = BODY_CHUNK_SIZE;
            break;
        case BODY_CHUNK_SIZE:
        case BODY_TRAILER:
            if (buf[i] != '\n') {
                if (h->line_len >= sizeof(h->line) - 1 && h->state == BODY_CHUNK_SIZE) return -1;
                if (h->line_len < sizeof(h->line) - 1) h->line[h->line_len++] = (char) buf[i];
                i++;
                break;
            }
            i++;
            h->line[h->line_len] = '\0';
            if (h->state == BODY_TRAILER) {
                if (h->line_len == 0 || (h->line_len == 1 && h->line[0] == '\r')) h->state = BODY_DONE;
            } else {
                char *end;
                h->left = strtoull(h->line, &end, 16);
                if (end == h->line || (*end != '\r' && *end != ';' && *end != '\0')) return -1;
                h->state = h->left == 0 ? BODY_TRAILER : BODY_CHUNK_DATA;
            }
            h->line_len = 0;
            break;
        }
    }
    return out;
}

static ssize_t
h1_read(wh_stream_t *s, void *buf, size_t size)
{
    wh_h1_stream_t *h = (wh_h1_stream_t *) s;
    ssize_t n, d;

    for (;;) {
        if (h->state == BODY_DONE) return 0;
        if (h->pre != NULL) {
            n = wh_min(size, (size_t) (h->pre_len - h->pre_pos));
            memcpy(buf, h->pre + h->pre_pos, n);
            h->pre_pos += n;
            if (h->pre_pos == h->pre_len) {
                free(h->pre);
                h->pre = NULL;
            }
        } else {
            n = wh_stream_read(h->lower, buf, size);
            if (n == WH_AGAIN) {
                h->want |= WH_EV_READ;
                return WH_AGAIN;
            }
            if (n <= 0) {
                if (n < 0) s->err = h->lower->err;
                return n;
            }
        }
        d = decode(h, buf, n);
        if (d < 0) {
            s->err = wh_err_bad_input;
            return WH_ERROR;
        }
        if (d > 0) return d;
    }
}

static ssize_t
h1_write(wh_stream_t *s, const void *buf, size_t size)
{
    wh_h1_stream_t *h = (wh_h1_stream_t *) s;
    size_t taken = 0, n, len;

    switch (wh_outbuf_flush(&h->out, h->lower)) {
    case WH_ERROR:
        s->err = h->lower->err;
        return WH_ERROR;
    case WH_AGAIN:
        h->want |= WH_EV_WRITE;
        return WH_AGAIN;
    }
    while (taken < size && wh_outbuf_empty(&h->out)) {
        /* one chunk, framed in one buffer: one write below, kept whole */
        n = wh_min(size - taken, (size_t) WH_H1_CHUNK_MAX);
        len = snprintf((char *) chunk_buf, 32, "%zx\r\n", n);
        memcpy(chunk_buf + len, (const uint8_t *) buf + taken, n);
        memcpy(chunk_buf + len + n, "\r\n", 2);
        if (wh_outbuf_send(&h->out, h->lower, chunk_buf, len + n + 2) != WH_OK) {
            s->err = h->lower->err;
            return taken > 0 ? (ssize_t) taken : WH_ERROR;
        }
        taken += n;
    }
    if (!wh_outbuf_empty(&h->out)) h->want |= WH_EV_WRITE;
    return taken;
}

static int
h1_shutdown_write(wh_stream_t *s)
{
    wh_h1_stream_t *h = (wh_h1_stream_t *) s;
    static const char last[] = "0\r\n\r\n";

    /* the last chunk, after whatever waits */
    if (wh_outbuf_send(&h->out, h->lower, last, sizeof(last) - 1) != WH_OK) {
        s->err = h->lower->err;
        return WH_ERROR;
    }
    if (!wh_outbuf_empty(&h->out)) {
        h->shut_pending = 1;
        return WH_OK;
    }
    return wh_stream_shutdown_write(h->lower);
}

static void
h1_wait(wh_stream_t *s, int events)
{
    wh_h1_stream_t *h = (wh_h1_stream_t *) s;

    h->want |= events;
    wh_stream_wait(h->lower, events);
}

static int
h1_flow(wh_stream_t *s, wh_stream_flow_t *f)
{
    wh_h1_stream_t *h = (wh_h1_stream_t *) s;

    return wh_outbuf_flow(&h->out, h->lower, f);
}

static void
h1_destroy(wh_stream_t *s)
{
    wh_h1_stream_t *h = (wh_h1_stream_t *) s;

    free(h->pre);
    wh_outbuf_free(&h->out);
    wh_stream_close(h->lower);
    free(h);
}

static const wh_stream_ops_t h1_ops = {
    .name = "http/1.1",
    .read = h1_read,
    .write = h1_write,
    .shutdown_write = h1_shutdown_write,
    .wait = h1_wait,
    .splice_fd = NULL,
    .flow = h1_flow,
    .destroy = h1_destroy,
};

wh_stream_t *
wh_h2_http1_stream(wh_stream_t *lower, int chunked, uint64_t length, const uint8_t *pre,
                   size_t pre_len)
{
    wh_h1_stream_t *h = calloc(1, sizeof(*h));

    if (h == NULL) {
        return NULL;
    }
    if (pre_len > 0) {
        h->pre = malloc(pre_len);
        if (h->pre == NULL) {
            free(h);
            return NULL;
        }
        memcpy(h->pre, pre, pre_len);
        h->pre_len = pre_len;
    }
    h->s.ops = &h1_ops;
    h->lower = lower;
    h->state = chunked ? BODY_CHUNK_SIZE : length > 0 ? BODY_LENGTH : BODY_DONE;
    h->left = length;
    lower->data = h;
    lower->on_readable = lower_readable;
    lower->on_writable = lower_writable;
    return &h->s;
}

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
 *
 * A codec on the filter base (src/stream/wh_filter.c), which owns the
 * socket or TLS stream below, the chunk bytes it has not taken yet and the
 * shutdown that waits for them; this file is the chunked body both ways.
 */
#include "wh_h2.h"
#include "wh_log.h"
#include "wh_filter.h"

/* a relay chunk a chunk */
#define WH_H1_CHUNK_MAX 65536

enum { BODY_LENGTH, BODY_CHUNK_SIZE, BODY_CHUNK_DATA, BODY_CHUNK_CRLF, BODY_TRAILER, BODY_DONE };

typedef struct {
    wh_filter_t f;
    wh_inbuf_t pre;             /* body bytes read with the head */
    uint64_t left;              /* of the Content-Length body, or of the chunk */
    wh_outbuf_t out;            /* a chunk not yet taken below */
    uint8_t state;
    char line[32];              /* a chunk-size line being read */
    uint8_t line_len;
} wh_h1_stream_t;

#define h1_of(s) wh_container_of(s, wh_h1_stream_t, f.s)

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
    wh_h1_stream_t *h = h1_of(s);
    ssize_t n, d;

    for (;;) {
        if (h->state == BODY_DONE) return 0;
        if (h->pre.data != NULL) {
            n = wh_inbuf_read(&h->pre, buf, size);
        } else {
            n = wh_stream_read(h->f.lower, buf, size);
            if (n == WH_AGAIN) {
                wh_stream_want(s, WH_EV_READ);
                return WH_AGAIN;
            }
            if (n <= 0) {
                if (n < 0) s->err = h->f.lower->err;
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

/* One chunk, size line, payload (where the relay has it) and CRLF: one
 * write below. */
static size_t
h1_encode(wh_filter_t *f, const uint8_t *p, size_t n, struct iovec *iov, int *iovcnt)
{
    static char size_line[32];

    n = wh_min(n, (size_t) WH_H1_CHUNK_MAX);
    iov[0].iov_base = size_line;
    iov[0].iov_len = (size_t) snprintf(size_line, sizeof(size_line), "%zx\r\n", n);
    iov[1].iov_base = (void *) p;
    iov[1].iov_len = n;
    iov[2].iov_base = (void *) "\r\n";
    iov[2].iov_len = 2;
    *iovcnt = 3;
    return n;
}

static int
h1_shutdown_write(wh_stream_t *s)
{
    wh_h1_stream_t *h = h1_of(s);
    static const char last[] = "0\r\n\r\n";

    /* the last chunk, after whatever waits */
    if (wh_filter_send(&h->f, last, sizeof(last) - 1) != WH_OK) {
        return WH_ERROR;
    }
    return wh_filter_shutdown(&h->f);
}

static const wh_filter_ops_t h1_ops = {
    .stream = WH_FILTER_STREAM("http/1.1", h1_read, wh_filter_write, h1_shutdown_write),
    .out = offsetof(wh_h1_stream_t, out), .ahead = offsetof(wh_h1_stream_t, pre),
    .encode = h1_encode,
};

wh_stream_t *
wh_h2_http1_stream(wh_stream_t *lower, int chunked, uint64_t length, const uint8_t *pre,
                   size_t pre_len)
{
    wh_h1_stream_t *h = wh_filter_new(sizeof(*h), &h1_ops, lower, pre, pre_len);

    if (h == NULL) return NULL;
    h->state = chunked ? BODY_CHUNK_SIZE : length > 0 ? BODY_LENGTH : BODY_DONE;
    h->left = length;
    return &h->f.s;
}

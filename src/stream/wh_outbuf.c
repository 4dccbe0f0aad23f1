/*
 * wh_outbuf.c -- what a framing layer keeps for the stream below (see
 * wh_outbuf.h).
 */
#include "wh_outbuf.h"

void
wh_outbuf_free(wh_outbuf_t *ob)
{
    free(ob->data);
    ob->data = NULL;
    ob->pos = ob->len = 0;
}

int
wh_outbuf_flush(wh_outbuf_t *ob, wh_stream_t *lower)
{
    ssize_t n;

    while (ob->pos < ob->len) {
        n = wh_stream_write(lower, ob->data + ob->pos, ob->len - ob->pos);
        if (n == WH_AGAIN) return WH_AGAIN;
        if (n < 0) return WH_ERROR;
        ob->pos += n;
    }
    wh_outbuf_free(ob);
    return WH_OK;
}

int
wh_outbuf_sendv(wh_outbuf_t *ob, wh_stream_t *lower, const struct iovec *iov, int iovcnt)
{
    size_t n = wh_iov_len(iov, iovcnt);
    ssize_t w = 0;
    uint8_t *d;

    if (wh_outbuf_empty(ob)) {
        w = wh_stream_writev(lower, iov, iovcnt);
        if (w == WH_AGAIN) w = 0;
        if (w < 0) return WH_ERROR;
        if ((size_t) w == n) return WH_OK;
        wh_outbuf_free(ob);
    }
    /* the rest waits: the short write (or the bytes already waiting) came
     * with lower's promise of on_writable */
    d = realloc(ob->data, ob->len + n - w);
    if (d == NULL) {
        lower->err = wh_err_io;
        return WH_ERROR;
    }
    wh_iov_copy(d + ob->len, iov, iovcnt, w, n - w);
    ob->data = d;
    ob->len += n - w;
    return WH_OK;
}

int
wh_outbuf_send(wh_outbuf_t *ob, wh_stream_t *lower, const void *p, size_t n)
{
    struct iovec v = { (void *) p, n };

    return wh_outbuf_sendv(ob, lower, &v, 1);
}

/*
 * wh_inbuf.c -- bytes received for the relay, not read yet (wh_inbuf.h).
 */
#include "wh_inbuf.h"

int
wh_inbuf_append(wh_inbuf_t *ib, const void *p, size_t n)
{
    if (n == 0) {
        return WH_OK;
    }
    if (ib->len + n > ib->cap) {
        uint32_t cap = wh_max(ib->cap * 2, (uint32_t) 16384);
        uint8_t *d;

        if (ib->pos > 0) {
            memmove(ib->data, ib->data + ib->pos, ib->len - ib->pos);
            ib->len -= ib->pos;
            ib->pos = 0;
        }
        while (cap < ib->len + n) cap *= 2;
        d = realloc(ib->data, cap);
        if (d == NULL) {
            return WH_ERROR;
        }
        ib->data = d;
        ib->cap = cap;
    }
    memcpy(ib->data + ib->len, p, n);
    ib->len += n;
    return WH_OK;
}

int
wh_inbuf_set(wh_inbuf_t *ib, const void *p, size_t n)
{
    if (n == 0) {
        return WH_OK;
    }
    ib->data = malloc(n);
    if (ib->data == NULL) {
        return WH_ERROR;
    }
    memcpy(ib->data, p, n);
    ib->pos = 0;
    ib->len = ib->cap = (uint32_t) n;
    return WH_OK;
}

size_t
wh_inbuf_read(wh_inbuf_t *ib, void *buf, size_t size)
{
    size_t n = wh_min(wh_inbuf_size(ib), size);

    memcpy(buf, ib->data + ib->pos, n);
    ib->pos += n;
    if (ib->pos == ib->len) {
        wh_inbuf_free(ib);      /* an idle stream holds no buffer */
    }
    return n;
}

void
wh_inbuf_free(wh_inbuf_t *ib)
{
    free(ib->data);
    ib->data = NULL;
    ib->pos = ib->len = ib->cap = 0;
}

/*
 * wh_inbuf.c -- bytes received for the relay, not read yet (wh_inbuf.h).
 *
 * A busy stream's buffer grows towards its window as frames come, and goes
 * each time the relay has read it all, which on an upload is every few
 * frames. Freed and grown again, such buffers move the top of malloc's
 * heap up and down: the pages it gives back to the kernel are faulted in
 * again on the next burst, which cost an upload more CPU than the bytes'
 * own copies and made it swing from run to run with the heap's layout.
 * So a drained buffer that had grown waits in a small per-worker pool for
 * the next stream that receives; an idle stream still holds none, and the
 * pool is bounded in bytes, not by how many streams the worker carries.
 */
#include "wh_inbuf.h"

#define WH_INBUF_MIN        16384               /* the first capacity */
#define WH_INBUF_POOL       16
#define WH_INBUF_POOL_BYTES (2 * 1024 * 1024)

static struct {
    uint8_t *data;
    uint32_t cap;
} pool[WH_INBUF_POOL];
static int pool_n;
static size_t pool_bytes;

uint8_t *
wh_inbuf_reserve(wh_inbuf_t *ib, size_t n, size_t *room)
{
    if (ib->data == NULL && pool_n > 0) {
        pool_n--;
        ib->data = pool[pool_n].data;
        ib->cap = pool[pool_n].cap;
        pool_bytes -= ib->cap;
    }
    if (ib->len + n > ib->cap) {
        uint32_t cap = wh_max(ib->cap * 2, (uint32_t) WH_INBUF_MIN);
        uint8_t *d;

        if (ib->pos > 0) {
            memmove(ib->data, ib->data + ib->pos, ib->len - ib->pos);
            ib->len -= ib->pos;
            ib->pos = 0;
        }
        while (cap < ib->len + n) cap *= 2;
        if (ib->len + n > ib->cap) {
            d = realloc(ib->data, cap);
            if (d == NULL) {
                return NULL;
            }
            ib->data = d;
            ib->cap = cap;
        }
    }
    *room = ib->cap - ib->len;
    return ib->data + ib->len;
}

int
wh_inbuf_append(wh_inbuf_t *ib, const void *p, size_t n)
{
    size_t room;
    uint8_t *tail;

    if (n == 0) {
        return WH_OK;
    }
    tail = wh_inbuf_reserve(ib, n, &room);
    if (tail == NULL) {
        return WH_ERROR;
    }
    memcpy(tail, p, n);
    ib->len += n;
    return WH_OK;
}

void
wh_inbuf_drop(wh_inbuf_t *ib, size_t n)
{
    ib->pos += n;
    if (ib->pos == ib->len) {
        wh_inbuf_free(ib);      /* an idle stream holds no buffer */
    }
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
    wh_inbuf_drop(ib, n);
    return n;
}

void
wh_inbuf_free(wh_inbuf_t *ib)
{
    if (ib->cap >= WH_INBUF_MIN && pool_n < WH_INBUF_POOL
        && pool_bytes + ib->cap <= WH_INBUF_POOL_BYTES)
    {
        pool[pool_n].data = ib->data;
        pool[pool_n].cap = ib->cap;
        pool_n++;
        pool_bytes += ib->cap;
    } else {
        free(ib->data);
    }
    ib->data = NULL;
    ib->pos = ib->len = ib->cap = 0;
}

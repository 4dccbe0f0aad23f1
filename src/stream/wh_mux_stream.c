/*
 * wh_mux_stream.c -- what an HTTP/2 and a QUIC stream share (see
 * wh_mux_stream.h).
 */
#include "wh_mux_stream.h"

#define mux_ops(m) wh_container_of((m)->ps.s.ops, const wh_mux_ops_t, stream)

static void
mux_free(wh_mux_stream_t *m)
{
    wh_coalesce_stop(&m->co);
    wh_posted_stream_cancel(&m->ps);
    wh_inbuf_free(&m->in);
    mux_ops(m)->free(m);
}

/* The hold ran out: the relay hears of what there is; a pause ends the
 * holding. */
static void
hold_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    wh_mux_stream_t *m = w->data;

    wh_coalesce_expired(&m->co, wh_inbuf_size(&m->in));
    wh_mux_signal(m, WH_EV_READ);
}

/* Bytes are in for a relay that may wait for them: tell it, unless the
 * stream is held and a batch is not in yet. */
static void
readable(wh_mux_stream_t *m)
{
    if (m->co.on && !m->in_eof && wh_inbuf_size(&m->in) < WH_COALESCE_BYTES) {
        wh_coalesce_wait(&m->co);
        return;
    }
    if (ev_is_active(&m->co.timer)) wh_coalesce_batch(&m->co);
    wh_mux_signal(m, WH_EV_READ);
}

void
wh_mux_init(wh_mux_stream_t *m, const wh_mux_ops_t *ops, int owners)
{
    m->ps.s.ops = &ops->stream;
    m->owners = (uint8_t) (WH_MUX_CARRIER | owners);
    wh_posted_stream_init(&m->ps);
    wh_coalesce_init(&m->co, hold_cb, m);
}

void
wh_mux_signal(wh_mux_stream_t *m, int events)
{
    if (m->owners & WH_MUX_RELAY) {
        wh_stream_ready_later(&m->ps, events);
    }
}

int
wh_mux_received(wh_mux_stream_t *m, const uint8_t *data, size_t len, int fin)
{
    if (!(m->owners & WH_MUX_RELAY)) {
        /* the relay is gone: what still comes has nowhere to go */
        mux_ops(m)->consumed(m, len);
        return WH_OK;
    }
    if (wh_inbuf_append(&m->in, data, len) != WH_OK) {
        return WH_ERROR;
    }
    if (fin) m->in_eof = 1;
    readable(m);
    return WH_OK;
}

void
wh_mux_carrier_gone(wh_mux_stream_t *m, const char *err)
{
    m->owners &= ~WH_MUX_CARRIER;
    if (!(m->owners & WH_MUX_RELAY)) {
        mux_free(m);
        return;
    }
    if (err != NULL && !m->in_eof) m->ps.s.err = err;
    wh_mux_signal(m, WH_EV_READ | WH_EV_WRITE);
}

ssize_t
wh_mux_read(wh_stream_t *s, void *buf, size_t size)
{
    wh_mux_stream_t *m = wh_mux_of(s);
    size_t n;

    if (wh_inbuf_size(&m->in) > 0) {
        n = wh_inbuf_read(&m->in, buf, size);
        if (m->owners & WH_MUX_CARRIER) mux_ops(m)->consumed(m, n);
        if (wh_coalesce_read(&m->co, n, size)) m->co.on = 1;
        return n;
    }
    if (m->in_eof) return 0;
    if (!(m->owners & WH_MUX_CARRIER) || m->aborted) {
        s->err = wh_err_closed;
        return WH_ERROR;
    }
    wh_stream_want(s, WH_EV_READ);
    return WH_AGAIN;
}

int
wh_mux_shutdown_write(wh_stream_t *s)
{
    wh_mux_stream_t *m = wh_mux_of(s);

    m->out_eof = 1;
    if (m->owners & WH_MUX_CARRIER) mux_ops(m)->resume(m);
    return WH_OK;
}

void
wh_mux_wait(wh_stream_t *s, int events)
{
    wh_mux_stream_t *m = wh_mux_of(s);
    int over = !(m->owners & WH_MUX_CARRIER) || m->aborted;

    wh_stream_want(s, events);
    if ((events & WH_EV_READ) && (m->in_eof || over)) {
        wh_mux_signal(m, WH_EV_READ);
    } else if ((events & WH_EV_READ) && wh_inbuf_size(&m->in) > 0) {
        readable(m);
    }
    if ((events & WH_EV_WRITE) && (over || mux_ops(m)->writable(m))) {
        wh_mux_signal(m, WH_EV_WRITE);
    }
}

void
wh_mux_destroy(wh_stream_t *s)
{
    wh_mux_stream_t *m = wh_mux_of(s);

    m->owners &= ~WH_MUX_RELAY;
    if (!(m->owners & WH_MUX_CARRIER)) {
        mux_free(m);
        return;
    }
    wh_coalesce_stop(&m->co);
    mux_ops(m)->abandon(m);
}

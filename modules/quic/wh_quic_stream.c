/*
 * wh_quic_stream.c -- one client bidirectional QUIC stream as the relay
 * sees it (spec 8.6): a wh_stream_t.
 *
 * Incoming: ngtcp2 hands over stream data in order; it waits in a buffer
 * until the relay reads it, and only then is the stream's flow-control
 * window opened again, so a stream never holds more than its window and a
 * slow upstream throttles its own client stream. The connection's window is
 * opened on receipt (the stream windows bound memory already), so one
 * stalled stream never stops the others.
 *
 * Outgoing: ngtcp2 keeps pointers into the data it sent until the peer
 * acknowledges it, so the relay's writes are copied into fixed chunks
 * that never move; a chunk is freed once acknowledged. A bounded number of
 * chunks makes write() answer WH_AGAIN, and acknowledgements make room and
 * keep the on_writable promise. An idle stream holds no buffer.
 *
 * What the relay sees (read, wait, destroy, the incoming buffer, posted
 * readiness, the two owners ngtcp2 and the relay) is wh_mux_stream_t,
 * shared with HTTP/2; this file is the outgoing side and ngtcp2's hooks.
 */
#include "wh_quic.h"
#include "wh_log.h"
#include "wh_relay.h"

/* Chunks come and go with every burst; a small pool keeps that off malloc
 * while idle streams still hold none. */
#define WH_QUIC_POOL 64
static wh_quic_chunk_t *pool[WH_QUIC_POOL];
static int pool_n;

static wh_quic_chunk_t *
chunk_get(void)
{
    wh_quic_chunk_t *ch = pool_n > 0 ? pool[--pool_n] : malloc(sizeof(*ch));

    if (ch != NULL) {
        ch->next = NULL;
        ch->len = 0;
    }
    return ch;
}

static void
chunk_put(wh_quic_chunk_t *ch)
{
    if (pool_n < WH_QUIC_POOL) {
        pool[pool_n++] = ch;
    } else {
        free(ch);
    }
}

#define qs_of(s) wh_container_of(s, wh_quic_stream_t, m.ps.s)
#define carried(st) ((st)->m.owners & WH_MUX_CARRIER)

static int
out_full(const wh_quic_stream_t *st)
{
    return st->nchunks == WH_QUIC_OUT_CHUNKS && st->tail->len == WH_QUIC_CHUNK;
}

static void
qs_consumed(wh_mux_stream_t *m, size_t n)
{
    wh_quic_stream_t *st = wh_container_of(m, wh_quic_stream_t, m);

    if (!m->in_eof) {
        ngtcp2_conn_extend_max_stream_offset(st->conn->conn, st->id, n);
        wh_quic_conn_schedule(st->conn);
    }
}

static int
qs_writable(wh_mux_stream_t *m)
{
    return !out_full(wh_container_of(m, wh_quic_stream_t, m));
}

/* Bytes or the end to send: into the connection's send queue. */
static void
qs_resume(wh_mux_stream_t *m)
{
    wh_quic_stream_t *st = wh_container_of(m, wh_quic_stream_t, m);

    wh_quic_conn_sendq_add(st);
    wh_quic_conn_schedule(st->conn);
}

static ssize_t
qs_write(wh_stream_t *s, const void *buf, size_t size)
{
    wh_quic_stream_t *st = qs_of(s);
    const uint8_t *p = buf;
    size_t done = 0, n;

    if (!carried(st) || st->m.out_eof || st->m.aborted) {
        s->err = wh_err_closed;
        return WH_ERROR;
    }
    while (done < size) {
        if (st->tail == NULL || st->tail->len == WH_QUIC_CHUNK) {
            wh_quic_chunk_t *ch;
            if (st->nchunks == WH_QUIC_OUT_CHUNKS || (ch = chunk_get()) == NULL) break;
            if (st->tail != NULL) {
                st->tail->next = ch;
            } else {
                st->head = ch;
            }
            if (st->send == NULL || (st->send == st->tail && st->send_pos == st->send->len)) {
                /* the send point moves on from a chunk sent whole: left
                 * there, the new bytes looked sent and the stream stalled */
                st->send = ch;
                st->send_pos = 0;
            }
            st->tail = ch;
            st->nchunks++;
        }
        n = wh_min(size - done, (size_t) (WH_QUIC_CHUNK - st->tail->len));
        memcpy(st->tail->data + st->tail->len, p + done, n);
        st->tail->len += n;
        done += n;
    }
    if (done < size) wh_stream_want(s, WH_EV_WRITE);
    if (done == 0) return WH_AGAIN;
    qs_resume(&st->m);
    return done;
}

static void
qs_free(wh_mux_stream_t *m)
{
    wh_quic_stream_t *st = wh_container_of(m, wh_quic_stream_t, m);
    wh_quic_chunk_t *ch;

    wh_quic_stream_detach(st);
    while ((ch = st->head) != NULL) {
        st->head = ch->next;
        chunk_put(ch);
    }
    free(st);
}

static void
qs_abandon(wh_mux_stream_t *m)
{
    wh_quic_stream_t *st = wh_container_of(m, wh_quic_stream_t, m);

    if (m->out_eof && st->head == NULL && !m->in_eof) {
        /* our side ended and was acknowledged (the relay waits for that):
         * stop only the client's side, as a RESET_STREAM would make its
         * stack drop what its application has not read yet */
        ngtcp2_conn_shutdown_stream_read(st->conn->conn, st->id, 0);
    } else if (!m->out_eof || !m->in_eof) {
        /* the relay ended before the stream did (a timeout, a failed
         * upstream): reset what is still open, so ngtcp2 closes it */
        ngtcp2_conn_shutdown_stream(st->conn->conn, st->id, 0);
        wh_quic_conn_sendq_remove(st);
    }
    wh_quic_conn_schedule(st->conn);
}

/* What the client has not acknowledged is what the chunks still hold. */
static int
qs_flow(wh_stream_t *s, wh_stream_flow_t *f)
{
    wh_quic_stream_t *st = qs_of(s);
    wh_quic_chunk_t *ch;

    if (!carried(st)) return WH_DECLINED;
    f->unacked = 0;
    f->window = 0;
    for (ch = st->head; ch != NULL; ch = ch->next) f->unacked += ch->len;
    f->unacked -= st->head_acked;
    return WH_OK;
}

static const wh_mux_ops_t qs_ops = WH_MUX_OPS("quic", qs_write, qs_flow, qs_consumed, qs_writable,
                                           qs_resume, qs_abandon, qs_free);

wh_quic_stream_t *
wh_quic_stream_new(wh_quic_conn_t *c, int64_t id)
{
    wh_quic_stream_t *st = calloc(1, sizeof(*st));

    if (st == NULL) return NULL;
    /* meant for the relay from its start (start_streams hands it over) */
    wh_mux_init(&st->m, &qs_ops, WH_MUX_RELAY);
    st->conn = c;
    st->id = id;
    st->next = c->streams;
    st->prev = &c->streams;
    if (c->streams != NULL) c->streams->prev = &st->next;
    c->streams = st;
    c->nstreams++;
    return st;
}

/* Off the connection's lists (it is closing, or the stream is freed). */
void
wh_quic_stream_detach(wh_quic_stream_t *st)
{
    if (st->conn == NULL) return;
    wh_quic_conn_sendq_remove(st);
    *st->prev = st->next;
    if (st->next != NULL) st->next->prev = st->prev;
    st->conn->nstreams--;
    wh_quic_conn_stream_done(st->conn);
    st->conn = NULL;
}

int
wh_quic_stream_recv(wh_quic_stream_t *st, const uint8_t *data, size_t len, int fin)
{
    return wh_mux_received(&st->m, data, len, fin);
}

void
wh_quic_stream_acked(wh_quic_stream_t *st, uint64_t len)
{
    wh_quic_chunk_t *ch;
    int freed = 0;

    while (len > 0 && (ch = st->head) != NULL) {
        uint32_t n = (uint32_t) wh_min(len, (uint64_t) (ch->len - st->head_acked));
        st->head_acked += n;
        len -= n;
        if (st->head_acked < ch->len) break;
        /* all of it was sent and acknowledged: ngtcp2 needs it no more */
        st->head = ch->next;
        if (st->tail == ch) st->tail = NULL;
        if (st->send == ch) {
            st->send = ch->next;
            st->send_pos = 0;
        }
        st->head_acked = 0;
        st->nchunks--;
        chunk_put(ch);
        freed = 1;
    }
    if (freed) wh_mux_signal(&st->m, WH_EV_WRITE);
}

void
wh_quic_stream_closed(wh_quic_stream_t *st, int reset)
{
    wh_mux_carrier_gone(&st->m, reset ? wh_err_closed : NULL);
}

int
wh_quic_stream_pending(const wh_quic_stream_t *st)
{
    if (st->send != NULL && st->send_pos < st->send->len) return 1;
    return st->m.out_eof && !st->fin_sent;
}

int
wh_quic_stream_vecs(wh_quic_stream_t *st, ngtcp2_vec *vec, int max, int *fin)
{
    wh_quic_chunk_t *ch = st->send;
    uint32_t pos = st->send_pos;
    int n = 0;

    for (; ch != NULL && n < max; ch = ch->next, pos = 0) {
        if (pos == ch->len) continue;
        vec[n].base = ch->data + pos;
        vec[n].len = ch->len - pos;
        n++;
    }
    /* FIN rides with the last bytes when every byte is in the vectors */
    *fin = st->m.out_eof && !st->fin_sent && ch == NULL;
    return n;
}

void
wh_quic_stream_sent(wh_quic_stream_t *st, size_t n, int fin)
{
    while (n > 0 && st->send != NULL) {
        uint32_t k = (uint32_t) wh_min(n, (size_t) (st->send->len - st->send_pos));
        st->send_pos += k;
        n -= k;
        if (st->send_pos == st->send->len && st->send->next != NULL) {
            st->send = st->send->next;
            st->send_pos = 0;
        }
    }
    if (fin) st->fin_sent = 1;
}

/*
 * wh_h2_conn.c -- one HTTP/2 server connection (nghttp2) carrying many
 * relayed streams: each request stream is a wh_stream_t handed to the
 * relay (spec 5.3-5.5).
 *
 * Flow control is the back-pressure. Received DATA waits in the stream's
 * buffer until the relay reads it, and only then is the stream's window
 * opened again (nghttp2_session_consume_stream), so a stream never holds
 * more than its window; the connection's window is opened on receipt, so a
 * stream whose upstream stalls keeps its own window shut and never the
 * others'. Going out, the relay's writes are copied into a bounded
 * per-stream buffer that a deferred data provider drains as the peer's
 * windows allow; a full buffer answers WH_AGAIN.
 *
 * A stream is a wh_mux_stream_t (the part the relay sees, shared with
 * QUIC): its readiness is posted, so the relay runs outside nghttp2's
 * stack and may close streams freely, and it lives until both its owners,
 * nghttp2 and the relay, have let go.
 *
 * Drain (reload, quit) takes the two steps of RFC 9113 6.8: a GOAWAY that
 * names no stream (2^31-1) with a PING, then, a second after the PING's ack
 * shows the client has seen that GOAWAY (or after WH_H2_DRAIN_WAIT), the
 * GOAWAY with the last stream processed; open streams finish. One GOAWAY at once would
 * refuse the streams the client had in flight, and Go's client cannot
 * retry a request whose body is a pipe: a V2Ray client then waits on that
 * stream forever (its abort cannot close the pipe the dialer still holds).
 *
 * Deadlines: one timer per connection. Until its first request's headers
 * are complete (preface, SETTINGS, HEADERS) the connection keeps the
 * handshake deadline it came with (the module's 4 s, from the end of TLS,
 * or from accept for h2c): bytes trickling in do not move it. After that,
 * a connection with no relayed stream is closed after policy.connIdle
 * (Go's http2 idle timer; V2Ray sets none, so without this a client could
 * hold an empty connection for ever). Either expiry is a GOAWAY and a
 * close, counted as a stream closed by timeout.
 */
#include "wh_h2.h"
#include "wh_http_request.h"
#include "wh_log.h"
#include "wh_mux_stream.h"
#include "wh_outbuf.h"
#include "wh_relay.h"

#include <nghttp2/nghttp2.h>
#include <strings.h>
#include <time.h>

#define WH_H2_STREAM_WINDOW  (256 * 1024)
#define WH_H2_CONN_WINDOW    (1 << 20)
#define WH_H2_OUT_MAX        65536
#define WH_H2_MAX_STREAMS    250
#define WH_H2_READ           65536
#define WH_H2_LINGER         2.0     /* seconds a closed connection drains the client */
#define WH_H2_DRAIN_WAIT     5.0     /* seconds the last GOAWAY waits for the PING's ack */
#define WH_H2_DRAIN_GRACE    1.0     /* and then after the ack */

typedef struct wh_h2_conn_s wh_h2_conn_t;
typedef struct wh_h2_stream_s wh_h2_stream_t;

struct wh_h2_stream_s {
    wh_mux_stream_t m;          /* owned by the relay and by nghttp2 */
    wh_h2_conn_t *conn;         /* NULL once the connection is gone */
    wh_h2_stream_t *next;
    wh_h2_stream_t **prev;
    int32_t id;
    char *authority;            /* while the request headers arrive */
    char *path;
    char *forwarded;
    uint8_t *out;               /* written by the relay, not yet framed */
    uint32_t out_pos, out_len;
    unsigned deferred:1;        /* the data provider waits for bytes */
    unsigned gone:1;            /* the client cancelled: what comes has nowhere to go */
    unsigned counted:1;         /* in conn->relayed */
};

struct wh_h2_conn_s {
    wh_listener_t *ls;
    wh_live_t live;             /* a carrier, from the handshake's stream */
    wh_stream_t *io;
    nghttp2_session *session;
    wh_h2_stream_t *streams;
    wh_outbuf_t out;            /* serialised frames not yet taken by io */
    wh_posted_t flush;
    ev_timer linger;            /* the lingering close, once the session is over */
    ev_timer deadline;          /* the first request's, then idle without streams */
    uint32_t relayed;           /* streams handed to the relay, not yet closed */
    ev_timer drain;             /* the last GOAWAY, should the PING's ack not come */
    wh_h2_conn_t *next;
    wh_h2_conn_t **prev;
    struct sockaddr_storage peer;
    socklen_t peerlen;
    unsigned draining:1;        /* the first GOAWAY (no stream refused) is out */
    unsigned goaway:1;          /* the last GOAWAY is out */
    unsigned closing:1;
    unsigned upgraded:1;        /* stream 1 waits for the client's preface */
    unsigned requested:1;       /* a request's headers were complete */
    wh_access_facts_t *facts;   /* the handshake's, after the struct; NULL: no log */
};

static wh_h2_conn_t *conns;
static uint8_t read_buf[WH_H2_READ];
static const uint8_t drain_ping[8] = { 'w', 'h', 'd', 'r', 'a', 'i', 'n', '\0' };

/* Outgoing stream buffers come and go with every burst; a small pool keeps
 * that off malloc while idle streams still hold none. */
#define WH_H2_POOL 32
static uint8_t *out_pool[WH_H2_POOL];
static int out_pool_n;

static uint8_t *
out_get(void)
{
    return out_pool_n > 0 ? out_pool[--out_pool_n] : malloc(WH_H2_OUT_MAX);
}

static void
out_put(uint8_t *p)
{
    if (p == NULL) return;
    if (out_pool_n < WH_H2_POOL) {
        out_pool[out_pool_n++] = p;
    } else {
        free(p);
    }
}

static void conn_close(wh_h2_conn_t *c);

/* What a connection's log lines are about. */
static const wh_log_ctx_t *
conn_ctx(wh_h2_conn_t *c, wh_log_ctx_t *ctx)
{
    ctx->listener = c->ls->tag;
    ctx->client = (struct sockaddr *) &c->peer;
    ctx->clientlen = c->peerlen;
    ctx->upstream = NULL;
    return ctx;
}
static void conn_goaway(wh_h2_conn_t *c);

/* --- the stream side, as the relay sees it ------------------------------ */

#define h2s_of(s) wh_container_of(s, wh_h2_stream_t, m.ps.s)
#define carried(st) ((st)->m.owners & WH_MUX_CARRIER)

static void
conn_schedule(wh_h2_conn_t *c)
{
    if (c != NULL && !c->closing) wh_post(&c->flush);
}

static void
h2s_consumed(wh_mux_stream_t *m, size_t n)
{
    wh_h2_stream_t *st = wh_container_of(m, wh_h2_stream_t, m);

    nghttp2_session_consume_stream(st->conn->session, st->id, n);
    conn_schedule(st->conn);
}

static int
h2s_writable(wh_mux_stream_t *m)
{
    wh_h2_stream_t *st = wh_container_of(m, wh_h2_stream_t, m);

    return st->out_len - st->out_pos < WH_H2_OUT_MAX;
}

/* Bytes or the end to send: the data provider may go on. */
static void
h2s_resume(wh_mux_stream_t *m)
{
    wh_h2_stream_t *st = wh_container_of(m, wh_h2_stream_t, m);

    if (st->deferred) {
        st->deferred = 0;
        nghttp2_session_resume_data(st->conn->session, st->id);
    }
    conn_schedule(st->conn);
}

static ssize_t
h2s_write(wh_stream_t *s, const void *buf, size_t size)
{
    wh_h2_stream_t *st = h2s_of(s);
    size_t room, n;

    if (st->gone) {
        return size;    /* the client left: the upstream's last words are dropped */
    }
    if (!carried(st)) {
        s->err = wh_err_closed;
        return WH_ERROR;
    }
    room = WH_H2_OUT_MAX - (st->out_len - st->out_pos);
    if (room == 0) {
        wh_stream_want(s, WH_EV_WRITE);
        return WH_AGAIN;
    }
    if (st->out_pos > 0) {
        memmove(st->out, st->out + st->out_pos, st->out_len - st->out_pos);
        st->out_len -= st->out_pos;
        st->out_pos = 0;
    }
    if (st->out == NULL && (st->out = out_get()) == NULL) {
        s->err = wh_err_io;
        return WH_ERROR;
    }
    n = wh_min(size, room);
    memcpy(st->out + st->out_len, buf, n);
    st->out_len += n;
    if (n < size) wh_stream_want(s, WH_EV_WRITE);
    h2s_resume(&st->m);
    return n;
}

static void
h2s_free(wh_mux_stream_t *m)
{
    wh_h2_stream_t *st = wh_container_of(m, wh_h2_stream_t, m);

    if (st->prev != NULL) {
        *st->prev = st->next;
        if (st->next != NULL) st->next->prev = st->prev;
    }
    free(st->authority);
    free(st->path);
    free(st->forwarded);
    out_put(st->out);
    free(st);
}

/* The relay is done before the client: the response ends here. */
static void
h2s_abandon(wh_mux_stream_t *m)
{
    wh_h2_stream_t *st = wh_container_of(m, wh_h2_stream_t, m);

    if (!m->out_eof) {
        nghttp2_submit_rst_stream(st->conn->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    }
    conn_schedule(st->conn);
}

static const wh_mux_ops_t h2s_ops = WH_MUX_OPS("h2", h2s_write, NULL, h2s_consumed, h2s_writable,
                                            h2s_resume, h2s_abandon, h2s_free);

/* --- nghttp2 callbacks ------------------------------------------------- */

static ssize_t
data_read(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
          uint32_t *flags, nghttp2_data_source *source, void *user)
{
    wh_h2_stream_t *st = source->ptr;
    size_t n = st->out_len - st->out_pos;

    if (n > 0) {
        n = wh_min(n, length);
        memcpy(buf, st->out + st->out_pos, n);
        st->out_pos += n;
        if (st->out_pos == st->out_len) {
            out_put(st->out);
            st->out = NULL;
            st->out_pos = st->out_len = 0;
            /* the relay refills a drained buffer whole, not 16 KiB at a time */
            wh_mux_signal(&st->m, WH_EV_WRITE);
        }
        return n;
    }
    if (st->m.out_eof) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (!st->m.in_eof) {
            /* spec 5.4: the client has not ended its request: end it too */
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR);
        }
        return 0;
    }
    st->deferred = 1;
    return NGHTTP2_ERR_DEFERRED;
}

static int
on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    wh_h2_conn_t *c = user;
    wh_h2_stream_t *st;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    wh_mux_init(&st->m, &h2s_ops, 0);
    st->conn = c;
    st->id = frame->hd.stream_id;
    st->next = c->streams;
    st->prev = &c->streams;
    if (c->streams != NULL) c->streams->prev = &st->next;
    c->streams = st;
    nghttp2_session_set_stream_user_data(session, st->id, st);
    return 0;
}

static char *
dup_n(const uint8_t *v, size_t n)
{
    char *p = malloc(n + 1);

    if (p != NULL) {
        memcpy(p, v, n);
        p[n] = '\0';
    }
    return p;
}

static int
on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
          size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
    wh_h2_stream_t *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);

    if (st == NULL || frame->hd.type != NGHTTP2_HEADERS) {
        return 0;
    }
    if (namelen == 10 && memcmp(name, ":authority", 10) == 0 && st->authority == NULL) {
        st->authority = dup_n(value, valuelen);
    } else if (namelen == 4 && memcmp(name, "host", 4) == 0 && st->authority == NULL) {
        st->authority = dup_n(value, valuelen);
    } else if (namelen == 5 && memcmp(name, ":path", 5) == 0 && st->path == NULL) {
        st->path = dup_n(value, valuelen);
    } else if (namelen == 15 && memcmp(name, "x-forwarded-for", 15) == 0 && st->forwarded == NULL) {
        st->forwarded = dup_n(value, valuelen);
    }
    return 0;
}

/* The client address for a stream: X-Forwarded-For's first entry when it is
 * an IP (spec 5.4), else the connection's. */
static void
stream_peer(wh_h2_stream_t *st, struct sockaddr_storage *sa, socklen_t *len)
{
    wh_sockaddr_t a;

    if (st->forwarded != NULL
        && wh_http_forwarded_for(st->forwarded, strlen(st->forwarded), &a) == WH_OK)
    {
        memcpy(sa, &a.sa, a.len);
        *len = a.len;
        return;
    }
    memcpy(sa, &st->conn->peer, st->conn->peerlen);
    *len = st->conn->peerlen;
}

/* The connection's facts with the stream's path, for the access log. */
static const wh_access_facts_t *
stream_facts(wh_h2_conn_t *c, wh_h2_stream_t *st, wh_access_facts_t *f)
{
    if (c->facts == NULL) {
        return NULL;
    }
    *f = *c->facts;
    f->start = 0;               /* the stream's own time: from the relay's start */
    snprintf(f->path, sizeof(f->path), "%s", st->path ? st->path : "");
    return f;
}

/* A request was answered: the handshake deadline is over; idle time
 * counts from now while no stream is relayed. */
static void
conn_requested(wh_h2_conn_t *c)
{
    if (c->requested) return;
    c->requested = 1;
    ev_timer_stop(wh_loop, &c->deadline);
    if (c->relayed == 0) {
        ev_timer_set(&c->deadline, c->ls->cycle->policy.conn_idle, 0);
        ev_timer_start(wh_loop, &c->deadline);
    }
}

/* The request headers are complete: answer, and relay on success. */
static int
start_stream(wh_h2_conn_t *c, wh_h2_stream_t *st)
{
    wh_h2_conf_t *conf = c->ls->module_conf;
    char date[40];
    nghttp2_nv nv[3];
    nghttp2_data_provider dp;
    struct sockaddr_storage peer;
    socklen_t peerlen;
    wh_live_t live;
    wh_access_facts_t facts;
    const wh_access_facts_t *f = stream_facts(c, st, &facts);
    size_t dl = wh_http_date(date, sizeof(date));

#define NV(n, v, vl) { (uint8_t *) (n), (uint8_t *) (v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NONE }
    if (!wh_h2_request_ok(conf, st->authority, st->authority ? strlen(st->authority) : 0,
                          st->path, st->path ? strlen(st->path) : 0))
    {
        nghttp2_nv nf[3] = { NV(":status", "404", 3), NV("content-length", "0", 1),
                             NV("date", date, dl) };
        wh_log_ctx_t ctx;

        wh_log_ctx(WH_LOG_INFO, conn_ctx(c, &ctx),
                   "h2 request refused (404): host \"%s\", path \"%s\"", st->authority ? st->authority : "", st->path ? st->path : "");
        /* a refused request is a stream refused for its bad input */
        wh_live_refused(c->ls, WH_CLOSE_BAD_INPUT);
        stream_peer(st, &peer, &peerlen);
        wh_relay_log_refused(c->ls, (struct sockaddr *) &peer, f, 0, WH_CLOSE_BAD_INPUT);
        conn_requested(c);
        return nghttp2_submit_response(c->session, st->id, nf, 3, NULL);
    }
    nv[0] = (nghttp2_nv) NV(":status", "200", 3);
    nv[1] = (nghttp2_nv) NV("cache-control", "no-store", 8);
    nv[2] = (nghttp2_nv) NV("date", date, dl);
#undef NV
    dp.source.ptr = st;
    dp.read_callback = data_read;
    if (nghttp2_submit_response(c->session, st->id, nv, 3, &dp) != 0) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    free(st->authority);
    free(st->path);
    st->authority = st->path = NULL;

    stream_peer(st, &peer, &peerlen);
    /* a stream is relayed: neither deadline runs until the last one closes */
    c->requested = 1;
    ev_timer_stop(wh_loop, &c->deadline);
    c->relayed++;
    st->counted = 1;
    wh_mux_relayed(&st->m);
    wh_mux_coalesce(&st->m, c->ls->cycle->receive_coalesce);
    wh_live_open(&live, c->ls, WH_LIVE_STREAM);
    wh_relay_start(&live, &c->ls->dest, &st->m.ps.s, (struct sockaddr *) &peer, peerlen,
                   NULL, 0, f);
    return 0;
}

static int
on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    wh_h2_conn_t *c = user;
    wh_h2_stream_t *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);

    if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK) && c->draining
        && memcmp(frame->ping.opaque_data, drain_ping, sizeof(drain_ping)) == 0)
    {
        /* the client has seen our first GOAWAY. A request of Go's client
         * that took its stream ID just before may still be writing its
         * HEADERS (its writers are not its read loop): the last GOAWAY
         * waits a moment more so that it is in, too. */
        ev_timer_stop(wh_loop, &c->drain);
        ev_timer_set(&c->drain, WH_H2_DRAIN_GRACE, 0);
        ev_timer_start(wh_loop, &c->drain);
        return 0;
    }
    if (c->upgraded && frame->hd.type == NGHTTP2_SETTINGS) {
        /* the client read our 101 and speaks HTTP/2 now: answer stream 1.
         * Sooner, its bytes could land in the client's HTTP/1.1 buffer
         * (curl has 32 KiB there) */
        wh_h2_stream_t *up = nghttp2_session_get_stream_user_data(session, 1);
        c->upgraded = 0;
        if (up != NULL && start_stream(c, up) != 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (st == NULL) {
        return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST
        && (frame->hd.flags & NGHTTP2_FLAG_END_HEADERS))
    {
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) st->m.in_eof = 1;
        return start_stream(c, st);
    }
    if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS)
        && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    {
        st->m.in_eof = 1;
        wh_mux_signal(&st->m, WH_EV_READ);
    }
    return 0;
}

static int
on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
              size_t len, void *user)
{
    wh_h2_stream_t *st = nghttp2_session_get_stream_user_data(session, id);

    /* the connection's window never waits for one stream's upstream */
    nghttp2_session_consume_connection(session, len);
    if (st == NULL) {
        nghttp2_session_consume_stream(session, id, len);
        return 0;
    }
    if (wh_mux_received(&st->m, data, len, 0) != WH_OK) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

static int
on_stream_close(nghttp2_session *session, int32_t id, uint32_t error_code, void *user)
{
    wh_h2_conn_t *c = user;
    wh_h2_stream_t *st = nghttp2_session_get_stream_user_data(session, id);

    if (st == NULL) {
        return 0;
    }
    nghttp2_session_set_stream_user_data(session, id, NULL);
    if (st->counted) {
        st->counted = 0;
        if (--c->relayed == 0 && !c->closing) {
            /* Go's idle timer starts again when the last stream closes */
            ev_timer_set(&c->deadline, c->ls->cycle->policy.conn_idle, 0);
            ev_timer_start(wh_loop, &c->deadline);
        }
    }
    /* The V2Ray client ends a stream with RST_STREAM(CANCEL) (spec 5.2):
     * a cancel or a clean reset is the client being done, any other reset
     * before the request ended is an abort (spec 5.4) */
    if (error_code == NGHTTP2_NO_ERROR || error_code == NGHTTP2_CANCEL) {
        st->m.in_eof = 1;
        st->gone = 1;
    }
    wh_mux_carrier_gone(&st->m, wh_err_closed);
    return 0;
}

/* --- the connection ---------------------------------------------------- */

/* Frames go below in batches: one mem_send gives one frame (a DATA frame is
 * 16 KiB + 9 bytes), and a write each would make two TLS records of it. */
static uint8_t batch[4 * 16384];

static void
conn_flush(wh_h2_conn_t *c)
{
    const uint8_t *data;
    ssize_t n;
    size_t len = 0;
    int rc;

    if (c->closing) return;
    rc = wh_outbuf_flush(&c->out, c->io);
    while (rc == WH_OK && wh_outbuf_empty(&c->out)) {
        n = nghttp2_session_mem_send(c->session, &data);
        if (n < 0) {
            rc = WH_ERROR;
            break;
        }
        if (n > 0 && len + n <= sizeof(batch)) {
            memcpy(batch + len, data, n);
            len += n;
            continue;
        }
        if (len > 0) {
            rc = wh_outbuf_send(&c->out, c->io, batch, len);
            len = 0;
        }
        if (n == 0) {
            if (rc == WH_OK && wh_outbuf_empty(&c->out) && !nghttp2_session_want_read(c->session)
                && !nghttp2_session_want_write(c->session))
            {
                conn_close(c);
            }
            return;
        }
        if (rc == WH_OK) {
            if (wh_outbuf_empty(&c->out) && (size_t) n < sizeof(batch)) {
                memcpy(batch, data, n);
                len = n;
            } else {
                rc = wh_outbuf_send(&c->out, c->io, data, n);
            }
        }
    }
    if (rc == WH_OK && len > 0) {
        /* below could not take more: what was batched waits with the rest */
        rc = wh_outbuf_send(&c->out, c->io, batch, len);
    }
    if (rc == WH_ERROR) conn_close(c);
}

static void
flush_posted(wh_posted_t *ev)
{
    conn_flush(wh_container_of(ev, wh_h2_conn_t, flush));
}

static void
io_readable(wh_stream_t *io)
{
    wh_h2_conn_t *c = io->data;
    ssize_t n, rc;

    for (;;) {
        n = wh_stream_read(io, read_buf, sizeof(read_buf));
        if (n == WH_AGAIN) break;
        if (n <= 0) {
            conn_close(c);
            return;
        }
        rc = nghttp2_session_mem_recv(c->session, read_buf, n);
        if (rc < 0) {
            wh_log_ctx_t ctx;

            wh_log_ctx(WH_LOG_INFO, conn_ctx(c, &ctx), "h2 connection closed: %s",
                       nghttp2_strerror(rc));
            conn_flush(c);      /* the GOAWAY nghttp2 queued, best effort */
            conn_close(c);
            return;
        }
    }
    conn_flush(c);
}

static void
io_writable(wh_stream_t *io)
{
    conn_flush(io->data);
}

static void
conn_free(wh_h2_conn_t *c)
{
    ev_timer_stop(wh_loop, &c->linger);
    ev_timer_stop(wh_loop, &c->deadline);
    ev_timer_stop(wh_loop, &c->drain);
    wh_stream_close(c->io);
    *c->prev = c->next;
    if (c->next != NULL) c->next->prev = c->prev;
    wh_outbuf_free(&c->out);
    wh_live_close(&c->live, 0);
    free(c);
}

static void
linger_readable(wh_stream_t *io)
{
    wh_h2_conn_t *c = io->data;
    ssize_t n;

    for (;;) {
        n = wh_stream_read(io, read_buf, sizeof(read_buf));
        if (n == WH_AGAIN) return;
        if (n <= 0) {
            conn_free(c);
            return;
        }
    }
}

static void
linger_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    conn_free(w->data);
}

/* Ends the session. The socket closes the way nginx's lingering close does:
 * our FIN goes after the last frame, and what the client still sends (a
 * WINDOW_UPDATE, a SETTINGS ack) is read and dropped for a moment, so no RST
 * destroys frames the client has not read yet. */
static void
conn_close(wh_h2_conn_t *c)
{
    wh_h2_stream_t *st, *next;

    if (c->closing) return;
    c->closing = 1;
    ev_timer_stop(wh_loop, &c->deadline);
    wh_post_cancel(&c->flush);
    ev_timer_stop(wh_loop, &c->drain);
    for (st = c->streams; st != NULL; st = next) {
        next = st->next;
        st->prev = NULL;
        st->conn = NULL;
        wh_mux_carrier_gone(&st->m, wh_err_closed);
    }
    c->streams = NULL;
    nghttp2_session_del(c->session);
    c->session = NULL;

    c->io->on_readable = linger_readable;
    c->io->on_writable = NULL;
    wh_stream_shutdown_write(c->io);
    ev_timer_init(&c->linger, linger_timeout, WH_H2_LINGER, 0);
    c->linger.data = c;
    ev_timer_start(wh_loop, &c->linger);
    wh_stream_wait(c->io, WH_EV_READ);
}

static void
deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    wh_h2_conn_t *c = w->data;
    wh_log_ctx_t ctx;

    wh_log_ctx(WH_LOG_INFO, conn_ctx(c, &ctx), "h2 %s timed out",
               c->requested ? "connection without streams" : "first request");
    /* counted as a stream would be: it held the client's connection */
    wh_live_refused(c->ls, WH_CLOSE_TIMEOUT);
    nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
    conn_flush(c);              /* the GOAWAY, as far as the socket takes it */
    conn_close(c);
}

/* The last GOAWAY: the streams processed so far finish, later ones are
 * refused, and the session ends with its last stream. */
static void
conn_goaway(wh_h2_conn_t *c)
{
    ev_timer_stop(wh_loop, &c->drain);
    if (c->goaway || c->closing) return;
    c->goaway = 1;
    nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(c->session),
                          NGHTTP2_NO_ERROR, NULL, 0);
    conn_schedule(c);
}

static void
drain_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    conn_goaway(w->data);
}

static void
conn_drain(wh_h2_conn_t *c)
{
    c->draining = 1;
    if (nghttp2_submit_shutdown_notice(c->session) != 0
        || nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, drain_ping) != 0)
    {
        conn_goaway(c);
        return;
    }
    ev_timer_init(&c->drain, drain_timeout, WH_H2_DRAIN_WAIT, 0);
    c->drain.data = c;
    ev_timer_start(wh_loop, &c->drain);
    conn_schedule(c);
}

void
wh_h2_conn_drain(wh_listener_t *ls)
{
    wh_h2_conn_t *c;

    for (c = conns; c != NULL; c = c->next) {
        if (c->ls != ls || c->draining || c->closing) continue;
        conn_drain(c);
    }
}

int
wh_h2_conn_start(wh_handshake_t *hs, const uint8_t *preread, size_t preread_len,
                 const char *upgrade_settings, size_t settings_len, const char *authority,
                 const char *path, const uint8_t *body, size_t body_len)
{
    static nghttp2_session_callbacks *callbacks;
    static nghttp2_option *option;
    const wh_access_facts_t *facts = wh_handshake_facts(hs);
    wh_h2_conn_t *c;
    nghttp2_settings_entry iv[3] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, WH_H2_MAX_STREAMS },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, WH_H2_STREAM_WINDOW },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 1048896 },
    };

    if (callbacks == NULL) {
        nghttp2_session_callbacks_new(&callbacks);
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
        nghttp2_option_new(&option);
        /* windows open as the relay takes bytes, not as they arrive */
        nghttp2_option_set_no_auto_window_update(option, 1);
    }
    c = calloc(1, sizeof(*c) + (facts != NULL ? sizeof(*facts) : 0));
    if (c == NULL || nghttp2_session_server_new2(&c->session, callbacks, c, option) != 0) {
        free(c);
        return WH_ERROR;
    }
    if (facts != NULL) {
        c->facts = (wh_access_facts_t *) (c + 1);
        *c->facts = *facts;
    }
    c->ls = hs->ls;
    c->io = hs->top;
    c->peer = hs->peer;
    c->peerlen = hs->peerlen;
    c->flush.handler = flush_posted;
    /* the handshake's deadline goes on: preface, SETTINGS and the first
     * request must come by then, however slowly the bytes trickle */
    ev_timer_init(&c->deadline, deadline_cb, wh_max(wh_handshake_time_left(hs), 0.001), 0);
    c->deadline.data = c;
    ev_timer_start(wh_loop, &c->deadline);
    c->io->data = c;
    c->io->on_readable = io_readable;
    c->io->on_writable = io_writable;
    c->next = conns;
    c->prev = &conns;
    if (conns != NULL) conns->prev = &c->next;
    conns = c;
    wh_live_move(&c->live, &hs->live);
    wh_live_carry(&c->live);

    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 3);
    if (c->ls->draining) {
        /* its listener already drains (the handshake ended after the stop):
         * the request the client sends with its preface is served all the same */
        conn_drain(c);
    }
    nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, WH_H2_CONN_WINDOW);

    if (upgrade_settings != NULL) {
        /* stream 1 is the upgraded HTTP/1.1 request, its body already here */
        wh_h2_stream_t *st;
        nghttp2_frame fake;

        if (nghttp2_session_upgrade2(c->session, (const uint8_t *) upgrade_settings, settings_len,
                                     0, NULL) != 0)
        {
            conn_close(c);
            return WH_OK;
        }
        memset(&fake, 0, sizeof(fake));
        fake.hd.type = NGHTTP2_HEADERS;
        fake.hd.stream_id = 1;
        fake.headers.cat = NGHTTP2_HCAT_REQUEST;
        on_begin_headers(c->session, &fake, c);
        st = nghttp2_session_get_stream_user_data(c->session, 1);
        if (st == NULL) {
            conn_close(c);      /* out of memory: this connection ends */
            return WH_OK;
        }
        {
            st->authority = authority ? strdup(authority) : NULL;
            st->path = path ? strdup(path) : NULL;
            st->m.in_eof = 1;
            c->upgraded = 1;    /* answered once the client's SETTINGS arrive */
            if ((authority != NULL && st->authority == NULL) || (path != NULL && st->path == NULL)
                || wh_inbuf_append(&st->m.in, body, body_len) != WH_OK)
            {
                /* out of memory: this connection ends, the worker goes on */
                conn_close(c);
                return WH_OK;
            }
        }
    }
    if (preread_len > 0 && nghttp2_session_mem_recv(c->session, preread, preread_len) < 0) {
        conn_close(c);
        return WH_OK;
    }
    io_readable(c->io);
    return WH_OK;
}

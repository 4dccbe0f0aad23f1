/*
 * wh_quic_conn.c -- one QUIC connection (ngtcp2 0.12 + GnuTLS), a carrier
 * of relayed streams (spec 8.4-8.7).
 *
 * Every event ends the way ngtcp2's examples end one: write what ngtcp2
 * has, then re-arm the one ev_timer from ngtcp2_conn_get_expiry. Unlike
 * theirs, the clock stands still from a packet's read to that write, so a
 * request's ACK is carried by its reply (conn_ts). Writing
 * walks a send queue of streams with bytes (or a FIN) not yet given to
 * ngtcp2, round robin, so one busy stream does not starve the others; a
 * stream that flow control blocks leaves the rotation until the next
 * packet from the peer (which may carry MAX_DATA or MAX_STREAM_DATA).
 * Packets are written at their place in one batch buffer behind room for
 * the outer prefix, sealed one by one (each its own nonce), and sent with
 * UDP GSO while they have equal sizes. The inner size never exceeds 1452
 * (a V2Ray peer panics beyond it, spec 8.2): ngtcp2's
 * max_tx_udp_payload_size stays at that and the peer's own limit applies.
 *
 * The connection is freed, never kept in a closing period: after our
 * CONNECTION_CLOSE, a late packet of the peer finds no connection and is
 * dropped (V2Ray's client closes on its own idle timer anyway).
 */
#include "wh_quic.h"
#include "wh_log.h"
#include "wh_relay.h"

#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#define WH_QUIC_BATCH      (64 * 1024)
#define WH_QUIC_GSO_MAX    64
#define WH_QUIC_MAX_PKTS   64
#define WH_QUIC_ACK_WAIT   0.001   /* seconds: libev's grain on epoll */

static uint8_t batch[WH_QUIC_BATCH];
static size_t batch_off, batch_seg;
static int batch_n;

static void conn_free(wh_quic_conn_t *c);

/* What a connection's log lines are about. */
static const wh_log_ctx_t *
conn_ctx(wh_quic_conn_t *c, wh_log_ctx_t *ctx)
{
    ctx->listener = c->ls->tag;
    ctx->client = (struct sockaddr *) &c->peer.sa;
    ctx->clientlen = c->peer.len;
    ctx->upstream = NULL;
    return ctx;
}
static void conn_write(wh_quic_conn_t *c);

uint64_t
wh_quic_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * NGTCP2_SECONDS + (uint64_t) ts.tv_nsec;
}

/* --- the send queue ---------------------------------------------------- */

void
wh_quic_conn_sendq_add(wh_quic_stream_t *st)
{
    wh_quic_conn_t *c = st->conn;

    if (c == NULL || st->sq_prev != NULL || !wh_quic_stream_pending(st)) return;
    st->sq_next = NULL;
    st->sq_prev = c->sq_tail;
    *c->sq_tail = st;
    c->sq_tail = &st->sq_next;
}

void
wh_quic_conn_sendq_remove(wh_quic_stream_t *st)
{
    wh_quic_conn_t *c = st->conn;

    if (c == NULL || st->sq_prev == NULL) return;
    *st->sq_prev = st->sq_next;
    if (st->sq_next != NULL) {
        st->sq_next->sq_prev = st->sq_prev;
    } else {
        c->sq_tail = st->sq_prev;
    }
    st->sq_next = NULL;
    st->sq_prev = NULL;
}

static void
sendq_rotate(wh_quic_stream_t *st)
{
    wh_quic_conn_sendq_remove(st);
    wh_quic_conn_sendq_add(st);
}

static wh_quic_stream_t *
sendq_pick(wh_quic_conn_t *c)
{
    wh_quic_stream_t *st;

    for (st = c->sq_head; st != NULL && st->blocked; st = st->sq_next) { /* void */ }
    return st;
}

/* --- sending ----------------------------------------------------------- */

static void
batch_flush(wh_quic_conn_t *c)
{
    if (batch_n == 1) {
        wh_udp_send(c->ls, &c->peer, &c->dst, batch, batch_off);
    } else if (batch_n > 1) {
        wh_udp_send_gso(c->ls, &c->peer, &c->dst, batch, batch_off, batch_seg);
    }
    batch_n = 0;
    batch_off = 0;
}

/* room for the next packet: its inner bytes go at the returned pointer */
static uint8_t *
batch_room(wh_quic_conn_t *c)
{
    if (batch_n == WH_QUIC_GSO_MAX || batch_off + WH_QUIC_OUTER_MAX_OUTER > sizeof(batch)) {
        batch_flush(c);
    }
    return batch + batch_off + wh_quic_outer_prefix(c->outer);
}

/* The packet of inner_len bytes written at batch_room(): seal and queue. */
static void
batch_add(wh_quic_conn_t *c, size_t inner_len)
{
    ssize_t len = wh_quic_outer_seal(c->outer, batch + batch_off, sizeof(batch) - batch_off,
                                     inner_len);

    if (len < 0) {
        wh_udp_dropped(c->ls, WH_DROP_SEND);
        return;
    }
    if (batch_n == 0) {
        batch_seg = len;
    } else if ((size_t) len > batch_seg) {
        /* a larger one cannot join the segments before it */
        size_t at = batch_off;
        batch_flush(c);
        memmove(batch, batch + at, len);
        batch_seg = len;
    }
    batch_off += len;
    batch_n++;
    if ((size_t) len < batch_seg) batch_flush(c);      /* the short one ends a GSO run */
}

/* The clock every ngtcp2 call of the connection gets. From a packet's read
 * to the write after it (posted: the next loop pass) it stands still at
 * the read. ngtcp2 delays the ACK of a lone packet by srtt/8, a few
 * microseconds with a nearby client; with a fresh reading the write after
 * the read found that much processing gone by and sent the ACK alone, and
 * the reply the client waits for went out in a second packet an upstream's
 * round trip later. Standing still, the ACK waits for the reply to carry
 * it, or for its timer. */
static ngtcp2_tstamp
conn_ts(wh_quic_conn_t *c)
{
    if (!c->ts_held) c->ts = wh_quic_now();
    return c->ts;
}

/* now: the time the write that ends every event gave ngtcp2 */
static void
timer_update(wh_quic_conn_t *c, ngtcp2_tstamp now)
{
    ngtcp2_tstamp expiry = ngtcp2_conn_get_expiry(c->conn);
    double after;

    ev_timer_stop(wh_loop, &c->timer);
    if (expiry == UINT64_MAX) return;
    after = expiry <= now ? 0. : (double) (expiry - now) / NGTCP2_SECONDS;
    /* With nothing of ours queued, a deadline under the poll's own grain
     * is a delayed ACK's or the pacer's, which lets a packet go a grain
     * early anyway (loss timers are a millisecond or more): it gets the
     * grain. So the reply has its chance to carry the ACK, and no loop
     * pass is spent on a pacer with nothing to send. */
    if (after > 0. && after < WH_QUIC_ACK_WAIT && c->sq_head == NULL) after = WH_QUIC_ACK_WAIT;
    ev_timer_set(&c->timer, after, 0.);
    ev_timer_start(wh_loop, &c->timer);
}

static void
conn_close(wh_quic_conn_t *c, int liberr)
{
    ngtcp2_connection_close_error ccerr;
    ngtcp2_path_storage ps;
    ngtcp2_pkt_info pi;
    ngtcp2_ssize n;

    if (c->closing) return;
    if (!ngtcp2_conn_is_in_closing_period(c->conn) && !ngtcp2_conn_is_in_draining_period(c->conn)) {
        if (liberr == NGTCP2_ERR_CRYPTO) {
            ngtcp2_connection_close_error_set_transport_error_tls_alert(
                &ccerr, ngtcp2_conn_get_tls_alert(c->conn), NULL, 0);
        } else if (liberr != 0) {
            ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, liberr, NULL, 0);
        } else {
            ngtcp2_connection_close_error_default(&ccerr);
        }
        ngtcp2_path_storage_zero(&ps);
        n = ngtcp2_conn_write_connection_close(c->conn, &ps.path, &pi, batch_room(c),
                                               wh_quic_outer_max_inner(c->outer, 0), &ccerr,
                                               conn_ts(c));
        if (n > 0) {
            batch_add(c, n);
            batch_flush(c);
        }
    }
    conn_free(c);
}

/* ngtcp2's deadlines that are due at ts. WH_ERROR: the connection is gone. */
static int
conn_expire(wh_quic_conn_t *c, ngtcp2_tstamp ts)
{
    int rv = ngtcp2_conn_handle_expiry(c->conn, ts);

    if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT
        || (rv == NGTCP2_ERR_IDLE_CLOSE && !ngtcp2_conn_get_handshake_completed(c->conn)))
    {
        /* V2Ray's 8 s (quic-go's HandshakeTimeout), from the first packet:
         * packets trickling in do not move it */
        wh_log_ctx_t ctx;

        wh_log_ctx(WH_LOG_INFO, conn_ctx(c, &ctx), "quic handshake timed out");
        wh_live_refused(c->ls, WH_CLOSE_TIMEOUT);
        conn_free(c);               /* no CONNECTION_CLOSE, as for the idle timeout */
        return WH_ERROR;
    }
    if (rv == NGTCP2_ERR_IDLE_CLOSE) {
        conn_free(c);               /* silently, as the idle timeout wants */
        return WH_ERROR;
    }
    if (rv != 0) {
        conn_close(c, rv);
        return WH_ERROR;
    }
    return WH_OK;
}

static void
conn_write(wh_quic_conn_t *c)
{
    size_t max_inner = wh_quic_outer_max_inner(c->outer, 0);
    size_t max_pkts, npkts = 0, payload;
    ngtcp2_path_storage ps;
    ngtcp2_pkt_info pi;
    ngtcp2_tstamp ts = conn_ts(c);

    if (c->closing) return;
    /* A deadline already past (the pacer's, set by the last reply) is met
     * at the held time: its timer would fire at once, at a later time, and
     * find the held ACK's delay run out. */
    if (c->ts_held && ngtcp2_conn_get_expiry(c->conn) <= ts && conn_expire(c, ts) != WH_OK) return;
    if (c->rt->draining && c->nstreams == 0 && c->handshake_done) {
        /* A draining worker keeps no idle connection: the client opens a
         * new one to a worker that accepts. But QUIC has no GOAWAY: while
         * the client may still open a stream here (draining grants no new
         * ones), one may be on its way, and a close now would lose it. So
         * the close waits until the client has used up its streams, or
         * for WH_QUIC_DRAIN_IDLE without a stream. */
        if (c->streams_opened >= c->streams_granted) {
            conn_close(c, 0);
            return;
        }
        if (!ev_is_active(&c->drain)) {
            ev_timer_set(&c->drain, WH_QUIC_DRAIN_IDLE, 0.);
            ev_timer_start(wh_loop, &c->drain);
        }
    } else if (c->nstreams > 0) {
        ev_timer_stop(wh_loop, &c->drain);
    }
    payload = ngtcp2_conn_get_path_max_tx_udp_payload_size(c->conn);
    max_pkts = wh_min((size_t) WH_QUIC_MAX_PKTS,
                      ngtcp2_conn_get_send_quantum(c->conn) / (payload ? payload : 1200));
    if (max_pkts == 0) max_pkts = 1;
    ngtcp2_path_storage_zero(&ps);

    for (;;) {
        wh_quic_stream_t *st = sendq_pick(c);
        ngtcp2_vec vec[4];
        ngtcp2_ssize n, ndatalen = -1;
        uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
        int64_t sid = -1;
        int nvec = 0, fin = 0, i;
        size_t total = 0;

        if (st != NULL) {
            sid = st->id;
            nvec = wh_quic_stream_vecs(st, vec, wh_nelems(vec), &fin);
            for (i = 0; i < nvec; i++) total += vec[i].len;
            if (fin) flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
        }
        n = ngtcp2_conn_writev_stream(c->conn, &ps.path, &pi, batch_room(c), max_inner, &ndatalen,
                                      flags, sid, vec, nvec, ts);
        if (n < 0) {
            switch (n) {
            case NGTCP2_ERR_WRITE_MORE:
                wh_quic_stream_sent(st, ndatalen, fin && (size_t) ndatalen == total);
                sendq_rotate(st);
                continue;
            case NGTCP2_ERR_STREAM_DATA_BLOCKED:
                st->blocked = 1;
                continue;
            case NGTCP2_ERR_STREAM_SHUT_WR:
            case NGTCP2_ERR_STREAM_NOT_FOUND:
                wh_quic_conn_sendq_remove(st);
                continue;
            default:
                batch_flush(c);
                wh_log_ctx_t ctx;

                wh_log_ctx(WH_LOG_INFO, conn_ctx(c, &ctx), "quic connection closed: %s",
                           ngtcp2_strerror((int) n));
                conn_close(c, (int) n);
                return;
            }
        }
        if (st != NULL && ndatalen >= 0) {
            wh_quic_stream_sent(st, ndatalen, fin && (size_t) ndatalen == total);
            sendq_rotate(st);
        }
        if (n == 0) break;
        batch_add(c, n);
        if (++npkts >= max_pkts) break;
    }
    batch_flush(c);
    ngtcp2_conn_update_pkt_tx_time(c->conn, ts);
    timer_update(c, ts);
    c->ts_held = 0;
}

static void
write_posted(wh_posted_t *ev)
{
    conn_write(wh_container_of(ev, wh_quic_conn_t, write_ev));
}

void
wh_quic_conn_schedule(wh_quic_conn_t *c)
{
    if (c != NULL && !c->closing) wh_post(&c->write_ev);
}

void
wh_quic_conn_stream_done(wh_quic_conn_t *c)
{
    /* a draining connection closes with its last stream (in conn_write) */
    if (c->rt->draining) wh_quic_conn_schedule(c);
}

void
wh_quic_conn_drain(wh_quic_conn_t *c)
{
    wh_quic_conn_schedule(c);
}

static void
drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    wh_quic_conn_t *c = w->data;

    if (c->nstreams == 0) conn_close(c, 0);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    wh_quic_conn_t *c = w->data;

    if (conn_expire(c, conn_ts(c)) == WH_OK) conn_write(c);
}

/* --- ngtcp2 callbacks --------------------------------------------------- */

static void
rand_cb(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
    gnutls_rnd(GNUTLS_RND_RANDOM, dest, len);
}

static int
new_cid_cb(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen, void *user)
{
    wh_quic_conn_t *c = user;

    if (gnutls_rnd(GNUTLS_RND_RANDOM, cid->data, cidlen) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    cid->datalen = cidlen;
    if (ngtcp2_crypto_generate_stateless_reset_token(token, c->rt->reset_secret,
                                                     sizeof(c->rt->reset_secret), cid) != 0)
    {
        return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int
handshake_completed_cb(ngtcp2_conn *conn, void *user)
{
    wh_quic_conn_t *c = user;

    /* quic-go aborts without ALPN (spec 8.4); GnuTLS already refused a
     * ClientHello without overlap */
    if (!wh_quic_tls_alpn_ok(c)) return NGTCP2_ERR_CALLBACK_FAILURE;
    c->handshake_done = 1;
    c->rt->handshaking--;
    return 0;
}

static int
stream_open_cb(ngtcp2_conn *conn, int64_t id, void *user)
{
    wh_quic_conn_t *c = user;
    wh_quic_stream_t *st;

    if (!ngtcp2_is_bidi_stream(id)) return 0;
    c->streams_opened++;
    st = wh_quic_stream_new(c, id);
    if (st == NULL) return NGTCP2_ERR_CALLBACK_FAILURE;
    st->fresh = 1;      /* handed to the relay once ngtcp2 returns */
    ngtcp2_conn_set_stream_user_data(conn, id, st);
    return 0;
}

static int
recv_stream_data_cb(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t offset,
                    const uint8_t *data, size_t len, void *user, void *stream_user)
{
    wh_quic_stream_t *st = stream_user;

    /* the connection's window never waits for one stream's upstream */
    ngtcp2_conn_extend_max_offset(conn, len);
    if (st == NULL) {
        ngtcp2_conn_extend_max_stream_offset(conn, id, len);
        return 0;
    }
    return wh_quic_stream_recv(st, data, len, flags & NGTCP2_STREAM_DATA_FLAG_FIN) == 0
           ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int
acked_cb(ngtcp2_conn *conn, int64_t id, uint64_t offset, uint64_t len, void *user,
         void *stream_user)
{
    if (stream_user != NULL) wh_quic_stream_acked(stream_user, len);
    return 0;
}

static int
stream_close_cb(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t code, void *user,
                void *stream_user)
{
    wh_quic_conn_t *c = user;

    if (ngtcp2_is_bidi_stream(id) && !ngtcp2_conn_is_local_stream(conn, id) && !c->rt->draining) {
        /* ngtcp2 0.12 does not raise MAX_STREAMS by itself (spec 8.7) */
        ngtcp2_conn_extend_max_streams_bidi(conn, 1);
        c->streams_granted++;
    }
    if (stream_user != NULL) {
        ngtcp2_conn_set_stream_user_data(conn, id, NULL);
        wh_quic_stream_closed(stream_user, 1);
    }
    return 0;
}

static int
stream_reset_cb(ngtcp2_conn *conn, int64_t id, uint64_t final_size, uint64_t code, void *user,
                void *stream_user)
{
    wh_quic_stream_t *st = stream_user;

    if (st != NULL) {
        st->m.aborted = 1;
        wh_mux_signal(&st->m, WH_EV_READ | WH_EV_WRITE);
    }
    return 0;
}

static int
stop_sending_cb(ngtcp2_conn *conn, int64_t id, uint64_t code, void *user, void *stream_user)
{
    return stream_reset_cb(conn, id, 0, code, user, stream_user);
}

static int
extend_stream_data_cb(ngtcp2_conn *conn, int64_t id, uint64_t max_data, void *user,
                      void *stream_user)
{
    wh_quic_stream_t *st = stream_user;

    if (st != NULL) st->blocked = 0;
    return 0;
}

static void
conn_callbacks(ngtcp2_callbacks *cb)
{
    memset(cb, 0, sizeof(*cb));
    cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
    cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
    cb->handshake_completed = handshake_completed_cb;
    cb->encrypt = ngtcp2_crypto_encrypt_cb;
    cb->decrypt = ngtcp2_crypto_decrypt_cb;
    cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
    cb->recv_stream_data = recv_stream_data_cb;
    cb->acked_stream_data_offset = acked_cb;
    cb->stream_open = stream_open_cb;
    cb->stream_close = stream_close_cb;
    cb->rand = rand_cb;
    cb->get_new_connection_id = new_cid_cb;
    cb->update_key = ngtcp2_crypto_update_key_cb;
    cb->stream_reset = stream_reset_cb;
    cb->stream_stop_sending = stop_sending_cb;
    cb->extend_max_stream_data = extend_stream_data_cb;
    cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
    cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
    cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
    cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
}

/* --- life --------------------------------------------------------------- */

/* The connection's TLS, for the access log of its streams: QUIC is
 * TLS 1.3 always. */
static const wh_access_facts_t *
conn_facts(wh_quic_conn_t *c, wh_access_facts_t *f)
{
    gnutls_datum_t alpn;
    size_t len;
    unsigned type;

    if (c->ls->access_log == NULL) {
        return NULL;
    }
    memset(f, 0, sizeof(*f));
    f->ssl_protocol = "TLSv1.3";
    len = sizeof(f->sni) - 1;
    if (gnutls_server_name_get(c->tls, f->sni, &len, &type, 0) != 0) {
        f->sni[0] = '\0';
    }
    if (gnutls_alpn_get_selected_protocol(c->tls, &alpn) == 0) {
        snprintf(f->alpn, sizeof(f->alpn), "%.*s", (int) alpn.size, (const char *) alpn.data);
    }
    return f;
}

/* Streams that opened during the last packet go to the relay now, outside
 * ngtcp2's stack. */
static void
start_streams(wh_quic_conn_t *c)
{
    wh_quic_stream_t *st;
    wh_live_t live;
    wh_access_facts_t facts;
    const wh_access_facts_t *f = NULL;

    for (st = c->streams; st != NULL; st = st->next) {
        if (!st->fresh) continue;
        st->fresh = 0;
        if (f == NULL) f = conn_facts(c, &facts);
        wh_mux_coalesce(&st->m, c->ls->cycle->receive_coalesce);
        wh_live_open(&live, c->ls, WH_LIVE_STREAM);
        wh_relay_start(&live, &c->ls->dest, &st->m.ps.s, (struct sockaddr *) &c->peer.sa,
                       c->peer.len, NULL, 0, f);
        if (c->closing) return;
    }
}

int
wh_quic_conn_read(wh_quic_conn_t *c, const uint8_t *pkt, size_t len)
{
    ngtcp2_pkt_info pi = { 0 };
    wh_quic_stream_t *st;
    int rv = ngtcp2_conn_read_pkt(c->conn, &c->path, &pi, pkt, len, conn_ts(c));

    c->ts_held = 1;

    if (rv != 0) {
        if (rv == NGTCP2_ERR_DRAINING || rv == NGTCP2_ERR_DROP_CONN || rv == NGTCP2_ERR_RETRY) {
            /* the peer closed, or a first packet that opens nothing */
            conn_free(c);
            return WH_ERROR;
        }
        if (c->handshake_done) {
            wh_log_ctx_t ctx;

            wh_log_ctx(WH_LOG_INFO, conn_ctx(c, &ctx), "quic connection closed: %s",
                       ngtcp2_strerror(rv));
        }
        conn_close(c, rv);
        return WH_ERROR;
    }
    for (st = c->sq_head; st != NULL; st = st->sq_next) st->blocked = 0;
    start_streams(c);
    /* written once the whole batch of datagrams read together is in: one
     * ACK for all of them instead of one every second packet */
    wh_quic_conn_schedule(c);
    return WH_OK;
}

wh_quic_conn_t *
wh_quic_conn_accept(wh_quic_rt_t *rt, wh_quic_outer_t *outer, const wh_sockaddr_t *peer,
                    uint64_t hash, const ngtcp2_pkt_hd *hd, const ngtcp2_cid *odcid)
{
    static ngtcp2_callbacks callbacks;
    static int have_callbacks;
    ngtcp2_settings settings;
    ngtcp2_transport_params params;
    ngtcp2_cid scid;
    wh_quic_conn_t *c;
    uint64_t now = wh_quic_now();

    if (!have_callbacks) {
        conn_callbacks(&callbacks);
        have_callbacks = 1;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) return NULL;
    c->rt = rt;
    c->ls = rt->ls;
    c->outer = outer;
    c->peer = *peer;
    c->local = rt->ls->addr;
    c->hash = hash;
    c->path.local.addr = (ngtcp2_sockaddr *) &c->local.sa;
    c->path.local.addrlen = c->local.len;
    c->path.remote.addr = (ngtcp2_sockaddr *) &c->peer.sa;
    c->path.remote.addrlen = c->peer.len;
    c->sq_tail = &c->sq_head;
    c->write_ev.handler = write_posted;
    ev_init(&c->timer, timer_cb);
    c->timer.data = c;
    ev_init(&c->drain, drain_cb);
    c->drain.data = c;
    c->streams_granted = WH_QUIC_MAX_STREAMS;

    ngtcp2_settings_default(&settings);
    settings.initial_ts = now;
    settings.max_tx_udp_payload_size = wh_quic_outer_max_inner(outer, 0);
    settings.handshake_timeout = WH_QUIC_HANDSHAKE_TIMEOUT * NGTCP2_SECONDS;
    /* no auto-tuning past the window: it is what a stream may buffer here */
    settings.max_stream_window = WH_QUIC_STREAM_WINDOW;
    settings.max_window = 16 * 1024 * 1024;

    ngtcp2_transport_params_default(&params);
    params.initial_max_stream_data_bidi_local = WH_QUIC_STREAM_WINDOW;
    params.initial_max_stream_data_bidi_remote = WH_QUIC_STREAM_WINDOW;
    params.initial_max_stream_data_uni = WH_QUIC_STREAM_WINDOW;
    params.initial_max_data = WH_QUIC_CONN_WINDOW;
    params.initial_max_streams_bidi = WH_QUIC_MAX_STREAMS;
    params.initial_max_streams_uni = 0;
    params.max_idle_timeout = WH_QUIC_IDLE_TIMEOUT * NGTCP2_SECONDS;
    params.max_udp_payload_size = WH_QUIC_OUTER_MAX_INNER;
    params.active_connection_id_limit = 4;
    params.disable_active_migration = 1;
    if (odcid != NULL) {
        /* a Retry came first: the client checks both against what it saw */
        params.original_dcid = *odcid;
        params.retry_scid = hd->dcid;
        params.retry_scid_present = 1;
        settings.token = hd->token;
    } else {
        params.original_dcid = hd->dcid;
    }

    scid.datalen = WH_QUIC_CID_LEN;
    gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen);
    params.stateless_reset_token_present = 1;
    ngtcp2_crypto_generate_stateless_reset_token(params.stateless_reset_token, rt->reset_secret,
                                                 sizeof(rt->reset_secret), &scid);

    if (ngtcp2_conn_server_new(&c->conn, &hd->scid, &scid, &c->path, hd->version, &callbacks,
                               &settings, &params, NULL, c) != 0)
    {
        free(c);
        return NULL;
    }
    if (wh_quic_tls_session(rt->tls, c) != WH_OK) {
        if (c->tls != NULL) gnutls_deinit(c->tls);
        ngtcp2_conn_del(c->conn);
        free(c);
        return NULL;
    }
    wh_quic_conn_link(c);
    rt->handshaking++;
    wh_udp_own(c->ls, &c->peer);
    wh_live_open(&c->live, c->ls, WH_LIVE_CARRIER);
    return c;
}

static void
conn_free(wh_quic_conn_t *c)
{
    wh_quic_stream_t *st;

    c->closing = 1;
    ev_timer_stop(wh_loop, &c->timer);
    ev_timer_stop(wh_loop, &c->drain);
    wh_post_cancel(&c->write_ev);
    while ((st = c->streams) != NULL) {
        wh_quic_stream_detach(st);
        /* meant for the relay, which never took it */
        if (st->fresh) st->m.owners &= ~WH_MUX_RELAY;
        wh_quic_stream_closed(st, 1);
    }
    wh_quic_conn_unlink(c);
    if (!c->handshake_done) c->rt->handshaking--;
    wh_udp_disown(c->ls, &c->peer);
    ngtcp2_conn_del(c->conn);
    gnutls_deinit(c->tls);
    wh_live_close(&c->live, 0);
    wh_limit_release(c->ls, &c->slot);
    free(c);
}

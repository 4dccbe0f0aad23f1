/*
 * wh_kcp_module.c -- the "kcp" / "mkcp" transport: datagrams in, one
 * relayed stream per KCP conversation out (spec 9).
 *
 * Runs in: workers (parse in the master). The UDP layer (src/udp) reads
 * the sockets and calls kcp_datagram for each datagram; this file strips
 * the obfuscation header, opens the security envelope, decodes the
 * segments, finds the session by (peer address, conv of the first
 * segment) in a per-listener hash table, and feeds the protocol engine
 * (wh_kcp_session.c, pure). Each session is a wh_stream_t handed to the
 * relay; with security "tls", through the stream transports' handshake
 * pipeline first (wh_handshake.c: its TLS stage, deadline and counts).
 *
 * Timing: one scheduler per worker (wh_kcp_sched.c) flushes every session
 * when due: every tti while it has something to send or is closing (a
 * millisecond apart while a paced flush goes on, wh_kcp_send.c), every
 * second while terminating, else every 5 s; input or a write to an idle
 * session makes it due at once (V2Ray's updater). Stream callbacks are posted, never
 * called from inside the relay's own calls.
 *
 * First data: a new conversation is relayed (and its upstream connected)
 * only once its first data has arrived, within policy.handshake of its
 * first datagram, as V2Ray's inbound reads its request under that
 * deadline; a conversation that only pings is closed as a timeout then,
 * and never costs an upstream connection. With TLS, the handshake
 * pipeline starts with the session and keeps the same deadline instead.
 *
 * Half-open: until the client acknowledges a segment we sent, the send
 * queue holds one initial window and only its head is resent, backing
 * off (wh_kcp_send.c); and a session whose data went out unacknowledged
 * and whose client then sent nothing at all for policy.handshake is
 * ended then as a timeout (conn_never_acked), not after 30 s without
 * input. V2Ray has none of these rules: its queue is writeBufferSize from
 * the first byte, it resends every due segment, and the 30 s apply to
 * every session (transport/internet/kcp: connection.go flush, sending.go
 * Push), so a flood of one-segment conversations from forged sources,
 * relayed to an upstream that talks, holds writeBufferSize each for 30 s.
 * A V2Ray client acknowledges every DATA segment in its next flush (a
 * tti) and pings every 3 s, so only a peer that is not there meets them.
 *
 * Lifetime: the relay closing the stream is the application's close
 * (9.10); the session then lingers, with a live handle of its own
 * (wh_live.h) so a draining worker waits for it, until Terminated, when it
 * is freed by the scheduler (the only place a session is freed, so no
 * callback ever runs on freed memory).
 *
 * Output: one segment per datagram, as V2Ray sends them; a flush's
 * datagrams to one peer go out in one UDP GSO call where the kernel has
 * it. Bounds: a session is a client of wh_limit.h (worker_connections,
 * maxConnections, maxConnectionsPerAddress); new conversations beyond
 * those are dropped (refused).
 */
#include "wh_cycle.h"
#include "wh_event.h"
#include "wh_handshake.h"
#include "wh_limit.h"
#include "wh_log.h"
#include "wh_relay.h"
#include "wh_udp.h"

#include "wh_kcp_conf.h"
#include "wh_kcp_crypt.h"
#include "wh_kcp_sched.h"
#include "wh_kcp_segment.h"
#include "wh_kcp_session.h"

#include <openssl/rand.h>

#define WH_KCP_IDLE_FLUSH     5000      /* ms: V2Ray's background flush */
#define WH_KCP_CLOSING_FLUSH  1000
#define WH_KCP_PACE_FLUSH     1         /* ms: the rest of a paced flush (wh_kcp_send.c) */
#define WH_KCP_MAX_SEGS       128       /* 2048 / 16: the most one datagram holds */
#define WH_KCP_GSO_MAX        64
#define WH_KCP_GSO_BYTES      65000     /* a GSO send is one UDP payload: < 64 KiB */

typedef struct wh_kcp_listener_s wh_kcp_listener_t;
typedef struct wh_kcp_conn_s wh_kcp_conn_t;

struct wh_kcp_conn_s {
    wh_posted_stream_t ps;      /* first: the stream is the conn */
    wh_kcp_session_t k;
    wh_conn_slot_t slot;        /* its place in the connection limits */
    wh_live_t live;             /* the stream's, until the relay takes it */
    wh_live_t linger;           /* the goodbye after the stream closed */
    wh_kcp_timer_t timer;
    wh_kcp_listener_t *kl;
    wh_kcp_conn_t *hnext;
    uint64_t born;              /* ms: the session clock starts here */
    uint32_t hash;
    unsigned attached:1;        /* the stream is open (relay or handshake) */
    unsigned in_table:1;
    unsigned waiting:1;         /* no data yet: not relayed, due by born + handshake */
    unsigned timed_out:1;       /* never acknowledged: the relay reads a timeout */
    wh_sockaddr_t peer;
    wh_udp_local_t local;       /* where the client sends to (wildcard listeners) */
};

struct wh_kcp_listener_s {
    wh_listener_t *ls;
    wh_kcp_conf_t *conf;
    wh_kcp_crypt_t crypt;
    wh_pkt_header_state_t header;   /* one instance per listener per worker (spec 7) */
    wh_kcp_conn_t **buckets;
    uint32_t mask;
    uint32_t count;
};

#define conn_of(s) wh_container_of(s, wh_kcp_conn_t, ps.s)

static const char *const networks[] = { "kcp", "mkcp", NULL };
static const char *const alpn[] = { "h2", "http/1.1", NULL };

static wh_kcp_sched_t sched;
static int sched_ready;

/* datagrams of one flush to one peer, sent together */
static struct {
    wh_listener_t *ls;
    const wh_sockaddr_t *peer;
    const wh_udp_local_t *local;
    size_t seg;
    size_t len;
    int count;
    int ended;                  /* a shorter datagram closed the run */
    uint8_t buf[WH_KCP_GSO_MAX * WH_UDP_MAX_DATAGRAM];
} out;

static void conn_fire(wh_kcp_sched_t *s, wh_kcp_timer_t *t, uint64_t now);

/* ---------------------------------------------------------------- output */

static void
out_flush(void)
{
    if (out.count == 1) {
        (void) wh_udp_send(out.ls, out.peer, out.local, out.buf, out.len);
    } else if (out.count > 1) {
        (void) wh_udp_send_gso(out.ls, out.peer, out.local, out.buf, out.len, out.seg);
    }
    out.count = 0;
    out.len = 0;
    out.ended = 0;
}

static void
out_add(wh_listener_t *ls, const wh_sockaddr_t *peer, const wh_udp_local_t *local,
        const uint8_t *d, size_t n)
{
    if (out.count > 0 && (out.ls != ls || out.peer != peer || out.ended || n > out.seg
                          || out.count == WH_KCP_GSO_MAX || out.len + n > WH_KCP_GSO_BYTES))
    {
        out_flush();
    }
    if (out.count == 0) {
        out.ls = ls;
        out.peer = peer;
        out.local = local;
        out.seg = n;
    } else if (n < out.seg) {
        out.ended = 1;
    }
    memcpy(out.buf + out.len, d, n);
    out.len += n;
    out.count++;
}

static void
conn_output(wh_kcp_session_t *k, const wh_kcp_seg_t *seg)
{
    wh_kcp_conn_t *c = k->data;
    wh_kcp_listener_t *kl = c->kl;
    const wh_pkt_header_t *h = kl->conf->header;
    uint8_t plain[WH_UDP_MAX_DATAGRAM], dgram[WH_UDP_MAX_DATAGRAM];
    ssize_t n, sealed;

    n = wh_kcp_seg_encode(seg, plain, sizeof(plain));
    if (n < 0) return;
    sealed = wh_kcp_crypt_seal(&kl->crypt, dgram + h->size, sizeof(dgram) - h->size, plain, n,
                               NULL);
    if (sealed < 0) return;
    wh_pkt_header_write(h, &kl->header, dgram);
    out_add(kl->ls, &c->peer, &c->local, dgram, h->size + sealed);
}

/* ------------------------------------------------------- session table */

/* By peer address only (conv is compared in the chain), so "do we know
 * this peer at all" is one bucket walk too. */
static uint32_t
key_hash(const wh_sockaddr_t *peer)
{
    const uint8_t *p = (const uint8_t *) &peer->sa;
    uint32_t h = 0x811c9dc5u;
    socklen_t i;

    for (i = 0; i < peer->len; i++) {
        h = (h ^ p[i]) * 0x01000193u;
    }
    return h ^ (h >> 15);
}

static wh_kcp_conn_t *
table_find(wh_kcp_listener_t *kl, const wh_sockaddr_t *peer, uint16_t conv)
{
    uint32_t h;
    wh_kcp_conn_t *c;

    if (kl->buckets == NULL) return NULL;
    h = key_hash(peer);
    for (c = kl->buckets[h & kl->mask]; c != NULL; c = c->hnext) {
        if (c->hash == h && c->k.conv == conv && wh_addr_equal(&c->peer, peer)) return c;
    }
    return NULL;
}

static int
table_knows_peer(wh_kcp_listener_t *kl, const wh_sockaddr_t *peer)
{
    uint32_t h = key_hash(peer);
    wh_kcp_conn_t *c;

    for (c = kl->buckets[h & kl->mask]; c != NULL; c = c->hnext) {
        if (c->hash == h && wh_addr_equal(&c->peer, peer)) return 1;
    }
    return 0;
}

static int
table_grow(wh_kcp_listener_t *kl)
{
    uint32_t size = kl->buckets ? (kl->mask + 1) * 2 : 64, i;
    wh_kcp_conn_t **b = calloc(size, sizeof(*b)), *c, *next;

    if (b == NULL) return WH_ERROR;
    for (i = 0; kl->buckets != NULL && i <= kl->mask; i++) {
        for (c = kl->buckets[i]; c != NULL; c = next) {
            next = c->hnext;
            c->hnext = b[c->hash & (size - 1)];
            b[c->hash & (size - 1)] = c;
        }
    }
    free(kl->buckets);
    kl->buckets = b;
    kl->mask = size - 1;
    return WH_OK;
}

static void
table_remove(wh_kcp_conn_t *c)
{
    wh_kcp_listener_t *kl = c->kl;
    wh_kcp_conn_t **pp;

    if (!c->in_table) return;
    for (pp = &kl->buckets[c->hash & kl->mask]; *pp != NULL; pp = &(*pp)->hnext) {
        if (*pp == c) {
            *pp = c->hnext;
            break;
        }
    }
    c->in_table = 0;
    kl->count--;
    wh_udp_disown(kl->ls, &c->peer);
}

/* ---------------------------------------------------------------- timing */

static uint32_t
conn_now(wh_kcp_conn_t *c, uint64_t now)
{
    return (uint32_t) (now - c->born);
}

static void
conn_schedule(wh_kcp_conn_t *c, uint64_t due)
{
    if (wh_kcp_sched_set(&sched, &c->timer, due) == WH_OK) {
        wh_kcp_sched_touch(&sched);
    }
}

/* Input or a write: an idle session flushes at once, a busy one keeps its
 * tti rhythm (V2Ray's updater wakes only when it is not running). */
static void
conn_wake(wh_kcp_conn_t *c)
{
    uint64_t now = wh_kcp_now_ms();

    if (c->timer.pos == 0 || c->timer.due > now + c->k.p->tti) {
        conn_schedule(c, now);
    }
}

static void
conn_notify_later(wh_kcp_conn_t *c)
{
    int events = 0;

    if (!c->attached) return;
    if (wh_kcp_readable(&c->k)) events |= WH_EV_READ;
    if (wh_kcp_writable(&c->k)) events |= WH_EV_WRITE;
    wh_stream_ready_later(&c->ps, events);
}

static void
conn_free(wh_kcp_conn_t *c)
{
    table_remove(c);
    wh_kcp_sched_del(&sched, &c->timer);
    wh_posted_stream_cancel(&c->ps);
    wh_kcp_session_free(&c->k);
    wh_live_close(&c->linger, 0);
    wh_live_close(&c->live, WH_CLOSE_ERROR);
    wh_limit_release(c->kl->ls, &c->slot);
    free(c);
}

static void conn_destroy(wh_stream_t *s);

/* What a session's log lines are about. */
static const wh_log_ctx_t *
conn_ctx(wh_kcp_conn_t *c, wh_log_ctx_t *ctx)
{
    ctx->listener = c->kl->ls->tag;
    ctx->client = (struct sockaddr *) &c->peer.sa;
    ctx->clientlen = c->peer.len;
    ctx->upstream = NULL;
    return ctx;
}
static void conn_first_data(wh_kcp_conn_t *c);

static uint64_t
ls_handshake_ms(wh_listener_t *ls)
{
    return (uint64_t) (ls->cycle->policy.handshake * 1000);
}

static uint64_t
conn_first_due(wh_kcp_conn_t *c)
{
    return c->born + ls_handshake_ms(c->kl->ls);
}

/* No data within policy.handshake: closed like a stream the application
 * ended, counted as a handshake timeout. */
static void
conn_expire(wh_kcp_conn_t *c)
{
    wh_log_ctx_t ctx;

    c->waiting = 0;
    wh_log_ctx(WH_LOG_INFO, conn_ctx(c, &ctx), "mKCP first data timed out");
    conn_destroy(&c->ps.s);
    wh_live_close(&c->live, WH_CLOSE_TIMEOUT);
}

/* Relayed, sent data, and the client never acknowledged any of it nor
 * sent anything since, for policy.handshake: it does not receive what we
 * send, or is not there (a forged source). Terminated at once: no
 * goodbye to a peer that never answered, no queue kept for 23 s more.
 * The relay reads a timeout and closes the stream, counting it. */
static void
conn_never_acked(wh_kcp_conn_t *c, uint64_t now)
{
    wh_log_ctx_t ctx;

    wh_log_ctx(WH_LOG_INFO, conn_ctx(c, &ctx), "mKCP client never acknowledged");
    wh_kcp_set_state(&c->k, WH_KCP_TERMINATED, conn_now(c, now));
    c->timed_out = 1;
}

static void
conn_fire(wh_kcp_sched_t *s, wh_kcp_timer_t *t, uint64_t now)
{
    wh_kcp_conn_t *c = wh_container_of(t, wh_kcp_conn_t, timer);
    uint64_t next;

    (void) s;
    if (c->waiting) {
        if (now >= conn_first_due(c)) {
            conn_expire(c);
        } else if (c->k.state != WH_KCP_ACTIVE) {
            conn_first_data(c);
        }
    } else if ((c->k.state == WH_KCP_ACTIVE || c->k.state == WH_KCP_READY_TO_CLOSE)
               && wh_kcp_unanswered(&c->k, conn_now(c, now),
                                    (uint32_t) ls_handshake_ms(c->kl->ls)))
    {
        conn_never_acked(c, now);
    }
    wh_kcp_flush(&c->k, conn_now(c, now));
    out_flush();
    if (c->k.state == WH_KCP_TERMINATED) {
        table_remove(c);
        if (!c->attached) {
            conn_free(c);
            return;
        }
        /* the relay still holds the stream: it reads the end now */
        conn_notify_later(c);
        return;
    }
    conn_notify_later(c);
    if (c->k.state == WH_KCP_TERMINATING) {
        next = WH_KCP_CLOSING_FLUSH;
    } else if (c->k.paced) {
        next = WH_KCP_PACE_FLUSH;
    } else if (wh_kcp_busy(&c->k) || c->k.state != WH_KCP_ACTIVE) {
        /* closing states move on in a flush: not 5 s later (spec 9.10) */
        next = c->k.p->tti;
    } else {
        next = WH_KCP_IDLE_FLUSH;
    }
    conn_schedule(c, c->waiting ? wh_min(now + next, conn_first_due(c)) : now + next);
}

static void
sched_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) w;
    (void) revents;
    wh_kcp_sched_run(&sched);
}

/* ---------------------------------------------------------------- stream */

static ssize_t
conn_read(wh_stream_t *s, void *buf, size_t size)
{
    wh_kcp_conn_t *c = conn_of(s);
    ssize_t n;

    if (c->timed_out) {
        s->err = wh_err_timeout;
        return WH_ERROR;
    }
    n = wh_kcp_read(&c->k, buf, size);

    if (n == WH_AGAIN) {
        wh_stream_want(s, WH_EV_READ);
    }
    return n;
}

static ssize_t
conn_write(wh_stream_t *s, const void *buf, size_t size)
{
    wh_kcp_conn_t *c = conn_of(s);
    ssize_t n;

    if (c->timed_out) {
        s->err = wh_err_timeout;
        return WH_ERROR;
    }
    n = wh_kcp_write(&c->k, buf, size);

    if (n == WH_AGAIN || (n >= 0 && (size_t) n < size)) {
        wh_stream_want(s, WH_EV_WRITE);
    }
    if (n > 0 && c->k.state == WH_KCP_ACTIVE) {
        conn_wake(c);
    }
    return n;
}

static int
conn_shutdown_write(wh_stream_t *s)
{
    wh_kcp_conn_t *c = conn_of(s);

    /* no half-close in mKCP (spec 1.2): the end of the upstream ends it */
    wh_kcp_close(&c->k, conn_now(c, wh_kcp_now_ms()));
    conn_wake(c);
    conn_notify_later(c);
    return WH_OK;
}

static void
conn_wait(wh_stream_t *s, int events)
{
    wh_kcp_conn_t *c = conn_of(s);

    wh_stream_want(s, events);
    conn_notify_later(c);
}

static void
conn_destroy(wh_stream_t *s)
{
    wh_kcp_conn_t *c = conn_of(s);

    c->attached = 0;
    s->want = 0;
    wh_posted_stream_cancel(&c->ps);
    wh_kcp_close(&c->k, conn_now(c, wh_kcp_now_ms()));
    if (c->linger.ls == NULL) {
        /* a carrier of nothing now, but the worker waits for its goodbye */
        wh_live_open(&c->linger, c->kl->ls, WH_LIVE_LINGER);
    }
    /* freed (or flushed) by the scheduler, never here: we may be inside
     * one of our own calls */
    conn_schedule(c, wh_kcp_now_ms());
}

static const wh_stream_ops_t conn_ops = {
    .name = "kcp",
    .read = conn_read,
    .write = conn_write,
    .shutdown_write = conn_shutdown_write,
    .wait = conn_wait,
    .splice_fd = NULL,
    .destroy = conn_destroy,
};

/* ------------------------------------------------------------- datagrams */

/* A conversation not yet relayed: relay it once its first data is here. */
static void
conn_first_data(wh_kcp_conn_t *c)
{
    if (c->k.rcv_head != NULL && c->k.rcv_head->sn == c->k.rcv_next) {
        c->waiting = 0;
        wh_relay_start(&c->live, &c->live.ls->dest, &c->ps.s, (struct sockaddr *) &c->peer.sa,
                       c->peer.len, NULL, 0, NULL);
    } else if (c->k.state != WH_KCP_ACTIVE) {
        /* closed by the client before a byte: nothing to relay */
        c->waiting = 0;
        conn_destroy(&c->ps.s);
        wh_live_close(&c->live, WH_CLOSE_DONE);
    } else {
        c->waiting = 1;     /* conn_fire keeps the deadline */
    }
}

static wh_kcp_conn_t *
conn_create(wh_kcp_listener_t *kl, const wh_sockaddr_t *peer, uint16_t conv)
{
    wh_kcp_conn_t *c;

    if (kl->count >= kl->mask + 1 && table_grow(kl) != WH_OK) return NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL) return NULL;
    c->ps.s.ops = &conn_ops;
    c->kl = kl;
    c->peer = *peer;
    c->born = wh_kcp_now_ms();
    c->hash = key_hash(peer);
    wh_posted_stream_init(&c->ps);
    c->attached = 1;
    wh_kcp_session_init(&c->k, &kl->conf->params, conv, conn_output, c);
    c->hnext = kl->buckets[c->hash & kl->mask];
    kl->buckets[c->hash & kl->mask] = c;
    c->in_table = 1;
    kl->count++;
    return c;
}

static void
kcp_datagram(wh_listener_t *ls, wh_udp_packet_t *pkt)
{
    wh_kcp_listener_t *kl = ls->runtime;
    wh_kcp_seg_t segs[WH_KCP_MAX_SEGS];
    const uint8_t *body = pkt->data;
    size_t len = pkt->len;
    uint8_t *plain, orig[WH_UDP_MAX_DATAGRAM];
    wh_udp_packet_t copy;
    wh_conn_slot_t slot;
    ssize_t n;
    int nsegs, keep;
    wh_kcp_conn_t *c;

    if (kl == NULL) return;
    /* opening works in place; a datagram of a peer we do not know may have
     * to be passed on as it came, to the worker that owns it */
    keep = !pkt->forwarded && pkt->len <= sizeof(orig) && !table_knows_peer(kl, &pkt->peer);
    if (keep) memcpy(orig, pkt->data, pkt->len);
    if (wh_pkt_header_strip(kl->conf->header, &body, &len) != WH_OK
        || (n = wh_kcp_crypt_open(&kl->crypt, (uint8_t *) body, len, &plain)) < 0)
    {
        wh_udp_dropped(ls, WH_DROP_AUTH);
        return;
    }
    nsegs = wh_kcp_segs_decode(plain, n, segs, WH_KCP_MAX_SEGS, NULL);
    if (nsegs < 1) {
        wh_udp_dropped(ls, WH_DROP_MALFORMED);
        return;
    }
    c = table_find(kl, &pkt->peer, segs[0].conv);
    if (c == NULL) {
        if (segs[0].cmd == WH_KCP_CMD_TERMINATE) {
            wh_udp_dropped(ls, WH_DROP_REFUSED);    /* a goodbye to a session gone */
            return;
        }
        if (keep) {
            copy = *pkt;
            copy.data = orig;
            if (wh_udp_forward(ls, &copy)) {
                return;     /* a worker of the previous generation owns this peer */
            }
        }
        if (pkt->forwarded
            || wh_limit_admit(ls, (struct sockaddr *) &pkt->peer.sa, &slot) != WH_OK)
        {
            wh_udp_dropped(ls, WH_DROP_REFUSED);
            return;
        }
        c = conn_create(kl, &pkt->peer, segs[0].conv);
        if (c == NULL) {
            wh_limit_release(ls, &slot);
            wh_udp_dropped(ls, WH_DROP_REFUSED);
            return;
        }
        c->slot = slot;
        c->local = pkt->local;
        wh_udp_own(ls, &pkt->peer);
        wh_live_open(&c->live, ls, WH_LIVE_STREAM);
        wh_kcp_input(&c->k, conn_now(c, wh_kcp_now_ms()), segs, nsegs);
        conn_wake(c);
        if (ls->tls != NULL) {
            /* its slot stays with the session (conn_free) */
            wh_handshake_start(&c->live, &c->ps.s, (struct sockaddr *) &c->peer.sa, c->peer.len);
        } else {
            conn_first_data(c);
        }
        return;
    }
    c->local = pkt->local;
    wh_kcp_input(&c->k, conn_now(c, wh_kcp_now_ms()), segs, nsegs);
    conn_wake(c);
    if (c->waiting) {
        conn_first_data(c);
    }
    conn_notify_later(c);
}

/* ---------------------------------------------------------------- worker */

static int
kcp_start(wh_listener_t *ls, wh_worker_ctx_t *ctx)
{
    wh_kcp_conf_t *conf = ls->module_conf;
    wh_kcp_listener_t *kl = wh_xalloc(sizeof(*kl));

    memset(kl, 0, sizeof(*kl));
    kl->ls = ls;
    kl->conf = conf;
    if (wh_kcp_crypt_init(&kl->crypt, conf->seed, conf->seed_len) != WH_OK
        || wh_pkt_header_init(conf->header, &kl->header) != WH_OK
        || table_grow(kl) != WH_OK)
    {
        wh_log(WH_LOG_ERROR, "kcp: cannot set up the security of listener %s", ls->tag);
        free(kl);
        return WH_ERROR;
    }
    if (!sched_ready) {
        ev_init(&sched.ev, sched_cb);
        sched.fire = conn_fire;
        sched.armed = UINT64_MAX;
        sched_ready = 1;
    }
    ls->runtime = kl;
    return wh_udp_start(ls, ctx);
}

static void
kcp_stop(wh_listener_t *ls)
{
    /* live sessions go on (they still send from the socket and get their
     * datagrams forwarded from the next generation) until they end */
    wh_udp_stop(ls);
}

const wh_module_t wh_kcp_module = {
    .name = "kcp",
    .networks = networks,
    .alpn = alpn,
    .settings = "kcpSettings",
    .directives = wh_kcp_directives,
    .conf_size = sizeof(wh_kcp_conf_t),
    .postconf = wh_kcp_postconf,
    .free_conf = NULL,
    .bind = wh_udp_bind,
    .start = kcp_start,
    .stop = kcp_stop,
    .datagram = kcp_datagram,
};

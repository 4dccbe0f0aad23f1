/*
 * wh_quic_module.c -- the "quic" transport (spec 8): quicSettings, the
 * per-worker listener state, and the datagram hook that routes every
 * datagram to its connection.
 *
 * Routing is by peer address, before the outer layer is opened: V2Ray's
 * clients keep their 4-tuple for the life of a connection (one UDP socket
 * per connection, disable_active_migration), the outer encryption hides
 * connection IDs from anyone without the key, and a datagram that must be
 * passed to the worker owning its peer after a reload (wh_udp_forward)
 * has to travel still sealed. ngtcp2 then checks the connection IDs
 * itself.
 *
 * A new peer's Initial gets a connection, or a stateless Retry while the
 * listener has quicSettings.retry handshakes in progress in this worker
 * (wh_quic_retry.c); an Initial that brings back a good token gets its
 * connection whatever the count.
 *
 * An absent quicSettings means V2Ray's default, AES-128-GCM under the
 * empty key's K (spec 8.1); ChaCha20-Poly1305 under the same K is tried
 * too for clients built for other CPU architectures, and such a
 * connection is answered with it.
 */
#include "wh_quic.h"
#include "wh_log.h"
#include "wh_relay.h"

#include <gnutls/crypto.h>
#include <netinet/in.h>

#define WH_QUIC_HASH_SIZE  4096         /* buckets of the peer table, per worker */

static const char *const networks[] = { "quic", NULL };
static const char *const alpn[] = { "h2", "http/1.1", NULL };
/* the outer layer's settings are read together, by the code its tests share */
static const wh_directive_t quic_directives[] = {
    { .name = "security", .type = WH_DIR_MODULE },
    { .name = "key", .type = WH_DIR_MODULE },
    { .name = "header", .type = WH_DIR_MODULE },
    { .name = "retry", .type = WH_DIR_INT, .offset = offsetof(wh_quic_conf_t, retry),
      .min = 0, .max = 1000000, .dflt = WH_QUIC_RETRY_DEFAULT },
    wh_null_directive
};

static wh_quic_conn_t *table[WH_QUIC_HASH_SIZE];

/* --- configuration -------------------------------------------------------- */

static int
quic_postconf(wh_conf_t *cf, wh_listener_t *ls, const config_setting_t *ss,
              const config_setting_t *quic)
{
    wh_quic_conf_t *conf = ls->module_conf;

    if (wh_quic_retry_init() != WH_OK) {
        wh_conf_error(cf, ss, "cannot draw the QUIC Retry secret");
        return WH_ERROR;
    }
    if (wh_quic_outer_conf_read(cf, quic, &conf->outer) != WH_OK) {
        if (cf->error[0] == '\0') wh_conf_error(cf, ss, "cannot derive the QUIC key");
        return WH_ERROR;
    }
    conf->default_outer = quic == NULL;
    if (ls->addr.sa.ss_family != AF_INET && ls->addr.sa.ss_family != AF_INET6) {
        wh_conf_error(cf, ss, "network \"quic\" listens on an IP address, not a unix socket");
        return WH_ERROR;
    }
    return WH_OK;
}

/* --- the peer table ------------------------------------------------------- */

static uint64_t
peer_hash(const wh_quic_rt_t *rt, const wh_sockaddr_t *peer)
{
    const uint8_t *p;
    size_t n, i;
    uint64_t h = 14695981039346656037ULL ^ (uint64_t) (uintptr_t) rt;

    if (peer->sa.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *) &peer->sa;
        h = (h ^ sin->sin_port) * 1099511628211ULL;
        p = (const uint8_t *) &sin->sin_addr;
        n = 4;
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) &peer->sa;
        h = (h ^ sin6->sin6_port) * 1099511628211ULL;
        p = (const uint8_t *) &sin6->sin6_addr;
        n = 16;
    }
    for (i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

wh_quic_conn_t *
wh_quic_conn_find(wh_quic_rt_t *rt, const wh_sockaddr_t *peer, uint64_t *hash)
{
    wh_quic_conn_t *c;

    *hash = peer_hash(rt, peer);
    for (c = table[*hash % WH_QUIC_HASH_SIZE]; c != NULL; c = c->hnext) {
        if (c->hash == *hash && c->rt == rt && wh_addr_equal(&c->peer, peer)) return c;
    }
    return NULL;
}

void
wh_quic_conn_link(wh_quic_conn_t *c)
{
    wh_quic_conn_t **b = &table[c->hash % WH_QUIC_HASH_SIZE];

    c->hnext = *b;
    *b = c;
    c->next = c->rt->conns;
    c->prev = &c->rt->conns;
    if (c->rt->conns != NULL) c->rt->conns->prev = &c->next;
    c->rt->conns = c;
}

void
wh_quic_conn_unlink(wh_quic_conn_t *c)
{
    wh_quic_conn_t **p;

    for (p = &table[c->hash % WH_QUIC_HASH_SIZE]; *p != NULL; p = &(*p)->hnext) {
        if (*p == c) {
            *p = c->hnext;
            break;
        }
    }
    *c->prev = c->next;
    if (c->next != NULL) c->next->prev = c->prev;
}

/* --- datagrams -------------------------------------------------------------- */

static void
quic_datagram(wh_listener_t *ls, wh_udp_packet_t *pkt)
{
    static uint8_t copy[WH_UDP_MAX_DATAGRAM];
    wh_quic_rt_t *rt = ls->runtime;
    wh_quic_conn_t *c;
    wh_quic_outer_t *outer;
    ngtcp2_pkt_hd hd;
    ngtcp2_cid odcid;
    wh_conn_slot_t slot;
    uint64_t hash;
    uint8_t *inner;
    ssize_t n;
    int k, validated;

    if (rt == NULL) return;
    c = wh_quic_conn_find(rt, &pkt->peer, &hash);
    if (c != NULL) {
        n = wh_quic_outer_open(c->outer, pkt->data, pkt->len, &inner);
        if (n <= 0) {
            wh_udp_dropped(ls, WH_DROP_AUTH);
            return;
        }
        c->dst = pkt->local;
        wh_quic_conn_read(c, inner, n);
        return;
    }
    if (wh_udp_forward(ls, pkt)) return;
    if (pkt->forwarded || rt->draining) {
        wh_udp_dropped(ls, WH_DROP_REFUSED);
        return;
    }
    /* a new peer: its first datagram must open and be a client Initial */
    if (rt->nouter > 1) memcpy(copy, pkt->data, wh_min(pkt->len, sizeof(copy)));
    for (k = 0, n = -1; k < rt->nouter && n <= 0; k++) {
        if (k > 0) memcpy(pkt->data, copy, wh_min(pkt->len, sizeof(copy)));
        outer = &rt->outer[k];
        n = wh_quic_outer_open(outer, pkt->data, pkt->len, &inner);
    }
    if (n <= 0) {
        wh_udp_dropped(ls, WH_DROP_AUTH);
        return;
    }
    /* not an Initial we can take: short headers of a connection already
     * gone, garbage */
    if (ngtcp2_accept(&hd, inner, n) != 0) {
        wh_udp_dropped(ls, (inner[0] & 0x80) ? WH_DROP_MALFORMED : WH_DROP_REFUSED);
        return;
    }
    validated = wh_quic_retry_verify(&hd, &pkt->peer, &odcid, wh_quic_now());
    switch (validated) {
    case WH_OK:
        break;
    case WH_ERROR:
        /* forged, expired, or another address's: the peer starts again */
        wh_udp_dropped(ls, WH_DROP_AUTH);
        return;
    default:
        if (wh_quic_retry_wanted(rt)) {
            wh_quic_retry_send(rt, outer, pkt, &hd, n);
            return;
        }
    }
    /* worker_connections and the listener's caps (wh_limit.h) */
    if (wh_limit_admit(ls, (struct sockaddr *) &pkt->peer.sa, &slot) != WH_OK) {
        wh_udp_dropped(ls, WH_DROP_REFUSED);
        return;
    }
    c = wh_quic_conn_accept(rt, outer, &pkt->peer, hash, &hd,
                            validated == WH_OK ? &odcid : NULL);
    if (c == NULL) {
        wh_limit_release(ls, &slot);
        wh_udp_dropped(ls, WH_DROP_REFUSED);
        return;
    }
    c->slot = slot;
    c->dst = pkt->local;
    if (wh_quic_conn_read(c, inner, n) != WH_OK) {
        wh_udp_dropped(ls, WH_DROP_MALFORMED);
    }
}

/* --- worker start and drain ---------------------------------------------- */

static int
quic_start(wh_listener_t *ls, wh_worker_ctx_t *ctx)
{
    wh_quic_conf_t *conf = ls->module_conf;
    wh_quic_rt_t *rt = calloc(1, sizeof(*rt));

    if (rt == NULL) return WH_ERROR;
    rt->ls = ls;
    if (wh_quic_outer_init(&rt->outer[0], &conf->outer) != WH_OK) goto failed;
    rt->nouter = 1;
    if (conf->default_outer) {
        wh_quic_outer_conf_t alt = conf->outer;
        alt.security = WH_QUIC_SEC_CHACHA20_POLY1305;
        if (wh_quic_outer_init(&rt->outer[1], &alt) != WH_OK) goto failed;
        rt->nouter = 2;
    }
    gnutls_rnd(GNUTLS_RND_KEY, rt->reset_secret, sizeof(rt->reset_secret));
    rt->tls = wh_quic_tls_new(ls);
    if (rt->tls == NULL) goto failed;
    ls->runtime = rt;
    if (wh_udp_start(ls, ctx) != WH_OK) {
        ls->runtime = NULL;
        goto failed;
    }
    wh_udp_coalesce(ls, ls->cycle->receive_coalesce);
    return WH_OK;

failed:
    wh_quic_outer_free(&rt->outer[0]);
    if (rt->nouter > 1) wh_quic_outer_free(&rt->outer[1]);
    wh_quic_tls_free(rt->tls);
    free(rt);
    return WH_ERROR;
}

static void
quic_stop(wh_listener_t *ls)
{
    wh_quic_rt_t *rt = ls->runtime;
    wh_quic_conn_t *c, *next;

    wh_udp_stop(ls);
    if (rt == NULL) return;
    wh_quic_retry_stop(rt);
    /* the connections' own datagrams still arrive (forwarded by the new
     * workers); they close when their last stream ends */
    rt->draining = 1;
    for (c = rt->conns; c != NULL; c = next) {
        next = c->next;
        wh_quic_conn_drain(c);
    }
}

const wh_module_t wh_quic_module = {
    .name = "quic",
    .networks = networks,
    .alpn = alpn,
    .settings = "quicSettings",
    .directives = quic_directives,
    .conf_size = sizeof(wh_quic_conf_t),
    .postconf = quic_postconf,
    .free_conf = NULL,
    .bind = wh_udp_bind,
    .start = quic_start,
    .stop = quic_stop,
    .handshake = NULL,
    .handshake_end = NULL,
    .handshake_timeout = WH_QUIC_HANDSHAKE_TIMEOUT,
    .datagram = quic_datagram,
};

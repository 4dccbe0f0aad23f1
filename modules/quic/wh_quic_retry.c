/*
 * wh_quic_retry.c -- stateless Retry (RFC 9000 8.1) for a listener whose
 * worker has too many handshakes in progress (quicSettings.retry).
 *
 * A flood of Initials from spoofed addresses costs a connection, a TLS
 * session and a certificate signature each, and holds them for the
 * handshake timeout. Past the threshold an Initial without a token gets a
 * Retry instead, and nothing is kept: the token (ngtcp2's crypto helper,
 * AEAD under a secret) carries the original DCID, the Retry's SCID, the
 * client's address and the time. Only a client that receives at its
 * address can come back with it, and then it gets its connection whatever
 * the count.
 *
 * The secret is drawn once in the master, at the first configuration read,
 * and kept across reloads: every worker, of this generation or the next,
 * verifies every other's tokens, since a retried Initial reaches whichever
 * worker the kernel or the hand-over routes its peer to. Timestamps are
 * CLOCK_MONOTONIC, which all processes share.
 *
 * The Retry leaves through the listener's outer layer like every other
 * packet: a V2Ray client only reads what opens under its key.
 */
#include "wh_quic.h"
#include "wh_log.h"

#include <gnutls/crypto.h>

/* how long a token is good: a client answers a Retry within one round trip */
#define WH_QUIC_RETRY_TOKEN_LIFE  (10 * NGTCP2_SECONDS)

/* an episode ends when no Retry went out for this long */
#define WH_QUIC_RETRY_QUIET       10.

static uint8_t secret[32];
static int have_secret;

int
wh_quic_retry_init(void)
{
    if (have_secret) return WH_OK;
    if (gnutls_rnd(GNUTLS_RND_KEY, secret, sizeof(secret)) != 0) return WH_ERROR;
    have_secret = 1;
    return WH_OK;
}

ssize_t
wh_quic_retry_write(uint8_t *dest, size_t destlen, const ngtcp2_pkt_hd *hd,
                    const wh_sockaddr_t *peer, uint64_t now)
{
    uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN];
    ngtcp2_cid scid;
    ngtcp2_ssize tokenlen;

    scid.datalen = WH_QUIC_CID_LEN;
    if (gnutls_rnd(GNUTLS_RND_NONCE, scid.data, scid.datalen) != 0) return -1;
    tokenlen = ngtcp2_crypto_generate_retry_token(token, secret, sizeof(secret), hd->version,
                                                  (const ngtcp2_sockaddr *) &peer->sa,
                                                  peer->len, &scid, &hd->dcid, now);
    if (tokenlen < 0) return -1;
    return ngtcp2_crypto_write_retry(dest, destlen, hd->version, &hd->scid, &scid, &hd->dcid,
                                     token, tokenlen);
}

int
wh_quic_retry_verify(const ngtcp2_pkt_hd *hd, const wh_sockaddr_t *peer, ngtcp2_cid *odcid,
                     uint64_t now)
{
    if (hd->token.len == 0 || hd->token.base[0] != NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) {
        return WH_DECLINED;
    }
    if (ngtcp2_crypto_verify_retry_token(odcid, hd->token.base, hd->token.len, secret,
                                         sizeof(secret), hd->version,
                                         (const ngtcp2_sockaddr *) &peer->sa, peer->len,
                                         &hd->dcid, WH_QUIC_RETRY_TOKEN_LIFE, now) != 0)
    {
        return WH_ERROR;
    }
    return WH_OK;
}

/* --- the listener side --------------------------------------------------- */

static void
quiet_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    wh_quic_rt_t *rt = w->data;

    if (ev_now(loop) - rt->retry_last < WH_QUIC_RETRY_QUIET) {
        ev_timer_set(w, rt->retry_last + WH_QUIC_RETRY_QUIET - ev_now(loop) + 0.1, 0.);
        ev_timer_start(loop, w);
        return;
    }
    wh_log_listener(WH_LOG_INFO, rt->ls->tag,
                    "quic retry off: %llu Retry packets sent, %u handshakes in progress",
                    (unsigned long long) rt->retry_episode, rt->handshaking);
    rt->retry_episode = 0;
    rt->retrying = 0;
}

int
wh_quic_retry_wanted(const wh_quic_rt_t *rt)
{
    const wh_quic_conf_t *conf = rt->ls->module_conf;

    return rt->handshaking >= conf->retry;
}

void
wh_quic_retry_send(wh_quic_rt_t *rt, wh_quic_outer_t *outer, const wh_udp_packet_t *pkt,
                   const ngtcp2_pkt_hd *hd, size_t inner_len)
{
    const wh_quic_conf_t *conf = rt->ls->module_conf;
    uint8_t buf[WH_QUIC_OUTER_MAX_OUTER];
    size_t prefix = wh_quic_outer_prefix(outer);
    ssize_t n, len;

    /* never more than 3 times what came (RFC 9000 8.1); a Retry is ~150 bytes */
    n = wh_quic_retry_write(buf + prefix,
                            wh_min(wh_quic_outer_max_inner(outer, 0), 3 * inner_len),
                            hd, &pkt->peer, wh_quic_now());
    len = n > 0 ? wh_quic_outer_seal(outer, buf, sizeof(buf), n) : -1;
    if (len < 0) {
        wh_udp_dropped(rt->ls, WH_DROP_SEND);
        return;
    }
    if (wh_udp_send(rt->ls, &pkt->peer, &pkt->local, buf, len) != WH_OK) return;
    wh_stats_add(rt->ls->stats->quic_retry, 1);
    rt->retry_episode++;
    rt->retry_last = ev_now(wh_loop);
    /* "always" (0) is the configuration, not an episode worth a line */
    if (rt->retrying || conf->retry == 0) return;
    rt->retrying = 1;
    wh_log_listener(WH_LOG_INFO, rt->ls->tag,
                    "quic retry on: %u handshakes in progress (retry = %ld)", rt->handshaking,
                    conf->retry);
    ev_timer_init(&rt->retry_quiet, quiet_cb, WH_QUIC_RETRY_QUIET, 0.);
    rt->retry_quiet.data = rt;
    ev_timer_start(wh_loop, &rt->retry_quiet);
}

void
wh_quic_retry_stop(wh_quic_rt_t *rt)
{
    if (rt->retrying) ev_timer_stop(wh_loop, &rt->retry_quiet);
    rt->retrying = 0;
}

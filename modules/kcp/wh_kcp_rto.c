/*
 * wh_kcp_rto.c -- mKCP's retransmission timeout (spec 9.8): RFC 6298's
 * smoothing with V2Ray's quirks kept, because the RTO we advertise in
 * every PING and TERMINATE becomes the peer's RTO too: srtt clamped to
 * tti on later samples only, no lower bound on the first, a 5/4 factor,
 * and a peer's advertised RTO adopted when ours is 3 s old.
 */
#include "wh_kcp_session.h"

void
wh_kcp_rtt_init(wh_kcp_rtt_t *r, uint32_t tti)
{
    r->srtt = 0;
    r->var = 0;
    r->rto = WH_KCP_INITIAL_RTO;
    r->min_rtt = tti;
    r->updated = 0;
}

void
wh_kcp_rtt_sample(wh_kcp_rtt_t *r, uint32_t rtt, uint32_t now)
{
    uint32_t rto, delta;

    if (rtt > 0x7fffffffu) {
        return;
    }
    if (r->srtt == 0) {
        /* "first" as V2Ray knows it: a 0 ms sample leaves it first */
        r->srtt = rtt;
        r->var = rtt / 2;
    } else {
        delta = rtt > r->srtt ? rtt - r->srtt : r->srtt - rtt;
        r->var = (3 * r->var + delta) / 4;
        r->srtt = (7 * r->srtt + rtt) / 8;
        if (r->srtt < r->min_rtt) {
            r->srtt = r->min_rtt;
        }
    }
    rto = r->min_rtt < 4 * r->var ? r->srtt + 4 * r->var : r->srtt + r->var;
    if (rto > WH_KCP_MAX_RTO) {
        rto = WH_KCP_MAX_RTO;
    }
    r->rto = rto * 5 / 4;
    r->updated = now;
}

void
wh_kcp_rtt_peer(wh_kcp_rtt_t *r, uint32_t rto, uint32_t now)
{
    if (now - r->updated < WH_KCP_PEER_RTO_HOLD) {
        return;
    }
    r->updated = now;
    r->rto = rto;
}

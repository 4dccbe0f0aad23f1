/*
 * wh_kcp_session.c -- one mKCP conversation: derived parameters (9.1),
 * input dispatch, the flush procedure and the close/terminate state
 * machine (9.5, 9.9, 9.10). The receiving and sending halves live in
 * wh_kcp_recv.c and wh_kcp_send.c, the RTO in wh_kcp_rto.c.
 *
 * Timers are the caller's: it calls wh_kcp_flush every tti while
 * wh_kcp_busy() says so, else every 5 s, and right away after input or a
 * write when the session was idle (V2Ray's updater wakes the same way).
 */
#include "wh_core.h"

#include "wh_kcp_session.h"
#include "wh_kcp_crypt.h"

void
wh_kcp_params_init(wh_kcp_params_t *p, uint32_t mtu, uint32_t tti, uint32_t uplink,
                   uint32_t downlink, uint32_t write_buffer_mb, int congestion,
                   size_t header_size, int seeded)
{
    /* unsigned 32-bit, left to right, as V2Ray computes them (spec 9.1) */
    uint32_t per_second = 1000u / tti;
    uint32_t wbytes = write_buffer_mb ? write_buffer_mb * 1024u * 1024u : 512u * 1024u;
    uint32_t overhead = (uint32_t) header_size + (seeded ? WH_KCP_SEED_TAG_LEN
                                                         : WH_KCP_SIMPLE_OVERHEAD);

    p->mtu = mtu;
    p->tti = tti;
    p->send_in_flight = wh_max(8u, uplink * 1024u * 1024u / mtu / per_second);
    p->recv_window = wh_max(8u, downlink * 1024u * 1024u / mtu / per_second);
    p->send_queue = wbytes / mtu;
    p->mss = mtu > overhead + WH_KCP_DATA_OVERHEAD ? mtu - overhead - WH_KCP_DATA_OVERHEAD : 0;
    p->congestion = congestion;
}

void
wh_kcp_session_init(wh_kcp_session_t *k, const wh_kcp_params_t *p, uint16_t conv,
                    wh_kcp_output_pt output, void *data)
{
    memset(k, 0, sizeof(*k));
    k->p = p;
    k->conv = conv;
    k->output = output;
    k->data = data;
    k->state = WH_KCP_ACTIVE;
    k->remote_wnd = WH_KCP_INITIAL_REMOTE_WND;
    k->ctrl_wnd = p->send_in_flight;
    k->last_probe = 0 - p->tti;
    wh_kcp_rtt_init(&k->rtt, p->tti);
}

void
wh_kcp_session_free(wh_kcp_session_t *k)
{
    wh_kcp_send_discard(k);
    wh_kcp_recv_discard(k);
    free(k->acks);
    k->acks = NULL;
    k->nacks = k->acks_cap = 0;
}

/* State changes with their effects (V2Ray's SetState). */
void
wh_kcp_set_state(wh_kcp_session_t *k, int state, uint32_t now)
{
    k->state = state;
    k->state_since = now;
    switch (state) {
    case WH_KCP_READY_TO_CLOSE:
        wh_kcp_recv_discard(k);
        break;
    case WH_KCP_PEER_CLOSED:
    case WH_KCP_PEER_TERMINATING:
        wh_kcp_send_discard(k);
        break;
    case WH_KCP_TERMINATING:
    case WH_KCP_TERMINATED:
        wh_kcp_recv_discard(k);
        wh_kcp_send_discard(k);
        break;
    }
}

static void
peer_closed(wh_kcp_session_t *k, uint32_t now)
{
    if (k->state == WH_KCP_READY_TO_CLOSE) {
        wh_kcp_set_state(k, WH_KCP_TERMINATING, now);
    } else if (k->state == WH_KCP_ACTIVE) {
        wh_kcp_set_state(k, WH_KCP_PEER_CLOSED, now);
    }
}

void
wh_kcp_input(wh_kcp_session_t *k, uint32_t now, const wh_kcp_seg_t *segs, int n)
{
    int i;

    k->last_receive = now;
    k->had_input = 1;
    for (i = 0; i < n; i++) {
        const wh_kcp_seg_t *s = &segs[i];

        if (s->conv != k->conv) {
            break;
        }
        if (s->opt & WH_KCP_OPT_CLOSE) {
            peer_closed(k, now);
        }
        switch (s->cmd) {
        case WH_KCP_CMD_DATA:
            wh_kcp_recv_data(k, &s->u.data);
            break;
        case WH_KCP_CMD_ACK:
            wh_kcp_send_ack(k, now, &s->u.ack);
            break;
        default:
            if (s->cmd == WH_KCP_CMD_TERMINATE) {
                switch (k->state) {
                case WH_KCP_ACTIVE:
                case WH_KCP_PEER_CLOSED:
                    wh_kcp_set_state(k, WH_KCP_PEER_TERMINATING, now);
                    break;
                case WH_KCP_READY_TO_CLOSE:
                    wh_kcp_set_state(k, WH_KCP_TERMINATING, now);
                    break;
                case WH_KCP_TERMINATING:
                    wh_kcp_set_state(k, WH_KCP_TERMINATED, now);
                    break;
                }
            }
            wh_kcp_send_rcv_next(k, s->u.cmd.rcv_next);
            wh_kcp_recv_una(k, s->u.cmd.una);
            wh_kcp_rtt_peer(&k->rtt, s->u.cmd.rto, now);
            break;
        }
    }
}

void
wh_kcp_close(wh_kcp_session_t *k, uint32_t now)
{
    switch (k->state) {
    case WH_KCP_ACTIVE:
        wh_kcp_set_state(k, WH_KCP_READY_TO_CLOSE, now);
        break;
    case WH_KCP_PEER_CLOSED:
        wh_kcp_set_state(k, WH_KCP_TERMINATING, now);
        break;
    case WH_KCP_PEER_TERMINATING:
        wh_kcp_set_state(k, WH_KCP_TERMINATED, now);
        break;
    }
}

void
wh_kcp_flush(wh_kcp_session_t *k, uint32_t now)
{
    k->had_input = 0;
    if (k->state == WH_KCP_TERMINATED) {
        return;
    }
    if (k->state == WH_KCP_ACTIVE && now - k->last_receive >= WH_KCP_IDLE_TIMEOUT) {
        wh_kcp_close(k, now);
    }
    if (k->state == WH_KCP_READY_TO_CLOSE && k->snd_head == NULL) {
        wh_kcp_set_state(k, WH_KCP_TERMINATING, now);
    }
    if (k->state == WH_KCP_TERMINATING) {
        wh_kcp_ping(k, now, WH_KCP_CMD_TERMINATE);
        if (now - k->state_since > WH_KCP_TERMINATING_TIME) {
            wh_kcp_set_state(k, WH_KCP_TERMINATED, now);
        }
        return;
    }
    if (k->state == WH_KCP_PEER_TERMINATING && now - k->state_since > WH_KCP_PEER_TERM_TIME) {
        wh_kcp_set_state(k, WH_KCP_TERMINATING, now);
    }
    if (k->state == WH_KCP_READY_TO_CLOSE && now - k->state_since > WH_KCP_READY_CLOSE_TIME) {
        wh_kcp_set_state(k, WH_KCP_TERMINATING, now);
    }
    wh_kcp_recv_flush(k, now);
    wh_kcp_send_flush(k, now);
    if (now - k->last_ping >= WH_KCP_PING_INTERVAL) {
        wh_kcp_ping(k, now, WH_KCP_CMD_PING);
    }
}

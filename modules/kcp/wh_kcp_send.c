/*
 * wh_kcp_send.c -- the sending half of an mKCP session (spec 9.7): the
 * send queue, its window, acks, fast resend and the optional loss-based
 * control window.
 *
 * The queue is a list sorted by sn, each node one MSS-sized allocation
 * made when the application writes and freed when acknowledged. The sns
 * an ACK lists are mostly ascending, so each removal starts from where the
 * previous one stopped instead of from the head.
 *
 * One deliberate difference from V2Ray, invisible to the peer: V2Ray sends
 * up to 20·cwnd due segments per flush even beyond the peer's window,
 * where the peer drops them. We send within remote_wnd, plus one probe
 * segment beyond it per tti (so a peer whose window reopened answers with
 * an ACK carrying the new wnd: PINGs carry none): the same goodput for
 * less work and less loss.
 *
 * Half-open sessions: a flood of new conversations from forged sources,
 * each relayed to an upstream that talks, would otherwise fill every
 * queue to writeBufferSize for peers that never acknowledge anything. So
 * until the first acknowledgement of a segment we transmitted (an ACK's
 * sn list, or its or a PING's rcv_next covering one), the queue holds one
 * initial window (WH_KCP_HALF_OPEN_QUEUE); the relay then stops reading
 * its upstream. V2Ray's client acknowledges every DATA segment in its
 * next flush, so a real peer lifts the limit one round trip after our
 * first flight, which the initial window bounds anyway. The input that
 * lifts it makes the session writable; the module tells the relay.
 * Until then only the head is resent, the interval doubling each time
 * (up to 32 x): a whole window every RTO to thousands of silent peers
 * took the worker's CPU and sent each forged source ~300 datagrams a
 * second; a peer that lost the whole first flight acknowledges the head
 * and gets the rest at the usual pace.
 *
 * And a flush stops after WH_KCP_BURST transmissions (k->paced); the
 * module flushes again a millisecond later. A whole window at once (776
 * datagrams, a megabyte, with the defaults) overflows the receive buffer
 * of a client on a fast path, Go's default one on loopback already, and
 * the loss then costs an RTO each time.
 */
#include "wh_core.h"

#include "wh_kcp_session.h"

static int
send_closed(const wh_kcp_session_t *k)
{
    return k->state != WH_KCP_ACTIVE && k->state != WH_KCP_READY_TO_CLOSE;
}

/* The RTO as a retransmission timer: never under 1.5 tti. A V2Ray peer
 * acknowledges only in its flush, every tti, yet advertises RTOs of a few
 * ms on a fast path (its first RTT sample is not clamped, spec 9.8), which
 * we adopt; resending before its ACK can come only floods it with
 * duplicates (25 per segment was measured, at 0.7 MiB/s). The RTO we
 * advertise stays V2Ray's arithmetic. */
static uint32_t
resend_after(const wh_kcp_session_t *k)
{
    return wh_max(k->rtt.rto, k->p->tti + k->p->tti / 2);
}

/* Whether a flush that stopped before from would still send something. */
static int
more_due(const wh_kcp_session_t *k, const wh_kcp_dseg_t *from, uint32_t now, int may_probe)
{
    for (; from != NULL; from = from->next) {
        if (now - from->resend_at >= 0x7fffffffu) {
            continue;
        }
        return wh_kcp_before(from->sn, k->remote_wnd) || may_probe;
    }
    return 0;
}

/* V2Ray pushes while the queue holds at most SendQueue: up to one more.
 * A half-open session: up to WH_KCP_HALF_OPEN_QUEUE, never more. */
static int
queue_room(const wh_kcp_session_t *k)
{
    if (!k->acked) {
        return k->snd_count < wh_min(k->p->send_queue + 1, (uint32_t) WH_KCP_HALF_OPEN_QUEUE);
    }
    return k->snd_count <= k->p->send_queue;
}

int
wh_kcp_writable(const wh_kcp_session_t *k)
{
    return k->state != WH_KCP_ACTIVE || queue_room(k);
}

int
wh_kcp_unanswered(const wh_kcp_session_t *k, uint32_t now, uint32_t wait)
{
    return !k->acked && k->sent_data && k->snd_head != NULL
           && now - k->first_sent >= wait && now - k->last_receive >= wait;
}

int
wh_kcp_busy(const wh_kcp_session_t *k)
{
    return (k->snd_head != NULL && !send_closed(k)) || k->nacks > 0 || k->acks_dirty
           || k->una_moved;
}

ssize_t
wh_kcp_write(wh_kcp_session_t *k, const uint8_t *buf, size_t size)
{
    size_t taken = 0, n;
    wh_kcp_dseg_t *s;

    if (k->state != WH_KCP_ACTIVE) {
        return size;        /* nobody will read it (9.10): dropped */
    }
    while (taken < size && queue_room(k)) {
        n = wh_min(size - taken, (size_t) k->p->mss);
        s = malloc(sizeof(*s) + n);
        if (s == NULL) break;
        memcpy(s->data, buf + taken, n);
        s->len = n;
        s->off = 0;
        s->sn = k->snd_next++;
        s->ts = 0;
        s->resend_at = 0;
        s->transmissions = 0;
        s->next = NULL;
        if (k->snd_tail) k->snd_tail->next = s;
        else k->snd_head = s;
        k->snd_tail = s;
        k->snd_count++;
        taken += n;
    }
    return taken > 0 ? (ssize_t) taken : WH_AGAIN;
}

static void
unlink_seg(wh_kcp_session_t *k, wh_kcp_dseg_t **pp, wh_kcp_dseg_t *prev)
{
    wh_kcp_dseg_t *s = *pp;

    *pp = s->next;
    if (k->snd_tail == s) k->snd_tail = prev;
    if (s->transmissions > 0 && k->in_flight > 0) k->in_flight--;
    k->snd_count--;
    free(s);
}

static void
update_una(wh_kcp_session_t *k)
{
    uint32_t una = k->snd_head ? k->snd_head->sn : k->snd_next;

    if (una != k->snd_una) {
        k->snd_una = una;
        k->una_moved = 1;
    }
}

void
wh_kcp_send_discard(wh_kcp_session_t *k)
{
    while (k->snd_head != NULL) {
        unlink_seg(k, &k->snd_head, NULL);
    }
    k->in_flight = 0;
}

/* Drops queued segments below rcv_next from the head (plain unsigned). */
void
wh_kcp_send_rcv_next(wh_kcp_session_t *k, uint32_t rcv_next)
{
    while (k->snd_head != NULL && k->snd_head->sn < rcv_next) {
        if (k->snd_head->transmissions > 0) k->acked = 1;
        unlink_seg(k, &k->snd_head, NULL);
    }
    update_una(k);
}

/* Removes sn; *hint: a node before it to start from (NULL: the head). */
static int
remove_sn(wh_kcp_session_t *k, uint32_t sn, wh_kcp_dseg_t **hint)
{
    wh_kcp_dseg_t **pp = &k->snd_head, *prev = NULL;

    if (*hint != NULL && wh_kcp_before((*hint)->sn, sn)) {
        prev = *hint;
        pp = &prev->next;
    }
    for (; *pp != NULL && wh_kcp_before((*pp)->sn, sn); pp = &(*pp)->next) {
        prev = *pp;
    }
    if (*pp == NULL || (*pp)->sn != sn) {
        return 0;
    }
    if ((*pp)->transmissions > 0) k->acked = 1;
    unlink_seg(k, pp, prev);
    *hint = prev;
    return 1;
}

void
wh_kcp_send_ack(wh_kcp_session_t *k, uint32_t now, const wh_kcp_ack_t *a)
{
    wh_kcp_dseg_t *hint = NULL, *s;
    uint32_t maxack = 0, sn, third;
    int removed, max_removed = 0;
    unsigned i;

    if (send_closed(k)) {
        return;
    }
    if (k->remote_wnd < a->wnd) {
        k->remote_wnd = a->wnd;
    }
    wh_kcp_send_rcv_next(k, a->rcv_next);
    for (i = 0; i < a->count; i++) {
        sn = a->sn_list ? a->sn_list[i] : wh_kcp_ack_sn(a, i);
        removed = 0;
        if (!wh_kcp_before(sn, k->snd_una) && wh_kcp_before(sn, k->snd_next)) {
            removed = remove_sn(k, sn, &hint);
            if (removed) update_una(k);
        }
        if (maxack < sn) {
            maxack = sn;
            max_removed = removed;
        }
    }
    if (!max_removed) {
        return;
    }
    /* fast resend: what was sent before the newest acked sn is likely lost */
    third = k->rtt.rto / 3;
    for (s = k->snd_head; s != NULL && wh_kcp_before(s->sn, maxack); s = s->next) {
        if (s->transmissions > 0 && s->resend_at > third) {
            s->resend_at -= third;
        }
    }
    if (now - a->ts < 10000) {
        wh_kcp_rtt_sample(&k->rtt, now - a->ts, now);
    }
}

void
wh_kcp_ping(wh_kcp_session_t *k, uint32_t now, uint8_t cmd)
{
    wh_kcp_seg_t seg;

    seg.conv = k->conv;
    seg.cmd = cmd;
    seg.opt = k->state == WH_KCP_READY_TO_CLOSE ? WH_KCP_OPT_CLOSE : 0;
    seg.u.cmd.una = k->snd_una;
    seg.u.cmd.rcv_next = k->rcv_next;
    seg.u.cmd.rto = k->rtt.rto;
    k->output(k, &seg);
    k->last_ping = now;
}

static void
on_loss(wh_kcp_session_t *k, uint32_t rate)
{
    uint32_t max = 2 * k->p->send_in_flight;

    if (rate >= 15) {
        k->ctrl_wnd = 3 * k->ctrl_wnd / 4;
    } else if (rate <= 5) {
        k->ctrl_wnd += k->ctrl_wnd / 4;
    }
    if (k->ctrl_wnd < 16) k->ctrl_wnd = 16;
    if (k->ctrl_wnd > max) k->ctrl_wnd = max;
}

void
wh_kcp_send_flush(wh_kcp_session_t *k, uint32_t now)
{
    uint32_t cwnd, limit, sent = 0, lost = 0;
    int may_probe, moved;
    wh_kcp_dseg_t *s;
    wh_kcp_seg_t seg;

    k->paced = 0;
    if (send_closed(k)) {
        k->una_moved = 0;
        return;
    }
    if (k->snd_head == NULL) {
        moved = k->una_moved;
        k->una_moved = 0;
        if (moved) {
            wh_kcp_ping(k, now, WH_KCP_CMD_PING);   /* the peer may drop its acks */
        }
        return;
    }
    k->una_moved = 0;

    cwnd = k->p->send_in_flight;
    if (cwnd > k->remote_wnd - k->snd_una) cwnd = k->remote_wnd - k->snd_una;
    if (k->p->congestion && cwnd > k->ctrl_wnd) cwnd = k->ctrl_wnd;
    limit = cwnd * 20;      /* V2Ray's "magic" */
    /* one probe beyond the window per tti, not one per paced flush */
    may_probe = now - k->last_probe >= k->p->tti;

    seg.conv = k->conv;
    seg.cmd = WH_KCP_CMD_DATA;
    seg.opt = k->state == WH_KCP_READY_TO_CLOSE ? WH_KCP_OPT_CLOSE : 0;
    for (s = k->snd_head; s != NULL; s = s->next) {
        if (now - s->resend_at >= 0x7fffffffu) {
            continue;       /* not due */
        }
        if (!wh_kcp_before(s->sn, k->remote_wnd)) {
            if (!may_probe) break;
            may_probe = 0;
            k->last_probe = now;
        }
        if (!k->acked && s->transmissions > 0 && s != k->snd_head) {
            continue;       /* half-open: the head alone is resent */
        }
        if (s->transmissions == 0) {
            if (!k->sent_data) {
                k->sent_data = 1;
                k->first_sent = now;
            }
            k->in_flight++;
        } else {
            lost++;
        }
        s->resend_at = now + (k->acked ? resend_after(k)
                                         : resend_after(k) << wh_min(s->transmissions, 5u));
        s->ts = now;
        s->transmissions++;
        seg.u.data.ts = now;
        seg.u.data.sn = s->sn;
        seg.u.data.una = k->snd_una;
        seg.u.data.len = s->len;
        seg.u.data.payload = s->data;
        k->output(k, &seg);
        if (++sent >= limit) break;
        if (sent >= WH_KCP_BURST) {
            k->paced = more_due(k, s->next, now, may_probe);
            break;
        }
    }
    if (k->p->congestion && sent > 0 && k->in_flight != 0 && k->rtt.rto != 0) {
        on_loss(k, lost * 100 / k->in_flight);
    }
}

/*
 * wh_kcp_recv.c -- the receiving half of an mKCP session (spec 9.6): the
 * buffer of received-but-unread segments and the ack list.
 *
 * The buffer is a list sorted by sn: segments nearly always arrive in
 * order, so an append at the tail is the common case and costs O(1); an
 * out-of-order one is inserted by a walk. rcv_next moves when the
 * application reads a segment to its end, not when it arrives, so the
 * window advertised in ACKs (rcv_next + RecvWindow) closes while the
 * upstream does not take bytes: that is the back-pressure towards the
 * peer, and it bounds the buffer at RecvWindow segments.
 *
 * The ack list is a plain array (V2Ray's AckList, same order and
 * duplicates), allocated while it has entries and freed once empty, so an
 * idle session holds none.
 */
#include "wh_core.h"

#include "wh_kcp_session.h"

static int
acks_add(wh_kcp_session_t *k, uint32_t sn, uint32_t ts)
{
    if (k->nacks == k->acks_cap) {
        uint32_t cap = k->acks_cap ? k->acks_cap * 2 : 16;
        wh_kcp_ack_entry_t *a;

        /* an ack list longer than the window can only hold duplicates */
        if (k->nacks >= 4 * k->p->recv_window + WH_KCP_ACK_MAX) {
            return WH_ERROR;
        }
        a = realloc(k->acks, cap * sizeof(*a));
        if (a == NULL) {
            return WH_ERROR;
        }
        k->acks = a;
        k->acks_cap = cap;
    }
    k->acks[k->nacks].sn = sn;
    k->acks[k->nacks].ts = ts;
    k->acks[k->nacks].next_ack = 0;
    k->nacks++;
    k->acks_dirty = 1;
    return WH_OK;
}

/* Drops ack-list entries below una (plain unsigned, as V2Ray). */
void
wh_kcp_recv_una(wh_kcp_session_t *k, uint32_t una)
{
    uint32_t i, n = 0;

    for (i = 0; i < k->nacks; i++) {
        if (k->acks[i].sn < una) continue;
        if (i != n) k->acks[n] = k->acks[i];
        n++;
    }
    if (n < k->nacks) {
        k->nacks = n;
        k->acks_dirty = 1;
    }
}

void
wh_kcp_recv_data(wh_kcp_session_t *k, const wh_kcp_data_t *d)
{
    wh_kcp_dseg_t *s, **pp;

    if (d->sn - k->rcv_next >= k->p->recv_window) {
        return;     /* outside the window, or an old duplicate: not even acked */
    }
    wh_kcp_recv_una(k, d->una);
    if (acks_add(k, d->sn, d->ts) != WH_OK) {
        return;
    }
    if (k->state == WH_KCP_READY_TO_CLOSE || k->state == WH_KCP_TERMINATING
        || k->state == WH_KCP_TERMINATED)
    {
        return;     /* nobody reads any more: acknowledge, do not keep */
    }

    /* find the place: after the tail in the common case */
    if (k->rcv_tail == NULL || wh_kcp_before(k->rcv_tail->sn, d->sn)) {
        pp = k->rcv_tail ? &k->rcv_tail->next : &k->rcv_head;
    } else {
        for (pp = &k->rcv_head; *pp != NULL && wh_kcp_before((*pp)->sn, d->sn); pp = &(*pp)->next) {
        }
        if (*pp != NULL && (*pp)->sn == d->sn) {
            return;     /* already buffered */
        }
    }
    s = malloc(sizeof(*s) + d->len);
    if (s == NULL) {
        return;     /* as if lost: the peer sends it again */
    }
    s->sn = d->sn;
    s->ts = d->ts;
    s->len = d->len;
    s->off = 0;
    if (d->len > 0) memcpy(s->data, d->payload, d->len);
    s->next = *pp;
    *pp = s;
    if (s->next == NULL) k->rcv_tail = s;
    k->rcv_count++;
}

int
wh_kcp_readable(const wh_kcp_session_t *k)
{
    switch (k->state) {
    case WH_KCP_READY_TO_CLOSE:
    case WH_KCP_TERMINATING:
    case WH_KCP_TERMINATED:
    case WH_KCP_PEER_TERMINATING:
        return 1;
    }
    return k->rcv_head != NULL && k->rcv_head->sn == k->rcv_next;
}

ssize_t
wh_kcp_read(wh_kcp_session_t *k, uint8_t *buf, size_t size)
{
    wh_kcp_dseg_t *s;
    size_t got = 0, n;

    if (k->state == WH_KCP_READY_TO_CLOSE || k->state == WH_KCP_TERMINATING
        || k->state == WH_KCP_TERMINATED)
    {
        return 0;
    }
    while (got < size && (s = k->rcv_head) != NULL && s->sn == k->rcv_next) {
        n = wh_min(size - got, (size_t) (s->len - s->off));
        memcpy(buf + got, s->data + s->off, n);
        got += n;
        s->off += n;
        if (s->off < s->len) break;
        k->rcv_head = s->next;
        if (k->rcv_head == NULL) k->rcv_tail = NULL;
        k->rcv_count--;
        k->rcv_next++;
        free(s);
    }
    if (got > 0) return got;
    return k->state == WH_KCP_PEER_TERMINATING ? 0 : WH_AGAIN;
}

void
wh_kcp_recv_discard(wh_kcp_session_t *k)
{
    wh_kcp_dseg_t *s;

    while ((s = k->rcv_head) != NULL) {
        k->rcv_head = s->next;
        free(s);
    }
    k->rcv_tail = NULL;
    k->rcv_count = 0;
}

static void
send_ack(wh_kcp_session_t *k, wh_kcp_seg_t *seg, uint32_t *sns)
{
    seg->u.ack.wnd = k->rcv_next + k->p->recv_window;
    seg->u.ack.rcv_next = k->rcv_next;
    seg->u.ack.sn_list = sns;
    seg->u.ack.sn_wire = NULL;
    seg->opt = k->state == WH_KCP_READY_TO_CLOSE ? WH_KCP_OPT_CLOSE : 0;
    k->output(k, seg);
}

/* Acks of this flush (V2Ray's AckList.Flush): due entries, re-armed every
 * max(RTO/2, 20) ms, and the last ACK topped up with entries not yet due. */
void
wh_kcp_recv_flush(wh_kcp_session_t *k, uint32_t now)
{
    uint32_t sns[WH_KCP_ACK_MAX], later[WH_KCP_ACK_MAX], nlater = 0, i;
    uint32_t again = wh_max(k->rtt.rto / 2, 20u);
    wh_kcp_seg_t seg;

    memset(&seg, 0, sizeof(seg));
    seg.conv = k->conv;
    seg.cmd = WH_KCP_CMD_ACK;
    for (i = 0; i < k->nacks; i++) {
        wh_kcp_ack_entry_t *e = &k->acks[i];

        if (e->next_ack > now) {    /* plain unsigned, as V2Ray */
            if (nlater < WH_KCP_ACK_MAX) later[nlater++] = e->sn;
            continue;
        }
        if (e->ts - seg.u.ack.ts < 0x7fffffffu) {      /* V2Ray's PutTimestamp */
            seg.u.ack.ts = e->ts;
        }
        sns[seg.u.ack.count++] = e->sn;
        e->next_ack = now + again;
        if (seg.u.ack.count == WH_KCP_ACK_MAX) {
            send_ack(k, &seg, sns);
            seg.u.ack.count = 0;
            seg.u.ack.ts = 0;
            k->acks_dirty = 0;
        }
    }
    if (k->acks_dirty || seg.u.ack.count > 0) {
        for (i = 0; i < nlater && seg.u.ack.count < WH_KCP_ACK_MAX; i++) {
            sns[seg.u.ack.count++] = later[i];
        }
        send_ack(k, &seg, sns);
        k->acks_dirty = 0;
    }
    if (k->nacks == 0 && k->acks != NULL) {
        free(k->acks);
        k->acks = NULL;
        k->acks_cap = 0;
    }
}

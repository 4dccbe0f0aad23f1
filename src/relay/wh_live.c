/*
 * wh_live.c -- live-thing handles and the worker's count of them (see
 * wh_live.h).
 */
#include "wh_live.h"

static unsigned live;
static void (*on_empty)(void);

void
wh_live_open(wh_live_t *l, wh_listener_t *ls, int kind)
{
    l->ls = ls;
    l->slot.held = 0;
    l->kind = (uint8_t) kind;
    live++;
    if (kind == WH_LIVE_STREAM) {
        wh_stats_add(ls->stats->accepted, 1);
        wh_stats_add(ls->stats->active, 1);
    } else if (kind == WH_LIVE_CARRIER) {
        wh_stats_add(ls->stats->connections, 1);
        wh_stats_add(ls->stats->connections_active, 1);
    }
}

void
wh_live_carry(wh_live_t *l)
{
    wh_listener_t *ls = l->ls;

    if (ls == NULL || l->kind != WH_LIVE_STREAM) return;
    /* it was never a stream: it leaves the stream counters untouched */
    wh_stats_sub(ls->stats->accepted, 1);
    wh_stats_sub(ls->stats->active, 1);
    wh_stats_add(ls->stats->connections, 1);
    wh_stats_add(ls->stats->connections_active, 1);
    l->kind = WH_LIVE_CARRIER;
}

void
wh_live_close(wh_live_t *l, int cause)
{
    wh_listener_t *ls = l->ls;

    if (ls == NULL) return;
    l->ls = NULL;
    wh_limit_release(ls, &l->slot);
    if (l->kind == WH_LIVE_STREAM) {
        wh_stats_sub(ls->stats->active, 1);
        wh_stats_add(ls->stats->closed[cause], 1);
    } else if (l->kind == WH_LIVE_CARRIER) {
        wh_stats_sub(ls->stats->connections_active, 1);
    }
    if (--live == 0 && on_empty != NULL) {
        on_empty();
    }
}

void
wh_live_move(wh_live_t *to, wh_live_t *from)
{
    *to = *from;
    from->ls = NULL;
}

void
wh_live_refused(wh_listener_t *ls, int cause)
{
    wh_live_t l;

    wh_live_open(&l, ls, WH_LIVE_STREAM);
    wh_live_close(&l, cause);
}

unsigned
wh_live_count(void)
{
    return live;
}

void
wh_live_on_empty(void (*handler)(void))
{
    on_empty = handler;
}

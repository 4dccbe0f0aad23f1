/*
 * wh_limit.c -- the connection limits (see wh_limit.h).
 *
 * The caps hold for all workers together, old ones draining after a reload
 * included, so what workers count is in the shared stats segment, each
 * worker writing only its own slot (no locks, and a dead worker's counts
 * vanish with its slot). A client is counted first and checked after: two
 * workers admitting at once may both refuse, never both exceed.
 *
 * Per address, the segment holds a count-min sketch rather than a table:
 * every address adds to two cells chosen by a keyed hash, and its count is
 * the smaller of the two sums. It never counts an address low, needs no
 * insertion or deletion shared between processes, and costs a fixed 64 KiB
 * per worker; another address sharing both cells (rare, and not aimable:
 * the key is random per master start) can only make it count high.
 */
#include "wh_limit.h"
#include "wh_event.h"
#include "wh_handshake.h"
#include "wh_log.h"

#include <netinet/in.h>
#include <sys/un.h>

unsigned wh_clients;

static wh_cycle_t *cycle;
static uint32_t *cells;         /* this worker's part of the sketch */
static uint64_t seed;
static unsigned full;
static ev_tstamp episode_start;
static ev_timer episode_end;

static uint64_t
mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* 0: no address to count by (a unix socket peer). */
static int
address_cells(const wh_listener_t *ls, const struct sockaddr *sa, uint32_t cell[2])
{
    uint64_t a, h;

    if (sa->sa_family == AF_INET) {
        a = ((const struct sockaddr_in *) sa)->sin_addr.s_addr;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *) sa)->sin6_addr;

        if (IN6_IS_ADDR_V4MAPPED(in6)) {
            memcpy(&a, &in6->s6_addr[8], 8);
            a >>= 32;
        } else {
            memcpy(&a, in6->s6_addr, 8);        /* its /64: a host has them all */
            a = ~a;
        }
    } else {
        return 0;
    }
    h = mix(seed ^ a ^ (uint64_t) ls->stats_index << 40);
    cell[0] = (uint32_t) (h % WH_STATS_CELLS);
    cell[1] = (uint32_t) ((h >> 32) % WH_STATS_CELLS);
    if (cell[1] == cell[0]) cell[1] = (cell[1] + 1) % WH_STATS_CELLS;
    return 1;
}

static void
cells_add(const wh_conn_slot_t *slot, int n)
{
    __atomic_add_fetch(&cells[slot->cell[0]], n, __ATOMIC_RELAXED);
    __atomic_add_fetch(&cells[slot->cell[1]], n, __ATOMIC_RELAXED);
}

static void
refused(const wh_listener_t *ls, const struct sockaddr *peer, const char *what, long cap)
{
    wh_log_ctx_t ctx = {
        .listener = ls->tag,
        .client = peer,
        .clientlen = peer->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                     : peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                     : sizeof(struct sockaddr_un),
    };

    wh_log_ctx(WH_LOG_INFO, &ctx, "limiting connections by %s (%ld)", what, cap);
}

/* WH_OK, or WH_DECLINED with nothing counted in the sketch. */
static int
by_address(wh_listener_t *ls, wh_conn_slot_t *slot, const struct sockaddr *peer)
{
    unsigned n0, n1;

    slot->by_address = 0;
    if (ls->max_conns_per_address == 0 || !address_cells(ls, peer, slot->cell)) {
        return WH_OK;
    }
    cells_add(slot, 1);
    n0 = wh_stats_cell_sum(slot->cell[0]);
    n1 = wh_stats_cell_sum(slot->cell[1]);
    if (wh_min(n0, n1) > (unsigned) ls->max_conns_per_address) {
        cells_add(slot, -1);
        refused(ls, peer, "maxConnectionsPerAddress", ls->max_conns_per_address);
        return WH_DECLINED;
    }
    slot->by_address = 1;
    return WH_OK;
}

static void
episode_end_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    wh_log(WH_LOG_INFO, "worker_connections: accepting again, %u clients, paused %.1fs ago",
           wh_clients, ev_now(loop) - episode_start);
    episode_start = 0;
}

/* At the limit accepting stops; the log and the count are once per
 * episode, which ends after a second without reaching the limit. */
static void
became_full(void)
{
    int i;

    full = 1;
    wh_accept_pause();
    ev_timer_stop(wh_loop, &episode_end);
    if (episode_start != 0) {
        return;
    }
    episode_start = ev_now(wh_loop);
    wh_log(WH_LOG_WARN, "%d worker_connections are not enough: accepting paused",
           cycle->worker_connections);
    for (i = 0; i < cycle->nlisteners; i++) {
        if (cycle->listeners[i].stats != NULL) {
            wh_stats_add(cycle->listeners[i].stats->paused, 1);
        }
    }
}

static void
not_full(void)
{
    full = 0;
    wh_accept_resume();
    ev_timer_start(wh_loop, &episode_end);
}

void
wh_limit_init(wh_cycle_t *c, int slot)
{
    cycle = c;
    cells = wh_stats_cells(slot);
    seed = wh_stats_seed();
    wh_clients = 0;
    full = 0;
    episode_start = 0;
    ev_timer_init(&episode_end, episode_end_cb, 1.0, 0);
}

int
wh_limit_full(void)
{
    return full;
}

int
wh_limit_admit(wh_listener_t *ls, const struct sockaddr *peer, wh_conn_slot_t *slot)
{
    slot->held = 0;
    if (full) {
        return WH_AGAIN;
    }
    wh_stats_add(ls->stats->clients, 1);
    if (ls->max_conns > 0 && wh_stats_clients(ls->stats_index) > (uint64_t) ls->max_conns) {
        wh_stats_sub(ls->stats->clients, 1);
        refused(ls, peer, "maxConnections", ls->max_conns);
        return WH_DECLINED;
    }
    if (by_address(ls, slot, peer) != WH_OK) {
        wh_stats_sub(ls->stats->clients, 1);
        return WH_DECLINED;
    }
    slot->held = 1;
    if (++wh_clients >= (unsigned) cycle->worker_connections) {
        became_full();
    }
    return WH_OK;
}

int
wh_limit_readdress(wh_listener_t *ls, wh_conn_slot_t *slot, const struct sockaddr *peer)
{
    if (!slot->held) {
        return WH_OK;
    }
    if (slot->by_address) {
        cells_add(slot, -1);
    }
    if (by_address(ls, slot, peer) != WH_OK) {
        wh_limit_release(ls, slot);
        return WH_DECLINED;
    }
    return WH_OK;
}

void
wh_limit_release(wh_listener_t *ls, wh_conn_slot_t *slot)
{
    if (!slot->held) {
        return;
    }
    wh_stats_sub(ls->stats->clients, 1);
    if (slot->by_address) {
        cells_add(slot, -1);
    }
    slot->held = 0;
    if (--wh_clients < (unsigned) cycle->worker_connections && full) {
        not_full();
    }
}

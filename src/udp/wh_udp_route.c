/*
 * wh_udp_route.c -- the shared session-owner table (wh_udp_route.h).
 */
#include "wh_udp_route.h"

#define WH_ROUTE_EMPTY   0
#define WH_ROUTE_DELETED 1
#define WH_ROUTE_PROBES  64

static uint64_t
mix(uint64_t h, const void *p, size_t len)
{
    const uint8_t *b = p;
    size_t i;

    for (i = 0; i < len; i++) {
        h = (h ^ b[i]) * 0x100000001b3ULL;
    }
    return h;
}

uint64_t
wh_udp_route_key(const wh_udp_routes_t *t, const wh_sockaddr_t *local, const wh_sockaddr_t *peer)
{
    uint64_t h = mix(0xcbf29ce484222325ULL ^ t->seed, &local->sa, local->len);

    h = mix(h, &peer->sa, peer->len);
    /* splitmix64's finaliser: FNV's low bits alone index the table poorly */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h > WH_ROUTE_DELETED ? h : h + 2;
}

int
wh_udp_route_set(wh_udp_routes_t *t, uint64_t key, uint32_t owner)
{
    size_t i, n, free_at = (size_t) -1;

    for (n = 0, i = key & t->mask; n < WH_ROUTE_PROBES; n++, i = (i + 1) & t->mask) {
        uint64_t k = __atomic_load_n(&t->slots[i].key, __ATOMIC_ACQUIRE);

        if (k == key) {
            __atomic_store_n(&t->slots[i].owner, owner, __ATOMIC_RELEASE);
            return WH_OK;
        }
        if (k == WH_ROUTE_DELETED && free_at == (size_t) -1) {
            free_at = i;
        }
        if (k == WH_ROUTE_EMPTY) {
            if (free_at == (size_t) -1) free_at = i;
            break;
        }
    }
    if (free_at == (size_t) -1) {
        return WH_ERROR;
    }
    uint64_t expect = __atomic_load_n(&t->slots[free_at].key, __ATOMIC_ACQUIRE);
    if ((expect == WH_ROUTE_EMPTY || expect == WH_ROUTE_DELETED)
        && __atomic_compare_exchange_n(&t->slots[free_at].key, &expect, key, 0,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    {
        __atomic_store_n(&t->slots[free_at].owner, owner, __ATOMIC_RELEASE);
        return WH_OK;
    }
    return WH_ERROR;    /* another worker took that slot this instant: rare, and harmless */
}

uint32_t
wh_udp_route_get(const wh_udp_routes_t *t, uint64_t key)
{
    size_t i, n;

    for (n = 0, i = key & t->mask; n < WH_ROUTE_PROBES; n++, i = (i + 1) & t->mask) {
        uint64_t k = __atomic_load_n(&t->slots[i].key, __ATOMIC_ACQUIRE);

        if (k == key) {
            return __atomic_load_n(&t->slots[i].owner, __ATOMIC_ACQUIRE);
        }
        if (k == WH_ROUTE_EMPTY) {
            break;
        }
    }
    return 0;
}

static void
release(wh_udp_route_t *r, uint32_t owner)
{
    uint32_t o = owner;

    if (__atomic_compare_exchange_n(&r->owner, &o, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&r->key, WH_ROUTE_DELETED, __ATOMIC_RELEASE);
    }
}

void
wh_udp_route_del(wh_udp_routes_t *t, uint64_t key, uint32_t owner)
{
    size_t i, n;

    for (n = 0, i = key & t->mask; n < WH_ROUTE_PROBES; n++, i = (i + 1) & t->mask) {
        uint64_t k = __atomic_load_n(&t->slots[i].key, __ATOMIC_ACQUIRE);

        if (k == key) {
            release(&t->slots[i], owner);
            return;
        }
        if (k == WH_ROUTE_EMPTY) {
            return;
        }
    }
}

void
wh_udp_route_forget(wh_udp_routes_t *t, uint32_t owner)
{
    size_t i;

    for (i = 0; i <= t->mask; i++) {
        if (__atomic_load_n(&t->slots[i].owner, __ATOMIC_ACQUIRE) == owner) {
            release(&t->slots[i], owner);
        }
    }
}

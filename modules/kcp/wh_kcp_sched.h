/*
 * wh_kcp_sched.h -- one timer per worker for every mKCP session's flush.
 *
 * A binary min-heap of due times (ms) with each entry's index kept in the
 * entry, so moving a session (busy: every tti; idle: every 5 s; woken by
 * input: now) is O(log n) and needs no allocation beyond the heap array.
 * One ev_timer is armed for the earliest entry. The heap itself is pure
 * and unit-tested; wh_kcp_sched_run is the ev_timer's work.
 */
#ifndef WH_KCP_SCHED_H
#define WH_KCP_SCHED_H

#include "wh_core.h"
#include "wh_event.h"

typedef struct {
    uint64_t due;               /* ms */
    uint32_t pos;               /* index in the heap + 1; 0: not scheduled */
} wh_kcp_timer_t;

typedef struct wh_kcp_sched_s wh_kcp_sched_t;
struct wh_kcp_sched_s {
    wh_kcp_timer_t **heap;
    uint32_t n;
    uint32_t cap;
    ev_timer ev;
    uint64_t armed;             /* due time the ev_timer is set for; UINT64_MAX: none */
    void (*fire)(wh_kcp_sched_t *s, wh_kcp_timer_t *t, uint64_t now);
};

/* Inserts t or moves it to due. WH_ERROR: out of memory (t not scheduled). */
int wh_kcp_sched_set(wh_kcp_sched_t *s, wh_kcp_timer_t *t, uint64_t due);
void wh_kcp_sched_del(wh_kcp_sched_t *s, wh_kcp_timer_t *t);
/* The earliest entry if it is due at now (removed), else NULL. */
wh_kcp_timer_t *wh_kcp_sched_pop(wh_kcp_sched_t *s, uint64_t now);
void wh_kcp_sched_free(wh_kcp_sched_t *s);

/* Event-loop side: the current time in ms, firing what is due, and
 * re-arming the ev_timer for the earliest entry. */
uint64_t wh_kcp_now_ms(void);
void wh_kcp_sched_run(wh_kcp_sched_t *s);
void wh_kcp_sched_arm(wh_kcp_sched_t *s);
/* Re-arms only if the earliest entry is now earlier than the armed time:
 * cheap enough to call after every wh_kcp_sched_set. */
void wh_kcp_sched_touch(wh_kcp_sched_t *s);

#endif

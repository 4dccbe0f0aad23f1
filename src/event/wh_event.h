/*
 * wh_event.h -- the worker's libev loop and posted events.
 *
 * A worker has exactly one loop, created after fork() and reachable as
 * wh_loop. Posted events (nginx's ngx_post_event) run a handler on the next
 * loop iteration instead of now: a stream that has data for its reader calls
 * wh_post() rather than the reader's callback, so no callback ever runs
 * inside another one's stack frame, and a busy stream yields to others.
 */
#ifndef WH_EVENT_H
#define WH_EVENT_H

#include "wh_core.h"

#include <ev.h>

extern struct ev_loop *wh_loop;

typedef struct wh_posted_s wh_posted_t;
struct wh_posted_s {
    wh_posted_t *next;
    wh_posted_t **prev;         /* NULL while not posted */
    void (*handler)(wh_posted_t *ev);
};

void wh_event_init(struct ev_loop *loop);
void wh_post(wh_posted_t *ev);          /* no-op if already posted */
void wh_post_cancel(wh_posted_t *ev);   /* no-op if not posted */

#endif

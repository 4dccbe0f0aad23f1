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

/*
 * Ready events. libev runs the callbacks of one poll last reported first:
 * of sockets that became ready one after another, the newest is served
 * first and the oldest waits behind all the others, which under load is the
 * tail of the latency. An io callback that hands its work to wh_ready()
 * instead of doing it has it run once the loop's callbacks have run, in the
 * order the poll reported (oldest ready first, as nginx serves epoll's
 * events): the handler is called as libev would have called it then, and
 * not at all if the watcher was stopped meanwhile, as libev drops the
 * pending event of a watcher it stops. Before a watcher handed over is
 * freed, wh_ready_cancel(w): a look through the events still to run, none
 * outside a poll's dispatch.
 */
typedef void (*wh_ready_pt)(struct ev_loop *loop, ev_io *w, int revents);

void wh_ready(ev_io *w, int revents, wh_ready_pt handler);
void wh_ready_cancel(ev_io *w);

#endif

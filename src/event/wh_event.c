/*
 * wh_event.c -- posted events on the worker's loop (see wh_event.h).
 *
 * The queue is drained by an ev_idle watcher that is active only while
 * something is posted, so an empty queue costs the loop nothing. The
 * zero-timeout poll that an active idle watcher adds is wanted: sockets that
 * became ready while the callbacks ran are handled before the posted
 * events, so one flush carries what they brought (an ev_prepare, which would
 * save that poll, made h2 small requests cost 12 % more). Events
 * posted while the queue runs go to the next round (the list is detached
 * first), so a stream that keeps re-posting itself cannot starve the others.
 */
#include "wh_event.h"

struct ev_loop *wh_loop;

static wh_posted_t *posted;
static wh_posted_t **posted_tail = &posted;
static ev_idle posted_idle;

static void
run_posted(struct ev_loop *loop, ev_idle *w, int revents)
{
    wh_posted_t *list = posted, *ev;

    posted = NULL;
    posted_tail = &posted;
    if (list != NULL) {
        list->prev = &list;
    }
    while ((ev = list) != NULL) {
        list = ev->next;
        if (list != NULL) {
            list->prev = &list;
        }
        ev->prev = NULL;
        ev->next = NULL;
        ev->handler(ev);
    }
    if (posted == NULL) {
        ev_idle_stop(loop, w);
    }
}

void
wh_event_init(struct ev_loop *loop)
{
    wh_loop = loop;
    ev_idle_init(&posted_idle, run_posted);
}

void
wh_post(wh_posted_t *ev)
{
    if (ev->prev != NULL) {
        return;
    }
    ev->next = NULL;
    ev->prev = posted_tail;
    *posted_tail = ev;
    posted_tail = &ev->next;
    if (!ev_is_active(&posted_idle)) {
        ev_idle_start(wh_loop, &posted_idle);
    }
}

void
wh_post_cancel(wh_posted_t *ev)
{
    if (ev->prev == NULL) {
        return;
    }
    *ev->prev = ev->next;
    if (ev->next != NULL) {
        ev->next->prev = ev->prev;
    } else if (posted_tail == &ev->next) {
        posted_tail = ev->prev;
    }
    ev->prev = NULL;
    ev->next = NULL;
}

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
 *
 * Ready events are run by the loop's own hook for running callbacks
 * (ev_set_invoke_pending_cb), right after libev's: that is the one place that
 * sees every callback of a poll done. They are kept in an array in the order
 * libev ran their callbacks, the poll's reversed, and taken from its end.
 */
#include "wh_event.h"

struct ev_loop *wh_loop;

static wh_posted_t *posted;
static wh_posted_t **posted_tail = &posted;
static ev_idle posted_idle;

typedef struct {
    wh_ready_pt handler;        /* NULL: cancelled */
    ev_io *w;
    int revents;
} wh_ready_ev_t;

static wh_ready_ev_t *ready;
static size_t nready, ready_size;

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

static void
invoke_pending(struct ev_loop *loop)
{
    do {
        ev_invoke_pending(loop);
        while (nready > 0) {
            wh_ready_ev_t r = ready[--nready];
            if (r.handler != NULL && ev_is_active(r.w)) r.handler(loop, r.w, r.revents);
        }
    } while (ev_pending_count(loop) > 0);
}

void
wh_event_init(struct ev_loop *loop)
{
    wh_loop = loop;
    ev_idle_init(&posted_idle, run_posted);
    ev_set_invoke_pending_cb(loop, invoke_pending);
}

void
wh_ready(ev_io *w, int revents, wh_ready_pt handler)
{
    if (nready == ready_size) {
        size_t size = ready_size ? 2 * ready_size : 64;
        wh_ready_ev_t *r = realloc(ready, size * sizeof(*r));
        if (r == NULL) {
            handler(wh_loop, w, revents);   /* served now, out of turn */
            return;
        }
        ready = r;
        ready_size = size;
    }
    ready[nready++] = (wh_ready_ev_t) { handler, w, revents };
}

void
wh_ready_cancel(ev_io *w)
{
    for (size_t i = 0; i < nready; i++) {
        if (ready[i].w == w) ready[i].handler = NULL;
    }
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

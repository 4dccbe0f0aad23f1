/*
 * test_event.c -- posted events (src/event/wh_event.c) on a real libev
 * loop: what an I/O callback posts runs after one more poll, which does not
 * block, so I/O that became ready meanwhile is handled first and joins the
 * same flush (an h2 connection's write of several streams' frames); what a
 * posted handler posts runs in the next round, after a poll; a cancelled
 * event never runs; and a posted event keeps ev_run() going only until it
 * has run. Ready events (wh_ready()) run after the poll's callbacks, in the
 * order the poll reported their sockets, oldest first, where libev itself
 * runs the newest first; a cancelled one never runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_event.h"

#include <unistd.h>

static int pipefd[2], pipe2fd[2];
static ev_io pipe_io, pipe2_io;
static wh_posted_t ev_a, ev_b;
static unsigned io_iteration, a_iteration, b_iteration;
static int a_runs, b_runs, a_posts_b, io_wakes_pipe2, pipe2_runs, pipe2_before_a;

static void
a_handler(wh_posted_t *ev)
{
    a_runs++;
    a_iteration = ev_iteration(wh_loop);
    if (a_posts_b) wh_post(&ev_b);
}

static void
b_handler(wh_posted_t *ev)
{
    b_runs++;
    b_iteration = ev_iteration(wh_loop);
}

static void
pipe_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    char c;

    assert_int_equal(read(pipefd[0], &c, 1), 1);
    io_iteration = ev_iteration(loop);
    wh_post(&ev_a);
    if (io_wakes_pipe2) assert_int_equal(write(pipe2fd[1], "y", 1), 1);
}

static void
pipe2_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    char c;

    assert_int_equal(read(pipe2fd[0], &c, 1), 1);
    pipe2_runs++;
    if (a_runs == 0) pipe2_before_a = 1;
}

static int
setup(void **state)
{
    wh_event_init(ev_default_loop(0));
    assert_int_equal(pipe(pipefd), 0);
    assert_int_equal(pipe(pipe2fd), 0);
    ev_io_init(&pipe_io, pipe_cb, pipefd[0], EV_READ);
    ev_io_start(wh_loop, &pipe_io);
    ev_io_init(&pipe2_io, pipe2_cb, pipe2fd[0], EV_READ);
    ev_io_start(wh_loop, &pipe2_io);
    ev_a = (wh_posted_t) { .handler = a_handler };
    ev_b = (wh_posted_t) { .handler = b_handler };
    a_runs = b_runs = a_posts_b = io_wakes_pipe2 = pipe2_runs = pipe2_before_a = 0;
    return 0;
}

static int
teardown(void **state)
{
    ev_io_stop(wh_loop, &pipe_io);
    ev_io_stop(wh_loop, &pipe2_io);
    close(pipefd[0]);
    close(pipefd[1]);
    close(pipe2fd[0]);
    close(pipe2fd[1]);
    return 0;
}

/* One byte into the first pipe, its callback run by one poll; then up to
 * three more polls until *runs counts a run, none of which may block. */
static void
poke_then_poll_until(const int *runs, int check_first)
{
    ev_tstamp t0;
    int i;

    assert_int_equal(write(pipefd[1], "x", 1), 1);
    ev_run(wh_loop, EVRUN_ONCE);
    if (check_first) assert_int_equal(*runs, 0);    /* not inside the I/O dispatch */
    t0 = ev_time();
    for (i = 0; i < 3 && *runs == 0; i++) ev_run(wh_loop, EVRUN_ONCE);
    assert_true(ev_time() - t0 < 1.0);
    assert_int_equal(*runs, 1);
}

/* The handler runs after one more poll, with a zero timeout: a socket
 * that became ready while the first poll's callbacks ran is handled before
 * it. Running posted events from an ev_prepare instead saves that poll but
 * flushes each stream's bytes alone: h2 small requests cost 12 % more CPU
 * and h2load twice as much. */
static void
test_io_ready_meanwhile_runs_first(void **state)
{
    io_wakes_pipe2 = 1;
    poke_then_poll_until(&a_runs, 1);
    assert_int_equal(pipe2_runs, 1);
    assert_true(pipe2_before_a);
    assert_true(a_iteration > io_iteration);
}

/* a handler that posts yields to a poll first, and that poll does not
 * block although nothing else is ready */
static void
test_repost_goes_to_next_round(void **state)
{
    a_posts_b = 1;
    poke_then_poll_until(&b_runs, 0);
    assert_int_equal(a_runs, 1);
    assert_int_equal(b_iteration, a_iteration + 1);
}

static void
test_cancelled_never_runs(void **state)
{
    wh_post(&ev_a);
    wh_post(&ev_b);
    wh_post_cancel(&ev_a);
    wh_post(&ev_b);                         /* already posted: no-op */
    ev_run(wh_loop, EVRUN_NOWAIT);
    ev_run(wh_loop, EVRUN_NOWAIT);
    assert_int_equal(a_runs, 0);
    assert_int_equal(b_runs, 1);
}

/* the worker's ev_run(loop, 0) ends once the queue has run and nothing
 * else is active */
static void
test_queue_does_not_keep_loop(void **state)
{
    ev_io_stop(wh_loop, &pipe_io);
    ev_io_stop(wh_loop, &pipe2_io);
    wh_post(&ev_a);
    ev_run(wh_loop, 0);
    assert_int_equal(a_runs, 1);
    ev_run(wh_loop, 0);                     /* nothing posted: returns at once */
    assert_int_equal(a_runs, 1);
}

#define NREADY 4

static int ready_fd[NREADY][2];
static ev_io ready_io[NREADY];
static int ready_order[NREADY], nready_run, ready_in_callbacks, cancel_from;

static void
ready_handler(struct ev_loop *loop, ev_io *w, int revents)
{
    int i = (int) (w - ready_io);
    char c;

    assert_int_equal(revents, EV_READ);
    assert_int_equal(read(ready_fd[i][0], &c, 1), 1);
    ready_order[nready_run++] = i;
    if (i == cancel_from) wh_ready_cancel(&ready_io[i + 1]);
}

static void
ready_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    if (nready_run > 0) ready_in_callbacks = 1;
    wh_ready(w, revents, ready_handler);
}

/* The pipes are watched in reverse order and written in order, so only the
 * order in which they became readable puts pipe 0 first. */
static void
ready_run(int cancel)
{
    int i;

    nready_run = ready_in_callbacks = 0;
    cancel_from = cancel;
    for (i = NREADY - 1; i >= 0; i--) {
        assert_int_equal(pipe(ready_fd[i]), 0);
        ev_io_init(&ready_io[i], ready_cb, ready_fd[i][0], EV_READ);
        ev_io_start(wh_loop, &ready_io[i]);
    }
    ev_run(wh_loop, EVRUN_NOWAIT);          /* registered while nothing is ready */
    for (i = 0; i < NREADY; i++) assert_int_equal(write(ready_fd[i][1], "r", 1), 1);
    ev_run(wh_loop, EVRUN_ONCE);
    for (i = 0; i < NREADY; i++) {
        ev_io_stop(wh_loop, &ready_io[i]);
        close(ready_fd[i][0]);
        close(ready_fd[i][1]);
    }
    assert_false(ready_in_callbacks);       /* every callback ran before any handler */
}

static void
test_ready_runs_in_poll_order(void **state)
{
    ready_run(-1);
    assert_int_equal(nready_run, NREADY);
    for (int i = 0; i < NREADY; i++) assert_int_equal(ready_order[i], i);
}

static void
test_ready_cancelled_never_runs(void **state)
{
    ready_run(1);                           /* 1 cancels 2 */
    assert_int_equal(nready_run, NREADY - 1);
    assert_int_equal(ready_order[0], 0);
    assert_int_equal(ready_order[1], 1);
    assert_int_equal(ready_order[2], 3);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_io_ready_meanwhile_runs_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repost_goes_to_next_round, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_never_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_does_not_keep_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ready_runs_in_poll_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ready_cancelled_never_runs, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

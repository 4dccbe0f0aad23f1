/*
 * wh_worker.c -- a worker process.
 *
 * Forked by the master with every listening socket inherited and every
 * signal blocked. Drops privileges first (initgroups, setgid, setuid, as
 * nginx does; a worker refuses to run as root when that fails), then creates
 * its own libev loop, starts each listener's accept module and runs.
 *
 * Signals (normally from the master): QUIT drains -- stop accepting, let
 * the open streams finish, exit when none is left or at shutdown_timeout;
 * TERM/INT stop at once; USR1 reopens the error log.
 */
#include "wh_process.h"
#include "wh_event.h"
#include "wh_log.h"
#include "wh_relay.h"

#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

static wh_cycle_t *cycle;
static ev_signal sig_quit, sig_term, sig_int, sig_usr1;
static ev_timer shutdown_timer;
static ev_timer drained_timer;
static int draining;

static void
drop_privileges(wh_cycle_t *c)
{
    if (geteuid() != 0) {
        return;
    }
    if (initgroups(c->user, c->gid) == -1 || setgid(c->gid) == -1 || setuid(c->uid) == -1) {
        wh_log(WH_LOG_EMERG, "cannot switch to user \"%s\" (%s): worker exits rather than run as root",
               c->user, strerror(errno));
        exit(2);
    }
    if (c->uid != 0 && (setuid(0) == 0 || geteuid() == 0)) {
        wh_log(WH_LOG_EMERG, "could regain root after switching to \"%s\": worker exits", c->user);
        exit(2);
    }
    /* a worker that crashed as nobody may still dump core for the operator */
    prctl(PR_SET_DUMPABLE, 1);
}

static void
drained_check(struct ev_loop *loop, ev_timer *w, int revents)
{
    if (wh_streams_live == 0) {
        ev_break(loop, EVBREAK_ALL);
    }
}

/* The last stream closed, maybe inside a callback of its client stream,
 * whose destroy then waits for the callback to return and may take a hold
 * again (an mKCP session lingers, counted, until its peer has every byte):
 * so look once more when the callbacks are done, not at once. */
static void
drained(void)
{
    ev_timer_start(wh_loop, &drained_timer);
}

static void
shutdown_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    wh_log(WH_LOG_WARN, "shutdown_timeout: closing %u open streams", wh_streams_live);
    wh_streams_drained = NULL;
    wh_relay_close_all(WH_CLOSE_SHUTDOWN);
    ev_break(loop, EVBREAK_ALL);
}

static void
quit_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    int i;

    if (draining) {
        return;
    }
    draining = 1;
    for (i = 0; i < cycle->nlisteners; i++) {
        cycle->listeners[i].module->stop(&cycle->listeners[i]);
    }
    wh_stats_http_stop();
    wh_log(WH_LOG_INFO, "gracefully shutting down, %u streams open", wh_streams_live);
    if (wh_streams_live == 0) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    wh_streams_drained = drained;
    ev_timer_init(&drained_timer, drained_check, 0., 0.);
    ev_timer_init(&shutdown_timer, shutdown_timeout_cb, cycle->shutdown_timeout, 0);
    ev_timer_start(loop, &shutdown_timer);
}

static void
term_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    wh_streams_drained = NULL;
    wh_relay_close_all(WH_CLOSE_SHUTDOWN);
    ev_break(loop, EVBREAK_ALL);
}

static void
usr1_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    wh_log_reopen((uid_t) -1, (gid_t) -1);
}

void
wh_worker_run(wh_cycle_t *c, int slot)
{
    struct ev_loop *loop;
    sigset_t set;
    int i;

    cycle = c;
    prctl(PR_SET_NAME, "wharf: worker");
    for (i = 1; i < NSIG; i++) {
        if (i != SIGKILL && i != SIGSTOP && i != SIGPIPE) signal(i, SIG_DFL);
    }
    drop_privileges(c);
    /* after the drop: changing credentials clears it */
    prctl(PR_SET_PDEATHSIG, SIGTERM);   /* never outlive a killed master */

    loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (loop == NULL) {
        wh_log(WH_LOG_EMERG, "ev_loop_new() failed");
        exit(2);
    }
    wh_event_init(loop);

    ev_signal_init(&sig_quit, quit_cb, SIGQUIT);
    ev_signal_init(&sig_term, term_cb, SIGTERM);
    ev_signal_init(&sig_int, term_cb, SIGINT);
    ev_signal_init(&sig_usr1, usr1_cb, SIGUSR1);
    ev_signal_start(loop, &sig_quit);
    ev_signal_start(loop, &sig_term);
    ev_signal_start(loop, &sig_int);
    ev_signal_start(loop, &sig_usr1);
    signal(SIGHUP, SIG_IGN);
    sigemptyset(&set);
    sigprocmask(SIG_SETMASK, &set, NULL);

    for (i = 0; i < c->nlisteners; i++) {
        wh_listener_t *ls = &c->listeners[i];

        ls->stats = wh_stats_counters(slot, ls->stats_index);
        if (ls->module->start(ls, loop) != WH_OK) {
            wh_log(WH_LOG_EMERG, "listener \"%s\" could not start", ls->tag);
            exit(2);
        }
    }
    wh_stats_http_start(c);

    ev_run(loop, 0);
    exit(0);
}

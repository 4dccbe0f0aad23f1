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
 * TERM/INT stop at once; USR1 reopens the error log; WINCH (a binary
 * upgrade started) stops reading the UDP sockets, whose datagrams the new
 * master's workers read and pass on; HUP, USR2 and the stray signals
 * (wh_stray_signal) are logged and ignored.
 *
 * A master that dies (kill -9) sends, through the kernel, a QUIT: every
 * worker closes its listening sockets at once, so a master started again
 * (systemd's Restart=) binds them at once, and drains its streams.
 */
#include "wh_process.h"
#include "wh_event.h"
#include "wh_log.h"
#include "wh_limit.h"
#include "wh_relay.h"
#include "wh_handshake.h"
#include "wh_udp.h"

#include <grp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <unistd.h>

static wh_cycle_t *cycle;
/* ours, not the forking master's stack: the modules keep a pointer */
static wh_worker_ctx_t worker;
static ev_signal sig_quit, sig_term, sig_int, sig_usr1, sig_winch;
static ev_signal *sig_ignored;
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
    if (wh_live_count() == 0) {
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
    wh_log(WH_LOG_WARN, "shutdown_timeout: closing %u open streams", wh_live_count());
    wh_live_on_empty(NULL);
    wh_relay_close_all(WH_CLOSE_SHUTDOWN);
    ev_break(loop, EVBREAK_ALL);
}

/* The master is gone: what it bound must be free for the next one. A
 * stream listener's socket is closed by its module's stop; a UDP socket
 * is one of a SO_REUSEPORT group the next master would join, and its
 * number is still used for sending, so an unbound socket takes its place
 * (the sessions on it end by their timeouts); a unix path's lock goes. */
static void
release_ports(void)
{
    int i, k, fd;

    for (i = 0; i < cycle->nlisteners; i++) {
        wh_listener_t *ls = &cycle->listeners[i];

        for (k = 0; ls->module->datagram != NULL && k < ls->nfds; k++) {
            fd = socket(ls->addr.sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            if (fd == -1 || dup2(fd, ls->fds[k]) == -1) {
                wh_log(WH_LOG_ERROR, "cannot release udp %s (%s)", ls->addr_text, strerror(errno));
            }
            if (fd != -1) close(fd);
        }
        if (ls->lock_fd != -1) {
            close(ls->lock_fd);
            ls->lock_fd = -1;
        }
    }
}

static void
quit_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    int i;

    if (getppid() != worker.master) {
        wh_log(WH_LOG_WARN, "the master process has gone: closing the listening sockets");
        release_ports();
    }
    if (draining) {
        return;
    }
    draining = 1;
    for (i = 0; i < cycle->nlisteners; i++) {
        cycle->listeners[i].draining = 1;
        cycle->listeners[i].module->stop(&cycle->listeners[i]);
    }
    wh_stats_http_stop();
    wh_log(WH_LOG_INFO, "gracefully shutting down, %u streams open", wh_live_count());
    if (wh_live_count() == 0) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    wh_live_on_empty(drained);
    ev_timer_init(&drained_timer, drained_check, 0., 0.);
    ev_timer_init(&shutdown_timer, shutdown_timeout_cb, cycle->shutdown_timeout, 0);
    ev_timer_start(loop, &shutdown_timer);
}

static void
term_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    wh_live_on_empty(NULL);
    wh_relay_close_all(WH_CLOSE_SHUTDOWN);
    ev_break(loop, EVBREAK_ALL);
}

static void
usr1_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    wh_log_reopen((uid_t) -1, (gid_t) -1);
    wh_access_logs_reopen(cycle->access_logs, (uid_t) -1, (gid_t) -1);
}

/* Around the loop's poll: this worker sleeps, and takes a connection the
 * steering program gives it (wh_steer.h), unless it is not accepting
 * (which the acceptors tell it themselves). */
static void
loop_release(struct ev_loop *loop)
{
    if (wh_accept_ready()) {
        wh_steer_mark(&cycle->steer, WH_STEER_ASLEEP, worker.index, 1);
    }
}

static void
loop_acquire(struct ev_loop *loop)
{
    wh_steer_mark(&cycle->steer, WH_STEER_ASLEEP, worker.index, 0);
}

static void
pause_udp(void)
{
    int i, n = 0;

    for (i = 0; i < cycle->nlisteners; i++) {
        if (cycle->listeners[i].module->datagram != NULL && cycle->listeners[i].udp != NULL) {
            wh_udp_stop(&cycle->listeners[i]);
            n++;
        }
    }
    if (n > 0) {
        wh_log(WH_LOG_INFO, "binary upgrade: UDP sockets left to the new workers");
    }
}

static void
winch_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    pause_udp();
}

static void
ignored_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    wh_log(WH_LOG_WARN, "signal %d (%s) ignored by the worker", w->signum, strsignal(w->signum));
}

static void
ignore_signals(struct ev_loop *loop)
{
    int i, n = 0;

    sig_ignored = calloc(NSIG, sizeof(ev_signal));
    for (i = 1; sig_ignored != NULL && i < NSIG; i++) {
        if (i == SIGHUP || i == SIGUSR2 || i == SIGALRM || wh_stray_signal(i)) {
            ev_signal_init(&sig_ignored[n], ignored_cb, i);
            ev_signal_start(loop, &sig_ignored[n++]);
        }
    }
}

/* As root, before the drop, so the hard limit may be raised too. */
static void
set_nofile(wh_cycle_t *c)
{
    struct rlimit rl;

    if (c->worker_rlimit_nofile > 0) {
        rl.rlim_cur = rl.rlim_max = (rlim_t) c->worker_rlimit_nofile;
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
            wh_log(WH_LOG_ERROR, "setrlimit(RLIMIT_NOFILE, %ld) failed (%s)",
                   c->worker_rlimit_nofile, strerror(errno));
        }
    }
    /* a relayed stream takes two descriptors, its client's and its upstream's */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
        && (rlim_t) c->worker_connections * 2 > rl.rlim_cur)
    {
        wh_log(WH_LOG_WARN, "%d worker_connections exceed open file resource limit: %llu "
               "(set worker_rlimit_nofile)", c->worker_connections,
               (unsigned long long) rl.rlim_cur);
    }
}

void
wh_worker_run(wh_cycle_t *c, int slot, const wh_worker_ctx_t *ctx)
{
    struct ev_loop *loop;
    wh_upstream_conf_t *u;
    sigset_t set;
    int i;

    cycle = c;
    worker = *ctx;
    prctl(PR_SET_NAME, "wharf: worker");
    for (i = 1; i < NSIG; i++) {
        if (i != SIGKILL && i != SIGSTOP && i != SIGPIPE) signal(i, SIG_DFL);
    }
    set_nofile(c);
    wh_affinity_apply(&c->affinity, ctx->index);
    drop_privileges(c);
    /* after the drop: changing credentials clears it */
    prctl(PR_SET_PDEATHSIG, SIGQUIT);   /* a killed master: free the ports, drain */
    if (getppid() != worker.master) {
        exit(0);                        /* it died before we could ask */
    }

    loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (loop == NULL) {
        wh_log(WH_LOG_EMERG, "ev_loop_new() failed");
        exit(2);
    }
    wh_event_init(loop);
    worker.loop = loop;
    if (c->steer.words != NULL) {
        ev_set_loop_release_cb(loop, loop_release, loop_acquire);
    }
    wh_access_logs_start(c->access_logs);

    ev_signal_init(&sig_quit, quit_cb, SIGQUIT);
    ev_signal_init(&sig_term, term_cb, SIGTERM);
    ev_signal_init(&sig_int, term_cb, SIGINT);
    ev_signal_init(&sig_usr1, usr1_cb, SIGUSR1);
    ev_signal_init(&sig_winch, winch_cb, SIGWINCH);
    ev_signal_start(loop, &sig_quit);
    ev_signal_start(loop, &sig_term);
    ev_signal_start(loop, &sig_int);
    ev_signal_start(loop, &sig_usr1);
    ev_signal_start(loop, &sig_winch);
    ignore_signals(loop);
    sigemptyset(&set);
    sigprocmask(SIG_SETMASK, &set, NULL);

    wh_limit_init(c, slot);
    for (i = 0; i < c->nlisteners; i++) {
        c->listeners[i].stats = wh_stats_counters(slot, c->listeners[i].stats_index);
    }
    for (u = c->upstreams; u != NULL; u = u->link) {
        for (i = 0; i < u->nmembers; i++) {
            u->members[i].stats = wh_stats_upstream_counters(slot, u->members[i].stats_index);
        }
    }
    for (i = 0; i < c->nlisteners; i++) {
        wh_listener_t *ls = &c->listeners[i];

        if (ls->module->start(ls, &worker) != WH_OK) {
            wh_log(WH_LOG_EMERG, "listener \"%s\" could not start", ls->tag);
            exit(2);
        }
    }
    if (worker.udp_paused) {
        pause_udp();        /* respawned while an upgrade runs */
    }
    wh_stats_http_start(c);

    ev_run(loop, 0);
    exit(0);
}

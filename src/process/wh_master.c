/*
 * wh_master.c -- the master process: a small signal state machine
 * (nginx's ngx_master_process_cycle).
 *
 * The master does no network I/O. It blocks its signals, sleeps in
 * sigsuspend(), and acts on flags the handlers set, in a fixed order:
 * reap children, stop, reload, reopen, respawn.
 *
 * A binary upgrade is nginx's: USR2 renames the pid file to ".oldbin" and
 * execs the binary with everything inherited (wh_upgrade.c); the old
 * workers leave their UDP sockets to the new ones at once (WINCH to a
 * worker), since only a new worker can pass a datagram to an old one.
 * WINCH drains the old workers, HUP then starts them again (a rollback),
 * QUIT ends the old master; when the new master exits, the old one takes
 * its pid file back and restarts its workers if they were paused.
 *
 * Reload builds the new cycle completely and binds its sockets (taking over
 * the unchanged ones) before anything changes; a bad file or a failed bind
 * leaves the old cycle serving. Then the new generation of workers starts,
 * and only then are the old workers told to drain, so some worker always
 * accepts. Workers that die unexpectedly are respawned, with a back-off
 * that doubles while they keep dying within a second of their start.
 */
#include "wh_process.h"
#include "wh_log.h"
#include "wh_syslog.h"
#include "wh_udp.h"
#include "wh_upgrade.h"

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WH_MAX_WORKERS     WH_STATS_MAX_SLOTS
#define WH_RESPAWN_MAX     10.0     /* seconds of back-off at most */
#define WH_TERM_GRACE      5.0      /* fast stop: then SIGKILL */

typedef struct {
    pid_t pid;
    int slot;
    int generation;
    int index;                      /* place in its generation */
    uint32_t serial;
    int mailbox;                    /* sending end, -1 if none */
    unsigned exiting:1;
    double started;
} wh_worker_t;

static volatile sig_atomic_t sig_reap, sig_terminate, sig_quit, sig_reconfigure, sig_reopen, sig_alarm;
static volatile sig_atomic_t sig_change_binary, sig_noaccept, sig_stray[NSIG];

static wh_cycle_t *cycle;
static wh_worker_t workers[WH_MAX_WORKERS];
static int generation;
static uint32_t last_serial;

static int respawn_pending;
static int respawn_failures;
static double respawn_at;
static double stop_deadline;
static int stopping;                /* SIGQUIT or SIGTERM received */

static pid_t new_binary;            /* the upgraded master while it runs */
static char *oldbin;                /* "<pid>.oldbin" */
static int noaccept;                /* WINCH: the workers drained, none respawned */
static int paused;                  /* the workers left their UDP sockets to new ones */
static wh_upgrade_from_t from;      /* what the master that exec'ed this one gave */

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
on_signal(int signo)
{
    switch (signo) {
    case SIGCHLD: sig_reap = 1; break;
    case SIGTERM: case SIGINT: sig_terminate = 1; break;
    case SIGQUIT: sig_quit = 1; break;
    case SIGHUP: sig_reconfigure = 1; break;
    case SIGUSR1: sig_reopen = 1; break;
    case SIGALRM: sig_alarm = 1; break;
    case SIGUSR2: sig_change_binary = 1; break;
    case SIGWINCH: sig_noaccept = 1; break;
    default: sig_stray[signo] = 1; break;
    }
}

int
wh_stray_signal(int signo)
{
    /* those whose default action would end or stop a process */
    return signo == SIGIO || signo == SIGVTALRM || signo == SIGPWR
           || (signo >= SIGRTMIN && signo <= SIGRTMAX);
}

static int
live_workers(int gen)
{
    int i, n = 0;

    for (i = 0; i < WH_MAX_WORKERS; i++) {
        if (workers[i].pid > 0 && (gen < 0 || (workers[i].generation == gen && !workers[i].exiting))) {
            n++;
        }
    }
    return n;
}

static void
signal_workers(int signo, int only_old)
{
    int i;

    for (i = 0; i < WH_MAX_WORKERS; i++) {
        if (workers[i].pid <= 0 || (only_old && workers[i].generation == generation)) {
            continue;
        }
        if (signo == SIGQUIT || signo == SIGTERM) {
            workers[i].exiting = 1;
        }
        if (kill(workers[i].pid, signo) == -1 && errno != ESRCH) {
            wh_log(WH_LOG_ERROR, "kill(%d, %d) failed (%s)", (int) workers[i].pid, signo,
                   strerror(errno));
        }
    }
}

/* A worker's wh_worker_ctx_t.mailbox_of. */
static int
mailbox_of(uint32_t serial)
{
    int i;

    /* the table as it was when this worker was forked: older workers only,
     * and those of the master this one upgraded */
    for (i = 0; i < WH_MAX_WORKERS; i++) {
        if (workers[i].pid > 0 && workers[i].serial == serial) {
            return workers[i].mailbox;
        }
    }
    for (i = 0; i < from.nmail; i++) {
        if (from.mail[i].serial == serial) {
            return from.mail[i].fd;
        }
    }
    return -1;
}

/* The lowest place of the current generation no live worker holds (a
 * respawned worker takes the place of the one that died). */
static int
free_index(void)
{
    int i, index;

    for (index = 0;; index++) {
        for (i = 0; i < WH_MAX_WORKERS; i++) {
            if (workers[i].pid > 0 && workers[i].generation == generation && !workers[i].exiting
                && workers[i].index == index)
            {
                break;
            }
        }
        if (i == WH_MAX_WORKERS) {
            return index;
        }
    }
}

/* A unix datagram socketpair: the worker keeps sv[1], the master (and every
 * worker forked later) sv[0], to pass it datagrams of its UDP sessions. */
static void
make_mailbox(int sv[2])
{
    int size = 4 << 20;

    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == -1) {
        wh_log(WH_LOG_WARN, "socketpair() failed (%s): UDP sessions of this worker will not "
               "survive a reload", strerror(errno));
        sv[0] = sv[1] = -1;
        return;
    }
    if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) == -1) {
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    }
    if (setsockopt(sv[1], SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) == -1) {
        setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    }
}

static int
spawn_worker(void)
{
    int i, slot, index, sv[2];
    wh_worker_ctx_t ctx;
    pid_t pid;

    for (i = 0; i < WH_MAX_WORKERS && workers[i].pid > 0; i++) { /* void */ }
    slot = wh_stats_slot_alloc();
    if (i == WH_MAX_WORKERS || slot == -1) {
        wh_log(WH_LOG_ERROR, "too many worker processes (old ones still draining)");
        return WH_ERROR;
    }
    index = free_index();
    make_mailbox(sv);
    last_serial++;
    ctx = (wh_worker_ctx_t) { .index = index, .count = cycle->worker_processes,
                              .serial = last_serial, .mailbox = sv[1], .master = getpid(),
                              .udp_paused = paused, .mailbox_of = mailbox_of };
    pid = fork();
    if (pid == -1) {
        wh_log(WH_LOG_ERROR, "fork() failed (%s)", strerror(errno));
        wh_stats_slot_retire(slot);
        if (sv[0] != -1) close(sv[0]);
        if (sv[1] != -1) close(sv[1]);
        return WH_ERROR;
    }
    if (pid == 0) {
        if (sv[0] != -1) close(sv[0]);
        wh_worker_run(cycle, slot, &ctx);
    }
    if (sv[1] != -1) close(sv[1]);
    workers[i] = (wh_worker_t) { .pid = pid, .slot = slot, .generation = generation,
                                 .index = index, .serial = last_serial, .mailbox = sv[0],
                                 .started = now() };
    wh_log(WH_LOG_INFO, "start worker process %d", (int) pid);
    return WH_OK;
}

static void
spawn_workers(int n)
{
    while (n-- > 0) {
        if (spawn_worker() != WH_OK) {
            respawn_pending++;
        }
    }
}

static void
arm_alarm(void)
{
    struct itimerval it = { { 0, 0 }, { 0, 0 } };
    double next = 0, t = now();

    if (respawn_pending > 0 && !stopping) next = respawn_at;
    if (stopping && stop_deadline > 0 && (next == 0 || stop_deadline < next)) next = stop_deadline;
    if (next > 0) {
        double d = wh_max(next - t, 0.001);
        it.it_value.tv_sec = (time_t) d;
        it.it_value.tv_usec = (suseconds_t) ((d - floor(d)) * 1e6) + 1;
    }
    setitimer(ITIMER_REAL, &it, NULL);
}

/* A fresh generation of workers with the running configuration, the
 * current one drained: after a reload, and to undo an upgrade's pause. */
static void
restart_workers(void)
{
    generation++;
    respawn_pending = 0;
    respawn_failures = 0;
    noaccept = 0;
    paused = 0;
    spawn_workers(cycle->worker_processes);
    signal_workers(SIGQUIT, 1);
}

static void
new_binary_exited(int status)
{
    if (WIFSIGNALED(status)) {
        wh_log(WH_LOG_ERROR, "new binary process %d exited on signal %d", (int) new_binary,
               WTERMSIG(status));
    } else if (WEXITSTATUS(status) != 0) {
        wh_log(WH_LOG_ERROR, "new binary process %d exited with code %d", (int) new_binary,
               WEXITSTATUS(status));
    } else {
        wh_log(WH_LOG_INFO, "new binary process %d exited", (int) new_binary);
    }
    new_binary = 0;
    if (rename(oldbin, cycle->pid_path) == -1) {
        wh_log(WH_LOG_ERROR, "rename() \"%s\" back to \"%s\" failed (%s)", oldbin,
               cycle->pid_path, strerror(errno));
    } else {
        wh_log(WH_LOG_INFO, "binary upgrade undone: \"%s\" is this master's again",
               cycle->pid_path);
    }
    if ((paused || noaccept) && !stopping) {
        restart_workers();
    }
}

static void
reap(void)
{
    int status, i;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == new_binary) {
            new_binary_exited(status);
            continue;
        }
        for (i = 0; i < WH_MAX_WORKERS && workers[i].pid != pid; i++) { /* void */ }
        if (i == WH_MAX_WORKERS) {
            continue;
        }
        wh_worker_t *w = &workers[i];

        if (WIFSIGNALED(status)) {
            wh_log(WH_LOG_ERROR, "worker process %d exited on signal %d", (int) pid, WTERMSIG(status));
        } else if (WEXITSTATUS(status) != 0) {
            wh_log(WH_LOG_ERROR, "worker process %d exited with code %d", (int) pid,
                   WEXITSTATUS(status));
        } else {
            wh_log(WH_LOG_INFO, "worker process %d exited", (int) pid);
        }
        wh_stats_slot_retire(w->slot);
        if (w->generation == generation && cycle->steer.words != NULL) {
            /* it died asleep, or accepting */
            wh_steer_mark(&cycle->steer, WH_STEER_ASLEEP, w->index, 0);
            wh_steer_mark(&cycle->steer, WH_STEER_ACCEPTING, w->index, 0);
        }
        wh_udp_forget(w->serial);
        if (w->mailbox != -1) {
            close(w->mailbox);
            w->mailbox = -1;
        }

        if (!w->exiting && !stopping && !noaccept && w->generation == generation) {
            if (now() - w->started < 1.0) {
                respawn_failures++;
            } else {
                respawn_failures = 0;
            }
            double delay = respawn_failures == 0
                           ? 0 : wh_min(0.1 * pow(2, respawn_failures - 1), WH_RESPAWN_MAX);
            if (respawn_pending == 0 || now() + delay < respawn_at) {
                respawn_at = now() + delay;
            }
            respawn_pending++;
            wh_stats_add(wh_stats_master()->worker_restarts, 1);
            if (delay > 0) {
                wh_log(WH_LOG_WARN, "worker processes keep dying: respawn in %.1fs", delay);
            }
        }
        w->pid = 0;
    }
}

static int
write_pid(const char *path)
{
    char buf[32];
    int fd, n;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        wh_log(WH_LOG_EMERG, "open() \"%s\" failed (%s)", path, strerror(errno));
        return WH_ERROR;
    }
    n = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
    if (write(fd, buf, n) != n) {
        wh_log(WH_LOG_EMERG, "write() \"%s\" failed (%s)", path, strerror(errno));
        close(fd);
        return WH_ERROR;
    }
    close(fd);
    return WH_OK;
}

static int
assign_stats_columns(wh_cycle_t *c)
{
    wh_upstream_conf_t *u;
    int i;

    for (i = 0; i < c->nlisteners; i++) {
        c->listeners[i].stats_index = wh_stats_listener(c->listeners[i].tag);
        if (c->listeners[i].stats_index < 0) {
            wh_log(WH_LOG_EMERG, "too many listener tags since start for the stats segment; "
                   "restart wharf to add \"%s\"", c->listeners[i].tag);
            return WH_ERROR;
        }
    }
    for (u = c->upstreams; u != NULL; u = u->link) {
        for (i = 0; i < u->nmembers; i++) {
            u->members[i].stats_index = wh_stats_upstream(u->name, u->members[i].text);
            if (u->members[i].stats_index < 0) {
                wh_log(WH_LOG_EMERG, "too many upstream members since start for the stats "
                       "segment; restart wharf to add %s of \"%s\"", u->members[i].text,
                       u->name);
                return WH_ERROR;
            }
        }
    }
    return WH_OK;
}

static void
reload(void)
{
    wh_conf_t cf;
    wh_cycle_t *c;

    wh_log(WH_LOG_INFO, "reconfiguring from %s", cycle->conf_file);
    c = wh_cycle_load(&cf, cycle->prefix, cycle->conf_file);
    if (c == NULL) {
        wh_log(WH_LOG_EMERG, "%s", cf.error);
        wh_log(WH_LOG_EMERG, "reload refused: the running configuration stays");
        wh_stats_add(wh_stats_master()->reloads_failed, 1);
        return;
    }
    if (assign_stats_columns(c) != WH_OK || wh_cycle_bind(c, cycle) != WH_OK) {
        wh_log(WH_LOG_EMERG, "reload refused: the running configuration stays");
        wh_stats_add(wh_stats_master()->reloads_failed, 1);
        wh_cycle_free(c);
        return;
    }
    if (strcmp(c->error_log, cycle->error_log) != 0 && wh_log_open(c->error_log) == WH_OK
        && geteuid() == 0)
    {
        wh_log_reopen(c->uid, c->gid);
    }
    wh_log_level = c->log_level;
    if (strcmp(c->pid_path, cycle->pid_path) != 0 && write_pid(c->pid_path) == WH_OK) {
        unlink(cycle->pid_path);
    }

    wh_cycle_close(cycle);     /* what the new cycle did not take over */
    wh_cycle_free(cycle);
    cycle = c;

    /* counted before the new workers start: they serve /metrics, and one
     * that answers before the count would show the reload as not done */
    wh_stats_add(wh_stats_master()->reloads, 1);
    restart_workers();
    wh_log(WH_LOG_INFO, "reconfigured: %d listeners, %d workers", cycle->nlisteners,
           cycle->worker_processes);
}

static void
change_binary(void)
{
    wh_upgrade_mail_t mail[WH_MAX_WORKERS];
    size_t n;
    int i, nmail = 0;

    if (new_binary > 0) {
        wh_log(WH_LOG_WARN, "USR2 ignored: the new binary %d runs already (QUIT it, or WINCH "
               "and QUIT this master)", (int) new_binary);
        return;
    }
    if (from.parent > 1 && getppid() == from.parent) {
        wh_log(WH_LOG_WARN, "USR2 ignored: the old master %d still runs (QUIT it, or this "
               "master, first)", (int) from.parent);
        return;
    }
    free(oldbin);
    n = strlen(cycle->pid_path) + sizeof(".oldbin");
    oldbin = wh_xalloc(n);
    snprintf(oldbin, n, "%s.oldbin", cycle->pid_path);
    if (rename(cycle->pid_path, oldbin) == -1) {
        wh_log(WH_LOG_ERROR, "rename() \"%s\" to \"%s\" failed (%s): no upgrade",
               cycle->pid_path, oldbin, strerror(errno));
        return;
    }
    for (i = 0; i < WH_MAX_WORKERS; i++) {
        if (workers[i].pid > 0 && workers[i].mailbox != -1) {
            mail[nmail++] = (wh_upgrade_mail_t) { workers[i].serial, workers[i].mailbox };
        }
    }
    new_binary = wh_upgrade_exec(cycle, mail, nmail, last_serial);
    if (new_binary == -1) {
        new_binary = 0;
        if (rename(oldbin, cycle->pid_path) == -1) {
            wh_log(WH_LOG_ERROR, "rename() \"%s\" back failed (%s)", oldbin, strerror(errno));
        }
        return;
    }
    wh_log(WH_LOG_INFO, "binary upgrade: started new master %d, pid file \"%s\" renamed to "
           "\"%s\"", (int) new_binary, cycle->pid_path, oldbin);
    /* the new workers read the UDP sockets and pass the old sessions'
     * datagrams here; an old worker could not pass theirs back */
    paused = 1;
    signal_workers(SIGWINCH, 0);
}

static void
stop_accepting(void)
{
    if (new_binary == 0) {
        wh_log(WH_LOG_WARN, "WINCH ignored: no binary upgrade in progress (USR2 first)");
        return;
    }
    if (noaccept) {
        wh_log(WH_LOG_INFO, "WINCH ignored: the workers drain already");
        return;
    }
    wh_log(WH_LOG_INFO, "binary upgrade: gracefully shutting down the worker processes");
    noaccept = 1;
    respawn_pending = 0;
    signal_workers(SIGQUIT, 0);
}

static void
log_stray(void)
{
    int i;

    for (i = 1; i < NSIG; i++) {
        if (sig_stray[i]) {
            sig_stray[i] = 0;
            wh_log(WH_LOG_WARN, "signal %d (%s) ignored", i, strsignal(i));
        }
    }
}

static int
daemonize(void)
{
    int fd;

    switch (fork()) {
    case -1:
        wh_log(WH_LOG_EMERG, "fork() failed (%s)", strerror(errno));
        return WH_ERROR;
    case 0:
        break;
    default:
        exit(0);
    }
    setsid();
    fd = open("/dev/null", O_RDWR);
    if (fd != -1) {
        dup2(fd, 0);
        dup2(fd, 1);
        if (fd > 1) close(fd);
    }
    wh_log_redirect_stderr();
    return WH_OK;
}

static int
ensure_parent_dir(const char *path)
{
    char dir[4096];
    char *slash;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir) {
        return WH_OK;
    }
    *slash = '\0';
    if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
        fprintf(stderr, WH_NAME ": [emerg] mkdir() \"%s\" failed (%s)\n", dir, strerror(errno));
        return WH_ERROR;
    }
    return WH_OK;
}

int
wh_master_run(wh_cycle_t *c, char *const *argv)
{
    static const int handled[] = { SIGCHLD, SIGALRM, SIGINT, SIGTERM, SIGQUIT, SIGHUP,
                                   SIGUSR1, SIGUSR2, SIGWINCH };
    struct sigaction sa;
    sigset_t set, empty;
    int rc = 0, inherited;
    size_t i;

    cycle = c;
    prctl(PR_SET_NAME, "wharf: master");   /* before the pid file: -s checks the name */
    wh_log_level = c->log_level;
    wh_log_also_stderr = 1;
    if (strcmp(c->error_log, "stderr") != 0
        && ((!wh_syslog_is(c->error_log) && ensure_parent_dir(c->error_log) != WH_OK)
            || wh_log_open(c->error_log) != WH_OK))
    {
        return 1;
    }
    if (geteuid() == c->uid && c->uid != 0) {
        /* started unprivileged (a unit's User=): nothing to drop, workers stay as they are */
        wh_log(WH_LOG_INFO, "the master runs as \"%s\": workers keep that user", c->user);
    } else if (geteuid() != 0) {
        wh_log(WH_LOG_WARN, "the \"user\" directive makes sense only if the master runs as root");
    } else {
        wh_log_reopen(c->uid, c->gid);      /* so workers can reopen it on USR1 */
    }

    /* every signal that would end the master is acted on or logged */
    sigemptyset(&set);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (i = 1; i < NSIG; i++) {
        int k;
        for (k = 0; k < (int) wh_nelems(handled) && handled[k] != (int) i; k++) { /* void */ }
        if (k < (int) wh_nelems(handled) || wh_stray_signal((int) i)) {
            sigaddset(&set, (int) i);
            sigaction((int) i, &sa, NULL);
        }
    }
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    wh_upgrade_init(argv);
    inherited = wh_upgrade_inherit(&from) == WH_OK;
    if (inherited) {
        /* serials of this master's workers start at the old master's next
         * epoch: both write the shared session table */
        last_serial = ((from.serial >> 24) + 1) << 24;
    }

    /* bind before anything else, as nginx does: a second instance fails
     * here, on the terminal, and touches neither the pid file nor the
     * stats of the one that runs; a new binary that fails leaves the old
     * master its unix paths */
    c->handed_over = inherited;
    if (wh_cycle_bind(c, NULL) != WH_OK) {
        return 1;
    }
    wh_cycle_inherit_end();
    /* an upgraded master stays the old one's child, as in nginx */
    if (c->daemon && !inherited && daemonize() != WH_OK) {
        wh_cycle_close(c);
        return 1;
    }
    wh_log_also_stderr = !c->daemon;       /* a daemon's stderr is the log now */
    if (wh_stats_create(getpid()) != WH_OK || wh_udp_init() != WH_OK
        || assign_stats_columns(c) != WH_OK
        || ensure_parent_dir(c->pid_path) != WH_OK || write_pid(c->pid_path) != WH_OK)
    {
        wh_cycle_close(c);
        wh_stats_destroy();
        return 1;
    }
    c->handed_over = 0;
    wh_log_also_stderr = 0;
    wh_log(WH_LOG_INFO, WH_NAME "/" WH_VERSION " started: %d listeners, %d workers",
           c->nlisteners, c->worker_processes);

    spawn_workers(c->worker_processes);
    sigemptyset(&empty);

    for (;;) {
        arm_alarm();
        sigsuspend(&empty);

        if (sig_reap) {
            sig_reap = 0;
            reap();
        }
        if (sig_terminate) {
            sig_terminate = 0;
            if (stopping != SIGTERM) {
                wh_log(WH_LOG_INFO, "fast shutdown");
                stopping = SIGTERM;
                stop_deadline = now() + WH_TERM_GRACE;
                signal_workers(SIGTERM, 0);
            }
        }
        if (sig_quit) {
            sig_quit = 0;
            if (!stopping) {
                wh_log(WH_LOG_INFO, "graceful shutdown");
                stopping = SIGQUIT;
                stop_deadline = now() + cycle->shutdown_timeout + WH_TERM_GRACE;
                signal_workers(SIGQUIT, 0);
            }
        }
        if (stopping) {
            if (live_workers(-1) == 0) {
                break;
            }
            if (sig_alarm && now() >= stop_deadline) {
                wh_log(WH_LOG_WARN, "workers did not stop in time: SIGKILL");
                signal_workers(SIGKILL, 0);
                stop_deadline = now() + 1;
            }
            sig_alarm = 0;
            continue;
        }
        if (sig_reconfigure) {
            sig_reconfigure = 0;
            if (new_binary > 0) {
                wh_log(WH_LOG_INFO, "binary upgrade in progress: restarting the worker "
                       "processes with the running configuration, not reloading");
                restart_workers();
            } else {
                reload();
            }
        }
        if (sig_change_binary) {
            sig_change_binary = 0;
            change_binary();
        }
        if (sig_noaccept) {
            sig_noaccept = 0;
            stop_accepting();
        }
        if (sig_reopen) {
            sig_reopen = 0;
            wh_log(WH_LOG_INFO, "reopening logs");
            wh_log_reopen(geteuid() == 0 ? cycle->uid : (uid_t) -1, cycle->gid);
            wh_access_logs_reopen(cycle->access_logs, geteuid() == 0 ? cycle->uid : (uid_t) -1,
                                  cycle->gid);
            signal_workers(SIGUSR1, 0);
        }
        if (sig_alarm) {
            sig_alarm = 0;
        }
        log_stray();
        if (respawn_pending > 0 && now() >= respawn_at && !noaccept) {
            int n = respawn_pending;
            respawn_pending = 0;
            spawn_workers(n);
            if (respawn_pending > 0) respawn_at = now() + 1;
        }
    }

    wh_log(WH_LOG_INFO, "exit");
    /* after an upgrade the sockets, their paths and the pid file are the
     * new master's: this one removes only its ".oldbin"; a new master
     * quitting before its old one (a rollback) leaves it the paths */
    cycle->handed_over = new_binary > 0 || (from.parent > 1 && getppid() == from.parent);
    wh_cycle_close(cycle);
    unlink(new_binary > 0 ? oldbin : cycle->pid_path);
    wh_stats_destroy();
    return rc;
}

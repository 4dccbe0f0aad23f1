/*
 * wharf.c -- main(): the command line, as nginx's.
 *
 *   wharf [-c file] [-p prefix]            start (the master)
 *   wharf -t | -T                          test (and print) the configuration
 *   wharf -s stop|quit|reload|reopen       signal the running master
 *   wharf -S                               print the shared-memory counters
 *   wharf -v | -V | -h
 *
 * Everything but -v/-V/-h reads the configuration first: -s and -S find the
 * master through its pid file, as nginx does. -S reads only the "pid"
 * setting, so a monitoring user who may not read the TLS keys can run it.
 */
#include "wh_cycle.h"
#include "wh_log.h"
#include "wh_process.h"

#include <ev.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

static void
usage(FILE *f)
{
    fprintf(f,
        "Usage: wharf [-?hvVtTqS] [-s signal] [-p prefix] [-c filename]\n"
        "\n"
        "Options:\n"
        "  -?,-h         : this help\n"
        "  -v            : show version and exit\n"
        "  -V            : show version, libraries and configure options then exit\n"
        "  -t            : test configuration and exit\n"
        "  -T            : test configuration, dump it and exit\n"
        "  -q            : suppress non-error messages during configuration testing\n"
        "  -S            : show the shared-memory counters of the running master and exit\n"
        "  -s signal     : send signal to a master process: stop, quit, reload, reopen\n"
        "  -p prefix     : set prefix path (default: " WH_PREFIX "/)\n"
        "  -c filename   : set configuration file (default: " WH_CONF_PATH ")\n");
}

/* A pid file (and shared-memory segment) outlives a master killed with -9,
 * and its number may be another process's by now: only a live process
 * (not a zombie) named as wharf names it (prctl in the master, before it
 * writes the pid file; the exec'ed name before that). */
static int
master_alive(pid_t pid)
{
    char path[64], stat[128] = "", *end;
    FILE *f;

    if (kill(pid, 0) == -1 && errno == ESRCH) {
        return 0;
    }
    snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return errno != ENOENT;     /* no /proc: believe kill() */
    }
    if (fgets(stat, sizeof(stat), f) == NULL) {
        stat[0] = '\0';
    }
    fclose(f);
    /* "pid (comm) state ..." */
    end = strrchr(stat, ')');
    return end != NULL && end[1] == ' ' && end[2] != 'Z'
           && strncmp(strchr(stat, '(') + 1, WH_NAME, sizeof(WH_NAME) - 1) == 0;
}

static pid_t
read_pid(const char *path)
{
    FILE *f = fopen(path, "r");
    long pid = 0;

    if (f == NULL) {
        fprintf(stderr, WH_NAME ": [error] open() \"%s\" failed (%s)\n", path, strerror(errno));
        return -1;
    }
    if (fscanf(f, "%ld", &pid) != 1 || pid <= 0) {
        fprintf(stderr, WH_NAME ": [error] invalid PID number in \"%s\"\n", path);
        pid = -1;
    } else if (!master_alive((pid_t) pid)) {
        fprintf(stderr, WH_NAME ": [error] " WH_NAME " is not running: \"%s\" names process %ld, "
                "which is not a running master (a stale pid file)\n", path, pid);
        pid = -1;
    }
    fclose(f);
    return (pid_t) pid;
}

static int
send_signal(wh_cycle_t *c, const char *name)
{
    static const struct { const char *name; int signo; } sigs[] = {
        { "stop", SIGTERM }, { "quit", SIGQUIT }, { "reload", SIGHUP }, { "reopen", SIGUSR1 },
    };
    size_t i;
    pid_t pid;

    for (i = 0; i < wh_nelems(sigs) && strcmp(sigs[i].name, name) != 0; i++) { /* void */ }
    pid = read_pid(c->pid_path);
    if (pid == -1) {
        return 1;
    }
    if (kill(pid, sigs[i].signo) == -1) {
        fprintf(stderr, WH_NAME ": [error] kill(%d, %d) failed (%s)\n", (int) pid, sigs[i].signo,
                strerror(errno));
        return 1;
    }
    return 0;
}

static void
print_row(const char *tag, const wh_stats_counters_t *c, void *arg)
{
    int k;

    printf("%-20s %10llu %8llu", tag, (unsigned long long) c->accepted,
           (unsigned long long) c->active);
    for (k = 0; k < WH_CLOSE_NCAUSES; k++) {
        printf(" %9llu", (unsigned long long) c->closed[k]);
    }
    printf(" %14llu %14llu %11llu %18llu %8llu %6llu %9llu\n", (unsigned long long) c->bytes_up,
           (unsigned long long) c->bytes_down, (unsigned long long) c->connections,
           (unsigned long long) c->connections_active, (unsigned long long) c->clients,
           (unsigned long long) c->paused, (unsigned long long) c->fallbacks);
}

static void
print_datagram_row(const char *tag, const wh_stats_counters_t *c, void *arg)
{
    int k;

    if (c->datagrams_in + c->datagrams_out == 0) {
        return;
    }
    if (*(int *) arg == 0) {
        printf("\n%-20s %12s %12s %10s", "listener", "datagrams_in", "datagrams_out", "passed");
        for (k = 0; k < WH_DROP_NCAUSES; k++) {
            printf(" %10s", wh_drop_cause_names[k]);
        }
        printf(" %10s\n", "quic_retry");
        *(int *) arg = 1;
    }
    printf("%-20s %12llu %12llu %10llu", tag, (unsigned long long) c->datagrams_in,
           (unsigned long long) c->datagrams_out, (unsigned long long) c->datagrams_passed);
    for (k = 0; k < WH_DROP_NCAUSES; k++) {
        printf(" %10llu", (unsigned long long) c->datagrams_dropped[k]);
    }
    printf(" %10llu\n", (unsigned long long) c->quic_retry);
}

static void
print_upstream_row(const char *group, const char *member, const wh_stats_upstream_sum_t *u,
                   void *arg)
{
    if (*(int *) arg == 0) {
        printf("\n%-20s %-40s %10s %10s %6s\n", "group", "upstream", "connects", "failures",
               "down");
        *(int *) arg = 1;
    }
    printf("%-20s %-40s %10llu %10llu %6llu\n", group, member, (unsigned long long) u->connects,
           (unsigned long long) u->connect_failures, (unsigned long long) u->down);
}

static int
print_stats(const char *pid_path)
{
    pid_t pid = read_pid(pid_path);
    wh_stats_master_t m;
    int k;

    if (pid == -1) {
        return 1;
    }
    if (wh_stats_attach(pid) != WH_OK) {
        fprintf(stderr, WH_NAME ": [error] no stats segment for master %d (%s)\n", (int) pid,
                strerror(errno));
        return 1;
    }
    m = *wh_stats_master();
    printf("master %d: started %llu, reloads %llu (failed %llu), worker restarts %llu\n\n",
           (int) pid, (unsigned long long) m.start_ms / 1000, (unsigned long long) m.reloads,
           (unsigned long long) m.reloads_failed, (unsigned long long) m.worker_restarts);
    printf("%-20s %10s %8s", "listener", "accepted", "active");
    for (k = 0; k < WH_CLOSE_NCAUSES; k++) {
        printf(" %9s", wh_close_cause_names[k]);
    }
    printf(" %14s %14s %11s %18s %8s %6s %9s\n", "bytes_up", "bytes_down", "connections",
           "connections_active", "clients", "paused", "fallbacks");
    wh_stats_foreach(print_row, NULL);
    k = 0;
    wh_stats_foreach(print_datagram_row, &k);
    k = 0;
    wh_stats_foreach_upstream(print_upstream_row, &k);
    return 0;
}

static void
print_version(int libraries)
{
    const wh_lib_version_t *lib;

    fprintf(stderr, WH_NAME " version: " WH_NAME "/" WH_VERSION "\n");
    if (!libraries) {
        return;
    }
    for (lib = wh_lib_versions(); lib->name != NULL; lib++) {
        fprintf(stderr, "built with %s %s", lib->name, lib->built);
        if (lib->running != NULL) {
            fprintf(stderr, " (running with %s)", lib->running);
        }
        fprintf(stderr, "\n");
    }
    fprintf(stderr, "modules: " WH_MODULE_NAMES "\n");
    fprintf(stderr, "configure arguments: " WH_CONFIGURE_ARGS "\n");
}

/* -S: only the pid file's path is read from the configuration */
static int
stats_command(const char *prefix, const char *conf)
{
    wh_conf_t cf;
    char *pid_path = wh_cycle_pid_path(&cf, prefix, conf);
    int rc;

    if (pid_path == NULL) {
        fprintf(stderr, WH_NAME ": [emerg] %s\n", cf.error);
        return 1;
    }
    rc = print_stats(pid_path);
    free(pid_path);
    return rc;
}

static void
raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int
main(int argc, char **argv)
{
    const char *prefix_arg = NULL, *conf_arg = NULL, *signal_arg = NULL;
    int test = 0, dump = 0, quiet = 0, stats = 0, version = 0, opt, rc;
    char cwd[PATH_MAX], *prefix, *conf;
    wh_conf_t cf;
    wh_cycle_t *c;

    opterr = 0;
    /* the leading ':' tells a missing parameter from an unknown option */
    while ((opt = getopt(argc, argv, ":hvVtTqSs:p:c:")) != -1) {
        switch (opt) {
        case 'h': usage(stdout); return 0;
        case 'v': version = 1; break;
        case 'V': version = 2; break;
        case 't': test = 1; break;
        case 'T': test = 1; dump = 1; break;
        case 'q': quiet = 1; break;
        case 'S': stats = 1; break;
        case 's':
            if (strcmp(optarg, "stop") && strcmp(optarg, "quit") && strcmp(optarg, "reload")
                && strcmp(optarg, "reopen"))
            {
                fprintf(stderr, WH_NAME ": invalid option: \"-s %s\"\n", optarg);
                return 1;
            }
            signal_arg = optarg;
            break;
        case 'p': prefix_arg = optarg; break;
        case 'c': conf_arg = optarg; break;
        case ':':
            fprintf(stderr, WH_NAME ": option \"-%c\" requires parameter\n", optopt);
            return 1;
        default:
            if (optopt == '?') { usage(stdout); return 0; }
            fprintf(stderr, WH_NAME ": invalid option: \"%c\"\n", optopt);
            usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, WH_NAME ": invalid argument: \"%s\"\n", argv[optind]);
        return 1;
    }
    if (version) {
        print_version(version == 2);
        return 0;
    }

    /* a relative prefix is taken from here, so -s and -S work from anywhere later */
    if (getcwd(cwd, sizeof(cwd)) == NULL) {
        strcpy(cwd, "/");
    }
    prefix = wh_cycle_path(cwd, prefix_arg ? prefix_arg : WH_PREFIX);
    conf = wh_cycle_path(prefix, conf_arg ? conf_arg : WH_CONF_PATH);
    if (stats) {
        rc = stats_command(prefix, conf);
        free(prefix);
        free(conf);
        return rc;
    }

    c = wh_cycle_load(&cf, prefix, conf);
    free(prefix);       /* the cycle keeps its own copies */
    if (c == NULL) {
        fprintf(stderr, WH_NAME ": [emerg] %s\n", cf.error);
        if (test) {
            fprintf(stderr, WH_NAME ": configuration file %s test failed\n", conf);
        }
        free(conf);
        return 1;
    }
    free(conf);
    /* the one-shot commands free the cycle, so a leak check at their exit
     * (--with-asan) reports only what was really lost */
    if (test) {
        if (!quiet) {
            fprintf(stderr, WH_NAME ": the configuration file %s syntax is ok\n", c->conf_file);
            fprintf(stderr, WH_NAME ": configuration file %s test is successful\n",
                    c->conf_file);
        }
        if (dump) {
            printf("# configuration file %s:\n", c->conf_file);
            config_write(&c->cfg, stdout);
        }
        rc = 0;
    } else if (signal_arg) {
        rc = send_signal(c, signal_arg);
    } else {
        raise_nofile();
        return wh_master_run(c, argv);
    }
    wh_cycle_free(c);
    return rc;
}

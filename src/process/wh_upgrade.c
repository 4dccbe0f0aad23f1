/*
 * wh_upgrade.c -- the two ends of a binary upgrade (nginx's
 * ngx_exec_new_binary and ngx_add_inherited_sockets).
 *
 * The old master forks and execs the binary at the path it was started
 * from, with every listening socket open across the exec and named in the
 * environment variable WHARF, as nginx does with NGINX="fd;fd;". Each item
 * is a descriptor number, or name=value for what is not a listening socket:
 *
 *   5;6;7;lock=8:5;routes=9:<seed>;serial=<n>;mail=<serial>:<fd>;...
 *
 * A bare number is a listening socket; the new master asks the kernel its
 * address and type (getsockname, SO_TYPE) and gives it to the listener of
 * that address and kind, so the item needs no tag and survives a changed
 * configuration. lock: a unix socket's "<path>.lock", held by flock on the
 * shared open file. routes: the UDP session table's memfd and hash seed.
 * mail: the sending end of an old worker's mailbox, so that new workers
 * pass datagrams of the old workers' sessions to them as after a reload.
 * serial: the old master's last worker serial; the new one counts from the
 * next multiple of 2^24, so serials in the shared table never collide.
 */
#include "wh_upgrade.h"
#include "wh_log.h"
#include "wh_udp.h"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#define WH_UPGRADE_ENV "WHARF"

static char **saved_argv;
static char *binary;

void
wh_upgrade_init(char *const *argv)
{
    char cwd[PATH_MAX], *path, *dir, *save = NULL;
    int n;

    for (n = 0; argv[n] != NULL; n++) { /* void */ }
    saved_argv = wh_xalloc((n + 1) * sizeof(char *));
    for (n = 0; argv[n] != NULL; n++) {
        saved_argv[n] = wh_xstrdup(argv[n]);
    }
    /* absolute but not through links: the file at the path the operator
     * started is the one a USR2 runs, as replaced there */
    if (argv[0][0] == '/') {
        binary = wh_xstrdup(argv[0]);
    } else if (strchr(argv[0], '/') != NULL) {
        binary = wh_cycle_path(getcwd(cwd, sizeof(cwd)) ? cwd : "/", argv[0]);
    } else if ((path = getenv("PATH")) != NULL) {
        path = wh_xstrdup(path);
        for (dir = strtok_r(path, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
            binary = wh_cycle_path(dir, argv[0]);
            if (access(binary, X_OK) == 0) break;
            free(binary);
            binary = NULL;
        }
        free(path);
    }
}

/* In the child: the item's descriptor survives the exec. */
static void
keep(int fd)
{
    fcntl(fd, F_SETFD, 0);
}

pid_t
wh_upgrade_exec(wh_cycle_t *c, const wh_upgrade_mail_t *mail, int nmail, uint32_t serial)
{
    wh_text_t env = { NULL, 0, 0 };
    uint64_t seed;
    pid_t pid;
    int i, k, fd;

    if (binary == NULL) {
        wh_log(WH_LOG_ERROR, "cannot find the binary started as \"%s\": no upgrade",
               saved_argv ? saved_argv[0] : "?");
        return -1;
    }
    pid = fork();
    if (pid != 0) {
        if (pid == -1) {
            wh_log(WH_LOG_ERROR, "fork() failed (%s)", strerror(errno));
        }
        return pid;
    }

    for (i = 0; i < c->nlisteners; i++) {
        wh_listener_t *ls = &c->listeners[i];

        for (k = 0; k < ls->nfds; k++) {
            wh_text_printf(&env, "%d;", ls->fds[k]);
            keep(ls->fds[k]);
        }
        if (ls->nfds == 0 && ls->fd != -1) {
            wh_text_printf(&env, "%d;", ls->fd);
            keep(ls->fd);
        }
        if (ls->lock_fd != -1 && ls->fd != -1) {
            wh_text_printf(&env, "lock=%d:%d;", ls->lock_fd, ls->fd);
            keep(ls->lock_fd);
        }
    }
    if (c->stats_fd != -1) {
        wh_text_printf(&env, "%d;", c->stats_fd);
        keep(c->stats_fd);
    }
    fd = wh_udp_routes_export(&seed);
    if (fd != -1) {
        wh_text_printf(&env, "routes=%d:%llx;", fd, (unsigned long long) seed);
        keep(fd);
    }
    wh_text_printf(&env, "serial=%u;", serial);
    for (i = 0; i < nmail; i++) {
        wh_text_printf(&env, "mail=%u:%d;", mail[i].serial, mail[i].fd);
        keep(mail[i].fd);
    }
    setenv(WH_UPGRADE_ENV, env.buf, 1);
    execv(binary, saved_argv);
    wh_log(WH_LOG_ERROR, "execv() \"%s\" failed (%s): the old binary goes on", binary,
           strerror(errno));
    _exit(2);
}

int
wh_upgrade_inherit(wh_upgrade_from_t *from)
{
    char *env = getenv(WH_UPGRADE_ENV), *item, *save = NULL;
    unsigned long long seed;
    unsigned serial;
    int fd, fd2;

    memset(from, 0, sizeof(*from));
    if (env == NULL) {
        return WH_DECLINED;
    }
    env = wh_xstrdup(env);
    unsetenv(WH_UPGRADE_ENV);       /* not for the next exec's children */
    from->parent = getppid();
    /* not the value in the log: the table's seed is a secret */
    wh_log(WH_LOG_INFO, "using the sockets inherited from master %d", (int) from->parent);
    for (item = strtok_r(env, ";", &save); item != NULL; item = strtok_r(NULL, ";", &save)) {
        if (sscanf(item, "lock=%d:%d", &fd, &fd2) == 2) {
            if (wh_cycle_inherit_lock(fd, fd2) != WH_OK) close(fd);
        } else if (sscanf(item, "routes=%d:%llx", &fd, &seed) == 2) {
            if (wh_udp_routes_inherit(fd, seed) != WH_OK) {
                wh_log(WH_LOG_WARN, "the inherited UDP session table is unusable: sessions "
                       "of the old workers end");
                close(fd);
            } else {
                fcntl(fd, F_SETFD, FD_CLOEXEC);
            }
        } else if (sscanf(item, "serial=%u", &serial) == 1) {
            from->serial = serial;
        } else if (sscanf(item, "mail=%u:%d", &serial, &fd) == 2) {
            if (from->nmail < WH_UPGRADE_MAX_MAIL) {
                fcntl(fd, F_SETFD, FD_CLOEXEC);
                from->mail[from->nmail++] = (wh_upgrade_mail_t) { .serial = serial, .fd = fd };
            } else {
                close(fd);
            }
        } else if (sscanf(item, "%d", &fd) == 1 && wh_cycle_inherit(fd) == WH_OK) {
            /* void */
        } else {
            wh_log(WH_LOG_WARN, "invalid item \"%s\" in " WH_UPGRADE_ENV ", ignored", item);
        }
    }
    free(env);
    return WH_OK;
}

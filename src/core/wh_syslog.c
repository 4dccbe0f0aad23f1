/*
 * wh_syslog.c -- syslog destinations (see wh_syslog.h).
 *
 * The header goes in front of the message with writev(), so a line is
 * never copied to add it.
 */
#include "wh_syslog.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static const char *const facilities[] = {
    "kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news", "uucp", "clock",
    "authpriv", "ftp", "ntp", "audit", "alert", "cron", "local0", "local1", "local2",
    "local3", "local4", "local5", "local6", "local7", NULL
};
static const char *const severities[] = {
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug", NULL
};

static int
lookup(const char *const *names, const char *v, size_t n)
{
    int i;

    for (i = 0; names[i] != NULL; i++) {
        if (strlen(names[i]) == n && strncmp(names[i], v, n) == 0) return i;
    }
    return -1;
}

const char *
wh_syslog_parse(const char *spec, wh_syslog_t *sl)
{
    const char *p = spec + sizeof(WH_SYSLOG_PREFIX) - 1, *end, *eq, *err;
    char server[256];
    size_t n, k;

    memset(sl, 0, sizeof(*sl));
    sl->fd = -1;
    sl->facility = 23;          /* local7, as nginx */
    sl->severity = 6;           /* info */
    strcpy(sl->tag, WH_NAME);
    server[0] = '\0';

    end = spec + strcspn(spec, " ");
    while (p < end) {
        n = strcspn(p, ", ");
        if (p + n > end) n = end - p;
        eq = memchr(p, '=', n);
        k = eq ? (size_t) (eq - p) : n;
        if (k == 6 && strncmp(p, "server", 6) == 0 && eq) {
            if (n - 7 >= sizeof(server)) return "server= is too long";
            memcpy(server, eq + 1, n - 7);
            server[n - 7] = '\0';
        } else if (k == 8 && strncmp(p, "facility", 8) == 0 && eq) {
            if ((sl->facility = lookup(facilities, eq + 1, n - 9)) < 0) return "unknown facility=";
        } else if (k == 8 && strncmp(p, "severity", 8) == 0 && eq) {
            if ((sl->severity = lookup(severities, eq + 1, n - 9)) < 0) return "unknown severity=";
        } else if (k == 3 && strncmp(p, "tag", 3) == 0 && eq) {
            if (n - 4 == 0 || n - 4 >= sizeof(sl->tag)) return "tag= must be 1..32 characters";
            memcpy(sl->tag, eq + 1, n - 4);
            sl->tag[n - 4] = '\0';
        } else if (n == 10 && strncmp(p, "nohostname", 10) == 0) {
            sl->nohostname = 1;
        } else if (n > 0) {
            return "unknown syslog parameter";
        }
        p += n;
        if (p < end) p++;
    }
    if (server[0] == '\0') {
        return "no server= in syslog:";
    }
    if (strncmp(server, "unix:", 5) == 0) {
        if (wh_addr_parse_unix(server + 5, &sl->server) != WH_OK) return "bad unix: path";
    } else {
        char hp[300];

        /* a host without a port gets syslog's */
        int bare = server[0] == '[' ? strstr(server, "]:") == NULL : strchr(server, ':') == NULL;

        snprintf(hp, sizeof(hp), bare ? "%s:514" : "%s", server);
        if (wh_addr_parse_hostport(hp, &sl->server, &err) != WH_OK) return "bad server= address";
    }
    if (gethostname(sl->hostname, sizeof(sl->hostname) - 1) != 0) {
        strcpy(sl->hostname, "localhost");
    }
    return NULL;
}

int
wh_syslog_open(wh_syslog_t *sl)
{
    int fd = socket(sl->server.sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd == -1) {
        return WH_ERROR;
    }
    if (connect(fd, (struct sockaddr *) &sl->server.sa, sl->server.len) == -1) {
        int e = errno;
        close(fd);
        errno = e;
        return WH_ERROR;
    }
    wh_syslog_close(sl);
    sl->fd = fd;
    return WH_OK;
}

void
wh_syslog_close(wh_syslog_t *sl)
{
    if (sl->fd != -1) {
        close(sl->fd);
        sl->fd = -1;
    }
}

int
wh_syslog_send(wh_syslog_t *sl, int severity, const char *msg, size_t len)
{
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
                                          "Aug", "Sep", "Oct", "Nov", "Dec" };
    char head[160];
    struct iovec iov[2];
    struct tm tm;
    time_t now;
    int n;

    if (sl->fd == -1 && wh_syslog_open(sl) != WH_OK) {
        sl->dropped++;
        return WH_AGAIN;
    }
    now = time(NULL);
    localtime_r(&now, &tm);
    n = snprintf(head, sizeof(head), "<%d>%s %2d %02d:%02d:%02d %s%s%s: ",
                 sl->facility * 8 + (severity < 0 ? sl->severity : severity), months[tm.tm_mon],
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 sl->nohostname ? "" : sl->hostname, sl->nohostname ? "" : " ", sl->tag);
    iov[0].iov_base = head;
    iov[0].iov_len = (size_t) n;
    iov[1].iov_base = (void *) msg;
    iov[1].iov_len = len;
    if (writev(sl->fd, iov, 2) == -1) {
        sl->dropped++;
        if (errno != EAGAIN && errno != ENOBUFS) {
            /* the daemon restarted: a new socket for the next line */
            wh_syslog_close(sl);
        }
        return WH_AGAIN;
    }
    return WH_OK;
}

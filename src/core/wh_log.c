/*
 * wh_log.c -- the error log.
 *
 * Each process writes whole lines with one write(2) to an O_APPEND file, so
 * lines from the master and every worker interleave but never tear. The
 * level check happens before formatting, so debug lines cost nothing when
 * off.
 *
 * On a stderr that is systemd's journal stream (JOURNAL_STREAM names its
 * device and inode, sd-daemon's check), a line starts with its syslog
 * priority, "<3>", and no time: journald parses the one and adds the
 * other, so `journalctl -p err` filters wharf's lines. A "syslog:" error
 * log sends each line as a datagram at the level's severity.
 */
#include "wh_log.h"
#include "wh_addr.h"
#include "wh_syslog.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

int wh_log_level = WH_LOG_INFO;
int wh_log_also_stderr;

static int log_fd = 2;
static char *log_path;
static wh_syslog_t *log_syslog;     /* a "syslog:" error log */
static int journal = -1;            /* fd 2 is the journal's stream; -1: not looked yet */

/* emerg is crit here: journald sends <0> to every terminal */
static const int priorities[] = { 2, 3, 4, 6, 7 };

static const char *const level_names[] = { "emerg", "error", "warn", "info", "debug" };

const char wh_err_closed[] = "connection reset by peer";
const char wh_err_io[] = "i/o error";
const char wh_err_bad_input[] = "bad input";
const char wh_err_timeout[] = "timed out";

void *
wh_xalloc(size_t size)
{
    void *p = calloc(1, size);
    if (p == NULL) {
        wh_log(WH_LOG_EMERG, "out of memory allocating %zu bytes", size);
        abort();
    }
    return p;
}

char *
wh_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(wh_xalloc(n), s, n);
}

void
wh_text_printf(wh_text_t *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t) n < t->cap - t->len) {
            t->len += n;
            return;
        }
        t->cap = t->cap * 2 + (n > 0 ? n : 0) + 256;
        t->buf = realloc(t->buf, t->cap);
        if (t->buf == NULL) {
            wh_log(WH_LOG_EMERG, "out of memory allocating %zu bytes", t->cap);
            abort();
        }
    }
}

int
wh_log_level_parse(const char *name)
{
    if (strcmp(name, "debug") == 0) return WH_LOG_DEBUG;
    if (strcmp(name, "info") == 0) return WH_LOG_INFO;
    if (strcmp(name, "warning") == 0) return WH_LOG_WARN;
    if (strcmp(name, "error") == 0) return WH_LOG_ERROR;
    return -1;
}

static int
journal_stream(void)
{
    const char *env = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    return env != NULL && sscanf(env, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0
           && (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

int
wh_log_open(const char *path)
{
    int fd;

    if (wh_syslog_is(path)) {
        wh_syslog_t *sl = wh_xalloc(sizeof(*sl));
        const char *err = wh_syslog_parse(path, sl);

        if (err != NULL) {
            wh_log(WH_LOG_EMERG, "error_log \"%s\": %s", path, err);
            free(sl);
            return WH_ERROR;
        }
        (void) wh_syslog_open(sl);      /* a daemon not there yet: each line tries */
        if (log_fd > 2) close(log_fd);
        log_fd = 2;
        if (log_syslog != NULL) wh_syslog_close(log_syslog);
        free(log_syslog);
        log_syslog = sl;
        free(log_path);
        log_path = wh_xstrdup(path);
        return WH_OK;
    }
    if (strcmp(path, "stderr") == 0) {
        fd = 2;
    } else {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd == -1) {
            wh_log(WH_LOG_EMERG, "open() \"%s\" failed (%s)", path, strerror(errno));
            return WH_ERROR;
        }
    }
    if (log_fd > 2) {
        close(log_fd);
    }
    log_fd = fd;
    if (log_syslog != NULL) {
        wh_syslog_close(log_syslog);
        free(log_syslog);
        log_syslog = NULL;
    }
    free(log_path);
    log_path = wh_xstrdup(path);
    return WH_OK;
}

int
wh_log_reopen(uid_t uid, gid_t gid)
{
    int fd;

    if (log_syslog != NULL) {
        (void) wh_syslog_open(log_syslog);
        return WH_OK;
    }
    if (log_path == NULL || log_fd <= 2) {
        return WH_OK;
    }
    fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd == -1) {
        wh_log(WH_LOG_ERROR, "reopen \"%s\" failed (%s)", log_path, strerror(errno));
        return WH_ERROR;
    }
    if (uid != (uid_t) -1 && fchown(fd, uid, gid) == -1) {
        wh_log(WH_LOG_WARN, "chown \"%s\" failed (%s)", log_path, strerror(errno));
    }
    close(log_fd);
    log_fd = fd;
    return WH_OK;
}

void
wh_log_redirect_stderr(void)
{
    if (log_fd > 2) {
        dup2(log_fd, 2);
        journal = 0;
    }
}

/* One line, "[level] pid#0: message" in body[0..n), to fd with its time,
 * or its priority on the journal's stream. */
static void
put_line(int fd, int level, const char *body, size_t n)
{
    char head[32];
    struct iovec iov[2];
    struct tm tm;
    time_t now;

    if (fd == 2 && journal == -1) {
        journal = journal_stream();
    }
    if (fd == 2 && journal) {
        iov[0].iov_len = snprintf(head, sizeof(head), "<%d>", priorities[level]);
    } else {
        now = time(NULL);
        localtime_r(&now, &tm);
        iov[0].iov_len = strftime(head, sizeof(head), "%Y/%m/%d %H:%M:%S ", &tm);
    }
    iov[0].iov_base = head;
    iov[1].iov_base = (void *) body;
    iov[1].iov_len = n;
    (void) !writev(fd, iov, 2);
}

static pid_t pid;

static void
pid_forgotten(void)
{
    pid = 0;
}

/* The pid, asked once per process (nginx's ngx_pid): glibc does not cache
 * it, and an info log writes a line for every stream. */
static pid_t
log_pid(void)
{
    static int hooked;

    if (pid == 0) {
        if (!hooked) {
            pthread_atfork(NULL, NULL, pid_forgotten);
            hooked = 1;
        }
        pid = getpid();
    }
    return pid;
}

void
wh_log(int level, const char *fmt, ...)
{
    char line[2048];
    size_t n;
    int len;
    va_list ap;

    if (level > wh_log_level) {
        return;
    }
    /* nginx's "pid#tid": a process has one thread, 0 as in nginx's
     * builds without threads, so the pid is not printed twice */
    len = snprintf(line, sizeof(line), "[%s] %d#0: ", level_names[level], (int) log_pid());
    n = (size_t) len;
    va_start(ap, fmt);
    len = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    n = wh_min(n + (size_t) (len < 0 ? 0 : len), sizeof(line) - 2);
    if (log_syslog != NULL) {
        (void) wh_syslog_send(log_syslog, priorities[level], line, n);
    } else {
        line[n] = '\n';
        put_line(log_fd, level, line, n + 1);
    }
    if (wh_log_also_stderr && level <= WH_LOG_ERROR && (log_fd != 2 || log_syslog != NULL)) {
        /* while the master starts, the operator at the terminal sees it too */
        line[n] = '\n';
        put_line(2, level, line, n + 1);
    }
}

void
wh_log_ctx(int level, const wh_log_ctx_t *ctx, const char *fmt, ...)
{
    char msg[1536], client[64];
    va_list ap;

    if (level > wh_log_level) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (ctx->client != NULL) {
        wh_addr_format(ctx->client, ctx->clientlen, client, sizeof(client));
    }
    wh_log(level, "%s%s%s, listener: %s%s%s", msg, ctx->client ? ", client: " : "",
           ctx->client ? client : "", ctx->listener, ctx->upstream ? ", upstream: " : "",
           ctx->upstream ? ctx->upstream : "");
}

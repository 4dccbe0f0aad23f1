/*
 * wh_log.c -- the error log.
 *
 * Each process writes whole lines with one write(2) to an O_APPEND file, so
 * lines from the master and every worker interleave but never tear. The
 * level check happens before formatting, so debug lines cost nothing when
 * off.
 */
#include "wh_log.h"
#include "wh_addr.h"

#include <fcntl.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

int wh_log_level = WH_LOG_INFO;
int wh_log_also_stderr;

static int log_fd = 2;
static char *log_path;

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

int
wh_log_level_parse(const char *name)
{
    if (strcmp(name, "debug") == 0) return WH_LOG_DEBUG;
    if (strcmp(name, "info") == 0) return WH_LOG_INFO;
    if (strcmp(name, "warning") == 0) return WH_LOG_WARN;
    if (strcmp(name, "error") == 0) return WH_LOG_ERROR;
    return -1;
}

int
wh_log_open(const char *path)
{
    int fd;

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
    free(log_path);
    log_path = wh_xstrdup(path);
    return WH_OK;
}

int
wh_log_reopen(uid_t uid, gid_t gid)
{
    int fd;

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
    }
}

void
wh_log(int level, const char *fmt, ...)
{
    char line[2048];
    size_t n;
    int len;
    struct tm tm;
    time_t now;
    va_list ap;

    if (level > wh_log_level) {
        return;
    }
    now = time(NULL);
    localtime_r(&now, &tm);
    n = strftime(line, sizeof(line), "%Y/%m/%d %H:%M:%S ", &tm);
    /* nginx's "pid#tid": a process has one thread, 0 as in nginx's
     * builds without threads, so the pid is not printed twice */
    len = snprintf(line + n, sizeof(line) - n, "[%s] %d#0: ", level_names[level], (int) getpid());
    n += len;
    va_start(ap, fmt);
    len = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    n = wh_min(n + (size_t) (len < 0 ? 0 : len), sizeof(line) - 2);
    line[n++] = '\n';
    (void) !write(log_fd, line, n);
    if (wh_log_also_stderr && level <= WH_LOG_ERROR && log_fd != 2) {
        /* while the master starts, the operator at the terminal sees it too */
        (void) !write(2, line, n);
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

/*
 * wh_log.h -- the error log: one file (or stderr) per process, lines of
 * "YYYY/MM/DD HH:MM:SS [level] PID#PID: message" as nginx writes them.
 */
#ifndef WH_LOG_H
#define WH_LOG_H

#include "wh_core.h"

#include <sys/socket.h>

enum {
    WH_LOG_EMERG = 0,   /* the configuration or the process cannot go on */
    WH_LOG_ERROR,
    WH_LOG_WARN,
    WH_LOG_INFO,
    WH_LOG_DEBUG
};

extern int wh_log_level;
extern int wh_log_also_stderr;      /* errors to stderr too (master start-up) */

/* Parses "debug" | "info" | "warning" | "error"; -1 if none. */
int wh_log_level_parse(const char *name);

/* Opens path for appending ("stderr" = fd 2). The previous log stays
 * open until the new one is open, so a failed reopen loses nothing. */
int wh_log_open(const char *path);
/* Reopens the current file (logrotate); chown to uid/gid first when they are
 * not -1, so workers that run as `user` can reopen it too. */
int wh_log_reopen(uid_t uid, gid_t gid);
/* Makes fd 2 point at the log file too, so stray stderr output lands there
 * (after daemonising). */
void wh_log_redirect_stderr(void);

void wh_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* What a line is about, added after the message once for every line of a
 * stream, handshake or connection (nginx's log->handler): ", client: A,
 * listener: T, upstream: U", each part only when set. The client address
 * is formatted only when the line is written. */
typedef struct {
    const char *listener;               /* its tag */
    const struct sockaddr *client;      /* NULL: not named */
    socklen_t clientlen;
    const char *upstream;               /* NULL: not named */
} wh_log_ctx_t;

void wh_log_ctx(int level, const wh_log_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A line about a listener as a whole. */
#define wh_log_listener(level, tag, ...) \
    wh_log_ctx(level, &(wh_log_ctx_t) { .listener = (tag) }, __VA_ARGS__)

#define wh_log_debug(...) \
    do { if (wh_log_level >= WH_LOG_DEBUG) wh_log(WH_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif

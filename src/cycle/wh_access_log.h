/*
 * wh_access_log.h -- the access log: one line per stream when it ends, in a
 * log_format of nginx stream's variables and wharf's own, to a file or to
 * syslog.
 *
 * A format is compiled once, at load, into a list of ops (a literal, or a
 * variable), so writing a line is a walk over that list. What a line says
 * is gathered in a wh_access_rec_t by whoever ends the stream (the relay,
 * a refused handshake); what only a handshake learns (TLS, the request
 * path, a fallback) travels in a wh_access_facts_t, which a connection
 * carries only when some listener logs, inside an allocation it makes
 * anyway: no allocation per stream for the log.
 *
 * Lines are buffered per worker (buffer=) and written with one write(2)
 * to an O_APPEND file when the buffer fills, at flush= after the first
 * line in it, at reopen and at exit; a regular file's write does not wait
 * on anything a client does, so the loop never stalls on a peer. Syslog
 * lines go one datagram each (wh_syslog.h).
 */
#ifndef WH_ACCESS_LOG_H
#define WH_ACCESS_LOG_H

#include "wh_conf.h"

#include <sys/socket.h>

#define WH_ACCESS_SNI_MAX   256
#define WH_ACCESS_ALPN_MAX  32
#define WH_ACCESS_PATH_MAX  256     /* longer paths are cut */

typedef struct {
    double start;                   /* the connection's accept (ev_now); 0: the relay's start */
    const char *ssl_protocol;       /* a TLS library's static text; NULL: no TLS */
    const char *fallback;           /* what took it (a tag or upstream name); NULL: none */
    char sni[WH_ACCESS_SNI_MAX];
    char alpn[WH_ACCESS_ALPN_MAX];
    char path[WH_ACCESS_PATH_MAX];  /* the request's, as far as one was read */
} wh_access_facts_t;

typedef struct {
    const char *listener;
    const char *network;
    const struct sockaddr *peer;
    const wh_access_facts_t *facts; /* NULL: none known */
    const char *upstream;           /* NULL: none dialled */
    double start, end;              /* wall clock (ev_now) */
    double connect_time;            /* < 0: not connected */
    uint64_t bytes_sent;            /* to the client */
    uint64_t bytes_received;        /* from the client */
    int cause;                      /* WH_CLOSE_* */
    int refused;                    /* ended before it was relayed */
} wh_access_rec_t;

typedef struct wh_access_log_s wh_access_log_t;
typedef struct wh_access_logs_s wh_access_logs_t;

/* The top level's log_format and access_log into *out (NULL when neither
 * is set). WH_OK, or WH_ERROR recorded in cf. */
int wh_access_logs_conf(wh_conf_t *cf, const config_setting_t *root, const char *prefix,
                        wh_access_logs_t **out);
/* A listener group's access_log, or the top level's when it has none:
 * *out NULL for no log. */
int wh_access_log_listener(wh_conf_t *cf, wh_access_logs_t **set, const config_setting_t *g,
                           const char *prefix, wh_access_log_t **out);
/* Whether connections must carry facts: some listener logs. */
int wh_access_logs_used(const wh_access_logs_t *set);
void wh_access_logs_free(wh_access_logs_t *set);

/* Master: opens every file (owned by uid:gid when not -1, so workers may
 * reopen it) and syslog socket. WH_ERROR (logged) if a file cannot be. */
int wh_access_logs_open(wh_access_logs_t *set, uid_t uid, gid_t gid);
void wh_access_logs_close(wh_access_logs_t *set);
/* USR1 (master and workers): flushes, then opens each file again. */
void wh_access_logs_reopen(wh_access_logs_t *set, uid_t uid, gid_t gid);
/* Worker, once its loop exists: buffers, flush timers, flush at exit. */
void wh_access_logs_start(wh_access_logs_t *set);

void wh_access_log_write(wh_access_log_t *log, const wh_access_rec_t *rec);

/* nginx stream's $status for a stream that ended with cause. */
int wh_access_status(int cause, int refused);

/* The format compiler, apart for its unit test: the compiled format, or
 * NULL and why in err. */
typedef struct wh_access_format_s wh_access_format_t;
wh_access_format_t *wh_access_format_compile(const char *text, char *err, size_t errsize);
/* The line for rec in buf (no newline); its length, cut at size - 1. */
size_t wh_access_format_line(const wh_access_format_t *f, const wh_access_rec_t *rec, char *buf,
                             size_t size);
void wh_access_format_free(wh_access_format_t *f);

#endif

/*
 * wh_access_log.c -- formats, destinations and lines of the access log
 * (see wh_access_log.h).
 *
 * One wh_access_log_t per distinct access_log value: listeners that name
 * the same one share its file descriptor and, in a worker, its buffer, so
 * their lines interleave whole. The times of a line are formatted once a
 * second at most (nginx's cached time strings).
 */
#include "wh_access_log.h"
#include "wh_cycle.h"
#include "wh_event.h"
#include "wh_log.h"
#include "wh_stats.h"
#include "wh_syslog.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#define WH_ACCESS_LINE_MAX   4096
#define WH_ACCESS_FLUSH_BUF  65536      /* flush= without buffer=, as nginx */

enum {
    V_LITERAL = 0,
    V_REMOTE_ADDR, V_REMOTE_PORT, V_TIME_LOCAL, V_TIME_ISO8601, V_MSEC, V_SESSION_TIME,
    V_BYTES_SENT, V_BYTES_RECEIVED, V_UPSTREAM_ADDR, V_UPSTREAM_CONNECT_TIME, V_STATUS,
    V_LISTENER, V_NETWORK, V_SSL_SERVER_NAME, V_SSL_PROTOCOL, V_SSL_ALPN, V_REQUEST_PATH,
    V_CLOSE_CAUSE, V_FALLBACK
};

static const char *const var_names[] = {
    "", "remote_addr", "remote_port", "time_local", "time_iso8601", "msec", "session_time",
    "bytes_sent", "bytes_received", "upstream_addr", "upstream_connect_time", "status",
    "listener", "network", "ssl_server_name", "ssl_protocol", "ssl_alpn", "request_path",
    "close_cause", "fallback", NULL
};

/* nginx stream's example format, with wharf's network for its $protocol */
static const char basic_format[] =
    "$remote_addr [$time_local] $network $status $bytes_sent $bytes_received $session_time";

typedef struct {
    uint32_t off;               /* a literal's place in text */
    uint16_t len;
    uint8_t var;                /* V_*: V_LITERAL for text[off..off+len) */
} wh_access_op_t;

struct wh_access_format_s {
    char *name;
    char *text;
    wh_access_op_t *ops;
    int nops;
    wh_access_format_t *next;
};

struct wh_access_log_s {
    char *spec;                 /* the access_log value, to share equal ones */
    wh_access_format_t *fmt;
    char *path;                 /* a file; NULL for syslog */
    wh_syslog_t syslog;
    int fd;
    size_t size;                /* buffer=; 0: a write per line */
    double flush;               /* flush=; 0: only when full */
    /* worker */
    char *buf;
    size_t len;
    ev_timer timer;
    wh_access_log_t *next;
};

struct wh_access_logs_s {
    wh_access_format_t *formats;
    wh_access_log_t *logs;
    wh_access_log_t *dflt;      /* the top level's; NULL: off */
    int used;
};

static wh_access_logs_t *running;      /* the worker's, for the exit flush */

/* --- formats ------------------------------------------------------------ */

wh_access_format_t *
wh_access_format_compile(const char *text, char *err, size_t errsize)
{
    wh_access_format_t *f = wh_xalloc(sizeof(*f));
    const char *p = text, *lit = text, *name;
    size_t n, k, max = strlen(text) + 1;
    int braced, v;

    f->text = wh_xstrdup(text);
    f->ops = wh_xalloc(sizeof(wh_access_op_t) * max);
    while (*p != '\0') {
        if (*p != '$') {
            p++;
            continue;
        }
        if (p > lit) {
            f->ops[f->nops++] = (wh_access_op_t) { .off = (uint32_t) (lit - text),
                                                   .len = (uint16_t) (p - lit) };
        }
        braced = p[1] == '{';
        name = p + 1 + braced;
        for (n = 0; (name[n] >= 'a' && name[n] <= 'z') || (name[n] >= '0' && name[n] <= '9')
                    || name[n] == '_'; n++) { /* void */ }
        if (n == 0 || (braced && name[n] != '}')) {
            snprintf(err, errsize, "invalid variable name at \"%.16s\"", p);
            wh_access_format_free(f);
            return NULL;
        }
        for (v = 1; var_names[v] != NULL; v++) {
            k = strlen(var_names[v]);
            if (k == n && memcmp(var_names[v], name, n) == 0) break;
        }
        if (var_names[v] == NULL) {
            snprintf(err, errsize, "unknown variable \"$%.*s\"", (int) n, name);
            wh_access_format_free(f);
            return NULL;
        }
        f->ops[f->nops++] = (wh_access_op_t) { .var = (uint8_t) v };
        p = lit = name + n + braced;
    }
    if (p > lit) {
        f->ops[f->nops++] = (wh_access_op_t) { .off = (uint32_t) (lit - text),
                                               .len = (uint16_t) (p - lit) };
    }
    return f;
}

void
wh_access_format_free(wh_access_format_t *f)
{
    if (f == NULL) return;
    free(f->name);
    free(f->text);
    free(f->ops);
    free(f);
}

int
wh_access_status(int cause, int refused)
{
    switch (cause) {
    case WH_CLOSE_BAD_INPUT: return 400;
    case WH_CLOSE_LIMIT:     return 503;
    case WH_CLOSE_ERROR:     return 500;
    case WH_CLOSE_UPSTREAM:  return 502;
    default:                 return refused ? 400 : 200;
    }
}

/* --- lines -------------------------------------------------------------- */

typedef struct {
    char *p, *end;
} wh_out_t;

static void
put(wh_out_t *o, const char *s, size_t n)
{
    n = wh_min(n, (size_t) (o->end - o->p));
    memcpy(o->p, s, n);
    o->p += n;
}

/* What a client chose (a name, a path) as nginx escapes it: '"', '\' and
 * bytes outside printable ASCII as \xHH, so a line stays one line. */
static void
put_escaped(wh_out_t *o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    unsigned char c;

    if (s == NULL || *s == '\0') {
        put(o, "-", 1);
        return;
    }
    for (; (c = (unsigned char) *s) != '\0'; s++) {
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            char e[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
            put(o, e, 4);
        } else {
            put(o, s, 1);
        }
    }
}

static void
putf(wh_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
putf(wh_out_t *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(o->p, o->end - o->p + 1, fmt, ap);
    va_end(ap);
    o->p += wh_min((size_t) (n < 0 ? 0 : n), (size_t) (o->end - o->p));
}

static void
put_time(wh_out_t *o, double t, int iso)
{
    static time_t cached[2] = { -1, -1 };
    static char text[2][40];
    time_t sec = (time_t) t;
    struct tm tm;

    if (cached[iso] != sec) {
        localtime_r(&sec, &tm);
        if (iso) {
            strftime(text[iso], sizeof(text[iso]), "%Y-%m-%dT%H:%M:%S%z", &tm);
            /* +0100 -> +01:00 */
            size_t n = strlen(text[iso]);
            memmove(text[iso] + n - 1, text[iso] + n - 2, 3);
            text[iso][n - 2] = ':';
        } else {
            strftime(text[iso], sizeof(text[iso]), "%d/%b/%Y:%H:%M:%S %z", &tm);
        }
        cached[iso] = sec;
    }
    put(o, text[iso], strlen(text[iso]));
}

static void
put_addr(wh_out_t *o, const struct sockaddr *sa, int port)
{
    char ip[INET6_ADDRSTRLEN];

    if (sa == NULL) {
        put(o, "-", 1);
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *) sa;
        if (port) putf(o, "%u", ntohs(in->sin_port));
        else put(o, ip, strlen(inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip))));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *) sa;
        if (port) putf(o, "%u", ntohs(in6->sin6_port));
        else put(o, ip, strlen(inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip))));
    } else {
        put(o, port ? "-" : "unix:", port ? 1 : 5);      /* as nginx's $remote_addr */
    }
}

size_t
wh_access_format_line(const wh_access_format_t *f, const wh_access_rec_t *r, char *buf,
                      size_t size)
{
    const wh_access_facts_t *facts = r->facts;
    wh_out_t o = { buf, buf + size - 1 };
    const wh_access_op_t *op;
    int i;

    for (i = 0; i < f->nops; i++) {
        op = &f->ops[i];
        switch (op->var) {
        case V_LITERAL: put(&o, f->text + op->off, op->len); break;
        case V_REMOTE_ADDR: put_addr(&o, r->peer, 0); break;
        case V_REMOTE_PORT: put_addr(&o, r->peer, 1); break;
        case V_TIME_LOCAL: put_time(&o, r->end, 0); break;
        case V_TIME_ISO8601: put_time(&o, r->end, 1); break;
        case V_MSEC: putf(&o, "%.3f", r->end); break;
        case V_SESSION_TIME: putf(&o, "%.3f", wh_max(r->end - r->start, 0.0)); break;
        case V_BYTES_SENT: putf(&o, "%llu", (unsigned long long) r->bytes_sent); break;
        case V_BYTES_RECEIVED: putf(&o, "%llu", (unsigned long long) r->bytes_received); break;
        case V_UPSTREAM_ADDR: put_escaped(&o, r->upstream); break;
        case V_UPSTREAM_CONNECT_TIME:
            if (r->connect_time < 0) put(&o, "-", 1);
            else putf(&o, "%.3f", r->connect_time);
            break;
        case V_STATUS: putf(&o, "%d", wh_access_status(r->cause, r->refused)); break;
        case V_LISTENER: put_escaped(&o, r->listener); break;
        case V_NETWORK: put_escaped(&o, r->network); break;
        case V_SSL_SERVER_NAME: put_escaped(&o, facts ? facts->sni : NULL); break;
        case V_SSL_PROTOCOL: put_escaped(&o, facts ? facts->ssl_protocol : NULL); break;
        case V_SSL_ALPN: put_escaped(&o, facts ? facts->alpn : NULL); break;
        case V_REQUEST_PATH: put_escaped(&o, facts ? facts->path : NULL); break;
        case V_CLOSE_CAUSE: put_escaped(&o, wh_close_cause_names[r->cause]); break;
        case V_FALLBACK: put_escaped(&o, facts ? facts->fallback : NULL); break;
        }
    }
    *o.p = '\0';
    return (size_t) (o.p - buf);
}

static void
flush(wh_access_log_t *log)
{
    size_t done = 0;
    ssize_t n;

    while (done < log->len) {
        n = write(log->fd, log->buf + done, log->len - done);
        if (n == -1 && errno == EINTR) continue;
        if (n <= 0) {
            wh_log(WH_LOG_ERROR, "write() to access log \"%s\" failed (%s)", log->path,
                   n == 0 ? "no space" : strerror(errno));
            break;
        }
        done += (size_t) n;
    }
    log->len = 0;
    if (wh_loop != NULL) ev_timer_stop(wh_loop, &log->timer);
}

static void
flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    flush(w->data);
}

static void
report_drops(wh_access_log_t *log)
{
    if (log->syslog.dropped > 0) {
        wh_log(WH_LOG_WARN, "access log %s: %llu lines dropped (syslog socket would block)",
               log->spec, (unsigned long long) log->syslog.dropped);
        log->syslog.dropped = 0;
    }
}

void
wh_access_log_write(wh_access_log_t *log, const wh_access_rec_t *rec)
{
    char line[WH_ACCESS_LINE_MAX];
    size_t n = wh_access_format_line(log->fmt, rec, line, sizeof(line) - 1);

    if (log->path == NULL) {
        if (wh_syslog_send(&log->syslog, -1, line, n) == WH_OK) report_drops(log);
        return;
    }
    line[n++] = '\n';
    if (log->len > 0 && log->len + n > log->size) {
        flush(log);
    }
    if (n > log->size) {
        (void) !write(log->fd, line, n);     /* no buffer, or one smaller than the line */
        return;
    }
    memcpy(log->buf + log->len, line, n);
    log->len += n;
    if (log->flush > 0 && !ev_is_active(&log->timer)) {
        ev_timer_set(&log->timer, log->flush, 0);
        ev_timer_start(wh_loop, &log->timer);
    }
}

/* --- configuration ------------------------------------------------------- */

static const wh_access_format_t *
find_format(const wh_access_logs_t *set, const char *name)
{
    const wh_access_format_t *f;

    for (f = set->formats; f != NULL; f = f->next) {
        if (strcmp(f->name, name) == 0) return f;
    }
    return NULL;
}

/* "32k", "1m", "4096" */
static int
parse_size(const char *v, size_t *out)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);

    if (end == v) return WH_ERROR;
    if (*end == 'k' || *end == 'K') { n <<= 10; end++; }
    else if (*end == 'm' || *end == 'M') { n <<= 20; end++; }
    if (*end != '\0' || n == 0 || n > (64UL << 20)) return WH_ERROR;
    *out = n;
    return WH_OK;
}

/* nginx's times: "500ms", "5s", "1m", "1h"; a bare number is seconds */
static int
parse_time(const char *v, double *out)
{
    char *end;
    double n = strtod(v, &end);

    if (end == v || n <= 0) return WH_ERROR;
    if (strcmp(end, "ms") == 0) n /= 1000;
    else if (strcmp(end, "m") == 0) n *= 60;
    else if (strcmp(end, "h") == 0) n *= 3600;
    else if (*end != '\0' && strcmp(end, "s") != 0) return WH_ERROR;
    *out = n;
    return WH_OK;
}

static wh_access_logs_t *
set_of(wh_access_logs_t **set)
{
    if (*set == NULL) *set = wh_xalloc(sizeof(**set));
    return *set;
}

/* "off" | "PATH|syslog:... [FORMAT] [buffer=SIZE] [flush=TIME]" */
static int
parse_log(wh_conf_t *cf, wh_access_logs_t **setp, const config_setting_t *s, const char *prefix,
          wh_access_log_t **out)
{
    wh_access_logs_t *set;
    wh_access_log_t *log;
    const char *v, *err;
    char words[4][512];
    const char *fmt = "basic";
    int nw, i;

    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        wh_conf_error(cf, s, "\"access_log\" must be a string");
        return WH_ERROR;
    }
    v = config_setting_get_string(s);
    *out = NULL;
    if (strcmp(v, "off") == 0) {
        return WH_OK;
    }
    set = set_of(setp);
    for (log = set->logs; log != NULL; log = log->next) {
        if (strcmp(log->spec, v) == 0) {
            *out = log;
            set->used = 1;
            return WH_OK;
        }
    }
    memset(words, 0, sizeof(words));
    nw = sscanf(v, "%511s %511s %511s %511s", words[0], words[1], words[2], words[3]);
    if (nw < 1 || strlen(v) > 1000) {
        wh_conf_error(cf, s, "\"access_log\" must be \"off\" or \"PATH [FORMAT] [buffer=SIZE] "
                      "[flush=TIME]\"");
        return WH_ERROR;
    }
    log = wh_xalloc(sizeof(*log));
    log->fd = -1;
    log->syslog.fd = -1;
    log->spec = wh_xstrdup(v);
    log->next = set->logs;
    set->logs = log;
    for (i = 1; i < nw; i++) {
        if (strncmp(words[i], "buffer=", 7) == 0) {
            if (parse_size(words[i] + 7, &log->size) != WH_OK) {
                wh_conf_error(cf, s, "invalid \"%s\" in \"access_log\"", words[i]);
                return WH_ERROR;
            }
        } else if (strncmp(words[i], "flush=", 6) == 0) {
            if (parse_time(words[i] + 6, &log->flush) != WH_OK) {
                wh_conf_error(cf, s, "invalid \"%s\" in \"access_log\"", words[i]);
                return WH_ERROR;
            }
        } else if (i == 1) {
            fmt = words[i];
        } else {
            wh_conf_error(cf, s, "unknown \"%s\" in \"access_log\"", words[i]);
            return WH_ERROR;
        }
    }
    log->fmt = (wh_access_format_t *) find_format(set, fmt);
    if (log->fmt == NULL) {
        wh_conf_error(cf, s, "unknown log format \"%s\" in \"access_log\"", fmt);
        return WH_ERROR;
    }
    if (wh_syslog_is(words[0])) {
        if ((err = wh_syslog_parse(words[0], &log->syslog)) != NULL) {
            wh_conf_error(cf, s, "%s in \"access_log\"", err);
            return WH_ERROR;
        }
        if (log->size > 0 || log->flush > 0) {
            wh_conf_error(cf, s, "\"buffer=\" and \"flush=\" do not apply to syslog");
            return WH_ERROR;
        }
    } else {
        log->path = wh_cycle_path(prefix, words[0]);
        if (log->flush > 0 && log->size == 0) log->size = WH_ACCESS_FLUSH_BUF;
    }
    set->used = 1;
    *out = log;
    return WH_OK;
}

int
wh_access_logs_conf(wh_conf_t *cf, const config_setting_t *root, const char *prefix,
                    wh_access_logs_t **out)
{
    const config_setting_t *formats = config_setting_get_member(root, "log_format");
    const config_setting_t *s;
    wh_access_logs_t *set;
    wh_access_format_t *f;
    char err[128];
    int i;

    *out = NULL;
    set = set_of(out);
    f = wh_access_format_compile(basic_format, err, sizeof(err));
    f->name = wh_xstrdup("basic");
    set->formats = f;
    if (formats != NULL) {
        if (config_setting_type(formats) != CONFIG_TYPE_GROUP) {
            wh_conf_error(cf, formats, "\"log_format\" must be a group { NAME = \"...\"; }");
            return WH_ERROR;
        }
        for (i = 0; (s = config_setting_get_elem(formats, i)) != NULL; i++) {
            if (config_setting_type(s) != CONFIG_TYPE_STRING) {
                wh_conf_error(cf, s, "log format \"%s\" must be a string", config_setting_name(s));
                return WH_ERROR;
            }
            f = wh_access_format_compile(config_setting_get_string(s), err, sizeof(err));
            if (f == NULL) {
                wh_conf_error(cf, s, "log format \"%s\": %s", config_setting_name(s), err);
                return WH_ERROR;
            }
            f->name = wh_xstrdup(config_setting_name(s));
            /* first: a format of the file's named "basic" replaces the built-in one */
            f->next = set->formats;
            set->formats = f;
        }
    }
    s = config_setting_get_member(root, "access_log");
    if (s != NULL && parse_log(cf, out, s, prefix, &set->dflt) != WH_OK) {
        return WH_ERROR;
    }
    set->used = 0;              /* only a listener's use counts */
    return WH_OK;
}

int
wh_access_log_listener(wh_conf_t *cf, wh_access_logs_t **set, const config_setting_t *g,
                       const char *prefix, wh_access_log_t **out)
{
    const config_setting_t *s = config_setting_get_member(g, "access_log");

    if (s == NULL) {
        *out = *set != NULL ? (*set)->dflt : NULL;
        if (*out != NULL) (*set)->used = 1;
        return WH_OK;
    }
    return parse_log(cf, set, s, prefix, out);
}

int
wh_access_logs_used(const wh_access_logs_t *set)
{
    return set != NULL && set->used;
}

void
wh_access_logs_free(wh_access_logs_t *set)
{
    wh_access_format_t *f;
    wh_access_log_t *log;

    if (set == NULL) return;
    while ((f = set->formats) != NULL) {
        set->formats = f->next;
        wh_access_format_free(f);
    }
    while ((log = set->logs) != NULL) {
        set->logs = log->next;
        free(log->spec);
        free(log->path);
        free(log->buf);
        free(log);
    }
    free(set);
}

/* --- files -------------------------------------------------------------- */

/* level: of the message when it fails (emerg at start, error at reopen) */
static int
open_file(wh_access_log_t *log, uid_t uid, gid_t gid, int level)
{
    int fd = open(log->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

    if (fd == -1) {
        wh_log(level, "open() \"%s\" failed (%s)", log->path, strerror(errno));
        return WH_ERROR;
    }
    if (uid != (uid_t) -1 && fchown(fd, uid, gid) == -1) {
        wh_log(WH_LOG_WARN, "chown \"%s\" failed (%s)", log->path, strerror(errno));
    }
    if (log->fd != -1) close(log->fd);
    log->fd = fd;
    return WH_OK;
}

int
wh_access_logs_open(wh_access_logs_t *set, uid_t uid, gid_t gid)
{
    wh_access_log_t *log;

    for (log = set != NULL ? set->logs : NULL; log != NULL; log = log->next) {
        if (log->path == NULL) {
            if (wh_syslog_open(&log->syslog) != WH_OK) {
                /* the daemon may come later: each line tries again */
                wh_log(WH_LOG_WARN, "access log %s: connect() failed (%s)", log->spec,
                       strerror(errno));
            }
        } else if (open_file(log, uid, gid, WH_LOG_EMERG) != WH_OK) {
            wh_access_logs_close(set);
            return WH_ERROR;
        }
    }
    return WH_OK;
}

void
wh_access_logs_close(wh_access_logs_t *set)
{
    wh_access_log_t *log;

    for (log = set != NULL ? set->logs : NULL; log != NULL; log = log->next) {
        if (log->fd != -1) close(log->fd);
        log->fd = -1;
        wh_syslog_close(&log->syslog);
    }
}

void
wh_access_logs_reopen(wh_access_logs_t *set, uid_t uid, gid_t gid)
{
    wh_access_log_t *log;

    for (log = set != NULL ? set->logs : NULL; log != NULL; log = log->next) {
        if (log->path == NULL) {
            report_drops(log);
            (void) wh_syslog_open(&log->syslog);
            continue;
        }
        if (log->len > 0) flush(log);
        (void) open_file(log, uid, gid, WH_LOG_ERROR);  /* the old file stays on failure */
    }
}

static void
flush_all(void)
{
    wh_access_log_t *log;

    for (log = running != NULL ? running->logs : NULL; log != NULL; log = log->next) {
        if (log->len > 0) flush(log);
        report_drops(log);
    }
}

void
wh_access_logs_start(wh_access_logs_t *set)
{
    wh_access_log_t *log;

    if (set == NULL) return;
    for (log = set->logs; log != NULL; log = log->next) {
        ev_init(&log->timer, flush_cb);
        log->timer.data = log;
        if (log->size > 0) log->buf = wh_xalloc(log->size);
    }
    running = set;
    atexit(flush_all);
}

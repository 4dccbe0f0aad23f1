/*
 * wh_stats_http.c -- the optional stats listener: the shared-memory
 * counters as Prometheus text at GET /metrics.
 *
 * Every worker accepts on it (the master bound it), so it answers while
 * any worker lives, and every worker sees the same sums. It speaks just
 * enough HTTP/1.x for a scraper: one request per connection, the request
 * line checked, headers skipped, "Connection: close". A client that does
 * not send a full head within 10 s, or more than 4 KiB of it, is dropped.
 */
#include "wh_process.h"
#include "wh_event.h"
#include "wh_log.h"

#include <stdarg.h>
#include <sys/socket.h>
#include <unistd.h>

#define WH_STATS_HEAD_MAX 4096
#define WH_STATS_TIMEOUT  10.0

typedef struct {
    ev_io io;
    ev_timer timer;
    int fd;
    size_t have;
    char *out;              /* the response once the request is read */
    size_t out_len, out_sent;
    char head[WH_STATS_HEAD_MAX];
} wh_stats_conn_t;

static ev_io accept_io;
static int stats_fd = -1;

typedef struct {
    char *buf;
    size_t len, cap;
} wh_text_t;

static void
text_printf(wh_text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
text_printf(wh_text_t *t, const char *fmt, ...)
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
        t->cap = t->cap * 2 + n + 256;
        t->buf = realloc(t->buf, t->cap);
        if (t->buf == NULL) abort();
    }
}

static void
metric_lines(const char *tag, const wh_stats_counters_t *c, void *arg)
{
    wh_text_t *t = arg;
    int k;

    text_printf(t, "wharf_streams_accepted_total{listener=\"%s\"} %llu\n", tag,
                (unsigned long long) c->accepted);
    text_printf(t, "wharf_streams_active{listener=\"%s\"} %llu\n", tag,
                (unsigned long long) c->active);
    for (k = 0; k < WH_CLOSE_NCAUSES; k++) {
        text_printf(t, "wharf_streams_closed_total{listener=\"%s\",cause=\"%s\"} %llu\n", tag,
                    wh_close_cause_names[k], (unsigned long long) c->closed[k]);
    }
    text_printf(t, "wharf_bytes_total{listener=\"%s\",direction=\"up\"} %llu\n", tag,
                (unsigned long long) c->bytes_up);
    text_printf(t, "wharf_bytes_total{listener=\"%s\",direction=\"down\"} %llu\n", tag,
                (unsigned long long) c->bytes_down);
    text_printf(t, "wharf_clients{listener=\"%s\"} %llu\n", tag, (unsigned long long) c->clients);
    text_printf(t, "wharf_accept_paused_total{listener=\"%s\"} %llu\n", tag,
                (unsigned long long) c->paused);
    text_printf(t, "wharf_fallbacks_total{listener=\"%s\"} %llu\n", tag,
                (unsigned long long) c->fallbacks);
    if (c->connections > 0) {
        text_printf(t, "wharf_connections_total{listener=\"%s\"} %llu\n", tag,
                    (unsigned long long) c->connections);
        text_printf(t, "wharf_connections_active{listener=\"%s\"} %llu\n", tag,
                    (unsigned long long) c->connections_active);
    }
    if (c->datagrams_in + c->datagrams_out == 0) {
        return;     /* a stream listener */
    }
    text_printf(t, "wharf_datagrams_total{listener=\"%s\",direction=\"in\"} %llu\n", tag,
                (unsigned long long) c->datagrams_in);
    text_printf(t, "wharf_datagrams_total{listener=\"%s\",direction=\"out\"} %llu\n", tag,
                (unsigned long long) c->datagrams_out);
    text_printf(t, "wharf_datagrams_passed_total{listener=\"%s\"} %llu\n", tag,
                (unsigned long long) c->datagrams_passed);
    for (k = 0; k < WH_DROP_NCAUSES; k++) {
        text_printf(t, "wharf_datagrams_dropped_total{listener=\"%s\",cause=\"%s\"} %llu\n", tag,
                    wh_drop_cause_names[k], (unsigned long long) c->datagrams_dropped[k]);
    }
    text_printf(t, "wharf_quic_retry_total{listener=\"%s\"} %llu\n", tag,
                (unsigned long long) c->quic_retry);
}

/* A label value as the text format wants it: backslash, double quote and
 * line feed escaped (a member's unix path may hold any of them). */
static const char *
label_value(const char *v, char *buf, size_t size)
{
    size_t n = 0;

    for (; *v != '\0' && n + 2 < size; v++) {
        if (*v == '\\' || *v == '"' || *v == '\n') {
            buf[n++] = '\\';
        }
        buf[n++] = *v == '\n' ? 'n' : *v;
    }
    buf[n] = '\0';
    return buf;
}

static void
upstream_lines(const char *group, const char *member, const wh_stats_upstream_sum_t *u,
               void *arg)
{
    char g[2 * WH_STATS_TAG_LEN + 1], m[2 * WH_STATS_MEMBER_LEN + 1];
    wh_text_t *t = arg;

    label_value(group, g, sizeof(g));
    label_value(member, m, sizeof(m));
    text_printf(t, "wharf_upstream_connects_total{group=\"%s\",upstream=\"%s\"} %llu\n", g, m,
                (unsigned long long) u->connects);
    text_printf(t, "wharf_upstream_connect_failures_total{group=\"%s\",upstream=\"%s\"} %llu\n",
                g, m, (unsigned long long) u->connect_failures);
    text_printf(t, "wharf_upstream_down{group=\"%s\",upstream=\"%s\"} %llu\n", g, m,
                (unsigned long long) u->down);
}

char *
wh_stats_prometheus(size_t *len)
{
    wh_text_t t = { NULL, 0, 0 };

    text_printf(&t, "# HELP wharf_streams_accepted_total Streams accepted.\n"
                    "# TYPE wharf_streams_accepted_total counter\n"
                    "# HELP wharf_streams_active Streams open now.\n"
                    "# TYPE wharf_streams_active gauge\n"
                    "# HELP wharf_streams_closed_total Streams closed, by cause.\n"
                    "# TYPE wharf_streams_closed_total counter\n"
                    "# HELP wharf_bytes_total Bytes relayed (up: client to upstream).\n"
                    "# TYPE wharf_bytes_total counter\n"
                    "# HELP wharf_connections_total Connections that carry streams "
                    "(HTTP/2, QUIC) accepted.\n"
                    "# TYPE wharf_connections_total counter\n"
                    "# HELP wharf_connections_active Connections that carry streams, open now.\n"
                    "# TYPE wharf_connections_active gauge\n"
                    "# HELP wharf_clients Client connections and UDP sessions open now, "
                    "handshakes included (the count the limits apply to).\n"
                    "# TYPE wharf_clients gauge\n"
                    "# HELP wharf_accept_paused_total Times a worker stopped accepting on this "
                    "listener at worker_connections.\n"
                    "# TYPE wharf_accept_paused_total counter\n"
                    "# HELP wharf_fallbacks_total Connections this listener's fallbacks took "
                    "instead of its transport.\n"
                    "# TYPE wharf_fallbacks_total counter\n"
                    "# HELP wharf_datagrams_total UDP transports: datagrams read and sent.\n"
                    "# TYPE wharf_datagrams_total counter\n"
                    "# HELP wharf_datagrams_passed_total Datagrams passed to the worker owning "
                    "their session (after a reload).\n"
                    "# TYPE wharf_datagrams_passed_total counter\n"
                    "# HELP wharf_datagrams_dropped_total Datagrams dropped, by cause.\n"
                    "# TYPE wharf_datagrams_dropped_total counter\n"
                    "# HELP wharf_quic_retry_total QUIC Retry packets sent.\n"
                    "# TYPE wharf_quic_retry_total counter\n"
                    "# HELP wharf_upstream_connects_total Connections made to an upstream "
                    "member (group: the listener's tag).\n"
                    "# TYPE wharf_upstream_connects_total counter\n"
                    "# HELP wharf_upstream_connect_failures_total Connects to an upstream member "
                    "that failed or timed out.\n"
                    "# TYPE wharf_upstream_connect_failures_total counter\n"
                    "# HELP wharf_upstream_down Workers that hold an upstream member down now "
                    "(upstreamFailTimeout after a failed connect).\n"
                    "# TYPE wharf_upstream_down gauge\n");
    wh_stats_foreach(metric_lines, &t);
    wh_stats_foreach_upstream(upstream_lines, &t);
    *len = t.len;
    return t.buf;
}

static void
conn_close(wh_stats_conn_t *sc)
{
    ev_io_stop(wh_loop, &sc->io);
    ev_timer_stop(wh_loop, &sc->timer);
    close(sc->fd);
    free(sc->out);
    free(sc);
}

static void
conn_write(wh_stats_conn_t *sc)
{
    ssize_t n;

    while (sc->out_sent < sc->out_len) {
        n = send(sc->fd, sc->out + sc->out_sent, sc->out_len - sc->out_sent, MSG_NOSIGNAL);
        if (n == -1 && errno == EINTR) continue;
        if (n == -1 && errno == EAGAIN) {
            ev_io_stop(wh_loop, &sc->io);
            ev_io_modify(&sc->io, EV_WRITE);
            ev_io_start(wh_loop, &sc->io);
            return;
        }
        if (n <= 0) break;
        sc->out_sent += n;
    }
    conn_close(sc);
}

static void
respond(wh_stats_conn_t *sc)
{
    wh_text_t t = { NULL, 0, 0 };
    char *body;
    size_t body_len;
    int metrics = strncmp(sc->head, "GET /metrics ", 13) == 0
                  || strncmp(sc->head, "GET /metrics?", 13) == 0;

    if (metrics) {
        body = wh_stats_prometheus(&body_len);
        text_printf(&t, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n\r\n%.*s",
                    body_len, (int) body_len, body);
        free(body);
    } else {
        text_printf(&t, "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                        "Content-Length: 10\r\nConnection: close\r\n\r\nnot found\n");
    }
    sc->out = t.buf;
    sc->out_len = t.len;
    conn_write(sc);
}

static void
conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    wh_stats_conn_t *sc = w->data;
    ssize_t n;

    if (sc->out != NULL) {
        conn_write(sc);
        return;
    }
    n = recv(sc->fd, sc->head + sc->have, sizeof(sc->head) - 1 - sc->have, 0);
    if (n == -1 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        conn_close(sc);
        return;
    }
    sc->have += n;
    sc->head[sc->have] = '\0';
    if (strstr(sc->head, "\r\n\r\n") != NULL || strstr(sc->head, "\n\n") != NULL) {
        respond(sc);
    } else if (sc->have == sizeof(sc->head) - 1) {
        conn_close(sc);
    }
}

static void
conn_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    conn_close(w->data);
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    wh_stats_conn_t *sc;
    int fd;

    fd = accept4(stats_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd == -1) {
        return;
    }
    sc = calloc(1, sizeof(*sc));
    if (sc == NULL) {
        close(fd);
        return;
    }
    sc->fd = fd;
    ev_io_init(&sc->io, conn_cb, fd, EV_READ);
    sc->io.data = sc;
    ev_timer_init(&sc->timer, conn_timeout, WH_STATS_TIMEOUT, 0);
    sc->timer.data = sc;
    ev_io_start(loop, &sc->io);
    ev_timer_start(loop, &sc->timer);
}

void
wh_stats_http_start(wh_cycle_t *c)
{
    if (!c->stats_enabled) {
        return;
    }
    stats_fd = c->stats_fd;
    ev_io_init(&accept_io, accept_cb, stats_fd, EV_READ);
    ev_io_start(wh_loop, &accept_io);
}

void
wh_stats_http_stop(void)
{
    if (stats_fd == -1) {
        return;
    }
    ev_io_stop(wh_loop, &accept_io);
    close(stats_fd);
    stats_fd = -1;
}

/*
 * wh_stats_http.c -- the optional stats listener: the shared-memory
 * counters as Prometheus text at GET /metrics.
 *
 * Every worker accepts on it (the master bound it), so it answers while
 * any worker lives, and every worker sees the same sums. It speaks just
 * enough HTTP/1.x for a scraper: one request per connection, the request
 * line checked, headers skipped, "Connection: close". A client that does
 * not send a full head within 10 s, or more than 4 KiB of it, is dropped.
 *
 * The text is the exposition format 0.0.4: every family (a table below,
 * or one of the master's own samples) is one group, its HELP and TYPE
 * lines and then all its samples, as the format requires and strict
 * parsers check.
 */
#include "wh_process.h"
#include "wh_event.h"
#include "wh_log.h"

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

/* A label value as the text format wants it: backslash, double quote and
 * line feed escaped (a tag or a member's unix path may hold any of them). */
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

/*
 * The text format wants all samples of a family in one group under its
 * HELP and TYPE, while the segment is read a listener (or a member) at a
 * time: the sums are read once into rows, then each family walks the rows.
 * A family is a run of n counters of a row, told apart by one label.
 */
enum {
    WH_ROW_CARRIER = 1,     /* accepted connections that carry streams */
    WH_ROW_DATAGRAM = 2,    /* a UDP transport */
};

typedef struct {
    char labels[2 * (WH_STATS_TAG_LEN + WH_STATS_MEMBER_LEN) + 32];
    uint64_t v[WH_STATS_NFIELDS];
    unsigned kind;
} wh_row_t;

typedef struct {
    wh_row_t *row;
    int n, cap;
} wh_rows_t;

typedef struct {
    const char *name;
    const char *type;
    const char *help;
    size_t offset;              /* of the first counter in the row's struct */
    int n;
    const char *label;          /* tells the n apart; NULL when n is 1 */
    const char *const *values;
    unsigned only;              /* rows of this kind only, 0: every row */
} wh_family_t;

static const char *const up_down[] = { "up", "down" };
static const char *const in_out[] = { "in", "out" };

#define WH_L(f) offsetof(wh_stats_counters_t, f)
#define WH_U(f) offsetof(wh_stats_upstream_sum_t, f)

static const wh_family_t listener_families[] = {
    { "wharf_streams_accepted_total", "counter", "Streams accepted.",
      WH_L(accepted), 1, NULL, NULL, 0 },
    { "wharf_streams_active", "gauge", "Streams open now.",
      WH_L(active), 1, NULL, NULL, 0 },
    { "wharf_streams_closed_total", "counter", "Streams closed, by cause.",
      WH_L(closed), WH_CLOSE_NCAUSES, "cause", wh_close_cause_names, 0 },
    { "wharf_bytes_total", "counter", "Bytes relayed (up: client to upstream).",
      WH_L(bytes_up), 2, "direction", up_down, 0 },
    { "wharf_clients", "gauge", "Client connections and UDP sessions open now, handshakes "
      "included (the count the limits apply to).", WH_L(clients), 1, NULL, NULL, 0 },
    { "wharf_accept_paused_total", "counter", "Times a worker stopped accepting on this "
      "listener at worker_connections.", WH_L(paused), 1, NULL, NULL, 0 },
    { "wharf_fallbacks_total", "counter", "Connections this listener's fallbacks took "
      "instead of its transport.", WH_L(fallbacks), 1, NULL, NULL, 0 },
    { "wharf_connections_total", "counter", "Connections that carry streams (HTTP/2, QUIC) "
      "accepted.", WH_L(connections), 1, NULL, NULL, WH_ROW_CARRIER },
    { "wharf_connections_active", "gauge", "Connections that carry streams, open now.",
      WH_L(connections_active), 1, NULL, NULL, WH_ROW_CARRIER },
    { "wharf_datagrams_total", "counter", "UDP transports: datagrams read and sent.",
      WH_L(datagrams_in), 2, "direction", in_out, WH_ROW_DATAGRAM },
    { "wharf_datagrams_passed_total", "counter", "Datagrams passed to the worker owning "
      "their session (after a reload).", WH_L(datagrams_passed), 1, NULL, NULL,
      WH_ROW_DATAGRAM },
    { "wharf_datagrams_dropped_total", "counter", "Datagrams dropped, by cause.",
      WH_L(datagrams_dropped), WH_DROP_NCAUSES, "cause", wh_drop_cause_names,
      WH_ROW_DATAGRAM },
    { "wharf_quic_retry_total", "counter", "QUIC Retry packets sent.",
      WH_L(quic_retry), 1, NULL, NULL, WH_ROW_DATAGRAM },
};

static const wh_family_t upstream_families[] = {
    { "wharf_upstream_connects_total", "counter", "Connections made to an upstream member "
      "(group: the group's name, or the listener's tag).", WH_U(connects), 1, NULL, NULL, 0 },
    { "wharf_upstream_connect_failures_total", "counter", "Connects to an upstream member "
      "that failed or timed out.", WH_U(connect_failures), 1, NULL, NULL, 0 },
    { "wharf_upstream_down", "gauge", "Workers that hold an upstream member down now "
      "(upstreamFailTimeout after a failed connect).", WH_U(down), 1, NULL, NULL, 0 },
};

static wh_row_t *
row_add(wh_rows_t *rows, const void *sum, size_t size)
{
    wh_row_t *r;

    if (rows->n == rows->cap) {
        rows->cap = rows->cap * 2 + 16;
        rows->row = realloc(rows->row, rows->cap * sizeof(wh_row_t));
        if (rows->row == NULL) abort();
    }
    r = &rows->row[rows->n++];
    memcpy(r->v, sum, size);
    r->kind = 0;
    return r;
}

static void
listener_row(const char *tag, const wh_stats_counters_t *c, void *arg)
{
    char t[2 * WH_STATS_TAG_LEN + 1];
    wh_row_t *r = row_add(arg, c, sizeof(*c));

    snprintf(r->labels, sizeof(r->labels), "listener=\"%s\"", label_value(tag, t, sizeof(t)));
    /* the families of a kind a listener is not of would only print zeros */
    r->kind = (c->connections > 0 ? WH_ROW_CARRIER : 0)
              | (c->datagrams_in + c->datagrams_out > 0 ? WH_ROW_DATAGRAM : 0);
}

static void
upstream_row(const char *group, const char *member, const wh_stats_upstream_sum_t *u, void *arg)
{
    char g[2 * WH_STATS_TAG_LEN + 1], m[2 * WH_STATS_MEMBER_LEN + 1];
    wh_row_t *r = row_add(arg, u, sizeof(*u));

    snprintf(r->labels, sizeof(r->labels), "group=\"%s\",upstream=\"%s\"",
             label_value(group, g, sizeof(g)), label_value(member, m, sizeof(m)));
}

static void
family_head(wh_text_t *t, const char *name, const char *type, const char *help)
{
    wh_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
families(wh_text_t *t, const wh_family_t *f, size_t nf, const wh_rows_t *rows)
{
    const wh_row_t *r;
    size_t i;
    int k;

    for (i = 0; i < nf; i++, f++) {
        family_head(t, f->name, f->type, f->help);
        for (r = rows->row; r < rows->row + rows->n; r++) {
            if ((r->kind & f->only) != f->only) {
                continue;
            }
            for (k = 0; k < f->n; k++) {
                unsigned long long v = r->v[f->offset / sizeof(uint64_t) + k];

                if (f->label == NULL) {
                    wh_text_printf(t, "%s{%s} %llu\n", f->name, r->labels, v);
                } else {
                    wh_text_printf(t, "%s{%s,%s=\"%s\"} %llu\n", f->name, r->labels, f->label,
                                f->values[k], v);
                }
            }
        }
    }
}

/* wharf_build_info and the master's own counters: one sample each */
static void
master_families(wh_text_t *t)
{
    const wh_lib_version_t *lib;
    wh_stats_master_t m = *wh_stats_master();
    char v[128];

    family_head(t, "wharf_build_info", "gauge", "Always 1: the version of wharf and of the "
                "libraries it runs with, as labels.");
    wh_text_printf(t, "wharf_build_info{version=\"%s\",modules=\"%s\"", WH_VERSION,
                WH_MODULE_NAMES);
    for (lib = wh_lib_versions(); lib->name != NULL; lib++) {
        wh_text_printf(t, ",%s=\"%s\"", lib->label,
                    label_value(lib->running ? lib->running : lib->built, v, sizeof(v)));
    }
    wh_text_printf(t, "} 1\n");
    family_head(t, "wharf_start_time_seconds", "gauge", "When the master started, in seconds "
                "since the epoch.");
    wh_text_printf(t, "wharf_start_time_seconds %llu.%03llu\n",
                (unsigned long long) m.start_ms / 1000, (unsigned long long) m.start_ms % 1000);
    family_head(t, "wharf_reloads_total", "counter", "Reloads that took effect.");
    wh_text_printf(t, "wharf_reloads_total %llu\n", (unsigned long long) m.reloads);
    family_head(t, "wharf_reloads_failed_total", "counter", "Reloads refused (a bad "
                "configuration or a failed bind): the running configuration stayed.");
    wh_text_printf(t, "wharf_reloads_failed_total %llu\n", (unsigned long long) m.reloads_failed);
    family_head(t, "wharf_worker_restarts_total", "counter", "Workers that died unexpectedly "
                "and were started again.");
    wh_text_printf(t, "wharf_worker_restarts_total %llu\n", (unsigned long long) m.worker_restarts);
}

char *
wh_stats_prometheus(size_t *len)
{
    wh_text_t t = { NULL, 0, 0 };
    wh_rows_t listeners = { NULL, 0, 0 }, upstreams = { NULL, 0, 0 };

    wh_stats_foreach(listener_row, &listeners);
    wh_stats_foreach_upstream(upstream_row, &upstreams);
    master_families(&t);
    families(&t, listener_families, wh_nelems(listener_families), &listeners);
    families(&t, upstream_families, wh_nelems(upstream_families), &upstreams);
    free(listeners.row);
    free(upstreams.row);
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
        wh_text_printf(&t, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n\r\n%.*s",
                    body_len, (int) body_len, body);
        free(body);
    } else {
        wh_text_printf(&t, "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
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

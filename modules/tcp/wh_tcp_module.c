/*
 * wh_tcp_module.c -- the "tcp" transport: raw TCP (and unix-socket)
 * listeners, with an optional PROXY protocol header (spec 3.1-3.2).
 *
 * Runs in workers: accepts on the listening socket the master bound, reads
 * the PROXY header when acceptProxyProtocol is on, then hands the socket to
 * the relay as a plain socket stream (so the relay may splice it).
 *
 * The PROXY header is read without ever reading a payload byte: MSG_PEEK
 * shows what has arrived, and only the bytes that belong to the header are
 * consumed (up to the CRLF for v1; exactly 16 bytes and then the announced
 * length for v2). Nothing is left over to hand to the relay, and a partial
 * header never leaves unread bytes behind that would keep the socket
 * readable (no busy loop).
 *
 * Layering for later issues: PROXY -> TLS -> "http" header (spec 3.2).
 */
#include "wh_cycle.h"
#include "wh_event.h"
#include "wh_log.h"
#include "wh_proxy_protocol.h"
#include "wh_relay.h"
#include "wh_sock_stream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define WH_ACCEPT_BATCH   64
#define WH_PROXY_HDR_MAX  1024      /* v2 TLVs beyond this are refused */

typedef struct {
    int accept_proxy_protocol;
} wh_tcp_conf_t;

typedef struct {
    wh_listener_t *ls;
    ev_io io;
    ev_timer resume;            /* accept paused after EMFILE/ENFILE */
} wh_tcp_listener_t;

typedef struct {
    wh_listener_t *ls;
    ev_io io;
    ev_timer timer;
    int fd;
    socklen_t peerlen;
    struct sockaddr_storage peer;
    uint16_t have;
    uint8_t hdr[WH_PROXY_HDR_MAX];
} wh_tcp_proxy_wait_t;

static const char *const networks[] = { "tcp", NULL };
static const char *const tcp_settings_names[] = { "header", "acceptProxyProtocol", NULL };
static const char *const header_names[] = { "type", "request", "response", NULL };

static int
tcp_parse(wh_conf_t *cf, wh_listener_t *ls, const config_setting_t *ss)
{
    wh_tcp_conf_t *conf = wh_xalloc(sizeof(*conf));
    config_setting_t *tcp = NULL, *header = NULL;
    const char *type = NULL;

    ls->module_conf = conf;
    if (ss != NULL && wh_conf_group(cf, ss, "tcpSettings", &tcp) == WH_ERROR) {
        return WH_ERROR;
    }
    if (tcp == NULL) {
        return WH_OK;
    }
    if (wh_conf_check_names(cf, tcp, tcp_settings_names, NULL) != WH_OK
        || wh_conf_bool(cf, tcp, "acceptProxyProtocol", &conf->accept_proxy_protocol) == WH_ERROR
        || wh_conf_group(cf, tcp, "header", &header) == WH_ERROR)
    {
        return WH_ERROR;
    }
    if (header == NULL) {
        return WH_OK;
    }
    if (wh_conf_check_names(cf, header, header_names, NULL) != WH_OK
        || wh_conf_string(cf, header, "type", &type) == WH_ERROR)
    {
        return WH_ERROR;
    }
    /* V2Ray: only an absent header means none; one without a type is an error */
    if (type == NULL) {
        wh_conf_error(cf, header, "\"header\" has no \"type\"");
        return WH_ERROR;
    }
    if (strcasecmp(type, "none") == 0) {
        return WH_OK;
    }
    if (strcasecmp(type, "http") == 0) {
        wh_conf_error(cf, config_setting_get_member(header, "type"),
                      "header type \"http\" is not supported by this build");
        return WH_ERROR;
    }
    wh_conf_error(cf, config_setting_get_member(header, "type"),
                  "unknown header type \"%s\" (none or http)", type);
    return WH_ERROR;
}

static void
relay_socket(wh_listener_t *ls, int fd, const struct sockaddr *peer, socklen_t peerlen)
{
    wh_stream_t *s = wh_sock_stream_create(fd, 0);

    if (s == NULL) {
        wh_log(WH_LOG_ERROR, "out of memory for a stream, listener: %s", ls->tag);
        close(fd);
        wh_stream_refused(ls, WH_CLOSE_ERROR);
        return;
    }
    wh_relay_start(ls, s, peer, peerlen);
}

static void
proxy_wait_free(wh_tcp_proxy_wait_t *pw)
{
    ev_io_stop(wh_loop, &pw->io);
    ev_timer_stop(wh_loop, &pw->timer);
    free(pw);
}

static void
proxy_wait_fail(wh_tcp_proxy_wait_t *pw, int cause, const char *why)
{
    char peer[64];

    wh_addr_format((struct sockaddr *) &pw->peer, pw->peerlen, peer, sizeof(peer));
    wh_log(WH_LOG_INFO, "PROXY header: %s, client: %s, listener: %s", why, peer, pw->ls->tag);
    close(pw->fd);
    wh_stream_refused(pw->ls, cause);
    proxy_wait_free(pw);
}

/* How many of the peeked bytes belong to the header (never more). */
static size_t
header_part(const wh_tcp_proxy_wait_t *pw, const uint8_t *peek, size_t n)
{
    const uint8_t *first = pw->have ? pw->hdr : peek;
    size_t total;

    if (first[0] == 'P') {
        const uint8_t *lf = memchr(peek, '\n', n);
        return lf ? (size_t) (lf - peek) + 1 : n;
    }
    if (pw->have < 16) {
        return wh_min(n, (size_t) 16 - pw->have);
    }
    total = 16 + ((size_t) pw->hdr[14] << 8 | pw->hdr[15]);
    return wh_min(n, total - pw->have);
}

static void
proxy_read(struct ev_loop *loop, ev_io *w, int revents)
{
    wh_tcp_proxy_wait_t *pw = w->data;
    uint8_t peek[WH_PROXY_HDR_MAX];
    wh_proxy_header_t h;
    const char *err = "malformed";
    ssize_t n, rc;
    size_t take;

    for (;;) {
        n = recv(pw->fd, peek, sizeof(pw->hdr) - pw->have, MSG_PEEK);
        if (n == -1 && errno == EINTR) continue;
        if (n == -1 && errno == EAGAIN) return;
        if (n <= 0) {
            proxy_wait_fail(pw, WH_CLOSE_BAD_INPUT, n == 0 ? "closed before the header" : strerror(errno));
            return;
        }
        take = header_part(pw, peek, n);
        if (take == 0 || recv(pw->fd, pw->hdr + pw->have, take, 0) != (ssize_t) take) {
            proxy_wait_fail(pw, WH_CLOSE_BAD_INPUT, "too long");
            return;
        }
        pw->have += take;

        rc = wh_proxy_parse(pw->hdr, pw->have, &h, &err);
        if (rc < 0) {
            proxy_wait_fail(pw, WH_CLOSE_BAD_INPUT, err);
            return;
        }
        if (rc > 0) {
            break;
        }
        if (pw->have == sizeof(pw->hdr)) {
            proxy_wait_fail(pw, WH_CLOSE_BAD_INPUT, "too long");
            return;
        }
    }

    if (!h.local) {
        pw->peer = h.src;
        pw->peerlen = h.src.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                 : sizeof(struct sockaddr_in6);
    }
    ev_io_stop(loop, &pw->io);
    ev_timer_stop(loop, &pw->timer);
    relay_socket(pw->ls, pw->fd, (struct sockaddr *) &pw->peer, pw->peerlen);
    free(pw);
}

static void
proxy_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    proxy_wait_fail(w->data, WH_CLOSE_TIMEOUT, "timed out");
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    wh_tcp_listener_t *tl = w->data;
    wh_listener_t *ls = tl->ls;
    wh_tcp_conf_t *conf = ls->module_conf;
    struct sockaddr_storage peer;
    socklen_t peerlen;
    int i, fd, one = 1;

    for (i = 0; i < WH_ACCEPT_BATCH; i++) {
        peerlen = sizeof(peer);
        fd = accept4(ls->fd, (struct sockaddr *) &peer, &peerlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return;
            wh_log(WH_LOG_ERROR, "accept() on %s failed (%s), listener: %s", ls->addr_text,
                   strerror(errno), ls->tag);
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* let streams finish and free descriptors, then try again */
                ev_io_stop(loop, &tl->io);
                ev_timer_start(loop, &tl->resume);
            }
            return;
        }
        if (peer.ss_family != AF_UNIX) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        wh_stream_accepted(ls);

        if (conf->accept_proxy_protocol) {
            wh_tcp_proxy_wait_t *pw = malloc(sizeof(*pw));
            if (pw == NULL) {
                close(fd);
                wh_stream_refused(ls, WH_CLOSE_ERROR);
                continue;
            }
            pw->ls = ls;
            pw->fd = fd;
            pw->have = 0;
            pw->peer = peer;
            pw->peerlen = peerlen;
            ev_io_init(&pw->io, proxy_read, fd, EV_READ);
            pw->io.data = pw;
            ev_timer_init(&pw->timer, proxy_timeout, ls->cycle->policy.handshake, 0);
            pw->timer.data = pw;
            ev_io_start(loop, &pw->io);
            ev_timer_start(loop, &pw->timer);
            continue;
        }
        relay_socket(ls, fd, (struct sockaddr *) &peer, peerlen);
    }
}

static void
resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    wh_tcp_listener_t *tl = w->data;

    ev_io_start(loop, &tl->io);
}

static int
tcp_start(wh_listener_t *ls, struct ev_loop *loop)
{
    wh_tcp_listener_t *tl = wh_xalloc(sizeof(*tl));

    tl->ls = ls;
    ev_io_init(&tl->io, accept_cb, ls->fd, EV_READ);
    tl->io.data = tl;
    ev_timer_init(&tl->resume, resume_cb, 0.5, 0);
    tl->resume.data = tl;
    ev_io_start(loop, &tl->io);
    ls->runtime = tl;
    return WH_OK;
}

static void
tcp_stop(wh_listener_t *ls)
{
    wh_tcp_listener_t *tl = ls->runtime;

    if (tl == NULL) {
        return;
    }
    ev_io_stop(wh_loop, &tl->io);
    ev_timer_stop(wh_loop, &tl->resume);
    close(ls->fd);
    ls->fd = -1;
    free(tl);
    ls->runtime = NULL;
}

const wh_module_t wh_tcp_module = {
    .name = "tcp",
    .networks = networks,
    .parse = tcp_parse,
    .bind = NULL,
    .start = tcp_start,
    .stop = tcp_stop,
};

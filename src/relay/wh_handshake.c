/*
 * wh_handshake.c -- accepting stream connections and taking each stream
 * through PROXY -> TLS -> the transport's handshake to the relay (see
 * wh_handshake.h).
 *
 * Every stage works on the stream but PROXY, which goes under it to the
 * socket (wh_stream_splice_fd: a plain socket, no bytes held above it).
 * The header is read without ever reading a payload byte: MSG_PEEK shows
 * what has arrived and only the header's bytes are consumed (up to the LF
 * for v1; 16 bytes, then the announced length, for v2), so nothing is left
 * over to pass on, and a partial header never leaves unread bytes that
 * would keep the socket readable (no busy loop). It waits through the
 * stream's own promise, so a socket has one watcher from accept to close,
 * and its buffer exists only during that stage.
 *
 * One timer bounds all stages (policy.handshake) from the start. A failure
 * closes that stream only, is logged at info with its reason, and is
 * counted by cause (bad_input, timeout, error).
 *
 * A listener's fallbacks (wh_fallback.h) are tried at two points: right
 * after TLS (by SNI and ALPN), and where the transport's handshake would
 * refuse (the module calls wh_handshake_fallback with what it read). The
 * handshake then goes to the fallback's upstream with those bytes to
 * replay, or starts over at the transport stage of another listener, on
 * the same stream read again from its start (wh_replay.h): one handshake,
 * one timer and one live handle from accept to relay, however many
 * listeners' transports it passes through.
 */
#include "wh_handshake.h"
#include "wh_log.h"
#include "wh_proxy_protocol.h"
#include "wh_relay.h"
#include "wh_replay.h"
#include "wh_sock_stream.h"
#include "wh_tls.h"

#include <netinet/in.h>
#include <unistd.h>

#define WH_ACCEPT_BATCH   64
#define WH_PROXY_HDR_MAX  1024      /* v2 TLVs beyond this are refused */

enum { STAGE_PROXY, STAGE_TLS, STAGE_MODULE };

typedef struct wh_acceptor_s wh_acceptor_t;
struct wh_acceptor_s {
    wh_listener_t *ls;
    ev_timer resume;            /* accepting paused after EMFILE/ENFILE */
    uint32_t seen;              /* the loop iteration it was last ready in */
    uint8_t drain;              /* accept until the queue is empty */
    wh_acceptor_t *next;
    int nio;
    ev_io io[];                 /* this worker's share of ls->fds, or ls->fd */
};

static wh_acceptor_t *acceptors;
static int acceptors_off;       /* of them, not watching their sockets */
static const wh_steer_t *steer; /* where this worker says it accepts */
static int steer_index;
static ev_prepare steal;        /* steal_cb, while steering */

static void advance(wh_handshake_t *hs);

/* Before the pipeline holds anything: the stream and its place go at once. */
static void
refuse(wh_live_t *live, wh_stream_t *s, int cause)
{
    wh_stream_close(s);
    wh_live_close(live, cause);
}

/* The module's last word (and its state freed), then ours. */
static void
finish(wh_handshake_t *hs, int expired)
{
    hs->ending = 1;
    if (hs->ls->module->handshake_end != NULL) {
        hs->ls->module->handshake_end(hs, expired);
    }
    ev_timer_stop(wh_loop, &hs->timer);
    /* the relay or the module took the handle, unless something failed */
    wh_live_close(&hs->live, WH_CLOSE_ERROR);
    free(hs->proxy);
    free(hs->replay);
    free(hs);
}

static void
fail(wh_handshake_t *hs, int cause, const char *why)
{
    static const char *const stages[] = { "PROXY header", "TLS handshake", "handshake" };
    wh_stream_t *top = hs->top;
    wh_log_ctx_t ctx;
    wh_live_t live;

    wh_live_move(&live, &hs->live);
    wh_log_ctx(WH_LOG_INFO, wh_handshake_log_ctx(hs, &ctx), "%s failed: %s", stages[hs->stage],
               why);
    if (live.ls != NULL && live.ls->access_log != NULL) {
        wh_relay_log_refused(live.ls, (struct sockaddr *) &hs->peer, wh_handshake_facts(hs),
                             hs->facts->start, cause);
    }
    /* an expired module stage may still answer on top before it closes */
    finish(hs, cause == WH_CLOSE_TIMEOUT);
    wh_stream_close(top);
    wh_live_close(&live, cause);
}

const wh_access_facts_t *
wh_handshake_facts(wh_handshake_t *hs)
{
    wh_access_facts_t *f = hs->facts;

    if (f != NULL && hs->tls != NULL && hs->stage == STAGE_MODULE && f->ssl_protocol == NULL) {
        f->ssl_protocol = wh_tls_version(hs->tls);
        snprintf(f->sni, sizeof(f->sni), "%s", wh_tls_servername(hs->tls));
        snprintf(f->alpn, sizeof(f->alpn), "%s", wh_tls_alpn(hs->tls));
    }
    return f;
}

void
wh_handshake_note_path(wh_handshake_t *hs, const char *path, size_t len)
{
    if (hs->facts != NULL && path != NULL) {
        size_t n = wh_min(len, sizeof(hs->facts->path) - 1);

        memcpy(hs->facts->path, path, n);
        hs->facts->path[n] = '\0';
    }
}

void
wh_handshake_refused(wh_handshake_t *hs, const char *why, const char *method, size_t mlen,
                     const char *host, size_t hlen, const char *path, size_t plen)
{
    wh_log_ctx_t ctx;

    wh_handshake_note_path(hs, path, plen);
    if (wh_log_level < WH_LOG_INFO) {
        return;
    }
    wh_log_ctx(WH_LOG_INFO, wh_handshake_log_ctx(hs, &ctx),
               "request refused (%s): method \"%.*s\", host \"%.*s\", path \"%.*s\"", why,
               method ? (int) wh_min(mlen, 32) : 0, method ? method : "",
               host ? (int) wh_min(hlen, 256) : 0, host ? host : "",
               path ? (int) wh_min(plen, 512) : 0, path ? path : "");
}

const wh_log_ctx_t *
wh_handshake_log_ctx(const wh_handshake_t *hs, wh_log_ctx_t *ctx)
{
    ctx->listener = hs->ls->tag;
    ctx->client = (const struct sockaddr *) &hs->peer;
    ctx->clientlen = hs->peerlen;
    ctx->upstream = NULL;
    return ctx;
}

/* How many of the peeked bytes belong to the PROXY header (never more). */
static size_t
proxy_part(const wh_handshake_t *hs, const uint8_t *peek, size_t n)
{
    const uint8_t *first = hs->have ? hs->proxy : peek;
    size_t total;

    if (first[0] == 'P') {
        const uint8_t *lf = memchr(peek, '\n', n);
        return lf ? (size_t) (lf - peek) + 1 : n;
    }
    if (hs->have < 16) {
        return wh_min(n, (size_t) 16 - hs->have);
    }
    total = 16 + ((size_t) hs->proxy[14] << 8 | hs->proxy[15]);
    return wh_min(n, total - hs->have);
}

/* WH_OK (header read), WH_AGAIN, or WH_ERROR (failed and freed). */
static int
read_proxy(wh_handshake_t *hs)
{
    uint8_t peek[WH_PROXY_HDR_MAX];
    wh_proxy_header_t h;
    const char *err = "malformed";
    int fd = wh_stream_splice_fd(hs->top);
    ssize_t n, rc;
    size_t take;

    if (hs->proxy == NULL && (hs->proxy = malloc(WH_PROXY_HDR_MAX)) == NULL) {
        fail(hs, WH_CLOSE_ERROR, "out of memory");
        return WH_ERROR;
    }
    for (;;) {
        n = recv(fd, peek, WH_PROXY_HDR_MAX - hs->have, MSG_PEEK);
        if (n == -1 && errno == EINTR) continue;
        if (n == -1 && errno == EAGAIN) return WH_AGAIN;
        if (n <= 0) {
            fail(hs, WH_CLOSE_BAD_INPUT, n == 0 ? "closed before the header" : strerror(errno));
            return WH_ERROR;
        }
        take = proxy_part(hs, peek, n);
        if (take == 0 || recv(fd, hs->proxy + hs->have, take, 0) != (ssize_t) take) {
            fail(hs, WH_CLOSE_BAD_INPUT, "too long");
            return WH_ERROR;
        }
        hs->have += take;
        rc = wh_proxy_parse(hs->proxy, hs->have, &h, &err);
        if (rc < 0) {
            fail(hs, WH_CLOSE_BAD_INPUT, err);
            return WH_ERROR;
        }
        if (rc > 0) break;
        if (hs->have == WH_PROXY_HDR_MAX) {
            fail(hs, WH_CLOSE_BAD_INPUT, "too long");
            return WH_ERROR;
        }
    }
    if (!h.local) {
        hs->peer = h.src;
        hs->peerlen = h.src.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                 : sizeof(struct sockaddr_in6);
        /* the proxy's client is the one a per-address cap is about */
        if (wh_limit_readdress(hs->ls, &hs->live.slot, (struct sockaddr *) &hs->peer) != WH_OK) {
            fail(hs, WH_CLOSE_LIMIT, "over maxConnectionsPerAddress");
            return WH_ERROR;
        }
    }
    free(hs->proxy);
    hs->proxy = NULL;
    return WH_OK;
}

static void
top_readable(wh_stream_t *s)
{
    advance(s->data);
}

/* A stage waits: run again when the stream so far (a stage may have
 * wrapped it) keeps its promise. */
static void
wait_readable(wh_handshake_t *hs)
{
    hs->top->data = hs;
    hs->top->on_readable = top_readable;
}

static void
timed_out(struct ev_loop *loop, ev_timer *w, int revents)
{
    fail(w->data, WH_CLOSE_TIMEOUT, "timed out");
}

/* The handshake is over: the stream goes to dest, with the bytes to read
 * again that a fallback carries. */
static void
relay(wh_handshake_t *hs, const wh_dest_t *dest)
{
    wh_stream_t *top = hs->top;
    struct sockaddr_storage peer = hs->peer;
    socklen_t peerlen = hs->peerlen;
    uint8_t *replay = hs->replay;
    size_t n = hs->replay_len;
    wh_live_t live;
    wh_access_facts_t facts, *f = NULL;

    if (hs->facts != NULL) {
        facts = *wh_handshake_facts(hs);        /* they go with hs */
        f = &facts;
    }
    hs->replay = NULL;
    top->on_readable = NULL;
    top->on_writable = NULL;
    wh_live_move(&live, &hs->live);
    finish(hs, 0);
    wh_relay_start(&live, dest, top, (struct sockaddr *) &peer, peerlen, replay, n, f);
    free(replay);
}

/* A fallback takes the connection: its upstream, or another listener's
 * transport, which reads what this one read again (no socket hop), on the
 * stream as it is (TLS ended here). The connection's live handle, and with
 * it its counters and the client's place in the limits, stays this
 * listener's; the streams an HTTP/2 connection carries are counted on the
 * listener whose transport serves them. */
static void
take_fallback(wh_handshake_t *hs)
{
    const wh_fallback_t *fb = hs->fallback;
    wh_log_ctx_t ctx;
    wh_stream_t *s;

    hs->fallback = NULL;
    wh_stats_add(hs->ls->stats->fallbacks, 1);
    if (hs->facts != NULL) {
        hs->facts->fallback = fb->to != NULL ? fb->to->tag : fb->dest.upstream->name;
    }
    /* what made the module refuse is no failure of the stream */
    hs->top->err = NULL;
    if (wh_log_level >= WH_LOG_DEBUG) {
        wh_log_ctx(WH_LOG_DEBUG, wh_handshake_log_ctx(hs, &ctx), "fallback to %s%s",
                   fb->to != NULL ? "listener " : "",
                   fb->to != NULL ? fb->to->tag : fb->dest.upstream->name);
    }
    if (fb->to == NULL) {
        relay(hs, &fb->dest);
        return;
    }
    if (hs->ls->module->handshake_end != NULL) {
        hs->ls->module->handshake_end(hs, 0);
    }
    hs->module_data = NULL;
    hs->module_step = 0;
    if (hs->replay_len > 0) {
        s = wh_replay_stream(hs->top, hs->replay, hs->replay_len);
        if (s == NULL) {
            fail(hs, WH_CLOSE_ERROR, "out of memory");
            return;
        }
        hs->top = s;
    }
    free(hs->replay);
    hs->replay = NULL;
    hs->replay_len = 0;
    hs->ls = fb->to;
    advance(hs);
}

int
wh_handshake_fallback(wh_handshake_t *hs, const char *path, size_t path_len, const void *read,
                      size_t n)
{
    if (hs->ending || hs->ls->fallbacks.n == 0) {
        return WH_DECLINED;     /* every refusal asks: no work unless there are entries */
    }
    hs->fallback = wh_fallback_request(hs->ls, hs->tls != NULL ? wh_tls_servername(hs->tls) : "",
                                       hs->tls != NULL ? wh_tls_alpn(hs->tls) : "", path,
                                       path_len);
    if (hs->fallback == NULL) {
        return WH_DECLINED;
    }
    if (n > 0) {
        hs->replay = malloc(n);
        if (hs->replay == NULL) {
            hs->fallback = NULL;
            return WH_DECLINED;
        }
        memcpy(hs->replay, read, n);
        hs->replay_len = n;
    }
    return WH_OK;
}

/* Runs stages until one has to wait, fails, or all are done. */
static void
advance(wh_handshake_t *hs)
{
    wh_listener_t *ls = hs->ls;
    int rc, cause = WH_CLOSE_BAD_INPUT;

    if (hs->stage == STAGE_PROXY) {
        if (ls->proxy_protocol) {
            rc = read_proxy(hs);
            if (rc == WH_AGAIN) {
                wait_readable(hs);
                wh_stream_wait(hs->top, WH_EV_READ);
                return;
            }
            if (rc != WH_OK) return;
        }
        hs->stage = STAGE_TLS;
        if (ls->tls != NULL) {
            wh_stream_t *tls = wh_tls_server(hs->top, ls->tls);
            if (tls == NULL) {
                fail(hs, WH_CLOSE_ERROR, "out of memory");
                return;
            }
            hs->top = hs->tls = tls;
        }
    }

    if (hs->stage == STAGE_TLS) {
        if (ls->tls != NULL) {
            rc = wh_tls_handshake(hs->top);
            if (rc == WH_AGAIN) {
                wait_readable(hs);
                return;
            }
            if (rc != WH_OK) {
                /* a client gone before a word is no error of anyone's */
                fail(hs, hs->top->err == wh_err_bad_input ? WH_CLOSE_BAD_INPUT
                         : hs->top->err == wh_err_closed ? WH_CLOSE_DONE : WH_CLOSE_ERROR,
                     wh_tls_error(hs->top));
                return;
            }
        }
        hs->stage = STAGE_MODULE;
        if (ls->fallbacks.on_connection) {
            hs->fallback = wh_fallback_connection(ls, wh_tls_servername(hs->tls),
                                                  wh_tls_alpn(hs->tls));
            if (hs->fallback != NULL) {
                take_fallback(hs);
                return;
            }
        }
        if (ls->tls != NULL && ls->module->handshake_timeout > 0) {
            /* Go's server: the TLS handshake and the request head get
             * their deadline each */
            wh_handshake_restart_timer(hs);
        }
    }

    if (ls->module->handshake != NULL) {
        rc = ls->module->handshake(hs, &cause);
        if (hs->fallback != NULL) {
            take_fallback(hs);
            return;
        }
        if (rc == WH_AGAIN) {
            wait_readable(hs);
            return;
        }
        if (rc == WH_DECLINED) {
            finish(hs, 0);      /* the module has the connection now */
            return;
        }
        if (rc != WH_OK) {
            fail(hs, cause, hs->top->err ? hs->top->err : "refused");
            return;
        }
    }

    relay(hs, &ls->dest);
}

void
wh_handshake_start(wh_live_t *live, wh_stream_t *s, const struct sockaddr *peer,
                   socklen_t peerlen)
{
    wh_listener_t *ls = live->ls;
    wh_handshake_t *hs;

    if (!ls->proxy_protocol && ls->tls == NULL && ls->module->handshake == NULL) {
        /* nothing to wait for: straight to the relay, no allocation */
        wh_relay_start(live, &ls->dest, s, peer, peerlen, NULL, 0, NULL);
        return;
    }
    if (ls->proxy_protocol && wh_stream_splice_fd(s) == -1) {
        /* only transports that accept sockets take PROXY (their conf) */
        wh_log_listener(WH_LOG_ERROR, ls->tag,
                        "PROXY header expected on a %s stream, which has no socket", s->ops->name);
        refuse(live, s, WH_CLOSE_ERROR);
        return;
    }

    /* the access log's facts in the same allocation: a fallback may take
     * the connection to a listener that logs */
    hs = calloc(1, sizeof(*hs) + (ls->cycle->access_facts ? sizeof(wh_access_facts_t) : 0));
    if (hs == NULL) {
        refuse(live, s, WH_CLOSE_ERROR);
        return;
    }
    if (ls->cycle->access_facts) {
        hs->facts = (wh_access_facts_t *) (hs + 1);
        hs->facts->start = ev_now(wh_loop);
    }
    wh_live_move(&hs->live, live);
    hs->ls = ls;
    hs->top = s;
    hs->accepted = time(NULL);
    memcpy(&hs->peer, peer, peerlen);
    hs->peerlen = peerlen;
    ev_timer_init(&hs->timer, timed_out,
                  ls->module->handshake_timeout > 0 ? ls->module->handshake_timeout
                                                    : ls->cycle->policy.handshake, 0);
    hs->timer.data = hs;
    ev_timer_start(wh_loop, &hs->timer);
    advance(hs);
}

void
wh_handshake_restart_timer(wh_handshake_t *hs)
{
    ev_timer_stop(wh_loop, &hs->timer);
    ev_timer_start(wh_loop, &hs->timer);
}

double
wh_handshake_time_left(wh_handshake_t *hs)
{
    return ev_is_active(&hs->timer) ? ev_timer_remaining(wh_loop, &hs->timer) : 0;
}

/* The steering program (wh_steer.h) learns at once that this worker
 * stopped or started accepting: a connection it gave a worker that no
 * longer accepts would wait for it. */
static void
tell_steering(void)
{
    if (steer != NULL) {
        wh_steer_mark(steer, WH_STEER_ACCEPTING, steer_index, wh_accept_ready());
    }
}

static void
watch(wh_acceptor_t *a, int on)
{
    int i;

    if (a->nio > 0 && ev_is_active(&a->io[0]) != on) {
        acceptors_off += on ? -1 : 1;
    }
    for (i = 0; i < a->nio; i++) {
        if (on) {
            ev_io_start(wh_loop, &a->io[i]);
        } else {
            ev_io_stop(wh_loop, &a->io[i]);
        }
    }
    tell_steering();
}

/* A connection accepted from one of ls's sockets: to its handshake, or
 * refused at a cap. */
static void
take(wh_listener_t *ls, int fd, struct sockaddr_storage *peer, socklen_t peerlen)
{
    wh_conn_slot_t slot;
    wh_stream_t *s;
    wh_live_t live;

    if (wh_limit_admit(ls, (struct sockaddr *) peer, &slot) != WH_OK) {
        close(fd);      /* at once: a cap is no reason to hold anything */
        wh_live_refused(ls, WH_CLOSE_LIMIT);
        wh_relay_log_refused(ls, (struct sockaddr *) peer, NULL, 0, WH_CLOSE_LIMIT);
        return;
    }
    s = wh_sock_stream_create(fd, 0);
    if (s == NULL) {
        close(fd);
        wh_limit_release(ls, &slot);
        wh_live_refused(ls, WH_CLOSE_ERROR);
        return;
    }
    /* a unix socket's poll knows no low-water mark */
    if (ls->addr.sa.ss_family != AF_UNIX) {
        wh_sock_stream_coalesce(s, ls->cycle->receive_coalesce);
    }
    wh_live_open(&live, ls, WH_LIVE_STREAM);
    live.slot = slot;
    wh_handshake_start(&live, s, (struct sockaddr *) peer, peerlen);
}

/* One connection from listening socket fd, taken; -1 with errno as
 * accept4(2) left it when there was none. */
static int
accept_one(wh_listener_t *ls, int fd)
{
    struct sockaddr_storage peer;
    socklen_t peerlen = sizeof(peer);
    int c;

    c = accept4(fd, (struct sockaddr *) &peer, &peerlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c != -1) {
        take(ls, c, &peer, peerlen);
    }
    return c;
}

/* ls's row in the steering program's marks (wh_steer.h) */
static int
steer_row(wh_listener_t *ls)
{
    return (int) (ls - ls->cycle->listeners);
}

/* Connections that come one at a time are taken one per wake-up (nginx's
 * multi_accept off): a second accept4(2) would only hear EAGAIN, one call
 * per connection for nothing. A listener still ready in the next loop
 * iteration has a queue, and is drained (WH_ACCEPT_BATCH at most per
 * wake-up) until a drain finds one connection or none. The poll is
 * level-triggered, so a connection left queued is reported at once. */
static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    wh_acceptor_t *a = w->data;
    wh_listener_t *ls = a->ls;
    int i, batch;
    uint32_t iter = ev_iteration(loop);

    /* its own socket is io[0]'s, the one of the steered ones */
    if (steer != NULL && w == &a->io[0]) {
        wh_steer_unmark(steer, steer_row(ls), steer_index);
    }
    if (a->seen + 1 == iter) a->drain = 1;
    a->seen = iter;
    batch = a->drain ? WH_ACCEPT_BATCH : 1;
    for (i = 0; i < batch && !wh_limit_full(); i++) {
        if (accept_one(ls, w->fd) == -1) {
            if (errno == EAGAIN && i <= 1) a->drain = 0;
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return;
            wh_log_listener(WH_LOG_ERROR, ls->tag, "accept() on %s failed (%s)", ls->addr_text,
                            strerror(errno));
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* let streams finish and free descriptors, then try again */
                watch(a, 0);
                ev_timer_start(loop, &a->resume);
            }
            return;
        }
    }
}

/* served in the poll's order with the streams' events (wh_ready()) */
static void
accept_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    wh_ready(w, revents, accept_cb);
}

/* Before this worker polls: it takes a connection queued on the socket
 * of a worker that is busy, or being woken and not yet running
 * (wh_steer.h), as a worker that reaches epoll_wait() first takes it from
 * nginx's shared socket. Only a marked socket is tried, so a loop with
 * none makes no system call. */
static void
steal_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    wh_acceptor_t *a;
    uint32_t count;
    int k;

    if (!wh_accept_ready()) {
        return;
    }
    for (a = acceptors; a != NULL; a = a->next) {
        while (!wh_limit_full()
               && (k = wh_steer_marked(steer, steer_row(a->ls), steer_index, a->ls->nfds,
                                       &count)) != -1)
        {
            for (; count > 0 && !wh_limit_full(); count--) {
                if (accept_one(a->ls, a->ls->fds[k]) == -1) {
                    break;      /* its worker took them, or they are not here yet */
                }
            }
        }
    }
}

static void
resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    wh_acceptor_t *a = w->data;

    if (!wh_limit_full()) {
        watch(a, 1);
    }
}

/* An IP listener's socket k is worker k's (mod count, see wh_cycle.c's
 * bind_tcp): the kernel spreads connections over the sockets and wakes
 * one worker for each. A unix listener's one socket is every worker's. */
int
wh_accept_start(wh_listener_t *ls, wh_worker_ctx_t *ctx)
{
    wh_acceptor_t *a;
    int k, n = ls->nfds ? ls->nfds : 1;

    if (ls->fd == -1) {
        return WH_OK;       /* no address: it takes only hand-offs */
    }
    a = wh_xalloc(sizeof(*a) + n * sizeof(ev_io));

    a->ls = ls;
    a->nio = 0;
    for (k = 0; k < n; k++) {
        if (ls->nfds == 0 || k % ctx->count == ctx->index) {
            ev_io_init(&a->io[a->nio], accept_io_cb, ls->nfds ? ls->fds[k] : ls->fd, EV_READ);
            a->io[a->nio++].data = a;
        }
    }
    ev_timer_init(&a->resume, resume_cb, 0.5, 0);
    a->resume.data = a;
    acceptors_off += a->nio > 0;
    if (ls->cycle->steer.words != NULL && !ev_is_active(&steal)) {
        steer = &ls->cycle->steer;
        steer_index = ctx->index;
        ev_prepare_init(&steal, steal_cb);
        ev_prepare_start(wh_loop, &steal);
        ev_unref(wh_loop);  /* it keeps no loop running */
    }
    a->next = acceptors;
    acceptors = a;
    if (!wh_limit_full()) {
        watch(a, 1);
    }
    ls->runtime = a;
    return WH_OK;
}

void
wh_accept_stop(wh_listener_t *ls)
{
    wh_acceptor_t *a = ls->runtime, **p;

    if (a == NULL) {
        return;
    }
    watch(a, 0);
    acceptors_off -= a->nio > 0;
    ev_timer_stop(wh_loop, &a->resume);
    /* the master holds every socket on: this worker's copies go, whoever's
     * they are, so that a listener the master closes is closed */
    if (ls->nfds == 0) close(ls->fd);
    while (ls->nfds > 0) close(ls->fds[--ls->nfds]);
    ls->fd = -1;
    for (p = &acceptors; *p != a; p = &(*p)->next) { /* void */ }
    *p = a->next;
    for (int i = 0; i < a->nio; i++) wh_ready_cancel(&a->io[i]);
    free(a);
    ls->runtime = NULL;
    if (acceptors == NULL && ev_is_active(&steal)) {
        ev_ref(wh_loop);
        ev_prepare_stop(wh_loop, &steal);
    }
    tell_steering();
}

void
wh_accept_pause(void)
{
    wh_acceptor_t *a;

    for (a = acceptors; a != NULL; a = a->next) {
        watch(a, 0);
    }
}

void
wh_accept_resume(void)
{
    wh_acceptor_t *a;

    for (a = acceptors; a != NULL; a = a->next) {
        if (!ev_is_active(&a->resume)) {
            watch(a, 1);
        }
    }
}

int
wh_accept_ready(void)
{
    return acceptors != NULL && acceptors_off == 0;
}

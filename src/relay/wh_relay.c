/*
 * wh_relay.c -- the one relay: client stream <-> upstream stream.
 *
 * Symmetric pump (nginx's ngx_stream_proxy_process habit): dir[0] moves
 * client -> upstream ("up"), dir[1] upstream -> client ("down"), one
 * function for both.
 *
 * Buffers: bytes are read into one per-worker scratch buffer and written
 * on at once; only what the destination does not take is copied into a
 * per-direction stash, sized to the remainder and freed as soon as it is
 * written. While a stash exists its source is not read, so each direction
 * holds at most one read's worth and an idle relay holds no buffer at all.
 * A read asks for WH_RELAY_CHUNK, or four times that (big) while the last
 * full chunk went on whole: a bulk transfer through a layer that cannot
 * splice (TLS, a websocket) then costs a quarter of the reads, and of the
 * window updates whose acknowledgement makes the sender's queued segments
 * travel in the reader's system call; a destination that falls behind
 * leaves at most one big read's worth in the stash, and reads are one
 * chunk again until it keeps up.
 *
 * Between two plain sockets a direction turns to splice(2) once one of
 * its reads fills a chunk (bulk), through a pipe taken from a per-worker
 * pool for as long as bytes are in it, so an idle relay holds no pipe
 * either; below that, a request and its answer cost the same two calls
 * copied, without the pipe's page work.
 *
 * The upstream is a member of a group (wh_upstream.h): a connect that
 * fails or times out marks its member down and the stream dials the next
 * one, all within policy.handshake, each attempt given an equal share of
 * what is left among the members not tried yet, so a member that never
 * answers cannot take the whole of it. What the upstream gets before the
 * client's next byte (a PROXY header, bytes a handshake read ahead) waits
 * in the up direction's stash, the one place a relay keeps bytes it could
 * not write yet: the first pump after the connect writes it first, and
 * splice(2) starts once it is empty.
 *
 * Timeouts (V2Ray's policy, spec 1.3): handshake bounds the upstream
 * connect; then connIdle closes a stream with no bytes either way. When the
 * client ends, the upstream gets a FIN and the stream lives on while the
 * upstream keeps sending, until it is idle for downlinkOnly; when the
 * upstream ends, the client gets the end of stream and the stream lingers
 * until the client has taken everything, then uplinkOnly applies
 * (linger()).
 * One ev_timer per relay, re-armed lazily from the last activity time, so
 * moving bytes never touches the timer heap.
 */
#include "wh_relay.h"
#include "wh_event.h"
#include "wh_log.h"
#include "wh_proxy_protocol.h"
#include "wh_sock_stream.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#define WH_RELAY_CHUNK      65536
#define WH_RELAY_BIG        (4 * WH_RELAY_CHUNK)    /* a read while the destination keeps up */
#define WH_RELAY_BUDGET     16          /* chunks per direction per event */
#define WH_PIPE_POOL        64
#define WH_LINGER_POLL      0.1         /* s between looks at a lingering client */
#define WH_LINGER_SLOW      65536       /* a backlog that says the client reads slowly */
/* what a V2Ray client holds between its transport and its application:
 * its pipe (policy bufferSize, 512 KiB on 64-bit machines) */
#define WH_CLIENT_HOLD      (512 * 1024)

enum { UP = 0, DOWN = 1 };
#define KEEP_GOING (-1)

typedef struct {
    uint8_t *stash;
    uint32_t stash_pos;
    uint32_t stash_len;
    int pipe_r, pipe_w;         /* -1 when no pipe is held */
    uint32_t in_pipe;
    unsigned eof:1;             /* the source ended */
    unsigned shut:1;            /* the destination was told */
    unsigned bulk:1;            /* a read filled a chunk: splice from now on */
    unsigned big:1;             /* the last read filled a chunk and went on whole */
} wh_relay_dir_t;

/* Only a stream whose upstream ended pays for this. */
typedef struct {
    wh_stream_flow_t flow;      /* the client's, at the last change */
    uint64_t backlog;           /* unacknowledged when the linger began */
    ev_tstamp began;
    ev_tstamp acked;            /* when the client had acknowledged all; 0: not yet */
} wh_relay_linger_t;

typedef struct wh_relay_s wh_relay_t;
struct wh_relay_s {
    wh_stream_t *client;
    wh_stream_t *upstream;      /* NULL between two connect attempts */
    wh_upstream_conf_t *group;
    wh_upstream_member_t *member;   /* connected, or being dialled */
    uint64_t tried;             /* the group's members this stream dialled */
    wh_live_t live;             /* the client's, from the transport; its ls is ours */
    wh_relay_dir_t dir[2];
    ev_timer timer;
    ev_tstamp last_active;
    ev_tstamp timeout;
    ev_tstamp started;
    ev_tstamp dialled;          /* the last connect began */
    ev_tstamp connect_time;     /* the connect took; < 0 until connected */
    uint64_t bytes[2];
    wh_posted_t posted;         /* a direction ran out of budget */
    uint8_t posted_dirs;
    uint8_t connecting;
    uint8_t lingering;          /* linger_start() ran, linger_first() not yet */
    wh_relay_linger_t *linger;  /* the client was told the end: see linger() */
    wh_relay_t *next;
    wh_relay_t **prev;
    union {                     /* the client, formatted only for a log line */
        struct sockaddr sa;
        struct sockaddr_in sin;
        struct sockaddr_in6 sin6;
    } peer;
    socklen_t peerlen;
    wh_access_facts_t *facts;   /* after the struct, when the listener logs */
};

/* What the relay's log lines are about; the upstream only where the
 * message does not name it. */
static const wh_log_ctx_t *
relay_ctx(wh_relay_t *r, wh_log_ctx_t *ctx, int upstream)
{
    ctx->listener = r->live.ls->tag;
    ctx->client = &r->peer.sa;
    ctx->clientlen = r->peerlen;
    ctx->upstream = upstream && r->member != NULL ? r->member->text : NULL;
    return ctx;
}

static void connect_failed(wh_relay_t *r);

static uint8_t scratch[WH_RELAY_BIG];
static wh_relay_t *relays;
static int pipe_pool[WH_PIPE_POOL][2];
static int pipe_pool_n;

static int
pipe_get(wh_relay_dir_t *d)
{
    int fds[2];

    if (d->pipe_r != -1) {
        return WH_OK;
    }
    if (pipe_pool_n > 0) {
        pipe_pool_n--;
        d->pipe_r = pipe_pool[pipe_pool_n][0];
        d->pipe_w = pipe_pool[pipe_pool_n][1];
        return WH_OK;
    }
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == -1) {
        return WH_ERROR;
    }
    d->pipe_r = fds[0];
    d->pipe_w = fds[1];
    return WH_OK;
}

static void
pipe_put(wh_relay_dir_t *d)
{
    if (d->pipe_r == -1) {
        return;
    }
    if (d->in_pipe == 0 && pipe_pool_n < WH_PIPE_POOL) {
        pipe_pool[pipe_pool_n][0] = d->pipe_r;
        pipe_pool[pipe_pool_n][1] = d->pipe_w;
        pipe_pool_n++;
    } else {
        close(d->pipe_r);
        close(d->pipe_w);
    }
    d->pipe_r = d->pipe_w = -1;
    d->in_pipe = 0;
}

static void
access_log(wh_relay_t *r, int cause)
{
    wh_listener_t *ls = r->live.ls;
    const wh_access_facts_t *f = r->facts;

    wh_access_log_write(ls->access_log, &(wh_access_rec_t) {
        .listener = ls->tag, .network = ls->module->name, .peer = &r->peer.sa, .facts = f,
        .upstream = r->member != NULL ? r->member->text : NULL,
        .start = f->start > 0 ? f->start : r->started, .end = ev_now(wh_loop),
        .connect_time = r->connect_time, .bytes_sent = r->bytes[DOWN],
        .bytes_received = r->bytes[UP], .cause = cause });
}

void
wh_relay_log_refused(wh_listener_t *ls, const struct sockaddr *peer,
                     const wh_access_facts_t *facts, double start, int cause)
{
    if (ls == NULL || ls->access_log == NULL) {
        return;
    }
    wh_access_log_write(ls->access_log, &(wh_access_rec_t) {
        .listener = ls->tag, .network = ls->module->name, .peer = peer, .facts = facts,
        .start = start > 0 ? start : ev_now(wh_loop), .end = ev_now(wh_loop),
        .connect_time = -1, .cause = cause, .refused = 1 });
}

static void
relay_close(wh_relay_t *r, int cause)
{
    wh_log_ctx_t ctx;
    int i;

    wh_log_ctx(WH_LOG_INFO, relay_ctx(r, &ctx, 1),
               "stream closed (%s) after %.3fs, %llu bytes up, %llu down",
               wh_close_cause_names[cause], ev_now(wh_loop) - r->started,
               (unsigned long long) r->bytes[UP], (unsigned long long) r->bytes[DOWN]);
    if (r->facts != NULL) {
        access_log(r, cause);
    }
    for (i = 0; i < 2; i++) {
        free(r->dir[i].stash);
        pipe_put(&r->dir[i]);
    }
    free(r->linger);
    ev_timer_stop(wh_loop, &r->timer);
    wh_post_cancel(&r->posted);
    wh_stream_close(r->client);
    if (r->upstream != NULL) wh_stream_close(r->upstream);
    *r->prev = r->next;
    if (r->next != NULL) r->next->prev = r->prev;
    wh_live_close(&r->live, cause);
    free(r);
}

static void
set_timeout(wh_relay_t *r, ev_tstamp timeout)
{
    r->timeout = timeout;
    r->last_active = ev_now(wh_loop);
    r->timer.repeat = timeout;
    ev_timer_again(wh_loop, &r->timer);
}

/* The upstream ended and the client was told (spec 1.2): V2Ray's server
 * waits uplinkOnly and closes, which loses what a slow client has not
 * taken yet (a websocket client drops what it buffers on the close frame).
 * So the wait starts only when the client has taken every byte, as far as
 * its stream can tell (acknowledged below; a websocket's reader answered
 * a ping sent after them, ws_lacks), and its receive window has stopped
 * growing back; every change counts as activity. What the client then
 * holds between its reader and its application (a V2Ray client's pipe)
 * is invisible, so a client that fell behind also gets the time to pass
 * that on, at the rate it took its backlog (behind()): a rate that counts
 * the time its reader spent on what its socket held, so it errs slow,
 * which costs only a later end. A client that takes nothing for connIdle
 * is closed as idle; a client that ends first ends the stream at once
 * (direction_done). */
static ev_tstamp
behind(const wh_relay_linger_t *l)
{
    if (l->backlog < WH_LINGER_SLOW) {
        return 0;                           /* it kept up */
    }
    return WH_CLIENT_HOLD / (l->backlog / wh_max(l->acked - l->began, 0.001));
}

static void
linger(wh_relay_t *r)
{
    ev_tstamp now = ev_now(wh_loop), limit, left;
    wh_relay_linger_t *l = r->linger;
    wh_stream_flow_t f;

    if (wh_stream_flow(r->client, &f) != WH_OK) {
        relay_close(r, WH_CLOSE_DONE);
        return;
    }
    if (f.unacked != l->flow.unacked || f.window != l->flow.window) {
        l->flow = f;
        r->last_active = now;
    }
    if (f.unacked == 0 && l->acked == 0) {
        l->acked = now;
    }
    limit = r->live.ls->cycle->policy.conn_idle;
    if (f.unacked == 0) {
        limit = wh_min(limit, r->live.ls->cycle->policy.uplink_only + behind(l));
    }
    left = r->last_active + limit - now;
    if (left <= 0) {
        relay_close(r, f.unacked == 0 ? WH_CLOSE_DONE : WH_CLOSE_TIMEOUT);
        return;
    }
    r->timer.repeat = wh_min(left, WH_LINGER_POLL);
    ev_timer_again(wh_loop, &r->timer);
}

/* The first look at the client waits a poll: most clients end their side
 * within it (direction_done), and those cost no look at their socket. */
static void
linger_start(wh_relay_t *r)
{
    r->lingering = 1;
    r->timer.repeat = WH_LINGER_POLL;     /* not linger(): we are inside pump() */
    ev_timer_again(wh_loop, &r->timer);
}

static void
linger_first(wh_relay_t *r)
{
    wh_stream_flow_t f;
    wh_relay_linger_t *l;

    if (wh_stream_flow(r->client, &f) != WH_OK
        || (l = calloc(1, sizeof(*l))) == NULL)
    {
        set_timeout(r, r->live.ls->cycle->policy.uplink_only);       /* as V2Ray does */
        return;
    }
    l->flow = f;
    l->backlog = f.unacked;
    l->began = r->last_active = ev_now(wh_loop);
    r->linger = l;
    linger(r);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    wh_relay_t *r = w->data;
    ev_tstamp left = r->last_active + r->timeout - ev_now(loop);
    wh_log_ctx_t ctx;

    if (r->linger != NULL) {
        linger(r);
        return;
    }
    if (r->lingering) {
        r->lingering = 0;
        linger_first(r);
        return;
    }

    if (left > 0) {
        w->repeat = left;
        ev_timer_again(loop, w);
        return;
    }
    if (r->connecting) {
        wh_log_ctx(WH_LOG_ERROR, relay_ctx(r, &ctx, 0), "upstream %s timed out connecting",
                   r->member->text);
        connect_failed(r);
    } else if (r->dir[UP].eof || r->dir[DOWN].eof) {
        relay_close(r, WH_CLOSE_DONE);     /* one side finished, the other idled out */
    } else {
        relay_close(r, WH_CLOSE_TIMEOUT);
    }
}

/* An error on side s: the client's are the client's doing, the upstream's
 * are counted against the upstream. */
static int
side_error(wh_relay_t *r, wh_stream_t *s)
{
    if (s == r->upstream) {
        wh_log_ctx_t ctx;

        wh_log_ctx(WH_LOG_ERROR, relay_ctx(r, &ctx, 0), "upstream %s: %s",
                   r->member->text, s->err ? s->err : strerror(errno));
        return WH_CLOSE_UPSTREAM;
    }
    return s->err == wh_err_bad_input ? WH_CLOSE_BAD_INPUT
           : s->err == wh_err_timeout ? WH_CLOSE_TIMEOUT : WH_CLOSE_ERROR;
}

static int
finished(const wh_relay_dir_t *dir)
{
    return dir->eof && dir->shut && dir->stash_len == 0 && dir->in_pipe == 0;
}

/* The direction's source ended and its destination was told. */
static int
direction_done(wh_relay_t *r, int d)
{
    if (finished(&r->dir[!d])) {
        return WH_CLOSE_DONE;
    }
    if (d == UP) {
        set_timeout(r, r->live.ls->cycle->policy.downlink_only);
    } else {
        linger_start(r);
    }
    return KEEP_GOING;
}

static void
count_bytes(wh_relay_t *r, int d, size_t n)
{
    r->bytes[d] += n;
    if (d == UP) {
        wh_stats_add(r->live.ls->stats->bytes_up, n);
    } else {
        wh_stats_add(r->live.ls->stats->bytes_down, n);
    }
    r->last_active = ev_now(wh_loop);
}

#ifdef WH_HAVE_SPLICE
/* One splice round: drain the pipe into dst, then refill it from src. */
static int
pump_splice(wh_relay_t *r, int d, wh_stream_t *src, wh_stream_t *dst, int sfd, int dfd)
{
    wh_relay_dir_t *dir = &r->dir[d];
    ssize_t n;

    if (dir->in_pipe > 0) {
        n = splice(dir->pipe_r, NULL, dfd, NULL, dir->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n == -1) {
            if (errno == EAGAIN) {
                wh_stream_wait(dst, WH_EV_WRITE);
                return WH_AGAIN;
            }
            dst->err = errno == EPIPE || errno == ECONNRESET ? wh_err_closed : wh_err_io;
            return side_error(r, dst);
        }
        dir->in_pipe -= n;
        return KEEP_GOING;
    }
    if (pipe_get(dir) != WH_OK) {
        wh_log(WH_LOG_ERROR, "pipe2() failed (%s)", strerror(errno));
        return WH_CLOSE_ERROR;
    }
    n = splice(sfd, NULL, dir->pipe_w, NULL, WH_RELAY_CHUNK, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
        dir->in_pipe = n;
        count_bytes(r, d, n);
        return KEEP_GOING;
    }
    pipe_put(dir);
    if (n == 0) {
        dir->eof = 1;
        return KEEP_GOING;
    }
    if (errno == EAGAIN) {
        wh_stream_wait(src, WH_EV_READ);
        return WH_AGAIN;
    }
    src->err = errno == ECONNRESET ? wh_err_closed : wh_err_io;
    return side_error(r, src);
}
#endif

/* One copy round: flush the stash, else read a chunk and write it on. */
static int
pump_copy(wh_relay_t *r, int d, wh_stream_t *src, wh_stream_t *dst)
{
    wh_relay_dir_t *dir = &r->dir[d];
    ssize_t n, w;

    if (dir->stash_len > 0) {
        w = wh_stream_write(dst, dir->stash + dir->stash_pos, dir->stash_len);
        if (w == WH_AGAIN) return WH_AGAIN;
        if (w < 0) return side_error(r, dst);
        dir->stash_pos += w;
        dir->stash_len -= w;
        if (dir->stash_len > 0) return WH_AGAIN;     /* dst promised on_writable */
        free(dir->stash);
        dir->stash = NULL;
        dir->stash_pos = 0;
        return KEEP_GOING;
    }

    n = wh_stream_read(src, scratch, dir->big ? WH_RELAY_BIG : WH_RELAY_CHUNK);
    if (n == WH_AGAIN) return WH_AGAIN;
    if (n < 0) return side_error(r, src);
    if (n == 0) {
        dir->eof = 1;
        return KEEP_GOING;
    }
    count_bytes(r, d, n);
    if (n >= WH_RELAY_CHUNK) dir->bulk = 1;

    w = wh_stream_write(dst, scratch, n);
    if (w == WH_AGAIN) w = 0;
    if (w < 0) return side_error(r, dst);
    dir->big = n >= WH_RELAY_CHUNK && w == n;
    if (w < n) {
        dir->stash = malloc(n - w);
        if (dir->stash == NULL) {
            wh_log_ctx_t ctx;

            wh_log_ctx(WH_LOG_ERROR, relay_ctx(r, &ctx, 0), "out of memory for a relay buffer");
            return WH_CLOSE_ERROR;
        }
        memcpy(dir->stash, scratch + w, n - w);
        dir->stash_len = n - w;
        return WH_AGAIN;
    }
    return KEEP_GOING;
}

/* Moves bytes in direction d until a side has to wait. Returns a close
 * cause, or KEEP_GOING. */
static int
pump(wh_relay_t *r, int d)
{
    wh_relay_dir_t *dir = &r->dir[d];
    wh_stream_t *src = d == UP ? r->client : r->upstream;
    wh_stream_t *dst = d == UP ? r->upstream : r->client;
    int budget = WH_RELAY_BUDGET, rc;
#ifdef WH_HAVE_SPLICE
    int sfd, dfd;
#endif

    if (r->connecting) {
        return KEEP_GOING;
    }
    for (;;) {
        if (dir->eof && dir->stash_len == 0 && dir->in_pipe == 0) {
            if (dir->shut) return KEEP_GOING;
            dir->shut = 1;
            /* when the other direction is over, the close about to come
             * ends a socket as a shutdown would: one call less on every
             * stream. An upstream is a socket; a client above one (TLS, a
             * websocket, an HTTP/2 stream) has its own end to send. */
            if ((!finished(&r->dir[!d]) || (d == DOWN && wh_stream_splice_fd(dst) == -1))
                && wh_stream_shutdown_write(dst) != WH_OK)
            {
                return side_error(r, dst);
            }
            return direction_done(r, d);
        }
        if (budget <= 0) {
            r->posted_dirs |= 1 << d;
            wh_post(&r->posted);
            return KEEP_GOING;
        }
        budget -= dir->big ? WH_RELAY_BIG / WH_RELAY_CHUNK : 1;
#ifdef WH_HAVE_SPLICE
        if (dir->bulk && dir->stash_len == 0 && (sfd = wh_stream_splice_fd(src)) != -1
            && (dfd = wh_stream_splice_fd(dst)) != -1)
        {
            rc = pump_splice(r, d, src, dst, sfd, dfd);
        } else
#endif
        if (dir->in_pipe > 0) {
            /* cannot happen: a side stops being spliceable only on error */
            return WH_CLOSE_ERROR;
        } else {
            rc = pump_copy(r, d, src, dst);
        }
        if (rc == WH_AGAIN) return KEEP_GOING;
        if (rc != KEEP_GOING) return rc;
    }
}

static void
run(wh_relay_t *r, int d)
{
    int rc = pump(r, d);

    if (rc != KEEP_GOING) {
        relay_close(r, rc);
    }
}

static void
connected(wh_relay_t *r)
{
    int rc;

    r->connecting = 0;
    r->connect_time = ev_now(wh_loop) - r->dialled;
    wh_upstream_connected(r->member);
    set_timeout(r, r->live.ls->cycle->policy.conn_idle);
    rc = pump(r, UP);
    if (rc != KEEP_GOING) {
        relay_close(r, rc);
        return;
    }
    /* An upstream that has just connected has rarely said anything yet
     * (it is answering the head just written, if at all): its wait says
     * when it has, where a read now would mostly find nothing. */
    wh_stream_wait(r->upstream, WH_EV_READ);
}

static void
client_readable(wh_stream_t *s)
{
    run(s->data, UP);
}

static void
client_writable(wh_stream_t *s)
{
    run(s->data, DOWN);
}

static void
upstream_readable(wh_stream_t *s)
{
    run(s->data, DOWN);
}

static void
upstream_writable(wh_stream_t *s)
{
    wh_relay_t *r = s->data;

    if (!r->connecting) {
        run(r, UP);
    } else if (s->err != NULL) {
        wh_log_ctx_t ctx;

        wh_log_ctx(WH_LOG_ERROR, relay_ctx(r, &ctx, 0), "connect() to upstream %s failed (%s)",
                   r->member->text, s->err);
        connect_failed(r);
    } else {
        connected(r);
    }
}

static void
posted_cb(wh_posted_t *ev)
{
    wh_relay_t *r = wh_container_of(ev, wh_relay_t, posted);
    int dirs = r->posted_dirs, rc = KEEP_GOING;

    r->posted_dirs = 0;
    if (dirs & (1 << UP)) rc = pump(r, UP);
    if (rc == KEEP_GOING && (dirs & (1 << DOWN))) rc = pump(r, DOWN);
    if (rc != KEEP_GOING) relay_close(r, rc);
}

/* Dials the next member of the group within what is left of
 * policy.handshake, or closes the relay when no member or no time is left. */
static void
connect_next(wh_relay_t *r)
{
    wh_upstream_conf_t *u = r->group;
    ev_tstamp now = ev_now(wh_loop);
    ev_tstamp left = r->started + r->live.ls->cycle->policy.handshake - now;
    wh_upstream_member_t *m;
    wh_log_ctx_t ctx;
    const char *err;
    int now_connected;

    while (left > 0 && (m = wh_upstream_pick(u, &r->tried, now)) != NULL) {
        r->member = m;
        r->dialled = now;
        r->upstream = wh_upstream_connect(u, m, &now_connected, &err);
        if (r->upstream != NULL) {
            r->upstream->data = r;
            r->upstream->on_readable = upstream_readable;
            r->upstream->on_writable = upstream_writable;
            if (now_connected) {
                connected(r);
                return;
            }
            /* this one and those not tried yet share what is left */
            set_timeout(r, left / (u->nmembers - __builtin_popcountll(r->tried) + 1));
            wh_stream_wait(r->upstream, WH_EV_WRITE);
            return;
        }
        wh_log_ctx(WH_LOG_ERROR, relay_ctx(r, &ctx, 0), "connect() to upstream %s failed (%s)",
                   m->text, err);
        wh_upstream_failed(u, m, now);
    }
    relay_close(r, WH_CLOSE_UPSTREAM);
}

static void
connect_failed(wh_relay_t *r)
{
    wh_upstream_failed(r->group, r->member, ev_now(wh_loop));
    wh_stream_close(r->upstream);
    r->upstream = NULL;
    connect_next(r);
}

/* The address the client connected to: its socket's; for a stream on a
 * connection (HTTP/2, QUIC, mKCP) the listener's, which for a wildcard
 * bind is the wildcard (what getsockname() of a UDP socket bound so says). */
static const struct sockaddr *
client_local(wh_relay_t *r, wh_stream_t *client, struct sockaddr_storage *ss)
{
    socklen_t len;

    if (wh_sock_stream_local(client, ss, &len) == WH_OK) {
        return (const struct sockaddr *) ss;
    }
    return (const struct sockaddr *) &r->live.ls->addr.sa;
}

/* The PROXY header and the replayed bytes into the up direction's stash. */
static int
stash_head(wh_relay_t *r, const wh_dest_t *dest, wh_stream_t *client, const void *replay,
           size_t replay_len)
{
    uint8_t head[WH_PROXY_HEADER_MAX];
    struct sockaddr_storage local;
    wh_relay_dir_t *up = &r->dir[UP];
    size_t n = 0;

    if (dest->xver != 0) {
        n = wh_proxy_encode(dest->xver, &r->peer.sa, client_local(r, client, &local), head);
    }
    if (n + replay_len == 0) {
        return WH_OK;
    }
    up->stash = malloc(n + replay_len);
    if (up->stash == NULL) {
        return WH_ERROR;
    }
    memcpy(up->stash, head, n);
    if (replay_len > 0) {
        memcpy(up->stash + n, replay, replay_len);
        count_bytes(r, UP, replay_len);
    }
    up->stash_len = n + replay_len;
    return WH_OK;
}

void
wh_relay_start(wh_live_t *live, const wh_dest_t *dest, wh_stream_t *client,
               const struct sockaddr *peer, socklen_t peerlen, const void *replay,
               size_t replay_len, const wh_access_facts_t *facts)
{
    wh_listener_t *ls = live->ls;
    wh_relay_t *r;
    wh_log_ctx_t ctx;

    /* the access log's facts live in the relay's own allocation */
    r = calloc(1, sizeof(*r) + (ls->access_log != NULL ? sizeof(wh_access_facts_t) : 0));
    if (r == NULL) {
        wh_log_ctx(WH_LOG_ERROR, &(wh_log_ctx_t) { .listener = ls->tag, .client = peer,
                                                    .clientlen = peerlen },
                   "out of memory for a relay");
        wh_stream_close(client);
        wh_live_close(live, WH_CLOSE_ERROR);
        return;
    }
    r->peerlen = wh_min(peerlen, (socklen_t) sizeof(r->peer));
    memcpy(&r->peer, peer, r->peerlen);
    r->connect_time = -1;
    if (ls->access_log != NULL) {
        r->facts = (wh_access_facts_t *) (r + 1);
        if (facts != NULL) *r->facts = *facts;
    }

    wh_live_move(&r->live, live);
    r->client = client;
    r->group = dest->upstream;
    r->dir[UP].pipe_r = r->dir[UP].pipe_w = -1;
    r->dir[DOWN].pipe_r = r->dir[DOWN].pipe_w = -1;
    r->posted.handler = posted_cb;
    r->connecting = 1;
    r->started = ev_now(wh_loop);

    client->data = r;
    client->on_readable = client_readable;
    client->on_writable = client_writable;

    r->next = relays;
    r->prev = &relays;
    if (relays != NULL) relays->prev = &r->next;
    relays = r;

    ev_init(&r->timer, timer_cb);
    r->timer.data = r;

    if (wh_log_level >= WH_LOG_DEBUG) {
        wh_log_ctx(WH_LOG_DEBUG, relay_ctx(r, &ctx, 0), "stream accepted");
    }
    if (stash_head(r, dest, client, replay, replay_len) != WH_OK) {
        wh_log_ctx(WH_LOG_ERROR, relay_ctx(r, &ctx, 0), "out of memory for a relay buffer");
        relay_close(r, WH_CLOSE_ERROR);
        return;
    }
    /* A client whose bytes are all in its socket is waited on from here:
     * a handshake that has just stopped waiting on it hands the wait on
     * within this callback, for libev no change, where waiting anew after
     * the connect cost an epoll_ctl(2) that failed (EEXIST). Whether the
     * first pump after the connect reads it for nothing is the socket
     * stream's to know (its last read was short). */
    if (wh_stream_splice_fd(client) != -1) {
        wh_stream_wait(client, WH_EV_READ);
    }
    connect_next(r);
}

void
wh_relay_close_all(int cause)
{
    while (relays != NULL) {
        relay_close(relays, cause);
    }
}

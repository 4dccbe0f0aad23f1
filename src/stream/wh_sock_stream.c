/*
 * wh_sock_stream.c -- the socket stream (see wh_sock_stream.h).
 *
 * One ev_io per stream whose event mask is exactly what the relay waits for:
 * a notification clears its bit (one-shot, as the seam promises), and the
 * watcher is re-armed only when the mask changes, so the common cycle
 * "readable -> read until EAGAIN -> wait again" costs no epoll_ctl(2).
 * A connect in progress is the write wait: its completion is the first
 * writable event, checked with SO_ERROR.
 *
 * A read that returns less than was asked for has emptied the socket, so
 * the next read waits for the readable event instead of asking the kernel
 * only to hear EAGAIN (nginx's habit): one call less per message on
 * request/response traffic. The poll is level-triggered, so bytes that
 * came in between are reported at once and nothing waits longer. A
 * readable event that one poll reported for bytes a read in the same loop
 * iteration has already taken (the upstream's connect, handled first,
 * read the request) is stale: it is left to the next poll, which reports
 * the socket again if anything came since.
 *
 * A client that streams (wh_coalesce.h) would otherwise wake the worker
 * once per write it makes: a V2Ray client uploading through a WebSocket
 * writes a few KiB at a time, and the wake-ups, not the bytes, are then
 * most of the cost. Such a client's socket gets a receive low-water mark
 * (SO_RCVLOWAT), so the poll reports it once a batch is queued, and the
 * timer (receive_coalesce) reads what is there when the batch does not
 * fill in time; a pause clears the mark. End of stream, an error or a
 * nearly closed window are reported at once, whatever the mark.
 */
#include "wh_sock_stream.h"
#include "wh_coalesce.h"
#include "wh_event.h"
#include "wh_filter.h"

#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    wh_stream_t s;
    ev_io io;
    int fd;
    uint8_t want;           /* WH_EV_* the relay waits for */
    uint8_t connecting;
    uint32_t drained;       /* the last read was short: empty until readable; the
                             * loop iteration it was in, plus one */
    wh_coalesce_t co;       /* on: SO_RCVLOWAT is set */
} wh_sock_stream_t;

static void deliver(wh_sock_stream_t *ss, int revents, int polled);

static void
set_lowat(wh_sock_stream_t *ss, int on)
{
    int v = 1, rcvbuf;
    socklen_t len = sizeof(rcvbuf);

    /* under a quarter of the buffer, the kernel neither grows the buffer
     * for the mark nor clamps the advertised window to it */
    if (on && getsockopt(ss->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len) == 0) {
        v = wh_min(WH_COALESCE_LOWAT, rcvbuf / 4);
    }
    if (setsockopt(ss->fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)) == -1) {
        wh_coalesce_delay(&ss->co, 0);
        on = 0;
    }
    if (on) {
        ss->co.on = 1;
    } else {
        wh_coalesce_stop(&ss->co);
    }
}

/* Less than a batch came in time: read what there is now; a pause also
 * clears the mark. */
static void
flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    wh_sock_stream_t *ss = w->data;
    int queued;

    if (ioctl(ss->fd, FIONREAD, &queued) == -1) queued = 0;
    if (!wh_coalesce_expired(&ss->co, (size_t) wh_max(queued, 0))) set_lowat(ss, 0);
    ss->drained = 0;
    deliver(ss, EV_READ, 0);
}

static void
sync_watcher(wh_sock_stream_t *ss)
{
    int events = ((ss->want & WH_EV_READ) ? EV_READ : 0)
                 | ((ss->want & WH_EV_WRITE) || ss->connecting ? EV_WRITE : 0);

    if (events == 0) {
        if (ev_is_active(&ss->io)) ev_io_stop(wh_loop, &ss->io);
        return;
    }
    if ((ss->io.events & (EV_READ | EV_WRITE)) != events) {
        if (ev_is_active(&ss->io)) ev_io_stop(wh_loop, &ss->io);
        ev_io_modify(&ss->io, events);
    }
    if (!ev_is_active(&ss->io)) ev_io_start(wh_loop, &ss->io);
}

static void
ready_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    deliver(w->data, revents, 1);
}

/* served in the poll's order (wh_ready()) */
static void
io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    wh_ready(w, revents, ready_cb);
}

/* revents for the relay; polled: the poll reported them (not the timer) */
static void
deliver(wh_sock_stream_t *ss, int revents, int polled)
{
    struct ev_loop *loop = wh_loop;
    int events = 0;

    if (ss->connecting && (revents & EV_WRITE)) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(ss->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        ss->connecting = 0;
        if (err != 0) {
            /* the reason itself: errno is long gone when it is logged */
            ss->s.err = strerror(err);
            events = ss->want;          /* whoever waits learns of it */
        }
    }
    if ((revents & EV_READ) && ss->drained == ev_iteration(loop) + 1) {
        revents &= ~EV_READ;        /* stale (see the top of the file) */
    }
    if (revents & EV_READ) {
        ss->drained = 0;
        if (polled && ev_is_active(&ss->co.timer)) wh_coalesce_batch(&ss->co);
    }
    if ((revents & EV_READ) && (ss->want & WH_EV_READ)) events |= WH_EV_READ;
    if ((revents & EV_WRITE) && (ss->want & WH_EV_WRITE)) events |= WH_EV_WRITE;
    ss->want &= ~events;

    ss->s.refs++;
    wh_stream_notify(&ss->s, events);
    if (--ss->s.refs == 0 && ss->s.closed) {
        ss->s.ops->destroy(&ss->s);
        return;
    }
    if (!ss->s.closed) sync_watcher(ss);
}

static void
sock_wait(wh_stream_t *s, int events)
{
    wh_sock_stream_t *ss = wh_stream_impl(s, wh_sock_stream_t);

    ss->want |= events;
    if ((events & WH_EV_READ) && ss->co.on) wh_coalesce_wait(&ss->co);
    sync_watcher(ss);
}

static ssize_t
sock_read(wh_stream_t *s, void *buf, size_t size)
{
    wh_sock_stream_t *ss = wh_stream_impl(s, wh_sock_stream_t);
    ssize_t n;

    if (s->err) return WH_ERROR;
    if (ss->connecting || ss->drained) {
        sock_wait(s, WH_EV_READ);
        return WH_AGAIN;
    }
    do {
        n = recv(ss->fd, buf, size, 0);
    } while (n == -1 && errno == EINTR);
    if (n > 0) {
        ss->drained = (size_t) n < size ? ev_iteration(wh_loop) + 1 : 0;
        if (wh_coalesce_read(&ss->co, n, size)) set_lowat(ss, 1);
        return n;
    }
    if (n == 0) return 0;
    if (errno == EAGAIN) {
        sock_wait(s, WH_EV_READ);
        return WH_AGAIN;
    }
    s->err = errno == ECONNRESET ? wh_err_closed : wh_err_io;
    return WH_ERROR;
}

/* What a send says, for write and writev: the count, WH_AGAIN, WH_ERROR. */
static ssize_t
sock_sent(wh_stream_t *s, ssize_t n, size_t size)
{
    if (n >= 0) {
        if ((size_t) n < size) sock_wait(s, WH_EV_WRITE);
        return n;
    }
    if (errno == EAGAIN) {
        sock_wait(s, WH_EV_WRITE);
        return WH_AGAIN;
    }
    s->err = (errno == ECONNRESET || errno == EPIPE) ? wh_err_closed : wh_err_io;
    return WH_ERROR;
}

static ssize_t
sock_write(wh_stream_t *s, const void *buf, size_t size)
{
    wh_sock_stream_t *ss = wh_stream_impl(s, wh_sock_stream_t);
    ssize_t n;

    if (s->err) return WH_ERROR;
    if (ss->connecting) {
        sock_wait(s, WH_EV_WRITE);
        return WH_AGAIN;
    }
    do {
        n = send(ss->fd, buf, size, MSG_NOSIGNAL);
    } while (n == -1 && errno == EINTR);
    return sock_sent(s, n, size);
}

/* a framing layer's headers and the relay's bytes in one sendmsg(2) */
static ssize_t
sock_writev(wh_stream_t *s, const struct iovec *iov, int iovcnt)
{
    wh_sock_stream_t *ss = wh_stream_impl(s, wh_sock_stream_t);
    struct msghdr msg = { .msg_iov = (struct iovec *) iov, .msg_iovlen = (size_t) iovcnt };
    ssize_t n;

    if (s->err || ss->connecting) return sock_write(s, NULL, 0);   /* a write's answer */
    do {
        n = sendmsg(ss->fd, &msg, MSG_NOSIGNAL);
    } while (n == -1 && errno == EINTR);
    return sock_sent(s, n, wh_iov_len(iov, iovcnt));
}

static int
sock_shutdown_write(wh_stream_t *s)
{
    wh_sock_stream_t *ss = wh_stream_impl(s, wh_sock_stream_t);

    if (shutdown(ss->fd, SHUT_WR) == -1 && errno != ENOTCONN) {
        s->err = wh_err_io;
        return WH_ERROR;
    }
    return WH_OK;
}

static int
sock_splice_fd(wh_stream_t *s)
{
    wh_sock_stream_t *ss = wh_stream_impl(s, wh_sock_stream_t);

    return (ss->connecting || s->err) ? -1 : ss->fd;
}

/* SIOCOUTQ counts what the peer has not acknowledged (a unix socket: not
 * read); TCP_INFO gives the window the peer last advertised. */
static int
sock_flow(wh_stream_t *s, wh_stream_flow_t *f)
{
    wh_sock_stream_t *ss = wh_stream_impl(s, wh_sock_stream_t);
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    int outq;

    if (ss->connecting || ioctl(ss->fd, SIOCOUTQ, &outq) == -1) {
        return WH_DECLINED;
    }
    f->unacked = outq > 0 ? (uint64_t) outq : 0;
    f->window = 0;
    if (getsockopt(ss->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0
        && len >= offsetof(struct tcp_info, tcpi_snd_wnd) + sizeof(ti.tcpi_snd_wnd))
    {
        f->window = ti.tcpi_snd_wnd;
    }
    return WH_OK;
}

static void
sock_destroy(wh_stream_t *s)
{
    wh_sock_stream_t *ss = wh_stream_impl(s, wh_sock_stream_t);

    if (ev_is_active(&ss->io)) ev_io_stop(wh_loop, &ss->io);
    wh_ready_cancel(&ss->io);
    wh_coalesce_stop(&ss->co);
    close(ss->fd);
    free(ss);
}

static const wh_stream_ops_t sock_ops = {
    .name = "socket",
    .read = sock_read,
    .write = sock_write,
    .writev = sock_writev,
    .shutdown_write = sock_shutdown_write,
    .wait = sock_wait,
    .splice_fd = sock_splice_fd,
    .flow = sock_flow,
    .destroy = sock_destroy,
};

wh_stream_t *
wh_sock_stream_create(int fd, int connecting)
{
    wh_sock_stream_t *ss = calloc(1, sizeof(*ss));

    if (ss == NULL) {
        return NULL;
    }
    ss->s.ops = &sock_ops;
    ss->fd = fd;
    ss->connecting = connecting;
    ev_io_init(&ss->io, io_cb, fd, 0);
    ss->io.data = ss;
    wh_coalesce_init(&ss->co, flush_cb, ss);
    if (connecting) sync_watcher(ss);
    return &ss->s;
}

void
wh_sock_stream_coalesce(wh_stream_t *s, double delay)
{
    if (s->ops == &sock_ops) {
        wh_coalesce_delay(&wh_stream_impl(s, wh_sock_stream_t)->co, delay);
    }
}

int
wh_sock_stream_local(wh_stream_t *s, struct sockaddr_storage *ss, socklen_t *len)
{
    /* every filter is destroyed by the base, which owns its lower stream */
    while (s->ops->destroy == wh_filter_destroy) {
        s = wh_filter_of(s)->lower;
    }
    if (s->ops != &sock_ops) {
        return WH_DECLINED;
    }
    *len = sizeof(*ss);
    return getsockname(wh_stream_impl(s, wh_sock_stream_t)->fd, (struct sockaddr *) ss, len) == 0
           ? WH_OK : WH_DECLINED;
}

/*
 * wh_udp.c -- UDP sockets, datagram dispatch and hand-over for the UDP
 * transports (the design is in wh_udp.h).
 *
 * Reading uses recvmmsg(2) into one per-worker batch of buffers: a
 * transport handles each datagram synchronously and keeps nothing of the
 * buffer, so a worker needs no per-session receive memory. The mailbox
 * carries a small header (listener address, peer address) and the
 * datagram; the owner finds its listener by address, since the listener
 * of the old configuration may carry another tag.
 *
 * A QUIC client that uploads sends a full packet at a time, and a worker
 * faster than it wakes for each one or two: a wake-up, a recvmmsg(2) and
 * an acknowledgement per packet or so, most of the cost of the upload.
 * Such a socket is held (receive_coalesce, wh_coalesce.h): not polled,
 * but read once per delay, a few dozen packets a time, acknowledged
 * together. A hold that finds more than a wake-up reads ends (the client
 * outruns the delay, and waiting would overflow the buffer); one that
 * finds a pause ends too. Small packets (acknowledgements, requests)
 * never count as evidence, so downloads and request/response traffic are
 * not held.
 */
#include "wh_udp.h"
#include "wh_udp_route.h"
#include "wh_coalesce.h"
#include "wh_event.h"
#include "wh_log.h"

#include <netinet/in.h>
#ifdef WH_HAVE_LINUX_UDP_H
#include <linux/udp.h>          /* UDP_SEGMENT, which this libc lacks */
#define SOL_UDP IPPROTO_UDP
#else
#include <netinet/udp.h>
#endif
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define WH_UDP_BATCH      32
#define WH_UDP_ROUTES     (1u << 18)            /* 4 MiB of shared memory */
#define WH_UDP_SOCKBUF    (4 << 20)
#define WH_UDP_GSO_MAX    64

typedef struct {
    wh_sockaddr_t listener;
    wh_sockaddr_t peer;
    wh_udp_local_t local;
} wh_udp_mail_t;

/* room for IP_PKTINFO or IPV6_PKTINFO, and UDP_SEGMENT */
#define WH_UDP_CTL_SIZE (CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(uint16_t)))

typedef struct {
    ev_io io;
    wh_coalesce_t co;           /* on: read by the timer, not polled */
    wh_listener_t *ls;
} wh_udp_reader_t;

typedef struct {
    wh_listener_t *ls;
    wh_udp_reader_t *reads;     /* this worker's share of ls->fds */
    int nreads;
    int send_fd;
    int wildcard;               /* bound to 0.0.0.0 or ::: replies need IP_PKTINFO */
} wh_udp_listener_t;

static wh_udp_routes_t routes;
#ifdef WH_HAVE_UDP_SEGMENT
static int gso_off;                             /* the kernel refused UDP_SEGMENT */
#endif

/* this worker; until wh_udp_start (the master), none with a mailbox */
static const wh_worker_ctx_t no_worker = { .count = 1, .mailbox = -1 };
static const wh_worker_ctx_t *worker = &no_worker;

static ev_io mailbox_io;
static wh_cycle_t *mail_cycle;

static uint8_t batch_buf[WH_UDP_BATCH][WH_UDP_MAX_DATAGRAM + sizeof(wh_udp_mail_t)];
static union {
    char buf[WH_UDP_CTL_SIZE];
    struct cmsghdr align;
} batch_ctl[WH_UDP_BATCH];

static int
is_wildcard(const wh_sockaddr_t *a)
{
    if (a->sa.ss_family == AF_INET) {
        return ((const struct sockaddr_in *) &a->sa)->sin_addr.s_addr == htonl(INADDR_ANY);
    }
    return a->sa.ss_family == AF_INET6
           && IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *) &a->sa)->sin6_addr);
}

/* The destination address of a datagram read on a wildcard socket. */
static void
get_local(struct msghdr *msg, wh_udp_local_t *local)
{
    struct cmsghdr *cm;

    local->family = 0;
    for (cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
            local->family = AF_INET;
            local->addr.v4 = pi.ipi_addr;
            local->ifindex = 0;     /* the route decides the way out */
        } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
            local->family = AF_INET6;
            local->addr.v6 = pi.ipi6_addr;
            local->ifindex = (int) pi.ipi6_ifindex;     /* link-local needs it */
        }
    }
}

/* Appends the source address to msg's control data (at msg_controllen). */
static void
put_local(struct msghdr *msg, const wh_udp_local_t *local)
{
    struct cmsghdr *cm;

    if (local == NULL || local->family == 0) {
        return;
    }
    cm = (struct cmsghdr *) ((char *) msg->msg_control + msg->msg_controllen);
    if (local->family == AF_INET) {
        struct in_pktinfo pi;
        memset(&pi, 0, sizeof(pi));
        pi.ipi_spec_dst = local->addr.v4;
        cm->cmsg_level = IPPROTO_IP;
        cm->cmsg_type = IP_PKTINFO;
        cm->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
        msg->msg_controllen += CMSG_SPACE(sizeof(pi));
    } else {
        struct in6_pktinfo pi;
        memset(&pi, 0, sizeof(pi));
        pi.ipi6_addr = local->addr.v6;
        pi.ipi6_ifindex = (unsigned) local->ifindex;
        cm->cmsg_level = IPPROTO_IPV6;
        cm->cmsg_type = IPV6_PKTINFO;
        cm->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
        msg->msg_controllen += CMSG_SPACE(sizeof(pi));
    }
}

/* The table lives in a memfd rather than an anonymous mapping so that a
 * binary upgrade can hand it to the new master (wh_udp_routes_export):
 * the new workers then find the sessions the old ones own. */
static int routes_fd = -1;

/* fd -1: an anonymous mapping, which no other binary can get */
static int
map_routes(int fd)
{
    size_t size = WH_UDP_ROUTES * sizeof(wh_udp_route_t);
    void *p;

    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | (fd == -1 ? MAP_ANONYMOUS : 0),
             fd, 0);
    if (p == MAP_FAILED) {
        wh_log(WH_LOG_EMERG, "mmap(%zu) for the UDP session table failed (%s)", size, strerror(errno));
        return WH_ERROR;
    }
    routes.slots = p;
    routes.mask = WH_UDP_ROUTES - 1;
    routes_fd = fd;
    return WH_OK;
}

int
wh_udp_init(void)
{
    int fd;

    if (routes.slots != NULL) {
        return WH_OK;
    }
    fd = memfd_create("wharf-udp-sessions", MFD_CLOEXEC);
    if (fd == -1 || ftruncate(fd, WH_UDP_ROUTES * sizeof(wh_udp_route_t)) == -1) {
        /* a seccomp filter, say: only an upgrade loses the sessions */
        wh_log(WH_LOG_WARN, "memfd for the UDP session table failed (%s): QUIC and mKCP "
               "sessions will not survive a binary upgrade", strerror(errno));
        if (fd != -1) close(fd);
        fd = -1;
    }
    if (map_routes(fd) != WH_OK) {
        if (fd != -1) close(fd);
        return WH_ERROR;
    }
    routes.seed = (uint64_t) getpid() << 32 ^ (uint64_t) time(NULL)
                  ^ (uint64_t) (uintptr_t) routes.slots;
    return WH_OK;
}

int
wh_udp_routes_export(uint64_t *seed)
{
    *seed = routes.seed;
    return routes_fd;
}

int
wh_udp_routes_inherit(int fd, uint64_t seed)
{
    struct stat st;

    if (routes.slots != NULL || fstat(fd, &st) == -1
        || (size_t) st.st_size != WH_UDP_ROUTES * sizeof(wh_udp_route_t))
    {
        return WH_ERROR;    /* not a table of this build's size: start a new one */
    }
    if (map_routes(fd) != WH_OK) {
        return WH_ERROR;
    }
    routes.seed = seed;
    return WH_OK;
}

void
wh_udp_forget(uint32_t serial)
{
    if (routes.slots != NULL) {
        wh_udp_route_forget(&routes, serial);
    }
}

static int
bind_one(wh_listener_t *ls)
{
    int fd, one = 1, size = WH_UDP_SOCKBUF;

    fd = socket(ls->addr.sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        wh_log(WH_LOG_EMERG, "socket() for udp %s failed (%s)", ls->addr_text, strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ls->addr.sa.ss_family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (is_wildcard(&ls->addr)
        && (ls->addr.sa.ss_family == AF_INET
            ? setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one))
            : setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one))) == -1)
    {
        wh_log(WH_LOG_WARN, "setsockopt(PKTINFO) on udp %s failed (%s): replies may leave "
               "from another address than the client sent to", ls->addr_text, strerror(errno));
    }
    /* the master is root: FORCE lifts net.core.[rw]mem_max, which is far too
     * small for a busy UDP transport; fall back quietly when not root */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) == -1) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    }
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) == -1) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    }
    if (ls->mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &ls->mark, sizeof(ls->mark)) == -1) {
        wh_log(WH_LOG_WARN, "setsockopt(SO_MARK) on udp %s failed (%s)", ls->addr_text,
               strerror(errno));
    }
    if (bind(fd, (const struct sockaddr *) &ls->addr.sa, ls->addr.len) == -1) {
        wh_log(WH_LOG_EMERG, "bind() to udp %s failed (%s)", ls->addr_text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int
wh_udp_bind(wh_listener_t *ls)
{
    if (ls->addr.sa.ss_family != AF_INET && ls->addr.sa.ss_family != AF_INET6) {
        wh_log(WH_LOG_EMERG, "listener \"%s\": a UDP transport needs an IP address, not %s",
               ls->tag, ls->addr_text);
        return WH_ERROR;
    }
    /* a listener taken over from the previous cycle keeps its sockets (and
     * so the kernel's peer-to-socket hashing); more workers need more */
    return wh_listener_bind_each(ls, bind_one);
}

static wh_listener_t *
listener_by_addr(const wh_sockaddr_t *local)
{
    int i;

    for (i = 0; mail_cycle != NULL && i < mail_cycle->nlisteners; i++) {
        wh_listener_t *ls = &mail_cycle->listeners[i];
        if (ls->module->datagram != NULL && wh_addr_equal(&ls->addr, local)) {
            return ls;
        }
    }
    return NULL;
}

static void
mailbox_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct mmsghdr msgs[WH_UDP_BATCH];
    struct iovec iov[WH_UDP_BATCH];
    int i, n;

    memset(msgs, 0, sizeof(msgs));
    for (i = 0; i < WH_UDP_BATCH; i++) {
        iov[i].iov_base = batch_buf[i];
        iov[i].iov_len = sizeof(batch_buf[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    n = recvmmsg(w->fd, msgs, WH_UDP_BATCH, MSG_DONTWAIT, NULL);
    for (i = 0; i < n; i++) {
        wh_udp_mail_t mail;
        wh_udp_packet_t pkt;
        wh_listener_t *ls;

        if (msgs[i].msg_len <= sizeof(mail)) continue;
        memcpy(&mail, batch_buf[i], sizeof(mail));
        ls = listener_by_addr(&mail.listener);
        if (ls == NULL) continue;
        pkt.peer = mail.peer;
        pkt.local = mail.local;
        pkt.data = batch_buf[i] + sizeof(mail);
        pkt.len = msgs[i].msg_len - sizeof(mail);
        pkt.forwarded = 1;
        ls->module->datagram(ls, &pkt);
    }
}

/* A few batches, then the other sockets and timers run. The bytes read;
 * *more: the last batch was full, the socket may hold more. */
static size_t
read_socket(wh_listener_t *ls, int fd, int *more)
{
    wh_udp_listener_t *u = ls->udp;
    struct mmsghdr msgs[WH_UDP_BATCH];
    struct iovec iov[WH_UDP_BATCH];
    wh_udp_packet_t pkts[WH_UDP_BATCH];
    int i, n, rounds = 0;
    size_t bytes = 0;

    *more = 0;
    do {
        memset(msgs, 0, sizeof(msgs));
        for (i = 0; i < WH_UDP_BATCH; i++) {
            iov[i].iov_base = batch_buf[i];
            iov[i].iov_len = WH_UDP_MAX_DATAGRAM;
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &pkts[i].peer.sa;
            msgs[i].msg_hdr.msg_namelen = sizeof(pkts[i].peer.sa);
            if (u->wildcard) {
                msgs[i].msg_hdr.msg_control = batch_ctl[i].buf;
                msgs[i].msg_hdr.msg_controllen = sizeof(batch_ctl[i].buf);
            }
        }
        n = recvmmsg(fd, msgs, WH_UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            if (n == -1 && errno != EAGAIN && errno != EINTR) {
                wh_log(WH_LOG_ERROR, "recvmmsg() on udp %s failed (%s)", ls->addr_text,
                       strerror(errno));
            }
            return bytes;
        }
        wh_stats_add(ls->stats->datagrams_in, n);
        for (i = 0; i < n; i++) {
            if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
                wh_udp_dropped(ls, WH_DROP_MALFORMED);     /* longer than any peer sends */
                continue;
            }
            pkts[i].peer.len = msgs[i].msg_hdr.msg_namelen;
            pkts[i].local.family = 0;
            if (u->wildcard) {
                get_local(&msgs[i].msg_hdr, &pkts[i].local);
            }
            pkts[i].data = batch_buf[i];
            pkts[i].len = msgs[i].msg_len;
            pkts[i].forwarded = 0;
            bytes += pkts[i].len;
            ls->module->datagram(ls, &pkts[i]);
        }
    } while (n == WH_UDP_BATCH && ++rounds < 4);
    *more = n == WH_UDP_BATCH;
    return bytes;
}

static void
read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    wh_udp_reader_t *r = wh_container_of(w, wh_udp_reader_t, io);
    int more;
    size_t n = read_socket(r->ls, w->fd, &more);

    if (wh_coalesce_read(&r->co, n, WH_UDP_BATCH * WH_UDP_MAX_DATAGRAM)) {
        r->co.on = 1;
        ev_io_stop(loop, &r->io);
        wh_coalesce_wait(&r->co);
    }
}

static void
hold_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    wh_udp_reader_t *r = w->data;
    int more;
    size_t n = read_socket(r->ls, r->io.fd, &more);

    if (wh_coalesce_expired(&r->co, n) && !more) {
        wh_coalesce_wait(&r->co);
        return;
    }
    wh_coalesce_stop(&r->co);
    ev_io_start(loop, &r->io);
}

int
wh_udp_start(wh_listener_t *ls, wh_worker_ctx_t *ctx)
{
    wh_udp_listener_t *u;
    int k;

    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        return WH_ERROR;
    }
    worker = ctx;
    u->ls = ls;
    u->reads = calloc(ls->nfds, sizeof(*u->reads));
    if (u->reads == NULL) {
        free(u);
        return WH_ERROR;
    }
    u->send_fd = -1;
    u->wildcard = is_wildcard(&ls->addr);
    /* socket k belongs to worker k mod n: after a reload that lowered
     * worker_processes every socket still has a reader */
    for (k = 0; k < ls->nfds; k++) {
        if (k % ctx->count != ctx->index) continue;
        wh_udp_reader_t *r = &u->reads[u->nreads++];
        r->ls = ls;
        ev_io_init(&r->io, read_cb, ls->fds[k], EV_READ);
        ev_io_start(ctx->loop, &r->io);
        wh_coalesce_init(&r->co, hold_cb, r);
        if (u->send_fd == -1) u->send_fd = ls->fds[k];
    }
    if (u->send_fd == -1) {
        u->send_fd = ls->fds[0];
    }
    ls->udp = u;

    if (ctx->mailbox != -1 && !ev_is_active(&mailbox_io)) {
        mail_cycle = ls->cycle;
        ev_io_init(&mailbox_io, mailbox_cb, ctx->mailbox, EV_READ);
        ev_io_start(ctx->loop, &mailbox_io);
    }
    return WH_OK;
}

void
wh_udp_stop(wh_listener_t *ls)
{
    wh_udp_listener_t *u = ls->udp;
    int i;

    /* the sockets stay open: the live sessions still send from them, and
     * the next generation reads them */
    for (i = 0; u != NULL && i < u->nreads; i++) {
        ev_io_stop(wh_loop, &u->reads[i].io);
        wh_coalesce_stop(&u->reads[i].co);
    }
}

void
wh_udp_coalesce(wh_listener_t *ls, double delay)
{
    wh_udp_listener_t *u = ls->udp;
    int i;

    for (i = 0; i < u->nreads; i++) {
        wh_coalesce_delay(&u->reads[i].co, delay);
    }
}

static int
send_failed(wh_listener_t *ls, int err)
{
    wh_udp_dropped(ls, WH_DROP_SEND);
    if (err != EAGAIN && err != ENOBUFS && err != ECONNREFUSED && err != EPERM) {
        wh_log(WH_LOG_ERROR, "sendmsg() on udp %s failed (%s)", ls->addr_text, strerror(err));
    }
    return WH_ERROR;
}

int
wh_udp_send(wh_listener_t *ls, const wh_sockaddr_t *peer, const wh_udp_local_t *local,
            const void *data, size_t len)
{
    wh_udp_listener_t *u = ls->udp;
    union {
        char buf[WH_UDP_CTL_SIZE];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = { (void *) data, len };
    struct msghdr msg = { .msg_name = (void *) &peer->sa, .msg_namelen = peer->len,
                          .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf };

    memset(&ctl, 0, sizeof(ctl));
    put_local(&msg, local);
    if (msg.msg_controllen == 0) {
        msg.msg_control = NULL;
    }
    if (sendmsg(u->send_fd, &msg, MSG_DONTWAIT) == -1) {
        return send_failed(ls, errno);
    }
    wh_stats_add(ls->stats->datagrams_out, 1);
    return WH_OK;
}

#ifdef WH_HAVE_UDP_SEGMENT

/* The count datagrams in one sendmsg(2) with UDP_SEGMENT. WH_DECLINED:
 * this kernel or device has no GSO, send them one by one (and ask no more). */
static int
send_segmented(wh_listener_t *ls, const wh_sockaddr_t *peer, const wh_udp_local_t *local,
               const void *data, size_t len, size_t seg, size_t count)
{
    wh_udp_listener_t *u = ls->udp;
    union {
        char buf[WH_UDP_CTL_SIZE];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = { (void *) data, len };
    struct msghdr msg = { .msg_name = (void *) &peer->sa, .msg_namelen = peer->len,
                          .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf };
    struct cmsghdr *cm;

    if (gso_off) {
        return WH_DECLINED;
    }
    memset(&ctl, 0, sizeof(ctl));
    put_local(&msg, local);
    cm = (struct cmsghdr *) (ctl.buf + msg.msg_controllen);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    *(uint16_t *) (void *) CMSG_DATA(cm) = (uint16_t) seg;
    msg.msg_controllen += CMSG_SPACE(sizeof(uint16_t));
    if (sendmsg(u->send_fd, &msg, MSG_DONTWAIT) != -1) {
        wh_stats_add(ls->stats->datagrams_out, count);
        return WH_OK;
    }
    if (errno != EIO && errno != EINVAL && errno != ENOPROTOOPT && errno != EOPNOTSUPP) {
        return send_failed(ls, errno);
    }
    gso_off = 1;        /* no GSO on this kernel or device: never ask again */
    return WH_DECLINED;
}

#else

#define send_segmented(ls, peer, local, data, len, seg, count) WH_DECLINED

#endif

int
wh_udp_send_gso(wh_listener_t *ls, const wh_sockaddr_t *peer, const wh_udp_local_t *local,
                const void *data, size_t len, size_t seg)
{
    size_t off, count = (len + seg - 1) / seg;
    int rc;

    if (count > 1 && count <= WH_UDP_GSO_MAX) {
        rc = send_segmented(ls, peer, local, data, len, seg, count);
        if (rc != WH_DECLINED) {
            return rc;
        }
    }
    for (off = 0; off < len; off += seg) {
        if (wh_udp_send(ls, peer, local, (const uint8_t *) data + off, wh_min(seg, len - off))
            != WH_OK)
        {
            return WH_ERROR;
        }
    }
    return WH_OK;
}

void
wh_udp_own(wh_listener_t *ls, const wh_sockaddr_t *peer)
{
    if (routes.slots != NULL) {
        wh_udp_route_set(&routes, wh_udp_route_key(&routes, &ls->addr, peer), worker->serial);
    }
}

void
wh_udp_disown(wh_listener_t *ls, const wh_sockaddr_t *peer)
{
    if (routes.slots != NULL) {
        wh_udp_route_del(&routes, wh_udp_route_key(&routes, &ls->addr, peer), worker->serial);
    }
}

int
wh_udp_forward(wh_listener_t *ls, const wh_udp_packet_t *pkt)
{
    wh_udp_mail_t mail;
    struct iovec iov[2];
    struct msghdr msg;
    uint32_t owner;
    int fd;

    if (pkt->forwarded || routes.slots == NULL) {
        return 0;
    }
    owner = wh_udp_route_get(&routes, wh_udp_route_key(&routes, &ls->addr, &pkt->peer));
    if (owner == 0 || owner == worker->serial || worker->mailbox_of == NULL
        || (fd = worker->mailbox_of(owner)) == -1)
    {
        return 0;
    }
    memset(&mail, 0, sizeof(mail));
    mail.listener = ls->addr;
    mail.peer = pkt->peer;
    mail.local = pkt->local;
    iov[0] = (struct iovec) { &mail, sizeof(mail) };
    iov[1] = (struct iovec) { pkt->data, pkt->len };
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    if (sendmsg(fd, &msg, MSG_DONTWAIT) == -1) {
        if (errno == ECONNREFUSED) {
            return 0;           /* the owner has just exited: the session is gone */
        }
        /* the owner is swamped: lose the datagram rather than open a
         * second session for the peer here */
        wh_udp_dropped(ls, WH_DROP_SEND);
        return 1;
    }
    wh_stats_add(ls->stats->datagrams_passed, 1);
    return 1;
}

void
wh_udp_dropped(wh_listener_t *ls, int cause)
{
    wh_stats_add(ls->stats->datagrams_dropped[cause], 1);
}

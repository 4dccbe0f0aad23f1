/*
 * loadgen: upstream servers and load clients for the wharf TCP relay benchmark.
 *
 * Upstreams (epoll, one thread, non-blocking):
 *   loadgen sink PORT        discard everything; close after EOF (or, for a
 *                            stream that starts with a bulk header, after the
 *                            announced number of bytes, see below)
 *   loadgen source PORT      send zeros until the peer closes
 *   loadgen echo PORT        echo everything back; close after EOF
 *
 * Clients (print one line of key=value pairs on stdout):
 *   loadgen bulk-up HOST PORT BYTES
 *   loadgen bulk-down HOST PORT BYTES
 *   loadgen rr HOST PORT COUNT
 *   loadgen connrate HOST PORT SECONDS CONCURRENCY
 *   loadgen idle HOST PORT N SECONDS
 *   loadgen wait HOST PORT MILLISECONDS   (exit 0 once PORT accepts)
 *
 * bulk-up writes a 16-byte header ("WHARFBLK" + 64-bit big-endian length)
 * followed by BYTES bytes, then half-closes and reads until EOF.  The sink
 * closes the stream once it has received all announced bytes, so the time
 * measured by the client covers every byte reaching the sink even through a
 * relay that does not carry a half-close (V2Ray); the relay then passes the
 * upstream close back to the client.
 *
 * Only 127.0.0.1 / numeric IPv4 addresses are used.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BIGBUF (256 * 1024)
#define ECHOBUF (16 * 1024)
#define MSG 64
static const char MAGIC[8] = {'W', 'H', 'A', 'R', 'F', 'B', 'L', 'K'};

_Noreturn static void die(const char *what)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(1);
}

_Noreturn static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen sink|source|echo PORT\n"
            "       loadgen bulk-up|bulk-down HOST PORT BYTES\n"
            "       loadgen rr HOST PORT COUNT\n"
            "       loadgen connrate HOST PORT SECONDS CONCURRENCY\n"
            "       loadgen idle HOST PORT N SECONDS\n"
            "       loadgen wait HOST PORT MILLISECONDS\n");
    exit(2);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long parse_num(const char *s, long long min)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || (*end != '\0' && *end != 'k' && *end != 'K' &&
                              *end != 'm' && *end != 'M' && *end != 'g' && *end != 'G'))
        usage();
    switch (*end) {
    case 'k': case 'K': v <<= 10; break;
    case 'm': case 'M': v <<= 20; break;
    case 'g': case 'G': v <<= 30; break;
    default: break;
    }
    if (v < min)
        usage();
    return v;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static struct sockaddr_in make_addr(const char *host, int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "loadgen: bad IPv4 address %s\n", host);
        exit(2);
    }
    return sa;
}

/* blocking connect; returns fd or -1 (errno set) */
static int dial(const struct sockaddr_in *sa, int nodelay)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (nodelay) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* reads exactly len bytes; returns 0, or -1 on error / early EOF */
static int read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = ECONNRESET;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* upstream servers                                                     */

enum kind { K_SINK, K_SOURCE, K_ECHO };

struct conn {
    int fd;
    /* sink */
    unsigned char hdr[16];
    int hdrlen;            /* bytes of header seen so far; -1: not a bulk stream */
    unsigned long long want; /* bulk: bytes still expected */
    /* echo */
    char *buf;
    size_t off, len;
    int eof;
};

static char bigbuf[BIGBUF];

static void conn_close(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->buf);
    free(c);
}

static void set_events(int ep, struct conn *c, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

/* returns 1 if the connection was closed */
static int on_sink(int ep, struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, bigbuf, sizeof bigbuf, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            conn_close(ep, c);
            return 1;
        }
        if (n == 0) {
            conn_close(ep, c);
            return 1;
        }
        size_t used = 0;
        if (c->hdrlen >= 0 && c->hdrlen < 16) {
            while (c->hdrlen < 16 && used < (size_t)n)
                c->hdr[c->hdrlen++] = (unsigned char)bigbuf[used++];
            if (c->hdrlen < 8 ? memcmp(c->hdr, MAGIC, (size_t)c->hdrlen) != 0
                              : memcmp(c->hdr, MAGIC, 8) != 0) {
                c->hdrlen = -1; /* plain discard stream */
            } else if (c->hdrlen == 16) {
                c->want = 0;
                for (int i = 8; i < 16; i++)
                    c->want = (c->want << 8) | c->hdr[i];
            }
        }
        if (c->hdrlen == 16) {
            unsigned long long got = (unsigned long long)((size_t)n - used);
            c->want = got >= c->want ? 0 : c->want - got;
            if (c->want == 0) {
                conn_close(ep, c);
                return 1;
            }
        }
    }
}

static int on_source(int ep, struct conn *c, uint32_t ev)
{
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (;;) {
            ssize_t n = recv(c->fd, bigbuf, sizeof bigbuf, 0);
            if (n > 0)
                continue;
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            conn_close(ep, c); /* EOF or error: the peer is gone */
            return 1;
        }
    }
    if (ev & EPOLLOUT) {
        static const char zeros[BIGBUF];
        for (;;) {
            ssize_t n = send(c->fd, zeros, sizeof zeros, MSG_NOSIGNAL);
            if (n > 0)
                continue;
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            conn_close(ep, c);
            return 1;
        }
    }
    return 0;
}

static int on_echo(int ep, struct conn *c)
{
    for (;;) {
        /* flush pending data first */
        while (c->off < c->len) {
            ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    set_events(ep, c, EPOLLOUT);
                    return 0;
                }
                conn_close(ep, c);
                return 1;
            }
            c->off += (size_t)n;
        }
        c->off = c->len = 0;
        if (c->eof) {
            conn_close(ep, c);
            return 1;
        }
        ssize_t n = recv(c->fd, c->buf, ECHOBUF, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_events(ep, c, EPOLLIN);
                return 0;
            }
            conn_close(ep, c);
            return 1;
        }
        if (n == 0)
            c->eof = 1;
        c->len = (size_t)n;
    }
}

static int serve(enum kind kind, int port)
{
    struct sockaddr_in sa = make_addr("127.0.0.1", port);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die("bind");
    if (listen(lfd, 4096) < 0)
        die("listen");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    struct epoll_event le = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &le) < 0)
        die("epoll_ctl");

    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break; /* EAGAIN, or EMFILE & co: retry on the next event */
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c = calloc(1, sizeof *c);
                    if (c == NULL) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    uint32_t ev = EPOLLIN;
                    if (kind == K_ECHO) {
                        c->buf = malloc(ECHOBUF);
                        if (c->buf == NULL) {
                            close(fd);
                            free(c);
                            continue;
                        }
                    } else if (kind == K_SOURCE) {
                        ev |= EPOLLOUT;
                    }
                    struct epoll_event e = {.events = ev, .data.ptr = c};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) {
                        close(fd);
                        free(c->buf);
                        free(c);
                    }
                }
                continue;
            }
            switch (kind) {
            case K_SINK: on_sink(ep, c); break;
            case K_SOURCE: on_source(ep, c, evs[i].events); break;
            case K_ECHO: on_echo(ep, c); break;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* clients                                                              */

static int bulk_up(const struct sockaddr_in *sa, unsigned long long bytes)
{
    static char buf[BIGBUF];
    unsigned char hdr[16];
    memcpy(hdr, MAGIC, 8);
    for (int i = 0; i < 8; i++)
        hdr[15 - i] = (unsigned char)(bytes >> (8 * i));
    double t0 = now();
    int fd = dial(sa, 0);
    if (fd < 0)
        die("connect");
    if (write_all(fd, hdr, sizeof hdr) < 0)
        die("send");
    unsigned long long left = bytes;
    while (left > 0) {
        size_t chunk = left < sizeof buf ? (size_t)left : sizeof buf;
        if (write_all(fd, buf, chunk) < 0)
            die("send");
        left -= chunk;
    }
    shutdown(fd, SHUT_WR);
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        break; /* EOF, or a reset once the sink is done: both end the transfer */
    }
    double dt = now() - t0;
    close(fd);
    printf("bulk-up bytes=%llu seconds=%.4f mibps=%.1f\n", bytes, dt,
           (double)bytes / 1048576.0 / dt);
    return 0;
}

static int bulk_down(const struct sockaddr_in *sa, unsigned long long bytes)
{
    static char buf[BIGBUF];
    double t0 = now();
    int fd = dial(sa, 0);
    if (fd < 0)
        die("connect");
    unsigned long long got = 0;
    while (got < bytes) {
        size_t want = bytes - got < sizeof buf ? (size_t)(bytes - got) : sizeof buf;
        ssize_t n = recv(fd, buf, want, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "loadgen: bulk-down: stream ended after %llu of %llu bytes\n",
                    got, bytes);
            return 1;
        }
        got += (unsigned long long)n;
    }
    double dt = now() - t0;
    close(fd);
    printf("bulk-down bytes=%llu seconds=%.4f mibps=%.1f\n", got, dt,
           (double)got / 1048576.0 / dt);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int rr(const struct sockaddr_in *sa, long long count)
{
    char req[MSG], resp[MSG];
    memset(req, 'r', sizeof req);
    int fd = dial(sa, 1);
    if (fd < 0)
        die("connect");
    long long warm = count / 10 < 100 ? 100 : count / 10;
    for (long long i = 0; i < warm; i++)
        if (write_all(fd, req, MSG) < 0 || read_all(fd, resp, MSG) < 0)
            die("rr warm-up");
    double *lat = malloc((size_t)count * sizeof *lat);
    if (lat == NULL)
        die("malloc");
    for (long long i = 0; i < count; i++) {
        double t0 = now();
        if (write_all(fd, req, MSG) < 0 || read_all(fd, resp, MSG) < 0)
            die("rr");
        lat[i] = (now() - t0) * 1e6;
    }
    close(fd);
    qsort(lat, (size_t)count, sizeof *lat, cmp_double);
    double sum = 0;
    for (long long i = 0; i < count; i++)
        sum += lat[i];
    long long i50 = (count * 50 + 99) / 100 - 1, i99 = (count * 99 + 99) / 100 - 1;
    printf("rr count=%lld p50_us=%.1f p99_us=%.1f mean_us=%.1f max_us=%.1f\n", count,
           lat[i50], lat[i99], sum / (double)count, lat[count - 1]);
    free(lat);
    return 0;
}

struct cr_arg {
    const struct sockaddr_in *sa;
    double deadline;
    long long ok, err;
};

static void *connrate_thread(void *p)
{
    struct cr_arg *a = p;
    char req[MSG], resp[MSG];
    memset(req, 'c', sizeof req);
    while (now() < a->deadline) {
        int fd = dial(a->sa, 1);
        if (fd < 0) {
            a->err++;
            if (errno == EADDRNOTAVAIL || errno == EMFILE || errno == ENFILE)
                usleep(1000);
            continue;
        }
        if (write_all(fd, req, MSG) < 0 || read_all(fd, resp, MSG) < 0)
            a->err++;
        else
            a->ok++;
        close(fd);
    }
    return NULL;
}

static int connrate(const struct sockaddr_in *sa, double seconds, int conc)
{
    pthread_t *th = calloc((size_t)conc, sizeof *th);
    struct cr_arg *args = calloc((size_t)conc, sizeof *args);
    if (th == NULL || args == NULL)
        die("calloc");
    double t0 = now();
    for (int i = 0; i < conc; i++) {
        args[i].sa = sa;
        args[i].deadline = t0 + seconds;
        int e = pthread_create(&th[i], NULL, connrate_thread, &args[i]);
        if (e != 0) {
            errno = e;
            die("pthread_create");
        }
    }
    long long ok = 0, err = 0;
    for (int i = 0; i < conc; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].ok;
        err += args[i].err;
    }
    double dt = now() - t0;
    printf("connrate seconds=%.3f concurrency=%d ok=%lld errors=%lld cps=%.0f\n", dt, conc,
           ok, err, (double)ok / dt);
    free(th);
    free(args);
    return 0;
}

static int idle(const struct sockaddr_in *sa, int n, double seconds)
{
    int *fds = malloc((size_t)n * sizeof *fds);
    if (fds == NULL)
        die("malloc");
    for (int i = 0; i < n; i++) {
        char b = 'i';
        fds[i] = dial(sa, 1);
        if (fds[i] < 0)
            die("idle connect");
        if (write_all(fds[i], &b, 1) < 0 || read_all(fds[i], &b, 1) < 0)
            die("idle echo");
    }
    printf("idle established=%d\n", n);
    fflush(stdout);
    struct timespec ts = {.tv_sec = (time_t)seconds,
                          .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    for (int i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    printf("idle closed=%d\n", n);
    return 0;
}

static int wait_port(const struct sockaddr_in *sa, long long ms)
{
    double deadline = now() + (double)ms / 1000.0;
    for (;;) {
        int fd = dial(sa, 0);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (now() > deadline) {
            fprintf(stderr, "loadgen: port %d not accepting after %lld ms\n",
                    ntohs(sa->sin_port), ms);
            return 1;
        }
        usleep(20000);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3)
        usage();
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *m = argv[1];
    if (!strcmp(m, "sink") || !strcmp(m, "source") || !strcmp(m, "echo")) {
        if (argc != 3)
            usage();
        enum kind k = !strcmp(m, "sink") ? K_SINK : !strcmp(m, "source") ? K_SOURCE : K_ECHO;
        return serve(k, (int)parse_num(argv[2], 1));
    }
    if (argc < 5)
        usage();
    struct sockaddr_in sa = make_addr(argv[2], (int)parse_num(argv[3], 1));
    if (!strcmp(m, "bulk-up") && argc == 5)
        return bulk_up(&sa, (unsigned long long)parse_num(argv[4], 1));
    if (!strcmp(m, "bulk-down") && argc == 5)
        return bulk_down(&sa, (unsigned long long)parse_num(argv[4], 1));
    if (!strcmp(m, "rr") && argc == 5)
        return rr(&sa, parse_num(argv[4], 1));
    if (!strcmp(m, "connrate") && argc == 6)
        return connrate(&sa, (double)parse_num(argv[4], 1), (int)parse_num(argv[5], 1));
    if (!strcmp(m, "idle") && argc == 6)
        return idle(&sa, (int)parse_num(argv[4], 1), (double)parse_num(argv[5], 0));
    if (!strcmp(m, "wait") && argc == 5)
        return wait_port(&sa, parse_num(argv[4], 0));
    usage();
}

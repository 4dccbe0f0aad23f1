/*
 * loadgen: upstream servers and load clients for the wharf relay benchmarks
 * (bench/tcp.sh, bench/tls.sh).
 *
 * Upstreams (epoll, one thread, non-blocking, TCP on 127.0.0.1):
 *   loadgen sink PORT        discard everything; close after EOF (or, for a
 *                            stream that starts with a bulk header, after the
 *                            announced number of bytes, see below)
 *   loadgen source PORT      send zeros until the peer closes
 *   loadgen echo PORT        echo everything back; close after EOF
 *
 * Clients (print one line of key=value pairs on stdout):
 *   loadgen [OPTIONS] bulk-up HOST PORT BYTES
 *   loadgen [OPTIONS] bulk-down HOST PORT BYTES
 *   loadgen [OPTIONS] rr HOST PORT COUNT
 *   loadgen [OPTIONS] connrate HOST PORT SECONDS CONCURRENCY
 *   loadgen [OPTIONS] idle HOST PORT N SECONDS
 *   loadgen [OPTIONS] wait HOST PORT MILLISECONDS   (exit 0 once PORT accepts)
 *
 * HOST is a numeric IPv4 address, or unix:PATH for a unix stream socket
 * (then PORT is ignored; write 0).
 *
 * Client OPTIONS (before the mode):
 *   --tls    TLS 1.3 over the connection (OpenSSL; TLS_AES_128_GCM_SHA256,
 *            default key exchange group, ALPN "h2","http/1.1" as a V2Ray
 *            client offers, no SNI, no certificate verification, no session
 *            cache and no tickets: every connection is a full handshake).
 *            Only when built with -DLOADGEN_TLS -lssl -lcrypto.  With --tls,
 *            connrate counts full handshakes (connect + handshake + 64-byte
 *            echo + close_notify + close) and idle holds N TLS streams; the
 *            wait mode stays a plain connect.
 *   --http   V2Ray tcp "http" header obfuscation, default settings: the
 *            fake request "GET / HTTP/1.1" + default headers is written
 *            before the first byte (at connect for bulk-down, connrate and
 *            idle, which would otherwise send nothing first), and the fake
 *            response header, up to and including the first CRLFCRLF, is
 *            skipped before any byte is counted.
 *
 * bulk-up writes a 16-byte header ("WHARFBLK" + 64-bit big-endian length)
 * followed by BYTES bytes, then half-closes (TCP FIN; over TLS a
 * close_notify, the TLS 1.3 half-close) and reads until EOF.  The sink
 * closes the stream once it has received all announced bytes, so the time
 * measured by the client covers every byte reaching the sink even through a
 * relay that does not carry a half-close (V2Ray); the relay then passes the
 * upstream close back to the client.  (Without the half-close a V2Ray relay
 * would hold the stream for its 1 s uplinkOnly timer after the sink closed.)
 *
 * Only 127.0.0.1 / numeric IPv4 addresses and unix sockets are used.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#ifdef LOADGEN_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

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
            "       loadgen [--tls] [--http] bulk-up|bulk-down HOST PORT BYTES\n"
            "       loadgen [--tls] [--http] rr HOST PORT COUNT\n"
            "       loadgen [--tls] [--http] connrate HOST PORT SECONDS CONCURRENCY\n"
            "       loadgen [--tls] [--http] idle HOST PORT N SECONDS\n"
            "       loadgen wait HOST PORT MILLISECONDS\n"
            "HOST: numeric IPv4 address, or unix:PATH (PORT then ignored)\n");
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

/* where a client connects: IPv4 TCP, or a unix stream socket */
struct target {
    struct sockaddr_storage ss;
    socklen_t len;
    int is_unix;
};

static struct target make_target(const char *host, const char *port)
{
    struct target t;
    memset(&t, 0, sizeof t);
    if (strncmp(host, "unix:", 5) == 0) {
        struct sockaddr_un *su = (struct sockaddr_un *)&t.ss;
        const char *path = host + 5;
        size_t n = strlen(path);
        if (n == 0 || n >= sizeof su->sun_path) {
            fprintf(stderr, "loadgen: bad unix socket path %s\n", path);
            exit(2);
        }
        su->sun_family = AF_UNIX;
        memcpy(su->sun_path, path, n + 1);
        t.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        t.is_unix = 1;
        return t;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (*end != '\0' || p < 1 || p > 65535)
        usage();
    struct sockaddr_in sa = make_addr(host, (int)p);
    memcpy(&t.ss, &sa, sizeof sa);
    t.len = sizeof sa;
    return t;
}

/* blocking connect; returns fd or -1 (errno set) */
static int dial(const struct target *t, int nodelay)
{
    int fd = socket(t->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (nodelay && !t->is_unix) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (connect(fd, (const struct sockaddr *)&t->ss, t->len) < 0) {
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
/* client connections: plain, TLS, V2Ray "http" header                  */

static int opt_tls, opt_http;

/* V2Ray 4.34 tcp "http" header, default request (spec 3.3/3.4) */
static const char HTTP_REQ[] =
    "GET / HTTP/1.1\r\n"
    "Host: www.baidu.com\r\n"
    "User-Agent: Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/53.0.2785.143 Safari/537.36\r\n"
    "Accept-Encoding: gzip, deflate\r\n"
    "Connection: keep-alive\r\n"
    "Pragma: no-cache\r\n"
    "\r\n";

#ifdef LOADGEN_TLS
static SSL_CTX *tls_ctx;

static void tls_die(const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    fprintf(stderr, "loadgen: %s: %s\n", what, e ? buf : strerror(errno));
    exit(1);
}

static void tls_init(void)
{
    static const unsigned char alpn[] = "\x02h2\x08http/1.1";
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (tls_ctx == NULL)
        tls_die("SSL_CTX_new");
    if (!SSL_CTX_set_min_proto_version(tls_ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(tls_ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_ciphersuites(tls_ctx, "TLS_AES_128_GCM_SHA256"))
        tls_die("TLS settings");
    SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(tls_ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (SSL_CTX_set_alpn_protos(tls_ctx, alpn, sizeof alpn - 1) != 0)
        tls_die("SSL_CTX_set_alpn_protos");
}
#endif

struct lconn {
    int fd;
    void *ssl;     /* SSL * when --tls */
    int req_sent;  /* --http: fake request written */
    int resp_seen; /* --http: bytes of the CRLFCRLF that ends the response header matched; 4 = done */
};

/* connect (+ TLS handshake); 0 or -1 (errno set, or a TLS error printed when verbose) */
static int lc_dial(const struct target *t, int nodelay, struct lconn *c)
{
    memset(c, 0, sizeof *c);
    c->fd = dial(t, nodelay);
    if (c->fd < 0)
        return -1;
#ifdef LOADGEN_TLS
    if (opt_tls) {
        SSL *ssl = SSL_new(tls_ctx);
        if (ssl == NULL || !SSL_set_fd(ssl, c->fd) || SSL_connect(ssl) != 1) {
            ERR_clear_error();
            SSL_free(ssl);
            close(c->fd);
            c->fd = -1;
            errno = ECONNABORTED;
            return -1;
        }
        c->ssl = ssl;
    }
#endif
    return 0;
}

static int lc_write_raw(struct lconn *c, const void *buf, size_t len)
{
#ifdef LOADGEN_TLS
    if (c->ssl) {
        const char *p = buf;
        while (len > 0) {
            size_t done = 0;
            if (SSL_write_ex(c->ssl, p, len, &done) != 1) {
                ERR_clear_error();
                if (errno == 0)
                    errno = ECONNRESET;
                return -1;
            }
            p += done;
            len -= done;
        }
        return 0;
    }
#endif
    return write_all(c->fd, buf, len);
}

/* --http: the fake request goes first */
static int lc_start(struct lconn *c)
{
    if (opt_http && !c->req_sent) {
        c->req_sent = 1;
        return lc_write_raw(c, HTTP_REQ, sizeof HTTP_REQ - 1);
    }
    return 0;
}

static int lc_write(struct lconn *c, const void *buf, size_t len)
{
    if (lc_start(c) < 0)
        return -1;
    return lc_write_raw(c, buf, len);
}

/* > 0 bytes, 0 EOF (TCP FIN, close_notify, or TLS EOF without close_notify), -1 error */
static ssize_t lc_read_raw(struct lconn *c, void *buf, size_t len)
{
#ifdef LOADGEN_TLS
    if (c->ssl) {
        size_t got = 0;
        if (SSL_read_ex(c->ssl, buf, len, &got) == 1)
            return (ssize_t)got;
        int e = SSL_get_error(c->ssl, 0);
        ERR_clear_error();
        if (e == SSL_ERROR_ZERO_RETURN)
            return 0;
        if (errno == 0)
            errno = ECONNRESET;
        return -1;
    }
#endif
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        return n;
    }
}

/* as lc_read_raw, without the --http response header */
static ssize_t lc_read(struct lconn *c, void *buf, size_t len)
{
    static const char end[4] = {'\r', '\n', '\r', '\n'};
    for (;;) {
        ssize_t n = lc_read_raw(c, buf, len);
        if (n <= 0 || !opt_http || c->resp_seen == 4)
            return n;
        char *p = buf;
        size_t i = 0;
        while (i < (size_t)n && c->resp_seen < 4) {
            if (p[i] == end[c->resp_seen])
                c->resp_seen++;
            else
                c->resp_seen = p[i] == '\r' ? 1 : 0;
            i++;
        }
        if (i < (size_t)n) {
            memmove(p, p + i, (size_t)n - i);
            return (ssize_t)((size_t)n - i);
        }
    }
}

static int lc_read_all(struct lconn *c, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = lc_read(c, p, len);
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = ECONNRESET;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* half-close: TCP FIN; over TLS a close_notify (the TLS 1.3 half-close), reading goes on */
static void lc_shutdown_wr(struct lconn *c)
{
#ifdef LOADGEN_TLS
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        ERR_clear_error();
        return;
    }
#endif
    shutdown(c->fd, SHUT_WR);
}

/* TLS: one close_notify (no wait for the peer's), then close */
static void lc_close(struct lconn *c)
{
#ifdef LOADGEN_TLS
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        ERR_clear_error();
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
#endif
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* " tls=TLSv1.3/TLS_AES_128_GCM_SHA256/alpn=h2" for the result lines; "" without TLS */
static const char *lc_info(const struct lconn *c)
{
    static char info[160];
    info[0] = '\0';
#ifdef LOADGEN_TLS
    if (c->ssl) {
        const unsigned char *a = NULL;
        unsigned int alen = 0;
        SSL_get0_alpn_selected(c->ssl, &a, &alen);
        snprintf(info, sizeof info, " tls=%s/%s/alpn=%.*s", SSL_get_version(c->ssl),
                 SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl)),
                 alen ? (int)alen : 1, alen ? (const char *)a : "-");
    }
#else
    (void)c;
#endif
    return info;
}

static const char *mode_tag(void)
{
    return opt_tls && opt_http ? " via=tls+http" : opt_tls ? " via=tls" : opt_http ? " via=http" : "";
}

/* ------------------------------------------------------------------ */
/* clients                                                              */

static int bulk_up(const struct target *t, unsigned long long bytes)
{
    static char buf[BIGBUF];
    unsigned char hdr[16];
    struct lconn c;
    memcpy(hdr, MAGIC, 8);
    for (int i = 0; i < 8; i++)
        hdr[15 - i] = (unsigned char)(bytes >> (8 * i));
    double t0 = now();
    if (lc_dial(t, 0, &c) < 0)
        die("connect");
    char info[160];
    snprintf(info, sizeof info, "%s", lc_info(&c));
    if (lc_write(&c, hdr, sizeof hdr) < 0)
        die("send");
    unsigned long long left = bytes;
    while (left > 0) {
        size_t chunk = left < sizeof buf ? (size_t)left : sizeof buf;
        if (lc_write(&c, buf, chunk) < 0)
            die("send");
        left -= chunk;
    }
    lc_shutdown_wr(&c);
    while (lc_read(&c, buf, sizeof buf) > 0)
        ; /* EOF, or a reset once the sink is done: both end the transfer */
    double dt = now() - t0;
    lc_close(&c);
    printf("bulk-up%s bytes=%llu seconds=%.4f mibps=%.1f%s\n", mode_tag(), bytes, dt,
           (double)bytes / 1048576.0 / dt, info);
    return 0;
}

static int bulk_down(const struct target *t, unsigned long long bytes)
{
    static char buf[BIGBUF];
    struct lconn c;
    double t0 = now();
    if (lc_dial(t, 0, &c) < 0)
        die("connect");
    if (lc_start(&c) < 0)
        die("send");
    unsigned long long got = 0;
    while (got < bytes) {
        size_t want = bytes - got < sizeof buf ? (size_t)(bytes - got) : sizeof buf;
        ssize_t n = lc_read(&c, buf, want);
        if (n <= 0) {
            fprintf(stderr, "loadgen: bulk-down: stream ended after %llu of %llu bytes\n",
                    got, bytes);
            return 1;
        }
        got += (unsigned long long)n;
    }
    double dt = now() - t0;
    printf("bulk-down%s bytes=%llu seconds=%.4f mibps=%.1f%s\n", mode_tag(), got, dt,
           (double)got / 1048576.0 / dt, lc_info(&c));
    lc_close(&c);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int rr(const struct target *t, long long count)
{
    char req[MSG], resp[MSG];
    struct lconn c;
    memset(req, 'r', sizeof req);
    if (lc_dial(t, 1, &c) < 0)
        die("connect");
    long long warm = count / 10 < 100 ? 100 : count / 10;
    for (long long i = 0; i < warm; i++)
        if (lc_write(&c, req, MSG) < 0 || lc_read_all(&c, resp, MSG) < 0)
            die("rr warm-up");
    double *lat = malloc((size_t)count * sizeof *lat);
    if (lat == NULL)
        die("malloc");
    for (long long i = 0; i < count; i++) {
        double t0 = now();
        if (lc_write(&c, req, MSG) < 0 || lc_read_all(&c, resp, MSG) < 0)
            die("rr");
        lat[i] = (now() - t0) * 1e6;
    }
    lc_close(&c);
    qsort(lat, (size_t)count, sizeof *lat, cmp_double);
    double sum = 0;
    for (long long i = 0; i < count; i++)
        sum += lat[i];
    long long i50 = (count * 50 + 99) / 100 - 1, i99 = (count * 99 + 99) / 100 - 1;
    printf("rr%s count=%lld p50_us=%.1f p99_us=%.1f mean_us=%.1f max_us=%.1f\n", mode_tag(),
           count, lat[i50], lat[i99], sum / (double)count, lat[count - 1]);
    free(lat);
    return 0;
}

struct cr_arg {
    const struct target *t;
    double deadline;
    long long ok, err;
};

static void *connrate_thread(void *p)
{
    struct cr_arg *a = p;
    char req[MSG], resp[MSG];
    struct lconn c;
    memset(req, 'c', sizeof req);
    while (now() < a->deadline) {
        if (lc_dial(a->t, 1, &c) < 0) {
            a->err++;
            if (errno == EADDRNOTAVAIL || errno == EMFILE || errno == ENFILE)
                usleep(1000);
            continue;
        }
        if (lc_write(&c, req, MSG) < 0 || lc_read_all(&c, resp, MSG) < 0)
            a->err++;
        else
            a->ok++;
        lc_close(&c);
    }
    return NULL;
}

static int connrate(const struct target *t, double seconds, int conc)
{
    pthread_t *th = calloc((size_t)conc, sizeof *th);
    struct cr_arg *args = calloc((size_t)conc, sizeof *args);
    if (th == NULL || args == NULL)
        die("calloc");
    double t0 = now();
    for (int i = 0; i < conc; i++) {
        args[i].t = t;
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
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("connrate%s seconds=%.3f concurrency=%d ok=%lld errors=%lld cps=%.0f client_cpu_us=%.1f\n",
           mode_tag(), dt, conc, ok, err, (double)ok / dt, ok ? cpu * 1e6 / (double)ok : 0.0);
    free(th);
    free(args);
    return 0;
}

static int idle(const struct target *t, int n, double seconds)
{
    struct lconn *cs = calloc((size_t)n, sizeof *cs);
    if (cs == NULL)
        die("calloc");
    for (int i = 0; i < n; i++) {
        char b = 'i';
        if (lc_dial(t, 1, &cs[i]) < 0)
            die("idle connect");
        if (lc_write(&cs[i], &b, 1) < 0 || lc_read_all(&cs[i], &b, 1) < 0)
            die("idle echo");
    }
    printf("idle%s established=%d\n", mode_tag(), n);
    fflush(stdout);
    struct timespec ts = {.tv_sec = (time_t)seconds,
                          .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    for (int i = 0; i < n; i++)
        lc_close(&cs[i]);
    free(cs);
    printf("idle%s closed=%d\n", mode_tag(), n);
    return 0;
}

static int wait_port(const struct target *t, long long ms)
{
    double deadline = now() + (double)ms / 1000.0;
    for (;;) {
        int fd = dial(t, 0);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (now() > deadline) {
            if (t->is_unix)
                fprintf(stderr, "loadgen: %s not accepting after %lld ms\n",
                        ((const struct sockaddr_un *)&t->ss)->sun_path, ms);
            else
                fprintf(stderr, "loadgen: port %d not accepting after %lld ms\n",
                        ntohs(((const struct sockaddr_in *)&t->ss)->sin_port), ms);
            return 1;
        }
        usleep(20000);
    }
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (argc > 1 && strncmp(argv[1], "--", 2) == 0) {
        if (!strcmp(argv[1], "--tls"))
            opt_tls = 1;
        else if (!strcmp(argv[1], "--http"))
            opt_http = 1;
        else
            usage();
        argv++;
        argc--;
    }
    if (argc < 3)
        usage();
    const char *m = argv[1];
    if (!strcmp(m, "sink") || !strcmp(m, "source") || !strcmp(m, "echo")) {
        if (argc != 3 || opt_tls || opt_http)
            usage();
        enum kind k = !strcmp(m, "sink") ? K_SINK : !strcmp(m, "source") ? K_SOURCE : K_ECHO;
        return serve(k, (int)parse_num(argv[2], 1));
    }
    if (opt_tls) {
#ifdef LOADGEN_TLS
        tls_init();
#else
        fprintf(stderr, "loadgen: built without TLS (cc -DLOADGEN_TLS ... -lssl -lcrypto)\n");
        return 2;
#endif
    }
    if (argc < 5)
        usage();
    struct target t = make_target(argv[2], argv[3]);
    if (!strcmp(m, "bulk-up") && argc == 5)
        return bulk_up(&t, (unsigned long long)parse_num(argv[4], 1));
    if (!strcmp(m, "bulk-down") && argc == 5)
        return bulk_down(&t, (unsigned long long)parse_num(argv[4], 1));
    if (!strcmp(m, "rr") && argc == 5)
        return rr(&t, parse_num(argv[4], 1));
    if (!strcmp(m, "connrate") && argc == 6)
        return connrate(&t, (double)parse_num(argv[4], 1), (int)parse_num(argv[5], 1));
    if (!strcmp(m, "idle") && argc == 6)
        return idle(&t, (int)parse_num(argv[4], 1), (double)parse_num(argv[5], 0));
    if (!strcmp(m, "wait") && argc == 5)
        return wait_port(&t, parse_num(argv[4], 0));
    usage();
}

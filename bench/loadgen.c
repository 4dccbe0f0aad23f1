/*
 * loadgen: upstream servers, load clients and hostile clients for the wharf
 * relay benchmarks (bench/tcp.sh, tls.sh, ws.sh, h2.sh, quic.sh, kcp.sh,
 * flood.sh).
 *
 * Upstreams (epoll, one thread, non-blocking, TCP on 127.0.0.1; SO_REUSEPORT,
 * so that several processes on one port spread its connections):
 *   loadgen sink PORT        discard everything; close after EOF (or, for a
 *                            stream that starts with a bulk header, after the
 *                            announced number of bytes, see below)
 *   loadgen source PORT      send zeros until the peer closes
 *   loadgen echo PORT        echo everything back; close after EOF
 *
 * Clients (print one line of key=value pairs on stdout):
 *   loadgen [OPTIONS] bulk-up HOST PORT BYTES
 *   loadgen [OPTIONS] bulk-down HOST PORT BYTES
 *   loadgen [OPTIONS] rr HOST PORT COUNT   (first_ms: connect + first round trip)
 *   loadgen [OPTIONS] connrate HOST PORTS SECONDS CONCURRENCY
 *            (thread i dials port i mod n of PORTS, so that TIME_WAIT
 *            spreads over several ports; p99_us: one connection's time)
 *   loadgen [OPTIONS] idle HOST PORT N SECONDS
 *   loadgen wait HOST PORT MILLISECONDS   (exit 0 once PORT accepts)
 *
 * Hostile clients (bench/flood.sh; every socket bound to a random
 * 127.x.y.z source, x != 0; PORTS is PORT or PORT,PORT,... used round-robin;
 * SECONDS is the longest run, SIGTERM ends it sooner; one key=value line at
 * the end, and "MODE established=N" once all N slots have connected once):
 *   loadgen [--tls] slowloris HOST PORTS N SECONDS
 *            N connections, each sending one byte every 1.5-4.5 s of a head
 *            it never finishes (--tls: the ClientHello, never its last
 *            byte; else an HTTP request head); one closed by the server is
 *            opened again 3 s later.  Counts held, max_held, connects,
 *            closed_by_server.
 *   loadgen garbage HOST PORTS N SECONDS
 *            N connections, each sending 1-1024 random bytes a second,
 *            opened again 1 s after the server closed one.
 *   loadgen --udp garbage HOST PORTS N SECONDS
 *            N UDP sources, each sending a random datagram (1-1400 bytes) a
 *            second; nothing is read.
 *   loadgen --tls hello-flood HOST PORTS RATE SECONDS
 *            RATE new connections a second, each sending one ClientHello
 *            (built once, as --tls would send it, and replayed) and reset
 *            once the server's first flight arrives, or after 10 s without
 *            it.  rate= is the achieved rate; flights, closed_by_server,
 *            timeouts, errors.
 *   loadgen kcp-flood HOST PORTS RATE SECONDS
 *            RATE new mKCP conversations a second, each one DATA segment
 *            (random conv, sn 0, 16 payload bytes; "simple" security, no
 *            header) from a new UDP socket, and nothing after it.
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
 *   --ws PATH
 *            WebSocket (RFC 6455) as V2Ray 4.34's ws client speaks it (spec
 *            section 4): after connect (and the TLS handshake with --tls;
 *            then ALPN "http/1.1" only, as V2Ray's ws client offers) the
 *            upgrade request "GET PATH HTTP/1.1" with Host HOST:PORT,
 *            User-Agent, Connection: Upgrade, a random Sec-WebSocket-Key,
 *            Sec-WebSocket-Version: 13 and Upgrade: websocket; the answer
 *            must be 101 with the right Sec-WebSocket-Accept.  Data then goes
 *            out as V2Ray 4.34's client (gorilla/websocket 1.5) frames it:
 *            every --ws-msg bytes are one binary message, sent as masked
 *            frames of at most --ws-frame payload bytes (the first binary,
 *            the rest continuations, FIN on the last), each with a fresh
 *            random mask and written on its own (one send, or one TLS
 *            record, per frame); received binary,
 *            text and continuation payloads form the stream, a ping is
 *            answered with a pong, a close frame is answered with a close
 *            frame with the same code and ends the stream.  A WebSocket has no
 *            half-close: the modes below that half-close skip it; closing
 *            sends a close frame (1000) and closes the connection at once, as
 *            V2Ray's client does.  Not with --http.
 *   --ws-frame BYTES
 *            largest payload of a frame the client sends (default 4096:
 *            gorilla's write buffer, WriteBufferSize 4 KiB in V2Ray's ws
 *            dialer; a longer message is split into a frame and
 *            continuation frames of this size, header 2, 4 or 10 bytes plus
 *            the 4-byte mask as RFC 6455 gives for the length).
 *   --ws-msg BYTES
 *            bytes per message (default 2048: V2Ray 4.34 writes each of its
 *            2048-byte buffers as one message, buf.Size, merged up to that
 *            size by buf.Compact); 0 makes each write of this program one
 *            message (64 KiB in bulk-up), for the large-frame measure
 *            with a large --ws-frame.
 *   --poke   bulk-down writes one byte ("\n", which the source discards)
 *            right after connect: a V2Ray QUIC client opens its stream only
 *            once the application writes, so a server-speaks-first
 *            transfer would otherwise never start.
 *   --udp    garbage over UDP (the hostile garbage mode only).
 *   --ack    bulk-up announces itself with the magic "WHARFBLA" instead of
 *            "WHARFBLK": the sink then writes one byte ("K") once it has
 *            received all announced bytes, before it closes, and the client
 *            stops its clock at that byte (or at EOF, whichever is first).
 *            This ends the measurement when the last byte reached the sink
 *            also through a relay that neither carries a half-close nor
 *            closes at once when the upstream closes (V2Ray's ws server holds
 *            the stream for its 1 s uplinkOnly timer; a V2Ray client in
 *            front never half-closes the transport).
 *
 * bulk-up writes a 16-byte header ("WHARFBLK" + 64-bit big-endian length)
 * followed by BYTES bytes, then half-closes (TCP FIN; over TLS a
 * close_notify, the TLS 1.3 half-close; nothing over a WebSocket) and reads
 * until EOF (with --ack: until the sink's byte).  The sink
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
#include <sys/random.h>
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
#define MAGIC_ACK 'A' /* last magic byte of a bulk stream that wants the sink's ack */

_Noreturn static void die(const char *what)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(1);
}

_Noreturn static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen sink|source|echo PORT\n"
            "       loadgen [OPTIONS] bulk-up|bulk-down HOST PORT BYTES\n"
            "       loadgen [OPTIONS] rr HOST PORT COUNT\n"
            "       loadgen [OPTIONS] connrate HOST PORTS SECONDS CONCURRENCY\n"
            "       loadgen [OPTIONS] idle HOST PORT N SECONDS\n"
            "       loadgen wait HOST PORT MILLISECONDS\n"
            "       loadgen [--tls] slowloris HOST PORTS N SECONDS\n"
            "       loadgen [--udp] garbage HOST PORTS N SECONDS\n"
            "       loadgen --tls hello-flood HOST PORTS RATE SECONDS\n"
            "       loadgen kcp-flood HOST PORTS RATE SECONDS\n"
            "OPTIONS: --tls, --http | --ws PATH [--ws-frame BYTES] [--ws-msg BYTES], --ack, --poke\n"
            "PORTS: PORT or PORT,PORT,...\n"
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
    int ack;               /* bulk: write one byte back when done (magic "WHARFBLA") */
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
            if (memcmp(c->hdr, MAGIC, (size_t)(c->hdrlen < 7 ? c->hdrlen : 7)) != 0 ||
                (c->hdrlen >= 8 && c->hdr[7] != MAGIC[7] && c->hdr[7] != MAGIC_ACK)) {
                c->hdrlen = -1; /* plain discard stream */
            } else if (c->hdrlen == 16) {
                c->ack = c->hdr[7] == MAGIC_ACK;
                c->want = 0;
                for (int i = 8; i < 16; i++)
                    c->want = (c->want << 8) | c->hdr[i];
            }
        }
        if (c->hdrlen == 16) {
            unsigned long long got = (unsigned long long)((size_t)n - used);
            c->want = got >= c->want ? 0 : c->want - got;
            if (c->want == 0) {
                if (c->ack)
                    (void)send(c->fd, "K", 1, MSG_NOSIGNAL);
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
    setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
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

static int opt_tls, opt_http, opt_ack, opt_poke, opt_udp;
static const char *opt_ws;         /* --ws PATH, or NULL */
static size_t opt_ws_frame = 4096; /* --ws-frame */
static size_t opt_ws_msg = 2048;   /* --ws-msg, 0: one message per write */
static char ws_host[128];          /* Host header value */

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
    static const unsigned char alpn_ws[] = "\x08http/1.1"; /* V2Ray's ws client (spec 2.2) */
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
    if (opt_ws ? SSL_CTX_set_alpn_protos(tls_ctx, alpn_ws, sizeof alpn_ws - 1) != 0
               : SSL_CTX_set_alpn_protos(tls_ctx, alpn, sizeof alpn - 1) != 0)
        tls_die("SSL_CTX_set_alpn_protos");
}
#endif

#define WS_RBUF (64 * 1024)

struct lconn {
    int fd;
    void *ssl;     /* SSL * when --tls */
    int req_sent;  /* --http: fake request written */
    int resp_seen; /* --http: bytes of the CRLFCRLF that ends the response header matched; 4 = done */
    /* --ws */
    unsigned char *rbuf;          /* received bytes not yet decoded: rbuf[rpos..rend) */
    size_t rpos, rend;
    unsigned long long ws_left;   /* payload bytes left in the current data frame */
    unsigned char ws_key[4];      /* mask of the current data frame (server frames are unmasked) */
    int ws_masked;
    unsigned ws_kpos;
    int ws_eof;                   /* close frame received (and answered) */
    int ws_close_sent;
    unsigned char *wbuf;          /* frames being sent */
    size_t wcap;
};

/* transport level: TCP or TLS */

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

/* ------------------------------------------------------------------ */
/* WebSocket client (RFC 6455; spec section 4)                          */

/* SHA-1 (FIPS 180-4), for Sec-WebSocket-Accept only */
static void sha1_block(uint32_t h[5], const unsigned char *blk)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)blk[4 * i] << 24 | (uint32_t)blk[4 * i + 1] << 16 |
               (uint32_t)blk[4 * i + 2] << 8 | blk[4 * i + 3];
    for (int i = 16; i < 80; i++) {
        uint32_t x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
        w[i] = x << 1 | x >> 31;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = (a << 5 | a >> 27) + f + e + k + w[i];
        e = d;
        d = c;
        c = b << 30 | b >> 2;
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

static void sha1(const void *data, size_t len, unsigned char out[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const unsigned char *p = data;
    unsigned char tail[128];
    size_t full = len & ~(size_t)63, rest = len - full;
    for (size_t off = 0; off < full; off += 64)
        sha1_block(h, p + off);
    memset(tail, 0, sizeof tail);
    memcpy(tail, p + full, rest);
    tail[rest] = 0x80;
    size_t tl = rest < 56 ? 64 : 128;
    unsigned long long bits = (unsigned long long)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tl - 1 - (size_t)i] = (unsigned char)(bits >> (8 * i));
    sha1_block(h, tail);
    if (tl == 128)
        sha1_block(h, tail + 64);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (unsigned char)(h[i] >> (24 - 8 * j));
}

static void base64(const unsigned char *in, size_t len, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i;
    for (i = 0; i + 2 < len; i += 3) {
        *out++ = tab[in[i] >> 2];
        *out++ = tab[(in[i] & 3) << 4 | in[i + 1] >> 4];
        *out++ = tab[(in[i + 1] & 15) << 2 | in[i + 2] >> 6];
        *out++ = tab[in[i + 2] & 63];
    }
    if (i < len) {
        *out++ = tab[in[i] >> 2];
        if (i + 1 < len) {
            *out++ = tab[(in[i] & 3) << 4 | in[i + 1] >> 4];
            *out++ = tab[(in[i + 1] & 15) << 2];
        } else {
            *out++ = tab[(in[i] & 3) << 4];
            *out++ = '=';
        }
        *out++ = '=';
    }
    *out = '\0';
}

/* masks: xorshift64*, seeded from getrandom */
static uint64_t rng_state;

static uint64_t rng(void)
{
    if (rng_state == 0) {
        if (getrandom(&rng_state, sizeof rng_state, 0) != sizeof rng_state || rng_state == 0)
            rng_state = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull ^ (uint64_t)(now() * 1e9);
    }
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* dst[i] = src[i] ^ key[(kpos + i) % 4]; returns the new kpos */
static unsigned ws_mask(unsigned char *dst, const unsigned char *src, size_t len,
                        const unsigned char key[4], unsigned kpos)
{
    unsigned char k8[8];
    for (int i = 0; i < 8; i++)
        k8[i] = key[(kpos + (unsigned)i) & 3];
    uint64_t k;
    memcpy(&k, k8, 8);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v ^= k;
        memcpy(dst + i, &v, 8);
    }
    for (; i < len; i++)
        dst[i] = src[i] ^ k8[i & 7];
    return (kpos + (unsigned)(len & 3)) & 3;
}

static unsigned char *ws_wbuf(struct lconn *c, size_t need)
{
    if (c->wcap < need) {
        unsigned char *p = realloc(c->wbuf, need);
        if (p == NULL)
            die("realloc");
        c->wbuf = p;
        c->wcap = need;
    }
    return c->wbuf;
}

/* frame header (FIN, masked) into h; returns its length */
static size_t ws_header(unsigned char *h, int opcode, size_t len, unsigned char key[4])
{
    size_t n = 0;
    h[n++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        h[n++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        h[n++] = 0x80 | 126;
        h[n++] = (unsigned char)(len >> 8);
        h[n++] = (unsigned char)len;
    } else {
        h[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            h[n++] = (unsigned char)((unsigned long long)len >> (8 * i));
    }
    uint32_t r = (uint32_t)rng();
    memcpy(key, &r, 4);
    memcpy(h + n, key, 4);
    return n + 4;
}

/* one frame (FIN when fin), masked with a fresh key, in one write (one TLS record) */
static int ws_frame(struct lconn *c, int opcode, int fin, const unsigned char *p, size_t n)
{
    unsigned char *w = ws_wbuf(c, n + 14), key[4];
    size_t h = ws_header(w, opcode, n, key);
    if (!fin)
        w[0] &= 0x7f;
    ws_mask(w + h, p, n, key, 0);
    return lc_write_raw(c, w, h + n) < 0 ? -1 : 0;
}

/* data as gorilla's messageWriter sends it for V2Ray: one message per --ws-msg bytes, each a frame
 * of at most --ws-frame bytes and continuation frames after it; a control frame is one frame */
static int ws_send(struct lconn *c, int opcode, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    size_t msg = opcode & 8 || opt_ws_msg == 0 ? len : opt_ws_msg;
    do {
        size_t m = len < msg ? len : msg;
        int op = opcode;
        len -= m;
        do {
            size_t n = m < opt_ws_frame ? m : opt_ws_frame;
            if (ws_frame(c, op, n == m, p, n) < 0)
                return -1;
            op = 0;
            p += n;
            m -= n;
        } while (m > 0);
    } while (len > 0);
    return 0;
}

static void ws_send_close(struct lconn *c, const unsigned char *payload, size_t len)
{
    if (c->ws_close_sent)
        return;
    c->ws_close_sent = 1;
    (void)ws_send(c, 8, payload, len);
}

/* at least k bytes in rbuf: 1, or 0 at EOF, -1 on error */
static int ws_need(struct lconn *c, size_t k)
{
    while (c->rend - c->rpos < k) {
        if (WS_RBUF - c->rpos < k) {
            memmove(c->rbuf, c->rbuf + c->rpos, c->rend - c->rpos);
            c->rend -= c->rpos;
            c->rpos = 0;
        }
        ssize_t n = lc_read_raw(c, c->rbuf + c->rend, WS_RBUF - c->rend);
        if (n <= 0)
            return (int)n;
        c->rend += (size_t)n;
    }
    return 1;
}

/* payload bytes of data frames; 0 after a close frame or at EOF, -1 on error */
static ssize_t ws_read(struct lconn *c, void *buf, size_t len)
{
    for (;;) {
        if (c->ws_eof)
            return 0;
        if (c->ws_left > 0) {
            if (c->rpos == c->rend) {
                c->rpos = c->rend = 0;
                ssize_t n = lc_read_raw(c, c->rbuf, WS_RBUF);
                if (n <= 0)
                    return n;
                c->rend = (size_t)n;
            }
            size_t k = c->rend - c->rpos;
            if (k > len)
                k = len;
            if (k > c->ws_left)
                k = (size_t)c->ws_left;
            if (c->ws_masked)
                c->ws_kpos = ws_mask(buf, c->rbuf + c->rpos, k, c->ws_key, c->ws_kpos);
            else
                memcpy(buf, c->rbuf + c->rpos, k);
            c->rpos += k;
            c->ws_left -= k;
            return (ssize_t)k;
        }
        /* next frame header */
        int r = ws_need(c, 2);
        if (r <= 0)
            return r;
        unsigned char b0 = c->rbuf[c->rpos], b1 = c->rbuf[c->rpos + 1];
        size_t hl = 2 + ((b1 & 127) == 126 ? 2 : (b1 & 127) == 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
        if ((r = ws_need(c, hl)) <= 0)
            return r;
        const unsigned char *h = c->rbuf + c->rpos;
        unsigned long long plen = b1 & 127;
        size_t at = 2;
        if (plen == 126) {
            plen = (unsigned long long)h[2] << 8 | h[3];
            at = 4;
        } else if (plen == 127) {
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = plen << 8 | h[2 + i];
            at = 10;
        }
        int opcode = b0 & 15;
        if (b0 & 0x70) {
            errno = EPROTO;
            return -1;
        }
        c->ws_masked = (b1 & 0x80) != 0;
        if (c->ws_masked)
            memcpy(c->ws_key, h + at, 4);
        c->ws_kpos = 0;
        c->rpos += hl;
        if (opcode <= 2) { /* continuation, text, binary: data */
            c->ws_left = plen;
            continue;
        }
        if (opcode < 8 || opcode > 10 || plen > 125 || !(b0 & 0x80)) {
            errno = EPROTO;
            return -1;
        }
        unsigned char ctl[125];
        if ((r = ws_need(c, (size_t)plen)) <= 0)
            return r;
        if (c->ws_masked)
            ws_mask(ctl, c->rbuf + c->rpos, (size_t)plen, c->ws_key, 0);
        else
            memcpy(ctl, c->rbuf + c->rpos, (size_t)plen);
        c->rpos += (size_t)plen;
        if (opcode == 9) {        /* ping: pong at once */
            if (ws_send(c, 10, ctl, (size_t)plen) < 0)
                return -1;
        } else if (opcode == 8) { /* close: answer with the same code, then EOF */
            ws_send_close(c, ctl, plen >= 2 ? 2 : 0);
            c->ws_eof = 1;
            return 0;
        }                         /* pong: ignored */
    }
}

/* the upgrade (spec 4.2); 0, or -1 with errno set (EPROTO: not a 101 / bad accept) */
static int ws_handshake(struct lconn *c)
{
    static int reported;
    unsigned char raw[16], dig[20];
    char key[32], want[32], req[1024], cat[128];
    if (getrandom(raw, sizeof raw, 0) != sizeof raw)
        for (size_t i = 0; i < sizeof raw; i++)
            raw[i] = (unsigned char)rng();
    base64(raw, sizeof raw, key);
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "User-Agent: Go-http-client/1.1\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "Upgrade: websocket\r\n"
                     "\r\n",
                     opt_ws, ws_host, key);
    if (n < 0 || (size_t)n >= sizeof req) {
        errno = ENAMETOOLONG;
        return -1;
    }
    snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    sha1(cat, strlen(cat), dig);
    base64(dig, sizeof dig, want);
    if (lc_write_raw(c, req, (size_t)n) < 0)
        return -1;
    /* the response head; bytes after it are frames already */
    char *end = NULL;
    while (end == NULL) {
        if (c->rend == WS_RBUF - 1) {
            errno = EPROTO;
            return -1;
        }
        ssize_t r = lc_read_raw(c, c->rbuf + c->rend, WS_RBUF - 1 - c->rend);
        if (r <= 0) {
            if (r == 0)
                errno = ECONNRESET;
            return -1;
        }
        c->rend += (size_t)r;
        c->rbuf[c->rend] = '\0';
        end = memmem(c->rbuf, c->rend, "\r\n\r\n", 4);
    }
    *end = '\0';
    const char *head = (const char *)c->rbuf, *acc = NULL;
    int ok = strncmp(head, "HTTP/1.1 101 ", 13) == 0;
    for (const char *l = strstr(head, "\r\n"); ok && l != NULL; l = strstr(l + 2, "\r\n"))
        if (strncasecmp(l + 2, "Sec-WebSocket-Accept:", 21) == 0)
            acc = l + 2 + 21;
    if (acc != NULL) {
        while (*acc == ' ' || *acc == '\t')
            acc++;
        size_t wl = strlen(want);
        ok = strncmp(acc, want, wl) == 0 && (acc[wl] == '\r' || acc[wl] == '\0' ||
                                             acc[wl] == ' ' || acc[wl] == '\t');
    } else {
        ok = 0;
    }
    if (!ok) {
        if (!reported++) {
            const char *eol = strstr(head, "\r\n");
            fprintf(stderr, "loadgen: WebSocket upgrade refused: %.*s\n",
                    (int)(eol ? eol - head : (ptrdiff_t)strlen(head)), head);
        }
        errno = EPROTO;
        return -1;
    }
    c->rpos = (size_t)(end + 4 - (char *)c->rbuf);
    if (c->rpos == c->rend)
        c->rpos = c->rend = 0;
    return 0;
}

/* ------------------------------------------------------------------ */
/* client connections: plain, TLS, V2Ray "http" header, WebSocket       */

static void lc_free(struct lconn *c)
{
    free(c->rbuf);
    free(c->wbuf);
    c->rbuf = c->wbuf = NULL;
    c->wcap = 0;
}

/* connect (+ TLS handshake, + WebSocket upgrade); 0 or -1 (errno set) */
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
    if (opt_ws) {
        c->rbuf = malloc(WS_RBUF);
        if (c->rbuf == NULL || ws_handshake(c) < 0) {
            int e = c->rbuf ? errno : ENOMEM;
#ifdef LOADGEN_TLS
            SSL_free(c->ssl);
            c->ssl = NULL;
#endif
            close(c->fd);
            c->fd = -1;
            lc_free(c);
            errno = e;
            return -1;
        }
    }
    return 0;
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
    if (opt_ws)
        return ws_send(c, 2, buf, len);
    if (lc_start(c) < 0)
        return -1;
    return lc_write_raw(c, buf, len);
}

/* as lc_read_raw, without the --http response header, or the WebSocket payload */
static ssize_t lc_read(struct lconn *c, void *buf, size_t len)
{
    static const char end[4] = {'\r', '\n', '\r', '\n'};
    if (opt_ws)
        return ws_read(c, buf, len);
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

/* half-close: TCP FIN; over TLS a close_notify (the TLS 1.3 half-close), reading goes on;
 * a WebSocket has none (a close frame ends both directions): nothing */
static void lc_shutdown_wr(struct lconn *c)
{
    if (opt_ws)
        return;
#ifdef LOADGEN_TLS
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        ERR_clear_error();
        return;
    }
#endif
    shutdown(c->fd, SHUT_WR);
}

/* WebSocket: a close frame (1000) unless one was exchanged; TLS: one close_notify (no wait
 * for the peer's); then close */
static void lc_close(struct lconn *c)
{
    if (opt_ws && c->fd >= 0) {
        static const unsigned char normal[2] = {0x03, 0xe8};
        ws_send_close(c, normal, sizeof normal);
    }
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
    lc_free(c);
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
    if (opt_ws)
        return opt_tls ? " via=tls+ws" : " via=ws";
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
    if (opt_ack)
        hdr[7] = MAGIC_ACK;
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
    while (lc_read(&c, buf, sizeof buf) > 0 && !opt_ack)
        ; /* EOF, or a reset once the sink is done: both end the transfer; --ack: its byte */
    double dt = now() - t0;
    lc_close(&c);
    printf("bulk-up%s bytes=%llu seconds=%.4f mibps=%.1f%s%s\n", mode_tag(), bytes, dt,
           (double)bytes / 1048576.0 / dt, opt_ack ? " ack=1" : "", info);
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
    /* QUIC: the V2Ray client opens a stream only once its application writes */
    if (opt_poke && lc_write(&c, "\n", 1) < 0)
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
    double t_dial = now(), first = 0;
    if (lc_dial(t, 1, &c) < 0)
        die("connect");
    long long warm = count / 10 < 100 ? 100 : count / 10;
    for (long long i = 0; i < warm; i++) {
        if (lc_write(&c, req, MSG) < 0 || lc_read_all(&c, resp, MSG) < 0)
            die("rr warm-up");
        if (i == 0) /* connect and first round trip: the stream's setup through any relays */
            first = now() - t_dial;
    }
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
    printf("rr%s count=%lld p50_us=%.1f p99_us=%.1f mean_us=%.1f max_us=%.1f first_ms=%.1f\n",
           mode_tag(), count, lat[i50], lat[i99], sum / (double)count, lat[count - 1], first * 1e3);
    free(lat);
    return 0;
}

struct cr_arg {
    const struct target *t;
    double deadline;
    long long ok, err;
    double *lat;    /* microseconds, one per connection that succeeded */
    size_t cap;
};

static void *connrate_thread(void *p)
{
    struct cr_arg *a = p;
    char req[MSG], resp[MSG];
    struct lconn c;
    memset(req, 'c', sizeof req);
    double t0;
    while ((t0 = now()) < a->deadline) {
        if (lc_dial(a->t, 1, &c) < 0) {
            a->err++;
            if (errno == EADDRNOTAVAIL || errno == EMFILE || errno == ENFILE)
                usleep(1000);
            continue;
        }
        if (lc_write(&c, req, MSG) < 0 || lc_read_all(&c, resp, MSG) < 0) {
            a->err++;
            lc_close(&c);
            continue;
        }
        lc_close(&c);
        if ((size_t)a->ok == a->cap) {
            a->cap = a->cap ? a->cap * 2 : 4096;
            if ((a->lat = realloc(a->lat, a->cap * sizeof *a->lat)) == NULL)
                die("realloc");
        }
        a->lat[a->ok++] = (now() - t0) * 1e6;
    }
    return NULL;
}

static int connrate(const struct target *t, int nt, double seconds, int conc)
{
    pthread_t *th = calloc((size_t)conc, sizeof *th);
    struct cr_arg *args = calloc((size_t)conc, sizeof *args);
    if (th == NULL || args == NULL)
        die("calloc");
    double t0 = now();
    for (int i = 0; i < conc; i++) {
        args[i].t = &t[i % nt];
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
    double *lat = malloc((size_t)(ok ? ok : 1) * sizeof *lat), p99 = 0;
    if (lat == NULL)
        die("malloc");
    for (int i = 0, k = 0; i < conc; k += (int)args[i].ok, i++) {
        if (args[i].ok)
            memcpy(lat + k, args[i].lat, (size_t)args[i].ok * sizeof *lat);
        free(args[i].lat);
    }
    if (ok) {
        qsort(lat, (size_t)ok, sizeof *lat, cmp_double);
        p99 = lat[(ok * 99 + 99) / 100 - 1];
    }
    free(lat);
    double dt = now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("connrate%s seconds=%.3f concurrency=%d ok=%lld errors=%lld cps=%.0f p99_us=%.1f "
           "client_cpu_us=%.1f\n",
           mode_tag(), dt, conc, ok, err, (double)ok / dt, p99, ok ? cpu * 1e6 / (double)ok : 0.0);
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

/* ------------------------------------------------------------------ */
/* hostile clients (bench/flood.sh)                                     */
/*
 * Each hostile socket is bound to a random 127.x.y.z source (x != 0), so a
 * server's per-address limits see many addresses and never the good client
 * (127.0.0.1).  PORTS is one port or a comma-separated list: connections and
 * datagrams go round-robin over them.  SECONDS is the longest run: SIGTERM or
 * SIGINT ends a run early, and the result line is printed either way.  One
 * thread, non-blocking sockets, one epoll loop: an attacker's costs, not a
 * client's.
 */

#define FLOOD_MAXPORTS 16
#define SLOW_GAP 3.0       /* slowloris: seconds between two bytes */
#define GARBAGE_GAP 1.0    /* garbage: seconds between two bursts (a datagram with --udp) */
#define GARBAGE_MAX 1024   /* garbage: largest burst in bytes */
#define HELLO_TIMEOUT 10.0 /* hello-flood: a connection without an answer by then is dropped */

static volatile sig_atomic_t flood_stop;

static void on_stop(int sig)
{
    (void)sig;
    flood_stop = 1;
}

struct ports {
    struct sockaddr_in sa[FLOOD_MAXPORTS];
    int n, next;
};

static void parse_ports(const char *host, const char *list, struct ports *p)
{
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", list);
    p->n = p->next = 0;
    for (char *s = strtok_r(buf, ",", &save); s != NULL; s = strtok_r(NULL, ",", &save)) {
        if (p->n == FLOOD_MAXPORTS)
            usage();
        struct target t = make_target(host, s);
        if (t.is_unix)
            usage();
        memcpy(&p->sa[p->n++], &t.ss, sizeof p->sa[0]);
    }
    if (p->n == 0)
        usage();
}

static const struct sockaddr_in *next_port(struct ports *p)
{
    const struct sockaddr_in *sa = &p->sa[p->next];
    p->next = (p->next + 1) % p->n;
    return sa;
}

/* a socket bound to a random 127.x.y.z (x != 0, z neither 0 nor 255), the port left to the
 * kernel (at connect time for TCP, so many sources do not exhaust one address's ports) */
static int hostile_socket(int type)
{
    int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    uint64_t r = rng();
    struct sockaddr_in src;
    memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)(1 + r % 255) << 16 |
                                (uint32_t)((r >> 8) & 255) << 8 | (uint32_t)(1 + (r >> 16) % 254));
    int one = 1;
    if (type == SOCK_STREAM)
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* close at once with a reset: no FIN exchange, no TIME_WAIT, as a flood would */
static void close_rst(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* the ClientHello that --tls would send, built once and replayed by every connection (the
 * server does a full handshake for each all the same: the key share is not checked for reuse) */
static unsigned char *hello;
static size_t hello_len;

static void build_hello(void)
{
#ifdef LOADGEN_TLS
    SSL *s = SSL_new(tls_ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    if (s == NULL || rb == NULL || wb == NULL)
        tls_die("SSL_new");
    SSL_set_bio(s, rb, wb);
    SSL_set_connect_state(s);
    (void)SSL_do_handshake(s); /* wants to read: the ClientHello is in wb */
    ERR_clear_error();
    char *p;
    long n = BIO_get_mem_data(wb, &p);
    if (n <= 0 || (hello = malloc((size_t)n)) == NULL)
        tls_die("ClientHello");
    memcpy(hello, p, (size_t)n);
    hello_len = (size_t)n;
    SSL_free(s);
#endif
}

static void fill_random(unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t r = rng();
        memcpy(buf + i, &r, len - i < 8 ? len - i : 8);
    }
}

static void sleep_until(double t)
{
    double d = t - now();
    if (d > 0)
        usleep((useconds_t)(d * 1e6));
}

/* slowloris and garbage: N slots, each a connection that is opened again after the server
 * closed it.  A slot's timer (next) says when it connects again, or sends its next bytes. */
struct slot {
    int fd;
    int state; /* 0 closed, 1 connecting, 2 open */
    int once;  /* was connected at least once */
    size_t pos; /* slowloris: bytes of the head sent */
    double next;
};

struct held {
    const char *mode;
    long long connects, closed, errors, bytes, max_held;
    int held, n, announced;
};

static void slot_drop(int ep, struct slot *s, struct held *h, double reopen)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
    if (s->state == 2)
        h->held--;
    close(s->fd);
    s->fd = -1;
    s->state = 0;
    s->pos = 0;
    s->next = reopen;
}

/* the bytes a slot sends next: slowloris one byte of a head that never ends (the ClientHello
 * with --tls, all but its last byte, then nothing; else an HTTP request head, then header
 * bytes forever); garbage a random burst */
static size_t slot_bytes(int slow, struct slot *s, unsigned char *buf)
{
    static const char head[] = "GET / HTTP/1.1\r\nHost: localhost\r\nX-a: ";
    if (!slow) {
        size_t n = 1 + (size_t)(rng() % GARBAGE_MAX);
        fill_random(buf, n);
        return n;
    }
    if (hello_len > 0) {
        if (s->pos + 1 >= hello_len)
            return 0;
        buf[0] = hello[s->pos];
    } else {
        buf[0] = s->pos < sizeof head - 1 ? (unsigned char)head[s->pos] : 'a';
    }
    return 1;
}

static int hold_flood(int slow, const char *host, const char *ports, int n, double seconds)
{
    struct ports pt;
    parse_ports(host, ports, &pt);
    if (slow && opt_tls)
        build_hello();
    struct slot *sl = calloc((size_t)n, sizeof *sl);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (sl == NULL || ep < 0)
        die("slots");
    struct held h = {.mode = slow ? "slowloris" : "garbage", .n = n};
    double gap = slow ? SLOW_GAP : GARBAGE_GAP, t0 = now(), end = t0 + seconds;
    for (int i = 0; i < n; i++) { /* the first connects spread over one second */
        sl[i].fd = -1;
        sl[i].next = t0 + (double)i / n;
    }
    unsigned char buf[GARBAGE_MAX + 8];
    struct epoll_event evs[256];
    int ever = 0; /* slots that were connected once */
    while (!flood_stop && now() < end) {
        int k = epoll_wait(ep, evs, 256, 20);
        double t = now();
        for (int i = 0; i < k; i++) {
            struct slot *s = evs[i].data.ptr;
            if (s->state == 1) {
                int e = 0;
                socklen_t el = sizeof e;
                getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &el);
                if (e != 0 || (evs[i].events & (EPOLLERR | EPOLLHUP))) {
                    h.errors++;
                    slot_drop(ep, s, &h, t + gap);
                    continue;
                }
                s->state = 2;
                h.connects++;
                if (++h.held > h.max_held)
                    h.max_held = h.held;
                if (!s->once) {
                    s->once = 1;
                    ever++;
                }
                struct epoll_event e2 = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = s};
                epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &e2);
                s->next = t; /* its first bytes at once */
                continue;
            }
            /* open: anything the server says is read and dropped; EOF or an error is its close */
            ssize_t r;
            while ((r = recv(s->fd, buf, sizeof buf, 0)) > 0)
                ;
            if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                h.closed++;
                slot_drop(ep, s, &h, t + gap);
            }
        }
        for (int i = 0; i < n; i++) {
            struct slot *s = &sl[i];
            if (s->next > t || s->state == 1)
                continue;
            if (s->state == 0) {
                s->fd = hostile_socket(SOCK_STREAM);
                const struct sockaddr_in *dst = next_port(&pt);
                if (s->fd < 0 || (connect(s->fd, (const struct sockaddr *)dst, sizeof *dst) < 0 &&
                                  errno != EINPROGRESS)) {
                    h.errors++;
                    if (s->fd >= 0)
                        close(s->fd);
                    s->fd = -1;
                    s->next = t + gap;
                    continue;
                }
                s->state = 1;
                s->next = t + 1e9;
                struct epoll_event e = {.events = EPOLLOUT, .data.ptr = s};
                epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &e);
                continue;
            }
            size_t len = slot_bytes(slow, s, buf);
            ssize_t w = len ? send(s->fd, buf, len, MSG_NOSIGNAL) : 0;
            if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                h.closed++;
                slot_drop(ep, s, &h, t + gap);
                continue;
            }
            if (w > 0) {
                h.bytes += w;
                s->pos += (size_t)w;
            }
            /* slowloris: a random phase, so the bytes do not all come in one tick */
            s->next = t + gap * (slow ? 0.5 + (double)(rng() % 1000) / 1000.0 : 1.0);
        }
        if (!h.announced && ever >= n) {
            h.announced = 1;
            printf("%s%s established=%d held=%d\n", h.mode, mode_tag(), n, h.held);
            fflush(stdout);
        }
    }
    double dt = now() - t0;
    int held_end = h.held;
    for (int i = 0; i < n; i++)
        if (sl[i].fd >= 0)
            close_rst(sl[i].fd);
    printf("%s%s seconds=%.1f n=%d held=%d max_held=%lld connects=%lld closed_by_server=%lld "
           "bytes=%lld errors=%lld\n", h.mode, mode_tag(), dt, n, held_end, h.max_held, h.connects,
           h.closed, h.bytes, h.errors);
    free(sl);
    close(ep);
    return 0;
}

/* garbage --udp: N sources (sockets on random 127.x.y.z), each sending a random datagram of
 * 1..1400 bytes every GARBAGE_GAP seconds; nothing is read */
static int udp_garbage(const char *host, const char *ports, int n, double seconds)
{
    struct ports pt;
    parse_ports(host, ports, &pt);
    int *fds = calloc((size_t)n, sizeof *fds);
    if (fds == NULL)
        die("calloc");
    long long sent = 0, bytes = 0, errors = 0;
    for (int i = 0; i < n; i++)
        if ((fds[i] = hostile_socket(SOCK_DGRAM)) < 0)
            errors++;
    printf("garbage via=udp established=%d\n", n);
    fflush(stdout);
    unsigned char buf[1400];
    double t0 = now(), end = t0 + seconds;
    for (long long round = 0; !flood_stop && now() < end; round++) {
        for (int i = 0; i < n && !flood_stop; i++) {
            if (fds[i] < 0)
                continue;
            size_t len = 1 + (size_t)(rng() % sizeof buf);
            fill_random(buf, len);
            const struct sockaddr_in *dst = next_port(&pt);
            if (sendto(fds[i], buf, len, 0, (const struct sockaddr *)dst, sizeof *dst) < 0) {
                errors++;
            } else {
                sent++;
                bytes += (long long)len;
            }
            /* spread a round over GARBAGE_GAP */
            if (i % 50 == 49)
                sleep_until(t0 + GARBAGE_GAP * ((double)round + (double)(i + 1) / n));
        }
        sleep_until(t0 + GARBAGE_GAP * (double)(round + 1));
    }
    double dt = now() - t0;
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    printf("garbage via=udp seconds=%.1f n=%d sent=%lld rate=%.0f bytes=%lld errors=%lld\n", dt, n,
           sent, (double)sent / dt, bytes, errors);
    return 0;
}

/* hello-flood: RATE new connections a second, each sending the one pre-built ClientHello and
 * reset as soon as the server's first flight arrives (or after HELLO_TIMEOUT without one) */
struct hconn {
    double start;
    int state; /* 0 free, 1 connecting, 2 hello sent */
};

static int hello_flood(const char *host, const char *ports, double rate, double seconds)
{
    struct ports pt;
    parse_ports(host, ports, &pt);
    build_hello();
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    size_t cap = rl.rlim_cur > 1048576 ? 1048576 : (size_t)rl.rlim_cur;
    struct hconn *hc = calloc(cap, sizeof *hc);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (hc == NULL || ep < 0)
        die("hello-flood");
    long long started = 0, flights = 0, closed = 0, timeouts = 0, errors = 0, inflight = 0;
    long long max_inflight = 0;
    unsigned char buf[16384];
    struct epoll_event evs[256];
    double t0 = now(), end = t0 + seconds, last_sweep = t0;
    while (!flood_stop && now() < end) {
        double t = now();
        long long due = (long long)((t - t0) * rate);
        while (started < due && inflight + 64 < (long long)cap) {
            started++;
            int fd = hostile_socket(SOCK_STREAM);
            const struct sockaddr_in *dst = next_port(&pt);
            if (fd < 0) {
                errors++;
                continue;
            }
            if ((size_t)fd >= cap ||
                (connect(fd, (const struct sockaddr *)dst, sizeof *dst) < 0 && errno != EINPROGRESS)) {
                errors++;
                close(fd);
                continue;
            }
            struct epoll_event e = {.events = EPOLLOUT, .data.fd = fd};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
            hc[fd].state = 1;
            hc[fd].start = t;
            if (++inflight > max_inflight)
                max_inflight = inflight;
        }
        int k = epoll_wait(ep, evs, 256, 1);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (hc[fd].state == 1) {
                int e = 0;
                socklen_t el = sizeof e;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
                if (e == 0 && send(fd, hello, hello_len, MSG_NOSIGNAL) == (ssize_t)hello_len) {
                    hc[fd].state = 2;
                    struct epoll_event e2 = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e2);
                    continue;
                }
                errors++;
            } else {
                ssize_t r = recv(fd, buf, sizeof buf, 0);
                if (r > 0)
                    flights++;
                else if (r < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                else
                    closed++;
            }
            hc[fd].state = 0;
            inflight--;
            close_rst(fd);
        }
        if (t - last_sweep > 0.5) { /* answers that never came */
            last_sweep = t;
            for (size_t fd = 0; fd < cap; fd++)
                if (hc[fd].state != 0 && t - hc[fd].start > HELLO_TIMEOUT) {
                    hc[fd].state = 0;
                    inflight--;
                    timeouts++;
                    close_rst((int)fd);
                }
        }
    }
    double dt = now() - t0;
    for (size_t fd = 0; fd < cap; fd++)
        if (hc[fd].state != 0)
            close_rst((int)fd);
    printf("hello-flood%s seconds=%.1f target_rate=%.0f rate=%.0f started=%lld flights=%lld "
           "closed_by_server=%lld timeouts=%lld errors=%lld max_in_flight=%lld hello_bytes=%zu\n",
           mode_tag(), dt, rate, (double)started / dt, started, flights, closed, timeouts, errors,
           max_inflight, hello_len);
    free(hc);
    close(ep);
    return 0;
}

/* kcp-flood: RATE new mKCP conversations a second, each from a new UDP socket on a random
 * 127.x.y.z (a new source port): one DATA segment (random conv, sn 0, una 0, 16 random payload
 * bytes) sealed with "simple" security and no header (spec 9.2, 9.3), the first segment of a
 * valid session; nothing follows it */
static uint32_t fnv1a32(const unsigned char *p, size_t len)
{
    uint32_t h = 0x811C9DC5u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x01000193u;
    return h;
}

static size_t kcp_first_segment(unsigned char *out)
{
    unsigned char seg[18 + 16];
    uint16_t conv = (uint16_t)rng();
    memset(seg, 0, sizeof seg);
    seg[0] = (unsigned char)(conv >> 8);
    seg[1] = (unsigned char)conv;
    seg[2] = 1;      /* cmd DATA; opt 0; ts, sn, una 0 */
    seg[17] = 16;    /* len */
    fill_random(seg + 18, 16);
    size_t total = 6 + sizeof seg;
    out[4] = (unsigned char)(sizeof seg >> 8);
    out[5] = (unsigned char)sizeof seg;
    memcpy(out + 6, seg, sizeof seg);
    uint32_t h = fnv1a32(out + 4, sizeof seg + 2);
    out[0] = (unsigned char)(h >> 24);
    out[1] = (unsigned char)(h >> 16);
    out[2] = (unsigned char)(h >> 8);
    out[3] = (unsigned char)h;
    for (size_t i = 4; i < total; i++)
        out[i] ^= out[i - 4];
    return total;
}

static int kcp_flood(const char *host, const char *ports, double rate, double seconds)
{
    struct ports pt;
    parse_ports(host, ports, &pt);
    long long sent = 0, errors = 0;
    unsigned char d[64];
    double t0 = now(), end = t0 + seconds;
    while (!flood_stop && now() < end) {
        long long due = (long long)((now() - t0) * rate);
        while (sent + errors < due) {
            int fd = hostile_socket(SOCK_DGRAM);
            size_t len = kcp_first_segment(d);
            const struct sockaddr_in *dst = next_port(&pt);
            if (fd < 0 || sendto(fd, d, len, 0, (const struct sockaddr *)dst, sizeof *dst) < 0)
                errors++;
            else
                sent++;
            if (fd >= 0)
                close(fd);
        }
        usleep(1000);
    }
    double dt = now() - t0;
    printf("kcp-flood seconds=%.1f target_rate=%.0f rate=%.0f sent=%lld errors=%lld\n", dt, rate,
           (double)sent / dt, sent, errors);
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
        else if (!strcmp(argv[1], "--ack"))
            opt_ack = 1;
        else if (!strcmp(argv[1], "--poke"))
            opt_poke = 1;
        else if (!strcmp(argv[1], "--udp"))
            opt_udp = 1;
        else if (!strcmp(argv[1], "--ws") && argc > 2 && argv[2][0] == '/') {
            opt_ws = argv[2];
            argv++;
            argc--;
        } else if (!strcmp(argv[1], "--ws-frame") && argc > 2) {
            opt_ws_frame = (size_t)parse_num(argv[2], 1);
            argv++;
            argc--;
        } else if (!strcmp(argv[1], "--ws-msg") && argc > 2) {
            opt_ws_msg = (size_t)parse_num(argv[2], 0);
            argv++;
            argc--;
        } else
            usage();
        argv++;
        argc--;
    }
    if (argc < 3 || (opt_ws && opt_http))
        usage();
    const char *m = argv[1];
    if (!strcmp(m, "sink") || !strcmp(m, "source") || !strcmp(m, "echo")) {
        if (argc != 3 || opt_tls || opt_http || opt_ws || opt_ack || opt_poke)
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
    if (!strcmp(m, "slowloris") || !strcmp(m, "garbage") || !strcmp(m, "hello-flood") ||
        !strcmp(m, "kcp-flood")) {
        struct sigaction sa = {.sa_handler = on_stop};
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        if (argc != 6 || opt_http || opt_ws || opt_ack || opt_poke ||
            (opt_udp && strcmp(m, "garbage")) || (opt_udp && opt_tls) ||
            (!opt_tls && !strcmp(m, "hello-flood")) || (opt_tls && !strcmp(m, "kcp-flood")))
            usage();
        long long a = parse_num(argv[4], 1);
        double secs = (double)parse_num(argv[5], 1);
        if (!strcmp(m, "slowloris"))
            return hold_flood(1, argv[2], argv[3], (int)a, secs);
        if (!strcmp(m, "garbage"))
            return opt_udp ? udp_garbage(argv[2], argv[3], (int)a, secs)
                           : hold_flood(0, argv[2], argv[3], (int)a, secs);
        if (!strcmp(m, "hello-flood"))
            return hello_flood(argv[2], argv[3], (double)a, secs);
        return kcp_flood(argv[2], argv[3], (double)a, secs);
    }
    if (opt_udp)
        usage();
    /* connrate's PORTS: the first is the target's, for the others see below */
    char *more = strcmp(m, "connrate") ? NULL : strchr(argv[3], ',');
    if (more != NULL)
        *more++ = '\0';
    struct target t = make_target(argv[2], argv[3]);
    if (t.is_unix)
        snprintf(ws_host, sizeof ws_host, "localhost");
    else
        snprintf(ws_host, sizeof ws_host, "%s:%s", argv[2], argv[3]);
    if (!strcmp(m, "bulk-up") && argc == 5)
        return bulk_up(&t, (unsigned long long)parse_num(argv[4], 1));
    if (!strcmp(m, "bulk-down") && argc == 5)
        return bulk_down(&t, (unsigned long long)parse_num(argv[4], 1));
    if (!strcmp(m, "rr") && argc == 5)
        return rr(&t, parse_num(argv[4], 1));
    if (!strcmp(m, "connrate") && argc == 6) {
        struct target ts[FLOOD_MAXPORTS] = {t};
        int nt = 1;
        char *p;
        while (nt < FLOOD_MAXPORTS && (p = strsep(&more, ",")) != NULL)
            ts[nt++] = make_target(argv[2], p);
        return connrate(ts, nt, (double)parse_num(argv[4], 1), (int)parse_num(argv[5], 1));
    }
    if (!strcmp(m, "idle") && argc == 6)
        return idle(&t, (int)parse_num(argv[4], 1), (double)parse_num(argv[5], 0));
    if (!strcmp(m, "wait") && argc == 5)
        return wait_port(&t, parse_num(argv[4], 0));
    usage();
}

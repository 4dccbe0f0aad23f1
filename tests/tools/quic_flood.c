/*
 * quic_flood.c -- a flood of QUIC client Initials, to see what a server
 * spends on peers that never finish a handshake (and whether it answers
 * with a Retry instead).
 *
 *   quic-flood [-r RATE] [-d SECONDS] [-n MAX] [-w SECONDS] [-S] [-t]
 *              [-s SECURITY] [-k KEY] [-H HEADER] HOST PORT
 *
 * Every Initial is a real one, from a fresh ngtcp2 client connection (a
 * GnuTLS ClientHello as V2Ray's client sends it: TLS 1.3, SNI
 * quic.internal.v2ray.com, ALPN h2 and http/1.1, QUIC v1), sent from a
 * fresh UDP socket: a new ephemeral port, or with -S a random 127.x.y.z
 * address and port (loopback accepts any 127/8 source), so each looks like
 * another client. The connection is thrown away at once: nothing is ever
 * answered. -t puts a forged Retry token in each Initial.
 *
 * The outer layer of V2Ray's quicSettings (-s, -k, -H; default none) is
 * src/headers' own, linked in with the rest of the core. Each socket stays
 * open -w seconds (default 1) and is classified by the first datagram it
 * gets back: a Retry, a server Initial or Handshake (the server allocated
 * a connection), or anything else. The one line printed at the end:
 *
 *   sent=N retry=R handshake=H other=O
 *
 * Only the first byte and the version of a reply are looked at: that is
 * all the parsing of network bytes here.
 */
#include "wh_config.h"

#include <stdio.h>
#include <stdlib.h>

#ifndef WH_HAVE_MODULE_QUIC

int
main(void)
{
    fprintf(stderr, "quic-flood: built without the quic module (ngtcp2)\n");
    return 1;
}

#else

#include "wh_core.h"
#include "wh_quic_outer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#define SNI "quic.internal.v2ray.com"

static const char priority[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"
    "+CHACHA20-POLY1305:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:%DISABLE_TLS13_COMPAT_MODE";

typedef struct {
    int fd;
    double sent_at;
    int seen;
} flood_sock_t;

static struct {
    double rate, duration, linger;
    long max;
    int spoof, forge;
    struct sockaddr_in server;
    wh_quic_outer_t outer;
    gnutls_priority_t prio;
    gnutls_certificate_credentials_t cred;
    ngtcp2_callbacks callbacks;
    flood_sock_t *ring;
    size_t ring_size, head, count;
    int ep;
    unsigned long tried, sent, retry, handshake, other;
} fl;

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static ngtcp2_tstamp
now_ts(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * NGTCP2_SECONDS + (uint64_t) ts.tv_nsec;
}

/* --- one Initial ----------------------------------------------------------- */

typedef struct {
    ngtcp2_crypto_conn_ref ref;
    ngtcp2_conn *conn;
} flood_conn_t;

static ngtcp2_conn *
get_conn(ngtcp2_crypto_conn_ref *ref)
{
    return ((flood_conn_t *) ref->user_data)->conn;
}

static void
rand_cb(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
    gnutls_rnd(GNUTLS_RND_NONCE, dest, len);
}

static int
new_cid_cb(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen, void *user)
{
    gnutls_rnd(GNUTLS_RND_NONCE, cid->data, cidlen);
    cid->datalen = cidlen;
    gnutls_rnd(GNUTLS_RND_NONCE, token, NGTCP2_STATELESS_RESET_TOKENLEN);
    return 0;
}

static void
callbacks_init(ngtcp2_callbacks *cb)
{
    memset(cb, 0, sizeof(*cb));
    cb->client_initial = ngtcp2_crypto_client_initial_cb;
    cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
    cb->encrypt = ngtcp2_crypto_encrypt_cb;
    cb->decrypt = ngtcp2_crypto_decrypt_cb;
    cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
    cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
    cb->rand = rand_cb;
    cb->get_new_connection_id = new_cid_cb;
    cb->update_key = ngtcp2_crypto_update_key_cb;
    cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
    cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
    cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
    cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
}

/* A client Initial for the path local -> server, at buf + the outer
 * prefix: its inner length, or -1. */
static ssize_t
initial(uint8_t *out, size_t max, const struct sockaddr_in *local)
{
    static const gnutls_datum_t alpn[] = {
        { (unsigned char *) "h2", 2 }, { (unsigned char *) "http/1.1", 8 },
    };
    flood_conn_t fc;
    gnutls_session_t s = NULL;
    ngtcp2_path path;
    ngtcp2_settings settings;
    ngtcp2_transport_params params;
    ngtcp2_cid dcid, scid;
    uint8_t token[96];
    ngtcp2_ssize n = -1;

    memset(&fc, 0, sizeof(fc));
    path.local.addr = (ngtcp2_sockaddr *) local;
    path.local.addrlen = sizeof(*local);
    path.remote.addr = (ngtcp2_sockaddr *) &fl.server;
    path.remote.addrlen = sizeof(fl.server);
    path.user_data = NULL;
    dcid.datalen = 8;
    scid.datalen = 4;
    gnutls_rnd(GNUTLS_RND_NONCE, dcid.data, dcid.datalen);
    gnutls_rnd(GNUTLS_RND_NONCE, scid.data, scid.datalen);

    ngtcp2_settings_default(&settings);
    settings.initial_ts = now_ts();
    settings.max_tx_udp_payload_size = max;
    if (fl.forge) {
        /* the shape of one of ngtcp2's Retry tokens, not under its key */
        gnutls_rnd(GNUTLS_RND_NONCE, token, sizeof(token));
        token[0] = NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY;
        settings.token.base = token;
        settings.token.len = sizeof(token);
    }
    ngtcp2_transport_params_default(&params);
    params.initial_max_stream_data_bidi_local = 512 * 1024;
    params.initial_max_stream_data_bidi_remote = 512 * 1024;
    params.initial_max_data = 786432;
    params.initial_max_streams_bidi = 0;
    params.initial_max_streams_uni = 0;
    params.max_idle_timeout = 30 * NGTCP2_SECONDS;
    params.max_udp_payload_size = max;
    params.disable_active_migration = 1;

    if (ngtcp2_conn_client_new(&fc.conn, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1,
                               &fl.callbacks, &settings, &params, NULL, &fc) != 0)
    {
        return -1;
    }
    fc.ref.get_conn = get_conn;
    fc.ref.user_data = &fc;
    if (gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NO_END_OF_EARLY_DATA) < 0) goto done;
    gnutls_session_set_ptr(s, &fc.ref);
    if (ngtcp2_crypto_gnutls_configure_client_session(s) != 0
        || gnutls_priority_set(s, fl.prio) < 0
        || gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, fl.cred) < 0
        || gnutls_server_name_set(s, GNUTLS_NAME_DNS, SNI, sizeof(SNI) - 1) < 0
        || gnutls_alpn_set_protocols(s, alpn, 2, 0) < 0)
    {
        goto done;
    }
    ngtcp2_conn_set_tls_native_handle(fc.conn, s);
    n = ngtcp2_conn_write_pkt(fc.conn, NULL, NULL, out, max, now_ts());

done:
    ngtcp2_conn_del(fc.conn);
    if (s != NULL) gnutls_deinit(s);
    return n > 0 ? n : -1;
}

/* --- sockets --------------------------------------------------------------- */

static void
sock_close_oldest(void)
{
    flood_sock_t *fs = &fl.ring[fl.head];

    close(fs->fd);          /* leaves the epoll set with it */
    fl.head = (fl.head + 1) % fl.ring_size;
    fl.count--;
}

static int
sock_open(struct sockaddr_in *local)
{
    socklen_t len = sizeof(*local);
    int fd, tries;

    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    memset(local, 0, sizeof(*local));
    local->sin_family = AF_INET;
    for (tries = 0; fl.spoof && tries < 8; tries++) {
        uint8_t r[5];
        gnutls_rnd(GNUTLS_RND_NONCE, r, sizeof(r));
        /* 127.x.y.z, never .0 or .255, never 127.0.0.1 */
        local->sin_addr.s_addr = htonl(0x7f000000u | (uint32_t) r[0] << 16 | (uint32_t) r[1] << 8
                                       | (uint32_t) (r[2] % 254 + 1));
        if (local->sin_addr.s_addr == htonl(INADDR_LOOPBACK)) continue;
        local->sin_port = htons((uint16_t) (1024 + ((r[3] << 8 | r[4]) % 64511)));
        if (bind(fd, (struct sockaddr *) local, sizeof(*local)) == 0) break;
    }
    if ((fl.spoof && tries == 8)
        || connect(fd, (struct sockaddr *) &fl.server, sizeof(fl.server)) != 0
        || getsockname(fd, (struct sockaddr *) local, &len) != 0)
    {
        close(fd);
        return -1;
    }
    return fd;
}

static void
send_one(void)
{
    uint8_t buf[WH_QUIC_OUTER_MAX_OUTER];
    struct sockaddr_in local;
    struct epoll_event ev;
    flood_sock_t *fs;
    ssize_t n, len;
    int fd;

    if (fl.count == fl.ring_size) sock_close_oldest();
    fd = sock_open(&local);
    if (fd < 0) {
        perror("quic-flood: socket");
        exit(1);
    }
    n = initial(buf + wh_quic_outer_prefix(&fl.outer), wh_quic_outer_max_inner(&fl.outer, 0),
                &local);
    len = n > 0 ? wh_quic_outer_seal(&fl.outer, buf, sizeof(buf), n) : -1;
    if (len < 0) {
        fprintf(stderr, "quic-flood: cannot make an Initial\n");
        exit(1);
    }
    fs = &fl.ring[(fl.head + fl.count) % fl.ring_size];
    fs->fd = fd;
    fs->sent_at = now_s();
    fs->seen = 0;
    ev.events = EPOLLIN;
    ev.data.ptr = fs;
    epoll_ctl(fl.ep, EPOLL_CTL_ADD, fd, &ev);
    fl.count++;
    fl.tried++;
    if (send(fd, buf, len, 0) == len) fl.sent++;
}

static void
classify(flood_sock_t *fs, uint8_t *buf, ssize_t len)
{
    uint8_t *inner;
    ssize_t n = wh_quic_outer_open(&fl.outer, buf, len, &inner);

    fs->seen = 1;
    if (n < 5 || !(inner[0] & 0x80) || (inner[1] | inner[2] | inner[3] | inner[4]) == 0) {
        fl.other++;                 /* short header, garbage, version negotiation */
        return;
    }
    switch ((inner[0] >> 4) & 3) {
    case 3:
        fl.retry++;
        break;
    case 0:
    case 2:
        fl.handshake++;
        break;
    default:
        fl.other++;
    }
}

static void
poll_replies(int timeout_ms)
{
    struct epoll_event evs[64];
    uint8_t buf[4096];
    int n, i;

    n = epoll_wait(fl.ep, evs, 64, timeout_ms);
    for (i = 0; i < n; i++) {
        flood_sock_t *fs = evs[i].data.ptr;
        ssize_t len;

        while ((len = recv(fs->fd, buf, sizeof(buf), 0)) >= 0) {
            if (!fs->seen) classify(fs, buf, len);
        }
    }
    while (fl.count > 0 && now_s() - fl.ring[fl.head].sent_at > fl.linger) sock_close_oldest();
}

/* --- main ---------------------------------------------------------------- */

static void
usage(void)
{
    fprintf(stderr, "usage: quic-flood [-r RATE_PER_S] [-d SECONDS] [-n MAX] [-w SECONDS] [-S] "
            "[-t] [-s SECURITY] [-k KEY] [-H HEADER] HOST PORT\n");
    exit(2);
}

static volatile sig_atomic_t stopped;

static void
on_stop(int signo)
{
    stopped = 1;
}

int
main(int argc, char **argv)
{
    const char *security = "none", *key = "", *header = "none";
    wh_quic_outer_conf_t oc;
    struct addrinfo hints, *ai;
    struct rlimit rl;
    double start, t;
    int opt;

    fl.rate = 1000;
    fl.duration = 1;
    fl.linger = 1;
    fl.max = -1;
    while ((opt = getopt(argc, argv, "r:d:n:w:Sts:k:H:")) != -1) {
        switch (opt) {
        case 'r': fl.rate = atof(optarg); break;
        case 'd': fl.duration = atof(optarg); break;
        case 'n': fl.max = atol(optarg); break;
        case 'w': fl.linger = atof(optarg); break;
        case 'S': fl.spoof = 1; break;
        case 't': fl.forge = 1; break;
        case 's': security = optarg; break;
        case 'k': key = optarg; break;
        case 'H': header = optarg; break;
        default: usage();
        }
    }
    if (argc - optind != 2 || fl.rate <= 0) usage();
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(argv[optind], argv[optind + 1], &hints, &ai) != 0) {
        fprintf(stderr, "quic-flood: cannot resolve %s\n", argv[optind]);
        return 2;
    }
    memcpy(&fl.server, ai->ai_addr, sizeof(fl.server));
    freeaddrinfo(ai);

    if (wh_pkt_header_by_name(header) == NULL
        || wh_quic_outer_conf_set(&oc, security, key, wh_pkt_header_by_name(header)) != WH_OK
        || wh_quic_outer_init(&fl.outer, &oc) != WH_OK)
    {
        fprintf(stderr, "quic-flood: bad outer layer (-s/-k/-H)\n");
        return 2;
    }
    if (gnutls_priority_init(&fl.prio, priority, NULL) < 0
        || gnutls_certificate_allocate_credentials(&fl.cred) < 0)
    {
        fprintf(stderr, "quic-flood: GnuTLS fails\n");
        return 1;
    }
    callbacks_init(&fl.callbacks);

    /* a socket per Initial, kept -w seconds: as many as the rate needs */
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    fl.ring_size = (size_t) (fl.rate * fl.linger) + 16;
    if (fl.ring_size > rl.rlim_cur - 32) fl.ring_size = rl.rlim_cur - 32;
    fl.ring = calloc(fl.ring_size, sizeof(*fl.ring));
    fl.ep = epoll_create1(EPOLL_CLOEXEC);
    if (fl.ring == NULL || fl.ep < 0) return 1;

    /* a bench stops a flood with TERM: its figures must still come out */
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    start = now_s();
    for (;;) {
        t = now_s() - start;
        if (stopped || t >= fl.duration || (fl.max >= 0 && (long) fl.tried >= fl.max)) break;
        while (fl.tried < (unsigned long) (t * fl.rate) + 1
               && (fl.max < 0 || (long) fl.tried < fl.max))
        {
            send_one();
            if (now_s() - start - t > 0.01) break;      /* behind: let replies in */
        }
        poll_replies(1);
    }
    for (t = now_s(); !stopped && now_s() - t < fl.linger && fl.count > 0;) poll_replies(10);

    printf("sent=%lu retry=%lu handshake=%lu other=%lu\n", fl.sent, fl.retry, fl.handshake,
           fl.other);
    return 0;
}

#endif

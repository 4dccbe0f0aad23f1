/*
 * fuzz_stream.h -- for the fuzz targets: a scripted in-memory wh_stream_t
 * that plays the fuzzer's bytes as a client would send them, read by read,
 * and swallows what is written to it; plus a listener and a worker loop to
 * run a module's handshake without sockets. Header-only, like the unit
 * tests' conf_load.h, so every target stays one .c file.
 *
 * The input starts with a read plan, so the fuzzer chooses the chunking:
 *   byte 0        n = byte & 15 plan entries (the rest of the byte is the
 *                 target's to use as flags: wh_fuzz_flags())
 *   n x 2 bytes   little-endian: low 15 bits the size of one read (0: as
 *                 much as asked), bit 15: answer WH_AGAIN once before it
 *   the rest      the client's bytes; after the plan, reads take what they
 *                 ask for; at the end, reads see the end of stream (0)
 * A WH_AGAIN keeps the stream contract: the stream posts its on_readable.
 */
#ifndef FUZZ_STREAM_H
#define FUZZ_STREAM_H

#include "wh_cycle.h"
#include "wh_event.h"
#include "wh_handshake.h"
#include "wh_log.h"
#include "wh_relay.h"
#include "wh_stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

#define WH_FUZZ_PLAN_MAX 15

typedef struct {
    wh_stream_t s;
    wh_posted_t posted;
    const uint8_t *data;
    size_t len, pos;
    uint16_t plan[WH_FUZZ_PLAN_MAX];
    unsigned nplan, step;
    unsigned again_done:1;      /* the WH_AGAIN of plan[step] was answered */
    unsigned shut:1;
    uint8_t want;
    size_t written;             /* bytes swallowed */
    uint8_t last_write[64];     /* the start of the last write, for checks */
    size_t last_write_len;
} wh_fuzz_stream_t;

/* What the last destroyed stream had swallowed, for checks after its end. */
static size_t wh_fuzz_written;

static void
wh_fuzz_posted(wh_posted_t *ev)
{
    wh_fuzz_stream_t *fs = (wh_fuzz_stream_t *) ((char *) ev - offsetof(wh_fuzz_stream_t, posted));
    int events = fs->want;

    fs->want = 0;
    wh_stream_notify(&fs->s, events);
}

static ssize_t
wh_fuzz_read(wh_stream_t *s, void *buf, size_t size)
{
    wh_fuzz_stream_t *fs = (wh_fuzz_stream_t *) s;
    size_t n = fs->len - fs->pos;

    if (fs->step < fs->nplan) {
        uint16_t e = fs->plan[fs->step];
        if ((e & 0x8000) && !fs->again_done) {
            fs->again_done = 1;
            fs->want |= WH_EV_READ;
            wh_post(&fs->posted);
            return WH_AGAIN;
        }
        if ((e & 0x7fff) != 0) n = wh_min(n, (size_t) (e & 0x7fff));
        fs->step++;
        fs->again_done = 0;
    }
    n = wh_min(n, size);
    if (n == 0) return 0;
    memcpy(buf, fs->data + fs->pos, n);
    fs->pos += n;
    return n;
}

static ssize_t
wh_fuzz_write(wh_stream_t *s, const void *buf, size_t size)
{
    wh_fuzz_stream_t *fs = (wh_fuzz_stream_t *) s;

    if (fs->shut) abort();      /* nothing may follow the end of the stream */
    fs->written += size;
    fs->last_write_len = wh_min(size, sizeof(fs->last_write));
    memcpy(fs->last_write, buf, fs->last_write_len);
    return size;
}

static int
wh_fuzz_shutdown_write(wh_stream_t *s)
{
    ((wh_fuzz_stream_t *) s)->shut = 1;
    return WH_OK;
}

static void
wh_fuzz_wait(wh_stream_t *s, int events)
{
    wh_fuzz_stream_t *fs = (wh_fuzz_stream_t *) s;

    fs->want |= events;         /* always writable; readable: data, or its end */
    wh_post(&fs->posted);
}

static void
wh_fuzz_destroy(wh_stream_t *s)
{
    wh_fuzz_stream_t *fs = (wh_fuzz_stream_t *) s;

    wh_post_cancel(&fs->posted);
    wh_fuzz_written = fs->written;
    free(fs);
}

static const wh_stream_ops_t wh_fuzz_stream_ops = {
    .name = "fuzz",
    .read = wh_fuzz_read,
    .write = wh_fuzz_write,
    .shutdown_write = wh_fuzz_shutdown_write,
    .wait = wh_fuzz_wait,
    .splice_fd = NULL,
    .destroy = wh_fuzz_destroy,
};

/* The target's flag bits of byte 0 (0..15). */
static inline unsigned
wh_fuzz_flags(const uint8_t *data, size_t size)
{
    return size > 0 ? data[0] >> 4 : 0;
}

/* A stream playing data[0..size) by its plan; NULL if size is too short
 * for the plan. The stream reads data in place: keep it alive. */
static inline wh_fuzz_stream_t *
wh_fuzz_stream(const uint8_t *data, size_t size)
{
    wh_fuzz_stream_t *fs;
    unsigned i, n = size > 0 ? data[0] & 15 : 0;

    if (size < 1 + 2 * (size_t) n) return NULL;
    fs = calloc(1, sizeof(*fs));
    if (fs == NULL) abort();
    fs->s.ops = &wh_fuzz_stream_ops;
    fs->posted.handler = wh_fuzz_posted;
    for (i = 0; i < n; i++) {
        fs->plan[i] = (uint16_t) (data[1 + 2 * i] | data[2 + 2 * i] << 8);
    }
    fs->nplan = n;
    fs->data = data + 1 + 2 * n;
    fs->len = size - 1 - 2 * n;
    return fs;
}

/* Runs the worker loop a bounded number of rounds (a relay's idle timer
 * stays armed for minutes, and posted events are not visible from here),
 * or until no watcher is left. */
static inline void
wh_fuzz_loop_run(int rounds)
{
    while (rounds-- > 0 && ev_run(wh_loop, EVRUN_NOWAIT)) { /* void */ }
}

/* The worker's loop, and the log silenced (into /dev/null, so its
 * formatting still runs). */
static inline void
wh_fuzz_init(void)
{
    if (wh_loop == NULL) {
        wh_event_init(ev_loop_new(EVFLAG_AUTO));
        wh_log_open("/dev/null");
        wh_log_level = WH_LOG_DEBUG;
    }
}

/* wh_fuzz_init(), and a listener of module with its streamSettings given as
 * libconfig text ("" for none), relaying to the built-in echo: what a
 * worker has when a connection arrives. Aborts on a bad text. */
static inline wh_listener_t *
wh_fuzz_listener(const wh_module_t *module, const char *stream_settings)
{
    static wh_cycle_t cycle;
    static wh_stats_counters_t stats;
    static wh_upstream_conf_t echo;
    static int runtime;
    wh_listener_t *ls = calloc(1, sizeof(*ls));
    const char *err;
    config_t cfg;
    wh_conf_t cf = { .file = "fuzz.conf" };

    wh_fuzz_init();
    cycle.policy = (wh_policy_t) { .handshake = 60, .conn_idle = 300,
                                   .uplink_only = 1, .downlink_only = 1 };
    config_init(&cfg);
    if (ls == NULL || config_read_string(&cfg, stream_settings) != CONFIG_TRUE
        || (echo.nmembers == 0 && wh_upstream_parse("echo", &echo, &err) != WH_OK))
    {
        abort();
    }
    ls->tag = "fuzz";
    ls->dest.upstream = &echo;
    ls->module = module;
    ls->cycle = &cycle;
    ls->stats = &stats;
    ls->runtime = &runtime;             /* accepting, not draining */
    ls->fd = -1;
    if (wh_listener_conf(&cf, ls, config_lookup(&cfg, "streamSettings")) != WH_OK) {
        fprintf(stderr, "fuzz listener: %s\n", cf.error);
        abort();
    }
    config_destroy(&cfg);
    return ls;
}

static void
wh_fuzz_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    abort();        /* the handshakes here never wait for the clock */
}

/* A handshake as wh_handshake_start() makes one, on a scripted stream. */
static inline wh_handshake_t *
wh_fuzz_handshake(wh_listener_t *ls, wh_fuzz_stream_t *fs)
{
    wh_handshake_t *hs = calloc(1, sizeof(*hs));
    struct sockaddr_in *sin = (struct sockaddr_in *) &hs->peer;

    if (hs == NULL) abort();
    hs->ls = ls;
    wh_live_open(&hs->live, ls, WH_LIVE_STREAM);
    hs->top = &fs->s;
    hs->accepted = 1136214245;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(40000);
    sin->sin_addr.s_addr = htonl(0x7f000001);
    hs->peerlen = sizeof(*sin);
    ev_timer_init(&hs->timer, wh_fuzz_timer, 4.0, 0);
    ev_timer_start(wh_loop, &hs->timer);
    return hs;
}

/* What wh_handshake.c's advance() does with a module's handshake: call it
 * again whenever it waits for bytes (the stream keeps its promise to say
 * when), then end it. With expire, the handshake timer fires at the first
 * wait instead (the module may still answer on hs->top). Returns the last
 * answer: WH_AGAIN only when it expired. */
static inline int
wh_fuzz_run_handshake(wh_handshake_t *hs, int expire)
{
    const wh_module_t *m = hs->ls->module;
    int rc, cause;

    do {
        cause = WH_CLOSE_BAD_INPUT;
        rc = m->handshake(hs, &cause);
    } while (rc == WH_AGAIN && !expire);
    if (m->handshake_end != NULL) {
        m->handshake_end(hs, rc == WH_AGAIN);
    }
    ev_timer_stop(wh_loop, &hs->timer);
    return rc;
}

#endif

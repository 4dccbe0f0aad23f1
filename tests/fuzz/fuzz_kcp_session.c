/*
 * fuzz_kcp_session.c -- the mKCP session engine (modules/kcp/
 * wh_kcp_session.c, _recv.c, _send.c, _rto.c; transports spec 9.4-9.10)
 * driven by a script, with a fake clock, one session and no sockets, the
 * way tests/unit/test_kcp_session.c drives it.
 *
 * Input: 8 bytes of settings (mtu, tti, capacities, congestion, write
 * buffer, header size, seed, conv, the model peer's segment size), then
 * operations of one opcode byte and their argument bytes:
 *   raw      a datagram of the next bytes, decoded as the listener does and
 *            fed whole: any segment, any conv, any field;
 *   data     1-4 DATA segments of the model peer's stream, sns around
 *            rcv_next (old duplicates, reordering, beyond the window);
 *   ack      an ACK of up to 8 sns around snd_una, with a window and echo;
 *   cmd      a PING or TERMINATE (CLOSE option optional) with una,
 *            rcv_next and an RTO;
 *   advance  the clock by 0-199 ms, 1-55 s, or 2^31 ms (wrap arithmetic);
 *   write    up to 16 KiB of our own stream; read up to 4 KiB;
 *   close    the application's close; flush at the current time;
 *   ticks    1-32 flushes on the module's schedule (tti while busy or
 *            closing, 1 ms while paced, 1 s terminating, 5 s idle).
 * Two streams are modelled, with bytes a function of their offset: ours,
 * so every DATA segment the session emits (first sending or resend) must
 * carry exactly the bytes its sn was cut from; and the peer's, so what the
 * application reads must be the peer's stream from its start, unless a raw
 * datagram has slipped in DATA of its own (then only the other checks
 * hold). After each operation the queues are walked: sorted, counted,
 * inside their windows and bounds, and empty in the states that discard
 * them. Every emitted segment must encode and fit the MTU, and nothing is
 * emitted once Terminated. The session is freed per input, so LeakSanitizer
 * checks the queues and the ack list are released in every state.
 */
#include "wh_config.h"

#ifdef WH_HAVE_MODULE_KCP

#include "wh_core.h"

/* module folders are not on the include path: name it from here */
#include "../../modules/kcp/wh_kcp_session.h"
#include "../../modules/kcp/wh_kcp_crypt.h"

#include "fuzz_check.h"

/* both streams repeat with a prime period: a shifted or misplaced segment
 * shows unless the shift is a multiple of it */
#define FZ_PERIOD     65521u
#define FZ_MAX_WRITE  16383u    /* per write: a full queue is a few writes */
#define FZ_MAX_READ   4096u
#define FZ_RING       8192u     /* > send_queue + 1 with the smallest mtu */
#define FZ_MAX_SEGS   128

/* the module's flush cadence (wh_kcp_module.c) */
#define FZ_IDLE_FLUSH     5000
#define FZ_CLOSING_FLUSH  1000
#define FZ_PACE_FLUSH     1

/* The checks walk queues hundreds of segments long: left out of the
 * coverage feedback, their loop counts would read as new behaviour of the
 * session and swamp the corpus with inputs that differ only in length. */
#define FZ_NO_COVERAGE __attribute__((no_sanitize("coverage")))

static uint8_t fz_pattern[FZ_PERIOD + FZ_MAX_WRITE];

typedef struct {
    uint32_t sn;
    uint16_t len;
    uint64_t off;               /* in our stream */
} fz_sent_t;

typedef struct {
    wh_kcp_session_t k;
    wh_kcp_params_t p;
    uint32_t now;
    size_t max_dgram;           /* header + envelope + segment may not exceed */
    size_t overhead;            /* header + envelope */

    uint64_t out_off;           /* our stream: bytes the session took */
    fz_sent_t ring[FZ_RING];    /* sn -> where its bytes came from */
    uint32_t last_ts;           /* of the newest DATA emitted, for ACK echoes */

    uint16_t peer_len;          /* every peer DATA segment's payload size */
    uint64_t read_off;          /* peer stream: bytes the application read */
    int tainted;                /* a raw datagram brought DATA: no prefix check */
    int read_end;               /* a read said end of stream */

    unsigned data_out;          /* DATA emitted since the flush began */
} fz_t;

static fz_t fz;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    for (size_t i = 0; i < sizeof(fz_pattern); i++) {
        uint32_t o = (uint32_t) (i % FZ_PERIOD);
        fz_pattern[i] = (uint8_t) ((o * 2654435761u) >> 24 ^ o);
    }
    return 0;
}

static const uint8_t *
fz_stream(uint64_t off)
{
    return fz_pattern + off % FZ_PERIOD;
}

/* The output callback: the datagram sink. */
static void
fz_output(wh_kcp_session_t *k, const wh_kcp_seg_t *seg)
{
    uint8_t buf[2048];
    wh_kcp_seg_t back;
    ssize_t n;

    FZ_CHECK(k == &fz.k);
    FZ_CHECK(k->state != WH_KCP_TERMINATED);
    FZ_CHECK(seg->conv == k->conv);

    n = wh_kcp_seg_encode(seg, buf, sizeof(buf));
    FZ_CHECK(n >= WH_KCP_CMD_SIZE);
    FZ_CHECK(fz.overhead + (size_t) n <= fz.max_dgram);
    if (!(seg->cmd == WH_KCP_CMD_DATA && seg->u.data.len == 0)) {
        FZ_CHECK(wh_kcp_seg_decode(buf, (size_t) n, &back) == n);
    }

    switch (seg->cmd) {
    case WH_KCP_CMD_DATA: {
        const fz_sent_t *e = &fz.ring[seg->u.data.sn % FZ_RING];

        FZ_CHECK(k->state == WH_KCP_ACTIVE || k->state == WH_KCP_READY_TO_CLOSE);
        FZ_CHECK(seg->opt == (k->state == WH_KCP_READY_TO_CLOSE ? WH_KCP_OPT_CLOSE : 0));
        FZ_CHECK(wh_kcp_before(seg->u.data.sn, k->snd_next));
        FZ_CHECK(e->sn == seg->u.data.sn && e->len == seg->u.data.len);
        FZ_CHECK(seg->u.data.len > 0 && seg->u.data.len <= fz.p.mss);
        FZ_CHECK(memcmp(seg->u.data.payload, fz_stream(e->off), e->len) == 0);
        FZ_CHECK(seg->u.data.ts == fz.now);
        FZ_CHECK(++fz.data_out <= WH_KCP_BURST);
        fz.last_ts = seg->u.data.ts;
        break;
    }
    case WH_KCP_CMD_ACK:
        FZ_CHECK(seg->u.ack.count <= WH_KCP_ACK_MAX);
        FZ_CHECK(seg->u.ack.wnd == k->rcv_next + fz.p.recv_window);
        FZ_CHECK(seg->u.ack.rcv_next == k->rcv_next);
        break;
    case WH_KCP_CMD_PING:
    case WH_KCP_CMD_TERMINATE:
        FZ_CHECK(seg->u.cmd.rcv_next == k->rcv_next);
        break;
    default:
        FZ_CHECK(!"the session emitted an unknown cmd");
    }
}

static void
fz_flush(void)
{
    fz.data_out = 0;
    wh_kcp_flush(&fz.k, fz.now);
}

/* Queues and counters after each operation. */
FZ_NO_COVERAGE static void
fz_invariants(void)
{
    const wh_kcp_session_t *k = &fz.k;
    const wh_kcp_dseg_t *s, *last;
    uint32_t n;

    FZ_CHECK(k->state <= WH_KCP_TERMINATED);

    n = 0;
    last = NULL;
    for (s = k->rcv_head; s != NULL; s = s->next) {
        FZ_CHECK(last == NULL || wh_kcp_before(last->sn, s->sn));
        FZ_CHECK(s->sn - k->rcv_next < fz.p.recv_window);
        FZ_CHECK(s->off <= s->len);
        FZ_CHECK(s->off == 0 || s == k->rcv_head);
        last = s;
        n++;
    }
    FZ_CHECK(n == k->rcv_count && k->rcv_tail == last);
    FZ_CHECK(n <= fz.p.recv_window);

    n = 0;
    last = NULL;
    for (s = k->snd_head; s != NULL; s = s->next) {
        FZ_CHECK(last == NULL || wh_kcp_before(last->sn, s->sn));
        last = s;
        n++;
    }
    FZ_CHECK(n == k->snd_count && k->snd_tail == last);
    FZ_CHECK(n <= fz.p.send_queue + 1);
    FZ_CHECK(k->in_flight <= n);
    if (k->snd_head != NULL) {
        FZ_CHECK(k->snd_head->sn == k->snd_una);
        FZ_CHECK(wh_kcp_before(last->sn, k->snd_next));
    }

    FZ_CHECK(k->nacks <= k->acks_cap);
    FZ_CHECK((k->acks == NULL) == (k->acks_cap == 0));

    switch (k->state) {
    case WH_KCP_READY_TO_CLOSE:
        FZ_CHECK(k->rcv_head == NULL);
        break;
    case WH_KCP_PEER_CLOSED:
    case WH_KCP_PEER_TERMINATING:
        FZ_CHECK(k->snd_head == NULL);
        break;
    case WH_KCP_TERMINATING:
    case WH_KCP_TERMINATED:
        FZ_CHECK(k->rcv_head == NULL && k->snd_head == NULL);
        break;
    }
}

static void
fz_setup(const uint8_t *s)
{
    static const size_t hdr_sizes[] = { 0, 4, 13 };
    uint32_t mtu = 576 + (uint32_t) ((s[0] << 8 | s[1]) % 885);
    uint32_t tti = 10 + s[2] % 91;
    uint32_t up = s[3] & 7, down = (s[3] >> 3) & 7;
    int congestion = (s[3] >> 6) & 1, seeded = s[3] >> 7;
    size_t hdr = hdr_sizes[s[4] % 3];
    uint32_t wbuf = (s[4] >> 2) & 1;

    /* all but the ring (128 KiB): an entry is written when its sn is cut,
     * and sns start from 0 again, so a stale one is never looked at */
    memset(&fz, 0, offsetof(fz_t, ring));
    memset(&fz.last_ts, 0, sizeof(fz) - offsetof(fz_t, last_ts));
    wh_kcp_params_init(&fz.p, mtu, tti, up, down, wbuf, congestion, hdr, seeded);
    FZ_CHECK(fz.p.mss > 0 && fz.p.mss < 0xffff);
    fz.overhead = hdr + (seeded ? WH_KCP_SEED_OVERHEAD : WH_KCP_SIMPLE_OVERHEAD);
    /* spec 9.2: seed security only subtracts its tag from the MSS */
    fz.max_dgram = mtu + (seeded ? WH_KCP_SEED_NONCE_LEN : 0);
    fz.peer_len = (uint16_t) (1 + s[7] * fz.p.mss / 256);
    wh_kcp_session_init(&fz.k, &fz.p, (uint16_t) (s[5] << 8 | s[6]), fz_output, NULL);
}

/* --- the operations; each takes its bytes from *p and returns them used */

typedef struct {
    const uint8_t *p;
    size_t left;
} fz_in_t;

static int
fz_byte(fz_in_t *in)
{
    if (in->left == 0)
        return 0;
    in->left--;
    return *in->p++;
}

static void
fz_op_raw(fz_in_t *in)
{
    wh_kcp_seg_t segs[FZ_MAX_SEGS];
    size_t len = (size_t) fz_byte(in) << 8;
    uint8_t *dgram;
    int n;

    len = (len | (size_t) fz_byte(in)) % 1500;
    len = wh_min(len, in->left);
    /* its own buffer of exact size: a segment must not point past it */
    dgram = malloc(len ? len : 1);
    FZ_CHECK(dgram != NULL);
    memcpy(dgram, in->p, len);
    in->p += len;
    in->left -= len;

    n = wh_kcp_segs_decode(dgram, len, segs, FZ_MAX_SEGS, NULL);
    if (n > 0) {
        for (int i = 0; i < n && segs[i].conv == fz.k.conv; i++) {
            if (segs[i].cmd == WH_KCP_CMD_DATA)
                fz.tainted = 1;
        }
        wh_kcp_input(&fz.k, fz.now, segs, n);
    }
    free(dgram);
}

static void
fz_op_data(fz_in_t *in)
{
    wh_kcp_seg_t segs[4];
    int b = fz_byte(in), una = fz_byte(in), count = 1 + (b >> 6);
    uint32_t sn = fz.k.rcv_next + (uint32_t) (b & 0x1f) - 2;

    /* beyond the window now and then, not most of the time */
    if (b & 0x20)
        sn += fz.p.recv_window - 4;
    for (int i = 0; i < count; i++, sn++) {
        memset(&segs[i], 0, sizeof(segs[i]));
        segs[i].conv = fz.k.conv;
        segs[i].cmd = WH_KCP_CMD_DATA;
        segs[i].opt = (una & 0x80) && i == count - 1 ? WH_KCP_OPT_CLOSE : 0;
        segs[i].u.data.ts = fz.now;
        segs[i].u.data.sn = sn;
        segs[i].u.data.una = fz.k.snd_next - (uint32_t) (una & 0x7f);
        segs[i].u.data.len = fz.peer_len;
        segs[i].u.data.payload = fz_stream((uint64_t) sn * fz.peer_len);
    }
    wh_kcp_input(&fz.k, fz.now, segs, count);
}

static void
fz_op_ack(fz_in_t *in)
{
    uint32_t sns[8];
    wh_kcp_seg_t seg;
    int b = fz_byte(in), w = fz_byte(in), count = b & 7;

    memset(&seg, 0, sizeof(seg));
    seg.conv = fz.k.conv;
    seg.cmd = WH_KCP_CMD_ACK;
    seg.opt = (b & 0x80) ? WH_KCP_OPT_CLOSE : 0;
    seg.u.ack.wnd = fz.k.snd_una + (uint32_t) w * 4;
    seg.u.ack.rcv_next = fz.k.snd_una + (uint32_t) ((b >> 3) & 3);
    seg.u.ack.ts = fz.last_ts - (uint32_t) ((b >> 5) & 3) * 7;
    for (int i = 0; i < count; i++)
        sns[i] = fz.k.snd_una + (uint32_t) (fz_byte(in) % 48);
    seg.u.ack.count = (uint8_t) count;
    seg.u.ack.sn_list = sns;
    wh_kcp_input(&fz.k, fz.now, &seg, 1);
}

static void
fz_op_cmd(fz_in_t *in)
{
    wh_kcp_seg_t seg;
    int b = fz_byte(in), r = fz_byte(in);

    memset(&seg, 0, sizeof(seg));
    seg.conv = fz.k.conv;
    seg.cmd = (b & 1) ? WH_KCP_CMD_TERMINATE : WH_KCP_CMD_PING;
    seg.opt = (b & 2) ? WH_KCP_OPT_CLOSE : 0;
    seg.u.cmd.una = fz.k.rcv_next + (uint32_t) ((b >> 2) & 3);
    seg.u.cmd.rcv_next = fz.k.snd_una + (uint32_t) ((b >> 4) & 7);
    /* 255: an RTO beyond any sane value, which a peer may advertise */
    seg.u.cmd.rto = r == 255 ? 0xfffffff0u : (uint32_t) r * 40;
    wh_kcp_input(&fz.k, fz.now, &seg, 1);
}

static void
fz_op_advance(fz_in_t *in)
{
    int b = fz_byte(in);

    if (b < 200)
        fz.now += (uint32_t) b;
    else if (b < 255)
        fz.now += (uint32_t) (b - 199) * 1000;
    else
        fz.now += 0x80000000u;
}

static void
fz_op_write(fz_in_t *in)
{
    size_t size = (size_t) fz_byte(in) << 8;
    uint32_t sn0 = fz.k.snd_next, nsegs, i;
    int active = fz.k.state == WH_KCP_ACTIVE, writable = wh_kcp_writable(&fz.k);
    ssize_t n;
    size_t left;

    size = (size | (size_t) fz_byte(in)) & FZ_MAX_WRITE;
    if (size == 0)
        return;
    n = wh_kcp_write(&fz.k, fz_stream(fz.out_off), size);
    if (!active) {
        /* dropped: nobody will read it (9.10) */
        FZ_CHECK(n == (ssize_t) size && fz.k.snd_next == sn0);
        return;
    }
    if (n == WH_AGAIN) {
        FZ_CHECK(!writable && fz.k.snd_next == sn0);
        return;
    }
    FZ_CHECK(writable && n > 0 && (size_t) n <= size);

    /* cut into MSS segments in order: remember where each came from */
    nsegs = fz.k.snd_next - sn0;
    FZ_CHECK(nsegs == ((size_t) n + fz.p.mss - 1) / fz.p.mss);
    left = (size_t) n;
    for (i = 0; i < nsegs; i++) {
        fz_sent_t *e = &fz.ring[(sn0 + i) % FZ_RING];

        e->sn = sn0 + i;
        e->len = (uint16_t) wh_min(left, (size_t) fz.p.mss);
        e->off = fz.out_off;
        fz.out_off += e->len;
        left -= e->len;
    }
}

static void
fz_op_read(fz_in_t *in)
{
    static uint8_t buf[FZ_MAX_READ];
    size_t size = 1 + (size_t) fz_byte(in) * 16;
    int readable = wh_kcp_readable(&fz.k);
    uint32_t rcv_next = fz.k.rcv_next;
    ssize_t n;

    n = wh_kcp_read(&fz.k, buf, size);
    if (n == WH_AGAIN) {
        /* the module waits for readable() before it reads again; the one
         * exception is a read that only used up empty DATA segments (no
         * V2Ray peer sends them), a spurious wakeup after which readable()
         * is false */
        FZ_CHECK(!readable || (fz.k.rcv_next != rcv_next && !wh_kcp_readable(&fz.k)));
        FZ_CHECK(fz.k.state == WH_KCP_ACTIVE || fz.k.state == WH_KCP_PEER_CLOSED);
        return;
    }
    FZ_CHECK(readable);
    if (n == 0) {
        /* V2Ray's Read: a terminating peer's end of stream is only "nothing
         * in order now"; DATA still arriving is read after it (a relay has
         * stopped reading by then). Our own close ends reading for good. */
        if (fz.k.state != WH_KCP_PEER_TERMINATING)
            fz.read_end = 1;
        return;
    }
    FZ_CHECK(n > 0 && (size_t) n <= size);
    /* nothing after the end, and only the peer's own bytes in order */
    FZ_CHECK(!fz.read_end);
    if (!fz.tainted)
        FZ_CHECK(memcmp(buf, fz_stream(fz.read_off), (size_t) n) == 0);
    fz.read_off += (uint64_t) n;
}

static void
fz_op_ticks(fz_in_t *in)
{
    int rounds = 1 + fz_byte(in) % 32;
    uint32_t next;

    for (int i = 0; i < rounds && fz.k.state != WH_KCP_TERMINATED; i++) {
        if (fz.k.state == WH_KCP_TERMINATING)
            next = FZ_CLOSING_FLUSH;
        else if (fz.k.paced)
            next = FZ_PACE_FLUSH;
        else if (wh_kcp_busy(&fz.k) || fz.k.state != WH_KCP_ACTIVE)
            next = fz.p.tti;
        else
            next = FZ_IDLE_FLUSH;
        fz.now += next;
        fz_flush();
        fz_invariants();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in;

    if (size < 8)
        return 0;
    fz_setup(data);
    in.p = data + 8;
    in.left = size - 8;

    while (in.left > 0) {
        switch (fz_byte(&in) % 10) {
        case 0: fz_op_raw(&in); break;
        case 1: fz_op_data(&in); break;
        case 2: fz_op_ack(&in); break;
        case 3: fz_op_cmd(&in); break;
        case 4: fz_op_advance(&in); break;
        case 5: fz_op_write(&in); break;
        case 6: fz_op_read(&in); break;
        case 7: wh_kcp_close(&fz.k, fz.now); break;
        case 8: fz_flush(); break;
        default: fz_op_ticks(&in); break;
        }
        fz_invariants();
    }
    wh_kcp_session_free(&fz.k);
    FZ_CHECK(fz.k.rcv_head == NULL && fz.k.snd_head == NULL && fz.k.acks == NULL);
    return 0;
}

#else

#include "fuzz_check.h"

/* mKCP left out by ./configure: nothing to fuzz */
FZ_NOTHING_TO_FUZZ

#endif

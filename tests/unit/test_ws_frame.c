/*
 * test_ws_frame.c -- the WebSocket frame codec (modules/ws/wh_ws_frame.c):
 * in-place decoding of masked client frames cut at any point, fragments and
 * control frames between them, every violation of spec 4.4 with its reason,
 * the close rules, and the server frames and accept key byte for byte.
 */
#include "wh_config.h"

#ifdef WH_HAVE_MODULE_WS

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "wh_core.h"

/* module folders are not on the include path: name it from here */
#include "../../modules/ws/wh_ws_frame.h"

#define FIN     0x80
#define OP_CONT 0x0
#define OP_TEXT 0x1
#define OP_BIN  0x2
#define OP_CLOSE 0x8
#define OP_PING 0x9
#define OP_PONG 0xa

/* RFC 6455 5.7's key: four different bytes, so a wrong phase shows */
static const uint8_t key_rfc[4] = { 0x37, 0xfa, 0x21, 0x3d };

/* big enough for the 70000-byte frame and a few more around it */
static uint8_t in[140000];
static uint8_t out[140000];
static uint8_t scratch[140000];
static uint8_t payload[140000];

/*
 * Writes one client frame: b0 is FIN|RSV|opcode as sent; masked frames use
 * key. The length takes the shortest form. Returns the frame's size.
 */
static size_t
frame_key(uint8_t *dst, uint8_t b0, int masked, const uint8_t key[4], const void *data, size_t len)
{
    const uint8_t *p = data;
    uint8_t mbit = masked ? 0x80 : 0;
    size_t n = 0, i;

    dst[n++] = b0;
    if (len < 126) {
        dst[n++] = (uint8_t) (mbit | len);
    } else if (len <= 0xffff) {
        dst[n++] = mbit | 126;
        dst[n++] = (uint8_t) (len >> 8);
        dst[n++] = (uint8_t) len;
    } else {
        dst[n++] = mbit | 127;
        for (i = 0; i < 8; i++) {
            dst[n++] = (uint8_t) ((uint64_t) len >> (56 - 8 * i));
        }
    }
    if (masked) {
        memcpy(dst + n, key, 4);
        n += 4;
    }
    for (i = 0; i < len; i++) {
        dst[n + i] = p[i] ^ (masked ? key[i & 3] : 0);
    }
    return n + len;
}

/* the usual case: a masked frame with the RFC's key */
static size_t
frame(uint8_t *dst, uint8_t b0, const void *data, size_t len)
{
    return frame_key(dst, b0, 1, key_rfc, data, len);
}

static void
pattern(uint8_t *p, size_t n, unsigned seed)
{
    size_t i;

    for (i = 0; i < n; i++) {
        p[i] = (uint8_t) (i * 7 + seed + (i >> 8));
    }
}

/*
 * Feeds src[0..len) in pieces of at most step bytes, each copied into a
 * scratch buffer as a socket read would fill it, and appends the data bytes
 * each call leaves at the front of that buffer to dst. Returns their total.
 */
static size_t
feed(wh_ws_decoder_t *d, const uint8_t *src, size_t len, size_t step, uint8_t *dst)
{
    size_t off = 0, total = 0, n, got;

    while (off < len) {
        n = len - off < step ? len - off : step;
        memcpy(scratch, src + off, n);
        got = wh_ws_decode(d, scratch, n);
        assert_true(got <= n);
        memcpy(dst + total, scratch, got);
        total += got;
        off += n;
    }
    return total;
}

/* Decodes src on fresh decoders, cut in several ways; checks the violation's reason. */
static void
expect_violation(const uint8_t *src, size_t len, const char *reason)
{
    wh_ws_decoder_t d;
    size_t step;

    /* the reason must not depend on how the input is cut */
    for (step = 1; step <= len; step = step * 2 + 1) {
        wh_ws_decoder_init(&d);
        feed(&d, src, len, step, out);
        assert_int_equal(d.close_code, WH_WS_CLOSE_PROTOCOL);
        assert_int_equal(d.close_received, 0);
        assert_non_null(d.close_reason);
        assert_string_equal(d.close_reason, reason);
    }
}

static void
test_rfc_example(void **state)
{
    /* RFC 6455 5.7: a single-frame masked text message "Hello" */
    uint8_t buf[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    wh_ws_decoder_t d;

    wh_ws_decoder_init(&d);
    assert_int_equal(wh_ws_decode(&d, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "Hello", 5);
    assert_int_equal(d.close_code, 0);
    assert_int_equal(d.pong_pending, 0);
}

static void
test_binary_and_text(void **state)
{
    wh_ws_decoder_t d;
    size_t n;

    wh_ws_decoder_init(&d);
    n = frame(in, FIN | OP_BIN, "\x00\x01\xff", 3);
    assert_int_equal(wh_ws_decode(&d, in, n), 3);
    assert_memory_equal(in, "\x00\x01\xff", 3);

    /* text is data too (spec 4.4), and its bytes are not checked as UTF-8 */
    n = frame(in, FIN | OP_TEXT, "\xc3\x28text", 6);
    assert_int_equal(wh_ws_decode(&d, in, n), 6);
    assert_memory_equal(in, "\xc3\x28text", 6);
    assert_int_equal(d.close_code, 0);
}

static void
test_fragments_concatenate(void **state)
{
    wh_ws_decoder_t d;
    size_t n = 0;

    n += frame(in + n, OP_BIN, "Hel", 3);
    n += frame(in + n, OP_CONT, "lo ", 3);
    n += frame(in + n, FIN | OP_CONT, "world", 5);
    /* the message is over: a new one may start, a text one fragmented too */
    n += frame(in + n, OP_TEXT, "!", 1);
    n += frame(in + n, FIN | OP_CONT, "?", 1);
    n += frame(in + n, FIN | OP_BIN, "", 0);

    wh_ws_decoder_init(&d);
    assert_int_equal(wh_ws_decode(&d, in, n), 13);
    assert_memory_equal(in, "Hello world!?", 13);
    assert_int_equal(d.close_code, 0);
}

/* Decodes src in three pieces cut at s1 and s2; appends the data to dst. */
static size_t
feed3(wh_ws_decoder_t *d, const uint8_t *src, size_t len, size_t s1, size_t s2, uint8_t *dst)
{
    const size_t cut[4] = { 0, s1, s2, len };
    size_t i, got, total = 0;

    for (i = 0; i < 3; i++) {
        memcpy(scratch, src + cut[i], cut[i + 1] - cut[i]);
        got = wh_ws_decode(d, scratch, cut[i + 1] - cut[i]);
        memcpy(dst + total, scratch, got);
        total += got;
    }
    return total;
}

static void
test_every_split(void **state)
{
    static const uint8_t keys[][4] = {
        { 0x37, 0xfa, 0x21, 0x3d }, { 0x00, 0x00, 0x00, 0x00 }, { 0xff, 0x01, 0x80, 0x7f },
    };
    wh_ws_decoder_t d;
    uint8_t data[40];
    size_t k, n, s1, s2;

    /* 40 bytes: long enough for the word-wise unmasking and its byte tail */
    pattern(data, sizeof(data), 3);

    for (k = 0; k < wh_nelems(keys); k++) {
        n = frame_key(in, FIN | OP_BIN, 1, keys[k], data, sizeof(data));
        /* two cuts anywhere: every mask phase at the start of every piece,
         * and every cut inside the header */
        for (s1 = 0; s1 <= n; s1++) {
            for (s2 = s1; s2 <= n; s2++) {
                wh_ws_decoder_init(&d);
                assert_int_equal(feed3(&d, in, n, s1, s2, out), sizeof(data));
                assert_memory_equal(out, data, sizeof(data));
                assert_int_equal(d.close_code, 0);
            }
        }
    }
}

/*
 * The word-wise unmasking at every source alignment, length 0..64 and mask
 * phase, both in place (a payload continued from an earlier read) and slid
 * to the front over the header (a frame whole in one read).
 */
static void
test_unmask_alignments(void **state)
{
    static uint8_t buf[256] __attribute__((aligned(16)));
    wh_ws_decoder_t d;
    uint8_t data[64 + 3];
    size_t len, align, ph, n, h;

    pattern(data, sizeof(data), 9);

    for (len = 0; len <= 64; len++) {
        n = frame(in, FIN | OP_BIN, data, len + 3);
        h = n - (len + 3);

        for (align = 0; align < 16; align++) {
            /* ph payload bytes come first, so the rest starts at mask phase ph */
            for (ph = 0; ph <= 3; ph++) {
                wh_ws_decoder_init(&d);
                memcpy(scratch, in, h + ph);
                assert_int_equal(wh_ws_decode(&d, scratch, h + ph), ph);
                memcpy(buf + align, in + h + ph, len);
                assert_int_equal(wh_ws_decode(&d, buf + align, len), len);
                assert_memory_equal(buf + align, data + ph, len);
            }

            /* the whole frame at buf + align: the payload slides over the header */
            wh_ws_decoder_init(&d);
            memcpy(buf + align, in, h + len);
            assert_int_equal(wh_ws_decode(&d, buf + align, h + len), len);
            assert_memory_equal(buf + align, data, len);
        }
    }
}

/*
 * What a V2Ray client sends (gorilla/websocket): 2048-byte messages, and a
 * longer one as a 4096-byte frame and continuations, each with its own mask
 * key. However the stream is cut into reads, each call returns every data
 * byte its piece carries, across frame boundaries, so a read fills the
 * relay's buffer rather than giving one frame.
 */
static void
test_reads_span_frames(void **state)
{
    static const size_t steps[] = { 65536, 16384, 5000, 2056, 2055, 777 };
    wh_ws_decoder_t d;
    uint8_t key[4];
    size_t n = 0, total = 0, m, f, i, off, got, piece, data_in;
    size_t ends[64], nframes = 0;

    pattern(payload, 3 * 2048 + 10000, 17);
    for (m = 0; m < 4; m++) {
        size_t mlen = m < 3 ? 2048 : 10000;

        for (f = 0; f < mlen; f += 4096) {
            size_t flen = mlen - f < 4096 ? mlen - f : 4096;
            uint8_t b0 = (f == 0 ? OP_BIN : OP_CONT) | (f + flen == mlen ? FIN : 0);

            for (i = 0; i < 4; i++) {
                key[i] = (uint8_t) (m * 31 + f + i * 77 + 1);
            }
            n += frame_key(in + n, b0, 1, key, payload + total, flen);
            total += flen;
            ends[nframes++] = n;
        }
    }

    for (i = 0; i < wh_nelems(steps); i++) {
        wh_ws_decoder_init(&d);
        for (off = 0, got = 0; off < n; off += piece) {
            piece = n - off < steps[i] ? n - off : steps[i];
            /* the data bytes this piece holds: all but the headers in it */
            data_in = piece;
            for (f = 0, m = 0; f < nframes; m = ends[f++]) {
                size_t hs = m, he = m + ((in[m + 1] & 0x7f) == 126 ? 8 : 6);

                hs = hs > off ? hs : off;
                he = he < off + piece ? he : off + piece;
                if (he > hs) data_in -= he - hs;
            }
            memcpy(scratch, in + off, piece);
            assert_int_equal(wh_ws_decode(&d, scratch, piece), data_in);
            memcpy(out + got, scratch, data_in);
            got += data_in;
        }
        assert_int_equal(got, total);
        assert_memory_equal(out, payload, total);
        assert_int_equal(d.close_code, 0);
    }
}

static void
test_one_byte_at_a_time(void **state)
{
    wh_ws_decoder_t d;
    uint8_t expect[406];
    size_t n = 0, got;

    pattern(expect, sizeof(expect), 11);
    n += frame(in + n, OP_BIN, expect, 100);
    n += frame(in + n, FIN | OP_PING, "hi", 2);
    n += frame(in + n, FIN | OP_CONT, expect + 100, 300);     /* the 16-bit length form */
    n += frame(in + n, FIN | OP_PONG, "x", 1);
    n += frame(in + n, FIN | OP_TEXT, expect + 400, 6);
    n += frame(in + n, FIN | OP_BIN, "", 0);

    wh_ws_decoder_init(&d);
    got = feed(&d, in, n, 1, out);
    assert_int_equal(got, sizeof(expect));
    assert_memory_equal(out, expect, sizeof(expect));
    assert_int_equal(d.pong_pending, 1);
    assert_int_equal(d.pong_len, 2);
    assert_memory_equal(d.pong, "hi", 2);
    assert_int_equal(d.close_code, 0);
}

static void
test_length_forms(void **state)
{
    static const size_t lens[] = { 125, 126, 65535, 65536, 70000 };
    static const uint8_t len7[] = { 125, 126, 126, 127, 127 };
    wh_ws_decoder_t d;
    size_t i, n, step;

    for (i = 0; i < wh_nelems(lens); i++) {
        pattern(payload, lens[i], (unsigned) i);
        n = frame(in, FIN | OP_BIN, payload, lens[i]);
        assert_int_equal(in[1], 0x80 | len7[i]);

        /* in place, one call */
        wh_ws_decoder_init(&d);
        memcpy(scratch, in, n);
        assert_int_equal(wh_ws_decode(&d, scratch, n), lens[i]);
        assert_memory_equal(scratch, payload, lens[i]);

        /* in reads of odd sizes, so the extended length is cut too */
        for (step = 3; step < 5000; step = step * 7 + 2) {
            wh_ws_decoder_init(&d);
            assert_int_equal(feed(&d, in, n, step, out), lens[i]);
            assert_memory_equal(out, payload, lens[i]);
            assert_int_equal(d.close_code, 0);
        }
    }
}

static void
test_multiple_frames_one_buffer(void **state)
{
    wh_ws_decoder_t d;
    uint8_t big[1000];
    size_t n = 0;

    pattern(big, sizeof(big), 5);
    n += frame(in + n, FIN | OP_BIN, "one", 3);
    n += frame(in + n, FIN | OP_BIN, big, sizeof(big));
    n += frame(in + n, FIN | OP_TEXT, "three", 5);

    wh_ws_decoder_init(&d);
    assert_int_equal(wh_ws_decode(&d, in, n), 3 + sizeof(big) + 5);
    assert_memory_equal(in, "one", 3);
    assert_memory_equal(in + 3, big, sizeof(big));
    assert_memory_equal(in + 3 + sizeof(big), "three", 5);
}

static void
test_ping_between_fragments(void **state)
{
    wh_ws_decoder_t d;
    uint8_t pong[WH_WS_CONTROL_FRAME_MAX];
    size_t n = 0;

    n += frame(in + n, OP_BIN, "abc", 3);
    n += frame(in + n, FIN | OP_PING, "ping!", 5);
    n += frame(in + n, FIN | OP_CONT, "def", 3);

    wh_ws_decoder_init(&d);
    assert_int_equal(wh_ws_decode(&d, in, n), 6);
    assert_memory_equal(in, "abcdef", 6);
    assert_int_equal(d.pong_pending, 1);
    assert_int_equal(d.pong_len, 5);
    assert_memory_equal(d.pong, "ping!", 5);
    assert_int_equal(d.close_code, 0);

    /* the answer the caller sends at once (spec 4.4) */
    assert_int_equal(wh_ws_control_frame(pong, WH_WS_OP_PONG, d.pong, d.pong_len), 7);
    assert_memory_equal(pong, "\x8a\x05ping!", 7);
}

static void
test_latest_ping_wins(void **state)
{
    wh_ws_decoder_t d;
    size_t n = 0;

    n += frame(in + n, FIN | OP_PING, "first", 5);
    n += frame(in + n, FIN | OP_PING, "2nd", 3);

    wh_ws_decoder_init(&d);
    assert_int_equal(wh_ws_decode(&d, in, n), 0);
    assert_int_equal(d.pong_pending, 1);
    assert_int_equal(d.pong_len, 3);
    assert_memory_equal(d.pong, "2nd", 3);

    /* a ping cut in half leaves the pending answer alone until it is whole */
    n = frame(in, FIN | OP_PING, "third", 5);
    assert_int_equal(wh_ws_decode(&d, in, 4), 0);
    assert_int_equal(d.pong_len, 3);
    assert_memory_equal(d.pong, "2nd", 3);
    assert_int_equal(wh_ws_decode(&d, in + 4, n - 4), 0);
    assert_int_equal(d.pong_len, 5);
    assert_memory_equal(d.pong, "third", 5);

    /* empty ping: an empty pong is owed */
    d.pong_pending = 0;
    n = frame(in, FIN | OP_PING, "", 0);
    assert_int_equal(wh_ws_decode(&d, in, n), 0);
    assert_int_equal(d.pong_pending, 1);
    assert_int_equal(d.pong_len, 0);
}

/* a pong is no data, and says the client read everything before it */
static void
test_pong_received(void **state)
{
    wh_ws_decoder_t d;
    size_t n = 0;

    n += frame(in + n, OP_BIN, "ab", 2);
    n += frame(in + n, FIN | OP_PONG, "unsolicited", 11);
    n += frame(in + n, FIN | OP_CONT, "cd", 2);

    wh_ws_decoder_init(&d);
    assert_int_equal(d.pong_received, 0);
    assert_int_equal(wh_ws_decode(&d, in, n), 4);
    assert_memory_equal(in, "abcd", 4);
    assert_int_equal(d.pong_pending, 0);
    assert_int_equal(d.pong_received, 1);
    assert_int_equal(d.close_code, 0);
}

static void
test_close_with_code(void **state)
{
    wh_ws_decoder_t d;
    uint8_t reply[WH_WS_CONTROL_FRAME_MAX];
    size_t n = 0;

    n += frame(in + n, FIN | OP_BIN, "ab", 2);
    n += frame(in + n, FIN | OP_CLOSE, "\x03\xe9going away", 12);

    wh_ws_decoder_init(&d);
    /* the data before the close is still delivered */
    assert_int_equal(wh_ws_decode(&d, in, n), 2);
    assert_memory_equal(in, "ab", 2);
    assert_int_equal(d.close_code, 1001);
    assert_int_equal(d.close_received, 1);

    /* the reply carries the same code and no reason (spec 4.4) */
    assert_int_equal(wh_ws_close_frame(reply, d.close_code, NULL), 4);
    assert_memory_equal(reply, "\x88\x02\x03\xe9", 4);

    /* any code is taken as is */
    wh_ws_decoder_init(&d);
    n = frame(in, FIN | OP_CLOSE, "\x0b\xb8", 2);
    assert_int_equal(wh_ws_decode(&d, in, n), 0);
    assert_int_equal(d.close_code, 3000);
    assert_int_equal(d.close_received, 1);
}

static void
test_close_empty(void **state)
{
    wh_ws_decoder_t d;
    uint8_t reply[WH_WS_CONTROL_FRAME_MAX];
    size_t n;

    n = frame(in, FIN | OP_CLOSE, "", 0);
    wh_ws_decoder_init(&d);
    assert_int_equal(wh_ws_decode(&d, in, n), 0);
    assert_int_equal(d.close_code, WH_WS_CLOSE_NO_STATUS);
    assert_int_equal(d.close_received, 1);

    /* 1005 is never sent: the reply is an empty close */
    assert_int_equal(wh_ws_close_frame(reply, d.close_code, NULL), 2);
    assert_memory_equal(reply, "\x88\x00", 2);
}

static void
test_close_one_byte(void **state)
{
    size_t n = frame(in, FIN | OP_CLOSE, "\x03", 1);

    expect_violation(in, n, "invalid close payload");

    /* code 0 would read as "no close yet" */
    n = frame(in, FIN | OP_CLOSE, "\x00\x00", 2);
    expect_violation(in, n, "invalid close payload");
}

static void
test_unmasked(void **state)
{
    size_t n = frame_key(in, FIN | OP_BIN, 0, key_rfc, "data", 4);

    expect_violation(in, n, "bad MASK");

    n = frame_key(in, FIN | OP_PING, 0, key_rfc, "", 0);
    expect_violation(in, n, "bad MASK");
}

static void
test_rsv_bits(void **state)
{
    static const uint8_t rsv[] = { 0x40, 0x20, 0x10, 0x70 };
    size_t i, n;

    for (i = 0; i < wh_nelems(rsv); i++) {
        n = frame(in, FIN | rsv[i] | OP_BIN, "data", 4);
        expect_violation(in, n, "reserved bits set");
        n = frame(in, FIN | rsv[i] | OP_PING, "", 0);
        expect_violation(in, n, "reserved bits set");
    }
}

static void
test_unknown_opcodes(void **state)
{
    static const uint8_t ops[] = { 3, 4, 5, 6, 7, 11, 12, 13, 14, 15 };
    size_t i, n;

    for (i = 0; i < wh_nelems(ops); i++) {
        n = frame(in, FIN | ops[i], "x", 1);
        expect_violation(in, n, "unknown opcode");
    }
}

static void
test_control_without_fin(void **state)
{
    static const uint8_t ops[] = { OP_CLOSE, OP_PING, OP_PONG };
    size_t i, n;

    for (i = 0; i < wh_nelems(ops); i++) {
        n = frame(in, ops[i], "\x03\xe8", 2);
        expect_violation(in, n, "fragmented control frame");
    }
}

static void
test_control_too_long(void **state)
{
    wh_ws_decoder_t d;
    size_t n;

    pattern(payload, 126, 9);
    n = frame(in, FIN | OP_PING, payload, 126);
    expect_violation(in, n, "control frame too long");
    n = frame(in, FIN | OP_CLOSE, payload, 126);
    expect_violation(in, n, "control frame too long");

    /* 125 is the limit and fits */
    n = frame(in, FIN | OP_PING, payload, 125);
    wh_ws_decoder_init(&d);
    assert_int_equal(feed(&d, in, n, 1, out), 0);
    assert_int_equal(d.close_code, 0);
    assert_int_equal(d.pong_len, 125);
    assert_memory_equal(d.pong, payload, 125);
}

static void
test_unexpected_continuation(void **state)
{
    wh_ws_decoder_t d;
    size_t n = 0;

    n = frame(in, FIN | OP_CONT, "x", 1);
    expect_violation(in, n, "unexpected continuation");

    /* after a final frame the message is over */
    n = 0;
    n += frame(in + n, OP_BIN, "ab", 2);
    n += frame(in + n, FIN | OP_CONT, "cd", 2);
    n += frame(in + n, OP_CONT, "ef", 2);
    expect_violation(in, n, "unexpected continuation");

    wh_ws_decoder_init(&d);
    assert_int_equal(wh_ws_decode(&d, in, n), 4);
    assert_memory_equal(in, "abcd", 4);
}

static void
test_expected_continuation(void **state)
{
    wh_ws_decoder_t d;
    size_t n = 0;

    n += frame(in + n, OP_BIN, "ab", 2);
    n += frame(in + n, FIN | OP_BIN, "cd", 2);
    expect_violation(in, n, "expected continuation");

    /* the data before the violation is still handed back */
    wh_ws_decoder_init(&d);
    assert_int_equal(wh_ws_decode(&d, in, n), 2);
    assert_memory_equal(in, "ab", 2);

    n = 0;
    n += frame(in + n, OP_TEXT, "ab", 2);
    n += frame(in + n, FIN | OP_PING, "", 0);
    n += frame(in + n, FIN | OP_TEXT, "cd", 2);
    expect_violation(in, n, "expected continuation");
}

static void
test_length_msb(void **state)
{
    wh_ws_decoder_t d;
    size_t n;
    uint8_t hdr[14] = { FIN | OP_BIN, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0,
                        0x37, 0xfa, 0x21, 0x3d };

    /* 2^63 */
    expect_violation(hdr, sizeof(hdr), "frame too long");

    /* 2^63 - 1 is a legal (if endless) frame: its bytes flow */
    hdr[2] = 0x7f;
    memset(hdr + 3, 0xff, 7);
    n = sizeof(hdr);
    memcpy(in, hdr, n);
    in[n++] = 'a' ^ 0x37;
    in[n++] = 'b' ^ 0xfa;
    in[n++] = 'c' ^ 0x21;
    wh_ws_decoder_init(&d);
    assert_int_equal(wh_ws_decode(&d, in, n), 3);
    assert_memory_equal(in, "abc", 3);
    assert_int_equal(d.close_code, 0);
}

static void
test_after_close_ignored(void **state)
{
    wh_ws_decoder_t d;
    size_t n = 0;

    n += frame(in + n, FIN | OP_BIN, "ab", 2);
    n += frame(in + n, FIN | OP_CLOSE, "\x03\xe8", 2);
    n += frame(in + n, FIN | OP_BIN, "zz", 2);
    n += frame(in + n, FIN | OP_PING, "p", 1);
    in[n++] = 0x00;                         /* garbage: not even looked at */

    wh_ws_decoder_init(&d);
    assert_int_equal(wh_ws_decode(&d, in, n), 2);
    assert_memory_equal(in, "ab", 2);
    assert_int_equal(d.close_code, WH_WS_CLOSE_NORMAL);
    assert_int_equal(d.close_received, 1);
    assert_int_equal(d.pong_pending, 0);

    /* later reads give nothing */
    n = frame(in, FIN | OP_BIN, "more", 4);
    assert_int_equal(wh_ws_decode(&d, in, n), 0);
    assert_int_equal(d.close_code, WH_WS_CLOSE_NORMAL);
    assert_int_equal(d.close_received, 1);
}

static void
test_violation_is_final(void **state)
{
    wh_ws_decoder_t d;
    size_t n;

    n = frame_key(in, FIN | OP_BIN, 0, key_rfc, "x", 1);
    wh_ws_decoder_init(&d);
    assert_int_equal(wh_ws_decode(&d, in, n), 0);
    assert_string_equal(d.close_reason, "bad MASK");

    n = frame(in, FIN | OP_CLOSE, "\x03\xe8", 2);
    assert_int_equal(wh_ws_decode(&d, in, n), 0);
    n = frame(in, FIN | OP_BIN, "x", 1);
    assert_int_equal(wh_ws_decode(&d, in, n), 0);
    assert_int_equal(d.close_code, WH_WS_CLOSE_PROTOCOL);
    assert_int_equal(d.close_received, 0);
    assert_string_equal(d.close_reason, "bad MASK");
}

static void
test_accept_key(void **state)
{
    static const char sample[] = "dGhlIHNhbXBsZSBub25jZQ==";
    char key[301];
    char acc[29];

    /* RFC 6455 1.3 (and spec 10) */
    wh_ws_accept_key(sample, strlen(sample), acc);
    assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

    /* the key is not validated (spec 4.3): any length gets Go's answer */
    memset(key, 'x', 129);
    wh_ws_accept_key(key, 128, acc);
    assert_string_equal(acc, "d5DxsU9is+/O9m7nTbwV0cK0jLc=");
    wh_ws_accept_key(key, 129, acc);
    assert_string_equal(acc, "AWxa10On0RzTakadOhaOiftnrOM=");
    for (int i = 0; i < 30; i++) {
        memcpy(key + 10 * i, "abcdefghij", 10);
    }
    wh_ws_accept_key(key, 300, acc);
    assert_string_equal(acc, "7zb7wA3UmzWpp9aAReAnPxzHMqM=");
}

static void
test_frame_header(void **state)
{
    uint8_t h[10];

    assert_int_equal(wh_ws_frame_header(h, WH_WS_OP_BINARY, 0), 2);
    assert_memory_equal(h, "\x82\x00", 2);
    assert_int_equal(wh_ws_frame_header(h, WH_WS_OP_BINARY, 125), 2);
    assert_memory_equal(h, "\x82\x7d", 2);
    assert_int_equal(wh_ws_frame_header(h, WH_WS_OP_BINARY, 126), 4);
    assert_memory_equal(h, "\x82\x7e\x00\x7e", 4);
    assert_int_equal(wh_ws_frame_header(h, WH_WS_OP_BINARY, 65535), 4);
    assert_memory_equal(h, "\x82\x7e\xff\xff", 4);
    assert_int_equal(wh_ws_frame_header(h, WH_WS_OP_BINARY, 65536), 10);
    assert_memory_equal(h, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    assert_int_equal(wh_ws_frame_header(h, WH_WS_OP_TEXT, 0x0102030405ULL), 10);
    assert_memory_equal(h, "\x81\x7f\x00\x00\x00\x01\x02\x03\x04\x05", 10);
}

static void
test_close_frame(void **state)
{
    uint8_t f[WH_WS_CONTROL_FRAME_MAX];
    char reason[200];

    assert_int_equal(wh_ws_close_frame(f, WH_WS_CLOSE_NORMAL, NULL), 4);
    assert_memory_equal(f, "\x88\x02\x03\xe8", 4);

    assert_int_equal(wh_ws_close_frame(f, WH_WS_CLOSE_PROTOCOL, "bad MASK"), 12);
    assert_memory_equal(f, "\x88\x0a\x03\xea" "bad MASK", 12);

    assert_int_equal(wh_ws_close_frame(f, WH_WS_CLOSE_TOO_BIG, ""), 4);
    assert_memory_equal(f, "\x88\x02\x03\xf1", 4);

    assert_int_equal(wh_ws_close_frame(f, WH_WS_CLOSE_NO_STATUS, "dropped"), 2);
    assert_memory_equal(f, "\x88\x00", 2);

    /* a control payload is at most 125 bytes: the reason is cut at 123 */
    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    assert_int_equal(wh_ws_close_frame(f, WH_WS_CLOSE_PROTOCOL, reason), 127);
    assert_int_equal(f[1], 125);
    assert_memory_equal(f + 4, reason, 123);
}

static void
test_pong_frame(void **state)
{
    uint8_t f[WH_WS_CONTROL_FRAME_MAX];

    assert_int_equal(wh_ws_control_frame(f, WH_WS_OP_PONG, (const uint8_t *) "hello", 5), 7);
    assert_memory_equal(f, "\x8a\x05hello", 7);
    assert_int_equal(wh_ws_control_frame(f, WH_WS_OP_PONG, NULL, 0), 2);
    assert_memory_equal(f, "\x8a\x00", 2);
    assert_int_equal(wh_ws_control_frame(f, WH_WS_OP_PING, NULL, 0), 2);
    assert_memory_equal(f, "\x89\x00", 2);

    pattern(payload, 125, 1);
    assert_int_equal(wh_ws_control_frame(f, WH_WS_OP_PONG, payload, 125), 127);
    assert_int_equal(f[1], 125);
    assert_memory_equal(f + 2, payload, 125);
}

static void
test_decoder_is_small(void **state)
{
    /* the reason for this codec: wslay held ~9.4 KiB a connection */
    assert_true(sizeof(wh_ws_decoder_t) <= 512);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_example),
        cmocka_unit_test(test_binary_and_text),
        cmocka_unit_test(test_fragments_concatenate),
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_unmask_alignments),
        cmocka_unit_test(test_reads_span_frames),
        cmocka_unit_test(test_one_byte_at_a_time),
        cmocka_unit_test(test_length_forms),
        cmocka_unit_test(test_multiple_frames_one_buffer),
        cmocka_unit_test(test_ping_between_fragments),
        cmocka_unit_test(test_latest_ping_wins),
        cmocka_unit_test(test_pong_received),
        cmocka_unit_test(test_close_with_code),
        cmocka_unit_test(test_close_empty),
        cmocka_unit_test(test_close_one_byte),
        cmocka_unit_test(test_unmasked),
        cmocka_unit_test(test_rsv_bits),
        cmocka_unit_test(test_unknown_opcodes),
        cmocka_unit_test(test_control_without_fin),
        cmocka_unit_test(test_control_too_long),
        cmocka_unit_test(test_unexpected_continuation),
        cmocka_unit_test(test_expected_continuation),
        cmocka_unit_test(test_length_msb),
        cmocka_unit_test(test_after_close_ignored),
        cmocka_unit_test(test_violation_is_final),
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_frame_header),
        cmocka_unit_test(test_close_frame),
        cmocka_unit_test(test_pong_frame),
        cmocka_unit_test(test_decoder_is_small),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* the module is not built: nothing to test */

#include <stdio.h>

int
main(void)
{
    puts("skipped: module not built");
    return 0;
}

#endif

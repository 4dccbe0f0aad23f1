/*
 * fuzz_ws_frame.c -- the websocket frame codec (modules/ws/wh_ws_frame.c).
 *
 * The decoder promises that input may be split anywhere, so the same bytes
 * are decoded twice: in one piece, and in the chunks the input's plan
 * chooses (byte 0: n, then n chunk sizes, cycled). Both must give the same
 * payload bytes and end in the same state (close code and reason, the
 * pending pong). Then the encoder is checked against the decoder: the
 * payload goes out as a server frame, which masked as a client would mask
 * it must decode to the same bytes; the close and pong builders must
 * produce frames the decoder reads back as what was put in.
 *
 * The helpers that only copy and mask bytes are left out of the coverage
 * feedback: their loop compares, run over a 64 KiB frame, were half of the
 * time and tell libFuzzer nothing about the codec.
 */
#include "../../modules/ws/wh_ws_frame.h"

#include <stdlib.h>
#include <string.h>

#define NO_COVERAGE __attribute__((no_sanitize("coverage")))

static void
same_state(const wh_ws_decoder_t *a, const wh_ws_decoder_t *b)
{
    if (a->close_code != b->close_code || a->close_received != b->close_received
        || a->close_reason != b->close_reason || a->pong_pending != b->pong_pending
        || (a->pong_pending && (a->pong_len != b->pong_len
                                || memcmp(a->pong, b->pong, a->pong_len) != 0)))
    {
        abort();
    }
}

/* Masks a server frame (header h bytes, then payload) as a client frame. */
NO_COVERAGE static size_t
client_frame(uint8_t *out, const uint8_t *frame, size_t h, size_t len, const uint8_t key[4])
{
    size_t i;

    memcpy(out, frame, h);
    out[1] |= 0x80;
    memcpy(out + h, key, 4);
    for (i = 0; i < len; i++) out[h + 4 + i] = frame[h + i] ^ key[i & 3];
    return h + 4 + len;
}

/* big[0..n) is data repeated */
NO_COVERAGE static void
fill(uint8_t *big, size_t n, const uint8_t *data, size_t size)
{
    size_t have = size < n ? size : n;

    memcpy(big, data, have);
    for (; have < n; have *= 2) memcpy(big + have, big, have < n - have ? have : n - have);
}

static void
round_trip(const uint8_t *payload, size_t len, const uint8_t key[4])
{
    static uint8_t frame[14 + 70000], wire[18 + 70000];
    wh_ws_decoder_t d;
    size_t h, n;

    /* a data frame, with every length form */
    h = wh_ws_frame_header(frame, WH_WS_OP_BINARY, len);
    memcpy(frame + h, payload, len);
    n = client_frame(wire, frame, h, len, key);
    wh_ws_decoder_init(&d);
    if (wh_ws_decode(&d, wire, n) != len || memcmp(wire, payload, len) != 0 || d.close_code) abort();

    /* a pong we would send, and a close with a reason, read back */
    len = len < WH_WS_CONTROL_MAX ? len : WH_WS_CONTROL_MAX;
    n = wh_ws_control_frame(frame, WH_WS_OP_PONG, payload, len);
    n = client_frame(wire, frame, 2, n - 2, key);
    wh_ws_decoder_init(&d);
    if (wh_ws_decode(&d, wire, n) != 0 || d.close_code || d.pong_pending) abort();

    n = wh_ws_close_frame(frame, WH_WS_CLOSE_TOO_BIG, len > 0 ? "frame too long" : NULL);
    n = client_frame(wire, frame, 2, n - 2, key);
    wh_ws_decoder_init(&d);
    if (wh_ws_decode(&d, wire, n) != 0 || d.close_code != WH_WS_CLOSE_TOO_BIG || !d.close_received) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t big[70000];
    wh_ws_decoder_t one, chunked;
    uint8_t *a, *b;
    size_t n, i, k, pos, got, out_a, nplan;
    const uint8_t *plan;
    char accept[29];
    uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };

    if (size < 1) return 0;
    nplan = data[0] & 7;
    if (size < 1 + nplan) return 0;
    plan = data + 1;
    data += 1 + nplan;
    size -= 1 + nplan;

    a = malloc(size + 1);
    b = malloc(size + 1);
    memcpy(a, data, size);
    memcpy(b, data, size);

    wh_ws_decoder_init(&one);
    out_a = wh_ws_decode(&one, a, size);
    if (out_a > size) abort();

    wh_ws_decoder_init(&chunked);
    for (pos = 0, got = 0, i = 0; pos < size; pos += k, i++) {
        k = nplan ? plan[i % nplan] + 1 : 1;
        if (k > size - pos) k = size - pos;
        /* payload moves to the front of each chunk: gather it behind what came before */
        n = wh_ws_decode(&chunked, b + pos, k);
        if (n > k) abort();
        memmove(b + got, b + pos, n);
        got += n;
    }
    if (got != out_a || memcmp(a, b, got) != 0) abort();
    same_state(&one, &chunked);

    /* once closed, nothing more is decoded */
    if (one.close_code && size > 0 && wh_ws_decode(&one, b, size) != 0) abort();

    for (i = 0; i < nplan && i < 4; i++) key[i] ^= plan[i];
    round_trip(data, size, key);
    if (size > 0 && (data[0] & 0xf0) == 0xf0) {
        /* the 8-byte length form, which inputs of the usual size never reach */
        n = 65536 + data[0];
        fill(big, n, data, size);
        round_trip(big, n, key);
    }
    wh_ws_accept_key((const char *) data, size, accept);
    if (strlen(accept) != 28) abort();

    free(a);
    free(b);
    return 0;
}

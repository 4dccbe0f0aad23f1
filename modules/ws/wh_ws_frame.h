/*
 * wh_ws_frame.h -- the WebSocket frame codec of the ws transport (spec 4.4,
 * RFC 6455 section 5): an in-place decoder for client frames and the few
 * server frames wharf sends. No I/O, no allocation. See wh_ws_frame.c.
 */
#ifndef WH_WS_FRAME_H
#define WH_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define WH_WS_CLOSE_NORMAL     1000
#define WH_WS_CLOSE_PROTOCOL   1002
#define WH_WS_CLOSE_NO_STATUS  1005   /* never on the wire: "the close had no payload" */
#define WH_WS_CLOSE_TOO_BIG    1009

#define WH_WS_OP_CONTINUATION  0x0
#define WH_WS_OP_TEXT          0x1
#define WH_WS_OP_BINARY        0x2
#define WH_WS_OP_CLOSE         0x8
#define WH_WS_OP_PING          0x9
#define WH_WS_OP_PONG          0xa

#define WH_WS_CONTROL_MAX      125
/* the largest frame wh_ws_close_frame() and wh_ws_control_frame() write */
#define WH_WS_CONTROL_FRAME_MAX  (2 + WH_WS_CONTROL_MAX)

typedef struct {
    /* private parse state */
    uint64_t remaining;             /* payload bytes of the current frame still to come */
    uint8_t hdr[14];                /* the current frame header as received so far */
    uint8_t hdr_len;                /* bytes in hdr */
    uint8_t hdr_need;               /* full header size, known once hdr_len >= 2 */
    uint8_t in_payload;             /* the header is complete: remaining bytes are payload */
    uint8_t opcode;                 /* of the current frame */
    uint8_t mask[4];
    uint8_t mask_pos;               /* payload bytes unmasked so far, mod 4 */
    uint8_t in_message;             /* a fragmented data message is open */
    uint8_t ctl_len;                /* control payload bytes in ctl */
    uint8_t ctl[WH_WS_CONTROL_MAX];

    /* results for the caller, set by wh_ws_decode: */
    uint8_t pong_pending;           /* a ping arrived: answer with a pong carrying pong[0..pong_len)
                                       (the latest ping wins); the caller clears it once queued */
    uint8_t pong_len;
    uint8_t pong[WH_WS_CONTROL_MAX];
    uint8_t pong_received;          /* a pong arrived (an answer to our ping); the caller clears it */
    uint16_t close_code;            /* non-zero once a close frame arrived (1005 if it had no payload)
                                       or a violation was found (1002): decoding stops; bytes after it
                                       are ignored */
    uint8_t close_received;         /* 1: the peer sent the close (reply with the same code, spec 4.4);
                                       0 with close_code set: a protocol violation (send 1002 with
                                       close_reason) */
    const char *close_reason;       /* for violations: "bad MASK", "reserved bits set", "unknown opcode",
                                       "fragmented control frame", "control frame too long",
                                       "unexpected continuation", "expected continuation",
                                       "invalid close payload", "frame too long" */
} wh_ws_decoder_t;

void wh_ws_decoder_init(wh_ws_decoder_t *d);

/*
 * Decodes client->server frames in buf[0..len) IN PLACE: the unmasked
 * payload bytes of data frames (binary, text and continuation alike: message
 * boundaries mean nothing) are moved to buf[0..return) in order; control
 * frames are consumed (ping -> pong_pending, pong -> pong_received, close ->
 * close_code/close_received). Requires the MASK bit on every frame (server
 * side), RSV bits zero, known opcodes (0,1,2,8,9,10), control frames FIN and
 * <= 125 bytes, continuation only inside a fragmented message and no new data
 * frame inside one. Any amount of input may be given, split anywhere (one
 * byte at a time works): partial headers/payloads are kept in the decoder
 * state. When a close or a violation is found, the data bytes decoded before
 * it in this call are still returned; once close_code is set, further calls
 * return 0. Returns the number of data bytes at the front of buf.
 */
size_t wh_ws_decode(wh_ws_decoder_t *d, uint8_t *buf, size_t len);

/* Server->client frame header (unmasked, FIN set) for a payload of len bytes
 * with opcode; returns its size (2, 4 or 10). */
size_t wh_ws_frame_header(uint8_t out[10], int opcode, uint64_t len);

/* A complete close frame with code (and no reason when reason is NULL; the
 * reason is cut to 123 bytes); code 1005 gives an empty payload, as 1005 must
 * not be sent. Returns its size (<= 2 + 2 + 123). */
size_t wh_ws_close_frame(uint8_t *out, uint16_t code, const char *reason);

/* A complete ping or pong frame (opcode) with the payload (len <= 125; more
 * is cut); returns its size. */
size_t wh_ws_control_frame(uint8_t *out, int opcode, const uint8_t *payload, size_t len);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key +
 * "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), 28 chars + NUL. */
void wh_ws_accept_key(const char *key, size_t key_len, char out[29]);

#endif

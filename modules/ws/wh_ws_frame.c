/*
 * wh_ws_frame.c -- the WebSocket frame codec of the ws transport: decodes
 * the frames a V2Ray client sends (spec 4.4, RFC 6455 section 5) and builds
 * the few frames the server sends (data headers, ping, pong, close), plus the
 * Sec-WebSocket-Accept value of the handshake (spec 4.3).
 *
 * It replaces wslay for memory's sake: wslay's event context embeds two
 * 4 KiB buffers, about 9.4 KiB per connection, while the target is at most
 * 6 KiB per idle WebSocket stream. Here the whole per-connection state is
 * the decoder struct (a few hundred bytes, two 125-byte control buffers
 * being most of it) and data frames are decoded in place: the payload is
 * unmasked and slid to the front of the caller's read buffer, so nothing is
 * copied to a second buffer and no memory is held between reads except a
 * partial header or control payload.
 *
 * The decoder never blocks on framing: input may be cut anywhere, and a
 * frame's payload is handed on as it arrives rather than once the frame is
 * whole, because V2Ray treats the data frames as one byte stream (message
 * boundaries mean nothing, spec 4.4) and a relay must not hold bytes back.
 *
 * Violations stop decoding for good and leave a reason for the 1002 close;
 * the checks follow gorilla/websocket's order (reserved bits, opcode rules,
 * then MASK) so a frame with several faults names the same fault each time,
 * however the input is split.
 */
#include "wh_core.h"
#include "wh_ws_frame.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#define WH_WS_FIN   0x80
#define WH_WS_RSV   0x70
#define WH_WS_MASK  0x80

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void
wh_ws_decoder_init(wh_ws_decoder_t *d)
{
    memset(d, 0, sizeof(*d));
}

static void
violation(wh_ws_decoder_t *d, const char *reason)
{
    d->close_code = WH_WS_CLOSE_PROTOCOL;
    d->close_received = 0;
    d->close_reason = reason;
}

/* The mask key as a 64-bit word whose first byte is key byte p mod 4. */
static uint64_t
mask_word(const uint8_t mask[4], unsigned p)
{
    uint8_t m8[8];
    uint64_t m;
    unsigned k;

    for (k = 0; k < 8; k++) {
        m8[k] = mask[(p + k) & 3];
    }
    memcpy(&m, m8, 8);
    return m;
}

/*
 * XOR with the mask key from *pos on. dst may be src or lie before it (the
 * in-place slide): every word is loaded before the store that could reach
 * it, so unread bytes are never overwritten.
 *
 * A V2Ray client's frames carry 2 KiB each, so this runs on every byte of an
 * upload: a few bytes bring the source to an 8-byte boundary, then 32 bytes
 * go per round as four aligned words, loaded before any is stored (the
 * compiler pairs them into vector registers where it has them). 8 is a
 * multiple of 4, so the word keeps its phase all along.
 */
static void
unmask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4], uint8_t *pos)
{
    unsigned p = *pos;
    size_t i = 0;
    uint64_t m, a, b, c, e;

    if (n >= 32) {
        for (; ((uintptr_t) (src + i) & 7) != 0; i++) {
            dst[i] = src[i] ^ mask[(p + i) & 3];
        }
        m = mask_word(mask, (unsigned) (p + i));
        for (; i + 32 <= n; i += 32) {
            memcpy(&a, src + i, 8);
            memcpy(&b, src + i + 8, 8);
            memcpy(&c, src + i + 16, 8);
            memcpy(&e, src + i + 24, 8);
            a ^= m;
            b ^= m;
            c ^= m;
            e ^= m;
            memcpy(dst + i, &a, 8);
            memcpy(dst + i + 8, &b, 8);
            memcpy(dst + i + 16, &c, 8);
            memcpy(dst + i + 24, &e, 8);
        }
        for (; i + 8 <= n; i += 8) {
            memcpy(&a, src + i, 8);
            a ^= m;
            memcpy(dst + i, &a, 8);
        }
    }
    for (; i < n; i++) {
        dst[i] = src[i] ^ mask[(p + i) & 3];
    }
    *pos = (uint8_t) ((p + n) & 3);
}

/* The first two header bytes are in: everything but the length can be judged. */
static void
header_start(wh_ws_decoder_t *d)
{
    uint8_t b0 = d->hdr[0], b1 = d->hdr[1];
    unsigned op = b0 & 0x0f, len7 = b1 & 0x7f;
    int fin = (b0 & WH_WS_FIN) != 0;

    /* no extension is ever negotiated (spec 4.3), so no RSV bit has a meaning */
    if (b0 & WH_WS_RSV) {
        violation(d, "reserved bits set");
        return;
    }

    switch (op) {
    case WH_WS_OP_CLOSE:
    case WH_WS_OP_PING:
    case WH_WS_OP_PONG:
        if (!fin) {
            violation(d, "fragmented control frame");
            return;
        }
        /* 126 and 127 announce an extended length, already too long */
        if (len7 > WH_WS_CONTROL_MAX) {
            violation(d, "control frame too long");
            return;
        }
        break;

    case WH_WS_OP_TEXT:
    case WH_WS_OP_BINARY:
        if (d->in_message) {
            violation(d, "expected continuation");
            return;
        }
        d->in_message = !fin;
        break;

    case WH_WS_OP_CONTINUATION:
        if (!d->in_message) {
            violation(d, "unexpected continuation");
            return;
        }
        d->in_message = !fin;
        break;

    default:
        violation(d, "unknown opcode");
        return;
    }

    if (!(b1 & WH_WS_MASK)) {
        violation(d, "bad MASK");
        return;
    }

    d->opcode = (uint8_t) op;
    d->hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
}

static void
frame_end(wh_ws_decoder_t *d)
{
    uint16_t code;

    d->in_payload = 0;
    d->hdr_len = 0;

    switch (d->opcode) {
    case WH_WS_OP_PING:
        /* only one pong can be owed: a newer ping makes the older one moot */
        memcpy(d->pong, d->ctl, d->ctl_len);
        d->pong_len = d->ctl_len;
        d->pong_pending = 1;
        break;

    case WH_WS_OP_CLOSE:
        if (d->ctl_len == 0) {
            d->close_code = WH_WS_CLOSE_NO_STATUS;
            d->close_received = 1;
            break;
        }
        code = (uint16_t) (d->ctl[0] << 8 | d->ctl[1]);
        /* a 1-byte payload has no code; code 0 could not be told from "no
         * close yet" and no RFC 6455 code is 0 */
        if (d->ctl_len == 1 || code == 0) {
            violation(d, "invalid close payload");
            break;
        }
        d->close_code = code;
        d->close_received = 1;
        break;

    case WH_WS_OP_PONG:
        d->pong_received = 1;
        break;

    default:
        /* data frames were handed on as they came */
        break;
    }
}

/* The header is whole: read the length and the mask key. */
static void
header_end(wh_ws_decoder_t *d)
{
    const uint8_t *p = d->hdr + 2;
    unsigned len7 = d->hdr[1] & 0x7f;
    uint64_t n;
    int i;

    if (len7 == 126) {
        n = (uint64_t) p[0] << 8 | p[1];
        p += 2;
    } else if (len7 == 127) {
        n = 0;
        for (i = 0; i < 8; i++) {
            n = n << 8 | p[i];
        }
        p += 8;
        /* RFC 6455 5.2: the most significant bit MUST be 0 */
        if (n >> 63) {
            violation(d, "frame too long");
            return;
        }
    } else {
        n = len7;
    }

    memcpy(d->mask, p, 4);
    d->mask_pos = 0;
    d->remaining = n;
    d->ctl_len = 0;
    d->in_payload = 1;

    if (n == 0) {
        frame_end(d);
    }
}

size_t
wh_ws_decode(wh_ws_decoder_t *d, uint8_t *buf, size_t len)
{
    size_t r = 0, w = 0, n, need;

    if (d->close_code) {
        return 0;
    }

    while (r < len) {
        if (!d->in_payload) {
            /* the first two bytes, then the rest: two steps a header, as a
             * V2Ray client sends a header every 2 KiB */
            need = d->hdr_len < 2 ? 2 : d->hdr_need;
            n = wh_min(need - d->hdr_len, len - r);
            memcpy(d->hdr + d->hdr_len, buf + r, n);
            d->hdr_len += (uint8_t) n;
            r += n;
            if (d->hdr_len < need) {
                break;      /* the input ended inside the header */
            }
            if (need == 2) {
                /* hdr_need > 2 from here: MASK is required */
                header_start(d);
            } else {
                header_end(d);
            }
            if (d->close_code) {
                break;
            }
            continue;
        }

        n = len - r;
        if (d->remaining < n) {
            n = (size_t) d->remaining;
        }

        if (d->opcode & 0x8) {
            /* n <= 125 - ctl_len: header_start() bounded control lengths */
            unmask(d->ctl + d->ctl_len, buf + r, n, d->mask, &d->mask_pos);
            d->ctl_len += (uint8_t) n;
        } else {
            unmask(buf + w, buf + r, n, d->mask, &d->mask_pos);
            w += n;
        }
        r += n;
        d->remaining -= n;

        if (d->remaining == 0) {
            frame_end(d);
            if (d->close_code) {
                break;
            }
        }
    }

    return w;
}

size_t
wh_ws_frame_header(uint8_t out[10], int opcode, uint64_t len)
{
    int i;

    out[0] = (uint8_t) (WH_WS_FIN | (opcode & 0x0f));

    if (len < 126) {
        out[1] = (uint8_t) len;
        return 2;
    }

    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t) (len >> 8);
        out[3] = (uint8_t) len;
        return 4;
    }

    out[1] = 127;
    for (i = 0; i < 8; i++) {
        out[2 + i] = (uint8_t) (len >> (56 - 8 * i));
    }
    return 10;
}

size_t
wh_ws_close_frame(uint8_t *out, uint16_t code, const char *reason)
{
    size_t rlen;

    /* 1005 only says "there was no code"; RFC 6455 7.4.1 forbids sending it,
     * so the reply to an empty close is an empty close (gorilla does the same) */
    if (code == WH_WS_CLOSE_NO_STATUS || code == 0) {
        out[0] = WH_WS_FIN | WH_WS_OP_CLOSE;
        out[1] = 0;
        return 2;
    }

    rlen = reason ? strnlen(reason, WH_WS_CONTROL_MAX - 2) : 0;

    out[0] = WH_WS_FIN | WH_WS_OP_CLOSE;
    out[1] = (uint8_t) (2 + rlen);
    out[2] = (uint8_t) (code >> 8);
    out[3] = (uint8_t) code;
    if (rlen) {
        memcpy(out + 4, reason, rlen);
    }
    return 4 + rlen;
}

size_t
wh_ws_control_frame(uint8_t *out, int opcode, const uint8_t *payload, size_t len)
{
    /* a longer control frame would be a violation on the client's side */
    if (len > WH_WS_CONTROL_MAX) {
        len = WH_WS_CONTROL_MAX;
    }

    out[0] = (uint8_t) (WH_WS_FIN | opcode);
    out[1] = (uint8_t) len;
    if (len) {
        memcpy(out + 2, payload, len);
    }
    return 2 + len;
}

/*
 * Real clients send 24 characters (16 random bytes in base64), which go
 * through SHA1() in a stack buffer. The key's content is not validated
 * (spec 4.3, check 9), so a longer one still has to get the answer Go would
 * give: it takes the incremental EVP path, whose context is allocated.
 */
#define WH_WS_KEY_STACK  128

void
wh_ws_accept_key(const char *key, size_t key_len, char out[29])
{
    uint8_t joined[WH_WS_KEY_STACK + sizeof(ws_guid) - 1];
    uint8_t md[SHA_DIGEST_LENGTH];
    EVP_MD_CTX *ctx;

    if (key_len <= WH_WS_KEY_STACK) {
        memcpy(joined, key, key_len);
        memcpy(joined + key_len, ws_guid, sizeof(ws_guid) - 1);
        SHA1(joined, key_len + sizeof(ws_guid) - 1, md);

    } else {
        ctx = EVP_MD_CTX_new();
        if (ctx == NULL
            || !EVP_DigestInit_ex(ctx, EVP_sha1(), NULL)
            || !EVP_DigestUpdate(ctx, key, key_len)
            || !EVP_DigestUpdate(ctx, ws_guid, sizeof(ws_guid) - 1)
            || !EVP_DigestFinal_ex(ctx, md, NULL))
        {
            /* an empty accept fails the handshake on the client side */
            EVP_MD_CTX_free(ctx);
            out[0] = '\0';
            return;
        }
        EVP_MD_CTX_free(ctx);
    }

    /* 20 bytes -> 28 base64 characters and the NUL */
    EVP_EncodeBlock((unsigned char *) out, md, SHA_DIGEST_LENGTH);
}

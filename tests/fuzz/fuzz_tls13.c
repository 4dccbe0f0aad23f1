/*
 * fuzz_tls13.c -- the TLS 1.3 record layer (src/tls/wh_tls13.c).
 *
 * Random bytes never authenticate, so most of the input is a script for a
 * peer that holds the other ends of the keys: each step seals content of
 * a chosen type and length as the client would, may flip one bit of the
 * record, and hands it to the server side, which parses and opens it as
 * the stream does (in place or into another buffer) and acts on what is
 * not data. A record that was not touched must open to what was sealed; a
 * touched one must not open. A KeyUpdate the peer sends moves its key
 * too, and the server's answer must open on the peer's side, so the two
 * stay in step through any number of updates. The first byte's low bit
 * instead feeds the rest to the server as raw records.
 */
#include "wh_tls13.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t client_secret[WH_TLS13_SECRET_MAX] = "client traffic secret, 48 bytes long...........";
static const uint8_t server_secret[WH_TLS13_SECRET_MAX] = "server traffic secret, 48 bytes long...........";

static uint8_t rec[WH_TLS13_MAX_RECORD + 64], out[WH_TLS13_MAX_RECORD], content[WH_TLS13_MAX_PLAIN + 1];

static void
keys(wh_tls13_t *t, int suite, const uint8_t *rx, const uint8_t *tx)
{
    memset(t, 0, sizeof(*t));
    memcpy(t->rx.secret, rx, WH_TLS13_SECRET_MAX);
    memcpy(t->tx.secret, tx, WH_TLS13_SECRET_MAX);
    if (wh_tls13_init(t, suite) != WH_OK) abort();
}

static void
raw(wh_tls13_t *server, const uint8_t *data, size_t size)
{
    ssize_t len, n;
    uint8_t type;

    memcpy(rec, data, size);
    while (size > 0) {
        len = wh_tls13_record_len(server, rec, size);
        if (len <= 0 || (size_t) len > size) return;
        n = wh_tls13_open(server, rec, (size_t) len, rec + WH_TLS13_HEADER, &type);
        if (n < 0) return;
        memmove(rec, rec + len, size - (size_t) len);
        size -= (size_t) len;
    }
}

/* The server's answer to a KeyUpdate, opened by the peer. */
static void
answer(wh_tls13_t *server, wh_tls13_t *peer)
{
    size_t len = wh_tls13_key_update(server, rec);
    ssize_t n;
    uint8_t type;

    if (len != WH_TLS13_KEY_UPDATE_LEN || wh_tls13_record_len(peer, rec, len) != (ssize_t) len) {
        abort();
    }
    n = wh_tls13_open(peer, rec, len, out, &type);
    if (n != 5 || type != WH_TLS13_HANDSHAKE || wh_tls13_control(peer, type, out, 5) != WH_OK
        || peer->answer)
    {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wh_tls13_t server, peer;
    size_t i = 2, n, len, k;
    ssize_t rl, got;
    uint8_t op, type, sealed_type;
    int suite, flipped, ctl;

    if (size < 2) return 0;
    suite = data[1] % 3;
    keys(&server, suite, client_secret, server_secret);
    if (data[0] & 1) {
        raw(&server, data + 2, wh_min(size - 2, sizeof(rec)));
        wh_tls13_free(&server);
        return 0;
    }
    keys(&peer, suite, server_secret, client_secret);
    /* a step: op, a length byte (times 64 when op says so), the content */
    while (i + 2 <= size) {
        op = data[i];
        n = data[i + 1];
        if (op & 0x08) n = wh_min(n * 64 + 63, sizeof(content));
        i += 2;
        k = wh_min(n, size - i);
        memcpy(content, data + i, k);
        memset(content + k, 0x5a, n - k);
        i += k;
        sealed_type = (const uint8_t[]) { WH_TLS13_DATA, WH_TLS13_ALERT, WH_TLS13_HANDSHAKE, 0 }[op & 3];
        if ((op & 3) == 3 && n > 0) sealed_type = content[0];
        len = wh_tls13_seal(&peer, sealed_type, content, n, rec);
        if (len != n + WH_TLS13_OVERHEAD) abort();
        flipped = (op & 0x80) && i < size;
        if (flipped) {
            rec[data[i] * 131 % len] ^= (uint8_t) (1u << (data[i] & 7));
            i++;
        }
        rl = wh_tls13_record_len(&server, rec, len);
        if (rl < 0) {
            if (!flipped) abort();
            break;
        }
        if ((size_t) rl != len) {
            if (!flipped) abort();
            break;
        }
        got = wh_tls13_open(&server, rec, len, (op & 0x40) ? rec + WH_TLS13_HEADER : out, &type);
        if (flipped) {
            if (got >= 0) abort();
            break;
        }
        if (got < 0) {
            /* only what the content type rule refuses */
            if (sealed_type != 0 && n <= WH_TLS13_MAX_PLAIN) abort();
            break;
        }
        if (sealed_type != 0) {
            if (type != sealed_type || (size_t) got != n
                || memcmp((op & 0x40) ? rec + WH_TLS13_HEADER : out, content, n) != 0)
            {
                abort();
            }
        }
        if (type == WH_TLS13_DATA) continue;
        ctl = wh_tls13_control(&server, type, (op & 0x40) ? rec + WH_TLS13_HEADER : out,
                               (size_t) got);
        if (ctl != WH_OK) break;
        if (type == WH_TLS13_HANDSHAKE) {
            /* the peer's key moves with each KeyUpdate it sent */
            for (k = 0; k < (size_t) got / 5; k++) wh_tls13_key_update(&peer, out);
        }
        if (wh_tls13_tx_due(&server)) answer(&server, &peer);
    }
    wh_tls13_free(&server);
    wh_tls13_free(&peer);
    return 0;
}

/*
 * fuzz_ws_handshake.c -- the whole websocket server handshake
 * (modules/ws/wh_ws_module.c), then the upgraded stream (wh_ws_stream.c)
 * under the real relay, as a worker runs them, on a scripted client
 * (fuzz_stream.h: the input's first bytes choose how it is cut into reads).
 *
 * The module's handshake is driven as wh_handshake.c's advance() drives
 * it, so keep-alive requests, skipped bodies, early data, the 431/400/404
 * answers and the timeout's last word are all reachable; after a 101 the
 * stream is handed to wh_relay_start() with the built-in echo upstream and
 * the loop runs, so the client's frames are decoded and echoed back in
 * frames. Flag bits of byte 0 pick one of four listener settings (plain,
 * early data in the path, early data in a header, a front whose refusals
 * on two paths go to a fallback: then the relay replays what was read)
 * and whether the handshake timer fires at the first wait. Everything is closed and freed
 * per input; the listeners and the loop live for the whole run.
 */
#include "fuzz_stream.h"

#include <string.h>

extern const wh_module_t wh_ws_module;

static wh_listener_t *listeners[4];
static wh_fallback_t fallbacks[2];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    listeners[0] = wh_fuzz_listener(&wh_ws_module,
        "streamSettings = { wsSettings = { path = \"/wharf-ws\"; }; };");
    listeners[1] = wh_fuzz_listener(&wh_ws_module,
        "streamSettings = { wsSettings = { path = \"ws\"; maxEarlyData = 2048; }; };");
    listeners[2] = wh_fuzz_listener(&wh_ws_module,
        "streamSettings = { wsSettings = { path = \"/\"; maxEarlyData = 64;"
        " earlyDataHeaderName = \"Sec-WebSocket-Protocol\"; }; };");
    /* a front: what it refuses on these paths goes to a fallback (the
     * listener's own echo stands in for the destination) */
    listeners[3] = wh_fuzz_listener(&wh_ws_module,
        "streamSettings = { wsSettings = { path = \"/wharf-ws\"; }; };");
    if (wh_match_compile(&fallbacks[0].path, "~^/f[a-z]*$", 0, NULL, 0) != WH_OK
        || wh_match_compile(&fallbacks[1].path, "/exact", 0, NULL, 0) != WH_OK)
    {
        abort();
    }
    fallbacks[0].dest = fallbacks[1].dest = listeners[3]->dest;
    listeners[3]->fallbacks.v = fallbacks;
    listeners[3]->fallbacks.n = 2;
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned flags = wh_fuzz_flags(data, size);
    wh_listener_t *ls = listeners[flags & 3];
    wh_fuzz_stream_t *fs = wh_fuzz_stream(data, size);
    wh_handshake_t *hs;
    wh_stream_t *top;
    int rc;

    if (fs == NULL) return 0;
    hs = wh_fuzz_handshake(ls, fs);
    rc = wh_fuzz_run_handshake(hs, flags & 4);
    top = hs->top;

    if (hs->fallback != NULL) {
        /* what the fallback replays is what the client sent last, whole */
        if (rc == WH_OK || hs->replay_len > fs->pos
            || memcmp(hs->replay, fs->data + fs->pos - hs->replay_len, hs->replay_len) != 0)
        {
            abort();
        }
        top->on_readable = NULL;
        top->on_writable = NULL;
        wh_relay_start(&hs->live, &hs->fallback->dest, top, (struct sockaddr *) &hs->peer,
                       hs->peerlen, hs->replay, hs->replay_len, NULL);
        free(hs->replay);
        wh_fuzz_loop_run(64);
        wh_relay_close_all(WH_CLOSE_SHUTDOWN);
    } else if (rc == WH_OK) {
        /* the 101 went out whole, in one write, and nothing after it yet */
        if (fs->last_write_len < 13 || memcmp(fs->last_write, "HTTP/1.1 101 ", 13) != 0) abort();
        top->on_readable = NULL;
        top->on_writable = NULL;
        wh_relay_start(&hs->live, &hs->ls->dest, top, (struct sockaddr *) &hs->peer,
                       hs->peerlen, NULL, 0, NULL);
        wh_fuzz_loop_run(64);
        wh_relay_close_all(WH_CLOSE_SHUTDOWN);
    } else {
        wh_stream_close(top);
        wh_live_close(&hs->live, WH_CLOSE_BAD_INPUT);
    }
    wh_fuzz_loop_run(4);
    free(hs);
    return 0;
}

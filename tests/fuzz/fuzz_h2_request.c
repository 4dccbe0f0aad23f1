/*
 * fuzz_h2_request.c -- the http transport without TLS (modules/h2): its
 * request check (wh_h2_request_ok, spec 5.3) and the handshake of an h2c
 * port as a worker runs it on a scripted client (fuzz_stream.h): an
 * HTTP/1.1 request answered 400/404, or served by the HTTP/1.1 path
 * (wh_h2_http1.c: the body, Content-Length or chunked, read through the
 * stream under the real relay with the echo upstream), or an "Upgrade: h2c"
 * with HTTP2-Settings and a body, or the HTTP/2 preface; both of the last
 * hand the connection to the HTTP/2 session (wh_h2_conn.c), and the rest of
 * the input is the client's frames.
 *
 * Byte 0's flag bits: bit 0 tries wh_h2_request_ok on the input alone
 * (authority NUL path, against one of two settings) and stops there; bit 1
 * picks the listener (one host or a host list with a path). After an
 * upgrade the loop runs until the session has ended (the scripted client
 * ends with the input), then every relay is closed.
 *
 * libcrypto is not instrumented, so a base64 decode into too small a
 * buffer would go unseen: EVP_DecodeBlock is wrapped here to touch the
 * destination first, as the library is about to write it.
 */
#include "fuzz_stream.h"
#include "../../modules/h2/wh_h2.h"

#include <dlfcn.h>
#include <string.h>

int
EVP_DecodeBlock(unsigned char *t, const unsigned char *f, int n)
{
    static int (*decode)(unsigned char *, const unsigned char *, int);

    if (decode == NULL) {
        *(void **) &decode = dlsym(RTLD_NEXT, "EVP_DecodeBlock");
        if (decode == NULL) abort();
    }
    if (n > 0) memset(t, 0, (size_t) (n + 3) / 4 * 3);     /* ASan checks this one */
    return decode(t, f, n);
}

extern const wh_module_t wh_h2_module;

static wh_listener_t *listeners[2];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    listeners[0] = wh_fuzz_listener(&wh_h2_module, "");
    listeners[1] = wh_fuzz_listener(&wh_h2_module,
        "streamSettings = { httpSettings = { host = [\"localhost\", \"h2.example.com\"];"
        " path = \"wharf-h2\"; }; };");
    return 0;
}

static void
request_ok(const wh_h2_conf_t *conf, const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t alen = nul ? (size_t) (nul - data) : size;
    char *authority = malloc(alen + 1), *path = NULL;
    size_t plen = nul ? size - alen - 1 : 0;

    memcpy(authority, data, alen);
    authority[alen] = '\0';
    if (nul != NULL) {
        path = malloc(plen + 1);
        memcpy(path, nul + 1, plen);
        path[plen] = '\0';
    }
    (void) wh_h2_request_ok(conf, authority, alen, path, plen);
    free(authority);
    free(path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned flags = wh_fuzz_flags(data, size);
    wh_listener_t *ls = listeners[(flags >> 1) & 1];
    wh_fuzz_stream_t *fs;
    wh_handshake_t *hs;
    int rc;

    if (flags & 1) {
        request_ok(ls->module_conf, data + 1, size - 1);
        return 0;
    }
    fs = wh_fuzz_stream(data, size);
    if (fs == NULL) return 0;
    hs = wh_fuzz_handshake(ls, fs);
    rc = wh_fuzz_run_handshake(hs, 0);

    if (rc == WH_OK) {
        /* the HTTP/1.1 service: the relay takes it, as advance() does */
        hs->top->on_readable = NULL;
        hs->top->on_writable = NULL;
        wh_relay_start(&hs->live, &hs->ls->dest, hs->top, (struct sockaddr *) &hs->peer,
                       hs->peerlen, NULL, 0, NULL);
    } else if (rc == WH_ERROR) {
        wh_stream_close(hs->top);
        wh_live_close(&hs->live, WH_CLOSE_BAD_INPUT);
    }
    /* WH_DECLINED: the HTTP/2 session has the stream and ends with it */
    wh_fuzz_loop_run(64);
    wh_relay_close_all(WH_CLOSE_SHUTDOWN);
    wh_fuzz_loop_run(16);
    free(hs);
    return 0;
}

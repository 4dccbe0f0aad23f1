/*
 * fuzz_tcp_http_header.c -- the tcp "http" header obfuscation, request
 * side, as a stream delivers it read by read (modules/tcp/
 * wh_tcp_http_stream.c over the codec wh_tcp_http_header.c).
 *
 * The reads matter: the codec runs V2Ray's early check on every partial
 * head, so the same bytes cut differently take different paths. The
 * input's plan (fuzz_stream.h) chooses the cuts and WH_AGAIN answers; a
 * flag bit picks V2Ray's default settings or a set of paths with escapes.
 * When the head is accepted, reading the stream on must give exactly the
 * bytes after the first CRLFCRLF (spec 3.5 steps 1 and 6); then a write
 * sends the response head with it, as the relay's first write would, and
 * a refused head gets its 400/404 answer when the stream closes.
 */
#include "fuzz_stream.h"
#include "../../modules/tcp/wh_tcp_http_stream.h"

#include <string.h>

static wh_http_obfs_conf_t *confs[2];

static wh_http_obfs_conf_t *
load(const char *text)
{
    wh_http_obfs_conf_t *c = NULL;
    wh_conf_t cf = { .file = "fuzz.conf" };
    config_t cfg;

    config_init(&cfg);
    if (config_read_string(&cfg, text) != CONFIG_TRUE
        || wh_http_obfs_parse(&cf, config_lookup(&cfg, "header"), &c) != WH_OK)
    {
        abort();
    }
    config_destroy(&cfg);
    return c;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    wh_fuzz_init();
    confs[0] = load("header = { type = \"http\"; };");
    confs[1] = load("header = { type = \"http\"; request = { path = \"/video,/a b,/%41,/\"; };"
                    " response = { status = \"200\"; headers = { Date = \"x\"; X = [\"1\", \"2\"]; }; }; };");
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[4096];
    wh_fuzz_stream_t *fs = wh_fuzz_stream(data, size);
    const uint8_t *client, *end;
    size_t client_len, want_len, got = 0;
    wh_stream_t *s;
    ssize_t n;
    int rc;

    if (fs == NULL) return 0;
    client = fs->data;
    client_len = fs->len;
    s = wh_tcp_http_stream(&fs->s, confs[wh_fuzz_flags(data, size) & 1], 1136214245);
    if (s == NULL) abort();

    while ((rc = wh_tcp_http_accept(s)) == WH_AGAIN) { /* the stream promised more */ }

    if (rc == WH_OK) {
        end = memmem(client, client_len, "\r\n\r\n", 4);
        if (end == NULL) abort();
        want_len = client_len - (end + 4 - client);
        for (;;) {
            n = wh_stream_read(s, buf, sizeof(buf));
            if (n == WH_AGAIN) continue;
            if (n <= 0) break;
            if (got + n > want_len || memcmp(buf, end + 4 + got, n) != 0) abort();
            got += n;
        }
        if (n != 0 || got != want_len) abort();
        if (wh_stream_write(s, "relayed", 7) != 7) abort();
        if (memcmp(fs->last_write, "HTTP/1.1 ", 9) != 0) abort();
        wh_stream_shutdown_write(s);
    }
    wh_stream_close(s);
    return 0;
}

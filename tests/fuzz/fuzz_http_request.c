/*
 * fuzz_http_request.c -- the HTTP/1.1 request-head parser
 * (src/http/wh_http_request.c) and its helpers, on heads cut as the ws
 * handshake cuts them (at the first blank line, bare LF or CRLF) or not cut
 * at all when there is none.
 *
 * Besides memory safety (each call sees a copy of exactly its bytes, so a
 * read past the head is caught): every pointer of a parsed request lies
 * inside the head; a head the parser accepts is never an early syntax
 * error for the partial check that callers run on heads still arriving;
 * the URL path helpers never write past the size they are given, which is
 * taken from the input so small buffers are tried too.
 */
#include "wh_http_request.h"

#include <stdlib.h>
#include <string.h>

static void
inside(const char *p, size_t n, const char *buf, size_t len)
{
    if (n > 0 && (p < buf || p + n > buf + len)) abort();
}

static size_t
head_len(const uint8_t *p, size_t len)
{
    size_t i;

    for (i = 0; i + 1 < len; i++) {
        if (p[i] != '\n') continue;
        if (p[i + 1] == '\n') return i + 2;
        if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n') return i + 3;
    }
    return len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static wh_http_request_t req;
    size_t len, i, out_size;
    char *buf, *out;
    const char *err;
    const wh_http_header_t *h;
    wh_sockaddr_t fwd;
    ssize_t n;

    if (size < 1) return 0;
    out_size = data[0];             /* 0..255: also the tiny ones */
    data++;
    size--;
    len = head_len(data, size);
    buf = malloc(len ? len : 1);
    memcpy(buf, data, len);
    out = malloc(out_size ? out_size : 1);

    err = wh_http_request_parse(buf, len, &req);
    if (err == NULL) {
        inside(req.method, req.method_len, buf, len);
        inside(req.target, req.target_len, buf, len);
        if (req.nheaders > WH_HTTP_MAX_HEADERS) abort();
        for (i = 0; i < req.nheaders; i++) {
            inside(req.headers[i].name, req.headers[i].name_len, buf, len);
            inside(req.headers[i].value, req.headers[i].value_len, buf, len);
        }
        if (wh_http_request_partial_invalid(buf, len)) abort();
        (void) wh_http_request_check_server(&req);
        n = wh_http_request_path(&req, out, out_size);
        if (n >= (ssize_t) out_size) abort();
        h = wh_http_header_find(&req, "X-Forwarded-For");
        if (h != NULL) (void) wh_http_forwarded_for(h->value, h->value_len, &fwd);
        (void) wh_http_header_find(&req, "host");
    } else {
        (void) wh_http_request_partial_invalid(buf, len);
    }

    /* the helpers on raw bytes too: a target, an X-Forwarded-For value */
    n = wh_http_target_path(buf, len, out, out_size);
    if (n >= (ssize_t) out_size) abort();
    (void) wh_http_forwarded_for(buf, len, &fwd);

    free(out);
    free(buf);
    return 0;
}

/*
 * wh_ws_module.c -- the "websocket" transport: wsSettings and the server
 * side of the HTTP/1.1 upgrade, answering every failure as V2Ray's Go
 * server and gorilla's Upgrader do (spec 4.3), in their order:
 *
 *   TLS, then the head, each within 4 s   close (a 400 first if the text so
 *                                         far cannot parse)
 *   head over 6144 bytes                  431, close
 *   unparsable head                       400 plain form (501 for an unknown
 *                                         Transfer-Encoding), close
 *   HTTP/1.1 without Host, bad Host...    400 with Go's reason (505 for the
 *                                         version), close
 *   Expect other than 100-continue        417, close
 *   OPTIONS *                             200
 *   path mismatch                         404
 *   Connection lacks "upgrade"            400   gorilla's http.Error form
 *   Upgrade lacks "websocket"             400
 *   method not GET                        405
 *   Sec-WebSocket-Version not 13          400
 *   Sec-WebSocket-Key empty               400
 *   early data header not base64url       400
 *   bytes after the head                  close, no answer
 *
 * After a 200/404/400/405 the connection is kept for the next request as
 * Go keeps it: by the request's version and Connection header, with a
 * body skipped (Content-Length or chunked, up to Go's 256 KiB). Each
 * request gets the 4 s deadline anew, so the answered requests on one
 * connection are capped (WH_WS_REQUESTS_MAX, the last one answered with
 * "Connection: close"): a client sending a bad request every 3.9 s would
 * otherwise hold the connection for ever.
 * The head is parsed by the one HTTP/1.1 parser (src/http). After the 101
 * the connection becomes a WebSocket stream (wh_ws_stream.c). Optional
 * early data (wsSettings.maxEarlyData, as V2Ray 4.37+ clients send it): a
 * base64url suffix of the path, or the earlyDataHeaderName header.
 */
#include "wh_cycle.h"
#include "wh_handshake.h"
#include "wh_base64url.h"
#include "wh_http_request.h"
#include "wh_log.h"
#include "wh_ws_frame.h"
#include "wh_ws_stream.h"

#include <arpa/inet.h>
#include <strings.h>
#include <time.h>

#define WH_WS_HEAD_MAX (2048 + 4096)    /* Go: MaxHeaderBytes + its 4096 slack */
#define WH_WS_REQUESTS_MAX 8            /* answered requests per connection: 8 x 4 s at most */

typedef struct {
    char *path;                 /* normalised */
    char *old_path;             /* V2Ray's old key "Path", for an empty "path" */
    int accept_proxy_protocol;
    long max_early_data;        /* 0: off */
    char *early_header;         /* earlyDataHeaderName, or NULL: the path suffix */
} wh_ws_conf_t;

typedef struct {
    uint32_t have;
    uint32_t discard;           /* body bytes of an answered request still to skip */
    uint32_t skipped;           /* of a chunked body, so far */
    uint8_t chunked;            /* 0, or where in a chunked body we are: */
#define WH_CHUNK_SIZE    1      /*   the size line */
#define WH_CHUNK_DATA    2      /*   data (discard counts it down), then CRLF */
#define WH_CHUNK_TRAILER 3      /*   trailer lines up to the empty one */
    uint8_t close_after;        /* the answered request ends the connection */
    uint8_t refused;            /* some request was answered with an error */
    uint8_t requests;           /* complete request heads so far */
    const char *path;           /* of the request being answered, for fallbacks */
    size_t path_len;
    const wh_http_request_t *req;   /* the request being answered, for the log */
    uint8_t buf[WH_WS_HEAD_MAX];
} wh_ws_head_t;

/* How Go's server answers one request: its version, and whether the
 * connection ends after the answer (RFC 7230 6.3 as net/http applies it). */
typedef struct {
    const char *proto;          /* "HTTP/1.1" or "HTTP/1.0" */
    const char *connection;     /* extra "Connection: ..." line, or "" */
    int close_after;
    int head_only;              /* HEAD: no body, same Content-Length */
} wh_ws_reply_t;

#define WH_WS_DISCARD_MAX (256 * 1024)  /* Go's maxPostHandlerReadBytes */

static const char *const networks[] = { "ws", "websocket", NULL };
/* V2Ray offers h2 too, and then cannot upgrade (spec 4.5): http/1.1 only
 * lets such clients work and changes nothing for V2Ray's, which offer only
 * http/1.1 */
static const char *const alpn[] = { "http/1.1", NULL };
static const wh_directive_t ws_directives[] = {
    { .name = "path", .type = WH_DIR_URL_PATH, .offset = offsetof(wh_ws_conf_t, path) },
    { .name = "Path", .type = WH_DIR_URL_PATH, .offset = offsetof(wh_ws_conf_t, old_path),
      .dflt_str = "/" },
    { .name = "acceptProxyProtocol", .type = WH_DIR_BOOL,
      .offset = offsetof(wh_ws_conf_t, accept_proxy_protocol) },
    { .name = "maxEarlyData", .type = WH_DIR_INT, .offset = offsetof(wh_ws_conf_t, max_early_data),
      .min = 0, .max = 1 << 20 },
    { .name = "earlyDataHeaderName", .type = WH_DIR_STRING,
      .offset = offsetof(wh_ws_conf_t, early_header) },
    { .name = "headers", .type = WH_DIR_CLIENT },
    wh_null_directive
};

static int
ws_postconf(wh_conf_t *cf, wh_listener_t *ls, const config_setting_t *ss,
            const config_setting_t *ws)
{
    wh_ws_conf_t *conf = ls->module_conf;

    if (conf->path == NULL) {
        conf->path = conf->old_path;
        conf->old_path = NULL;
    }
    if (conf->early_header != NULL && conf->early_header[0] == '\0') {
        free(conf->early_header);
        conf->early_header = NULL;
    }
    ls->proxy_protocol = conf->accept_proxy_protocol;
    return WH_OK;
}

/* Go's token list test: any value of any header line named name. */
static int
has_token(const wh_http_request_t *req, const char *name, const char *token)
{
    size_t i, tl = strlen(token);

    for (i = 0; i < req->nheaders; i++) {
        const wh_http_header_t *h = &req->headers[i];
        const char *p, *end;

        if (h->name_len != strlen(name) || strncasecmp(h->name, name, h->name_len) != 0) continue;
        p = h->value;
        end = h->value + h->value_len;
        while (p < end) {
            const char *comma = memchr(p, ',', end - p), *e = comma ? comma : end, *b = p;
            while (b < e && (*b == ' ' || *b == '\t')) b++;
            while (e > b && (e[-1] == ' ' || e[-1] == '\t')) e--;
            if ((size_t) (e - b) == tl && strncasecmp(b, token, tl) == 0) return 1;
            p = comma ? comma + 1 : end;
        }
    }
    return 0;
}

/* Writes an answer in one write; a short write means the client is gone. */
static int
send_answer(wh_handshake_t *hs, const char *text, size_t len)
{
    return wh_stream_write(hs->top, text, len) == (ssize_t) len ? WH_OK : WH_ERROR;
}

/* Every answer but the 101 refuses the client: a fallback that takes the
 * request (wh_fallback.h) gets the connection instead, with every byte
 * read so far, and nothing is written (WH_DECLINED, which the callers take
 * for a failed write: the handshake ends, and the fallback goes on). */
static int
answer(wh_handshake_t *hs, const char *text, size_t len)
{
    wh_ws_head_t *head = hs->module_data;

    const wh_http_request_t *req = head != NULL ? head->req : NULL;
    const wh_http_header_t *host = req != NULL ? wh_http_header_find(req, "Host") : NULL;
    const char *status = memchr(text, ' ', len);

    if (head != NULL
        && wh_handshake_fallback(hs, head->path, head->path_len, head->buf, head->have) == WH_OK)
    {
        return WH_DECLINED;
    }
    status = status != NULL ? status + 1 : text;
    {
        char why[48];

        snprintf(why, sizeof(why), "%.*s", (int) strcspn(status, "\r"), status);
        wh_handshake_refused(hs, why, req ? req->method : NULL, req ? req->method_len : 0,
                             host ? host->value : NULL, host ? host->value_len : 0,
                             head ? head->path : NULL, head ? head->path_len : 0);
    }
    return send_answer(hs, text, len);
}

/* Go's errors before any handler ran: plain form, then close. */
static void
answer_go(wh_handshake_t *hs, const char *status, const char *reason)
{
    char buf[512];
    int n;

    if (reason != NULL) {
        n = snprintf(buf, sizeof(buf), "HTTP/1.1 %s: %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Connection: close\r\n\r\n%s: %s", status, reason, status, reason);
    } else {
        n = snprintf(buf, sizeof(buf), "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Connection: close\r\n\r\n%s", status, status);
    }
    (void) answer(hs, buf, n);
}

/* An answer from a handler (Go's response writer): status line in the
 * request's version, the handler's own headers (already sorted, as Go
 * writes them), then Date, Content-Length and Connection, then the body
 * unless the request was HEAD. */
static int
reply(wh_handshake_t *hs, const wh_ws_reply_t *r, const char *status, const char *headers,
      const char *body, int content_length)
{
    char buf[768], date[40];
    int n;

    wh_http_date(date, sizeof(date));
    n = snprintf(buf, sizeof(buf), "%s %s\r\n%sDate: %s\r\n", r->proto, status, headers, date);
    if (content_length >= 0) {
        n += snprintf(buf + n, sizeof(buf) - n, "Content-Length: %d\r\n", content_length);
    }
    n += snprintf(buf + n, sizeof(buf) - n, "%s\r\n%s", r->connection,
                  r->head_only || body == NULL ? "" : body);
    return answer(hs, buf, n);
}

/* gorilla's returnError: http.Error with Sec-Websocket-Version (spec 4.3). */
static int
answer_gorilla(wh_handshake_t *hs, const wh_ws_reply_t *r, int code, const char *text)
{
    char status[64], body[64];

    snprintf(status, sizeof(status), "%d %s", code, text);
    snprintf(body, sizeof(body), "%s\n", text);
    return reply(hs, r, status, "Content-Type: text/plain; charset=utf-8\r\n"
                 "Sec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\n",
                 body, (int) strlen(body));
}

static void
forwarded_for(wh_handshake_t *hs, const wh_http_request_t *req)
{
    const wh_http_header_t *h = wh_http_header_find(req, "X-Forwarded-For");
    wh_sockaddr_t a;

    if (h != NULL && wh_http_forwarded_for(h->value, h->value_len, &a) == WH_OK) {
        memcpy(&hs->peer, &a.sa, a.len);
        hs->peerlen = a.len;
    }
}

/* Checks one complete request head; WH_OK: upgraded. WH_DECLINED: answered,
 * keep the connection for the next request (unless *close_after). */
static int
check_request(wh_handshake_t *hs, wh_ws_head_t *head, size_t head_len, int *cause)
{
    wh_ws_conf_t *conf = hs->ls->module_conf;
    wh_http_request_t req;
    const char *err;
    char path[WH_WS_HEAD_MAX];
    uint8_t early[WH_WS_HEAD_MAX];
    ssize_t plen, early_len = 0;
    size_t cl = strlen(conf->path);
    const wh_http_header_t *key, *eh = NULL;
    char accept[29], resp[WH_WS_HEAD_MAX + 256];
    wh_ws_reply_t r;
    int n;

    err = wh_http_request_parse((const char *) head->buf, head_len, &req);
    if (err != NULL) {
        if (err == wh_http_err_transfer_encoding) {
            static const char t[] = "HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain; "
                                    "charset=utf-8\r\nConnection: close\r\n\r\nUnsupported "
                                    "transfer encoding";
            (void) answer(hs, t, sizeof(t) - 1);
        } else {
            answer_go(hs, "400 Bad Request", NULL);
        }
        hs->top->err = err;
        return WH_ERROR;
    }
    plen = wh_http_request_path(&req, path, sizeof(path));
    head->req = &req;
    head->path = plen >= 0 ? path : NULL;
    head->path_len = plen >= 0 ? (size_t) plen : 0;
    err = wh_http_request_check_server(&req);
    if (err != NULL) {
        answer_go(hs, err == wh_http_err_unsupported_version ? "505 HTTP Version Not Supported"
                                                              : "400 Bad Request", err);
        hs->top->err = err;
        return WH_ERROR;
    }

    {
        int is11 = req.version_major > 1 || (req.version_major == 1 && req.version_minor >= 1);
        const wh_http_header_t *te = wh_http_header_find(&req, "Transfer-Encoding");
        const wh_http_header_t *clh = wh_http_header_find(&req, "Content-Length");
        unsigned long long body = clh ? strtoull(clh->value, NULL, 10) : 0;

        r.proto = is11 ? "HTTP/1.1" : "HTTP/1.0";
        r.close_after = is11 ? has_token(&req, "Connection", "close")
                             : !has_token(&req, "Connection", "keep-alive");
        r.connection = r.close_after ? (is11 ? "Connection: close\r\n" : "")
                                     : (is11 ? "" : "Connection: keep-alive\r\n");
        r.head_only = req.method_len == 4 && memcmp(req.method, "HEAD", 4) == 0;
        if (body > WH_WS_DISCARD_MAX || ++head->requests >= WH_WS_REQUESTS_MAX) {
            /* Go will not read that much of an unread body: it closes;
             * and the deadline is not renewed past the cap */
            r.close_after = 1;
            r.connection = "Connection: close\r\n";
        }
        head->discard = (uint32_t) body;
        head->chunked = te != NULL ? WH_CHUNK_SIZE : 0;  /* the parser allows only chunked */
        head->skipped = 0;
        head->close_after = (uint8_t) r.close_after;
        head->refused = 1;      /* until the 101 goes out */
    }

    /* Go's server, before any handler: Expect other than 100-continue */
    eh = wh_http_header_find(&req, "Expect");
    if (eh != NULL && !has_token(&req, "Expect", "100-continue")) {
        char buf[160], date[40];
        int n;
        wh_http_date(date, sizeof(date));
        n = snprintf(buf, sizeof(buf), "HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\n"
                     "Date: %s\r\nContent-Length: 0\r\n\r\n", date);
        (void) answer(hs, buf, n);
        hs->top->err = "unsupported Expect";
        return WH_ERROR;
    }
    eh = NULL;
    /* Go's server answers "OPTIONS *" itself */
    if (req.method_len == 7 && memcmp(req.method, "OPTIONS", 7) == 0
        && req.target_len == 1 && req.target[0] == '*')
    {
        return reply(hs, &r, "200 OK", "Content-Length: 0\r\n", NULL, -1) == WH_OK
               ? WH_DECLINED : WH_ERROR;
    }

    if (plen >= 0 && conf->max_early_data > 0 && conf->early_header == NULL
        && (size_t) plen > cl && strncmp(path, conf->path, cl) == 0)
    {
        /* V2Ray 4.37+: early data as a base64url suffix of the path */
        early_len = wh_base64url_decode(path + cl, plen - cl, early, sizeof(early));
        if (early_len >= 0 && early_len <= conf->max_early_data) {
            plen = cl;
            path[cl] = '\0';
        } else {
            early_len = 0;
        }
    }
    if (plen < 0 || (size_t) plen != cl || memcmp(path, conf->path, cl) != 0) {
        return reply(hs, &r, "404 Not Found", "", NULL, 0) == WH_OK ? WH_DECLINED : WH_ERROR;
    }
    if (!has_token(&req, "Connection", "upgrade") || !has_token(&req, "Upgrade", "websocket")) {
        return answer_gorilla(hs, &r, 400, "Bad Request") == WH_OK ? WH_DECLINED : WH_ERROR;
    }
    if (req.method_len != 3 || memcmp(req.method, "GET", 3) != 0) {
        return answer_gorilla(hs, &r, 405, "Method Not Allowed") == WH_OK ? WH_DECLINED : WH_ERROR;
    }
    key = wh_http_header_find(&req, "Sec-WebSocket-Key");
    if (!has_token(&req, "Sec-WebSocket-Version", "13") || key == NULL || key->value_len == 0) {
        return answer_gorilla(hs, &r, 400, "Bad Request") == WH_OK ? WH_DECLINED : WH_ERROR;
    }
    if (head->have > head_len) {
        /* gorilla: the client sent data before the handshake was complete */
        hs->top->err = wh_err_bad_input;
        *cause = WH_CLOSE_BAD_INPUT;
        return WH_ERROR;
    }
    if (conf->max_early_data > 0 && conf->early_header != NULL
        && (eh = wh_http_header_find(&req, conf->early_header)) != NULL)
    {
        early_len = wh_base64url_decode(eh->value, eh->value_len, early, sizeof(early));
        if (early_len < 0 || early_len > conf->max_early_data) {
            return answer_gorilla(hs, &r, 400, "Bad Request") == WH_OK ? WH_DECLINED : WH_ERROR;
        }
    }
    forwarded_for(hs, &req);
    wh_handshake_note_path(hs, path, (size_t) plen);

    wh_ws_accept_key(key->value, key->value_len, accept);
    n = snprintf(resp, sizeof(resp), "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n", accept);
    if (eh != NULL && strcasecmp(conf->early_header, "Sec-WebSocket-Protocol") == 0) {
        /* a browser-style client wants its protocol echoed */
        n += snprintf(resp + n, sizeof(resp) - n, "Sec-WebSocket-Protocol: %.*s\r\n",
                      (int) eh->value_len, eh->value);
    }
    n += snprintf(resp + n, sizeof(resp) - n, "\r\n");
    if (send_answer(hs, resp, n) != WH_OK) {
        *cause = WH_CLOSE_ERROR;
        return WH_ERROR;
    }
    hs->top = wh_ws_stream(hs->top, early, early_len);
    if (hs->top == NULL) {
        *cause = WH_CLOSE_ERROR;
        return WH_ERROR;
    }
    return WH_OK;
}

/* Skips what it can of a chunked body at the front of head->buf, as Go
 * drains an unread body before the next request. WH_OK when the body is
 * over, WH_AGAIN for more bytes, WH_ERROR if it is malformed or longer
 * than Go would read (then the connection ends). */
static int
skip_chunked(wh_ws_head_t *head)
{
    uint8_t *lf;
    size_t k;

    for (;;) {
        if (head->chunked == WH_CHUNK_DATA) {
            k = wh_min((size_t) head->discard, (size_t) head->have);
            memmove(head->buf, head->buf + k, head->have - k);
            head->have -= k;
            head->discard -= k;
            if (head->discard > 0) return WH_AGAIN;
            head->chunked = WH_CHUNK_SIZE;
        }
        lf = memchr(head->buf, '\n', head->have);
        if (lf == NULL) {
            return head->have == sizeof(head->buf) ? WH_ERROR : WH_AGAIN;
        }
        k = lf + 1 - head->buf;
        if (head->chunked == WH_CHUNK_SIZE) {
            char *end;
            unsigned long n = strtoul((char *) head->buf, &end, 16);
            if ((uint8_t *) end == head->buf || (*end != '\r' && *end != '\n' && *end != ';')) {
                return WH_ERROR;
            }
            head->skipped += n;
            if (n > WH_WS_DISCARD_MAX || head->skipped > WH_WS_DISCARD_MAX) return WH_ERROR;
            head->discard = n == 0 ? 0 : (uint32_t) n + 2;     /* the data and its CRLF */
            head->chunked = n == 0 ? WH_CHUNK_TRAILER : WH_CHUNK_DATA;
        } else if (k <= 2) {
            head->chunked = 0;                          /* the empty line: over */
        }
        memmove(head->buf, head->buf + k, head->have - k);
        head->have -= k;
        if (head->chunked == 0) return WH_OK;
    }
}

/* The end of a request head: Go's reader takes bare LF line ends too. */
static uint8_t *
head_end(uint8_t *buf, size_t len)
{
    uint8_t *p = buf, *end = buf + len;

    while ((p = memchr(p, '\n', end - p)) != NULL) {
        if (p + 1 < end && p[1] == '\n') return p + 2;
        if (p + 2 < end && p[1] == '\r' && p[2] == '\n') return p + 3;
        p++;
    }
    return NULL;
}

static int
ws_handshake(wh_handshake_t *hs, int *cause)
{
    wh_ws_head_t *head = hs->module_data;
    wh_stream_t *lower = hs->top;
    uint8_t *end;
    ssize_t n;
    size_t head_len, k;
    int rc;

    if (head == NULL) {
        head = hs->module_data = calloc(1, sizeof(*head));
        if (head == NULL) {
            *cause = WH_CLOSE_ERROR;
            return WH_ERROR;
        }
    }
    *cause = WH_CLOSE_BAD_INPUT;
    for (;;) {
        if (head->chunked) {
            rc = skip_chunked(head);
            if (rc == WH_ERROR) {
                lower->err = "bad chunked body";
                return WH_ERROR;
            }
        }
        if (head->discard > 0 && head->have > 0 && !head->chunked) {
            /* the body of an answered request is not the next request */
            k = wh_min((size_t) head->discard, (size_t) head->have);
            memmove(head->buf, head->buf + k, head->have - k);
            head->have -= k;
            head->discard -= k;
        }
        end = head->discard > 0 || head->chunked ? NULL : head_end(head->buf, head->have);
        if (end == NULL) {
            if (head->have == sizeof(head->buf)) {
                const char *t = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: "
                                "text/plain; charset=utf-8\r\nConnection: close\r\n\r\n431 "
                                "Request Header Fields Too Large";
                (void) answer(hs, t, strlen(t));
                lower->err = "request header too large";
                return WH_ERROR;
            }
            n = wh_stream_read(lower, head->buf + head->have, sizeof(head->buf) - head->have);
            if (n == WH_AGAIN) return WH_AGAIN;
            if (n <= 0) {
                /* Go answers a head cut by the client's close with 400 */
                if (head->have > 0 && head->discard == 0 && !head->chunked) {
                    answer_go(hs, "400 Bad Request", NULL);
                }
                if (lower->err == NULL) {
                    /* what was refused is in the line logged then */
                    lower->err = head->refused ? "closed after a refused request" : wh_err_closed;
                }
                *cause = head->have > 0 || head->refused ? WH_CLOSE_BAD_INPUT : WH_CLOSE_DONE;
                return WH_ERROR;
            }
            head->have += n;
            /* bytes that cannot start a request go to a fallback at once,
             * not after the deadline (they are answered as Go would) */
            if (hs->ls->fallbacks.n > 0
                && wh_http_request_partial_invalid((const char *) head->buf, head->have)
                && wh_handshake_fallback(hs, NULL, 0, head->buf, head->have) == WH_OK)
            {
                return WH_ERROR;
            }
            continue;
        }
        head_len = end - head->buf;
        rc = check_request(hs, head, head_len, cause);
        head->path = NULL;
        head->req = NULL;
        if (rc != WH_DECLINED) return rc;
        if (head->close_after) {
            lower->err = head->requests >= WH_WS_REQUESTS_MAX ? "too many requests"
                                                              : "request refused";
            return WH_ERROR;
        }
        /* keep-alive after an answered request: the next one, with a new deadline */
        memmove(head->buf, head->buf + head_len, head->have - head_len);
        head->have -= head_len;
        wh_handshake_restart_timer(hs);
    }
}

static int
ws_fallback(const wh_listener_t *ls)
{
    return 1;
}

static void
ws_handshake_end(wh_handshake_t *hs, int expired)
{
    wh_ws_head_t *head = hs->module_data;

    /* Go: at the header timeout, a 400 only if the text so far cannot parse */
    if (expired && head != NULL && head->have > 0
        && wh_http_request_partial_invalid((const char *) head->buf, head->have))
    {
        answer_go(hs, "400 Bad Request", NULL);
    }
    free(head);
    hs->module_data = NULL;
}

const wh_module_t wh_ws_module = {
    .name = "ws",
    .networks = networks,
    .alpn = alpn,
    .settings = "wsSettings",
    .directives = ws_directives,
    .conf_size = sizeof(wh_ws_conf_t),
    .postconf = ws_postconf,
    .free_conf = NULL,
    .bind = NULL,
    .start = wh_accept_start,
    .stop = wh_accept_stop,
    .handshake = ws_handshake,
    .handshake_end = ws_handshake_end,
    .fallback = ws_fallback,
    .handshake_timeout = 4.0,           /* Go's ReadHeaderTimeout in V2Ray */
};

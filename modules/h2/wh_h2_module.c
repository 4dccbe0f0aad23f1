/*
 * wh_h2_module.c -- the "http" transport (spec 5): httpSettings, request
 * validation, and choosing how a connection speaks.
 *
 * With TLS and ALPN h2 the connection is an HTTP/2 session at once
 * (wh_h2_conn.c). Without TLS, as V2Ray's server when its listener has no
 * TLS (spec 5.6, for running behind a TLS-terminating proxy), it is h2c:
 * the HTTP/2 preface (prior knowledge), or an HTTP/1.1 request with
 * "Upgrade: h2c". Other HTTP/1.1 requests (also over TLS with ALPN
 * http/1.1) are served as V2Ray's handler serves them: 404 when host or path
 * do not match, else a relay with a chunked response (wh_h2_http1.c).
 *
 * PROXY: the http transport has no setting of its own; sockopt's
 * acceptProxyProtocol applies (spec 3.1).
 */
#include "wh_h2.h"
#include "wh_base64url.h"
#include "wh_http_request.h"
#include "wh_log.h"
#include "wh_tls.h"

#include <strings.h>
#include <time.h>

#define WH_H2_HEAD_MAX 8192

/* Go's h2c upgrade reads the request body before switching; so does this,
 * up to a bound */
#define WH_H2_UPGRADE_BODY_MAX (1 << 20)

typedef struct {
    uint32_t have;
    uint8_t *body;              /* an upgrade request's body, when longer than buf holds */
    uint32_t body_have, body_len;
    uint8_t buf[WH_H2_HEAD_MAX];
} wh_h2_head_t;

static const char *const networks[] = { "h2", "http", NULL };
static const char *const alpn[] = { "h2", "http/1.1", NULL };
static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static const wh_directive_t http_directives[] = {
    { .name = "path", .type = WH_DIR_URL_PATH, .offset = offsetof(wh_h2_conf_t, path),
      .dflt_str = "/" },
    { .name = "host", .type = WH_DIR_LIST, .offset = offsetof(wh_h2_conf_t, hosts),
      .dflt_str = "www.example.com" },
    wh_null_directive
};

static int
h2_postconf(wh_conf_t *cf, wh_listener_t *ls, const config_setting_t *ss,
            const config_setting_t *http)
{
    ls->proxy_protocol = ls->sockopt_proxy_protocol;
    return WH_OK;
}

int
wh_h2_request_ok(const wh_h2_conf_t *conf, const char *authority, size_t alen,
                 const char *path, size_t plen)
{
    char decoded[WH_H2_HEAD_MAX];
    ssize_t dl;
    size_t cl = strlen(conf->path);
    int i, host_ok = 0;

    for (i = 0; i < conf->hosts.n && !host_ok; i++) {
        host_ok = authority != NULL && strlen(conf->hosts.v[i]) == alen
                  && memcmp(conf->hosts.v[i], authority, alen) == 0;
    }
    if (!host_ok || path == NULL) return 0;
    /* the decoded path, query removed, must start with the configured one */
    dl = wh_http_target_path(path, plen, decoded, sizeof(decoded));
    return dl >= 0 && (size_t) dl >= cl && memcmp(decoded, conf->path, cl) == 0;
}

static int
answer(wh_handshake_t *hs, const char *text, size_t len)
{
    return wh_stream_write(hs->top, text, len) == (ssize_t) len ? WH_OK : WH_ERROR;
}

/* A refusal of the HTTP/1.1 service (its 400, 404, 413): a fallback that
 * takes the request (wh_fallback.h) gets the connection instead, with every
 * byte read so far, and nothing is written (WH_DECLINED). target: the
 * request's, NULL when it could not be parsed. */
static int
refuse(wh_handshake_t *hs, wh_h2_head_t *head, const wh_http_request_t *req, const char *text,
       size_t len)
{
    char path[WH_H2_HEAD_MAX], why[48];
    ssize_t pl = req != NULL ? wh_http_target_path(req->target, req->target_len, path,
                                                   sizeof(path)) : -1;
    const wh_http_header_t *host = req != NULL ? wh_http_header_find(req, "Host") : NULL;
    const char *status = memchr(text, ' ', len);

    if (wh_handshake_fallback(hs, pl >= 0 ? path : NULL, pl >= 0 ? (size_t) pl : 0, head->buf,
                              head->have) == WH_OK)
    {
        return WH_DECLINED;
    }
    status = status != NULL ? status + 1 : text;
    snprintf(why, sizeof(why), "%.*s", (int) strcspn(status, "\r"), status);
    wh_handshake_refused(hs, why, req ? req->method : NULL, req ? req->method_len : 0,
                         host ? host->value : NULL, host ? host->value_len : 0,
                         pl >= 0 ? path : NULL, pl >= 0 ? (size_t) pl : 0);
    return answer(hs, text, len);
}

/* An HTTP/1.1 request on an h2c port: Upgrade: h2c, or a 404/400. */
static int
http1_request(wh_handshake_t *hs, wh_h2_head_t *head, size_t head_len, int *cause)
{
    wh_http_request_t req;
    const wh_http_header_t *host, *settings, *cl;
    char path[WH_H2_HEAD_MAX], auth[512], date[40];
    /* room for the settings of any HTTP2-Settings that fits in a head, as
     * Go's h2c takes any; the decoder checks the size all the same */
    uint8_t payload[WH_H2_HEAD_MAX / 4 * 3];
    unsigned long long body_len = 0;
    int n, len;

    wh_http_date(date, sizeof(date));
    *cause = WH_CLOSE_BAD_INPUT;
    if (wh_http_request_parse((const char *) head->buf, head_len, &req) != NULL
        || wh_http_request_check_server(&req) != NULL)
    {
        static const char t[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; "
                                "charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request";
        (void) refuse(hs, head, NULL, t, sizeof(t) - 1);
        hs->top->err = wh_err_bad_input;
        return WH_ERROR;
    }
    host = wh_http_header_find(&req, "Host");
    snprintf(auth, sizeof(auth), "%.*s", host ? (int) wh_min(host->value_len, sizeof(auth) - 1) : 0,
             host ? host->value : "");
    snprintf(path, sizeof(path), "%.*s", (int) req.target_len, req.target);
    settings = wh_http_header_find(&req, "HTTP2-Settings");
    cl = wh_http_header_find(&req, "Content-Length");
    if (cl != NULL) body_len = strtoull(cl->value, NULL, 10);

    if (hs->ls->tls != NULL || settings == NULL || wh_http_header_find(&req, "Upgrade") == NULL
        || strncasecmp(wh_http_header_find(&req, "Upgrade")->value, "h2c", 3) != 0)
    {
        /* spec 5.6: the same handler answers HTTP/1.1, relaying the request
         * body up and a chunked response down */
        if (!wh_h2_request_ok(hs->ls->module_conf, auth, strlen(auth), path, strlen(path))) {
            n = snprintf((char *) payload, sizeof(payload), "HTTP/1.1 404 Not Found\r\nDate: %s\r\n"
                         "Content-Length: 0\r\nConnection: close\r\n\r\n", date);
            (void) refuse(hs, head, &req, (char *) payload, n);
            hs->top->err = "HTTP/1.1 request refused (404)";
            return WH_ERROR;
        }
        wh_handshake_note_path(hs, path, strlen(path));
        n = snprintf((char *) payload, sizeof(payload), "HTTP/1.1 200 OK\r\nCache-Control: no-store\r\n"
                     "Date: %s\r\nTransfer-Encoding: chunked\r\n\r\n", date);
        if (answer(hs, (char *) payload, n) != WH_OK) {
            *cause = WH_CLOSE_ERROR;
            return WH_ERROR;
        }
        hs->top = wh_h2_http1_stream(hs->top, wh_http_header_find(&req, "Transfer-Encoding") != NULL,
                                     body_len, head->buf + head_len, head->have - head_len);
        if (hs->top == NULL) {
            *cause = WH_CLOSE_ERROR;
            return WH_ERROR;
        }
        return WH_OK;
    }
    if (body_len > WH_H2_UPGRADE_BODY_MAX) {
        static const char t[] = "HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\n"
                                "Content-Length: 0\r\n\r\n";
        (void) refuse(hs, head, &req, t, sizeof(t) - 1);
        hs->top->err = "h2c upgrade body too large";
        return WH_ERROR;
    }
    if (body_len > head->have - head_len) {
        /* the upgraded request's body is stream 1's uplink: all of it first */
        if (head->body == NULL) {
            head->body = malloc(body_len);
            if (head->body == NULL) {
                *cause = WH_CLOSE_ERROR;
                return WH_ERROR;
            }
            head->body_len = (uint32_t) body_len;
            head->body_have = head->have - head_len;
            if (wh_http_header_find(&req, "Expect") != NULL) {
                /* Go's server says so when the handler starts reading */
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                (void) answer(hs, cont, sizeof(cont) - 1);
            }
            memcpy(head->body, head->buf + head_len, head->body_have);
            head->have = head_len;
        }
        if (head->body_have < head->body_len) return WH_AGAIN;
    }
    /* HTTP2-Settings: base64url without padding, as Go's h2c decodes it */
    len = wh_base64url_decode(settings->value, settings->value_len, payload, sizeof(payload));
    if (len < 0) {
        hs->top->err = wh_err_bad_input;
        return WH_ERROR;
    }
    {
        static const char up[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                                 "Upgrade: h2c\r\n\r\n";
        if (answer(hs, up, sizeof(up) - 1) != WH_OK) {
            *cause = WH_CLOSE_ERROR;
            return WH_ERROR;
        }
    }
    if (wh_h2_conn_start(hs, head->body ? NULL : head->buf + head_len + body_len,
                         head->body ? 0 : head->have - head_len - body_len, (char *) payload, len,
                         auth, path, head->body ? head->body : head->buf + head_len,
                         body_len) != WH_OK)
    {
        *cause = WH_CLOSE_ERROR;
        return WH_ERROR;
    }
    return WH_DECLINED;
}

static int
h2_handshake(wh_handshake_t *hs, int *cause)
{
    wh_h2_head_t *head = hs->module_data;
    uint8_t *end;
    ssize_t n;
    size_t k;

    if (hs->ls->tls != NULL && strcmp(wh_tls_alpn(hs->top), "h2") == 0) {
        *cause = WH_CLOSE_ERROR;
        return wh_h2_conn_start(hs, NULL, 0, NULL, 0, NULL, NULL, NULL, 0) == WH_OK
               ? WH_DECLINED : WH_ERROR;
    }
    if (head == NULL) {
        head = hs->module_data = calloc(1, sizeof(*head));
        if (head == NULL) {
            *cause = WH_CLOSE_ERROR;
            return WH_ERROR;
        }
    }
    for (;;) {
        if (hs->ls->tls != NULL) {
            /* over TLS without ALPN h2, V2Ray's handler speaks HTTP/1.1 only */
            end = memmem(head->buf, head->have, "\r\n\r\n", 4);
            if (end != NULL) return http1_request(hs, head, end + 4 - head->buf, cause);
            goto more;
        }
        if (head->body != NULL) {
            if (head->body_have < head->body_len) {
                n = wh_stream_read(hs->top, head->body + head->body_have,
                                   head->body_len - head->body_have);
                if (n == WH_AGAIN) return WH_AGAIN;
                if (n <= 0) {
                    *cause = WH_CLOSE_BAD_INPUT;
                    if (hs->top->err == NULL) hs->top->err = wh_err_closed;
                    return WH_ERROR;
                }
                head->body_have += n;
                continue;
            }
            end = memmem(head->buf, head->have, "\r\n\r\n", 4);
            return http1_request(hs, head, end + 4 - head->buf, cause);
        }
        k = wh_min((size_t) head->have, sizeof(preface) - 1);
        if (k > 0 && memcmp(head->buf, preface, k) == 0) {
            if (k == sizeof(preface) - 1) {
                /* h2c with prior knowledge: the session reads the preface itself */
                *cause = WH_CLOSE_ERROR;
                return wh_h2_conn_start(hs, head->buf, head->have, NULL, 0, NULL, NULL, NULL, 0)
                       == WH_OK ? WH_DECLINED : WH_ERROR;
            }
        } else if ((end = memmem(head->buf, head->have, "\r\n\r\n", 4)) != NULL) {
            int rc = http1_request(hs, head, end + 4 - head->buf, cause);
            if (rc != WH_AGAIN) return rc;
            if (head->body != NULL) continue;   /* the body goes to its own buffer */
        }
    more:
        if (head->have == sizeof(head->buf)) {
            hs->top->err = "request head too large";
            *cause = WH_CLOSE_BAD_INPUT;
            return WH_ERROR;
        }
        n = wh_stream_read(hs->top, head->buf + head->have, sizeof(head->buf) - head->have);
        if (n == WH_AGAIN) return WH_AGAIN;
        if (n <= 0) {
            *cause = head->have > 0 ? WH_CLOSE_BAD_INPUT : WH_CLOSE_DONE;
            if (hs->top->err == NULL) hs->top->err = wh_err_closed;
            return WH_ERROR;
        }
        head->have += n;
        /* bytes that can start neither a request nor the preface go to a
         * fallback at once, not after the deadline */
        k = wh_min((size_t) head->have, sizeof(preface) - 1);
        if (hs->ls->fallbacks.n > 0 && memcmp(head->buf, preface, k) != 0
            && wh_http_request_partial_invalid((const char *) head->buf, head->have)
            && wh_handshake_fallback(hs, NULL, 0, head->buf, head->have) == WH_OK)
        {
            return WH_ERROR;
        }
    }
}

/* Its HTTP/1.1 service refuses what V2Ray's handler answers 404 (or 400). */
static int
h2_fallback(const wh_listener_t *ls)
{
    return 1;
}

static void
h2_handshake_end(wh_handshake_t *hs, int expired)
{
    wh_h2_head_t *head = hs->module_data;

    if (head != NULL) free(head->body);
    free(hs->module_data);
    hs->module_data = NULL;
}

static void
h2_stop(wh_listener_t *ls)
{
    wh_accept_stop(ls);
    wh_h2_conn_drain(ls);
}

const wh_module_t wh_h2_module = {
    .name = "h2",
    .networks = networks,
    .alpn = alpn,
    .settings = "httpSettings",
    .directives = http_directives,
    .conf_size = sizeof(wh_h2_conf_t),
    .postconf = h2_postconf,
    .free_conf = NULL,
    .bind = NULL,
    .start = wh_accept_start,
    .stop = h2_stop,
    .handshake = h2_handshake,
    .handshake_end = h2_handshake_end,
    .fallback = h2_fallback,
    .handshake_timeout = 4.0,       /* Go's TLS handshake deadline / ReadHeaderTimeout */
};

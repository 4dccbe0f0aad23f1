/*
 * wh_tcp_module.c -- the "tcp" transport (spec 3): raw TCP or unix-socket
 * listeners, with an optional PROXY header (tcpSettings.acceptProxyProtocol;
 * sockopt's is ignored, as V2Ray does) and TLS.
 *
 * Accepting, PROXY and TLS are the shared stream handshake
 * (wh_handshake.c); this file reads tcpSettings and, with header type
 * "http", adds the obfuscation stage on top (wh_tcp_http_stream.c), last as
 * spec 3.2 orders. A plain connection reaches the relay as a bare socket
 * stream, so the relay may splice it.
 */
#include "wh_cycle.h"
#include "wh_filter.h"
#include "wh_handshake.h"
#include "wh_tcp_http_stream.h"

#include <strings.h>

typedef struct {
    int accept_proxy_protocol;
    int header_type;                /* WH_TCP_HEADER_*, or -1: no "type" */
    wh_http_obfs_conf_t *http;      /* header type "http", else NULL */
} wh_tcp_conf_t;

#define WH_TCP_HEADER_NONE 0
#define WH_TCP_HEADER_HTTP 1

static const char *const networks[] = { "tcp", NULL };
/* V2Ray's tcp server offers only h2 (spec 2.2) */
static const char *const alpn[] = { "h2", NULL };
static const char *const header_types[] = { "none", "http", NULL };

/* request and response are the "http" header's, read with it */
static const wh_directive_t header_directives[] = {
    { .name = "type", .type = WH_DIR_ENUM, .offset = offsetof(wh_tcp_conf_t, header_type),
      .values = header_types, .what = "header type", .dflt = -1 },
    { .name = "request", .type = WH_DIR_MODULE },
    { .name = "response", .type = WH_DIR_MODULE },
    wh_null_directive
};

static const wh_directive_t tcp_directives[] = {
    { .name = "acceptProxyProtocol", .type = WH_DIR_BOOL,
      .offset = offsetof(wh_tcp_conf_t, accept_proxy_protocol) },
    { .name = "header", .type = WH_DIR_GROUP, .group = header_directives },
    wh_null_directive
};

static int
tcp_postconf(wh_conf_t *cf, wh_listener_t *ls, const config_setting_t *ss,
             const config_setting_t *tcp)
{
    wh_tcp_conf_t *conf = ls->module_conf;
    config_setting_t *header = tcp ? config_setting_get_member(tcp, "header") : NULL;

    ls->proxy_protocol = conf->accept_proxy_protocol;
    if (header == NULL || conf->header_type == WH_TCP_HEADER_NONE) {
        return WH_OK;
    }
    /* V2Ray: only an absent header means none; one without a type is an error */
    if (conf->header_type == -1) {
        wh_conf_error(cf, header, "\"header\" has no \"type\"");
        return WH_ERROR;
    }
    return wh_http_obfs_parse(cf, header, &conf->http);
}

static void
tcp_free_conf(void *p)
{
    wh_tcp_conf_t *conf = p;

    wh_http_obfs_free(conf->http);
}

static int
tcp_handshake(wh_handshake_t *hs, int *cause)
{
    wh_tcp_conf_t *conf = hs->ls->module_conf;
    int rc;

    if (conf->http == NULL) {
        return WH_OK;
    }
    if (hs->module_step == 0) {
        wh_stream_t *s = wh_tcp_http_stream(hs->top, conf->http, hs->accepted);
        if (s == NULL) {
            *cause = WH_CLOSE_ERROR;
            return WH_ERROR;
        }
        hs->top = s;
        hs->module_step = 1;
    }
    rc = wh_tcp_http_accept(hs->top);
    if (rc == WH_ERROR) {
        const uint8_t *read, *sp;
        const char *path;
        size_t n, path_len;

        if (wh_tcp_http_refused(hs->top, &read, &n, &path, &path_len)) {
            /* a fallback takes what the header refuses, which never saw the
             * obfuscation's answer */
            if (hs->ls->fallbacks.n > 0 && wh_handshake_fallback(hs, path, path_len, read, n) == WH_OK) {
                hs->top = wh_filter_detach(hs->top);
                return WH_ERROR;
            }
            sp = memchr(read, ' ', n);
            wh_handshake_refused(hs, hs->top->err ? hs->top->err : "refused", (const char *) read,
                                 sp != NULL ? (size_t) (sp - read) : 0, NULL, 0, path, path_len);
        }
    }
    if (rc == WH_ERROR) {
        *cause = hs->top->err == wh_err_bad_input ? WH_CLOSE_BAD_INPUT
               : hs->top->err == wh_err_closed ? WH_CLOSE_DONE : WH_CLOSE_ERROR;
    }
    return rc;
}

/* Only the "http" header refuses anything: a raw stream is taken whole. */
static int
tcp_fallback(const wh_listener_t *ls)
{
    return ((const wh_tcp_conf_t *) ls->module_conf)->http != NULL;
}

const wh_module_t wh_tcp_module = {
    .name = "tcp",
    .networks = networks,
    .alpn = alpn,
    .settings = "tcpSettings",
    .directives = tcp_directives,
    .conf_size = sizeof(wh_tcp_conf_t),
    .postconf = tcp_postconf,
    .free_conf = tcp_free_conf,
    .bind = NULL,
    .start = wh_accept_start,
    .stop = wh_accept_stop,
    .handshake = tcp_handshake,
    .fallback = tcp_fallback,
};

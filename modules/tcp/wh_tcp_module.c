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
#include "wh_handshake.h"
#include "wh_tcp_http_stream.h"

#include <strings.h>

typedef struct {
    wh_http_obfs_conf_t *http;      /* header type "http", else NULL */
} wh_tcp_conf_t;

static const char *const networks[] = { "tcp", NULL };
/* V2Ray's tcp server offers only h2 (spec 2.2) */
static const char *const alpn[] = { "h2", NULL };
static const char *const tcp_settings_names[] = { "header", "acceptProxyProtocol", NULL };
static const char *const header_names[] = { "type", "request", "response", NULL };

static int
tcp_parse(wh_conf_t *cf, wh_listener_t *ls, const config_setting_t *ss)
{
    wh_tcp_conf_t *conf = wh_xalloc(sizeof(*conf));
    config_setting_t *tcp = NULL, *header = NULL;
    const char *type = NULL;

    ls->module_conf = conf;
    if (ss != NULL && wh_conf_group(cf, ss, "tcpSettings", &tcp) == WH_ERROR) {
        return WH_ERROR;
    }
    if (tcp == NULL) {
        return WH_OK;
    }
    if (wh_conf_check_names(cf, tcp, tcp_settings_names, NULL) != WH_OK
        || wh_conf_bool(cf, tcp, "acceptProxyProtocol", &ls->proxy_protocol) == WH_ERROR
        || wh_conf_group(cf, tcp, "header", &header) == WH_ERROR)
    {
        return WH_ERROR;
    }
    if (header == NULL) {
        return WH_OK;
    }
    if (wh_conf_check_names(cf, header, header_names, NULL) != WH_OK
        || wh_conf_string(cf, header, "type", &type) == WH_ERROR)
    {
        return WH_ERROR;
    }
    /* V2Ray: only an absent header means none; one without a type is an error */
    if (type == NULL) {
        wh_conf_error(cf, header, "\"header\" has no \"type\"");
        return WH_ERROR;
    }
    if (strcasecmp(type, "none") == 0) {
        return WH_OK;
    }
    if (strcasecmp(type, "http") == 0) {
        return wh_http_obfs_parse(cf, header, &conf->http);
    }
    wh_conf_error(cf, config_setting_get_member(header, "type"),
                  "unknown header type \"%s\" (none or http)", type);
    return WH_ERROR;
}

static void
tcp_free_conf(void *p)
{
    wh_tcp_conf_t *conf = p;

    if (conf != NULL) {
        wh_http_obfs_free(conf->http);
        free(conf);
    }
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
        *cause = hs->top->err == wh_err_bad_input ? WH_CLOSE_BAD_INPUT
               : hs->top->err == wh_err_closed ? WH_CLOSE_DONE : WH_CLOSE_ERROR;
    }
    return rc;
}

const wh_module_t wh_tcp_module = {
    .name = "tcp",
    .networks = networks,
    .alpn = alpn,
    .parse = tcp_parse,
    .free_conf = tcp_free_conf,
    .bind = NULL,
    .start = wh_accept_start,
    .stop = wh_accept_stop,
    .handshake = tcp_handshake,
};

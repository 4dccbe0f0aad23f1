/*
 * wh_tcp_module.c -- the "tcp" transport (spec 3): raw TCP or unix-socket
 * listeners, with an optional PROXY header (tcpSettings.acceptProxyProtocol;
 * sockopt's is ignored, as V2Ray does) and TLS.
 *
 * Accepting, PROXY and TLS are the shared stream handshake
 * (wh_handshake.c); this file only reads tcpSettings. A plain connection
 * reaches the relay as a bare socket stream, so the relay may splice it.
 */
#include "wh_cycle.h"
#include "wh_handshake.h"

#include <strings.h>

typedef struct {
    int header_http;
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
        wh_conf_error(cf, config_setting_get_member(header, "type"),
                      "header type \"http\" is not supported by this build");
        return WH_ERROR;
    }
    wh_conf_error(cf, config_setting_get_member(header, "type"),
                  "unknown header type \"%s\" (none or http)", type);
    return WH_ERROR;
}

const wh_module_t wh_tcp_module = {
    .name = "tcp",
    .networks = networks,
    .alpn = alpn,
    .parse = tcp_parse,
    .free_conf = NULL,
    .bind = NULL,
    .start = wh_accept_start,
    .stop = wh_accept_stop,
    .handshake = NULL,
};

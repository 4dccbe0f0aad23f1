/*
 * wh_ds_module.c -- the "domainsocket" transport (spec 6): a unix stream
 * socket named by dsSettings.path, optionally abstract and padded, with
 * TLS on top when security is "tls".
 *
 * As in V2Ray the listener's listen and port are ignored: the address is
 * dsSettings'. Binding (with the "<path>.lock" file and stale-socket
 * handling), accepting and TLS are the core's, shared with tcp listeners
 * on unix paths; this file only turns dsSettings into an address. A
 * domainsocket never accepts a PROXY header.
 */
#include "wh_cycle.h"
#include "wh_handshake.h"

static const char *const networks[] = { "ds", "domainsocket", NULL };
static const char *const alpn[] = { "h2", "http/1.1", NULL };
typedef struct {
    char *path;
    int abstract;
    int padding;
} wh_ds_conf_t;

static const wh_directive_t ds_directives[] = {
    { .name = "path", .type = WH_DIR_STRING, .offset = offsetof(wh_ds_conf_t, path) },
    { .name = "abstract", .type = WH_DIR_BOOL, .offset = offsetof(wh_ds_conf_t, abstract) },
    { .name = "padding", .type = WH_DIR_BOOL, .offset = offsetof(wh_ds_conf_t, padding) },
    wh_null_directive
};

static int
ds_postconf(wh_conf_t *cf, wh_listener_t *ls, const config_setting_t *ss,
            const config_setting_t *ds)
{
    wh_ds_conf_t *conf = ls->module_conf;
    const char *path = conf->path, *name;
    int abstract = conf->abstract;

    if (path == NULL || path[0] == '\0') {
        wh_conf_error(cf, ds ? ds : ss, "domainsocket needs \"dsSettings.path\"");
        return WH_ERROR;
    }
    if (ls->addr.len != 0) {
        wh_conf_warn(cf, ss, "listener \"%s\": \"listen\" and \"port\" are ignored for "
                     "domainsocket, dsSettings.path is the address", ls->tag);
    }

    /* "@name" is abstract even without abstract = true (spec 6.1); the one
     * leading "@" stands for the NUL, padding only with abstract = true */
    name = path[0] == '@' ? path + 1 : path;
    if ((path[0] == '@' || abstract)
        ? wh_addr_abstract(name, abstract && conf->padding, &ls->addr) != WH_OK
        : wh_addr_parse_unix(path, &ls->addr) != WH_OK)
    {
        wh_conf_error(cf, config_setting_get_member(ds, "path"),
                      "\"path\" must be 1..107 bytes");
        return WH_ERROR;
    }
    return WH_OK;
}

const wh_module_t wh_ds_module = {
    .name = "ds",
    .networks = networks,
    .alpn = alpn,
    .settings = "dsSettings",
    .directives = ds_directives,
    .conf_size = sizeof(wh_ds_conf_t),
    .postconf = ds_postconf,
    .free_conf = NULL,
    .bind = NULL,
    .start = wh_accept_start,
    .stop = wh_accept_stop,
    .handshake = NULL,
};

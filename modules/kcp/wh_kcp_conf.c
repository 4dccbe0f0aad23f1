/*
 * wh_kcp_conf.c -- kcpSettings (spec 9.1) with V2Ray's defaults and ranges:
 * mtu 576-1460, tti 10-100, the other numbers any uint32 (V2Ray's JSON
 * refuses anything else), header as spec 7, seed present or not. The
 * derived values use V2Ray's wrapping 32-bit arithmetic
 * (wh_kcp_params_init), so a config means what it means to V2Ray.
 */
#include "wh_core.h"

#include "wh_kcp_conf.h"

#define WH_U32_MAX 4294967295L

static const char *const kcp_names[] = {
    "mtu", "tti", "uplinkCapacity", "downlinkCapacity", "congestion", "readBufferSize",
    "writeBufferSize", "header", "seed", NULL
};

int
wh_kcp_conf_parse(wh_conf_t *cf, const config_setting_t *ss, wh_kcp_conf_t **out)
{
    wh_kcp_conf_t *c = wh_xalloc(sizeof(*c));
    config_setting_t *kcp = NULL;
    const char *seed = NULL;
    int rc;

    memset(c, 0, sizeof(*c));
    *out = c;
    c->mtu = 1350;
    c->tti = 50;
    c->uplink = 5;
    c->downlink = 20;
    c->read_buffer = 2;
    c->write_buffer = 2;
    c->header = &wh_pkt_header_none;

    if (ss != NULL && wh_conf_group(cf, ss, "kcpSettings", &kcp) == WH_ERROR) {
        return WH_ERROR;
    }
    if (kcp != NULL) {
        if (wh_conf_check_names(cf, kcp, kcp_names, NULL) != WH_OK
            || wh_conf_int(cf, kcp, "mtu", 576, 1460, &c->mtu) == WH_ERROR
            || wh_conf_int(cf, kcp, "tti", 10, 100, &c->tti) == WH_ERROR
            || wh_conf_int(cf, kcp, "uplinkCapacity", 0, WH_U32_MAX, &c->uplink) == WH_ERROR
            || wh_conf_int(cf, kcp, "downlinkCapacity", 0, WH_U32_MAX, &c->downlink) == WH_ERROR
            || wh_conf_bool(cf, kcp, "congestion", &c->congestion) == WH_ERROR
            || wh_conf_int(cf, kcp, "readBufferSize", 0, WH_U32_MAX, &c->read_buffer) == WH_ERROR
            || wh_conf_int(cf, kcp, "writeBufferSize", 0, WH_U32_MAX, &c->write_buffer) == WH_ERROR
            || wh_pkt_header_conf(cf, kcp, &c->header) == WH_ERROR)
        {
            return WH_ERROR;
        }
        rc = wh_conf_string(cf, kcp, "seed", &seed);
        if (rc == WH_ERROR) {
            return WH_ERROR;
        }
        if (rc == WH_OK) {
            c->seed = wh_xstrdup(seed);
            c->seed_len = strlen(seed);
        }
    }
    wh_kcp_params_init(&c->params, c->mtu, c->tti, c->uplink, c->downlink, c->write_buffer,
                       c->congestion, c->header->size, c->seed != NULL);
    return WH_OK;
}

void
wh_kcp_conf_free(void *conf)
{
    wh_kcp_conf_t *c = conf;

    if (c != NULL) {
        free(c->seed);
        free(c);
    }
}

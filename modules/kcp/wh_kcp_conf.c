/*
 * wh_kcp_conf.c -- kcpSettings (spec 9.1) with V2Ray's defaults and ranges:
 * mtu 576-1460, tti 10-100, the other numbers any uint32 (V2Ray's JSON
 * refuses anything else), header as spec 7, seed present or not. The
 * derived values use V2Ray's wrapping 32-bit arithmetic
 * (wh_kcp_params_init), so a config means what it means to V2Ray.
 */
#include "wh_cycle.h"

#include "wh_kcp_conf.h"

#define WH_U32_MAX 4294967295.0

static int
kcp_header(wh_conf_t *cf, const config_setting_t *group, const wh_directive_t *d, void *field)
{
    return wh_pkt_header_conf(cf, group, field);
}

#define kcp_int(key, field, lo, hi, def)                                              \
    { .name = key, .type = WH_DIR_INT, .offset = offsetof(wh_kcp_conf_t, field),     \
      .min = lo, .max = hi, .dflt = def }

const wh_directive_t wh_kcp_directives[] = {
    kcp_int("mtu", mtu, 576, 1460, 1350),
    kcp_int("tti", tti, 10, 100, 50),
    kcp_int("uplinkCapacity", uplink, 0, WH_U32_MAX, 5),
    kcp_int("downlinkCapacity", downlink, 0, WH_U32_MAX, 20),
    { .name = "congestion", .type = WH_DIR_BOOL, .offset = offsetof(wh_kcp_conf_t, congestion) },
    kcp_int("readBufferSize", read_buffer, 0, WH_U32_MAX, 2),
    kcp_int("writeBufferSize", write_buffer, 0, WH_U32_MAX, 2),
    { .name = "header", .type = WH_DIR_CUSTOM, .offset = offsetof(wh_kcp_conf_t, header),
      .handler = kcp_header },
    { .name = "seed", .type = WH_DIR_STRING, .offset = offsetof(wh_kcp_conf_t, seed) },
    wh_null_directive
};

int
wh_kcp_postconf(wh_conf_t *cf, wh_listener_t *ls, const config_setting_t *ss,
                const config_setting_t *kcp)
{
    wh_kcp_conf_t *c = ls->module_conf;

    c->seed_len = c->seed ? strlen(c->seed) : 0;
    wh_kcp_params_init(&c->params, c->mtu, c->tti, c->uplink, c->downlink, c->write_buffer,
                       c->congestion, c->header->size, c->seed != NULL);
    return WH_OK;
}

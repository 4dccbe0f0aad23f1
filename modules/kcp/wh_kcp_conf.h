/*
 * wh_kcp_conf.h -- a kcp listener's kcpSettings (spec 9.1) as parsed in the
 * master, with the values derived from them. Separate from the module so
 * the table and its ranges are unit-testable without sockets.
 */
#ifndef WH_KCP_CONF_H
#define WH_KCP_CONF_H

#include "wh_module.h"
#include "wh_headers.h"

#include "wh_kcp_session.h"

typedef struct {
    long mtu, tti, uplink, downlink, read_buffer, write_buffer;
    int congestion;
    const wh_pkt_header_t *header;
    char *seed;                 /* NULL: simple security; may be "" */
    size_t seed_len;
    wh_kcp_params_t params;
} wh_kcp_conf_t;

/* kcpSettings' table and the derived values, for the module's descriptor */
extern const wh_directive_t wh_kcp_directives[];
int wh_kcp_postconf(wh_conf_t *cf, wh_listener_t *ls, const config_setting_t *stream_settings,
                    const config_setting_t *kcp);

#endif

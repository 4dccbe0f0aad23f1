/*
 * wh_kcp_conf.h -- a kcp listener's kcpSettings (spec 9.1) as parsed in the
 * master, with the values derived from them. Separate from the module so
 * the parsing and its ranges are unit-testable without sockets.
 */
#ifndef WH_KCP_CONF_H
#define WH_KCP_CONF_H

#include "wh_conf.h"
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

/* Reads the optional kcpSettings group of stream_settings (NULL: all
 * defaults) into a new *out. WH_OK, or WH_ERROR recorded in cf (file:line)
 * with *out still to be freed. */
int wh_kcp_conf_parse(wh_conf_t *cf, const config_setting_t *stream_settings,
                      wh_kcp_conf_t **out);
void wh_kcp_conf_free(void *conf);

#endif

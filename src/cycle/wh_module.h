/*
 * wh_module.h -- the transport module descriptor.
 *
 * A transport is one const wh_module_t (V2Ray's RegisterTransportListener,
 * done nginx's way): configure lists the built ones in objs/wh_modules.c and
 * the core finds a listener's module by its streamSettings.network. The
 * core parses what every listener has (tag, listen, port, upstream,
 * security, sockopt) and binds stream sockets; the module declares its
 * <transport>Settings as a table the core reads (nginx's ngx_command_t),
 * and runs the accept side in each worker, turning whatever it carries
 * into wh_stream_t's handed to wh_relay_start().
 */
#ifndef WH_MODULE_H
#define WH_MODULE_H

#include "wh_core.h"

#include "wh_conf.h"
#include "wh_directive.h"

typedef struct wh_listener_s wh_listener_t;
typedef struct wh_worker_ctx_s wh_worker_ctx_t;
typedef struct wh_handshake_s wh_handshake_t;
typedef struct wh_udp_packet_s wh_udp_packet_t;

typedef struct wh_module_s {
    const char *name;
    const char *const *networks;        /* streamSettings.network values, lower case */
    const char *const *alpn;            /* TLS ALPN when tlsSettings.alpn is unset (spec
                                         * 2.2); NULL: no security "tls" here */

    /* Its group in streamSettings ("wsSettings") and what that group may
     * hold (wh_directive.h): the core refuses other names, checks types
     * and ranges, and fills a zeroed conf_size block, ls->module_conf, with
     * the defaults and the group's values. Runs in the master (and -t). */
    const char *settings;
    const wh_directive_t *directives;
    size_t conf_size;

    /* Optional, after the table: the checks across fields and whatever the
     * table cannot say. settings is the group, NULL when absent. */
    int (*postconf)(wh_conf_t *cf, wh_listener_t *ls, const config_setting_t *stream_settings,
                    const config_setting_t *settings);

    /* Optional: frees what postconf hung on ls->module_conf; the core
     * frees what the table filled and the block. */
    void (*free_conf)(void *conf);

    /* Bind ls->fd in the master. NULL: the core binds a listening stream
     * socket on ls->addr. */
    int (*bind)(wh_listener_t *ls);

    /* In a worker, after the privilege drop: start accepting on ls->fd,
     * in ctx->loop (wh_worker_ctx.h). */
    int (*start)(wh_listener_t *ls, wh_worker_ctx_t *ctx);

    /* In a worker that is draining: stop accepting and close ls->fd; the
     * streams already accepted go on until they end. */
    void (*stop)(wh_listener_t *ls);

    /* Optional, stream transports: the transport's own handshake on
     * hs->top, after PROXY and TLS (wh_handshake.c). WH_OK: done, relay
     * hs->top (which it may have wrapped); WH_AGAIN: call again when hs->top
     * is readable (a read answered WH_AGAIN); WH_DECLINED: the module took
     * hs->top for itself (a connection that carries streams, with
     * hs->live moved and made a carrier: wh_live.h); WH_ERROR: close, with the cause in *cause. */
    int (*handshake)(wh_handshake_t *hs, int *cause);

    /* Optional: called once when the handshake ends in any way, so the
     * module can free hs->module_data; expired: the handshake timer fired
     * and the connection is about to close (a last answer may be written
     * to hs->top). */
    void (*handshake_end)(wh_handshake_t *hs, int expired);

    /* Optional, stream transports: whether the handshake may refuse a
     * client of ls, which a fallback can then take instead
     * (wh_handshake_fallback, wh_fallback.h); NULL: it never refuses. */
    int (*fallback)(const wh_listener_t *ls);

    /* Seconds the whole handshake may take; 0: policy.handshake. */
    double handshake_timeout;

    /* Datagram transports (bind = wh_udp_bind): one datagram from a peer,
     * read from this worker's sockets or passed on by another worker
     * (src/udp/wh_udp.h). */
    void (*datagram)(wh_listener_t *ls, wh_udp_packet_t *pkt);
} wh_module_t;

extern const wh_module_t *const wh_modules[];

#endif

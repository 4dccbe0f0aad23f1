/*
 * wh_headers.h -- the packet header obfuscators of mKCP and QUIC (V2Ray's
 * "header.type": none, srtp, utp, wechat-video, dtls, wireguard).
 *
 * Transports spec 7. Each type is a constant descriptor (name, size, a writer)
 * plus a small state struct that the caller owns, because V2Ray keeps the
 * counters and random fields per header *instance* (one per listener, one per
 * client socket or QUIC connection), not per type or per session: the
 * descriptor can then be shared by every configuration that names the type.
 * The receive side strips `size` bytes without looking at them, as V2Ray
 * does; only the length is checked (a datagram of `size` bytes or less is
 * dropped). Pure codec: no sockets, no event loop.
 */
#ifndef WH_HEADERS_H
#define WH_HEADERS_H

#include "wh_core.h"
#include "wh_conf.h"

/* The largest header (wechat-video, dtls): lets callers reserve room once. */
#define WH_PKT_HEADER_MAX_SIZE 13

typedef enum {
    WH_PKT_HEADER_NONE = 0,
    WH_PKT_HEADER_SRTP,
    WH_PKT_HEADER_UTP,
    WH_PKT_HEADER_WECHAT_VIDEO,
    WH_PKT_HEADER_DTLS,
    WH_PKT_HEADER_WIREGUARD
} wh_pkt_header_type_e;

/* One header instance's mutable fields; which ones a type uses:
 *   srtp          seq (low 16 bits, incremented before each write)
 *   utp           id (connection id, fixed)
 *   wechat-video  seq (32 bits, incremented before each write)
 *   dtls          id (epoch, fixed), seq (written, then incremented), length */
typedef struct {
    uint32_t seq;
    uint16_t id;
    uint16_t length;
} wh_pkt_header_state_t;

typedef struct wh_pkt_header_s wh_pkt_header_t;

struct wh_pkt_header_s {
    const char           *name;      /* as V2Ray's config spells it, lower case */
    wh_pkt_header_type_e  type;
    size_t                size;      /* bytes put in front of every datagram */
    /* Writes `size` bytes at buf and advances st. */
    void (*write)(wh_pkt_header_state_t *st, uint8_t *buf);
};

extern const wh_pkt_header_t wh_pkt_header_none;
extern const wh_pkt_header_t wh_pkt_header_srtp;
extern const wh_pkt_header_t wh_pkt_header_utp;
extern const wh_pkt_header_t wh_pkt_header_wechat_video;
extern const wh_pkt_header_t wh_pkt_header_dtls;
extern const wh_pkt_header_t wh_pkt_header_wireguard;

/* The descriptor for a header.type value, compared case-insensitively (V2Ray
 * lower-cases the name first); NULL for an unknown or NULL name. */
const wh_pkt_header_t *wh_pkt_header_by_name(const char *name);

/* Reads the optional "header" group of group (kcpSettings / quicSettings).
 * Absent: *out = &wh_pkt_header_none, WH_DECLINED. A header without "type",
 * or with an unknown type, is a config error (WH_ERROR, recorded in cf), as
 * in V2Ray. Otherwise WH_OK. */
int wh_pkt_header_conf(wh_conf_t *cf, const config_setting_t *group,
                       const wh_pkt_header_t **out);

/* Starts an instance with fresh random fields (OpenSSL's RAND_bytes);
 * WH_ERROR if the generator fails. */
int wh_pkt_header_init(const wh_pkt_header_t *h, wh_pkt_header_state_t *st);

/* Same with a given 16-bit random value: every type draws exactly one (srtp's
 * start, utp's id, wechat-video's start, dtls's epoch). For tests and for
 * callers that bring their own randomness. */
void wh_pkt_header_init_with(const wh_pkt_header_t *h, wh_pkt_header_state_t *st,
                             uint16_t rnd);

/* Writes a fresh header (h->size bytes) at buf. */
static inline void
wh_pkt_header_write(const wh_pkt_header_t *h, wh_pkt_header_state_t *st, uint8_t *buf)
{
    h->write(st, buf);
}

/* Receive side: skips h->size bytes of (*data, *len) unchecked. WH_ERROR (drop
 * the datagram) when *len <= h->size, which for none drops empty datagrams as
 * V2Ray does. */
int wh_pkt_header_strip(const wh_pkt_header_t *h, const uint8_t **data, size_t *len);

#endif

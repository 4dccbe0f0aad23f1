/*
 * wh_headers.c -- mKCP / QUIC packet header obfuscators (transports spec 7).
 *
 * Byte layouts and counter rules follow V2Ray 4.34's
 * transport/internet/headers and the captures of spec 7 and 10: srtp and
 * wechat-video increment before writing (the first datagram carries start+1),
 * dtls writes its sequence and length then advances them. Counters wrap at
 * their field width because V2Ray's do (Go unsigned arithmetic).
 */
#include "wh_headers.h"

#include <openssl/rand.h>

static void
wh_hdr_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) (v >> 8);
    p[1] = (uint8_t) v;
}

static void
wh_hdr_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}

static void
wh_hdr_none_write(wh_pkt_header_state_t *st, uint8_t *buf)
{
    (void) st;
    (void) buf;
}

static void
wh_hdr_srtp_write(wh_pkt_header_state_t *st, uint8_t *buf)
{
    /* V2Ray's counter is a uint16: keep the wrap at 16 bits. */
    st->seq = (uint16_t) (st->seq + 1);
    buf[0] = 0xb5;
    buf[1] = 0xe8;
    wh_hdr_put16(buf + 2, (uint16_t) st->seq);
}

static void
wh_hdr_utp_write(wh_pkt_header_state_t *st, uint8_t *buf)
{
    wh_hdr_put16(buf, st->id);
    buf[2] = 0x01;
    buf[3] = 0x00;
}

static void
wh_hdr_wechat_write(wh_pkt_header_state_t *st, uint8_t *buf)
{
    static const uint8_t tail[7] = { 0x00, 0x10, 0x11, 0x18, 0x30, 0x22, 0x30 };

    st->seq++;
    buf[0] = 0xa1;
    buf[1] = 0x08;
    wh_hdr_put32(buf + 2, st->seq);
    memcpy(buf + 6, tail, sizeof(tail));
}

static void
wh_hdr_dtls_write(wh_pkt_header_state_t *st, uint8_t *buf)
{
    buf[0] = 0x17;          /* application data */
    buf[1] = 0xfe;          /* DTLS 1.2 */
    buf[2] = 0xfd;
    wh_hdr_put16(buf + 3, st->id);
    buf[5] = 0x00;          /* top of the 48-bit sequence: always zero in V2Ray */
    buf[6] = 0x00;
    wh_hdr_put32(buf + 7, st->seq);
    st->seq++;
    wh_hdr_put16(buf + 11, st->length);
    /* A fake length cycling in 17..100, unrelated to the payload: observed
     * 17, 34, 51, 68, 85, 52, ... */
    st->length = (uint16_t) (st->length + 17);
    if (st->length > 100)
        st->length -= 50;
}

static void
wh_hdr_wireguard_write(wh_pkt_header_state_t *st, uint8_t *buf)
{
    (void) st;
    buf[0] = 0x04;
    buf[1] = 0x00;
    buf[2] = 0x00;
    buf[3] = 0x00;
}

const wh_pkt_header_t wh_pkt_header_none =
    { "none", WH_PKT_HEADER_NONE, 0, wh_hdr_none_write };
const wh_pkt_header_t wh_pkt_header_srtp =
    { "srtp", WH_PKT_HEADER_SRTP, 4, wh_hdr_srtp_write };
const wh_pkt_header_t wh_pkt_header_utp =
    { "utp", WH_PKT_HEADER_UTP, 4, wh_hdr_utp_write };
const wh_pkt_header_t wh_pkt_header_wechat_video =
    { "wechat-video", WH_PKT_HEADER_WECHAT_VIDEO, 13, wh_hdr_wechat_write };
const wh_pkt_header_t wh_pkt_header_dtls =
    { "dtls", WH_PKT_HEADER_DTLS, 13, wh_hdr_dtls_write };
const wh_pkt_header_t wh_pkt_header_wireguard =
    { "wireguard", WH_PKT_HEADER_WIREGUARD, 4, wh_hdr_wireguard_write };

static const wh_pkt_header_t *const wh_pkt_headers[] = {
    &wh_pkt_header_none, &wh_pkt_header_srtp, &wh_pkt_header_utp,
    &wh_pkt_header_wechat_video, &wh_pkt_header_dtls, &wh_pkt_header_wireguard
};

/* ASCII only and locale-free: strcasecmp follows LC_CTYPE, and none of
 * V2Ray's names has a letter whose Unicode lower case (Go's ToLower) differs
 * from its ASCII one. */
static int
wh_hdr_name_eq(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char ca = (unsigned char) *a, cb = (unsigned char) *b;
        if (ca >= 'A' && ca <= 'Z')
            ca = (unsigned char) (ca - 'A' + 'a');
        if (ca != cb)
            return 0;
        if (ca == '\0')
            return 1;
    }
}

const wh_pkt_header_t *
wh_pkt_header_by_name(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < wh_nelems(wh_pkt_headers); i++) {
        if (wh_hdr_name_eq(name, wh_pkt_headers[i]->name))
            return wh_pkt_headers[i];
    }
    return NULL;
}

int
wh_pkt_header_conf(wh_conf_t *cf, const config_setting_t *group,
                   const wh_pkt_header_t **out)
{
    config_setting_t *hdr;
    const char *type;
    int rc;

    *out = &wh_pkt_header_none;
    rc = wh_conf_group(cf, group, "header", &hdr);
    if (rc != WH_OK)
        return rc;              /* absent: none; or the recorded error */

    /* V2Ray refuses a header object without type instead of defaulting it. */
    rc = wh_conf_string(cf, hdr, "type", &type);
    if (rc == WH_ERROR)
        return WH_ERROR;
    if (rc == WH_DECLINED) {
        wh_conf_error(cf, hdr, "\"header\" needs a \"type\"");
        return WH_ERROR;
    }

    *out = wh_pkt_header_by_name(type);
    if (*out == NULL) {
        wh_conf_error(cf, config_setting_get_member(hdr, "type"),
                      "unknown header type \"%s\" (none, srtp, utp, "
                      "wechat-video, dtls or wireguard)", type);
        *out = &wh_pkt_header_none;
        return WH_ERROR;
    }
    return WH_OK;
}

void
wh_pkt_header_init_with(const wh_pkt_header_t *h, wh_pkt_header_state_t *st,
                        uint16_t rnd)
{
    memset(st, 0, sizeof(*st));
    switch (h->type) {
    case WH_PKT_HEADER_SRTP:
    case WH_PKT_HEADER_WECHAT_VIDEO:
        /* wechat-video's 32-bit sequence also starts from a 16-bit draw. */
        st->seq = rnd;
        break;
    case WH_PKT_HEADER_UTP:
        st->id = rnd;
        break;
    case WH_PKT_HEADER_DTLS:
        st->id = rnd;
        st->length = 17;
        break;
    case WH_PKT_HEADER_NONE:
    case WH_PKT_HEADER_WIREGUARD:
        break;
    }
}

int
wh_pkt_header_init(const wh_pkt_header_t *h, wh_pkt_header_state_t *st)
{
    uint8_t r[2];

    if (RAND_bytes(r, sizeof(r)) != 1)
        return WH_ERROR;
    wh_pkt_header_init_with(h, st, (uint16_t) (r[0] << 8 | r[1]));
    return WH_OK;
}

int
wh_pkt_header_strip(const wh_pkt_header_t *h, const uint8_t **data, size_t *len)
{
    if (*len <= h->size)
        return WH_ERROR;
    *data += h->size;
    *len -= h->size;
    return WH_OK;
}

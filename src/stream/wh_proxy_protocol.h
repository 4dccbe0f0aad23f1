/*
 * PROXY protocol (v1 text, v2 binary) header codec; see wh_proxy_protocol.c.
 */
#ifndef WH_PROXY_PROTOCOL_H
#define WH_PROXY_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

typedef struct {
    int version;                   /* 1 or 2 */
    int local;                     /* 1: v1 "UNKNOWN" or v2 LOCAL command or v2 AF_UNSPEC / unix family: keep the real peer address */
    struct sockaddr_storage src;   /* valid when !local: AF_INET or AF_INET6 with port (network order as usual) */
    struct sockaddr_storage dst;
} wh_proxy_header_t;

#define WH_PROXY_V1_MAX 107        /* spec maximum v1 line incl CRLF */

/* Parses a PROXY header at the start of buf (len bytes available so far).
 * Returns >0: the header's exact length (consume that many bytes, the rest is payload);
 *          0: need more bytes (a prefix of a valid header so far);
 *         -1: not a PROXY header or malformed; *err (if non-NULL) gets a constant string saying why
 *             ("bad signature", "v1 line too long", "bad v1 address", "bad v2 version", "bad v2 command", "bad v2 family", "v2 length too short for family", ...).
 * h may be NULL (validation only); it is written only when >0 is returned. */
ssize_t wh_proxy_parse(const uint8_t *buf, size_t len, wh_proxy_header_t *h, const char **err);
/* Upper bound of bytes to peek before a decision: v1 107, v2 16 + its 16-bit length. */

#endif /* WH_PROXY_PROTOCOL_H */

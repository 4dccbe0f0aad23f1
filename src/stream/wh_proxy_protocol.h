/*
 * PROXY protocol (v1 text, v2 binary) header codec; see wh_proxy_protocol.c.
 * The parser reads what a load balancer puts in front of a client's stream;
 * the encoder writes the same for an upstream (a listener's xver).
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

/* What wh_proxy_encode may write: a v1 line at its longest (v2 without
 * TLVs takes at most 16 + 36 bytes). */
#define WH_PROXY_HEADER_MAX WH_PROXY_V1_MAX

/* Writes a version 1 or 2 header naming the stream src -> dst into buf
 * (WH_PROXY_HEADER_MAX bytes) and returns its length, 0 for another version.
 * A src that is not IPv4 or IPv6 (a unix socket client) gives v1 "UNKNOWN"
 * or a v2 LOCAL header, as haproxy sends. A dst that is NULL or not IP
 * becomes the unspecified address of src's family, port 0; an IPv4 address
 * beside an IPv6 one is written IPv4-mapped, since a header has one family.
 * v2 always says STREAM: the upstream connection is one, whatever carried
 * the client (nginx ignores the addresses of any other transport). */
size_t wh_proxy_encode(int version, const struct sockaddr *src, const struct sockaddr *dst,
                       uint8_t *buf);

#endif /* WH_PROXY_PROTOCOL_H */

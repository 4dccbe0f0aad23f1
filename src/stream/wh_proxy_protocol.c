/*
 * PROXY protocol headers (versions 1 and 2), as a pure codec: the parser
 * for listeners that accept one, the encoder for upstreams that get one.
 *
 * A listener with acceptProxyProtocol expects a load balancer to put the
 * original client's addresses in front of the stream.  The parser never
 * touches a socket and never allocates: the tcp transport peeks with MSG_PEEK
 * (at most WH_PROXY_V1_MAX bytes, or 16 + the v2 length), asks this codec for
 * a verdict, and then reads exactly the returned length, so no payload byte is
 * ever consumed early and nothing has to be pushed back into the relay.
 *
 * "Need more" (0) is only answered while the bytes so far can still grow into
 * a valid header; anything else fails at once, so a client that speaks
 * another protocol is dropped without waiting for the handshake timeout.
 *
 * The encoder writes what haproxy writes for the same peers (v1 "UNKNOWN"
 * and v2 LOCAL when the client has no IP address), so every receiver that
 * reads haproxy's reads ours; the parser above reads it back (unit tests).
 *
 * Reference: haproxy doc/proxy-protocol.txt.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "wh_proxy_protocol.h"

static const uint8_t v1_sig[6] = { 'P', 'R', 'O', 'X', 'Y', ' ' };
static const uint8_t v2_sig[12] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

#define ADDR_MAX 46   /* INET6_ADDRSTRLEN: longest text form incl. NUL */

static ssize_t fail(const char **err, const char *why)
{
    if (err)
        *err = why;
    return -1;
}

/* Smallest dotted quad that starts with s[0..n) (an empty octet becomes 0). */
static void v4_complete(const char *s, size_t n, char *out)
{
    int dots = 0;

    memcpy(out, s, n);
    for (size_t i = 0; i < n; i++)
        dots += s[i] == '.';
    if (n == 0 || s[n - 1] == '.')
        out[n++] = '0';
    for (; dots < 3; dots++) {
        out[n++] = '.';
        out[n++] = '0';
    }
    out[n] = '\0';
}

static int v6_try(const char *s, size_t n, const char *tail)
{
    char tmp[2 * ADDR_MAX];
    struct in6_addr a;

    memcpy(tmp, s, n);
    strcpy(tmp + n, tail);
    return inet_pton(AF_INET6, tmp, &a) == 1;
}

/*
 * Can the field s[0..n), cut by the end of the data, still become valid?
 * Rather than a second grammar we try the few shortest completions: any
 * valid prefix of an address is completed by one of them (a trailing
 * partial group takes "::" or nothing, a single ':' takes ':' or "0", a
 * partial dotted tail takes zero octets), and inet_pton then decides.
 */
static int v1_partial_ok(const char *s, size_t n, int family)
{
    char v4[2 * ADDR_MAX];
    struct in_addr a;

    if (n == 0)
        return 1;
    if (family == 0) {
        unsigned long v = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return 0;
            v = v * 10 + (unsigned long)(s[i] - '0');
        }
        return n <= 5 && v <= 65535;
    }
    if (n >= ADDR_MAX)
        return 0;
    if (family == AF_INET) {
        v4_complete(s, n, v4);
        return inet_pton(AF_INET, v4, &a) == 1;
    }
    if (memchr(s, '.', n)) {
        size_t c = n;
        while (c > 0 && s[c - 1] != ':')
            c--;
        v4_complete(s + c, n - c, v4);
        return c > 0 && v6_try(s, c, v4);
    }
    return v6_try(s, n, "") || v6_try(s, n, "0") || v6_try(s, n, ":")
           || v6_try(s, n, "::");
}

/* Stores a complete address field into ss (port 0 for now). */
static int v1_addr(const char *s, size_t n, int family, struct sockaddr_storage *ss)
{
    char tmp[ADDR_MAX];

    if (n == 0 || n >= ADDR_MAX)
        return 0;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    memset(ss, 0, sizeof(*ss));
    ss->ss_family = (sa_family_t)family;
    if (family == AF_INET)
        return inet_pton(AF_INET, tmp, &((struct sockaddr_in *)ss)->sin_addr) == 1;
    return inet_pton(AF_INET6, tmp, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1;
}

/* Decimal port; strtoul would let through signs, spaces and huge values. */
static int v1_port(const char *s, size_t n, struct sockaddr_storage *ss)
{
    unsigned v = 0;

    if (n == 0 || n > 5)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return 0;
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)v);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)v);
    return 1;
}

static ssize_t parse_v1(const uint8_t *buf, size_t len, wh_proxy_header_t *h,
                        const char **err)
{
    static const char *const protos[] = { "TCP4", "TCP6", "UNKNOWN" };
    /* Never look past the spec maximum: a line that did not end there is
     * refused, so a peer cannot make us wait on an endless "header". */
    size_t avail = len < WH_PROXY_V1_MAX ? len : WH_PROXY_V1_MAX;
    const char *p = (const char *)buf;
    wh_proxy_header_t tmp;
    size_t pos = sizeof(v1_sig), end = pos;
    int proto = -1, family;

#define NEED_MORE() \
    return len >= WH_PROXY_V1_MAX ? fail(err, "v1 line too long") : 0

    while (end < avail && p[end] != ' ' && p[end] != '\r')
        end++;
    for (int i = 0; i < 3; i++) {
        size_t pl = strlen(protos[i]);
        if (end == avail ? end - pos <= pl && memcmp(p + pos, protos[i], end - pos) == 0
                         : end - pos == pl && memcmp(p + pos, protos[i], pl) == 0) {
            proto = i;
            break;
        }
    }
    if (proto < 0)
        return fail(err, "bad v1 protocol");
    if (end == avail)
        NEED_MORE();

    memset(&tmp, 0, sizeof(tmp));
    tmp.version = 1;
    if (proto == 2) {
        /* UNKNOWN: whatever follows is to be ignored, up to the CRLF. */
        while (end < avail && p[end] != '\r')
            end++;
        if (end + 1 >= avail)
            NEED_MORE();
        if (p[end + 1] != '\n')
            return fail(err, "bad v1 line");
        tmp.local = 1;
        goto done;
    }

    family = proto == 0 ? AF_INET : AF_INET6;
    /* src addr, dst addr, src port, dst port: each after exactly one space */
    for (int f = 0; f < 4; f++) {
        int kind = f < 2 ? family : 0;
        if (p[end] != ' ')
            return fail(err, "bad v1 line");
        pos = ++end;
        while (end < avail && p[end] != ' ' && p[end] != '\r')
            end++;
        if (end == avail) {
            if (!v1_partial_ok(p + pos, end - pos, kind))
                return fail(err, f < 2 ? "bad v1 address" : "bad v1 port");
            NEED_MORE();
        }
        if (f < 2 ? !v1_addr(p + pos, end - pos, family, f ? &tmp.dst : &tmp.src)
                  : !v1_port(p + pos, end - pos, f == 2 ? &tmp.src : &tmp.dst))
            return fail(err, f < 2 ? "bad v1 address" : "bad v1 port");
        if ((p[end] == '\r') != (f == 3))
            return fail(err, "bad v1 line");
    }
    if (end + 1 >= avail)
        NEED_MORE();
    if (p[end + 1] != '\n')
        return fail(err, "bad v1 line");
#undef NEED_MORE

done:
    if (h)
        *h = tmp;
    return (ssize_t)(end + 2);
}

static ssize_t parse_v2(const uint8_t *buf, size_t len, wh_proxy_header_t *h,
                        const char **err)
{
    size_t need = 0, plen;
    int local;

    if (len < 13)
        return 0;
    if (buf[12] >> 4 != 2)
        return fail(err, "bad v2 version");
    if ((buf[12] & 0x0f) > 1)
        return fail(err, "bad v2 command");
    local = (buf[12] & 0x0f) == 0;
    if (len < 14)
        return 0;
    /* LOCAL (health checks from the proxy itself): the spec says the whole
     * address block, family included, is to be ignored. */
    if (!local) {
        switch (buf[13]) {
        case 0x00: local = 1; break;
        case 0x11: case 0x12: need = 12; break;
        case 0x21: case 0x22: need = 36; break;
        case 0x31: case 0x32: need = 216; local = 1; break;
        default: return fail(err, "bad v2 family");
        }
    }
    if (len < 16)
        return 0;
    plen = (size_t)buf[14] << 8 | buf[15];
    if (plen < need)
        return fail(err, "v2 length too short for family");
    if (len < 16 + plen)
        return 0;

    if (h) {
        memset(h, 0, sizeof(*h));
        h->version = 2;
        h->local = local;
        if (!local && need == 12) {
            struct sockaddr_in *s = (struct sockaddr_in *)&h->src;
            struct sockaddr_in *d = (struct sockaddr_in *)&h->dst;
            s->sin_family = d->sin_family = AF_INET;
            memcpy(&s->sin_addr, buf + 16, 4);
            memcpy(&d->sin_addr, buf + 20, 4);
            memcpy(&s->sin_port, buf + 24, 2);
            memcpy(&d->sin_port, buf + 26, 2);
        } else if (!local) {
            struct sockaddr_in6 *s = (struct sockaddr_in6 *)&h->src;
            struct sockaddr_in6 *d = (struct sockaddr_in6 *)&h->dst;
            s->sin6_family = d->sin6_family = AF_INET6;
            memcpy(&s->sin6_addr, buf + 16, 16);
            memcpy(&d->sin6_addr, buf + 32, 16);
            memcpy(&s->sin6_port, buf + 48, 2);
            memcpy(&d->sin6_port, buf + 50, 2);
        }
    }
    /* TLVs after the addresses are not needed by the relay: skipped whole. */
    return (ssize_t)(16 + plen);
}

ssize_t wh_proxy_parse(const uint8_t *buf, size_t len, wh_proxy_header_t *h,
                       const char **err)
{
    size_t n;

    if (len == 0)
        return 0;
    n = len < sizeof(v1_sig) ? len : sizeof(v1_sig);
    if (memcmp(buf, v1_sig, n) == 0)
        return len <= sizeof(v1_sig) ? 0 : parse_v1(buf, len, h, err);
    n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
    if (memcmp(buf, v2_sig, n) == 0)
        return parse_v2(buf, len, h, err);
    return fail(err, "bad signature");
}

static int ip_family(const struct sockaddr *sa)
{
    return sa != NULL && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
           ? sa->sa_family : 0;
}

/* sa's address (family's size, IPv4 mapped into IPv6 when needed) and port,
 * both in network order; NULL: the unspecified address, port 0. */
static void load_addr(const struct sockaddr *sa, int family, uint8_t *addr, uint16_t *port)
{
    static const uint8_t v4_mapped[12] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
    };

    memset(addr, 0, family == AF_INET ? 4 : 16);
    *port = 0;
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        if (family == AF_INET6) {
            memcpy(addr, v4_mapped, sizeof(v4_mapped));
            addr += sizeof(v4_mapped);
        }
        memcpy(addr, &sin->sin_addr, 4);
        *port = sin->sin_port;
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        memcpy(addr, &sin6->sin6_addr, 16);
        *port = sin6->sin6_port;
    }
}

size_t wh_proxy_encode(int version, const struct sockaddr *src, const struct sockaddr *dst,
                       uint8_t *buf)
{
    uint8_t sa[16], da[16];
    uint16_t sp, dp;
    size_t alen;
    int family;

    if (version != 1 && version != 2)
        return 0;
    if (ip_family(src) == 0) {
        if (version == 1) {
            memcpy(buf, "PROXY UNKNOWN\r\n", 15);
            return 15;
        }
        memcpy(buf, v2_sig, sizeof(v2_sig));
        buf[12] = 0x20;                     /* version 2, LOCAL */
        buf[13] = 0x00;                     /* AF_UNSPEC, UNSPEC */
        buf[14] = buf[15] = 0;
        return 16;
    }
    if (ip_family(dst) == 0)
        dst = NULL;
    family = ip_family(src) == AF_INET6 || ip_family(dst) == AF_INET6 ? AF_INET6 : AF_INET;
    alen = family == AF_INET ? 4 : 16;
    load_addr(src, family, sa, &sp);
    load_addr(dst, family, da, &dp);

    if (version == 1) {
        char s[ADDR_MAX], d[ADDR_MAX];
        int n;

        inet_ntop(family, sa, s, sizeof(s));
        inet_ntop(family, da, d, sizeof(d));
        /* 104 bytes at most (two full IPv6 addresses): within the v1 limit */
        n = snprintf((char *)buf, WH_PROXY_HEADER_MAX, "PROXY TCP%c %s %s %u %u\r\n",
                     family == AF_INET ? '4' : '6', s, d, ntohs(sp), ntohs(dp));
        return n > 0 && n < WH_PROXY_HEADER_MAX ? (size_t)n : 0;
    }
    memcpy(buf, v2_sig, sizeof(v2_sig));
    buf[12] = 0x21;                         /* version 2, PROXY */
    buf[13] = family == AF_INET ? 0x11 : 0x21;
    buf[14] = 0;
    buf[15] = (uint8_t)(2 * alen + 4);
    memcpy(buf + 16, sa, alen);
    memcpy(buf + 16 + alen, da, alen);
    memcpy(buf + 16 + 2 * alen, &sp, 2);
    memcpy(buf + 18 + 2 * alen, &dp, 2);
    return 16 + 2 * alen + 4;
}

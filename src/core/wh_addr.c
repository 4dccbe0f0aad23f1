/*
 * wh_addr.c -- parsing and printing socket addresses (see wh_addr.h).
 *
 * Abstract unix addresses follow V2Ray (spec 6.2): "@name" binds
 * NUL+name with the exact length; "@@name" is NUL+name padded with NULs to
 * the full 108-byte sun_path, the form HAProxy uses.
 */
#include "wh_addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

int
wh_addr_parse_ip(const char *ip, int port, wh_sockaddr_t *out)
{
    struct sockaddr_in *sin = (struct sockaddr_in *) &out->sa;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &out->sa;

    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        out->len = sizeof(*sin);
        return WH_OK;
    }
    if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        out->len = sizeof(*sin6);
        return WH_OK;
    }
    return WH_ERROR;
}

int
wh_addr_abstract(const char *name, int padded, wh_sockaddr_t *out)
{
    struct sockaddr_un *sun = (struct sockaddr_un *) &out->sa;
    size_t n = strlen(name);

    memset(out, 0, sizeof(*out));
    sun->sun_family = AF_UNIX;
    /* V2Ray truncates a padded name to 107 bytes silently; we refuse */
    if (n == 0 || n > sizeof(sun->sun_path) - 1) return WH_ERROR;
    memcpy(sun->sun_path + 1, name, n);
    out->len = padded ? sizeof(*sun) : offsetof(struct sockaddr_un, sun_path) + 1 + n;
    return WH_OK;
}

int
wh_addr_parse_unix(const char *path, wh_sockaddr_t *out)
{
    struct sockaddr_un *sun = (struct sockaddr_un *) &out->sa;
    size_t n = strlen(path);

    if (path[0] == '@') {
        return path[1] == '@' ? wh_addr_abstract(path + 2, 1, out)
                              : wh_addr_abstract(path + 1, 0, out);
    }
    memset(out, 0, sizeof(*out));
    sun->sun_family = AF_UNIX;
    if (n == 0 || n > sizeof(sun->sun_path) - 1) return WH_ERROR;
    memcpy(sun->sun_path, path, n + 1);
    out->len = offsetof(struct sockaddr_un, sun_path) + n + 1;
    return WH_OK;
}

int
wh_addr_parse_hostport(const char *s, wh_sockaddr_t *out, const char **err)
{
    return wh_addr_resolve(s, out, 1, err) < 0 ? WH_ERROR : WH_OK;
}

int
wh_addr_resolve(const char *s, wh_sockaddr_t *out, int max, const char **err)
{
    char host[256];
    const char *colon, *h = s;
    size_t hlen;
    char *end;
    long port;
    struct addrinfo hints, *res, *ai;
    int n = 0, i;

    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':') { *err = "has no port"; return WH_ERROR; }
        h = s + 1;
        hlen = rb - h;
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) { *err = "has no port"; return WH_ERROR; }
        if (memchr(s, ':', colon - s) != NULL) { *err = "needs [brackets] around an IPv6 address"; return WH_ERROR; }
        hlen = colon - s;
    }
    if (hlen == 0 || hlen >= sizeof(host)) { *err = "has no host"; return WH_ERROR; }
    memcpy(host, h, hlen);
    host[hlen] = '\0';

    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno || port < 1 || port > 65535) {
        *err = "has an invalid port";
        return WH_ERROR;
    }
    if (wh_addr_parse_ip(host, (int) port, out) == WH_OK) {
        return 1;
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL) {
        *err = "has a host that does not resolve";
        return WH_ERROR;
    }
    for (ai = res; ai != NULL && n < max; ai = ai->ai_next) {
        wh_sockaddr_t *a = &out[n];

        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            || ai->ai_addrlen > sizeof(a->sa))
        {
            continue;
        }
        memset(a, 0, sizeof(*a));
        memcpy(&a->sa, ai->ai_addr, ai->ai_addrlen);
        a->len = ai->ai_addrlen;
        if (a->sa.ss_family == AF_INET) {
            ((struct sockaddr_in *) &a->sa)->sin_port = htons(port);
        } else {
            ((struct sockaddr_in6 *) &a->sa)->sin6_port = htons(port);
        }
        /* /etc/hosts may name an address twice */
        for (i = 0; i < n && !wh_addr_equal(&out[i], a); i++) { /* void */ }
        n += i == n;
    }
    freeaddrinfo(res);
    if (n == 0) {
        *err = "has a host that does not resolve";
        return WH_ERROR;
    }
    return n;
}

size_t
wh_addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    int n = 0;

    switch (sa->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *sin = (const void *) sa;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        n = snprintf(buf, size, "%s:%u", ip, ntohs(sin->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *sin6 = (const void *) sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        n = snprintf(buf, size, "[%s]:%u", ip, ntohs(sin6->sin6_port));
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *sun = (const void *) sa;
        size_t plen = len > offsetof(struct sockaddr_un, sun_path)
                      ? len - offsetof(struct sockaddr_un, sun_path) : 0;
        if (plen == 0) {
            n = snprintf(buf, size, "unix:");
        } else if (sun->sun_path[0] == '\0') {
            n = snprintf(buf, size, "unix:@%.*s", (int) strnlen(sun->sun_path + 1, plen - 1),
                         sun->sun_path + 1);
        } else {
            n = snprintf(buf, size, "unix:%.*s", (int) strnlen(sun->sun_path, plen), sun->sun_path);
        }
        break;
    }
    default:
        n = snprintf(buf, size, "(family %d)", sa->sa_family);
    }
    return n < 0 ? 0 : wh_min((size_t) n, size - 1);
}

int
wh_addr_equal(const wh_sockaddr_t *a, const wh_sockaddr_t *b)
{
    return a->len == b->len && memcmp(&a->sa, &b->sa, a->len) == 0;
}

const char *
wh_addr_unix_path(const wh_sockaddr_t *a)
{
    const struct sockaddr_un *sun = (const void *) &a->sa;

    if (a->sa.ss_family != AF_UNIX || sun->sun_path[0] == '\0') {
        return NULL;
    }
    return sun->sun_path;
}

/*
 * wh_addr.h -- socket addresses as wharf's configuration writes them:
 * IPv4/IPv6 literals, "host:port", "[v6]:port", unix paths, abstract names
 * ("@name", and "@@name" padded to the whole sun_path as V2Ray and HAProxy
 * do), and their printable forms for logs.
 */
#ifndef WH_ADDR_H
#define WH_ADDR_H

#include "wh_core.h"

#include <sys/socket.h>

typedef struct {
    struct sockaddr_storage sa;
    socklen_t len;
} wh_sockaddr_t;

/* An IP literal with a port. Returns WH_OK or WH_ERROR. */
int wh_addr_parse_ip(const char *ip, int port, wh_sockaddr_t *out);
/* "/path", "@name" or "@@name" (abstract, padded). WH_ERROR if too long. */
int wh_addr_parse_unix(const char *path, wh_sockaddr_t *out);
/* An abstract address: NUL + name, padded with NULs to the whole sun_path
 * when padded (V2Ray's "padding"). */
int wh_addr_abstract(const char *name, int padded, wh_sockaddr_t *out);
/* "host:port" or "[v6]:port"; a host name is resolved now (blocking: only
 * ever called while loading the configuration). *err says why on WH_ERROR. */
int wh_addr_parse_hostport(const char *s, wh_sockaddr_t *out, const char **err);
/* The same with every address of the host (getaddrinfo's order, each
 * once), up to max: their number, or WH_ERROR with *err. */
int wh_addr_resolve(const char *s, wh_sockaddr_t *out, int max, const char **err);

/* "1.2.3.4:80", "[::1]:80", "unix:/path", "unix:@name"; always terminated. */
size_t wh_addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size);
int wh_addr_equal(const wh_sockaddr_t *a, const wh_sockaddr_t *b);
/* The file-system path of a unix address, or NULL for abstract/inet. */
const char *wh_addr_unix_path(const wh_sockaddr_t *a);

#endif

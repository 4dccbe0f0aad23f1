/*
 * wh_upstream.c -- parsing an upstream and connecting to it.
 *
 * Host names are resolved once, when the configuration is loaded (as nginx
 * does without a resolver): a worker never blocks on DNS. The connect is
 * non-blocking; the relay bounds it with policy.handshake.
 */
#include "wh_upstream.h"
#include "wh_sock_stream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

int
wh_upstream_parse(const char *text, wh_upstream_conf_t *u, const char **err)
{
    memset(u, 0, sizeof(*u));
    if (strcmp(text, "echo") == 0) {
        u->kind = WH_UPSTREAM_ECHO;
    } else if (strncmp(text, "unix:", 5) == 0) {
        u->kind = WH_UPSTREAM_SOCKET;
        if (wh_addr_parse_unix(text + 5, &u->addr) != WH_OK) {
            *err = "has an empty or too long unix path";
            return WH_ERROR;
        }
    } else {
        u->kind = WH_UPSTREAM_SOCKET;
        if (wh_addr_parse_hostport(text, &u->addr, err) != WH_OK) {
            return WH_ERROR;
        }
    }
    u->text = wh_xstrdup(text);
    return WH_OK;
}

wh_stream_t *
wh_upstream_connect(const wh_upstream_conf_t *u, const char **err)
{
    wh_stream_t *s;
    int fd, rc, one = 1;

    if (u->kind == WH_UPSTREAM_ECHO) {
        s = wh_echo_stream_create();
        if (s == NULL) *err = "out of memory";
        return s;
    }

    fd = socket(u->addr.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        *err = strerror(errno);
        return NULL;
    }
    if (u->addr.sa.ss_family != AF_UNIX) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    do {
        rc = connect(fd, (const struct sockaddr *) &u->addr.sa, u->addr.len);
    } while (rc == -1 && errno == EINTR);
    if (rc == -1 && errno != EINPROGRESS) {
        /* a unix socket with a full backlog says EAGAIN: refused, in effect */
        *err = strerror(errno);
        close(fd);
        return NULL;
    }
    s = wh_sock_stream_create(fd, rc == -1);
    if (s == NULL) {
        *err = "out of memory";
        close(fd);
    }
    return s;
}

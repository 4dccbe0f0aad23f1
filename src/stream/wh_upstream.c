/*
 * wh_upstream.c -- upstream groups: reading them, picking a member for a
 * stream, connecting to it (see wh_upstream.h).
 *
 * Host names are resolved once, when the configuration is loaded (as nginx
 * does without a resolver): a worker never blocks on DNS. Each address a
 * name has is a member of its own, so a name that resolves to IPv4 and
 * IPv6 is two members, and the stats show which of them answers. The
 * connect is non-blocking; the relay bounds it with policy.handshake.
 *
 * Picking costs a pass over the members of a group (64 at most) per
 * connect attempt, no allocation: the members a stream has tried are a bit
 * mask the relay keeps.
 *
 * A connect to this host (the usual upstream: a V2Ray or web server beside
 * wharf) has finished by the time connect() returns, its handshake having
 * run in the kernel on the way out; the stream then starts at once rather
 * than a poll later, which saves each connection a loop iteration and an
 * epoll_ctl(2). One getsockopt(2) tells, in place of the SO_ERROR one the
 * writable event would have cost; for a connect still under way (another
 * host) it is one call more, against a round trip.
 */
#include "wh_upstream.h"
#include "wh_sock_stream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

static int
add_member(wh_upstream_conf_t *u, const wh_sockaddr_t *a, const char **err)
{
    wh_upstream_member_t *m;
    int i;

    for (i = 0; i < u->nmembers; i++) {
        if (wh_addr_equal(&u->members[i].addr, a)) {
            *err = "repeats a member";
            return WH_ERROR;
        }
    }
    if (u->nmembers == WH_UPSTREAM_MAX_MEMBERS) {
        *err = "is one member too many (a group has 64 addresses at most)";
        return WH_ERROR;
    }
    m = wh_xalloc((u->nmembers + 1) * sizeof(*m));
    if (u->nmembers > 0) {
        memcpy(m, u->members, u->nmembers * sizeof(*m));
    }
    free(u->members);
    u->members = m;
    m = &u->members[u->nmembers++];
    m->addr = *a;
    m->stats_index = -1;
    if (u->kind == WH_UPSTREAM_ECHO) {
        snprintf(m->text, sizeof(m->text), "echo");
    } else {
        wh_addr_format((const struct sockaddr *) &a->sa, a->len, m->text, sizeof(m->text));
    }
    return WH_OK;
}

/* text as the members it names: one address, or every address of a host */
static int
parse_member(const char *text, wh_upstream_conf_t *u, const char **err)
{
    wh_sockaddr_t a[WH_UPSTREAM_MAX_MEMBERS];
    int n, i;

    if (strncmp(text, "unix:", 5) == 0) {
        if (wh_addr_parse_unix(text + 5, &a[0]) != WH_OK) {
            *err = "has an empty or too long unix path";
            return WH_ERROR;
        }
        n = 1;
    } else if ((n = wh_addr_resolve(text, a, WH_UPSTREAM_MAX_MEMBERS, err)) < 0) {
        return WH_ERROR;
    }
    for (i = 0; i < n; i++) {
        if (add_member(u, &a[i], err) != WH_OK) {
            return WH_ERROR;
        }
    }
    return WH_OK;
}

int
wh_upstream_parse(const char *text, wh_upstream_conf_t *u, const char **err)
{
    memset(u, 0, sizeof(*u));
    if (strcmp(text, "echo") == 0) {
        wh_sockaddr_t none = { .len = 0 };

        u->kind = WH_UPSTREAM_ECHO;
        return add_member(u, &none, err);
    }
    u->kind = WH_UPSTREAM_SOCKET;
    return parse_member(text, u, err);
}

int
wh_upstream_conf(wh_conf_t *cf, const config_setting_t *s, wh_upstream_conf_t *u)
{
    const char *name = config_setting_name(s), *text, *err;
    config_setting_t *e;
    int i, n;

    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        text = config_setting_get_string(s);
        if (wh_upstream_parse(text, u, &err) != WH_OK) {
            wh_conf_error(cf, s, "\"%s\" \"%s\" %s", name, text, err);
            return WH_ERROR;
        }
        return WH_OK;
    }

    memset(u, 0, sizeof(*u));
    u->kind = WH_UPSTREAM_SOCKET;
    if (config_setting_type(s) != CONFIG_TYPE_ARRAY && config_setting_type(s) != CONFIG_TYPE_LIST) {
        wh_conf_error(cf, s, "\"%s\" must be a string or a list of strings", name);
        return WH_ERROR;
    }
    n = config_setting_length(s);
    if (n == 0) {
        wh_conf_error(cf, s, "\"%s\" is an empty list", name);
        return WH_ERROR;
    }
    for (i = 0; i < n; i++) {
        e = config_setting_get_elem(s, i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            wh_conf_error(cf, e, "\"%s\" must be a string or a list of strings", name);
            return WH_ERROR;
        }
        text = config_setting_get_string(e);
        if (strcmp(text, "echo") == 0) {
            err = "cannot be in a group: \"echo\" is a whole upstream";
        } else if (parse_member(text, u, &err) == WH_OK) {
            continue;
        }
        wh_conf_error(cf, e, "\"%s\" member \"%s\" %s", name, text, err);
        return WH_ERROR;
    }
    return WH_OK;
}

void
wh_upstream_free(wh_upstream_conf_t *u)
{
    free(u->members);
    free(u->name);
    u->members = NULL;
    u->name = NULL;
    u->nmembers = 0;
}

wh_upstream_member_t *
wh_upstream_pick(wh_upstream_conf_t *u, uint64_t *tried, double now)
{
    int k, i, best = -1;

    for (k = 0; k < u->nmembers; k++) {
        i = (u->next + k) % u->nmembers;
        if (*tried & (1ull << i)) {
            continue;
        }
        if (u->members[i].down_until <= now) {
            best = i;
            break;
        }
        if (best == -1 || u->members[i].down_until < u->members[best].down_until) {
            best = i;
        }
    }
    if (best == -1) {
        return NULL;
    }
    *tried |= 1ull << best;
    u->next = (best + 1) % u->nmembers;
    return &u->members[best];
}

void
wh_upstream_connected(wh_upstream_member_t *m)
{
    m->down_until = 0;
    if (m->stats != NULL) {
        wh_stats_add(m->stats->connects, 1);
        __atomic_store_n(&m->stats->down_until, 0, __ATOMIC_RELAXED);
    }
}

void
wh_upstream_failed(wh_upstream_conf_t *u, wh_upstream_member_t *m, double now)
{
    m->down_until = now + u->fail_timeout;
    if (m->stats != NULL) {
        wh_stats_add(m->stats->connect_failures, 1);
        __atomic_store_n(&m->stats->down_until, (uint64_t) (m->down_until * 1000),
                         __ATOMIC_RELAXED);
    }
}

static int
established(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && len > 0
           && ti.tcpi_state == TCP_ESTABLISHED;
}

wh_stream_t *
wh_upstream_connect(const wh_upstream_conf_t *u, const wh_upstream_member_t *m,
                    int *connected, const char **err)
{
    wh_stream_t *s;
    int fd, rc, one = 1;

    *connected = 1;
    if (u->kind == WH_UPSTREAM_ECHO) {
        s = wh_echo_stream_create();
        if (s == NULL) *err = "out of memory";
        return s;
    }

    fd = socket(m->addr.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        *err = strerror(errno);
        return NULL;
    }
    if (m->addr.sa.ss_family != AF_UNIX) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    do {
        rc = connect(fd, (const struct sockaddr *) &m->addr.sa, m->addr.len);
    } while (rc == -1 && errno == EINTR);
    if (rc == -1 && errno != EINPROGRESS) {
        /* a unix socket with a full backlog says EAGAIN: refused, in effect */
        *err = strerror(errno);
        close(fd);
        return NULL;
    }
    /* a unix socket's connect is over when it returns */
    *connected = rc == 0 || established(fd);
    s = wh_sock_stream_create(fd, !*connected);
    if (s == NULL) {
        *err = "out of memory";
        close(fd);
    }
    return s;
}

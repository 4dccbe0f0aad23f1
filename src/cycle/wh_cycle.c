/*
 * wh_cycle.c -- loading a configuration and binding its sockets
 * (see wh_cycle.h).
 *
 * Top-level names are nginx's words (user, worker_processes, pid, ...); a
 * listener keeps V2Ray's inbound names (tag, listen, port, streamSettings),
 * so an inbound's streamSettings carries over by changing only the syntax.
 */
#include "wh_cycle.h"
#include "wh_log.h"
#include "wh_syslog.h"
#include "wh_tls.h"

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define WH_LISTEN_BACKLOG 511

static const char *const top_names[] = {
    "daemon", "user", "worker_processes", "worker_cpu_affinity", "accept_by_cpu", "worker_connections", "worker_rlimit_nofile", "pid", "error_log", "log_level",
    "log_format", "access_log",
    "shutdown_timeout", "upstreamFailTimeout", "receive_coalesce", "policy", "stats", "listeners", NULL
};
/* V2Ray's policy names and defaults (spec 1.3) */
static const wh_directive_t policy_directives[] = {
    { .name = "handshake", .type = WH_DIR_SECONDS, .offset = offsetof(wh_policy_t, handshake),
      .min = 0.001, .max = 1e9, .dflt = 60 },
    { .name = "connIdle", .type = WH_DIR_SECONDS, .offset = offsetof(wh_policy_t, conn_idle),
      .min = 0.001, .max = 1e9, .dflt = 300 },
    { .name = "uplinkOnly", .type = WH_DIR_SECONDS, .offset = offsetof(wh_policy_t, uplink_only),
      .min = 0, .max = 1e9, .dflt = 1 },
    { .name = "downlinkOnly", .type = WH_DIR_SECONDS,
      .offset = offsetof(wh_policy_t, downlink_only), .min = 0, .max = 1e9, .dflt = 1 },
    wh_null_directive
};
static const char *const stats_names[] = { "listen", "port", NULL };
static const char *const listener_names[] = {
    "tag", "listen", "port", "upstream", "xver", "fallbacks", "maxConnections",
    "maxConnectionsPerAddress", "streamSettings", "access_log", NULL
};
/* streamSettings' own names; each built module adds its settings key */
static const char *const stream_settings_names[] = {
    "network", "security", "tlsSettings", "sockopt", NULL
};
static const char *const sockopt_names[] = {
    "mark", "tcpFastOpen", "tproxy", "acceptProxyProtocol", NULL
};
/* V2Ray's transports (spec 1.4): one that is not built is still known, so
 * its network gets a clear word and its settings key passes, as in a
 * V2Ray inbound that carries every transport's settings */
static const char *const v2ray_networks[] = {
    "tcp", "kcp", "mkcp", "ws", "websocket", "h2", "http", "ds", "domainsocket", "quic", NULL
};
static const char *const v2ray_settings[] = {
    "tcpSettings", "kcpSettings", "wsSettings", "httpSettings", "dsSettings", "quicSettings", NULL
};

char *
wh_cycle_path(const char *prefix, const char *path)
{
    char *p;
    size_t n;

    if (path[0] == '/' || strcmp(path, "stderr") == 0 || wh_syslog_is(path) || prefix == NULL
        || prefix[0] == '\0')
    {
        return wh_xstrdup(path);
    }
    n = strlen(prefix) + strlen(path) + 2;
    p = wh_xalloc(n);
    snprintf(p, n, "%s%s%s", prefix, prefix[strlen(prefix) - 1] == '/' ? "" : "/", path);
    return p;
}

/* "pid", made absolute; NULL with cf->error set when it is not a string */
static char *
pid_path(wh_conf_t *cf, config_setting_t *root, const char *prefix)
{
    const char *str = WH_PID_PATH;

    if (wh_conf_string(cf, root, "pid", &str) == WH_ERROR) {
        return NULL;
    }
    return wh_cycle_path(prefix, str);
}

char *
wh_cycle_pid_path(wh_conf_t *cf, const char *prefix, const char *conf_file)
{
    config_t cfg;
    char *path = NULL;

    cf->file = conf_file;
    cf->prefix = prefix;
    cf->error[0] = '\0';
    config_init(&cfg);
    if (wh_conf_read(cf, &cfg) == WH_OK) {
        path = pid_path(cf, config_root_setting(&cfg), prefix);
    }
    config_destroy(&cfg);
    return path;
}

static int
parse_top(wh_conf_t *cf, wh_cycle_t *c, config_setting_t *root)
{
    const char *str;
    long n;
    int rc;
    config_setting_t *s;

    if (wh_conf_check_names(cf, root, top_names, NULL) != WH_OK
        || wh_conf_bool(cf, root, "daemon", &c->daemon) == WH_ERROR
        || wh_conf_seconds(cf, root, "shutdown_timeout", 0, 86400, &c->shutdown_timeout) == WH_ERROR
        || wh_conf_seconds(cf, root, "upstreamFailTimeout", 0, 86400,
                           &c->upstream_fail_timeout) == WH_ERROR
        || wh_conf_seconds(cf, root, "receive_coalesce", 0, 0.1, &c->receive_coalesce) == WH_ERROR)
    {
        return WH_ERROR;
    }

    str = "nobody";
    if (wh_conf_string(cf, root, "user", &str) == WH_ERROR) {
        return WH_ERROR;
    }
    {
        struct passwd *pw = getpwnam(str);
        if (pw == NULL) {
            wh_conf_error(cf, config_setting_get_member(root, "user") ?: root,
                          "\"user\" names an unknown user \"%s\"", str);
            return WH_ERROR;
        }
        c->user = wh_xstrdup(str);
        c->uid = pw->pw_uid;
        c->gid = pw->pw_gid;
    }

    s = config_setting_get_member(root, "worker_processes");
    if (s != NULL && config_setting_type(s) == CONFIG_TYPE_STRING) {
        if (strcmp(config_setting_get_string(s), "auto") != 0) {
            wh_conf_error(cf, s, "\"worker_processes\" must be a number or \"auto\"");
            return WH_ERROR;
        }
        c->worker_processes = wh_max(1, wh_min(64, (int) sysconf(_SC_NPROCESSORS_ONLN)));
    } else {
        rc = wh_conf_int(cf, root, "worker_processes", 1, 64, &n);
        if (rc == WH_ERROR) return WH_ERROR;
        if (rc == WH_OK) c->worker_processes = (int) n;
    }
    if (wh_affinity_conf(cf, root, c->worker_processes, &c->affinity) != WH_OK) {
        return WH_ERROR;
    }

    rc = wh_conf_int(cf, root, "worker_connections", 1, 1 << 24, &n);
    if (rc == WH_ERROR) return WH_ERROR;
    if (rc == WH_OK) c->worker_connections = (int) n;
    rc = wh_conf_int(cf, root, "worker_rlimit_nofile", 64, 1 << 30, &n);
    if (rc == WH_ERROR) return WH_ERROR;
    if (rc == WH_OK) c->worker_rlimit_nofile = n;

    c->pid_path = pid_path(cf, root, c->prefix);
    if (c->pid_path == NULL) return WH_ERROR;

    str = WH_ERROR_LOG_PATH;
    if (wh_conf_string(cf, root, "error_log", &str) == WH_ERROR) return WH_ERROR;
    if (wh_syslog_is(str)) {
        wh_syslog_t sl;
        const char *err = wh_syslog_parse(str, &sl);

        if (err != NULL || strchr(str, ' ') != NULL) {
            wh_conf_error(cf, config_setting_get_member(root, "error_log"), "%s in \"error_log\"",
                          err ? err : "a space");
            return WH_ERROR;
        }
    }
    c->error_log = wh_cycle_path(c->prefix, str);

    str = "info";
    if (wh_conf_string(cf, root, "log_level", &str) == WH_ERROR) return WH_ERROR;
    c->log_level = wh_log_level_parse(str);
    if (c->log_level < 0) {
        wh_conf_error(cf, config_setting_get_member(root, "log_level"),
                      "\"log_level\" must be debug, info, warning or error, not \"%s\"", str);
        return WH_ERROR;
    }

    if (wh_access_logs_conf(cf, root, c->prefix, &c->access_logs) != WH_OK) return WH_ERROR;

    if (wh_conf_group(cf, root, "policy", &s) == WH_ERROR
        || wh_directives_apply(cf, s, policy_directives, &c->policy) != WH_OK)
    {
        return WH_ERROR;
    }

    if (wh_conf_group(cf, root, "stats", &s) == WH_ERROR) return WH_ERROR;
    if (s != NULL) {
        str = "127.0.0.1";
        n = 9190;
        if (wh_conf_check_names(cf, s, stats_names, NULL) != WH_OK
            || wh_conf_string(cf, s, "listen", &str) == WH_ERROR
            || wh_conf_int(cf, s, "port", 1, 65535, &n) == WH_ERROR)
        {
            return WH_ERROR;
        }
        if (wh_addr_parse_ip(str, (int) n, &c->stats_addr) != WH_OK) {
            wh_conf_error(cf, s, "\"listen\" of \"stats\" is not an IP address: \"%s\"", str);
            return WH_ERROR;
        }
        c->stats_enabled = 1;
    }
    return WH_OK;
}

wh_upstream_conf_t *
wh_cycle_upstream(wh_conf_t *cf, wh_cycle_t *c, const config_setting_t *s, const char *name)
{
    wh_upstream_conf_t *u = wh_xalloc(sizeof(*u));
    int rc = wh_upstream_conf(cf, s, u);

    u->name = wh_xstrdup(name);
    u->fail_timeout = c->upstream_fail_timeout;
    u->link = c->upstreams;
    c->upstreams = u;
    return rc == WH_OK ? u : NULL;
}

static const wh_module_t *
find_module(const char *network)
{
    const wh_module_t *const *m;
    const char *const *n;

    for (m = wh_modules; *m != NULL; m++) {
        for (n = (*m)->networks; *n != NULL; n++) {
            if (strcasecmp(*n, network) == 0) {
                return *m;
            }
        }
    }
    return NULL;
}

/* A unix listener's directory is made by whoever runs wharf (systemd's
 * RuntimeDirectory=, a package): -t says at once that it is missing
 * rather than leave it to bind() at start.  A directory we may not look
 * into is left to bind() to judge. */
static int
unix_dir_missing(wh_conf_t *cf, const config_setting_t *s, const char *path)
{
    char dir[sizeof(((struct sockaddr_un *) 0)->sun_path)];
    struct stat st;
    char *slash;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (slash == dir) {
        return 0;
    }
    *slash = '\0';
    if (stat(dir, &st) == 0 ? S_ISDIR(st.st_mode) : (errno != ENOENT && errno != ENOTDIR)) {
        return 0;
    }
    wh_conf_error(cf, s, "\"listen\" unix path \"%s\": directory \"%s\" does not exist", path, dir);
    return 1;
}

static int
valid_tag(const char *tag)
{
    const unsigned char *p;

    if (tag[0] == '\0' || strlen(tag) >= WH_STATS_TAG_LEN) {
        return 0;
    }
    for (p = (const unsigned char *) tag; *p; p++) {
        if (*p <= ' ' || *p == '"' || *p == '\\' || *p >= 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* streamSettings' names: the core's, V2Ray's transports' and each built
 * module's settings key; made once, the modules being fixed at build time */
static const char *const *
stream_settings_known(void)
{
    static const char **names;
    const wh_module_t *const *m;
    size_t n = wh_nelems(stream_settings_names) + wh_nelems(v2ray_settings), i = 0;
    const char *const *p;

    if (names != NULL) {
        return names;
    }
    for (m = wh_modules; *m != NULL; m++) {
        n++;
    }
    names = wh_xalloc(n * sizeof(char *));
    for (p = stream_settings_names; *p != NULL; p++) {
        names[i++] = *p;
    }
    for (p = v2ray_settings; *p != NULL; p++) {
        names[i++] = *p;
    }
    for (m = wh_modules; *m != NULL; m++) {
        if ((*m)->settings != NULL) {
            names[i++] = (*m)->settings;
        }
    }
    return names;
}

int
wh_listener_conf(wh_conf_t *cf, wh_listener_t *ls, const config_setting_t *ss)
{
    const wh_module_t *m = ls->module;
    config_setting_t *settings = NULL;

    if (m->conf_size > 0) {
        ls->module_conf = wh_xalloc(m->conf_size);
    }
    if (m->settings != NULL && ss != NULL
        && wh_conf_group(cf, ss, m->settings, &settings) == WH_ERROR)
    {
        return WH_ERROR;
    }
    if (m->directives != NULL
        && wh_directives_apply(cf, settings, m->directives, ls->module_conf) != WH_OK)
    {
        return WH_ERROR;
    }
    return m->postconf ? m->postconf(cf, ls, ss, settings) : WH_OK;
}

void
wh_listener_conf_free(wh_listener_t *ls)
{
    const wh_module_t *m = ls->module;

    if (m != NULL && ls->module_conf != NULL) {
        if (m->free_conf != NULL) {
            m->free_conf(ls->module_conf);
        }
        if (m->directives != NULL) {
            wh_directives_free(m->directives, ls->module_conf);
        }
    }
    free(ls->module_conf);
    ls->module_conf = NULL;
}

static int
parse_stream_settings(wh_conf_t *cf, wh_listener_t *ls, config_setting_t *group)
{
    config_setting_t *ss, *sockopt;
    const char *network = "tcp", *security = "", *tproxy = "off";
    long mark = 0;

    if (wh_conf_group(cf, group, "streamSettings", &ss) == WH_ERROR) return WH_ERROR;
    if (ss != NULL
        && (wh_conf_check_names(cf, ss, stream_settings_known(), NULL) != WH_OK
            || wh_conf_string(cf, ss, "network", &network) == WH_ERROR
            || wh_conf_string(cf, ss, "security", &security) == WH_ERROR))
    {
        return WH_ERROR;
    }

    ls->module = find_module(network);
    if (ls->module == NULL) {
        const char *const *n;
        for (n = v2ray_networks; *n && strcasecmp(*n, network) != 0; n++) { /* void */ }
        wh_conf_error(cf, ss ? config_setting_get_member(ss, "network") : group,
                      *n ? "network \"%s\" is not built into this wharf (see wharf -V)"
                         : "unknown network \"%s\"", network);
        return WH_ERROR;
    }

    if (strcasecmp(security, "tls") == 0) {
        config_setting_t *tls;
        if (ls->module->alpn == NULL) {
            wh_conf_error(cf, config_setting_get_member(ss, "security"),
                          "security \"tls\" is not available for network \"%s\"", network);
            return WH_ERROR;
        }
        if (wh_conf_group(cf, ss, "tlsSettings", &tls) == WH_ERROR
            || wh_tls_parse(cf, tls, config_setting_get_member(ss, "security"), ls->module->alpn,
                            &ls->tls) != WH_OK)
        {
            return WH_ERROR;
        }
    } else if (security[0] != '\0' && strcasecmp(security, "none") != 0) {
        /* V2Ray treats any other value as none (spec 1.4) */
        wh_conf_warn(cf, config_setting_get_member(ss, "security"),
                     "security \"%s\" means none", security);
    }

    if (wh_conf_group(cf, ss, "sockopt", &sockopt) == WH_ERROR) return WH_ERROR;
    if (sockopt != NULL
        && (wh_conf_check_names(cf, sockopt, sockopt_names, NULL) != WH_OK
            || wh_conf_int(cf, sockopt, "mark", 0, 0x7fffffff, &mark) == WH_ERROR
            || wh_conf_bool(cf, sockopt, "tcpFastOpen", &ls->tcp_fast_open) == WH_ERROR
            || wh_conf_bool(cf, sockopt, "acceptProxyProtocol", &ls->sockopt_proxy_protocol) == WH_ERROR
            || wh_conf_string(cf, sockopt, "tproxy", &tproxy) == WH_ERROR))
    {
        return WH_ERROR;
    }
    if (strcmp(tproxy, "off") != 0) {
        wh_conf_error(cf, config_setting_get_member(sockopt, "tproxy"),
                      "\"tproxy\" must be \"off\": a relay has no transparent mode");
        return WH_ERROR;
    }
    ls->mark = (int) mark;

    return wh_listener_conf(cf, ls, ss);
}

static int
parse_listener(wh_conf_t *cf, wh_cycle_t *c, wh_listener_t *ls, config_setting_t *g)
{
    const char *tag = NULL, *listen = NULL;
    config_setting_t *where, *upstream;
    long port = 0, n;
    int rc, i;

    ls->fd = -1;
    ls->lock_fd = -1;
    ls->fds = NULL;
    ls->nfds = 0;
    ls->cycle = c;
    ls->file = config_setting_source_file(g) ?: cf->file;
    ls->line = config_setting_source_line(g);

    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        wh_conf_error(cf, g, "a listener must be a group { ... }");
        return WH_ERROR;
    }
    if (wh_conf_check_names(cf, g, listener_names, NULL) != WH_OK
        || wh_conf_string(cf, g, "tag", &tag) == WH_ERROR
        || wh_conf_string(cf, g, "listen", &listen) == WH_ERROR
        || (rc = wh_conf_int(cf, g, "port", 1, 65535, &port)) == WH_ERROR)
    {
        return WH_ERROR;
    }
    n = 0;
    if (wh_conf_int(cf, g, "xver", 0, 2, &n) == WH_ERROR) return WH_ERROR;
    ls->dest.xver = (uint8_t) n;
    n = 0;
    if (wh_conf_int(cf, g, "maxConnections", 0, 1 << 30, &n) == WH_ERROR) return WH_ERROR;
    ls->max_conns = (int) n;
    n = 0;
    if (wh_conf_int(cf, g, "maxConnectionsPerAddress", 0, 1 << 30, &n) == WH_ERROR) {
        return WH_ERROR;
    }
    ls->max_conns_per_address = (int) n;
    if (tag == NULL) {
        wh_conf_error(cf, g, "listener has no \"tag\"");
        return WH_ERROR;
    }
    if (!valid_tag(tag)) {
        wh_conf_error(cf, config_setting_get_member(g, "tag"),
                      "\"tag\" must be 1..63 printable characters without spaces or quotes");
        return WH_ERROR;
    }
    for (i = 0; i < c->nlisteners; i++) {
        if (strcmp(c->listeners[i].tag, tag) == 0) {
            wh_conf_error(cf, config_setting_get_member(g, "tag"),
                          "duplicate tag \"%s\", first defined in %s:%d", tag,
                          c->listeners[i].file, c->listeners[i].line);
            return WH_ERROR;
        }
    }
    ls->tag = wh_xstrdup(tag);
    if (wh_access_log_listener(cf, &c->access_logs, g, c->prefix, &ls->access_log) != WH_OK) {
        return WH_ERROR;
    }

    if (listen != NULL) {
        if (listen[0] == '/' || listen[0] == '@') {
            if (wh_addr_parse_unix(listen, &ls->addr) != WH_OK) {
                wh_conf_error(cf, config_setting_get_member(g, "listen"),
                              "\"listen\" unix path \"%s\" is empty or longer than 107 bytes",
                              listen);
                return WH_ERROR;
            }
            if (listen[0] == '/' && unix_dir_missing(cf, config_setting_get_member(g, "listen"),
                                                     listen))
            {
                return WH_ERROR;
            }
        } else {
            if (rc == WH_DECLINED) {
                wh_conf_error(cf, g, "listener \"%s\" has no \"port\"", tag);
                return WH_ERROR;
            }
            if (wh_addr_parse_ip(listen, (int) port, &ls->addr) != WH_OK) {
                wh_conf_error(cf, config_setting_get_member(g, "listen"),
                              "\"listen\" is not an IP address or a unix path: \"%s\"", listen);
                return WH_ERROR;
            }
        }
    }

    upstream = config_setting_get_member(g, "upstream");
    if (upstream == NULL) {
        wh_conf_error(cf, g, "listener \"%s\" has no \"upstream\"", tag);
        return WH_ERROR;
    }
    ls->dest.upstream = wh_cycle_upstream(cf, c, upstream, tag);
    if (ls->dest.upstream == NULL) {
        return WH_ERROR;
    }
    /* the transport may set (domainsocket) or check the address */
    if (parse_stream_settings(cf, ls, g) != WH_OK
        || wh_fallbacks_conf(cf, c, ls, config_setting_get_member(g, "fallbacks")) != WH_OK)
    {
        return WH_ERROR;
    }

    where = config_setting_get_member(g, "listen") ?: g;
    if (ls->addr.len == 0) {
        if (ls->module->datagram != NULL) {
            wh_conf_error(cf, g, "listener \"%s\" has no \"listen\"", tag);
            return WH_ERROR;
        }
        /* it takes only hand-offs: wh_fallbacks_check() sees that some do */
        snprintf(ls->addr_text, sizeof(ls->addr_text), "(hand-offs)");
        return WH_OK;
    }
    wh_addr_format((struct sockaddr *) &ls->addr.sa, ls->addr.len, ls->addr_text,
                   sizeof(ls->addr_text));
    for (i = 0; i < c->nlisteners; i++) {
        /* TCP and UDP ports are apart: h2 and quic on 443 is usual */
        if (wh_addr_equal(&c->listeners[i].addr, &ls->addr)
            && (c->listeners[i].module->datagram == NULL) == (ls->module->datagram == NULL))
        {
            wh_conf_error(cf, where, "duplicate listen address %s, first used by \"%s\"",
                          ls->addr_text, c->listeners[i].tag);
            return WH_ERROR;
        }
    }
    if (c->stats_enabled && ls->module->datagram == NULL && wh_addr_equal(&c->stats_addr, &ls->addr)) {
        wh_conf_error(cf, where, "listen address %s is the stats listener's", ls->addr_text);
        return WH_ERROR;
    }
    return WH_OK;
}

wh_cycle_t *
wh_cycle_load(wh_conf_t *cf, const char *prefix, const char *conf_file)
{
    wh_cycle_t *c = wh_xalloc(sizeof(*c));
    config_setting_t *root, *list;
    int i, n;

    cf->file = conf_file;
    cf->prefix = prefix;
    cf->error[0] = '\0';

    c->prefix = wh_xstrdup(prefix);
    c->conf_file = wh_xstrdup(conf_file);
    c->daemon = 1;
    c->worker_processes = 1;
    c->worker_connections = 4096;
    c->log_level = WH_LOG_INFO;
    c->shutdown_timeout = 30;
    c->receive_coalesce = 0.001;
    c->upstream_fail_timeout = 10;
    c->stats_fd = -1;
    c->steer.map_fd = -1;

    config_init(&c->cfg);
    if (wh_conf_read(cf, &c->cfg) != WH_OK) {
        goto failed;
    }

    root = config_root_setting(&c->cfg);
    if (parse_top(cf, c, root) != WH_OK) {
        goto failed;
    }

    list = config_setting_get_member(root, "listeners");
    if (list != NULL) {
        if (config_setting_type(list) != CONFIG_TYPE_LIST) {
            wh_conf_error(cf, list, "\"listeners\" must be a list ( { ... }, ... )");
            goto failed;
        }
        n = config_setting_length(list);
        c->listeners = wh_xalloc(sizeof(wh_listener_t) * (n ? n : 1));
        for (i = 0; i < n; i++) {
            if (parse_listener(cf, c, &c->listeners[i], config_setting_get_elem(list, i)) != WH_OK) {
                c->nlisteners = i + 1;
                goto failed;
            }
            c->nlisteners = i + 1;
        }
    }
    if (c->nlisteners >= WH_STATS_MAX_LISTENERS) {
        wh_conf_error(cf, list, "too many listeners (at most %d)", WH_STATS_MAX_LISTENERS - 1);
        goto failed;
    }
    if (wh_fallbacks_check(cf, c) != WH_OK) {
        goto failed;
    }
    c->access_facts = wh_access_logs_used(c->access_logs);
    if (cf->error[0] == '\0') {
        return c;
    }

failed:
    wh_cycle_free(c);
    return NULL;
}

/* "<path>.lock", held with flock() for as long as the socket is bound, as
 * V2Ray does (spec 6.3, 6.4): whoever holds it owns the socket file, so a
 * socket file found while we hold the lock is stale and may be replaced.
 * A socket file that still accepts is never replaced. */
static int
lock_unix_path(const wh_sockaddr_t *a, const char *text)
{
    const char *path = wh_addr_unix_path(a);
    char lock[sizeof(((struct sockaddr_un *) 0)->sun_path) + 8];
    struct stat st;
    int fd, sfd, rc;

    snprintf(lock, sizeof(lock), "%s.lock", path);
    fd = open(lock, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd == -1) {
        wh_log(WH_LOG_EMERG, "open() \"%s\" failed (%s)", lock, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
        wh_log(WH_LOG_EMERG, "bind() to %s failed: \"%s\" is locked by another process", text, lock);
        close(fd);
        return -1;
    }
    if (lstat(path, &st) == 0) {
        rc = -1;
        if (S_ISSOCK(st.st_mode)) {
            sfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            rc = connect(sfd, (const struct sockaddr *) &a->sa, a->len);
            close(sfd);
            rc = (rc == -1 && errno == ECONNREFUSED) ? unlink(path) : -1;
        }
        if (rc != 0) {
            wh_log(WH_LOG_EMERG, "bind() to %s failed: \"%s\" exists and is %s", text, path,
                   S_ISSOCK(st.st_mode) ? "in use" : "not a socket");
            unlink(lock);
            close(fd);
            return -1;
        }
    }
    return fd;
}

static int
bind_stream(const wh_sockaddr_t *a, const char *text, int fast_open, int mark, int reuseport)
{
    int fd, one = 1;

    fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        wh_log(WH_LOG_EMERG, "socket() for %s failed (%s)", text, strerror(errno));
        return -1;
    }
    if (a->sa.ss_family != AF_UNIX) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        /* every accepted socket inherits it: one call here, none per client */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (reuseport) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    }
    if (a->sa.ss_family == AF_INET6) {
        /* "::" and "0.0.0.0" are two listeners, as in nginx */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == -1) {
        wh_log(WH_LOG_WARN, "setsockopt(SO_MARK) on %s failed (%s)", text, strerror(errno));
    }
    if (bind(fd, (const struct sockaddr *) &a->sa, a->len) == -1
        || listen(fd, WH_LISTEN_BACKLOG) == -1)
    {
        wh_log(WH_LOG_EMERG, "bind() to %s failed (%s)", text, strerror(errno));
        close(fd);
        return -1;
    }
    if (fast_open) {
        int qlen = 256;
        if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen)) == -1) {
            wh_log(WH_LOG_WARN, "setsockopt(TCP_FASTOPEN) on %s failed (%s)", text,
                   strerror(errno));
        }
    }
    return fd;
}

/* Closes the socket; a unix path's file and lock file go with it. */
static void
close_listener(wh_listener_t *ls)
{
    const char *path = wh_addr_unix_path(&ls->addr);
    char lock[sizeof(((struct sockaddr_un *) 0)->sun_path) + 8];

    if (ls->nfds > 0) {
        while (ls->nfds > 0) close(ls->fds[--ls->nfds]);
        ls->fd = -1;
    }
    if (ls->fd != -1) {
        close(ls->fd);
        ls->fd = -1;
        if (path != NULL && !ls->cycle->handed_over) unlink(path);
    }
    if (ls->lock_fd != -1) {
        snprintf(lock, sizeof(lock), "%s.lock", path);
        if (!ls->cycle->handed_over) unlink(lock);
        close(ls->lock_fd);
        ls->lock_fd = -1;
    }
}

static void
give_fds(wh_listener_t *from, wh_listener_t *to)
{
    free(to->fds);
    to->fds = from->fds;
    to->nfds = from->nfds;
    from->fds = NULL;
    from->nfds = 0;
}

/* The old cycle's socket for the same address and kind, marked as taken. */
static int
take_over(wh_cycle_t *old, wh_listener_t *ls)
{
    int i, fd;

    for (i = 0; old != NULL && i < old->nlisteners; i++) {
        wh_listener_t *o = &old->listeners[i];
        if (o->fd != -1 && o->module->bind == ls->module->bind && wh_addr_equal(&o->addr, &ls->addr)) {
            fd = o->fd;
            o->fd = -1;     /* now the new cycle's */
            ls->lock_fd = o->lock_fd;
            o->lock_fd = -1;
            give_fds(o, ls);
            return fd;
        }
    }
    return -1;
}

/* Sockets inherited from the master that exec'ed this one (a binary
 * upgrade), known by what the kernel says of them rather than by what the
 * old master said: an address and a type each, as its listeners are. */
typedef struct {
    wh_sockaddr_t addr;
    int dgram;
    int fd;
    int lock_fd;
} wh_inherited_t;

static wh_inherited_t *inherited;
static int ninherited;

int
wh_cycle_inherit(int fd)
{
    wh_inherited_t *in, *p;
    int type;
    socklen_t len = sizeof(type);

    in = &(wh_inherited_t) { .fd = fd, .lock_fd = -1 };
    in->addr.len = sizeof(in->addr.sa);
    if (getsockname(fd, (struct sockaddr *) &in->addr.sa, &in->addr.len) == -1
        || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1)
    {
        return WH_ERROR;
    }
    in->dgram = type == SOCK_DGRAM;
    p = realloc(inherited, (ninherited + 1) * sizeof(*p));
    if (p == NULL) {
        return WH_ERROR;
    }
    inherited = p;
    inherited[ninherited++] = *in;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    return WH_OK;
}

int
wh_cycle_inherit_lock(int lock_fd, int fd)
{
    int i;

    for (i = 0; i < ninherited; i++) {
        if (inherited[i].fd == fd) {
            inherited[i].lock_fd = lock_fd;
            fcntl(lock_fd, F_SETFD, FD_CLOEXEC);
            return WH_OK;
        }
    }
    return WH_ERROR;
}

/* The inherited stream socket of that address, or -1; a unix socket's
 * lock goes to *lock_fd. */
static int
take_inherited(const wh_sockaddr_t *a, int *lock_fd)
{
    int i, fd;

    for (i = 0; i < ninherited; i++) {
        if (inherited[i].fd != -1 && !inherited[i].dgram && wh_addr_equal(&inherited[i].addr, a)) {
            fd = inherited[i].fd;
            *lock_fd = inherited[i].lock_fd;
            inherited[i].fd = inherited[i].lock_fd = -1;
            return fd;
        }
    }
    return -1;
}

/* Every inherited socket of ls's address and kind, in the old master's
 * order (socket k was its worker k's, and the kernel keeps a UDP peer on
 * one). */
static int
take_inherited_all(wh_listener_t *ls)
{
    int i, *fds;

    for (i = 0; i < ninherited; i++) {
        if (inherited[i].fd == -1 || inherited[i].dgram != (ls->module->datagram != NULL)
            || !wh_addr_equal(&inherited[i].addr, &ls->addr))
        {
            continue;
        }
        fds = realloc(ls->fds, (ls->nfds + 1) * sizeof(int));
        if (fds == NULL) {
            return -1;
        }
        ls->fds = fds;
        ls->fds[ls->nfds++] = inherited[i].fd;
        inherited[i].fd = -1;
    }
    return ls->nfds > 0 ? ls->fds[0] : -1;
}

void
wh_cycle_inherit_end(void)
{
    int i;

    /* listeners the new configuration dropped: the old master still
     * serves them until it quits, and removes nothing it handed over */
    for (i = 0; i < ninherited; i++) {
        if (inherited[i].fd != -1) close(inherited[i].fd);
        if (inherited[i].lock_fd != -1) close(inherited[i].lock_fd);
    }
    free(inherited);
    inherited = NULL;
    ninherited = 0;
}

int
wh_listener_bind_each(wh_listener_t *ls, int (*bind_one)(wh_listener_t *ls))
{
    int want = wh_max(ls->cycle->worker_processes, 1), *fds, fd;

    if (ls->nfds < want) {
        fds = realloc(ls->fds, want * sizeof(int));
        if (fds == NULL) {
            wh_log(WH_LOG_EMERG, "out of memory binding %s", ls->addr_text);
            return WH_ERROR;
        }
        ls->fds = fds;
    }
    while (ls->nfds < want) {
        fd = bind_one(ls);
        if (fd == -1) {
            return WH_ERROR;
        }
        ls->fds[ls->nfds++] = fd;
    }
    ls->fd = ls->fds[0];
    return WH_OK;
}

/* A TCP listener is one SO_REUSEPORT socket per worker, so that a
 * connection wakes only the worker whose socket the kernel queued it on:
 * a socket shared by all would wake every idle worker (libev's epoll
 * cannot ask for EPOLLEXCLUSIVE, and an exclusive inner epoll nested in
 * libev's wakes them all again). A socket closes only with its listener,
 * never when workers come and go, as closing one resets what is queued
 * on it; after a reload that lowered worker_processes a worker reads
 * several. The first socket binds without SO_REUSEPORT, so that a second
 * wharf on the port fails as it would with one socket instead of joining
 * the group, and takes it once listening (as may a socket inherited from
 * a binary that shared one): the kernel lets a listening socket join. */
static int
bind_tcp(wh_listener_t *ls)
{
    int fd, one = 1;

    if (ls->nfds == 0) {
        fd = bind_stream(&ls->addr, ls->addr_text, ls->tcp_fast_open, ls->mark, 0);
        if (fd != -1) {
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        }
        return fd;
    }
    setsockopt(ls->fds[0], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    return bind_stream(&ls->addr, ls->addr_text, ls->tcp_fast_open, ls->mark, 1);
}

int
wh_cycle_bind(wh_cycle_t *c, wh_cycle_t *old)
{
    int i, lock, local;
    char text[128];

    for (i = 0; i < c->nlisteners; i++) {
        wh_listener_t *ls = &c->listeners[i];

        if (ls->addr.len == 0) {
            continue;       /* it takes only hand-offs */
        }
        /* a unix socket, a path or an abstract name, cannot be a
         * SO_REUSEPORT group: one socket that every worker watches */
        local = ls->addr.sa.ss_family == AF_UNIX;
        ls->fd = take_over(old, ls);
        if (ls->fd == -1) {
            ls->fd = local ? take_inherited(&ls->addr, &ls->lock_fd) : take_inherited_all(ls);
        }
        if (ls->module->bind != NULL) {
            if (ls->module->bind(ls) != WH_OK) goto failed;
        } else if (!local) {
            if (wh_listener_bind_each(ls, bind_tcp) != WH_OK) goto failed;
        } else if (ls->fd == -1) {
            if (wh_addr_unix_path(&ls->addr) != NULL) {
                ls->lock_fd = lock_unix_path(&ls->addr, ls->addr_text);
                if (ls->lock_fd == -1) goto failed;
            }
            ls->fd = bind_stream(&ls->addr, ls->addr_text, ls->tcp_fast_open, ls->mark, 0);
            if (ls->fd == -1) goto failed;
        }
    }
    if (c->stats_enabled) {
        if (old != NULL && old->stats_fd != -1 && wh_addr_equal(&old->stats_addr, &c->stats_addr)) {
            c->stats_fd = old->stats_fd;
            old->stats_fd = -1;
        } else if ((c->stats_fd = take_inherited(&c->stats_addr, &lock)) != -1) {
            /* void */
        } else {
            wh_addr_format((struct sockaddr *) &c->stats_addr.sa, c->stats_addr.len, text, sizeof(text));
            c->stats_fd = bind_stream(&c->stats_addr, text, 0, 0, 0);
            if (c->stats_fd == -1) goto failed;
        }
    }
    if (wh_access_logs_open(c->access_logs, geteuid() == 0 ? c->uid : (uid_t) -1, c->gid) != WH_OK) {
        goto failed;
    }
    /* only now: a refused configuration leaves the running one's steering;
     * accept_by_cpu's program, or else the idle workers' */
    if (c->affinity.code == NULL) {
        wh_steer_init(&c->steer, c->worker_processes, c->nlisteners);
    }
    for (i = 0; i < c->nlisteners; i++) {
        wh_listener_t *ls = &c->listeners[i];
        if (ls->module->bind == NULL && ls->nfds > 0) {
            wh_affinity_steer(&c->affinity, ls);
            wh_steer_attach(&c->steer, ls, i, c->worker_processes);
        }
    }
    return WH_OK;

failed:
    /* give taken-over sockets back, close the ones bound here */
    for (i = 0; i < c->nlisteners; i++) {
        wh_listener_t *ls = &c->listeners[i];
        int j, given = 0;
        for (j = 0; old != NULL && j < old->nlisteners && ls->fd != -1; j++) {
            wh_listener_t *o = &old->listeners[j];
            if (o->fd == -1 && o->module->bind == ls->module->bind && wh_addr_equal(&o->addr, &ls->addr)) {
                o->fd = ls->fd;
                o->lock_fd = ls->lock_fd;
                ls->lock_fd = -1;
                give_fds(ls, o);
                given = 1;
                break;
            }
        }
        if (!given) {
            close_listener(ls);
        }
        ls->fd = -1;
    }
    if (c->stats_fd != -1) {
        if (old != NULL && old->stats_enabled && old->stats_fd == -1
            && wh_addr_equal(&old->stats_addr, &c->stats_addr))
        {
            old->stats_fd = c->stats_fd;
        } else {
            close(c->stats_fd);
        }
        c->stats_fd = -1;
    }
    return WH_ERROR;
}


void
wh_cycle_close(wh_cycle_t *c)
{
    int i;

    for (i = 0; i < c->nlisteners; i++) {
        close_listener(&c->listeners[i]);
    }
    if (c->stats_fd != -1) {
        close(c->stats_fd);
        c->stats_fd = -1;
    }
    wh_access_logs_close(c->access_logs);
}

void
wh_cycle_free(wh_cycle_t *c)
{
    wh_upstream_conf_t *u;
    int i;

    if (c == NULL) {
        return;
    }
    while ((u = c->upstreams) != NULL) {
        c->upstreams = u->link;
        wh_upstream_free(u);
        free(u);
    }
    for (i = 0; i < c->nlisteners; i++) {
        free(c->listeners[i].tag);
        free(c->listeners[i].fds);
        wh_listener_conf_free(&c->listeners[i]);
        wh_fallbacks_free(&c->listeners[i].fallbacks);
        wh_tls_free(c->listeners[i].tls);
    }
    free(c->listeners);
    wh_access_logs_free(c->access_logs);
    wh_affinity_free(&c->affinity);
    wh_steer_free(&c->steer);
    config_destroy(&c->cfg);
    free(c->prefix);
    free(c->conf_file);
    free(c->user);
    free(c->pid_path);
    free(c->error_log);
    free(c);
}

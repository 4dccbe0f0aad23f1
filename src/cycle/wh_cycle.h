/*
 * wh_cycle.h -- one complete configuration and the sockets bound for it.
 *
 * A cycle is built whole from the file (wh_cycle_load) before anything
 * changes, so a reload with a bad file changes nothing. The master binds
 * its listeners (wh_cycle_bind), taking over the already-bound socket of
 * every listener of the previous cycle whose address is unchanged: a
 * listening socket is never closed across a reload, so no connect() is
 * refused. Workers inherit the whole cycle by fork().
 */
#ifndef WH_CYCLE_H
#define WH_CYCLE_H

#include "wh_conf.h"
#include "wh_addr.h"
#include "wh_module.h"
#include "wh_stats.h"
#include "wh_upstream.h"
#include "wh_fallback.h"
#include "wh_access_log.h"
#include "wh_affinity.h"
#include "wh_steer.h"

typedef struct {
    double handshake;       /* V2Ray policy names and defaults (spec 1.3), seconds */
    double conn_idle;
    double uplink_only;
    double downlink_only;
} wh_policy_t;

struct wh_listener_s {
    char *tag;
    const char *file;           /* where it is defined, for messages */
    int line;
    wh_sockaddr_t addr;
    char addr_text[128];
    wh_dest_t dest;             /* its upstream group, xver */
    wh_fallbacks_t fallbacks;   /* where what its transport refuses goes */
    const wh_module_t *module;
    void *module_conf;
    struct wh_tls_conf_s *tls;  /* security "tls", else NULL */
    int proxy_protocol;         /* a PROXY header is required (the module decides) */
    int sockopt_proxy_protocol; /* sockopt.acceptProxyProtocol, for modules that heed it */
    int mark;                   /* sockopt.mark on the listening socket, 0 = none */
    int tcp_fast_open;
    int max_conns;              /* maxConnections, 0 = none (wh_limit.h) */
    int max_conns_per_address;  /* maxConnectionsPerAddress, 0 = none */
    wh_access_log_t *access_log;    /* its own or the top level's; NULL: off */
    int fd;                     /* listening socket, -1 until bound; a UDP
                                 * listener's first socket */
    int *fds;                   /* an IP or UDP listener's SO_REUSEPORT sockets
                                 * (fd is the first): socket k is worker k's
                                 * (mod worker_processes) */
    int nfds;
    int lock_fd;                /* "<path>.lock" of a unix path (spec 6.3), or -1 */
    int stats_index;            /* column in the stats segment */

    /* worker side */
    wh_stats_counters_t *stats; /* this worker's slot */
    void *runtime;              /* the module's accept state */
    unsigned draining:1;        /* this worker stopped accepting on it */
    void *udp;                  /* wh_udp.c's reading state */
    struct wh_cycle_s *cycle;
};

typedef struct wh_cycle_s {
    char *prefix;
    char *conf_file;
    config_t cfg;

    int daemon;
    char *user;                 /* NULL: not set */
    uid_t uid;
    gid_t gid;
    int worker_processes;
    wh_affinity_t affinity;     /* worker_cpu_affinity */
    wh_steer_t steer;           /* connections to idle workers */
    int worker_connections;     /* clients per worker (wh_limit.h) */
    long worker_rlimit_nofile;  /* 0: as inherited */
    char *pid_path;             /* absolute */
    char *error_log;            /* absolute, "stderr" or "syslog:..." */
    int log_level;
    double shutdown_timeout;
    wh_policy_t policy;
    double upstream_fail_timeout;   /* upstreamFailTimeout: a failed member is down */
    double receive_coalesce;    /* the longest a streaming client's reads are held */
    wh_upstream_conf_t *upstreams;  /* every group, each listener's and others' */

    int stats_enabled;
    wh_sockaddr_t stats_addr;
    int stats_fd;

    wh_access_logs_t *access_logs;  /* log_format and access_log; NULL: none */
    int access_facts;           /* some listener logs: connections carry facts */

    wh_listener_t *listeners;
    int nlisteners;

    unsigned handed_over:1;     /* a new binary serves its sockets: closing
                                 * them removes no unix path or lock file */
} wh_cycle_t;

/* NULL on error, with cf->error set ("... in FILE:LINE"). */
wh_cycle_t *wh_cycle_load(wh_conf_t *cf, const char *prefix, const char *conf_file);
/* Only the pid file's path from the file, malloc'ed (NULL: cf->error says
 * why): what -S needs, without loading keys a monitoring user cannot read. */
char *wh_cycle_pid_path(wh_conf_t *cf, const char *prefix, const char *conf_file);
/* Binds every socket, reusing old's for unchanged addresses. On failure
 * closes what it bound itself, returns WH_ERROR (logged). */
int wh_cycle_bind(wh_cycle_t *cycle, wh_cycle_t *old);
/* Closes every socket of cycle and unlinks its unix paths: at exit, and
 * for the previous cycle after a reload (the sockets the new one took over
 * are no longer the old one's, so they stay open). */
void wh_cycle_close(wh_cycle_t *cycle);
void wh_cycle_free(wh_cycle_t *cycle);

/* Grows ls->fds to one socket per worker with bind_one (-1: failed,
 * logged); sockets already there stay, as do their queued connections. */
int wh_listener_bind_each(wh_listener_t *ls, int (*bind_one)(wh_listener_t *ls));

/* Binary upgrade, in the new master before its first wh_cycle_bind: a
 * listening socket (a unix one, or one of an IP or UDP listener's per
 * worker sockets) inherited from the old master, and a unix socket's lock
 * file; wh_cycle_bind takes the sockets of a listener's address and kind
 * instead of binding them.
 * wh_cycle_inherit_end closes what no listener took. */
int wh_cycle_inherit(int fd);
int wh_cycle_inherit_lock(int lock_fd, int fd);
void wh_cycle_inherit_end(void);

/* An upstream setting (a string, or a list: a group) into a new group of
 * the cycle's, named name in the stats (a listener's tag); the cycle frees
 * it. NULL on error, recorded in cf. */
wh_upstream_conf_t *wh_cycle_upstream(wh_conf_t *cf, wh_cycle_t *c, const config_setting_t *s,
                                      const char *name);

/* ls->module's part of stream_settings (NULL: absent) into a new
 * ls->module_conf: its directives, then its postconf. WH_OK, or WH_ERROR
 * recorded in cf with ls->module_conf still for wh_listener_conf_free(). */
int wh_listener_conf(wh_conf_t *cf, wh_listener_t *ls, const config_setting_t *stream_settings);
void wh_listener_conf_free(wh_listener_t *ls);

/* prefix + path unless path is absolute. Returns malloc'ed memory. */
char *wh_cycle_path(const char *prefix, const char *path);

#endif

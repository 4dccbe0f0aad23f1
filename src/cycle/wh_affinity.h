/*
 * wh_affinity.h -- worker_cpu_affinity: each worker bound to CPUs, as
 * nginx's directive of that name does; and accept_by_cpu: each TCP
 * connection accepted by the worker on the CPU it arrived on.
 *
 * A worker reads its own SO_REUSEPORT socket of each TCP listener
 * (wh_cycle.c). Without accept_by_cpu a connection goes to an idle worker
 * (wh_steer.h), or by a hash of the connection, often to a worker that
 * runs on another CPU than the one that took the SYN. With accept_by_cpu,
 * which needs every worker bound to one CPU of its own, the master attaches
 * a classic BPF program to each TCP listener's group that picks the socket
 * of the worker on the CPU that took the SYN (the NIC queue's, or on
 * loopback the client's); a connection arriving on a CPU no worker is bound
 * to falls back to the hash. Connections then stay on one CPU from the wire
 * to the worker. It is a directive of its own, not a part of the binding:
 * behind a network card with one receive queue every SYN is taken on one
 * CPU, and steering would give every connection to one worker.
 */
#ifndef WH_AFFINITY_H
#define WH_AFFINITY_H

#include "wh_conf.h"

#include <linux/filter.h>
#include <sched.h>

typedef struct {
    int n;                      /* 0: not set, no binding */
    cpu_set_t *sets;            /* worker k: sets[k < n ? k : n - 1] */
    int steer;                  /* accept_by_cpu */
    struct sock_filter *code;   /* its steering program; NULL: none */
    unsigned short ncode;
} wh_affinity_t;

struct wh_listener_s;

/* worker_cpu_affinity from root: "auto" (worker k on the k-th CPU wharf may
 * run on, round), "off", or a list of masks ("0101": CPUs 0 and 2); and
 * accept_by_cpu, refused unless each worker has one CPU of its own. WH_OK,
 * or WH_ERROR recorded in cf. */
int wh_affinity_conf(wh_conf_t *cf, const config_setting_t *root, int workers, wh_affinity_t *a);
void wh_affinity_free(wh_affinity_t *a);

/* In worker index, before it drops privileges; a failure is logged. */
void wh_affinity_apply(const wh_affinity_t *a, int index);

/* In the master, once ls (a TCP listener) has a socket per worker: the
 * steering program on its group (accept_by_cpu), or none. A failure is
 * logged: the kernel's hash still spreads the connections. */
void wh_affinity_steer(const wh_affinity_t *a, struct wh_listener_s *ls);

#endif

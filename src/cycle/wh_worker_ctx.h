/*
 * wh_worker_ctx.h -- who a worker is, for the code it runs.
 *
 * The master fills one in for each worker it forks, the worker adds its
 * loop and hands it to every listener's module start hook. The transports
 * (and the UDP layer under them) learn their worker's place and mailbox
 * from it rather than from the process code, which sits above them all.
 */
#ifndef WH_WORKER_CTX_H
#define WH_WORKER_CTX_H

#include "wh_core.h"

struct ev_loop;

typedef struct wh_worker_ctx_s {
    int index;                  /* place in its generation, 0..count-1 */
    int count;                  /* worker_processes of its generation */
    uint32_t serial;            /* no other worker ever gets it */
    int mailbox;                /* receiving end of its mailbox (wh_udp.c), -1: none */
    pid_t master;               /* its parent: another one means it died */
    int udp_paused;             /* a binary upgrade runs: the new master's
                                 * workers read the UDP sockets */
    struct ev_loop *loop;

    /* The sending end of an older worker's mailbox, or -1. */
    int (*mailbox_of)(uint32_t serial);
} wh_worker_ctx_t;

#endif

/*
 * wh_process.h -- the master and worker process cycles, and the stats
 * endpoint the workers serve.
 */
#ifndef WH_PROCESS_H
#define WH_PROCESS_H

#include "wh_cycle.h"

/* Set in a worker before wh_worker_run: its place in its generation
 * (0..count-1), a serial no other worker ever gets, and the receiving end
 * of its mailbox (wh_udp.c). */
extern int wh_worker_index;
extern int wh_worker_count;
extern uint32_t wh_worker_serial;
extern int wh_worker_mailbox;
extern pid_t wh_worker_master;      /* its parent: another one means it died */

/* In a worker: the sending end of an older worker's mailbox, or -1. */
int wh_master_mailbox(uint32_t serial);

/* Runs the master until a stop; returns the exit status. */
int wh_master_run(wh_cycle_t *cycle);

/* In a freshly forked worker: drop privileges, run the loop, exit. */
void wh_worker_run(wh_cycle_t *cycle, int slot) __attribute__((noreturn));

/* Prometheus text at GET /metrics on the stats listener (workers). */
void wh_stats_http_start(wh_cycle_t *cycle);
void wh_stats_http_stop(void);
/* The exposition text of every counter, malloc'ed; *len set. */
char *wh_stats_prometheus(size_t *len);

#endif

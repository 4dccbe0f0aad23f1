/*
 * wh_process.h -- the master and worker process cycles, and the stats
 * endpoint the workers serve.
 */
#ifndef WH_PROCESS_H
#define WH_PROCESS_H

#include "wh_cycle.h"
#include "wh_worker_ctx.h"

/* Runs the master until a stop; returns the exit status. argv: the command
 * line, run again by a binary upgrade (USR2). */
int wh_master_run(wh_cycle_t *cycle, char *const *argv);
/* A signal no one sends wharf on purpose, whose default action would end
 * a process: master and workers log and ignore it. */
int wh_stray_signal(int signo);

/* In a freshly forked worker: drop privileges, run the loop, exit. ctx:
 * who it is, filled in by the master (copied; the worker adds its loop). */
void wh_worker_run(wh_cycle_t *cycle, int slot, const wh_worker_ctx_t *ctx)
    __attribute__((noreturn));

/* Prometheus text at GET /metrics on the stats listener (workers). */
void wh_stats_http_start(wh_cycle_t *cycle);
void wh_stats_http_stop(void);
/* The exposition text of every counter, malloc'ed; *len set. */
char *wh_stats_prometheus(size_t *len);

/* The libraries, as built and as running (NULL where it cannot say);
 * the table ends with a NULL name. */
typedef struct {
    const char *label;      /* its label in wharf_build_info */
    const char *name;
    const char *built;
    const char *running;
} wh_lib_version_t;

const wh_lib_version_t *wh_lib_versions(void);

#endif

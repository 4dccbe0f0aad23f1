/*
 * wh_upgrade.h -- handing the listening sockets, the UDP session table and
 * the old workers' mailboxes to a new binary (USR2), nginx's way; the
 * format is described in wh_upgrade.c.
 */
#ifndef WH_UPGRADE_H
#define WH_UPGRADE_H

#include "wh_cycle.h"

#define WH_UPGRADE_MAX_MAIL WH_STATS_MAX_SLOTS

typedef struct {
    uint32_t serial;            /* an old worker's */
    int fd;                     /* the sending end of its mailbox */
} wh_upgrade_mail_t;

/* What a new master got from the one that exec'ed it. */
typedef struct {
    pid_t parent;               /* the old master */
    uint32_t serial;            /* its last worker serial */
    wh_upgrade_mail_t mail[WH_UPGRADE_MAX_MAIL];
    int nmail;
} wh_upgrade_from_t;

/* At start: the command line to exec again, argv[0] made absolute. */
void wh_upgrade_init(char *const *argv);
/* Old master: fork and exec the binary with everything inherited. The
 * child's pid, or -1 (logged). An exec that fails exits the child with 2. */
pid_t wh_upgrade_exec(wh_cycle_t *cycle, const wh_upgrade_mail_t *mail, int nmail,
                      uint32_t serial);
/* New master, before binding: WH_DECLINED when not started by an upgrade;
 * else the sockets are given to wh_cycle_inherit, the table to wh_udp, and
 * the rest to *from. */
int wh_upgrade_inherit(wh_upgrade_from_t *from);

#endif

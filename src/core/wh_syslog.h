/*
 * wh_syslog.h -- a syslog destination as nginx's "syslog:" logs name one:
 * "syslog:server=unix:/dev/log,facility=local7,severity=info,tag=wharf,nohostname"
 * (server= is a unix datagram socket or a UDP host[:port], 514 by default).
 *
 * Lines go out as RFC 3164 datagrams ("<PRI>Mmm dd hh:mm:ss host tag: msg",
 * what nginx sends) on a connected non-blocking socket: a datagram the
 * socket would block on is dropped and counted, never waited for, so a
 * stalled syslog daemon cannot stop a worker's loop. The error log and the
 * access log share this one implementation.
 */
#ifndef WH_SYSLOG_H
#define WH_SYSLOG_H

#include "wh_core.h"
#include "wh_addr.h"

#define WH_SYSLOG_PREFIX "syslog:"

typedef struct {
    wh_sockaddr_t server;
    int fd;                     /* -1 until opened */
    int facility;               /* the code, 0..23 */
    int severity;               /* for lines that bring none (the access log) */
    int nohostname;
    char tag[33];
    char hostname[64];
    uint64_t dropped;           /* datagrams not sent since the last report */
} wh_syslog_t;

/* Whether a log's name is a syslog destination. */
#define wh_syslog_is(name) (strncmp((name), WH_SYSLOG_PREFIX, sizeof(WH_SYSLOG_PREFIX) - 1) == 0)

/* Parses "syslog:..." (after any text up to the first space: options of
 * the caller's). NULL, or the reason it is refused. */
const char *wh_syslog_parse(const char *spec, wh_syslog_t *sl);
/* The socket, connected (a server not there yet is tried again on each
 * reopen and line). WH_OK or WH_ERROR with errno. */
int wh_syslog_open(wh_syslog_t *sl);
void wh_syslog_close(wh_syslog_t *sl);
/* Sends msg[0..len) (no newline) as one datagram at severity (-1: the
 * destination's own). WH_OK, or WH_AGAIN when dropped. */
int wh_syslog_send(wh_syslog_t *sl, int severity, const char *msg, size_t len);

#endif

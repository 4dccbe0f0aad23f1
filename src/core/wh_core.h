/*
 * wh_core.h -- what every wharf file includes: return codes, error strings,
 * small helpers.
 *
 * Return codes follow nginx: WH_OK, WH_ERROR, WH_AGAIN (try later, a
 * callback will say when), WH_DECLINED. Errors that travel between layers are
 * constant strings compared by address (h2o's habit): NULL means no error and
 * the value is ready to log.
 */
#ifndef WH_CORE_H
#define WH_CORE_H

#include "wh_config.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define WH_OK        0
#define WH_ERROR    -1
#define WH_AGAIN    -2
#define WH_DECLINED -3

#define WH_VERSION "0.1.0"
#define WH_NAME    "wharf"

#define wh_nelems(a) (sizeof(a) / sizeof((a)[0]))
#define wh_min(a, b) ((a) < (b) ? (a) : (b))
/* The struct that embeds member at ptr (the kernel's container_of). */
#define wh_container_of(ptr, type, member) \
    ((type *) (void *) ((char *) (ptr) - offsetof(type, member)))
#define wh_max(a, b) ((a) > (b) ? (a) : (b))

extern const char wh_err_closed[];       /* peer reset the connection */
extern const char wh_err_io[];           /* a read or write failed */
extern const char wh_err_bad_input[];    /* the peer sent bytes we refuse */
extern const char wh_err_timeout[];      /* the peer did not answer in time */

/* malloc that logs and aborts on failure: the daemon cannot go on without
 * memory for its own bookkeeping; per-stream allocations use plain malloc. */
void *wh_xalloc(size_t size);
char *wh_xstrdup(const char *s);

/* A NUL-terminated text that grows as it is printed to (the /metrics
 * answer, the environment of a binary upgrade); out of memory aborts, as
 * wh_xalloc does. Starts as { NULL, 0, 0 }; the caller frees buf. */
typedef struct {
    char *buf;
    size_t len, cap;
} wh_text_t;

void wh_text_printf(wh_text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

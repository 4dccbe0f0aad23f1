/*
 * wh_tcp_http_header.h -- the tcp "http" header obfuscation, server side
 * (spec 3.3-3.5), as a pure codec: config, request check, response bytes.
 * See wh_tcp_http_header.c.
 */
#ifndef WH_TCP_HTTP_HEADER_H
#define WH_TCP_HTTP_HEADER_H

#include "wh_conf.h"

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* One configured header: a name and the values one is picked from. */
typedef struct {
    char *name;
    size_t nvalues;
    char **values;          /* nvalues == 0 is possible (an empty list): "" is sent */
} wh_http_obfs_header_t;

/* Read-only once parsed; shared by every connection of the listener. */
typedef struct wh_http_obfs_conf_s {
    /* request: the server only uses paths; the rest is kept for -T and logs */
    char *req_version;              /* "1.1" */
    char *req_method;               /* "GET" */
    size_t npaths;
    char **paths;                   /* the accepted URL paths, compared byte for byte */
    size_t nreq_headers;
    wh_http_obfs_header_t *req_headers;

    /* response */
    char *resp_version;             /* "1.1" */
    char *status;                   /* "200" */
    char *reason;                   /* "OK" */
    size_t nresp_headers;
    wh_http_obfs_header_t *resp_headers;
    int resp_has_date;              /* a "Date" header is configured: no Date line added */
    size_t resp_max;                /* an upper bound of the response head's length */
} wh_http_obfs_conf_t;

/* V2Ray's server reads at most this much without the blank line (spec 3.5 step 2) */
#define WH_HTTP_OBFS_HEAD_MAX  8192
/* V2Ray's client reads the response head into a buffer this large (spec 3.4) */
#define WH_HTTP_OBFS_CLIENT_READ  2048
/* Enough for either fixed error answer (about 120 bytes). */
#define WH_HTTP_OBFS_ERROR_MAX  160

/*
 * Parses tcpSettings.header (a group whose type is "http", case-insensitive)
 * with V2Ray's defaults and rules (spec 3.3). Errors go to wh_conf_error
 * with file:line and return WH_ERROR; *out is set only on WH_OK.
 */
int wh_http_obfs_parse(wh_conf_t *cf, const config_setting_t *header, wh_http_obfs_conf_t **out);
void wh_http_obfs_free(wh_http_obfs_conf_t *c);

#define WH_HTTP_OBFS_400 (-400)
#define WH_HTTP_OBFS_404 (-404)

/*
 * Server: called with everything received so far (buf, len). Returns:
 *   0  need more bytes;
 *  >0  the request head is complete, valid, and its path matches: the
 *      head's length (the bytes after it are payload, relayed first);
 *  WH_HTTP_OBFS_404  path mismatch;
 *  WH_HTTP_OBFS_400  no blank line within WH_HTTP_OBFS_HEAD_MAX bytes, or
 *      a parse error, including V2Ray's early check of a partial head.
 */
ssize_t wh_http_obfs_request(const wh_http_obfs_conf_t *c, const uint8_t *buf, size_t len);

/*
 * The response head for a connection accepted at time t: version, status,
 * reason, the configured (or default) headers each with a value picked by
 * rnd() % nvalues (rnd is called only for headers with 2+ values), the Date
 * line unless a Date header is configured, the blank line. Returns its
 * length, or 0 if it does not fit in size (c->resp_max + 1 always does).
 */
size_t wh_http_obfs_response(const wh_http_obfs_conf_t *c, time_t t, uint32_t (*rnd)(void),
                             char *out, size_t size);

/* The fixed answers of spec 3.5 for status 400 or 404 (WH_HTTP_OBFS_400 and
 * WH_HTTP_OBFS_404 work too), Date line included. Returns the length, or 0
 * for another status or if size is too small. */
size_t wh_http_obfs_error(int status, time_t t, char *out, size_t size);

#endif /* WH_TCP_HTTP_HEADER_H */

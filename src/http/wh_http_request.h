/*
 * wh_http_request.h -- one HTTP/1.1 request-head parser with Go net/http's
 * acceptance rules, shared by the tcp "http" header (spec 3.5), the
 * websocket handshake (spec 4.3) and h2's HTTP/1.1 path.
 *
 * Two layers, because V2Ray uses two: the tcp "http" header calls Go's
 * internal net/http.readRequest directly, while the websocket and h2
 * servers run Go's full HTTP server, which adds a few checks after it.
 * wh_http_request_parse() is readRequest; wh_http_request_check_server()
 * adds the server's checks. See wh_http_request.c for the details.
 */
#ifndef WH_HTTP_REQUEST_H
#define WH_HTTP_REQUEST_H

#include "wh_addr.h"

#include <stddef.h>
#include <sys/types.h>

typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} wh_http_header_t;

#define WH_HTTP_MAX_HEADERS 100

typedef struct {
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    int version_major, version_minor;
    size_t nheaders;
    wh_http_header_t headers[WH_HTTP_MAX_HEADERS];
} wh_http_request_t;

/* The errors, compared by address; the text is ready to log. */
extern const char wh_http_err_incomplete[];      /* no blank line ends the text */
extern const char wh_http_err_request_line[];    /* "malformed request line" */
extern const char wh_http_err_method[];          /* "invalid method" */
extern const char wh_http_err_version[];         /* "malformed HTTP version" */
extern const char wh_http_err_target[];          /* "invalid request target" */
extern const char wh_http_err_header_line[];     /* "malformed header line" */
extern const char wh_http_err_too_many_headers[];/* more than WH_HTTP_MAX_HEADERS */
extern const char wh_http_err_host_count[];      /* "too many Host headers" */
extern const char wh_http_err_transfer_encoding[];/* "bad Transfer-Encoding" (Go's server: 501) */
extern const char wh_http_err_content_length[];  /* "bad Content-Length" */
extern const char wh_http_err_trailer[];         /* "bad Trailer" */
extern const char wh_http_err_after_blank[];     /* a bare-LF blank line ends the head early */
/* wh_http_request_check_server() only; the texts are Go's own, so a server
 * can answer "400 Bad Request: <text>" as Go's does. */
extern const char wh_http_err_unsupported_version[]; /* "unsupported protocol version" (Go: 505) */
extern const char wh_http_err_missing_host[];    /* "missing required Host header" */
extern const char wh_http_err_malformed_host[];  /* "malformed Host header" */
extern const char wh_http_err_header_name[];     /* "invalid header name" */
extern const char wh_http_err_header_value[];    /* "invalid header value" */

/*
 * Parses a complete request head: buf[0..len) is everything up to and
 * including the first "\r\n\r\n". Returns NULL on success, or one of the
 * errors above. Pointers in *req point into buf.
 *
 * Accepted exactly as Go 1.19's net/http.readRequest accepts: lines end in
 * LF or CRLF; the request line is METHOD SP target SP HTTP/d.d (token method,
 * one digit each side of the dot); the target passes url.ParseRequestURI (for
 * CONNECT, an authority); header lines need a colon, a header name is NOT
 * checked beyond that (lines with an empty name are dropped, as Go drops
 * them); obs-fold continuation lines (starting with SP or HTAB) belong to
 * the value before; then Go's Host count and Transfer-Encoding /
 * Content-Length / Trailer checks.
 *
 * Values are trimmed of spaces and tabs. A folded value is not rewritten
 * (buf is const; Go joins the pieces with single spaces): its span keeps the
 * line breaks and indentation between pieces, and ends after the
 * indentation of a blank last piece, where Go's value ends in a space.
 * Treat CR and LF in a value as spaces.
 *
 * Differences from Go, all unreachable for V2Ray clients: more than
 * WH_HTTP_MAX_HEADERS header lines are refused; a head whose blank line is a
 * bare LF before the final "\r\n\r\n" is refused (Go would stop there and
 * leave the rest unread).
 */
const char *wh_http_request_parse(const char *buf, size_t len, wh_http_request_t *req);

/*
 * The checks Go's HTTP server (net/http.(*conn).readRequest) adds after a
 * successful parse, in Go's order: version (1.x, or "PRI * HTTP/2.0"), Host
 * present for HTTP/1.1+ (except CONNECT and the PRI upgrade) and made of
 * valid bytes, every header name a token, no control byte other than HTAB in
 * a value (headers readRequest has already consumed, such as
 * Transfer-Encoding, are not looked at, as in Go). Returns NULL or one of
 * the errors above.
 */
const char *wh_http_request_check_server(const wh_http_request_t *req);

/*
 * Go's check of a request text that is only partially received (spec 3.5
 * step 3): buf[0..len) is parsed as if the input ended there, a last line
 * without its line end counting as complete (Go's bufio does that).
 * Returns 1 if that is a syntax error (fail now), 0 if the parser ran out of
 * input (or the text is empty, or a bare-LF blank line completed it: the
 * caller just keeps waiting). Like Go, this fails a request line cut in the
 * middle ("GET /ind"), so it is not a "can this prefix still become valid"
 * test: callers apply it to what V2Ray would parse (spec 3.5: all received
 * bytes but the last 4). No header count limit applies here.
 * For Go's server (spec 4.3 check 1), apply it to everything received: at
 * the header timeout Go answers 400 only when this returns 1; when the
 * client closes inside a non-empty head, Go answers 400 in any case.
 */
int wh_http_request_partial_invalid(const char *buf, size_t len);

/*
 * The URL path of a request target (spec 3.5 step 5), as Go's URL.Path:
 * percent-decoded ('+' stays '+'), query removed; absolute-form's path part
 * ("" when it has none); "*" for "*"; "" for "scheme:opaque" forms. Writes
 * into out (NUL-terminated), returns its length, or -1 if the target is
 * invalid (empty, bad percent-escape, control byte, relative path, bad host
 * or port, ...) or out is too small. The path may contain NUL bytes (from
 * "%00"): compare by length.
 */
ssize_t wh_http_target_path(const char *target, size_t len, char *out, size_t size);

/* The same for a parsed request: also right for CONNECT, whose target Go
 * reads as an authority unless it starts with '/' ("host:443" -> ""). */
ssize_t wh_http_request_path(const wh_http_request_t *req, char *out, size_t size);

/* Case-insensitive header lookup: the first header named name, or NULL. */
const wh_http_header_t *wh_http_header_find(const wh_http_request_t *req, const char *name);

/* The Date header value Go's server sends (IMF-fixdate, UTC) for now. */
size_t wh_http_date(char *out, size_t size);

/* X-Forwarded-For's first entry when it is an IP address: V2Ray takes it as
 * the stream's source (spec 4.3, 5.4). WH_OK, or WH_DECLINED. */
int wh_http_forwarded_for(const char *value, size_t len, wh_sockaddr_t *out);

#endif /* WH_HTTP_REQUEST_H */

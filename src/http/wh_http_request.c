/*
 * wh_http_request.c -- the HTTP/1.1 request-head parser every wharf
 * transport that speaks HTTP/1.1 shares (see wh_http_request.h).
 *
 * V2Ray's servers judge requests with Go's net/http, so "what is a valid
 * request" is Go 1.19's answer, not RFC 9112's nor another parser's: the
 * tcp "http" header (spec 3.5 steps 3-5) calls net/http.readRequest itself,
 * the websocket and h2 servers (spec 4.3) run net/http's server on top of
 * it. Rules taken from Go's net/http/request.go (readRequest,
 * parseRequestLine, ParseHTTPVersion, validMethod), net/textproto/reader.go
 * (line reading, continuation lines, header lines), net/http/transfer.go
 * (Transfer-Encoding, Content-Length, Trailer), net/url/url.go
 * (ParseRequestURI) and net/http/server.go (the server's extra checks).
 *
 * Hand-written rather than a library (picohttpparser, llhttp, http-parser):
 * each of those accepts and refuses other things than Go does (bare-LF line
 * ends, obs-fold, URL syntax, version digits), and matching Go is the point.
 * It is one pass over the bytes, never allocates and never copies.
 *
 * Input model: Go reads with bufio, where a line ends at LF (dropping LF or
 * CRLF) and a last line cut by the end of the input counts as complete. The
 * same model serves the complete head and the partial check of spec 3.5
 * step 3, whose only difference is what running out of input means.
 */
#include "wh_http_request.h"

#include <time.h>

#include <stdint.h>
#include <string.h>
#include <strings.h>

const char wh_http_err_incomplete[] = "incomplete request head";
const char wh_http_err_request_line[] = "malformed request line";
const char wh_http_err_method[] = "invalid method";
const char wh_http_err_version[] = "malformed HTTP version";
const char wh_http_err_target[] = "invalid request target";
const char wh_http_err_header_line[] = "malformed header line";
const char wh_http_err_too_many_headers[] = "too many headers";
const char wh_http_err_host_count[] = "too many Host headers";
const char wh_http_err_transfer_encoding[] = "bad Transfer-Encoding";
const char wh_http_err_content_length[] = "bad Content-Length";
const char wh_http_err_trailer[] = "bad Trailer";
const char wh_http_err_after_blank[] = "bytes after the blank line that ends the head";
const char wh_http_err_unsupported_version[] = "unsupported protocol version";
const char wh_http_err_missing_host[] = "missing required Host header";
const char wh_http_err_malformed_host[] = "malformed Host header";
const char wh_http_err_header_name[] = "invalid header name";
const char wh_http_err_header_value[] = "invalid header value";

enum {
    PARSE_OK,
    PARSE_FAIL,             /* a syntax error: *err says which */
    PARSE_EOF,              /* the input is empty (Go: io.EOF) */
    PARSE_UNEXPECTED_EOF    /* the input ended inside the head */
};

typedef struct {
    const char *buf;
    size_t len;
    size_t pos;
} reader_t;

static int
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* textproto.TrimString's notion of space, used by transfer.go */
static int
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static int
is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int
is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned
unhex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    return (c | 0x20) - 'a' + 10;
}

/* RFC 7230 tchar, Go's isTokenTable; bytes >= 0x80 are never token bytes */
static int
is_token(unsigned char c)
{
    return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int
all_token(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!is_token((unsigned char) s[i])) {
            return 0;
        }
    }
    return n > 0;
}

static int
span_eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static int
span_caseeq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

static void
trim_space(const char **s, size_t *n)
{
    while (*n > 0 && is_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_space((*s)[*n - 1])) {
        (*n)--;
    }
}

/* Go's bufio.Reader.ReadLine as textproto uses it (see the top comment). */
static int
read_line(reader_t *r, const char **line, size_t *n)
{
    const char *p, *lf;

    if (r->pos == r->len) {
        return 0;
    }
    p = r->buf + r->pos;
    lf = memchr(p, '\n', r->len - r->pos);
    if (lf == NULL) {
        *n = r->len - r->pos;
        r->pos = r->len;
    } else {
        *n = (size_t) (lf - p);
        if (*n > 0 && p[*n - 1] == '\r') {
            (*n)--;
        }
        r->pos = (size_t) (lf - r->buf) + 1;
    }
    *line = p;
    return 1;
}

/* ---- url.ParseRequestURI ---------------------------------------------- */

/* url.shouldEscape(c, encodeHost), which encodeZone shares */
static int
host_must_escape(unsigned char c)
{
    return !is_alnum(c) && (c == '\0' || strchr("!$&'()*+,;=:[]<>\"-_.~", c) == NULL);
}

/* url.unescape's checks in encodeHost (zone == 0) or encodeZone mode */
static int
host_unescape_ok(const char *s, size_t n, int zone)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];

        if (c != '%') {
            if (c < 0x80 && host_must_escape(c)) {
                return 0;
            }
            continue;
        }
        if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) {
            return 0;
        }
        /* hosts may %-encode only non-ASCII bytes, but "%25" is allowed for
         * IPv6 zones (RFC 6874); a zone may encode what a host could hold */
        if (memcmp(s + i, "%25", 3) != 0) {
            unsigned v = unhex(s[i + 1]) << 4 | unhex(s[i + 2]);

            if (!zone ? unhex(s[i + 1]) < 8 : (v != ' ' && host_must_escape(v))) {
                return 0;
            }
        }
        i += 2;
    }
    return 1;
}

/* url.unescape's check in every other mode: each '%' starts an escape */
static int
escapes_ok(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) {
                return 0;
            }
            i += 2;
        }
    }
    return 1;
}

/* "" or ':' followed by digits only */
static int
port_ok(const char *s, size_t n)
{
    size_t i;

    if (n == 0) {
        return 1;
    }
    if (s[0] != ':') {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    return 1;
}

/* url.parseHost */
static int
host_ok(const char *h, size_t n)
{
    const char *end = h + n, *p;

    if (n > 0 && h[0] == '[') {
        const char *rb = memrchr(h, ']', n), *zone;

        if (rb == NULL || !port_ok(rb + 1, (size_t) (end - rb - 1))) {
            return 0;
        }
        zone = memmem(h, (size_t) (rb - h), "%25", 3);
        if (zone != NULL) {
            return host_unescape_ok(h, (size_t) (zone - h), 0)
                   && host_unescape_ok(zone, (size_t) (rb - zone), 1)
                   && host_unescape_ok(rb, (size_t) (end - rb), 0);
        }
    } else if ((p = memrchr(h, ':', n)) != NULL && !port_ok(p, (size_t) (end - p))) {
        return 0;
    }
    return host_unescape_ok(h, n, 0);
}

/* url.parseAuthority */
static int
authority_ok(const char *a, size_t n)
{
    const char *at = memrchr(a, '@', n);
    size_t i;

    if (at == NULL) {
        return host_ok(a, n);
    }
    if (!host_ok(at + 1, (size_t) (a + n - at - 1))) {
        return 0;
    }
    for (i = 0; i < (size_t) (at - a); i++) {
        unsigned char c = (unsigned char) a[i];

        if (!is_alnum(c) && (c == '\0' || strchr("-._:~!$&'()*+,;=%@", c) == NULL)) {
            return 0;
        }
    }
    /* Go unescapes user and password apart, split at the first ':'; an
     * escape spanning that ':' fails both ways, so one check does */
    return escapes_ok(a, (size_t) (at - a));
}

/*
 * url.ParseRequestURI (url.parse with viaRequest). authority: the target is
 * read as "http://" + target, as readRequest does for CONNECT. On success
 * *path / *plen is the still-escaped URL path.
 */
static int
url_parse(const char *s, size_t n, int authority, const char **path, size_t *plen)
{
    const char *q;
    size_t i;
    int scheme = authority;

    for (i = 0; i < n; i++) {
        if (is_ctl((unsigned char) s[i])) {
            return -1;
        }
    }
    if (!authority) {
        if (n == 0) {
            return -1;
        }
        if (n == 1 && s[0] == '*') {
            *path = s;
            *plen = 1;
            return 0;
        }
        /* getScheme: letters, then digits + - . too, then ':' */
        for (i = 0; i < n; i++) {
            unsigned char c = (unsigned char) s[i];

            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
                continue;
            }
            if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.') {
                if (i == 0) {
                    break;
                }
                continue;
            }
            if (c == ':') {
                if (i == 0) {
                    return -1;          /* "missing protocol scheme" */
                }
                scheme = 1;
                s += i + 1;
                n -= i + 1;
            }
            break;
        }
    }

    /* the query goes: ForceQuery's special case cuts at the same place */
    q = memchr(s, '?', n);
    if (q != NULL) {
        n = (size_t) (q - s);
    }

    if (!authority) {
        if (n == 0 || s[0] != '/') {
            if (!scheme) {
                return -1;              /* "invalid URI for request" */
            }
            *path = s;                  /* opaque: no path, nothing checked */
            *plen = 0;
            return 0;
        }
        if (!scheme || n < 2 || s[1] != '/') {
            if (!escapes_ok(s, n)) {
                return -1;
            }
            *path = s;
            *plen = n;
            return 0;
        }
        s += 2;
        n -= 2;
    }

    /* "//" authority [path] */
    {
        const char *slash = memchr(s, '/', n);
        size_t alen = slash ? (size_t) (slash - s) : n;

        if (!authority_ok(s, alen) || !escapes_ok(s + alen, n - alen)) {
            return -1;
        }
        *path = s + alen;
        *plen = n - alen;
    }
    return 0;
}

static ssize_t
path_unescape(const char *p, size_t n, char *out, size_t size)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        if (o + 1 >= size) {
            return -1;
        }
        if (p[i] == '%') {
            out[o++] = (char) (unhex(p[i + 1]) << 4 | unhex(p[i + 2]));
            i += 2;
        } else {
            out[o++] = p[i];
        }
    }
    if (size == 0) {
        return -1;
    }
    out[o] = '\0';
    return (ssize_t) o;
}

static int
is_connect_authority(const char *method, size_t mlen, const char *target, size_t tlen)
{
    return span_eq(method, mlen, "CONNECT") && (tlen == 0 || target[0] != '/');
}

ssize_t
wh_http_target_path(const char *target, size_t len, char *out, size_t size)
{
    const char *p;
    size_t n;

    if (url_parse(target, len, 0, &p, &n) != 0) {
        return -1;
    }
    return path_unescape(p, n, out, size);
}

ssize_t
wh_http_request_path(const wh_http_request_t *req, char *out, size_t size)
{
    const char *p;
    size_t n;
    int authority = is_connect_authority(req->method, req->method_len,
                                         req->target, req->target_len);

    if (url_parse(req->target, req->target_len, authority, &p, &n) != 0) {
        return -1;
    }
    return path_unescape(p, n, out, size);
}

/* ---- readRequest ------------------------------------------------------- */

/* ParseHTTPVersion: exactly "HTTP/" digit "." digit */
static int
version_parse(const char *p, size_t n, int *major, int *minor)
{
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.'
        || p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
    {
        return 0;
    }
    *major = p[5] - '0';
    *minor = p[7] - '0';
    return 1;
}

/* strconv.ParseUint(s, 10, 63) succeeds */
static int
content_length_ok(const char *s, size_t n)
{
    uint64_t v = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
        if (v > ((uint64_t) INT64_MAX - (uint64_t) (s[i] - '0')) / 10) {
            return 0;
        }
        v = v * 10 + (uint64_t) (s[i] - '0');
    }
    return n > 0;
}

/* transfer.go: parseTransferEncoding, fixLength, fixTrailer; and
 * readRequest's Host count. Header names compare case-insensitively, which
 * is exactly Go's canonical-key lookup: these names are all token bytes. */
static const char *
transfer_check(const wh_http_request_t *req)
{
    const wh_http_header_t *h, *end = req->headers + req->nheaders;
    const wh_http_header_t *te = NULL, *cl = NULL;
    size_t hosts = 0, tes = 0;
    int chunked = 0, at_least_11;

    for (h = req->headers; h < end; h++) {
        if (span_caseeq(h->name, h->name_len, "Host")) {
            hosts++;
        } else if (span_caseeq(h->name, h->name_len, "Transfer-Encoding")) {
            te = te ? te : h;
            tes++;
        }
    }
    if (hosts > 1) {
        return wh_http_err_host_count;
    }

    /* readTransfer turns "HTTP/0.0" into 1.1 before this test */
    at_least_11 = req->version_major > 1
                  || (req->version_major == 1 && req->version_minor >= 1)
                  || (req->version_major == 0 && req->version_minor == 0);
    if (tes > 0 && at_least_11) {
        /* only one field, only "chunked": Go's stance against smuggling */
        if (tes != 1 || !span_caseeq(te->value, te->value_len, "chunked")) {
            return wh_http_err_transfer_encoding;
        }
        chunked = 1;        /* and Content-Length is dropped unread */
    }

    if (!chunked) {
        for (h = req->headers; h < end; h++) {
            const char *v;
            size_t n;

            if (!span_caseeq(h->name, h->name_len, "Content-Length")) {
                continue;
            }
            v = h->value;
            n = h->value_len;
            trim_space(&v, &n);
            if (cl == NULL) {
                cl = h;
                if (n > 0 && !content_length_ok(v, n)) {
                    return wh_http_err_content_length;
                }
            } else {
                /* repeated fields must all say the same */
                const char *f = cl->value;
                size_t fn = cl->value_len;

                trim_space(&f, &fn);
                if (fn != n || memcmp(f, v, n) != 0) {
                    return wh_http_err_content_length;
                }
            }
        }
        return NULL;
    }

    for (h = req->headers; h < end; h++) {
        const char *v, *comma;
        size_t n;

        if (!span_caseeq(h->name, h->name_len, "Trailer")) {
            continue;
        }
        v = h->value;
        n = h->value_len;
        while (n > 0) {
            const char *e;
            size_t en;

            comma = memchr(v, ',', n);
            en = comma ? (size_t) (comma - v) : n;
            e = v;
            trim_space(&e, &en);
            if (span_caseeq(e, en, "Transfer-Encoding") || span_caseeq(e, en, "Trailer")
                || span_caseeq(e, en, "Content-Length"))
            {
                return wh_http_err_trailer;
            }
            if (comma == NULL) {
                break;
            }
            n -= (size_t) (comma - v) + 1;
            v = comma + 1;
        }
    }
    return NULL;
}

/*
 * net/http.readRequest over buf[0..len), with the input ending there.
 * partial: the spec 3.5 step 3 check, where headers beyond the array are
 * only counted (Go has no limit, and the full parse refuses them anyway).
 * *end: where the head ended (after its blank line).
 */
static int
parse_head(const char *buf, size_t len, wh_http_request_t *req, int partial,
           const char **err, size_t *end)
{
    reader_t r = { buf, len, 0 };
    const char *line, *sp, *proto;
    size_t n, rest;
    int overflow = 0;

    req->nheaders = 0;
    req->method = req->target = NULL;
    req->method_len = req->target_len = 0;
    req->version_major = req->version_minor = 0;

    if (!read_line(&r, &line, &n)) {
        return PARSE_EOF;
    }

    /* parseRequestLine: cut at the first two spaces, the rest is the version */
    sp = memchr(line, ' ', n);
    if (sp == NULL) {
        goto bad_request_line;
    }
    req->method = line;
    req->method_len = (size_t) (sp - line);
    req->target = sp + 1;
    rest = n - req->method_len - 1;
    sp = memchr(req->target, ' ', rest);
    if (sp == NULL) {
        goto bad_request_line;
    }
    req->target_len = (size_t) (sp - req->target);
    proto = sp + 1;

    if (!all_token(req->method, req->method_len)) {
        *err = wh_http_err_method;
        return PARSE_FAIL;
    }
    if (!version_parse(proto, (size_t) (line + n - proto), &req->version_major,
                       &req->version_minor))
    {
        *err = wh_http_err_version;
        return PARSE_FAIL;
    }
    {
        const char *p;
        size_t pl;
        int authority = is_connect_authority(req->method, req->method_len,
                                             req->target, req->target_len);

        if (url_parse(req->target, req->target_len, authority, &p, &pl) != 0) {
            *err = wh_http_err_target;
            return PARSE_FAIL;
        }
    }

    /* textproto.ReadMIMEHeader: the first header line cannot be a
     * continuation of the request line */
    if (r.pos < r.len && is_blank(buf[r.pos])) {
        *err = wh_http_err_header_line;
        return PARSE_FAIL;
    }

    for ( ;; ) {
        const char *colon, *vs, *ve;

        if (!read_line(&r, &line, &n)) {
            return PARSE_UNEXPECTED_EOF;
        }
        if (n == 0) {
            break;
        }
        colon = memchr(line, ':', n);
        if (colon == NULL) {
            *err = wh_http_err_header_line;
            return PARSE_FAIL;
        }
        vs = colon + 1;
        ve = line + n;
        while (ve > vs && is_blank(ve[-1])) {
            ve--;
        }
        while (vs < ve && is_blank(*vs)) {
            vs++;
        }

        /* obs-fold: lines starting with SP or HTAB continue the value */
        while (r.pos < r.len && is_blank(buf[r.pos])) {
            const char *cl;
            size_t cn;

            while (r.pos < r.len && is_blank(buf[r.pos])) {
                r.pos++;
            }
            if (!read_line(&r, &cl, &cn)) {
                break;
            }
            while (cn > 0 && is_blank(cl[cn - 1])) {
                cn--;
            }
            /* Go joins the pieces with one space each, then trims the
             * left only: a blank piece after text leaves a trailing space,
             * which must still spoil "chunked" or a number here */
            if (cn > 0) {
                if (vs == ve) {
                    vs = cl;
                }
                ve = cl + cn;
            } else if (vs != ve) {
                ve = cl;
            }
        }

        if (colon == line) {
            continue;           /* Go skips an empty name */
        }
        if (req->nheaders == WH_HTTP_MAX_HEADERS) {
            if (!partial) {
                *err = wh_http_err_too_many_headers;
                return PARSE_FAIL;
            }
            overflow = 1;
            continue;
        }
        req->headers[req->nheaders].name = line;
        req->headers[req->nheaders].name_len = (size_t) (colon - line);
        req->headers[req->nheaders].value = vs;
        req->headers[req->nheaders].value_len = (size_t) (ve - vs);
        req->nheaders++;
    }

    *end = r.pos;
    if (!overflow && (*err = transfer_check(req)) != NULL) {
        return PARSE_FAIL;
    }
    return PARSE_OK;

bad_request_line:
    *err = wh_http_err_request_line;
    return PARSE_FAIL;
}

const char *
wh_http_request_parse(const char *buf, size_t len, wh_http_request_t *req)
{
    const char *err = NULL;
    size_t end = 0;

    switch (parse_head(buf, len, req, 0, &err, &end)) {
    case PARSE_OK:
        return end == len ? NULL : wh_http_err_after_blank;
    case PARSE_FAIL:
        return err;
    default:
        return wh_http_err_incomplete;
    }
}

int
wh_http_request_partial_invalid(const char *buf, size_t len)
{
    wh_http_request_t req;
    const char *err = NULL;
    size_t end = 0;

    return parse_head(buf, len, &req, 1, &err, &end) == PARSE_FAIL;
}

/* ---- net/http server ---------------------------------------------------- */

/* httpguts.ValidHostHeader */
static int
host_header_ok(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];

        if (!is_alnum(c) && (c == '\0' || strchr("!$%&'()*+,-.:;=[]_~", c) == NULL)) {
            return 0;
        }
    }
    return 1;
}

/* httpguts.ValidHeaderFieldValue on the value Go would have joined: the
 * line breaks of obs-fold are not part of it, any other control byte but
 * HTAB is refused */
static int
header_value_ok(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];

        if (!is_ctl(c) || c == '\t') {
            continue;
        }
        if (c == '\r' && i + 2 < n && s[i + 1] == '\n' && is_blank(s[i + 2])) {
            i++;
            continue;
        }
        if (c == '\n' && i + 1 < n && is_blank(s[i + 1])) {
            continue;
        }
        return 0;
    }
    return 1;
}

/*
 * Whether readRequest has already removed h from Go's header map: the
 * server's checks below never see those. Transfer-Encoding always goes;
 * with chunked, Content-Length and Trailer go too; an empty Content-Length
 * goes as well.
 */
static int
removed_by_go(const wh_http_header_t *h, int chunked)
{
    const char *v = h->value;
    size_t n = h->value_len;

    if (span_caseeq(h->name, h->name_len, "Transfer-Encoding")) {
        return 1;
    }
    if (span_caseeq(h->name, h->name_len, "Trailer")) {
        return chunked;
    }
    if (span_caseeq(h->name, h->name_len, "Content-Length")) {
        trim_space(&v, &n);
        return chunked || n == 0;
    }
    return 0;
}

const char *
wh_http_request_check_server(const wh_http_request_t *req)
{
    const wh_http_header_t *h, *host = NULL, *end = req->headers + req->nheaders;
    size_t hosts = 0, kept = 0;
    int pri = span_eq(req->method, req->method_len, "PRI");
    int chunked = 0, h2_upgrade;

    /* http1ServerSupportsRequest */
    if (req->version_major != 1
        && !(req->version_major == 2 && req->version_minor == 0 && pri
             && span_eq(req->target, req->target_len, "*")))
    {
        return wh_http_err_unsupported_version;
    }
    /* the parse accepted it, so a Transfer-Encoding on 1.1+ is chunked */
    if (req->version_major > 1 || req->version_minor >= 1) {
        for (h = req->headers; h < end; h++) {
            chunked |= span_caseeq(h->name, h->name_len, "Transfer-Encoding");
        }
    }
    for (h = req->headers; h < end; h++) {
        if (span_caseeq(h->name, h->name_len, "Host")) {
            host = host ? host : h;
            hosts++;
        }
        kept += !removed_by_go(h, chunked);
    }
    h2_upgrade = pri && kept == 0 && span_eq(req->target, req->target_len, "*")
                 && req->version_major == 2 && req->version_minor == 0;
    if ((req->version_major > 1 || req->version_minor >= 1) && hosts == 0 && !h2_upgrade
        && !span_eq(req->method, req->method_len, "CONNECT"))
    {
        return wh_http_err_missing_host;
    }
    if (hosts == 1 && !host_header_ok(host->value, host->value_len)) {
        return wh_http_err_malformed_host;
    }
    for (h = req->headers; h < end; h++) {
        if (removed_by_go(h, chunked)) {
            continue;
        }
        if (!all_token(h->name, h->name_len)) {
            return wh_http_err_header_name;
        }
        if (!header_value_ok(h->value, h->value_len)) {
            return wh_http_err_header_value;
        }
    }
    return NULL;
}

const wh_http_header_t *
wh_http_header_find(const wh_http_request_t *req, const char *name)
{
    size_t i;

    for (i = 0; i < req->nheaders; i++) {
        if (span_caseeq(req->headers[i].name, req->headers[i].name_len, name)) {
            return &req->headers[i];
        }
    }
    return NULL;
}

size_t
wh_http_date(char *out, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    return strftime(out, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

int
wh_http_forwarded_for(const char *value, size_t len, wh_sockaddr_t *out)
{
    char ip[64];
    size_t b = 0, e;

    while (b < len && value[b] == ' ') b++;
    for (e = b; e < len && value[e] != ',' && value[e] != ' '; e++) { /* void */ }
    if (e == b || e - b >= sizeof(ip)) {
        return WH_DECLINED;
    }
    memcpy(ip, value + b, e - b);
    ip[e - b] = '\0';
    return wh_addr_parse_ip(ip, 0, out) == WH_OK ? WH_OK : WH_DECLINED;
}

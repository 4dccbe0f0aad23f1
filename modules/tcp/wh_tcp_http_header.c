/*
 * wh_tcp_http_header.c -- the tcp "http" header obfuscation, server side:
 * V2Ray 4.34's fake HTTP/1.1 exchange in front of the relayed bytes
 * (spec 3.3 configuration, 3.4 what the client sends, 3.5 what the server
 * does).
 *
 * A pure codec, so the tcp module owns all I/O and timing and this file
 * can be tested byte for byte:
 *  - wh_http_obfs_parse() reads the libconfig form of V2Ray's JSON with
 *    V2Ray's defaults (infra/conf/transport_authenticators.go): a string is
 *    split at every ',', a list is verbatim, a non-empty headers group
 *    replaces the defaults and is sorted by name (Go's map order is lost).
 *  - wh_http_obfs_request() is the reader of spec 3.5: the request head ends
 *    at the first CRLFCRLF; Go's net/http parser (src/http) judges it; its
 *    URL path must equal a configured path. Before the head is complete it
 *    applies V2Ray's early check (step 3) to all but the last 4 bytes, so a
 *    prober sees V2Ray's immediate 400 for garbage. A successful early parse
 *    (possible only with bare-LF line ends) makes V2Ray end the header phase
 *    and drop the buffer; spec 3.5 step 1 says not to copy that, so we keep
 *    waiting for the CRLFCRLF.
 *  - wh_http_obfs_response() and wh_http_obfs_error() build the answers in
 *    one buffer, because a V2Ray client needs the whole response head in a
 *    single read (spec 3.4): the caller sends it in one write.
 *
 * V2Ray reads the request in reads of up to 2 KB and runs its early check
 * after each; we run it on whatever the caller has when it calls, which is
 * the same for every head a V2Ray client sends (one write).
 */
#include "wh_tcp_http_header.h"
#include "wh_http_request.h"

#include <strings.h>

static const char *const header_names[] = { "type", "request", "response", NULL };
static const char *const request_names[] = { "version", "method", "path", "headers", NULL };
static const char *const response_names[] = { "version", "status", "reason", "headers", NULL };

/* V2Ray's defaults, in V2Ray's order (spec 3.3) */
static const char *const default_host[] = { "www.baidu.com", "www.bing.com", NULL };
static const char *const default_ua[] = {
    "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/53.0.2785.143 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 10_0_2 like Mac OS X) AppleWebKit/601.1 "
    "(KHTML, like Gecko) CriOS/53.0.2785.109 Mobile/14A456 Safari/601.1.46",
    NULL
};
static const char *const default_accept_encoding[] = { "gzip, deflate", NULL };
static const char *const default_keep_alive[] = { "keep-alive", NULL };
static const char *const default_no_cache[] = { "no-cache", NULL };
static const char *const default_content_type[] = { "application/octet-stream", "video/mpeg", NULL };
static const char *const default_chunked[] = { "chunked", NULL };
static const char *const default_cache_control[] = { "private", "no-cache", NULL };

typedef struct {
    const char *name;
    const char *const *values;
} default_header_t;

static const default_header_t default_request[] = {
    { "Host", default_host },
    { "User-Agent", default_ua },
    { "Accept-Encoding", default_accept_encoding },
    { "Connection", default_keep_alive },
    { "Pragma", default_no_cache },
};

static const default_header_t default_response[] = {
    { "Content-Type", default_content_type },
    { "Transfer-Encoding", default_chunked },
    { "Connection", default_keep_alive },
    { "Pragma", default_no_cache },
    { "Cache-Control", default_cache_control },
};

/* "Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n"; a few bytes spare for years
 * beyond 9999, which print more digits */
#define DATE_LINE_MAX (sizeof("Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n") - 1 + 8)

static char **
strings_dup(const char *const *v, size_t *n)
{
    char **out;
    size_t i, k = 0;

    while (v[k] != NULL) {
        k++;
    }
    out = wh_xalloc((k ? k : 1) * sizeof(char *));
    for (i = 0; i < k; i++) {
        out[i] = wh_xstrdup(v[i]);
    }
    *n = k;
    return out;
}

static void
strings_free(char **v, size_t n)
{
    size_t i;

    for (i = 0; v != NULL && i < n; i++) {
        free(v[i]);
    }
    free(v);
}

static void
headers_free(wh_http_obfs_header_t *h, size_t n)
{
    size_t i;

    for (i = 0; h != NULL && i < n; i++) {
        free(h[i].name);
        strings_free(h[i].values, h[i].nvalues);
    }
    free(h);
}

static wh_http_obfs_header_t *
headers_default(const default_header_t *d, size_t n)
{
    wh_http_obfs_header_t *h = wh_xalloc(n * sizeof(*h));
    size_t i;

    for (i = 0; i < n; i++) {
        h[i].name = wh_xstrdup(d[i].name);
        h[i].values = strings_dup(d[i].values, &h[i].nvalues);
    }
    return h;
}

/* The line to blame for an element: libconfig may not give array
 * elements one, then the array's own line is the useful one. */
static const config_setting_t *
blame(const config_setting_t *elem, const config_setting_t *parent)
{
    return config_setting_source_line(elem) ? elem : parent;
}

/*
 * V2Ray's StringList (infra/conf/common.go): a list (or array) verbatim, a
 * string split at every ',' with nothing trimmed and empty pieces kept, so
 * "" is one empty string. *out is replaced only on WH_OK.
 */
static int
string_list(wh_conf_t *cf, const config_setting_t *s, const char *what, char ***out,
            size_t *nout)
{
    char **v;
    size_t n, i;
    int type = config_setting_type(s);

    if (type == CONFIG_TYPE_STRING) {
        const char *str = config_setting_get_string(s), *p, *comma;

        for (n = 1, p = str; (p = strchr(p, ',')) != NULL; p++) {
            n++;
        }
        v = wh_xalloc(n * sizeof(char *));
        for (i = 0, p = str; i < n; i++, p = comma + 1) {
            comma = strchr(p, ',');
            if (comma == NULL) {
                comma = p + strlen(p);
            }
            v[i] = wh_xalloc((size_t) (comma - p) + 1);
            memcpy(v[i], p, (size_t) (comma - p));
        }
        *out = v;
        *nout = n;
        return WH_OK;
    }

    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
        wh_conf_error(cf, s, "\"%s\" must be a string or a list of strings", what);
        return WH_ERROR;
    }
    n = (size_t) config_setting_length(s);
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned) i);

        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            wh_conf_error(cf, blame(e, s), "\"%s\" must be a string or a list of strings", what);
            return WH_ERROR;
        }
    }
    v = wh_xalloc((n ? n : 1) * sizeof(char *));
    for (i = 0; i < n; i++) {
        v[i] = wh_xstrdup(config_setting_get_string(config_setting_get_elem(s, (unsigned) i)));
    }
    *out = v;
    *nout = n;
    return WH_OK;
}

static int
header_cmp(const void *a, const void *b)
{
    const wh_http_obfs_header_t *x = a, *y = b;

    return strcmp(x->name, y->name);        /* Go's sort.Strings: byte order */
}

/*
 * A "headers" group. Empty or absent: the defaults stay. Otherwise it
 * replaces them, sorted by name.
 */
static int
headers_parse(wh_conf_t *cf, const config_setting_t *group, wh_http_obfs_header_t **hs,
              size_t *nhs)
{
    config_setting_t *g;
    wh_http_obfs_header_t *h;
    size_t n, i;

    if (wh_conf_group(cf, group, "headers", &g) == WH_ERROR) {
        return WH_ERROR;
    }
    if (g == NULL || config_setting_length(g) == 0) {
        return WH_OK;
    }
    n = (size_t) config_setting_length(g);
    h = wh_xalloc(n * sizeof(*h));
    for (i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned) i);

        h[i].name = wh_xstrdup(config_setting_name(m));
        if (string_list(cf, m, h[i].name, &h[i].values, &h[i].nvalues) != WH_OK) {
            headers_free(h, i + 1);
            return WH_ERROR;
        }
    }
    qsort(h, n, sizeof(*h), header_cmp);
    headers_free(*hs, *nhs);
    *hs = h;
    *nhs = n;
    return WH_OK;
}

/* A string field where "" means "keep the default", as V2Ray's len() > 0. */
static int
string_field(wh_conf_t *cf, const config_setting_t *group, const char *name, char **field)
{
    const char *s = NULL;

    if (wh_conf_string(cf, group, name, &s) == WH_ERROR) {
        return WH_ERROR;
    }
    if (s != NULL && s[0] != '\0') {
        free(*field);
        *field = wh_xstrdup(s);
    }
    return WH_OK;
}

static int
request_parse(wh_conf_t *cf, const config_setting_t *header, wh_http_obfs_conf_t *c)
{
    config_setting_t *req, *path;

    c->req_version = wh_xstrdup("1.1");
    c->req_method = wh_xstrdup("GET");
    c->paths = wh_xalloc(sizeof(char *));
    c->paths[0] = wh_xstrdup("/");
    c->npaths = 1;
    c->req_headers = headers_default(default_request, wh_nelems(default_request));
    c->nreq_headers = wh_nelems(default_request);

    if (wh_conf_group(cf, header, "request", &req) == WH_ERROR) {
        return WH_ERROR;
    }
    if (req == NULL) {
        return WH_OK;
    }
    if (wh_conf_check_names(cf, req, request_names, NULL) != WH_OK
        || string_field(cf, req, "version", &c->req_version) != WH_OK
        || string_field(cf, req, "method", &c->req_method) != WH_OK)
    {
        return WH_ERROR;
    }
    path = config_setting_get_member(req, "path");
    if (path != NULL) {
        char **v;
        size_t n;

        if (string_list(cf, path, "path", &v, &n) != WH_OK) {
            return WH_ERROR;
        }
        if (n == 0) {
            strings_free(v, n);             /* [] keeps ["/"] */
        } else {
            strings_free(c->paths, c->npaths);
            c->paths = v;
            c->npaths = n;
        }
    }
    return headers_parse(cf, req, &c->req_headers, &c->nreq_headers);
}

static size_t
response_max(const wh_http_obfs_conf_t *c)
{
    size_t n, i, j;

    n = sizeof("HTTP/  \r\n") - 1 + strlen(c->resp_version) + strlen(c->status)
        + strlen(c->reason);
    for (i = 0; i < c->nresp_headers; i++) {
        size_t longest = 0;

        for (j = 0; j < c->resp_headers[i].nvalues; j++) {
            longest = wh_max(longest, strlen(c->resp_headers[i].values[j]));
        }
        n += strlen(c->resp_headers[i].name) + sizeof(": \r\n") - 1 + longest;
    }
    if (!c->resp_has_date) {
        n += DATE_LINE_MAX;
    }
    return n + 2;
}

static int
response_parse(wh_conf_t *cf, const config_setting_t *header, wh_http_obfs_conf_t *c)
{
    config_setting_t *resp;
    size_t i;

    c->resp_version = wh_xstrdup("1.1");
    c->status = wh_xstrdup("200");
    c->reason = wh_xstrdup("OK");
    c->resp_headers = headers_default(default_response, wh_nelems(default_response));
    c->nresp_headers = wh_nelems(default_response);

    if (wh_conf_group(cf, header, "response", &resp) == WH_ERROR) {
        return WH_ERROR;
    }
    if (resp != NULL) {
        if (wh_conf_check_names(cf, resp, response_names, NULL) != WH_OK
            || string_field(cf, resp, "version", &c->resp_version) != WH_OK
            || string_field(cf, resp, "status", &c->status) != WH_OK
            || string_field(cf, resp, "reason", &c->reason) != WH_OK
            || headers_parse(cf, resp, &c->resp_headers, &c->nresp_headers) != WH_OK)
        {
            return WH_ERROR;
        }
    }
    for (i = 0; i < c->nresp_headers; i++) {
        if (strcasecmp(c->resp_headers[i].name, "Date") == 0) {
            c->resp_has_date = 1;
        }
    }
    c->resp_max = response_max(c);
    if (c->resp_max > WH_HTTP_OBFS_CLIENT_READ) {
        /* V2Ray accepts it, its clients then fail (spec 3.4): say so */
        wh_conf_warn(cf, resp ? resp : header,
                     "the \"http\" response header may be %zu bytes, V2Ray clients "
                     "read at most %d", c->resp_max, WH_HTTP_OBFS_CLIENT_READ);
    }
    return WH_OK;
}

int
wh_http_obfs_parse(wh_conf_t *cf, const config_setting_t *header, wh_http_obfs_conf_t **out)
{
    wh_http_obfs_conf_t *c;
    const char *type = NULL;

    if (wh_conf_check_names(cf, header, header_names, NULL) != WH_OK
        || wh_conf_string(cf, header, "type", &type) == WH_ERROR)
    {
        return WH_ERROR;
    }
    if (type == NULL || strcasecmp(type, "http") != 0) {
        wh_conf_error(cf, header, "\"header\" is not of type \"http\"");
        return WH_ERROR;
    }
    c = wh_xalloc(sizeof(*c));
    if (request_parse(cf, header, c) != WH_OK || response_parse(cf, header, c) != WH_OK) {
        wh_http_obfs_free(c);
        return WH_ERROR;
    }
    *out = c;
    return WH_OK;
}

void
wh_http_obfs_free(wh_http_obfs_conf_t *c)
{
    if (c == NULL) {
        return;
    }
    free(c->req_version);
    free(c->req_method);
    strings_free(c->paths, c->npaths);
    headers_free(c->req_headers, c->nreq_headers);
    free(c->resp_version);
    free(c->status);
    free(c->reason);
    headers_free(c->resp_headers, c->nresp_headers);
    free(c);
}

ssize_t
wh_http_obfs_request(const wh_http_obfs_conf_t *c, const uint8_t *buf, size_t len)
{
    const char *text = (const char *) buf, *end;
    wh_http_request_t req;
    char path[WH_HTTP_OBFS_HEAD_MAX + 8];
    size_t head, i;
    ssize_t plen;

    /* a head whose "\r\n\r\n" starts within the first 8192 bytes is in
     * time; V2Ray's byte counting gives the same limit (spec 3.5 step 2) */
    end = memmem(text, wh_min(len, (size_t) WH_HTTP_OBFS_HEAD_MAX + 4), "\r\n\r\n", 4);
    if (end == NULL) {
        if (len >= WH_HTTP_OBFS_HEAD_MAX + 4) {
            return WH_HTTP_OBFS_400;
        }
        /* step 3: V2Ray parses all but the last 4 bytes as a whole request;
         * an empty text is Go's plain EOF, which fails too */
        if (len >= 4 && (len == 4 || wh_http_request_partial_invalid(text, len - 4))) {
            return WH_HTTP_OBFS_400;
        }
        return 0;
    }
    head = (size_t) (end - text) + 4;

    if (wh_http_request_parse(text, head, &req) != NULL) {
        return WH_HTTP_OBFS_400;
    }
    /* the decoded path is never longer than the head it came from */
    plen = wh_http_request_path(&req, path, sizeof(path));
    if (plen < 0) {
        return WH_HTTP_OBFS_400;
    }
    for (i = 0; i < c->npaths; i++) {
        if (strlen(c->paths[i]) == (size_t) plen && memcmp(c->paths[i], path, (size_t) plen) == 0) {
            return (ssize_t) head;
        }
    }
    return WH_HTTP_OBFS_404;
}

/* Go's http.TimeFormat applied to time.Now(): the local time, whatever
 * the zone, labelled GMT (spec 3.5) */
static int
date_line(time_t t, char *out, size_t size)
{
    static const char wdays[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char months[12][4] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
    };
    struct tm tm;

    if (localtime_r(&t, &tm) == NULL) {
        memset(&tm, 0, sizeof(tm));
        tm.tm_mday = 1;
        tm.tm_year = 70;
        tm.tm_wday = 4;
    }
    return snprintf(out, size, "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                    wdays[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
                    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

typedef struct {
    char *p;
    size_t len;
    size_t size;
    int overflow;
} writer_t;

static void
put(writer_t *w, const char *s)
{
    size_t n = strlen(s);

    if (w->overflow || n >= w->size - w->len) {
        w->overflow = 1;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
    w->p[w->len] = '\0';
}

static void
put_date(writer_t *w, time_t t)
{
    char date[128];

    date_line(t, date, sizeof(date));
    put(w, date);
}

size_t
wh_http_obfs_response(const wh_http_obfs_conf_t *c, time_t t, uint32_t (*rnd)(void),
                      char *out, size_t size)
{
    writer_t w = { out, 0, size, size == 0 };
    size_t i;

    put(&w, "HTTP/");
    put(&w, c->resp_version);
    put(&w, " ");
    put(&w, c->status);
    put(&w, " ");
    put(&w, c->reason);
    put(&w, "\r\n");
    for (i = 0; i < c->nresp_headers; i++) {
        const wh_http_obfs_header_t *h = &c->resp_headers[i];

        put(&w, h->name);
        put(&w, ": ");
        /* V2Ray's pickString: no roll for zero or one value */
        if (h->nvalues == 1) {
            put(&w, h->values[0]);
        } else if (h->nvalues > 1) {
            put(&w, h->values[rnd() % h->nvalues]);
        }
        put(&w, "\r\n");
    }
    if (!c->resp_has_date) {
        put_date(&w, t);
    }
    put(&w, "\r\n");
    return w.overflow ? 0 : w.len;
}

size_t
wh_http_obfs_error(int status, time_t t, char *out, size_t size)
{
    writer_t w = { out, 0, size, size == 0 };

    if (status == 404 || status == WH_HTTP_OBFS_404) {
        put(&w, "HTTP/1.1 404 Not Found\r\n");
    } else if (status == 400 || status == WH_HTTP_OBFS_400) {
        put(&w, "HTTP/1.1 400 Bad Request\r\n");
    } else {
        return 0;
    }
    put(&w, "Connection: close\r\nCache-Control: private\r\nContent-Length: 0\r\n");
    put_date(&w, t);
    put(&w, "\r\n");
    return w.overflow ? 0 : w.len;
}

/*
 * test_tcp_http_header.c -- the tcp "http" header obfuscation codec
 * (modules/tcp/wh_tcp_http_header.c): V2Ray's config rules and defaults
 * (spec 3.3), the server's reading of the fake request with every error of
 * spec 3.5, and the response and error answers byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

/* module folders are not on the include path: name it from here */
#include "../../modules/tcp/wh_tcp_http_header.h"

/* Mon, 02 Jan 2006 15:04:05 UTC: Go's reference time */
#define T_REF ((time_t) 1136214245)

static config_t cfg;
static wh_conf_t cf;

/* Parses "header = { ... };" given as text; returns the codec config or NULL. */
static wh_http_obfs_conf_t *
load(const char *text)
{
    wh_http_obfs_conf_t *c = NULL;
    config_setting_t *header;

    config_init(&cfg);
    memset(&cf, 0, sizeof(cf));
    cf.file = "test.conf";
    if (config_read_string(&cfg, text) != CONFIG_TRUE) {
        fail_msg("libconfig: %s at line %d", config_error_text(&cfg), config_error_line(&cfg));
    }
    header = config_lookup(&cfg, "header");
    assert_non_null(header);
    if (wh_http_obfs_parse(&cf, header, &c) != WH_OK) {
        c = NULL;
    }
    config_destroy(&cfg);
    return c;
}

static wh_http_obfs_conf_t *
good(const char *text)
{
    wh_http_obfs_conf_t *c = load(text);

    if (c == NULL) {
        fail_msg("refused: %s (%s)", text, cf.error);
    }
    return c;
}

static void
bad(const char *text, int line, const char *what)
{
    wh_http_obfs_conf_t *c = load(text);
    char where[64];

    if (c != NULL) {
        wh_http_obfs_free(c);
        fail_msg("accepted: %s", text);
    }
    snprintf(where, sizeof(where), " in test.conf:%d", line);
    if (strstr(cf.error, what) == NULL || strstr(cf.error, where) == NULL) {
        fail_msg("error \"%s\" lacks \"%s\" or \"%s\"", cf.error, what, where);
    }
}

static void
values_are(const wh_http_obfs_header_t *h, const char *name, size_t n, const char *const *v)
{
    size_t i;

    assert_string_equal(h->name, name);
    assert_int_equal(h->nvalues, n);
    for (i = 0; i < n; i++) {
        assert_string_equal(h->values[i], v[i]);
    }
}

#define VALUES(h, name, ...) do { \
        const char *const v_[] = { __VA_ARGS__ }; \
        values_are(h, name, wh_nelems(v_), v_); \
    } while (0)

#define UA_WIN "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) " \
               "Chrome/53.0.2785.143 Safari/537.36"
#define UA_IOS "Mozilla/5.0 (iPhone; CPU iPhone OS 10_0_2 like Mac OS X) AppleWebKit/601.1 " \
               "(KHTML, like Gecko) CriOS/53.0.2785.109 Mobile/14A456 Safari/601.1.46"

static void
test_defaults(void **state)
{
    wh_http_obfs_conf_t *c = good("header = { type = \"HTTP\"; };");

    assert_string_equal(c->req_version, "1.1");
    assert_string_equal(c->req_method, "GET");
    assert_int_equal(c->npaths, 1);
    assert_string_equal(c->paths[0], "/");
    assert_int_equal(c->nreq_headers, 5);
    VALUES(&c->req_headers[0], "Host", "www.baidu.com", "www.bing.com");
    VALUES(&c->req_headers[1], "User-Agent", UA_WIN, UA_IOS);
    VALUES(&c->req_headers[2], "Accept-Encoding", "gzip, deflate");
    VALUES(&c->req_headers[3], "Connection", "keep-alive");
    VALUES(&c->req_headers[4], "Pragma", "no-cache");

    assert_string_equal(c->resp_version, "1.1");
    assert_string_equal(c->status, "200");
    assert_string_equal(c->reason, "OK");
    assert_int_equal(c->nresp_headers, 5);
    VALUES(&c->resp_headers[0], "Content-Type", "application/octet-stream", "video/mpeg");
    VALUES(&c->resp_headers[1], "Transfer-Encoding", "chunked");
    VALUES(&c->resp_headers[2], "Connection", "keep-alive");
    VALUES(&c->resp_headers[3], "Pragma", "no-cache");
    VALUES(&c->resp_headers[4], "Cache-Control", "private", "no-cache");
    assert_false(c->resp_has_date);
    wh_http_obfs_free(c);

    /* empty strings, an empty path list and empty headers keep the defaults */
    c = good("header = { type = \"http\";\n"
             " request = { version = \"\"; method = \"\"; path = []; headers = {}; };\n"
             " response = { version = \"\"; status = \"\"; reason = \"\"; headers = {}; }; };");
    assert_string_equal(c->req_version, "1.1");
    assert_string_equal(c->req_method, "GET");
    assert_int_equal(c->npaths, 1);
    assert_string_equal(c->paths[0], "/");
    assert_int_equal(c->nreq_headers, 5);
    assert_string_equal(c->status, "200");
    assert_string_equal(c->reason, "OK");
    assert_int_equal(c->nresp_headers, 5);
    wh_http_obfs_free(c);
}

static void
test_string_or_list(void **state)
{
    wh_http_obfs_conf_t *c;

    /* a string is split at every ',', nothing trimmed, empty pieces kept */
    c = good("header = { type = \"http\"; request = { path = \"/a,/b\";\n"
             " headers = { Accept-Encoding = \"gzip, deflate\"; X = \"a,,b,\"; }; }; };");
    assert_int_equal(c->npaths, 2);
    assert_string_equal(c->paths[0], "/a");
    assert_string_equal(c->paths[1], "/b");
    assert_int_equal(c->nreq_headers, 2);
    VALUES(&c->req_headers[0], "Accept-Encoding", "gzip", " deflate");
    VALUES(&c->req_headers[1], "X", "a", "", "b", "");
    wh_http_obfs_free(c);

    /* a list (or array) is verbatim */
    c = good("header = { type = \"http\"; request = { path = [ \"/a,/b\", \"/c\" ];\n"
             " headers = { Accept-Encoding = [ \"gzip, deflate\" ]; Y = ( \"p\", \"q\" ); }; }; };");
    assert_int_equal(c->npaths, 2);
    assert_string_equal(c->paths[0], "/a,/b");
    assert_string_equal(c->paths[1], "/c");
    VALUES(&c->req_headers[0], "Accept-Encoding", "gzip, deflate");
    VALUES(&c->req_headers[1], "Y", "p", "q");
    wh_http_obfs_free(c);

    /* "" is one empty path, not the default */
    c = good("header = { type = \"http\"; request = { path = \"\"; }; };");
    assert_int_equal(c->npaths, 1);
    assert_string_equal(c->paths[0], "");
    wh_http_obfs_free(c);

    /* the response values split the same way */
    c = good("header = { type = \"http\"; response = { headers = { Cache-Control = \"a,b\"; }; }; };");
    VALUES(&c->resp_headers[0], "Cache-Control", "a", "b");
    wh_http_obfs_free(c);
}

static void
test_configured_headers(void **state)
{
    wh_http_obfs_conf_t *c;

    /* a non-empty group replaces the defaults, sorted by byte order of name */
    c = good("header = { type = \"http\";\n"
             " request = { headers = { User-Agent = \"ua\"; Host = \"h\"; accept = \"a\";"
             " Accept = \"A\"; }; };\n"
             " response = { status = \"404\"; headers = { Zed = \"z\"; Date = \"never\";"
             " Content-Type = \"text/html\"; }; }; };");
    assert_int_equal(c->nreq_headers, 4);
    assert_string_equal(c->req_headers[0].name, "Accept");
    assert_string_equal(c->req_headers[1].name, "Host");
    assert_string_equal(c->req_headers[2].name, "User-Agent");
    assert_string_equal(c->req_headers[3].name, "accept");
    assert_string_equal(c->status, "404");
    assert_string_equal(c->reason, "OK");
    assert_int_equal(c->nresp_headers, 3);
    assert_string_equal(c->resp_headers[0].name, "Content-Type");
    assert_string_equal(c->resp_headers[1].name, "Date");
    assert_string_equal(c->resp_headers[2].name, "Zed");
    assert_true(c->resp_has_date);
    wh_http_obfs_free(c);

    c = good("header = { type = \"http\"; response = { reason = \"Gone\";"
             " headers = { date = \"x\"; }; }; };");
    assert_string_equal(c->status, "200");
    assert_string_equal(c->reason, "Gone");
    assert_true(c->resp_has_date);
    wh_http_obfs_free(c);
}

static void
test_config_errors(void **state)
{
    bad("header = { type = \"http\";\n request = {\n pathh = \"/\"; }; };", 3,
        "unknown directive \"pathh\"");
    bad("header = { type = \"http\";\n response = {\n code = \"200\"; }; };", 3,
        "unknown directive \"code\"");
    bad("header = { type = \"http\";\n bogus = 1; };", 2, "unknown directive \"bogus\"");
    bad("header = { type = \"http\"; request = {\n path = 1; }; };", 2,
        "\"path\" must be a string or a list of strings");
    bad("header = { type = \"http\"; request = {\n path = ( \"/a\", 1 ); }; };", 2,
        "\"path\" must be a string or a list of strings");
    bad("header = { type = \"http\"; request = { headers = {\n Host = 1; }; }; };", 2,
        "\"Host\" must be a string or a list of strings");
    bad("header = { type = \"http\"; request = {\n headers = \"Host: x\"; }; };", 2,
        "\"headers\" must be a group");
    bad("header = { type = \"http\"; response = {\n status = 200; }; };", 2,
        "\"status\" must be a string");
    bad("header = { type = \"http\"; request = {\n method = [ \"GET\" ]; }; };", 2,
        "\"method\" must be a string");
    bad("header = { type = \"http\";\n request = \"GET\"; };", 2, "\"request\" must be a group");
    bad("header = {\n type = \"none\"; };", 1, "not of type \"http\"");
}

static ssize_t
request(const wh_http_obfs_conf_t *c, const char *s)
{
    return wh_http_obfs_request(c, (const uint8_t *) s, strlen(s));
}

#define V2RAY_REQUEST "GET / HTTP/1.1\r\nHost: www.bing.com\r\nUser-Agent: " UA_WIN "\r\n" \
                      "Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n" \
                      "Pragma: no-cache\r\n\r\n"

static void
test_request_accepted(void **state)
{
    wh_http_obfs_conf_t *c = good("header = { type = \"http\"; };");
    const char *r = V2RAY_REQUEST "\x05\x01payload";

    /* spec 3.4, observed: the head's length; the payload stays */
    assert_int_equal(request(c, V2RAY_REQUEST), strlen(V2RAY_REQUEST));
    assert_int_equal(request(c, r), strlen(V2RAY_REQUEST));

    /* spec 3.5 step 4: method, version and Host are not checked */
    assert_int_equal(request(c, "POST / HTTP/1.0\r\n\r\n"), 19);
    assert_int_equal(request(c, "PUT /?q=1 HTTP/1.1\r\nX: y\r\n\r\n"), 28);
    wh_http_obfs_free(c);

    /* spec 3.5 step 5, observed */
    c = good("header = { type = \"http\"; request = { path = \"/video\"; }; };");
    assert_int_equal(request(c, "GET /vide%6f HTTP/1.1\r\n\r\n"), 25);
    assert_int_equal(request(c, "GET /video?x=1 HTTP/1.1\r\n\r\n"), 27);
    assert_int_equal(request(c, "GET http://foo/video HTTP/1.1\r\n\r\n"), 33);
    assert_int_equal(request(c, "GET /Video HTTP/1.1\r\n\r\n"), WH_HTTP_OBFS_404);
    assert_int_equal(request(c, "GET /video/ HTTP/1.1\r\n\r\n"), WH_HTTP_OBFS_404);
    assert_int_equal(request(c, "GET / HTTP/1.1\r\n\r\n"), WH_HTTP_OBFS_404);
    wh_http_obfs_free(c);
}

static void
test_request_paths(void **state)
{
    wh_http_obfs_conf_t *c;

    c = good("header = { type = \"http\"; request = { path = \"/a,/b\"; }; };");
    assert_int_equal(request(c, "GET /a HTTP/1.1\r\n\r\n"), 19);
    assert_int_equal(request(c, "GET /b HTTP/1.1\r\n\r\n"), 19);
    assert_int_equal(request(c, "GET /a,/b HTTP/1.1\r\n\r\n"), WH_HTTP_OBFS_404);
    wh_http_obfs_free(c);

    c = good("header = { type = \"http\"; request = { path = [ \"/a,/b\" ]; }; };");
    assert_int_equal(request(c, "GET /a,/b HTTP/1.1\r\n\r\n"), 22);
    assert_int_equal(request(c, "GET /a HTTP/1.1\r\n\r\n"), WH_HTTP_OBFS_404);
    wh_http_obfs_free(c);

    /* "" matches only a target whose URL path is empty */
    c = good("header = { type = \"http\"; request = { path = \"\"; }; };");
    assert_int_equal(request(c, "GET http://foo HTTP/1.1\r\n\r\n"), 27);
    assert_int_equal(request(c, "GET / HTTP/1.1\r\n\r\n"), WH_HTTP_OBFS_404);
    wh_http_obfs_free(c);
}

static void
test_request_errors(void **state)
{
    wh_http_obfs_conf_t *c = good("header = { type = \"http\"; };");
    static char big[WH_HTTP_OBFS_HEAD_MAX + 64];
    size_t n;

    /* garbage, bad version, bad header line (observed rows of spec 3.5) */
    assert_int_equal(request(c, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xaa\xbb"),
                     WH_HTTP_OBFS_400);
    assert_int_equal(request(c, "BAD LINE\r\n"), WH_HTTP_OBFS_400);
    assert_int_equal(request(c, "GET /ind"), WH_HTTP_OBFS_400);
    assert_int_equal(request(c, "GET / HTTP/1.x\r\n\r\n"), WH_HTTP_OBFS_400);
    assert_int_equal(request(c, "GET / HTTP/2\r\nHost: x\r\n\r\n"), WH_HTTP_OBFS_400);
    assert_int_equal(request(c, "GET / HTTP/1.1\r\nBad Line\r\n\r\n"), WH_HTTP_OBFS_400);
    assert_int_equal(request(c, "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), WH_HTTP_OBFS_400);
    assert_int_equal(request(c, "GET /%zz HTTP/1.1\r\n\r\n"), WH_HTTP_OBFS_400);

    /* keep waiting: up to 3 bytes, a head cut at a line end or in a value */
    assert_int_equal(request(c, ""), 0);
    assert_int_equal(request(c, "GET"), 0);
    assert_int_equal(request(c, "GET / HTTP/1.1\r\nHost: x\r\n"), 0);
    assert_int_equal(request(c, "GET / HTTP/1.1\r\nHost: www.bing"), 0);
    /* 4 bytes and nothing before them: Go's plain end of input fails */
    assert_int_equal(request(c, "GET "), WH_HTTP_OBFS_400);
    /* a bare-LF head never completes: V2Ray clients always send CRLF */
    assert_int_equal(request(c, "GET / HTTP/1.1\nHost: x\n\n"), 0);

    /* too long: no CRLFCRLF starting within the first 8192 bytes */
    n = (size_t) sprintf(big, "GET / HTTP/1.1\r\nX: ");
    memset(big + n, 'a', sizeof(big) - n);
    assert_int_equal(wh_http_obfs_request(c, (uint8_t *) big, WH_HTTP_OBFS_HEAD_MAX + 3), 0);
    assert_int_equal(wh_http_obfs_request(c, (uint8_t *) big, WH_HTTP_OBFS_HEAD_MAX + 4),
                     WH_HTTP_OBFS_400);
    memcpy(big + WH_HTTP_OBFS_HEAD_MAX, "\r\n\r\n", 4);
    assert_int_equal(wh_http_obfs_request(c, (uint8_t *) big, WH_HTTP_OBFS_HEAD_MAX + 4),
                     WH_HTTP_OBFS_HEAD_MAX + 4);
    big[WH_HTTP_OBFS_HEAD_MAX] = 'a';
    memcpy(big + WH_HTTP_OBFS_HEAD_MAX + 1, "\r\n\r\n", 4);
    assert_int_equal(wh_http_obfs_request(c, (uint8_t *) big, WH_HTTP_OBFS_HEAD_MAX + 5),
                     WH_HTTP_OBFS_400);
    wh_http_obfs_free(c);
}

static void
test_request_split(void **state)
{
    wh_http_obfs_conf_t *c = good("header = { type = \"http\"; };");
    const char *r = V2RAY_REQUEST "data";
    size_t head = strlen(V2RAY_REQUEST), i;

    /* the caller passes everything received so far, one more byte each
     * time: no prefix is taken for a head or a mismatch. V2Ray's early
     * check (spec 3.5 step 3) fails prefixes that cut a line inside the
     * request line or a header name 4 bytes before their end; those that
     * cut right after a line end wait. */
    for (i = 0; i < head; i++) {
        ssize_t got = wh_http_obfs_request(c, (const uint8_t *) r, i);
        int at_line_end = i >= 6 && r[i - 5] == '\n';

        if ((got != 0 && got != WH_HTTP_OBFS_400) || (i <= 3 && got != 0)
            || (at_line_end && got != 0))
        {
            fail_msg("prefix of %zu bytes: %zd", i, got);
        }
    }
    assert_int_equal(wh_http_obfs_request(c, (const uint8_t *) r, head), head);
    assert_int_equal(wh_http_obfs_request(c, (const uint8_t *) r, head + 4), head);

    /* the usual case: two reads, the second completes the head */
    assert_int_equal(request(c, "GET / HTTP/1.1\r\nHost: www.bing.com\r\n"), 0);
    assert_int_equal(request(c, "GET / HTTP/1.1\r\nHost: www.bing.com\r\n\r\n"), 38);
    wh_http_obfs_free(c);
}

static uint32_t
rnd_zero(void)
{
    return 0;
}

static int rnd_calls;

static uint32_t
rnd_one(void)
{
    rnd_calls++;
    return 1;
}

static void
set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static void
test_response(void **state)
{
    wh_http_obfs_conf_t *c = good("header = { type = \"http\"; };");
    char out[512];
    size_t n;

    set_tz("UTC0");
    n = wh_http_obfs_response(c, T_REF, rnd_zero, out, sizeof(out));
    assert_string_equal(out, "HTTP/1.1 200 OK\r\n"
                             "Content-Type: application/octet-stream\r\n"
                             "Transfer-Encoding: chunked\r\n"
                             "Connection: keep-alive\r\n"
                             "Pragma: no-cache\r\n"
                             "Cache-Control: private\r\n"
                             "Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n"
                             "\r\n");
    assert_int_equal(n, strlen(out));
    assert_true(n <= c->resp_max);

    /* rnd() picks per header with a choice, and only there */
    rnd_calls = 0;
    wh_http_obfs_response(c, T_REF, rnd_one, out, sizeof(out));
    assert_int_equal(rnd_calls, 2);
    assert_non_null(strstr(out, "\r\nContent-Type: video/mpeg\r\n"));
    assert_non_null(strstr(out, "\r\nCache-Control: no-cache\r\n"));

    /* too small: nothing half-written is claimed */
    assert_int_equal(wh_http_obfs_response(c, T_REF, rnd_zero, out, n), 0);
    assert_int_equal(wh_http_obfs_response(c, T_REF, rnd_zero, out, n + 1), n);
    assert_int_equal(wh_http_obfs_response(c, T_REF, rnd_zero, out, 0), 0);
    wh_http_obfs_free(c);

    /* configured: version, status, reason, sorted headers, no Date line when
     * one is configured, an empty list sends an empty value; a value with a
     * comma must be a one-element list (as a string it would be split) */
    c = good("header = { type = \"http\"; response = { version = \"1.0\"; status = \"206\";"
             " reason = \"Partial Content\"; headers = { X-B = \"b\"; X-A = [ \"a1\", \"a2\" ];"
             " date = [ \"Tue, 01 Jan 2030 00:00:00 GMT\" ]; Empty = []; }; }; };");
    rnd_calls = 0;
    n = wh_http_obfs_response(c, T_REF, rnd_one, out, sizeof(out));
    assert_string_equal(out, "HTTP/1.0 206 Partial Content\r\n"
                             "Empty: \r\n"
                             "X-A: a2\r\n"
                             "X-B: b\r\n"
                             "date: Tue, 01 Jan 2030 00:00:00 GMT\r\n"
                             "\r\n");
    assert_int_equal(rnd_calls, 1);
    assert_int_equal(n, strlen(out));
    assert_true(n <= c->resp_max);
    wh_http_obfs_free(c);

    c = good("header = { type = \"http\"; response = { headers = {"
             " Date = \"Tue, 01 Jan 2030 00:00:00 GMT\"; }; }; };");
    wh_http_obfs_response(c, T_REF, rnd_one, out, sizeof(out));
    assert_string_equal(out, "HTTP/1.1 200 OK\r\nDate:  01 Jan 2030 00:00:00 GMT\r\n\r\n");
    wh_http_obfs_free(c);
}

static void
test_date(void **state)
{
    wh_http_obfs_conf_t *c = good("header = { type = \"http\"; response = { headers = {"
                                  " Server = \"x\"; }; }; };");
    char out[256];

    /* the local time, labelled GMT (spec 3.5) */
    set_tz("XST-9");
    wh_http_obfs_response(c, T_REF, rnd_zero, out, sizeof(out));
    assert_string_equal(out, "HTTP/1.1 200 OK\r\nServer: x\r\n"
                             "Date: Tue, 03 Jan 2006 00:04:05 GMT\r\n\r\n");
    set_tz("XST5");
    wh_http_obfs_response(c, 0, rnd_zero, out, sizeof(out));
    assert_string_equal(out, "HTTP/1.1 200 OK\r\nServer: x\r\n"
                             "Date: Wed, 31 Dec 1969 19:00:00 GMT\r\n\r\n");
    set_tz("UTC0");
    wh_http_obfs_response(c, 951782400 + 86399, rnd_zero, out, sizeof(out));
    assert_string_equal(out, "HTTP/1.1 200 OK\r\nServer: x\r\n"
                             "Date: Tue, 29 Feb 2000 23:59:59 GMT\r\n\r\n");
    wh_http_obfs_free(c);
}

static void
test_error_answers(void **state)
{
    char out[WH_HTTP_OBFS_ERROR_MAX];
    size_t n;

    set_tz("UTC0");
    n = wh_http_obfs_error(404, T_REF, out, sizeof(out));
    assert_string_equal(out, "HTTP/1.1 404 Not Found\r\n"
                             "Connection: close\r\n"
                             "Cache-Control: private\r\n"
                             "Content-Length: 0\r\n"
                             "Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n"
                             "\r\n");
    assert_int_equal(n, strlen(out));
    assert_int_equal(wh_http_obfs_error(WH_HTTP_OBFS_404, T_REF, out, sizeof(out)), n);

    n = wh_http_obfs_error(400, T_REF, out, sizeof(out));
    assert_string_equal(out, "HTTP/1.1 400 Bad Request\r\n"
                             "Connection: close\r\n"
                             "Cache-Control: private\r\n"
                             "Content-Length: 0\r\n"
                             "Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n"
                             "\r\n");
    assert_int_equal(n, strlen(out));
    assert_int_equal(wh_http_obfs_error(WH_HTTP_OBFS_400, T_REF, out, sizeof(out)), n);

    assert_int_equal(wh_http_obfs_error(500, T_REF, out, sizeof(out)), 0);
    assert_int_equal(wh_http_obfs_error(400, T_REF, out, n), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_string_or_list),
        cmocka_unit_test(test_configured_headers),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_request_accepted),
        cmocka_unit_test(test_request_paths),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_request_split),
        cmocka_unit_test(test_response),
        cmocka_unit_test(test_date),
        cmocka_unit_test(test_error_answers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

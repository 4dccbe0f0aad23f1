/*
 * test_http_request.c -- the shared HTTP/1.1 request-head parser
 * (src/http/wh_http_request.c) accepts and refuses what Go 1.19's net/http
 * does: readRequest for wh_http_request_parse() and the partial check of
 * spec 3.5 step 3, the server's extra checks, and URL paths (spec 3.5
 * step 5, 4.3 check 4).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "wh_http_request.h"

static wh_http_request_t req;

static const char *
parse(const char *s)
{
    return wh_http_request_parse(s, strlen(s), &req);
}

static void
accepted(const char *s)
{
    const char *err = parse(s);

    if (err != NULL) {
        fail_msg("refused (%s): %s", err, s);
    }
}

static void
refused(const char *s, const char *want)
{
    const char *err = parse(s);

    if (err != want) {
        fail_msg("%s: got \"%s\", want \"%s\"", s, err ? err : "accepted", want);
    }
}

static int
value_is(const char *name, const char *value)
{
    const wh_http_header_t *h = wh_http_header_find(&req, name);

    return h != NULL && h->value_len == strlen(value) && memcmp(h->value, value, h->value_len) == 0;
}

static void
test_v2ray_request(void **state)
{
    accepted("GET / HTTP/1.1\r\nHost: www.bing.com\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; "
             "WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/53.0.2785.143 "
             "Safari/537.36\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"
             "Pragma: no-cache\r\n\r\n");
    assert_int_equal(req.method_len, 3);
    assert_memory_equal(req.method, "GET", 3);
    assert_int_equal(req.target_len, 1);
    assert_memory_equal(req.target, "/", 1);
    assert_int_equal(req.version_major, 1);
    assert_int_equal(req.version_minor, 1);
    assert_int_equal(req.nheaders, 5);
    assert_int_equal(req.headers[0].name_len, 4);
    assert_memory_equal(req.headers[0].name, "Host", 4);
    assert_true(value_is("host", "www.bing.com"));
    assert_true(value_is("ACCEPT-ENCODING", "gzip, deflate"));
    assert_true(value_is("Pragma", "no-cache"));
    assert_null(wh_http_header_find(&req, "Cookie"));
    assert_null(wh_http_header_find(&req, "Hos"));
}

static void
test_accepted_forms(void **state)
{
    /* spec 3.5 step 4: no Host needed, method and version not compared */
    accepted("POST /video HTTP/1.0\r\n\r\n");
    assert_int_equal(req.version_minor, 0);
    assert_int_equal(req.nheaders, 0);
    accepted("GET / HTTP/1.1\r\n\r\n");
    accepted("M-SEARCH * HTTP/1.1\r\n\r\n");
    accepted("get /x HTTP/9.9\r\n\r\n");
    assert_int_equal(req.version_major, 9);
    accepted("GET / HTTP/0.9\r\n\r\n");
    accepted("CONNECT www.google.com:443 HTTP/1.1\r\n\r\n");
    accepted("CONNECT 1.2.3.4:443 HTTP/1.1\r\n\r\n");
    accepted("GET http://u:p@[fe80::1%25en0]:80/p?q HTTP/1.1\r\n\r\n");
    accepted("GET /vid\xc3\xa9o#frag HTTP/1.1\r\n\r\n");

    /* bare LF line ends, an LF-only blank line right before the last CRLF */
    accepted("GET / HTTP/1.1\nHost: x\r\n\r\n");

    /* values lose surrounding blanks, keep inner ones; an empty name is dropped */
    accepted("GET / HTTP/1.1\r\nA:  x  y \t\r\nB:\r\n: nameless\r\n\r\n");
    assert_int_equal(req.nheaders, 2);
    assert_true(value_is("a", "x  y"));
    assert_true(value_is("b", ""));

    /* readRequest leaves header names alone: Go's server checks them */
    accepted("GET / HTTP/1.1\r\nBad Name: v\r\nX: a\x01b\r\n\r\n");

    /* obs-fold: continuation lines belong to the value */
    accepted("GET / HTTP/1.1\r\nA: one\r\n  two\r\n\tthree\r\nB: b\r\n\r\n");
    assert_int_equal(req.nheaders, 2);
    assert_true(value_is("A", "one\r\n  two\r\n\tthree"));
    assert_true(value_is("B", "b"));

    /* Content-Length and Transfer-Encoding that Go lets through */
    accepted("POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n");
    accepted("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length:  5 \r\n\r\n");
    accepted("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n");
    accepted("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nContent-Length: junk\r\n\r\n");
    accepted("POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n");
    accepted("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, Expires\r\n\r\n");
    accepted("POST / HTTP/1.1\r\nTrailer: Content-Length\r\n\r\n");
}

static void
test_request_line(void **state)
{
    refused("GET /\r\n\r\n", wh_http_err_request_line);
    refused("GET\r\n\r\n", wh_http_err_request_line);
    refused("\r\n\r\n", wh_http_err_request_line);
    refused("BAD LINE\r\n\r\n", wh_http_err_request_line);
    refused("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", wh_http_err_request_line);

    refused(" / HTTP/1.1\r\n\r\n", wh_http_err_method);
    refused("GE(T / HTTP/1.1\r\n\r\n", wh_http_err_method);
    refused("G\xc3\x89T / HTTP/1.1\r\n\r\n", wh_http_err_method);

    refused("GET / HTTP/1.x\r\n\r\n", wh_http_err_version);
    refused("GET / HTTP/1.10\r\n\r\n", wh_http_err_version);
    refused("GET / HTTP/10.1\r\n\r\n", wh_http_err_version);
    refused("GET / HTTP/1\r\n\r\n", wh_http_err_version);
    refused("GET / http/1.1\r\n\r\n", wh_http_err_version);
    refused("GET / HTTP/1.1 \r\n\r\n", wh_http_err_version);
    refused("GET /a b HTTP/1.1\r\n\r\n", wh_http_err_version);
    refused("GET  / HTTP/1.1\r\n\r\n", wh_http_err_version);
    refused("GET / HTTP/+.1\r\n\r\n", wh_http_err_version);

    refused("GET  HTTP/1.1\r\n\r\n", wh_http_err_target);
    refused("GET video HTTP/1.1\r\n\r\n", wh_http_err_target);
    refused("GET /vide%6 HTTP/1.1\r\n\r\n", wh_http_err_target);
    refused("GET /%zz HTTP/1.1\r\n\r\n", wh_http_err_target);
    refused("GET :x HTTP/1.1\r\n\r\n", wh_http_err_target);
    refused("GET /a\x7f HTTP/1.1\r\n\r\n", wh_http_err_target);
    refused("GET /a\rb HTTP/1.1\r\n\r\n", wh_http_err_target);
    refused("GET http://[::1/x HTTP/1.1\r\n\r\n", wh_http_err_target);
    refused("GET http://h:8x/ HTTP/1.1\r\n\r\n", wh_http_err_target);
    refused("GET http://h%41/ HTTP/1.1\r\n\r\n", wh_http_err_target);
    refused("GET http://a b@h/ HTTP/1.1\r\n\r\n", wh_http_err_version);
    refused("GET http://a^b@h/ HTTP/1.1\r\n\r\n", wh_http_err_target);
    refused("GET http://h/%g0 HTTP/1.1\r\n\r\n", wh_http_err_target);
    refused("CONNECT h:port HTTP/1.1\r\n\r\n", wh_http_err_target);
}

static void
test_header_lines(void **state)
{
    char big[WH_HTTP_MAX_HEADERS * 8 + 64];
    size_t n;
    int i;

    refused("GET / HTTP/1.1\r\nHost x\r\n\r\n", wh_http_err_header_line);
    refused("GET / HTTP/1.1\r\n Host: x\r\n\r\n", wh_http_err_header_line);
    refused("GET / HTTP/1.1\r\nA: b\r\n\r\r\n\r\n", wh_http_err_header_line);

    n = (size_t) sprintf(big, "GET / HTTP/1.1\r\n");
    for (i = 0; i < WH_HTTP_MAX_HEADERS; i++) {
        n += (size_t) sprintf(big + n, "A%d: v\r\n", i);
    }
    strcpy(big + n, "\r\n");
    accepted(big);
    assert_int_equal(req.nheaders, WH_HTTP_MAX_HEADERS);
    strcpy(big + n, "Z: z\r\n\r\n");
    refused(big, wh_http_err_too_many_headers);

    refused("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", wh_http_err_host_count);

    refused("GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", wh_http_err_transfer_encoding);
    refused("GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            wh_http_err_transfer_encoding);
    refused("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            wh_http_err_transfer_encoding);
    refused("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n \r\n\r\n",
            wh_http_err_transfer_encoding);

    refused("GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", wh_http_err_content_length);
    refused("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", wh_http_err_content_length);
    refused("GET / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", wh_http_err_content_length);
    refused("GET / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n", wh_http_err_content_length);
    refused("GET / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n",
            wh_http_err_content_length);
    refused("GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            wh_http_err_content_length);
    refused("GET / HTTP/1.0\r\nTransfer-Encoding: gzip\r\nContent-Length: x\r\n\r\n",
            wh_http_err_content_length);

    refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTrailer: a, content-length\r\n\r\n",
            wh_http_err_trailer);

    refused("GET / HTTP/1.1\r\nHost: x\r\n", wh_http_err_incomplete);
    refused("", wh_http_err_incomplete);
    refused("GET / HTTP/1.1\n\nJUNK\r\n\r\n", wh_http_err_after_blank);
}

static const char *
server(const char *s)
{
    const char *err = parse(s);

    if (err != NULL) {
        fail_msg("refused (%s): %s", err, s);
    }
    return wh_http_request_check_server(&req);
}

static void
test_server_checks(void **state)
{
    assert_null(server("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"));
    assert_null(server("GET /ws HTTP/1.0\r\n\r\n"));
    assert_null(server("CONNECT h:443 HTTP/1.1\r\n\r\n"));
    assert_null(server("PRI * HTTP/2.0\r\n\r\n"));
    assert_null(server("PRI * HTTP/2.0\r\nTransfer-Encoding: chunked\r\n\r\n"));
    assert_ptr_equal(server("PRI * HTTP/2.0\r\nX: y\r\n\r\n"), wh_http_err_missing_host);
    assert_ptr_equal(server("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), wh_http_err_unsupported_version);
    assert_ptr_equal(server("GET / HTTP/0.9\r\n\r\n"), wh_http_err_unsupported_version);
    assert_ptr_equal(server("GET /ws HTTP/1.1\r\n\r\n"), wh_http_err_missing_host);
    assert_ptr_equal(server("GET http://h/ws HTTP/1.1\r\n\r\n"), wh_http_err_missing_host);
    assert_ptr_equal(server("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), wh_http_err_malformed_host);
    assert_ptr_equal(server("GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n"),
                     wh_http_err_header_name);
    assert_ptr_equal(server("GET / HTTP/1.1\r\nHost: x\r\nA: a\x01\r\n\r\n"),
                     wh_http_err_header_value);
    assert_ptr_equal(server("GET / HTTP/1.1\r\nHost: x\r\nA: a\rb\r\n\r\n"),
                     wh_http_err_header_value);
    /* folded lines are joined by Go: their line breaks are no control bytes */
    assert_null(server("GET / HTTP/1.1\r\nHost: x\r\nA: a\r\n b\n\tc\r\n\r\n"));
    /* headers readRequest consumed are not looked at */
    assert_null(server("GET / HTTP/1.0\r\nTransfer-Encoding: \x01\r\n\r\n"));
    assert_null(server("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                       "Trailer: \x01\r\nContent-Length: \x02\r\n\r\n"));
}

static void
test_partial(void **state)
{
#define PARTIAL(s) wh_http_request_partial_invalid(s, sizeof(s) - 1)
    /* spec 3.5 step 3, observed: these get the 400 at once */
    assert_int_equal(PARTIAL("GET /ind"), 1);
    assert_int_equal(PARTIAL("BAD LINE\r\n"), 1);
    assert_int_equal(PARTIAL("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 1);
    assert_int_equal(PARTIAL("G"), 1);
    assert_int_equal(PARTIAL("GET / HTTP/1.1\r"), 1);
    assert_int_equal(PARTIAL("GET / HTTP/1.1\r\nHo"), 1);
    assert_int_equal(PARTIAL("GET / HTTP/1.1\r\n Host: x"), 1);
    /* a cut line keeps its CR: "\r" alone is no blank line but a bad header line */
    assert_int_equal(PARTIAL("GET / HTTP/1.1\r\nHost: x\r\n\r"), 1);
    /* ... and these keep waiting */
    assert_int_equal(PARTIAL(""), 0);
    assert_int_equal(PARTIAL("GET / HTTP/1.1"), 0);
    assert_int_equal(PARTIAL("GET / HTTP/1.1\r\n"), 0);
    assert_int_equal(PARTIAL("GET / HTTP/1.1\r\nHost: x\r\n"), 0);
    assert_int_equal(PARTIAL("GET / HTTP/1.1\r\nHost: ex"), 0);
    assert_int_equal(PARTIAL("GET / HTTP/1.1\r\nA: x\r\n  "), 0);
    /* a bare-LF head parses: V2Ray would end the header phase, we wait */
    assert_int_equal(PARTIAL("GET / HTTP/1.1\nHost: x\n\nda"), 0);
    /* but one that fails Go's later checks fails */
    assert_int_equal(PARTIAL("GET / HTTP/1.1\nContent-Length: x\n\n"), 1);
#undef PARTIAL
}

static void
path_is(const char *target, const char *want, size_t want_len)
{
    char out[256];
    ssize_t n = wh_http_target_path(target, strlen(target), out, sizeof(out));

    if (n != (ssize_t) want_len || memcmp(out, want, want_len) != 0 || out[n] != '\0') {
        fail_msg("%s: got %zd \"%s\", want \"%s\"", target, n, n >= 0 ? out : "", want);
    }
}

static void
path_bad(const char *target)
{
    char out[256];
    ssize_t n = wh_http_target_path(target, strlen(target), out, sizeof(out));

    if (n != -1) {
        fail_msg("%s: got %zd \"%s\", want -1", target, n, out);
    }
}

static void
test_target_path(void **state)
{
    char out[8];

    /* spec 3.5 step 5, observed */
    path_is("/vide%6f", "/video", 6);
    path_is("/video?x=1", "/video", 6);
    path_is("http://foo/video", "/video", 6);
    path_is("/video", "/video", 6);
    path_is("/wharf%2Dws", "/wharf-ws", 9);
    path_is("/a%2Fb", "/a/b", 4);
    path_is("/a+b%20c", "/a+b c", 6);
    path_is("/%00x", "/\0x", 3);
    path_is("/v?", "/v", 2);
    path_is("/v?a?b", "/v", 2);
    path_is("/a#b", "/a#b", 4);
    path_is("//x/y", "//x/y", 5);
    path_is("HTTP://foo", "", 0);
    path_is("http://foo?x=/y", "", 0);
    path_is("http:/video", "/video", 6);
    path_is("https://u:p@[::1%25eth0]:8443/v", "/v", 2);
    path_is("mailto:x", "", 0);
    path_is("*", "*", 1);

    path_bad("");
    path_bad("video");
    path_bad("/vide%6");
    path_bad("/%zz");
    path_bad("/%");
    path_bad(":x");
    path_bad("/a b\x01");
    path_bad("http://h:x/");
    path_bad("http://[::1/");
    path_bad("http://h%2F/");
    path_bad("http://h%zz/");
    path_bad("1.2.3.4:443");

    /* the output must hold the path and its NUL */
    assert_int_equal(wh_http_target_path("/abcdef", 7, out, 8), 7);
    assert_int_equal(wh_http_target_path("/abcdefg", 8, out, 8), -1);
    assert_int_equal(wh_http_target_path("/abc%64efg", 10, out, 8), -1);
    assert_int_equal(wh_http_target_path("/", 1, out, 0), -1);
}

static void
request_path_is(const char *head, const char *want)
{
    char out[64];
    ssize_t n;

    accepted(head);
    n = wh_http_request_path(&req, out, sizeof(out));
    if (n != (ssize_t) strlen(want) || strcmp(out, want) != 0) {
        fail_msg("%s: got %zd \"%s\", want \"%s\"", head, n, n >= 0 ? out : "", want);
    }
}

static void
test_request_path(void **state)
{
    request_path_is("GET /vide%6f?x=1 HTTP/1.1\r\n\r\n", "/video");
    request_path_is("GET http://foo/video HTTP/1.1\r\n\r\n", "/video");
    /* CONNECT reads its target as an authority unless it starts with '/' */
    request_path_is("CONNECT www.google.com:443 HTTP/1.1\r\n\r\n", "");
    request_path_is("CONNECT 1.2.3.4:443 HTTP/1.1\r\n\r\n", "");
    request_path_is("CONNECT h:1/p HTTP/1.1\r\n\r\n", "/p");
    request_path_is("CONNECT /rpc HTTP/1.1\r\n\r\n", "/rpc");
    request_path_is("CONNECT http://x/y HTTP/1.1\r\n\r\n", "//x/y");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v2ray_request),
        cmocka_unit_test(test_accepted_forms),
        cmocka_unit_test(test_request_line),
        cmocka_unit_test(test_header_lines),
        cmocka_unit_test(test_server_checks),
        cmocka_unit_test(test_partial),
        cmocka_unit_test(test_target_path),
        cmocka_unit_test(test_request_path),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

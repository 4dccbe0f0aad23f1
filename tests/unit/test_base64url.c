/*
 * test_base64url.c -- the one base64url decoder (websocket early data,
 * h2c's HTTP2-Settings), above all at the edges of its output buffer:
 * h2c once decoded a 681+ character value into 512 bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_base64url.h"

#include <openssl/evp.h>
#include <string.h>

/* n bytes 0, 1, 2... encoded as base64url without padding into text */
static size_t
encode(size_t n, char *text)
{
    uint8_t raw[1024];
    size_t i, len;

    for (i = 0; i < n; i++) raw[i] = (uint8_t) (i * 7 + 0xf8);
    len = EVP_EncodeBlock((unsigned char *) text, raw, (int) n);
    while (len > 0 && text[len - 1] == '=') len--;
    for (i = 0; i < len; i++) {
        text[i] = text[i] == '+' ? '-' : text[i] == '/' ? '_' : text[i];
    }
    return len;
}

static void
test_round_trips(void **state)
{
    char text[1400];
    uint8_t out[1024];
    size_t n, len, i;

    for (n = 0; n <= 40; n++) {
        len = encode(n, text);
        assert_int_equal(wh_base64url_decoded_len(len), n);
        assert_int_equal(wh_base64url_decode(text, len, out, sizeof(out)), n);
        for (i = 0; i < n; i++) assert_int_equal(out[i], (uint8_t) (i * 7 + 0xf8));
    }
    /* the URL alphabet: 0xfb 0xff 0xbf is "-_-_" */
    assert_int_equal(wh_base64url_decode("-_-_", 4, out, 3), 3);
    assert_memory_equal(out, "\xfb\xff\xbf", 3);
}

static void
test_refused(void **state)
{
    uint8_t out[16];

    assert_int_equal(wh_base64url_decode("A", 1, out, sizeof(out)), -1);     /* lone char */
    assert_int_equal(wh_base64url_decode("AAAAA", 5, out, sizeof(out)), -1);
    assert_int_equal(wh_base64url_decode("AA==", 4, out, sizeof(out)), -1);  /* padding */
    assert_int_equal(wh_base64url_decode("AB+/", 4, out, sizeof(out)), -1);  /* std alphabet */
    assert_int_equal(wh_base64url_decode("A A", 3, out, sizeof(out)), -1);
    assert_int_equal(wh_base64url_decode(" AAA", 4, out, sizeof(out)), -1);
    assert_int_equal(wh_base64url_decode("AA\0A", 4, out, sizeof(out)), -1);
    assert_int_equal(wh_base64url_decode("", 0, out, 0), 0);
}

/* The output size is checked before a byte is written, at every length
 * around the edge, and nothing past it is touched. */
static void
test_buffer_edge(void **state)
{
    char text[1400];
    uint8_t out[512 + 16];
    size_t n, len;

    for (n = 505; n <= 520; n++) {
        len = encode(n, text);
        memset(out, 0xa5, sizeof(out));
        if (n <= 512) {
            assert_int_equal(wh_base64url_decode(text, len, out, 512), n);
        } else {
            assert_int_equal(wh_base64url_decode(text, len, out, 512), -1);
        }
        for (size_t i = 512; i < sizeof(out); i++) assert_int_equal(out[i], 0xa5);
    }
    /* the h2c case: 696 characters (522 bytes) into 512 */
    len = encode(522, text);
    assert_int_equal(len, 696);
    assert_int_equal(wh_base64url_decode(text, len, out, 512), -1);
    /* a size that is not a multiple of 3 */
    len = encode(5, text);
    assert_int_equal(wh_base64url_decode(text, len, out, 4), -1);
    assert_int_equal(wh_base64url_decode(text, len, out, 5), 5);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_buffer_edge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_inbuf.c -- the receive buffer of the multiplexed streams and codecs
 * (wh_inbuf.h): bytes come out in order across growth and compaction, a
 * drained buffer holds no memory, and the next stream that receives reuses
 * what a drained one grew instead of growing its own from nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_inbuf.h"

static uint8_t *
pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n);
    size_t i;

    assert_non_null(p);
    for (i = 0; i < n; i++) p[i] = (uint8_t) (i * 31 + seed);
    return p;
}

static void
test_order_across_growth(void **state)
{
    wh_inbuf_t ib = { 0 };
    uint8_t *src = pattern(300000, 7), *dst = malloc(300000);
    size_t in = 0, out = 0, n;

    assert_non_null(dst);
    /* frames in, partial reads out: the buffer grows and compacts */
    while (out < 300000) {
        if (in < 300000) {
            n = wh_min((size_t) 16384 + in % 1000, 300000 - in);
            assert_int_equal(wh_inbuf_append(&ib, src + in, n), WH_OK);
            in += n;
        }
        out += wh_inbuf_read(&ib, dst + out, 5000);
    }
    assert_memory_equal(src, dst, 300000);
    assert_int_equal(wh_inbuf_size(&ib), 0);
    assert_null(ib.data);
    free(src);
    free(dst);
}

static void
test_drained_buffer_reused(void **state)
{
    wh_inbuf_t a = { 0 }, b = { 0 };
    uint8_t *src = pattern(200000, 3), dst[4096];
    uint8_t *grown;

    assert_int_equal(wh_inbuf_append(&a, src, 200000), WH_OK);
    grown = a.data;
    while (wh_inbuf_size(&a) > 0) wh_inbuf_read(&a, dst, sizeof(dst));
    assert_null(a.data);                /* idle: nothing held */

    /* another stream's first bytes land in it, already grown */
    assert_int_equal(wh_inbuf_append(&b, src, 100), WH_OK);
    assert_ptr_equal(b.data, grown);
    assert_true(b.cap >= 200000);
    assert_int_equal(wh_inbuf_read(&b, dst, sizeof(dst)), 100);
    assert_memory_equal(dst, src, 100);
    free(src);
}

static void
test_exact_copy(void **state)
{
    wh_inbuf_t ib = { 0 };
    uint8_t dst[16];

    assert_int_equal(wh_inbuf_set(&ib, "early data", 10), WH_OK);
    assert_int_equal(wh_inbuf_size(&ib), 10);
    assert_int_equal(wh_inbuf_read(&ib, dst, 5), 5);
    assert_int_equal(wh_inbuf_read(&ib, dst + 5, sizeof(dst) - 5), 5);
    assert_memory_equal(dst, "early data", 10);
    assert_null(ib.data);
    wh_inbuf_free(&ib);                 /* twice is harmless */
}

/* A reader that reads below straight into the buffer (TLS records):
 * room at the tail, compaction instead of growth when the head is read,
 * and nothing held once the last byte is dropped. */
static void
test_reserve_and_drop(void **state)
{
    wh_inbuf_t ib = { 0 };
    uint8_t *src = pattern(40000, 9), *tail;
    size_t room;

    tail = wh_inbuf_reserve(&ib, 30000, &room);
    assert_non_null(tail);
    assert_true(room >= 30000);
    memcpy(tail, src, 30000);
    ib.len += 30000;
    wh_inbuf_drop(&ib, 25000);
    assert_int_equal(wh_inbuf_size(&ib), 5000);
    /* the read head is moved down rather than the buffer grown */
    {
        uint32_t cap = ib.cap;

        tail = wh_inbuf_reserve(&ib, cap - 5000, &room);
        assert_int_equal(ib.cap, cap);
        assert_int_equal(ib.pos, 0);
        assert_int_equal(room, cap - 5000);
    }
    memcpy(tail, src + 30000, 10000);
    ib.len += 10000;
    assert_memory_equal(ib.data + ib.pos, src + 25000, 15000);
    /* a reservation that finds nothing to put leaves the bytes as they were */
    tail = wh_inbuf_reserve(&ib, 100000, &room);
    assert_true(room >= 100000);
    assert_memory_equal(ib.data + ib.pos, src + 25000, 15000);
    wh_inbuf_drop(&ib, 15000);
    assert_null(ib.data);
    free(src);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_across_growth),
        cmocka_unit_test(test_drained_buffer_reused),
        cmocka_unit_test(test_exact_copy),
        cmocka_unit_test(test_reserve_and_drop),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_quic_stream.c -- the send side of a QUIC stream as the relay fills
 * it (modules/quic/wh_quic_stream.c): what is pending, what the vectors
 * hand to ngtcp2, and how sent and acknowledged bytes move the chunks.
 */
#include "wh_config.h"

#ifdef WH_HAVE_MODULE_QUIC

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_event.h"
#include "../../modules/quic/wh_quic.h"

static uint8_t data[2 * WH_QUIC_CHUNK];

/* a connection that never writes: closing, so nothing is posted */
static wh_quic_conn_t *
fake_conn(void)
{
    wh_quic_conn_t *c = calloc(1, sizeof(*c));

    assert_non_null(c);
    c->sq_tail = &c->sq_head;
    c->closing = 1;
    return c;
}

/* the fake has no runtime for the stream's detach to tell: unhook first */
static void
free_fake(wh_quic_conn_t *c, wh_quic_stream_t *st)
{
    wh_quic_conn_sendq_remove(st);
    st->conn = NULL;
    wh_quic_stream_closed(st, 0);
    wh_stream_close(&st->m.ps.s);       /* the relay's reference, the last */
    free(c);
}

static size_t
vec_bytes(wh_quic_stream_t *st)
{
    ngtcp2_vec vec[4];
    int fin, i, n = wh_quic_stream_vecs(st, vec, 4, &fin);
    size_t total = 0;

    for (i = 0; i < n; i++) total += vec[i].len;
    return total;
}

/* Regression: a chunk sent whole while it was the last one kept the send
 * point; bytes written after it into a new chunk looked sent, the stream
 * left the send queue and stalled until the idle timeout. */
static void
test_bytes_after_a_chunk_sent_whole(void **state)
{
    wh_quic_conn_t *c = fake_conn();
    wh_quic_stream_t *st = wh_quic_stream_new(c, 0);

    assert_int_equal(wh_stream_write(&st->m.ps.s, data, WH_QUIC_CHUNK), WH_QUIC_CHUNK);
    assert_true(wh_quic_stream_pending(st));
    assert_ptr_equal(c->sq_head, st);
    wh_quic_stream_sent(st, WH_QUIC_CHUNK, 0);
    assert_false(wh_quic_stream_pending(st));
    wh_quic_conn_sendq_remove(st);

    assert_int_equal(wh_stream_write(&st->m.ps.s, data, 100), 100);
    assert_true(wh_quic_stream_pending(st));
    assert_ptr_equal(c->sq_head, st);
    assert_int_equal(vec_bytes(st), 100);

    /* the first chunk acknowledged: freed, the second stays */
    wh_quic_stream_acked(st, WH_QUIC_CHUNK);
    assert_int_equal(st->nchunks, 1);
    assert_int_equal(vec_bytes(st), 100);
    wh_quic_stream_sent(st, 100, 0);
    assert_false(wh_quic_stream_pending(st));
    free_fake(c, st);
}

static void
test_window_of_chunks(void **state)
{
    wh_quic_conn_t *c = fake_conn();
    wh_quic_stream_t *st = wh_quic_stream_new(c, 4);
    size_t total = 0;
    ssize_t n;

    /* the relay's writes stop at WH_QUIC_OUT_CHUNKS unacknowledged chunks */
    while ((n = wh_stream_write(&st->m.ps.s, data, sizeof(data))) > 0) total += n;
    assert_int_equal(n, WH_AGAIN);
    assert_int_equal(total, (size_t) WH_QUIC_OUT_CHUNKS * WH_QUIC_CHUNK);
    wh_quic_stream_sent(st, 3 * WH_QUIC_CHUNK + 10, 0);
    wh_quic_stream_acked(st, 2 * WH_QUIC_CHUNK);
    assert_int_equal(st->nchunks, WH_QUIC_OUT_CHUNKS - 2);
    assert_int_equal(wh_stream_write(&st->m.ps.s, data, sizeof(data)), 2 * WH_QUIC_CHUNK);
    free_fake(c, st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_after_a_chunk_sent_whole),
        cmocka_unit_test(test_window_of_chunks),
    };

    wh_event_init(ev_default_loop(0));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* the module is not built: nothing to test */

#include <stdio.h>

int
main(void)
{
    puts("skipped: module not built");
    return 0;
}

#endif

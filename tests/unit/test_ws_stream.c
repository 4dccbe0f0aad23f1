/*
 * test_ws_stream.c -- the server WebSocket stream's writes (wh_ws_stream.c)
 * over a scripted lower stream that takes everything and counts its write
 * calls (no sockets, no event loop).
 *
 * Checks: a relay chunk of 64 KiB goes below in one write, as binary frames
 * of at most one TLS record each whose payloads are the chunk; a longer
 * write takes a write below per chunk; the bytes are the same whatever the
 * size of the write; a lower stream with a writev gets the payloads where
 * the caller has them, never copied; one that takes a little at a time
 * gets the rest of each unit, in order.
 */
#include "wh_config.h"

#ifdef WH_HAVE_MODULE_WS

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_stream.h"

/* module folders are not on the include path: name it from here */
#include "../../modules/ws/wh_ws_stream.h"

#define CHUNK       65536
#define FRAME_MAX   16380       /* a frame and its 4-byte header: one record */

typedef struct {
    wh_stream_t s;
    uint8_t got[4 * CHUNK];
    size_t got_len;
    int writes;
    int writevs;                /* of them, through writev */
    size_t per_write;           /* the most a write takes; 0: all */
    const uint8_t *from, *to;   /* the caller's buffer... */
    size_t copied;              /* ...and the bytes of it a writev took elsewhere */
} lower_t;

static ssize_t
lower_write(wh_stream_t *s, const void *buf, size_t size)
{
    lower_t *l = (lower_t *) s;

    if (l->per_write > 0 && size > l->per_write) {
        size = l->per_write;
        wh_stream_want(s, WH_EV_WRITE);
    }
    assert_true(l->got_len + size <= sizeof(l->got));
    memcpy(l->got + l->got_len, buf, size);
    l->got_len += size;
    l->writes++;
    return size;
}

/* A lower stream that writes from the pieces, as a socket does: the
 * payload pieces must be the caller's bytes, not a copy of them. */
static ssize_t
lower_writev(wh_stream_t *s, const struct iovec *iov, int iovcnt)
{
    lower_t *l = (lower_t *) s;
    size_t len = 0;
    int i;

    for (i = 0; i < iovcnt; i++) {
        const uint8_t *p = iov[i].iov_base;

        if (iov[i].iov_len > 16 && (p < l->from || p + iov[i].iov_len > l->to)) {
            l->copied += iov[i].iov_len;
        }
        memcpy(l->got + l->got_len + len, p, iov[i].iov_len);
        len += iov[i].iov_len;
    }
    l->got_len += len;
    l->writes++;
    l->writevs++;
    return len;
}

static void
lower_wait(wh_stream_t *s, int events)
{
    wh_stream_want(s, events);
}

static void
lower_destroy(wh_stream_t *s)
{
}

static const wh_stream_ops_t lower_ops = {
    .name = "scripted", .write = lower_write, .wait = lower_wait, .destroy = lower_destroy,
};

static const wh_stream_ops_t lower_v_ops = {
    .name = "scripted", .write = lower_write, .writev = lower_writev, .wait = lower_wait,
    .destroy = lower_destroy,
};

/* Parses the server's frames in l->got: each an unmasked final binary
 * frame of at most FRAME_MAX bytes; their payloads go to out. Returns the
 * number of frames. */
static int
unframe(const lower_t *l, uint8_t *out, size_t *out_len)
{
    size_t at = 0, len;
    int frames = 0;

    *out_len = 0;
    while (at < l->got_len) {
        assert_int_equal(l->got[at], 0x82);         /* FIN, binary */
        len = l->got[at + 1];
        assert_true(len <= 126);                    /* unmasked, 16-bit length at most */
        at += 2;
        if (len == 126) {
            len = (size_t) l->got[at] << 8 | l->got[at + 1];
            at += 2;
        }
        assert_true(len > 0 && len <= FRAME_MAX);
        assert_true(at + len <= l->got_len);
        memcpy(out + *out_len, l->got + at, len);
        *out_len += len;
        at += len;
        frames++;
    }
    return frames;
}

/* The frames in l->got carry data[0..n), in order. */
static void
frames_carry(const lower_t *l, const uint8_t *data, size_t n)
{
    static uint8_t back[4 * CHUNK];
    size_t len;

    unframe(l, back, &len);
    assert_int_equal(len, n);
    assert_memory_equal(back, data, n);
}

static void
fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t) (i * 7 + i / 251);
}

static wh_stream_t *
ws_over(lower_t *l, const wh_stream_ops_t *ops)
{
    wh_stream_t *s;

    memset(l, 0, sizeof(*l));
    l->s.ops = ops;
    s = wh_ws_stream(&l->s, NULL, 0);
    assert_non_null(s);
    return s;
}

static void
test_chunk_in_one_write(void **state)
{
    static lower_t l;
    static uint8_t data[CHUNK], back[CHUNK];
    wh_stream_t *s = ws_over(&l, &lower_ops);
    size_t n;

    fill(data, sizeof(data));
    assert_int_equal(wh_stream_write(s, data, sizeof(data)), sizeof(data));
    /* four full frames and one of 16 bytes, in one write */
    assert_int_equal(l.writes, 1);
    assert_int_equal(unframe(&l, back, &n), 5);
    assert_int_equal(n, sizeof(data));
    assert_memory_equal(back, data, n);
    wh_stream_close(s);
}

static void
test_longer_write_a_write_per_chunk(void **state)
{
    static lower_t l;
    static uint8_t data[3 * CHUNK + 100];
    wh_stream_t *s = ws_over(&l, &lower_ops);
    size_t sizes[] = { 1, 4096, FRAME_MAX, FRAME_MAX + 1, CHUNK - 1 }, at = 0, i;

    fill(data, sizeof(data));
    assert_int_equal(wh_stream_write(s, data, sizeof(data)), sizeof(data));
    assert_int_equal(l.writes, 4);
    frames_carry(&l, data, sizeof(data));
    wh_stream_close(s);

    /* writes of other sizes: the same bytes, a write below each */
    s = ws_over(&l, &lower_ops);
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        assert_int_equal(wh_stream_write(s, data + at, sizes[i]), sizes[i]);
        at += sizes[i];
        assert_int_equal(l.writes, (int) i + 1);
    }
    frames_carry(&l, data, at);
    wh_stream_close(s);
}

static void
test_payload_never_copied(void **state)
{
    static lower_t l;
    static uint8_t data[CHUNK + 5];
    wh_stream_t *s = ws_over(&l, &lower_v_ops);

    fill(data, sizeof(data));
    l.from = data;
    l.to = data + sizeof(data);
    assert_int_equal(wh_stream_write(s, data, sizeof(data)), sizeof(data));
    assert_int_equal(l.writevs, 2);
    assert_int_equal(l.copied, 0);
    frames_carry(&l, data, sizeof(data));
    wh_stream_close(s);
}

/* A lower stream that takes a little at a time: what it did not take of a
 * unit waits, the bytes after the header included, and goes out in order
 * before anything else. */
static void
test_partial_writes_keep_the_rest(void **state)
{
    static lower_t l;
    static uint8_t data[2 * CHUNK];
    wh_stream_t *s = ws_over(&l, &lower_ops);
    size_t at = 0;
    ssize_t w;
    int rounds = 0;

    fill(data, sizeof(data));
    l.per_write = 1000;
    while (at < sizeof(data)) {
        w = wh_stream_write(s, data + at, sizeof(data) - at);
        if (w > 0) at += (size_t) w;
        else assert_int_equal(w, WH_AGAIN);
        assert_true(++rounds < 1000);
    }
    l.per_write = 0;
    /* what waits goes out at the next chance */
    assert_int_equal(wh_stream_write(s, data, 0), 0);
    frames_carry(&l, data, sizeof(data));
    wh_stream_close(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_in_one_write),
        cmocka_unit_test(test_longer_write_a_write_per_chunk),
        cmocka_unit_test(test_payload_never_copied),
        cmocka_unit_test(test_partial_writes_keep_the_rest),
    };

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

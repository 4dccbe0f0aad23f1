/*
 * test_steer.c -- the idle-worker steering program (src/cycle/wh_steer.c)
 * in the kernel: a real SO_REUSEPORT group of 40 loopback sockets, the
 * program attached, and connections made with chosen bits in the shared
 * words. Each lands on the socket of a sleeping worker: the one, for every
 * index (the program finds it by halving: each of its six steps is taken),
 * or one of two, both in turn (the connection's hash picks where the
 * search starts); with none asleep, on an accepting worker's; with none
 * accepting either, or only a worker past the sockets, the kernel's hash
 * spreads them. A connection given to a worker, awake or asleep, is
 * counted against its socket, for another worker to take it from there.
 * Loading the program needs root: without it the tests are skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_cycle.h"
#include "wh_steer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#define SOCKS 40

static wh_listener_t ls;
static int fds[SOCKS];
static wh_steer_t steer;
static struct sockaddr_in addr;

static int
setup(void **state)
{
    socklen_t len = sizeof(addr);
    int one = 1;

    (void) state;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int k = 0; k < SOCKS; k++) {
        fds[k] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(fds[k] >= 0);
        assert_int_equal(setsockopt(fds[k], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
        assert_int_equal(bind(fds[k], (struct sockaddr *) &addr, sizeof(addr)), 0);
        assert_int_equal(listen(fds[k], 64), 0);
        if (k == 0) {
            assert_int_equal(getsockname(fds[0], (struct sockaddr *) &addr, &len), 0);
        }
    }
    ls.fds = fds;
    ls.nfds = SOCKS;
    ls.fd = fds[0];
    snprintf(ls.addr_text, sizeof(ls.addr_text), "127.0.0.1:%d", ntohs(addr.sin_port));

    wh_steer_init(&steer, SOCKS, 1);
    if (steer.words != NULL) {
        wh_steer_attach(&steer, &ls, 0, SOCKS);
    }
    return 0;
}

static int
teardown(void **state)
{
    (void) state;
    wh_steer_free(&steer);
    for (int k = 0; k < SOCKS; k++) {
        close(fds[k]);
    }
    return 0;
}

/* One connection: the index of the socket it was queued on. */
static int
lands(void)
{
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), k, a, found = -1;

    assert_true(c >= 0);
    assert_int_equal(connect(c, (struct sockaddr *) &addr, sizeof(addr)), 0);
    for (k = 0; k < SOCKS; k++) {
        a = accept4(fds[k], NULL, NULL, SOCK_CLOEXEC);
        if (a >= 0) {
            assert_int_equal(found, -1);    /* one socket, once */
            found = k;
            close(a);
        } else {
            assert_int_equal(errno, EAGAIN);
        }
    }
    close(c);
    assert_true(found >= 0);
    return found;
}

/* n connections in a row, each to socket k */
static void
lands_always(int k, int n)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(lands(), k);
    }
}

/* 40 connections, each to socket a or b, and each of them gets some
 * (40 to one by chance: odds 2^-39 where the hash's starts split evenly) */
static void
lands_on_both(int a, int b)
{
    int got[2] = { 0, 0 }, k;

    for (int i = 0; i < 40; i++) {
        k = lands();
        assert_true(k == a || k == b);
        got[k == b]++;
    }
    assert_true(got[0] > 0 && got[1] > 0);
}

static void
need_program(void)
{
    if (steer.words == NULL) {
        skip();     /* not root, or no eBPF: wharf falls back to the hash */
    }
}

static void
test_the_one_sleeping_worker(void **state)
{
    (void) state;
    need_program();
    for (int k = 0; k < SOCKS; k++) {
        steer.words[WH_STEER_ASLEEP] = (uint64_t) 1 << k;
        lands_always(k, 5);
    }
    steer.words[WH_STEER_ASLEEP] = 0;
}

/* Two asleep, 3 and 23: every connection goes to one of them, and each
 * gets some (the search finds 23 from 20 of the 40 starts, 3 from the
 * other 20) */
static void
test_one_of_those_sleeping(void **state)
{
    (void) state;
    need_program();
    steer.words[WH_STEER_ASLEEP] = 0;
    wh_steer_mark(&steer, WH_STEER_ASLEEP, 23, 1);
    wh_steer_mark(&steer, WH_STEER_ASLEEP, 3, 1);
    lands_on_both(3, 23);
    wh_steer_mark(&steer, WH_STEER_ASLEEP, 3, 0);
    lands_always(23, 5);
    wh_steer_mark(&steer, WH_STEER_ASLEEP, 23, 0);
    assert_int_equal(steer.words[WH_STEER_ASLEEP], 0);
}

/* Nobody asleep: a worker that accepts, the one or one of two, whichever
 * sleeps being preferred to them all. */
static void
test_accepting_when_none_sleeps(void **state)
{
    (void) state;
    need_program();
    steer.words[WH_STEER_ASLEEP] = 0;
    steer.words[WH_STEER_ACCEPTING] = (uint64_t) 1 << 11;
    lands_always(11, 5);
    wh_steer_mark(&steer, WH_STEER_ACCEPTING, 31, 1);
    lands_on_both(11, 31);
    wh_steer_mark(&steer, WH_STEER_ASLEEP, 2, 1);
    lands_always(2, 5);
    steer.words[WH_STEER_ASLEEP] = steer.words[WH_STEER_ACCEPTING] = 0;
}

/* With nobody asleep or accepting, or only a worker without a socket, the program
 * chooses nothing and the hash spreads the connections (40 on one socket
 * by chance: odds 40^-39). */
static void
test_hash_when_none_sleeps(void **state)
{
    uint64_t words[] = { 0, (uint64_t) 1 << 50 };
    int first, spread;

    (void) state;
    need_program();
    for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
        steer.words[WH_STEER_ASLEEP] = words[w];
        first = lands();
        spread = 0;
        for (int i = 0; i < 40; i++) {
            spread |= lands() != first;
        }
        assert_true(spread);
    }
    steer.words[WH_STEER_ASLEEP] = 0;
}

/* A connection made now, left queued */
static int
queue_one(void)
{
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(c >= 0);
    assert_int_equal(connect(c, (struct sockaddr *) &addr, sizeof(addr)), 0);
    return c;
}

/* Socket k has a connection queued, and no other has; it is taken */
static void
queued_on(int k)
{
    for (int i = 0; i < SOCKS; i++) {
        int a = accept4(fds[i], NULL, NULL, SOCK_CLOEXEC);

        assert_int_equal(a >= 0, i == k);
        if (a >= 0) close(a);
    }
}

static void
test_marked_when_given(void **state)
{
    uint32_t count;
    int c[3];

    (void) state;
    need_program();
    memset((void *) steer.marks, 0, WH_STEER_MAX * sizeof(*steer.marks));
    steer.words[WH_STEER_ASLEEP] = 0;

    /* three to awake 37 (past the first pairs: the skip over unmarked
     * ones); another takes the mark, once, and learns of all three; 37
     * itself does not see its own */
    steer.words[WH_STEER_ACCEPTING] = (uint64_t) 1 << 37;
    for (int i = 0; i < 3; i++) {
        c[i] = queue_one();
    }
    assert_int_equal(wh_steer_marked(&steer, 0, 37, SOCKS, &count), -1);
    assert_int_equal(wh_steer_marked(&steer, 0, 5, 37, &count), -1);  /* not among the first 37 */
    assert_int_equal(wh_steer_marked(&steer, 0, 5, SOCKS, &count), 37);
    assert_int_equal(count, 3);
    assert_int_equal(wh_steer_marked(&steer, 0, 5, SOCKS, &count), -1);
    for (int i = 0; i < 3; i++) {
        queued_on(37);
        close(c[i]);
    }

    /* 11's mark: gone once 11 accepts itself */
    steer.words[WH_STEER_ACCEPTING] = (uint64_t) 1 << 11;
    c[0] = queue_one();
    wh_steer_unmark(&steer, 0, 11);
    assert_int_equal(wh_steer_marked(&steer, 0, 5, SOCKS, &count), -1);
    queued_on(11);
    close(c[0]);

    /* to sleeping 4, counted too (it may wait for a CPU), and still
     * marked while 4 sleeps; rows past the map's: none */
    wh_steer_mark(&steer, WH_STEER_ASLEEP, 4, 1);
    c[0] = queue_one();
    assert_int_equal(wh_steer_marked(&steer, 1, 5, SOCKS, &count), -1);
    assert_int_equal(wh_steer_marked(&steer, 0, 5, SOCKS, &count), 4);
    assert_int_equal(count, 1);
    wh_steer_mark(&steer, WH_STEER_ASLEEP, 4, 0);
    queued_on(4);
    close(c[0]);
    steer.words[WH_STEER_ACCEPTING] = 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_one_sleeping_worker),
        cmocka_unit_test(test_one_of_those_sleeping),
        cmocka_unit_test(test_accepting_when_none_sleeps),
        cmocka_unit_test(test_hash_when_none_sleeps),
        cmocka_unit_test(test_marked_when_given),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

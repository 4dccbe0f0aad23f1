/*
 * test_random.c -- nonces from the buffered generator (src/core/wh_random.c):
 * no nonce repeats across refills, and a forked child never hands out
 * what its parent drew before the fork, so two workers sealing under one
 * key never share a nonce.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wh_random.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define NONCE 12
#define COUNT 1000          /* nonces per side: about three refills */

static int
cmp_nonce(const void *a, const void *b)
{
    return memcmp(a, b, NONCE);
}

static void
draw(uint8_t (*out)[NONCE], size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(wh_random_nonce(out[i], NONCE), WH_OK);
}

static void
test_no_repeat(void **state)
{
    static uint8_t n[COUNT][NONCE];

    (void) state;
    draw(n, COUNT);
    qsort(n, COUNT, NONCE, cmp_nonce);
    for (size_t i = 1; i < COUNT; i++)
        assert_int_not_equal(memcmp(n[i - 1], n[i], NONCE), 0);
}

static void
test_odd_sizes(void **state)
{
    uint8_t a[5000], b[7];

    (void) state;
    /* larger than the buffer, then a size that does not divide it */
    assert_int_equal(wh_random_nonce(a, sizeof(a)), WH_OK);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(wh_random_nonce(b, sizeof(b)), WH_OK);
}

static void
test_child_draws_its_own(void **state)
{
    static uint8_t mine[COUNT][NONCE], child[COUNT][NONCE];
    uint8_t first[NONCE];
    int fds[2], status;
    size_t got = 0;
    ssize_t n;
    pid_t pid;

    (void) state;
    /* the buffer is full of drawn, unused nonces when the worker forks */
    assert_int_equal(wh_random_nonce(first, NONCE), WH_OK);
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        draw(child, COUNT);
        _exit(write(fds[1], child, sizeof(child)) == (ssize_t) sizeof(child) ? 0 : 1);
    }
    close(fds[1]);
    draw(mine, COUNT);
    while (got < sizeof(child)
           && (n = read(fds[0], (uint8_t *) child + got, sizeof(child) - got)) > 0)
        got += (size_t) n;
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(got, sizeof(child));

    qsort(mine, COUNT, NONCE, cmp_nonce);
    for (size_t i = 0; i < COUNT; i++)
        assert_null(bsearch(child[i], mine, COUNT, NONCE, cmp_nonce));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_repeat),
        cmocka_unit_test(test_odd_sizes),
        cmocka_unit_test(test_child_draws_its_own),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_kcp_sched.c -- the per-worker flush heap of the kcp module
 * (modules/kcp/wh_kcp_sched.c): random inserts, moves and deletes keep
 * pops in due order, each entry at most once, and the positions right.
 */
#include "wh_config.h"

#ifdef WH_HAVE_MODULE_KCP

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wh_core.h"

/* module folders are not on the include path: name it from here */
#include "../../modules/kcp/wh_kcp_sched.h"

#define N 2000

static void
check_positions(wh_kcp_sched_t *s)
{
    uint32_t i;

    for (i = 0; i < s->n; i++) {
        assert_int_equal(s->heap[i]->pos, i + 1);
        if (i > 0) assert_true(s->heap[(i - 1) / 2]->due <= s->heap[i]->due);
    }
}

static void
test_heap(void **state)
{
    static wh_kcp_timer_t t[N];
    wh_kcp_sched_t s;
    wh_kcp_timer_t *p;
    uint64_t last = 0;
    int i, n = 0, in = 0;

    memset(&s, 0, sizeof(s));
    memset(t, 0, sizeof(t));
    srand(42);
    for (i = 0; i < N; i++) {
        assert_int_equal(wh_kcp_sched_set(&s, &t[i], rand() % 100000), WH_OK);
    }
    check_positions(&s);
    for (i = 0; i < N; i += 3) {
        wh_kcp_sched_set(&s, &t[i], rand() % 100000);      /* moves, both ways */
    }
    check_positions(&s);
    for (i = 1; i < N; i += 7) {
        wh_kcp_sched_del(&s, &t[i]);
        assert_int_equal(t[i].pos, 0);
    }
    wh_kcp_sched_del(&s, &t[1]);        /* twice: harmless */
    check_positions(&s);
    for (i = 0; i < N; i++) in += t[i].pos != 0;
    assert_int_equal(in, s.n);
    /* nothing is due before its time */
    if (s.heap[0]->due > 0) assert_null(wh_kcp_sched_pop(&s, s.heap[0]->due - 1));
    while ((p = wh_kcp_sched_pop(&s, UINT64_MAX)) != NULL) {
        assert_true(p->due >= last);
        assert_int_equal(p->pos, 0);
        last = p->due;
        n++;
    }
    assert_int_equal(n, in);
    assert_int_equal(s.n, 0);
    wh_kcp_sched_free(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap),
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

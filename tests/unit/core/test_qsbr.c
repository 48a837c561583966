/* SPDX-License-Identifier: MIT */
/* Unit tests for src/core/qsbr.c: nothing is freed while a reader may hold it. */
#include <criterion/criterion.h>

#include "core/qsbr.c"

static int freed;

static void count_free(void *p)
{
    free(p);
    freed++;
}

Test(qsbr, waits_for_online_readers)
{
    int a = qsbr_register(), b = qsbr_register();
    cr_assert(a >= 0 && b >= 0 && a != b);
    freed = 0;
    qsbr_retire(malloc(8), count_free);
    cr_assert_eq(qsbr_reclaim(), 1); /* both readers online at an older epoch */
    qsbr_quiescent(a);
    cr_assert_eq(qsbr_reclaim(), 1); /* b has not passed a quiescent state */
    qsbr_offline(b);                 /* blocked in epoll_wait: holds nothing */
    cr_assert_eq(qsbr_reclaim(), 0);
    cr_assert_eq(freed, 1);
    qsbr_online(b);
    qsbr_retire(malloc(8), count_free);
    qsbr_quiescent(a);
    qsbr_quiescent(b);
    cr_assert_eq(qsbr_reclaim(), 0);
    cr_assert_eq(freed, 2);
    qsbr_unregister(a);
    qsbr_unregister(b);
}

Test(qsbr, drain_all_frees_everything)
{
    int a = qsbr_register();
    freed = 0;
    qsbr_retire(malloc(8), count_free);
    qsbr_retire(malloc(8), count_free);
    qsbr_drain_all();
    cr_assert_eq(freed, 2);
    qsbr_unregister(a);
}

/* SPDX-License-Identifier: MIT */
/* Unit tests for src/http/http_pool.c: objects are reused from the thread's free list, the
 * list is bounded, and buffers are acquired and released at the pooled size. */
#include <criterion/criterion.h>

#include "http/http_pool.c"

Test(http_pool, put_then_get_reuses_the_object)
{
    static _Thread_local struct http_pool p = HTTP_POOL_INIT(100, 2);
    void *a = http_pool_get(&p);
    cr_assert_not_null(a);
    http_pool_put(&p, a);
    cr_assert_eq(http_pool_cached(&p), 1);
    cr_assert_eq(http_pool_get(&p), a);
    cr_assert_eq(http_pool_cached(&p), 0);
    http_pool_put(&p, a);
    http_pool_put(&p, NULL); /* nothing */
    cr_assert_eq(http_pool_cached(&p), 1);
}

Test(http_pool, free_list_is_bounded)
{
    static _Thread_local struct http_pool p = HTTP_POOL_INIT(64, 2);
    void *o[4];
    for (int i = 0; i < 4; i++) {
        o[i] = http_pool_get(&p);
        cr_assert_not_null(o[i]);
    }
    for (int i = 0; i < 4; i++) {
        http_pool_put(&p, o[i]); /* the last two go back to malloc */
    }
    cr_assert_eq(http_pool_cached(&p), 2);
}

Test(http_pool, buffers_are_released_and_acquired_again)
{
    struct buf b = {0};
    cr_assert_eq(http_buf_acquire(&b), 0);
    cr_assert_not_null(b.data);
    cr_assert_eq(b.cap, HTTP_POOL_BUF_SIZE);
    char *first = b.data;
    cr_assert(buf_append_str(&b, "pending"));
    cr_assert_eq(http_buf_acquire(&b), 0); /* has storage: left as it is */
    cr_assert_eq(b.data, first);
    cr_assert_eq(b.len, 7);
    size_t cached = http_buf_pool_cached();
    http_buf_release(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len + b.cap + b.off, 0);
    cr_assert_eq(http_buf_pool_cached(), cached + 1);
    cr_assert_eq(http_buf_acquire(&b), 0);
    cr_assert_eq(b.data, first); /* the same storage, from the pool */
    /* A grown buffer goes back to malloc, not to the pool. */
    cr_assert_eq(buf_grow(&b, 3 * HTTP_POOL_BUF_SIZE), 0);
    cached = http_buf_pool_cached();
    http_buf_release(&b);
    cr_assert_eq(http_buf_pool_cached(), cached);
    http_buf_release(&b); /* twice: nothing */
}

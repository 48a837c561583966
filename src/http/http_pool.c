/* SPDX-License-Identifier: MIT */
/* Per-thread free lists (see http_pool.h). A pool registers itself with its thread on
 * first use; a pthread key's destructor frees every list of a thread that exits. */
#include "http/http_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

/* Buffers kept per thread: 256 x 4 KiB = 1 MiB at most, enough for the requests a worker
 * has in flight at once under load; beyond that they go back to malloc. */
#define BUF_POOL_MAX 256

static _Thread_local struct http_pool buf_pool = HTTP_POOL_INIT(HTTP_POOL_BUF_SIZE, BUF_POOL_MAX);
static _Thread_local struct http_pool *thread_pools; /* registered pools of this thread */

static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void free_list(struct http_pool *p)
{
    while (p->_free != NULL) {
        void *next = *(void **)p->_free;
        free(p->_free);
        p->_free = next;
    }
    p->_n_free = 0;
}

/* Thread exit: free what the thread's pools keep. */
static void on_thread_exit(void *arg)
{
    for (struct http_pool *p = arg; p != NULL; p = p->_next) {
        free_list(p);
    }
}

static void make_key(void)
{
    if (pthread_key_create(&exit_key, on_thread_exit) != 0) {
        abort(); /* at most once per process, at the first request: out of keys is a bug */
    }
}

static void register_pool(struct http_pool *p)
{
    pthread_once(&exit_once, make_key);
    p->_is_registered = true;
    p->_next = thread_pools;
    thread_pools = p;
    (void)pthread_setspecific(exit_key, thread_pools); /* fails only for a bad key */
}

void *http_pool_get(struct http_pool *p)
{
    void *obj = p->_free;
    if (obj != NULL) {
        p->_free = *(void **)obj;
        p->_n_free--;
        return obj;
    }
    if (!p->_is_registered) {
        register_pool(p);
    }
    return malloc(p->obj_size < sizeof(void *) ? sizeof(void *) : p->obj_size);
}

void http_pool_put(struct http_pool *p, void *obj)
{
    if (obj == NULL) {
        return;
    }
    if (p->_n_free >= p->max_free) {
        free(obj);
        return;
    }
    *(void **)obj = p->_free;
    p->_free = obj;
    p->_n_free++;
}

size_t http_pool_cached(const struct http_pool *p)
{
    return p->_n_free;
}

int http_buf_acquire(struct buf *b)
{
    if (b->data != NULL) {
        return 0;
    }
    b->data = http_pool_get(&buf_pool);
    b->off = b->len = 0;
    if (b->data == NULL) {
        b->cap = 0;
        return -ENOMEM;
    }
    b->cap = HTTP_POOL_BUF_SIZE;
    return 0;
}

void http_buf_release(struct buf *b)
{
    if (b->data != NULL) {
        if (b->cap == HTTP_POOL_BUF_SIZE) {
            http_pool_put(&buf_pool, b->data);
        } else {
            free(b->data);
        }
    }
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

size_t http_buf_pool_cached(void)
{
    return buf_pool._n_free;
}

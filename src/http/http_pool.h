/* SPDX-License-Identifier: MIT */
/* Per-thread caches of fixed-size objects for the HTTP hot path: the 4 KiB buffers a
 * connection takes while a request is in flight and gives back when it goes idle, and the
 * per-request exchange. Getting and putting is a pointer pop and push on the calling
 * thread's free list (no lock: an object is put back by the thread that got it, which is
 * how workers use connections). A free list keeps at most max_free objects; the rest go
 * back to malloc. What a thread keeps is freed when it exits. */
#ifndef KEEL_HTTP_HTTP_POOL_H
#define KEEL_HTTP_HTTP_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* The size of a pooled buffer: holds most request and response heads. */
#define HTTP_POOL_BUF_SIZE 4096

/* One free list. Declare it `static _Thread_local` next to its user with HTTP_POOL_INIT;
 * the fields are the pool's. */
struct http_pool {
    size_t obj_size;
    uint32_t max_free;
    uint32_t _n_free;
    void *_free;
    struct http_pool *_next; /* the thread's pools, for the exit cleanup */
    bool _is_registered;
};

#define HTTP_POOL_INIT(size, max)                                                                  \
    {                                                                                              \
        .obj_size = (size), .max_free = (max)                                                      \
    }

/* An object of p->obj_size bytes, uninitialised; NULL on OOM. Never blocks. */
void *http_pool_get(struct http_pool *p);

/* Give back an object of p (NULL: nothing). It stays on the free list or is freed. */
void http_pool_put(struct http_pool *p, void *obj);

/* Give b storage of HTTP_POOL_BUF_SIZE bytes from the thread's buffer pool when it has
 * none (b->data == NULL); a buffer with storage is left as it is. Returns 0 or -ENOMEM. */
int http_buf_acquire(struct buf *b) KEEL_MUST_CHECK;

/* Give b's storage back, discarding any pending bytes: a buffer of HTTP_POOL_BUF_SIZE
 * goes to the pool, a grown one to free(). b is then empty, with no storage. */
void http_buf_release(struct buf *b);

/* Objects on the calling thread's free lists (tests and memory accounting). */
size_t http_pool_cached(const struct http_pool *p);
size_t http_buf_pool_cached(void);

#endif

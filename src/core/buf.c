/* SPDX-License-Identifier: MIT */
/* struct buf allocation. */
#include "core/buf.h"

#include <errno.h>

int buf_init(struct buf *b, size_t cap)
{
    b->data = malloc(cap);
    if (b->data == NULL) {
        b->off = b->len = b->cap = 0;
        return -ENOMEM;
    }
    b->off = 0;
    b->len = 0;
    b->cap = cap;
    return 0;
}

int buf_grow(struct buf *b, size_t cap)
{
    if (cap <= b->cap) {
        return 0;
    }
    buf_compact(b);
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        return -ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void buf_fini(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

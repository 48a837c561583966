/* SPDX-License-Identifier: MIT */
/* struct buf: a byte buffer with a fixed maximum size set at creation.
 * Invariants: 0 <= off <= off + len <= cap; data[off, off+len) holds the pending bytes.
 * Used only through buf_* functions. */
#ifndef KEEL_CORE_BUF_H
#define KEEL_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct buf {
    char *data;
    size_t off; /* start of pending bytes */
    size_t len; /* number of pending bytes */
    size_t cap; /* allocated size, fixed */
};

/* Allocate cap bytes. Returns 0 or -ENOMEM. */
int buf_init(struct buf *b, size_t cap) __attribute__((warn_unused_result));
/* Enlarge the storage to cap bytes, keeping the pending bytes (compacted to the start).
 * For buffers that start small and may grow to a limit their owner enforces (a head that
 * is larger than usual). Returns 0 or -ENOMEM (the buffer is then unchanged). */
int buf_grow(struct buf *b, size_t cap) __attribute__((warn_unused_result));

/* Release the storage; safe on a zeroed or finalized buf. */
void buf_fini(struct buf *b);

static inline char *buf_head(const struct buf *b)
{
    return b->data + b->off;
}

static inline char *buf_tail(const struct buf *b)
{
    return b->data + b->off + b->len;
}

/* Free space after the pending bytes. */
static inline size_t buf_tailroom(const struct buf *b)
{
    return b->cap - b->off - b->len;
}

static inline bool buf_is_empty(const struct buf *b)
{
    return b->len == 0;
}

/* Move pending bytes to the start so that all free space is at the tail. */
static inline void buf_compact(struct buf *b)
{
    if (b->off != 0) {
        if (b->len != 0) {
            memmove(b->data, b->data + b->off, b->len);
        }
        b->off = 0;
    }
}

/* Drop n pending bytes from the head (n <= len). */
static inline void buf_consume(struct buf *b, size_t n)
{
    b->off += n;
    b->len -= n;
    if (b->len == 0) {
        b->off = 0;
    }
}

/* Account n bytes written at the tail (n <= tailroom). */
static inline void buf_commit(struct buf *b, size_t n)
{
    b->len += n;
}

/* Append bytes; false when they do not fit (nothing is written then). */
static inline bool buf_append(struct buf *b, const void *p, size_t n)
{
    if (buf_tailroom(b) < n) {
        buf_compact(b);
        if (buf_tailroom(b) < n) {
            return false;
        }
    }
    memcpy(buf_tail(b), p, n);
    b->len += n;
    return true;
}

static inline bool buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

#endif

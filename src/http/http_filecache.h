/* SPDX-License-Identifier: MIT */
/* A per-worker cache of open static files: a hit skips openat2, fstat and close, so a small
 * file costs the worker one recv, one send and one sendfile. Entries are trusted for
 * HTTP_FILECACHE_VALID_MS (a changed file shows within that time), then looked up again.
 * An entry in use by a connection is never closed under it (reference count). One cache
 * per worker thread: no locks. */
#ifndef KEEL_HTTP_HTTP_FILECACHE_H
#define KEEL_HTTP_HTTP_FILECACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#define HTTP_FILECACHE_SLOTS 512
#define HTTP_FILECACHE_VALID_MS 1000
#define HTTP_FILECACHE_KEY_MAX 300

struct http_filecache_entry {
    char key[HTTP_FILECACHE_KEY_MAX]; /* "genid/frontend/location/path" */
    int fd;                           /* -1: empty slot */
    struct stat st;
    uint64_t expires_ms;
    uint32_t refs; /* connections sending from fd */
};

struct http_filecache {
    struct http_filecache_entry slots[HTTP_FILECACHE_SLOTS];
};

/* NULL on OOM (files are then opened per request). */
struct http_filecache *http_filecache_new(void);
/* Close every fd; entries must be unreferenced (worker exit). NULL allowed. */
void http_filecache_free(struct http_filecache *fc);

/* Build the key of a file; false when it does not fit (do not cache). */
bool http_filecache_key(char *out, uint64_t gen_id, uint32_t frontend, uint32_t location,
                        const char *path);

/* A valid entry for key at now_ms with a reference taken, or NULL. */
struct http_filecache_entry *http_filecache_get(struct http_filecache *fc, const char *key,
                                                uint64_t now_ms);

/* Offer an open regular file to the cache. On success the cache owns fd, a reference is
 * taken for the caller and the entry is returned; NULL when the slot is busy (the caller
 * keeps and later closes fd). */
struct http_filecache_entry *http_filecache_put(struct http_filecache *fc, const char *key, int fd,
                                                const struct stat *st, uint64_t now_ms);

/* Drop a reference taken by get or put. */
void http_filecache_release(struct http_filecache_entry *e);

#endif

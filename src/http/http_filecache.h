/* SPDX-License-Identifier: MIT */
/* A per-worker cache of open static files: a hit skips openat2, fstat and close. A file of
 * at most HTTP_FILECACHE_BODY_MAX bytes is also kept in memory, so a small file costs the
 * worker one recv and one writev (head and body); a larger one a recv, a send and sendfile.
 * The entry also keeps the file's header lines (made once by http_static.c). Entries are
 * trusted for HTTP_FILECACHE_VALID_MS (a changed file shows within that time), then looked
 * up again. An entry in use by a connection is never closed or freed under it (reference
 * count). One cache per worker thread: no locks. */
#ifndef KEEL_HTTP_HTTP_FILECACHE_H
#define KEEL_HTTP_HTTP_FILECACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#define HTTP_FILECACHE_SLOTS 512
#define HTTP_FILECACHE_VALID_MS 1000
#define HTTP_FILECACHE_KEY_MAX 300
/* Files up to this size are kept in memory: at most 512 x 16 KiB = 8 MiB per worker. */
#define HTTP_FILECACHE_BODY_MAX (16u * 1024u)
#define HTTP_FILECACHE_HEADERS_MAX 480

struct http_filecache_entry {
    char key[HTTP_FILECACHE_KEY_MAX]; /* "genid/frontend/location/path" */
    int fd;                           /* -1: empty slot */
    struct stat st;
    uint64_t expires_ms;
    uint32_t refs; /* connections sending from fd or body */
    char *body;    /* the whole file when it is small (st.st_size bytes), else NULL */
    /* The file's header lines, set by its first user (http_static.c); headers_len 0: not yet. */
    char headers[HTTP_FILECACHE_HEADERS_MAX];
    uint32_t headers_len;
    char etag[48];
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
 * taken for the caller and the entry is returned (with the file's bytes in body when it is
 * small and could be read whole); NULL when the slot is busy (the caller keeps and later
 * closes fd). */
struct http_filecache_entry *http_filecache_put(struct http_filecache *fc, const char *key, int fd,
                                                const struct stat *st, uint64_t now_ms);

/* Drop a reference taken by get or put. */
void http_filecache_release(struct http_filecache_entry *e);

#endif

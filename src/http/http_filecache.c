/* SPDX-License-Identifier: MIT */
/* The per-worker open-file cache (see http_filecache.h): direct-mapped slots by key hash. */
#include "http/http_filecache.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct http_filecache *http_filecache_new(void)
{
    struct http_filecache *fc = calloc(1, sizeof(*fc));
    if (fc == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < HTTP_FILECACHE_SLOTS; i++) {
        fc->slots[i].fd = -1;
    }
    return fc;
}

void http_filecache_free(struct http_filecache *fc)
{
    if (fc == NULL) {
        return;
    }
    for (size_t i = 0; i < HTTP_FILECACHE_SLOTS; i++) {
        if (fc->slots[i].fd != -1) {
            close(fc->slots[i].fd);
        }
        free(fc->slots[i].body);
    }
    free(fc);
}

bool http_filecache_key(char *out, uint64_t gen_id, uint32_t frontend, uint32_t location,
                        const char *path)
{
    int n = snprintf(out, HTTP_FILECACHE_KEY_MAX, "%lu/%u/%u/%s", (unsigned long)gen_id, frontend,
                     location, path);
    return n > 0 && n < HTTP_FILECACHE_KEY_MAX;
}

/* FNV-1a: short keys, one thread, no adversary gains anything from collisions but a miss. */
static uint32_t slot_of(const char *key)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
        h = (h ^ *p) * 16777619u;
    }
    return h % HTTP_FILECACHE_SLOTS;
}

struct http_filecache_entry *http_filecache_get(struct http_filecache *fc, const char *key,
                                                uint64_t now_ms)
{
    struct http_filecache_entry *e = &fc->slots[slot_of(key)];
    if (e->fd == -1 || now_ms >= e->expires_ms || strcmp(e->key, key) != 0) {
        return NULL;
    }
    e->refs++;
    return e;
}

/* The whole file when it is small, read once now; NULL when it is larger, empty, or did not
 * read whole (it is changing: sendfile serves it as it is). */
static char *read_small(int fd, const struct stat *st)
{
    if (st->st_size <= 0 || (uint64_t)st->st_size > HTTP_FILECACHE_BODY_MAX) {
        return NULL;
    }
    size_t size = (size_t)st->st_size;
    char *body = malloc(size);
    if (body == NULL) {
        return NULL;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, body + got, size - got, (off_t)got);
        if (n <= 0) {
            free(body);
            return NULL;
        }
        got += (size_t)n;
    }
    return body;
}

struct http_filecache_entry *http_filecache_put(struct http_filecache *fc, const char *key, int fd,
                                                const struct stat *st, uint64_t now_ms)
{
    struct http_filecache_entry *e = &fc->slots[slot_of(key)];
    if (e->fd != -1) {
        if (e->refs > 0) {
            return NULL; /* in use: never close a file a connection is sending */
        }
        close(e->fd);
        free(e->body);
    }
    (void)snprintf(e->key, sizeof(e->key), "%s", key); /* fits: built by http_filecache_key */
    e->fd = fd;
    e->st = *st;
    e->expires_ms = now_ms + HTTP_FILECACHE_VALID_MS;
    e->refs = 1;
    e->body = read_small(fd, st);
    e->headers_len = 0;
    e->etag[0] = '\0';
    return e;
}

void http_filecache_release(struct http_filecache_entry *e)
{
    if (e != NULL && e->refs > 0) {
        e->refs--;
    }
}

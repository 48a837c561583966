/* SPDX-License-Identifier: MIT */
/* Types of a response keel makes itself (a static file, a `return`, a redirect, an error
 * page, later the admin routes): what such a handler reads of the request, and the state it
 * fills, which the connection then sends (http_local.c). The handlers never see the client
 * connection. Types only. */
#ifndef KEEL_HTTP_HTTP_LOCAL_T_H
#define KEEL_HTTP_HTTP_LOCAL_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/http_parse.h"

struct http_filecache;
struct http_filecache_entry;

/* The request, as a local handler sees it. Borrowed for the call. */
struct http_local_req {
    const struct http_msg *msg;
    const char *buf; /* the bytes msg was parsed from */
    enum http_method method;
    const char *served_by;         /* X-Served-By value; "" for none */
    const char *hsts;              /* a Strict-Transport-Security line (TLS only); "" */
    struct http_filecache **cache; /* the worker's open-file cache, created on first use */
    uint64_t gen_id;               /* configuration generation, frontend and location: */
    uint32_t fe_id;                /* the file cache's key */
    uint32_t loc_index;
    uint64_t now_ms;
};

/* The response a local handler prepares: the head (and a small body) in *out, then a file
 * range or a memory body. */
struct http_local_resp {
    struct buf *out; /* the connection's output buffer, borrowed */
    int status;
    bool is_close; /* in: the head says Connection: close; set by the handler when the
                    * response must end the connection (out of memory) */
    int file_fd;   /* -1 when none */
    struct http_filecache_entry *file_entry; /* file_fd belongs to the worker cache */
    uint64_t file_off;
    uint64_t file_left;
    char *mem_body; /* malloc'd (directory listing), or a small file's bytes in file_entry
                     * (mem_is_borrowed); NULL when none */
    size_t mem_len;
    size_t mem_sent;
    bool mem_is_borrowed; /* mem_body belongs to file_entry: not freed */
};

#endif

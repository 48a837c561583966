/* SPDX-License-Identifier: MIT */
/* Static files (see http_static.h). Files are opened with openat2 beneath the location's
 * root (RESOLVE_BENEATH: neither ".." nor a symbolic link can leave it, unless
 * follow_symlinks is on); the path was already normalised, so a request that names ".."
 * never gets here. The body is sent with sendfile by the proxy state machine. */
#include "http/http_static.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "core/buf.h"
#include "core/fdlimit.h"
#include "http/http_filecache.h"
#include "http/http_path.h"

#define LISTING_MAX (1024 * 1024)

int http_location_match(const struct conf_frontend *fe, const char *path, size_t len)
{
    int best = -1;
    size_t best_len = 0;
    for (uint32_t i = 0; i < fe->n_locations; i++) {
        const struct conf_location *loc = &fe->locations[i];
        size_t n = strlen(loc->path);
        if (loc->match == CONF_LOC_EXACT) {
            if (n == len && memcmp(loc->path, path, len) == 0) {
                return (int)i;
            }
        } else if (n <= len && memcmp(loc->path, path, n) == 0 && (best < 0 || n > best_len)) {
            best = (int)i;
            best_len = n;
        }
    }
    return best;
}

/* The Date header value, formatted once per second per thread. */
static const char *date_now(void)
{
    static _Thread_local time_t cached_at = -1;
    static _Thread_local char cached[40];
    time_t now = time(NULL);
    if (now != cached_at) {
        http_date_format(now, cached, sizeof(cached));
        cached_at = now;
    }
    return cached;
}

/* The head as put_head makes it, into dst (NULL, 0: only its length); snprintf's result. */
static int format_head(char *dst, size_t cap, struct http_local_resp *r,
                       const struct http_local_req *q, int status, const char *date, const char *cl,
                       const char *headers, const char *extra)
{
    const char *by = q->served_by;
    return snprintf(dst, cap, "HTTP/1.1 %d %s\r\nDate: %s\r\n%s%s%s%s%s%s%s%s\r\n", status,
                    http_status_reason(status), date, cl, headers, extra,
                    q->hsts != NULL ? q->hsts : "", by[0] != '\0' ? "X-Served-By: " : "", by,
                    by[0] != '\0' ? "\r\n" : "", r->is_close ? "Connection: close\r\n" : "");
}

/* Write the head of a local response: header lines headers then extra (each line ending in
 * CRLF; no fixed bound: out grows to fit, e.g. a Location built from a long path); length
 * UINT64_MAX: no Content-Length (304). Returns false when it wrote a 500 instead (out of
 * memory): the caller then sends no body. */
static bool put_head(struct http_local_resp *r, const struct http_local_req *q, int status,
                     const char *headers, const char *extra, uint64_t length)
{
    char cl[48] = "";
    if (length != UINT64_MAX) {
        (void)snprintf(cl, sizeof(cl), "Content-Length: %lu\r\n", (unsigned long)length);
    }
    r->out->off = r->out->len = 0;
    const char *date = date_now(); /* the same string for both passes */
    int n =
        format_head(buf_tail(r->out), buf_tailroom(r->out), r, q, status, date, cl, headers, extra);
    if (n >= 0 && (size_t)n >= buf_tailroom(r->out)) {
        /* Rare (a long Location): grow to fit and write it again. */
        if (buf_grow(r->out, (size_t)n + 1) != 0) {
            n = -1;
        } else {
            (void)format_head(buf_tail(r->out), buf_tailroom(r->out), r, q, status, date, cl,
                              headers, extra);
        }
    }
    if (n < 0) {
        /* Out of memory: fail closed. */
        r->is_close = true;
        (void)buf_append_str(r->out, "HTTP/1.1 500 Internal Server Error\r\n"
                                     "Content-Length: 0\r\nConnection: close\r\n\r\n");
        r->status = 500;
        return false;
    }
    buf_commit(r->out, (size_t)n);
    r->status = status;
    return true;
}

void http_local_respond(struct http_local_resp *r, const struct http_local_req *q, int status,
                        const char *extra_headers, const char *body, size_t body_len)
{
    bool is_ok = put_head(r, q, status, "Content-Type: text/plain; charset=utf-8\r\n",
                          extra_headers, body_len);
    r->file_fd = -1;
    r->file_left = 0;
    if (!is_ok || q->method == HTTP_METHOD_HEAD || body_len == 0) {
        return;
    }
    if ((buf_tailroom(r->out) < body_len && buf_grow(r->out, r->out->len + body_len) != 0) ||
        !buf_append(r->out, body, body_len)) {
        r->is_close = true; /* out of memory: the client sees a short body, then EOF */
    }
}

static void respond_error(struct http_local_resp *r, const struct http_local_req *q, int status,
                          const char *why)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "%d %s: %s\n", status, http_status_reason(status), why);
    http_local_respond(r, q, status, status == 405 ? "Allow: GET, HEAD\r\n" : "", body,
                       n > 0 ? (size_t)n : 0);
}

/* The head lines and body of a `return` answer, sized from the fields that feed them
 * (lb_conf.c bounds each to its field and keeps CR, LF and, in a URL, spaces out of them):
 * "Location: URL\r\nCache-Control: VALUE\r\n" and "CODE REASON: URL\n". */
#define RETURN_REASON_MAX 40 /* longer than any reason http_status_reason gives */
#define RETURN_HEADERS_SIZE                                                                        \
    (sizeof("Location: \r\n") + sizeof(((struct conf_location *)0)->return_text) +                 \
     sizeof("Cache-Control: \r\n") + sizeof(((struct conf_location *)0)->cache_control))
#define RETURN_BODY_SIZE                                                                           \
    (sizeof("599 : \n") + RETURN_REASON_MAX + sizeof(((struct conf_location *)0)->return_text))

void http_return_respond(struct http_local_resp *r, const struct http_local_req *q,
                         const struct conf_location *loc)
{
    int status = loc->return_status;
    char headers[RETURN_HEADERS_SIZE];
    char body[RETURN_BODY_SIZE];
    int h = 0, n;
    if (status >= 300 && status <= 399 && status != 304) {
        h = snprintf(headers, sizeof(headers), "Location: %s\r\n", loc->return_text);
        n = snprintf(body, sizeof(body), "%d %s: %s\n", status, http_status_reason(status),
                     loc->return_text);
    } else {
        headers[0] = '\0';
        n = snprintf(body, sizeof(body), "%s%s", loc->return_text,
                     loc->return_text[0] != '\0' ? "\n" : "");
    }
    if (h >= 0 && (size_t)h < sizeof(headers) && loc->cache_control[0] != '\0') {
        size_t l = (size_t)h;
        int m =
            snprintf(headers + l, sizeof(headers) - l, "Cache-Control: %s\r\n", loc->cache_control);
        h = m < 0 ? m : h + m;
    }
    if (h < 0 || (size_t)h >= sizeof(headers) || n < 0 || (size_t)n >= sizeof(body)) {
        /* Never with a configuration lb_conf.c accepted: a truncated Location would send the
         * client elsewhere, so nothing goes out but an error. */
        respond_error(r, q, 500, "the return answer does not fit its buffer");
        return;
    }
    http_local_respond(r, q, status, headers, body, (size_t)n);
}

/* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, and the worker
 * with it; O_NOCTTY: a terminal never becomes keel's. Callers fstat the result and serve
 * regular files (and directories) only. */
static int open_beneath(int root_fd, const char *rel, bool follow, int flags)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY),
        .resolve = follow ? 0 : RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, root_fd, rel, &how, sizeof(how));
    if (fd < 0) {
        return -errno;
    }
    if (!fdlimit_data_fd_ok((int)fd)) {
        close((int)fd); /* the control plane's reserve (core/fdlimit.h) */
        return -EMFILE;
    }
    return (int)fd;
}

static int status_for_errno(int err)
{
    switch (-err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
    case ENXIO: /* a unix socket */
        return 404;
    case EACCES:
    case EPERM:
    case EXDEV: /* a symbolic link leads outside the root */
    case ELOOP:
        return 403;
    case EMFILE: /* this node is short of descriptors: try again later */
    case ENFILE:
        return 503;
    default:
        return 500;
    }
}

/* The value of request header name, or NULL. */
static const char *req_header(const struct http_local_req *q, const char *name, size_t *len)
{
    const char *buf = q->buf;
    int i = http_msg_find(q->msg, buf, name, strlen(name));
    if (i < 0) {
        return NULL;
    }
    *len = q->msg->headers[i].value.len;
    return buf + q->msg->headers[i].value.off;
}

/* Whether the client's cached copy is still good (RFC 9110 13.2.2 order). */
static bool not_modified(const struct http_local_req *q, const char *etag, time_t mtime)
{
    size_t len;
    const char *v = req_header(q, "if-none-match", &len);
    if (v != NULL) {
        return http_etag_matches(v, len, etag);
    }
    v = req_header(q, "if-modified-since", &len);
    time_t since;
    return v != NULL && http_date_parse(v, len, &since) == 0 && mtime <= since;
}

/* Whether a Range may apply given If-Range (a strong ETag or the exact date). */
static bool if_range_ok(const struct http_local_req *q, const char *etag, time_t mtime)
{
    size_t len;
    const char *v = req_header(q, "if-range", &len);
    if (v == NULL) {
        return true;
    }
    if (len > 0 && v[0] == '"') {
        return len == strlen(etag) && memcmp(v, etag, len) == 0;
    }
    time_t t;
    return http_date_parse(v, len, &t) == 0 && t == mtime;
}

/* Escape <, >, &, " and ' for HTML text and attribute values. */
static void html_escape(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *s != '\0' && o + 7 < outlen; s++) {
        const char *e = *s == '<'    ? "&lt;"
                        : *s == '>'  ? "&gt;"
                        : *s == '&'  ? "&amp;"
                        : *s == '"'  ? "&quot;"
                        : *s == '\'' ? "&#39;"
                                     : NULL;
        if (e != NULL) {
            size_t l = strlen(e);
            memcpy(out + o, e, l);
            o += l;
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
}

static void listing(struct http_local_resp *r, const struct http_local_req *q, int dir_fd,
                    const char *path)
{
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd == -1 ? NULL : fdopendir(fd);
    if (d == NULL) {
        if (fd != -1) {
            close(fd);
        }
        respond_error(r, q, 403, "directory cannot be listed");
        return;
    }
    char *body = malloc(LISTING_MAX);
    size_t n = 0;
    if (body == NULL) {
        closedir(d);
        respond_error(r, q, 500, "out of memory");
        return;
    }
    char safe[4096];
    html_escape(path, safe, sizeof(safe));
    n += (size_t)snprintf(body, LISTING_MAX,
                          "<!doctype html>\n<title>Index of %s</title>\n<h1>Index of %s</h1>\n"
                          "<ul>\n",
                          safe, safe);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n + 4096 < LISTING_MAX) { /* an entry < 2.5 KiB */
        if (e->d_name[0] == '.') {
            continue; /* hidden files and . / .. are not listed */
        }
        bool is_dir = e->d_type == DT_DIR;
        /* Names are escaped for HTML; links are relative. */
        n += (size_t)snprintf(body + n, LISTING_MAX - n, "<li><a href=\"");
        for (const char *p = e->d_name; *p != '\0' && n + 16 < LISTING_MAX; p++) {
            unsigned char ch = (unsigned char)*p;
            if (ch < 0x21 || ch > 0x7e || strchr("\"<>&%#?'", ch) != NULL) {
                n += (size_t)snprintf(body + n, LISTING_MAX - n, "%%%02X", ch);
            } else {
                body[n++] = (char)ch;
            }
        }
        char text[1600];
        html_escape(e->d_name, text, sizeof(text));
        n += (size_t)snprintf(body + n, LISTING_MAX - n, "%s\">%s", is_dir ? "/" : "", text);
        n += (size_t)snprintf(body + n, LISTING_MAX - n, "%s</a>\n", is_dir ? "/" : "");
    }
    closedir(d);
    n += (size_t)snprintf(body + n, LISTING_MAX - n, "</ul>\n");
    if (!put_head(r, q, 200, "Content-Type: text/html; charset=utf-8\r\n", "", n) ||
        q->method == HTTP_METHOD_HEAD) {
        free(body);
        return;
    }
    r->mem_body = body;
    r->mem_len = n;
    r->mem_sent = 0;
}

/* Whether ch may appear unescaped in a Location path (RFC 3986 pchar and '/'). */
static bool is_path_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("-._~!$&'()*+,;=:@/", ch) != NULL);
}

/* 301 from a directory named without its trailing slash to path + "/". path is decoded, so
 * it is percent-encoded again: a name with CR, LF, '%', '?' or a non-ASCII byte yields one
 * well-formed header line, and the Location names that very directory. */
static void redirect_to_dir(struct http_local_resp *r, const struct http_local_req *q,
                            const char *path, size_t path_len)
{
    static const char prefix[] = "Location: ";
    char *hdr = malloc(sizeof(prefix) + path_len * 3 + 4);
    if (hdr == NULL) {
        respond_error(r, q, 500, "out of memory");
        return;
    }
    size_t n = sizeof(prefix) - 1;
    memcpy(hdr, prefix, n);
    for (size_t i = 0; i < path_len; i++) {
        unsigned char ch = (unsigned char)path[i];
        if (is_path_char(ch)) {
            hdr[n++] = (char)ch;
        } else {
            hdr[n++] = '%';
            hdr[n++] = "0123456789ABCDEF"[ch >> 4];
            hdr[n++] = "0123456789ABCDEF"[ch & 15];
        }
    }
    memcpy(hdr + n, "/\r\n", 4); /* with its NUL */
    http_local_respond(r, q, 301, hdr, "moved: add a trailing slash\n", 28);
    free(hdr);
}

/* Open the file for rel, resolving directories to their index. Returns the fd of a regular
 * file, with *st filled, or a negative errno (-ENOENT for what is neither a regular file nor
 * a directory: FIFO, device, socket); *done when a redirect or listing was sent instead. */
static int open_file(struct http_local_resp *r, const struct http_local_req *q,
                     const struct conf_location *loc, int root_fd, const char *path,
                     size_t path_len, struct stat *st, bool *done)
{
    const char *rel = path_len > 1 ? path + 1 : ".";
    int fd = open_beneath(root_fd, rel, loc->follow_symlinks, O_RDONLY);
    if (fd < 0) {
        return fd;
    }
    if (fstat(fd, st) == -1) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (S_ISREG(st->st_mode)) {
        return fd;
    }
    if (!S_ISDIR(st->st_mode)) {
        close(fd); /* a FIFO, a device or a socket: never read, not found */
        return -ENOENT;
    }
    if (path[path_len - 1] != '/') {
        close(fd);
        redirect_to_dir(r, q, path, path_len);
        *done = true;
        return 0;
    }
    int ifd = open_beneath(fd, loc->index, loc->follow_symlinks, O_RDONLY);
    if (ifd >= 0 && fstat(ifd, st) == 0 && S_ISREG(st->st_mode)) {
        close(fd);
        return ifd;
    }
    if (ifd >= 0) {
        close(ifd);
    }
    if (loc->autoindex) {
        listing(r, q, fd, path);
    } else {
        respond_error(r, q, 403, "directory listing is off");
    }
    close(fd);
    *done = true;
    return 0;
}

/* Swap in FILE.gz when the client takes gzip and it exists. */
/* The header lines of a file response (type, validators, ranges, encoding, Cache-Control)
 * into out, its ETag into etag[48]. Returns their length (snprintf's result). */
static int file_headers(const struct conf_location *loc, const char *type, const struct stat *st,
                        bool is_gz, char etag[48], char *out, size_t size)
{
    char lastmod[40];
    (void)snprintf(etag, 48, "\"%lx-%lx\"", (unsigned long)st->st_mtime,
                   (unsigned long)st->st_size);
    http_date_format(st->st_mtime, lastmod, sizeof(lastmod));
    bool has_cc = loc->cache_control[0] != '\0';
    return snprintf(out, size,
                    "Content-Type: %s\r\nLast-Modified: %s\r\nETag: %s\r\n"
                    "Accept-Ranges: bytes\r\n%s%s%s%s%s",
                    type, lastmod, etag, is_gz ? "Content-Encoding: gzip\r\n" : "",
                    is_gz ? "Vary: Accept-Encoding\r\n" : "", has_cc ? "Cache-Control: " : "",
                    has_cc ? loc->cache_control : "", has_cc ? "\r\n" : "");
}

/* Let go of a file: back to the cache, or closed. */
static void drop_file(int fd, struct http_filecache_entry *entry)
{
    if (entry != NULL) {
        http_filecache_release(entry);
    } else {
        close(fd);
    }
}

/* The calling worker's open-file cache, created on first use; NULL on OOM. */
static struct http_filecache *filecache_of(const struct http_local_req *q)
{
    if (*q->cache == NULL) {
        *q->cache = http_filecache_new();
    }
    return *q->cache;
}

static int try_gzip(const struct http_local_req *q, const struct conf_location *loc, int root_fd,
                    const char *path, size_t path_len, int fd, struct stat *st, bool *is_gz,
                    struct http_filecache_entry **entry)
{
    size_t len;
    const char *ae = req_header(q, "accept-encoding", &len);
    if (!loc->gzip_static || ae == NULL || !http_accepts_gzip(ae, len) || path_len + 4 > 1024) {
        return fd;
    }
    char gz[1030];
    (void)snprintf(gz, sizeof(gz), "%s.gz", path_len > 1 ? path + 1 : ".");
    struct stat gst;
    int gfd = open_beneath(root_fd, gz, loc->follow_symlinks, O_RDONLY);
    if (gfd < 0) {
        return fd;
    }
    if (fstat(gfd, &gst) == 0 && S_ISREG(gst.st_mode)) {
        drop_file(fd, *entry);
        *entry = NULL;
        *st = gst;
        *is_gz = true;
        return gfd;
    }
    close(gfd);
    return fd;
}

/* The regular file for path, from the worker's open-file cache or opened (and cached).
 * Returns its fd with *st and *entry (NULL: not cached, the caller closes fd), or -1 when a
 * response (error, redirect, listing) was prepared instead. */
static int open_cached(struct http_local_resp *r, const struct http_local_req *q,
                       const struct conf_location *loc, int root_fd, const char *path,
                       size_t path_len, struct stat *st, struct http_filecache_entry **entry)
{
    struct http_filecache *fc = filecache_of(q);
    char key[HTTP_FILECACHE_KEY_MAX];
    bool cacheable = fc != NULL && path[path_len - 1] != '/' &&
                     http_filecache_key(key, q->gen_id, q->fe_id, q->loc_index, path);
    *entry = NULL;
    if (cacheable && (*entry = http_filecache_get(fc, key, q->now_ms)) != NULL) {
        *st = (*entry)->st;
        return (*entry)->fd;
    }
    bool done = false;
    int fd = open_file(r, q, loc, root_fd, path, path_len, st, &done);
    if (done) {
        return -1;
    }
    if (fd < 0 || !S_ISREG(st->st_mode)) {
        if (fd >= 0) {
            close(fd);
        }
        int status = fd < 0 ? status_for_errno(fd) : 404;
        respond_error(r, q, status, status == 404 ? "not found" : "forbidden");
        return -1;
    }
    if (cacheable) {
        *entry = http_filecache_put(fc, key, fd, st, q->now_ms);
    }
    return fd;
}

void http_static_respond(struct http_local_resp *r, const struct http_local_req *q,
                         const struct conf_location *loc, int root_fd, const char *path,
                         size_t path_len)
{
    if (q->method != HTTP_METHOD_GET && q->method != HTTP_METHOD_HEAD) {
        respond_error(r, q, 405, "files answer GET and HEAD only");
        return;
    }
    if (root_fd == -1) {
        respond_error(r, q, 404, "not found");
        return;
    }
    struct stat st;
    bool is_gz = false;
    struct http_filecache_entry *entry;
    int fd = open_cached(r, q, loc, root_fd, path, path_len, &st, &entry);
    if (fd < 0) {
        return;
    }
    fd = try_gzip(q, loc, root_fd, path, path_len, fd, &st, &is_gz, &entry);
    char etag[48], headers[1024];
    int hl;
    if (entry != NULL && entry->headers_len != 0) {
        /* Made by the first request for this file: a hit copies them. */
        memcpy(etag, entry->etag, sizeof(etag));
        memcpy(headers, entry->headers, entry->headers_len + 1);
        hl = (int)entry->headers_len;
    } else {
        const char *type = http_mime_type(path[path_len - 1] == '/' ? loc->index : path);
        hl = file_headers(loc, type, &st, is_gz, etag, headers, sizeof(headers));
        if (entry != NULL && hl > 0 && (size_t)hl < sizeof(entry->headers)) {
            memcpy(entry->etag, etag, sizeof(etag));
            memcpy(entry->headers, headers, (size_t)hl + 1);
            entry->headers_len = (uint32_t)hl;
        }
    }
    uint64_t size = (uint64_t)st.st_size, first = 0, last = size == 0 ? 0 : size - 1;
    if (not_modified(q, etag, st.st_mtime)) {
        drop_file(fd, entry);
        (void)put_head(r, q, 304, headers, "", UINT64_MAX); /* no body, no Content-Length */
        return;
    }
    int status = 200;
    size_t rlen;
    const char *range = req_header(q, "range", &rlen);
    if (range != NULL && q->method == HTTP_METHOD_GET && if_range_ok(q, etag, st.st_mtime)) {
        enum http_range_result rr = http_range_parse(range, rlen, size, &first, &last);
        if (rr == HTTP_RANGE_UNSATISFIABLE) {
            drop_file(fd, entry);
            char cr[128];
            (void)snprintf(cr, sizeof(cr), "Content-Range: bytes */%lu\r\n", (unsigned long)size);
            char body[64];
            int n = snprintf(body, sizeof(body), "416 Range Not Satisfiable\n");
            http_local_respond(r, q, 416, cr, body, (size_t)n);
            return;
        }
        if (rr == HTTP_RANGE_OK) {
            status = 206;
            (void)snprintf(headers + hl, sizeof(headers) - (size_t)hl,
                           "Content-Range: bytes %lu-%lu/%lu\r\n", (unsigned long)first,
                           (unsigned long)last, (unsigned long)size);
        }
    }
    uint64_t length = size == 0 ? 0 : last - first + 1;
    if (!put_head(r, q, status, headers, "", length) || q->method == HTTP_METHOD_HEAD ||
        length == 0) {
        drop_file(fd, entry);
        return;
    }
    r->file_entry = entry;
    if (entry != NULL && entry->body != NULL && !is_gz && (uint64_t)entry->st.st_size == size) {
        /* A small file from memory: the head and the body leave in one writev. */
        r->file_fd = -1;
        r->mem_body = entry->body + first;
        r->mem_len = (size_t)length;
        r->mem_sent = 0;
        r->mem_is_borrowed = true;
        return;
    }
    r->file_fd = fd;
    r->file_off = first;
    r->file_left = length;
}

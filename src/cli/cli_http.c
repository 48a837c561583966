/* SPDX-License-Identifier: MIT */
/* A blocking HTTP/1.1 GET with one deadline for the whole exchange: connect, send, read until
 * the server closes, then parse the head with keel's own parser (http/http_parse.c) and take
 * the body as framed by Content-Length or by the close. Chunked bodies are decoded. */
#include "cli/cli_http.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/http_parse.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until the deadline; 0, or -ETIMEDOUT. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            return -ETIMEDOUT;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, (int)left);
        if (rc > 0) {
            return 0;
        }
        if (rc == -1 && errno != EINTR) {
            return -errno;
        }
    }
}

static int connect_by(const struct sockaddr *addr, socklen_t addrlen, long long deadline)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return -errno;
    }
    if (connect(fd, addr, addrlen) == -1) {
        if (errno != EINPROGRESS) {
            int err = errno;
            close(fd);
            return -err;
        }
        int rc = wait_fd(fd, POLLOUT, deadline);
        int err = 0;
        socklen_t el = sizeof(err);
        if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err != 0) {
            rc = -err;
        }
        if (rc != 0) {
            close(fd);
            return rc;
        }
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n, long long deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w == -1 && errno != EAGAIN && errno != EINTR) {
            return -errno;
        }
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Read until EOF into a malloc'd buffer (NUL-terminated). */
static int recv_all(int fd, char **out, size_t *out_len, long long deadline)
{
    size_t cap = 8192, len = 0;
    char *b = malloc(cap);
    if (b == NULL) {
        return -ENOMEM;
    }
    for (;;) {
        if (cap - len < 4096) {
            if (cap >= CLI_HTTP_MAX_BODY + 65536) {
                free(b);
                return -EFBIG;
            }
            char *nb = realloc(b, cap * 2);
            if (nb == NULL) {
                free(b);
                return -ENOMEM;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, b + len, cap - len - 1, 0);
        if (r > 0) {
            len += (size_t)r;
            continue;
        }
        if (r == 0) {
            break;
        }
        if (errno != EAGAIN && errno != EINTR) {
            int err = errno;
            free(b);
            return -err;
        }
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc != 0) {
            free(b);
            return rc;
        }
    }
    b[len] = '\0';
    *out = b;
    *out_len = len;
    return 0;
}

/* Decode a chunked body in place; the decoded length, or -1 if malformed. */
static long dechunk(char *b, size_t n)
{
    size_t in = 0, out = 0;
    for (;;) {
        size_t size = 0;
        int digits = 0;
        while (in < n && http_hex_value(b[in]) >= 0 && digits < 15) {
            size = size * 16 + (size_t)http_hex_value(b[in++]);
            digits++;
        }
        char *eol = memchr(b + in, '\n', n - in);
        if (digits == 0 || eol == NULL) {
            return -1;
        }
        in = (size_t)(eol - b) + 1;
        if (size == 0) {
            return (long)out;
        }
        if (size > n - in) {
            return -1;
        }
        memmove(b + out, b + in, size);
        out += size;
        in += size;
        if (in < n && b[in] == '\r') {
            in++;
        }
        if (in >= n || b[in] != '\n') {
            return -1;
        }
        in++;
    }
}

int cli_http_get(const struct sockaddr *addr, socklen_t addrlen, const char *path, int timeout_ms,
                 int *status, char **body, size_t *len, struct errbuf *eb)
{
    long long deadline = now_ms() + timeout_ms;
    int fd = connect_by(addr, addrlen, deadline);
    if (fd < 0) {
        errbuf_set(eb, "%s", fd == -ETIMEDOUT ? "timed out" : strerror(-fd));
        return fd;
    }
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: keel\r\nUser-Agent: keel-cli\r\n"
                     "Connection: close\r\n\r\n",
                     path);
    char *raw = NULL;
    size_t raw_len = 0;
    int rc = n > 0 && (size_t)n < sizeof(req) ? send_all(fd, req, (size_t)n, deadline) : -EINVAL;
    if (rc == 0) {
        rc = recv_all(fd, &raw, &raw_len, deadline);
    }
    close(fd);
    if (rc != 0) {
        errbuf_set(eb, "%s", rc == -ETIMEDOUT ? "timed out" : strerror(-rc));
        return rc;
    }
    struct http_parser p;
    struct http_msg msg;
    http_parser_init(&p, true, 0, 0);
    if (http_parse_head(&p, raw, raw_len, &msg) != 0) {
        errbuf_set(eb, "bad response: %s", p.error != NULL ? p.error : "incomplete head");
        free(raw);
        return -KEEL_EHTTP_BAD_RESPONSE;
    }
    size_t blen = raw_len - msg.head_len;
    memmove(raw, raw + msg.head_len, blen);
    enum http_body_kind kind = http_response_body_kind(&msg, HTTP_METHOD_GET);
    if (kind == HTTP_BODY_CHUNKED) {
        long d = dechunk(raw, blen);
        if (d < 0) {
            errbuf_set(eb, "bad response: malformed chunked body");
            free(raw);
            return -KEEL_EHTTP_BAD_RESPONSE;
        }
        blen = (size_t)d;
    } else if (kind == HTTP_BODY_LENGTH) {
        if (msg.content_length > blen) {
            errbuf_set(eb, "bad response: body shorter than its Content-Length");
            free(raw);
            return -KEEL_EHTTP_BAD_RESPONSE;
        }
        blen = (size_t)msg.content_length;
    } else if (kind == HTTP_BODY_NONE) {
        blen = 0;
    }
    raw[blen] = '\0';
    *status = msg.status;
    *body = raw;
    *len = blen;
    return 0;
}

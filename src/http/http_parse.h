/* SPDX-License-Identifier: MIT */
/* HTTP/1.1 message parsing (RFC 9112): the request/status line and header section, and the
 * chunked body framing. Pure byte parsers: resumable, no I/O, no copies, no globals. Strict
 * wherever leniency would allow request smuggling. */
#ifndef KEEL_HTTP_HTTP_PARSE_H
#define KEEL_HTTP_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

enum http_method {
    HTTP_METHOD_OTHER = 0,
    HTTP_METHOD_GET,
    HTTP_METHOD_HEAD,
    HTTP_METHOD_POST,
    HTTP_METHOD_PUT,
    HTTP_METHOD_DELETE,
    HTTP_METHOD_OPTIONS,
    HTTP_METHOD_CONNECT,
    HTTP_METHOD_TRACE,
    HTTP_METHOD_PATCH
};

/* A byte range of the message buffer (offsets, so the buffer may move). */
struct http_span {
    uint32_t off;
    uint32_t len;
};

struct http_header {
    struct http_span name;
    struct http_span value; /* leading and trailing OWS excluded */
};

#define HTTP_MAX_HEADERS 128

/* Flags set by http_parse_head from the header section. */
enum http_msg_flag {
    HTTP_F_HAS_CL = 1u << 0,          /* a valid Content-Length is present */
    HTTP_F_CHUNKED = 1u << 1,         /* Transfer-Encoding ends with chunked (requests:
                                       * is exactly chunked, else the parse fails) */
    HTTP_F_HAS_TE = 1u << 2,          /* a Transfer-Encoding header is present */
    HTTP_F_CONN_CLOSE = 1u << 3,      /* Connection: close */
    HTTP_F_CONN_KEEPALIVE = 1u << 4,  /* Connection: keep-alive */
    HTTP_F_CONN_UPGRADE = 1u << 5,    /* Connection: upgrade */
    HTTP_F_EXPECT_CONTINUE = 1u << 6, /* Expect: 100-continue */
    HTTP_F_HAS_HOST = 1u << 7,        /* exactly one Host header */
    HTTP_F_FRAMING_SUSPECT = 1u << 8  /* response had Transfer-Encoding and Content-Length:
                                       * TE wins, but close after it (RFC 9112 section 6.3) */
};

struct http_msg {
    /* request line */
    enum http_method method;
    struct http_span method_span;
    struct http_span target;
    /* status line */
    int status; /* 100..599 */
    struct http_span reason;
    /* both */
    int version_minor; /* HTTP/1.<minor>: 0 or 1 */
    struct http_header headers[HTTP_MAX_HEADERS];
    uint32_t n_headers;
    int host_index;          /* index in headers of Host, -1 if none */
    uint64_t content_length; /* valid when HTTP_F_HAS_CL */
    uint32_t flags;          /* enum http_msg_flag */
    uint32_t head_len;       /* bytes of the head including the final empty line */
};

/* How the body of a message is delimited (RFC 9112 section 6.3). */
enum http_body_kind {
    HTTP_BODY_NONE = 0,   /* no body */
    HTTP_BODY_LENGTH,     /* content_length bytes */
    HTTP_BODY_CHUNKED,    /* chunked coding */
    HTTP_BODY_UNTIL_CLOSE /* response delimited by connection close */
};

/* Resumable parser state for one message head. */
struct http_parser {
    int state;      /* internal */
    uint32_t pos;   /* bytes of the buffer already examined */
    uint32_t mark;  /* internal: start of the current token */
    uint32_t mark2; /* internal */
    bool is_response;
    uint32_t max_line; /* request/status line limit -> KEEL_EHTTP_URI_TOO_LONG */
    uint32_t max_head; /* head size limit -> KEEL_EHTTP_HEAD_TOO_LARGE */
    const char *error; /* short reason after a failure, for logs and error bodies */
    /* internal to http_parse.c */
    uint32_t _line_start;  /* offset of the start line (after leading empty lines) */
    int _err;              /* the error returned, repeated by later calls */
    uint8_t _empty_lines;  /* leading empty lines skipped */
    uint8_t _te_chunked;   /* "chunked" codings seen in Transfer-Encoding */
    uint8_t _te_other;     /* other codings seen in Transfer-Encoding */
    bool _te_last_chunked; /* the last coding seen was "chunked" */
    bool _bad_version;     /* HTTP/x.y other than 1.0 and 1.1 (505 at the line end) */
};

/* Limits used when http_parser_init gets 0. */
#define HTTP_DEFAULT_MAX_LINE 8192u
#define HTTP_DEFAULT_MAX_HEAD 65536u
/* Empty lines (CRLF or LF) skipped before a request line (RFC 9112 section 2.2). */
#define HTTP_MAX_LEADING_EMPTY_LINES 4u

/* Prepare to parse a request (is_response false) or a response head. max_line bounds the
 * request/status line (bytes before its CRLF or LF), max_head the whole head including
 * leading empty lines and the final empty line; 0 picks the defaults above. Both limits
 * fail as soon as a byte beyond them arrives, not when the line or head ends. */
void http_parser_init(struct http_parser *p, bool is_response, uint32_t max_line,
                      uint32_t max_head);

/* Parse the head in buf[0, len). buf holds the message from its first byte; between calls it
 * may grow (and move) but earlier bytes never change, and msg must be the same object: it is
 * filled as bytes arrive, is valid only after a 0 return, and its spans are offsets into buf.
 * Feeding the bytes in any number of calls gives the same result. Returns 0 when the head is
 * complete (msg->head_len set; bytes after it are body or the next message), -EAGAIN when
 * more bytes are needed, or -KEEL_EHTTP_* on malformed input (p->error says why). Requests:
 * leading empty lines are skipped; 1.1 requires exactly one Host; CL with TE, differing CLs,
 * bad chunked placement, obs-fold, invalid names/values, bare CR, NUL are rejected. In
 * response mode every failure is -KEEL_EHTTP_BAD_RESPONSE. After 0 or an error, later calls
 * return the same result. Pipelining: parse the next message with a fresh parser and msg on
 * the buffer starting where this one (head_len + body) ended. Never blocks. */
int http_parse_head(struct http_parser *p, const char *buf, size_t len,
                    struct http_msg *msg) KEEL_MUST_CHECK;

/* The HTTP status that answers a -KEEL_EHTTP_* parse error (400, 414, 431, 501, 505; 502 for
 * KEEL_EHTTP_BAD_RESPONSE; 400 for anything else). */
int http_parse_error_status(int err);

/* Body framing of a parsed request, or of a response to a request with req_method
 * (RFC 9112 6.3). Requests: chunked, else LENGTH when Content-Length is present (even 0),
 * else NONE. Responses: NONE for HEAD, 1xx, 204, 304 and 2xx to CONNECT (a tunnel), then
 * chunked, UNTIL_CLOSE when Transfer-Encoding does not end in chunked, LENGTH, UNTIL_CLOSE. */
enum http_body_kind http_request_body_kind(const struct http_msg *msg);
enum http_body_kind http_response_body_kind(const struct http_msg *msg,
                                            enum http_method req_method);

/* Whether the connection may stay open after this message (version + Connection, and not
 * HTTP_F_FRAMING_SUSPECT). The caller must also close after an UNTIL_CLOSE body. */
bool http_msg_keepalive(const struct http_msg *msg);

/* Find the first header named name (case-insensitive); -1 if absent. */
int http_msg_find(const struct http_msg *msg, const char *buf, const char *name, size_t name_len);

/* Case-insensitive comparison of a span with a string. */
bool http_span_eq(const char *buf, struct http_span s, const char *str, size_t len);

/* The value of the first header named name (case-insensitive) in head[0, len), a serialized
 * head keel wrote itself (one "Name: value" per CRLF-terminated line after the start line),
 * without its OWS; its length in *value_len. NULL when absent. Any bytes are safe to scan:
 * the result always lies inside head. */
const char *http_head_value(const char *head, size_t len, const char *name, size_t name_len,
                            size_t *value_len);

/* Whether a comma-separated header value list contains token (case-insensitive). */
bool http_list_has_token(const char *value, size_t value_len, const char *token, size_t token_len);

/* Resumable chunked-body scanner (RFC 9112 section 7.1). It tracks framing only; the
 * caller forwards the raw bytes it consumed. */
struct http_chunked {
    int state;            /* internal */
    uint64_t remaining;   /* data bytes left in the current chunk */
    uint32_t line_len;    /* bytes of the current size/trailer line, bounded */
    uint32_t trailer_len; /* bytes of trailer section, bounded */
    uint32_t digits;      /* hex digits seen in the current size */
    const char *error;
};

/* Bounds of the chunked framing: a size line (size and extensions, without the CRLF) and
 * the whole trailer section (its final CRLF included). */
#define HTTP_CHUNK_MAX_LINE 4096u
#define HTTP_CHUNK_MAX_TRAILER 16384u

/* Prepare c to scan a chunked body from its first byte. */
void http_chunked_init(struct http_chunked *c);

/* Callback for the data bytes inside chunks (for de-chunking); may be NULL. */
typedef void (*http_chunk_data_fn)(void *ctx, const char *data, size_t len);

/* Scan buf[0, len), the next bytes of a chunked body. Returns 0 when the last chunk and the
 * trailer section are complete, with *consumed = bytes up to and including the final CRLF;
 * -EAGAIN when all len bytes were consumed and more are needed; -KEEL_EHTTP_BAD_REQUEST on
 * malformed framing (bad hex, size overflow, missing CRLF, bare LF, over-long lines or
 * trailers; *consumed is then the offset of the offending byte; the proxy maps this to 502
 * for responses). on_data, if not NULL, sees every chunk data byte in order, one call per
 * contiguous run. After 0 or an error, later calls return the same code with *consumed 0.
 * Trailer fields are checked for syntax only; their names are not inspected. Never blocks. */
int http_chunked_scan(struct http_chunked *c, const char *buf, size_t len, size_t *consumed,
                      http_chunk_data_fn on_data, void *ctx) KEEL_MUST_CHECK;

/* The value of a hexadecimal digit, or -1 (chunk sizes, percent-encoding). */
static inline int http_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Method name -> enum (exact, case-sensitive per RFC 9110). */
enum http_method http_method_from(const char *s, size_t len);
const char *http_method_name(enum http_method m);

/* Methods whose requests may be retried on another server (RFC 9110 section 9.2.2). */
bool http_method_is_idempotent(enum http_method m);

/* Standard reason phrase for a status, "Unknown" if none. */
const char *http_status_reason(int status);

#endif

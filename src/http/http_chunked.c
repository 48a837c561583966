/* SPDX-License-Identifier: MIT */
/* Chunked transfer coding scanner (RFC 9112 section 7.1): follows the framing of a chunked
 * body as its bytes pass through, reports the chunk data, and finds where the body ends.
 * It never copies or rewrites; the proxy forwards the raw bytes. The head parser is
 * http_parse.c. */
#include "http/http_parse.h"

#include <errno.h>
#include <string.h>

/* Scanner states. The size line and trailer states are strict: CRLF only, because the
 * framing is forwarded as is and a lenient hop next to a strict one is a smuggling vector. */
enum http_chunked_state {
    CS_SIZE_START = 0, /* first HEXDIG of chunk-size (RFC 9112 7.1) */
    CS_SIZE,           /* more HEXDIG, ';', BWS or CR */
    CS_EXT_PRE_SEMI,   /* BWS seen, ';' expected (RFC 9112 7.1.1) */
    CS_EXT_NAME_START, /* after ';': BWS then chunk-ext-name */
    CS_EXT_NAME,       /* chunk-ext-name = token */
    CS_EXT_POST_NAME,  /* BWS after the name: '=' or ';' */
    CS_EXT_VAL_START,  /* after '=': BWS then token or quoted-string */
    CS_EXT_VAL_TOKEN,  /* chunk-ext-val as a token */
    CS_EXT_QUOTED,     /* inside a quoted-string (RFC 9110 5.6.4) */
    CS_EXT_QUOTED_ESC, /* after a backslash in a quoted-string */
    CS_EXT_POST_VAL,   /* after a value: ';', BWS or CR */
    CS_SIZE_LF,        /* CR of the size line seen, LF expected */
    CS_DATA,           /* chunk-data, c->remaining bytes left */
    CS_DATA_CR,        /* CR after chunk-data expected */
    CS_DATA_LF,        /* LF after chunk-data expected */
    CS_TRAILER_START,  /* start of a trailer field line or the final CRLF (RFC 9112 7.1.2) */
    CS_TRAILER_NAME,   /* field-name, ':' follows directly */
    CS_TRAILER_VALUE,  /* field-value up to CR */
    CS_TRAILER_LF,     /* CR of a trailer line seen, LF expected */
    CS_FINAL_LF,       /* CR of the final empty line seen, LF expected */
    CS_DONE,           /* body complete */
    CS_ERROR           /* malformed, stays so */
};

/* Result of one framing byte besides negative errors. */
#define BYTE_MORE 0
#define BYTE_DONE 1

static bool is_tchar(unsigned char c)
{
    static const char specials[] = "!#$%&'*+-.^_`|~";

    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        return true;
    }
    return c != '\0' && memchr(specials, c, sizeof(specials) - 1) != NULL;
}

/* field-vchar, SP or HTAB (RFC 9110 5.5). */
static bool is_value_char(unsigned char c)
{
    return c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f);
}

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static int chunked_bad(struct http_chunked *c, const char *why)
{
    c->error = why;
    return -KEEL_EHTTP_BAD_REQUEST;
}

/* chunk-size: at most 16 HEXDIG, so it always fits 64 bits. */
static int size_digit(struct http_chunked *c, unsigned char ch)
{
    int d = http_hex_value((unsigned char)ch);

    if (d < 0) {
        return chunked_bad(c, "invalid chunk size");
    }
    if (++c->digits > 16) {
        return chunked_bad(c, "chunk size overflow");
    }
    c->remaining = (c->remaining << 4) | (uint64_t)d;
    c->state = CS_SIZE;
    return BYTE_MORE;
}

/* A byte ending a token (size, name or value) of the size line. */
static int size_line_delim(struct http_chunked *c, unsigned char ch, bool after_name)
{
    if (ch == ';') {
        c->state = CS_EXT_NAME_START;
    } else if (is_ows(ch)) {
        c->state = after_name ? CS_EXT_POST_NAME : CS_EXT_PRE_SEMI;
    } else if (ch == '=' && after_name) {
        c->state = CS_EXT_VAL_START;
    } else if (ch == '\r') {
        c->state = CS_SIZE_LF;
    } else if (ch == '\n') {
        return chunked_bad(c, "bare lf in chunk size line");
    } else {
        return chunked_bad(c, "invalid chunk size line");
    }
    return BYTE_MORE;
}

/* chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ) (RFC 9112 7.1.1). */
static int ext_byte(struct http_chunked *c, unsigned char ch)
{
    switch (c->state) {
    case CS_EXT_PRE_SEMI:
    case CS_EXT_POST_NAME:
        if (is_ows(ch)) {
            return BYTE_MORE;
        }
        if (ch == ';' || (ch == '=' && c->state == CS_EXT_POST_NAME)) {
            c->state = ch == ';' ? CS_EXT_NAME_START : CS_EXT_VAL_START;
            return BYTE_MORE;
        }
        return chunked_bad(c, "invalid chunk extension");
    case CS_EXT_NAME_START:
    case CS_EXT_VAL_START:
        if (is_ows(ch)) {
            return BYTE_MORE;
        }
        if (ch == '"' && c->state == CS_EXT_VAL_START) {
            c->state = CS_EXT_QUOTED;
            return BYTE_MORE;
        }
        if (!is_tchar(ch)) {
            return chunked_bad(c, "invalid chunk extension");
        }
        c->state = c->state == CS_EXT_NAME_START ? CS_EXT_NAME : CS_EXT_VAL_TOKEN;
        return BYTE_MORE;
    case CS_EXT_NAME:
    case CS_EXT_VAL_TOKEN:
        if (is_tchar(ch)) {
            return BYTE_MORE;
        }
        return size_line_delim(c, ch, c->state == CS_EXT_NAME);
    case CS_EXT_QUOTED:
        if (ch == '"') {
            c->state = CS_EXT_POST_VAL;
        } else if (ch == '\\') {
            c->state = CS_EXT_QUOTED_ESC;
        } else if (!is_value_char(ch)) {
            return chunked_bad(c, "invalid chunk extension");
        }
        return BYTE_MORE;
    case CS_EXT_QUOTED_ESC:
        if (!is_value_char(ch)) {
            return chunked_bad(c, "invalid chunk extension");
        }
        c->state = CS_EXT_QUOTED;
        return BYTE_MORE;
    default: /* CS_EXT_POST_VAL */
        return size_line_delim(c, ch, false);
    }
}

/* One byte of a size line, chunk-data CRLF included. */
static int size_line_byte(struct http_chunked *c, unsigned char ch)
{
    /* line_len counts the size line without its CRLF. */
    if (c->state != CS_SIZE_LF && c->state != CS_DATA_CR && c->state != CS_DATA_LF && ch != '\r' &&
        ++c->line_len > HTTP_CHUNK_MAX_LINE) {
        return chunked_bad(c, "chunk size line too long");
    }
    switch (c->state) {
    case CS_SIZE_START:
        return size_digit(c, ch);
    case CS_SIZE:
        if (http_hex_value((unsigned char)ch) >= 0) {
            return size_digit(c, ch);
        }
        return size_line_delim(c, ch, false);
    case CS_SIZE_LF:
        if (ch != '\n') {
            return chunked_bad(c, "bare cr in chunk size line");
        }
        c->state = c->remaining == 0 ? CS_TRAILER_START : CS_DATA;
        return BYTE_MORE;
    case CS_DATA_CR:
        if (ch != '\r') {
            return chunked_bad(c, "missing crlf after chunk data");
        }
        c->state = CS_DATA_LF;
        return BYTE_MORE;
    case CS_DATA_LF:
        if (ch != '\n') {
            return chunked_bad(c, "missing crlf after chunk data");
        }
        c->state = CS_SIZE_START;
        c->line_len = 0;
        c->digits = 0;
        return BYTE_MORE;
    default:
        return ext_byte(c, ch);
    }
}

/* trailer-section = *( field-line CRLF ), validated like header fields (RFC 9112 7.1.2). */
static int trailer_byte(struct http_chunked *c, unsigned char ch)
{
    if (++c->trailer_len > HTTP_CHUNK_MAX_TRAILER) {
        return chunked_bad(c, "trailer section too large");
    }
    switch (c->state) {
    case CS_TRAILER_START:
        if (ch == '\r') {
            c->state = CS_FINAL_LF;
        } else if (is_tchar(ch)) {
            c->state = CS_TRAILER_NAME;
        } else if (ch == '\n') {
            return chunked_bad(c, "bare lf in trailer section");
        } else if (is_ows(ch)) {
            return chunked_bad(c, "obs-fold in trailer section");
        } else {
            return chunked_bad(c, "invalid trailer field name");
        }
        return BYTE_MORE;
    case CS_TRAILER_NAME:
        if (ch == ':') {
            c->state = CS_TRAILER_VALUE;
        } else if (!is_tchar(ch)) {
            return chunked_bad(c, "invalid trailer field name");
        }
        return BYTE_MORE;
    case CS_TRAILER_VALUE:
        if (ch == '\r') {
            c->state = CS_TRAILER_LF;
        } else if (!is_value_char(ch)) {
            return chunked_bad(c, "invalid trailer field value");
        }
        return BYTE_MORE;
    case CS_TRAILER_LF:
        if (ch != '\n') {
            return chunked_bad(c, "bare cr in trailer section");
        }
        c->state = CS_TRAILER_START;
        return BYTE_MORE;
    default: /* CS_FINAL_LF */
        if (ch != '\n') {
            return chunked_bad(c, "bare cr in trailer section");
        }
        c->state = CS_DONE;
        return BYTE_DONE;
    }
}

void http_chunked_init(struct http_chunked *c)
{
    memset(c, 0, sizeof(*c));
    c->state = CS_SIZE_START;
}

int http_chunked_scan(struct http_chunked *c, const char *buf, size_t len, size_t *consumed,
                      http_chunk_data_fn on_data, void *ctx)
{
    const unsigned char *s = (const unsigned char *)buf;
    size_t i = 0;

    *consumed = 0;
    if (c->state == CS_DONE) {
        return 0;
    }
    if (c->state == CS_ERROR) {
        return -KEEL_EHTTP_BAD_REQUEST;
    }
    while (i < len) {
        int rc;
        if (c->state == CS_DATA) {
            /* Fast path: the whole run of data available in one step. */
            size_t n = len - i;
            if (c->remaining < n) {
                n = (size_t)c->remaining;
            }
            if (on_data != NULL) {
                on_data(ctx, buf + i, n);
            }
            i += n;
            c->remaining -= n;
            if (c->remaining == 0) {
                c->state = CS_DATA_CR;
            }
            continue;
        }
        if (c->state >= CS_TRAILER_START) {
            rc = trailer_byte(c, s[i]);
        } else {
            rc = size_line_byte(c, s[i]);
        }
        if (rc < 0) {
            c->state = CS_ERROR;
            *consumed = i;
            return rc;
        }
        i++;
        if (rc == BYTE_DONE) {
            *consumed = i;
            return 0;
        }
    }
    *consumed = len;
    return -EAGAIN;
}

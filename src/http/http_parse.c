/* SPDX-License-Identifier: MIT */
/* HTTP/1.1 message head parser (RFC 9112 sections 2-6): request and status lines, header
 * fields, and the framing decisions that follow from them, plus the small helpers that read
 * a parsed head. Pure byte code: no I/O, no allocation, no mutable globals. The chunked body
 * scanner is in http_chunked.c; docs/internals/http_parse.md describes both. */
#include "http/http_parse.h"

#include <errno.h>
#include <string.h>

/* Parser states. Every decision depends only on the bytes already examined, so feeding a
 * message in any number of pieces gives the same result (the fuzz target checks this). */
enum http_parse_state {
    PS_INIT = 0,     /* nothing examined; msg not initialised yet */
    PS_REQ_START,    /* before the request line, empty lines skipped (RFC 9112 2.2) */
    PS_REQ_EMPTY_LF, /* CR of a leading empty line seen, LF expected */
    PS_METHOD,       /* method = token (RFC 9112 3.1) */
    PS_TARGET,       /* request-target, visible ASCII (RFC 9112 3.2) */
    PS_REQ_VERSION,  /* HTTP-version of a request line (RFC 9112 2.3) */
    PS_REQ_LINE_END, /* after the request version: CR or LF */
    PS_LINE_LF,      /* CR ending the start line seen, LF expected (RFC 9112 2.2) */
    PS_RESP_VERSION, /* HTTP-version of a status line (RFC 9112 4) */
    PS_RESP_SP,      /* SP after the response version */
    PS_STATUS,       /* status-code = 3DIGIT (RFC 9112 4) */
    PS_STATUS_END,   /* SP before the reason phrase, or the line end */
    PS_REASON,       /* reason-phrase, may be empty */
    PS_FIELD_START,  /* start of a field line or of the final empty line (RFC 9112 5) */
    PS_FIELD_NAME,   /* field-name = token, ':' follows directly (RFC 9112 5.1) */
    PS_FIELD_OWS,    /* OWS before the field value */
    PS_FIELD_VALUE,  /* field-value up to CR or LF (RFC 9110 5.5) */
    PS_FIELD_LF,     /* CR ending a field line seen, LF expected */
    PS_HEAD_LF,      /* CR of the final empty line seen, LF expected */
    PS_DONE,         /* head complete, 0 returned */
    PS_ERROR         /* failed, p->_err returned */
};

/* Results of one step of the machine, besides negative error codes. */
enum http_parse_step {
    STEP_NEXT = 1, /* state changed, run the next step */
    STEP_AGAIN,    /* every byte up to the window end examined, more needed */
    STEP_DONE      /* head complete */
};

/* Character classes (RFC 9110 5.6.2 token, 5.5 field-value; RFC 3986 reg-name). */
#define CC_TCHAR 0x01u   /* tchar */
#define CC_VALUE 0x02u   /* field-vchar, SP or HTAB: VCHAR, obs-text, SP, HTAB */
#define CC_TARGET 0x04u  /* request-target byte: VCHAR but '#' (a fragment is never sent) */
#define CC_REGNAME 0x08u /* reg-name byte: unreserved, sub-delims, '%' */
#define CC_OWS 0x10u     /* SP or HTAB */

static const unsigned char char_class[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  18, 0,  0,  0,  0,  0,  0,  /* 0x00 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x10 */
    18, 15, 6,  3,  15, 15, 15, 15, 14, 14, 15, 15, 14, 15, 15, 6,  /* 0x20  !"#$%&'()*+,-./ */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  14, 6,  14, 6,  6,  /* 0x30 0-9:;<=>? */
    6,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x40 @A-O */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  6,  6,  7,  15, /* 0x50 P-Z[\]^_ */
    7,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x60 `a-o */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  7,  6,  15, 0,  /* 0x70 p-z{|}~ DEL */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0x80 obs-text */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0x90 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xa0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xb0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xc0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xd0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xe0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xf0 */
};

static inline bool has_class(unsigned char c, unsigned int cls)
{
    return (char_class[c] & cls) != 0;
}

static inline bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* ASCII-only case folding: locale-independent, unlike tolower(). */
static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

static bool ascii_case_eq(const char *a, const char *b, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) {
            return false;
        }
    }
    return true;
}

static inline struct http_span make_span(uint32_t off, uint32_t len)
{
    struct http_span s = {off, len};
    return s;
}

/* Record why parsing failed and return -err (err is a positive KEEL_EHTTP_* code). */
static int bad(struct http_parser *p, int err, const char *why)
{
    p->error = why;
    return -err;
}

/* ------------------------------------------------------------------------------------ */
/* Request line (RFC 9112 3)                                                             */

static int step_req_start(struct http_parser *p, const unsigned char *s, uint32_t end)
{
    uint32_t i = p->pos;

    while (i < end) {
        unsigned char c = s[i];
        if (c == '\r') {
            p->pos = i + 1;
            p->state = PS_REQ_EMPTY_LF;
            return STEP_NEXT;
        }
        if (c != '\n') {
            if (!has_class(c, CC_TCHAR)) {
                return bad(p, KEEL_EHTTP_BAD_REQUEST, "invalid request line");
            }
            p->_line_start = i;
            p->mark = i;
            p->pos = i;
            p->state = PS_METHOD;
            return STEP_NEXT;
        }
        /* A bare LF is a line terminator in the head (RFC 9112 2.2). */
        if (++p->_empty_lines > HTTP_MAX_LEADING_EMPTY_LINES) {
            return bad(p, KEEL_EHTTP_BAD_REQUEST, "too many empty lines before request");
        }
        i++;
    }
    p->pos = i;
    return STEP_AGAIN;
}

static int step_req_empty_lf(struct http_parser *p, const unsigned char *s)
{
    if (s[p->pos] != '\n') {
        return bad(p, KEEL_EHTTP_BAD_REQUEST, "bare cr");
    }
    if (++p->_empty_lines > HTTP_MAX_LEADING_EMPTY_LINES) {
        return bad(p, KEEL_EHTTP_BAD_REQUEST, "too many empty lines before request");
    }
    p->pos++;
    p->state = PS_REQ_START;
    return STEP_NEXT;
}

static int step_method(struct http_parser *p, const unsigned char *s, uint32_t end,
                       struct http_msg *msg)
{
    uint32_t i = p->pos;

    while (i < end && has_class(s[i], CC_TCHAR)) {
        i++;
    }
    p->pos = i;
    if (i == end) {
        return STEP_AGAIN;
    }
    if (s[i] != ' ') {
        return bad(p, KEEL_EHTTP_BAD_REQUEST, "invalid method");
    }
    msg->method_span = make_span(p->mark, i - p->mark);
    msg->method = http_method_from((const char *)s + p->mark, i - p->mark);
    p->pos = i + 1;
    p->mark = i + 1;
    p->state = PS_TARGET;
    return STEP_NEXT;
}

/* Whether t[0, len) is a valid absolute-form scheme followed by ':' (RFC 3986 3.1). */
static bool has_scheme(const unsigned char *t, uint32_t len)
{
    if (len == 0 || !(lower(t[0]) >= 'a' && lower(t[0]) <= 'z')) {
        return false;
    }
    for (uint32_t i = 1; i < len; i++) {
        unsigned char c = lower(t[i]);
        if (c == ':') {
            return true;
        }
        if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '+' || c == '-' || c == '.')) {
            return false;
        }
    }
    return false;
}

/* uri-host [":" port] (RFC 9110 7.2, RFC 3986 3.2.2): reg-name or IP-literal. */
static bool host_is_valid(const unsigned char *v, size_t len, bool need_port)
{
    size_t i = 0;

    if (len == 0) {
        /* An empty Host is sent when the target has no authority (RFC 9112 3.2). */
        return !need_port;
    }
    if (v[0] == '[') {
        for (i = 1; i < len && v[i] != ']'; i++) {
            if (!has_class(v[i], CC_REGNAME) && v[i] != ':') {
                return false;
            }
        }
        if (i == len || i == 1) {
            return false;
        }
        i++;
    } else {
        while (i < len && has_class(v[i], CC_REGNAME)) {
            i++;
        }
        if (i == 0) {
            return false;
        }
    }
    if (i == len) {
        return !need_port;
    }
    if (v[i] != ':' || len - i < 2 || len - i > 6) {
        return false;
    }
    for (i++; i < len; i++) {
        if (!is_digit(v[i])) {
            return false;
        }
    }
    return true;
}

/* The four target forms of RFC 9112 3.2, each tied to its methods. */
static int check_target_form(struct http_parser *p, const unsigned char *s,
                             const struct http_msg *msg)
{
    const unsigned char *t = s + msg->target.off;
    uint32_t len = msg->target.len;

    if (msg->method == HTTP_METHOD_CONNECT) {
        /* authority-form: uri-host ":" port, nothing else (RFC 9112 3.2.3). */
        if (!host_is_valid(t, len, true)) {
            return bad(p, KEEL_EHTTP_BAD_REQUEST, "connect target is not host:port");
        }
        return 0;
    }
    if (t[0] == '/') {
        return 0;
    }
    if (len == 1 && t[0] == '*') {
        if (msg->method != HTTP_METHOD_OPTIONS) {
            return bad(p, KEEL_EHTTP_BAD_REQUEST, "asterisk-form target outside options");
        }
        return 0;
    }
    if (!has_scheme(t, len)) {
        return bad(p, KEEL_EHTTP_BAD_REQUEST, "invalid request target");
    }
    return 0;
}

static int step_target(struct http_parser *p, const unsigned char *s, uint32_t end,
                       struct http_msg *msg)
{
    uint32_t i = p->pos;

    while (i < end && has_class(s[i], CC_TARGET)) {
        i++;
    }
    p->pos = i;
    if (i == end) {
        return STEP_AGAIN;
    }
    if (s[i] != ' ') {
        if (s[i] == '\r' || s[i] == '\n') {
            return bad(p, KEEL_EHTTP_BAD_REQUEST, "missing http version");
        }
        if (s[i] == '#') {
            /* RFC 9112 3.2 has no fragment; the path would end there for routing but not
             * for the server, so the two would see different requests. */
            return bad(p, KEEL_EHTTP_BAD_REQUEST, "fragment (#) in request target");
        }
        return bad(p, KEEL_EHTTP_BAD_REQUEST, "invalid character in request target");
    }
    if (i == p->mark) {
        return bad(p, KEEL_EHTTP_BAD_REQUEST, "empty request target");
    }
    msg->target = make_span(p->mark, i - p->mark);
    int rc = check_target_form(p, s, msg);
    if (rc != 0) {
        return rc;
    }
    p->pos = i + 1;
    p->mark = i + 1;
    p->state = PS_REQ_VERSION;
    return STEP_NEXT;
}

/* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 2.3), checked byte by
 * byte from p->mark so garbage fails before the line ends. On the 8th byte, sets
 * msg->version_minor for 1.0/1.1, or p->_bad_version for any other HTTP/x.y. */
static int step_version(struct http_parser *p, const unsigned char *s, uint32_t end,
                        struct http_msg *msg, int next_state)
{
    static const char pattern[] = "HTTP/1.1"; /* digits at 5 and 7 match any DIGIT */
    uint32_t i = p->pos;

    while (i < end && i - p->mark < 8) {
        uint32_t k = i - p->mark;
        bool ok = (k == 5 || k == 7) ? is_digit(s[i]) : s[i] == (unsigned char)pattern[k];
        if (!ok) {
            return bad(p, KEEL_EHTTP_BAD_REQUEST, "invalid http version");
        }
        i++;
    }
    p->pos = i;
    if (i - p->mark < 8) {
        return STEP_AGAIN;
    }
    unsigned char major = s[p->mark + 5];
    unsigned char minor = s[p->mark + 7];
    if (major == '1' && (minor == '0' || minor == '1')) {
        msg->version_minor = minor - '0';
    } else {
        p->_bad_version = true;
    }
    p->state = next_state;
    return STEP_NEXT;
}

/* The start line ended (its LF at pos - 1): go on with the header section. */
static int start_line_done(struct http_parser *p)
{
    if (p->_bad_version) {
        return bad(p, p->is_response ? KEEL_EHTTP_BAD_RESPONSE : KEEL_EHTTP_VERSION,
                   "unsupported http version");
    }
    p->state = PS_FIELD_START;
    return STEP_NEXT;
}

static int step_req_line_end(struct http_parser *p, const unsigned char *s)
{
    unsigned char c = s[p->pos];

    p->pos++;
    if (c == '\r') {
        p->state = PS_LINE_LF;
        return STEP_NEXT;
    }
    if (c == '\n') {
        return start_line_done(p);
    }
    return bad(p, KEEL_EHTTP_BAD_REQUEST, "invalid http version");
}

static int step_line_lf(struct http_parser *p, const unsigned char *s)
{
    if (s[p->pos] != '\n') {
        return bad(p, KEEL_EHTTP_BAD_REQUEST, "bare cr");
    }
    p->pos++;
    return start_line_done(p);
}

/* ------------------------------------------------------------------------------------ */
/* Status line (RFC 9112 4): HTTP-version SP 3DIGIT SP [reason]; "HTTP/1.1 200" CRLF with  */
/* no SP after the code is accepted as well (RFC 9112 4 asks for robustness there).      */

static int step_resp_sp(struct http_parser *p, const unsigned char *s)
{
    if (p->_bad_version) {
        return bad(p, KEEL_EHTTP_BAD_RESPONSE, "unsupported http version");
    }
    if (s[p->pos] != ' ') {
        return bad(p, KEEL_EHTTP_BAD_RESPONSE, "malformed status line");
    }
    p->pos++;
    p->mark = p->pos;
    p->state = PS_STATUS;
    return STEP_NEXT;
}

static int step_status(struct http_parser *p, const unsigned char *s, uint32_t end,
                       struct http_msg *msg)
{
    uint32_t i = p->pos;

    while (i < end && i - p->mark < 3) {
        if (!is_digit(s[i])) {
            return bad(p, KEEL_EHTTP_BAD_RESPONSE, "invalid status code");
        }
        i++;
    }
    p->pos = i;
    if (i - p->mark < 3) {
        return STEP_AGAIN;
    }
    const unsigned char *d = s + p->mark;
    msg->status = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
    if (msg->status < 100 || msg->status > 599) {
        return bad(p, KEEL_EHTTP_BAD_RESPONSE, "invalid status code");
    }
    p->state = PS_STATUS_END;
    return STEP_NEXT;
}

static int step_status_end(struct http_parser *p, const unsigned char *s, struct http_msg *msg)
{
    uint32_t i = p->pos;
    unsigned char c = s[i];

    p->pos = i + 1;
    if (c == ' ') {
        p->mark = i + 1;
        p->state = PS_REASON;
        return STEP_NEXT;
    }
    msg->reason = make_span(i, 0);
    if (c == '\r') {
        p->state = PS_LINE_LF;
        return STEP_NEXT;
    }
    if (c == '\n') {
        return start_line_done(p);
    }
    return bad(p, KEEL_EHTTP_BAD_RESPONSE, "malformed status line");
}

static int step_reason(struct http_parser *p, const unsigned char *s, uint32_t end,
                       struct http_msg *msg)
{
    uint32_t i = p->pos;

    while (i < end && has_class(s[i], CC_VALUE)) {
        i++;
    }
    p->pos = i;
    if (i == end) {
        return STEP_AGAIN;
    }
    msg->reason = make_span(p->mark, i - p->mark);
    p->pos = i + 1;
    if (s[i] == '\r') {
        p->state = PS_LINE_LF;
        return STEP_NEXT;
    }
    if (s[i] == '\n') {
        return start_line_done(p);
    }
    return bad(p, KEEL_EHTTP_BAD_RESPONSE, "invalid character in reason phrase");
}

/* ------------------------------------------------------------------------------------ */
/* Field semantics: the headers that decide framing and routing (RFC 9112 6, RFC 9110 7.2) */

/* Content-Length = 1*DIGIT; a list or repeated field is accepted only when every value is
 * the same (RFC 9112 6.3 item 5). Values above INT64_MAX are rejected. */
static int on_content_length(struct http_parser *p, const char *v, size_t len, struct http_msg *msg)
{
    size_t i = 0;

    for (;;) {
        while (i < len && has_class((unsigned char)v[i], CC_OWS)) {
            i++;
        }
        size_t start = i;
        uint64_t n = 0;
        while (i < len && is_digit((unsigned char)v[i])) {
            unsigned int d = (unsigned int)(v[i] - '0');
            if (n > ((uint64_t)INT64_MAX - d) / 10) {
                return bad(p, KEEL_EHTTP_BAD_REQUEST, "content-length overflow");
            }
            n = n * 10 + d;
            i++;
        }
        if (i == start) {
            return bad(p, KEEL_EHTTP_BAD_REQUEST, "invalid content-length");
        }
        while (i < len && has_class((unsigned char)v[i], CC_OWS)) {
            i++;
        }
        if ((msg->flags & HTTP_F_HAS_CL) != 0 && msg->content_length != n) {
            return bad(p, KEEL_EHTTP_BAD_REQUEST, "conflicting content-length");
        }
        msg->content_length = n;
        msg->flags |= HTTP_F_HAS_CL;
        if (i == len) {
            return 0;
        }
        if (v[i] != ',') {
            return bad(p, KEEL_EHTTP_BAD_REQUEST, "invalid content-length");
        }
        i++;
    }
}

static inline void count_saturated(uint8_t *n)
{
    if (*n < UINT8_MAX) {
        (*n)++;
    }
}

/* Transfer-Encoding = #transfer-coding (RFC 9112 6.1), possibly over several fields. Only
 * records the codings here; head_done judges the whole list. Empty elements are rejected:
 * the list decides the framing, so no leniency. */
static int on_transfer_encoding(struct http_parser *p, const char *v, size_t len,
                                struct http_msg *msg)
{
    size_t i = 0;

    msg->flags |= HTTP_F_HAS_TE;
    for (;;) {
        while (i < len && has_class((unsigned char)v[i], CC_OWS)) {
            i++;
        }
        size_t start = i;
        while (i < len && v[i] != ',') {
            i++;
        }
        size_t stop = i;
        while (stop > start && has_class((unsigned char)v[stop - 1], CC_OWS)) {
            stop--;
        }
        if (stop == start) {
            return bad(p, KEEL_EHTTP_BAD_REQUEST, "empty transfer coding");
        }
        p->_te_last_chunked = stop - start == 7 && ascii_case_eq(v + start, "chunked", 7);
        count_saturated(p->_te_last_chunked ? &p->_te_chunked : &p->_te_other);
        if (i == len) {
            return 0;
        }
        i++;
    }
}

static int on_host(struct http_parser *p, const char *buf, struct http_msg *msg, uint32_t idx)
{
    struct http_span v = msg->headers[idx].value;

    if (p->is_response) {
        return 0;
    }
    if ((msg->flags & HTTP_F_HAS_HOST) != 0) {
        return bad(p, KEEL_EHTTP_BAD_REQUEST, "multiple host fields");
    }
    if (!host_is_valid((const unsigned char *)buf + v.off, v.len, false)) {
        return bad(p, KEEL_EHTTP_BAD_REQUEST, "invalid host");
    }
    msg->flags |= HTTP_F_HAS_HOST;
    msg->host_index = (int)idx;
    return 0;
}

static void on_connection(const char *v, size_t len, struct http_msg *msg)
{
    if (http_list_has_token(v, len, "close", 5)) {
        msg->flags |= HTTP_F_CONN_CLOSE;
    }
    if (http_list_has_token(v, len, "keep-alive", 10)) {
        msg->flags |= HTTP_F_CONN_KEEPALIVE;
    }
    if (http_list_has_token(v, len, "upgrade", 7)) {
        msg->flags |= HTTP_F_CONN_UPGRADE;
    }
}

/* Act on the field just completed at msg->headers[idx]. */
static int on_field(struct http_parser *p, const char *buf, struct http_msg *msg, uint32_t idx)
{
    const struct http_header *h = &msg->headers[idx];
    const char *v = buf + h->value.off;

    switch (h->name.len) {
    case 4:
        if (http_span_eq(buf, h->name, "host", 4)) {
            return on_host(p, buf, msg, idx);
        }
        break;
    case 6:
        /* An HTTP/1.0 server must ignore 100-continue (RFC 9110 10.1.1). */
        if (!p->is_response && msg->version_minor == 1 && http_span_eq(buf, h->name, "expect", 6) &&
            http_span_eq(buf, h->value, "100-continue", 12)) {
            msg->flags |= HTTP_F_EXPECT_CONTINUE;
        }
        break;
    case 10:
        if (http_span_eq(buf, h->name, "connection", 10)) {
            on_connection(v, h->value.len, msg);
        }
        break;
    case 14:
        if (http_span_eq(buf, h->name, "content-length", 14)) {
            return on_content_length(p, v, h->value.len, msg);
        }
        break;
    case 17:
        if (http_span_eq(buf, h->name, "transfer-encoding", 17)) {
            return on_transfer_encoding(p, v, h->value.len, msg);
        }
        break;
    default:
        break;
    }
    return 0;
}

/* Framing rules for a request once all fields are known (RFC 9112 6.1, 6.3, 3.2). */
static int request_head_done(struct http_parser *p, struct http_msg *msg)
{
    if ((msg->flags & HTTP_F_HAS_TE) != 0) {
        if (msg->version_minor == 0) {
            return bad(p, KEEL_EHTTP_BAD_REQUEST, "transfer-encoding in http/1.0 request");
        }
        if ((msg->flags & HTTP_F_HAS_CL) != 0) {
            return bad(p, KEEL_EHTTP_BAD_REQUEST, "content-length with transfer-encoding");
        }
        if (p->_te_chunked > 1) {
            return bad(p, KEEL_EHTTP_BAD_REQUEST, "chunked applied more than once");
        }
        if (p->_te_chunked == 1 && !p->_te_last_chunked) {
            return bad(p, KEEL_EHTTP_BAD_REQUEST, "chunked is not the final coding");
        }
        if (p->_te_other > 0) {
            return bad(p, KEEL_EHTTP_NOT_IMPLEMENTED, "unsupported transfer coding");
        }
        msg->flags |= HTTP_F_CHUNKED;
    }
    if (msg->version_minor == 1 && (msg->flags & HTTP_F_HAS_HOST) == 0) {
        return bad(p, KEEL_EHTTP_BAD_REQUEST, "missing host");
    }
    return 0;
}

/* Framing rules for a response (RFC 9112 6.1, 6.3): TE overrides CL, but a message with
 * both is suspect, so the connection must not be reused after it. */
static int response_head_done(struct http_parser *p, struct http_msg *msg)
{
    if ((msg->flags & HTTP_F_HAS_TE) == 0) {
        return 0;
    }
    if (msg->version_minor == 0) {
        /* RFC 9112 6.1: the framing of such a message is faulty. */
        return bad(p, KEEL_EHTTP_BAD_RESPONSE, "transfer-encoding in http/1.0 response");
    }
    if (p->_te_chunked > 1) {
        return bad(p, KEEL_EHTTP_BAD_RESPONSE, "chunked applied more than once");
    }
    if ((msg->flags & HTTP_F_HAS_CL) != 0) {
        msg->flags &= ~(uint32_t)HTTP_F_HAS_CL;
        msg->flags |= HTTP_F_FRAMING_SUSPECT;
        msg->content_length = 0;
    }
    if (p->_te_last_chunked) {
        msg->flags |= HTTP_F_CHUNKED;
    }
    return 0;
}

/* The final empty line ended just before head_end. */
static int head_done(struct http_parser *p, struct http_msg *msg, uint32_t head_end)
{
    int rc = p->is_response ? response_head_done(p, msg) : request_head_done(p, msg);
    if (rc != 0) {
        return rc;
    }
    p->pos = head_end;
    msg->head_len = head_end;
    return STEP_DONE;
}

/* ------------------------------------------------------------------------------------ */
/* Field lines (RFC 9112 5)                                                              */

static int step_field_start(struct http_parser *p, const unsigned char *s, struct http_msg *msg)
{
    uint32_t i = p->pos;
    unsigned char c = s[i];

    p->pos = i + 1;
    if (has_class(c, CC_TCHAR)) {
        if (msg->n_headers == HTTP_MAX_HEADERS) {
            return bad(p, KEEL_EHTTP_HEAD_TOO_LARGE, "too many header fields");
        }
        msg->headers[msg->n_headers].name.off = i;
        p->state = PS_FIELD_NAME;
        return STEP_NEXT;
    }
    if (c == '\r') {
        p->state = PS_HEAD_LF;
        return STEP_NEXT;
    }
    if (c == '\n') {
        return head_done(p, msg, i + 1);
    }
    if (c == ' ' || c == '\t') {
        /* obs-fold, or whitespace after the start line (RFC 9112 5.2, 2.2). */
        return bad(p, KEEL_EHTTP_BAD_REQUEST, "obs-fold or leading whitespace");
    }
    if (c == ':') {
        return bad(p, KEEL_EHTTP_BAD_REQUEST, "empty field name");
    }
    return bad(p, KEEL_EHTTP_BAD_REQUEST, "invalid character in field name");
}

static int step_field_name(struct http_parser *p, const unsigned char *s, uint32_t end,
                           struct http_msg *msg)
{
    uint32_t i = p->pos;

    while (i < end && has_class(s[i], CC_TCHAR)) {
        i++;
    }
    p->pos = i;
    if (i == end) {
        return STEP_AGAIN;
    }
    if (s[i] != ':') {
        if (has_class(s[i], CC_OWS)) {
            /* RFC 9112 5.1: a server MUST reject it (a smuggling vector). */
            return bad(p, KEEL_EHTTP_BAD_REQUEST, "whitespace before colon");
        }
        return bad(p, KEEL_EHTTP_BAD_REQUEST, "invalid character in field name");
    }
    struct http_span *name = &msg->headers[msg->n_headers].name;
    name->len = i - name->off;
    p->pos = i + 1;
    p->state = PS_FIELD_OWS;
    return STEP_NEXT;
}

static int step_field_ows(struct http_parser *p, const unsigned char *s, uint32_t end)
{
    uint32_t i = p->pos;

    while (i < end && has_class(s[i], CC_OWS)) {
        i++;
    }
    p->pos = i;
    if (i == end) {
        return STEP_AGAIN;
    }
    p->mark = i;
    p->state = PS_FIELD_VALUE;
    return STEP_NEXT;
}

/* The field line's value ends before value_end (its CR or LF): trim, store, act on it. */
static int field_done(struct http_parser *p, const unsigned char *s, struct http_msg *msg,
                      uint32_t value_end)
{
    while (value_end > p->mark && has_class(s[value_end - 1], CC_OWS)) {
        value_end--;
    }
    uint32_t idx = msg->n_headers++;
    msg->headers[idx].value = make_span(p->mark, value_end - p->mark);
    int rc = on_field(p, (const char *)s, msg, idx);
    if (rc != 0) {
        return rc;
    }
    p->state = PS_FIELD_START;
    return STEP_NEXT;
}

/* The hot loop: field values are most of a head. */
static int step_field_value(struct http_parser *p, const unsigned char *s, uint32_t end,
                            struct http_msg *msg)
{
    uint32_t i = p->pos;

    while (end - i >= 4 && has_class(s[i], CC_VALUE) && has_class(s[i + 1], CC_VALUE) &&
           has_class(s[i + 2], CC_VALUE) && has_class(s[i + 3], CC_VALUE)) {
        i += 4;
    }
    while (i < end && has_class(s[i], CC_VALUE)) {
        i++;
    }
    p->pos = i;
    if (i == end) {
        return STEP_AGAIN;
    }
    p->pos = i + 1;
    if (s[i] == '\r') {
        p->state = PS_FIELD_LF;
        return STEP_NEXT;
    }
    if (s[i] == '\n') {
        return field_done(p, s, msg, i);
    }
    if (s[i] == '\0') {
        return bad(p, KEEL_EHTTP_BAD_REQUEST, "nul in field value");
    }
    return bad(p, KEEL_EHTTP_BAD_REQUEST, "control character in field value");
}

static int step_field_lf(struct http_parser *p, const unsigned char *s, struct http_msg *msg)
{
    uint32_t i = p->pos;

    if (s[i] != '\n') {
        return bad(p, KEEL_EHTTP_BAD_REQUEST, "bare cr");
    }
    p->pos = i + 1;
    return field_done(p, s, msg, i - 1);
}

static int step_head_lf(struct http_parser *p, const unsigned char *s, struct http_msg *msg)
{
    uint32_t i = p->pos;

    if (s[i] != '\n') {
        return bad(p, KEEL_EHTTP_BAD_REQUEST, "bare cr");
    }
    return head_done(p, msg, i + 1);
}

/* ------------------------------------------------------------------------------------ */
/* Driver                                                                                */

/* The start-line states are contiguous in enum http_parse_state. */
static bool in_start_line(int state)
{
    return state >= PS_METHOD && state <= PS_REASON;
}

/* The window of bytes the current state may examine, [0, cap). A start line may hold
 * max_line bytes before its terminator, so byte L = _line_start + max_line may only be CR or
 * LF: when it is, the window stretches over the CRLF; otherwise it stops at L, and a byte
 * there fails the limit as soon as it arrives. The head (its final LF included) must fit in
 * max_head. The cap depends on s[L] only once len > L, and bytes below L are examined the
 * same way either way, so the result does not depend on how the input was split.
 * *at_cap_fails says whether needing more with len == cap is already the limit error. */
static uint32_t state_cap(const struct http_parser *p, const unsigned char *s, size_t len,
                          bool *at_cap_fails, bool *is_line_limit)
{
    *at_cap_fails = true;
    *is_line_limit = false;
    if (in_start_line(p->state)) {
        uint64_t line_end = (uint64_t)p->_line_start + p->max_line;
        uint64_t line_cap = line_end;
        bool fails = false;
        if (len > line_end && (s[line_end] == '\r' || s[line_end] == '\n')) {
            line_cap = line_end + 2;
            fails = true;
        }
        if (line_cap <= p->max_head) {
            *at_cap_fails = fails;
            *is_line_limit = true;
            return (uint32_t)line_cap;
        }
    }
    return p->max_head;
}

static int limit_fail(struct http_parser *p, bool is_line_limit)
{
    if (is_line_limit) {
        if (p->is_response) {
            return bad(p, KEEL_EHTTP_BAD_RESPONSE, "status line too long");
        }
        return bad(p, KEEL_EHTTP_URI_TOO_LONG, "request line too long");
    }
    return bad(p, KEEL_EHTTP_HEAD_TOO_LARGE, "header section too large");
}

/* One step in the current state over s[p->pos, end); p->pos < end. */
static int step(struct http_parser *p, const unsigned char *s, uint32_t end, struct http_msg *msg)
{
    switch (p->state) {
    case PS_REQ_START:
        return step_req_start(p, s, end);
    case PS_REQ_EMPTY_LF:
        return step_req_empty_lf(p, s);
    case PS_METHOD:
        return step_method(p, s, end, msg);
    case PS_TARGET:
        return step_target(p, s, end, msg);
    case PS_REQ_VERSION:
        return step_version(p, s, end, msg, PS_REQ_LINE_END);
    case PS_REQ_LINE_END:
        return step_req_line_end(p, s);
    case PS_LINE_LF:
        return step_line_lf(p, s);
    case PS_RESP_VERSION:
        return step_version(p, s, end, msg, PS_RESP_SP);
    case PS_RESP_SP:
        return step_resp_sp(p, s);
    case PS_STATUS:
        return step_status(p, s, end, msg);
    case PS_STATUS_END:
        return step_status_end(p, s, msg);
    case PS_REASON:
        return step_reason(p, s, end, msg);
    case PS_FIELD_START:
        return step_field_start(p, s, msg);
    case PS_FIELD_NAME:
        return step_field_name(p, s, end, msg);
    case PS_FIELD_OWS:
        return step_field_ows(p, s, end);
    case PS_FIELD_VALUE:
        return step_field_value(p, s, end, msg);
    case PS_FIELD_LF:
        return step_field_lf(p, s, msg);
    case PS_HEAD_LF:
        return step_head_lf(p, s, msg);
    default:
        return bad(p, KEEL_EHTTP_BAD_REQUEST, "parser in an invalid state");
    }
}

void http_parser_init(struct http_parser *p, bool is_response, uint32_t max_line, uint32_t max_head)
{
    memset(p, 0, sizeof(*p));
    p->state = PS_INIT;
    p->is_response = is_response;
    p->max_line = max_line != 0 ? max_line : HTTP_DEFAULT_MAX_LINE;
    p->max_head = max_head != 0 ? max_head : HTTP_DEFAULT_MAX_HEAD;
}

static void msg_start(struct http_parser *p, struct http_msg *msg)
{
    /* The header array is filled as fields arrive; no need to clear its 2 KiB. */
    msg->method = HTTP_METHOD_OTHER;
    msg->method_span = make_span(0, 0);
    msg->target = make_span(0, 0);
    msg->status = 0;
    msg->reason = make_span(0, 0);
    msg->version_minor = 1;
    msg->n_headers = 0;
    msg->host_index = -1;
    msg->content_length = 0;
    msg->flags = 0;
    msg->head_len = 0;
    p->state = p->is_response ? PS_RESP_VERSION : PS_REQ_START;
}

int http_parse_head(struct http_parser *p, const char *buf, size_t len, struct http_msg *msg)
{
    const unsigned char *s = (const unsigned char *)buf;

    if (p->state == PS_DONE) {
        return 0;
    }
    if (p->state == PS_ERROR) {
        return p->_err;
    }
    if (p->state == PS_INIT) {
        msg_start(p, msg);
    }
    for (;;) {
        bool at_cap_fails;
        bool is_line_limit;
        uint32_t cap = state_cap(p, s, len, &at_cap_fails, &is_line_limit);
        uint32_t end = len < cap ? (uint32_t)len : cap;
        int rc = STEP_AGAIN;

        if (p->pos < end) {
            rc = step(p, s, end, msg);
        }
        if (rc == STEP_NEXT) {
            continue;
        }
        if (rc == STEP_DONE) {
            p->state = PS_DONE;
            return 0;
        }
        if (rc == STEP_AGAIN) {
            if (len < cap || (len == cap && !at_cap_fails)) {
                return -EAGAIN;
            }
            rc = limit_fail(p, is_line_limit);
        }
        if (p->is_response) {
            rc = -KEEL_EHTTP_BAD_RESPONSE;
        }
        p->state = PS_ERROR;
        p->_err = rc;
        return rc;
    }
}

int http_parse_error_status(int err)
{
    switch (err) {
    case -KEEL_EHTTP_BAD_REQUEST:
        return 400;
    case -KEEL_EHTTP_URI_TOO_LONG:
        return 414;
    case -KEEL_EHTTP_HEAD_TOO_LARGE:
        return 431;
    case -KEEL_EHTTP_NOT_IMPLEMENTED:
        return 501;
    case -KEEL_EHTTP_BAD_RESPONSE:
        return 502;
    case -KEEL_EHTTP_VERSION:
        return 505;
    default:
        return 400;
    }
}

/* ------------------------------------------------------------------------------------ */
/* Reading a parsed head                                                                  */

enum http_body_kind http_request_body_kind(const struct http_msg *msg)
{
    /* RFC 9112 6.3 items 4-7: chunked, then Content-Length, else no body. */
    if ((msg->flags & HTTP_F_CHUNKED) != 0) {
        return HTTP_BODY_CHUNKED;
    }
    if ((msg->flags & HTTP_F_HAS_CL) != 0) {
        return HTTP_BODY_LENGTH;
    }
    return HTTP_BODY_NONE;
}

enum http_body_kind http_response_body_kind(const struct http_msg *msg, enum http_method req_method)
{
    /* RFC 9112 6.3 items 1-2. */
    if (req_method == HTTP_METHOD_HEAD || msg->status < 200 || msg->status == 204 ||
        msg->status == 304) {
        return HTTP_BODY_NONE;
    }
    if (req_method == HTTP_METHOD_CONNECT && msg->status < 300) {
        return HTTP_BODY_NONE; /* the connection becomes a tunnel */
    }
    /* Items 3-8: chunked, TE without final chunked, Content-Length, close. */
    if ((msg->flags & HTTP_F_CHUNKED) != 0) {
        return HTTP_BODY_CHUNKED;
    }
    if ((msg->flags & HTTP_F_HAS_TE) != 0) {
        return HTTP_BODY_UNTIL_CLOSE;
    }
    if ((msg->flags & HTTP_F_HAS_CL) != 0) {
        return HTTP_BODY_LENGTH;
    }
    return HTTP_BODY_UNTIL_CLOSE;
}

bool http_msg_keepalive(const struct http_msg *msg)
{
    /* RFC 9112 9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive". */
    if ((msg->flags & (HTTP_F_CONN_CLOSE | HTTP_F_FRAMING_SUSPECT)) != 0) {
        return false;
    }
    if (msg->version_minor >= 1) {
        return true;
    }
    return (msg->flags & HTTP_F_CONN_KEEPALIVE) != 0;
}

int http_msg_find(const struct http_msg *msg, const char *buf, const char *name, size_t name_len)
{
    for (uint32_t i = 0; i < msg->n_headers; i++) {
        if (http_span_eq(buf, msg->headers[i].name, name, name_len)) {
            return (int)i;
        }
    }
    return -1;
}

bool http_span_eq(const char *buf, struct http_span s, const char *str, size_t len)
{
    return s.len == len && ascii_case_eq(buf + s.off, str, len);
}

const char *http_head_value(const char *head, size_t len, const char *name, size_t name_len,
                            size_t *value_len)
{
    const char *end = head + len;
    const char *line = memchr(head, '\n', len); /* past the start line */
    while (line != NULL && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        const char *stop = eol != NULL ? eol : end;
        if (stop == line || (stop - line == 1 && line[0] == '\r')) {
            break; /* the empty line: the head ends */
        }
        if ((size_t)(stop - line) > name_len && line[name_len] == ':' &&
            ascii_case_eq(line, name, name_len)) {
            const char *v = line + name_len + 1;
            const char *v_end = stop;
            while (v < v_end && has_class((unsigned char)*v, CC_OWS)) {
                v++;
            }
            while (v_end > v &&
                   (v_end[-1] == '\r' || has_class((unsigned char)v_end[-1], CC_OWS))) {
                v_end--;
            }
            *value_len = (size_t)(v_end - v);
            return v;
        }
        line = eol;
    }
    return NULL;
}

bool http_list_has_token(const char *value, size_t value_len, const char *token, size_t token_len)
{
    size_t i = 0;

    while (i < value_len) {
        while (i < value_len && (value[i] == ',' || has_class((unsigned char)value[i], CC_OWS))) {
            i++;
        }
        size_t start = i;
        while (i < value_len && value[i] != ',') {
            i++;
        }
        size_t stop = i;
        while (stop > start && has_class((unsigned char)value[stop - 1], CC_OWS)) {
            stop--;
        }
        if (stop - start == token_len && ascii_case_eq(value + start, token, token_len)) {
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------------------------ */
/* Methods and status codes                                                               */

static const char *const method_names[] = {
    [HTTP_METHOD_OTHER] = "OTHER",     [HTTP_METHOD_GET] = "GET",
    [HTTP_METHOD_HEAD] = "HEAD",       [HTTP_METHOD_POST] = "POST",
    [HTTP_METHOD_PUT] = "PUT",         [HTTP_METHOD_DELETE] = "DELETE",
    [HTTP_METHOD_OPTIONS] = "OPTIONS", [HTTP_METHOD_CONNECT] = "CONNECT",
    [HTTP_METHOD_TRACE] = "TRACE",     [HTTP_METHOD_PATCH] = "PATCH",
};

#define METHOD_COUNT (sizeof(method_names) / sizeof(method_names[0]))

enum http_method http_method_from(const char *s, size_t len)
{
    for (size_t m = HTTP_METHOD_GET; m < METHOD_COUNT; m++) {
        const char *name = method_names[m];
        if (strlen(name) == len && memcmp(name, s, len) == 0) {
            return (enum http_method)m;
        }
    }
    return HTTP_METHOD_OTHER;
}

const char *http_method_name(enum http_method m)
{
    if ((size_t)m >= METHOD_COUNT) {
        return method_names[HTTP_METHOD_OTHER];
    }
    return method_names[m];
}

bool http_method_is_idempotent(enum http_method m)
{
    switch (m) {
    case HTTP_METHOD_GET:
    case HTTP_METHOD_HEAD:
    case HTTP_METHOD_PUT:
    case HTTP_METHOD_DELETE:
    case HTTP_METHOD_OPTIONS:
    case HTTP_METHOD_TRACE:
        return true;
    default:
        return false;
    }
}

struct status_reason {
    int status;
    const char *reason;
};

/* RFC 9110 section 15, plus 429/431 (RFC 6585). */
static const struct status_reason status_reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {305, "Use Proxy"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *http_status_reason(int status)
{
    for (size_t i = 0; i < sizeof(status_reasons) / sizeof(status_reasons[0]); i++) {
        if (status_reasons[i].status == status) {
            return status_reasons[i].reason;
        }
    }
    return "Unknown";
}

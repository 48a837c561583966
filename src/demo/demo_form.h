/* SPDX-License-Identifier: MIT */
/* HTML form data for the demo application (demo_guestbook.c): fields of an
 * application/x-www-form-urlencoded body or query string (WHATWG URL standard: pairs
 * separated by '&', name and value by '=', '+' a blank, %XX a byte), and the checks user
 * text passes before it is stored (valid UTF-8, bounded length in characters, no control
 * characters). Pure functions: no I/O, no allocation. */
#ifndef KEEL_DEMO_DEMO_FORM_H
#define KEEL_DEMO_DEMO_FORM_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

/* Find the first field called name (compared after decoding) in the form text
 * s[0, len) and decode its value into out (size bytes, always NUL-terminated when
 * size > 0). Returns the decoded length (>= 0), -ENOENT when there is no such field,
 * -EINVAL for a malformed %-escape in that value, or -ENOSPC when the value and its NUL do
 * not fit in size bytes. */
int demo_form_get(const char *s, size_t len, const char *name, char *out,
                  size_t size) KEEL_MUST_CHECK;

/* Normalize and check decoded user text in place (t holds *len bytes; *len is updated and
 * t NUL-terminated, so t needs *len + 1 bytes): leading and trailing blanks (space, tab,
 * CR, LF) are removed; with is_multiline, CRLF and a lone CR become LF and LF and tab are
 * allowed, without it no control character is. Returns 0, or -EINVAL with *why set to a
 * static phrase ("is empty", "is not valid UTF-8", "is too long", "contains control
 * characters"). max_chars bounds the number of characters (code points). */
int demo_form_text(char *t, size_t *len, size_t max_chars, bool is_multiline,
                   const char **why) KEEL_MUST_CHECK;

/* The length of the valid UTF-8 sequence at s[0, len) (1-4), or 0 when it is not valid
 * UTF-8 (overlong forms, surrogates and code points above U+10FFFF are not). */
size_t demo_utf8_seq(const unsigned char *s, size_t len);

/* The HTML entity that stands for c ("&lt;" for '<'; also > & " '), or NULL if c stands
 * for itself. */
const char *demo_html_entity(char c);

#endif

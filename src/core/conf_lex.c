/* SPDX-License-Identifier: MIT */
/* The configuration lexer. Owns tokenization only: whitespace, '#' comments, words, quoted
 * strings and the punctuation { } ;. Positions count lines and byte columns from 1. It does
 * not allocate and does not know about directives or blocks. */
#include "core/conf_lex.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void conf_lex_init(struct conf_lexer *lx, const char *file, const char *src, size_t len)
{
    lx->_file = file;
    lx->_src = src;
    lx->_len = len;
    lx->_off = 0;
    lx->_line = 1;
    lx->_col = 1;
    lx->_text[0] = '\0';
    lx->_msg[0] = '\0';
}

const char *conf_tok_kind_name(enum conf_tok_kind kind)
{
    switch (kind) {
    case CONF_TOK_EOF:
        return "end of file";
    case CONF_TOK_WORD:
        return "word";
    case CONF_TOK_STRING:
        return "string";
    case CONF_TOK_LBRACE:
        return "\"{\"";
    case CONF_TOK_RBRACE:
        return "\"}\"";
    case CONF_TOK_SEMI:
        return "\";\"";
    case CONF_TOK_ERROR:
        return "invalid token";
    }
    return "?";
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Control bytes (and DEL) are never valid outside whitespace: they are invisible in editors
 * and usually mean a binary or corrupted file. Bytes >= 0x80 (UTF-8) are allowed. */
static bool is_invalid(unsigned char c)
{
    return (c < 0x20 && !is_space(c)) || c == 0x7f;
}

static bool ends_word(unsigned char c)
{
    return is_space(c) || c == '{' || c == '}' || c == ';' || c == '"' || is_invalid(c);
}

static int peek(const struct conf_lexer *lx)
{
    return lx->_off < lx->_len ? (unsigned char)lx->_src[lx->_off] : -1;
}

/* Consume one byte, keeping line and column up to date. */
static void bump(struct conf_lexer *lx)
{
    if (lx->_src[lx->_off] == '\n') {
        lx->_line++;
        lx->_col = 1;
    } else {
        lx->_col++;
    }
    lx->_off++;
}

static void skip_blanks_and_comments(struct conf_lexer *lx)
{
    for (;;) {
        int c = peek(lx);
        if (c == -1) {
            return;
        }
        if (is_space((unsigned char)c)) {
            bump(lx);
        } else if (c == '#') {
            while (peek(lx) != -1 && peek(lx) != '\n') {
                bump(lx);
            }
        } else {
            return;
        }
    }
}

static void set_token(struct conf_lexer *lx, struct conf_token *tok, enum conf_tok_kind kind,
                      const char *text, int line, int col)
{
    tok->kind = kind;
    tok->text = text;
    tok->len = strlen(text);
    tok->file = lx->_file;
    tok->line = line;
    tok->col = col;
    tok->end_col = lx->_line == line ? lx->_col : col + 1;
}

static void __attribute__((format(printf, 5, 6)))
set_error(struct conf_lexer *lx, struct conf_token *tok, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(lx->_msg, sizeof(lx->_msg), fmt, ap); /* truncation is harmless */
    va_end(ap);
    set_token(lx, tok, CONF_TOK_ERROR, lx->_msg, line, col);
}

static void lex_word(struct conf_lexer *lx, struct conf_token *tok)
{
    int line = lx->_line, col = lx->_col;
    size_t n = 0;
    while (peek(lx) != -1 && !ends_word((unsigned char)peek(lx))) {
        if (n < CONF_TOKEN_MAX) {
            lx->_text[n] = (char)peek(lx);
        }
        n++;
        bump(lx);
    }
    if (n > CONF_TOKEN_MAX) {
        set_error(lx, tok, line, col, "word too long (%zu bytes, max %d)", n, CONF_TOKEN_MAX);
        return;
    }
    lx->_text[n] = '\0';
    set_token(lx, tok, CONF_TOK_WORD, lx->_text, line, col);
}

/* A string ends at its closing quote on the same line. Raw newlines are not allowed inside,
 * so a missing quote is reported at once instead of swallowing the rest of the file. The
 * first problem found is the one reported; lexing then resumes after the string (or at the
 * end of its line when it is unterminated). */
static void lex_string(struct conf_lexer *lx, struct conf_token *tok)
{
    int line = lx->_line, col = lx->_col;
    size_t n = 0;
    bool bad = false;
    bump(lx); /* opening quote */
    for (;;) {
        int c = peek(lx);
        if (c == -1 || c == '\n') {
            set_error(lx, tok, line, col, "unterminated string");
            return;
        }
        int ccol = lx->_col;
        bump(lx);
        if (c == '"') {
            break;
        }
        if (c == '\\') {
            int e = peek(lx);
            if (e == '"' || e == '\\') {
                bump(lx);
                c = e;
            } else if (!bad) {
                bad = true;
                if (e >= 0x21 && e < 0x7f) {
                    set_error(lx, tok, line, ccol,
                              "invalid escape \"\\%c\" in string "
                              "(only \\\" and \\\\ are allowed)",
                              e);
                } else {
                    set_error(lx, tok, line, ccol,
                              "invalid escape in string "
                              "(only \\\" and \\\\ are allowed)");
                }
                continue;
            }
        } else if (is_invalid((unsigned char)c) && !bad) {
            bad = true;
            set_error(lx, tok, line, ccol, "invalid character 0x%02x in string", c);
            continue;
        }
        if (n < CONF_TOKEN_MAX) {
            lx->_text[n] = (char)c;
        } else if (!bad) {
            bad = true;
            set_error(lx, tok, line, col, "string too long (max %d bytes)", CONF_TOKEN_MAX);
        }
        n++;
    }
    if (bad) {
        tok->end_col = lx->_col; /* the error token covers the whole string */
        return;
    }
    lx->_text[n] = '\0';
    set_token(lx, tok, CONF_TOK_STRING, lx->_text, line, col);
}

void conf_lex_next(struct conf_lexer *lx, struct conf_token *tok)
{
    skip_blanks_and_comments(lx);
    int line = lx->_line, col = lx->_col;
    int c = peek(lx);
    switch (c) {
    case -1:
        set_token(lx, tok, CONF_TOK_EOF, "", line, col);
        return;
    case '{':
        bump(lx);
        set_token(lx, tok, CONF_TOK_LBRACE, "{", line, col);
        return;
    case '}':
        bump(lx);
        set_token(lx, tok, CONF_TOK_RBRACE, "}", line, col);
        return;
    case ';':
        bump(lx);
        set_token(lx, tok, CONF_TOK_SEMI, ";", line, col);
        return;
    case '"':
        lex_string(lx, tok);
        return;
    default:
        break;
    }
    if (is_invalid((unsigned char)c)) {
        bump(lx);
        set_error(lx, tok, line, col, "invalid character 0x%02x", c);
        return;
    }
    lex_word(lx, tok);
}

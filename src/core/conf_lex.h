/* SPDX-License-Identifier: MIT */
/* The configuration lexer: turns a configuration text into words, quoted strings, '{', '}'
 * and ';', each with its file, line and column. It knows nothing about directives; the
 * parser (core/conf.c) does. */
#ifndef KEEL_CORE_CONF_LEX_H
#define KEEL_CORE_CONF_LEX_H

#include <stddef.h>

/* Longest word or string value, in bytes. Longer tokens are lexing errors: every value keel
 * accepts (names, paths, addresses) is far shorter, and the bound keeps the lexer free of
 * allocations. */
#define CONF_TOKEN_MAX 4096

enum conf_tok_kind {
    CONF_TOK_EOF = 0, /* end of input; text "" */
    CONF_TOK_WORD,    /* unquoted word: any run of printable bytes but space { } ; " */
    CONF_TOK_STRING,  /* "quoted string"; text is the value, escapes (\" \\) resolved */
    CONF_TOK_LBRACE,  /* { */
    CONF_TOK_RBRACE,  /* } */
    CONF_TOK_SEMI,    /* ; */
    CONF_TOK_ERROR    /* a lexing error; text is the message, the position is the culprit */
};

struct conf_token {
    enum conf_tok_kind kind;
    const char *text; /* NUL-terminated; see enum conf_tok_kind */
    size_t len;       /* strlen(text) (a string value cannot contain NUL) */
    const char *file; /* borrowed from the lexer's caller */
    int line;         /* 1-based line of the first byte */
    int col;          /* 1-based column (in bytes) of the first byte */
    int end_col;      /* column just after the last byte; tokens never span lines */
};

/* Lexer state. Fields are private to conf_lex.c. */
struct conf_lexer {
    const char *_file;
    const char *_src;
    size_t _len;
    size_t _off;
    int _line;
    int _col;
    char _text[CONF_TOKEN_MAX + 1]; /* the current token's text */
    char _msg[128];                 /* the current error token's message */
};

/* Start lexing src[0, len) (which may contain any bytes, NUL included). file names the input
 * in token positions; src and file are borrowed and must outlive the lexer. Never fails. */
void conf_lex_init(struct conf_lexer *lx, const char *file, const char *src, size_t len);

/* Read the next token into *tok. tok->text points into the lexer and stays valid until the
 * next call. After an error token, lexing resumes at a sensible place (the end of the line
 * for an unterminated string, the next byte for a stray character), so the caller can keep
 * going and report every error. Returns CONF_TOK_EOF forever at the end. Never blocks. */
void conf_lex_next(struct conf_lexer *lx, struct conf_token *tok);

/* Name of a token kind for messages: "word", "string", "\"{\"", "end of file", ... */
const char *conf_tok_kind_name(enum conf_tok_kind kind);

#endif

/* SPDX-License-Identifier: MIT */
/* Unit tests of core/conf_lex.c: token kinds, values, positions, comments and errors. */
#include <criterion/criterion.h>

#include "core/conf_lex.c"

struct expect {
    enum conf_tok_kind kind;
    const char *text;
    int line;
    int col;
    int end_col;
};

static void lex_expect(const char *src, size_t len, const struct expect *want, size_t n)
{
    struct conf_lexer lx;
    struct conf_token tok;
    conf_lex_init(&lx, "f.conf", src, len);
    for (size_t i = 0; i < n; i++) {
        conf_lex_next(&lx, &tok);
        cr_assert_eq(tok.kind, want[i].kind, "token %zu: kind %s, want %s", i,
                     conf_tok_kind_name(tok.kind), conf_tok_kind_name(want[i].kind));
        cr_assert_str_eq(tok.text, want[i].text, "token %zu", i);
        cr_assert_eq(tok.len, strlen(want[i].text), "token %zu", i);
        cr_assert_eq(tok.line, want[i].line, "token %zu: line %d", i, tok.line);
        cr_assert_eq(tok.col, want[i].col, "token %zu: col %d", i, tok.col);
        if (want[i].end_col != 0) {
            cr_assert_eq(tok.end_col, want[i].end_col, "token %zu: end_col %d", i, tok.end_col);
        }
        cr_assert_str_eq(tok.file, "f.conf");
    }
}

#define LEX(src, ...)                                                                              \
    do {                                                                                           \
        static const struct expect want_[] = {__VA_ARGS__};                                        \
        lex_expect(src, strlen(src), want_, sizeof(want_) / sizeof(want_[0]));                     \
    } while (0)

Test(conf_lex, words_punctuation_and_positions)
{
    LEX("backend web {\n  server a 1.2.3.4:80;\n}\n", {CONF_TOK_WORD, "backend", 1, 1, 8},
        {CONF_TOK_WORD, "web", 1, 9, 12}, {CONF_TOK_LBRACE, "{", 1, 13, 14},
        {CONF_TOK_WORD, "server", 2, 3, 9}, {CONF_TOK_WORD, "a", 2, 10, 11},
        {CONF_TOK_WORD, "1.2.3.4:80", 2, 12, 22}, {CONF_TOK_SEMI, ";", 2, 22, 23},
        {CONF_TOK_RBRACE, "}", 3, 1, 2}, {CONF_TOK_EOF, "", 4, 1, 0}, {CONF_TOK_EOF, "", 4, 1, 0});
}

Test(conf_lex, punctuation_ends_words)
{
    LEX("a;b{c}d", {CONF_TOK_WORD, "a", 1, 1, 2}, {CONF_TOK_SEMI, ";", 1, 2, 3},
        {CONF_TOK_WORD, "b", 1, 3, 4}, {CONF_TOK_LBRACE, "{", 1, 4, 5},
        {CONF_TOK_WORD, "c", 1, 5, 6}, {CONF_TOK_RBRACE, "}", 1, 6, 7},
        {CONF_TOK_WORD, "d", 1, 7, 8}, {CONF_TOK_EOF, "", 1, 8, 0});
}

Test(conf_lex, comments)
{
    LEX("# first\nworkers 2; # trailing { } \"\n# last", {CONF_TOK_WORD, "workers", 2, 1, 8},
        {CONF_TOK_WORD, "2", 2, 9, 10}, {CONF_TOK_SEMI, ";", 2, 10, 11},
        {CONF_TOK_EOF, "", 3, 7, 0});
    /* '#' starts a comment only at the start of a token. */
    LEX("path /a#b;", {CONF_TOK_WORD, "path", 1, 1, 5}, {CONF_TOK_WORD, "/a#b", 1, 6, 10},
        {CONF_TOK_SEMI, ";", 1, 10, 11});
    LEX("x;#c", {CONF_TOK_WORD, "x", 1, 1, 2}, {CONF_TOK_SEMI, ";", 1, 2, 3},
        {CONF_TOK_EOF, "", 1, 5, 0});
}

Test(conf_lex, whitespace_kinds)
{
    LEX("\ta\r\n\v\fb", {CONF_TOK_WORD, "a", 1, 2, 3}, {CONF_TOK_WORD, "b", 2, 3, 4});
}

Test(conf_lex, strings)
{
    LEX("\"a b\" \"\" \"q\\\"q\" \"b\\\\s\" \"{;}#\"", {CONF_TOK_STRING, "a b", 1, 1, 6},
        {CONF_TOK_STRING, "", 1, 7, 9}, {CONF_TOK_STRING, "q\"q", 1, 10, 16},
        {CONF_TOK_STRING, "b\\s", 1, 17, 23}, {CONF_TOK_STRING, "{;}#", 1, 24, 30},
        {CONF_TOK_EOF, "", 1, 30, 0});
    /* A quote ends a word and starts a string. */
    LEX("a\"b\"", {CONF_TOK_WORD, "a", 1, 1, 2}, {CONF_TOK_STRING, "b", 1, 2, 5});
    /* UTF-8 is allowed, columns count bytes. */
    LEX("\"caf\xc3\xa9\" x", {CONF_TOK_STRING, "caf\xc3\xa9", 1, 1, 8},
        {CONF_TOK_WORD, "x", 1, 9, 10});
}

Test(conf_lex, unterminated_string_resumes_on_next_line)
{
    LEX("a \"open\nb;", {CONF_TOK_WORD, "a", 1, 1, 2},
        {CONF_TOK_ERROR, "unterminated string", 1, 3, 0}, {CONF_TOK_WORD, "b", 2, 1, 2},
        {CONF_TOK_SEMI, ";", 2, 2, 3});
    LEX("\"open", {CONF_TOK_ERROR, "unterminated string", 1, 1, 0}, {CONF_TOK_EOF, "", 1, 6, 0});
}

Test(conf_lex, bad_escapes_and_characters_in_strings)
{
    LEX("\"a\\nb\" c",
        {CONF_TOK_ERROR, "invalid escape \"\\n\" in string (only \\\" and \\\\ are allowed)", 1, 3,
         7},
        {CONF_TOK_WORD, "c", 1, 8, 9});
    LEX("\"a\\", {CONF_TOK_ERROR, "unterminated string", 1, 1, 0});
    LEX("\"a\\ b\"",
        {CONF_TOK_ERROR, "invalid escape in string (only \\\" and \\\\ are allowed)", 1, 3, 7});
    LEX("\"a\tb\x01\"", {CONF_TOK_ERROR, "invalid character 0x01 in string", 1, 5, 7});
}

Test(conf_lex, invalid_characters)
{
    static const char src[] = "a\0b\x1b c\x7f";
    static const struct expect want[] = {
        {CONF_TOK_WORD, "a", 1, 1, 2}, {CONF_TOK_ERROR, "invalid character 0x00", 1, 2, 3},
        {CONF_TOK_WORD, "b", 1, 3, 4}, {CONF_TOK_ERROR, "invalid character 0x1b", 1, 4, 5},
        {CONF_TOK_WORD, "c", 1, 6, 7}, {CONF_TOK_ERROR, "invalid character 0x7f", 1, 7, 8},
        {CONF_TOK_EOF, "", 1, 8, 0},
    };
    lex_expect(src, sizeof(src) - 1, want, sizeof(want) / sizeof(want[0]));
}

Test(conf_lex, length_limits)
{
    static char src[CONF_TOKEN_MAX + 16];
    memset(src, 'w', CONF_TOKEN_MAX);
    src[CONF_TOKEN_MAX] = '\0';
    struct conf_lexer lx;
    struct conf_token tok;
    conf_lex_init(&lx, "f.conf", src, strlen(src));
    conf_lex_next(&lx, &tok);
    cr_assert_eq(tok.kind, CONF_TOK_WORD);
    cr_assert_eq(tok.len, CONF_TOKEN_MAX);

    src[CONF_TOKEN_MAX] = 'w';
    src[CONF_TOKEN_MAX + 1] = ';';
    conf_lex_init(&lx, "f.conf", src, CONF_TOKEN_MAX + 2);
    conf_lex_next(&lx, &tok);
    cr_assert_eq(tok.kind, CONF_TOK_ERROR);
    cr_assert_str_eq(tok.text, "word too long (4097 bytes, max 4096)");
    conf_lex_next(&lx, &tok);
    cr_assert_eq(tok.kind, CONF_TOK_SEMI);

    src[0] = '"';
    src[CONF_TOKEN_MAX + 2] = '"';
    conf_lex_init(&lx, "f.conf", src, CONF_TOKEN_MAX + 3);
    conf_lex_next(&lx, &tok);
    cr_assert_eq(tok.kind, CONF_TOK_ERROR);
    cr_assert_str_eq(tok.text, "string too long (max 4096 bytes)");
    conf_lex_next(&lx, &tok);
    cr_assert_eq(tok.kind, CONF_TOK_EOF);
}

Test(conf_lex, kind_names)
{
    cr_assert_str_eq(conf_tok_kind_name(CONF_TOK_EOF), "end of file");
    cr_assert_str_eq(conf_tok_kind_name(CONF_TOK_SEMI), "\";\"");
    cr_assert_str_eq(conf_tok_kind_name(CONF_TOK_STRING), "string");
}

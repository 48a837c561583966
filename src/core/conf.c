/* SPDX-License-Identifier: MIT */
/* Configuration loading: the block parser that drives the directive tables, error collection
 * in GCC format, option lines, the validation driver, and freeing. Tokenizing is
 * core/conf_lex.c; values and the generic setters are core/conf_value.c; the tables are
 * core/conf_registry.c and each subsystem's *_conf.c. Load time only: blocking file I/O is
 * allowed here. */
#include "core/conf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/conf_registry.h"

#define CONF_FILE_MAX (16u << 20) /* a configuration file over 16 MiB is a mistake */
#define CONF_MSG_MAX 512          /* one error message; longer ones are truncated */
#define CONF_SEEN_MAX 64          /* distinct directives in one block (tables are smaller) */

/* ------------------------------------------------------------------------------------------
 * Parser state
 * ------------------------------------------------------------------------------------------ */

struct conf_error_entry {
    bool has_file;            /* false: not about a place in a file */
    char file[CONF_PATH_MAX]; /* a copy: positions may live in short-lived frames */
    int line;                 /* 0: about the whole file */
    int col;
    char msg[CONF_MSG_MAX];
};

/* How the statement being parsed ended: the lookahead token, or a word on a later line that
 * names a directive (the previous line lacks its ';'). */
enum stmt_end { STMT_END_SEMI = 0, STMT_END_LBRACE, STMT_END_RBRACE, STMT_END_EOF, STMT_END_SPLIT };

/* How parsing a block body ended. */
enum body_end {
    BODY_CLOSED = 0, /* its '}' */
    BODY_EOF,        /* end of file, reported */
    BODY_UNWOUND,    /* a top-level block started inside: the '}' is missing (reported); the
                      * statement is pending for the enclosing block */
    BODY_STOPPED     /* too many errors or out of memory */
};

struct seen_entry {
    const struct conf_directive *d;
    int line;
};

/* A block being parsed: the top level or a { } body. */
struct frame {
    uint32_t ctx;
    void *obj;                      /* NULL: check the body, apply nothing (its header was wrong) */
    char label[CONF_NAME_MAX + 32]; /* for messages: frontend "www" */
    struct conf_pos pos;            /* of the block's directive name */
    int open_line;                  /* of its '{' */
    struct seen_entry seen[CONF_SEEN_MAX];
    size_t n_seen;
};

struct conf_parser {
    struct conf *conf;
    const char *file;
    unsigned flags;
    struct conf_lexer lx;
    struct conf_token la; /* lookahead; its text lives in lx */

    /* The statement being parsed: tokens (with text copied into the arena) and how it
     * ended. Text offsets are kept apart because the arena moves when it grows. */
    struct conf_token *st;
    size_t *st_off;
    size_t st_n;
    size_t st_cap;
    char *arena;
    size_t arena_used;
    size_t arena_cap;
    enum stmt_end st_end;
    bool st_pending; /* an unwound statement waits for the enclosing block */

    struct conf_error_entry errs[CONF_MAX_ERRORS];
    unsigned n_errs;
    bool too_many;
    bool oom;
};

static bool stopped(const struct conf_parser *cp)
{
    return cp->too_many || cp->oom;
}

/* ------------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------------ */

static void __attribute__((format(printf, 5, 0)))
verror(struct conf_parser *cp, const char *file, int line, int col, const char *fmt, va_list ap)
{
    if (cp->n_errs == CONF_MAX_ERRORS) {
        cp->too_many = true;
        return;
    }
    struct conf_error_entry *e = &cp->errs[cp->n_errs++];
    e->has_file = file != NULL;
    (void)snprintf(e->file, sizeof(e->file), "%s", file != NULL ? file : ""); /* may truncate */
    e->line = line;
    e->col = col;
    (void)vsnprintf(e->msg, sizeof(e->msg), fmt, ap); /* truncation is acceptable */
}

void conf_error(struct conf_parser *cp, const struct conf_token *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(cp, at->file, at->line, at->col, fmt, ap);
    va_end(ap);
}

void conf_error_at(struct conf_parser *cp, const struct conf_pos *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(cp, pos->file, pos->line, pos->col, fmt, ap);
    va_end(ap);
}

/* Report just after a token: where a missing ';' or '{' belongs. */
static void __attribute__((format(printf, 3, 4)))
error_after(struct conf_parser *cp, const struct conf_token *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(cp, at->file, at->line, at->end_col, fmt, ap);
    va_end(ap);
}

void conf_parser_oom(struct conf_parser *cp)
{
    cp->oom = true;
}

struct conf *conf_parser_conf(struct conf_parser *cp)
{
    return cp->conf;
}

unsigned conf_parser_flags(const struct conf_parser *cp)
{
    return cp->flags;
}

void conf_pos_set(struct conf_pos *pos, const struct conf_token *tok)
{
    (void)snprintf(pos->file, sizeof(pos->file), "%s", tok->file); /* may truncate */
    pos->line = tok->line;
    pos->col = tok->col;
}

static int errcmp(const struct conf_error_entry *a, const struct conf_error_entry *b)
{
    if (a->has_file != b->has_file) {
        return a->has_file ? 1 : -1;
    }
    if (a->line != b->line) {
        return a->line < b->line ? -1 : 1;
    }
    return a->col < b->col ? -1 : a->col > b->col;
}

static int errors_append(struct conf_errors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int errors_append(struct conf_errors *errs, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return -EINVAL;
    }
    char *text = realloc(errs->text, errs->len + (size_t)n + 1);
    if (text == NULL) {
        return -ENOMEM;
    }
    errs->text = text;
    va_start(ap, fmt);
    (void)vsnprintf(text + errs->len, (size_t)n + 1, fmt, ap); /* sized above */
    va_end(ap);
    errs->len += (size_t)n;
    errs->count++;
    return 0;
}

/* Render the collected errors in position order (the parser finds syntax errors in order and
 * cross-reference errors at the end; readers want them as a compiler prints them). */
static void errors_render(struct conf_parser *cp, struct conf_errors *errs)
{
    struct conf_error_entry *e = cp->errs;
    for (unsigned i = 1; i < cp->n_errs; i++) { /* stable insertion sort; n <= 20 */
        struct conf_error_entry tmp = e[i];
        unsigned j = i;
        while (j > 0 && errcmp(&e[j - 1], &tmp) > 0) {
            e[j] = e[j - 1];
            j--;
        }
        e[j] = tmp;
    }
    int rc = 0;
    for (unsigned i = 0; i < cp->n_errs && rc == 0; i++) {
        if (!e[i].has_file) {
            rc = errors_append(errs, "error: %s\n", e[i].msg);
        } else if (e[i].line <= 0) {
            rc = errors_append(errs, "%s: error: %s\n", e[i].file, e[i].msg);
        } else {
            rc = errors_append(errs, "%s:%d:%d: error: %s\n", e[i].file, e[i].line, e[i].col,
                               e[i].msg);
        }
    }
    if (rc == 0 && cp->too_many) {
        rc = errors_append(errs, "%s: error: too many errors, stopping after %d\n", cp->file,
                           CONF_MAX_ERRORS);
        errs->count--; /* not an error of its own */
    }
    if (rc == 0 && cp->oom) {
        rc = errors_append(errs, "error: out of memory while loading %s\n", cp->file);
    }
    (void)rc; /* OOM while rendering: the caller still gets the return code */
}

void conf_errors_fini(struct conf_errors *errs)
{
    if (errs == NULL) {
        return;
    }
    free(errs->text);
    errs->text = NULL;
    errs->len = 0;
    errs->count = 0;
}

/* ------------------------------------------------------------------------------------------
 * Suggestions
 * ------------------------------------------------------------------------------------------ */

#define MATCH_LEN_MAX 64

/* Optimal string alignment distance (Levenshtein plus adjacent transpositions, so "wieght"
 * is one edit from "weight"). Words longer than MATCH_LEN_MAX are never close. */
static unsigned edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > MATCH_LEN_MAX || lb > MATCH_LEN_MAX) {
        return UINT32_MAX;
    }
    unsigned rows[3][MATCH_LEN_MAX + 1];
    unsigned *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++) {
        prev[j] = (unsigned)j;
    }
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
            unsigned v = prev[j] + 1;
            if (cur[j - 1] + 1 < v) {
                v = cur[j - 1] + 1;
            }
            if (prev[j - 1] + cost < v) {
                v = prev[j - 1] + cost;
            }
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < v) {
                v = prev2[j - 2] + 1;
            }
            cur[j] = v;
        }
        unsigned *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

void conf_match_init(struct conf_match *m)
{
    m->best = NULL;
    m->dist = 3;
}

void conf_match_try(struct conf_match *m, const char *word, const char *candidate)
{
    unsigned d = edit_distance(word, candidate);
    if (d < m->dist && d > 0) {
        m->best = candidate;
        m->dist = d;
    }
}

/* ------------------------------------------------------------------------------------------
 * Directive lookup
 * ------------------------------------------------------------------------------------------ */

static const char *ctx_name(uint32_t ctx)
{
    switch (ctx) {
    case CONF_CTX_MAIN:
        return "top level";
    case CONF_CTX_CLUSTER:
        return "cluster";
    case CONF_CTX_GLOBAL:
        return "global";
    case CONF_CTX_NODE:
        return "node";
    case CONF_CTX_FRONTEND:
        return "frontend";
    case CONF_CTX_BACKEND:
        return "backend";
    case CONF_CTX_APP:
        return "app";
    case CONF_CTX_VIP:
        return "vip";
    case CONF_CTX_DATABASE:
        return "database";
    case CONF_CTX_LOCATION:
        return "location";
    default:
        return "?";
    }
}

/* The directive called name that is valid in ctx, or NULL. *where gets the union of the
 * contexts in which some directive of that name is valid (0: unknown everywhere). */
static const struct conf_directive *find_directive(const char *name, uint32_t ctx, uint32_t *where)
{
    size_t n_sections;
    const struct conf_section *const *sections = conf_registry_sections(&n_sections);
    *where = 0;
    for (size_t s = 0; s < n_sections; s++) {
        for (size_t i = 0; i < sections[s]->n_directives; i++) {
            const struct conf_directive *d = &sections[s]->directives[i];
            if (strcmp(d->name, name) == 0) {
                if (d->contexts & ctx) {
                    return d;
                }
                *where |= d->contexts;
            }
        }
    }
    return NULL;
}

static bool is_directive_in(const char *name, uint32_t ctx)
{
    uint32_t where;
    return find_directive(name, ctx, &where) != NULL;
}

static void report_unknown(struct conf_parser *cp, const struct conf_token *tok, uint32_t ctx,
                           uint32_t where)
{
    if (where != 0) {
        char list[128] = "";
        size_t len = 0;
        for (uint32_t bit = CONF_CTX_MAIN; bit != 0; bit <<= 1) { /* every context bit */
            if (where & bit) {
                int w = snprintf(list + len, sizeof(list) - len, "%s%s", len ? ", " : "",
                                 ctx_name(bit));
                if (w > 0 && (size_t)w < sizeof(list) - len) {
                    len += (size_t)w;
                }
            }
        }
        conf_error(cp, tok, "directive \"%s\" is not allowed %s%s (allowed in: %s)", tok->text,
                   ctx == CONF_CTX_MAIN ? "at " : "in ", ctx_name(ctx), list);
        return;
    }
    struct conf_match m;
    conf_match_init(&m);
    size_t n_sections;
    const struct conf_section *const *sections = conf_registry_sections(&n_sections);
    for (size_t s = 0; s < n_sections; s++) {
        for (size_t i = 0; i < sections[s]->n_directives; i++) {
            const struct conf_directive *d = &sections[s]->directives[i];
            if (d->contexts & ctx) {
                conf_match_try(&m, tok->text, d->name);
            }
        }
    }
    if (m.best != NULL) {
        conf_error(cp, tok, "unknown directive \"%s\" (did you mean \"%s\"?)", tok->text, m.best);
    } else {
        conf_error(cp, tok, "unknown directive \"%s\"", tok->text);
    }
}

/* ------------------------------------------------------------------------------------------
 * Tokens and statements
 * ------------------------------------------------------------------------------------------ */

/* Move past the lookahead, reporting it if it is a lexing error: every token goes through
 * here exactly once, so every lexing error is reported exactly once. */
static void advance(struct conf_parser *cp)
{
    if (cp->la.kind == CONF_TOK_ERROR) {
        conf_error(cp, &cp->la, "%s", cp->la.text);
    }
    conf_lex_next(&cp->lx, &cp->la);
}

static bool is_word(enum conf_tok_kind k)
{
    return k == CONF_TOK_WORD || k == CONF_TOK_STRING || k == CONF_TOK_ERROR;
}

/* Append the lookahead to the statement and move past it. */
static bool stmt_push(struct conf_parser *cp)
{
    if (cp->st_n == cp->st_cap) {
        size_t cap = cp->st_cap ? cp->st_cap * 2 : 16;
        struct conf_token *st = realloc(cp->st, cap * sizeof(*st));
        if (st == NULL) {
            return false;
        }
        cp->st = st;
        size_t *off = realloc(cp->st_off, cap * sizeof(*off));
        if (off == NULL) {
            return false;
        }
        cp->st_off = off;
        cp->st_cap = cap;
    }
    size_t need = cp->la.len + 1;
    if (cp->arena_cap - cp->arena_used < need) {
        size_t cap = cp->arena_cap ? cp->arena_cap : 1024;
        while (cap - cp->arena_used < need) {
            cap *= 2;
        }
        char *arena = realloc(cp->arena, cap);
        if (arena == NULL) {
            return false;
        }
        cp->arena = arena;
        cp->arena_cap = cap;
    }
    memcpy(cp->arena + cp->arena_used, cp->la.text, need);
    cp->st_off[cp->st_n] = cp->arena_used;
    cp->st[cp->st_n++] = cp->la;
    cp->arena_used += need;
    advance(cp);
    return true;
}

/* Collect the statement that starts at the lookahead (a word, string or error token) up to
 * its end, without consuming a terminating ';' '{' '}'. A plain word on a later line that
 * names a directive of ctx ends the statement too: the author forgot a ';', and splitting
 * there gives one precise error instead of an argument-count error and a cascade. */
static bool stmt_collect(struct conf_parser *cp, uint32_t ctx)
{
    bool split = false;
    cp->st_n = 0;
    cp->arena_used = 0;
    do {
        if (!stmt_push(cp)) {
            conf_parser_oom(cp);
            return false;
        }
        const struct conf_token *last = &cp->st[cp->st_n - 1];
        split = cp->la.kind == CONF_TOK_WORD && cp->la.line > last->line &&
                is_directive_in(cp->la.text, ctx);
    } while (!split && is_word(cp->la.kind));
    for (size_t i = 0; i < cp->st_n; i++) {
        cp->st[i].text = cp->arena + cp->st_off[i];
    }
    if (split) {
        cp->st_end = STMT_END_SPLIT;
        return true;
    }
    switch (cp->la.kind) {
    case CONF_TOK_SEMI:
        cp->st_end = STMT_END_SEMI;
        break;
    case CONF_TOK_LBRACE:
        cp->st_end = STMT_END_LBRACE;
        break;
    case CONF_TOK_RBRACE:
        cp->st_end = STMT_END_RBRACE;
        break;
    default:
        cp->st_end = STMT_END_EOF;
        break;
    }
    return true;
}

/* Skip a { } block the parser cannot interpret, from its '{' (the lookahead) to the matching
 * '}', still reporting lexing errors inside. */
static void skip_block(struct conf_parser *cp)
{
    int open_line = cp->la.line;
    unsigned depth = 0;
    do {
        if (cp->la.kind == CONF_TOK_EOF) {
            conf_error(cp, &cp->la, "expected \"}\" at end of file (block opened at line %d)",
                       open_line);
            return;
        }
        if (cp->la.kind == CONF_TOK_LBRACE) {
            depth++;
        } else if (cp->la.kind == CONF_TOK_RBRACE) {
            depth--;
        }
        advance(cp);
    } while (depth > 0 && !stopped(cp));
}

/* ------------------------------------------------------------------------------------------
 * Blocks and statements
 * ------------------------------------------------------------------------------------------ */

static enum body_end parse_body(struct conf_parser *cp, struct frame *f);

static void apply_defaults(struct conf_parser *cp, uint32_t ctx, void *obj)
{
    size_t n_sections;
    const struct conf_section *const *sections = conf_registry_sections(&n_sections);
    for (size_t s = 0; s < n_sections; s++) {
        for (size_t i = 0; i < sections[s]->n_directives; i++) {
            const struct conf_directive *d = &sections[s]->directives[i];
            if ((d->contexts & ctx) == 0 || d->def == NULL || d->set == NULL) {
                continue;
            }
            struct conf_token tok[2] = {
                {.kind = CONF_TOK_WORD,
                 .text = d->name,
                 .len = strlen(d->name),
                 .file = "<default>",
                 .line = 0,
                 .col = 0,
                 .end_col = 0},
                {.kind = CONF_TOK_WORD,
                 .text = d->def,
                 .len = strlen(d->def),
                 .file = "<default>",
                 .line = 0,
                 .col = 0,
                 .end_col = 0},
            };
            /* A default the setter rejects is a bug in a table; it is reported (and the unit
             * tests load an empty configuration, so it cannot go unnoticed). */
            (void)d->set(cp, d, obj, tok, 2);
        }
    }
}

static void check_required(struct conf_parser *cp, const struct frame *f)
{
    size_t n_sections;
    const struct conf_section *const *sections = conf_registry_sections(&n_sections);
    for (size_t s = 0; s < n_sections; s++) {
        for (size_t i = 0; i < sections[s]->n_directives; i++) {
            const struct conf_directive *d = &sections[s]->directives[i];
            if ((d->contexts & f->ctx) == 0 || (d->flags & CONF_F_REQUIRED) == 0) {
                continue;
            }
            bool found = false;
            for (size_t k = 0; k < f->n_seen && !found; k++) {
                found = f->seen[k].d == d;
            }
            if (!found) {
                conf_error_at(cp, &f->pos, "%s has no \"%s\" directive", f->label, d->name);
            }
        }
    }
}

static void report_arg_count(struct conf_parser *cp, const struct conf_directive *d, size_t nargs)
{
    const struct conf_token *at = nargs > d->max_args ? &cp->st[1 + d->max_args] : &cp->st[0];
    char want[48];
    if (d->min_args == d->max_args) {
        if (d->min_args == 0) {
            (void)snprintf(want, sizeof(want), "no arguments");
        } else {
            (void)snprintf(want, sizeof(want), "%u argument%s", d->min_args,
                           d->min_args == 1 ? "" : "s");
        }
    } else if (d->max_args == CONF_ARGS_MANY) {
        (void)snprintf(want, sizeof(want), "at least %u argument%s", d->min_args,
                       d->min_args == 1 ? "" : "s");
    } else {
        (void)snprintf(want, sizeof(want), "%u to %u arguments", d->min_args, d->max_args);
    }
    conf_error(cp, at, "\"%s\" takes %s, got %zu (usage: %s)", d->name, want, nargs, d->syntax);
}

/* Parse a block directive's body; the statement in cp->st is its header and the lookahead is
 * its '{'. apply: whether the header was valid and the parent is being applied. */
static enum body_end parse_block(struct conf_parser *cp, const struct conf_directive *d,
                                 struct frame *parent, bool apply)
{
    struct frame *f = calloc(1, sizeof(*f)); /* over 2 KiB: keep it off the stack */
    if (f == NULL) {
        conf_parser_oom(cp);
        return BODY_STOPPED;
    }
    f->ctx = d->block_ctx;
    if (cp->st_n >= 2) {
        (void)snprintf(f->label, sizeof(f->label), "%s \"%.*s\"", d->name, CONF_NAME_MAX,
                       cp->st[1].text);
    } else {
        (void)snprintf(f->label, sizeof(f->label), "%s", d->name);
    }
    conf_pos_set(&f->pos, &cp->st[0]);
    f->open_line = cp->la.line;
    if (apply && parent->obj != NULL) {
        f->obj = d->open(cp, d, parent->obj, cp->st, cp->st_n);
        if (f->obj != NULL) {
            apply_defaults(cp, f->ctx, f->obj);
        }
    }
    advance(cp); /* '{' */
    enum body_end end = parse_body(cp, f);
    if ((end == BODY_CLOSED || end == BODY_UNWOUND) && f->obj != NULL) {
        check_required(cp, f);
    }
    free(f);
    return end;
}

/* A top-level block directive written inside a block, followed by '{', means the enclosing
 * block's '}' is missing. */
static bool is_missing_close(struct conf_parser *cp, const struct frame *f)
{
    if (f->ctx == CONF_CTX_MAIN || cp->st_end != STMT_END_LBRACE) {
        return false;
    }
    uint32_t where;
    const struct conf_directive *d = find_directive(cp->st[0].text, CONF_CTX_MAIN, &where);
    return d != NULL && d->block_ctx != 0;
}

/* Finish a statement that will not be applied: consume its terminator. */
static void stmt_discard(struct conf_parser *cp)
{
    if (cp->st_end == STMT_END_SEMI) {
        advance(cp);
    } else if (cp->st_end == STMT_END_LBRACE) {
        skip_block(cp);
    }
}

static bool stmt_has_error(const struct conf_parser *cp)
{
    for (size_t i = 0; i < cp->st_n; i++) {
        if (cp->st[i].kind == CONF_TOK_ERROR) {
            return true;
        }
    }
    return false;
}

/* Check the terminator against the directive's kind and consume it. Returns false when the
 * statement must not be applied (the terminator was consumed or skipped as needed). */
static bool stmt_terminate(struct conf_parser *cp, const struct conf_directive *d)
{
    const struct conf_token *last = &cp->st[cp->st_n - 1];
    if (d->block_ctx != 0) {
        if (cp->st_end == STMT_END_LBRACE) {
            return true; /* parse_block consumes it */
        }
        if (cp->st_end == STMT_END_SEMI) {
            conf_error(cp, &cp->la, "\"%s\" needs a block (usage: %s)", d->name, d->syntax);
            advance(cp);
        } else {
            error_after(cp, last, "expected \"{\" after \"%s\"", last->text);
        }
        return false;
    }
    switch (cp->st_end) {
    case STMT_END_SEMI:
        advance(cp);
        return true;
    case STMT_END_LBRACE:
        conf_error(cp, &cp->la, "\"%s\" does not take a block (usage: %s)", d->name, d->syntax);
        skip_block(cp);
        return false;
    default:
        /* Missing ';': report where it belongs and apply the directive anyway. */
        error_after(cp, last, "expected \";\" after \"%s\"", last->text);
        return true;
    }
}

/* Record d as seen in f; false (after reporting) if it was already and may not repeat. */
static bool mark_seen(struct conf_parser *cp, struct frame *f, const struct conf_directive *d)
{
    for (size_t i = 0; i < f->n_seen; i++) {
        if (f->seen[i].d == d) {
            if (d->flags & CONF_F_REPEAT) {
                return true;
            }
            conf_error(cp, &cp->st[0], "duplicate \"%s\" (first at line %d)", d->name,
                       f->seen[i].line);
            return false;
        }
    }
    if (f->n_seen < CONF_SEEN_MAX) {
        f->seen[f->n_seen].d = d;
        f->seen[f->n_seen].line = cp->st[0].line;
        f->n_seen++;
    }
    return true;
}

/* Process the statement in cp->st within f. */
static enum body_end statement(struct conf_parser *cp, struct frame *f)
{
    const struct conf_token *name = &cp->st[0];
    uint32_t where;
    const struct conf_directive *d = find_directive(name->text, f->ctx, &where);
    if (stmt_has_error(cp)) {
        /* Already reported; its other problems would be noise. It still counts as written,
         * so that a required directive with a typo in its value is not also "missing". */
        if (d != NULL && name->kind != CONF_TOK_ERROR && f->n_seen < CONF_SEEN_MAX) {
            f->seen[f->n_seen].d = d;
            f->seen[f->n_seen].line = name->line;
            f->n_seen++;
        }
        stmt_discard(cp);
        return BODY_CLOSED;
    }
    if ((d == NULL || d->block_ctx == 0) && is_missing_close(cp, f)) {
        conf_error(cp, name, "expected \"}\" before \"%s\" (%s opened at line %d)", name->text,
                   f->label, f->open_line);
        cp->st_pending = true;
        return BODY_UNWOUND;
    }
    if (d == NULL) {
        report_unknown(cp, name, f->ctx, where);
        stmt_discard(cp);
        return BODY_CLOSED;
    }
    bool apply = mark_seen(cp, f, d);
    if (!stmt_terminate(cp, d)) {
        return BODY_CLOSED;
    }
    size_t nargs = cp->st_n - 1;
    if (nargs < d->min_args || (d->max_args != CONF_ARGS_MANY && nargs > d->max_args)) {
        report_arg_count(cp, d, nargs);
        apply = false;
    }
    if (d->block_ctx != 0) {
        enum body_end end = parse_block(cp, d, f, apply);
        return end == BODY_UNWOUND ? BODY_CLOSED : end;
    }
    if (apply && f->obj != NULL) {
        (void)d->set(cp, d, f->obj, cp->st, cp->st_n); /* reports its own errors */
    }
    return BODY_CLOSED;
}

/* Parse statements until the block's '}' (or the end of file at the top level). */
static enum body_end parse_body(struct conf_parser *cp, struct frame *f)
{
    bool top = f->ctx == CONF_CTX_MAIN;
    for (;;) {
        if (stopped(cp)) {
            return BODY_STOPPED;
        }
        if (cp->st_pending) {
            cp->st_pending = false;
        } else {
            switch (cp->la.kind) {
            case CONF_TOK_EOF:
                if (!top) {
                    conf_error(cp, &cp->la, "expected \"}\" at end of file (%s opened at line %d)",
                               f->label, f->open_line);
                }
                return BODY_EOF;
            case CONF_TOK_RBRACE:
                if (top) {
                    conf_error(cp, &cp->la, "unexpected \"}\"");
                    advance(cp);
                    continue;
                }
                advance(cp);
                return BODY_CLOSED;
            case CONF_TOK_SEMI:
                conf_error(cp, &cp->la, "unexpected \";\"");
                advance(cp);
                continue;
            case CONF_TOK_LBRACE:
                conf_error(cp, &cp->la, "unexpected \"{\" (a block must follow a directive)");
                skip_block(cp);
                continue;
            default:
                if (!stmt_collect(cp, f->ctx)) {
                    return BODY_STOPPED;
                }
                break;
            }
        }
        enum body_end end = statement(cp, f);
        if (end != BODY_CLOSED) {
            return end;
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * Options and arrays
 * ------------------------------------------------------------------------------------------ */

static const struct conf_directive *find_option(const struct conf_directive *opts, size_t n_opts,
                                                const char *name)
{
    for (size_t i = 0; i < n_opts; i++) {
        if (strcmp(opts[i].name, name) == 0) {
            return &opts[i];
        }
    }
    return NULL;
}

int conf_parse_options(struct conf_parser *cp, const struct conf_directive *opts, size_t n_opts,
                       uint32_t ctx, const char *what, const char *where, void *obj,
                       const struct conf_token *tok, size_t n)
{
    uint64_t seen = 0; /* option tables are short */
    int rc = 0;
    for (size_t i = 0; i < n;) {
        const struct conf_directive *o = find_option(opts, n_opts, tok[i].text);
        if (o == NULL) {
            struct conf_match m;
            conf_match_init(&m);
            for (size_t k = 0; k < n_opts; k++) {
                if (opts[k].contexts & ctx) {
                    conf_match_try(&m, tok[i].text, opts[k].name);
                }
            }
            if (m.best != NULL) {
                conf_error(cp, &tok[i], "unknown %s \"%s\" (did you mean \"%s\"?)", what,
                           tok[i].text, m.best);
            } else {
                conf_error(cp, &tok[i], "unknown %s \"%s\"", what, tok[i].text);
            }
            return -KEEL_ECONFIG; /* the rest cannot be read reliably */
        }
        if ((o->contexts & ctx) == 0) {
            conf_error(cp, &tok[i], "%s \"%s\" is not allowed in %s", what, o->name, where);
            return -KEEL_ECONFIG;
        }
        size_t bit = (size_t)(o - opts) % 64;
        if ((seen >> bit) & 1u && (o->flags & CONF_F_REPEAT) == 0) {
            conf_error(cp, &tok[i], "%s \"%s\" given twice", what, o->name);
            rc = -KEEL_ECONFIG;
        }
        seen |= (uint64_t)1 << bit;
        if (o->max_args > 0) {
            if (i + 1 >= n) {
                conf_error(cp, &tok[i], "%s \"%s\" needs a value (usage: %s)", what, o->name,
                           o->syntax);
                return -KEEL_ECONFIG;
            }
            if (o->set(cp, o, obj, &tok[i], 2) != 0) {
                rc = -KEEL_ECONFIG;
            }
            i += 2;
        } else {
            if (o->set(cp, o, obj, &tok[i], 1) != 0) {
                rc = -KEEL_ECONFIG;
            }
            i += 1;
        }
    }
    return rc;
}

void *conf_array_push(struct conf_parser *cp, void **arr, uint32_t *n, size_t elem_size)
{
    uint32_t count = *n;
    /* Capacity is implied by the count: 4, then powers of two. */
    if (count == 0 || (count >= 4 && (count & (count - 1)) == 0)) {
        size_t cap = count == 0 ? 4 : (size_t)count * 2;
        if (count >= UINT32_MAX / 2 || cap > SIZE_MAX / elem_size) {
            conf_parser_oom(cp);
            return NULL;
        }
        void *grown = realloc(*arr, cap * elem_size);
        if (grown == NULL) {
            conf_parser_oom(cp);
            return NULL;
        }
        *arr = grown;
    }
    char *elem = (char *)*arr + (size_t)count * elem_size;
    memset(elem, 0, elem_size);
    *n = count + 1;
    return elem;
}

/* ------------------------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------------------------ */

static void parser_free(struct conf_parser *cp)
{
    if (cp == NULL) {
        return;
    }
    free(cp->st);
    free(cp->st_off);
    free(cp->arena);
    free(cp);
}

int conf_load_mem(const char *name, const char *text, size_t len, unsigned flags, struct conf **out,
                  struct conf_errors *errs)
{
    memset(errs, 0, sizeof(*errs));
    *out = NULL;
    struct conf_parser *cp = calloc(1, sizeof(*cp));
    struct conf *conf = calloc(1, sizeof(*conf));
    if (cp == NULL || conf == NULL) {
        free(cp);
        free(conf);
        (void)errors_append(errs, "error: out of memory while loading %s\n", name);
        return -ENOMEM;
    }
    cp->conf = conf;
    cp->file = name;
    cp->flags = flags;
    apply_defaults(cp, CONF_CTX_GLOBAL, &conf->global); /* global { } is optional */

    struct frame *top = calloc(1, sizeof(*top));
    if (top == NULL) {
        conf_parser_oom(cp);
    } else {
        top->ctx = CONF_CTX_MAIN;
        top->obj = conf;
        conf_lex_init(&cp->lx, name, text, len);
        conf_lex_next(&cp->lx, &cp->la);
        (void)parse_body(cp, top); /* errors are collected in cp */
        free(top);
    }

    size_t n_sections;
    const struct conf_section *const *sections = conf_registry_sections(&n_sections);
    for (size_t s = 0; s < n_sections && !stopped(cp); s++) {
        if (sections[s]->validate != NULL) {
            sections[s]->validate(cp, conf);
        }
    }

    int rc = cp->oom ? -ENOMEM : cp->n_errs > 0 || cp->too_many ? -KEEL_ECONFIG : 0;
    for (size_t s = 0; s < n_sections && rc == 0; s++) {
        struct errbuf eb = {{0}};
        if (sections[s]->expand != NULL && sections[s]->expand(conf, flags, &eb) != 0) {
            (void)errors_append(errs, "%s:%s\n", name, eb.msg);
            conf_free(conf);
            parser_free(cp);
            return -KEEL_ECONFIG;
        }
    }
    if (rc != 0) {
        errors_render(cp, errs);
        conf_free(conf);
    } else {
        *out = conf;
    }
    parser_free(cp);
    return rc;
}

int conf_load_string(const char *name, const char *text, size_t len, struct conf **out,
                     struct conf_errors *errs)
{
    return conf_load_mem(name, text, len, 0, out, errs);
}

/* Read all of fd (regular file, pipe or /dev/stdin), at most CONF_FILE_MAX bytes. The size
 * is not taken from fstat(): pipes have none. */
static int read_all(int fd, char **out, size_t *out_len)
{
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        return -ENOMEM;
    }
    for (;;) {
        if (len == cap) {
            if (cap > CONF_FILE_MAX) { /* the buffer ends one doubling past the limit */
                free(buf);
                return -EFBIG;
            }
            char *grown = realloc(buf, cap * 2);
            if (grown == NULL) {
                free(buf);
                return -ENOMEM;
            }
            buf = grown;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n == -1) {
            int err = errno;
            if (err == EINTR) {
                continue;
            }
            free(buf);
            return -err;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    if (len > CONF_FILE_MAX) {
        free(buf);
        return -EFBIG;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

int conf_load_file(const char *path, struct conf **out, struct conf_errors *errs)
{
    memset(errs, 0, sizeof(*errs));
    *out = NULL;
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd == -1 && errno == EINTR);
    if (fd == -1) {
        int err = errno;
        (void)errors_append(errs, "error: cannot open %s: %s\n", path, strerror(err));
        return -err;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = read_all(fd, &text, &len);
    (void)close(fd); /* read-only: nothing to lose */
    if (rc == -EFBIG) {
        (void)errors_append(errs, "error: cannot read %s: file larger than %u MiB\n", path,
                            CONF_FILE_MAX >> 20);
        return rc;
    }
    if (rc != 0) {
        (void)errors_append(errs, "error: cannot read %s: %s\n", path, strerror(-rc));
        return rc;
    }
    rc = conf_load_mem(path, text, len, 0, out, errs);
    free(text);
    return rc;
}

void conf_free(struct conf *conf)
{
    if (conf == NULL) {
        return;
    }
    for (uint32_t i = 0; i < conf->n_frontends; i++) {
        free(conf->frontends[i].binds);
        conf->frontends[i].binds = NULL;
        free(conf->frontends[i].tls.certs);
        conf->frontends[i].tls.certs = NULL;
    }
    for (uint32_t i = 0; i < conf->n_backends; i++) {
        free(conf->backends[i].servers);
        conf->backends[i].servers = NULL;
    }
    for (uint32_t i = 0; i < conf->n_frontends; i++) {
        free(conf->frontends[i].locations);
        conf->frontends[i].locations = NULL;
    }
    for (uint32_t i = 0; i < conf->n_apps; i++) {
        struct conf_app *app = &conf->apps[i];
        for (uint32_t k = 0; k < app->argc; k++) {
            free(app->argv[k]);
        }
        free(app->argv);
        app->argv = NULL;
        for (uint32_t k = 0; k < app->n_env; k++) {
            free(app->env[k]);
        }
        free(app->env);
        app->env = NULL;
    }
    free(conf->apps);
    free(conf->vips);
    free(conf->databases);
    free(conf->frontends);
    free(conf->backends);
    free(conf->nodes);
    free(conf);
}

const struct conf_backend *conf_find_backend(const struct conf *conf, const char *name)
{
    for (uint32_t i = 0; i < conf->n_backends; i++) {
        if (strcmp(conf->backends[i].name, name) == 0) {
            return &conf->backends[i];
        }
    }
    return NULL;
}

const struct conf_node *conf_find_node(const struct conf *conf, const char *name)
{
    for (uint32_t i = 0; i < conf->n_nodes; i++) {
        if (strcmp(conf->nodes[i].name, name) == 0) {
            return &conf->nodes[i];
        }
    }
    return NULL;
}

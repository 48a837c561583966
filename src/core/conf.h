/* SPDX-License-Identifier: MIT */
/* Loading a configuration: lex, parse against the directive tables, validate
 * cross-references, and return an immutable struct conf. Blocking file I/O and name
 * resolution: only at boot, on reload and in `keel check`. */
#ifndef KEEL_CORE_CONF_H
#define KEEL_CORE_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "core/conf-t.h"
#include "core/conf_lex.h"
#include "core/conf_value.h"
#include "core/err.h"

/* Every error found, one per line, each "file:line:col: error: message", at most
 * CONF_MAX_ERRORS of them (then one "too many errors" line). */
#define CONF_MAX_ERRORS 20
struct conf_errors {
    char *text; /* NUL-terminated, malloc'd; NULL when there is no error */
    size_t len;
    unsigned count;
};

/* Parse and validate the file at path. On success returns 0 and *out (caller frees with
 * conf_free). On failure returns -KEEL_ECONFIG (or -errno if the file cannot be read) and
 * fills errs; the caller frees errs with conf_errors_fini. */
int conf_load_file(const char *path, struct conf **out, struct conf_errors *errs) KEEL_MUST_CHECK;

/* Same, from memory; name is used as the file name in positions. */
int conf_load_string(const char *name, const char *text, size_t len, struct conf **out,
                     struct conf_errors *errs) KEEL_MUST_CHECK;

/* Flags for conf_load_mem. */
enum conf_load_flags {
    CONF_LOAD_NO_RESOLVE = 1u << 0 /* host names are errors instead of getaddrinfo() calls,
                                    * and what lies outside the file is not looked at (users,
                                    * directories, certificate files): for fuzzing and tests,
                                    * which must not touch the DNS */
};

/* conf_load_string with flags (a bit set of enum conf_load_flags). */
int conf_load_mem(const char *name, const char *text, size_t len, unsigned flags, struct conf **out,
                  struct conf_errors *errs) KEEL_MUST_CHECK;

void conf_free(struct conf *conf);
void conf_errors_fini(struct conf_errors *errs);

/* Lookups; NULL when absent. */
const struct conf_backend *conf_find_backend(const struct conf *conf, const char *name);
const struct conf_node *conf_find_node(const struct conf *conf, const char *name);

/* ---------------------------------------------------------------------------------------
 * For subsystems that declare directives (STYLE §9). A subsystem declares a static const
 * struct conf_directive[] table and one struct conf_section, which core/conf_registry.c
 * lists. The parser (core/conf.c) finds each statement's directive by name and context,
 * checks the argument count, block/no block, repetition and required directives, and calls
 * the directive's function. All of it runs at load time only, on the loading thread.
 * --------------------------------------------------------------------------------------- */

/* Where a directive may appear; a directive's contexts is a bit set of these. */
enum conf_ctx {
    CONF_CTX_MAIN = 1u << 0,     /* top level of the file */
    CONF_CTX_CLUSTER = 1u << 1,  /* cluster NAME { } */
    CONF_CTX_GLOBAL = 1u << 2,   /* global { } */
    CONF_CTX_NODE = 1u << 3,     /* node NAME { } */
    CONF_CTX_FRONTEND = 1u << 4, /* frontend NAME { } */
    CONF_CTX_BACKEND = 1u << 5,  /* backend NAME { } */
    CONF_CTX_APP = 1u << 6,      /* app NAME { } (app/app_conf.c) */
    CONF_CTX_LOCATION = 1u << 7, /* location [=] PATH { } in a frontend (lb/lb_conf.c) */
    CONF_CTX_VIP = 1u << 8,      /* vip ADDR... { } (vrrp/vrrp_conf.c) */
    CONF_CTX_DATABASE = 1u << 9  /* database NAME { } (db/db_conf.c) */
};

/* The parser, opaque to subsystems. */
struct conf_parser;
struct conf_directive;

/* Apply a directive to obj (the object of the enclosing block: struct conf at top level,
 * struct conf_global, conf_node, conf_frontend, conf_backend; for option tables, the object
 * given to conf_parse_options). tok[0] is the directive (or option) name, tok[1..n-1] its
 * arguments; the argument count is already checked. On a bad value, report it with
 * conf_error() and return -KEEL_ECONFIG. Tokens are borrowed for the call only. */
typedef int (*conf_set_fn)(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                           const struct conf_token *tok, size_t n);

/* Open a block directive: build the object for the block's body inside obj (e.g. append a
 * struct conf_backend to conf->backends) and return it; the parser then applies the defaults
 * of the body's context and parses the body into it. Returns NULL after reporting an error
 * (the body is still checked, but not applied) or on OOM (after conf_parser_oom()). */
typedef void *(*conf_open_fn)(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                              const struct conf_token *tok, size_t n);

/* A named value of an enumerated directive; tables end with {NULL, 0}. */
struct conf_enum {
    const char *name;
    int value;
};

#define CONF_ARGS_MANY UINT8_MAX /* max_args: no upper limit */

enum conf_directive_flags {
    CONF_F_REPEAT = 1u << 0,  /* may appear more than once in a block */
    CONF_F_REQUIRED = 1u << 1 /* a block of its context without it is an error */
};

/* Field of a struct, for the generic setters: CONF_FIELD(struct conf_backend, retries). */
#define CONF_FIELD(type, member)                                                                   \
    .offset = offsetof(type, member), .size = sizeof(((type *)0)->member)

struct conf_directive {
    const char *name;
    uint32_t contexts;  /* bit set of enum conf_ctx (for options: the table's own bits) */
    uint8_t min_args;   /* arguments after the name */
    uint8_t max_args;   /* or CONF_ARGS_MANY */
    uint32_t flags;     /* enum conf_directive_flags */
    uint32_t block_ctx; /* non-zero: takes a { } body parsed in this context, built by open */
    conf_open_fn open;  /* block directives only */
    conf_set_fn set;    /* simple directives only */
    size_t offset;      /* generic setters: where the field is in obj ... */
    size_t size;        /* ... and its size (integers: 4 or 8; strings: the array size) */
    uint64_t min;       /* generic integer setters: bounds, in the field's unit */
    uint64_t max;
    const struct conf_enum *values; /* conf_set_enum */
    const char *def;    /* default, as one word written in a file; applied through set when
                         * the enclosing block opens; NULL = none (also shown in docs) */
    const char *syntax; /* "timeout_connect DURATION" */
    const char *help;   /* one line */
};

/* A subsystem's directives, and its cross-reference check. */
struct conf_section {
    const char *name; /* "core", "lb" */
    const struct conf_directive *directives;
    size_t n_directives;
    /* Called once after the whole file is parsed, even when there were errors (so every
     * error is reported at once); must cope with fields left at their defaults or empty.
     * Reports with conf_error_at(). NULL when the section has nothing to check. */
    void (*validate)(struct conf_parser *cp, struct conf *conf);
    /* Called once a file is valid: add what the section's blocks imply (e.g. the database
     * routes of the lb nodes). flags: those of the load. Returns 0, or an error (in eb:
     * "LINE:COL: message", reported in the file) that makes the load fail. NULL: none. */
    int (*expand)(struct conf *conf, unsigned flags, struct errbuf *eb);
};

/* Report an error at a token (at its first byte), at a stored position, or at a line and
 * column. Messages are lowercase, without a trailing period, and quote what was written.
 * Never fails: past CONF_MAX_ERRORS the parser stops and says so. */
void conf_error(struct conf_parser *cp, const struct conf_token *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void conf_error_at(struct conf_parser *cp, const struct conf_pos *pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record that an allocation failed; loading then fails with -ENOMEM. */
void conf_parser_oom(struct conf_parser *cp);

/* The configuration being built, and the conf_load_mem flags. */
struct conf *conf_parser_conf(struct conf_parser *cp);
unsigned conf_parser_flags(const struct conf_parser *cp);

/* Fill pos from a token. */
void conf_pos_set(struct conf_pos *pos, const struct conf_token *tok);

/* Append one zeroed element to the malloc'd array *arr of *n elements of elem_size bytes,
 * growing it geometrically (only ever grow an array through this function: its capacity is
 * implied by *n). Returns the new element, or NULL on OOM (recorded with conf_parser_oom).
 * Pointers into the array are invalidated. */
void *conf_array_push(struct conf_parser *cp, void **arr, uint32_t *n, size_t elem_size);

/* Parse options "key [value] key [value] ..." (server weight 5 backup, check interval 1s)
 * from tok[0, n) into obj against an option table of at most 64 entries: directives with 0
 * or 1 argument whose contexts bits are matched against ctx. what names the options in
 * messages ("server option"), where the place ("a tcp check"). Unknown options get a
 * suggestion and end the parse; an option given twice is an error unless CONF_F_REPEAT.
 * Returns 0, or -KEEL_ECONFIG after reporting. */
int conf_parse_options(struct conf_parser *cp, const struct conf_directive *opts, size_t n_opts,
                       uint32_t ctx, const char *what, const char *where, void *obj,
                       const struct conf_token *tok, size_t n) KEEL_MUST_CHECK;

/* Nearest-name suggestions: feed candidates to conf_match_try; best is the closest within
 * edit distance 2 (ties: the first), or NULL. */
struct conf_match {
    const char *best;
    unsigned dist;
};
void conf_match_init(struct conf_match *m);
void conf_match_try(struct conf_match *m, const char *word, const char *candidate);

/* Generic setters, for directives with one argument (options too); core/conf_value.c.
 * Value parsers they use are in core/conf_value.h. */
/* Unsigned integer in [d->min, d->max] into a 4- or 8-byte field. */
int conf_set_uint(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                  const struct conf_token *tok, size_t n) KEEL_MUST_CHECK;
/* Duration in [d->min, d->max] ms. */
int conf_set_duration(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                      const struct conf_token *tok, size_t n) KEEL_MUST_CHECK;
/* Size in [d->min, d->max] bytes. */
int conf_set_size(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                  const struct conf_token *tok, size_t n) KEEL_MUST_CHECK;
/* One of d->values into an int (or enum) field. */
int conf_set_enum(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                  const struct conf_token *tok, size_t n) KEEL_MUST_CHECK;
/* No argument: sets a bool field to true. */
int conf_set_flag(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                  const struct conf_token *tok, size_t n) KEEL_MUST_CHECK;
/* on|off into a bool field. */
int conf_set_onoff(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                   const struct conf_token *tok, size_t n) KEEL_MUST_CHECK;
/* Any non-empty string shorter than d->size into a char array field. */
int conf_set_string(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                    const struct conf_token *tok, size_t n) KEEL_MUST_CHECK;
/* A name (conf_check_name) into a char array field. */
int conf_set_name(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                  const struct conf_token *tok, size_t n) KEEL_MUST_CHECK;
/* The node names tok[1, n) appended to names (*n_names of them so far): each a valid name,
 * none twice, at most max in all. The setter of `nodes` directives (vip, database). */
int conf_set_node_names(struct conf_parser *cp, const struct conf_token *tok, size_t n,
                        char (*names)[CONF_NAME_MAX], uint32_t *n_names,
                        uint32_t max) KEEL_MUST_CHECK;
/* `dcs etcd URL...` (tok[1, n)): the kind, etcd only, then the URLs appended to dcs (*n_dcs
 * of them so far), each http://IP:PORT without a path, at most CONF_DB_MAX_DCS in all. The
 * setter of the database block's and the cluster block's dcs. */
int conf_set_dcs(struct conf_parser *cp, const struct conf_token *tok, size_t n, char (*dcs)[256],
                 uint32_t *n_dcs) KEEL_MUST_CHECK;
/* An address to connect to / to listen on (d->min = CONF_ADDR_* flags) into a struct
 * conf_addr field. */
int conf_set_addr(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                  const struct conf_token *tok, size_t n) KEEL_MUST_CHECK;

#endif

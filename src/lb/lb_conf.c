/* SPDX-License-Identifier: MIT */
/* The load balancer's directive tables: frontend and backend blocks, their directives, the
 * server and check lines with their options, and the frontend -> backend checks run after
 * parsing. It only fills struct conf; building runtime objects from it is lb's other files. */
#include "lb/lb_conf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/conf.h"
#include "core/conf_check.h"
#include "lb/lb_algo.h"
#include "lb/lb_conf_tls.h"

#define TIMEOUT_MIN 1u                    /* 1ms */
#define TIMEOUT_MAX (24u * 3600u * 1000u) /* 24h */
#define CONN_MAX 1000000u

static const struct conf_enum mode_values[] = {
    {"http", CONF_MODE_HTTP},
    {"tcp", CONF_MODE_TCP},
    {NULL, 0},
};

static const char *mode_name(enum conf_mode mode)
{
    return mode == CONF_MODE_TCP ? "tcp" : "http";
}

/* maxconn N|auto: auto is stored as 0, which core/fdlimit.c resolves against the node's open
 * files limit when the node starts or reloads. */
static int set_maxconn(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                       const struct conf_token *tok, size_t n)
{
    if (strcmp(tok[1].text, "auto") == 0) {
        ((struct conf_frontend *)obj)->maxconn = 0;
        return 0;
    }
    return conf_set_uint(cp, d, obj, tok, n);
}

/* ------------------------------------------------------------------------------------------
 * Blocks
 * ------------------------------------------------------------------------------------------ */

static void check_block_name(struct conf_parser *cp, const char *what, const struct conf_token *tok)
{
    struct errbuf eb;
    if (conf_check_name(tok->text, &eb) != 0) {
        conf_error(cp, tok, "invalid %s name \"%s\": %s", what, tok->text, eb.msg);
    }
}

/* Even a frontend or backend with a bad or duplicate name is built, so that its body is
 * checked too (the configuration is discarded anyway): every error shows in one run. */
static void *open_frontend(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                           const struct conf_token *tok, size_t n)
{
    (void)n;
    struct conf *conf = obj;
    bool is_site = strcmp(d->name, "site") == 0;
    check_block_name(cp, d->name, &tok[1]);
    for (uint32_t i = 0; i < conf->n_frontends; i++) {
        if (strcmp(conf->frontends[i].name, tok[1].text) == 0) {
            conf_error(cp, &tok[1],
                       "duplicate name \"%s\": a frontend or site of that name is defined at "
                       "line %d",
                       tok[1].text, conf->frontends[i].pos.line);
            break;
        }
    }
    struct conf_frontend *fe = conf_array_push(cp, (void **)&conf->frontends, &conf->n_frontends,
                                               sizeof(*conf->frontends));
    if (fe == NULL) {
        return NULL;
    }
    (void)snprintf(fe->name, sizeof(fe->name), "%s", tok[1].text); /* may truncate */
    conf_pos_set(&fe->pos, &tok[0]);
    fe->role = is_site ? CONF_ROLE_WEB : CONF_ROLE_LB;
    return fe;
}

static void *open_backend(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                          const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf *conf = obj;
    check_block_name(cp, "backend", &tok[1]);
    const struct conf_backend *prev = conf_find_backend(conf, tok[1].text);
    if (prev != NULL) {
        conf_error(cp, &tok[1], "duplicate backend \"%s\" (first defined at line %d)", tok[1].text,
                   prev->pos.line);
    }
    struct conf_backend *be =
        conf_array_push(cp, (void **)&conf->backends, &conf->n_backends, sizeof(*conf->backends));
    if (be == NULL) {
        return NULL;
    }
    (void)snprintf(be->name, sizeof(be->name), "%s", tok[1].text); /* may truncate */
    conf_pos_set(&be->pos, &tok[0]);
    /* Check defaults: the check line is one directive with options, not a block. */
    struct conf_check *c = &be->check;
    c->type = CONF_CHECK_NONE;
    (void)snprintf(c->method, sizeof(c->method), "GET");
    (void)snprintf(c->path, sizeof(c->path), "/");
    c->status_min = 200;
    c->status_max = 399;
    c->interval_ms = 2000;
    c->timeout_ms = 1000;
    c->rise = 2;
    c->fall = 3;
    return be;
}

/* ------------------------------------------------------------------------------------------
 * Frontend directives
 * ------------------------------------------------------------------------------------------ */

/* bind [HOST]:PORT [tls]: tls makes the connections of that address start with a TLS
 * handshake, with the frontend's certificates (tls/tls_conf.c checks that it has some). */
static int set_bind(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                    const struct conf_token *tok, size_t n)
{
    (void)d;
    struct conf_frontend *fe = obj;
    const struct conf *conf = conf_parser_conf(cp);
    struct conf_addr addr;
    struct errbuf eb;
    unsigned flags = CONF_ADDR_LISTEN;
    if (conf_parser_flags(cp) & CONF_LOAD_NO_RESOLVE) {
        flags |= CONF_ADDR_NO_RESOLVE;
    }
    if (conf_parse_addr(tok[1].text, flags, &addr, &eb) != 0) {
        conf_error(cp, &tok[1], "invalid value \"%s\" for \"bind\": %s", tok[1].text, eb.msg);
        return -KEEL_ECONFIG;
    }
    if (n == 3) {
        if (strcmp(tok[2].text, "tls") != 0) {
            conf_error(cp, &tok[2], "unknown bind option \"%s\" (expected \"tls\")", tok[2].text);
            return -KEEL_ECONFIG;
        }
        addr.is_tls = true;
        if (!fe->tls.has_bind) {
            fe->tls.has_bind = true;
            conf_pos_set(&fe->tls.bind_pos, &tok[2]);
        }
    }
    for (uint32_t i = 0; i < conf->n_frontends; i++) {
        const struct conf_frontend *other = &conf->frontends[i];
        if (other->role != fe->role) {
            continue; /* maybe other nodes; conf_apply_node checks what one node binds */
        }
        for (uint32_t k = 0; k < other->n_binds; k++) {
            if (strcmp(other->binds[k].text, addr.text) == 0) {
                conf_error(cp, &tok[1],
                           "duplicate bind address %s (already bound by frontend "
                           "\"%s\" at line %d)",
                           addr.text, other->name, other->pos.line);
                return -KEEL_ECONFIG;
            }
        }
    }
    if (conf->global.has_admin && strcmp(conf->global.admin.text, addr.text) == 0) {
        conf_error(cp, &tok[1], "duplicate bind address %s (it is the admin address)", addr.text);
        return -KEEL_ECONFIG;
    }
    struct conf_addr *slot =
        conf_array_push(cp, (void **)&fe->binds, &fe->n_binds, sizeof(*fe->binds));
    if (slot == NULL) {
        return -KEEL_ECONFIG;
    }
    *slot = addr;
    return 0;
}

static int set_backend_ref(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                           const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf_frontend *fe = obj;
    struct errbuf eb;
    fe->has_backend = true; /* written, even if invalid: not also "missing" */
    if (conf_check_name(tok[1].text, &eb) != 0) {
        conf_error(cp, &tok[1], "invalid value \"%s\" for \"backend\": %s", tok[1].text, eb.msg);
        return -KEEL_ECONFIG;
    }
    memcpy(fe->backend_name, tok[1].text, tok[1].len + 1);
    conf_pos_set(&fe->backend_pos, &tok[1]);
    return 0;
}

static const struct conf_enum log_format_values[] = {
    {"combined", CONF_LOG_COMBINED},
    {"json", CONF_LOG_JSON},
    {NULL, 0},
};

static int set_access_log(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                          const struct conf_token *tok, size_t n)
{
    struct conf_frontend *fe = obj;
    int rc = 0;
    if (n == 3) {
        struct conf_token pair[2] = {tok[0], tok[2]};
        struct conf_directive fmt = *d;
        fmt.offset = offsetof(struct conf_frontend, access_log_format);
        fmt.values = log_format_values;
        rc = conf_set_enum(cp, &fmt, obj, pair, 2);
    } else {
        fe->access_log_format = CONF_LOG_COMBINED;
    }
    if (strcmp(tok[1].text, "off") == 0) {
        fe->access_log[0] = '\0';
        return rc;
    }
    if (tok[1].len == 0 || tok[1].len >= sizeof(fe->access_log)) {
        conf_error(cp, &tok[1],
                   "invalid value \"%s\" for \"access_log\": must be off, stderr "
                   "or a path of at most %zu bytes",
                   tok[1].text, sizeof(fe->access_log) - 1);
        return -KEEL_ECONFIG;
    }
    memcpy(fe->access_log, tok[1].text, tok[1].len + 1);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Backend directives: server and check lines
 * ------------------------------------------------------------------------------------------ */

static const struct conf_directive server_options[] = {
    {.name = "weight",
     .contexts = 1,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_uint,
     CONF_FIELD(struct conf_server, weight),
     .min = 1,
     .max = 256,
     .def = "1",
     .syntax = "weight 1..256",
     .help = "share of the traffic relative to the other servers"},
    {.name = "maxconn",
     .contexts = 1,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_uint,
     CONF_FIELD(struct conf_server, maxconn),
     .min = 0,
     .max = CONN_MAX,
     .def = "0",
     .syntax = "maxconn N",
     .help = "concurrent requests or connections, 0 = unlimited"},
    {.name = "backup",
     .contexts = 1,
     .max_args = 0,
     .set = conf_set_flag,
     CONF_FIELD(struct conf_server, is_backup),
     .syntax = "backup",
     .help = "used only while every normal server is down"},
    {.name = "disabled",
     .contexts = 1,
     .max_args = 0,
     .set = conf_set_flag,
     CONF_FIELD(struct conf_server, is_disabled),
     .syntax = "disabled",
     .help = "administratively down"},
    /* TLS to the server (lb_conf_tls.c); each also a backend directive, for all its servers */
    {.name = "tls",
     .contexts = 1,
     .max_args = 0,
     .set = lb_conf_set_tls,
     CONF_FIELD(struct conf_server, tls),
     .syntax = "tls",
     .help = "connect to the server with TLS"},
    {.name = "tls_ca_file",
     .contexts = 1,
     .min_args = 1,
     .max_args = 1,
     .set = lb_conf_set_tls_ca_file,
     CONF_FIELD(struct conf_server, tls),
     .syntax = "tls_ca_file FILE",
     .help = "PEM CA certificates to verify the server against"},
    {.name = "tls_name",
     .contexts = 1,
     .min_args = 1,
     .max_args = 1,
     .set = lb_conf_set_tls_name,
     CONF_FIELD(struct conf_server, tls),
     .syntax = "tls_name NAME",
     .help = "SNI and the name the certificate must show"},
    {.name = "tls_verify",
     .contexts = 1,
     .min_args = 1,
     .max_args = 1,
     .set = lb_conf_set_tls_verify,
     CONF_FIELD(struct conf_server, tls),
     .syntax = "tls_verify required|none",
     .help = "check the server's certificate"},
};

static int set_server(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                      const struct conf_token *tok, size_t n)
{
    (void)d;
    struct conf_backend *be = obj;
    struct errbuf eb;
    int rc = 0;
    if (conf_check_name(tok[1].text, &eb) != 0) {
        conf_error(cp, &tok[1], "invalid server name \"%s\": %s", tok[1].text, eb.msg);
        rc = -KEEL_ECONFIG;
    }
    for (uint32_t i = 0; i < be->n_servers; i++) {
        if (strcmp(be->servers[i].name, tok[1].text) == 0) {
            conf_error(cp, &tok[1],
                       "duplicate server \"%s\" in backend \"%s\" (first defined "
                       "at line %d)",
                       tok[1].text, be->name, be->servers[i].pos.line);
            rc = -KEEL_ECONFIG;
            break;
        }
    }
    struct conf_server srv = {.weight = 1};
    unsigned flags = 0;
    if (conf_parser_flags(cp) & CONF_LOAD_NO_RESOLVE) {
        flags |= CONF_ADDR_NO_RESOLVE;
    }
    conf_pos_set(&srv.addr_pos, &tok[2]);
    if (conf_addr_host_is_name(tok[2].text)) {
        /* Maybe a node defined further down: resolved at validation. */
        (void)snprintf(srv.host_name, sizeof(srv.host_name), "%s", tok[2].text);
    } else if (conf_parse_addr(tok[2].text, flags, &srv.addr, &eb) != 0) {
        conf_error(cp, &tok[2], "invalid server address \"%s\": %s", tok[2].text, eb.msg);
        rc = -KEEL_ECONFIG;
    }
    if (conf_parse_options(cp, server_options, sizeof(server_options) / sizeof(server_options[0]),
                           1, "server option", "a server line", &srv, &tok[3], n - 3) != 0) {
        rc = -KEEL_ECONFIG;
    }
    /* Kept even when invalid, so that a later duplicate is still reported (the configuration
     * is discarded anyway). */
    struct conf_server *slot =
        conf_array_push(cp, (void **)&be->servers, &be->n_servers, sizeof(*be->servers));
    if (slot == NULL) {
        return -KEEL_ECONFIG;
    }
    (void)snprintf(srv.name, sizeof(srv.name), "%s", tok[1].text); /* may truncate if invalid */
    conf_pos_set(&srv.pos, &tok[0]);
    *slot = srv;
    return rc;
}

static int set_check(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                     const struct conf_token *tok, size_t n)
{
    return conf_set_check_at(cp, d, obj, tok, n, offsetof(struct conf_backend, check));
}

/* ------------------------------------------------------------------------------------------
 * Locations
 * ------------------------------------------------------------------------------------------ */

static void *open_location(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                           const struct conf_token *tok, size_t n)
{
    (void)d;
    struct conf_frontend *fe = obj;
    bool exact = n == 3;
    const struct conf_token *path = &tok[n - 1];
    if (exact && strcmp(tok[1].text, "=") != 0) {
        conf_error(cp, &tok[1], "expected \"=\" or a path, got \"%s\" (usage: location [=] PATH)",
                   tok[1].text);
    }
    if (path->text[0] != '/' || path->len >= sizeof(fe->locations[0].path) ||
        strpbrk(path->text, " ?#%") != NULL) {
        conf_error(cp, path,
                   "invalid location path \"%s\": expected a path starting with \"/\", "
                   "without spaces, \"?\", \"#\" or \"%%\", of at most 255 bytes",
                   path->text);
    }
    for (uint32_t i = 0; i < fe->n_locations; i++) {
        const struct conf_location *o = &fe->locations[i];
        if (strcmp(o->path, path->text) == 0 && (o->match == CONF_LOC_EXACT) == exact) {
            conf_error(cp, path, "duplicate location \"%s\" (first defined at line %d)", path->text,
                       o->pos.line);
            break;
        }
    }
    struct conf_location *loc =
        conf_array_push(cp, (void **)&fe->locations, &fe->n_locations, sizeof(*fe->locations));
    if (loc == NULL) {
        return NULL;
    }
    (void)snprintf(loc->path, sizeof(loc->path), "%s", path->text); /* may truncate if bad */
    loc->match = exact ? CONF_LOC_EXACT : CONF_LOC_PREFIX;
    conf_pos_set(&loc->pos, &tok[0]);
    return loc;
}

static int set_action(struct conf_parser *cp, struct conf_location *loc,
                      const struct conf_token *tok, enum conf_loc_action action)
{
    if (loc->action != CONF_LOC_NONE && loc->action != action) {
        conf_error(cp, &tok[0], "a location takes one of \"proxy\", \"root\" and \"return\"");
        return -KEEL_ECONFIG;
    }
    loc->action = action;
    return 0;
}

static int set_loc_proxy(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                         const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf_location *loc = obj;
    struct errbuf eb;
    if (set_action(cp, loc, tok, CONF_LOC_PROXY) != 0) {
        return -KEEL_ECONFIG;
    }
    if (conf_check_name(tok[1].text, &eb) != 0) {
        conf_error(cp, &tok[1], "invalid value \"%s\" for \"proxy\": %s", tok[1].text, eb.msg);
        return -KEEL_ECONFIG;
    }
    memcpy(loc->backend_name, tok[1].text, tok[1].len + 1);
    conf_pos_set(&loc->backend_pos, &tok[1]);
    return 0;
}

static int set_loc_root(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                        const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf_location *loc = obj;
    if (set_action(cp, loc, tok, CONF_LOC_STATIC) != 0) {
        return -KEEL_ECONFIG;
    }
    if (tok[1].text[0] != '/' || tok[1].len >= sizeof(loc->root)) {
        conf_error(cp, &tok[1], "invalid value \"%s\" for \"root\": expected an absolute path",
                   tok[1].text);
        return -KEEL_ECONFIG;
    }
    memcpy(loc->root, tok[1].text, tok[1].len + 1);
    return 0;
}

/* Whether s may be a header value without spaces (a URL): no byte below 0x21 (space, tab,
 * CR, LF and the other controls) nor DEL; UTF-8 passes as is. */
static bool is_header_token(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p < 0x21 || *p == 0x7f) {
            return false;
        }
    }
    return true;
}

/* cache_control VALUE: a header value of the location's responses: spaces and tabs inside,
 * no other control character (a bare CR would end the header line for some clients). */
static int set_loc_cache_control(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                                 const struct conf_token *tok, size_t n)
{
    for (const unsigned char *p = (const unsigned char *)tok[1].text; *p != '\0'; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
            conf_error(cp, &tok[1],
                       "invalid value for \"cache_control\": control character 0x%02x (it is "
                       "a header value)",
                       *p);
            return -KEEL_ECONFIG;
        }
    }
    return conf_set_string(cp, d, obj, tok, n);
}

static int set_loc_return(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                          const struct conf_token *tok, size_t n)
{
    (void)d;
    struct conf_location *loc = obj;
    struct errbuf eb;
    uint64_t code;
    if (set_action(cp, loc, tok, CONF_LOC_RETURN) != 0) {
        return -KEEL_ECONFIG;
    }
    if (conf_parse_uint(tok[1].text, &code, &eb) != 0 || code < 200 || code > 599) {
        conf_error(cp, &tok[1], "invalid status \"%s\" for \"return\": expected 200..599",
                   tok[1].text);
        return -KEEL_ECONFIG;
    }
    bool redirect = code >= 300 && code <= 399 && code != 304;
    if (redirect && n < 3) {
        conf_error(cp, &tok[0], "\"return %lu\" redirects: it needs a URL", (unsigned long)code);
        return -KEEL_ECONFIG;
    }
    if (n == 3 && tok[2].len >= sizeof(loc->return_text)) {
        conf_error(cp, &tok[2], "invalid %s for \"return\": %zu bytes, at most %zu",
                   redirect ? "URL" : "text", tok[2].len, sizeof(loc->return_text) - 1);
        return -KEEL_ECONFIG;
    }
    if (n == 3 && redirect && !is_header_token(tok[2].text)) {
        /* It becomes the Location header: one line, no blank the client could split on. */
        conf_error(cp, &tok[2],
                   "invalid URL for \"return %lu\": no spaces or control characters (it is "
                   "the Location header)",
                   (unsigned long)code);
        return -KEEL_ECONFIG;
    }
    if (n == 3 && strpbrk(tok[2].text, "\r\n") != NULL) {
        conf_error(cp, &tok[2], "invalid text for \"return\": it must be one line");
        return -KEEL_ECONFIG;
    }
    if (n == 3) {
        memcpy(loc->return_text, tok[2].text, tok[2].len + 1);
    }
    loc->return_status = (int)code;
    return 0;
}

/* balance NAME [ARG]: an algorithm of lb/lb_algo.c's table, with the argument it takes. */
static int set_balance(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                       const struct conf_token *tok, size_t n)
{
    (void)d;
    struct conf_backend *be = obj;
    const struct lb_algo *algo = lb_algo_find(tok[1].text);
    if (algo == NULL) {
        struct conf_match m;
        conf_match_init(&m);
        char names[160] = "";
        size_t len = 0;
        for (size_t i = 0; (algo = lb_algo_at(i)) != NULL; i++) {
            conf_match_try(&m, tok[1].text, algo->name);
            int w = snprintf(names + len, sizeof(names) - len, "%s%s", i ? ", " : "", algo->name);
            if (w > 0 && (size_t)w < sizeof(names) - len) {
                len += (size_t)w;
            }
        }
        conf_error(cp, &tok[1], "invalid value \"%s\" for \"balance\": expected one of %s%s%s%s",
                   tok[1].text, names, m.best ? " (did you mean \"" : "", m.best ? m.best : "",
                   m.best ? "\"?)" : "");
        return -KEEL_ECONFIG;
    }
    if (algo->arg_name == NULL && n > 2) {
        conf_error(cp, &tok[2], "\"balance %s\" takes no argument", algo->name);
        return -KEEL_ECONFIG;
    }
    if (algo->arg_name != NULL && n < 3) {
        conf_error(cp, &tok[1], "\"balance %s\" needs its argument: balance %s %s", algo->name,
                   algo->name, algo->arg_name);
        return -KEEL_ECONFIG;
    }
    be->balance_arg[0] = '\0';
    if (n > 2) {
        const char *why = algo->check_arg != NULL ? algo->check_arg(tok[2].text) : NULL;
        if (why == NULL && tok[2].len >= sizeof(be->balance_arg)) {
            why = "longer than 63 bytes";
        }
        if (why != NULL) {
            conf_error(cp, &tok[2], "invalid %s \"%s\" for \"balance %s\": %s", algo->arg_name,
                       tok[2].text, algo->name, why);
            return -KEEL_ECONFIG;
        }
        memcpy(be->balance_arg, tok[2].text, tok[2].len + 1);
    }
    be->balance = algo;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Tables
 * ------------------------------------------------------------------------------------------ */

#define FE CONF_CTX_FRONTEND
#define BE CONF_CTX_BACKEND
#define LOC CONF_CTX_LOCATION

static const struct conf_directive lb_directives[] = {
    /* top level */
    {.name = "frontend",
     .contexts = CONF_CTX_MAIN,
     .min_args = 1,
     .max_args = 1,
     .flags = CONF_F_REPEAT,
     .block_ctx = FE,
     .open = open_frontend,
     .syntax = "frontend NAME { ... }",
     .help = "where clients connect"},
    {.name = "site",
     .contexts = CONF_CTX_MAIN,
     .min_args = 1,
     .max_args = 1,
     .flags = CONF_F_REPEAT,
     .block_ctx = FE,
     .open = open_frontend,
     .syntax = "site NAME { ... }",
     .help = "a web server: an HTTP frontend run by nodes with the web role"},
    {.name = "backend",
     .contexts = CONF_CTX_MAIN,
     .min_args = 1,
     .max_args = 1,
     .flags = CONF_F_REPEAT,
     .block_ctx = BE,
     .open = open_backend,
     .syntax = "backend NAME { ... }",
     .help = "a pool of servers"},

    /* frontend NAME { } */
    {.name = "bind",
     .contexts = FE,
     .min_args = 1,
     .max_args = 2,
     .flags = CONF_F_REPEAT | CONF_F_REQUIRED,
     .set = set_bind,
     .syntax = "bind [HOST]:PORT [tls]",
     .help = "address to listen on; tls: HTTPS with the frontend's certificates"},
    {.name = "mode",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_enum,
     CONF_FIELD(struct conf_frontend, mode),
     .values = mode_values,
     .def = "http",
     .syntax = "mode http|tcp",
     .help = "HTTP proxying or plain TCP relay"},
    {.name = "backend",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = set_backend_ref,
     .syntax = "backend NAME",
     .help = "the backend for requests that no location takes (required without locations)"},
    {.name = "location",
     .contexts = FE,
     .min_args = 1,
     .max_args = 2,
     .flags = CONF_F_REPEAT,
     .block_ctx = LOC,
     .open = open_location,
     .syntax = "location [=] PATH { ... }",
     .help = "what to do with requests under PATH (exact with =, else longest prefix)"},
    {.name = "maxconn",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = set_maxconn,
     CONF_FIELD(struct conf_frontend, maxconn),
     .min = 1,
     .max = CONN_MAX,
     .def = "auto",
     .syntax = "maxconn N|auto",
     .help = "concurrent client connections (auto: a share of the open files limit)"},
    {.name = "timeout_header",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf_frontend, timeout_header_ms),
     .min = TIMEOUT_MIN,
     .max = TIMEOUT_MAX,
     .def = "10s",
     .syntax = "timeout_header DURATION",
     .help = "time for a full request head to arrive"},
    {.name = "timeout_idle",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf_frontend, timeout_idle_ms),
     .min = TIMEOUT_MIN,
     .max = TIMEOUT_MAX,
     .def = "60s",
     .syntax = "timeout_idle DURATION",
     .help = "keep-alive idle time between requests"},
    {.name = "timeout_client",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf_frontend, timeout_client_ms),
     .min = TIMEOUT_MIN,
     .max = TIMEOUT_MAX,
     .def = "60s",
     .syntax = "timeout_client DURATION",
     .help = "client inactivity in the middle of a request"},
    {.name = "timeout_tunnel",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf_frontend, timeout_tunnel_ms),
     .min = TIMEOUT_MIN,
     .max = TIMEOUT_MAX,
     .def = "1h",
     .syntax = "timeout_tunnel DURATION",
     .help = "inactivity of an upgraded connection (WebSocket) in both directions"},
    {.name = "max_body",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_size,
     CONF_FIELD(struct conf_frontend, max_body),
     .min = 0,
     .max = (uint64_t)1 << 40,
     .def = "0",
     .syntax = "max_body SIZE",
     .help = "largest request body, 0 = unlimited"},
    {.name = "max_header",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_size,
     CONF_FIELD(struct conf_frontend, max_header),
     .min = 1024,
     .max = 1024 * 1024,
     .def = "16k",
     .syntax = "max_header SIZE",
     .help = "largest request head (431 beyond)"},
    {.name = "max_request_line",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_size,
     CONF_FIELD(struct conf_frontend, max_request_line),
     .min = 256,
     .max = 1024 * 1024,
     .def = "8k",
     .syntax = "max_request_line SIZE",
     .help = "longest request line (414 beyond)"},
    {.name = "access_log",
     .contexts = FE,
     .min_args = 1,
     .max_args = 2,
     .set = set_access_log,
     .def = "off",
     .syntax = "access_log off|stderr|PATH [combined|json]",
     .help = "where and how requests are logged"},

    /* backend NAME { } */
    {.name = "mode",
     .contexts = BE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_enum,
     CONF_FIELD(struct conf_backend, mode),
     .values = mode_values,
     .def = "http",
     .syntax = "mode http|tcp",
     .help = "HTTP proxying or plain TCP relay"},
    {.name = "balance",
     .contexts = BE,
     .min_args = 1,
     .max_args = 2,
     .set = set_balance,
     .def = "roundrobin",
     .syntax = "balance ALGORITHM [ARG]",
     .help = "balancing algorithm (lb/lb_algo.c's table)"},
    {.name = "server",
     .contexts = BE,
     .min_args = 2,
     .max_args = CONF_ARGS_MANY,
     .flags = CONF_F_REPEAT | CONF_F_REQUIRED,
     .set = set_server,
     .syntax = "server NAME HOST:PORT [weight N] [maxconn N] [backup] [disabled] [tls] "
               "[tls_ca_file FILE] [tls_name NAME] [tls_verify required|none]",
     .help = "a server of the pool"},
    {.name = "tls_ca_file",
     .contexts = BE,
     .min_args = 1,
     .max_args = 1,
     .set = lb_conf_set_tls_ca_file,
     CONF_FIELD(struct conf_backend, tls),
     .syntax = "tls_ca_file FILE",
     .help = "PEM CA certificates to verify tls servers against (default: the system's)"},
    {.name = "tls_name",
     .contexts = BE,
     .min_args = 1,
     .max_args = 1,
     .set = lb_conf_set_tls_name,
     CONF_FIELD(struct conf_backend, tls),
     .syntax = "tls_name NAME",
     .help = "SNI and name tls servers' certificates must show (default: each one's host)"},
    {.name = "tls_verify",
     .contexts = BE,
     .min_args = 1,
     .max_args = 1,
     .set = lb_conf_set_tls_verify,
     CONF_FIELD(struct conf_backend, tls),
     .syntax = "tls_verify required|none",
     .help = "check tls servers' certificates (default required)"},
    {.name = "check",
     .contexts = BE,
     .min_args = 1,
     .max_args = CONF_ARGS_MANY,
     .set = set_check,
     .syntax = "check tcp|http [method M] [path P] [host H] [status MIN-MAX] [interval D] "
               "[timeout D] [rise N] [fall N] [port N]",
     .help = "active health check of every server"},
    {.name = "timeout_connect",
     .contexts = BE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf_backend, timeout_connect_ms),
     .min = TIMEOUT_MIN,
     .max = TIMEOUT_MAX,
     .def = "3s",
     .syntax = "timeout_connect DURATION",
     .help = "time to connect to a server"},
    {.name = "timeout_server",
     .contexts = BE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf_backend, timeout_server_ms),
     .min = TIMEOUT_MIN,
     .max = TIMEOUT_MAX,
     .def = "60s",
     .syntax = "timeout_server DURATION",
     .help = "wait for a response head; tcp: server inactivity"},
    {.name = "timeout_queue",
     .contexts = BE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf_backend, timeout_queue_ms),
     .min = TIMEOUT_MIN,
     .max = TIMEOUT_MAX,
     .def = "5s",
     .syntax = "timeout_queue DURATION",
     .help = "how long a request may wait for a free server"},
    {.name = "queue_max",
     .contexts = BE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_uint,
     CONF_FIELD(struct conf_backend, queue_max),
     .min = 0,
     .max = CONN_MAX,
     .def = "1024",
     .syntax = "queue_max N",
     .help = "requests waiting for a free server, 0 = no queue"},
    {.name = "retries",
     .contexts = BE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_uint,
     CONF_FIELD(struct conf_backend, retries),
     .min = 0,
     .max = 10,
     .def = "1",
     .syntax = "retries N",
     .help = "retries on another server after a failed connect"},
    {.name = "keepalive",
     .contexts = BE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_uint,
     CONF_FIELD(struct conf_backend, keepalive),
     .min = 0,
     .max = 10000,
     .def = "32",
     .syntax = "keepalive N",
     .help = "idle pooled connections per server per worker"},
    {.name = "shutdown_on_down",
     .contexts = BE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_onoff,
     CONF_FIELD(struct conf_backend, shutdown_on_down),
     .def = "off",
     .syntax = "shutdown_on_down on|off",
     .help = "close the open sessions to a server when it is marked down"},

    /* location [=] PATH { } */
    {.name = "proxy",
     .contexts = LOC,
     .min_args = 1,
     .max_args = 1,
     .set = set_loc_proxy,
     .syntax = "proxy BACKEND",
     .help = "forward the requests to a backend"},
    {.name = "root",
     .contexts = LOC,
     .min_args = 1,
     .max_args = 1,
     .set = set_loc_root,
     .syntax = "root DIR",
     .help = "serve files: DIR + the request path"},
    {.name = "return",
     .contexts = LOC,
     .min_args = 1,
     .max_args = 2,
     .set = set_loc_return,
     .syntax = "return CODE [TEXT|URL]",
     .help = "answer with a fixed status; 3xx: redirect to URL"},
    {.name = "index",
     .contexts = LOC,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_string,
     CONF_FIELD(struct conf_location, index),
     .def = "index.html",
     .syntax = "index FILE",
     .help = "file served for a directory"},
    {.name = "autoindex",
     .contexts = LOC,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_onoff,
     CONF_FIELD(struct conf_location, autoindex),
     .def = "off",
     .syntax = "autoindex on|off",
     .help = "list directories that have no index file"},
    {.name = "gzip_static",
     .contexts = LOC,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_onoff,
     CONF_FIELD(struct conf_location, gzip_static),
     .def = "on",
     .syntax = "gzip_static on|off",
     .help = "serve FILE.gz to clients that accept gzip"},
    {.name = "follow_symlinks",
     .contexts = LOC,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_onoff,
     CONF_FIELD(struct conf_location, follow_symlinks),
     .def = "off",
     .syntax = "follow_symlinks on|off",
     .help = "may symbolic links lead outside the root"},
    {.name = "cache_control",
     .contexts = LOC,
     .min_args = 1,
     .max_args = 1,
     .set = set_loc_cache_control,
     CONF_FIELD(struct conf_location, cache_control),
     .syntax = "cache_control VALUE",
     .help = "Cache-Control header of the responses"},
};

/* ------------------------------------------------------------------------------------------
 * Cross-references
 * ------------------------------------------------------------------------------------------ */

/* Resolve a reference to a backend written at pos; -1 (reported) if there is none. */
static int resolve_backend(struct conf_parser *cp, const struct conf *conf, const char *name,
                           const struct conf_pos *pos)
{
    const struct conf_backend *be = conf_find_backend(conf, name);
    if (be != NULL) {
        return (int)(be - conf->backends);
    }
    struct conf_match m;
    conf_match_init(&m);
    for (uint32_t k = 0; k < conf->n_backends; k++) {
        conf_match_try(&m, name, conf->backends[k].name);
    }
    if (m.best != NULL) {
        conf_error_at(cp, pos, "unknown backend \"%s\" (did you mean \"%s\"?)", name, m.best);
    } else {
        conf_error_at(cp, pos, "unknown backend \"%s\"", name);
    }
    return -1;
}

static void validate_locations(struct conf_parser *cp, struct conf *conf, struct conf_frontend *fe)
{
    for (uint32_t i = 0; i < fe->n_locations; i++) {
        struct conf_location *loc = &fe->locations[i];
        if (fe->mode == CONF_MODE_TCP) {
            conf_error_at(cp, &loc->pos, "location in frontend \"%s\", which is tcp", fe->name);
            continue;
        }
        if (loc->action == CONF_LOC_NONE) {
            conf_error_at(cp, &loc->pos,
                          "location \"%s\" needs one of \"proxy\", \"root\" or \"return\"",
                          loc->path);
            continue;
        }
        if (loc->action != CONF_LOC_PROXY || loc->backend_name[0] == '\0') {
            continue;
        }
        int b = resolve_backend(cp, conf, loc->backend_name, &loc->backend_pos);
        if (b < 0) {
            continue;
        }
        loc->backend_index = (uint32_t)b;
        if (conf->backends[b].mode != CONF_MODE_HTTP) {
            conf_error_at(cp, &loc->backend_pos,
                          "mode mismatch: location \"%s\" needs an http "
                          "backend but \"%s\" is tcp",
                          loc->path, loc->backend_name);
        }
    }
}

/* Server addresses written with a host name: a node's name means that node's address;
 * anything else is resolved (getaddrinfo, unless the load forbids it). */
static void resolve_server_names(struct conf_parser *cp, struct conf *conf)
{
    unsigned flags = 0;
    if (conf_parser_flags(cp) & CONF_LOAD_NO_RESOLVE) {
        flags |= CONF_ADDR_NO_RESOLVE;
    }
    for (uint32_t b = 0; b < conf->n_backends; b++) {
        for (uint32_t i = 0; i < conf->backends[b].n_servers; i++) {
            struct conf_server *srv = &conf->backends[b].servers[i];
            if (srv->host_name[0] == '\0') {
                continue;
            }
            struct errbuf eb;
            char host[256];
            (void)snprintf(host, sizeof(host), "%s", srv->host_name);
            char *colon = strrchr(host, ':');
            if (colon != NULL) {
                *colon = '\0';
            }
            const struct conf_node *node = conf_find_node(conf, host);
            int rc = node != NULL ? conf_addr_with_host(srv->host_name, node->address, flags,
                                                        &srv->addr, &eb)
                                  : conf_parse_addr(srv->host_name, flags, &srv->addr, &eb);
            if (rc != 0) {
                conf_error_at(cp, &srv->addr_pos, "invalid server address \"%s\": %s%s",
                              srv->host_name, eb.msg,
                              node != NULL ? " (the address of that node)" : "");
            }
        }
    }
}

static void lb_conf_validate(struct conf_parser *cp, struct conf *conf)
{
    resolve_server_names(cp, conf);
    lb_conf_tls_validate(cp, conf);
    for (uint32_t i = 0; i < conf->n_frontends; i++) {
        struct conf_frontend *fe = &conf->frontends[i];
        validate_locations(cp, conf, fe);
        if (!fe->has_backend && fe->n_locations == 0) {
            conf_error_at(cp, &fe->pos, "frontend \"%s\" has no \"backend\" directive", fe->name);
            continue;
        }
        if (fe->backend_name[0] == '\0') {
            continue; /* no default backend, or an invalid one (already reported) */
        }
        int b = resolve_backend(cp, conf, fe->backend_name, &fe->backend_pos);
        if (b < 0) {
            continue;
        }
        const struct conf_backend *be = &conf->backends[b];
        fe->backend_index = (uint32_t)b;
        if (be->mode != fe->mode) {
            conf_error_at(cp, &fe->backend_pos,
                          "mode mismatch: frontend \"%s\" is %s but backend \"%s\" is %s", fe->name,
                          mode_name(fe->mode), be->name, mode_name(be->mode));
        }
    }
}

const struct conf_section lb_conf_section = {
    .name = "lb",
    .directives = lb_directives,
    .n_directives = sizeof(lb_directives) / sizeof(lb_directives[0]),
    .validate = lb_conf_validate,
};

/* SPDX-License-Identifier: MIT */
/* The registry: the explicit list of every subsystem's directive table, and the core tables
 * themselves (the cluster, global and node blocks). The parser is core/conf.c; the load
 * balancer's frontend and backend directives are lb/lb_conf.c. */
#include "core/conf_registry.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "app/app_conf.h"
#include "core/conf.h"
#include "db/db_conf.h"
#include "core/log.h"
#include "core/secret.h"
#include "lb/lb_conf.h"
#include "tls/acme_conf.h"
#include "tls/tls_conf.h"
#include "vrrp/vrrp_conf.h"

/* ------------------------------------------------------------------------------------------
 * Block openers
 * ------------------------------------------------------------------------------------------ */

static void *open_cluster(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                          const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf *conf = obj;
    struct errbuf eb;
    if (conf_check_name(tok[1].text, &eb) != 0) {
        conf_error(cp, &tok[1], "invalid cluster name \"%s\": %s", tok[1].text, eb.msg);
    } else {
        memcpy(conf->cluster_name, tok[1].text, tok[1].len + 1);
    }
    return conf; /* the cluster's settings live in struct conf itself */
}

static void *open_global(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                         const struct conf_token *tok, size_t n)
{
    (void)cp;
    (void)d;
    (void)tok;
    (void)n;
    struct conf *conf = obj;
    return &conf->global;
}

static void *open_node(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                       const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf *conf = obj;
    struct errbuf eb;
    if (conf_check_name(tok[1].text, &eb) != 0) {
        conf_error(cp, &tok[1], "invalid node name \"%s\": %s", tok[1].text, eb.msg);
    }
    const struct conf_node *prev = conf_find_node(conf, tok[1].text);
    if (prev != NULL) {
        conf_error(cp, &tok[1], "duplicate node \"%s\" (first defined at line %d)", tok[1].text,
                   prev->pos.line);
    }
    /* Even a bad or duplicate node is built, so that its body is checked too: the whole
     * configuration is discarded anyway. */
    struct conf_node *node =
        conf_array_push(cp, (void **)&conf->nodes, &conf->n_nodes, sizeof(*conf->nodes));
    if (node == NULL) {
        return NULL;
    }
    (void)snprintf(node->name, sizeof(node->name), "%s", tok[1].text); /* may truncate */
    conf_pos_set(&node->pos, &tok[0]);
    return node;
}

/* ------------------------------------------------------------------------------------------
 * Setters
 * ------------------------------------------------------------------------------------------ */

static int set_workers(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                       const struct conf_token *tok, size_t n)
{
    if (strcmp(tok[1].text, "auto") == 0) {
        ((struct conf_global *)obj)->workers = 0;
        return 0;
    }
    return conf_set_uint(cp, d, obj, tok, n);
}

/* The secret file must not be readable by the group or others (ssh's rule for private keys).
 * Checked here, so that `keel check`, a start and a reload all refuse it with the position;
 * secret_read() checks again when the file is read. A file that does not exist (yet) is
 * reported when it is read. */
static int set_secret_file(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                           const struct conf_token *tok, size_t n)
{
    int rc = conf_set_string(cp, d, obj, tok, n);
    struct stat st;
    if (rc == 0 && stat(tok[1].text, &st) == 0 && secret_mode_is_open(st.st_mode)) {
        struct errbuf eb = {{0}};
        secret_mode_error(&eb, tok[1].text, st.st_mode);
        conf_error(cp, &tok[1], "%s", eb.msg);
        rc = -KEEL_ECONFIG;
    }
    return rc;
}

static int set_admin(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                     const struct conf_token *tok, size_t n)
{
    struct conf_global *g = obj;
    int rc = conf_set_addr(cp, d, obj, tok, n);
    if (rc != 0) {
        return rc;
    }
    g->has_admin = true;
    const struct conf *conf = conf_parser_conf(cp);
    for (uint32_t i = 0; i < conf->n_frontends; i++) {
        const struct conf_frontend *fe = &conf->frontends[i];
        for (uint32_t k = 0; k < fe->n_binds; k++) {
            if (strcmp(fe->binds[k].text, g->admin.text) == 0) {
                conf_error(cp, &tok[1], "admin address %s is also bound by frontend \"%s\"",
                           g->admin.text, fe->name);
                return -KEEL_ECONFIG;
            }
        }
    }
    return 0;
}

static int set_address(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                       const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf_node *node = obj;
    struct errbuf eb;
    if (conf_check_host(tok[1].text, &eb) != 0) {
        conf_error(cp, &tok[1], "invalid value \"%s\" for \"address\": %s", tok[1].text, eb.msg);
        return -KEEL_ECONFIG;
    }
    if (tok[1].len >= sizeof(node->address)) {
        conf_error(cp, &tok[1], "invalid value \"%s\" for \"address\": longer than %zu bytes",
                   tok[1].text, sizeof(node->address) - 1);
        return -KEEL_ECONFIG;
    }
    memcpy(node->address, tok[1].text, tok[1].len + 1);
    return 0;
}

static const struct conf_enum role_values[] = {
    {"lb", CONF_ROLE_LB},
    {"web", CONF_ROLE_WEB},
    {"app", CONF_ROLE_APP},
    {"db", CONF_ROLE_DB},
    {NULL, 0},
};

static int set_roles(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                     const struct conf_token *tok, size_t n)
{
    struct conf_node *node = obj;
    int rc = 0;
    for (size_t i = 1; i < n; i++) {
        /* conf_set_enum reads tok[1]: hand it the pair (name, role i). */
        struct conf_token pair[2] = {tok[0], tok[i]};
        int role = 0;
        struct conf_directive one = *d;
        one.offset = 0;
        if (conf_set_enum(cp, &one, &role, pair, 2) != 0) {
            rc = -KEEL_ECONFIG;
            continue;
        }
        if (node->roles & (uint32_t)role) {
            conf_error(cp, &tok[i], "role \"%s\" listed twice", tok[i].text);
            rc = -KEEL_ECONFIG;
        }
        node->roles |= (uint32_t)role;
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Tables
 * ------------------------------------------------------------------------------------------ */

static const struct conf_enum log_level_values[] = {
    {"error", LOG_LEVEL_ERROR}, {"warn", LOG_LEVEL_WARN},   {"notice", LOG_LEVEL_NOTICE},
    {"info", LOG_LEVEL_INFO},   {"debug", LOG_LEVEL_DEBUG}, {NULL, 0},
};

#define DURATION_MAX (3600u * 1000u) /* 1h */

static const struct conf_directive core_directives[] = {
    /* top level */
    {.name = "cluster",
     .contexts = CONF_CTX_MAIN,
     .min_args = 1,
     .max_args = 1,
     .block_ctx = CONF_CTX_CLUSTER,
     .open = open_cluster,
     .syntax = "cluster NAME { ... }",
     .help = "the cluster this file describes"},
    {.name = "global",
     .contexts = CONF_CTX_MAIN,
     .min_args = 0,
     .max_args = 0,
     .block_ctx = CONF_CTX_GLOBAL,
     .open = open_global,
     .syntax = "global { ... }",
     .help = "process-wide settings"},
    {.name = "node",
     .contexts = CONF_CTX_MAIN,
     .min_args = 1,
     .max_args = 1,
     .flags = CONF_F_REPEAT,
     .block_ctx = CONF_CTX_NODE,
     .open = open_node,
     .syntax = "node NAME { ... }",
     .help = "a cluster member and its roles"},

    /* cluster { } */
    {.name = "state_dir",
     .contexts = CONF_CTX_CLUSTER,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_string,
     CONF_FIELD(struct conf, state_dir),
     .syntax = "state_dir PATH",
     .help = "directory for the node's persistent state"},
    {.name = "secret_file",
     .contexts = CONF_CTX_CLUSTER,
     .min_args = 1,
     .max_args = 1,
     .set = set_secret_file,
     CONF_FIELD(struct conf, secret_file),
     .syntax = "secret_file PATH",
     .help = "file holding the cluster's shared secret"},

    /* global { } */
    {.name = "workers",
     .contexts = CONF_CTX_GLOBAL,
     .min_args = 1,
     .max_args = 1,
     .set = set_workers,
     CONF_FIELD(struct conf_global, workers),
     .min = 0,
     .max = 1024,
     .def = "auto",
     .syntax = "workers N|auto",
     .help = "worker threads; 0 or auto = one per core"},
    {.name = "error_log",
     .contexts = CONF_CTX_GLOBAL,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_string,
     CONF_FIELD(struct conf_global, error_log),
     .def = "stderr",
     .syntax = "error_log stderr|PATH",
     .help = "where the error log goes"},
    {.name = "log_level",
     .contexts = CONF_CTX_GLOBAL,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_enum,
     CONF_FIELD(struct conf_global, log_level),
     .values = log_level_values,
     .def = "info",
     .syntax = "log_level error|warn|notice|info|debug",
     .help = "least severe level logged"},
    {.name = "admin",
     .contexts = CONF_CTX_GLOBAL,
     .min_args = 1,
     .max_args = 1,
     .set = set_admin,
     CONF_FIELD(struct conf_global, admin),
     .min = CONF_ADDR_LISTEN,
     .syntax = "admin ADDRESS:PORT",
     .help = "admin listener (/metrics, /status)"},
    {.name = "timeout_drain",
     .contexts = CONF_CTX_GLOBAL,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf_global, timeout_drain_ms),
     .min = 0,
     .max = DURATION_MAX,
     .def = "10s",
     .syntax = "timeout_drain DURATION",
     .help = "how long a stopping keel waits for in-flight work"},

    /* node NAME { } */
    {.name = "address",
     .contexts = CONF_CTX_NODE,
     .min_args = 1,
     .max_args = 1,
     .flags = CONF_F_REQUIRED,
     .set = set_address,
     .syntax = "address HOST",
     .help = "the node's IP address or host name"},
    {.name = "roles",
     .contexts = CONF_CTX_NODE,
     .min_args = 1,
     .max_args = 4,
     .flags = CONF_F_REQUIRED,
     .set = set_roles,
     .values = role_values,
     .syntax = "roles lb|web|app|db ...",
     .help = "what the node runs"},
};

static const struct conf_section core_section = {
    .name = "core",
    .directives = core_directives,
    .n_directives = sizeof(core_directives) / sizeof(core_directives[0]),
    .validate = NULL, /* duplicates are found as blocks open */
};

/* Every subsystem with directives, listed here by hand. */
static const struct conf_section *const sections[] = {
    &core_section,     &lb_conf_section,   &tls_conf_section, &acme_conf_section,
    &app_conf_section, &vrrp_conf_section, &db_conf_section,
};

const struct conf_section *const *conf_registry_sections(size_t *n)
{
    *n = sizeof(sections) / sizeof(sections[0]);
    return sections;
}

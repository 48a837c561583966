/* SPDX-License-Identifier: MIT */
/* The directives of managed certificates (acme_conf.h). They only fill struct conf_acme; the
 * issuing, storing and renewing is cert_mgr.c's, the local CA tls_issuer.c's. */
#include "tls/acme_conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "core/conf.h"
#include "tls/acme_order.h"

#define LIFETIME_MIN 3000u                       /* 3s: tests watch renewals */
#define LIFETIME_MAX (30u * 24u * 3600u * 1000u) /* 30 days */
#define LEASE_MIN 2000u                          /* etcd's own minimum is about 1.5 s */
#define LEASE_MAX (300u * 1000u)
#define LEASE_DEFAULT (10u * 1000u)

static const struct conf_enum issuers[] = {
    {"internal", CONF_ACME_INTERNAL},
    {NULL, 0},
};

static int set_issuer(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                      const struct conf_token *tok, size_t n)
{
    struct conf_frontend *fe = obj;
    struct conf_acme *a = &fe->tls.acme;
    conf_pos_set(&a->pos, &tok[0]);
    if (strstr(tok[1].text, "://") == NULL) {
        return conf_set_enum(cp, d, obj, tok, n);
    }
    char host[256], path[512];
    uint16_t port;
    if (tok[1].len >= sizeof(a->directory) ||
        acme_url_split(tok[1].text, host, sizeof(host), &port, path, sizeof(path)) != 0) {
        conf_error(cp, &tok[1],
                   "invalid ACME directory \"%s\": expected https://HOST[:PORT]/PATH "
                   "(RFC 8555 requires HTTPS)",
                   tok[1].text);
        return -KEEL_ECONFIG;
    }
    a->issuer = CONF_ACME_DIRECTORY;
    memcpy(a->directory, tok[1].text, tok[1].len + 1);
    return 0;
}

/* A DNS name (letters, digits, '-', dots between labels of 1-63 bytes, not "*.") or an
 * IPv4/IPv6 address: what a certificate's subjectAltName can hold for keel. */
static bool is_cert_name(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1) {
        return true;
    }
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > 253) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-') {
                return false;
            }
            label = 0;
            continue;
        }
        if (!(isalnum(c) || (c == '-' && label > 0)) || ++label > 63) {
            return false;
        }
    }
    return label > 0 && s[len - 1] != '-';
}

static int set_names(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                     const struct conf_token *tok, size_t n)
{
    (void)d;
    struct conf_acme *a = &((struct conf_frontend *)obj)->tls.acme;
    for (size_t i = 1; i < n; i++) {
        if (!is_cert_name(tok[i].text)) {
            conf_error(cp, &tok[i],
                       "invalid name \"%s\" for \"acme_names\": expected a DNS name or an IP "
                       "address",
                       tok[i].text);
            return -KEEL_ECONFIG;
        }
        for (uint32_t k = 0; k < a->n_names; k++) {
            if (strcasecmp(a->names[k], tok[i].text) == 0) {
                conf_error(cp, &tok[i], "\"%s\" listed twice", tok[i].text);
                return -KEEL_ECONFIG;
            }
        }
        if (a->n_names == CONF_ACME_MAX_NAMES) {
            conf_error(cp, &tok[i], "too many names: at most %d", CONF_ACME_MAX_NAMES);
            return -KEEL_ECONFIG;
        }
        char *out = a->names[a->n_names++];
        for (size_t c = 0; c <= tok[i].len; c++) {
            out[c] = (char)tolower((unsigned char)tok[i].text[c]);
        }
    }
    return 0;
}

/* acme_challenge http-01|tls-alpn-01. */
static int set_challenge(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                         const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf_acme *a = &((struct conf_frontend *)obj)->tls.acme;
    if (strcmp(tok[1].text, "http-01") == 0 || strcmp(tok[1].text, "tls-alpn-01") == 0) {
        a->is_tls_alpn = tok[1].text[0] == 't';
        return 0;
    }
    conf_error(cp, &tok[1],
               "invalid value \"%s\" for \"acme_challenge\": expected http-01 or tls-alpn-01",
               tok[1].text);
    return -KEEL_ECONFIG;
}

/* dcs etcd URL... in the cluster block: the etcd of the LB pair's managed certificates. */
static int set_cluster_dcs(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                           const struct conf_token *tok, size_t n)
{
    (void)d;
    struct conf *conf = obj;
    return conf_set_dcs(cp, tok, n, conf->dcs, &conf->n_dcs);
}

#define FE CONF_CTX_FRONTEND

static const struct conf_directive acme_directives[] = {
    {.name = "acme",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = set_issuer,
     CONF_FIELD(struct conf_frontend, tls.acme.issuer),
     .values = issuers,
     .syntax = "acme internal|DIRECTORY_URL",
     .help = "a certificate keel obtains and renews itself for acme_names"},
    {.name = "acme_email",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_string,
     CONF_FIELD(struct conf_frontend, tls.acme.email),
     .syntax = "acme_email ADDRESS",
     .help = "the contact of the ACME account (mailto:ADDRESS)"},
    {.name = "acme_ca_file",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_string,
     CONF_FIELD(struct conf_frontend, tls.acme.ca_file),
     .syntax = "acme_ca_file PATH",
     .help = "CA certificates (PEM) that verify the ACME directory; default the system's"},
    {.name = "acme_challenge",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = set_challenge,
     .def = "http-01",
     .syntax = "acme_challenge http-01|tls-alpn-01",
     .help = "how the ACME server validates the names"},
    {.name = "acme_names",
     .contexts = FE,
     .min_args = 1,
     .max_args = CONF_ARGS_MANY,
     .flags = CONF_F_REPEAT,
     .set = set_names,
     .syntax = "acme_names NAME ...",
     .help = "the DNS names and IP addresses of the managed certificate"},
    {.name = "acme_lifetime",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf_frontend, tls.acme.lifetime_ms),
     .min = LIFETIME_MIN,
     .max = LIFETIME_MAX,
     .def = "12h",
     .syntax = "acme_lifetime DURATION",
     .help = "validity of the certificates the internal issuer signs"},
    {.name = "dcs",
     .contexts = CONF_CTX_CLUSTER,
     .min_args = 2,
     .max_args = CONF_ARGS_MANY,
     .set = set_cluster_dcs,
     .syntax = "dcs etcd URL...",
     .help = "the etcd that holds the LB nodes' managed certificates and their order lock"},
    {.name = "acme_lease",
     .contexts = CONF_CTX_CLUSTER,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf, acme_lease_ms),
     .min = LEASE_MIN,
     .max = LEASE_MAX,
     .syntax = "acme_lease DURATION",
     .help = "TTL of the managed certificates' order lock in the cluster's dcs (default 10s)"},
};

/* The directory's host, resolved once at load time (the loop never blocks on DNS): every
 * URL an ACME server sends is on that host. A literal needs no resolver; under
 * CONF_LOAD_NO_RESOLVE a name is left unresolved (fuzzing, docs examples). */
static void resolve_directory(struct conf_parser *cp, struct conf_acme *a)
{
    char host[256], path[512], port_text[8];
    uint16_t port;
    if (acme_url_split(a->directory, host, sizeof(host), &port, path, sizeof(path)) != 0) {
        return; /* reported by the setter */
    }
    (void)snprintf(port_text, sizeof(port_text), "%u", port);
    bool no_resolve = (conf_parser_flags(cp) & CONF_LOAD_NO_RESOLVE) != 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    hints.ai_flags = no_resolve ? AI_NUMERICHOST : 0;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port_text, &hints, &res);
    if (rc == 0 && res != NULL && res->ai_addrlen <= sizeof(a->directory_sa)) {
        memcpy(&a->directory_sa, res->ai_addr, res->ai_addrlen);
        a->directory_salen = res->ai_addrlen;
    } else if (!no_resolve) {
        conf_error_at(cp, &a->pos, "cannot resolve the ACME directory's host \"%s\": %s", host,
                      gai_strerror(rc));
    }
    if (res != NULL) {
        freeaddrinfo(res);
    }
}

static void validate_frontend(struct conf_parser *cp, const struct conf *conf,
                              struct conf_frontend *fe)
{
    struct conf_acme *a = &fe->tls.acme;
    if (a->issuer == CONF_ACME_NONE) {
        return;
    }
    if (a->n_names == 0) {
        conf_error_at(cp, &a->pos, "\"acme\" in \"%s\" without \"acme_names\"", fe->name);
    }
    if (!fe->tls.has_bind) {
        conf_error_at(cp, &a->pos, "\"acme\" in \"%s\", which has no \"bind ... tls\"", fe->name);
    }
    if (a->issuer == CONF_ACME_INTERNAL && (a->email[0] != '\0' || a->ca_file[0] != '\0')) {
        conf_error_at(cp, &a->pos,
                      "\"acme internal\" in \"%s\" has no ACME account nor directory: "
                      "acme_email and acme_ca_file are for \"acme DIRECTORY_URL\"",
                      fe->name);
    }
    if (conf->state_dir[0] == '\0') {
        conf_error_at(cp, &a->pos,
                      "\"acme\" keeps its certificates in the cluster's state_dir, which is "
                      "not set (add: cluster NAME { state_dir PATH; })");
        return;
    }
    (void)snprintf(a->dir, sizeof(a->dir), "%.900s/tls/%s", conf->state_dir, fe->name);
    (void)snprintf(a->ca_dir, sizeof(a->ca_dir), "%.900s/tls/ca", conf->state_dir);
    a->is_shared = conf->n_dcs > 0;
    if (a->issuer == CONF_ACME_DIRECTORY) {
        resolve_directory(cp, a);
    }
}

static void acme_conf_validate(struct conf_parser *cp, struct conf *conf)
{
    bool is_managed = false;
    for (uint32_t i = 0; i < conf->n_frontends; i++) {
        validate_frontend(cp, conf, &conf->frontends[i]);
        is_managed = is_managed || conf->frontends[i].tls.acme.issuer != CONF_ACME_NONE;
    }
    if (conf->acme_lease_ms == 0) {
        conf->acme_lease_ms = LEASE_DEFAULT;
    }
    /* Keys go to etcd sealed with the cluster secret: without it, no shared certificates
     * (rather than keys in the clear, or each node on its own without saying so). */
    if (is_managed && conf->n_dcs > 0 && conf->secret_file[0] == '\0') {
        for (uint32_t i = 0; i < conf->n_frontends; i++) {
            const struct conf_acme *a = &conf->frontends[i].tls.acme;
            if (a->issuer != CONF_ACME_NONE) {
                conf_error_at(cp, &a->pos,
                              "\"acme\" in \"%s\" with the cluster's dcs keeps its keys in etcd "
                              "sealed with the cluster secret, which is not set (add: cluster "
                              "NAME { secret_file PATH; })",
                              conf->frontends[i].name);
                break;
            }
        }
    }
}

const struct conf_section acme_conf_section = {
    .name = "acme",
    .directives = acme_directives,
    .n_directives = sizeof(acme_directives) / sizeof(acme_directives[0]),
    .validate = acme_conf_validate,
};

/* SPDX-License-Identifier: MIT */
/* The TLS directives of frontends and sites (certificate, tls_protocols, tls_ciphers,
 * tls_ciphersuites, tls_groups, tls_tickets, tls_ticket_period, redirect_https, hsts,
 * timeout_handshake) and their checks after parsing: a bind
 * that says tls needs a certificate, and every certificate line must load (readable files,
 * a key that matches, valid now). `bind ... tls` itself is lb/lb_conf.c's. It only fills
 * struct conf; the contexts are built by tls_ctx.c when the lb builds a generation. */
#include "tls/tls_conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "tls/tls_ctx.h"
#include "tls/tls_ticket.h"

#define TIMEOUT_MIN 1u                    /* 1ms */
#define TIMEOUT_MAX (24u * 3600u * 1000u) /* 24h */
#define HSTS_MAX_AGE_MAX 1000000000u      /* about 31 years */
#define HSTS_PRELOAD_MIN_AGE 31536000u    /* a year: hstspreload.org's minimum */

static int set_certificate(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                           const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf_frontend *fe = obj;
    for (size_t i = 1; i <= 2; i++) {
        if (tok[i].len == 0 || tok[i].len >= CONF_PATH_MAX) {
            conf_error(cp, &tok[i], "invalid %s file \"%s\": must be 1 to %d bytes long",
                       i == 1 ? "certificate" : "key", tok[i].text, CONF_PATH_MAX - 1);
            return -KEEL_ECONFIG;
        }
    }
    struct conf_cert *c =
        conf_array_push(cp, (void **)&fe->tls.certs, &fe->tls.n_certs, sizeof(*fe->tls.certs));
    if (c == NULL) {
        return -KEEL_ECONFIG;
    }
    memcpy(c->cert_file, tok[1].text, tok[1].len + 1);
    memcpy(c->key_file, tok[2].text, tok[2].len + 1);
    conf_pos_set(&c->cert_pos, &tok[1]);
    conf_pos_set(&c->key_pos, &tok[2]);
    return 0;
}

/* tls_protocols TLSv1.2 [TLSv1.3]: the names nginx and OpenSSL use. Older versions are
 * refused by name, so that a configuration copied from elsewhere says why. */
static int set_protocols(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                         const struct conf_token *tok, size_t n)
{
    (void)d;
    struct conf_frontend *fe = obj;
    uint32_t v = 0;
    for (size_t i = 1; i < n; i++) {
        uint32_t bit = 0;
        if (strcmp(tok[i].text, "TLSv1.2") == 0) {
            bit = CONF_TLS_V12;
        } else if (strcmp(tok[i].text, "TLSv1.3") == 0) {
            bit = CONF_TLS_V13;
        } else if (strcmp(tok[i].text, "SSLv3") == 0 || strcmp(tok[i].text, "TLSv1") == 0 ||
                   strcmp(tok[i].text, "TLSv1.1") == 0) {
            conf_error(cp, &tok[i], "%s is not supported: keel speaks TLSv1.2 and TLSv1.3 only",
                       tok[i].text);
            return -KEEL_ECONFIG;
        } else {
            conf_error(cp, &tok[i],
                       "invalid value \"%s\" for \"tls_protocols\": expected TLSv1.2 "
                       "and/or TLSv1.3",
                       tok[i].text);
            return -KEEL_ECONFIG;
        }
        if ((v & bit) != 0) {
            conf_error(cp, &tok[i], "\"%s\" listed twice", tok[i].text);
            return -KEEL_ECONFIG;
        }
        v |= bit;
    }
    fe->tls.versions = v;
    return 0;
}

/* A string OpenSSL parses: stored, then tried on a scratch context so that a typo is
 * reported at its position. The defaults are known good and skip the check. */
static int set_openssl_string(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                              const struct conf_token *tok, size_t n)
{
    int rc = conf_set_string(cp, d, obj, tok, n);
    if (rc != 0 || (d->def != NULL && strcmp(tok[1].text, d->def) == 0)) {
        return rc;
    }
    enum tls_setting which = strcmp(d->name, "tls_ciphers") == 0        ? TLS_SET_CIPHERS
                             : strcmp(d->name, "tls_ciphersuites") == 0 ? TLS_SET_CIPHERSUITES
                                                                        : TLS_SET_GROUPS;
    struct errbuf eb;
    if (tls_setting_check(which, tok[1].text, &eb) != 0) {
        conf_error(cp, &tok[1], "invalid value \"%s\" for \"%s\": %s", tok[1].text, d->name,
                   eb.msg);
        return -KEEL_ECONFIG;
    }
    return 0;
}

/* tls_tickets on|off: stored inverted, so that a frontend written without it (or zeroed,
 * in the tests) resumes sessions. */
static int set_tickets(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                       const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf_frontend *fe = obj;
    if (strcmp(tok[1].text, "on") != 0 && strcmp(tok[1].text, "off") != 0) {
        conf_error(cp, &tok[1], "invalid value \"%s\" for \"tls_tickets\": expected on or off",
                   tok[1].text);
        return -KEEL_ECONFIG;
    }
    fe->tls.tickets_off = strcmp(tok[1].text, "off") == 0;
    return 0;
}

/* hsts MAX_AGE [include_subdomains] [preload] (RFC 6797 section 6.1): MAX_AGE in seconds
 * as in the header (0 tells browsers to forget the host). The header line is made here. */
static int set_hsts(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                    const struct conf_token *tok, size_t n)
{
    (void)d;
    struct conf_frontend *fe = obj;
    char *end = NULL;
    errno = 0;
    unsigned long long age = strtoull(tok[1].text, &end, 10);
    if (tok[1].text[0] < '0' || tok[1].text[0] > '9' || *end != '\0' || errno != 0 ||
        age > HSTS_MAX_AGE_MAX) {
        conf_error(cp, &tok[1],
                   "invalid max-age \"%s\" for \"hsts\": expected seconds, 0 to %u (31536000 is "
                   "a year)",
                   tok[1].text, HSTS_MAX_AGE_MAX);
        return -KEEL_ECONFIG;
    }
    bool sub = false, preload = false;
    for (size_t i = 2; i < n; i++) {
        bool *flag = strcmp(tok[i].text, "include_subdomains") == 0 ? &sub
                     : strcmp(tok[i].text, "preload") == 0          ? &preload
                                                                    : NULL;
        if (flag == NULL) {
            conf_error(cp, &tok[i],
                       "unknown hsts option \"%s\" (expected include_subdomains or preload)",
                       tok[i].text);
            return -KEEL_ECONFIG;
        }
        if (*flag) {
            conf_error(cp, &tok[i], "\"%s\" listed twice", tok[i].text);
            return -KEEL_ECONFIG;
        }
        *flag = true;
    }
    if (preload && (!sub || age < HSTS_PRELOAD_MIN_AGE)) {
        conf_error(cp, &tok[1],
                   "\"hsts ... preload\" needs include_subdomains and a max-age of at least "
                   "%u (a year): the browsers' preload list refuses less",
                   HSTS_PRELOAD_MIN_AGE);
        return -KEEL_ECONFIG;
    }
    conf_pos_set(&fe->tls.hsts_pos, &tok[0]);
    (void)snprintf(fe->tls.hsts, sizeof(fe->tls.hsts),
                   "Strict-Transport-Security: max-age=%llu%s%s\r\n", age,
                   sub ? "; includeSubDomains" : "", preload ? "; preload" : "");
    return 0;
}

/* redirect_https on|off, with its position for the check that the block has a tls bind. */
static int set_redirect(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                        const struct conf_token *tok, size_t n)
{
    struct conf_frontend *fe = obj;
    int rc = conf_set_onoff(cp, d, obj, tok, n);
    if (rc == 0) {
        conf_pos_set(&fe->tls.redirect_pos, &tok[0]);
    }
    return rc;
}

#define FE CONF_CTX_FRONTEND

static const struct conf_directive tls_directives[] = {
    {.name = "certificate",
     .contexts = FE,
     .min_args = 2,
     .max_args = 2,
     .flags = CONF_F_REPEAT,
     .set = set_certificate,
     .syntax = "certificate CERT_FILE KEY_FILE",
     .help = "a PEM certificate (with its chain) and its key, for the binds that say tls"},
    {.name = "tls_protocols",
     .contexts = FE,
     .min_args = 1,
     .max_args = 2,
     .set = set_protocols,
     .syntax = "tls_protocols TLSv1.2|TLSv1.3 ...",
     .help = "TLS versions offered (default both)"},
    {.name = "tls_ciphers",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = set_openssl_string,
     CONF_FIELD(struct conf_frontend, tls.ciphers),
     .def = KEEL_TLS_DEFAULT_CIPHERS,
     .syntax = "tls_ciphers LIST",
     .help = "TLS 1.2 ciphers, OpenSSL's syntax"},
    {.name = "tls_ciphersuites",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = set_openssl_string,
     CONF_FIELD(struct conf_frontend, tls.ciphersuites),
     .def = KEEL_TLS_DEFAULT_SUITES,
     .syntax = "tls_ciphersuites LIST",
     .help = "TLS 1.3 cipher suites, OpenSSL's syntax"},
    {.name = "tls_groups",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = set_openssl_string,
     CONF_FIELD(struct conf_frontend, tls.groups),
     .def = KEEL_TLS_DEFAULT_GROUPS,
     .syntax = "tls_groups LIST",
     .help = "key exchange groups, in order of preference"},
    {.name = "tls_tickets",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = set_tickets,
     .def = "on",
     .syntax = "tls_tickets on|off",
     .help = "session resumption by tickets (TLS 1.2 and 1.3), keys shared by the cluster"},
    {.name = "tls_ticket_period",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf_frontend, tls.ticket_period_ms),
     .min = TLS_TICKET_PERIOD_MIN_MS,
     .max = TLS_TICKET_PERIOD_MAX_MS,
     .def = "1h",
     .syntax = "tls_ticket_period DURATION",
     .help = "how often the ticket keys change; a ticket lives one period"},
    {.name = "redirect_https",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = set_redirect,
     CONF_FIELD(struct conf_frontend, tls.redirect_https),
     .def = "off",
     .syntax = "redirect_https on|off",
     .help = "answer requests on the plain binds with a redirect to the tls bind"},
    {.name = "hsts",
     .contexts = FE,
     .min_args = 1,
     .max_args = 3,
     .set = set_hsts,
     .syntax = "hsts MAX_AGE [include_subdomains] [preload]",
     .help = "send Strict-Transport-Security (seconds) on responses over TLS"},
    {.name = "timeout_handshake",
     .contexts = FE,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf_frontend, timeout_handshake_ms),
     .min = TIMEOUT_MIN,
     .max = TIMEOUT_MAX,
     .def = "10s",
     .syntax = "timeout_handshake DURATION",
     .help = "time for a client's TLS handshake, from accept"},
};

/* The port of the first bind that says tls: where redirect_https sends clients. */
static uint16_t https_port(const struct conf_frontend *fe)
{
    for (uint32_t i = 0; i < fe->n_binds; i++) {
        const struct sockaddr_storage *sa = &fe->binds[i].sa;
        if (!fe->binds[i].is_tls) {
            continue;
        }
        if (sa->ss_family == AF_INET6) {
            return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
        }
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    }
    return 443;
}

static void validate_frontend(struct conf_parser *cp, const struct conf_frontend *fe,
                              bool read_files)
{
    const struct conf_tls *t = &fe->tls;
    if (t->has_bind && fe->mode == CONF_MODE_TCP) {
        conf_error_at(cp, &t->bind_pos,
                      "\"bind ... tls\" in frontend \"%s\", which is tcp: TLS is for http "
                      "frontends and sites",
                      fe->name);
        return;
    }
    if (t->has_bind && t->n_certs == 0 && t->acme.issuer == CONF_ACME_NONE) {
        conf_error_at(cp, &t->bind_pos,
                      "\"bind ... tls\" in \"%s\" without a certificate (add: certificate "
                      "CERT_FILE KEY_FILE, or acme internal)",
                      fe->name);
        return;
    }
    if (!t->has_bind && t->n_certs > 0) {
        conf_error_at(cp, &t->certs[0].cert_pos,
                      "certificate in \"%s\", which has no \"bind ... tls\"", fe->name);
        return;
    }
    if (!t->has_bind && t->redirect_https) {
        conf_error_at(cp, &t->redirect_pos,
                      "redirect_https in \"%s\", which has no \"bind ... tls\" to redirect to",
                      fe->name);
        return;
    }
    if (!t->has_bind && t->hsts[0] != '\0') {
        conf_error_at(cp, &t->hsts_pos,
                      "hsts in \"%s\", which has no \"bind ... tls\": browsers ignore it over "
                      "plain HTTP (RFC 6797 section 8.1)",
                      fe->name);
        return;
    }
    for (uint32_t i = 0; read_files && i < t->n_certs; i++) {
        enum tls_cert_part part;
        struct errbuf eb;
        if (tls_cert_check(&t->certs[i], &part, &eb) != 0) {
            conf_error_at(cp, part == TLS_PART_KEY ? &t->certs[i].key_pos : &t->certs[i].cert_pos,
                          "%s", eb.msg);
        }
    }
}

/* Certificates are read here, once the whole file is parsed, so that `keel check`, a start
 * and a reload all refuse an unusable one with its position (not under CONF_LOAD_NO_RESOLVE,
 * which looks at nothing outside the file). The lb reads them again to build the contexts
 * (lb_gen.c): a file that changes in between is reported then. */
static void tls_conf_validate(struct conf_parser *cp, struct conf *conf)
{
    bool read_files = (conf_parser_flags(cp) & CONF_LOAD_NO_RESOLVE) == 0;
    for (uint32_t i = 0; i < conf->n_frontends; i++) {
        validate_frontend(cp, &conf->frontends[i], read_files);
        /* The ticket keys derive from the cluster secret (tls_ticket.c); the contexts are
         * built from the frontend alone, so it carries the path. Same sizes. */
        memcpy(conf->frontends[i].tls.secret_file, conf->secret_file, sizeof(conf->secret_file));
        conf->frontends[i].tls.https_port = https_port(&conf->frontends[i]);
    }
}

const struct conf_section tls_conf_section = {
    .name = "tls",
    .directives = tls_directives,
    .n_directives = sizeof(tls_directives) / sizeof(tls_directives[0]),
    .validate = tls_conf_validate,
};

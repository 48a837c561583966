/* SPDX-License-Identifier: MIT */
/* TLS to servers in the configuration (lb_conf_tls.h): the `tls`, `tls_ca_file`,
 * `tls_name` and `tls_verify` options and directives, and the validation that completes
 * each tls server's settings (its own, else its backend's, else the defaults) and checks
 * them. It only fills struct conf; lb_gen.c builds the client contexts. */
#include "lb/lb_conf_tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "tls/tls_client.h"

static struct conf_server_tls *tls_of(const struct conf_directive *d, void *obj)
{
    return (struct conf_server_tls *)((char *)obj + d->offset);
}

static void mark_opt(struct conf_server_tls *t, const struct conf_token *tok)
{
    if (!t->has_opt) {
        t->has_opt = true;
        conf_pos_set(&t->opt_pos, tok);
    }
}

int lb_conf_set_tls(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                    const struct conf_token *tok, size_t n)
{
    (void)cp;
    (void)tok;
    (void)n;
    tls_of(d, obj)->is_on = true;
    return 0;
}

int lb_conf_set_tls_ca_file(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                            const struct conf_token *tok, size_t n)
{
    (void)n;
    struct conf_server_tls *t = tls_of(d, obj);
    if (tok[1].len == 0 || tok[1].len >= sizeof(t->ca_file)) {
        conf_error(cp, &tok[1], "invalid CA file \"%s\": must be 1 to %zu bytes long", tok[1].text,
                   sizeof(t->ca_file) - 1);
        return -KEEL_ECONFIG;
    }
    memcpy(t->ca_file, tok[1].text, tok[1].len + 1);
    conf_pos_set(&t->ca_pos, &tok[1]);
    mark_opt(t, &tok[0]);
    return 0;
}

bool lb_conf_tls_name_ok(const char *name)
{
    unsigned char a[16];
    if (inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1) {
        return true;
    }
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '.') {
        len--;
    }
    if (len == 0 || len > 253) {
        return false;
    }
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '.') {
            if (label == 0) {
                return false;
            }
            label = 0;
            continue;
        }
        if (!isalnum(c) && c != '-' && c != '_') {
            return false;
        }
        if (++label > 63) {
            return false;
        }
    }
    return label > 0;
}

int lb_conf_set_tls_name(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                         const struct conf_token *tok, size_t n)
{
    (void)n;
    struct conf_server_tls *t = tls_of(d, obj);
    if (tok[1].len >= sizeof(t->name) || !lb_conf_tls_name_ok(tok[1].text)) {
        conf_error(cp, &tok[1], "invalid tls_name \"%s\": expected a DNS name or an IP address",
                   tok[1].text);
        return -KEEL_ECONFIG;
    }
    memcpy(t->name, tok[1].text, tok[1].len + 1);
    mark_opt(t, &tok[0]);
    return 0;
}

int lb_conf_set_tls_verify(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                           const struct conf_token *tok, size_t n)
{
    (void)n;
    struct conf_server_tls *t = tls_of(d, obj);
    if (strcmp(tok[1].text, "required") == 0) {
        t->verify = CONF_TLS_VERIFY_REQUIRED;
    } else if (strcmp(tok[1].text, "none") == 0) {
        t->verify = CONF_TLS_VERIFY_NONE;
    } else {
        conf_error(cp, &tok[1],
                   "invalid value \"%s\" for \"tls_verify\": expected required or none",
                   tok[1].text);
        return -KEEL_ECONFIG;
    }
    mark_opt(t, &tok[0]);
    return 0;
}

/* The host of a server as written ("app1.internal" of "app1.internal:8443", "10.0.0.1",
 * "::1" of "[::1]:443"), into out. */
static void host_as_written(const struct conf_server *srv, char *out, size_t size)
{
    const char *text = srv->host_name[0] != '\0' ? srv->host_name : srv->addr.text;
    const char *start = text, *end;
    if (text[0] == '[') {
        start = text + 1;
        end = strchr(start, ']');
    } else {
        end = strrchr(text, ':');
    }
    size_t len = end != NULL ? (size_t)(end - start) : strlen(start);
    (void)snprintf(out, size, "%.*s", (int)len, start);
}

/* Complete a tls server's settings: its own, else the backend's, else the defaults. */
static void inherit(struct conf_server *srv, const struct conf_backend *be)
{
    struct conf_server_tls *t = &srv->tls;
    if (t->verify == CONF_TLS_VERIFY_UNSET) {
        t->verify =
            be->tls.verify != CONF_TLS_VERIFY_UNSET ? be->tls.verify : CONF_TLS_VERIFY_REQUIRED;
    }
    if (t->ca_file[0] == '\0' && be->tls.ca_file[0] != '\0') {
        memcpy(t->ca_file, be->tls.ca_file, sizeof(t->ca_file));
        t->ca_pos = be->tls.ca_pos;
    }
    if (t->name[0] == '\0') {
        if (be->tls.name[0] != '\0') {
            memcpy(t->name, be->tls.name, sizeof(t->name));
        } else {
            host_as_written(srv, t->name, sizeof(t->name));
        }
    }
}

/* The client context a server will use, built once here so that `keel check` reports a CA
 * file that cannot be read (or holds no certificate) where it was written. */
static void check_client(struct conf_parser *cp, const struct conf_server *srv)
{
    const struct conf_server_tls *t = &srv->tls;
    struct tls_client_conf cc = {
        .ca_file = t->ca_file[0] != '\0' ? t->ca_file : NULL,
        .name = t->name[0] != '\0' ? t->name : NULL,
        .is_verify_off = t->verify == CONF_TLS_VERIFY_NONE,
    };
    struct errbuf eb;
    struct tls_client *c = tls_client_new(&cc, &eb);
    if (c == NULL) {
        conf_error_at(cp, t->ca_file[0] != '\0' ? &t->ca_pos : &srv->pos, "%s", eb.msg);
    }
    tls_client_free(c);
}

static void validate_backend(struct conf_parser *cp, struct conf_backend *be, bool read_files)
{
    bool any_tls = false;
    for (uint32_t i = 0; i < be->n_servers; i++) {
        struct conf_server *srv = &be->servers[i];
        if (!srv->tls.is_on) {
            if (srv->tls.has_opt) {
                conf_error_at(cp, &srv->tls.opt_pos,
                              "tls option on server \"%s\", which does not say \"tls\"", srv->name);
            }
            continue;
        }
        any_tls = true;
        inherit(srv, be);
        if (read_files) {
            check_client(cp, srv);
        }
    }
    if (be->tls.has_opt && !any_tls) {
        conf_error_at(cp, &be->tls.opt_pos,
                      "tls directive in backend \"%s\", which has no \"server ... tls\"", be->name);
    }
}

void lb_conf_tls_validate(struct conf_parser *cp, struct conf *conf)
{
    bool read_files = (conf_parser_flags(cp) & CONF_LOAD_NO_RESOLVE) == 0;
    for (uint32_t b = 0; b < conf->n_backends; b++) {
        validate_backend(cp, &conf->backends[b], read_files);
    }
}

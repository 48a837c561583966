/* SPDX-License-Identifier: MIT */
/* The node view of a cluster configuration: one file describes every node, and each node
 * runs only what its roles ask for. conf_apply_node() narrows a loaded configuration to one
 * node: frontends of the lb role and sites of the web role it does not have are dropped
 * (with the backends only they used), listen addresses written without a host (":8080")
 * become the node's own address, and sites learn the node's name for X-Served-By. Then no
 * two listeners of the node may overlap. Runs on the loading thread, like the parser. */
#include "core/conf_node.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf_value.h"

static void frontend_fini(struct conf_frontend *fe)
{
    free(fe->binds);
    fe->binds = NULL;
    free(fe->locations);
    fe->locations = NULL;
    free(fe->tls.certs);
    fe->tls.certs = NULL;
}

static void backend_fini(struct conf_backend *be)
{
    free(be->servers);
    be->servers = NULL;
}

/* Keep the frontends whose role the node has. */
static void keep_frontends(struct conf *conf, uint32_t roles)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < conf->n_frontends; i++) {
        if ((conf->frontends[i].role & roles) == 0) {
            frontend_fini(&conf->frontends[i]);
            continue;
        }
        conf->frontends[k++] = conf->frontends[i];
    }
    conf->n_frontends = k;
}

/* Keep the backends some kept frontend or location proxies to; renumber the references. */
static void keep_backends(struct conf *conf)
{
    uint32_t *map = calloc(conf->n_backends + 1u, sizeof(*map)); /* old index -> new + 1 */
    if (map == NULL) {
        return; /* keeping every backend is correct, only wasteful */
    }
    for (uint32_t f = 0; f < conf->n_frontends; f++) {
        const struct conf_frontend *fe = &conf->frontends[f];
        if (fe->backend_name[0] != '\0') {
            map[fe->backend_index] = 1;
        }
        for (uint32_t l = 0; l < fe->n_locations; l++) {
            if (fe->locations[l].action == CONF_LOC_PROXY) {
                map[fe->locations[l].backend_index] = 1;
            }
        }
    }
    uint32_t k = 0;
    for (uint32_t b = 0; b < conf->n_backends; b++) {
        if (map[b] == 0) {
            backend_fini(&conf->backends[b]);
            continue;
        }
        map[b] = k + 1;
        conf->backends[k++] = conf->backends[b];
    }
    conf->n_backends = k;
    for (uint32_t f = 0; f < conf->n_frontends; f++) {
        struct conf_frontend *fe = &conf->frontends[f];
        if (fe->backend_name[0] != '\0') {
            fe->backend_index = map[fe->backend_index] - 1;
        }
        for (uint32_t l = 0; l < fe->n_locations; l++) {
            if (fe->locations[l].action == CONF_LOC_PROXY) {
                fe->locations[l].backend_index = map[fe->locations[l].backend_index] - 1;
            }
        }
    }
    free(map);
}

/* ":PORT" becomes NODE-ADDRESS:PORT. */
static int localize(struct conf_addr *a, const struct conf_node *node, unsigned flags,
                    struct errbuf *eb)
{
    if (!a->host_omitted) {
        return 0;
    }
    char port[16];
    const char *colon = strrchr(a->text, ':');
    (void)snprintf(port, sizeof(port), "%s", colon != NULL ? colon : ":0");
    struct conf_addr out;
    if (conf_addr_with_host(port, node->address, flags, &out, eb) != 0) {
        return -KEEL_ECONFIG;
    }
    *a = out;
    return 0;
}

static uint16_t addr_port(const struct conf_addr *a)
{
    if (a->sa.ss_family == AF_INET6) {
        return ntohs(((const struct sockaddr_in6 *)&a->sa)->sin6_port);
    }
    return ntohs(((const struct sockaddr_in *)&a->sa)->sin_port);
}

static bool addr_is_any(const struct conf_addr *a)
{
    if (a->sa.ss_family == AF_INET6) {
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->sa)->sin6_addr);
    }
    return ((const struct sockaddr_in *)&a->sa)->sin_addr.s_addr == htonl(INADDR_ANY);
}

/* Two listeners overlap when they share a port and an address, a wildcard sharing every
 * address of its family. SO_REUSEPORT would let both bind and split the traffic. */
static bool overlaps(const struct conf_addr *a, const struct conf_addr *b)
{
    if (addr_port(a) != addr_port(b) || a->sa.ss_family != b->sa.ss_family) {
        return false;
    }
    return addr_is_any(a) || addr_is_any(b) || strcmp(a->text, b->text) == 0;
}

static int check_overlaps(const struct conf *conf, struct errbuf *eb)
{
    for (uint32_t f = 0; f < conf->n_frontends; f++) {
        const struct conf_frontend *fe = &conf->frontends[f];
        for (uint32_t i = 0; i < fe->n_binds; i++) {
            const struct conf_addr *a = &fe->binds[i];
            if (conf->global.has_admin && overlaps(a, &conf->global.admin)) {
                errbuf_set(eb, "%s:%d: bind %s of \"%s\" overlaps the admin address %s",
                           fe->pos.file, fe->pos.line, a->text, fe->name, conf->global.admin.text);
                return -KEEL_ECONFIG;
            }
            for (uint32_t g = f; g < conf->n_frontends; g++) {
                const struct conf_frontend *other = &conf->frontends[g];
                for (uint32_t k = g == f ? i + 1 : 0; k < other->n_binds; k++) {
                    if (overlaps(a, &other->binds[k])) {
                        errbuf_set(eb,
                                   "%s:%d: bind %s of \"%s\" overlaps bind %s of \"%s\" "
                                   "on the same node",
                                   other->pos.file, other->pos.line, other->binds[k].text,
                                   other->name, a->text, fe->name);
                        return -KEEL_ECONFIG;
                    }
                }
            }
        }
    }
    return 0;
}

int conf_apply_node(struct conf *conf, const char *node_name, unsigned flags, struct errbuf *eb)
{
    const struct conf_node *node = NULL;
    if (node_name != NULL && conf->n_nodes > 0) {
        node = conf_find_node(conf, node_name);
        if (node == NULL) {
            errbuf_set(eb, "node \"%s\" is not defined in the configuration", node_name);
            return -KEEL_ECONFIG;
        }
    }
    if (node != NULL) {
        keep_frontends(conf, node->roles);
        keep_backends(conf);
        for (uint32_t f = 0; f < conf->n_frontends; f++) {
            struct conf_frontend *fe = &conf->frontends[f];
            for (uint32_t i = 0; i < fe->n_binds; i++) {
                if (localize(&fe->binds[i], node, flags, eb) != 0) {
                    return -KEEL_ECONFIG;
                }
            }
        }
        if (conf->global.has_admin && localize(&conf->global.admin, node, flags, eb) != 0) {
            return -KEEL_ECONFIG;
        }
        for (uint32_t i = 0; i < conf->n_apps; i++) {
            if (conf->apps[i].listen.salen != 0 &&
                localize(&conf->apps[i].listen, node, flags, eb) != 0) {
                return -KEEL_ECONFIG;
            }
        }
    }
    if (node_name != NULL) {
        for (uint32_t f = 0; f < conf->n_frontends; f++) {
            if (conf->frontends[f].role == CONF_ROLE_WEB) {
                (void)snprintf(conf->frontends[f].served_by, sizeof(conf->frontends[f].served_by),
                               "%s", node_name);
            }
        }
    }
    return check_overlaps(conf, eb);
}

int conf_load_node(const char *path, const char *node, struct conf **out, struct errbuf *eb)
{
    struct conf *conf = NULL;
    struct conf_errors errs = {0};
    int rc = conf_load_file(path, &conf, &errs);
    if (rc != 0) {
        if (errs.text != NULL) {
            errbuf_set(eb, "%.*s", (int)strcspn(errs.text, "\n"), errs.text); /* the first */
        } else {
            errbuf_set(eb, "cannot read %s: %s", path, strerror(-rc));
        }
        conf_errors_fini(&errs);
        return rc;
    }
    conf_errors_fini(&errs);
    rc = conf_apply_node(conf, node, 0, eb);
    if (rc != 0) {
        conf_free(conf);
        return rc;
    }
    *out = conf;
    return 0;
}

void conf_roles_text(uint32_t roles, char *out, size_t size)
{
    static const char *const names[] = {"lb", "web", "app", "db"}; /* CONF_ROLE_* bit order */
    size_t k = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if ((roles & (1u << i)) == 0) {
            continue;
        }
        int n = snprintf(out + k, size - k, "%s%s", k == 0 ? "" : " ", names[i]);
        if (n < 0 || (size_t)n >= size - k) {
            out[k] = '\0'; /* only whole names */
            return;
        }
        k += (size_t)n;
    }
}

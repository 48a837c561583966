/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the configuration loader (lexer, parser, directive tables,
 * validation). Host names are not resolved (CONF_LOAD_NO_RESOLVE): a fuzzer must not send
 * DNS queries. Besides crashes and leaks, it checks the loader's promises: a loaded
 * configuration is consistent, a rejected one comes with error text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_loaded(const struct conf *conf)
{
    for (uint32_t i = 0; i < conf->n_frontends; i++) {
        const struct conf_frontend *fe = &conf->frontends[i];
        if (fe->n_binds == 0 || fe->backend_index >= conf->n_backends ||
            conf->backends[fe->backend_index].mode != fe->mode ||
            strcmp(conf->backends[fe->backend_index].name, fe->backend_name) != 0) {
            abort();
        }
    }
    for (uint32_t i = 0; i < conf->n_backends; i++) {
        const struct conf_backend *be = &conf->backends[i];
        if (be->n_servers == 0 || be->check.rise == 0 || be->check.fall == 0 ||
            be->check.status_min > be->check.status_max) {
            abort();
        }
        for (uint32_t k = 0; k < be->n_servers; k++) {
            if (be->servers[k].weight < 1 || be->servers[k].weight > 256 ||
                be->servers[k].addr.salen == 0) {
                abort();
            }
            /* a tls server's settings are complete */
            const struct conf_server_tls *t = &be->servers[k].tls;
            if ((t->is_on && (t->verify == CONF_TLS_VERIFY_UNSET || t->name[0] == '\0')) ||
                (!t->is_on && t->has_opt)) {
                abort();
            }
        }
    }
    for (uint32_t i = 0; i < conf->n_nodes; i++) {
        if (conf->nodes[i].roles == 0 || conf->nodes[i].address[0] == '\0') {
            abort();
        }
    }
    for (uint32_t i = 0; i < conf->n_apps; i++) {
        const struct conf_app *a = &conf->apps[i];
        if (a->listen.salen == 0 || a->processes < 1 || a->processes > 64 ||
            a->backoff_initial_ms > a->backoff_max_ms || a->check.rise == 0 || a->check.fall == 0 ||
            a->check.status_min > a->check.status_max ||
            (a->kind == CONF_APP_COMMAND &&
             (a->argc == 0 || a->argv[a->argc] != NULL || a->argv[0][0] == '\0'))) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc =
        conf_load_mem("fuzz.conf", (const char *)data, size, CONF_LOAD_NO_RESOLVE, &conf, &errs);
    if (rc == 0) {
        if (conf == NULL || errs.text != NULL) {
            abort();
        }
        check_loaded(conf);
        conf_free(conf);
    } else {
        if (conf != NULL || errs.text == NULL || errs.len == 0 || errs.text[errs.len - 1] != '\n' ||
            (rc == -KEEL_ECONFIG && (errs.count == 0 || errs.count > CONF_MAX_ERRORS))) {
            abort();
        }
    }
    conf_errors_fini(&errs);
    return 0;
}

/* SPDX-License-Identifier: MIT */
/* `keel check -c FILE`: the whole configuration pipeline up to the swap (parse, build,
 * validate), reporting every error, and each node's descriptor budget (core/fdlimit.c)
 * against this machine's hard open files limit, which `keel run` raises the soft limit to.
 * It does not open sockets or start threads. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/conf_node.h"
#include "core/fdlimit.h"
#include "core/err.h"

/* What `keel run` would start: the workers directive, else one per core (as cli_run.c). */
static uint32_t workers_of(const struct conf *conf)
{
    if (conf->global.workers != 0) {
        return conf->global.workers;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 32 ? 32 : (uint32_t)n;
}

/* Whether node (NULL: a file without nodes) fits in limit descriptors; prints why not. */
static bool node_fits(const char *path, const char *node, uint64_t limit)
{
    struct conf *conf = NULL;
    struct conf_errors errs = {0};
    struct errbuf eb = {{0}};
    if (conf_load_file(path, &conf, &errs) != 0) {
        conf_errors_fini(&errs); /* it loaded once already: a file changed meanwhile */
        fprintf(stderr, "%s: error: the file changed while it was checked\n", path);
        return false;
    }
    conf_errors_fini(&errs);
    bool ok = conf_apply_node(conf, node, 0, &eb) == 0 &&
              fdlimit_conf_apply(conf, node, workers_of(conf), limit, NULL, &eb) == 0;
    if (!ok) {
        fprintf(stderr, "%s%s%s%s\n", eb.msg, node != NULL ? " (node " : "",
                node != NULL ? node : "", node != NULL ? ")" : "");
    }
    conf_free(conf);
    return ok;
}

/* Every node that runs frontends or sites, each against the hard limit. */
static bool nodes_fit(const char *path, const struct conf *conf)
{
    uint64_t soft, hard;
    if (fdlimit_get(&soft, &hard) != 0) {
        return true; /* nothing to compare with */
    }
    (void)soft;
    if (conf->n_nodes == 0) {
        return node_fits(path, NULL, hard);
    }
    bool ok = true;
    for (uint32_t i = 0; i < conf->n_nodes; i++) {
        if ((conf->nodes[i].roles & (CONF_ROLE_LB | CONF_ROLE_WEB)) != 0) {
            ok = node_fits(path, conf->nodes[i].name, hard) && ok;
        }
    }
    return ok;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: keel check -c FILE\n"
                 "  validate a configuration file; errors are printed as file:line:col\n");
}

int cli_check(int argc, char **argv)
{
    const char *path = NULL;
    /* Parsed by hand rather than with getopt(3): main.c may already have used getopt, whose
     * state is global. */
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage(stdout);
            return KEEL_EXIT_OK;
        }
        if ((strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0) && i + 1 < argc) {
            path = argv[++i];
        } else if (strncmp(arg, "--config=", 9) == 0) {
            path = arg + 9;
        } else if (strncmp(arg, "-c", 2) == 0 && arg[2] != '\0') {
            path = arg + 2;
        } else {
            fprintf(stderr, "keel check: %s \"%s\"\n",
                    strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0 ? "missing file after"
                                                                           : "unexpected argument",
                    arg);
            usage(stderr);
            return KEEL_EXIT_USAGE;
        }
    }
    if (path == NULL || path[0] == '\0') {
        fprintf(stderr, "keel check: missing -c FILE\n");
        usage(stderr);
        return KEEL_EXIT_USAGE;
    }

    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_file(path, &conf, &errs);
    if (rc != 0) {
        fputs(errs.text != NULL ? errs.text : "error: cannot load the configuration\n", stderr);
        conf_errors_fini(&errs);
        return KEEL_EXIT_CONFIG;
    }
    if (!nodes_fit(path, conf)) {
        conf_free(conf);
        conf_errors_fini(&errs);
        return KEEL_EXIT_CONFIG;
    }
    uint32_t n_servers = 0;
    for (uint32_t i = 0; i < conf->n_backends; i++) {
        n_servers += conf->backends[i].n_servers;
    }
    printf("%s: configuration ok (%u frontends, %u backends, %u servers)\n", path,
           conf->n_frontends, conf->n_backends, n_servers);
    conf_free(conf);
    conf_errors_fini(&errs);
    return fflush(stdout) == 0 ? KEEL_EXIT_OK : KEEL_EXIT_RUNTIME;
}

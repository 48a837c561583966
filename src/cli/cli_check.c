/* SPDX-License-Identifier: MIT */
/* `keel check -c FILE`: the whole configuration pipeline up to the swap (parse, build,
 * validate), reporting every error. It does not open sockets or start threads. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "core/conf.h"
#include "core/err.h"

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

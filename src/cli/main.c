/* SPDX-License-Identifier: MIT */
/* The keel binary: dispatch to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "demo/demo.h"
#include "core/err.h"

struct subcommand {
    const char *name;
    int (*handler)(int argc, char **argv);
    const char *summary;
};

static const struct subcommand subcommands[] = {
    {"up", cli_up, "run the whole stack on this machine (default: the built-in demo)"},
    {"run", cli_run, "run one node: keel run -c FILE [--node NAME]"},
    {"status", cli_status, "the cluster at a glance: keel status -c FILE"},
    {"db", cli_db, "the database tier: keel db password|switchover -c FILE [NAME]"},
    {"check", cli_check, "validate a configuration: keel check -c FILE"},
    {"backend", demo_backend_main,
     "a tiny built-in HTTP backend: keel backend --name N --listen A"},
    {"demo-app", demo_app_main, "the built-in demo application: keel demo-app --listen A"},
    {"metrics-doc", cli_metrics_doc, NULL}, /* hidden: writes docs/metrics.md */
};

static void usage(FILE *out)
{
    fprintf(out, "keel %s: distributed web infrastructure in one binary\n\nusage:\n", KEEL_VERSION);
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
        if (subcommands[i].summary == NULL) {
            continue; /* a hidden subcommand */
        }
        fprintf(out, "  keel %-8s %s\n", subcommands[i].name, subcommands[i].summary);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return KEEL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return KEEL_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("keel %s\n", KEEL_VERSION);
        return KEEL_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
        if (strcmp(argv[1], subcommands[i].name) == 0) {
            return subcommands[i].handler(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "keel: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return KEEL_EXIT_USAGE;
}

/* SPDX-License-Identifier: MIT */
/* `keel metrics-doc`: print the metrics reference generated from the metric tables
 * (monitor/metrics_registry.c). Hidden from the usage text: it exists to write
 * docs/metrics.md (`keel metrics-doc > docs/metrics.md`). */
#include "cli/cli.h"

#include <stdio.h>

#include "core/err.h"
#include "monitor/metrics.h"
#include "monitor/metrics_registry.h"

int cli_metrics_doc(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: keel metrics-doc > docs/metrics.md\n");
        return KEEL_EXIT_USAGE;
    }
    struct metrics_out out = {0};
    metrics_registry_doc(&out);
    int rc = KEEL_EXIT_OK;
    if (out.failed || fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
        fprintf(stderr, "keel metrics-doc: cannot write the reference\n");
        rc = KEEL_EXIT_RUNTIME;
    }
    metrics_out_fini(&out);
    return rc;
}

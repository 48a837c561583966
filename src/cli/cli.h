/* SPDX-License-Identifier: MIT */
/* The subcommands of the keel binary. main.c dispatches argv[1] to one of these; each gets
 * argc/argv starting at the subcommand's name (argv[0] = "check") and returns the process
 * exit code (enum keel_exit). */
#ifndef KEEL_CLI_CLI_H
#define KEEL_CLI_CLI_H

#include "monitor/metrics-t.h"

/* keel check -c FILE: load and validate FILE as `keel run` would, without starting anything.
 * Prints every error to stderr and returns KEEL_EXIT_CONFIG (1) if there is any; otherwise
 * prints "FILE: configuration ok (N frontends, N backends, N servers)" to stdout and returns
 * KEEL_EXIT_OK. Bad usage: KEEL_EXIT_USAGE (2). Blocks (file I/O, name resolution). */
int cli_check(int argc, char **argv);

#define KEEL_VERSION "0.1.0"

/* keel run -c FILE [--node NAME]: run the node in the foreground until SIGTERM/SIGINT. */
int cli_run(int argc, char **argv);

/* Run a node from a configuration file; returns the exit code. Blocks until stopped. */
int keel_node_run(const char *conf_path, const char *node_name);

/* keel up [FILE]: the whole demo stack on this machine until Ctrl-C. */
int cli_up(int argc, char **argv);

/* keel status -c FILE: every node's state from its admin listener, as a table and a list of
 * problems; KEEL_EXIT_OK when everything is healthy, KEEL_EXIT_CONFIG (1) otherwise. */
int cli_status(int argc, char **argv);

/* keel db ACTION -c FILE [NAME]: the database tier (the application role's password,
 * switchover); cli_db.c lists the actions. */
int cli_db(int argc, char **argv);
/* keel metrics-doc: print docs/metrics.md, the metrics reference generated from the metric
 * tables (monitor/metrics_registry.c), to stdout. Hidden from the usage text; a unit test
 * fails when the committed page differs. Returns KEEL_EXIT_OK, or KEEL_EXIT_RUNTIME when
 * stdout cannot be written. */
int cli_metrics_doc(int argc, char **argv);

/* The node's own metric families (cli_run.c: configuration generation, descriptor limits,
 * the load balancer's published state), for the registry. */
extern const struct metric_table cli_run_metric_table;

#endif

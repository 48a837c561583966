/* SPDX-License-Identifier: MIT */
/* The demo programs the keel binary carries: the built-in demo application (what
 * `run builtin demo` supervises) and the tiny test backend. Each is a subcommand entry
 * point that cli/main.c's table names; nothing here depends on cli/. */
#ifndef KEEL_DEMO_DEMO_H
#define KEEL_DEMO_DEMO_H

/* keel demo-app [--name NODE] [--listen IP:PORT]: the built-in demo application
 * (demo_app.c). Without --listen, $HOST:$PORT. Runs until SIGTERM or SIGINT; returns the
 * exit code (enum keel_exit). Blocks. */
int demo_app_main(int argc, char **argv);

/* keel backend --name NAME --listen ADDR [--workers N] [--quiet]: the tiny test backend
 * (demo_backend.c). Runs until killed; returns the exit code on a usage or start failure.
 * Blocks. */
int demo_backend_main(int argc, char **argv);

#endif

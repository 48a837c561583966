/* SPDX-License-Identifier: MIT */
/* What the two halves of `keel up` share: cli_up.c runs, watches and stops the processes of a
 * cluster on this machine; cli_up_demo.c writes the built-in demo topology (and its
 * database's secret and etcd) into a temporary directory. Internal to src/cli. */
#ifndef KEEL_CLI_CLI_UP_H
#define KEEL_CLI_CLI_UP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/conf.h"
#include "core/err.h"

#define UP_MAX_ARGS 24
#define UP_MAX_URLS 8

/* One process keel up runs: a node of the file (`keel run -c FILE --node NAME`), or a
 * service the demo needs that is not keel (etcd). */
struct up_node {
    char name[CONF_NAME_MAX]; /* "" when the file has no nodes: one process runs it all */
    char roles[32];
    char address[64];
    const char *exe; /* the program; NULL: keel itself */
    bool is_service; /* not keel: a service the nodes need (etcd) */
    int tier;        /* 0 services, 1 db nodes, 2 the others: started in this order, stopped in the
                      * reverse one, so that nothing waits long for what it needs */
    char log_path[CONF_PATH_MAX]; /* its stdout and stderr go there; "": to keel up's */
    char *argv[UP_MAX_ARGS + 1];
    char args[UP_MAX_ARGS][CONF_PATH_MAX];
    bool has_probe; /* an address that accepts once the node is up (admin, else a bind) */
    struct conf_addr probe;
    bool has_admin;
    struct conf_addr admin;
    char urls[UP_MAX_URLS][200];     /* what the node serves, printed once everything is up */
    char url_keys[UP_MAX_URLS][128]; /* the bind address of each: shared VIPs print once */
    int n_urls;
};

/* Set nd's command line from args (NULL-terminated, args[0] the program's name; copied).
 * Returns 0, or -E2BIG when there are more than UP_MAX_ARGS or one is too long. */
int up_node_set_argv(struct up_node *nd, const char *const *args) KEEL_MUST_CHECK;

/* The built-in demo, as written by up_demo_create. */
struct up_demo {
    char dir[64];                  /* the temporary directory: everything is in it */
    char conf_path[CONF_PATH_MAX]; /* DIR/keel.conf */
    bool has_db;                   /* with etcd, db1, db2 and the guestbook's database */
    char no_db[256];               /* why not, when not */
    char etcd_exe[CONF_PATH_MAX];
    char etcd_client[64]; /* IP:PORT */
    char etcd_peer[64];
    char guestbook_url[128]; /* through the virtual IP */
};

/* Create the demo's directory under /tmp and write the demo topology into it: two load
 * balancers sharing a virtual IP, three web+app nodes and, when etcd and PostgreSQL 15 are
 * installed (and keel up runs as root, which PostgreSQL's user needs), two db nodes with a
 * database the demo application's guestbook uses, a random cluster secret and a directory
 * PostgreSQL can reach. Ports are the usual ones when free on every demo address, else free
 * ones. Returns 0, or a negative code with a reason in eb (the directory is then removed).
 * Blocks (files, a few bind() probes). */
int up_demo_create(struct up_demo *d, struct errbuf *eb) KEEL_MUST_CHECK;

/* Fill nd (zeroed by the caller) with the demo's etcd: a one-member cluster on its own
 * address, its data and log in the demo's directory. Only when d->has_db. */
int up_demo_etcd(const struct up_demo *d, struct up_node *nd) KEEL_MUST_CHECK;

/* Remove the demo's directory and everything in it (the database files too). Call it once
 * nothing runs there any more. */
void up_demo_remove(const struct up_demo *d);

#endif

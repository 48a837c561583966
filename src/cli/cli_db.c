/* SPDX-License-Identifier: MIT */
/* `keel db`: the database tier from the command line.
 *
 *   keel db password -c FILE [NAME]   the application role's password (role and database
 *                                     NAME), derived from the cluster secret
 *   keel db switchover -c FILE [--to NODE] [NAME]
 *                                     a planned handover of the primary (db_agent.c does
 *                                     it): writes the switchover key in etcd, then waits
 *                                     until another node holds the leader key
 *
 * NAME may be left out when the file has one database. */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/conf.h"
#include "core/err.h"
#include "core/json.h"
#include "core/ev.h"
#include "db/db_conf.h"
#include "db/db_secret.h"
#include "db/etcd.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: keel db password -c FILE [NAME]\n"
                 "       keel db switchover -c FILE [--to NODE] [NAME]\n"
                 "  password    print the password of the application role NAME (database NAME)\n"
                 "  switchover  hand the primary over to NODE (default: the best replica)\n"
                 "              without losing an acknowledged write; waits until done\n");
}

struct db_args {
    const char *path;
    const char *name;
    const char *to;
};

/* -c FILE and at most one NAME after the action. Returns 0 or an exit code. */
static int parse_args(int argc, char **argv, struct db_args *args)
{
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if ((strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0) && i + 1 < argc) {
            args->path = argv[++i];
        } else if (strncmp(arg, "--config=", 9) == 0) {
            args->path = arg + 9;
        } else if (strcmp(arg, "--to") == 0 && i + 1 < argc && strcmp(argv[1], "switchover") == 0) {
            args->to = argv[++i];
        } else if (arg[0] != '-' && args->name == NULL) {
            args->name = arg;
        } else {
            fprintf(stderr, "keel db: unexpected argument \"%s\"\n", arg);
            usage(stderr);
            return KEEL_EXIT_USAGE;
        }
    }
    if (args->path == NULL) {
        fprintf(stderr, "keel db: missing -c FILE\n");
        usage(stderr);
        return KEEL_EXIT_USAGE;
    }
    return 0;
}

/* The database named name, or the only one. Prints why not and returns NULL. */
static const struct conf_database *pick(const struct conf *conf, const char *name)
{
    for (uint32_t i = 0; i < conf->n_databases; i++) {
        if (name == NULL ? conf->n_databases == 1 : strcmp(conf->databases[i].name, name) == 0) {
            return &conf->databases[i];
        }
    }
    if (name != NULL) {
        fprintf(stderr, "keel db: no database \"%s\" in the configuration\n", name);
    } else {
        fprintf(stderr, "keel db: the configuration has %u databases: name one\n",
                conf->n_databases);
    }
    return NULL;
}

static int db_password(const struct conf *conf, const struct conf_database *db)
{
    if (conf->secret_file[0] == '\0') {
        fprintf(stderr, "keel db: the cluster has no secret_file\n");
        return KEEL_EXIT_CONFIG;
    }
    char pw[DB_PASSWORD_SIZE];
    struct errbuf eb;
    if (db_secret_app_password(conf->secret_file, db->name, pw, &eb) != 0) {
        fprintf(stderr, "keel db: %s\n", eb.msg);
        return KEEL_EXIT_RUNTIME;
    }
    printf("%s\n", pw);
    explicit_bzero(pw, sizeof(pw)); /* derived from the secret: no copy left on the stack */
    return fflush(stdout) == 0 ? KEEL_EXIT_OK : KEEL_EXIT_RUNTIME;
}

/* ---------------------------------------------------------------- switchover */

/* One etcd request at a time, run to completion on a private loop. */
struct call {
    struct ev_loop *loop;
    bool is_done;
    int err;
    char msg[256];
    int64_t lease_id;
    bool has_value;
    char value[256];
};

static void on_call(void *data, const struct etcd_result *res)
{
    struct call *c = data;
    c->is_done = true;
    c->err = res->err;
    (void)snprintf(c->msg, sizeof(c->msg), "%s", res->msg);
    c->lease_id = res->lease_id;
    c->has_value = res->n_kvs > 0;
    (void)snprintf(c->value, sizeof(c->value), "%.*s",
                   res->n_kvs > 0 ? (int)res->kvs[0].value_len : 0,
                   res->n_kvs > 0 ? res->kvs[0].value : "");
    ev_loop_stop(c->loop);
}

/* Wait for the request queued with rc; 0 or its error (printed). */
static int call_wait(struct call *c, int rc, const char *what)
{
    if (rc == 0) {
        c->is_done = false;
        (void)ev_run(c->loop);
        rc = c->err;
    }
    if (rc != 0) {
        fprintf(stderr, "keel db: etcd: cannot %s: %s\n", what,
                c->is_done && c->msg[0] != '\0' ? c->msg : err_str(rc));
    }
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool is_db_node(const struct conf_database *db, const char *node)
{
    for (uint32_t i = 0; i < db->n_nodes; i++) {
        if (strcmp(db->nodes[i], node) == 0) {
            return true;
        }
    }
    return false;
}

/* Poll the leader key until it names a node other than from; the switchover key vanishing
 * first means the primary refused or aborted. */
static int switch_wait(struct etcd *e, struct call *c, const char *key_leader,
                       const char *key_switch, const char *from)
{
    double t0 = now_s();
    while (now_s() - t0 < 30.0) {
        if (call_wait(c, etcd_get(e, key_leader, on_call, c), "read the leader key") != 0) {
            return KEEL_EXIT_RUNTIME;
        }
        if (c->has_value && strcmp(c->value, from) != 0) {
            printf("switchover: %s -> %s in %.2f s\n", from, c->value, now_s() - t0);
            return fflush(stdout) == 0 ? KEEL_EXIT_OK : KEEL_EXIT_RUNTIME;
        }
        bool is_led = c->has_value;
        if (call_wait(c, etcd_get(e, key_switch, on_call, c), "read the switchover key") != 0) {
            return KEEL_EXIT_RUNTIME;
        }
        if (!c->has_value && is_led) {
            fprintf(stderr, "keel db: %s refused or aborted the switchover (its log says why)\n",
                    from);
            return KEEL_EXIT_RUNTIME;
        }
        (void)nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
    }
    fprintf(stderr, "keel db: no new primary after 30 s; withdrawing the switchover\n");
    (void)call_wait(c, etcd_delete(e, key_switch, on_call, c), "delete the switchover key");
    return KEEL_EXIT_RUNTIME;
}

static int db_switchover(const struct conf *conf, const struct conf_database *db, const char *to)
{
    if (to != NULL && !is_db_node(db, to)) {
        fprintf(stderr, "keel db: \"%s\" is not a node of database %s\n", to, db->name);
        return KEEL_EXIT_CONFIG;
    }
    char key_leader[256], key_switch[256];
    db_conf_key(conf, db->name, "leader", key_leader, sizeof(key_leader));
    db_conf_key(conf, db->name, "switchover", key_switch, sizeof(key_switch));
    struct call c = {.loop = ev_loop_new()};
    if (c.loop == NULL) {
        fprintf(stderr, "keel db: cannot create an event loop: %s\n", strerror(errno));
        return KEEL_EXIT_RUNTIME;
    }
    const char *eps[CONF_DB_MAX_DCS];
    for (uint32_t i = 0; i < db->n_dcs; i++) {
        eps[i] = db->dcs[i];
    }
    struct errbuf eb;
    struct etcd *e = etcd_new(c.loop, eps, db->n_dcs, 3000, &eb);
    int rc = KEEL_EXIT_RUNTIME;
    char from[CONF_NAME_MAX] = "";
    if (e == NULL) {
        fprintf(stderr, "keel db: %s\n", eb.msg);
    } else if (call_wait(&c, etcd_get(e, key_leader, on_call, &c), "read the leader key") == 0) {
        (void)snprintf(from, sizeof(from), "%.*s", (int)sizeof(from) - 1, c.value);
        if (!c.has_value) {
            fprintf(stderr, "keel db: database %s has no primary now\n", db->name);
        } else if (to != NULL && strcmp(to, from) == 0) {
            fprintf(stderr, "keel db: %s is the primary already\n", to);
            rc = KEEL_EXIT_OK;
        } else if (call_wait(&c, etcd_lease_grant(e, 60, on_call, &c), "grant a lease") == 0) {
            char v[160];
            struct json_w w;
            json_w_init_fixed(&w, v, sizeof(v));
            json_w_begin_object(&w);
            json_w_key_str(&w, "from", from);
            json_w_key_str(&w, "to", to != NULL ? to : "");
            json_w_end_object(&w);
            if (json_w_finish(&w) != 0) {
                fprintf(stderr, "keel db: the switchover key does not fit in %zu bytes\n",
                        sizeof(v));
            } else if (call_wait(&c, etcd_put(e, key_switch, v, w.len, c.lease_id, on_call, &c),
                                 "write the switchover key") == 0) {
                printf("switchover of %s: asked %s to hand over to %s\n", db->name, from,
                       to != NULL ? to : "its best replica");
                (void)fflush(stdout);
                rc = switch_wait(e, &c, key_leader, key_switch, from);
            }
        }
    }
    etcd_free(e);
    ev_loop_free(c.loop);
    return rc;
}

int cli_db(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? KEEL_EXIT_USAGE : KEEL_EXIT_OK;
    }
    const char *action = argv[1];
    if (strcmp(action, "password") != 0 && strcmp(action, "switchover") != 0) {
        fprintf(stderr, "keel db: unknown action \"%s\"\n", action);
        usage(stderr);
        return KEEL_EXIT_USAGE;
    }
    struct db_args args = {0};
    int rc = parse_args(argc, argv, &args);
    if (rc != 0) {
        return rc;
    }
    struct conf *conf = NULL;
    struct conf_errors errs;
    if (conf_load_file(args.path, &conf, &errs) != 0) {
        fputs(errs.text != NULL ? errs.text : "error: cannot load the configuration\n", stderr);
        conf_errors_fini(&errs);
        return KEEL_EXIT_CONFIG;
    }
    conf_errors_fini(&errs);
    const struct conf_database *db = pick(conf, args.name);
    rc = db == NULL                          ? KEEL_EXIT_CONFIG
         : strcmp(action, "switchover") == 0 ? db_switchover(conf, db, args.to)
                                             : db_password(conf, db);
    conf_free(conf);
    return rc;
}

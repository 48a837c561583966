/* SPDX-License-Identifier: MIT */
/* `keel db`: the database tier from the command line.
 *
 *   keel db password -c FILE [NAME]   the application role's password (role and database
 *                                     NAME), derived from the cluster secret
 *
 * NAME may be left out when the file has one database. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "core/conf.h"
#include "core/err.h"
#include "db/db_secret.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: keel db password -c FILE [NAME]\n"
                 "  password  print the password of the application role NAME (database NAME)\n");
}

struct db_args {
    const char *path;
    const char *name;
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
    return fflush(stdout) == 0 ? KEEL_EXIT_OK : KEEL_EXIT_RUNTIME;
}

int cli_db(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? KEEL_EXIT_USAGE : KEEL_EXIT_OK;
    }
    const char *action = argv[1];
    if (strcmp(action, "password") != 0) {
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
    rc = db == NULL ? KEEL_EXIT_CONFIG : db_password(conf, db);
    conf_free(conf);
    return rc;
}

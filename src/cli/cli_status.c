/* SPDX-License-Identifier: MIT */
/* `keel status -c FILE`: the cluster at a glance. For every node of the file (or the one
 * process a file without nodes describes) it asks the node's admin listener for /status
 * and prints one table row: roles, state, pid, the servers its backends see up, its app
 * processes, its database role (and a replica's lag). Then a line for every problem found:
 * a node that does not answer, a server down (with the health check's reason), an app
 * process unhealthy or in a crash loop, a db node whose PostgreSQL is not running or a
 * replica past max_lag, a database without a primary. The servers of the backends a
 * database adds to the lb nodes (NAME-primary, NAME-readers) are up only on the nodes that
 * have that role: there, a backend without any server up is the problem. Nothing is
 * guessed from the file except where to ask and the limits it sets. Exit status 0 when
 * every node answers and everything is healthy, 1 otherwise (2 for bad usage). */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_http.h"
#include "core/conf.h"
#include "core/conf_node.h"
#include "core/err.h"
#include "core/json.h"

#define STATUS_TIMEOUT_MS 2000
#define STATUS_MAX_PROBLEMS 64

struct row {
    char node[CONF_NAME_MAX];
    char address[64];
    char roles[32];
    char state[16];
    char pid[16];
    char servers[256];
    char apps[256];
    char db[96];
    char vrrp[128];
};

/* What the db nodes of one database said, for the checks that span nodes. */
struct db_seen {
    int answered;
    int primaries;
    char roles[160]; /* "db1 replica, db2 candidate" */
};

struct problems {
    char lines[STATUS_MAX_PROBLEMS][320];
    int n;
    int dropped;
};

static void problem(struct problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct problems *p, const char *fmt, ...)
{
    if (p->n == STATUS_MAX_PROBLEMS) {
        p->dropped++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(p->lines[p->n++], sizeof(p->lines[0]), fmt, ap);
    va_end(ap);
}

/* Append to a fixed buffer, truncating. */
static void cat(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cat(char *buf, size_t size, const char *fmt, ...)
{
    size_t k = strlen(buf);
    if (k + 1 >= size) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(buf + k, size - k, fmt, ap);
    va_end(ap);
}

/* The string, or def when v is not a string or is empty. */
static const char *str_or(const struct json_value *v, const char *def)
{
    const char *s = json_str(v);
    return s != NULL && s[0] != '\0' ? s : def;
}

/* Whether backend name is one a database adds to the lb nodes (db/db_conf.c names them
 * NAME-primary and NAME-readers). */
static bool is_db_backend(const struct conf *conf, const char *name)
{
    for (uint32_t d = 0; d < conf->n_databases; d++) {
        size_t n = strlen(conf->databases[d].name);
        if (strncmp(name, conf->databases[d].name, n) == 0 &&
            (strcmp(name + n, "-primary") == 0 || strcmp(name + n, "-readers") == 0)) {
            return true;
        }
    }
    return false;
}

/* Backends: "web 3/3" per backend; a problem line per server that is not up (for a
 * database's backend, when none is). */
static void read_backends(const struct conf *conf, const struct json_value *st, struct row *r,
                          struct problems *p)
{
    const struct json_value *bes = json_get(st, "backends");
    for (size_t b = 0; b < json_len(bes); b++) {
        const struct json_value *be = json_at(bes, b);
        const struct json_value *servers = json_get(be, "servers");
        const char *be_name = str_or(json_get(be, "name"), "?");
        bool is_db = is_db_backend(conf, be_name);
        size_t up = 0, n = json_len(servers);
        for (size_t i = 0; i < n; i++) {
            up += json_bool(json_get(json_at(servers, i), "up"), false) ? 1 : 0;
        }
        for (size_t i = 0; i < n; i++) {
            const struct json_value *s = json_at(servers, i);
            if (json_bool(json_get(s, "up"), false) || (is_db && up > 0)) {
                continue;
            }
            problem(p, "%s: server %s/%s (%s) is down: %s", r->node,
                    str_or(json_get(be, "name"), "?"), str_or(json_get(s, "name"), "?"),
                    str_or(json_get(s, "address"), "?"),
                    json_bool(json_get(s, "disabled"), false)
                        ? "disabled"
                        : str_or(json_get(s, "reason"), "no reason given"));
        }
        cat(r->servers, sizeof(r->servers), "%s%s %zu/%zu", b == 0 ? "" : ", ", be_name, up, n);
    }
    if (r->servers[0] == '\0') {
        (void)snprintf(r->servers, sizeof(r->servers), "-");
    }
}

/* Apps: "demo 2/2" (healthy/processes) per app; a problem per unhealthy process. */
static void read_apps(const struct json_value *st, struct row *r, struct problems *p)
{
    const struct json_value *apps = json_get(st, "apps");
    for (size_t a = 0; a < json_len(apps); a++) {
        const struct json_value *app = json_at(apps, a);
        const char *name = str_or(json_get(app, "name"), "?");
        const struct json_value *procs = json_get(app, "processes");
        size_t good = 0, n = json_len(procs);
        bool crashloop = false;
        for (size_t i = 0; i < n; i++) {
            const struct json_value *pr = json_at(procs, i);
            const char *state = str_or(json_get(pr, "state"), "?");
            bool healthy = json_bool(json_get(pr, "healthy"), false);
            bool loop = json_bool(json_get(pr, "crashloop"), false);
            int64_t index = 0, pid = 0;
            (void)json_int(json_get(pr, "index"), &index);
            (void)json_int(json_get(pr, "pid"), &pid);
            if (strcmp(state, "running") == 0 && healthy && !loop) {
                good++;
                continue;
            }
            crashloop = crashloop || loop;
            int64_t restarts = 0;
            (void)json_int(json_get(pr, "restarts"), &restarts);
            problem(p,
                    "%s: app %s/%lld (pid %lld) is %s%s%s; check: %s; restarts %lld; last exit: %s",
                    r->node, name, (long long)index, (long long)pid, state,
                    healthy ? "" : ", unhealthy", loop ? ", IN A CRASH LOOP" : "",
                    str_or(json_get(pr, "check"), "none"), (long long)restarts,
                    str_or(json_get(pr, "last_exit"), "none"));
        }
        cat(r->apps, sizeof(r->apps), "%s%s %zu/%zu%s", a == 0 ? "" : ", ", name, good, n,
            crashloop ? " CRASHLOOP" : "");
    }
    if (r->apps[0] == '\0') {
        (void)snprintf(r->apps, sizeof(r->apps), "-");
    }
}

/* VRRP: "51 master" per virtual router. */
static void read_vrrp(const struct json_value *st, struct row *r)
{
    const struct json_value *vrs = json_get(st, "vrrp");
    for (size_t i = 0; i < json_len(vrs); i++) {
        const struct json_value *vr = json_at(vrs, i);
        int64_t vrid = 0;
        (void)json_int(json_get(vr, "vrid"), &vrid);
        cat(r->vrrp, sizeof(r->vrrp), "%s%lld %s", i == 0 ? "" : ", ", (long long)vrid,
            str_or(json_get(vr, "state"), "?"));
    }
    if (r->vrrp[0] == '\0') {
        (void)snprintf(r->vrrp, sizeof(r->vrrp), "-");
    }
}

/* "1.5 MiB": a byte count for people. */
static void human_bytes(uint64_t n, char *out, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    (void)snprintf(out, size, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
}

static struct db_seen *db_seen_of(const struct conf *conf, struct db_seen *seen, const char *name)
{
    for (uint32_t d = 0; d < conf->n_databases; d++) {
        if (strcmp(conf->databases[d].name, name) == 0) {
            return &seen[d];
        }
    }
    return NULL;
}

/* The database agent's view: "main primary", "main replica lag 0 B"; a problem when its
 * PostgreSQL is not running or a replica lags past max_lag. */
static void read_db(const struct conf *conf, const struct json_value *st, struct row *r,
                    struct problems *p, struct db_seen *seen)
{
    const struct json_value *db = json_get(st, "db");
    if (json_type(db) != JSON_OBJECT) {
        (void)snprintf(r->db, sizeof(r->db), "-");
        return;
    }
    const char *name = str_or(json_get(db, "database"), "?");
    const char *role = str_or(json_get(db, "role"), "unknown");
    const char *pg = str_or(json_get(db, "postgres"), "unknown");
    int64_t lag = 0;
    if (!json_int(json_get(db, "lag_bytes"), &lag) || lag < 0) {
        lag = 0; /* an agent that does not say yet */
    }
    double lag_s = json_num(json_get(db, "lag_seconds"), 0);
    (void)snprintf(r->db, sizeof(r->db), "%s %s", name, role);
    if (strcmp(role, "replica") == 0) {
        char text[32];
        human_bytes((uint64_t)lag, text, sizeof(text));
        cat(r->db, sizeof(r->db), " lag %s", text);
        if (lag_s >= 0.1) {
            cat(r->db, sizeof(r->db), " %.1f s", lag_s);
        }
    }
    if (strcmp(pg, "running") != 0) {
        cat(r->db, sizeof(r->db), ", postgres %s", pg);
        problem(p, "%s: database %s: PostgreSQL is %s (role %s)", r->node, name, pg, role);
    }
    const struct json_value *stuck = json_get(db, "stuck");
    if (json_type(stuck) == JSON_OBJECT) {
        int64_t attempts = 0;
        (void)json_int(json_get(stuck, "attempts"), &attempts);
        cat(r->db, sizeof(r->db), ", stuck");
        problem(p,
                "%s: database %s: stuck: %s failing for %.0f s (%lld attempts, next in %.0f s): "
                "%s",
                r->node, name, str_or(json_get(stuck, "operation"), "?"),
                json_num(json_get(stuck, "since_seconds"), 0), (long long)attempts,
                json_num(json_get(stuck, "next_attempt_seconds"), 0),
                str_or(json_get(stuck, "last_error"), ""));
    }
    const struct conf_database *cd = NULL;
    for (uint32_t d = 0; d < conf->n_databases; d++) {
        cd = strcmp(conf->databases[d].name, name) == 0 ? &conf->databases[d] : cd;
    }
    if (cd != NULL && strcmp(role, "replica") == 0 && (uint64_t)lag > cd->max_lag) {
        char text[32], max[32];
        human_bytes((uint64_t)lag, text, sizeof(text));
        human_bytes(cd->max_lag, max, sizeof(max));
        problem(p,
                "%s: database %s: the replica lags %s behind the primary (max_lag %s): it "
                "takes no reads",
                r->node, name, text, max);
    }
    struct db_seen *ds = db_seen_of(conf, seen, name);
    if (ds != NULL) {
        ds->answered++;
        ds->primaries += strcmp(role, "primary") == 0 && strcmp(pg, "running") == 0 ? 1 : 0;
        cat(ds->roles, sizeof(ds->roles), "%s%s %s", ds->roles[0] != '\0' ? ", " : "", r->node,
            role);
    }
}

/* A role that refused a reload runs an older generation than the last file the node read
 * ("generations" against "generation" in /status): a problem line each, since only a restart
 * applies what it refused. */
static void read_generations(const struct json_value *st, struct row *r, struct problems *p)
{
    int64_t node_gen = 0, role_gen = 0;
    const struct json_value *gens = json_get(st, "generations");
    if (!json_int(json_get(st, "generation"), &node_gen) || json_type(gens) != JSON_OBJECT) {
        return;
    }
    for (size_t i = 0; i < json_len(gens); i++) {
        if (json_int(json_at(gens, i), &role_gen) && role_gen != node_gen) {
            problem(p,
                    "%s: role %s runs generation %lld, not %lld (the last file read): it refused "
                    "a reload (see the node's log; restart to apply it)",
                    r->node, json_key_at(gens, i), (long long)role_gen, (long long)node_gen);
        }
    }
}

/* Ask one node; fill its row. Returns true when the node answered and is healthy. */
static bool query(const struct conf *conf, const struct conf_addr *admin, struct row *r,
                  struct problems *p, struct db_seen *seen)
{
    int status = 0;
    char *body = NULL;
    size_t len = 0;
    struct errbuf eb = {{0}};
    (void)snprintf(r->servers, sizeof(r->servers), "-");
    (void)snprintf(r->apps, sizeof(r->apps), "-");
    (void)snprintf(r->pid, sizeof(r->pid), "-");
    (void)snprintf(r->vrrp, sizeof(r->vrrp), "-");
    (void)snprintf(r->db, sizeof(r->db), "-");
    if (cli_http_get((const struct sockaddr *)&admin->sa, admin->salen, "/status",
                     STATUS_TIMEOUT_MS, &status, &body, &len, &eb) != 0) {
        (void)snprintf(r->state, sizeof(r->state), "DOWN");
        problem(p, "%s: no answer from its admin listener %s: %s", r->node, admin->text, eb.msg);
        return false;
    }
    struct json_doc *doc = status == 200 ? json_parse(body, len, &eb) : NULL;
    free(body);
    if (doc == NULL) {
        (void)snprintf(r->state, sizeof(r->state), "BROKEN");
        problem(p, "%s: bad answer from %s: %s", r->node, admin->text,
                status != 200 ? "status is not 200" : eb.msg);
        return false;
    }
    const struct json_value *st = json_root(doc);
    const char *name = str_or(json_get(st, "node"), "");
    bool ok = true;
    if (r->node[0] != '\0' && name[0] != '\0' && strcmp(name, r->node) != 0) {
        problem(p, "%s: the process at %s says it is node \"%s\"", r->node, admin->text, name);
        ok = false;
    }
    int64_t pid = 0;
    if (json_int(json_get(st, "pid"), &pid)) {
        (void)snprintf(r->pid, sizeof(r->pid), "%lld", (long long)pid);
    }
    bool draining = json_bool(json_get(st, "draining"), false);
    (void)snprintf(r->state, sizeof(r->state), "%s", draining ? "draining" : "up");
    int before = p->n + p->dropped;
    r->servers[0] = r->apps[0] = '\0';
    read_generations(st, r, p);
    read_backends(conf, st, r, p);
    read_apps(st, r, p);
    read_db(conf, st, r, p, seen);
    r->vrrp[0] = '\0';
    read_vrrp(st, r);
    json_free(doc);
    return ok && !draining && p->n + p->dropped == before;
}

/* The admin address of a node: the file narrowed to that node. */
static int node_admin(const char *path, const char *node, struct conf_addr *out, bool *has,
                      struct errbuf *eb)
{
    struct conf *conf = NULL;
    int rc = conf_load_node(path, node, &conf, eb);
    *has = rc == 0 && conf->global.has_admin;
    if (*has) {
        *out = conf->global.admin;
    }
    conf_free(conf);
    return rc;
}

#define STATUS_COLS 9

static void print_table(const struct row *rows, int n)
{
    static const char *const heads[STATUS_COLS] = {
        "NODE", "ADDRESS", "ROLES", "STATE", "PID", "SERVERS UP", "APPS HEALTHY", "DB", "VRRP"};
    size_t w[STATUS_COLS];
    for (int c = 0; c < STATUS_COLS; c++) {
        w[c] = strlen(heads[c]);
    }
    for (int i = 0; i < n; i++) {
        const char *cells[STATUS_COLS] = {rows[i].node,  rows[i].address, rows[i].roles,
                                          rows[i].state, rows[i].pid,     rows[i].servers,
                                          rows[i].apps,  rows[i].db,      rows[i].vrrp};
        for (int c = 0; c < STATUS_COLS; c++) {
            size_t l = strlen(cells[c]);
            w[c] = l > w[c] ? l : w[c];
        }
    }
    const int last = STATUS_COLS - 1;
    for (int c = 0; c < STATUS_COLS; c++) {
        printf("%-*s%s", c == last ? 0 : (int)w[c], heads[c], c == last ? "\n" : "  ");
    }
    for (int i = 0; i < n; i++) {
        const char *cells[STATUS_COLS] = {rows[i].node,  rows[i].address, rows[i].roles,
                                          rows[i].state, rows[i].pid,     rows[i].servers,
                                          rows[i].apps,  rows[i].db,      rows[i].vrrp};
        for (int c = 0; c < STATUS_COLS; c++) {
            printf("%-*s%s", c == last ? 0 : (int)w[c], cells[c], c == last ? "\n" : "  ");
        }
    }
}

/* Every database some node answered for has one primary. */
static bool check_primaries(const struct conf *conf, const struct db_seen *seen, struct problems *p)
{
    bool ok = true;
    for (uint32_t d = 0; d < conf->n_databases; d++) {
        if (seen[d].answered > 0 && seen[d].primaries != 1) {
            problem(p, "database %s: %s (%s)", conf->databases[d].name,
                    seen[d].primaries == 0 ? "no node is primary" : "more than one primary",
                    seen[d].roles);
            ok = false;
        }
    }
    return ok;
}

static int status_of_file(const char *path)
{
    struct conf *conf = NULL;
    struct conf_errors errs = {0};
    if (conf_load_file(path, &conf, &errs) != 0) {
        fputs(errs.text != NULL ? errs.text : "keel status: cannot load the configuration\n",
              stderr);
        conf_errors_fini(&errs);
        return KEEL_EXIT_CONFIG;
    }
    conf_errors_fini(&errs);
    uint32_t n = conf->n_nodes > 0 ? conf->n_nodes : 1;
    struct row *rows = calloc(n, sizeof(*rows));
    struct problems *p = calloc(1, sizeof(*p));
    struct db_seen *seen = calloc(conf->n_databases + 1u, sizeof(*seen));
    if (rows == NULL || p == NULL || seen == NULL) {
        free(rows);
        free(p);
        free(seen);
        conf_free(conf);
        fprintf(stderr, "keel status: out of memory\n");
        return KEEL_EXIT_RUNTIME;
    }
    bool all_ok = true;
    for (uint32_t i = 0; i < n; i++) {
        struct row *r = &rows[i];
        const char *node = NULL;
        if (conf->n_nodes > 0) {
            node = conf->nodes[i].name;
            (void)snprintf(r->node, sizeof(r->node), "%s", node);
            (void)snprintf(r->address, sizeof(r->address), "%s", conf->nodes[i].address);
            conf_roles_text(conf->nodes[i].roles, r->roles, sizeof(r->roles));
        } else {
            (void)snprintf(r->node, sizeof(r->node), "-");
            (void)snprintf(r->address, sizeof(r->address), "-");
            (void)snprintf(r->roles, sizeof(r->roles), "all");
        }
        struct conf_addr admin;
        bool has_admin = false;
        struct errbuf eb = {{0}};
        if (node_admin(path, node, &admin, &has_admin, &eb) != 0 || !has_admin) {
            (void)snprintf(r->state, sizeof(r->state), "unknown");
            (void)snprintf(r->pid, sizeof(r->pid), "-");
            (void)snprintf(r->servers, sizeof(r->servers), "-");
            (void)snprintf(r->apps, sizeof(r->apps), "-");
            (void)snprintf(r->vrrp, sizeof(r->vrrp), "-");
            (void)snprintf(r->db, sizeof(r->db), "-");
            problem(p, "%s: %s", r->node,
                    eb.msg[0] != '\0' ? eb.msg
                                      : "no admin listener configured (global { admin :PORT; })");
            all_ok = false;
            continue;
        }
        all_ok = query(conf, &admin, r, p, seen) && all_ok;
    }
    all_ok = check_primaries(conf, seen, p) && all_ok;
    print_table(rows, (int)n);
    if (p->n > 0) {
        printf("\n");
    }
    for (int i = 0; i < p->n; i++) {
        printf("%s\n", p->lines[i]);
    }
    if (p->dropped > 0) {
        printf("(and %d more)\n", p->dropped);
    }
    free(rows);
    free(p);
    free(seen);
    conf_free(conf);
    return all_ok ? KEEL_EXIT_OK : KEEL_EXIT_CONFIG;
}

int cli_status(int argc, char **argv)
{
    const char *path = NULL;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            printf("usage: keel status -c FILE\n");
            return KEEL_EXIT_OK;
        default:
            fprintf(stderr, "usage: keel status -c FILE\n");
            return KEEL_EXIT_USAGE;
        }
    }
    if (path == NULL || optind != argc) {
        fprintf(stderr, "usage: keel status -c FILE\n");
        return KEEL_EXIT_USAGE;
    }
    return status_of_file(path);
}

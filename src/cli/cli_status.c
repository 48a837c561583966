/* SPDX-License-Identifier: MIT */
/* `keel status -c FILE`: the cluster at a glance. For every node of the file (or the one
 * process a file without nodes describes) it asks the node's admin listener for /status
 * and prints one table row: roles, state, pid, the servers its backends see up, its app
 * processes. Then a line for every problem found: a node that does not answer, a server
 * down (with the health check's reason), an app process unhealthy or in a crash loop.
 * Nothing is guessed from the file except where to ask. Exit status 0 when every node
 * answers and everything is healthy, 1 otherwise (2 for bad usage). */
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
    char vrrp[128];
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

/* Backends: "web 3/3" per backend; a problem line per server that is not up. */
static void read_backends(const struct json_value *st, struct row *r, struct problems *p)
{
    const struct json_value *bes = json_get(st, "backends");
    for (size_t b = 0; b < json_len(bes); b++) {
        const struct json_value *be = json_at(bes, b);
        const struct json_value *servers = json_get(be, "servers");
        size_t up = 0, n = json_len(servers);
        for (size_t i = 0; i < n; i++) {
            const struct json_value *s = json_at(servers, i);
            if (json_bool(json_get(s, "up"), false)) {
                up++;
                continue;
            }
            problem(p, "%s: server %s/%s (%s) is down: %s", r->node,
                    str_or(json_get(be, "name"), "?"), str_or(json_get(s, "name"), "?"),
                    str_or(json_get(s, "address"), "?"),
                    json_bool(json_get(s, "disabled"), false)
                        ? "disabled"
                        : str_or(json_get(s, "reason"), "no reason given"));
        }
        cat(r->servers, sizeof(r->servers), "%s%s %zu/%zu", b == 0 ? "" : ", ",
            str_or(json_get(be, "name"), "?"), up, n);
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

/* Ask one node; fill its row. Returns true when the node answered and is healthy. */
static bool query(const struct conf_addr *admin, struct row *r, struct problems *p)
{
    int status = 0;
    char *body = NULL;
    size_t len = 0;
    struct errbuf eb = {{0}};
    (void)snprintf(r->servers, sizeof(r->servers), "-");
    (void)snprintf(r->apps, sizeof(r->apps), "-");
    (void)snprintf(r->pid, sizeof(r->pid), "-");
    (void)snprintf(r->vrrp, sizeof(r->vrrp), "-");
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
    read_backends(st, r, p);
    read_apps(st, r, p);
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

static void print_table(const struct row *rows, int n)
{
    static const char *const heads[] = {"NODE", "ADDRESS",    "ROLES",        "STATE",
                                        "PID",  "SERVERS UP", "APPS HEALTHY", "VRRP"};
    size_t w[8];
    for (int c = 0; c < 8; c++) {
        w[c] = strlen(heads[c]);
    }
    for (int i = 0; i < n; i++) {
        const char *cells[] = {rows[i].node, rows[i].address, rows[i].roles, rows[i].state,
                               rows[i].pid,  rows[i].servers, rows[i].apps,  rows[i].vrrp};
        for (int c = 0; c < 8; c++) {
            size_t l = strlen(cells[c]);
            w[c] = l > w[c] ? l : w[c];
        }
    }
    for (int c = 0; c < 8; c++) {
        printf("%-*s%s", c == 7 ? 0 : (int)w[c], heads[c], c == 7 ? "\n" : "  ");
    }
    for (int i = 0; i < n; i++) {
        const char *cells[] = {rows[i].node, rows[i].address, rows[i].roles, rows[i].state,
                               rows[i].pid,  rows[i].servers, rows[i].apps,  rows[i].vrrp};
        for (int c = 0; c < 8; c++) {
            printf("%-*s%s", c == 7 ? 0 : (int)w[c], cells[c], c == 7 ? "\n" : "  ");
        }
    }
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
    if (rows == NULL || p == NULL) {
        free(rows);
        free(p);
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
            problem(p, "%s: %s", r->node,
                    eb.msg[0] != '\0' ? eb.msg
                                      : "no admin listener configured (global { admin :PORT; })");
            all_ok = false;
            continue;
        }
        all_ok = query(&admin, r, p) && all_ok;
    }
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

/* SPDX-License-Identifier: MIT */
/* `keel up [FILE]`: the whole cluster on this machine, one `keel run --node` process per
 * node. Without FILE it runs the built-in demo topology (cli_up_demo.c: load balancers in
 * front of three web+app nodes and, when etcd and PostgreSQL are installed, two db nodes and
 * the etcd they need, each on its own 127.0.0.x). It shows each process as it comes up,
 * waits for the health checks to see every server and every database to have its primary
 * and a streaming replica, prints the URLs, restarts a process that dies (reporting it), and
 * on Ctrl-C stops the nodes, then the services (etcd), by PID. The processes are core/child.h
 * children on an event loop that runs whenever keel up waits. Blocking calls are fine here:
 * this is a foreground tool, not a node. */
#include "cli/cli_up.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_http.h"
#include "core/child.h"
#include "core/conf.h"
#include "core/conf_node.h"
#include "core/err.h"
#include "core/ev.h"
#include "core/json.h"

extern char **environ;

#define UP_MAX_NODES 16   /* of a file */
#define UP_MAX_SERVICES 1 /* the demo's etcd */
#define UP_MAX_DBS 4
#define UP_MAX_NOTES 4
#define UP_STOP_GRACE_MS 8000
#define UP_READY_MS 10000
#define UP_HEALTH_MS 15000
#define UP_DB_HEALTH_MS 90000 /* initdb, then a base backup for each replica */
#define UP_RESTART_MIN_MS 1000
#define UP_RESTART_MAX_MS 16000
#define UP_STABLE_MS 30000 /* a process that ran this long restarts after UP_RESTART_MIN_MS */

/* What a db node's agent says it is (only what the lb nodes route on). */
enum up_db_role {
    UP_DB_NONE = 0, /* neither: starting, copying, fenced, or not answering */
    UP_DB_PRIMARY,  /* answers 200 to /primary */
    UP_DB_REPLICA   /* answers 200 to /replica: streaming, within max_lag */
};

/* A database of the file: where to ask its agents which node has which role. */
struct up_db {
    char name[CONF_NAME_MAX];
    uint32_t n_nodes;
    char nodes[CONF_DB_MAX_NODES][CONF_NAME_MAX];
    bool has_agent[CONF_DB_MAX_NODES];
    struct conf_addr agents[CONF_DB_MAX_NODES];
    enum up_db_role roles[CONF_DB_MAX_NODES]; /* as last asked (db_ready) */
    bool has_replica;
};

struct up;

/* The process of one up_node. */
struct up_proc {
    struct up *u;
    struct up_node *nd;
    struct child child;
    bool has_started; /* the next start is a restart */
};

struct up {
    const char *self;
    struct ev_loop *loop;
    struct up_proc procs[UP_MAX_SERVICES + UP_MAX_NODES]; /* procs[i] runs nodes[i] */
    const char *conf_path;
    struct up_node nodes[UP_MAX_SERVICES + UP_MAX_NODES]; /* services, then the file's nodes */
    int n;
    struct up_db dbs[UP_MAX_DBS];
    int n_dbs;
    bool is_db_waited;             /* wait_dbs ran: the databases had their time */
    char notes[UP_MAX_NOTES][256]; /* printed after the URLs */
    int n_notes;
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* ---------------------------------------------------------------- processes */

static void on_pump_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    (void)t;
    ev_loop_stop(loop);
}

static bool addr_accepts(const struct conf_addr *a)
{
    int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return false;
    }
    bool ok = connect(fd, (const struct sockaddr *)&a->sa, a->salen) == 0;
    close(fd);
    return ok;
}

int up_node_set_argv(struct up_node *nd, const char *const *args)
{
    int k = 0;
    for (; args[k] != NULL; k++) {
        if (k == UP_MAX_ARGS || strlen(args[k]) >= sizeof(nd->args[0])) {
            return -E2BIG;
        }
        (void)snprintf(nd->args[k], sizeof(nd->args[k]), "%s", args[k]);
        nd->argv[k] = nd->args[k];
    }
    nd->argv[k] = NULL;
    return 0;
}

/* Run the loop (reaping, stopping and restarting processes) for ms. */
static void pump(struct up *u, uint32_t ms)
{
    struct ev_timer t;
    ev_timer_init(&t, on_pump_timeout, NULL, "keel up wait");
    ev_timer_start(u->loop, &t, ms);
    (void)ev_run(u->loop);
    ev_timer_stop(u->loop, &t);
}

static int node_start(struct up *u, int i)
{
    struct up_node *nd = &u->nodes[i];
    /* Own process group: a terminal's Ctrl-C reaches keel up only, which stops the nodes in
     * order. If keel up dies, the kernel stops them (SIGTERM: they stop cleanly). */
    struct child_spec spec = {.path = nd->exe != NULL ? nd->exe : u->self,
                              .argv = nd->argv,
                              .envp = environ,
                              .output = nd->log_path[0] != '\0' ? CHILD_OUTPUT_FILE
                                                                : CHILD_OUTPUT_INHERIT,
                              .output_path = nd->log_path,
                              .pdeath_sig = SIGTERM,
                              .is_group_stopped = false}; /* a node stops its own children */
    return child_start(&u->procs[i].child, &spec);
}

/* Wait until the node's probe address accepts (or, without one, that it stays alive for a
 * moment). False if it exits or the time runs out. */
static bool node_wait_ready(struct up *u, int i, uint64_t timeout_ms)
{
    struct up_node *nd = &u->nodes[i];
    const struct child *c = &u->procs[i].child;
    uint64_t start = now_ms(), deadline = start + timeout_ms;
    while (now_ms() < deadline && !stop_requested) {
        if (nd->has_probe ? addr_accepts(&nd->probe) : now_ms() - start >= 500) {
            return true;
        }
        if (!child_is_running(c)) {
            return false;
        }
        pump(u, 20);
    }
    return false;
}

static const char *label(const struct up_node *nd)
{
    return nd->name[0] != '\0' ? nd->name : "node";
}

static const char *kind(const struct up_node *nd)
{
    return nd->is_service ? "service" : "node";
}

/* The end of a service's log, which does not go to the terminal: after it failed. */
static void print_log_tail(const struct up_node *nd)
{
    FILE *f = nd->log_path[0] != '\0' ? fopen(nd->log_path, "r") : NULL;
    if (f == NULL) {
        return;
    }
    char tail[4096];
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    long from = size > (long)sizeof(tail) - 1 ? size - (long)sizeof(tail) + 1 : 0;
    size_t n = size >= 0 && fseek(f, from, SEEK_SET) == 0 ? fread(tail, 1, sizeof(tail) - 1, f) : 0;
    fclose(f);
    tail[n] = '\0';
    const char *start = from > 0 && strchr(tail, '\n') != NULL ? strchr(tail, '\n') + 1 : tail;
    fprintf(stderr, "keel up: the end of %s's log (%s):\n%s", label(nd), nd->log_path, start);
}

/* SIGTERM the processes of one tier, then wait for them; SIGKILL what is left after
 * UP_STOP_GRACE_MS (on_proc_exit says which). */
static void stop_tier(struct up *u, int tier)
{
    for (int i = u->n - 1; i >= 0; i--) {
        if (u->nodes[i].tier == tier) {
            (void)child_stop(&u->procs[i].child, SIGTERM, UP_STOP_GRACE_MS);
        }
    }
    for (;;) {
        bool any = false;
        for (int i = 0; i < u->n && !any; i++) {
            any = u->nodes[i].tier == tier && !child_is_stopped(&u->procs[i].child);
        }
        if (!any) {
            return;
        }
        pump(u, 20);
    }
}

/* The nodes that use the database first, then the db nodes (a primary hands its leader key
 * over in etcd as it stops), then the services. */
static void stop_all(struct up *u)
{
    for (int tier = 2; tier >= 0; tier--) {
        stop_tier(u, tier);
    }
}

/* ---------------------------------------------------------------- what the processes tell */

static void on_proc_start(void *data, pid_t pid)
{
    struct up_proc *pr = data;
    if (pr->has_started) {
        say("keel up: %s %s restarted as pid %d\n", kind(pr->nd), label(pr->nd), (int)pid);
    }
    pr->has_started = true;
}

/* A process exited: stopped by stop_tier, or dead on its own (restarted once it was up, see
 * start_all); or its restart could not even start. */
static void on_proc_exit(void *data, const struct child_exit *e)
{
    struct up_proc *pr = data;
    const struct up_node *nd = pr->nd;
    if (e->is_stop && e->was_killed) {
        say("  killed  %-8s pid %d after %d ms\n", label(nd), (int)e->pid, UP_STOP_GRACE_MS);
    } else if (e->is_stop) {
        say("  stopped %-8s pid %d\n", label(nd), (int)e->pid);
    } else if (!e->is_restarting) {
        return; /* while starting: start_all says it did not come up */
    } else if (e->pid == 0) {
        say("keel up: cannot restart %s %s: %s; retrying in %u ms\n", kind(nd), label(nd),
            strerror(-e->start_error), e->restart_in_ms);
    } else if (e->wstatus != -1 && WIFSIGNALED(e->wstatus)) {
        say("keel up: %s %s (pid %d) was killed by signal %d; restarting in %u ms\n", kind(nd),
            label(nd), (int)e->pid, WTERMSIG(e->wstatus), e->restart_in_ms);
    } else {
        say("keel up: %s %s (pid %d) exited with status %d; restarting in %u ms%s%s\n", kind(nd),
            label(nd), (int)e->pid, e->wstatus != -1 ? WEXITSTATUS(e->wstatus) : -1,
            e->restart_in_ms, nd->log_path[0] != '\0' ? "; its log: " : "", nd->log_path);
    }
}

static void on_proc_lost(void *data, pid_t pid)
{
    struct up_proc *pr = data;
    say("  lost    %-8s pid %d: still running %d ms after SIGKILL\n", label(pr->nd), (int)pid,
        CHILD_KILL_GRACE_MS);
}

static const struct child_ops up_child_ops = {
    .on_start = on_proc_start, .on_exit = on_proc_exit, .on_lost = on_proc_lost};

/* ---------------------------------------------------------------- the plan, from the file */

static void add_url(struct up_node *nd, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_url(struct up_node *nd, const char *key, const char *fmt, ...)
{
    if (nd->n_urls == UP_MAX_URLS) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(nd->urls[nd->n_urls], sizeof(nd->urls[0]), fmt, ap);
    va_end(ap);
    (void)snprintf(nd->url_keys[nd->n_urls++], sizeof(nd->url_keys[0]), "%s", key);
}

/* The database of conf whose lb frontend fe is (db/db_conf.c names them NAME-write and
 * NAME-read), or NULL. */
static const struct conf_database *db_of_frontend(const struct conf *conf,
                                                  const struct conf_frontend *fe, bool *is_write)
{
    for (uint32_t d = 0; d < conf->n_databases && fe->mode == CONF_MODE_TCP; d++) {
        size_t n = strlen(conf->databases[d].name);
        if (strncmp(fe->name, conf->databases[d].name, n) == 0 &&
            (strcmp(fe->name + n, "-write") == 0 || strcmp(fe->name + n, "-read") == 0)) {
            *is_write = strcmp(fe->name + n, "-write") == 0;
            return &conf->databases[d];
        }
    }
    return NULL;
}

/* Whether a listener is on a virtual IP (whichever lb node holds it answers). */
static bool is_on_vip(const struct conf *conf, const struct conf_addr *a)
{
    if (a->sa.ss_family != AF_INET) {
        return false;
    }
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->sa;
    for (uint32_t v = 0; v < conf->n_vips; v++) {
        for (uint32_t i = 0; i < conf->vips[v].n_addrs; i++) {
            if (conf->vips[v].addrs[i].s_addr == sin->sin_addr.s_addr) {
                return true;
            }
        }
    }
    return false;
}

/* What one node runs: its probe address, admin listener and URLs. */
static int plan_node(struct up *u, struct up_node *nd, struct errbuf *eb)
{
    struct conf *conf = NULL;
    if (conf_load_node(u->conf_path, nd->name[0] != '\0' ? nd->name : NULL, &conf, eb) != 0) {
        return -KEEL_ECONFIG;
    }
    nd->has_admin = conf->global.has_admin;
    if (nd->has_admin) {
        nd->admin = conf->global.admin;
        nd->probe = conf->global.admin;
        nd->has_probe = true;
    } else if (conf->n_frontends > 0 && conf->frontends[0].n_binds > 0) {
        nd->probe = conf->frontends[0].binds[0];
        nd->has_probe = true;
    }
    for (uint32_t f = 0; f < conf->n_frontends; f++) {
        const struct conf_frontend *fe = &conf->frontends[f];
        const char *scheme = fe->mode == CONF_MODE_TCP ? "tcp" : "http";
        bool is_write = false;
        const struct conf_database *db = db_of_frontend(conf, fe, &is_write);
        for (uint32_t b = 0; b < fe->n_binds; b++) {
            const char *at = fe->binds[b].text;
            if (db != NULL) {
                add_url(nd, at, "database: postgresql://%s@%s/%s   (%s, %s, through %s)", db->name,
                        at, db->name, db->name,
                        is_write ? "writes: the primary" : "reads: a replica",
                        is_on_vip(conf, &fe->binds[b]) ? "the virtual IP" : label(nd));
            } else if (fe->role == CONF_ROLE_WEB) {
                add_url(nd, at, "web: %s://%s/   (%s, directly)", scheme, at, label(nd));
            } else {
                add_url(nd, at, "keel up: %s://%s/", scheme, at);
            }
        }
    }
    if (nd->has_admin) {
        add_url(nd, nd->admin.text, "metrics: http://%s/metrics   (%s)", nd->admin.text, label(nd));
    }
    conf_free(conf);
    return 0;
}

/* The databases of the file, and where their agents answer. */
static void plan_dbs(struct up *u, const struct conf *conf)
{
    for (uint32_t d = 0; d < conf->n_databases && u->n_dbs < UP_MAX_DBS; d++) {
        const struct conf_database *cd = &conf->databases[d];
        struct up_db *db = &u->dbs[u->n_dbs++];
        memset(db, 0, sizeof(*db));
        (void)snprintf(db->name, sizeof(db->name), "%s", cd->name);
        db->n_nodes = cd->n_nodes;
        for (uint32_t i = 0; i < cd->n_nodes; i++) {
            (void)snprintf(db->nodes[i], sizeof(db->nodes[i]), "%s", cd->nodes[i]);
            const struct conf_node *node = conf_find_node(conf, cd->nodes[i]);
            char text[CONF_NAME_MAX + 80];
            struct errbuf eb;
            if (node == NULL) {
                continue;
            }
            (void)snprintf(text, sizeof(text), strchr(node->address, ':') ? "[%s]:%u" : "%s:%u",
                           node->address, cd->agent_port);
            db->has_agent[i] =
                conf_parse_addr(text, CONF_ADDR_NO_RESOLVE, &db->agents[i], &eb) == 0;
        }
    }
}

/* The processes of the file's nodes, after those already in u (the services). */
static int plan(struct up *u, struct errbuf *eb)
{
    struct conf *conf = NULL;
    struct conf_errors errs = {0};
    int rc = conf_load_file(u->conf_path, &conf, &errs);
    if (rc != 0) {
        if (errs.text != NULL) {
            fputs(errs.text, stderr); /* every error, as keel check shows them */
            errbuf_set(eb, "%s has errors", u->conf_path);
        } else {
            errbuf_set(eb, "cannot read %s: %s", u->conf_path, strerror(-rc));
        }
        conf_errors_fini(&errs);
        return -KEEL_ECONFIG;
    }
    conf_errors_fini(&errs);
    int base = u->n;
    if (conf->n_nodes > UP_MAX_NODES) {
        errbuf_set(eb, "%u nodes: keel up runs at most %d", conf->n_nodes, UP_MAX_NODES);
        conf_free(conf);
        return -KEEL_ECONFIG;
    }
    u->n = base + (conf->n_nodes > 0 ? (int)conf->n_nodes : 1);
    /* The db nodes first, in the file's order, then the others. */
    int order[UP_MAX_NODES], k = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t c = 0; c < conf->n_nodes; c++) {
            if (((conf->nodes[c].roles & CONF_ROLE_DB) != 0) == (pass == 0)) {
                order[k++] = (int)c;
            }
        }
    }
    for (int i = base; i < u->n; i++) {
        struct up_node *nd = &u->nodes[i];
        memset(nd, 0, sizeof(*nd));
        nd->tier = 2;
        const char *args[] = {"keel", "run", "-c", u->conf_path, "--node", NULL, NULL};
        if (conf->n_nodes > 0) {
            const struct conf_node *cn = &conf->nodes[order[i - base]];
            nd->tier = (cn->roles & CONF_ROLE_DB) != 0 ? 1 : 2;
            (void)snprintf(nd->name, sizeof(nd->name), "%s", cn->name);
            (void)snprintf(nd->address, sizeof(nd->address), "%s", cn->address);
            conf_roles_text(cn->roles, nd->roles, sizeof(nd->roles));
            args[5] = nd->name;
        } else {
            args[4] = NULL;
            (void)snprintf(nd->roles, sizeof(nd->roles), "all");
        }
        if (up_node_set_argv(nd, args) != 0) {
            errbuf_set(eb, "the path %s is too long", u->conf_path);
            conf_free(conf);
            return -KEEL_ECONFIG;
        }
    }
    plan_dbs(u, conf);
    conf_free(conf);
    for (int i = base; i < u->n; i++) {
        if (plan_node(u, &u->nodes[i], eb) != 0) {
            return -KEEL_ECONFIG;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- health, from /status */

/* For a server of a backend a database adds to the lb nodes (NAME-primary, NAME-readers):
 * whether it should be up, given the roles the agents last gave (the primary in
 * NAME-primary; the replicas in NAME-readers, or the primary when there is none). -1 for
 * any other server. */
static int db_server_expect(const struct up *u, const char *backend, const char *server)
{
    size_t blen = strlen(backend);
    for (int d = 0; d < u->n_dbs; d++) {
        const struct up_db *db = &u->dbs[d];
        size_t n = strlen(db->name);
        if (blen != n + 8 || strncmp(backend, db->name, n) != 0) {
            continue;
        }
        bool is_primary = strcmp(backend + n, "-primary") == 0;
        if (!is_primary && strcmp(backend + n, "-readers") != 0) {
            continue;
        }
        for (uint32_t i = 0; i < db->n_nodes; i++) {
            if (strcmp(db->nodes[i], server) != 0) {
                continue;
            }
            enum up_db_role want = is_primary || !db->has_replica ? UP_DB_PRIMARY : UP_DB_REPLICA;
            return db->roles[i] == want ? 1 : 0;
        }
        return 0;
    }
    return -1;
}

/* A string member of a /status object, or "?". */
static const char *status_str(const struct json_value *obj, const char *key)
{
    const char *s = json_str(json_get(obj, key));
    return s != NULL ? s : "?";
}

/* Count what a node's /status document says about the servers its backends use and its app
 * processes, and how many are as they should be: up (a server) or healthy (a process), or
 * for a database's servers what the agents' roles imply (those are not printed: db_ready
 * prints the roles). */
static void count_up(const struct up *u, const char *node, const struct json_value *st, int *up,
                     int *total, bool print)
{
    *up = *total = 0;
    const struct json_value *bes = json_get(st, "backends");
    for (size_t b = 0; b < json_len(bes); b++) {
        const struct json_value *be = json_at(bes, b);
        const struct json_value *servers = json_get(be, "servers");
        for (size_t i = 0; i < json_len(servers); i++) {
            const struct json_value *s = json_at(servers, i);
            const char *be_name = status_str(be, "name"), *name = status_str(s, "name");
            bool is_up = json_bool(json_get(s, "up"), false);
            (*total)++;
            int expect = db_server_expect(u, be_name, name);
            if (expect >= 0) {
                *up += is_up == (expect == 1) ? 1 : 0;
                continue;
            }
            *up += is_up ? 1 : 0;
            if (print) {
                char what[160];
                (void)snprintf(what, sizeof(what), "%s/%s", be_name, name);
                say("    %-8s %-11s %-16s %s\n", node, "server", what, is_up ? "up" : "DOWN");
            }
        }
    }
    const struct json_value *apps = json_get(st, "apps");
    for (size_t a = 0; a < json_len(apps); a++) {
        const struct json_value *app = json_at(apps, a);
        const struct json_value *procs = json_get(app, "processes");
        for (size_t i = 0; i < json_len(procs); i++) {
            const struct json_value *p = json_at(procs, i);
            bool is_up = json_bool(json_get(p, "healthy"), false);
            int64_t index = -1;
            (void)json_int(json_get(p, "index"), &index);
            (*total)++;
            *up += is_up ? 1 : 0;
            if (print) {
                char what[160];
                (void)snprintf(what, sizeof(what), "%s/%lld", status_str(app, "name"),
                               (long long)index);
                say("    %-8s %-11s %-16s %s\n", node, "app process", what, is_up ? "up" : "DOWN");
            }
        }
    }
}

/* Ask a node's /status (as keel status does) how many of its servers and app processes are
 * up; print each when asked. False when the node has no admin listener, does not answer,
 * or answers with anything but a JSON document. */
static bool node_health(const struct up *u, const struct up_node *nd, int *up, int *total,
                        bool print)
{
    int status = 0;
    char *body = NULL;
    size_t len;
    struct errbuf eb;
    *up = *total = 0;
    if (!nd->has_admin || cli_http_get((const struct sockaddr *)&nd->admin.sa, nd->admin.salen,
                                       "/status", 1000, &status, &body, &len, &eb) != 0) {
        return false;
    }
    struct json_doc *doc = status == 200 ? json_parse(body, len, &eb) : NULL;
    free(body);
    if (doc == NULL) {
        return false;
    }
    count_up(u, label(nd), json_root(doc), up, total, print);
    json_free(doc);
    return true;
}

/* Whether the agent at addr answers 200 to path (/primary, /replica: a streaming one). */
static bool agent_says(const struct conf_addr *addr, const char *path)
{
    int status = 0;
    char *body = NULL;
    size_t len;
    struct errbuf eb;
    if (cli_http_get((const struct sockaddr *)&addr->sa, addr->salen, path, 1000, &status, &body,
                     &len, &eb) != 0) {
        return false;
    }
    free(body);
    return status == 200;
}

/* A database is ready when one node is its primary and, with several nodes, one is a
 * streaming replica. Records each node's role; prints it when asked. */
static bool db_ready(struct up_db *db, bool print)
{
    static const char *const names[] = {"not ready", "primary", "replica (streaming)"};
    int primaries = 0, replicas = 0;
    for (uint32_t i = 0; i < db->n_nodes; i++) {
        db->roles[i] = UP_DB_NONE;
        if (db->has_agent[i] && agent_says(&db->agents[i], "/primary")) {
            db->roles[i] = UP_DB_PRIMARY;
            primaries++;
        } else if (db->has_agent[i] && agent_says(&db->agents[i], "/replica")) {
            db->roles[i] = UP_DB_REPLICA;
            replicas++;
        }
        if (print) {
            say("    %-8s %-11s %-16s %s\n", db->nodes[i], "database", db->name,
                names[db->roles[i]]);
        }
    }
    db->has_replica = replicas > 0;
    return primaries == 1 && (db->n_nodes < 2 || replicas > 0);
}

/* Wait until every database has its primary and a streaming replica and every node's
 * backends see all their servers up (the lb nodes' database backends: the servers that
 * have the role); print where they stand. */
static void wait_healthy(struct up *u)
{
    say("  waiting for the health checks...\n");
    uint64_t start = now_ms();
    uint64_t limit = u->n_dbs > 0 && !u->is_db_waited ? UP_DB_HEALTH_MS : UP_HEALTH_MS;
    bool all = false;
    while (!all && !stop_requested && now_ms() < start + limit) {
        all = true;
        for (int d = 0; d < u->n_dbs; d++) {
            all = db_ready(&u->dbs[d], false) && all; /* every one: the roles are needed next */
        }
        for (int i = 0; i < u->n && all; i++) {
            int up, total;
            all = !u->nodes[i].has_admin ||
                  (node_health(u, &u->nodes[i], &up, &total, false) && up == total);
        }
        if (!all) {
            pump(u, 100);
        }
    }
    for (int i = 0; i < u->n; i++) {
        int up, total;
        (void)node_health(u, &u->nodes[i], &up, &total, true);
    }
    for (int d = 0; d < u->n_dbs; d++) {
        (void)db_ready(&u->dbs[d], true);
    }
    if (all) {
        say("  every server is up%s (%.1f s)\n",
            u->n_dbs > 0 ? ", every database has its primary and a streaming replica" : "",
            (double)(now_ms() - start) / 1000.0);
    } else if (!stop_requested) {
        say("  not every server is up after %lu s; keel status -c %s shows why\n",
            (unsigned long)(limit / 1000), u->conf_path);
    }
}

/* ---------------------------------------------------------------- running */

/* After the db nodes started: wait until every database has its primary and a streaming
 * replica, so that the load balancers find them from their first check. Going on anyway
 * after UP_DB_HEALTH_MS (wait_healthy reports it). */
static void wait_dbs(struct up *u)
{
    say("  waiting for the database%s (initdb, then each replica copies the primary)...\n",
        u->n_dbs > 1 ? "s" : "");
    u->is_db_waited = true;
    uint64_t start = now_ms(), next_report = start + 10000;
    bool all = false;
    while (!all && !stop_requested && now_ms() < start + UP_DB_HEALTH_MS) {
        all = true;
        for (int d = 0; d < u->n_dbs; d++) {
            all = db_ready(&u->dbs[d], false) && all;
        }
        if (!all && now_ms() >= next_report) {
            say("  still waiting (%lu s); the db nodes' log lines above say why\n",
                (unsigned long)((now_ms() - start) / 1000));
            next_report += 10000;
        }
        if (!all) {
            pump(u, 100);
        }
    }
    for (int d = 0; d < u->n_dbs && !stop_requested; d++) {
        (void)db_ready(&u->dbs[d], true);
    }
    if (!stop_requested) {
        say("  %s (%.1f s)\n",
            all ? "every database has its primary and a streaming replica"
                : "not every database is ready: starting the other nodes anyway",
            (double)(now_ms() - start) / 1000.0);
    }
}

/* Start every process in order; false (after stopping what started) if one does not come
 * up. */
static bool start_all(struct up *u)
{
    for (int i = 0; i < u->n && !stop_requested; i++) {
        struct up_node *nd = &u->nodes[i];
        uint64_t t0 = now_ms();
        int rc = node_start(u, i);
        if (rc != 0) {
            fprintf(stderr, "keel up: cannot start %s: %s\n", label(nd), strerror(-rc));
            stop_all(u);
            return false;
        }
        if (!node_wait_ready(u, i, UP_READY_MS)) {
            if (!stop_requested) {
                fprintf(stderr, "keel up: %s did not come up%s%s%s\n", label(nd),
                        nd->has_probe ? " on " : "", nd->has_probe ? nd->probe.text : "",
                        nd->log_path[0] != '\0' ? "" : " (its errors are above)");
                print_log_tail(nd);
            }
            stop_all(u);
            return false;
        }
        say("  up  %-8s %-12s pid %-7d %-15s %4lu ms\n", label(nd), nd->roles,
            (int)child_pid(&u->procs[i].child), nd->address[0] != '\0' ? nd->address : "-",
            (unsigned long)(now_ms() - t0));
        /* Up: from now on, a process that dies is reported and restarted, backing off when
         * it keeps dying. */
        static const struct child_restart policy = {.initial_ms = UP_RESTART_MIN_MS,
                                                    .max_ms = UP_RESTART_MAX_MS,
                                                    .stable_ms = UP_STABLE_MS};
        child_set_restart(&u->procs[i].child, &policy);
        if (u->n_dbs > 0 && nd->tier == 1 && (i + 1 == u->n || u->nodes[i + 1].tier != 1)) {
            wait_dbs(u);
        }
    }
    return !stop_requested;
}

/* Supervise until asked to stop (the loop reports a process that dies and restarts it:
 * on_proc_exit). */
static void supervise(struct up *u)
{
    while (!stop_requested) {
        pump(u, 50);
    }
}

/* Every node's URLs, an address several nodes bind (a virtual IP) once; then the notes. */
static void print_urls(const struct up *u)
{
    say("\n");
    for (int i = 0; i < u->n; i++) {
        const struct up_node *nd = &u->nodes[i];
        for (int k = 0; k < nd->n_urls; k++) {
            bool seen = false;
            for (int j = 0; j < i && !seen; j++) {
                for (int m = 0; m < u->nodes[j].n_urls && !seen; m++) {
                    seen = strcmp(u->nodes[j].url_keys[m], nd->url_keys[k]) == 0;
                }
            }
            if (!seen) {
                say("%s\n", nd->urls[k]);
            }
        }
    }
    for (int d = 0; d < u->n_dbs; d++) {
        say("database %s: its password: keel db password -c %s %s\n", u->dbs[d].name, u->conf_path,
            u->dbs[d].name);
    }
    for (int i = 0; i < u->n_notes; i++) {
        say("%s\n", u->notes[i]);
    }
    say("status: keel status -c %s\npress Ctrl-C to stop\n", u->conf_path);
}

/* The loop and a child for each process of the plan. Returns 0 or -errno. */
static int procs_init(struct up *u)
{
    u->loop = ev_loop_new();
    if (u->loop == NULL) {
        return -errno;
    }
    for (int i = 0; i < u->n; i++) {
        u->procs[i].u = u;
        u->procs[i].nd = &u->nodes[i];
        child_init(&u->procs[i].child, u->loop, &up_child_ops, &u->procs[i]);
    }
    return 0;
}

static void procs_fini(struct up *u)
{
    for (int i = 0; i < u->n; i++) {
        child_fini(&u->procs[i].child);
    }
    ev_loop_free(u->loop);
    u->loop = NULL;
}

static int run_plan(struct up *u)
{
    if (!start_all(u)) {
        return stop_requested ? KEEL_EXIT_OK : KEEL_EXIT_RUNTIME;
    }
    wait_healthy(u);
    if (!stop_requested) {
        print_urls(u);
        supervise(u);
    }
    say("\nkeel up: stopping\n");
    stop_all(u);
    say("keel up: everything stopped\n");
    return KEEL_EXIT_OK;
}

static int run(struct up *u)
{
    struct errbuf eb = {{0}};
    if (plan(u, &eb) != 0) {
        fprintf(stderr, "keel up: %s\n", eb.msg);
        return KEEL_EXIT_CONFIG;
    }
    int rc = procs_init(u);
    if (rc != 0) {
        fprintf(stderr, "keel up: cannot create an event loop: %s\n", strerror(-rc));
        return KEEL_EXIT_RUNTIME;
    }
    int code = run_plan(u);
    procs_fini(u);
    return code;
}

static int install_signals(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
        return -errno;
    }
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* The built-in demo: write it, run it (with its etcd first when it has a database), remove
 * it. */
static int run_demo(struct up *u)
{
    static struct up_demo demo;
    struct errbuf eb = {{0}};
    if (up_demo_create(&demo, &eb) != 0) {
        fprintf(stderr, "keel up: %s\n", eb.msg);
        return KEEL_EXIT_RUNTIME;
    }
    u->conf_path = demo.conf_path;
    if (demo.has_db && up_demo_etcd(&demo, &u->nodes[0]) == 0) {
        u->n = 1;
        (void)snprintf(u->notes[u->n_notes++], sizeof(u->notes[0]),
                       "guestbook: %s   (posts written on the primary, read on a replica)",
                       demo.guestbook_url);
    } else {
        demo.has_db = false;
        say("keel up: the demo runs without its database: %s\n",
            demo.no_db[0] != '\0' ? demo.no_db : "cannot set up etcd");
        (void)snprintf(u->notes[u->n_notes++], sizeof(u->notes[0]),
                       "guestbook: %s   (needs the database: answers 503 here)",
                       demo.guestbook_url);
    }
    say("keel up: demo topology (load balancers lb1 lb2 sharing 127.0.0.100, web+app nodes web1 "
        "web2 web3%s), config %s\n",
        demo.has_db ? ", db nodes db1 db2 and etcd" : "", demo.conf_path);
    int rc = run(u);
    up_demo_remove(&demo);
    return rc;
}

int cli_up(int argc, char **argv)
{
    static struct up u;
    static char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl <= 0) {
        fprintf(stderr, "keel up: cannot find my own binary\n");
        return KEEL_EXIT_RUNTIME;
    }
    self[sl] = '\0';
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: keel up [FILE]\n");
        return KEEL_EXIT_USAGE;
    }
    if (install_signals() != 0) {
        return KEEL_EXIT_RUNTIME;
    }
    memset(&u, 0, sizeof(u));
    u.self = self;
    if (argc == 2) {
        u.conf_path = argv[1];
        say("keel up: %s\n", argv[1]);
        return run(&u);
    }
    return run_demo(&u);
}

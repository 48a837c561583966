/* SPDX-License-Identifier: MIT */
/* `keel up [FILE]`: the whole cluster on this machine, one `keel run --node` process per
 * node. Without FILE it writes the built-in demo topology (a load balancer in front of three
 * web+app nodes, each node on its own 127.0.0.x) to a temporary directory. It shows each
 * node as it comes up, waits for the health checks to see every server, prints the URLs,
 * restarts a node that dies (reporting it), and on Ctrl-C stops every node by PID. Blocking
 * calls are fine here: this is a foreground tool, not a node. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_http.h"
#include "core/conf.h"
#include "core/conf_node.h"
#include "core/err.h"

#define UP_MAX_NODES 16
#define UP_MAX_URLS 8
#define UP_STOP_GRACE_MS 8000
#define UP_READY_MS 10000
#define UP_HEALTH_MS 15000
#define UP_RESTART_MIN_MS 1000
#define UP_RESTART_MAX_MS 16000

struct up_node {
    char name[CONF_NAME_MAX]; /* "" when the file has no nodes: one process runs it all */
    char roles[32];
    char address[64];
    char *argv[8];
    char args[8][CONF_PATH_MAX];
    pid_t pid;
    bool has_probe; /* an address that accepts once the node is up (admin, else a bind) */
    struct conf_addr probe;
    bool has_admin;
    struct conf_addr admin;
    char urls[UP_MAX_URLS][200];     /* what the node serves, printed once everything is up */
    char url_keys[UP_MAX_URLS][128]; /* the bind address of each: shared VIPs print once */
    int n_urls;
    uint64_t started_ms;
    uint64_t restart_at_ms; /* 0: not waiting to restart */
    uint32_t backoff_ms;
};

struct up {
    const char *self;
    const char *conf_path;
    struct up_node nodes[UP_MAX_NODES];
    int n;
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

static int node_start(struct up *u, struct up_node *nd)
{
    pid_t pid = fork();
    if (pid == -1) {
        return -errno;
    }
    if (pid == 0) {
        /* Own process group: a terminal's Ctrl-C reaches keel up only, which stops the
         * nodes in order. If keel up dies, the kernel stops them. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        execv(u->self, nd->argv);
        fprintf(stderr, "keel up: cannot run %s: %s\n", u->self, strerror(errno));
        _exit(127);
    }
    nd->pid = pid;
    nd->started_ms = now_ms();
    nd->restart_at_ms = 0;
    return 0;
}

/* Wait until the node's probe address accepts (or, without one, that it stays alive for a
 * moment). False if it exits or the time runs out. */
static bool node_wait_ready(struct up_node *nd, uint64_t timeout_ms)
{
    uint64_t start = now_ms(), deadline = start + timeout_ms;
    while (now_ms() < deadline && !stop_requested) {
        if (nd->has_probe ? addr_accepts(&nd->probe) : now_ms() - start >= 500) {
            return true;
        }
        int status;
        if (waitpid(nd->pid, &status, WNOHANG) == nd->pid) {
            nd->pid = 0;
            return false;
        }
        poll(NULL, 0, 20);
    }
    return false;
}

static const char *label(const struct up_node *nd)
{
    return nd->name[0] != '\0' ? nd->name : "node";
}

static void stop_all(struct up *u)
{
    for (int i = u->n - 1; i >= 0; i--) {
        if (u->nodes[i].pid > 0) {
            kill(u->nodes[i].pid, SIGTERM);
        }
    }
    uint64_t deadline = now_ms() + UP_STOP_GRACE_MS;
    for (;;) {
        bool any = false;
        for (int i = 0; i < u->n; i++) {
            struct up_node *nd = &u->nodes[i];
            if (nd->pid <= 0) {
                continue;
            }
            int status;
            pid_t r = waitpid(nd->pid, &status, WNOHANG);
            if (r == nd->pid || (r == -1 && errno == ECHILD)) {
                say("  stopped %-8s pid %d\n", label(nd), (int)nd->pid);
                nd->pid = 0;
            } else {
                any = true;
            }
        }
        if (!any) {
            return;
        }
        if (now_ms() >= deadline) {
            for (int i = 0; i < u->n; i++) {
                struct up_node *nd = &u->nodes[i];
                if (nd->pid > 0) {
                    kill(nd->pid, SIGKILL);
                    waitpid(nd->pid, NULL, 0);
                    say("  killed  %-8s pid %d after %d ms\n", label(nd), (int)nd->pid,
                        UP_STOP_GRACE_MS);
                    nd->pid = 0;
                }
            }
            return;
        }
        poll(NULL, 0, 20);
    }
}

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
        for (uint32_t b = 0; b < fe->n_binds; b++) {
            if (fe->role == CONF_ROLE_WEB) {
                add_url(nd, fe->binds[b].text, "web: %s://%s/   (%s, directly)", scheme,
                        fe->binds[b].text, label(nd));
            } else {
                add_url(nd, fe->binds[b].text, "keel up: %s://%s/", scheme, fe->binds[b].text);
            }
        }
    }
    if (nd->has_admin) {
        add_url(nd, nd->admin.text, "metrics: http://%s/metrics   (%s)", nd->admin.text, label(nd));
    }
    conf_free(conf);
    return 0;
}

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
    if (conf->n_nodes > UP_MAX_NODES) {
        errbuf_set(eb, "%u nodes: keel up runs at most %d", conf->n_nodes, UP_MAX_NODES);
        conf_free(conf);
        return -KEEL_ECONFIG;
    }
    u->n = conf->n_nodes > 0 ? (int)conf->n_nodes : 1;
    for (int i = 0; i < u->n; i++) {
        struct up_node *nd = &u->nodes[i];
        memset(nd, 0, sizeof(*nd));
        const char *args[] = {"keel", "run", "-c", u->conf_path, "--node", NULL, NULL};
        if (conf->n_nodes > 0) {
            const struct conf_node *cn = &conf->nodes[i];
            (void)snprintf(nd->name, sizeof(nd->name), "%s", cn->name);
            (void)snprintf(nd->address, sizeof(nd->address), "%s", cn->address);
            conf_roles_text(cn->roles, nd->roles, sizeof(nd->roles));
            args[5] = nd->name;
        } else {
            args[4] = NULL;
            (void)snprintf(nd->roles, sizeof(nd->roles), "all");
        }
        int k = 0;
        for (; args[k] != NULL; k++) {
            (void)snprintf(nd->args[k], sizeof(nd->args[k]), "%s", args[k]);
            nd->argv[k] = nd->args[k];
        }
        nd->argv[k] = NULL;
        nd->backoff_ms = UP_RESTART_MIN_MS;
    }
    conf_free(conf);
    for (int i = 0; i < u->n; i++) {
        if (plan_node(u, &u->nodes[i], eb) != 0) {
            return -KEEL_ECONFIG;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- health, from /metrics */

/* The label values of a sample, joined by '/': backend="web",server="web1" -> web/web1. */
static void label_values(const char *p, const char *end, char *out, size_t size)
{
    size_t k = 0;
    bool in = false;
    for (; p < end && k + 2 < size; p++) {
        if (*p == '"') {
            if (!in && k > 0) {
                out[k++] = '/';
            }
            in = !in;
        } else if (in) {
            out[k++] = *p;
        }
    }
    out[k] = '\0';
}

/* Count the samples of the health gauges in a /metrics text (servers the node's backends
 * use, the node's app processes) and how many are 1; print each when asked. */
static void count_up(const char *node, const char *text, int *up, int *total, bool print)
{
    static const char *const gauges[] = {"\nkeel_server_up{", "\nkeel_app_process_healthy{"};
    static const char *const kinds[] = {"server", "app process"};
    *up = *total = 0;
    for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
        for (const char *p = strstr(text, gauges[g]); p != NULL; p = strstr(p + 1, gauges[g])) {
            const char *labels = p + strlen(gauges[g]);
            const char *close = strchr(labels, '}');
            if (close == NULL) {
                break;
            }
            (*total)++;
            bool is_up = close[1] == ' ' && close[2] == '1';
            *up += is_up ? 1 : 0;
            if (print) {
                char what[160];
                label_values(labels, close, what, sizeof(what));
                say("    %-8s %-11s %-16s %s\n", node, kinds[g], what, is_up ? "up" : "DOWN");
            }
        }
    }
}

/* Ask a node's /metrics how many of its servers and app processes are up; print each when
 * asked. False when the node has no admin listener or does not answer. */
static bool node_health(struct up_node *nd, int *up, int *total, bool print)
{
    int status = 0;
    char *body = NULL;
    size_t len;
    struct errbuf eb;
    *up = *total = 0;
    if (!nd->has_admin || cli_http_get((const struct sockaddr *)&nd->admin.sa, nd->admin.salen,
                                       "/metrics", 1000, &status, &body, &len, &eb) != 0) {
        return false;
    }
    count_up(label(nd), body, up, total, print);
    free(body);
    return status == 200;
}

/* Wait until every node's backends see all their servers up; print where they stand. */
static void wait_healthy(struct up *u)
{
    say("  waiting for the health checks...\n");
    uint64_t start = now_ms(), deadline = start + UP_HEALTH_MS;
    bool all = false;
    while (!all && !stop_requested && now_ms() < deadline) {
        all = true;
        for (int i = 0; i < u->n && all; i++) {
            int up, total;
            all = !u->nodes[i].has_admin ||
                  (node_health(&u->nodes[i], &up, &total, false) && up == total);
        }
        if (!all) {
            poll(NULL, 0, 100);
        }
    }
    for (int i = 0; i < u->n; i++) {
        int up, total;
        (void)node_health(&u->nodes[i], &up, &total, true);
    }
    if (all) {
        say("  every server is up (%.1f s)\n", (double)(now_ms() - start) / 1000.0);
    } else if (!stop_requested) {
        say("  not every server is up after %d s; keel status -c %s shows why\n",
            UP_HEALTH_MS / 1000, u->conf_path);
    }
}

/* ---------------------------------------------------------------- running */

/* Start every node in order; false (after stopping what started) if one does not come up. */
static bool start_all(struct up *u)
{
    for (int i = 0; i < u->n && !stop_requested; i++) {
        struct up_node *nd = &u->nodes[i];
        uint64_t t0 = now_ms();
        if (node_start(u, nd) != 0) {
            fprintf(stderr, "keel up: cannot start %s: %s\n", label(nd), strerror(errno));
            stop_all(u);
            return false;
        }
        if (!node_wait_ready(nd, UP_READY_MS)) {
            if (!stop_requested) {
                fprintf(stderr, "keel up: %s did not come up%s%s (its errors are above)\n",
                        label(nd), nd->has_probe ? " on " : "",
                        nd->has_probe ? nd->probe.text : "");
            }
            stop_all(u);
            return false;
        }
        say("  up  %-8s %-12s pid %-7d %-15s %4lu ms\n", label(nd), nd->roles, (int)nd->pid,
            nd->address[0] != '\0' ? nd->address : "-", (unsigned long)(now_ms() - t0));
    }
    return !stop_requested;
}

/* Supervise until asked to stop: report a node that dies and restart it, backing off when it
 * keeps dying. */
static void supervise(struct up *u)
{
    while (!stop_requested) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        uint64_t now = now_ms();
        for (int i = 0; pid > 0 && i < u->n; i++) {
            struct up_node *nd = &u->nodes[i];
            if (nd->pid != pid) {
                continue;
            }
            nd->pid = 0;
            if (now - nd->started_ms > 30000) {
                nd->backoff_ms = UP_RESTART_MIN_MS; /* it ran a good while: a fresh failure */
            }
            if (WIFSIGNALED(status)) {
                say("keel up: node %s (pid %d) was killed by signal %d; restarting in %u ms\n",
                    label(nd), (int)pid, WTERMSIG(status), nd->backoff_ms);
            } else {
                say("keel up: node %s (pid %d) exited with status %d; restarting in %u ms\n",
                    label(nd), (int)pid, WEXITSTATUS(status), nd->backoff_ms);
            }
            nd->restart_at_ms = now + nd->backoff_ms;
            nd->backoff_ms =
                nd->backoff_ms * 2 > UP_RESTART_MAX_MS ? UP_RESTART_MAX_MS : nd->backoff_ms * 2;
        }
        for (int i = 0; i < u->n; i++) {
            struct up_node *nd = &u->nodes[i];
            if (nd->pid == 0 && nd->restart_at_ms != 0 && now >= nd->restart_at_ms) {
                if (node_start(u, nd) == 0) {
                    say("keel up: node %s restarted as pid %d\n", label(nd), (int)nd->pid);
                } else {
                    nd->restart_at_ms = now + nd->backoff_ms;
                }
            }
        }
        if (pid <= 0) {
            poll(NULL, 0, 50);
        }
    }
}

/* Every node's URLs, an address several nodes bind (a virtual IP) once. */
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
    say("status: keel status -c %s\npress Ctrl-C to stop\n", u->conf_path);
}

static int run(struct up *u)
{
    struct errbuf eb = {{0}};
    if (plan(u, &eb) != 0) {
        fprintf(stderr, "keel up: %s\n", eb.msg);
        return KEEL_EXIT_CONFIG;
    }
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

/* ---------------------------------------------------------------- the demo topology */

#define DEMO_LB_ADDR "127.0.0.10"
#define DEMO_LB2_ADDR "127.0.0.14"
#define DEMO_VIP "127.0.0.100"
#define DEMO_WEB_BASE 11 /* web1..3 on 127.0.0.11..13 */

static bool port_free_on(const char *ip, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return false;
    }
    int one = 1; /* as the nodes will: TIME_WAIT connections do not make a port busy */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    (void)inet_pton(AF_INET, ip, &sin.sin_addr);
    bool ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
    close(fd);
    return ok;
}

/* A port free on every demo address, preferably the given one. */
static uint16_t demo_port(uint16_t preferred, uint16_t avoid)
{
    static const char *const ips[] = {DEMO_LB_ADDR, "127.0.0.11",  "127.0.0.12",
                                      "127.0.0.13", DEMO_LB2_ADDR, DEMO_VIP};
    uint32_t seed = (uint32_t)getpid() * 2654435761u;
    for (int attempt = 0; attempt < 200; attempt++) {
        uint16_t port =
            attempt == 0 ? preferred : (uint16_t)(20000 + (seed + attempt * 7919u) % 30000);
        bool ok = port != avoid;
        for (size_t i = 0; ok && i < sizeof(ips) / sizeof(ips[0]); i++) {
            ok = port_free_on(ips[i], port);
        }
        if (ok) {
            return port;
        }
    }
    return 0;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return -errno;
    }
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -errno;
}

static int write_demo(const char *dir, char *conf_path, size_t size)
{
    uint16_t lb = demo_port(8080, 0), admin = demo_port(9100, lb);
    uint16_t web = demo_port(8081, admin), app = demo_port(9000, web);
    if (lb == 0 || admin == 0 || web == 0 || app == 0 || web == lb || app == lb || app == admin) {
        return -EADDRINUSE;
    }
    char path[CONF_PATH_MAX];
    (void)snprintf(path, sizeof(path), "%s/www", dir);
    if (mkdir(path, 0755) != 0) {
        return -errno;
    }
    (void)snprintf(path, sizeof(path), "%s/www/static", dir);
    if (mkdir(path, 0755) != 0) {
        return -errno;
    }
    (void)snprintf(path, sizeof(path), "%s/www/static/style.css", dir);
    int rc = write_file(path, "body { font-family: sans-serif; margin: 2em; }\n"
                              "td { padding: 0.2em 1em; }\n");
    if (rc != 0) {
        return rc;
    }
    (void)snprintf(conf_path, size, "%s/keel.conf", dir);
    FILE *f = fopen(conf_path, "w");
    if (f == NULL) {
        return -errno;
    }
    fprintf(f,
            "# keel up: the built-in demo topology (generated). Two load balancers sharing\n"
            "# a virtual IP (VRRP, active-passive) in front of three nodes that each run the\n"
            "# web tier and the demo application.\n"
            "cluster demo { }\n"
            "global { log_level notice; admin :%u; }\n\n"
            "node lb1 { address " DEMO_LB_ADDR "; roles lb; }\n"
            "node lb2 { address " DEMO_LB2_ADDR "; roles lb; }\n",
            admin);
    for (int i = 0; i < 3; i++) {
        fprintf(f, "node web%d { address 127.0.0.%d; roles web app; }\n", i + 1, DEMO_WEB_BASE + i);
    }
    fprintf(f,
            "\nvip " DEMO_VIP " {\n    nodes lb1 lb2;\n    vrid 51;\n    mode active-passive;\n}\n"
            "frontend www {\n    bind " DEMO_VIP ":%u;\n    backend web;\n}\n"
            "backend web {\n    balance roundrobin;\n"
            "    check http path /healthz interval 500ms timeout 500ms rise 2 fall 2;\n",
            lb);
    for (int i = 0; i < 3; i++) {
        fprintf(f, "    server web%d web%d:%u;\n", i + 1, i + 1, web);
    }
    fprintf(f,
            "}\n\nsite web {\n    bind :%u;\n"
            "    location /static/ { root %s/www; cache_control \"max-age=60\"; }\n"
            "    location = /healthz { return 200 \"ok\"; }\n"
            "    location / { proxy app; }\n}\n"
            "backend app {\n    balance roundrobin;\n"
            "    check http path /healthz interval 500ms timeout 500ms rise 2 fall 2;\n",
            web, dir);
    for (int i = 0; i < 3; i++) {
        fprintf(f, "    server app%d web%d:%u;\n", i + 1, i + 1, app);
    }
    fprintf(f,
            "}\n\napp demo {\n    listen :%u;\n    run builtin demo;\n"
            "    check http path /healthz interval 1s timeout 500ms rise 1 fall 2;\n}\n",
            app);
    return fclose(f) == 0 ? 0 : -errno;
}

static void remove_demo(const char *dir)
{
    static const char *const files[] = {"keel.conf", "www/static/style.css", "www/static", "www"};
    char path[CONF_PATH_MAX];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        (void)snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        (void)remove(path);
    }
    (void)rmdir(dir);
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
    char dir[] = "/tmp/keel-up-XXXXXX";
    static char conf_path[CONF_PATH_MAX];
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "keel up: cannot create a temporary directory: %s\n", strerror(errno));
        return KEEL_EXIT_RUNTIME;
    }
    int rc = write_demo(dir, conf_path, sizeof(conf_path));
    if (rc != 0) {
        fprintf(stderr, "keel up: cannot write the demo topology in %s: %s\n", dir, strerror(-rc));
        remove_demo(dir);
        return KEEL_EXIT_RUNTIME;
    }
    u.conf_path = conf_path;
    say("keel up: demo topology (load balancers lb1 lb2 sharing " DEMO_VIP
        ", web+app nodes web1 web2 web3), config %s\n",
        conf_path);
    rc = run(&u);
    remove_demo(dir);
    return rc;
}

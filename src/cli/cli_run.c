/* SPDX-License-Identifier: MIT */
/* `keel run -c FILE [--node NAME]`: the control thread of a node. It loads the
 * configuration into a generation (core/gen.h), starts the admin listener and walks the role
 * table (core/role.h) -- it calls no role by name --, and handles signals: SIGHUP reloads
 * (parse, build, validate, then each role applies or refuses its part; a bad file changes
 * nothing), SIGTERM/SIGINT drain. Blocking I/O happens here only while loading a
 * configuration. */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/conf_node.h"
#include "core/fdlimit.h"
#include "core/gen.h"
#include "core/json.h"
#include "core/log.h"
#include "core/qsbr.h"
#include "core/role.h"
#include "monitor/admin.h"
#include "monitor/metrics.h"

#define TICK_MS 50

struct node {
    struct role_node roles; /* the roles' states and what they share (core/role.h) */
    const char *conf_path;
    struct gen *gen;            /* current; the node holds one reference */
    struct gen_retired retired; /* replaced, waiting for their last holder */
    struct admin *admin;
    char admin_text[128];
    int sigfd;
    struct ev_io sigio;
    struct ev_timer tick;
    uint64_t drain_deadline_ms;
    uint64_t reloads;
    uint64_t reload_failures;
    struct fdlimit_budget fds; /* how the current generation spends the open files limit */
};

static void print_errors(const struct conf_errors *errs, bool to_log)
{
    if (errs->text == NULL) {
        return;
    }
    if (!to_log) {
        fputs(errs->text, stderr);
        return;
    }
    char *copy = strdup(errs->text);
    if (copy == NULL) {
        return;
    }
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        log_error("config", "%s", line);
    }
    free(copy);
}

/* ---------------------------------------------------------------- admin handler */

/* The node's own families (each role's are in its folder; the registry in
 * monitor/metrics_registry.c lists every table). */
enum {
    RM_GENERATION = 0,
    RM_RELOADS,
    RM_RELOAD_FAILURES,
    RM_FD_LIMIT,
    RM_FD_RESERVE,
};

static const struct metric_desc run_metrics[] = {
    [RM_GENERATION] = {"keel_config_generation", METRIC_GAUGE,
                       "Generation of the configuration file last read (what each role runs: "
                       "keel_role_generation).",
                       NULL},
    [RM_RELOADS] = {"keel_config_reloads_total", METRIC_COUNTER, "Successful reloads.", NULL},
    [RM_RELOAD_FAILURES] = {"keel_config_reload_failures_total", METRIC_COUNTER, "Refused reloads.",
                            NULL},
    [RM_FD_LIMIT] = {"keel_fd_limit", METRIC_GAUGE,
                     "The open files limit (soft, after raising it).", NULL},
    [RM_FD_RESERVE] = {"keel_fd_reserve", METRIC_GAUGE,
                       "Descriptors the data plane leaves to the control plane.", NULL},
};

const struct metric_table cli_run_metric_table =
    METRIC_TABLE("The node: configuration and open files", "src/cli/cli_run.c", run_metrics);

static void gauges(struct metrics_out *o, void *data)
{
    struct node *n = data;
    const uint64_t node_values[] = {
        [RM_GENERATION] = n->gen->id,
        [RM_RELOADS] = n->reloads,
        [RM_RELOAD_FAILURES] = n->reload_failures,
        [RM_FD_LIMIT] = n->fds.limit,
        [RM_FD_RESERVE] = n->fds.reserve,
    };
    for (size_t i = RM_GENERATION; i <= RM_FD_RESERVE; i++) {
        metrics_family(o, &run_metrics[i]);
        metrics_sample_u64(o, &run_metrics[i], NULL, node_values[i]);
    }
    role_metrics_all(&n->roles, o);
}

/* The node's members, then each role's (role_ops.status). */
static void status_json(struct node *n, struct json_w *w)
{
    const char *name = n->roles.name;
    json_w_begin_object(w);
    json_w_key_str(w, "node", name != NULL ? name : "");
    json_w_key_int(w, "pid", getpid());
    json_w_key_uint(w, "generation", n->gen->id);
    json_w_key_bool(w, "draining", n->roles.is_stopping);
    role_status_all(&n->roles, w);
    json_w_end_object(w);
}

static int admin_handler(const char *path, const char *query, struct metrics_out *out,
                         const char **ctype, void *data)
{
    (void)query;
    struct node *n = data;
    if (strcmp(path, "/metrics") == 0) {
        *ctype = "text/plain; version=0.0.4; charset=utf-8";
        metrics_render(out, gauges, n);
        return 200;
    }
    if (strcmp(path, "/status") == 0) {
        struct json_w w;
        json_w_init(&w);
        status_json(n, &w);
        int err = json_w_finish(&w);
        if (err != 0) {
            json_w_fini(&w);
            log_error("admin", "/status: the document could not be written: %s", strerror(-err));
            metrics_out_printf(out, "internal error: the status could not be written\n");
            return 500;
        }
        *ctype = "application/json";
        metrics_out_write(out, w.data, w.len);
        metrics_out_write(out, "\n", 1);
        json_w_fini(&w);
        return 200;
    }
    if (strcmp(path, "/healthz") == 0) {
        metrics_out_printf(out, n->roles.is_stopping ? "draining\n" : "ok\n");
        return n->roles.is_stopping ? 503 : 200;
    }
    metrics_out_printf(out, "not found: try /metrics, /status or /healthz\n");
    return 404;
}

static int start_admin(struct node *n, const struct conf *conf, struct errbuf *eb)
{
    if (!conf->global.has_admin) {
        admin_stop(n->admin);
        n->admin = NULL;
        n->admin_text[0] = '\0';
        return 0;
    }
    if (n->admin != NULL && strcmp(n->admin_text, conf->global.admin.text) == 0) {
        return 0;
    }
    struct admin *a = admin_start(n->roles.loop, (const struct sockaddr *)&conf->global.admin.sa,
                                  conf->global.admin.salen, admin_handler, n, eb);
    if (a == NULL) {
        return -1;
    }
    admin_stop(n->admin);
    n->admin = a;
    snprintf(n->admin_text, sizeof(n->admin_text), "%s", conf->global.admin.text);
    return 0;
}

/* ---------------------------------------------------------------- the fd budget */

static void log_rlimit(const struct fdlimit_rlimit *rl)
{
    if (rl->err != 0) {
        log_warn("main",
                 "open files limit: soft %llu, hard %llu; setrlimit() to raise the soft "
                 "limit failed: %s",
                 (unsigned long long)rl->soft, (unsigned long long)rl->hard, strerror(-rl->err));
    } else if (rl->soft != rl->soft_before) {
        log_notice("main", "open files limit: soft %llu, hard %llu; raised the soft limit to %llu",
                   (unsigned long long)rl->soft_before, (unsigned long long)rl->hard,
                   (unsigned long long)rl->soft);
    } else {
        log_notice("main", "open files limit: soft %llu, hard %llu", (unsigned long long)rl->soft,
                   (unsigned long long)rl->hard);
    }
}

/* Size conf's maxconn within the open files limit (core/fdlimit.c) into *b. */
static int size_fds(struct node *n, struct conf *conf, struct fdlimit_budget *b, struct errbuf *eb)
{
    uint64_t soft, hard;
    int rc = fdlimit_get(&soft, &hard);
    if (rc != 0) {
        errbuf_set(eb, "getrlimit(RLIMIT_NOFILE) failed: %s", strerror(-rc));
        return rc;
    }
    return fdlimit_conf_apply(conf, n->roles.name, n->roles.n_workers, soft, b, eb);
}

/* The generation sized by b runs: move the data plane's guard to its reserve. */
static void use_fds(struct node *n, const struct fdlimit_budget *b)
{
    fdlimit_data_set_max(b->data_fd_max);
    n->fds = *b;
    char autos[64] = "";
    if (b->n_auto > 0) {
        (void)snprintf(autos, sizeof(autos), " (auto: %u for each of %u frontends)",
                       b->auto_maxconn, b->n_auto);
    }
    log_notice("main",
               "descriptor budget: limit %llu, reserve %u for the control plane (the data "
               "plane keeps fds below %llu); maxconn total %llu%s, %u listening sockets, %llu "
               "pooled server connections",
               (unsigned long long)b->limit, b->reserve, (unsigned long long)b->data_fd_max,
               (unsigned long long)b->conns, autos, b->listeners, (unsigned long long)b->pooled);
}

/* ---------------------------------------------------------------- reload and drain */

static void reload(struct node *n)
{
    struct conf *conf = NULL;
    struct conf_errors errs = {0};
    struct errbuf eb = {{0}};
    log_notice("main", "reloading %s", n->conf_path);
    if (conf_load_file(n->conf_path, &conf, &errs) != 0) {
        print_errors(&errs, true);
        conf_errors_fini(&errs);
        log_error("main",
                  "reload refused: the configuration has errors; still running "
                  "generation %lu",
                  (unsigned long)n->gen->id);
        n->reload_failures++;
        return;
    }
    conf_errors_fini(&errs);
    struct fdlimit_budget fds;
    if (conf_apply_node(conf, n->roles.name, 0, &eb) != 0 || size_fds(n, conf, &fds, &eb) != 0) {
        conf_free(conf);
        goto refused;
    }
    struct gen *gen = gen_new(conf);
    if (gen == NULL) {
        errbuf_set(&eb, "out of memory");
        goto refused;
    }
    if (start_admin(n, gen->conf, &eb) != 0 || role_reload_all(&n->roles, gen, &eb) != 0) {
        gen_free(gen);
        goto refused;
    }
    int rc = log_open(gen->conf->global.error_log);
    if (rc != 0) {
        log_warn("main", "cannot open error log %s: %s; keeping the current one",
                 gen->conf->global.error_log, log_file_strerror(rc));
    }
    log_set_level((enum log_level)gen->conf->global.log_level);
    gen_ref(gen);
    gen_retire(&n->retired, n->gen);
    n->gen = gen;
    use_fds(n, &fds);
    n->reloads++;
    log_notice("main", "configuration reloaded: generation %lu", (unsigned long)gen->id);
    return;
refused:
    n->reload_failures++;
    log_error("main", "reload refused: %s; still running generation %lu", eb.msg,
              (unsigned long)n->gen->id);
}

static void start_drain(struct node *n, const char *why)
{
    if (n->roles.is_stopping) {
        log_notice("main", "%s again: exiting at once", why);
        ev_loop_stop(n->roles.loop);
        return;
    }
    n->drain_deadline_ms = ev_now_ms(n->roles.loop) + n->gen->conf->global.timeout_drain_ms;
    log_notice("main", "%s: draining (up to %u ms)", why, n->gen->conf->global.timeout_drain_ms);
    role_stop_all(&n->roles);
}

static void on_tick(struct ev_loop *loop, struct ev_timer *t)
{
    struct node *n = t->data;
    role_tick_all(&n->roles);
    (void)gen_collect(&n->retired); /* the ones still held wait for the next tick */
    qsbr_reclaim();
    if (n->roles.is_stopping) {
        bool is_late = ev_now_ms(loop) >= n->drain_deadline_ms;
        if (role_drained_all(&n->roles, false)) {
            log_notice("main", "drained: every connection finished");
            ev_loop_stop(loop);
            return;
        }
        if (is_late && role_drained_all(&n->roles, true)) {
            log_warn("main", "drain timeout: closing the connections still open");
            ev_loop_stop(loop);
            return;
        }
    }
    ev_timer_start(loop, t, TICK_MS);
}

static void on_signal(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    struct node *n = io->data;
    struct signalfd_siginfo si;
    while (read(n->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            if (!n->roles.is_stopping) {
                reload(n);
            }
        } else if (si.ssi_signo == SIGTERM) {
            start_drain(n, "SIGTERM");
        } else if (si.ssi_signo == SIGINT) {
            start_drain(n, "SIGINT");
        }
    }
}

/* ---------------------------------------------------------------- boot */

/* Load the configuration and size the node: the generation to start on, in n->gen. */
static int boot(struct node *n)
{
    struct conf *conf = NULL;
    struct conf_errors errs = {0};
    struct errbuf eb = {{0}};
    struct fdlimit_rlimit rl;
    int rc = fdlimit_raise(&rl); /* first: every descriptor opened from here on counts */
    if (rc != 0) {
        fprintf(stderr, "keel: getrlimit(RLIMIT_NOFILE) failed: %s\n", strerror(-rc));
        return KEEL_EXIT_RUNTIME;
    }
    if (conf_load_file(n->conf_path, &conf, &errs) != 0) {
        print_errors(&errs, false);
        conf_errors_fini(&errs);
        return KEEL_EXIT_CONFIG;
    }
    conf_errors_fini(&errs);
    if (conf_apply_node(conf, n->roles.name, 0, &eb) != 0) {
        fprintf(stderr, "keel: %s\n", eb.msg);
        conf_free(conf);
        return KEEL_EXIT_CONFIG;
    }
    rc = log_open(conf->global.error_log);
    if (rc != 0) {
        fprintf(stderr, "keel: cannot open error log %s: %s\n", conf->global.error_log,
                log_file_strerror(rc));
        conf_free(conf);
        return KEEL_EXIT_CONFIG;
    }
    log_set_level((enum log_level)conf->global.log_level);
    log_rlimit(&rl);
    n->roles.n_workers = role_node_workers(conf);
    struct fdlimit_budget fds;
    if (size_fds(n, conf, &fds, &eb) != 0) {
        fprintf(stderr, "keel: %s\n", eb.msg);
        conf_free(conf);
        return KEEL_EXIT_CONFIG;
    }
    use_fds(n, &fds);
    n->gen = gen_new(conf);
    if (n->gen == NULL) {
        log_error("main", "cannot start: out of memory");
        return KEEL_EXIT_RUNTIME;
    }
    gen_ref(n->gen);
    if (start_admin(n, n->gen->conf, &eb) != 0) {
        log_error("main", "cannot start: %s", eb.msg);
        return KEEL_EXIT_RUNTIME;
    }
    return 0;
}

static int setup_signals(struct node *n)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    /* Blocked before the workers start, so only the control thread sees them. */
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) {
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    n->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (n->sigfd == -1) {
        return -errno;
    }
    return ev_io_start(n->roles.loop, &n->sigio, n->sigfd, EV_READ, on_signal, n, "signals");
}

static void shutdown_node(struct node *n)
{
    role_free_all(&n->roles); /* a role whose threads still hold connections leaves them */
    admin_stop(n->admin);
    gen_retire(&n->retired, n->gen);
    if (gen_collect(&n->retired) != 0) {
        return; /* threads still hold connections; process exit closes them */
    }
    qsbr_drain_all();
    ev_io_stop(n->roles.loop, &n->sigio);
    close(n->sigfd);
    ev_loop_free(n->roles.loop);
}

int keel_node_run(const char *conf_path, const char *node_name)
{
    static struct node node; /* one per process */
    struct node *n = &node;
    memset(n, 0, sizeof(*n));
    n->conf_path = conf_path;
    n->roles.name = node_name;
    n->roles.can_serve = true;
    n->roles.loop = ev_loop_new();
    if (n->roles.loop == NULL) {
        fprintf(stderr, "keel: cannot create the event loop: %s\n", strerror(errno));
        return KEEL_EXIT_RUNTIME;
    }
    log_set_thread_name("ctl");
    int rc = boot(n);
    if (rc != 0) {
        return rc;
    }
    if (setup_signals(n) != 0) {
        log_error("main", "cannot set up signal handling: %s", strerror(errno));
        return KEEL_EXIT_RUNTIME;
    }
    struct errbuf eb = {{0}};
    if (role_start_all(&n->roles, n->gen, &eb) != 0) {
        log_error("main", "cannot start: %s", eb.msg);
        return KEEL_EXIT_RUNTIME;
    }
    ev_timer_init(&n->tick, on_tick, n, "tick");
    ev_timer_start(n->roles.loop, &n->tick, TICK_MS);
    log_notice("main", "keel %s started: %u workers, %u frontends, %u backends%s%s", KEEL_VERSION,
               n->roles.n_workers, n->gen->conf->n_frontends, n->gen->conf->n_backends,
               n->admin != NULL ? ", admin on " : "", n->admin_text);
    ev_run(n->roles.loop);
    shutdown_node(n);
    log_notice("main", "stopped");
    return KEEL_EXIT_OK;
}

int cli_run(int argc, char **argv)
{
    const char *conf_path = NULL, *node_name = NULL;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"node", required_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:n:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            conf_path = optarg;
            break;
        case 'n':
            node_name = optarg;
            break;
        case 'h':
            printf("usage: keel run -c FILE [--node NAME]\n");
            return KEEL_EXIT_OK;
        default:
            fprintf(stderr, "usage: keel run -c FILE [--node NAME]\n");
            return KEEL_EXIT_USAGE;
        }
    }
    if (conf_path == NULL || optind != argc) {
        fprintf(stderr, "usage: keel run -c FILE [--node NAME]\n");
        return KEEL_EXIT_USAGE;
    }
    return keel_node_run(conf_path, node_name);
}

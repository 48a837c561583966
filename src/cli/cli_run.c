/* SPDX-License-Identifier: MIT */
/* `keel run -c FILE [--node NAME]`: the control thread of a node. It loads the
 * configuration, starts the workers, health checks and the admin listener, and handles
 * signals: SIGHUP reloads (parse, build, validate, then swap; a bad file changes nothing),
 * SIGTERM/SIGINT drain. Blocking I/O happens here only while loading a configuration. */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "app/app_supervisor.h"
#include "core/conf.h"
#include "core/conf_node.h"
#include "core/fdlimit.h"
#include "core/json.h"
#include "core/log.h"
#include "core/qsbr.h"
#include "lb/lb.h"
#include "lb/lb_check.h"
#include "lb/lb_worker.h"
#include "monitor/admin.h"
#include "monitor/metrics.h"
#include "db/db_agent.h"
#include "vrrp/vrrp.h"
#include "lb/lb_gate.h"

#define TICK_MS 50

struct node {
    struct ev_loop *loop;
    const char *conf_path;
    const char *node_name;
    struct lb_gen *gen;     /* current; the node holds one reference */
    struct lb_gen *retired; /* waiting for their last connection */
    struct lb_worker workers[LB_MAX_WORKERS];
    uint32_t n_workers;
    struct lb_checks *checks;
    struct admin *admin;
    char admin_text[128];
    int sigfd;
    struct ev_io sigio;
    struct ev_timer tick;
    bool is_draining;
    bool is_handing_over; /* draining waits for VRRP successors (vrrp_hand_over) */
    uint64_t drain_deadline_ms;
    uint64_t reloads;
    uint64_t downs_seen; /* gen->downs when the workers were last told */
    uint64_t reload_failures;
    struct app_supervisor *apps; /* the app role's processes (src/app/app_supervisor.c) */
    struct vrrp *vrrp;           /* the node's virtual routers (src/vrrp/vrrp.c); NULL: none */
    struct db_agent *db;         /* the node's database agent (src/db/db_agent.c); NULL: none */
    struct fdlimit_budget fds;   /* how the current generation spends the open files limit */
};

static uint32_t default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) {
        n = 1;
    }
    return n > LB_MAX_WORKERS ? LB_MAX_WORKERS : (uint32_t)n;
}

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

/* The node's own families and the load balancer's state (the registry in monitor/metrics.c
 * has the counters). */
enum {
    RM_SERVER_UP = 0,
    RM_SERVER_ACTIVE,
    RM_BACKEND_QUEUE,
    RM_GENERATION,
    RM_RELOADS,
    RM_RELOAD_FAILURES,
    RM_FD_LIMIT,
    RM_FD_RESERVE,
};

static const struct metric_desc run_metrics[] = {
    [RM_SERVER_UP] = {"keel_server_up", METRIC_GAUGE,
                      "Whether the server is in service (1) or not.",
                      METRIC_LABELS("backend", "server")},
    [RM_SERVER_ACTIVE] = {"keel_server_active", METRIC_GAUGE, "Requests or sessions in flight.",
                          METRIC_LABELS("backend", "server")},
    [RM_BACKEND_QUEUE] = {"keel_backend_queue", METRIC_GAUGE, "Requests waiting for a server slot.",
                          METRIC_LABELS("backend")},
    [RM_GENERATION] = {"keel_config_generation", METRIC_GAUGE,
                       "Generation of the running configuration.", NULL},
    [RM_RELOADS] = {"keel_config_reloads_total", METRIC_COUNTER, "Successful reloads.", NULL},
    [RM_RELOAD_FAILURES] = {"keel_config_reload_failures_total", METRIC_COUNTER, "Refused reloads.",
                            NULL},
    [RM_FD_LIMIT] = {"keel_fd_limit", METRIC_GAUGE,
                     "The open files limit (soft, after raising it).", NULL},
    [RM_FD_RESERVE] = {"keel_fd_reserve", METRIC_GAUGE,
                       "Descriptors the data plane leaves to the control plane.", NULL},
};

const struct metric_table cli_run_metric_table =
    METRIC_TABLE("The node and its load balancer's state", "src/cli/cli_run.c", run_metrics);

static void gauges(struct metrics_out *o, void *data)
{
    struct node *n = data;
    struct lb_gen *gen = n->gen;
    const struct metric_desc *d = &run_metrics[RM_SERVER_UP];
    metrics_family(o, d);
    for (uint32_t b = 0; b < gen->n_backends; b++) {
        struct lb_backend *be = &gen->backends[b];
        for (uint32_t i = 0; i < be->n_servers; i++) {
            metrics_sample_u64(o, d,
                               (const char *const[]){be->conf->name, be->servers[i].conf->name},
                               atomic_load(&be->servers[i].is_up) ? 1 : 0);
        }
    }
    d = &run_metrics[RM_SERVER_ACTIVE];
    metrics_family(o, d);
    for (uint32_t b = 0; b < gen->n_backends; b++) {
        struct lb_backend *be = &gen->backends[b];
        for (uint32_t i = 0; i < be->n_servers; i++) {
            metrics_sample_u64(o, d,
                               (const char *const[]){be->conf->name, be->servers[i].conf->name},
                               atomic_load(&be->servers[i].active));
        }
    }
    d = &run_metrics[RM_BACKEND_QUEUE];
    metrics_family(o, d);
    for (uint32_t b = 0; b < gen->n_backends; b++) {
        metrics_sample_u64(o, d, (const char *const[]){gen->backends[b].conf->name},
                           atomic_load(&gen->backends[b].queued));
    }
    const uint64_t node_values[] = {
        [RM_GENERATION] = gen->id,
        [RM_RELOADS] = n->reloads,
        [RM_RELOAD_FAILURES] = n->reload_failures,
        [RM_FD_LIMIT] = n->fds.limit,
        [RM_FD_RESERVE] = n->fds.reserve,
    };
    for (size_t i = RM_GENERATION; i <= RM_FD_RESERVE; i++) {
        metrics_family(o, &run_metrics[i]);
        metrics_sample_u64(o, &run_metrics[i], NULL, node_values[i]);
    }
    app_supervisor_metrics(n->apps, o);
    vrrp_metrics(n->vrrp, o);
    db_agent_metrics(n->db, o);
}

static void status_json(struct node *n, struct json_w *w)
{
    struct lb_gen *gen = n->gen;
    json_w_begin_object(w);
    json_w_key_str(w, "node", n->node_name != NULL ? n->node_name : "");
    json_w_key_int(w, "pid", getpid());
    json_w_key_uint(w, "generation", gen->id);
    json_w_key_uint(w, "workers", n->n_workers);
    json_w_key_bool(w, "draining", n->is_draining);
    json_w_key(w, "frontends");
    json_w_begin_array(w);
    for (uint32_t f = 0; f < gen->n_frontends; f++) {
        const struct conf_frontend *cf = gen->frontends[f].conf;
        json_w_begin_object(w);
        json_w_key_str(w, "name", cf->name);
        json_w_key_str(w, "mode", cf->mode == CONF_MODE_TCP ? "tcp" : "http");
        json_w_key_str(w, "backend", cf->backend_name);
        json_w_key(w, "binds");
        json_w_begin_array(w);
        for (uint32_t b = 0; b < cf->n_binds; b++) {
            json_w_str(w, cf->binds[b].text);
        }
        json_w_end_array(w);
        json_w_end_object(w);
    }
    json_w_end_array(w);
    json_w_key(w, "backends");
    json_w_begin_array(w);
    for (uint32_t b = 0; b < gen->n_backends; b++) {
        struct lb_backend *be = &gen->backends[b];
        json_w_begin_object(w);
        json_w_key_str(w, "name", be->conf->name);
        json_w_key(w, "servers");
        json_w_begin_array(w);
        for (uint32_t i = 0; i < be->n_servers; i++) {
            struct lb_server *s = &be->servers[i];
            json_w_begin_object(w);
            json_w_key_str(w, "name", s->conf->name);
            json_w_key_str(w, "address", s->conf->addr.text);
            json_w_key_bool(w, "up", atomic_load(&s->is_up));
            json_w_key_uint(w, "active", atomic_load(&s->active));
            json_w_key_uint(w, "weight", s->weight);
            json_w_key_bool(w, "backup", s->is_backup);
            json_w_key_bool(w, "disabled", s->conf->is_disabled);
            json_w_key_str(w, "reason", be->health[i].last_reason);
            json_w_end_object(w);
        }
        json_w_end_array(w);
        json_w_end_object(w);
    }
    json_w_end_array(w);
    json_w_key(w, "apps");
    app_supervisor_status_json(n->apps, w);
    json_w_key(w, "vrrp");
    vrrp_status_json(n->vrrp, w);
    json_w_key(w, "db");
    db_agent_status_json(n->db, w);
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
        metrics_out_printf(out, n->is_draining ? "draining\n" : "ok\n");
        return n->is_draining ? 503 : 200;
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
    struct admin *a = admin_start(n->loop, (const struct sockaddr *)&conf->global.admin.sa,
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
    return fdlimit_conf_apply(conf, n->node_name, n->n_workers, soft, b, eb);
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
    if (conf_apply_node(conf, n->node_name, 0, &eb) != 0 || size_fds(n, conf, &fds, &eb) != 0) {
        conf_free(conf);
        goto refused;
    }
    enum log_level level = (enum log_level)conf->global.log_level;
    struct lb_gen *gen = lb_gen_new(conf, n->gen, n->n_workers, &eb);
    if (gen == NULL) {
        goto refused;
    }
    if (lb_gen_listen(gen, n->gen, &eb) != 0 || start_admin(n, gen->conf, &eb) != 0) {
        lb_gen_free(gen);
        goto refused;
    }
    int rc = log_open(gen->conf->global.error_log);
    if (rc != 0) {
        log_warn("main", "cannot open error log %s: %s; keeping the current one",
                 gen->conf->global.error_log, log_file_strerror(rc));
    }
    log_set_level(level);
    lb_checks_stop(n->checks);
    n->checks = lb_checks_start(n->loop, gen);
    if (n->checks == NULL) {
        log_error("main", "out of memory starting health checks");
    }
    struct lb_gen *old = n->gen;
    lb_gen_ref(gen);
    n->gen = gen;
    for (uint32_t i = 0; i < n->n_workers; i++) {
        lb_gen_ref(gen);
        lb_worker_set_gen(&n->workers[i], gen);
    }
    lb_gen_unref(old);
    old->retired_next = n->retired;
    n->retired = old;
    (void)app_supervisor_reload(n->apps, gen->conf); /* logs its own failures */
    use_fds(n, &fds);
    n->reloads++;
    log_notice("main", "configuration reloaded: generation %lu", (unsigned long)gen->id);
    return;
refused:
    n->reload_failures++;
    log_error("main", "reload refused: %s; still running generation %lu", eb.msg,
              (unsigned long)n->gen->id);
}

static void drain_workers(struct node *n)
{
    for (uint32_t i = 0; i < n->n_workers; i++) {
        lb_worker_drain(&n->workers[i]);
    }
}

static void start_drain(struct node *n, const char *why)
{
    if (n->is_draining) {
        log_notice("main", "%s again: exiting at once", why);
        ev_loop_stop(n->loop);
        return;
    }
    n->is_draining = true;
    n->drain_deadline_ms = ev_now_ms(n->loop) + n->gen->conf->global.timeout_drain_ms;
    log_notice("main", "%s: draining (up to %u ms)", why, n->gen->conf->global.timeout_drain_ms);
    lb_checks_stop(n->checks);
    n->checks = NULL;
    app_supervisor_stop(n->apps, 0); /* SIGTERM now, SIGKILL after each app's stop_timeout */
    db_agent_stop(n->db);            /* hands the leader key over, stops PostgreSQL */
    /* Priority 0: a backup takes the virtual IPs at once. Until it does, keep accepting on
     * them, then drain (on_tick). */
    n->is_handing_over = !vrrp_hand_over(n->vrrp);
    if (!n->is_handing_over) {
        drain_workers(n);
    }
}

static void free_retired(struct node *n)
{
    struct lb_gen **pp = &n->retired;
    while (*pp != NULL) {
        struct lb_gen *g = *pp;
        if (atomic_load_explicit(&g->refs, memory_order_acquire) == 0) {
            *pp = g->retired_next;
            log_info("main", "generation %lu retired", (unsigned long)g->id);
            lb_gen_free(g);
        } else {
            pp = &g->retired_next;
        }
    }
}

/* Whether the node can serve: every backend with servers has one up (VRRP tracking). */
static bool can_serve(const struct lb_gen *gen)
{
    for (uint32_t b = 0; b < gen->n_backends; b++) {
        const struct lb_backend *be = &gen->backends[b];
        bool any = be->n_servers == 0;
        for (uint32_t i = 0; !any && i < be->n_servers; i++) {
            any = atomic_load(&be->servers[i].is_up);
        }
        if (!any) {
            return false;
        }
    }
    return true;
}

/* VRRP took, is handing over or gave up a virtual IP: open, quiesce or close its gates. */
static void on_hold(void *data, struct in_addr ip, enum vrrp_hold hold)
{
    struct node *n = data;
    struct lb_gate *g = lb_gate_define(ip);
    if (g == NULL) {
        return;
    }
    if (hold == VRRP_HOLD_LEAVING) {
        lb_gate_quiesce(g, n->gen);
        return; /* the workers keep polling: the handshakes under way complete */
    }
    lb_gate_set(g, n->gen, hold == VRRP_HOLD_HELD);
    for (uint32_t i = 0; i < n->n_workers; i++) {
        lb_worker_poke(&n->workers[i]);
    }
}

static void on_tick(struct ev_loop *loop, struct ev_timer *t)
{
    struct node *n = t->data;
    if (n->checks != NULL) {
        lb_checks_poll_passive(n->checks);
    }
    vrrp_set_can_serve(n->vrrp, can_serve(n->gen));
    uint64_t downs = atomic_load(&n->gen->downs);
    if (downs != n->downs_seen) {
        n->downs_seen = downs;
        for (uint32_t i = 0; i < n->n_workers; i++) {
            lb_worker_servers_down(&n->workers[i]); /* shutdown_on_down backends */
        }
    }
    free_retired(n);
    qsbr_reclaim();
    if (n->is_handing_over && vrrp_handed_over(n->vrrp)) {
        n->is_handing_over = false;
        drain_workers(n);
    }
    if (n->is_draining) {
        if (n->is_handing_over || !app_supervisor_is_stopped(n->apps) ||
            !db_agent_is_stopped(n->db)) {
            ev_timer_start(loop, t, TICK_MS); /* bounded: SIGKILL after stop_timeout */
            return;
        }
        bool all_done = true;
        for (uint32_t i = 0; i < n->n_workers; i++) {
            all_done = all_done && atomic_load(&n->workers[i].is_done);
        }
        if (all_done) {
            log_notice("main", "drained: every connection finished");
            ev_loop_stop(loop);
            return;
        }
        if (ev_now_ms(loop) >= n->drain_deadline_ms) {
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
            if (!n->is_draining) {
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
    if (conf_apply_node(conf, n->node_name, 0, &eb) != 0) {
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
    n->n_workers = conf->global.workers != 0 ? conf->global.workers : default_workers();
    if (n->n_workers > LB_MAX_WORKERS) {
        n->n_workers = LB_MAX_WORKERS;
    }
    struct fdlimit_budget fds;
    if (size_fds(n, conf, &fds, &eb) != 0) {
        fprintf(stderr, "keel: %s\n", eb.msg);
        conf_free(conf);
        return KEEL_EXIT_CONFIG;
    }
    use_fds(n, &fds);
    vrrp_declare_gates(conf, n->node_name);
    n->gen = lb_gen_new(conf, NULL, n->n_workers, &eb);
    if (n->gen == NULL || lb_gen_listen(n->gen, NULL, &eb) != 0 ||
        start_admin(n, n->gen->conf, &eb) != 0) {
        log_error("main", "cannot start: %s", eb.msg);
        lb_gen_free(n->gen);
        n->gen = NULL;
        return KEEL_EXIT_RUNTIME;
    }
    lb_gen_ref(n->gen);
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
    return ev_io_start(n->loop, &n->sigio, n->sigfd, EV_READ, on_signal, n, "signals");
}

static void shutdown_node(struct node *n)
{
    app_supervisor_free(n->apps); /* kills and reaps what still runs (a second SIGTERM) */
    n->apps = NULL;
    vrrp_free(n->vrrp);
    n->vrrp = NULL;
    db_agent_free(n->db);
    n->db = NULL;
    bool all_done = true;
    for (uint32_t i = 0; i < n->n_workers; i++) {
        all_done = all_done && atomic_load(&n->workers[i].is_done);
    }
    if (!all_done) {
        return; /* threads still hold connections; process exit closes them */
    }
    for (uint32_t i = 0; i < n->n_workers; i++) {
        lb_worker_join(&n->workers[i]);
    }
    lb_checks_stop(n->checks);
    admin_stop(n->admin);
    lb_gen_unref(n->gen);
    free_retired(n);
    if (atomic_load(&n->gen->refs) == 0) {
        lb_gen_free(n->gen);
    }
    qsbr_drain_all();
    ev_io_stop(n->loop, &n->sigio);
    close(n->sigfd);
    ev_loop_free(n->loop);
}

int keel_node_run(const char *conf_path, const char *node_name)
{
    static struct node node; /* large (worker array); one per process */
    struct node *n = &node;
    memset(n, 0, sizeof(*n));
    n->conf_path = conf_path;
    n->node_name = node_name;
    n->loop = ev_loop_new();
    if (n->loop == NULL) {
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
    rc = lb_workers_start(n->workers, n->n_workers, n->gen);
    if (rc != 0) {
        log_error("main", "cannot start workers: %s", strerror(-rc));
        return KEEL_EXIT_RUNTIME;
    }
    n->checks = lb_checks_start(n->loop, n->gen);
    n->apps = app_supervisor_start(n->loop, n->gen->conf, n->node_name);
    n->vrrp = vrrp_start(n->loop, n->gen->conf, n->node_name, on_hold, n);
    struct errbuf eb = {{0}};
    n->db = db_agent_start(n->loop, n->gen->conf, n->node_name, &eb);
    if (n->db == NULL && eb.msg[0] != '\0') {
        log_error("db", "the database agent cannot start: %s", eb.msg);
    }
    if (n->apps == NULL) {
        log_error("main", "out of memory starting the application supervisor");
        return KEEL_EXIT_RUNTIME;
    }
    ev_timer_init(&n->tick, on_tick, n, "tick");
    ev_timer_start(n->loop, &n->tick, TICK_MS);
    log_notice("main", "keel %s started: %u workers, %u frontends, %u backends%s%s", KEEL_VERSION,
               n->n_workers, n->gen->n_frontends, n->gen->n_backends,
               n->admin != NULL ? ", admin on " : "", n->admin_text);
    ev_run(n->loop);
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

/* SPDX-License-Identifier: MIT */
/* The file descriptor budget (see fdlimit.h and docs/internals/fdlimit.md): the limit
 * raise, the sizing of maxconn, the data plane's guard and the log throttle. No I/O but
 * getrlimit/setrlimit and one read of /proc/sys/fs/nr_open. */
#include "core/fdlimit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "core/conf.h"

/* 0: no guard (unit tests, `keel check`); set by the control thread, read by workers. */
static _Atomic uint64_t data_fd_max;

/* ---------------------------------------------------------------- the limit */

static uint64_t nr_open(void)
{
    uint64_t v = 1048576; /* the kernel's default fs.nr_open */
    FILE *f = fopen("/proc/sys/fs/nr_open", "re");
    if (f != NULL) {
        unsigned long long x;
        if (fscanf(f, "%llu", &x) == 1 && x > 0) {
            v = x;
        }
        fclose(f);
    }
    return v;
}

int fdlimit_get(uint64_t *soft, uint64_t *hard)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
        return -errno;
    }
    *soft = rl.rlim_cur;
    *hard = rl.rlim_max;
    return 0;
}

int fdlimit_raise(struct fdlimit_rlimit *out)
{
    memset(out, 0, sizeof(*out));
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
        return -errno;
    }
    out->soft_before = out->soft = rl.rlim_cur;
    out->hard = rl.rlim_max;
    /* The kernel refuses a soft limit above fs.nr_open, and "infinity" is above it. */
    rlim_t want = rl.rlim_max == RLIM_INFINITY ? (rlim_t)nr_open() : rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= want) {
        return 0;
    }
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
        out->err = -errno;
        return 0;
    }
    out->soft = want;
    return 0;
}

/* ---------------------------------------------------------------- sizing */

static const struct conf_node *find_node(const struct conf *conf, const char *name)
{
    return name != NULL ? conf_find_node(conf, name) : NULL;
}

static bool in_database(const struct conf_database *db, const char *node_name)
{
    for (uint32_t i = 0; node_name != NULL && i < db->n_nodes; i++) {
        if (strcmp(db->nodes[i], node_name) == 0) {
            return true;
        }
    }
    return false;
}

/* What the control plane keeps (fdlimit.h says what each term is for). */
static uint32_t reserve_of(const struct conf *conf, const char *node_name)
{
    uint64_t r = FDLIMIT_RESERVE_BASE;
    const uint32_t per_admin = FDLIMIT_ADMIN_CONN_MAX + 1; /* its connections and its socket */
    if (conf->global.has_admin) {
        r += per_admin;
    }
    for (uint32_t d = 0; d < conf->n_databases; d++) {
        if (in_database(&conf->databases[d], node_name)) {
            r += per_admin; /* the agent's port */
        }
    }
    for (uint32_t b = 0; b < conf->n_backends; b++) {
        if (conf->backends[b].check.type != CONF_CHECK_NONE) {
            r += conf->backends[b].n_servers;
        }
    }
    const struct conf_node *node = find_node(conf, node_name);
    if (node == NULL || (node->roles & CONF_ROLE_APP) != 0) {
        for (uint32_t a = 0; a < conf->n_apps; a++) {
            r += (uint64_t)conf->apps[a].processes * FDLIMIT_RESERVE_PER_APP_PROCESS;
        }
    }
    return r > UINT32_MAX ? UINT32_MAX : (uint32_t)r;
}

static void count_fixed(const struct conf *conf, uint32_t workers, struct fdlimit_budget *b)
{
    uint64_t binds = 0;
    for (uint32_t f = 0; f < conf->n_frontends; f++) {
        binds += conf->frontends[f].n_binds;
    }
    uint64_t listeners = binds * workers;
    b->listeners = listeners > UINT32_MAX ? UINT32_MAX : (uint32_t)listeners;
    b->pooled = 0;
    for (uint32_t i = 0; i < conf->n_backends; i++) {
        const struct conf_backend *be = &conf->backends[i];
        if (be->mode == CONF_MODE_HTTP) { /* TCP sessions keep no idle server connections */
            b->pooled += (uint64_t)be->keepalive * be->n_servers * workers;
        }
    }
}

static void explain(struct errbuf *eb, const struct conf_frontend *fe, const char *what,
                    const struct fdlimit_budget *b)
{
    errbuf_set(eb,
               "%s:%d:%d: error: frontend \"%s\": %s: the frontends need %llu descriptors "
               "(maxconn total %llu x %d + %u listening sockets + %llu pooled server "
               "connections + a reserve of %u for the control plane), more than the open "
               "files limit %llu; lower maxconn or raise the hard limit (ulimit -Hn, "
               "systemd LimitNOFILE=)",
               fe->pos.file, fe->pos.line, fe->pos.col, fe->name, what, (unsigned long long)b->need,
               (unsigned long long)b->conns, FDLIMIT_FDS_PER_CONN, b->listeners,
               (unsigned long long)b->pooled, b->reserve, (unsigned long long)b->limit);
}

int fdlimit_conf_apply(struct conf *conf, const char *node_name, uint32_t workers, uint64_t limit,
                       struct fdlimit_budget *out, struct errbuf *eb)
{
    struct fdlimit_budget b = {.limit = limit};
    b.reserve = reserve_of(conf, node_name);
    count_fixed(conf, workers == 0 ? 1 : workers, &b);
    const struct conf_frontend *biggest = NULL, *first_auto = NULL;
    uint64_t explicit_conns = 0;
    for (uint32_t f = 0; f < conf->n_frontends; f++) {
        const struct conf_frontend *fe = &conf->frontends[f];
        if (fe->maxconn == 0) {
            b.n_auto++;
            first_auto = first_auto != NULL ? first_auto : fe;
            continue;
        }
        explicit_conns += fe->maxconn;
        if (biggest == NULL || fe->maxconn > biggest->maxconn) {
            biggest = fe;
        }
    }
    uint64_t fixed = (uint64_t)b.listeners + b.pooled + b.reserve;
    /* Every auto frontend needs at least one connection. */
    b.conns = explicit_conns + b.n_auto;
    b.need = b.conns * FDLIMIT_FDS_PER_CONN + fixed;
    b.data_fd_max = limit > b.reserve ? limit - b.reserve : 0;
    if (b.need > limit) {
        if (biggest != NULL) {
            char what[64];
            (void)snprintf(what, sizeof(what), "maxconn %u does not fit", biggest->maxconn);
            explain(eb, biggest, what, &b);
        } else {
            explain(eb, first_auto, "no descriptor left for its connections", &b);
        }
        return -KEEL_ECONFIG;
    }
    if (b.n_auto > 0) {
        uint64_t left = limit - fixed - explicit_conns * FDLIMIT_FDS_PER_CONN;
        uint64_t share = left / FDLIMIT_FDS_PER_CONN / b.n_auto;
        b.auto_maxconn =
            share > FDLIMIT_AUTO_MAXCONN_MAX ? FDLIMIT_AUTO_MAXCONN_MAX : (uint32_t)share;
        for (uint32_t f = 0; f < conf->n_frontends; f++) {
            if (conf->frontends[f].maxconn == 0) {
                conf->frontends[f].maxconn = b.auto_maxconn;
            }
        }
        b.conns = explicit_conns + (uint64_t)b.auto_maxconn * b.n_auto;
        b.need = b.conns * FDLIMIT_FDS_PER_CONN + fixed;
    }
    if (out != NULL) {
        *out = b;
    }
    return 0;
}

/* ---------------------------------------------------------------- the guard */

void fdlimit_data_set_max(uint64_t n)
{
    atomic_store_explicit(&data_fd_max, n, memory_order_relaxed);
}

bool fdlimit_data_fd_ok(int fd)
{
    uint64_t max = atomic_load_explicit(&data_fd_max, memory_order_relaxed);
    return max == 0 || (fd >= 0 && (uint64_t)fd < max);
}

/* ---------------------------------------------------------------- the throttle */

uint32_t fdlimit_throttle_hit(struct fdlimit_throttle *t, uint64_t now_ms, uint64_t *span_ms)
{
    uint64_t zero = 0;
    (void)atomic_compare_exchange_strong(&t->since_ms, &zero, now_ms); /* first of a series */
    atomic_fetch_add(&t->count, 1);
    uint64_t next = atomic_load(&t->next_ms);
    if (now_ms < next ||
        !atomic_compare_exchange_strong(&t->next_ms, &next, now_ms + FDLIMIT_LOG_EVERY_MS)) {
        return 0; /* too early, or another thread is logging this second's line */
    }
    uint64_t since = atomic_exchange(&t->since_ms, 0);
    uint32_t n = atomic_exchange(&t->count, 0);
    if (span_ms != NULL) {
        *span_ms = since != 0 && since <= now_ms ? now_ms - since : 0;
    }
    return n;
}

/* SPDX-License-Identifier: MIT */
/* Tests of db/pg_inst.c with real PostgreSQL 15 (Debian's, run as the postgres user) and no
 * mocks, together with db/pg_query.c and db/pg_status.c: bootstrap of a primary, queries,
 * errors and timeouts on the event loop (which must keep running during a slow query),
 * kill -9 of the postmaster, a streaming replica through a slot, synchronous commit, and a
 * failover: promotion, then the old primary, diverged, rejoins with pg_rewind; and, with a
 * stand-in pg_basebackup, where the replication password goes. Instances
 * listen on free high ports of 127.0.0.x, live in a temporary directory, and are stopped
 * (SIGQUIT, then SIGKILL) and removed by the suite's fini, which Criterion runs after a
 * failed assertion too; if the test process dies, PR_SET_PDEATHSIG kills the postmasters. */
#include <criterion/criterion.h>

#include "db/pg_inst.c"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "db/pg_status.h"

#define WAIT_MS 20000 /* any single step of a test */
#define MAX_INSTS 3

static struct ev_loop *loop;
static char tmp[64];
static struct pg_inst *insts[MAX_INSTS];
static size_t n_insts;
static struct pg_conn *conns[8];
static size_t n_conns;

/* ------------------------------------------------------------------------------------------
 * Running the loop
 * ------------------------------------------------------------------------------------------ */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_tick(struct ev_loop *l, struct ev_timer *t)
{
    (void)t;
    ev_loop_stop(l);
}

/* Run the loop until *flag or timeout_ms passed. */
static bool run_until(const bool *flag, uint32_t timeout_ms)
{
    struct ev_timer tick;
    ev_timer_init(&tick, on_tick, NULL, "test tick");
    uint64_t deadline = mono_ms() + timeout_ms;
    while (!*flag && mono_ms() < deadline) {
        ev_timer_start(loop, &tick, 10);
        (void)ev_run(loop);
    }
    ev_timer_stop(loop, &tick);
    return *flag;
}

/* Run the loop for ms. */
static void run_for(uint32_t ms)
{
    bool never = false;
    (void)run_until(&never, ms);
}

struct done {
    bool is_done;
    int rc;
    char reason[512];
};

static void on_done(void *data, int rc, const char *reason)
{
    struct done *d = data;
    d->is_done = true;
    d->rc = rc;
    (void)snprintf(d->reason, sizeof(d->reason), "%s", reason);
}

/* Wait for an operation and expect success. */
static void expect_done(struct done *d, const char *what)
{
    cr_assert(run_until(&d->is_done, WAIT_MS), "%s: not done in time", what);
    cr_assert_eq(d->rc, 0, "%s: %s (%s)", what, err_name(d->rc), d->reason);
}

/* ------------------------------------------------------------------------------------------
 * Queries
 * ------------------------------------------------------------------------------------------ */

struct qres {
    bool is_done;
    int err;
    char msg[512];
    char sqlstate[8];
    char cmd[64];
    uint32_t n_rows, n_cols;
    char val[4][4][128];
    bool is_null[4][4];
    uint64_t done_ms;
};

static void on_q(void *data, const struct pg_result *r)
{
    struct qres *q = data;
    q->is_done = true;
    q->done_ms = mono_ms();
    q->err = r->err;
    (void)snprintf(q->msg, sizeof(q->msg), "%s", r->msg);
    (void)snprintf(q->sqlstate, sizeof(q->sqlstate), "%s", r->sqlstate);
    (void)snprintf(q->cmd, sizeof(q->cmd), "%s", r->cmd_status);
    q->n_rows = r->n_rows;
    q->n_cols = r->n_cols;
    for (uint32_t i = 0; i < r->n_rows && i < 4; i++) {
        for (uint32_t k = 0; k < r->n_cols && k < 4; k++) {
            const char *v = pg_result_value(r, i, k);
            q->is_null[i][k] = v == NULL;
            (void)snprintf(q->val[i][k], sizeof(q->val[i][k]), "%s", v != NULL ? v : "");
        }
    }
}

static void query_start(struct pg_conn *c, const char *sql, struct qres *q)
{
    memset(q, 0, sizeof(*q));
    cr_assert_eq(pg_query(c, sql, on_q, q), 0);
}

static void query(struct pg_conn *c, const char *sql, struct qres *q)
{
    query_start(c, sql, q);
    cr_assert(run_until(&q->is_done, WAIT_MS), "no result for %s", sql);
}

/* Run sql, expect success, return the first value ("" if none). */
static const char *query_ok(struct pg_conn *c, const char *sql)
{
    static struct qres q;
    query(c, sql, &q);
    cr_assert_eq(q.err, 0, "%s: %s (%s)", sql, err_name(q.err), q.msg);
    return q.val[0][0];
}

/* Run sql until its first value is want (a replica catching up), or fail. */
static void query_until(struct pg_conn *c, const char *sql, const char *want)
{
    uint64_t deadline = mono_ms() + WAIT_MS;
    struct qres q;
    for (;;) {
        query(c, sql, &q);
        if (q.err == 0 && q.n_rows > 0 && strcmp(q.val[0][0], want) == 0) {
            return;
        }
        cr_assert_lt(mono_ms(), deadline, "%s: got \"%s\" (%s), want \"%s\"", sql, q.val[0][0],
                     q.msg, want);
        run_for(50);
    }
}

static struct pg_conn *conn_new(const char *conninfo, uint32_t timeout_ms)
{
    cr_assert_lt(n_conns, sizeof(conns) / sizeof(conns[0]));
    struct pg_conn *c = pg_conn_new(loop, "pg test", conninfo, timeout_ms);
    cr_assert_not_null(c);
    conns[n_conns++] = c;
    return c;
}

/* A superuser connection to p over its socket with its own timeout. */
/* A connection like a client's: superuser over the socket, but with the server's
 * synchronous_commit (keel's own connection commits locally; the last keyword wins). */
static struct pg_conn *admin_conn(struct pg_inst *p, uint32_t timeout_ms)
{
    char ci[1024];
    cr_assert_eq(pg_inst_conninfo(p, ci, sizeof(ci)), 0);
    cr_assert_eq(pg_conninfo_add(ci, sizeof(ci), "options", "-c synchronous_commit=on"), 0);
    return conn_new(ci, timeout_ms);
}

struct status_res {
    bool is_done;
    int rc;
    char reason[256];
    struct pg_status st;
};

static void on_status(void *data, int rc, const char *reason, const struct pg_status *st)
{
    struct status_res *s = data;
    s->is_done = true;
    s->rc = rc;
    (void)snprintf(s->reason, sizeof(s->reason), "%s", reason);
    if (st != NULL) {
        s->st = *st;
    }
}

static struct pg_status status_of(struct pg_inst *p)
{
    struct status_res s = {0};
    cr_assert_eq(pg_status_query(pg_inst_conn(p), on_status, &s), 0);
    cr_assert(run_until(&s.is_done, WAIT_MS), "no status");
    cr_assert_eq(s.rc, 0, "status: %s", s.reason);
    return s.st;
}

/* ------------------------------------------------------------------------------------------
 * Instances
 * ------------------------------------------------------------------------------------------ */

struct exit_seen {
    int n;
    int wstatus;
    bool is_requested;
};
static struct exit_seen exits[MAX_INSTS];

static void on_inst_exit(void *data, int wstatus, bool is_requested)
{
    struct exit_seen *e = data;
    e->n++;
    e->wstatus = wstatus;
    e->is_requested = is_requested;
}

static uint16_t free_port(const char *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_neq(fd, -1);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    cr_assert_eq(inet_pton(AF_INET, addr, &sa.sin_addr), 1);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind %s: %s", addr,
                 strerror(errno));
    socklen_t len = sizeof(sa);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static const char *const cidrs[] = {"127.0.0.0/8"};
static const char repl_password[] = "s3cret 'pw\\";

/* A new instance NAME at addr on a free port, its data in tmp/NAME. */
static struct pg_inst *inst_new(const char *name, const char *addr, uint16_t *port)
{
    char datadir[128];
    (void)snprintf(datadir, sizeof(datadir), "%s/%s", tmp, name);
    *port = free_port(addr);
    const char *const settings[] = {"shared_buffers = '16MB'", "max_connections = 30"};
    struct pg_inst_conf c = {.name = name,
                             .datadir = datadir,
                             .socket_dir = tmp,
                             .listen_addr = addr,
                             .port = *port,
                             .repl_password = repl_password,
                             .allowed_cidrs = cidrs,
                             .n_cidrs = 1,
                             .settings = settings,
                             .n_settings = 2,
                             .start_timeout_ms = 30000,
                             .stop_timeout_ms = 10000,
                             .tool_timeout_ms = 60000,
                             .is_nosync = true};
    struct errbuf eb = {.msg = ""};
    struct pg_inst *p = NULL;
    int rc = pg_inst_new(loop, &c, &p, &eb);
    cr_assert_eq(rc, 0, "pg_inst_new: %s", eb.msg);
    pg_inst_set_on_exit(p, on_inst_exit, &exits[n_insts]);
    insts[n_insts++] = p;
    return p;
}

static struct pg_inst *primary_new(const char *name, const char *addr, uint16_t *port)
{
    struct pg_inst *p = inst_new(name, addr, port);
    struct done d = {0};
    cr_assert_eq(pg_inst_init_primary(p, on_done, &d), 0);
    expect_done(&d, "init primary");
    cr_assert_eq(pg_inst_state(p), PG_INST_RUNNING);
    cr_assert_not(pg_inst_is_standby(p));
    return p;
}

static struct pg_inst *replica_new(const char *name, const char *addr, uint16_t *port,
                                   const char *primary_addr, uint16_t primary_port,
                                   const char *slot)
{
    struct pg_inst *p = inst_new(name, addr, port);
    struct done d = {0};
    cr_assert_eq(pg_inst_init_replica(p, primary_addr, primary_port, slot, on_done, &d), 0);
    expect_done(&d, "init replica");
    cr_assert_eq(pg_inst_state(p), PG_INST_RUNNING);
    cr_assert(pg_inst_is_standby(p));
    return p;
}

static void inst_stop(struct pg_inst *p, enum pg_stop_mode mode)
{
    struct done d = {0};
    cr_assert_eq(pg_inst_stop(p, mode, on_done, &d), 0);
    expect_done(&d, "stop");
    cr_assert_eq(pg_inst_state(p), PG_INST_STOPPED);
}

static void inst_start(struct pg_inst *p)
{
    struct done d = {0};
    cr_assert_eq(pg_inst_start(p, on_done, &d), 0);
    expect_done(&d, "start");
    cr_assert_eq(pg_inst_state(p), PG_INST_RUNNING);
}

/* ------------------------------------------------------------------------------------------
 * Suite setup and cleanup
 * ------------------------------------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    (void)(flag == FTW_DP ? rmdir(path) : unlink(path)); /* best effort */
    return 0;
}

/* A test killed by Criterion's timeout gets no fini (its postmasters die with it, through
 * PR_SET_PDEATHSIG): remove the directories of test processes that no longer exist. */
static void remove_stale_dirs(void)
{
    DIR *d = opendir("/tmp");
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        int pid = 0;
        char path[300];
        if (sscanf(e->d_name, "keel-pgtest-%d-", &pid) == 1 && pid > 0 && kill(pid, 0) == -1 &&
            errno == ESRCH) {
            (void)snprintf(path, sizeof(path), "/tmp/%s", e->d_name);
            (void)nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
}

static void setup(void)
{
    log_set_level(LOG_LEVEL_INFO);
    loop = ev_loop_new();
    cr_assert_not_null(loop);
    remove_stale_dirs();
    (void)snprintf(tmp, sizeof(tmp), "/tmp/keel-pgtest-%d-XXXXXX", (int)getpid());
    cr_assert_not_null(mkdtemp(tmp));
    struct passwd *pw = getpwnam("postgres");
    cr_assert_not_null(pw, "these tests need the postgres user (Debian's postgresql-15)");
    cr_assert_eq(chown(tmp, pw->pw_uid, pw->pw_gid), 0);
    n_insts = 0;
    n_conns = 0;
    memset(exits, 0, sizeof(exits));
}

static void teardown(void)
{
    for (size_t i = 0; i < n_conns; i++) {
        pg_conn_free(conns[i]);
    }
    /* Immediate stops of whatever runs, all at once, then SIGKILL (pg_inst_free) of what
     * did not exit. */
    struct done d[MAX_INSTS] = {0};
    for (size_t i = 0; i < n_insts; i++) {
        if (pg_inst_stop(insts[i], PG_STOP_IMMEDIATE, on_done, &d[i]) != 0) {
            d[i].is_done = true;
        }
    }
    for (size_t i = 0; i < n_insts; i++) {
        (void)run_until(&d[i].is_done, 10000);
    }
    for (size_t i = 0; i < n_insts; i++) {
        pg_inst_free(insts[i]);
    }
    run_for(20); /* the frees complete at the end of an iteration */
    if (tmp[0] != '\0') {
        (void)nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    ev_loop_free(loop);
}

TestSuite(pg_inst, .init = setup, .fini = teardown, .timeout = 60);

/* ------------------------------------------------------------------------------------------
 * A primary
 * ------------------------------------------------------------------------------------------ */

static uid_t uid_of_pid(pid_t pid)
{
    char path[64], line[256];
    (void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    uid_t uid = (uid_t)-1;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned a, b;
        if (sscanf(line, "Uid: %u %u", &a, &b) == 2) {
            uid = (uid_t)b; /* the effective uid */
        }
    }
    fclose(f);
    return uid;
}

Test(pg_inst, primary_bootstrap_queries_and_access)
{
    uint16_t port;
    struct pg_inst *p = primary_new("a", "127.0.0.2", &port);
    struct passwd *pw = getpwnam("postgres");
    /* Runs as postgres; the data directory is postgres' and 0700. */
    cr_assert_eq(uid_of_pid(pg_inst_pid(p)), pw->pw_uid);
    struct stat st;
    char path[256];
    (void)snprintf(path, sizeof(path), "%s/a", tmp);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_uid, pw->pw_uid);
    cr_assert_eq(st.st_mode & 0777, 0700);
    (void)snprintf(path, sizeof(path), "%s/a/postgresql.base.conf", tmp);
    cr_assert_eq(stat(path, &st), 0, "initdb's settings kept");

    /* The local superuser connection: DDL, writes, reads, NULLs, several statements. */
    struct pg_conn *c = pg_inst_conn(p);
    cr_assert_str_eq(query_ok(c, "SELECT current_user"), "postgres");
    cr_assert_str_eq(query_ok(c, "SHOW wal_level"), "replica");
    cr_assert_str_eq(query_ok(c, "SHOW wal_log_hints"), "on");
    cr_assert_str_eq(query_ok(c, "SHOW listen_addresses"), "127.0.0.2");
    cr_assert_str_eq(query_ok(c, "SHOW shared_buffers"), "16MB"); /* a conf setting */
    query_ok(c, "CREATE TABLE t (id int PRIMARY KEY, v text)");
    struct qres q;
    query(c, "INSERT INTO t VALUES (1, 'one'), (2, NULL)", &q);
    cr_assert_eq(q.err, 0, "%s", q.msg);
    cr_assert_str_eq(q.cmd, "INSERT 0 2");
    query(c, "SELECT id, v FROM t ORDER BY id", &q);
    cr_assert_eq(q.n_rows, 2);
    cr_assert_eq(q.n_cols, 2);
    cr_assert_str_eq(q.val[0][1], "one");
    cr_assert(q.is_null[1][1]);
    cr_assert_not(q.is_null[1][0]);
    query(c, "SELECT 1; SELECT 2, 3", &q);
    cr_assert_eq(q.err, 0);
    cr_assert_str_eq(q.val[0][1], "3"); /* the last statement's result */

    /* SQL errors carry the message and SQLSTATE; the connection stays usable. */
    query(c, "SELEC 1", &q);
    cr_assert_eq(q.err, -EREMOTEIO);
    cr_assert_str_eq(q.sqlstate, "42601");
    cr_assert(strstr(q.msg, "syntax error") != NULL, "%s", q.msg);
    query(c, "INSERT INTO t VALUES (1, 'dup')", &q);
    cr_assert_eq(q.err, -EREMOTEIO);
    cr_assert_str_eq(q.sqlstate, "23505");
    cr_assert_str_eq(query_ok(c, "SELECT count(*) FROM t"), "2");

    /* TCP with SCRAM as the replication role (pg_hba.conf), and a wrong password. */
    char ci[512];
    (void)snprintf(ci, sizeof(ci),
                   "host=127.0.0.2 port=%u user=replicator dbname=postgres "
                   "password='s3cret \\'pw\\\\' gssencmode=disable",
                   port);
    struct pg_conn *tcp = conn_new(ci, 5000);
    cr_assert_str_eq(query_ok(tcp, "SELECT current_user"), "replicator");
    cr_assert_str_eq(query_ok(tcp, "SELECT rolreplication FROM pg_roles"
                                   " WHERE rolname = current_user"),
                     "t");
    (void)snprintf(ci, sizeof(ci),
                   "host=127.0.0.2 port=%u user=replicator dbname=postgres password=wrong "
                   "gssencmode=disable",
                   port);
    struct pg_conn *bad = conn_new(ci, 5000);
    query(bad, "SELECT 1", &q);
    cr_assert_eq(q.err, -ENOTCONN);
    cr_assert(strstr(q.msg, "password authentication failed") != NULL, "%s", q.msg);
    /* The password is stored as a SCRAM verifier. */
    cr_assert(strncmp(query_ok(c, "SELECT rolpassword FROM pg_authid"
                                  " WHERE rolname = 'replicator'"),
                      "SCRAM-SHA-256$", 14) == 0);

    /* Status of a lone primary. */
    struct pg_status s = status_of(p);
    cr_assert_not(s.is_in_recovery);
    cr_assert_gt(s.current_lsn, 0);
    cr_assert_eq(s.timeline, 1);
    cr_assert_eq(s.n_standbys, 0);
    cr_assert_str_eq(s.sync_names, "");

    /* A fast stop is clean and reported as requested; a start brings the data back. */
    inst_stop(p, PG_STOP_FAST);
    cr_assert_eq(exits[0].n, 1);
    cr_assert(exits[0].is_requested);
    cr_assert(WIFEXITED(exits[0].wstatus) && WEXITSTATUS(exits[0].wstatus) == 0);
    inst_start(p);
    cr_assert_str_eq(query_ok(c, "SELECT v FROM t WHERE id = 1"), "one");
}

/* ------------------------------------------------------------------------------------------
 * The loop never blocks; deadlines; cancellation
 * ------------------------------------------------------------------------------------------ */

static int ticks;

static void on_ticker(struct ev_loop *l, struct ev_timer *t)
{
    ticks++;
    ev_timer_start(l, t, 10);
}

static void free_conn_in_cb(void *data, const struct pg_result *r)
{
    struct qres *q = data;
    on_q(q, r);
    pg_conn_free(conns[--n_conns]); /* the connection of this very query */
}

Test(pg_inst, queries_never_block_the_loop)
{
    uint16_t port;
    struct pg_inst *p = primary_new("a", "127.0.0.3", &port);
    struct pg_conn *c = admin_conn(p, 5000);
    query_ok(c, "SELECT 1"); /* connected */

    /* A 1 s query: a 10 ms timer keeps firing meanwhile. */
    struct ev_timer ticker;
    ev_timer_init(&ticker, on_ticker, NULL, "test ticker");
    ticks = 0;
    ev_timer_start(loop, &ticker, 10);
    uint64_t t0 = mono_ms();
    struct qres q;
    query(c, "SELECT pg_sleep(1), 'slept'", &q);
    ev_timer_stop(loop, &ticker);
    cr_assert_eq(q.err, 0, "%s", q.msg);
    cr_assert_str_eq(q.val[0][1], "slept");
    cr_assert_geq(q.done_ms - t0, 1000);
    cr_assert_geq(ticks, 60, "only %d ticks of 10 ms during a 1 s query", ticks);

    /* Queued queries run in order; each reports on its own. */
    struct qres q1, q2, q3;
    query_start(c, "SELECT 'first'", &q1);
    query_start(c, "SELECT nonsense_column", &q2);
    query_start(c, "SELECT 'third'", &q3);
    cr_assert_eq(pg_conn_pending(c), 3);
    cr_assert(run_until(&q3.is_done, WAIT_MS));
    cr_assert(q1.is_done && q2.is_done);
    cr_assert_str_eq(q1.val[0][0], "first");
    cr_assert_eq(q2.err, -EREMOTEIO);
    cr_assert_str_eq(q2.sqlstate, "42703");
    cr_assert_str_eq(q3.val[0][0], "third");
    cr_assert_leq(q1.done_ms, q3.done_ms);

    /* A deadline: the query in flight fails at 300 ms, the connection is reopened for the
     * next one, the server ends the abandoned statement by itself. */
    t0 = mono_ms();
    cr_assert_eq(pg_query_ms(c, "SELECT pg_sleep(5)", 300, on_q, &q), 0);
    memset(&q, 0, sizeof(q));
    cr_assert(run_until(&q.is_done, WAIT_MS));
    cr_assert_eq(q.err, -KEEL_ETIMEDOUT, "%s", err_name(q.err));
    cr_assert_lt(q.done_ms - t0, 1500);
    cr_assert_geq(q.done_ms - t0, 300);
    cr_assert_str_eq(query_ok(c, "SELECT 'again'"), "again");

    /* Nothing listens: the query fails with -ENOTCONN, promptly. */
    char ci[256];
    (void)snprintf(ci, sizeof(ci), "host=127.0.0.3 port=%u user=x dbname=x gssencmode=disable",
                   free_port("127.0.0.3"));
    struct pg_conn *refused = conn_new(ci, 5000);
    query(refused, "SELECT 1", &q);
    cr_assert_eq(q.err, -ENOTCONN);
    cr_assert(strstr(q.msg, "refused") != NULL, "%s", q.msg);

    /* Freeing a connection cancels what it holds, with one callback each; a callback may
     * free its own connection. */
    struct pg_conn *doomed = admin_conn(p, 5000);
    query_start(doomed, "SELECT pg_sleep(10)", &q1);
    query_start(doomed, "SELECT 2", &q2);
    run_for(100);
    pg_conn_free(doomed);
    conns[--n_conns] = NULL;
    cr_assert(q1.is_done && q2.is_done);
    cr_assert_eq(q1.err, -ECANCELED);
    cr_assert_eq(q2.err, -ECANCELED);
    struct pg_conn *self = admin_conn(p, 5000);
    memset(&q1, 0, sizeof(q1));
    memset(&q2, 0, sizeof(q2));
    cr_assert_eq(pg_query(self, "SELECT 1", free_conn_in_cb, &q1), 0);
    cr_assert_eq(pg_query(self, "SELECT 2", on_q, &q2), 0);
    cr_assert(run_until(&q2.is_done, WAIT_MS));
    cr_assert_eq(q1.err, 0);
    cr_assert_eq(q2.err, -ECANCELED);
    cr_assert_eq(pg_query(c, "SELECT 1", on_q, &q), 0); /* others unaffected */
    memset(&q, 0, sizeof(q));
    cr_assert(run_until(&q.is_done, WAIT_MS));
    cr_assert_eq(q.err, 0);
}

/* ------------------------------------------------------------------------------------------
 * kill -9
 * ------------------------------------------------------------------------------------------ */

Test(pg_inst, kill_9_of_the_postmaster_is_reported)
{
    uint16_t port;
    struct pg_inst *p = primary_new("a", "127.0.0.4", &port);
    struct pg_conn *c = pg_inst_conn(p);
    query_ok(c, "CREATE TABLE k (id int)");
    query_ok(c, "INSERT INTO k VALUES (9)");
    pid_t pid = pg_inst_pid(p);
    cr_assert_gt(pid, 0);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    bool is_seen = false;
    uint64_t deadline = mono_ms() + WAIT_MS;
    while (exits[0].n == 0 && mono_ms() < deadline) {
        run_for(10);
    }
    is_seen = exits[0].n == 1;
    cr_assert(is_seen, "no exit callback");
    cr_assert_not(exits[0].is_requested);
    cr_assert(WIFSIGNALED(exits[0].wstatus) && WTERMSIG(exits[0].wstatus) == SIGKILL);
    cr_assert_eq(pg_inst_state(p), PG_INST_STOPPED);
    cr_assert_eq(pg_inst_pid(p), 0);
    cr_assert_str_eq(pg_inst_last_exit(p), "killed by signal 9 (SIGKILL)");
    /* The agent's answer, a start: crash recovery, the committed row is there. */
    inst_start(p);
    cr_assert_str_eq(query_ok(c, "SELECT id FROM k"), "9");
}

/* ------------------------------------------------------------------------------------------
 * Replication
 * ------------------------------------------------------------------------------------------ */

static struct pg_standby *find_standby(struct pg_status *s, const char *name)
{
    for (uint32_t i = 0; i < s->n_standbys; i++) {
        if (strcmp(s->standbys[i].name, name) == 0) {
            return &s->standbys[i];
        }
    }
    return NULL;
}

/* Wait until primary p reports standby name with the given sync_state (NULL: any) and
 * streaming. */
static struct pg_standby wait_standby(struct pg_inst *p, const char *name, const char *sync)
{
    uint64_t deadline = mono_ms() + WAIT_MS;
    for (;;) {
        struct pg_status s = status_of(p);
        struct pg_standby *b = find_standby(&s, name);
        if (b != NULL && strcmp(b->state, "streaming") == 0 &&
            (sync == NULL || strcmp(b->sync_state, sync) == 0)) {
            return *b;
        }
        cr_assert_lt(mono_ms(), deadline, "standby %s not streaming (%s)", name,
                     b != NULL ? b->sync_state : "absent");
        run_for(50);
    }
}

Test(pg_inst, replica_streams_through_a_slot)
{
    uint16_t pa, pb;
    struct pg_inst *a = primary_new("a", "127.0.0.5", &pa);
    struct pg_conn *ca = pg_inst_conn(a);
    struct done d = {0};
    cr_assert_eq(pg_slot_create(ca, "b", on_done, &d), 0);
    expect_done(&d, "slot");
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pg_slot_create(ca, "b", on_done, &d), 0); /* idempotent */
    expect_done(&d, "slot again");
    cr_assert_eq(pg_slot_create(ca, "Bad-Name", on_done, &d), -EINVAL);
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pg_slot_create(ca, "spare", on_done, &d), 0);
    expect_done(&d, "spare slot");
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pg_slot_drop(ca, "spare", on_done, &d), 0);
    expect_done(&d, "drop");
    cr_assert_str_eq(query_ok(ca, "SELECT string_agg(slot_name, ',') FROM pg_replication_slots"),
                     "b");
    query_ok(ca, "CREATE TABLE r (id int PRIMARY KEY, v text)");
    query_ok(ca, "INSERT INTO r VALUES (1, 'before the backup')");

    struct pg_inst *b = replica_new("b", "127.0.0.6", &pb, "127.0.0.5", pa, "b");
    struct pg_conn *cb = pg_inst_conn(b);
    cr_assert_str_eq(query_ok(cb, "SELECT v FROM r WHERE id = 1"), "before the backup");
    cr_assert_str_eq(query_ok(cb, "SELECT pg_is_in_recovery()"), "t");
    cr_assert_str_eq(query_ok(cb, "SHOW listen_addresses"), "127.0.0.6"); /* its own conf */

    /* A row written on the primary appears on the replica. */
    query_ok(ca, "INSERT INTO r VALUES (2, 'streamed')");
    query_until(cb, "SELECT coalesce((SELECT v FROM r WHERE id = 2), 'missing')", "streamed");

    /* The primary sees it in pg_stat_replication, by application_name, through the slot. */
    struct pg_standby sb = wait_standby(a, "b", "async");
    cr_assert(strncmp(sb.addr, "127.", 4) == 0, "%s", sb.addr); /* the walreceiver's source */
    cr_assert_gt(sb.replay_lsn, 0);
    cr_assert_str_eq(query_ok(ca, "SELECT active FROM pg_replication_slots"
                                  " WHERE slot_name = 'b'"),
                     "t");
    /* The replica's status: in recovery, positions and timeline. */
    struct pg_status s = status_of(b);
    cr_assert(s.is_in_recovery);
    cr_assert_eq(s.current_lsn, 0);
    cr_assert_gt(s.receive_lsn, 0);
    cr_assert_gt(s.replay_lsn, 0);
    cr_assert_eq(s.received_tli, 1);
    struct pg_status sa = status_of(a);
    cr_assert_geq(pg_lsn_cmp(sa.current_lsn, s.replay_lsn), 0);

    /* A replica cannot write. */
    struct qres q;
    query(cb, "INSERT INTO r VALUES (3, 'no')", &q);
    cr_assert_eq(q.err, -EREMOTEIO);
    cr_assert_str_eq(q.sqlstate, "25006"); /* read_only_sql_transaction */
}

Test(pg_inst, synchronous_commit_waits_for_the_standby)
{
    uint16_t pa, pb;
    struct pg_inst *a = primary_new("a", "127.0.0.7", &pa);
    struct pg_inst *b = replica_new("b", "127.0.0.8", &pb, "127.0.0.7", pa, NULL);
    struct pg_conn *ca = pg_inst_conn(a);
    query_ok(ca, "CREATE TABLE s (id int PRIMARY KEY)");
    struct done d = {0};
    cr_assert_eq(pg_sync_set(ca, "ANY 1 (b)", on_done, &d), 0);
    expect_done(&d, "sync set");
    (void)wait_standby(a, "b", "quorum");
    cr_assert_str_eq(status_of(a).sync_names, "ANY 1 (b)");
    query_ok(ca, "INSERT INTO s VALUES (1)"); /* the standby is there: it returns */

    /* The standby stops: a commit does not return. */
    inst_stop(b, PG_STOP_FAST);
    struct pg_conn *hasty = admin_conn(a, 1000);
    struct pg_conn *patient = admin_conn(a, 30000);
    struct qres q1, q2;
    query_start(hasty, "INSERT INTO s VALUES (2)", &q1);
    query_start(patient, "INSERT INTO s VALUES (3)", &q2);
    cr_assert(run_until(&q1.is_done, WAIT_MS));
    cr_assert_eq(q1.err, -KEEL_ETIMEDOUT, "%s: %s", err_name(q1.err), q1.msg);
    run_for(500);
    cr_assert_not(q2.is_done, "a synchronous commit returned without its standby");
    query_ok(ca, "CREATE TABLE keel_own (id int)"); /* keel's connection never waits */

    /* The standby comes back: the commit returns, and the row is on the standby. */
    inst_start(b);
    cr_assert(run_until(&q2.is_done, WAIT_MS));
    cr_assert_eq(q2.err, 0, "%s", q2.msg);
    cr_assert_str_eq(q2.cmd, "INSERT 0 1");
    query_until(pg_inst_conn(b), "SELECT count(*) FROM s WHERE id = 3", "1");

    /* Back to asynchronous: commits no longer wait. */
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pg_sync_set(ca, "", on_done, &d), 0);
    expect_done(&d, "sync reset");
    inst_stop(b, PG_STOP_FAST);
    query_ok(ca, "INSERT INTO s VALUES (4)");
}

Test(pg_inst, promotion_then_the_old_primary_rejoins_with_rewind)
{
    uint16_t pa, pb;
    struct pg_inst *a = primary_new("a", "127.0.0.9", &pa);
    struct pg_conn *ca = pg_inst_conn(a);
    query_ok(ca, "CREATE TABLE f (id int PRIMARY KEY, v text)");
    query_ok(ca, "INSERT INTO f VALUES (1, 'common')");
    struct pg_inst *b = replica_new("b", "127.0.0.10", &pb, "127.0.0.9", pa, NULL);
    struct pg_conn *cb = pg_inst_conn(b);
    query_until(cb, "SELECT count(*) FROM f", "1");

    /* Promote the replica and write to it. */
    struct done d = {0};
    cr_assert_eq(pg_inst_promote(b, on_done, &d), 0);
    expect_done(&d, "promote");
    cr_assert_not(pg_inst_is_standby(b));
    struct pg_status sb = status_of(b);
    cr_assert_not(sb.is_in_recovery);
    cr_assert_eq(sb.timeline, 2, "the CHECKPOINT after the promotion records timeline 2");
    query_ok(cb, "INSERT INTO f VALUES (2, 'written on the new primary')");
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pg_inst_promote(b, on_done, &d), 0);
    cr_assert(run_until(&d.is_done, WAIT_MS));
    cr_assert_eq(d.rc, -EINVAL, "promoting a primary: %s", d.reason);

    /* The old primary, isolated, still takes writes: it diverges. */
    query_ok(ca, "INSERT INTO f VALUES (3, 'lost on the old primary')");
    query_ok(ca, "CHECKPOINT");

    /* It follows the new primary: stop, pg_rewind, standby settings, start. */
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pg_inst_follow(a, "127.0.0.10", pb, NULL, on_done, &d), 0);
    expect_done(&d, "follow");
    cr_assert(pg_inst_is_standby(a));
    cr_assert(exits[0].is_requested);
    cr_assert_str_eq(query_ok(ca, "SELECT pg_is_in_recovery()"), "t");
    query_until(ca, "SELECT string_agg(id::text, ',' ORDER BY id) FROM f", "1,2");
    query_ok(cb, "INSERT INTO f VALUES (4, 'streamed to the old primary')");
    query_until(ca, "SELECT string_agg(id::text, ',' ORDER BY id) FROM f", "1,2,4");
    struct pg_standby sa = wait_standby(b, "a", NULL);
    cr_assert(strncmp(sa.addr, "127.", 4) == 0, "%s", sa.addr);
    struct pg_status s = status_of(a);
    cr_assert_eq(s.received_tli, 2);
    cr_assert_str_eq(query_ok(ca, "SHOW listen_addresses"), "127.0.0.9"); /* not b's */
}

Test(pg_inst, demote_fences_read_only_and_control_file)
{
    uint16_t pa, pb;
    struct pg_inst *a = primary_new("a", "127.0.0.14", &pa);
    struct pg_conn *ca = pg_inst_conn(a);
    /* the application role and database: created once, then idempotent */
    for (int i = 0; i < 2; i++) {
        struct done d = {0};
        cr_assert_eq(pg_app_setup(ca, "shop-app", "pw1", on_done, &d), 0);
        cr_assert(run_until(&d.is_done, WAIT_MS));
        cr_assert_eq(d.rc, 0, "%s", d.reason);
    }
    cr_assert_str_eq(query_ok(ca, "SELECT pg_get_userbyid(datdba) FROM pg_database"
                                  " WHERE datname = 'shop-app'"),
                     "shop-app");
    query_ok(ca, "CREATE TABLE w (id int)");
    query_ok(ca, "INSERT INTO w VALUES (1)");
    struct pg_inst *b = replica_new("b", "127.0.0.15", &pb, "127.0.0.14", pa, NULL);
    query_until(pg_inst_conn(b), "SELECT count(*) FROM w", "1");
    (void)wait_standby(a, "b", NULL); /* streaming (the row came with the base backup) */

    /* A clean stop leaves the shutdown checkpoint in pg_control; the replica has it. */
    inst_stop(a, PG_STOP_FAST);
    struct pg_control ctl;
    cr_assert_eq(pg_inst_read_control(a, &ctl), 0);
    cr_assert_eq(ctl.state, PG_CONTROL_SHUT_DOWN);
    cr_assert_gt(ctl.checkpoint_lsn, 0);
    struct pg_status sb = status_of(b);
    cr_assert_gt(sb.receive_lsn, ctl.checkpoint_lsn, "the standby got the shutdown checkpoint");
    inst_start(a);

    /* Demote: read-only, following nobody; reads work, writes are refused. */
    struct done d = {0};
    cr_assert_eq(pg_inst_demote(a, on_done, &d), 0);
    expect_done(&d, "demote");
    cr_assert(pg_inst_is_standby(a));
    cr_assert_str_eq(query_ok(ca, "SELECT pg_is_in_recovery()"), "t");
    cr_assert_str_eq(query_ok(ca, "SELECT count(*) FROM w"), "1");
    struct qres q;
    query(ca, "INSERT INTO w VALUES (2)", &q);
    cr_assert_eq(q.err, -EREMOTEIO);
    cr_assert_str_eq(q.sqlstate, "25006", "read-only transaction: %s", q.msg);
    /* and it can be promoted again */
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pg_inst_promote(a, on_done, &d), 0);
    expect_done(&d, "promote");
    query_ok(ca, "INSERT INTO w VALUES (2)");
}

/* Whether directory path exists and holds at least one entry. */
static bool dir_has_entries(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        return false;
    }
    bool has = false;
    struct dirent *e;
    while (!has && (e = readdir(d)) != NULL) {
        has = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    }
    (void)closedir(d);
    return has;
}

Test(pg_inst, stop_cancels_and_bad_uses)
{
    uint16_t port;
    struct pg_inst *p = inst_new("a", "127.0.0.11", &port);
    struct done d1 = {0}, d2 = {0}, d3 = {0};
    /* Never initialised: a start fails. */
    cr_assert_eq(pg_inst_start(p, on_done, &d1), 0);
    cr_assert(run_until(&d1.is_done, WAIT_MS));
    cr_assert_eq(d1.rc, -ENOENT, "%s", d1.reason);
    /* One operation at a time; a stop cancels the running one (initdb is killed). */
    memset(&d1, 0, sizeof(d1));
    cr_assert_eq(pg_inst_init_primary(p, on_done, &d1), 0);
    cr_assert_eq(pg_inst_promote(p, on_done, &d3), -EBUSY);
    /* Stop only once initdb has written something: a fixed 100 ms was not always enough on
     * a loaded machine, and a stop before the directory exists leaves nothing to refuse. */
    char datadir[128];
    (void)snprintf(datadir, sizeof(datadir), "%s/a", tmp);
    uint64_t deadline = mono_ms() + WAIT_MS;
    while (!dir_has_entries(datadir) && mono_ms() < deadline) {
        run_for(10);
    }
    cr_assert(dir_has_entries(datadir), "initdb wrote nothing in %s", datadir);
    cr_assert_eq(pg_inst_state(p), PG_INST_INITDB);
    cr_assert_eq(pg_inst_stop(p, PG_STOP_FAST, on_done, &d2), 0);
    cr_assert_eq(pg_inst_stop(p, PG_STOP_IMMEDIATE, on_done, &d3), -EALREADY);
    cr_assert_not(d1.is_done, "callbacks never run within the call");
    cr_assert(run_until(&d2.is_done, WAIT_MS));
    cr_assert_eq(d1.rc, -ECANCELED);
    cr_assert_eq(d2.rc, 0, "%s", d2.reason);
    cr_assert_eq(pg_inst_state(p), PG_INST_STOPPED);
    /* The half-made data directory is refused by the next bootstrap. */
    memset(&d1, 0, sizeof(d1));
    cr_assert_eq(pg_inst_init_primary(p, on_done, &d1), 0);
    cr_assert(run_until(&d1.is_done, WAIT_MS));
    cr_assert_eq(d1.rc, -EEXIST, "%s", d1.reason);
    /* A bad configuration is refused with a reason. */
    struct pg_inst_conf c = {.name = "x",
                             .datadir = "relative",
                             .listen_addr = "127.0.0.1",
                             .port = 1,
                             .repl_password = "p"};
    struct errbuf eb;
    struct pg_inst *bad = NULL;
    cr_assert_eq(pg_inst_new(loop, &c, &bad, &eb), -EINVAL);
    cr_assert_null(bad);
    cr_assert(strstr(eb.msg, "absolute") != NULL, "%s", eb.msg);
    const char *evil[] = {"10.0.0.0/8 trust\nhost all all 0.0.0.0/0"};
    c = (struct pg_inst_conf){.name = "x",
                              .datadir = "/x",
                              .listen_addr = "127.0.0.1",
                              .port = 1,
                              .repl_password = "p",
                              .allowed_cidrs = evil,
                              .n_cidrs = 1};
    cr_assert_eq(pg_inst_new(loop, &c, &bad, &eb), -EINVAL);
    c.allowed_cidrs = NULL;
    c.n_cidrs = 0;
    c.user = "nobody_such_user_keel";
    cr_assert_eq(pg_inst_new(loop, &c, &bad, &eb), -EINVAL);
    cr_assert(strstr(eb.msg, "no such user") != NULL, "%s", eb.msg);
}

Test(pg_inst, a_crashed_old_primary_rejoins)
{
    uint16_t pa, pb;
    struct pg_inst *a = primary_new("a", "127.0.0.12", &pa);
    struct pg_conn *ca = pg_inst_conn(a);
    query_ok(ca, "CREATE TABLE c (id int PRIMARY KEY)");
    struct pg_inst *b = replica_new("b", "127.0.0.13", &pb, "127.0.0.12", pa, NULL);
    struct pg_conn *cb = pg_inst_conn(b);
    /* The standby stops: the primary takes a write it never sends, then dies. */
    inst_stop(b, PG_STOP_FAST);
    query_ok(ca, "INSERT INTO c VALUES (1)");
    cr_assert_eq(kill(pg_inst_pid(a), SIGKILL), 0);
    uint64_t deadline = mono_ms() + WAIT_MS;
    while (pg_inst_state(a) != PG_INST_STOPPED && mono_ms() < deadline) {
        run_for(10);
    }
    cr_assert_eq(pg_inst_state(a), PG_INST_STOPPED);
    cr_assert_not(exits[0].is_requested);
    /* Failover: b starts and is promoted, and takes writes. */
    inst_start(b);
    struct done d = {0};
    cr_assert_eq(pg_inst_promote(b, on_done, &d), 0);
    expect_done(&d, "promote");
    query_ok(cb, "INSERT INTO c VALUES (2)");
    /* a, not shut down cleanly, follows: pg_rewind runs its crash recovery first. */
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pg_inst_follow(a, "127.0.0.13", pb, NULL, on_done, &d), 0);
    expect_done(&d, "follow");
    query_until(ca, "SELECT string_agg(id::text, ',' ORDER BY id) FROM c", "2");
    cr_assert_str_eq(query_ok(ca, "SELECT pg_is_in_recovery()"), "t");
}

/* Issue 10's outside run: a fenced primary (standby.signal written for its read-only
 * restart) whose restart failed is left "in production" with standby.signal. pg_rewind's own
 * crash recovery (single-user mode) refuses standby mode, so the node never came back. keel
 * runs crash recovery itself, without the signal files, then pg_rewind. */
Test(pg_inst, a_crashed_primary_with_standby_signal_rejoins)
{
    uint16_t pa, pb;
    struct pg_inst *a = primary_new("a", "127.0.0.14", &pa);
    struct pg_conn *ca = pg_inst_conn(a);
    query_ok(ca, "CREATE TABLE c (id int PRIMARY KEY)");
    struct pg_inst *b = replica_new("b", "127.0.0.15", &pb, "127.0.0.14", pa, NULL);
    struct pg_conn *cb = pg_inst_conn(b);
    inst_stop(b, PG_STOP_FAST);
    query_ok(ca, "INSERT INTO c VALUES (1)");
    cr_assert_eq(kill(pg_inst_pid(a), SIGKILL), 0);
    uint64_t deadline = mono_ms() + WAIT_MS;
    while (pg_inst_state(a) != PG_INST_STOPPED && mono_ms() < deadline) {
        run_for(10);
    }
    cr_assert_eq(pg_inst_state(a), PG_INST_STOPPED);
    cr_assert_eq(pg_datadir_set_signals(&a->dd, true), 0); /* what the fence wrote */
    struct pg_control ctl;
    cr_assert_eq(pg_inst_read_control(a, &ctl), 0);
    cr_assert_eq(ctl.state, PG_CONTROL_IN_PRODUCTION);
    inst_start(b);
    struct done d = {0};
    cr_assert_eq(pg_inst_promote(b, on_done, &d), 0);
    expect_done(&d, "promote");
    query_ok(cb, "INSERT INTO c VALUES (2)");
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pg_inst_follow(a, "127.0.0.15", pb, NULL, on_done, &d), 0);
    expect_done(&d, "follow");
    query_until(ca, "SELECT string_agg(id::text, ',' ORDER BY id) FROM c", "2");
    cr_assert_str_eq(query_ok(ca, "SELECT pg_is_in_recovery()"), "t");
}

/* An illegal transition is refused (core/fsm.h): the state stays, the count goes up. */
Test(pg_inst, an_illegal_transition_is_refused)
{
    cr_assert_eq(setenv("KEEL_FSM_STRICT", "0", 1), 0);
    struct pg_inst *p = calloc(1, sizeof(*p));
    cr_assert_not_null(p);
    (void)snprintf(p->ctx, sizeof(p->ctx), "pg test");
    p->state = PG_INST_STOPPED;
    inst_set_state(p, PG_INST_STOPPING, "test");
    cr_assert_eq(p->state, PG_INST_STOPPED);
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_PG), 1);
    inst_set_state(p, PG_INST_STARTING, "test");
    cr_assert_eq(p->state, PG_INST_STARTING, "a legal one is made");
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_PG), 1);
    free(p);
}

/* ------------------------------------------------------------------------------------------
 * The replication password
 * ------------------------------------------------------------------------------------------ */

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_geq(fputs(text, f), 0);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(chmod(path, mode), 0);
}

static bool file_has(const char *path, const char *s, size_t len)
{
    static char text[65536];
    int fd = open(path, O_RDONLY);
    if (fd == -1) {
        return false;
    }
    ssize_t n = read(fd, text, sizeof(text));
    close(fd);
    return n > 0 && memmem(text, (size_t)n, s, len) != NULL;
}

/* pg_basebackup (a stand-in in a bindir of the test's, run as the postgres user like the
 * real one) gets the replication password in its own environment, PGPASSWORD, and nowhere
 * else: not on its command line (/proc/PID/cmdline, which every user can read), not in the
 * conninfo, and keel's copy of the environment is wiped as soon as it runs, not when it
 * exits minutes later. */
Test(pg_inst, the_replication_password_is_in_the_tools_environment_only)
{
    char bindir[128], out[128], script[1024], path[160], datadir[128];
    (void)snprintf(bindir, sizeof(bindir), "%s/bin", tmp);
    (void)snprintf(out, sizeof(out), "%s/out", tmp);
    (void)snprintf(datadir, sizeof(datadir), "%s/fake", tmp);
    struct passwd *pw = getpwnam("postgres");
    cr_assert_not_null(pw);
    cr_assert_eq(mkdir(bindir, 0755), 0);
    cr_assert_eq(mkdir(out, 0700), 0);
    cr_assert_eq(chown(out, pw->pw_uid, pw->pw_gid), 0);
    (void)snprintf(script, sizeof(script),
                   "#!/bin/sh\n"
                   "cat /proc/$$/cmdline > %s/cmdline\n"
                   "cat /proc/$$/environ > %s/environ\n"
                   "echo ready > %s/ready\n"
                   "while [ ! -e %s/go ]; do sleep 0.02; done\n"
                   "echo 'pg_basebackup: error: a stand-in' >&2\n"
                   "exit 1\n",
                   out, out, out, out);
    (void)snprintf(path, sizeof(path), "%s/pg_basebackup", bindir);
    write_text(path, script, 0755);
    struct pg_inst_conf c = {.name = "fake",
                             .bindir = bindir,
                             .datadir = datadir,
                             .socket_dir = tmp,
                             .listen_addr = "127.0.0.1",
                             .port = 1,
                             .repl_password = repl_password,
                             .allowed_cidrs = cidrs,
                             .n_cidrs = 1,
                             .tool_timeout_ms = 20000,
                             .is_nosync = true};
    struct errbuf eb = {.msg = ""};
    struct pg_inst *p = NULL;
    cr_assert_eq(pg_inst_new(loop, &c, &p, &eb), 0, "pg_inst_new: %s", eb.msg);
    insts[n_insts++] = p;
    struct done d = {0};
    cr_assert_eq(pg_inst_init_replica(p, "127.0.0.1", 1, NULL, on_done, &d), 0);
    (void)snprintf(path, sizeof(path), "%s/ready", out);
    uint64_t deadline = mono_ms() + WAIT_MS;
    while (access(path, F_OK) != 0 && !d.is_done && mono_ms() < deadline) {
        run_for(20);
    }
    cr_assert_not(d.is_done, "init replica ended early: %s", d.reason);
    cr_assert_eq(pg_inst_state(p), PG_INST_BASEBACKUP);
    /* While it runs: keel's copy of its spec no longer holds the password. */
    const struct child *ch = &p->child._child;
    size_t size = 0;
    cr_assert_not_null(ch->_spec_mem);
    memcpy(&size, ch->_spec_mem, sizeof(size));
    size_t pwlen = strlen(repl_password);
    cr_assert_null(memmem(ch->_spec_mem, size, repl_password, pwlen));
    cr_assert_not_null(memmem(ch->_spec_mem, size, "keel_basebackup", 15), "argv is kept");
    /* The process: the password in its environment, as PGPASSWORD, not in its arguments. */
    char want[300];
    int n = snprintf(want, sizeof(want), "PGPASSWORD=%s", repl_password);
    (void)snprintf(path, sizeof(path), "%s/environ", out);
    cr_assert(file_has(path, want, (size_t)n + 1), "PGPASSWORD with its NUL");
    (void)snprintf(path, sizeof(path), "%s/cmdline", out);
    cr_assert(file_has(path, "--no-password", 13));
    cr_assert(file_has(path, "keel_basebackup", 15), "the conninfo is there");
    cr_assert_not(file_has(path, repl_password, pwlen), "the password is on the command line");
    cr_assert_not(file_has(path, "password=", 9), "a password in the conninfo");
    (void)snprintf(path, sizeof(path), "%s/go", out);
    write_text(path, "", 0644);
    cr_assert(run_until(&d.is_done, WAIT_MS), "the stand-in did not end");
    cr_assert_neq(d.rc, 0, "a stand-in cannot make a replica");
}

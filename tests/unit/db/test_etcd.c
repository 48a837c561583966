/* SPDX-License-Identifier: MIT */
/* Unit tests of db/etcd.c against a real etcd (/usr/bin/etcd, 3.4): one etcd process for
 * the whole binary, started before the tests (ReportHook PRE_ALL) on free loopback ports
 * with a temporary data directory, killed and removed after (POST_ALL, and PDEATHSIG if the
 * runner dies). Each test drives its own client on its own event loop until the callbacks
 * fire, with keys under its own prefix (tests run in parallel). Dead endpoints are closed
 * ports; a hung server is a listening socket that never accepts; a hung connect is a
 * listening socket whose backlog is full, so that the kernel drops the SYNs. */
#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include "db/etcd.c"

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------
 * The etcd process (runner process only)
 * ------------------------------------------------------------------------------------------ */

#define ETCD_ENV "KEEL_TEST_ETCD_URL"

static pid_t etcd_pid = -1;
static char etcd_dir[256];

/* A port that was free a moment ago. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    if (fd == -1 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
        return -1;
    }
    close(fd);
    return ntohs(sin.sin_port);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void on_probe(void *data, const struct etcd_result *res)
{
    *(int *)data = res->err == 0 ? 1 : -1;
}

static void on_probe_timer(struct ev_loop *loop, struct ev_timer *t)
{
    (void)t;
    ev_loop_stop(loop);
}

/* Whether 2 s have passed since start (CLOCK_MONOTONIC). */
static bool probe_expired(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000 > 2000;
}

/* Poll etcd with our own client until a put succeeds (at most 15 s of attempts). */
static bool etcd_wait_ready(const char *url)
{
    struct ev_loop *loop = ev_loop_new();
    struct etcd *e = etcd_new(loop, &url, 1, 500, NULL);
    bool ok = false;
    for (int i = 0; i < 150 && !ok && e != NULL; i++) {
        int result = 0;
        if (etcd_put(e, "/probe", "1", 1, 0, on_probe, &result) != 0) {
            break;
        }
        /* Each probe has its own deadline: a client whose request never completes (etcd
         * missing, or starting on a loaded machine) hung the whole runner here. */
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        while (result == 0 && !probe_expired(&start)) {
            struct ev_timer t;
            ev_timer_init(&t, on_probe_timer, NULL, "probe");
            ev_timer_start(loop, &t, 20);
            ev_run(loop);
            ev_timer_stop(loop, &t);
        }
        ok = result == 1;
        if (!ok) {
            usleep(100 * 1000);
        }
    }
    etcd_free(e);
    ev_loop_free(loop);
    return ok;
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    if (access("/usr/bin/etcd", X_OK) != 0) {
        fprintf(stderr, "/usr/bin/etcd is missing: run scripts/deps.sh\n");
        return; /* every test then fails at once on "etcd is not running" */
    }
    snprintf(etcd_dir, sizeof(etcd_dir), "/tmp/keel-test-etcd-XXXXXX");
    if (mkdtemp(etcd_dir) == NULL) {
        fprintf(stderr, "mkdtemp failed\n");
        return;
    }
    int client = free_port(), peer = free_port();
    char data[300], log[300], curl[64], purl[64], cluster[80];
    snprintf(data, sizeof(data), "%s/data", etcd_dir);
    snprintf(log, sizeof(log), "%s/etcd.log", etcd_dir);
    snprintf(curl, sizeof(curl), "http://127.0.0.1:%d", client);
    snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", peer);
    snprintf(cluster, sizeof(cluster), "t=%s", purl);
    pid_t parent = getpid();
    etcd_pid = fork();
    if (etcd_pid == 0) {
        /* Never outlive the test runner. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(1);
        }
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd != -1) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl("/usr/bin/etcd", "etcd", "--name", "t", "--data-dir", data, "--listen-client-urls",
              curl, "--advertise-client-urls", curl, "--listen-peer-urls", purl,
              "--initial-advertise-peer-urls", purl, "--initial-cluster", cluster, (char *)NULL);
        _exit(127);
    }
    if (etcd_pid > 0 && etcd_wait_ready(curl)) {
        setenv(ETCD_ENV, curl, 1);
    } else {
        fprintf(stderr, "etcd did not start (see %s)\n", log);
    }
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    if (etcd_pid > 0) {
        kill(etcd_pid, SIGKILL);
        waitpid(etcd_pid, NULL, 0);
        etcd_pid = -1;
    }
    if (etcd_dir[0] != '\0') {
        nftw(etcd_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

/* ------------------------------------------------------------------------------------------
 * Per test: a loop, a client, synchronous wrappers
 * ------------------------------------------------------------------------------------------ */

static struct ev_loop *loop;
static struct etcd *etc;
static const char *live_url;

static void setup(void)
{
    live_url = getenv(ETCD_ENV);
    cr_assert_not_null(live_url, "etcd is not running");
    loop = ev_loop_new();
    cr_assert_not_null(loop);
    struct errbuf eb;
    etc = etcd_new(loop, &live_url, 1, 3000, &eb);
    cr_assert_not_null(etc, "%s", eb.msg);
}

static void teardown(void)
{
    etcd_free(etc);
    ev_loop_free(loop);
}

TestSuite(etcd, .init = setup, .fini = teardown, .timeout = 20);

#define MAX_KVS 8

/* What a callback saw (the result itself is valid during the callback only). */
struct got {
    int calls;
    int err;
    char msg[256];
    int http_status, etcd_code;
    int64_t revision, deleted, lease_id, ttl;
    bool succeeded;
    size_t n_kvs;
    struct {
        char key[256];
        char value[1024];
        size_t value_len;
        int64_t create_revision, mod_revision, version, lease;
    } kvs[MAX_KVS];
    uint64_t at_ms;
};

static int pending;

static void on_result(void *data, const struct etcd_result *res)
{
    struct got *g = data;
    g->calls++;
    g->err = res->err;
    snprintf(g->msg, sizeof(g->msg), "%s", res->msg);
    g->http_status = res->http_status;
    g->etcd_code = res->etcd_code;
    g->revision = res->revision;
    g->deleted = res->deleted;
    g->lease_id = res->lease_id;
    g->ttl = res->ttl;
    g->succeeded = res->succeeded;
    g->n_kvs = res->n_kvs;
    for (size_t i = 0; i < res->n_kvs && i < MAX_KVS; i++) {
        const struct etcd_kv *kv = &res->kvs[i];
        cr_assert_eq(kv->key[kv->key_len], '\0');
        cr_assert_eq(kv->value[kv->value_len], '\0');
        snprintf(g->kvs[i].key, sizeof(g->kvs[i].key), "%s", kv->key);
        cr_assert_leq(kv->value_len, sizeof(g->kvs[i].value));
        memcpy(g->kvs[i].value, kv->value, kv->value_len);
        g->kvs[i].value_len = kv->value_len;
        g->kvs[i].create_revision = kv->create_revision;
        g->kvs[i].mod_revision = kv->mod_revision;
        g->kvs[i].version = kv->version;
        g->kvs[i].lease = kv->lease;
    }
    ev_update_time(loop);
    g->at_ms = ev_now_ms(loop);
    if (--pending == 0) {
        ev_loop_stop(loop);
    }
}

static void on_guard(struct ev_loop *l, struct ev_timer *t)
{
    (void)t;
    ev_loop_stop(l);
}

/* Run the loop until every pending callback ran, or max_ms passed. */
static void run(uint32_t max_ms)
{
    struct ev_timer guard;
    ev_timer_init(&guard, on_guard, NULL, "guard");
    ev_timer_start(loop, &guard, max_ms);
    while (pending > 0 && ev_timer_is_active(&guard)) {
        ev_run(loop);
    }
    ev_timer_stop(loop, &guard);
    cr_assert_eq(pending, 0, "%d callbacks did not run within %u ms", pending, max_ms);
}

/* Queue with the call's return code checked, then run until it completes. */
#define SYNC(g, call)                                                                              \
    do {                                                                                           \
        memset(&(g), 0, sizeof(g));                                                                \
        pending++;                                                                                 \
        int rc_ = (call);                                                                          \
        cr_assert_eq(rc_, 0, "%s returned %d", #call, rc_);                                        \
        run(5000);                                                                                 \
        cr_assert_eq((g).calls, 1);                                                                \
    } while (0)

static void put_ok(const char *key, const char *value, int64_t lease)
{
    struct got g;
    SYNC(g, etcd_put(etc, key, value, strlen(value), lease, on_result, &g));
    cr_assert_eq(g.err, 0, "put %s: %s", key, g.msg);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------------------------------------
 * Key-value
 * ------------------------------------------------------------------------------------------ */

Test(etcd, put_get_round_trip_with_binary_values)
{
    unsigned char value[256];
    for (int i = 0; i < 256; i++) {
        value[i] = (unsigned char)(255 - i); /* every byte, NUL and 0xff included */
    }
    struct got g;
    SYNC(g, etcd_put(etc, "/rt/bin", value, sizeof(value), 0, on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    cr_assert_gt(g.revision, 0);
    int64_t put_rev = g.revision;

    SYNC(g, etcd_get(etc, "/rt/bin", on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    cr_assert_eq(g.http_status, 200);
    cr_assert_eq(g.n_kvs, 1);
    cr_assert_str_eq(g.kvs[0].key, "/rt/bin");
    cr_assert_eq(g.kvs[0].value_len, sizeof(value));
    cr_assert_arr_eq(g.kvs[0].value, value, sizeof(value));
    cr_assert_eq(g.kvs[0].create_revision, put_rev);
    cr_assert_eq(g.kvs[0].mod_revision, put_rev);
    cr_assert_eq(g.kvs[0].version, 1);
    cr_assert_eq(g.kvs[0].lease, 0);

    /* An empty value (omitted by the gateway) and a second version. */
    SYNC(g, etcd_put(etc, "/rt/bin", "", 0, 0, on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    SYNC(g, etcd_get(etc, "/rt/bin", on_result, &g));
    cr_assert_eq(g.n_kvs, 1);
    cr_assert_eq(g.kvs[0].value_len, 0);
    cr_assert_eq(g.kvs[0].version, 2);
    cr_assert_eq(g.kvs[0].create_revision, put_rev);
    cr_assert_gt(g.kvs[0].mod_revision, put_rev);

    /* A missing key is no error, just no kv. */
    SYNC(g, etcd_get(etc, "/rt/missing", on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    cr_assert_eq(g.n_kvs, 0);
    cr_assert_geq(g.revision, put_rev);
}

Test(etcd, get_prefix_returns_the_keys_in_order)
{
    put_ok("/pfx/b", "2", 0);
    put_ok("/pfx/a", "1", 0);
    put_ok("/pfx/c", "3", 0);
    put_ok("/pfy", "not in the prefix", 0);
    put_ok("/pf", "not in the prefix either", 0);
    struct got g;
    SYNC(g, etcd_get_prefix(etc, "/pfx/", on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    cr_assert_eq(g.n_kvs, 3);
    cr_assert_str_eq(g.kvs[0].key, "/pfx/a");
    cr_assert_str_eq(g.kvs[1].key, "/pfx/b");
    cr_assert_str_eq(g.kvs[2].key, "/pfx/c");
    cr_assert_eq(g.kvs[2].value_len, 1);
    cr_assert_eq(g.kvs[2].value[0], '3');

    /* A prefix whose last byte is 0xff: the range end carries into the byte before. */
    put_ok("/pff\xff", "x", 0);
    put_ok("/pff\xff\x01", "y", 0);
    put_ok("/pfg", "z", 0);
    SYNC(g, etcd_get_prefix(etc, "/pff\xff", on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    cr_assert_eq(g.n_kvs, 2);

    /* The empty prefix is every key. */
    SYNC(g, etcd_get_prefix(etc, "", on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    cr_assert_geq(g.n_kvs, 8);
}

Test(etcd, create_succeeds_once_then_returns_the_current_kv)
{
    struct got g;
    SYNC(g, etcd_create(etc, "/create/leader", "db1", 3, 0, on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    cr_assert(g.succeeded);
    cr_assert_eq(g.n_kvs, 0);
    int64_t rev = g.revision;

    SYNC(g, etcd_create(etc, "/create/leader", "db2", 3, 0, on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    cr_assert_not(g.succeeded);
    cr_assert_eq(g.n_kvs, 1);
    cr_assert_str_eq(g.kvs[0].key, "/create/leader");
    cr_assert_eq(g.kvs[0].value_len, 3);
    cr_assert_arr_eq(g.kvs[0].value, "db1", 3);
    cr_assert_eq(g.kvs[0].create_revision, rev);
    cr_assert_eq(g.kvs[0].mod_revision, rev); /* a failed txn writes nothing */
    cr_assert_eq(g.kvs[0].version, 1);
}

Test(etcd, cas_with_the_right_and_a_wrong_revision)
{
    struct got g;
    SYNC(g, etcd_put(etc, "/cas/k", "v1", 2, 0, on_result, &g));
    int64_t rev1 = g.revision;

    SYNC(g, etcd_cas(etc, "/cas/k", rev1, "v2", 2, 0, on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    cr_assert(g.succeeded);
    int64_t rev2 = g.revision;
    cr_assert_gt(rev2, rev1);

    /* The old revision no longer matches: nothing written, the current kv returned. */
    SYNC(g, etcd_cas(etc, "/cas/k", rev1, "v3", 2, 0, on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    cr_assert_not(g.succeeded);
    cr_assert_eq(g.n_kvs, 1);
    cr_assert_arr_eq(g.kvs[0].value, "v2", 2);
    cr_assert_eq(g.kvs[0].mod_revision, rev2);

    /* Expected revision 0 matches only a missing key. */
    SYNC(g, etcd_cas(etc, "/cas/new", 0, "n", 1, 0, on_result, &g));
    cr_assert(g.succeeded);
    SYNC(g, etcd_cas(etc, "/cas/new", 0, "n", 1, 0, on_result, &g));
    cr_assert_not(g.succeeded);
}

Test(etcd, delete_if_value_and_delete)
{
    put_ok("/div/leader", "db1", 0);
    struct got g;
    SYNC(g, etcd_delete_if_value(etc, "/div/leader", "db2", 3, on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    cr_assert_not(g.succeeded);
    cr_assert_eq(g.deleted, 0);
    cr_assert_eq(g.n_kvs, 1);
    cr_assert_arr_eq(g.kvs[0].value, "db1", 3);

    SYNC(g, etcd_delete_if_value(etc, "/div/leader", "db1", 3, on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    cr_assert(g.succeeded);
    cr_assert_eq(g.deleted, 1);

    SYNC(g, etcd_get(etc, "/div/leader", on_result, &g));
    cr_assert_eq(g.n_kvs, 0);
    /* On a missing key the compare fails and there is no kv. */
    SYNC(g, etcd_delete_if_value(etc, "/div/leader", "db1", 3, on_result, &g));
    cr_assert_not(g.succeeded);
    cr_assert_eq(g.n_kvs, 0);

    put_ok("/div/other", "x", 0);
    SYNC(g, etcd_delete(etc, "/div/other", on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    cr_assert_eq(g.deleted, 1);
    SYNC(g, etcd_delete(etc, "/div/other", on_result, &g));
    cr_assert_eq(g.deleted, 0);
}

/* ------------------------------------------------------------------------------------------
 * Leases
 * ------------------------------------------------------------------------------------------ */

static void sleep_in_loop(uint32_t ms)
{
    struct ev_timer t;
    ev_timer_init(&t, on_guard, NULL, "sleep");
    ev_timer_start(loop, &t, ms);
    ev_run(loop);
    ev_timer_stop(loop, &t);
}

Test(etcd, lease_keepalive_extends_and_expiry_deletes_the_key)
{
    struct got g;
    SYNC(g, etcd_lease_grant(etc, 2, on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    cr_assert_gt(g.lease_id, 0);
    cr_assert_eq(g.ttl, 2);
    int64_t lease = g.lease_id;
    put_ok("/lease/leader", "db1", lease);

    SYNC(g, etcd_get(etc, "/lease/leader", on_result, &g));
    cr_assert_eq(g.kvs[0].lease, lease);

    /* Renew every 500 ms for 3.5 s: without renewals the key would be gone after 2-2.5 s
     * (etcd checks expiry every 500 ms); each renewal here has 1.5 s of slack. */
    for (int i = 0; i < 7; i++) {
        sleep_in_loop(500);
        SYNC(g, etcd_lease_keepalive(etc, lease, on_result, &g));
        cr_assert_eq(g.err, 0, "%s", g.msg);
        cr_assert_eq(g.lease_id, lease);
        cr_assert_eq(g.ttl, 2);
    }
    SYNC(g, etcd_get(etc, "/lease/leader", on_result, &g));
    cr_assert_eq(g.n_kvs, 1, "the key expired although the lease was renewed");

    /* No more renewals: the key disappears (etcd checks expiry every 500 ms). */
    uint64_t deadline = now_ms() + 5000;
    do {
        sleep_in_loop(200);
        SYNC(g, etcd_get(etc, "/lease/leader", on_result, &g));
        cr_assert_eq(g.err, 0, "%s", g.msg);
    } while (g.n_kvs > 0 && now_ms() < deadline);
    cr_assert_eq(g.n_kvs, 0, "the key outlived its lease");

    /* A keepalive on the expired lease says so with a TTL of 0. */
    SYNC(g, etcd_lease_keepalive(etc, lease, on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    cr_assert_eq(g.ttl, 0);
}

Test(etcd, revoke_deletes_the_keys_and_a_second_revoke_fails)
{
    struct got g;
    SYNC(g, etcd_lease_grant(etc, 60, on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    int64_t lease = g.lease_id;
    put_ok("/revoke/a", "1", lease);
    put_ok("/revoke/b", "2", lease);

    SYNC(g, etcd_lease_revoke(etc, lease, on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    SYNC(g, etcd_get_prefix(etc, "/revoke/", on_result, &g));
    cr_assert_eq(g.n_kvs, 0);

    SYNC(g, etcd_lease_revoke(etc, lease, on_result, &g));
    cr_assert_eq(g.err, -KEEL_EETCD);
    cr_assert_eq(g.etcd_code, 5); /* NOT_FOUND */
    cr_assert_eq(g.http_status, 404);
    cr_assert(strstr(g.msg, "lease not found") != NULL, "%s", g.msg);

    /* Putting with a lease that does not exist is an etcd error too. */
    SYNC(g, etcd_put(etc, "/revoke/c", "3", 1, lease, on_result, &g));
    cr_assert_eq(g.err, -KEEL_EETCD);
    cr_assert(strstr(g.msg, "lease not found") != NULL, "%s", g.msg);
}

/* ------------------------------------------------------------------------------------------
 * Failover, timeouts, a loop that never blocks
 * ------------------------------------------------------------------------------------------ */

/* A closed port: connecting is refused at once. */
static void dead_url(char *out, size_t size)
{
    snprintf(out, size, "http://127.0.0.1:%d", free_port());
}

/* A listener that never accepts (connects succeed, nothing is ever answered). With
 * is_full, its backlog is filled first, so that later SYNs are dropped and a connect hangs. */
static int hung_listener(char *url, size_t size, bool is_full, int *filler)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    cr_assert_eq(listen(fd, is_full ? 0 : 16), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *filler = -1;
    if (is_full) {
        *filler = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_eq(connect(*filler, (struct sockaddr *)&sin, sizeof(sin)), 0);
    }
    snprintf(url, size, "http://127.0.0.1:%d", ntohs(sin.sin_port));
    return fd;
}

/* TCP connect() to a broadcast address fails synchronously with ENETUNREACH. */
#define UNREACHABLE_URL "http://255.255.255.255:1"

static struct etcd *client_of(const char *a, const char *b, uint32_t timeout_ms)
{
    const char *urls[2] = {a, b};
    struct errbuf eb;
    struct etcd *e = etcd_new(loop, urls, b != NULL ? 2 : 1, timeout_ms, &eb);
    cr_assert_not_null(e, "%s", eb.msg);
    return e;
}

Test(etcd, a_dead_endpoint_fails_over_to_the_live_one)
{
    char dead[64];
    dead_url(dead, sizeof(dead));
    struct etcd *e = client_of(dead, live_url, 2000);
    struct got g;
    SYNC(g, etcd_put(e, "/failover/k", "v", 1, 0, on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    cr_assert_eq(e->preferred, 1, "the live endpoint is now preferred");
    SYNC(g, etcd_get(e, "/failover/k", on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    cr_assert_eq(g.n_kvs, 1);
    etcd_free(e);
}

Test(etcd, every_endpoint_dead_fails_fast_with_a_clear_error)
{
    char dead1[64], dead2[64];
    dead_url(dead1, sizeof(dead1));
    dead_url(dead2, sizeof(dead2));
    struct etcd *e = client_of(dead1, dead2, 2000);
    struct got g;
    uint64_t t0 = now_ms();
    SYNC(g, etcd_get(e, "/dead/k", on_result, &g));
    cr_assert_eq(g.err, -ECONNREFUSED, "%s", g.msg);
    cr_assert_lt(now_ms() - t0, 1000, "refused connects should not wait for the deadline");
    cr_assert_eq(g.http_status, 0);
    cr_assert(strstr(g.msg, "no etcd endpoint reachable") != NULL, "%s", g.msg);
    cr_assert(strstr(g.msg, dead1 + 7) != NULL && strstr(g.msg, dead2 + 7) != NULL, "%s", g.msg);
    etcd_free(e);
}

static int ticks;

static void on_tick(struct ev_loop *l, struct ev_timer *t)
{
    ticks++;
    ev_timer_start(l, t, 10);
}

Test(etcd, a_hung_server_times_out_at_the_deadline_without_blocking_the_loop)
{
    char hung[64];
    int filler;
    int lfd = hung_listener(hung, sizeof(hung), false, &filler);
    struct etcd *e = client_of(hung, NULL, 300);
    struct ev_timer tick;
    ev_timer_init(&tick, on_tick, NULL, "tick");
    ev_timer_start(loop, &tick, 10);
    ticks = 0;
    struct got g;
    uint64_t t0 = now_ms();
    SYNC(g, etcd_get(e, "/hung/k", on_result, &g));
    uint64_t took = g.at_ms - t0;
    ev_timer_stop(loop, &tick);
    cr_assert_eq(g.err, -ETIMEDOUT, "%s", g.msg);
    cr_assert(strstr(g.msg, "timed out") != NULL, "%s", g.msg);
    cr_assert_geq(took, 295, "timed out early: %" PRIu64 " ms", took);
    cr_assert_lt(took, 450, "timed out late: %" PRIu64 " ms", took);
    /* ~30 ticks of 10 ms: the loop kept running while the request waited. */
    cr_assert_geq(ticks, 20, "only %d ticks in %" PRIu64 " ms", ticks, took);
    etcd_free(e);
    close(lfd);
}

Test(etcd, a_hung_connect_gets_its_share_of_the_deadline_then_fails_over)
{
    char hung[64];
    int filler;
    int lfd = hung_listener(hung, sizeof(hung), true, &filler);
    struct etcd *e = client_of(hung, live_url, 1000);
    struct got g;
    uint64_t t0 = now_ms();
    SYNC(g, etcd_put(e, "/hungconnect/k", "v", 1, 0, on_result, &g));
    uint64_t took = g.at_ms - t0;
    cr_assert_eq(g.err, 0, "%s", g.msg);
    /* The first endpoint had half of the second to connect. */
    cr_assert_geq(took, 450, "%" PRIu64 " ms", took);
    cr_assert_lt(took, 900, "%" PRIu64 " ms", took);
    etcd_free(e);
    close(filler);
    close(lfd);
}

Test(etcd, a_lone_hung_connect_times_out)
{
    char hung[64];
    int filler;
    int lfd = hung_listener(hung, sizeof(hung), true, &filler);
    struct etcd *e = client_of(hung, NULL, 200);
    struct got g;
    SYNC(g, etcd_get(e, "/x", on_result, &g));
    cr_assert_eq(g.err, -ETIMEDOUT, "%s", g.msg);
    cr_assert(strstr(g.msg, "connect() timed out") != NULL, "%s", g.msg);
    etcd_free(e);
    close(filler);
    close(lfd);
}

/* ------------------------------------------------------------------------------------------
 * Concurrency, bounds, teardown
 * ------------------------------------------------------------------------------------------ */

Test(etcd, many_requests_in_flight_at_once)
{
    static struct got gs[32];
    char key[32];
    for (int i = 0; i < 32; i++) {
        snprintf(key, sizeof(key), "/many/%02d", i);
        pending++;
        cr_assert_eq(etcd_put(etc, key, key, strlen(key), 0, on_result, &gs[i]), 0);
    }
    cr_assert_eq(etcd_inflight(etc), 32);
    run(5000);
    for (int i = 0; i < 32; i++) {
        cr_assert_eq(gs[i].err, 0, "%d: %s", i, gs[i].msg);
    }
    cr_assert_eq(etcd_inflight(etc), 0);
    struct got g;
    SYNC(g, etcd_get_prefix(etc, "/many/", on_result, &g));
    cr_assert_eq(g.n_kvs, 32);
}

static void never_called(void *data, const struct etcd_result *res)
{
    (void)data;
    (void)res;
    cr_assert_fail("callback of a request that was refused");
}

Test(etcd, requests_that_cannot_be_queued_are_refused)
{
    char long_key[ETCD_MAX_KEY_LEN + 2];
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    cr_assert_eq(etcd_get(etc, "", never_called, NULL), -EINVAL);
    cr_assert_eq(etcd_get(etc, NULL, never_called, NULL), -EINVAL);
    cr_assert_eq(etcd_get(etc, long_key, never_called, NULL), -EINVAL);
    cr_assert_eq(etcd_put(etc, "/k", NULL, 1, 0, never_called, NULL), -EINVAL);
    cr_assert_eq(etcd_put(etc, "/k", "v", 1, -1, never_called, NULL), -EINVAL);
    cr_assert_eq(etcd_put(etc, "/k", "v", ETCD_MAX_VALUE_LEN + 1, 0, never_called, NULL), -EINVAL);
    cr_assert_eq(etcd_cas(etc, "/k", -1, "v", 1, 0, never_called, NULL), -EINVAL);
    cr_assert_eq(etcd_lease_grant(etc, 0, never_called, NULL), -EINVAL);
    cr_assert_eq(etcd_lease_keepalive(etc, 0, never_called, NULL), -EINVAL);
    cr_assert_eq(etcd_lease_revoke(etc, -5, never_called, NULL), -EINVAL);
    cr_assert_eq(etcd_get(etc, "/k", NULL, NULL), -EINVAL);
    cr_assert_eq(etcd_inflight(etc), 0);

    /* The in-flight bound. */
    static struct got gs[ETCD_MAX_INFLIGHT];
    for (int i = 0; i < ETCD_MAX_INFLIGHT; i++) {
        pending++;
        cr_assert_eq(etcd_get(etc, "/bound", on_result, &gs[i]), 0);
    }
    cr_assert_eq(etcd_get(etc, "/bound", never_called, NULL), -EBUSY);
    run(5000);
    for (int i = 0; i < ETCD_MAX_INFLIGHT; i++) {
        cr_assert_eq(gs[i].err, 0, "%d: %s", i, gs[i].msg);
    }
}

Test(etcd, etcd_new_rejects_bad_endpoints)
{
    const char *bad[] = {"https://127.0.0.1:2379",   "http://localhost:2379",  "http://127.0.0.1",
                         "http://127.0.0.1:0",       "http://127.0.0.1:65536", "http://[::1:2379",
                         "http://127.0.0.1:2379/v3", "127.0.0.1:2379"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct errbuf eb = {{0}};
        cr_assert_null(etcd_new(loop, &bad[i], 1, 0, &eb), "%s accepted", bad[i]);
        cr_assert(strstr(eb.msg, "etcd endpoint 1") != NULL, "%s: %s", bad[i], eb.msg);
    }
    struct errbuf eb;
    cr_assert_null(etcd_new(loop, bad, 0, 0, &eb));
    const char *good[] = {"http://[::1]:2379/", "http://10.0.0.1:1"};
    struct etcd *e = etcd_new(loop, good, 2, 0, &eb);
    cr_assert_not_null(e, "%s", eb.msg);
    cr_assert_str_eq(e->eps[0].host, "[::1]:2379");
    cr_assert_str_eq(e->eps[1].host, "10.0.0.1:1");
    cr_assert_eq(e->timeout_ms, ETCD_DEFAULT_TIMEOUT_MS);
    etcd_free(e);
}

static int cancelled;

static void on_cancelled(void *data, const struct etcd_result *res)
{
    struct etcd *e = data;
    cr_assert_eq(res->err, -ECANCELED, "%s", res->msg);
    cr_assert_null(res->kvs);
    /* The client is going away: new requests are refused, and a nested free is a no-op. */
    cr_assert_eq(etcd_get(e, "/k", never_called, NULL), -ECANCELED);
    etcd_free(e);
    cancelled++;
}

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++) {
        n += fcntl(fd, F_GETFD) != -1;
    }
    return n;
}

Test(etcd, free_with_requests_in_flight_cancels_them)
{
    char hung[64];
    int filler;
    int fds_before = count_fds();
    int lfd = hung_listener(hung, sizeof(hung), false, &filler);
    struct etcd *e = client_of(hung, NULL, 5000);
    /* connect() to the broadcast address fails at once: the failure waits for the end of
     * the iteration. */
    struct etcd *u = client_of(UNREACHABLE_URL, NULL, 5000);
    struct etcd *l = client_of(live_url, NULL, 5000);
    cancelled = 0;
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(etcd_put(e, "/free/k", "v", 1, 0, on_cancelled, e), 0);
    }
    sleep_in_loop(50); /* connected, request sent, waiting for an answer */
    cr_assert_eq(etcd_inflight(e), 5);
    etcd_free(e);
    cr_assert_eq(cancelled, 5);

    cr_assert_eq(etcd_get(u, "/free/k", on_cancelled, u), 0);
    cr_assert_eq(u->reqs->state, ETCD_REQ_STATE_FAILING);
    etcd_free(u);
    cr_assert_eq(cancelled, 6);

    cr_assert_eq(etcd_get(l, "/free/k", on_cancelled, l), 0); /* connecting */
    etcd_free(l);
    cr_assert_eq(cancelled, 7);
    sleep_in_loop(20); /* the queued deferred failure and the freed exchanges retire */
    close(lfd);
    cr_assert_eq(count_fds(), fds_before, "a socket was left open");
}

Test(etcd, a_connect_that_fails_at_once_fails_over_too)
{
    struct etcd *e = client_of(UNREACHABLE_URL, live_url, 2000);
    struct got g;
    SYNC(g, etcd_get(e, "/k", on_result, &g));
    cr_assert_eq(g.err, 0, "%s", g.msg);
    etcd_free(e);
    e = client_of(UNREACHABLE_URL, NULL, 2000);
    SYNC(g, etcd_get(e, "/k", on_result, &g));
    cr_assert_eq(g.err, -ENETUNREACH, "%s", g.msg);
    cr_assert(strstr(g.msg, "255.255.255.255:1: connect() failed") != NULL, "%s", g.msg);
    etcd_free(e);
}

static struct etcd *freed_by_callback;
static int after_free_calls;

static void on_free_in_callback(void *data, const struct etcd_result *res)
{
    (void)data;
    cr_assert_eq(res->err, 0, "%s", res->msg);
    after_free_calls++;
    etcd_free(freed_by_callback); /* the other request is cancelled from here */
    freed_by_callback = NULL;
    ev_loop_stop(loop);
}

static void on_cancelled_other(void *data, const struct etcd_result *res)
{
    (void)data;
    cr_assert_eq(res->err, -ECANCELED);
    after_free_calls++;
}

Test(etcd, a_callback_may_free_the_client)
{
    char hung[64];
    int filler;
    int lfd = hung_listener(hung, sizeof(hung), false, &filler);
    /* The first request goes to etcd, the second to the hung server (the first endpoint is
     * preferred, so use two clients' worth of ordering: one client, two endpoints). */
    struct etcd *e = client_of(live_url, hung, 3000);
    freed_by_callback = e;
    after_free_calls = 0;
    e->preferred = 1;
    cr_assert_eq(etcd_get(e, "/k", on_cancelled_other, NULL), 0); /* to the hung server */
    e->preferred = 0;
    cr_assert_eq(etcd_get(e, "/k", on_free_in_callback, NULL), 0); /* to etcd */
    struct ev_timer guard;
    ev_timer_init(&guard, on_guard, NULL, "guard");
    ev_timer_start(loop, &guard, 3000);
    ev_run(loop);
    ev_timer_stop(loop, &guard);
    cr_assert_eq(after_free_calls, 2);
    cr_assert_null(freed_by_callback);
    sleep_in_loop(20);
    close(lfd);
}

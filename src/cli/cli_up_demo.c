/* SPDX-License-Identifier: MIT */
/* The built-in demo topology of `keel up` (see cli_up.h): two load balancers sharing a
 * virtual IP in front of three web+app nodes running the demo application and, when etcd
 * and PostgreSQL 15 are installed, a database (a primary and a streaming replica on db1 and
 * db2, the leader key in a one-member etcd that keel up runs) that the demo application's
 * guestbook uses. Every file lives in one temporary directory, removed at the end. This file
 * writes the topology; cli_up.c runs it. Blocking calls are fine: a foreground tool. */
#include "cli/cli_up.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/db_secret.h"

#define DEMO_LB_ADDR "127.0.0.10"
#define DEMO_LB2_ADDR "127.0.0.14"
#define DEMO_VIP "127.0.0.100"
#define DEMO_WEB_BASE 11 /* web1..3 on 127.0.0.11..13 */
#define DEMO_DB1_ADDR "127.0.0.15"
#define DEMO_DB2_ADDR "127.0.0.16"
#define DEMO_ETCD_ADDR "127.0.0.17"
#define DEMO_DB "demo" /* the database, its role and the application's user */
#define DEMO_PG_BINDIR "/usr/lib/postgresql/15/bin" /* the database directive's default */

/* The ports the demo uses, in this order, and the ones it prefers. */
enum demo_port {
    PORT_LB = 0,
    PORT_ADMIN,
    PORT_WEB,
    PORT_APP,
    PORT_PG,
    PORT_AGENT,
    PORT_WRITE,
    PORT_READ,
    PORT_ETCD_CLIENT,
    PORT_ETCD_PEER,
    PORT_COUNT
};

static const uint16_t preferred_ports[PORT_COUNT] = {8080, 9100, 8081, 9000, 5432,
                                                     8008, 5000, 5001, 2379, 2380};

/* ------------------------------------------------------------------------------------------
 * Ports
 * ------------------------------------------------------------------------------------------ */

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

/* Ports free on every demo address, distinct, each the preferred one when it can be. Every
 * node binds on its own address, so one port number serves them all. */
static int pick_ports(uint16_t out[PORT_COUNT])
{
    static const char *const ips[] = {DEMO_LB_ADDR,  "127.0.0.11",  "127.0.0.12",
                                      "127.0.0.13",  DEMO_LB2_ADDR, DEMO_VIP,
                                      DEMO_DB1_ADDR, DEMO_DB2_ADDR, DEMO_ETCD_ADDR};
    uint32_t seed = (uint32_t)getpid() * 2654435761u;
    for (int i = 0; i < PORT_COUNT; i++) {
        out[i] = 0;
        for (int attempt = 0; attempt < 200 && out[i] == 0; attempt++) {
            uint16_t port = attempt == 0 ? preferred_ports[i]
                                         : (uint16_t)(20000 + (seed + attempt * 7919u) % 30000);
            bool ok = true;
            for (int k = 0; k < i && ok; k++) {
                ok = out[k] != port;
            }
            for (size_t k = 0; ok && k < sizeof(ips) / sizeof(ips[0]); k++) {
                ok = port_free_on(ips[k], port);
            }
            out[i] = ok ? port : 0;
        }
        if (out[i] == 0) {
            return -EADDRINUSE;
        }
        seed += 104729u;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Whether the demo can have its database
 * ------------------------------------------------------------------------------------------ */

static bool find_in_path(const char *prog, char *out, size_t size)
{
    const char *path = getenv("PATH");
    for (const char *p = path != NULL ? path : "/usr/local/bin:/usr/bin:/bin"; *p != '\0';) {
        size_t len = strcspn(p, ":");
        int n = snprintf(out, size, "%.*s/%s", (int)len, p, prog);
        if (len > 0 && n > 0 && (size_t)n < size && access(out, X_OK) == 0) {
            return true;
        }
        p += len + (p[len] == ':' ? 1 : 0);
    }
    return false;
}

/* Fill d->has_db and, when false, d->no_db. */
static void check_db(struct up_demo *d)
{
    static const char *const progs[] = {"postgres", "initdb", "pg_basebackup", "pg_rewind"};
    d->has_db = false;
    if (!find_in_path("etcd", d->etcd_exe, sizeof(d->etcd_exe))) {
        (void)snprintf(d->no_db, sizeof(d->no_db),
                       "etcd is not installed (no etcd in PATH; apt-get install etcd-server)");
        return;
    }
    for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
        char path[64];
        (void)snprintf(path, sizeof(path), DEMO_PG_BINDIR "/%s", progs[i]);
        if (access(path, X_OK) != 0) {
            (void)snprintf(d->no_db, sizeof(d->no_db),
                           "PostgreSQL 15 is not installed (no %s; apt-get install postgresql-15)",
                           path);
            return;
        }
    }
    if (getpwnam("postgres") == NULL) {
        (void)snprintf(d->no_db, sizeof(d->no_db), "there is no postgres user to run PostgreSQL");
        return;
    }
    if (geteuid() != 0) {
        (void)snprintf(d->no_db, sizeof(d->no_db),
                       "keel up is not running as root (PostgreSQL runs as the postgres user)");
        return;
    }
    d->has_db = true;
}

/* ------------------------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------------------------ */

static int write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd == -1) {
        return -errno;
    }
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1) {
            int saved = errno;
            close(fd);
            return -saved;
        }
        p += n;
        len -= (size_t)n;
    }
    return close(fd) == 0 ? 0 : -errno;
}

static int make_dir(const struct up_demo *d, const char *sub, mode_t mode)
{
    char path[CONF_PATH_MAX];
    (void)snprintf(path, sizeof(path), "%s/%s", d->dir, sub);
    return mkdir(path, mode) == 0 ? 0 : -errno;
}

/* The web root (a stylesheet to show static files), and for the database a random cluster
 * secret and a state directory PostgreSQL (the postgres user) can reach. */
static int write_files(struct up_demo *d, char password[DB_PASSWORD_SIZE], struct errbuf *eb)
{
    char path[CONF_PATH_MAX];
    static const char css[] = "body { font-family: sans-serif; margin: 2em; }\n"
                              "td { padding: 0.2em 1em; }\n";
    (void)snprintf(path, sizeof(path), "%s/www/static/style.css", d->dir);
    int rc = make_dir(d, "www", 0755);
    rc = rc != 0 ? rc : make_dir(d, "www/static", 0755);
    rc = rc != 0 ? rc : write_file(path, css, sizeof(css) - 1, 0644);
    if (rc != 0 || !d->has_db) {
        return rc;
    }
    uint8_t secret[32];
    if (getrandom(secret, sizeof(secret), 0) != (ssize_t)sizeof(secret)) {
        return -errno;
    }
    (void)snprintf(path, sizeof(path), "%s/cluster.key", d->dir);
    rc = write_file(path, secret, sizeof(secret), 0600);
    explicit_bzero(secret, sizeof(secret));
    rc = rc != 0 ? rc : make_dir(d, "state", 0755);
    /* mkdtemp made the directory 0700: PostgreSQL must reach its data inside. What is
     * secret here is 0600: the cluster key and keel.conf (the application's password). */
    rc = rc != 0 ? rc : chmod(d->dir, 0755) == 0 ? 0 : -errno;
    if (rc != 0) {
        return rc;
    }
    return db_secret_app_password(path, DEMO_DB, password, eb) == 0 ? 0 : -EINVAL;
}

static void write_db(FILE *f, const struct up_demo *d, const uint16_t *port)
{
    fprintf(f,
            "\n# The database tier: a primary and a streaming replica (synchronous replication),\n"
            "# the leader key in the etcd that keel up runs; the load balancers route port %u\n"
            "# to the primary and port %u to the replica.\n"
            "database " DEMO_DB " {\n    nodes db1 db2;\n    dcs etcd http://%s;\n"
            "    replication synchronous;\n    pg_port %u;\n    agent_port %u;\n"
            "    write_port %u;\n    read_port %u;\n}\n",
            port[PORT_WRITE], port[PORT_READ], d->etcd_client, port[PORT_PG], port[PORT_AGENT],
            port[PORT_WRITE], port[PORT_READ]);
}

/* The application: the demo app; with the database, its guestbook's environment. Writes and
 * reads go to the database ports on the virtual IP (whichever load balancer holds it). */
static void write_app(FILE *f, const struct up_demo *d, const uint16_t *port, const char *password)
{
    fprintf(f,
            "\napp demo {\n    listen :%u;\n    run builtin demo;\n"
            "    check http path /healthz interval 1s timeout 500ms rise 1 fall 2;\n",
            port[PORT_APP]);
    if (d->has_db) {
        fprintf(f,
                "    env KEEL_DB_WRITE " DEMO_VIP ":%u;\n"
                "    env KEEL_DB_READ " DEMO_VIP ":%u;\n"
                "    env KEEL_DB_NAME " DEMO_DB ";\n    env KEEL_DB_USER " DEMO_DB ";\n"
                "    env KEEL_DB_PASSWORD %s;   # keel db password -c THIS_FILE " DEMO_DB "\n",
                port[PORT_WRITE], port[PORT_READ], password);
    }
    fprintf(f, "}\n");
}

static int write_conf(const struct up_demo *d, const uint16_t *port, const char *password)
{
    int fd = open(d->conf_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *f = fd == -1 ? NULL : fdopen(fd, "w");
    if (f == NULL) {
        int saved = errno;
        if (fd != -1) {
            close(fd);
        }
        return -saved;
    }
    fprintf(f,
            "# keel up: the built-in demo topology (generated). Two load balancers sharing\n"
            "# a virtual IP (VRRP, active-passive) in front of three nodes that each run the\n"
            "# web tier and the demo application%s.\n",
            d->has_db ? ", and two database nodes" : "");
    if (d->has_db) {
        fprintf(f, "cluster demo {\n    secret_file %s/cluster.key;\n    state_dir %s/state;\n}\n",
                d->dir, d->dir);
    } else {
        fprintf(f, "cluster demo { }\n");
    }
    fprintf(f,
            "global { log_level notice; admin :%u; }\n\n"
            "node lb1 { address " DEMO_LB_ADDR "; roles lb; }\n"
            "node lb2 { address " DEMO_LB2_ADDR "; roles lb; }\n",
            port[PORT_ADMIN]);
    for (int i = 0; i < 3; i++) {
        fprintf(f, "node web%d { address 127.0.0.%d; roles web app; }\n", i + 1, DEMO_WEB_BASE + i);
    }
    if (d->has_db) {
        fprintf(f, "node db1 { address " DEMO_DB1_ADDR "; roles db; }\n"
                   "node db2 { address " DEMO_DB2_ADDR "; roles db; }\n");
    }
    fprintf(f,
            "\nvip " DEMO_VIP " {\n    nodes lb1 lb2;\n    vrid 51;\n    mode active-passive;\n}\n"
            "frontend www {\n    bind " DEMO_VIP ":%u;\n    backend web;\n}\n"
            "backend web {\n    balance roundrobin;\n"
            "    check http path /healthz interval 500ms timeout 500ms rise 2 fall 2;\n",
            port[PORT_LB]);
    for (int i = 0; i < 3; i++) {
        fprintf(f, "    server web%d web%d:%u;\n", i + 1, i + 1, port[PORT_WEB]);
    }
    fprintf(f,
            "}\n\nsite web {\n    bind :%u;\n"
            "    location /static/ { root %s/www; cache_control \"max-age=60\"; }\n"
            "    location = /healthz { return 200 \"ok\"; }\n"
            "    location / { proxy app; }\n}\n"
            "backend app {\n    balance roundrobin;\n"
            "    check http path /healthz interval 500ms timeout 500ms rise 2 fall 2;\n",
            port[PORT_WEB], d->dir);
    for (int i = 0; i < 3; i++) {
        fprintf(f, "    server app%d web%d:%u;\n", i + 1, i + 1, port[PORT_APP]);
    }
    fprintf(f, "}\n");
    write_app(f, d, port, password);
    if (d->has_db) {
        write_db(f, d, port);
    }
    int rc = ferror(f) ? -EIO : 0;
    return fclose(f) == 0 ? rc : -errno;
}

int up_demo_create(struct up_demo *d, struct errbuf *eb)
{
    memset(d, 0, sizeof(*d));
    check_db(d);
    uint16_t port[PORT_COUNT];
    if (pick_ports(port) != 0) {
        errbuf_set(eb, "no free ports on the demo's addresses (127.0.0.10-17, 127.0.0.100)");
        return -EADDRINUSE;
    }
    (void)snprintf(d->dir, sizeof(d->dir), "/tmp/keel-up-XXXXXX");
    if (mkdtemp(d->dir) == NULL) {
        int saved = errno;
        errbuf_set(eb, "cannot create a temporary directory: %s", strerror(saved));
        d->dir[0] = '\0';
        return -saved;
    }
    (void)snprintf(d->conf_path, sizeof(d->conf_path), "%s/keel.conf", d->dir);
    (void)snprintf(d->etcd_client, sizeof(d->etcd_client), DEMO_ETCD_ADDR ":%u",
                   port[PORT_ETCD_CLIENT]);
    (void)snprintf(d->etcd_peer, sizeof(d->etcd_peer), DEMO_ETCD_ADDR ":%u", port[PORT_ETCD_PEER]);
    (void)snprintf(d->guestbook_url, sizeof(d->guestbook_url), "http://" DEMO_VIP ":%u/guestbook",
                   port[PORT_LB]);
    char password[DB_PASSWORD_SIZE] = "";
    struct errbuf why = {{0}};
    int rc = write_files(d, password, &why);
    rc = rc != 0 ? rc : write_conf(d, port, password);
    explicit_bzero(password, sizeof(password));
    if (rc != 0) {
        errbuf_set(eb, "cannot write the demo topology in %s: %s", d->dir,
                   why.msg[0] != '\0' ? why.msg : strerror(-rc));
        up_demo_remove(d);
        return rc;
    }
    return 0;
}

int up_demo_etcd(const struct up_demo *d, struct up_node *nd)
{
    char data[CONF_PATH_MAX], client[96], peer[96], cluster[128];
    (void)snprintf(data, sizeof(data), "%s/etcd", d->dir);
    (void)snprintf(client, sizeof(client), "http://%s", d->etcd_client);
    (void)snprintf(peer, sizeof(peer), "http://%s", d->etcd_peer);
    (void)snprintf(cluster, sizeof(cluster), "demo=http://%s", d->etcd_peer);
    const char *args[] = {"etcd",  "--name",
                          "demo",  "--data-dir",
                          data,    "--listen-client-urls",
                          client,  "--advertise-client-urls",
                          client,  "--listen-peer-urls",
                          peer,    "--initial-advertise-peer-urls",
                          peer,    "--initial-cluster",
                          cluster, "--initial-cluster-state",
                          "new",   NULL};
    (void)snprintf(nd->name, sizeof(nd->name), "etcd");
    (void)snprintf(nd->roles, sizeof(nd->roles), "dcs");
    (void)snprintf(nd->address, sizeof(nd->address), "%s", DEMO_ETCD_ADDR);
    (void)snprintf(nd->log_path, sizeof(nd->log_path), "%s/etcd.log", d->dir);
    nd->exe = d->etcd_exe;
    nd->is_service = true;
    nd->tier = 0;
    struct errbuf eb;
    if (conf_parse_addr(d->etcd_client, CONF_ADDR_NO_RESOLVE, &nd->probe, &eb) != 0) {
        return -EINVAL;
    }
    nd->has_probe = true;
    return up_node_set_argv(nd, args);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    (void)remove(path); /* best effort: what cannot go stays, and the rest goes */
    return 0;
}

void up_demo_remove(const struct up_demo *d)
{
    /* Only ever the directory mkdtemp made; symbolic links are removed, not followed, and
     * the walk stays on its file system. */
    if (strncmp(d->dir, "/tmp/keel-up-", 13) != 0) {
        return;
    }
    (void)nftw(d->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

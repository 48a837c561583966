/* SPDX-License-Identifier: MIT */
/* The configuration model: what a parsed, validated keel configuration file says. Immutable
 * once built; the runtime (lb/, http/) builds its own objects from it. Types only. */
#ifndef KEEL_CORE_CONF_T_H
#define KEEL_CORE_CONF_T_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define CONF_NAME_MAX 64
#define CONF_PATH_MAX 1024

/* Where a directive was written, for error messages. */
struct lb_algo; /* lb/lb_algo.h: a balancing algorithm */

struct conf_pos {
    char file[CONF_PATH_MAX];
    int line;
    int col;
};

enum conf_mode {
    CONF_MODE_HTTP = 0, /* HTTP/1.1 proxying */
    CONF_MODE_TCP       /* plain byte relay */
};

/* A cluster member. Roles are a bit set of CONF_ROLE_*. */
enum conf_role {
    CONF_ROLE_LB = 1u << 0,
    CONF_ROLE_WEB = 1u << 1,
    CONF_ROLE_APP = 1u << 2,
    CONF_ROLE_DB = 1u << 3
};

enum conf_check_type { CONF_CHECK_NONE = 0, CONF_CHECK_TCP, CONF_CHECK_HTTP };

enum conf_log_format { CONF_LOG_COMBINED = 0, CONF_LOG_JSON };

/* A socket address with its text form as written (after defaulting, e.g. ":80" ->
 * "0.0.0.0:80"). */
struct conf_addr {
    struct sockaddr_storage sa;
    socklen_t salen;
    char text[128];
    bool host_omitted; /* written as ":PORT" or "*:PORT": a node binds its own address */
    bool is_tls;       /* bind ... tls: connections start with a TLS handshake (frontends and
                        * sites only; false everywhere else) */
};

/* `tls_verify`: whether a tls server's certificate is checked. */
enum conf_tls_verify {
    CONF_TLS_VERIFY_UNSET = 0, /* not written: the backend's, else required */
    CONF_TLS_VERIFY_REQUIRED,  /* the chain and the name must check out */
    CONF_TLS_VERIFY_NONE       /* any certificate is accepted */
};

/* TLS to servers (lb/lb_conf_tls.c): a server's own settings (`server ... tls tls_name N`),
 * or a backend's defaults for its tls servers (`tls_ca_file FILE;`). After validation, a
 * tls server's settings are complete: what it did not say comes from its backend, then
 * the defaults (verify required, the system's CA store, the host as written). */
struct conf_server_tls {
    bool is_on;                  /* server: `tls` was written */
    enum conf_tls_verify verify; /* UNSET until validation for a server */
    char ca_file[CONF_PATH_MAX]; /* "": the system's store */
    char name[256];              /* the name to send as SNI and to verify; "": none */
    struct conf_pos ca_pos;      /* where ca_file was written (unreadable file) */
    struct conf_pos opt_pos;     /* the first tls_* option written (tls_* without tls) */
    bool has_opt;                /* some tls_* option was written */
};

struct conf_server {
    char name[CONF_NAME_MAX];
    struct conf_addr addr;
    uint32_t weight;  /* 1..256, default 1 */
    uint32_t maxconn; /* concurrent requests/connections; 0 = unlimited */
    bool is_backup;   /* used only while every normal server is down */
    bool is_disabled; /* administratively down */
    /* The host was a name, resolved at validation: a node's name gives that node's address,
     * anything else goes to the resolver. "" when the address was a literal. */
    char host_name[256];
    struct conf_pos addr_pos; /* where the address was written */
    struct conf_pos pos;
    struct conf_server_tls tls; /* `server ... tls`: connections to it are TLS */
};

struct conf_check {
    enum conf_check_type type; /* default CONF_CHECK_NONE */
    char method[16];           /* HTTP: default "GET" */
    char path[256];            /* HTTP: default "/" */
    char host[256];            /* HTTP Host header: default "" = server address */
    int status_min;            /* default 200 */
    int status_max;            /* default 399 */
    uint32_t interval_ms;      /* default 2000 */
    uint32_t timeout_ms;       /* default 1000 */
    uint32_t rise;             /* default 2 */
    uint32_t fall;             /* default 3 */
    uint32_t port;             /* probe this port instead of the server's; 0 = the server's */
};

struct conf_backend {
    char name[CONF_NAME_MAX];
    enum conf_mode mode;
    const struct lb_algo *balance;   /* "balance NAME" (lb/lb_algo.h), NULL: roundrobin */
    char balance_arg[CONF_NAME_MAX]; /* "balance NAME ARG", "" when none */
    struct conf_server *servers;
    uint32_t n_servers;
    struct conf_check check;
    uint32_t timeout_connect_ms; /* default 3000 */
    uint32_t timeout_server_ms;  /* default 60000: response header wait / tcp idle */
    uint32_t timeout_queue_ms;   /* default 5000 */
    uint32_t queue_max;          /* default 1024 waiting requests per backend */
    uint32_t retries;            /* default 1 */
    uint32_t keepalive;          /* idle pooled connections per server per worker, default 32 */
    bool shutdown_on_down;       /* close open sessions to a server marked down, default off */
    struct conf_pos pos;
    struct conf_server_tls tls; /* defaults of its tls servers (tls_ca_file, tls_name, ...) */
};

enum conf_loc_match {
    CONF_LOC_PREFIX = 0, /* location /path/ { }: longest prefix wins */
    CONF_LOC_EXACT       /* location = /path { } */
};

enum conf_loc_action {
    CONF_LOC_NONE = 0, /* nothing configured (an error at validation) */
    CONF_LOC_PROXY,    /* proxy BACKEND */
    CONF_LOC_STATIC,   /* root DIR */
    CONF_LOC_RETURN    /* return CODE [TEXT|URL] */
};

/* A location of an HTTP frontend: what to do with requests whose path matches. */
struct conf_location {
    char path[256];
    enum conf_loc_match match;
    enum conf_loc_action action;
    char backend_name[CONF_NAME_MAX]; /* proxy */
    uint32_t backend_index;           /* resolved at validation */
    struct conf_pos backend_pos;
    char root[CONF_PATH_MAX]; /* static: files are root + request path */
    char index[64];           /* default "index.html" */
    bool autoindex;           /* directory listings, default off */
    bool gzip_static;         /* serve FILE.gz to gzip clients, default on */
    bool follow_symlinks;     /* may symlinks leave the root? default off */
    char cache_control[128];  /* "" = no Cache-Control header */
    int return_status;        /* return */
    char return_text[512];    /* 3xx: the Location; otherwise the body */
    struct conf_pos pos;
};

/* certificate CERT_FILE KEY_FILE in a frontend or site (tls/tls_conf.c): a PEM certificate
 * followed by its chain, and its private key. */
struct conf_cert {
    char cert_file[CONF_PATH_MAX];
    char key_file[CONF_PATH_MAX];
    struct conf_pos cert_pos; /* where each file was written, for errors about it */
    struct conf_pos key_pos;
};

/* TLS protocol versions, a bit set (tls_protocols). */
enum conf_tls_version { CONF_TLS_V12 = 1u << 0, CONF_TLS_V13 = 1u << 1 };

/* A managed certificate (tls/acme_conf.c): one keel obtains and renews itself for the names
 * listed, kept in the cluster's state_dir (docs/directives/acme.md). */
#define CONF_ACME_MAX_NAMES 16
#define CONF_ACME_NAME_MAX 254 /* a DNS name (253) or an IP address, and the NUL */

enum conf_acme_issuer {
    CONF_ACME_NONE = 0, /* no managed certificate (default) */
    CONF_ACME_INTERNAL, /* keel's local CA in state_dir (like Caddy's `tls internal`) */
    CONF_ACME_DIRECTORY /* an ACME server (RFC 8555): acme URL */
};

struct conf_acme {
    enum conf_acme_issuer issuer;
    char names[CONF_ACME_MAX_NAMES][CONF_ACME_NAME_MAX]; /* the first is the subject's CN */
    uint32_t n_names;
    uint32_t lifetime_ms;                 /* internal issuer: a leaf's validity, default 12h */
    char directory[512];                  /* CONF_ACME_DIRECTORY: the directory URL */
    struct sockaddr_storage directory_sa; /* its host, resolved at validation */
    socklen_t directory_salen;
    char email[128];             /* acme_email: the account's contact; "" = none */
    bool is_tls_alpn;            /* acme_challenge tls-alpn-01 (RFC 8737); else http-01 */
    char ca_file[CONF_PATH_MAX]; /* acme_ca_file: CAs for the directory; "" = the system's */
    char dir[CONF_PATH_MAX];     /* set at validation: STATE_DIR/tls/FRONTEND */
    char ca_dir[CONF_PATH_MAX];  /* set at validation: STATE_DIR/tls/ca */
    bool is_shared;              /* set at validation: the cluster has a dcs (cert_pair.c) */
    struct conf_pos pos;         /* the acme line */
};

/* A frontend's TLS settings (tls/tls_conf.c), used by its binds that say tls. */
struct conf_tls {
    struct conf_cert *certs; /* in the order written: the first is the default (no SNI match) */
    uint32_t n_certs;
    uint32_t versions;        /* CONF_TLS_V* bits, default both */
    char ciphers[512];        /* TLS 1.2 cipher list (OpenSSL syntax), default Mozilla's
                               * intermediate ECDHE AES-GCM and ChaCha20 suites */
    char ciphersuites[256];   /* TLS 1.3 suites, default OpenSSL's three */
    char groups[256];         /* key exchange groups, default X25519:prime256v1:secp384r1 */
    bool has_bind;            /* some bind says tls */
    struct conf_pos bind_pos; /* the first bind that says tls, for errors */
    struct conf_acme acme;    /* a managed certificate, served after the certificate lines */
    /* tls_tickets off: no session resumption; tls_ticket_period: the ticket key window (0:
     * the default, 1h). The cluster's secret_file is copied here at validation (tls_conf.c)
     * so that the ticket keys of every LB node derive from it; "": a random secret per
     * process. */
    bool tickets_off;
    uint32_t ticket_period_ms;
    char secret_file[CONF_PATH_MAX];
    /* redirect_https on: requests on the plain binds get a redirect to https_port (the
     * first tls bind's port, set at validation). hsts: the whole header line sent on TLS
     * responses ("Strict-Transport-Security: max-age=N[; includeSubDomains][; preload]"
     * and CRLF), "" for none. */
    bool redirect_https;
    uint16_t https_port;
    char hsts[96];
    struct conf_pos redirect_pos; /* where redirect_https on, hsts was written (errors) */
    struct conf_pos hsts_pos;
};

struct conf_frontend {
    char name[CONF_NAME_MAX];
    enum conf_mode mode;
    struct conf_addr *binds;
    uint32_t n_binds;
    char backend_name[CONF_NAME_MAX];
    struct conf_pos backend_pos;    /* where backend_name was written, for errors */
    uint32_t backend_index;         /* index into conf.backends, resolved at validation */
    uint32_t maxconn;               /* concurrent client connections; 0 = auto (fdlimit.c) */
    uint32_t timeout_header_ms;     /* default 10000: full request head must arrive */
    uint32_t timeout_idle_ms;       /* default 60000: keep-alive idle between requests */
    uint32_t timeout_client_ms;     /* default 60000: client inactivity mid-request */
    uint32_t timeout_tunnel_ms;     /* default 3600000: idle upgraded (101) connection */
    uint32_t timeout_handshake_ms;  /* default 10000: a transport's handshake (TLS) */
    uint64_t max_body;              /* bytes, 0 = unlimited (default) */
    uint32_t max_header;            /* bytes of the request head, default 16384 -> 431 */
    uint32_t max_request_line;      /* bytes, default 8192 -> 414 */
    char access_log[CONF_PATH_MAX]; /* "" = off (default), "stderr" or a path */
    enum conf_log_format access_log_format;
    struct conf_location *locations; /* in the order written; matched exact, then longest */
    uint32_t n_locations;
    bool has_backend; /* a default backend for requests no location takes */
    uint32_t role;    /* CONF_ROLE_LB (frontend) or CONF_ROLE_WEB (site) */
    /* Set when the node view (conf_apply_node) keeps a site: the node's name, sent as
     * X-Served-By on every response and on requests forwarded to the app tier. */
    char served_by[CONF_NAME_MAX];
    struct conf_tls tls;
    struct conf_pos pos;
};

struct conf_node {
    char name[CONF_NAME_MAX];
    char address[64];
    uint32_t roles;
    struct conf_pos pos;
};

struct conf_global {
    uint32_t workers;              /* 0 = number of cores (default) */
    char error_log[CONF_PATH_MAX]; /* default "stderr" */
    int log_level;                 /* enum log_level, default LOG_LEVEL_INFO */
    bool has_admin;
    struct conf_addr admin;    /* admin listener: /metrics, /status */
    uint32_t timeout_drain_ms; /* default 10000: SIGTERM waits this long for in-flight work */
};

/* An application the node supervises: app NAME { } (app/app_conf.c fills it). */
enum conf_app_kind {
    CONF_APP_COMMAND = 0, /* an external command: argv */
    CONF_APP_BUILTIN_DEMO /* keel's built-in demo application (keel demo-app) */
};

struct conf_app {
    char name[CONF_NAME_MAX];
    struct conf_addr listen;    /* base address: process i listens on its port + i */
    struct conf_pos listen_pos; /* where listen's value was written, for errors */
    enum conf_app_kind kind;    /* from run */
    char **argv;                /* CONF_APP_COMMAND: argc malloc'd strings, then NULL */
    uint32_t argc;
    char **env; /* "KEY=VALUE", malloc'd, n_env of them, no NULL after */
    uint32_t n_env;
    uint32_t processes;            /* 1..64, default 1 */
    char directory[CONF_PATH_MAX]; /* working directory; "" = keel's */
    char user[CONF_NAME_MAX];      /* run as this user when keel is root; "" = keel's user */
    uint32_t stop_timeout_ms;      /* default 5000: SIGTERM, then SIGKILL after this */
    uint32_t backoff_initial_ms;   /* default 500: first restart delay, doubled each quick exit */
    uint32_t backoff_max_ms;       /* default 30000 */
    struct conf_check check;       /* type CONF_CHECK_NONE (default): no health check */
    struct conf_pos pos;
};

/* Virtual IPs moved between LB nodes by VRRPv3: vip ADDR... { } (vrrp/vrrp_conf.c fills
 * it). Active-passive: one virtual router (vrid) holding every address. Active-active:
 * address i is its own virtual router (vrid + i) that prefers nodes[(i + k) % n] in
 * order k = 0, 1, ... */
#define CONF_VIP_MAX_ADDRS 16
#define CONF_VIP_MAX_NODES 8

enum conf_vip_mode { CONF_VIP_ACTIVE_PASSIVE = 0, CONF_VIP_ACTIVE_ACTIVE };

struct conf_vip {
    struct in_addr addrs[CONF_VIP_MAX_ADDRS]; /* network order */
    uint32_t n_addrs;
    char nodes[CONF_VIP_MAX_NODES][CONF_NAME_MAX]; /* in order of preference */
    uint32_t n_nodes;
    uint32_t priorities[CONF_VIP_MAX_NODES]; /* 0: by position (200, 150, 100, 50, 1...) */
    uint32_t vrid;                           /* 1..255; active-active: vrid + i for address i */
    enum conf_vip_mode mode;
    char interface[32];         /* "" in loopback mode (every address in 127.0.0.0/8) */
    bool is_loopback;           /* set at validation */
    uint32_t prefix;            /* prefix length on the interface, default 32 */
    uint32_t advert_ms;         /* default 50, a multiple of 10 */
    bool preempt;               /* default on */
    uint32_t preempt_delay_ms;  /* default 0 */
    bool unicast;               /* default off (multicast 224.0.0.18); loopback: always */
    bool auth;                  /* default off: HMAC trailer keyed by the cluster secret */
    bool track;                 /* default on: FAULT while every server of a backend is down */
    char notify[CONF_PATH_MAX]; /* "" = none; run as NOTIFY STATE VRID ADDRESSES... */
    uint32_t port;              /* loopback mode: the UDP port adverts use, default 11200 */
    struct conf_pos pos;
};

/* A PostgreSQL primary-replica cluster run by the db nodes: database NAME { } (db/db_conf.c
 * fills it). */
#define CONF_DB_MAX_NODES 8
#define CONF_DB_MAX_DCS 5

enum conf_db_replication { CONF_DB_SYNC = 0, CONF_DB_ASYNC };

struct conf_database {
    char name[CONF_NAME_MAX];
    char nodes[CONF_DB_MAX_NODES][CONF_NAME_MAX]; /* the db nodes, each runs a PostgreSQL */
    uint32_t n_nodes;
    char dcs[CONF_DB_MAX_DCS][256]; /* etcd client URLs, "http://HOST:PORT" */
    uint32_t n_dcs;
    enum conf_db_replication replication; /* default synchronous */
    bool single_node_writes;    /* sync: with no replica left, keep accepting writes? default off */
    uint32_t pg_port;           /* PostgreSQL on each db node's address, default 5432 */
    uint32_t agent_port;        /* the agent's HTTP checks (/primary, /replica...), default 8008 */
    uint32_t write_port;        /* on lb nodes: TCP to the primary, 0 = none */
    uint32_t read_port;         /* on lb nodes: TCP to the replicas (or the primary), 0 = none */
    uint32_t lease_ms;          /* the leader key's lease, default 4000 */
    uint64_t max_lag;           /* bytes a replica may lag and still serve reads, default 16m */
    char bindir[CONF_PATH_MAX]; /* default /usr/lib/postgresql/15/bin */
    char data_dir[CONF_PATH_MAX]; /* default STATE_DIR/db/NAME ("" until validated) */
    char user[CONF_NAME_MAX];     /* runs PostgreSQL, default postgres */

    /* the agent's timeouts (docs/internals/db_fsm.md) */
    uint32_t switchover_timeout_ms; /* for the target to catch up, then to lead; default 10s */
    uint32_t stream_timeout_ms;     /* a replica receiving nothing follows again; default 5s */
    struct conf_pos pos;
};

struct conf {
    char cluster_name[CONF_NAME_MAX]; /* "" if no cluster block */
    char state_dir[CONF_PATH_MAX];    /* cluster state_dir; "" = not set */
    char secret_file[CONF_PATH_MAX];  /* cluster secret_file; "" = not set */
    /* cluster dcs etcd URL...: where the LB nodes keep managed certificates, their order lock
     * and the internal CA (tls/cert_pair.c); none: each LB node keeps its own. */
    char dcs[CONF_DB_MAX_DCS][256];
    uint32_t n_dcs;
    uint32_t acme_lease_ms; /* cluster acme_lease: the order lock's TTL, default 10s */
    struct conf_global global;
    struct conf_node *nodes;
    uint32_t n_nodes;
    struct conf_frontend *frontends;
    uint32_t n_frontends;
    struct conf_backend *backends;
    uint32_t n_backends;
    struct conf_app *apps;
    uint32_t n_apps;
    struct conf_vip *vips;
    uint32_t n_vips;
    struct conf_database *databases;
    uint32_t n_databases;
};

#endif

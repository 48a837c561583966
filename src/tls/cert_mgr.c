/* SPDX-License-Identifier: MIT */
/* Managed certificates (cert_mgr.h): one state machine per frontend with `acme`, its timer
 * on the control loop, the issuing (internal CA today) and storing, and the hand-over to the
 * lb, which swaps the frontend's contexts. Transitions, in one table: */
#include "tls/cert_mgr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "core/ev.h"
#include "core/fsm.h"
#include "core/log.h"
#include "monitor/metrics.h"
#include "db/etcd.h"
#include "tls/acme_jws.h"
#include "tls/acme_order.h"
#include "tls/cert_pair.h"
#include "tls/cert_seal.h"
#include "tls/cert_store.h"
#include "tls/tls_client.h"
#include "tls/tls_issuer.h"

#define PLACEHOLDER_LIFETIME_S (24u * 3600u)
#define ORDER_TIMEOUT_MS (5u * 60u * 1000u)
#define ACCOUNT_KEY "account.key"

static const char *const state_names[CERT_STATE_COUNT] = {
    [CERT_STATE_NONE] = "none",       [CERT_STATE_VALID] = "valid",
    [CERT_STATE_ISSUING] = "issuing", [CERT_STATE_BACKOFF] = "backoff",
    [CERT_STATE_WAITING] = "waiting",
};

#define BIT(s) (1u << (s))

/* legal_next[from]: the states from may move to. Every move is logged with its reason. */
static const uint32_t legal_next[CERT_STATE_COUNT] = {
    /* none: the stored certificate was read (valid), or could not be and one is asked for;
     * across the pair: taken from etcd (valid), or another node orders (waiting) */
    [CERT_STATE_NONE] = BIT(CERT_STATE_VALID) | BIT(CERT_STATE_ISSUING) | BIT(CERT_STATE_WAITING),
    /* valid: its renewal time came (issuing; across the pair: waiting, when another node
     * holds the order lock) */
    [CERT_STATE_VALID] = BIT(CERT_STATE_ISSUING) | BIT(CERT_STATE_WAITING),
    /* issuing: stored and served (valid), or failed (backoff) */
    [CERT_STATE_ISSUING] = BIT(CERT_STATE_VALID) | BIT(CERT_STATE_BACKOFF),
    /* backoff: the retry timer fired (issuing, or waiting when the lock went to another
     * node), or the holder's certificate arrived from etcd (valid) */
    [CERT_STATE_BACKOFF] =
        BIT(CERT_STATE_ISSUING) | BIT(CERT_STATE_WAITING) | BIT(CERT_STATE_VALID),
    /* waiting (across the pair): the holder's certificate arrived from etcd (valid), or
     * this node took the lock (issuing) */
    [CERT_STATE_WAITING] = BIT(CERT_STATE_VALID) | BIT(CERT_STATE_ISSUING),
};

const char *cert_state_name(enum cert_state s)
{
    return (unsigned)s < CERT_STATE_COUNT ? state_names[s] : "?";
}

bool cert_state_is_legal(enum cert_state from, enum cert_state to)
{
    return (unsigned)from < CERT_STATE_COUNT && (unsigned)to < CERT_STATE_COUNT &&
           (legal_next[from] & BIT(to)) != 0;
}

/* One managed certificate. */
struct cert_machine {
    struct cert_mgr *mgr;
    const struct conf_frontend *fe;
    char ctx[CONF_NAME_MAX + 16]; /* "cert www", for the log */
    enum cert_state state;
    struct ev_timer timer; /* renewal (valid) or retry (backoff) */
    time_t not_before, not_after;
    char serial[80];
    uint32_t failures;    /* consecutive, for the backoff */
    uint64_t renewed;     /* keel_cert_renewals_total{result="ok"} */
    uint64_t failed;      /* {result="failed"} */
    uint64_t adopted;     /* keel_cert_adopted_total: taken from etcd, issued by another node */
    bool is_placeholder;  /* the served one is self-signed: a placeholder */
    int64_t seen_rev;     /* the mod_revision of etcd's certificate last looked at */
    char etcd_serial[80]; /* what etcd holds (as of seen_rev): serial, not_after */
    time_t etcd_not_after;
    /* ACME (issuer directory): the order under way, the account and the TLS client, made
     * at start (load time). */
    struct acme_order *order;
    struct tls_client *tls;
    EVP_PKEY *account_key;
};

struct cert_mgr {
    struct ev_loop *loop;
    struct cert_pair *pair; /* the cluster has a dcs: certificates shared through etcd */
    bool is_pair_wanted;    /* ... even when pair could not be made: then nothing issues */
    cert_stored_fn on_stored;
    void *data;
    struct cert_machine *m;
    uint32_t n;
};

/* ---------------------------------------------------------------- pure parts */

uint64_t cert_renew_at_ms(time_t not_before, time_t not_after, double jitter)
{
    if (not_after <= not_before) {
        return (uint64_t)not_before * 1000u;
    }
    uint64_t life_ms = (uint64_t)(not_after - not_before) * 1000u;
    uint64_t at = (uint64_t)not_before * 1000u + life_ms * 2 / 3;
    if (jitter < 0 || jitter >= 1) {
        jitter = 0;
    }
    return at - (uint64_t)(jitter * (double)(life_ms / 20));
}

uint64_t cert_backoff_ms(uint32_t failures)
{
    uint64_t d = CERT_BACKOFF_MIN_MS;
    for (uint32_t i = 1; i < failures && d < CERT_BACKOFF_MAX_MS; i++) {
        d *= 2;
    }
    return d < CERT_BACKOFF_MAX_MS ? d : CERT_BACKOFF_MAX_MS;
}

/* ---------------------------------------------------------------- the machine */

static void set_state(struct cert_machine *c, enum cert_state to, const char *reason)
{
    if (!cert_state_is_legal(c->state, to)) {
        fsm_illegal(FSM_MACHINE_CERT, c->ctx, cert_state_name(c->state), cert_state_name(to),
                    reason);
        return;
    }
    log_notice(c->ctx, "%s -> %s (%s)", cert_state_name(c->state), cert_state_name(to), reason);
    c->state = to;
}

static double jitter(void)
{
    uint32_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1) {
        r = 0;
    }
    return (double)r / 4294967296.0;
}

static uint64_t now_wall_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts); /* cannot fail with a valid clock */
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Arm the renewal of the certificate just read or stored. */
static void arm_renewal(struct cert_machine *c)
{
    uint64_t at = cert_renew_at_ms(c->not_before, c->not_after, jitter());
    uint64_t now = now_wall_ms();
    uint64_t delay = at > now ? at - now : 0;
    ev_timer_start(c->mgr->loop, &c->timer, delay);
    log_info(c->ctx, "serial %s valid until %ld, renewal in %llu ms", c->serial, (long)c->not_after,
             (unsigned long long)delay);
}

/* Note the stored certificate's times and serial. */
static void remember(struct cert_machine *c, const struct tls_cert *cert)
{
    if (tls_cert_times(cert->leaf, &c->not_before, &c->not_after) != 0) {
        c->not_before = c->not_after = 0; /* renews at once */
    }
    tls_cert_serial(cert->leaf, c->serial, sizeof(c->serial));
    c->is_placeholder = tls_cert_is_self_signed(cert->leaf);
}

/* Issue and store a certificate for fe (internal CA). Blocking: a key generation, a
 * signature and a few small files written and synced. */
static int issue_internal(const struct conf_frontend *fe, time_t now, struct tls_cert *out,
                          struct errbuf *eb)
{
    const struct conf_acme *a = &fe->tls.acme;
    struct tls_ca ca;
    bool created = false;
    int rc = tls_ca_open(a->ca_dir, now, &ca, &created, eb);
    if (rc != 0) {
        return rc;
    }
    if (created) {
        log_notice("tls", "internal CA created: clients trust %s", ca.cert_path);
    }
    rc = tls_ca_issue(&ca, a->names, a->n_names, a->lifetime_ms / 1000u, now, out, eb);
    tls_ca_fini(&ca);
    if (rc == 0) {
        rc = tls_cert_store(a->dir, out, eb);
        if (rc != 0) {
            tls_cert_fini(out);
        }
    }
    return rc;
}

/* The issuer failed: keep what is served, retry after the backoff. */
static void issue_failed(struct cert_machine *c, const char *why)
{
    c->failures++;
    c->failed++;
    uint64_t delay = cert_backoff_ms(c->failures);
    log_warn(c->ctx, "renewal failed: %s; serial %s stays, retry %u in %llu ms", why,
             c->serial[0] != '\0' ? c->serial : "(none)", c->failures, (unsigned long long)delay);
    set_state(c, CERT_STATE_BACKOFF, "issuing failed");
    ev_timer_start(c->mgr->loop, &c->timer, delay);
}

/* A new certificate is stored: serve it. */
static void issued(struct cert_machine *c, const struct tls_cert *cert)
{
    remember(c, cert);
    c->failures = 0;
    c->renewed++;
    char why[128];
    (void)snprintf(why, sizeof(why), "stored serial %.80s", c->serial);
    set_state(c, CERT_STATE_VALID, why);
    arm_renewal(c);
    c->mgr->on_stored(c->mgr->data, c->fe->name);
    if (cert_pair_is_holder(c->mgr->pair)) {
        cert_pair_publish(c->mgr->pair, c->fe->name, cert);
    }
}

static void on_order_done(void *data, int rc, struct tls_cert *cert, const char *why)
{
    struct cert_machine *c = data;
    c->order = NULL;
    struct errbuf eb = {{0}};
    if (rc == 0) {
        rc = tls_cert_store(c->fe->tls.acme.dir, cert, &eb);
        why = eb.msg;
    }
    if (rc != 0) {
        issue_failed(c, why);
        return;
    }
    issued(c, cert);
}

/* Across the pair, only the lock's holder issues (and, with the internal CA, once the
 * cluster's CA is read from etcd): the others wait for its certificate in etcd. */
static bool pair_may_issue(struct cert_machine *c)
{
    struct cert_pair *p = c->mgr->pair;
    if (p == NULL) {
        return !c->mgr->is_pair_wanted;
    }
    if (cert_pair_is_holder(p) &&
        (c->fe->tls.acme.issuer != CONF_ACME_INTERNAL || cert_pair_is_ca_ready(p))) {
        return true;
    }
    char why[200];
    if (!cert_pair_is_holder(p)) {
        (void)snprintf(why, sizeof(why), "the order lock is held by %.128s",
                       cert_pair_holder(p)[0] != '\0' ? cert_pair_holder(p) : "no node yet");
    } else {
        (void)snprintf(why, sizeof(why), "the cluster's CA is not in etcd yet");
    }
    if (c->state != CERT_STATE_WAITING) {
        set_state(c, CERT_STATE_WAITING, why);
    }
    return false;
}

/* An order's challenge answer, shared through etcd: the node the server reaches answers. */
static void on_answer(void *data, bool is_tls_alpn, const char *name, const char *key_authorization)
{
    cert_pair_answer(data, is_tls_alpn, name, key_authorization);
}

static void on_timer(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    struct cert_machine *c = t->data;
    if (!pair_may_issue(c)) {
        return;
    }
    set_state(c, CERT_STATE_ISSUING,
              c->state == CERT_STATE_WAITING   ? "this node holds the order lock"
              : c->state == CERT_STATE_BACKOFF ? "retrying"
              : c->state == CERT_STATE_NONE    ? "no usable certificate stored"
                                               : "two thirds of its life passed");
    const struct conf_acme *a = &c->fe->tls.acme;
    if (a->issuer == CONF_ACME_DIRECTORY) {
        struct acme_order_conf oc = {
            .directory_url = a->directory,
            .addr = (const struct sockaddr *)&a->directory_sa,
            .addrlen = a->directory_salen,
            .tls = c->tls,
            .account_key = c->account_key,
            .email = a->email,
            .names = a->names,
            .n_names = a->n_names,
            .log_ctx = c->ctx,
            .is_tls_alpn = a->is_tls_alpn,
            .timeout_ms = ORDER_TIMEOUT_MS,
        };
        if (c->mgr->pair != NULL) {
            oc.on_answer = on_answer;
            oc.answer_data = c->mgr->pair;
            oc.answer_delay_ms = cert_pair_answer_delay_ms(c->mgr->pair);
        }
        c->order = c->tls != NULL && c->account_key != NULL
                       ? acme_order_start(c->mgr->loop, &oc, on_order_done, c)
                       : NULL;
        if (c->order == NULL) {
            issue_failed(c, c->tls == NULL           ? "no TLS client for the directory"
                            : c->account_key == NULL ? "no account key"
                                                     : "cannot start an order");
        }
        return;
    }
    struct tls_cert cert;
    struct errbuf eb = {{0}};
    if (issue_internal(c->fe, time(NULL), &cert, &eb) != 0) {
        issue_failed(c, eb.msg);
        return;
    }
    issued(c, &cert);
    tls_cert_fini(&cert);
}

/* Start: read what cert_mgr_prepare stored. */
static void machine_start(struct cert_machine *c)
{
    struct tls_cert cert;
    struct errbuf eb = {{0}};
    if (tls_cert_read(c->fe->tls.acme.dir, time(NULL), &cert, &eb) != 0) {
        /* Removed or damaged since the generation was built: ask at once. */
        log_warn(c->ctx, "%s: issuing a new one", eb.msg);
        if (c->mgr->is_pair_wanted) {
            return; /* or take it from etcd: the first poll says */
        }
        ev_timer_start(c->mgr->loop, &c->timer, 0); /* none -> issuing, from the loop */
        return;
    }
    bool placeholder = (c->fe->tls.acme.issuer == CONF_ACME_DIRECTORY || c->mgr->is_pair_wanted) &&
                       tls_cert_is_self_signed(cert.leaf);
    remember(c, &cert);
    tls_cert_fini(&cert);
    if (placeholder && c->mgr->is_pair_wanted) {
        return; /* the first poll of etcd says whether to take one from there or issue */
    }
    if (placeholder) {
        /* Served until the first order succeeds; ask at once. */
        ev_timer_start(c->mgr->loop, &c->timer, 0);
        return;
    }
    set_state(c, CERT_STATE_VALID, "stored certificate read");
    arm_renewal(c);
}

/* The ACME account key, TLS_DIR/acme/account.key, made on first use (load time). */
static EVP_PKEY *account_key_open(const char *tls_dir, struct errbuf *eb)
{
    char dir[4096], path[4200];
    (void)snprintf(dir, sizeof(dir), "%s/acme", tls_dir);
    (void)snprintf(path, sizeof(path), "%s/%s", dir, ACCOUNT_KEY);
    FILE *f = fopen(path, "re");
    if (f != NULL) {
        EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        (void)fclose(f);
        ERR_clear_error();
        if (k == NULL) {
            errbuf_set(eb, "no PEM key in %s", path);
        }
        return k;
    }
    EVP_PKEY *k = acme_key_new();
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len = 0;
    if (k != NULL && b != NULL && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1) {
        len = BIO_get_mem_data(b, &data);
    }
    ERR_clear_error();
    int rc = -ENOMEM;
    if (len > 0) {
        rc = cert_store_mkdirs(dir, eb);
        if (rc == 0) {
            rc = cert_store_write(path, data, (size_t)len, 0600, eb);
        }
    } else {
        errbuf_set(eb, "cannot make an account key");
    }
    BIO_free(b);
    if (rc != 0) {
        EVP_PKEY_free(k);
        return NULL;
    }
    log_notice("tls", "ACME account key created: %s", path);
    return k;
}

/* The ACME machine's account key and TLS client (load time: files). Failures are logged;
 * the machine then fails its orders and retries with its backoff. */
static void machine_acme_init(struct cert_machine *c)
{
    const struct conf_acme *a = &c->fe->tls.acme;
    char host[256], path[512], tls_dir[CONF_PATH_MAX];
    uint16_t port;
    if (acme_url_split(a->directory, host, sizeof(host), &port, path, sizeof(path)) != 0) {
        return;
    }
    struct errbuf eb = {{0}};
    struct tls_client_conf tc = {.ca_file = a->ca_file[0] != '\0' ? a->ca_file : NULL,
                                 .name = host};
    c->tls = tls_client_new(&tc, &eb);
    if (c->tls == NULL) {
        log_error(c->ctx, "TLS client for %s: %s", a->directory, eb.msg);
    }
    (void)snprintf(tls_dir, sizeof(tls_dir), "%s", a->ca_dir);
    char *slash = strrchr(tls_dir, '/'); /* STATE_DIR/tls/ca -> STATE_DIR/tls */
    if (slash != NULL) {
        *slash = '\0';
    }
    c->account_key = account_key_open(tls_dir, &eb);
    if (c->account_key == NULL) {
        log_error(c->ctx, "ACME account key: %s", eb.msg);
    }
}

/* ---------------------------------------------------------------- across the pair */

/* Serve the certificate another node issued (read from etcd): store it, arm its renewal,
 * and have the lb swap its contexts, the path a renewal takes. */
static void adopt(struct cert_machine *c, const struct tls_cert *cert)
{
    struct errbuf eb = {{0}};
    if (tls_cert_store(c->fe->tls.acme.dir, cert, &eb) != 0) {
        log_error(c->ctx, "cannot store the certificate from etcd: %s", eb.msg);
        return;
    }
    remember(c, cert);
    c->failures = 0;
    c->adopted++;
    char why[160];
    (void)snprintf(why, sizeof(why), "serial %.80s from etcd", c->serial);
    if (c->state != CERT_STATE_VALID) {
        set_state(c, CERT_STATE_VALID, why);
    } else {
        log_notice(c->ctx, "valid: %s", why);
    }
    ev_timer_stop(c->mgr->loop, &c->timer);
    arm_renewal(c);
    c->mgr->on_stored(c->mgr->data, c->fe->name);
}

/* One machine after a poll: take etcd's certificate, publish ours (the holder), or start
 * issuing (the holder, when there is none anywhere). */
static void pair_machine(struct cert_machine *c, struct cert_pair *p)
{
    if (c->state == CERT_STATE_ISSUING) {
        return; /* its result is stored, then compared with etcd's at the next poll */
    }
    const struct etcd_kv *kv = cert_pair_cert_kv(p, c->fe->name);
    bool is_holder = cert_pair_is_holder(p);
    bool has_served = c->state != CERT_STATE_NONE && !c->is_placeholder && c->serial[0] != '\0';
    if (kv == NULL) {
        c->seen_rev = 0;
        c->etcd_serial[0] = '\0';
    } else if (kv->mod_revision != c->seen_rev) {
        c->seen_rev = kv->mod_revision;
        struct tls_cert cert;
        struct errbuf eb = {{0}};
        if (cert_pair_cert_open(p, c->fe->name, kv, time(NULL), &cert, &eb) != 0) {
            log_warn(c->ctx, "the certificate in etcd cannot serve: %s", eb.msg);
            c->etcd_serial[0] = '\0';
            c->etcd_not_after = 0;
        } else {
            time_t nb;
            tls_cert_serial(cert.leaf, c->etcd_serial, sizeof(c->etcd_serial));
            if (tls_cert_times(cert.leaf, &nb, &c->etcd_not_after) != 0) {
                c->etcd_not_after = 0;
            }
            if (cert_pair_should_adopt(is_holder, has_served, c->serial, c->not_after,
                                       c->etcd_serial, c->etcd_not_after)) {
                adopt(c, &cert);
                has_served = true;
            }
            tls_cert_fini(&cert);
        }
    }
    if (cert_pair_should_publish(is_holder, has_served, c->etcd_serial[0] != '\0', c->serial,
                                 c->not_after, c->etcd_serial, c->etcd_not_after)) {
        struct tls_cert cert;
        struct errbuf eb = {{0}};
        if (tls_cert_read(c->fe->tls.acme.dir, time(NULL), &cert, &eb) == 0) {
            cert_pair_publish(p, c->fe->name, &cert);
            tls_cert_fini(&cert);
        }
        return;
    }
    if (!has_served && (c->state == CERT_STATE_NONE || c->state == CERT_STATE_WAITING)) {
        if (is_holder && pair_may_issue(c)) {
            ev_timer_start(c->mgr->loop, &c->timer, 0);
        } else if (!is_holder) {
            (void)pair_may_issue(c); /* none -> waiting, with who holds the lock */
        }
    } else if (c->state == CERT_STATE_WAITING && is_holder) {
        ev_timer_start(c->mgr->loop, &c->timer, 0); /* this node took the lock: renew */
    }
}

static void on_pair_poll(void *data, struct cert_pair *p)
{
    struct cert_mgr *m = data;
    for (uint32_t i = 0; i < m->n; i++) {
        pair_machine(&m->m[i], p);
    }
}

struct cert_mgr *cert_mgr_new(struct ev_loop *loop, const struct conf *conf, const char *node,
                              cert_stored_fn fn, void *data, const struct cert_mgr *prev)
{
    struct cert_mgr *m = calloc(1, sizeof(*m));
    if (m != NULL) {
        m->m = calloc(conf->n_frontends + 1, sizeof(*m->m));
    }
    if (m == NULL || m->m == NULL) {
        free(m);
        log_error("tls", "out of memory starting the managed certificates");
        return NULL;
    }
    m->loop = loop;
    m->on_stored = fn;
    m->data = data;
    bool is_managed = false;
    for (uint32_t i = 0; i < conf->n_frontends; i++) {
        is_managed = is_managed || conf->frontends[i].tls.acme.issuer != CONF_ACME_NONE;
    }
    if (is_managed && conf->n_dcs > 0) {
        m->is_pair_wanted = true;
        char identity[128], host[64] = "keel";
        if (node == NULL) {
            (void)gethostname(host, sizeof(host) - 1); /* keeps "keel" on failure */
        }
        (void)snprintf(identity, sizeof(identity), "%.63s/%ld", node != NULL ? node : host,
                       (long)getpid());
        struct errbuf eb = {{0}};
        m->pair = cert_pair_new(loop, conf, identity, on_pair_poll, m, &eb);
        cert_pair_take_over(m->pair, prev != NULL ? prev->pair : NULL);
        if (m->pair == NULL) {
            /* Never each node on its own behind the operator's back: serve what is stored,
             * issue nothing. */
            log_error("tls", "%s: managed certificates are not renewed", eb.msg);
        }
    }
    for (uint32_t i = 0; i < conf->n_frontends; i++) {
        const struct conf_frontend *fe = &conf->frontends[i];
        if (fe->tls.acme.issuer == CONF_ACME_NONE) {
            continue;
        }
        struct cert_machine *c = &m->m[m->n++];
        c->mgr = m;
        c->fe = fe;
        (void)snprintf(c->ctx, sizeof(c->ctx), "cert %s", fe->name);
        ev_timer_init(&c->timer, on_timer, c, "cert renewal");
        if (fe->tls.acme.issuer == CONF_ACME_DIRECTORY) {
            machine_acme_init(c);
        }
        for (uint32_t k = 0; prev != NULL && k < prev->n; k++) {
            if (strcmp(prev->m[k].fe->name, fe->name) == 0) {
                c->renewed = prev->m[k].renewed;
                c->failed = prev->m[k].failed;
                c->adopted = prev->m[k].adopted;
            }
        }
        machine_start(c);
    }
    return m;
}

void cert_mgr_free(struct cert_mgr *m)
{
    if (m == NULL) {
        return;
    }
    for (uint32_t i = 0; i < m->n; i++) {
        struct cert_machine *c = &m->m[i];
        ev_timer_stop(m->loop, &c->timer);
        acme_order_cancel(c->order); /* its connection goes before the client it uses */
        c->order = NULL;
        tls_client_free(c->tls);
        EVP_PKEY_free(c->account_key);
    }
    cert_pair_free(m->pair);
    free(m->m);
    free(m);
}

int cert_mgr_state(const struct cert_mgr *m, const char *frontend)
{
    for (uint32_t i = 0; m != NULL && i < m->n; i++) {
        if (strcmp(m->m[i].fe->name, frontend) == 0) {
            return (int)m->m[i].state;
        }
    }
    return -1;
}

/* ---------------------------------------------------------------- load time */

int cert_mgr_prepare(const struct conf_frontend *fe, time_t now, struct errbuf *eb)
{
    const struct conf_acme *a = &fe->tls.acme;
    struct tls_cert cert;
    struct errbuf why = {{0}};
    if (a->is_shared) {
        /* Keys go to etcd sealed with the cluster secret: a node that cannot read it does
         * not take part (a configuration error, at start and reload). */
        uint8_t key[CERT_SEAL_KEY_LEN];
        int rc = cert_seal_key_load(fe->tls.secret_file, key, &why);
        OPENSSL_cleanse(key, sizeof(key));
        if (rc != 0) {
            errbuf_set(eb,
                       "the cluster's dcs keeps the keys sealed with the cluster secret, "
                       "which this node cannot use: %s",
                       why.msg);
            return -KEEL_ECONFIG;
        }
    }
    int rc = tls_cert_read(a->dir, now, &cert, &why);
    if (rc == 0) {
        tls_cert_fini(&cert);
    } else {
        if (rc != -ENOENT) {
            log_warn("tls", "%s: the stored certificate cannot serve (%s): issuing a new one",
                     fe->name, why.msg);
        }
        if (a->issuer == CONF_ACME_DIRECTORY || a->is_shared) {
            /* Until the first order succeeds (across the pair: until etcd's certificate is
             * read, or this node issues one): a self-signed placeholder, so that the tls
             * binds can start (and the http-01 binds answer). */
            rc = tls_selfsigned_issue(a->names, a->n_names, PLACEHOLDER_LIFETIME_S, now, &cert, eb);
            if (rc == 0) {
                rc = tls_cert_store(a->dir, &cert, eb);
                tls_cert_fini(&cert);
            }
            if (rc == 0) {
                log_notice("tls", "%s: serving a self-signed placeholder until %s issues one",
                           fe->name, a->is_shared ? "the cluster (etcd)" : a->directory);
            }
            return rc;
        }
        rc = issue_internal(fe, now, &cert, eb);
        if (rc != 0) {
            return rc;
        }
        char serial[80];
        tls_cert_serial(cert.leaf, serial, sizeof(serial));
        log_notice("tls", "%s: issued serial %s by the internal CA, stored in %s", fe->name, serial,
                   a->dir);
        tls_cert_fini(&cert);
    }
    if (a->issuer == CONF_ACME_INTERNAL) {
        log_notice("tls", "%s: certificates by keel's internal CA: clients trust %s/%s", fe->name,
                   a->ca_dir, TLS_CA_CERT);
    }
    return 0;
}

/* ---------------------------------------------------------------- metrics */

enum { CM_EXPIRY = 0, CM_RENEWALS, CM_ADOPTED, CM_LOCK };

static const struct metric_desc cert_metrics[] = {
    [CM_EXPIRY] = {"keel_cert_expiry_timestamp_seconds", METRIC_GAUGE,
                   "When the managed certificate served now expires (Unix time).",
                   METRIC_LABELS("frontend")},
    [CM_RENEWALS] = {"keel_cert_renewals_total", METRIC_COUNTER,
                     "Attempts to renew a managed certificate, by result (ok, failed).",
                     METRIC_LABELS("frontend", "result")},
    [CM_ADOPTED] = {"keel_cert_adopted_total", METRIC_COUNTER,
                    "Managed certificates taken from etcd, issued by another LB node.",
                    METRIC_LABELS("frontend")},
    [CM_LOCK] = {"keel_cert_order_lock_held", METRIC_GAUGE,
                 "1 when this node holds the managed certificates' order lock in etcd.", NULL},
};

const struct metric_table cert_mgr_metric_table =
    METRIC_TABLE("Managed certificates", "src/tls/cert_mgr.c", cert_metrics);

void cert_mgr_metrics(const struct cert_mgr *m, struct metrics_out *o)
{
    if (m == NULL || m->n == 0) {
        return;
    }
    const struct metric_desc *d = &cert_metrics[CM_EXPIRY];
    metrics_family(o, d);
    for (uint32_t i = 0; i < m->n; i++) {
        metrics_sample_u64(o, d, (const char *const[]){m->m[i].fe->name},
                           (uint64_t)m->m[i].not_after);
    }
    d = &cert_metrics[CM_RENEWALS];
    metrics_family(o, d);
    for (uint32_t i = 0; i < m->n; i++) {
        metrics_sample_u64(o, d, (const char *const[]){m->m[i].fe->name, "ok"}, m->m[i].renewed);
        metrics_sample_u64(o, d, (const char *const[]){m->m[i].fe->name, "failed"}, m->m[i].failed);
    }
    if (!m->is_pair_wanted) {
        return;
    }
    d = &cert_metrics[CM_ADOPTED];
    metrics_family(o, d);
    for (uint32_t i = 0; i < m->n; i++) {
        metrics_sample_u64(o, d, (const char *const[]){m->m[i].fe->name}, m->m[i].adopted);
    }
    d = &cert_metrics[CM_LOCK];
    metrics_family(o, d);
    metrics_sample_u64(o, d, NULL, cert_pair_is_holder(m->pair) ? 1 : 0);
}

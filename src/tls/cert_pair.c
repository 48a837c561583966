/* SPDX-License-Identifier: MIT */
/* Managed certificates across the LB pair (cert_pair.h): the poll of the cluster's acme keys
 * in etcd, the order lock, the internal CA shared through etcd, and sealed bundles. Keys:
 *
 *   /keel/CLUSTER/acme/lock        the identity of the node that orders ("lb1/1234"), with
 *                                  a lease of acme_lease; created only if absent
 *   /keel/CLUSTER/acme/ca          the internal CA (key and certificate), sealed; created
 *                                  only if absent, by the first holder
 *   /keel/CLUSTER/acme/cert/NAME   frontend NAME's certificate (key, leaf, chain), sealed
 *   /keel/CLUSTER/acme/answer/http-01/TOKEN, .../answer/tls-alpn-01/IDENTIFIER
 *                                  the key authorization of a challenge under way, put by
 *                                  the holder's order with its lease: every node answers
 *
 * The poll runs every third of the lease; the holder renews its lease at each. */
#include "tls/cert_pair.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/ev.h"
#include "core/log.h"
#include "db/etcd.h"
#include "tls/acme_alpn.h"
#include "tls/acme_http01.h"
#include "tls/cert_seal.h"
#include "tls/tls_issuer.h"

#define LOG_CTX "acme pair"

struct cert_pair {
    struct ev_loop *loop;
    const struct conf *conf;
    struct etcd *etcd;
    uint8_t key[CERT_SEAL_KEY_LEN];
    char identity[128];
    char prefix[CONF_NAME_MAX + 32]; /* "/keel/CLUSTER/acme/" */
    char lock_key[CONF_NAME_MAX + 40];
    char ca_key[CONF_NAME_MAX + 40];
    uint32_t lease_ms;
    struct ev_timer timer; /* the poll */
    cert_pair_poll_fn on_poll;
    void *data;
    /* the lock */
    int64_t lease_id; /* ours, 0: none */
    bool is_holder;
    bool is_lock_busy;   /* a grant/create/keepalive in flight */
    uint64_t renewed_ms; /* monotonic: the last time the lease was known alive */
    char holder[128];
    /* the poll */
    bool is_poll_busy;
    bool is_failing;               /* the last poll failed (logged once per streak) */
    const struct etcd_result *res; /* during on_poll only */
    /* the CA */
    int64_t ca_rev;
    bool is_ca_ready;
    bool is_ca_busy;
    /* the challenge answers this object added to the node's tables, from etcd */
    struct pair_answer {
        bool is_alpn;
        char name[256];
    } answers[ACME_HTTP01_MAX];
    uint32_t n_answers;
};

#define ANSWER_HTTP "answer/http-01/"
#define ANSWER_ALPN "answer/tls-alpn-01/"

/* ---------------------------------------------------------------- pure parts */

enum cert_pair_lock_step cert_pair_lock_step(const char *holder, size_t holder_len, bool has_lease,
                                             const char *self)
{
    if (holder == NULL) {
        return CERT_PAIR_LOCK_ACQUIRE;
    }
    bool is_self = holder_len == strlen(self) && memcmp(holder, self, holder_len) == 0;
    return is_self && has_lease ? CERT_PAIR_LOCK_RENEW : CERT_PAIR_LOCK_FOLLOW;
}

bool cert_pair_should_adopt(bool is_holder, bool has_served, const char *served_serial,
                            time_t served_not_after, const char *etcd_serial, time_t etcd_not_after)
{
    if (!has_served) {
        return true;
    }
    if (strcmp(served_serial, etcd_serial) == 0) {
        return false;
    }
    return !is_holder || etcd_not_after > served_not_after;
}

bool cert_pair_should_publish(bool is_holder, bool has_served, bool etcd_has,
                              const char *served_serial, time_t served_not_after,
                              const char *etcd_serial, time_t etcd_not_after)
{
    if (!is_holder || !has_served) {
        return false;
    }
    if (!etcd_has) {
        return true;
    }
    return strcmp(served_serial, etcd_serial) != 0 && served_not_after > etcd_not_after;
}

char *cert_pair_bundle(const struct tls_cert *c, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    bool ok = b != NULL && PEM_write_bio_PrivateKey(b, c->key, NULL, NULL, 0, NULL, NULL) == 1 &&
              PEM_write_bio_X509(b, c->leaf) == 1;
    for (int i = 0; ok && c->chain != NULL && i < sk_X509_num(c->chain); i++) {
        ok = PEM_write_bio_X509(b, sk_X509_value(c->chain, i)) == 1;
    }
    char *data = NULL, *out = NULL;
    long n = ok ? BIO_get_mem_data(b, &data) : 0;
    if (n > 0) {
        out = malloc((size_t)n + 1);
        if (out != NULL) {
            memcpy(out, data, (size_t)n);
            out[n] = '\0';
            *len = (size_t)n;
        }
        OPENSSL_cleanse(data, (size_t)n);
    }
    BIO_free(b);
    ERR_clear_error();
    return out;
}

static bool valid_at(X509 *x, time_t now)
{
    time_t nb, na;
    return now == 0 || (tls_cert_times(x, &nb, &na) == 0 && nb <= now && now < na);
}

int cert_pair_bundle_parse(const void *text, size_t len, time_t now, struct tls_cert *out,
                           struct errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    if (len > INT32_MAX) {
        errbuf_set(eb, "bundle too large");
        return -KEEL_ECONFIG;
    }
    /* PEM readers skip the blocks of other types: one pass for the key, one for the
     * certificates. */
    BIO *kb = BIO_new_mem_buf(text, (int)len);
    BIO *cb = BIO_new_mem_buf(text, (int)len);
    const char *why = NULL;
    if (kb == NULL || cb == NULL) {
        why = "out of memory";
    } else if ((out->key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL)) == NULL) {
        why = "no private key";
    } else if ((out->leaf = PEM_read_bio_X509(cb, NULL, NULL, NULL)) == NULL) {
        why = "no certificate";
    } else if (X509_check_private_key(out->leaf, out->key) != 1) {
        why = "the key does not match the certificate";
    } else if (!valid_at(out->leaf, now)) {
        why = "the certificate is not valid now";
    }
    X509 *x;
    while (why == NULL && (x = PEM_read_bio_X509(cb, NULL, NULL, NULL)) != NULL) {
        if (out->chain == NULL) {
            out->chain = sk_X509_new_null();
        }
        if (out->chain == NULL || sk_X509_push(out->chain, x) == 0) {
            X509_free(x);
            why = "out of memory";
        } else if (!valid_at(x, now)) {
            why = "a certificate of the chain is not valid now";
        }
    }
    BIO_free(kb);
    BIO_free(cb);
    ERR_clear_error();
    if (why != NULL) {
        errbuf_set(eb, "%s", why);
        tls_cert_fini(out);
        return -KEEL_ECONFIG;
    }
    return 0;
}

/* ---------------------------------------------------------------- the lock */

static uint64_t mono_ms(const struct cert_pair *p)
{
    return ev_now_ms(p->loop);
}

static void lock_lost(struct cert_pair *p, const char *why)
{
    if (p->is_holder) {
        log_notice(LOG_CTX, "%s: this node no longer holds the order lock (%s)", p->identity, why);
    }
    p->is_holder = false;
    p->lease_id = 0;
}

static void on_created(void *data, const struct etcd_result *res)
{
    struct cert_pair *p = data;
    if (res->err == -ECANCELED) {
        return;
    }
    p->is_lock_busy = false;
    if (res->err != 0) {
        log_warn(LOG_CTX, "taking the order lock: %s", res->msg);
        return;
    }
    if (!res->succeeded) {
        p->lease_id = 0; /* it expires with its TTL: nothing attached */
        if (res->n_kvs == 1) {
            (void)snprintf(p->holder, sizeof(p->holder), "%.*s", (int)res->kvs[0].value_len,
                           res->kvs[0].value);
        }
        return;
    }
    p->is_holder = true;
    p->renewed_ms = mono_ms(p);
    (void)snprintf(p->holder, sizeof(p->holder), "%s", p->identity);
    log_notice(LOG_CTX, "%s: this node holds the order lock (lease %" PRId64 ", ttl %u ms)",
               p->identity, p->lease_id, p->lease_ms);
}

static void on_granted(void *data, const struct etcd_result *res)
{
    struct cert_pair *p = data;
    if (res->err == -ECANCELED) {
        return;
    }
    if (res->err != 0) {
        p->is_lock_busy = false;
        log_warn(LOG_CTX, "lease for the order lock: %s", res->msg);
        return;
    }
    p->lease_id = res->lease_id;
    if (etcd_create(p->etcd, p->lock_key, p->identity, strlen(p->identity), p->lease_id, on_created,
                    p) != 0) {
        p->is_lock_busy = false;
        p->lease_id = 0;
    }
}

static void on_renewed(void *data, const struct etcd_result *res)
{
    struct cert_pair *p = data;
    if (res->err == -ECANCELED) {
        return;
    }
    p->is_lock_busy = false;
    if (res->err != 0) {
        log_warn(LOG_CTX, "renewing the order lock's lease: %s", res->msg);
        if (mono_ms(p) - p->renewed_ms >= p->lease_ms) {
            lock_lost(p, "its lease could not be renewed within its TTL");
        }
        return;
    }
    if (res->ttl == 0) {
        lock_lost(p, "its lease expired");
        return;
    }
    p->renewed_ms = mono_ms(p);
}

static void lock_step(struct cert_pair *p, const struct etcd_kv *lock)
{
    const char *holder = NULL;
    size_t holder_len = 0;
    p->holder[0] = '\0';
    if (lock != NULL) {
        holder = lock->value;
        holder_len = lock->value_len < sizeof(p->holder) ? lock->value_len : sizeof(p->holder) - 1;
        memcpy(p->holder, holder, holder_len);
        p->holder[holder_len] = '\0';
        holder_len = lock->value_len;
    }
    enum cert_pair_lock_step step =
        cert_pair_lock_step(holder, holder_len, p->is_holder && p->lease_id != 0, p->identity);
    if (p->is_lock_busy) {
        return;
    }
    int rc = 0;
    switch (step) {
    case CERT_PAIR_LOCK_ACQUIRE:
        lock_lost(p, "the lock key is gone");
        p->is_lock_busy = true;
        rc = etcd_lease_grant(p->etcd, (p->lease_ms + 999) / 1000, on_granted, p);
        break;
    case CERT_PAIR_LOCK_RENEW:
        p->is_lock_busy = true;
        rc = etcd_lease_keepalive(p->etcd, p->lease_id, on_renewed, p);
        break;
    case CERT_PAIR_LOCK_FOLLOW:
        lock_lost(p, "another node holds it");
        break;
    }
    if (rc != 0) {
        p->is_lock_busy = false;
    }
}

/* ---------------------------------------------------------------- the CA */

/* Write the CA to STATE_DIR/tls/ca (key first, as tls_cert_store does): what tls_ca_open
 * then loads to issue, and what clients trust. */
static int ca_write(const char *ca_dir, const struct tls_cert *ca, struct errbuf *eb)
{
    char path[CONF_PATH_MAX + 16];
    BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
    char *k = NULL, *c = NULL;
    long kn = 0, cn = 0;
    if (kb != NULL && cb != NULL &&
        PEM_write_bio_PrivateKey(kb, ca->key, NULL, NULL, 0, NULL, NULL) == 1 &&
        PEM_write_bio_X509(cb, ca->leaf) == 1) {
        kn = BIO_get_mem_data(kb, &k);
        cn = BIO_get_mem_data(cb, &c);
    }
    int rc = -ENOMEM;
    if (kn > 0 && cn > 0) {
        rc = cert_store_mkdirs(ca_dir, eb);
        (void)snprintf(path, sizeof(path), "%s/%s", ca_dir, TLS_CA_KEY);
        rc = rc == 0 ? cert_store_write(path, k, (size_t)kn, 0600, eb) : rc;
        (void)snprintf(path, sizeof(path), "%s/%s", ca_dir, TLS_CA_CERT);
        rc = rc == 0 ? cert_store_write(path, c, (size_t)cn, 0644, eb) : rc;
    } else {
        errbuf_set(eb, "cannot write the CA as PEM");
    }
    if (k != NULL) {
        OPENSSL_cleanse(k, (size_t)kn);
    }
    BIO_free(kb);
    BIO_free(cb);
    ERR_clear_error();
    return rc;
}

static const char *any_ca_dir(const struct conf *conf)
{
    for (uint32_t i = 0; i < conf->n_frontends; i++) {
        if (conf->frontends[i].tls.acme.issuer == CONF_ACME_INTERNAL) {
            return conf->frontends[i].tls.acme.ca_dir;
        }
    }
    return NULL;
}

/* The CA in etcd changed (or is seen first): unseal it and write it locally. */
static void ca_adopt(struct cert_pair *p, const struct etcd_kv *kv, const char *ca_dir)
{
    struct errbuf eb = {{0}};
    size_t n = 0;
    uint8_t *plain = cert_unseal(p->key, p->ca_key, kv->value, kv->value_len, &n, &eb);
    struct tls_cert ca;
    int rc = plain != NULL ? cert_pair_bundle_parse(plain, n, 0, &ca, &eb) : -KEEL_ECONFIG;
    if (plain != NULL) {
        OPENSSL_cleanse(plain, n);
        free(plain);
    }
    if (rc == 0) {
        char path[CONF_PATH_MAX + 16];
        (void)snprintf(path, sizeof(path), "%s/%s", ca_dir, TLS_CA_CERT);
        FILE *f = fopen(path, "re");
        X509 *local = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
        if (f != NULL) {
            (void)fclose(f);
        }
        bool same = local != NULL && X509_cmp(local, ca.leaf) == 0;
        X509_free(local);
        ERR_clear_error();
        if (!same) {
            rc = ca_write(ca_dir, &ca, &eb);
            if (rc == 0) {
                log_notice(LOG_CTX, "the cluster's internal CA from etcd: clients trust %s", path);
            }
        }
        tls_cert_fini(&ca);
    }
    if (rc != 0) {
        log_error(LOG_CTX, "the internal CA in etcd (%s) cannot be used: %s", p->ca_key, eb.msg);
        return;
    }
    p->ca_rev = kv->mod_revision;
    p->is_ca_ready = true;
}

static void on_ca_created(void *data, const struct etcd_result *res)
{
    struct cert_pair *p = data;
    if (res->err == -ECANCELED) {
        return;
    }
    p->is_ca_busy = false;
    if (res->err != 0) {
        log_warn(LOG_CTX, "publishing the internal CA: %s", res->msg);
    } else if (res->succeeded) {
        log_notice(LOG_CTX, "published this node's internal CA to etcd (%s)", p->ca_key);
        p->ca_rev = res->revision; /* what was written is the local CA */
        p->is_ca_ready = true;
    } /* else: another node's is there: the next poll adopts it */
}

/* The holder puts its local CA (made now if there is none) in etcd, if still absent. */
static void ca_publish(struct cert_pair *p, const char *ca_dir)
{
    struct tls_ca ca;
    bool created = false;
    struct errbuf eb = {{0}};
    if (tls_ca_open(ca_dir, time(NULL), &ca, &created, &eb) != 0) {
        log_error(LOG_CTX, "the internal CA: %s", eb.msg);
        return;
    }
    size_t n = 0, sn = 0;
    char *plain = cert_pair_bundle(&ca.cert, &n);
    tls_ca_fini(&ca);
    uint8_t *sealed = plain != NULL ? cert_seal(p->key, p->ca_key, plain, n, &sn) : NULL;
    if (plain != NULL) {
        OPENSSL_cleanse(plain, n);
        free(plain);
    }
    if (sealed != NULL && etcd_create(p->etcd, p->ca_key, sealed, sn, 0, on_ca_created, p) == 0) {
        p->is_ca_busy = true;
    }
    free(sealed);
}

/* ---------------------------------------------------------------- the poll */

static const struct etcd_kv *find_kv(const struct etcd_result *res, const char *key)
{
    for (size_t i = 0; res != NULL && i < res->n_kvs; i++) {
        if (res->kvs[i].key_len == strlen(key) && strcmp(res->kvs[i].key, key) == 0) {
            return &res->kvs[i];
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- challenge answers */

/* Make the node's answer tables hold what etcd holds under answer/ (what this object
 * added and etcd no longer has is withdrawn). An order on this node adds its own too:
 * adding the same answer again replaces it. */
static void answers_sync(struct cert_pair *p, const struct etcd_result *res)
{
    size_t plen = strlen(p->prefix);
    bool seen[ACME_HTTP01_MAX] = {false};
    for (size_t i = 0; i < res->n_kvs; i++) {
        const struct etcd_kv *kv = &res->kvs[i];
        const char *rest = kv->key + plen;
        bool is_alpn;
        if (kv->key_len <= plen || memcmp(kv->key, p->prefix, plen) != 0) {
            continue;
        } else if (strncmp(rest, ANSWER_HTTP, strlen(ANSWER_HTTP)) == 0) {
            is_alpn = false;
            rest += strlen(ANSWER_HTTP);
        } else if (strncmp(rest, ANSWER_ALPN, strlen(ANSWER_ALPN)) == 0) {
            is_alpn = true;
            rest += strlen(ANSWER_ALPN);
        } else {
            continue;
        }
        if (rest[0] == '\0' || strlen(rest) >= sizeof(p->answers[0].name) ||
            kv->value_len >= ACME_KEYAUTH_MAX || strlen(kv->value) != kv->value_len) {
            continue;
        }
        uint32_t k = 0;
        while (k < p->n_answers &&
               !(p->answers[k].is_alpn == is_alpn && strcmp(p->answers[k].name, rest) == 0)) {
            k++;
        }
        if (k == p->n_answers) {
            if (k == ACME_HTTP01_MAX) {
                continue;
            }
            int rc = is_alpn ? acme_alpn_add(rest, kv->value) : acme_http01_add(rest, kv->value);
            if (rc != 0) {
                log_warn(LOG_CTX, "cannot answer %s from etcd: %s", rest, strerror(-rc));
                continue;
            }
            log_info(LOG_CTX, "answering the %s challenge %s (from etcd)",
                     is_alpn ? "tls-alpn-01" : "http-01", rest);
            p->answers[k].is_alpn = is_alpn;
            (void)snprintf(p->answers[k].name, sizeof(p->answers[k].name), "%s", rest);
            p->n_answers++;
        }
        seen[k] = true;
    }
    for (uint32_t k = p->n_answers; k-- > 0;) {
        if (seen[k]) {
            continue;
        }
        if (p->answers[k].is_alpn) {
            acme_alpn_remove(p->answers[k].name);
        } else {
            acme_http01_remove(p->answers[k].name);
        }
        p->answers[k] = p->answers[--p->n_answers];
        seen[k] = seen[p->n_answers];
    }
}

static void answers_drop(struct cert_pair *p)
{
    for (uint32_t k = 0; k < p->n_answers; k++) {
        if (p->answers[k].is_alpn) {
            acme_alpn_remove(p->answers[k].name);
        } else {
            acme_http01_remove(p->answers[k].name);
        }
    }
    p->n_answers = 0;
}

static void on_answer_done(void *data, const struct etcd_result *res)
{
    (void)data;
    if (res->err != 0 && res->err != -ECANCELED) {
        log_warn(LOG_CTX, "a challenge answer in etcd: %s", res->msg);
    }
}

void cert_pair_answer(struct cert_pair *p, bool is_tls_alpn, const char *name,
                      const char *key_authorization)
{
    char key[CONF_NAME_MAX + 320];
    (void)snprintf(key, sizeof(key), "%s%s%.255s", p->prefix,
                   is_tls_alpn ? ANSWER_ALPN : ANSWER_HTTP, name);
    int rc = key_authorization != NULL
                 ? etcd_put(p->etcd, key, key_authorization, strlen(key_authorization), p->lease_id,
                            on_answer_done, NULL)
                 : etcd_delete(p->etcd, key, on_answer_done, NULL);
    if (rc != 0) {
        log_warn(LOG_CTX, "cannot write %s to etcd: %s", key, strerror(-rc));
    }
}

uint32_t cert_pair_answer_delay_ms(const struct cert_pair *p)
{
    return 2 * (p->lease_ms / 3) + 500; /* two polls of every node, and their round trips */
}

static void on_polled(void *data, const struct etcd_result *res)
{
    struct cert_pair *p = data;
    if (res->err == -ECANCELED) {
        return;
    }
    p->is_poll_busy = false;
    if (res->err != 0) {
        if (!p->is_failing) {
            log_warn(LOG_CTX, "reading %s from etcd: %s", p->prefix, res->msg);
        }
        p->is_failing = true;
        if (p->is_holder && mono_ms(p) - p->renewed_ms >= p->lease_ms) {
            lock_lost(p, "etcd unreachable for the lease's TTL");
        }
        return;
    }
    if (p->is_failing) {
        log_notice(LOG_CTX, "reading %s from etcd again", p->prefix);
        p->is_failing = false;
    }
    lock_step(p, find_kv(res, p->lock_key));
    const char *ca_dir = any_ca_dir(p->conf);
    const struct etcd_kv *ca = find_kv(res, p->ca_key);
    if (ca_dir != NULL && ca != NULL && (!p->is_ca_ready || ca->mod_revision != p->ca_rev)) {
        ca_adopt(p, ca, ca_dir);
    } else if (ca_dir != NULL && ca == NULL) {
        p->is_ca_ready = false;
        if (p->is_holder && !p->is_ca_busy) {
            ca_publish(p, ca_dir);
        }
    }
    answers_sync(p, res);
    p->res = res;
    p->on_poll(p->data, p);
    p->res = NULL;
}

static void on_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct cert_pair *p = t->data;
    if (!p->is_poll_busy && etcd_get_prefix(p->etcd, p->prefix, on_polled, p) == 0) {
        p->is_poll_busy = true;
    }
    ev_timer_start(loop, &p->timer, p->lease_ms / 3);
}

/* ---------------------------------------------------------------- the object */

struct cert_pair *cert_pair_new(struct ev_loop *loop, const struct conf *conf, const char *identity,
                                cert_pair_poll_fn fn, void *data, struct errbuf *eb)
{
    if (conf->secret_file[0] == '\0') {
        errbuf_set(eb, "managed certificates in etcd need the cluster's secret_file");
        return NULL;
    }
    struct cert_pair *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        errbuf_set(eb, "out of memory");
        return NULL;
    }
    struct errbuf why = {{0}};
    if (cert_seal_key_load(conf->secret_file, p->key, &why) != 0) {
        errbuf_set(eb, "managed certificates in etcd: %s", why.msg);
        free(p);
        return NULL;
    }
    const char *eps[CONF_DB_MAX_DCS];
    for (uint32_t i = 0; i < conf->n_dcs; i++) {
        eps[i] = conf->dcs[i];
    }
    p->etcd = etcd_new(loop, eps, conf->n_dcs, 0, &why);
    if (p->etcd == NULL) {
        errbuf_set(eb, "managed certificates in etcd: %s", why.msg);
        OPENSSL_cleanse(p->key, sizeof(p->key));
        free(p);
        return NULL;
    }
    p->loop = loop;
    p->conf = conf;
    p->on_poll = fn;
    p->data = data;
    p->lease_ms = conf->acme_lease_ms != 0 ? conf->acme_lease_ms : 10000u;
    (void)snprintf(p->identity, sizeof(p->identity), "%s", identity);
    (void)snprintf(p->prefix, sizeof(p->prefix), "/keel/%s/acme/",
                   conf->cluster_name[0] != '\0' ? conf->cluster_name : "keel");
    (void)snprintf(p->lock_key, sizeof(p->lock_key), "%slock", p->prefix);
    (void)snprintf(p->ca_key, sizeof(p->ca_key), "%sca", p->prefix);
    ev_timer_init(&p->timer, on_timer, p, "acme pair poll");
    ev_timer_start(loop, &p->timer, 0);
    log_notice(LOG_CTX, "%s: managed certificates kept in etcd under %s", p->identity, p->prefix);
    return p;
}

void cert_pair_free(struct cert_pair *p)
{
    if (p == NULL) {
        return;
    }
    ev_timer_stop(p->loop, &p->timer);
    etcd_free(p->etcd); /* callbacks run with -ECANCELED and touch nothing */
    answers_drop(p);
    OPENSSL_cleanse(p->key, sizeof(p->key));
    free(p);
}

bool cert_pair_is_holder(const struct cert_pair *p)
{
    return p != NULL && p->is_holder;
}

const char *cert_pair_holder(const struct cert_pair *p)
{
    return p != NULL ? p->holder : "";
}

bool cert_pair_is_ca_ready(const struct cert_pair *p)
{
    return p != NULL && p->is_ca_ready;
}

static void cert_key(const struct cert_pair *p, const char *frontend, char *out, size_t size)
{
    (void)snprintf(out, size, "%scert/%s", p->prefix, frontend);
}

const struct etcd_kv *cert_pair_cert_kv(const struct cert_pair *p, const char *frontend)
{
    char key[CONF_NAME_MAX * 2 + 64];
    cert_key(p, frontend, key, sizeof(key));
    return find_kv(p->res, key);
}

int cert_pair_cert_open(const struct cert_pair *p, const char *frontend, const struct etcd_kv *kv,
                        time_t now, struct tls_cert *out, struct errbuf *eb)
{
    char key[CONF_NAME_MAX * 2 + 64];
    cert_key(p, frontend, key, sizeof(key));
    size_t n = 0;
    uint8_t *plain = cert_unseal(p->key, key, kv->value, kv->value_len, &n, eb);
    if (plain == NULL) {
        return -KEEL_ECONFIG;
    }
    int rc = cert_pair_bundle_parse(plain, n, now, out, eb);
    OPENSSL_cleanse(plain, n);
    free(plain);
    return rc;
}

static void on_published(void *data, const struct etcd_result *res)
{
    (void)data;
    if (res->err != 0 && res->err != -ECANCELED) {
        log_warn(LOG_CTX, "publishing a certificate: %s", res->msg);
    }
}

void cert_pair_publish(struct cert_pair *p, const char *frontend, const struct tls_cert *c)
{
    char key[CONF_NAME_MAX * 2 + 64];
    cert_key(p, frontend, key, sizeof(key));
    size_t n = 0, sn = 0;
    char *plain = cert_pair_bundle(c, &n);
    uint8_t *sealed = plain != NULL ? cert_seal(p->key, key, plain, n, &sn) : NULL;
    if (plain != NULL) {
        OPENSSL_cleanse(plain, n);
        free(plain);
    }
    if (sealed == NULL || etcd_put(p->etcd, key, sealed, sn, 0, on_published, NULL) != 0) {
        log_warn(LOG_CTX, "%s: cannot publish the certificate to etcd", frontend);
    } else {
        log_notice(LOG_CTX, "%s: published the certificate to etcd (%s)", frontend, key);
    }
    free(sealed);
}

void cert_pair_take_over(struct cert_pair *p, const struct cert_pair *prev)
{
    if (p == NULL || prev == NULL || strcmp(p->identity, prev->identity) != 0 ||
        strcmp(p->prefix, prev->prefix) != 0) {
        return;
    }
    p->lease_id = prev->lease_id;
    p->is_holder = prev->is_holder;
    p->renewed_ms = prev->renewed_ms;
    (void)snprintf(p->holder, sizeof(p->holder), "%s", prev->holder);
}

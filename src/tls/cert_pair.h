/* SPDX-License-Identifier: MIT */
/* Managed certificates across the LB pair (cluster `dcs etcd ...`): the etcd side. One
 * object per lb generation, on the control loop, over db/etcd.c: it polls the cluster's
 * `/keel/CLUSTER/acme/` keys, takes and keeps the order lock (a key attached to a lease of
 * `acme_lease`, created only if absent, as the database agent takes its leader key), keeps
 * the internal CA in etcd so that every LB issues from one CA, and seals (cert_seal.h) what
 * it writes. What to do with each frontend's certificate is cert_mgr.c's: it is told after
 * every poll. docs/internals/acme.md ("Across the LB pair"). */
#ifndef KEEL_TLS_CERT_PAIR_H
#define KEEL_TLS_CERT_PAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/conf-t.h"
#include "core/err.h"
#include "tls/cert_store.h"

struct ev_loop;
struct etcd_kv;
struct cert_pair;

/* ---------------------------------------------------------------- pure parts */

/* What the lock asks for after a poll saw holder (the lock key's value; NULL: no key). */
enum cert_pair_lock_step {
    CERT_PAIR_LOCK_ACQUIRE = 0, /* no holder: try to create the key with a new lease */
    CERT_PAIR_LOCK_RENEW,       /* we hold it (our identity, our lease): keep the lease alive */
    CERT_PAIR_LOCK_FOLLOW       /* another holds it (or a key of ours without our lease: a
                                 * previous life; it goes with its lease's TTL) */
};
enum cert_pair_lock_step cert_pair_lock_step(const char *holder, size_t holder_len, bool has_lease,
                                             const char *self);

/* Whether a node serving (has_served: a certificate that is not a placeholder; its serial
 * and not_after) takes the one found in etcd instead. A node that does not hold the lock
 * takes any other valid one (every LB serves what the holder published); the holder only a
 * newer one (another holder renewed meanwhile). */
bool cert_pair_should_adopt(bool is_holder, bool has_served, const char *served_serial,
                            time_t served_not_after, const char *etcd_serial,
                            time_t etcd_not_after);

/* Whether the holder writes the certificate it serves to etcd: when etcd has none, or an
 * older other one. */
bool cert_pair_should_publish(bool is_holder, bool has_served, bool etcd_has,
                              const char *served_serial, time_t served_not_after,
                              const char *etcd_serial, time_t etcd_not_after);

/* A certificate as kept in etcd before sealing: its key (PEM), then the leaf and its chain
 * (PEM). Returns a malloc'd text (*len bytes) the caller wipes and frees, or NULL (OOM). */
char *cert_pair_bundle(const struct tls_cert *c, size_t *len);
/* Read a bundle: the key, the leaf (and chain); the key must match and every certificate be
 * valid at now (now 0: no time check). 0 and *out filled (owned by the caller), or
 * -KEEL_ECONFIG with eb filled. */
int cert_pair_bundle_parse(const void *text, size_t len, time_t now, struct tls_cert *out,
                           struct errbuf *eb) KEEL_MUST_CHECK;

/* ---------------------------------------------------------------- the etcd side */

/* Called after every successful poll (kvs: everything under the prefix), from the loop. */
typedef void (*cert_pair_poll_fn)(void *data, struct cert_pair *p);

/* Start polling the cluster's dcs for conf (borrowed: outlives the object). identity names
 * this process in the lock ("lb1/1234"). The sealing key comes from the cluster's
 * secret_file (read now: load time). NULL with eb filled (no secret, no etcd client, OOM). */
struct cert_pair *cert_pair_new(struct ev_loop *loop, const struct conf *conf, const char *identity,
                                cert_pair_poll_fn fn, void *data, struct errbuf *eb);
/* Stop, revoke the lease when this node holds the lock (fire and forget), free. NULL ok. */
void cert_pair_free(struct cert_pair *p);

/* Whether this node holds the order lock (as of the last poll or renewal). */
bool cert_pair_is_holder(const struct cert_pair *p);
/* The holder's identity as of the last poll ("" none). */
const char *cert_pair_holder(const struct cert_pair *p);
/* Whether the internal CA was read from etcd and written to STATE_DIR/tls/ca. */
bool cert_pair_is_ca_ready(const struct cert_pair *p);

/* Within a cert_pair_poll_fn: the sealed certificate of frontend in etcd (NULL: none) and
 * its mod_revision. */
const struct etcd_kv *cert_pair_cert_kv(const struct cert_pair *p, const char *frontend);
/* Open a value of cert_pair_cert_kv: unseal and read the bundle, valid at now. */
int cert_pair_cert_open(const struct cert_pair *p, const char *frontend, const struct etcd_kv *kv,
                        time_t now, struct tls_cert *out, struct errbuf *eb) KEEL_MUST_CHECK;
/* Seal c and put it as frontend's certificate (async; a failure is logged, and the next poll
 * sees etcd without it and publishes again). */
void cert_pair_publish(struct cert_pair *p, const char *frontend, const struct tls_cert *c);

/* Put (key_authorization set) or delete (NULL) a challenge answer of this node's order in
 * etcd, attached to the lock's lease: every node polls and answers it (acme_order.h
 * acme_answer_fn). */
void cert_pair_answer(struct cert_pair *p, bool is_tls_alpn, const char *name,
                      const char *key_authorization);
/* How long an order waits between publishing an answer and asking for its validation: two
 * polls. */
uint32_t cert_pair_answer_delay_ms(const struct cert_pair *p);

/* Carry the order lock over from prev (the previous generation's object, same identity), so
 * that a reload does not give it up for a lease. */
void cert_pair_take_over(struct cert_pair *p, const struct cert_pair *prev);

#endif

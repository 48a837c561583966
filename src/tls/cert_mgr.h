/* SPDX-License-Identifier: MIT */
/* Managed certificates (`acme` in a frontend or site): for each, an explicit state machine
 * on the control thread's loop that loads the stored certificate, renews it at two thirds
 * of its life (with jitter), retries failures with a bounded exponential backoff, stores
 * the new one atomically in state_dir and tells its owner (the lb), which rebuilds the
 * frontend's TLS contexts for new connections (tls_ctx_swap). Issuers: the internal CA
 * (tls_issuer.c); ACME (RFC 8555) is the next one. docs/internals/acme.md. */
#ifndef KEEL_TLS_CERT_MGR_H
#define KEEL_TLS_CERT_MGR_H

#include <stdint.h>
#include <time.h>

#include "core/conf-t.h"
#include "core/err.h"

struct ev_loop;
struct metrics_out;
struct metric_table;
struct json_w;

/* The states of one managed certificate (docs/internals/acme.md has the diagram). */
enum cert_state {
    CERT_STATE_NONE = 0, /* nothing served yet: the machine has not looked at its files */
    CERT_STATE_VALID,    /* a valid certificate is stored and served; renewal timer armed */
    CERT_STATE_ISSUING,  /* asking the issuer for a new one (internal: one callback) */
    CERT_STATE_BACKOFF,  /* the last attempt failed: the served one stays; retry timer armed */
    CERT_STATE_WAITING,  /* across the pair: another node holds the order lock; its
                          * certificate is awaited in etcd */
    CERT_STATE_COUNT
};

const char *cert_state_name(enum cert_state s);

/* Whether from -> to is in the transition table (tests, the diagram). */
bool cert_state_is_legal(enum cert_state from, enum cert_state to);

/* The moment to renew a certificate valid [not_before, not_after), in ms since the epoch: at
 * two thirds of its life, earlier by jitter (in [0, 1)) times a twentieth of its life, so
 * that nodes and frontends that got theirs together do not all renew together. Pure. */
uint64_t cert_renew_at_ms(time_t not_before, time_t not_after, double jitter);

/* The delay before retry number failures (>= 1): CERT_BACKOFF_MIN_MS doubled each failure,
 * at most CERT_BACKOFF_MAX_MS. Pure. */
#define CERT_BACKOFF_MIN_MS 2000u
#define CERT_BACKOFF_MAX_MS (3600u * 1000u)
uint64_t cert_backoff_ms(uint32_t failures);

/* Load time (building a generation, boot and reload; blocking file I/O): make sure fe's
 * managed certificate is stored and can serve now; when it is missing or unusable, issue one
 * at once (the internal issuer; a key generation and a signature). 0, or a negative code
 * with eb filled. Logs which CA file clients must trust. */
int cert_mgr_prepare(const struct conf_frontend *fe, time_t now, struct errbuf *eb) KEEL_MUST_CHECK;

/* Told when a renewed certificate of frontend (its name) is stored: rebuild its contexts. */
typedef void (*cert_stored_fn)(void *data, const char *frontend);

/* The machines of every managed frontend of conf (borrowed: must outlive the manager), on
 * loop. Each starts by reading its stored certificate (cert_mgr_prepare made it) and arms
 * its renewal. prev (NULL: none), the manager of the previous generation, gives its
 * counters to the machines of the same frontends (the caller then frees it). NULL on OOM
 * (logged); a conf without managed certificates gives a manager with nothing to do.
 * With the cluster's dcs, the certificates are shared through etcd (cert_pair.h): node
 * (--node NAME, NULL: the host's name) and the pid name this process in the order lock.
 * Control thread. */
struct cert_mgr *cert_mgr_new(struct ev_loop *loop, const struct conf *conf, const char *node,
                              cert_stored_fn fn, void *data, const struct cert_mgr *prev);
/* Stop the timers and free (NULL allowed). Control thread. */
void cert_mgr_free(struct cert_mgr *m);

/* keel_cert_expiry_timestamp_seconds, keel_cert_renewals_total (NULL m: nothing). */
extern const struct metric_table cert_mgr_metric_table;
void cert_mgr_metrics(const struct cert_mgr *m, struct metrics_out *out);

/* Tests: the state of frontend's machine; -1 when it has none. */
int cert_mgr_state(const struct cert_mgr *m, const char *frontend);

#endif

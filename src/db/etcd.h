/* SPDX-License-Identifier: MIT */
/* An asynchronous etcd v3 client for the control thread, speaking etcd's HTTP/JSON gateway
 * (POST /v3/kv/..., /v3/lease/...; keys and values in base64, int64s as strings) on keel's
 * event loop, through http/http_client.c. It never blocks. Each request has one deadline that
 * covers every endpoint it tries: when an endpoint cannot be connected to, the request moves
 * to the next one. Responses are parsed strictly (db/etcd_json.c). It offers the key-value
 * and lease calls a leader election needs (get, put, delete, create-if-absent,
 * compare-and-swap, delete-if-value, lease grant/keepalive/revoke); it has no watch, no
 * auth and no TLS. docs/internals/etcd.md describes the requests it sends. */
#ifndef KEEL_DB_ETCD_H
#define KEEL_DB_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct ev_loop;
struct etcd; /* a client: endpoints, timeout, requests in flight; opaque */

/* Bounds. A request over a bound is refused when it is made (-EINVAL, -EBUSY); a response
 * over one fails the request (-EMSGSIZE). */
#define ETCD_MAX_ENDPOINTS 16
#define ETCD_MAX_INFLIGHT 64                 /* requests in flight per client */
#define ETCD_MAX_KEY_LEN 4096                /* bytes of a key or prefix */
#define ETCD_MAX_VALUE_LEN (512u * 1024)     /* bytes of a value */
#define ETCD_MAX_RESPONSE (4u * 1024 * 1024) /* bytes of a (decoded) response body */
#define ETCD_MAX_KVS 10000u                  /* key-values in one response */
#define ETCD_DEFAULT_TIMEOUT_MS 2000u        /* when etcd_new gets 0 */

/* One key-value as etcd returns it. key and value are NUL-terminated copies (the NUL is not
 * counted; either may also contain NUL bytes, so use the lengths for binary data). */
struct etcd_kv {
    char *key;
    size_t key_len;
    char *value; /* "" for an empty value, never NULL */
    size_t value_len;
    int64_t create_revision; /* revision of the put that created the key */
    int64_t mod_revision;    /* revision of its last modification */
    int64_t version;         /* number of puts since it was created */
    int64_t lease;           /* attached lease ID, 0 for none */
};

/* The outcome of one request, valid during the callback only (the client frees it after).
 * Only the fields of the request's kind are set; the others are 0. */
struct etcd_result {
    /* 0, or: -ETIMEDOUT (the deadline passed), -ECONNREFUSED or another -errno of the last
     * endpoint tried (none was reachable, or the connection failed after the request was
     * sent), -EPROTO (not a valid etcd response), -EMSGSIZE (response over a bound),
     * -ENOMEM, -ECANCELED (etcd_free ran first), or -KEEL_EETCD: etcd answered with an
     * error; http_status and etcd_code then say which. */
    int err;
    char msg[256];       /* when err is not 0: what went wrong, for logs */
    int http_status;     /* status of the HTTP response, 0 if none arrived */
    int etcd_code;       /* gRPC status code of an etcd error (5: not found...), else 0 */
    int64_t revision;    /* header.revision: the store's revision when etcd answered */
    bool succeeded;      /* create, cas, delete_if_value: whether the condition held */
    int64_t deleted;     /* delete, delete_if_value: number of keys deleted */
    int64_t lease_id;    /* lease grant and keepalive: the lease's ID */
    int64_t ttl;         /* lease grant: granted TTL; keepalive: the new TTL in seconds, 0 when
                          * the lease no longer exists */
    struct etcd_kv *kvs; /* get, get_prefix: the keys found, in key order; create, cas,
                          * delete_if_value: the current kv when the condition failed
                          * (none if the key does not exist) */
    size_t n_kvs;
};

/* Called once per queued request, from the event loop: never from within the etcd_* call
 * that queued it. res and everything it points to are valid during the call only. The
 * callback may queue new requests and may call etcd_free. */
typedef void (*etcd_cb_fn)(void *data, const struct etcd_result *res);

/* Create a client on loop. endpoints[0, n) are "http://IP:PORT" URLs with a numeric IPv4
 * or bracketed IPv6 address ("http://127.0.0.1:2379", "http://[::1]:2379") and an optional
 * trailing "/": host names are not resolved here (that would block; the configuration
 * resolves them). 1 <= n <= ETCD_MAX_ENDPOINTS. timeout_ms bounds each request from when it
 * is queued to its callback (0 picks ETCD_DEFAULT_TIMEOUT_MS). The strings are copied.
 * Returns a client the caller owns (release with etcd_free), or NULL with the reason in eb
 * (etcd endpoint 2 "https://x": only http:// URLs are supported) or "out of memory". */
struct etcd *etcd_new(struct ev_loop *loop, const char *const *endpoints, size_t n,
                      uint32_t timeout_ms, struct errbuf *eb) KEEL_MUST_CHECK;

/* Free a client. Every request still in flight is cancelled: its connection is closed and
 * its callback runs now, from within etcd_free, with err -ECANCELED (so callers can release
 * what they attached to it); requests queued from those callbacks fail with -ECANCELED, and
 * etcd_free called from them does nothing. NULL is fine. May be called from a callback. */
void etcd_free(struct etcd *e);

/* Number of requests queued and not yet completed. */
size_t etcd_inflight(const struct etcd *e);

/* The request calls. Each copies its arguments (keys are NUL-terminated strings of at
 * most ETCD_MAX_KEY_LEN bytes, values up to ETCD_MAX_VALUE_LEN bytes and may be binary),
 * queues one HTTP request and returns 0: cb(data, res) will then run exactly once, from the
 * loop. A request that cannot even be queued returns a negative code and cb never runs:
 * -EINVAL (empty or too long key, value too long, lease or TTL out of range), -EBUSY
 * (ETCD_MAX_INFLIGHT requests in flight), -ECANCELED (the client is being freed), -ENOMEM.
 * Nothing here blocks. A lease of 0 means none. */

/* Get one key: res.kvs holds it, or nothing if it does not exist. */
int etcd_get(struct etcd *e, const char *key, etcd_cb_fn cb, void *data) KEEL_MUST_CHECK;
/* Get every key starting with prefix ("" for all keys), in key order. */
int etcd_get_prefix(struct etcd *e, const char *prefix, etcd_cb_fn cb, void *data) KEEL_MUST_CHECK;
/* Set key to value[0, len), attached to lease (0: none). */
int etcd_put(struct etcd *e, const char *key, const void *value, size_t len, int64_t lease,
             etcd_cb_fn cb, void *data) KEEL_MUST_CHECK;
/* Delete one key; res.deleted says whether it existed (1) or not (0). */
int etcd_delete(struct etcd *e, const char *key, etcd_cb_fn cb, void *data) KEEL_MUST_CHECK;
/* In one transaction: if key does not exist (create_revision == 0), put value with lease;
 * res.succeeded says whether it was created, else res.kvs holds the current kv. The
 * leader-key acquisition of an election. */
int etcd_create(struct etcd *e, const char *key, const void *value, size_t len, int64_t lease,
                etcd_cb_fn cb, void *data) KEEL_MUST_CHECK;
/* In one transaction: if key's mod_revision == expected_mod_revision, put value with
 * lease (compare-and-swap; an expected revision of 0 matches only a missing key).
 * res.succeeded says whether it was written, else res.kvs holds the current kv (if any). */
int etcd_cas(struct etcd *e, const char *key, int64_t expected_mod_revision, const void *value,
             size_t len, int64_t lease, etcd_cb_fn cb, void *data) KEEL_MUST_CHECK;
/* In one transaction: if key's value equals expected[0, len), delete it (a leader
 * releasing its own key). res.succeeded says whether it was deleted, else res.kvs holds the
 * current kv (none if the key does not exist). */
int etcd_delete_if_value(struct etcd *e, const char *key, const void *expected, size_t len,
                         etcd_cb_fn cb, void *data) KEEL_MUST_CHECK;
/* Grant a lease of ttl_s seconds (1 .. 9e9; etcd may raise a short TTL to its minimum):
 * res.lease_id and res.ttl. */
int etcd_lease_grant(struct etcd *e, int64_t ttl_s, etcd_cb_fn cb, void *data) KEEL_MUST_CHECK;
/* Renew a lease once: res.ttl is its new TTL, or 0 when the lease no longer exists (it
 * expired or was revoked: its keys are gone). */
int etcd_lease_keepalive(struct etcd *e, int64_t lease_id, etcd_cb_fn cb,
                         void *data) KEEL_MUST_CHECK;
/* Revoke a lease, deleting its keys. A lease that does not exist fails with -KEEL_EETCD,
 * etcd_code 5 (not found). */
int etcd_lease_revoke(struct etcd *e, int64_t lease_id, etcd_cb_fn cb, void *data) KEEL_MUST_CHECK;

#endif

/* SPDX-License-Identifier: MIT */
/* The JSON of etcd's v3 HTTP/JSON gateway (etcd 3.4: api/etcdserverpb/rpc.proto mapped by
 * grpc-gateway): the request bodies db/etcd.c sends and the strict parser of the responses
 * into struct etcd_result. Pure functions: no I/O, no globals. Keys and values travel in
 * base64 (core/base64.h), int64s are written as JSON strings and read from strings or
 * numbers (core/json.h json_int). */
#ifndef KEEL_DB_ETCD_JSON_H
#define KEEL_DB_ETCD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/etcd.h"

/* The gateway calls keel makes; each has one path and one response shape. */
enum etcd_op {
    ETCD_OP_RANGE = 0,       /* /v3/kv/range: {header, kvs[], count, more} */
    ETCD_OP_PUT,             /* /v3/kv/put: {header} */
    ETCD_OP_DELETE,          /* /v3/kv/deleterange: {header, deleted} */
    ETCD_OP_TXN,             /* /v3/kv/txn: {header, succeeded, responses[]} */
    ETCD_OP_LEASE_GRANT,     /* /v3/lease/grant: {header, ID, TTL, error} */
    ETCD_OP_LEASE_KEEPALIVE, /* /v3/lease/keepalive, a stream: {result: {header, ID, TTL}} */
    ETCD_OP_LEASE_REVOKE,    /* /v3/lease/revoke: {header} */
    ETCD_OP_COUNT
};

/* "/v3/kv/range"..., and "range"... for logs. op must be valid. */
const char *etcd_op_path(enum etcd_op op);
const char *etcd_op_name(enum etcd_op op);

/* The one compare of keel's transactions (rpc.proto Compare), always with result EQUAL. */
enum etcd_cmp_target {
    ETCD_CMP_CREATE = 0, /* create_revision == revision (0: the key does not exist) */
    ETCD_CMP_MOD,        /* mod_revision == revision */
    ETCD_CMP_VALUE       /* value == value[0, value_len) */
};

/* A transaction on one key: if the compare holds, put (value, lease) or delete the key;
 * otherwise range the key, so that the caller sees what is there. */
struct etcd_txn {
    enum etcd_cmp_target target;
    int64_t cmp_revision;  /* CREATE, MOD */
    const void *cmp_value; /* VALUE */
    size_t cmp_value_len;  /* VALUE */
    bool is_delete;        /* success branch: delete instead of put */
    const void *value;     /* put */
    size_t value_len;      /* put */
    int64_t lease;         /* put; 0: none */
};

/* Request bodies. Each returns a malloc'd NUL-terminated JSON text the caller frees, with
 * its length in *len, or NULL when out of memory. key[0, key_len) may be any bytes. */
/* range of one key, or (is_prefix) of every key starting with key ("" for all keys). */
char *etcd_body_range(const char *key, size_t key_len, bool is_prefix, size_t *len);
char *etcd_body_put(const char *key, size_t key_len, const void *value, size_t value_len,
                    int64_t lease, size_t *len);
char *etcd_body_delete(const char *key, size_t key_len, size_t *len);
char *etcd_body_txn(const char *key, size_t key_len, const struct etcd_txn *txn, size_t *len);
/* Lease calls: {"TTL":"n"} for grant, {"ID":"n"} for keepalive and revoke. */
char *etcd_body_lease(enum etcd_op op, int64_t n, size_t *len);

/* The end of the range of keys that start with prefix[0, len): the prefix with its last
 * byte below 0xff incremented and what follows dropped; "\0" (every key from the prefix
 * on) when there is no such byte. Writes at most len bytes to out (room for len + 1 is
 * enough) and returns the length written. */
size_t etcd_prefix_end(const char *prefix, size_t len, char *out);

/* Parse the response to a request of kind op: http_status and the decoded body[0, len)
 * (borrowed). Fills *res (zeroed first) and never fails to fill it: on success res->err is
 * 0 and the fields of op are set; otherwise res->err is negative and res->msg says why:
 * -KEEL_EETCD for an etcd error body ({"error","message","code"} with a 4xx/5xx status, or
 * a stream error {"error":{"grpc_code","message",...}}), -EPROTO for anything not of the
 * expected shape (bad JSON, wrong types, bad base64, missing header.revision, a non-200
 * status without an etcd error body), -EMSGSIZE for more than ETCD_MAX_KVS kvs, -ENOMEM.
 * Unknown members are ignored; known members must have their documented types. Invariants:
 * on error kvs is NULL and n_kvs 0; msg is NUL-terminated with no control characters;
 * every kv has a non-empty key, and key and value are NUL-terminated at their lengths.
 * Release with etcd_result_fini. */
void etcd_response_parse(enum etcd_op op, int http_status, const char *body, size_t len,
                         struct etcd_result *res);

/* Free what etcd_response_parse allocated (res->kvs) and zero those fields. */
void etcd_result_fini(struct etcd_result *res);

#endif

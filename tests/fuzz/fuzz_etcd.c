/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the etcd gateway JSON (src/db/etcd_json.c). The input is fed as the
 * response body of every request kind, with status 200 and with an error status, and each
 * result must keep the invariants of etcd_json.h: an error has a code of the documented set,
 * a clean message and nothing allocated; a success came from valid JSON with status 200, its
 * kvs have non-empty NUL-terminated keys and values whose base64 is exactly what the body
 * held (the decoder is canonical), and no count is negative. The same bytes also go through
 * the request builders as a key and a value, whose bodies must parse back to those bytes,
 * and its first half is parsed with the rest poisoned. Leaks show under ASan. Under gcc,
 * replay_main.c drives it. */
#include "core/base64.h"
#include "core/json.h"
#include "db/etcd_json.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_TARGET "fuzz_etcd"
#include "fuzz_util.h"

static bool msg_is_clean(const char *msg)
{
    size_t n = strnlen(msg, 256);
    if (n == 0 || n == 256) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f) {
            return false;
        }
    }
    return true;
}

/* The kvs array the parser read them from: the range's, or the txn's first response_range. */
static const struct json_value *source_kvs(enum etcd_op op, const struct json_value *root)
{
    if (op == ETCD_OP_RANGE) {
        return json_get(root, "kvs");
    }
    if (op != ETCD_OP_TXN) {
        return NULL;
    }
    const struct json_value *rs = json_get(root, "responses");
    for (size_t i = 0; i < json_len(rs); i++) {
        const struct json_value *range = json_get(json_at(rs, i), "response_range");
        if (range != NULL) {
            return json_get(range, "kvs");
        }
    }
    return NULL;
}

static void check_b64_of(const char *bytes, size_t n, const struct json_value *encoded)
{
    size_t cap = base64_encoded_len(n) + 1;
    char *enc = malloc(cap);
    check(enc != NULL, "out of memory");
    size_t m = base64_encode(bytes, n, enc, cap);
    if (encoded == NULL) {
        check(n == 0, "a missing value decoded to bytes");
    } else {
        check(json_str(encoded) != NULL && m == json_str_len(encoded) &&
                  memcmp(enc, json_str(encoded), m) == 0,
              "decoded bytes do not re-encode to the body's base64");
    }
    free(enc);
}

static void check_success(enum etcd_op op, int status, const uint8_t *data, size_t size,
                          const struct etcd_result *res)
{
    check(status == 200, "success with an error status");
    check(res->msg[0] == '\0', "success with a message");
    check(res->revision >= 0 && res->deleted >= 0 && res->lease_id >= 0 && res->ttl >= 0,
          "negative count");
    check(res->n_kvs <= ETCD_MAX_KVS, "more kvs than the bound");
    check((res->kvs == NULL) == (res->n_kvs == 0), "kvs and n_kvs disagree");
    check(op == ETCD_OP_TXN || !res->succeeded, "succeeded outside a txn");
    check(op == ETCD_OP_RANGE || op == ETCD_OP_TXN || res->n_kvs == 0, "kvs from a non-range");
    if (op == ETCD_OP_LEASE_GRANT) {
        check(res->lease_id > 0 && res->ttl > 0, "a grant without ID and TTL");
    }
    struct json_doc *doc = json_parse((const char *)data, size, NULL);
    check(doc != NULL, "success from invalid JSON");
    const struct json_value *kvs = source_kvs(op, json_root(doc));
    check(json_len(kvs) == res->n_kvs, "kv count differs from the body");
    for (size_t i = 0; i < res->n_kvs; i++) {
        const struct etcd_kv *kv = &res->kvs[i];
        check(kv->key != NULL && kv->value != NULL, "NULL key or value");
        check(kv->key_len > 0, "empty key");
        check(kv->key[kv->key_len] == '\0' && kv->value[kv->value_len] == '\0',
              "key or value not NUL-terminated");
        check(kv->create_revision >= 0 && kv->mod_revision >= 0 && kv->version >= 0 &&
                  kv->lease >= 0,
              "negative kv field");
        check_b64_of(kv->key, kv->key_len, json_get(json_at(kvs, i), "key"));
        check_b64_of(kv->value, kv->value_len, json_get(json_at(kvs, i), "value"));
    }
    json_free(doc);
}

static void fuzz_response(enum etcd_op op, int status, const uint8_t *data, size_t size)
{
    struct etcd_result res;
    etcd_response_parse(op, status, (const char *)data, size, &res);
    check(res.http_status == status, "http_status not kept");
    if (res.err == 0) {
        check_success(op, status, data, size, &res);
    } else {
        check(res.err == -EPROTO || res.err == -EMSGSIZE || res.err == -ENOMEM ||
                  res.err == -KEEL_EETCD,
              "undocumented error code");
        check(res.kvs == NULL && res.n_kvs == 0, "kvs left after an error");
        check(msg_is_clean(res.msg), "error message empty, unterminated or with controls");
        check(res.err == -KEEL_EETCD || res.etcd_code == 0, "etcd_code without an etcd error");
    }
    etcd_result_fini(&res);
    check(res.kvs == NULL && res.n_kvs == 0, "etcd_result_fini left kvs");
}

/* The bytes as a key and a value of every request body: each must be JSON whose base64
 * members decode back to them. */
static void fuzz_bodies(const uint8_t *data, size_t size)
{
    size_t key_len = size / 2, len = 0;
    const char *key = (const char *)data;
    const uint8_t *value = data + key_len;
    size_t value_len = size - key_len;
    struct etcd_txn txn = {.target = (enum etcd_cmp_target)(size % 3),
                           .cmp_revision = (int64_t)size,
                           .cmp_value = value,
                           .cmp_value_len = value_len,
                           .is_delete = size % 2 == 0,
                           .value = value,
                           .value_len = value_len,
                           .lease = (int64_t)size};
    char *bodies[6] = {etcd_body_range(key, key_len, false, &len),
                       etcd_body_range(key, key_len, true, &len),
                       etcd_body_put(key, key_len, value, value_len, 7, &len),
                       etcd_body_delete(key, key_len, &len),
                       etcd_body_txn(key, key_len, &txn, &len),
                       etcd_body_lease(ETCD_OP_LEASE_GRANT, (int64_t)size, &len)};
    for (size_t i = 0; i < 6; i++) {
        check(bodies[i] != NULL, "out of memory");
        struct errbuf eb;
        struct json_doc *doc = json_parse(bodies[i], strlen(bodies[i]), &eb);
        check(doc != NULL, "a request body is not JSON");
        const struct json_value *k = json_get(json_root(doc), "key");
        if (i == 4) {
            k = json_get(json_at(json_get(json_root(doc), "compare"), 0), "key");
        }
        if (i != 5 && !(i == 1 && key_len == 0)) {
            check_b64_of(key, key_len, k);
        }
        if (i == 2) {
            check_b64_of((const char *)value, value_len, json_get(json_root(doc), "value"));
        }
        json_free(doc);
        free(bodies[i]);
    }
    /* The prefix end is a strict upper bound of every key with the prefix. */
    char *end = malloc(key_len + 1);
    check(end != NULL, "out of memory");
    size_t end_len = etcd_prefix_end(key, key_len, end);
    check(end_len >= 1 && end_len <= (key_len > 0 ? key_len : 1), "prefix end length");
    if (end_len <= key_len && !(end_len == 1 && end[0] == '\0')) {
        check(memcmp(end, key, end_len - 1) == 0 &&
                  (unsigned char)end[end_len - 1] == (unsigned char)key[end_len - 1] + 1,
              "prefix end is not the prefix incremented");
    }
    free(end);
}

/* A prefix of the input parsed in place with the rest poisoned (no byte at or after len is
 * read) gives what a parse of an exact copy gives. */
static void fuzz_prefix(uint8_t *buf, size_t size)
{
    size_t half = size / 2;
    uint8_t *exact = malloc(half > 0 ? half : 1);
    check(exact != NULL, "out of memory");
    memcpy(exact, buf, half);
    struct etcd_result a, b;
    poison(buf + half, size - half);
    etcd_response_parse(ETCD_OP_RANGE, 200, (const char *)buf, half, &a);
    unpoison(buf + half, size - half);
    etcd_response_parse(ETCD_OP_RANGE, 200, (const char *)exact, half, &b);
    check(a.err == b.err && strcmp(a.msg, b.msg) == 0 && a.n_kvs == b.n_kvs &&
              a.revision == b.revision,
          "bytes after len changed the result");
    etcd_result_fini(&a);
    etcd_result_fini(&b);
    free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024 * 1024) {
        return 0;
    }
    /* An exact copy: the parser must not read past size (ASan catches it on the heap). */
    uint8_t *copy = malloc(size > 0 ? size : 1);
    check(copy != NULL, "out of memory");
    memcpy(copy, data, size);
    static const int statuses[] = {200, 404};
    for (int op = 0; op < ETCD_OP_COUNT; op++) {
        for (size_t s = 0; s < sizeof(statuses) / sizeof(statuses[0]); s++) {
            fuzz_response((enum etcd_op)op, statuses[s], copy, size);
        }
    }
    fuzz_prefix(copy, size);
    if (size <= 4096) {
        fuzz_bodies(copy, size);
    }
    free(copy);
    return 0;
}

/* SPDX-License-Identifier: MIT */
/* etcd v3 gateway JSON (see etcd_json.h): the request bodies (written with the core JSON
 * writer) and the strict response parser. The parser trusts nothing: every member keel reads is
 * type-checked, every base64 string decoded canonically, and a result is either complete or
 * an error with nothing allocated. The I/O is in etcd.c and http_client.c. */
#include "db/etcd_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/json.h"

static const struct {
    const char *path;
    const char *name;
} op_table[ETCD_OP_COUNT] = {
    [ETCD_OP_RANGE] = {"/v3/kv/range", "range"},
    [ETCD_OP_PUT] = {"/v3/kv/put", "put"},
    [ETCD_OP_DELETE] = {"/v3/kv/deleterange", "deleterange"},
    [ETCD_OP_TXN] = {"/v3/kv/txn", "txn"},
    [ETCD_OP_LEASE_GRANT] = {"/v3/lease/grant", "lease grant"},
    [ETCD_OP_LEASE_KEEPALIVE] = {"/v3/lease/keepalive", "lease keepalive"},
    [ETCD_OP_LEASE_REVOKE] = {"/v3/lease/revoke", "lease revoke"},
};

const char *etcd_op_path(enum etcd_op op)
{
    return op_table[op].path;
}

const char *etcd_op_name(enum etcd_op op)
{
    return op_table[op].name;
}

/* ---------------------------------------------------------------------------------------
 * Request bodies, written with the core JSON writer
 */

/* "name":"<base64 of p[0, n)>" */
static void put_b64(struct json_w *w, const char *name, const void *p, size_t n)
{
    size_t enc = base64_encoded_len(n);
    char *text = malloc(enc + 1);
    if (text == NULL) {
        json_w_fail(w, -ENOMEM);
        return;
    }
    /* The room is exactly the text and its NUL. */
    size_t text_len = base64_encode(p, n, text, enc + 1);
    json_w_key(w, name);
    json_w_strn(w, text, text_len);
    free(text);
}

/* "name":"<decimal>": int64s are strings in proto3 JSON. */
static void put_i64(struct json_w *w, const char *name, int64_t v)
{
    char num[24];
    (void)snprintf(num, sizeof(num), "%" PRId64, v);
    json_w_key_str(w, name, num);
}

static char *body_done(struct json_w *w, size_t *len)
{
    return json_w_take(w, len);
}

size_t etcd_prefix_end(const char *prefix, size_t len, char *out)
{
    /* clientv3.GetPrefixRangeEnd: increment the last byte that can be, drop the rest. */
    for (size_t i = len; i > 0; i--) {
        unsigned char c = (unsigned char)prefix[i - 1];
        if (c < 0xff) {
            memcpy(out, prefix, i - 1);
            out[i - 1] = (char)(c + 1);
            return i;
        }
    }
    out[0] = '\0';
    return 1;
}

/* "key":K[,"range_end":E] for one key or a prefix. */
static void put_key_range(struct json_w *w, const char *key, size_t key_len, bool is_prefix)
{
    if (!is_prefix) {
        put_b64(w, "key", key, key_len);
        return;
    }
    /* An empty prefix is the whole key space: from "\0" to the "\0" sentinel. */
    char *end = malloc(key_len + 1);
    if (end == NULL) {
        json_w_fail(w, -ENOMEM);
        return;
    }
    size_t end_len = etcd_prefix_end(key, key_len, end);
    if (key_len == 0) {
        put_b64(w, "key", "", 1);
    } else {
        put_b64(w, "key", key, key_len);
    }
    put_b64(w, "range_end", end, end_len);
    free(end);
}

char *etcd_body_range(const char *key, size_t key_len, bool is_prefix, size_t *len)
{
    struct json_w w;
    json_w_init(&w);
    json_w_begin_object(&w);
    put_key_range(&w, key, key_len, is_prefix);
    json_w_end_object(&w);
    return body_done(&w, len);
}

/* The members of a PutRequest, in the open object. */
static void put_put(struct json_w *w, const char *key, size_t key_len, const void *value,
                    size_t value_len, int64_t lease)
{
    put_b64(w, "key", key, key_len);
    put_b64(w, "value", value, value_len);
    if (lease != 0) {
        put_i64(w, "lease", lease);
    }
}

char *etcd_body_put(const char *key, size_t key_len, const void *value, size_t value_len,
                    int64_t lease, size_t *len)
{
    struct json_w w;
    json_w_init(&w);
    json_w_begin_object(&w);
    put_put(&w, key, key_len, value, value_len, lease);
    json_w_end_object(&w);
    return body_done(&w, len);
}

char *etcd_body_delete(const char *key, size_t key_len, size_t *len)
{
    return etcd_body_range(key, key_len, false, len);
}

/* "name":[{"request":{...}}] opened up to the request's members; close with close_request. */
static void open_request(struct json_w *w, const char *name, const char *request)
{
    json_w_key(w, name);
    json_w_begin_array(w);
    json_w_begin_object(w);
    json_w_key(w, request);
    json_w_begin_object(w);
}

static void close_request(struct json_w *w)
{
    json_w_end_object(w);
    json_w_end_object(w);
    json_w_end_array(w);
}

char *etcd_body_txn(const char *key, size_t key_len, const struct etcd_txn *txn, size_t *len)
{
    struct json_w w;
    json_w_init(&w);
    json_w_begin_object(&w);
    /* compare: [{target, key, <target_union>, result: EQUAL}] */
    json_w_key(&w, "compare");
    json_w_begin_array(&w);
    json_w_begin_object(&w);
    json_w_key_str(&w, "result", "EQUAL");
    json_w_key_str(&w, "target",
                   txn->target == ETCD_CMP_CREATE ? "CREATE"
                   : txn->target == ETCD_CMP_MOD  ? "MOD"
                                                  : "VALUE");
    put_b64(&w, "key", key, key_len);
    if (txn->target == ETCD_CMP_VALUE) {
        put_b64(&w, "value", txn->cmp_value, txn->cmp_value_len);
    } else {
        put_i64(&w, txn->target == ETCD_CMP_CREATE ? "create_revision" : "mod_revision",
                txn->cmp_revision);
    }
    json_w_end_object(&w);
    json_w_end_array(&w);
    /* success: [request_put | request_delete_range]; failure: [request_range] */
    if (txn->is_delete) {
        open_request(&w, "success", "request_delete_range");
        put_b64(&w, "key", key, key_len);
    } else {
        open_request(&w, "success", "request_put");
        put_put(&w, key, key_len, txn->value, txn->value_len, txn->lease);
    }
    close_request(&w);
    open_request(&w, "failure", "request_range");
    put_b64(&w, "key", key, key_len);
    close_request(&w);
    json_w_end_object(&w);
    return body_done(&w, len);
}

char *etcd_body_lease(enum etcd_op op, int64_t n, size_t *len)
{
    struct json_w w;
    json_w_init(&w);
    json_w_begin_object(&w);
    put_i64(&w, op == ETCD_OP_LEASE_GRANT ? "TTL" : "ID", n);
    json_w_end_object(&w);
    return body_done(&w, len);
}

/* ---------------------------------------------------------------------------------------
 * Responses
 */

/* Set the error and a message with control characters replaced, so that a hostile body
 * cannot forge log lines. */
__attribute__((format(printf, 3, 4))) static void fail(struct etcd_result *res, int err,
                                                       const char *fmt, ...)
{
    etcd_result_fini(res);
    res->err = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->msg, sizeof(res->msg), fmt, ap);
    va_end(ap);
    for (char *p = res->msg; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
    if (res->msg[0] == '\0') {
        snprintf(res->msg, sizeof(res->msg), "%s", err_str(err));
    }
}

/* An optional non-negative int64 member: absent gives 0. False when present but not an
 * integer (as a number or a decimal string) or negative. */
static bool get_count(const struct json_value *obj, const char *name, int64_t *out)
{
    const struct json_value *v = json_get(obj, name);
    *out = 0;
    if (v == NULL) {
        return true;
    }
    return json_int(v, out) && *out >= 0;
}

/* An optional base64 member: absent is "" (proto3 omits empty bytes). */
static bool get_b64(const struct json_value *obj, const char *name, const char **s, size_t *len)
{
    const struct json_value *v = json_get(obj, name);
    if (v == NULL) {
        *s = "";
        *len = 0;
        return true;
    }
    *s = json_str(v);
    *len = json_str_len(v);
    return *s != NULL;
}

/* Decode base64 s[0, n) to *cursor, NUL-terminate it, advance the cursor. */
static bool decode_to(const char *s, size_t n, char **cursor, char **out, size_t *out_len)
{
    ssize_t m = base64_decode(s, n, *cursor, base64_decoded_max(n));
    if (m < 0) {
        return false;
    }
    *out = *cursor;
    *out_len = (size_t)m;
    (*cursor)[m] = '\0';
    *cursor += m + 1;
    return true;
}

/* The "kvs" array of a RangeResponse (absent: none) into res->kvs, as one allocation:
 * the array, then every key and value with its NUL. */
static void parse_kvs(const struct json_value *kvs, struct etcd_result *res)
{
    if (kvs == NULL) {
        return;
    }
    if (json_type(kvs) != JSON_ARRAY) {
        fail(res, -EPROTO, "bad etcd response: kvs is not an array");
        return;
    }
    size_t n = json_len(kvs);
    if (n > ETCD_MAX_KVS) {
        fail(res, -EMSGSIZE, "etcd response has %zu kvs (max %u)", n, ETCD_MAX_KVS);
        return;
    }
    if (n == 0) {
        return;
    }
    /* Pass 1: shapes and sizes. The input is at most JSON_MAX_LEN bytes: no overflow. */
    size_t bytes = n * sizeof(struct etcd_kv);
    for (size_t i = 0; i < n; i++) {
        const struct json_value *kv = json_at(kvs, i);
        const char *k, *v;
        size_t k_len, v_len;
        if (json_type(kv) != JSON_OBJECT || !get_b64(kv, "key", &k, &k_len) ||
            !get_b64(kv, "value", &v, &v_len)) {
            fail(res, -EPROTO, "bad etcd response: kv %zu is not {key, value...}", i);
            return;
        }
        bytes += base64_decoded_max(k_len) + 1 + base64_decoded_max(v_len) + 1;
    }
    char *block = malloc(bytes);
    if (block == NULL) {
        fail(res, -ENOMEM, "out of memory for %zu kvs", n);
        return;
    }
    struct etcd_kv *out = (struct etcd_kv *)(void *)block;
    char *cursor = block + n * sizeof(struct etcd_kv);
    res->kvs = out;
    res->n_kvs = n;
    /* Pass 2: decode. */
    for (size_t i = 0; i < n; i++) {
        const struct json_value *kv = json_at(kvs, i);
        const char *k, *v;
        size_t k_len, v_len;
        (void)get_b64(kv, "key", &k, &k_len); /* checked in pass 1 */
        (void)get_b64(kv, "value", &v, &v_len);
        struct etcd_kv *o = &out[i];
        if (!decode_to(k, k_len, &cursor, &o->key, &o->key_len) || o->key_len == 0 ||
            !decode_to(v, v_len, &cursor, &o->value, &o->value_len)) {
            fail(res, -EPROTO, "bad etcd response: kv %zu: empty key or invalid base64", i);
            return;
        }
        if (!get_count(kv, "create_revision", &o->create_revision) ||
            !get_count(kv, "mod_revision", &o->mod_revision) ||
            !get_count(kv, "version", &o->version) || !get_count(kv, "lease", &o->lease)) {
            fail(res, -EPROTO, "bad etcd response: kv %zu: a revision is not an integer", i);
            return;
        }
    }
}

/* The "responses" of a TxnResponse: the first response_range gives kvs, every
 * response_delete_range adds to deleted. */
static void parse_txn_responses(const struct json_value *rs, struct etcd_result *res)
{
    if (rs == NULL) {
        return;
    }
    if (json_type(rs) != JSON_ARRAY) {
        fail(res, -EPROTO, "bad etcd response: responses is not an array");
        return;
    }
    bool has_range = false;
    for (size_t i = 0; i < json_len(rs) && res->err == 0; i++) {
        const struct json_value *r = json_at(rs, i);
        if (json_type(r) != JSON_OBJECT || json_len(r) != 1 ||
            json_type(json_at(r, 0)) != JSON_OBJECT) {
            fail(res, -EPROTO, "bad etcd response: responses[%zu] is not {response_*: {}}", i);
            return;
        }
        const char *kind = json_key_at(r, 0);
        const struct json_value *body = json_at(r, 0);
        int64_t deleted;
        if (strcmp(kind, "response_range") == 0 && !has_range) {
            has_range = true;
            parse_kvs(json_get(body, "kvs"), res);
        } else if (strcmp(kind, "response_delete_range") == 0) {
            if (!get_count(body, "deleted", &deleted) || deleted > INT64_MAX - res->deleted) {
                fail(res, -EPROTO, "bad etcd response: deleted is not an integer");
                return;
            }
            res->deleted += deleted;
        }
    }
}

/* An etcd error: {"error": "...", "message": "...", "code": N} (a unary call), or a stream
 * error {"error": {"grpc_code": N, "message": "..."}}. False if body is neither. */
static bool parse_error(const struct json_value *root, int http_status, struct etcd_result *res)
{
    const struct json_value *err = json_get(root, "error");
    const struct json_value *holder = json_type(err) == JSON_OBJECT ? err : root;
    const char *code_name = json_type(err) == JSON_OBJECT ? "grpc_code" : "code";
    const char *msg = json_str(json_get(holder, "message"));
    if (msg == NULL || msg[0] == '\0') {
        msg = json_str(err);
    }
    if (msg == NULL || msg[0] == '\0') {
        return false;
    }
    int64_t code = 0;
    if (json_get(holder, code_name) != NULL &&
        (!json_int(json_get(holder, code_name), &code) || code < 0 || code > 1000)) {
        return false;
    }
    res->etcd_code = (int)code;
    if (http_status >= 400) {
        fail(res, -KEEL_EETCD, "etcd: %s (code %d, HTTP %d)", msg, res->etcd_code, http_status);
    } else {
        fail(res, -KEEL_EETCD, "etcd: %s (code %d)", msg, res->etcd_code);
    }
    return true;
}

/* The fields of a successful response of kind op, from its top-level object. */
static void parse_success(enum etcd_op op, const struct json_value *root, struct etcd_result *res)
{
    const struct json_value *msg = root;
    if (op == ETCD_OP_LEASE_KEEPALIVE) {
        /* A server stream: each message is wrapped as {"result": ...}. */
        msg = json_get(root, "result");
        if (json_type(msg) != JSON_OBJECT) {
            fail(res, -EPROTO, "bad etcd response: no result object");
            return;
        }
    }
    const struct json_value *header = json_get(msg, "header");
    if (json_type(header) != JSON_OBJECT || json_get(header, "revision") == NULL ||
        !get_count(header, "revision", &res->revision)) {
        fail(res, -EPROTO, "bad etcd response: no header.revision");
        return;
    }
    const struct json_value *succeeded = json_get(msg, "succeeded");
    switch (op) {
    case ETCD_OP_RANGE:
        parse_kvs(json_get(msg, "kvs"), res);
        break;
    case ETCD_OP_PUT:
    case ETCD_OP_LEASE_REVOKE:
        break;
    case ETCD_OP_DELETE:
        if (!get_count(msg, "deleted", &res->deleted)) {
            fail(res, -EPROTO, "bad etcd response: deleted is not an integer");
        }
        break;
    case ETCD_OP_TXN:
        if (succeeded != NULL && json_type(succeeded) != JSON_BOOL) {
            fail(res, -EPROTO, "bad etcd response: succeeded is not a boolean");
            break;
        }
        res->succeeded = json_bool(succeeded, false);
        parse_txn_responses(json_get(msg, "responses"), res);
        break;
    case ETCD_OP_LEASE_GRANT:
        /* A non-empty LeaseGrantResponse.error went through parse_error. */
        if (json_get(msg, "ID") == NULL || !get_count(msg, "ID", &res->lease_id) ||
            res->lease_id == 0 || !get_count(msg, "TTL", &res->ttl) || res->ttl == 0) {
            fail(res, -EPROTO, "bad etcd response: no lease ID and TTL");
        }
        break;
    case ETCD_OP_LEASE_KEEPALIVE:
        if (!get_count(msg, "ID", &res->lease_id) || !get_count(msg, "TTL", &res->ttl)) {
            fail(res, -EPROTO, "bad etcd response: lease ID or TTL is not an integer");
        }
        break;
    case ETCD_OP_COUNT:
        fail(res, -EINVAL, "bad etcd operation");
        break;
    }
}

/* Up to 80 bytes of a body that is not JSON, for the error message. */
static void quote_body(const char *body, size_t len, char *out, size_t size)
{
    size_t n = len < 80 ? len : 80;
    snprintf(out, size, "%.*s%s", (int)n, body, len > n ? "..." : "");
    for (char *p = out; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) {
            *p = '?';
        }
    }
}

void etcd_response_parse(enum etcd_op op, int http_status, const char *body, size_t len,
                         struct etcd_result *res)
{
    memset(res, 0, sizeof(*res));
    res->http_status = http_status;
    struct errbuf eb;
    struct json_doc *doc = json_parse(body, len, &eb);
    const struct json_value *root = json_root(doc);
    if (doc == NULL || json_type(root) != JSON_OBJECT) {
        char quoted[96];
        quote_body(body, len, quoted, sizeof(quoted));
        if (http_status != 200) {
            fail(res, -EPROTO, "unexpected HTTP %d from etcd: %s", http_status, quoted);
        } else if (doc == NULL) {
            fail(res, -EPROTO, "bad JSON from etcd: %s", eb.msg);
        } else {
            fail(res, -EPROTO, "bad etcd response: not an object: %s", quoted);
        }
        json_free(doc);
        return;
    }
    /* proto3 omits empty strings, but an empty "error" (LeaseGrantResponse) is no error. */
    const struct json_value *error = json_get(root, "error");
    bool has_error =
        error != NULL && !(json_type(error) == JSON_STRING && json_str_len(error) == 0);
    if (http_status != 200 || has_error) {
        if (!parse_error(root, http_status, res)) {
            fail(res, -EPROTO, "unexpected HTTP %d from etcd without an error message",
                 http_status);
        }
    } else if ((unsigned)op >= ETCD_OP_COUNT) {
        fail(res, -EINVAL, "bad etcd operation %d", (int)op);
    } else {
        parse_success(op, root, res);
    }
    json_free(doc);
}

void etcd_result_fini(struct etcd_result *res)
{
    free(res->kvs); /* one block: the array, keys and values */
    res->kvs = NULL;
    res->n_kvs = 0;
}

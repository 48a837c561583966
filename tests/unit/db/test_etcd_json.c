/* SPDX-License-Identifier: MIT */
/* Unit tests of db/etcd_json.c: the request bodies (checked by parsing them back), the
 * prefix range end, and the response parser on the shapes etcd 3.4's gateway sends (taken
 * from a real etcd) and on the ones it must reject. */
#include <criterion/criterion.h>

#include "db/etcd_json.c"

/* Parse a body we built and return the document (caller frees). len by pointer: the
 * builder sets it as the other argument is evaluated. */
static struct json_doc *parse_body(char *body, const size_t *len)
{
    cr_assert_not_null(body);
    cr_assert_eq(strlen(body), *len);
    struct errbuf eb;
    struct json_doc *doc = json_parse(body, *len, &eb);
    cr_assert_not_null(doc, "%s: %s", body, eb.msg);
    free(body);
    return doc;
}

static void assert_b64(const struct json_value *v, const void *want, size_t want_len)
{
    char out[256];
    cr_assert_eq(json_type(v), JSON_STRING);
    ssize_t n = base64_decode(json_str(v), json_str_len(v), out, sizeof(out));
    cr_assert_eq(n, (ssize_t)want_len);
    cr_assert_arr_eq(out, want, want_len);
}

Test(etcd_json, range_bodies_for_a_key_and_prefixes)
{
    size_t len;
    struct json_doc *doc = parse_body(etcd_body_range("/a", 2, false, &len), &len);
    assert_b64(json_get(json_root(doc), "key"), "/a", 2);
    cr_assert_null(json_get(json_root(doc), "range_end"));
    json_free(doc);

    doc = parse_body(etcd_body_range("/db/", 4, true, &len), &len);
    assert_b64(json_get(json_root(doc), "key"), "/db/", 4);
    assert_b64(json_get(json_root(doc), "range_end"), "/db0", 4);
    json_free(doc);

    doc = parse_body(etcd_body_range("", 0, true, &len), &len);
    assert_b64(json_get(json_root(doc), "key"), "", 1);
    assert_b64(json_get(json_root(doc), "range_end"), "", 1);
    json_free(doc);
}

Test(etcd_json, prefix_end_carries_over_0xff)
{
    char out[8];
    cr_assert_eq(etcd_prefix_end("ab", 2, out), 2);
    cr_assert_arr_eq(out, "ac", 2);
    cr_assert_eq(etcd_prefix_end("a\xff", 2, out), 1);
    cr_assert_eq(out[0], 'b');
    cr_assert_eq(etcd_prefix_end("a\xff\xff", 3, out), 1);
    cr_assert_eq(etcd_prefix_end("\xff\xff", 2, out), 1);
    cr_assert_eq(out[0], '\0');
    cr_assert_eq(etcd_prefix_end("", 0, out), 1);
    cr_assert_eq(out[0], '\0');
}

Test(etcd_json, put_txn_and_lease_bodies)
{
    size_t len;
    struct json_doc *doc = parse_body(etcd_body_put("/k", 2, "\0\xff", 2, 42, &len), &len);
    const struct json_value *root = json_root(doc);
    assert_b64(json_get(root, "value"), "\0\xff", 2);
    cr_assert_str_eq(json_str(json_get(root, "lease")), "42");
    json_free(doc);
    doc = parse_body(etcd_body_put("/k", 2, "", 0, 0, &len), &len);
    cr_assert_null(json_get(json_root(doc), "lease"));
    json_free(doc);

    struct etcd_txn t = {.target = ETCD_CMP_MOD, .cmp_revision = 7, .value = "v", .value_len = 1};
    doc = parse_body(etcd_body_txn("/k", 2, &t, &len), &len);
    root = json_root(doc);
    const struct json_value *cmp = json_at(json_get(root, "compare"), 0);
    cr_assert_str_eq(json_str(json_get(cmp, "target")), "MOD");
    cr_assert_str_eq(json_str(json_get(cmp, "result")), "EQUAL");
    cr_assert_str_eq(json_str(json_get(cmp, "mod_revision")), "7");
    const struct json_value *put = json_get(json_at(json_get(root, "success"), 0), "request_put");
    assert_b64(json_get(put, "value"), "v", 1);
    const struct json_value *rng = json_get(json_at(json_get(root, "failure"), 0), "request_range");
    assert_b64(json_get(rng, "key"), "/k", 2);
    json_free(doc);

    t = (struct etcd_txn){
        .target = ETCD_CMP_VALUE, .cmp_value = "me", .cmp_value_len = 2, .is_delete = true};
    doc = parse_body(etcd_body_txn("/k", 2, &t, &len), &len);
    root = json_root(doc);
    cmp = json_at(json_get(root, "compare"), 0);
    cr_assert_str_eq(json_str(json_get(cmp, "target")), "VALUE");
    assert_b64(json_get(cmp, "value"), "me", 2);
    cr_assert_not_null(json_get(json_at(json_get(root, "success"), 0), "request_delete_range"));
    json_free(doc);

    doc = parse_body(etcd_body_lease(ETCD_OP_LEASE_GRANT, 5, &len), &len);
    cr_assert_str_eq(json_str(json_get(json_root(doc), "TTL")), "5");
    json_free(doc);
    doc = parse_body(etcd_body_lease(ETCD_OP_LEASE_KEEPALIVE, 1353509812775790864, &len), &len);
    cr_assert_str_eq(json_str(json_get(json_root(doc), "ID")), "1353509812775790864");
    json_free(doc);
}

/* ------------------------------------------------------------------------------------------
 * Responses (bodies captured from etcd 3.4.23)
 * ------------------------------------------------------------------------------------------ */

#define HDR                                                                                        \
    "\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":\"9\",\"raft_term\":\"2\"}"

static struct etcd_result parse(enum etcd_op op, int status, const char *body)
{
    struct etcd_result res;
    etcd_response_parse(op, status, body, strlen(body), &res);
    return res;
}

Test(etcd_json, range_response)
{
    struct etcd_result r = parse(
        ETCD_OP_RANGE, 200,
        "{" HDR ",\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"6\","
        "\"version\":\"3\",\"value\":\"AP8=\",\"lease\":\"7587869116188391172\"},"
        "{\"key\":\"Zm9w\",\"create_revision\":\"6\",\"mod_revision\":\"6\",\"version\":\"1\"}],"
        "\"count\":\"2\"}");
    cr_assert_eq(r.err, 0, "%s", r.msg);
    cr_assert_eq(r.revision, 9);
    cr_assert_eq(r.n_kvs, 2);
    cr_assert_str_eq(r.kvs[0].key, "foo");
    cr_assert_eq(r.kvs[0].key_len, 3);
    cr_assert_eq(r.kvs[0].value_len, 2);
    cr_assert_arr_eq(r.kvs[0].value, "\0\xff", 3); /* and the NUL after */
    cr_assert_eq(r.kvs[0].create_revision, 2);
    cr_assert_eq(r.kvs[0].mod_revision, 6);
    cr_assert_eq(r.kvs[0].version, 3);
    cr_assert_eq(r.kvs[0].lease, 7587869116188391172);
    cr_assert_str_eq(r.kvs[1].value, ""); /* empty values are omitted */
    etcd_result_fini(&r);
    cr_assert_null(r.kvs);

    r = parse(ETCD_OP_RANGE, 200, "{" HDR "}");
    cr_assert_eq(r.err, 0);
    cr_assert_eq(r.n_kvs, 0);
    cr_assert_null(r.kvs);
}

Test(etcd_json, txn_responses)
{
    struct etcd_result r =
        parse(ETCD_OP_TXN, 200,
              "{" HDR ",\"succeeded\":true,\"responses\":[{\"response_put\":{\"header\":"
              "{\"revision\":\"3\"}}}]}");
    cr_assert_eq(r.err, 0, "%s", r.msg);
    cr_assert(r.succeeded);
    cr_assert_eq(r.n_kvs, 0);

    /* A failed compare: succeeded is omitted, the range shows the current kv. */
    r = parse(ETCD_OP_TXN, 200,
              "{" HDR ",\"responses\":[{\"response_range\":{\"header\":{\"revision\":\"2\"},"
              "\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\","
              "\"version\":\"1\",\"value\":\"YmFy\"}],\"count\":\"1\"}}]}");
    cr_assert_eq(r.err, 0, "%s", r.msg);
    cr_assert_not(r.succeeded);
    cr_assert_eq(r.n_kvs, 1);
    cr_assert_str_eq(r.kvs[0].value, "bar");
    etcd_result_fini(&r);

    r = parse(ETCD_OP_TXN, 200,
              "{" HDR ",\"succeeded\":true,\"responses\":[{\"response_delete_range\":"
              "{\"header\":{\"revision\":\"5\"},\"deleted\":\"1\"}}]}");
    cr_assert_eq(r.err, 0, "%s", r.msg);
    cr_assert_eq(r.deleted, 1);
}

Test(etcd_json, lease_responses)
{
    struct etcd_result r =
        parse(ETCD_OP_LEASE_GRANT, 200, "{" HDR ",\"ID\":\"1353509812775790856\",\"TTL\":\"2\"}");
    cr_assert_eq(r.err, 0, "%s", r.msg);
    cr_assert_eq(r.lease_id, 1353509812775790856);
    cr_assert_eq(r.ttl, 2);

    /* keepalive is a stream: {"result": ...}; a lease that is gone has no TTL. */
    r = parse(ETCD_OP_LEASE_KEEPALIVE, 200,
              "{\"result\":{" HDR ",\"ID\":\"1353509812775790864\",\"TTL\":\"5\"}}\n");
    cr_assert_eq(r.err, 0, "%s", r.msg);
    cr_assert_eq(r.ttl, 5);
    cr_assert_eq(r.lease_id, 1353509812775790864);
    r = parse(ETCD_OP_LEASE_KEEPALIVE, 200, "{\"result\":{" HDR ",\"ID\":\"12345\"}}");
    cr_assert_eq(r.err, 0, "%s", r.msg);
    cr_assert_eq(r.ttl, 0);
    r = parse(ETCD_OP_LEASE_KEEPALIVE, 200, "{" HDR ",\"ID\":\"1\",\"TTL\":\"5\"}");
    cr_assert_eq(r.err, -EPROTO, "a keepalive answer must be wrapped in result");

    r = parse(ETCD_OP_LEASE_REVOKE, 200, "{" HDR "}");
    cr_assert_eq(r.err, 0);
    cr_assert_eq(r.revision, 9);
}

Test(etcd_json, etcd_errors)
{
    struct etcd_result r = parse(ETCD_OP_LEASE_REVOKE, 404,
                                 "{\"error\":\"etcdserver: requested lease not found\","
                                 "\"message\":\"etcdserver: requested lease not found\","
                                 "\"code\":5}");
    cr_assert_eq(r.err, -KEEL_EETCD);
    cr_assert_eq(r.etcd_code, 5);
    cr_assert_eq(r.http_status, 404);
    cr_assert_str_eq(r.msg, "etcd: etcdserver: requested lease not found (code 5, HTTP 404)");

    /* A stream error, after a 200 head. */
    r = parse(ETCD_OP_LEASE_KEEPALIVE, 200,
              "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no "
              "leader\",\"http_status\":\"Service Unavailable\"}}");
    cr_assert_eq(r.err, -KEEL_EETCD);
    cr_assert_eq(r.etcd_code, 14);
    cr_assert(strstr(r.msg, "no leader") != NULL, "%s", r.msg);

    /* A non-empty LeaseGrantResponse.error; an empty one is no error. */
    r = parse(ETCD_OP_LEASE_GRANT, 200, "{" HDR ",\"error\":\"lease exists\"}");
    cr_assert_eq(r.err, -KEEL_EETCD);
    r = parse(ETCD_OP_LEASE_GRANT, 200, "{" HDR ",\"ID\":\"3\",\"TTL\":\"2\",\"error\":\"\"}");
    cr_assert_eq(r.err, 0, "%s", r.msg);

    /* Not etcd: a plain-text 404, with the body quoted safely. */
    r = parse(ETCD_OP_RANGE, 404, "Not Found\n");
    cr_assert_eq(r.err, -EPROTO);
    cr_assert_str_eq(r.msg, "unexpected HTTP 404 from etcd: Not Found?");
    r = parse(ETCD_OP_RANGE, 500, "{}");
    cr_assert_eq(r.err, -EPROTO);

    /* Control characters in etcd's message do not reach the log line. */
    r = parse(ETCD_OP_PUT, 400, "{\"error\":\"x\",\"message\":\"a\\nb\\u001bc\",\"code\":3}");
    cr_assert_eq(r.err, -KEEL_EETCD);
    cr_assert_str_eq(r.msg, "etcd: a?b?c (code 3, HTTP 400)");
}

Test(etcd_json, malformed_responses_are_rejected_without_allocations)
{
    static const struct {
        enum etcd_op op;
        const char *body;
        int err;
    } cases[] = {
        {ETCD_OP_RANGE, "", -EPROTO},
        {ETCD_OP_RANGE, "[]", -EPROTO},
        {ETCD_OP_RANGE, "{\"kvs\":[]}", -EPROTO}, /* no header */
        {ETCD_OP_RANGE, "{\"header\":{}}", -EPROTO},
        {ETCD_OP_RANGE, "{\"header\":{\"revision\":\"-1\"}}", -EPROTO},
        {ETCD_OP_RANGE, "{\"header\":{\"revision\":\"x\"}}", -EPROTO},
        {ETCD_OP_RANGE, "{" HDR ",\"kvs\":{}}", -EPROTO},
        {ETCD_OP_RANGE, "{" HDR ",\"kvs\":[1]}", -EPROTO},
        {ETCD_OP_RANGE, "{" HDR ",\"kvs\":[{\"value\":\"YQ==\"}]}", -EPROTO}, /* no key */
        {ETCD_OP_RANGE, "{" HDR ",\"kvs\":[{\"key\":\"\"}]}", -EPROTO},       /* empty key */
        {ETCD_OP_RANGE, "{" HDR ",\"kvs\":[{\"key\":\"YQ\"}]}", -EPROTO},     /* no padding */
        {ETCD_OP_RANGE, "{" HDR ",\"kvs\":[{\"key\":\"YQ==\",\"value\":\"Y Q==\"}]}", -EPROTO},
        {ETCD_OP_RANGE, "{" HDR ",\"kvs\":[{\"key\":\"YQ==\",\"version\":true}]}", -EPROTO},
        {ETCD_OP_RANGE, "{" HDR ",\"kvs\":[{\"key\":\"YQ==\"},{\"key\":7}]}", -EPROTO},
        {ETCD_OP_DELETE, "{" HDR ",\"deleted\":\"1.5\"}", -EPROTO},
        {ETCD_OP_TXN, "{" HDR ",\"succeeded\":\"true\"}", -EPROTO},
        {ETCD_OP_TXN, "{" HDR ",\"responses\":[{}]}", -EPROTO},
        {ETCD_OP_TXN, "{" HDR ",\"responses\":[{\"response_range\":[]}]}", -EPROTO},
        {ETCD_OP_TXN,
         "{" HDR ",\"responses\":[{\"response_range\":{\"kvs\":[{\"key\":\"YQ==\"}]}},"
         "{\"response_delete_range\":{\"deleted\":\"x\"}}]}",
         -EPROTO},
        {ETCD_OP_LEASE_GRANT, "{" HDR ",\"TTL\":\"2\"}", -EPROTO},
        {ETCD_OP_LEASE_GRANT, "{" HDR ",\"ID\":\"0\",\"TTL\":\"2\"}", -EPROTO},
        {ETCD_OP_LEASE_KEEPALIVE, "{\"result\":[]}", -EPROTO},
        {ETCD_OP_LEASE_KEEPALIVE, "{\"result\":{" HDR ",\"TTL\":\"-1\"}}", -EPROTO},
        {ETCD_OP_PUT, "{" HDR "} {}", -EPROTO},
        {ETCD_OP_PUT, "{\"error\":{}}", -EPROTO},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct etcd_result r = parse(cases[i].op, 200, cases[i].body);
        cr_assert_eq(r.err, cases[i].err, "case %zu (%s): %d %s", i, cases[i].body, r.err, r.msg);
        cr_assert_null(r.kvs, "case %zu", i);
        cr_assert_eq(r.n_kvs, 0, "case %zu", i);
        cr_assert_neq(r.msg[0], '\0', "case %zu", i);
    }
}

Test(etcd_json, too_many_kvs)
{
    size_t n = ETCD_MAX_KVS + 1;
    size_t cap = n * 16 + 256, len = 0;
    char *body = malloc(cap);
    len += (size_t)snprintf(body, cap, "{" HDR ",\"kvs\":[");
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(body + len, cap - len, "%s{\"key\":\"YQ==\"}", i > 0 ? "," : "");
    }
    len += (size_t)snprintf(body + len, cap - len, "]}");
    struct etcd_result r;
    etcd_response_parse(ETCD_OP_RANGE, 200, body, len, &r);
    cr_assert_eq(r.err, -EMSGSIZE, "%s", r.msg);
    cr_assert_null(r.kvs);
    free(body);
}

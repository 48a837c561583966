/* SPDX-License-Identifier: MIT */
/* The etcd v3 client of etcd.h: endpoints, the requests in flight, their deadlines and the
 * endpoint failover. Each request is one struct etcd_req holding its JSON body (built by
 * etcd_json.c) and one http_client exchange at a time; the response goes through
 * etcd_response_parse into the caller's callback. This file owns no socket itself. */
#include "db/etcd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ev.h"
#include "core/log.h"
#include "http/http_client.h"
#include "db/etcd_json.h"

/* Largest TTL a lease may ask for: etcd's MaxLeaseTTL (9,000,000,000 seconds). */
#define LEASE_MAX_TTL_S 9000000000LL

struct etcd_endpoint {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char host[INET6_ADDRSTRLEN + 8]; /* "127.0.0.1:2379" or "[::1]:2379": Host and logs */
};

enum etcd_req_state {
    ETCD_REQ_STATE_IN_FLIGHT = 0, /* an HTTP exchange with one endpoint is under way */
    ETCD_REQ_STATE_FAILING,       /* no endpoint could be tried: the result is delivered at
                                   * the end of the iteration (never inside etcd_*()) */
    ETCD_REQ_STATE_DONE           /* the callback ran (or is running); freed after the
                                   * iteration */
};

static const char *const etcd_req_state_names[] = {
    [ETCD_REQ_STATE_IN_FLIGHT] = "in-flight",
    [ETCD_REQ_STATE_FAILING] = "failing",
    [ETCD_REQ_STATE_DONE] = "done",
};

struct etcd_req {
    struct etcd *e;
    struct etcd_req *prev, *next; /* e->reqs */
    enum etcd_req_state state;
    enum etcd_op op;
    char *body;
    size_t body_len;
    uint64_t queued_ms;
    uint64_t deadline_ms;
    size_t first_ep; /* the preferred endpoint when the request was queued */
    size_t n_tried;  /* endpoints tried, from first_ep on */
    size_t ep;       /* endpoint of the current exchange */
    struct http_client *http;
    struct ev_defer defer;
    int fail_err;       /* the last endpoint's error; FAILING: the error to deliver */
    char fail_msg[256]; /* what each endpoint said, for the final message */
    etcd_cb_fn cb;
    void *data;
};

struct etcd {
    struct ev_loop *loop;
    struct etcd_endpoint *eps;
    size_t n_eps;
    size_t preferred; /* where requests start: the endpoint that last worked */
    uint32_t timeout_ms;
    struct etcd_req *reqs; /* in flight, newest first */
    size_t n_inflight;
    bool is_closing;
};

static void req_set_state(struct etcd_req *r, enum etcd_req_state to, const char *reason)
{
    if (r->state == ETCD_REQ_STATE_DONE || to <= r->state) {
        log_error("etcd", "%s: illegal transition %s -> %s", etcd_op_name(r->op),
                  etcd_req_state_names[r->state], etcd_req_state_names[to]);
        abort();
    }
    log_debug("etcd", "%s: %s -> %s (%s)", etcd_op_name(r->op), etcd_req_state_names[r->state],
              etcd_req_state_names[to], reason);
    r->state = to;
}

/* ---------------------------------------------------------------------------------------
 * Endpoints
 */

/* "http://IP:PORT[/]" with a numeric IPv4 or bracketed IPv6 address. */
static int parse_endpoint(const char *url, struct etcd_endpoint *ep, struct errbuf *eb)
{
    static const char scheme[] = "http://";
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
        errbuf_set(eb, "\"%s\": only http:// URLs are supported", url);
        return -EINVAL;
    }
    const char *host = url + sizeof(scheme) - 1;
    const char *host_end, *colon;
    if (host[0] == '[') {
        host++;
        host_end = strchr(host, ']');
        colon = host_end != NULL ? host_end + 1 : NULL;
    } else {
        host_end = strchr(host, ':');
        colon = host_end;
    }
    if (host_end == NULL || colon == NULL || *colon != ':' || host_end == host ||
        (size_t)(host_end - host) >= INET6_ADDRSTRLEN) {
        errbuf_set(eb, "\"%s\": expected http://IP:PORT", url);
        return -EINVAL;
    }
    char ip[INET6_ADDRSTRLEN];
    memcpy(ip, host, (size_t)(host_end - host));
    ip[host_end - host] = '\0';
    unsigned long port = 0;
    const char *p = colon + 1;
    size_t digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 6; p++, digits++) {
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (digits == 0 || port == 0 || port > 65535 || !(p[0] == '\0' || strcmp(p, "/") == 0)) {
        errbuf_set(eb, "\"%s\": expected http://IP:PORT with a port in 1..65535", url);
        return -EINVAL;
    }
    memset(&ep->addr, 0, sizeof(ep->addr));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ep->addr;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ep->addr;
    if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        ep->addrlen = sizeof(*sin);
        snprintf(ep->host, sizeof(ep->host), "%s:%lu", ip, port);
    } else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        ep->addrlen = sizeof(*sin6);
        snprintf(ep->host, sizeof(ep->host), "[%s]:%lu", ip, port);
    } else {
        errbuf_set(eb, "\"%s\": \"%s\" is not a numeric IP address", url, ip);
        return -EINVAL;
    }
    return 0;
}

struct etcd *etcd_new(struct ev_loop *loop, const char *const *endpoints, size_t n,
                      uint32_t timeout_ms, struct errbuf *eb)
{
    if (n == 0 || n > ETCD_MAX_ENDPOINTS) {
        errbuf_set(eb, "etcd needs 1 to %d endpoints, got %zu", ETCD_MAX_ENDPOINTS, n);
        return NULL;
    }
    struct etcd *e = calloc(1, sizeof(*e));
    struct etcd_endpoint *eps = calloc(n, sizeof(*eps));
    if (e == NULL || eps == NULL) {
        free(e);
        free(eps);
        errbuf_set(eb, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        struct errbuf why;
        if (parse_endpoint(endpoints[i], &eps[i], &why) != 0) {
            errbuf_set(eb, "etcd endpoint %zu %s", i + 1, why.msg);
            free(eps);
            free(e);
            return NULL;
        }
    }
    e->loop = loop;
    e->eps = eps;
    e->n_eps = n;
    e->timeout_ms = timeout_ms != 0 ? timeout_ms : ETCD_DEFAULT_TIMEOUT_MS;
    return e;
}

size_t etcd_inflight(const struct etcd *e)
{
    return e->n_inflight;
}

/* ---------------------------------------------------------------------------------------
 * Completion
 */

/* Append "; what" to the request's failure message (bounded). */
__attribute__((format(printf, 2, 3))) static void note(struct etcd_req *r, const char *fmt, ...)
{
    size_t used = strlen(r->fail_msg);
    if (used + 2 >= sizeof(r->fail_msg)) {
        return;
    }
    if (used > 0) {
        r->fail_msg[used++] = ';';
        r->fail_msg[used++] = ' ';
        r->fail_msg[used] = '\0';
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->fail_msg + used, sizeof(r->fail_msg) - used, fmt, ap);
    va_end(ap);
}

/* Deliver res (its kvs are freed after) and retire the request. The callback runs last:
 * it may free the client, so nothing here touches e after it. */
static void finish(struct etcd_req *r, struct etcd_result *res)
{
    struct etcd *e = r->e;
    struct ev_loop *loop = e->loop;
    http_client_cancel(r->http);
    r->http = NULL;
    if (r->prev != NULL) {
        r->prev->next = r->next;
    } else {
        e->reqs = r->next;
    }
    if (r->next != NULL) {
        r->next->prev = r->prev;
    }
    e->n_inflight--;
    req_set_state(r, ETCD_REQ_STATE_DONE, res->err == 0 ? "ok" : err_name(res->err));
    if (res->err != 0) {
        log_debug("etcd", "%s failed: %s", etcd_op_name(r->op), res->msg);
    }
    r->cb(r->data, res);
    etcd_result_fini(res);
    free(r->body);
    r->body = NULL;
    /* A deferred delivery may still be queued: free after the iteration's deferred calls. */
    ev_free_later(loop, r);
}

__attribute__((format(printf, 3, 4))) static void finish_error(struct etcd_req *r, int err,
                                                               const char *fmt, ...)
{
    struct etcd_result res = {.err = err};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res.msg, sizeof(res.msg), fmt, ap);
    va_end(ap);
    finish(r, &res);
}

static void on_deferred_failure(struct ev_loop *loop, void *data)
{
    (void)loop;
    struct etcd_req *r = data;
    if (r->state != ETCD_REQ_STATE_FAILING) {
        return; /* cancelled by etcd_free meanwhile */
    }
    finish_error(r, r->fail_err, "%s", r->fail_msg);
}

/* Requests start at the preferred endpoint; move it on when it fails. */
static void endpoint_failed(struct etcd *e, size_t ep, const char *why)
{
    if (e->n_eps < 2 || e->preferred != ep) {
        return;
    }
    e->preferred = (ep + 1) % e->n_eps;
    log_notice("etcd", "endpoint %s failed (%s), now preferring %s", e->eps[ep].host, why,
               e->eps[e->preferred].host);
}

/* ---------------------------------------------------------------------------------------
 * Attempts and failover
 */

static void on_http_done(void *data, const struct http_client_response *resp);

/* Start an exchange with the next untried endpoint, giving it an equal share of the time
 * left to connect. When none can be started, the failure is delivered at the end of the
 * iteration (this may run inside an etcd_*() call, which must not call back). */
static void attempt(struct etcd_req *r)
{
    struct etcd *e = r->e;
    int err = r->fail_err != 0 ? r->fail_err : -ETIMEDOUT; /* the last endpoint's error */
    ev_update_time(e->loop);
    while (r->n_tried < e->n_eps) {
        uint64_t now = ev_now_ms(e->loop);
        if (now >= r->deadline_ms) {
            err = -ETIMEDOUT;
            break;
        }
        size_t left = e->n_eps - r->n_tried;
        r->ep = (r->first_ep + r->n_tried) % e->n_eps;
        r->n_tried++;
        const struct etcd_endpoint *ep = &e->eps[r->ep];
        struct http_client_request hr = {
            .addr = (const struct sockaddr *)&ep->addr,
            .addrlen = ep->addrlen,
            .method = "POST",
            .host = ep->host,
            .path = etcd_op_path(r->op),
            .content_type = "application/json",
            .body = r->body,
            .body_len = r->body_len,
            .connect_deadline_ms = now + (r->deadline_ms - now) / left,
            .deadline_ms = r->deadline_ms,
            .max_body = ETCD_MAX_RESPONSE,
        };
        err = http_client_start(e->loop, &hr, on_http_done, r, &r->http);
        if (err == 0) {
            return;
        }
        r->http = NULL;
        if (err == -ENOMEM || err == -EINVAL) {
            /* Not the endpoint's fault: another would fail the same way. */
            note(r, "%s: cannot start the request: %s", ep->host, strerror(-err));
            break;
        }
        note(r, "%s: connect() failed: %s", ep->host, strerror(-err));
        endpoint_failed(e, r->ep, strerror(-err));
    }
    char what[sizeof(r->fail_msg)];
    snprintf(what, sizeof(what), "%s", r->fail_msg);
    r->fail_msg[0] = '\0';
    if (err == -ETIMEDOUT) {
        note(r, "etcd %s timed out after %" PRIu64 " ms%s%s", etcd_op_name(r->op),
             ev_now_ms(e->loop) - r->queued_ms, what[0] != '\0' ? ": " : "", what);
    } else {
        note(r, "no etcd endpoint reachable: %s", what);
    }
    r->fail_err = err;
    req_set_state(r, ETCD_REQ_STATE_FAILING, err_name(err));
    ev_defer(e->loop, &r->defer, on_deferred_failure, r);
}

static void on_http_done(void *data, const struct http_client_response *resp)
{
    struct etcd_req *r = data;
    struct etcd *e = r->e;
    const struct etcd_endpoint *ep = &e->eps[r->ep];
    r->http = NULL;
    if (resp->err != 0 && resp->is_connect_failure) {
        /* Nothing reached this endpoint: the request may go to the next one. */
        note(r, "%s: %s", ep->host, resp->why);
        endpoint_failed(e, r->ep, resp->why);
        r->fail_err = resp->err;
        attempt(r);
        return;
    }
    if (resp->err != 0) {
        /* The request may have been applied: report, do not resend. */
        endpoint_failed(e, r->ep, resp->why);
        if (resp->err == -ETIMEDOUT) {
            finish_error(r, resp->err, "etcd %s timed out after %" PRIu64 " ms: %s: %s",
                         etcd_op_name(r->op), ev_now_ms(e->loop) - r->queued_ms, ep->host,
                         resp->why);
        } else {
            finish_error(r, resp->err, "etcd %s: %s: %s", etcd_op_name(r->op), ep->host, resp->why);
        }
        return;
    }
    struct etcd_result res;
    etcd_response_parse(r->op, resp->status, resp->body, resp->body_len, &res);
    if (res.err == 0) {
        e->preferred = r->ep;
    } else if (resp->status >= 500 || res.err == -EPROTO) {
        /* "no leader", a gateway that is not etcd's...: later requests try another. */
        endpoint_failed(e, r->ep, res.msg);
    }
    finish(r, &res);
}

/* ---------------------------------------------------------------------------------------
 * Requests
 */

/* Queue a request whose body was just built (body NULL: out of memory). Takes ownership of
 * body. The length comes by pointer: it is set by the builder call that is this call's
 * argument, and argument evaluation order is unspecified. */
static int submit(struct etcd *e, enum etcd_op op, char *body, const size_t *body_len,
                  etcd_cb_fn cb, void *data)
{
    if (body == NULL) {
        return -ENOMEM;
    }
    struct etcd_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        free(body);
        return -ENOMEM;
    }
    ev_update_time(e->loop);
    r->e = e;
    r->op = op;
    r->body = body;
    r->body_len = *body_len;
    r->queued_ms = ev_now_ms(e->loop);
    r->deadline_ms = r->queued_ms + e->timeout_ms;
    r->first_ep = e->preferred;
    r->cb = cb;
    r->data = data;
    r->next = e->reqs;
    if (e->reqs != NULL) {
        e->reqs->prev = r;
    }
    e->reqs = r;
    e->n_inflight++;
    attempt(r);
    return 0;
}

/* What every call checks before building its body. */
static int check_call(const struct etcd *e, const char *key, size_t value_len, etcd_cb_fn cb)
{
    if (e == NULL || cb == NULL) {
        return -EINVAL;
    }
    if (e->is_closing) {
        return -ECANCELED;
    }
    if (e->n_inflight >= ETCD_MAX_INFLIGHT) {
        return -EBUSY;
    }
    if (key != NULL && (key[0] == '\0' || strnlen(key, ETCD_MAX_KEY_LEN + 1) > ETCD_MAX_KEY_LEN)) {
        return -EINVAL;
    }
    if (value_len > ETCD_MAX_VALUE_LEN) {
        return -EINVAL;
    }
    return 0;
}

int etcd_get(struct etcd *e, const char *key, etcd_cb_fn cb, void *data)
{
    size_t len = 0;
    int rc = key != NULL ? check_call(e, key, 0, cb) : -EINVAL;
    if (rc != 0) {
        return rc;
    }
    return submit(e, ETCD_OP_RANGE, etcd_body_range(key, strlen(key), false, &len), &len, cb, data);
}

int etcd_get_prefix(struct etcd *e, const char *prefix, etcd_cb_fn cb, void *data)
{
    size_t len = 0;
    /* An empty prefix is allowed (every key): check with a placeholder key. */
    int rc = prefix != NULL ? check_call(e, prefix[0] != '\0' ? prefix : "-", 0, cb) : -EINVAL;
    if (rc != 0) {
        return rc;
    }
    return submit(e, ETCD_OP_RANGE, etcd_body_range(prefix, strlen(prefix), true, &len), &len, cb,
                  data);
}

int etcd_put(struct etcd *e, const char *key, const void *value, size_t len, int64_t lease,
             etcd_cb_fn cb, void *data)
{
    size_t body_len = 0;
    int rc = key != NULL && (value != NULL || len == 0) && lease >= 0 ? check_call(e, key, len, cb)
                                                                      : -EINVAL;
    if (rc != 0) {
        return rc;
    }
    return submit(e, ETCD_OP_PUT, etcd_body_put(key, strlen(key), value, len, lease, &body_len),
                  &body_len, cb, data);
}

int etcd_delete(struct etcd *e, const char *key, etcd_cb_fn cb, void *data)
{
    size_t len = 0;
    int rc = key != NULL ? check_call(e, key, 0, cb) : -EINVAL;
    if (rc != 0) {
        return rc;
    }
    return submit(e, ETCD_OP_DELETE, etcd_body_delete(key, strlen(key), &len), &len, cb, data);
}

static int txn(struct etcd *e, const char *key, const struct etcd_txn *t, etcd_cb_fn cb, void *data)
{
    size_t len = 0;
    size_t checked = t->target == ETCD_CMP_VALUE ? t->cmp_value_len : t->value_len;
    int rc = key != NULL && t->lease >= 0 && t->cmp_revision >= 0 ? check_call(e, key, checked, cb)
                                                                  : -EINVAL;
    if (rc != 0) {
        return rc;
    }
    return submit(e, ETCD_OP_TXN, etcd_body_txn(key, strlen(key), t, &len), &len, cb, data);
}

int etcd_create(struct etcd *e, const char *key, const void *value, size_t len, int64_t lease,
                etcd_cb_fn cb, void *data)
{
    if (value == NULL && len != 0) {
        return -EINVAL;
    }
    struct etcd_txn t = {
        .target = ETCD_CMP_CREATE, .value = value, .value_len = len, .lease = lease};
    return txn(e, key, &t, cb, data);
}

int etcd_cas(struct etcd *e, const char *key, int64_t expected_mod_revision, const void *value,
             size_t len, int64_t lease, etcd_cb_fn cb, void *data)
{
    if (value == NULL && len != 0) {
        return -EINVAL;
    }
    struct etcd_txn t = {.target = ETCD_CMP_MOD,
                         .cmp_revision = expected_mod_revision,
                         .value = value,
                         .value_len = len,
                         .lease = lease};
    return txn(e, key, &t, cb, data);
}

int etcd_delete_if_value(struct etcd *e, const char *key, const void *expected, size_t len,
                         etcd_cb_fn cb, void *data)
{
    if (expected == NULL && len != 0) {
        return -EINVAL;
    }
    struct etcd_txn t = {
        .target = ETCD_CMP_VALUE, .cmp_value = expected, .cmp_value_len = len, .is_delete = true};
    return txn(e, key, &t, cb, data);
}

static int lease_call(struct etcd *e, enum etcd_op op, int64_t n, etcd_cb_fn cb, void *data)
{
    size_t len = 0;
    int rc = check_call(e, NULL, 0, cb);
    if (rc != 0) {
        return rc;
    }
    return submit(e, op, etcd_body_lease(op, n, &len), &len, cb, data);
}

int etcd_lease_grant(struct etcd *e, int64_t ttl_s, etcd_cb_fn cb, void *data)
{
    if (ttl_s < 1 || ttl_s > LEASE_MAX_TTL_S) {
        return -EINVAL;
    }
    return lease_call(e, ETCD_OP_LEASE_GRANT, ttl_s, cb, data);
}

int etcd_lease_keepalive(struct etcd *e, int64_t lease_id, etcd_cb_fn cb, void *data)
{
    if (lease_id <= 0) {
        return -EINVAL;
    }
    return lease_call(e, ETCD_OP_LEASE_KEEPALIVE, lease_id, cb, data);
}

int etcd_lease_revoke(struct etcd *e, int64_t lease_id, etcd_cb_fn cb, void *data)
{
    if (lease_id <= 0) {
        return -EINVAL;
    }
    return lease_call(e, ETCD_OP_LEASE_REVOKE, lease_id, cb, data);
}

/* ---------------------------------------------------------------------------------------
 * Teardown
 */

void etcd_free(struct etcd *e)
{
    if (e == NULL || e->is_closing) {
        return; /* a callback run by the outer call: that call frees */
    }
    e->is_closing = true;
    while (e->reqs != NULL) {
        finish_error(e->reqs, -ECANCELED, "etcd %s cancelled: the client was freed",
                     etcd_op_name(e->reqs->op));
    }
    free(e->eps);
    free(e);
}

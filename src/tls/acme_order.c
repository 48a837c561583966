/* SPDX-License-Identifier: MIT */
/* One ACME order on the loop (acme_order.h). Each state sends one request and waits for its
 * answer (or a poll timer); the answer's Replay-Nonce is kept for the next request. A
 * badNonce problem (RFC 8555 section 6.5) resends the same request with the fresh nonce, a
 * few times. Everything else that goes wrong ends the order with a reason for the log; the
 * certificate manager retries with its backoff. */
#include "tls/acme_order.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "core/ev.h"
#include "core/fsm.h"
#include "core/json.h"
#include "core/log.h"
#include "http/http_client.h"
#include "http/http_transport.h"
#include "tls/acme_alpn.h"
#include "tls/acme_http01.h"
#include "tls/acme_jws.h"
#include "tls/acme_msg.h"
#include "tls/tls_client.h"
#include "tls/tls_transport.h"

#define NONCE_MAX 256
#define BAD_NONCE_RETRIES 5
#define POLL_DEFAULT_MS 1000u
#define POLL_MIN_MS 200u
#define POLL_MAX_MS 10000u
#define EXCHANGE_TIMEOUT_MS 15000u
#define BODY_MAX (256u * 1024u)

static const char *const state_names[ACME_ORDER_STATE_COUNT] = {
    [ACME_ORDER_DIRECTORY] = "directory",
    [ACME_ORDER_NONCE] = "nonce",
    [ACME_ORDER_ACCOUNT] = "account",
    [ACME_ORDER_NEW_ORDER] = "new-order",
    [ACME_ORDER_AUTHZ] = "authz",
    [ACME_ORDER_CHALLENGE] = "challenge",
    [ACME_ORDER_POLL_AUTHZ] = "poll-authz",
    [ACME_ORDER_FINALIZE] = "finalize",
    [ACME_ORDER_POLL_ORDER] = "poll-order",
    [ACME_ORDER_DOWNLOAD] = "download",
    [ACME_ORDER_DONE] = "done",
};

#define BIT(s) (1u << (s))

/* legal_next[from]. A POST needs a nonce: any state that posts may go to nonce first and
 * come back (the request waits in pending). Every state may end (done). */
static const uint32_t legal_next[ACME_ORDER_STATE_COUNT] = {
    [ACME_ORDER_DIRECTORY] = BIT(ACME_ORDER_NONCE),
    [ACME_ORDER_NONCE] = BIT(ACME_ORDER_ACCOUNT) | BIT(ACME_ORDER_NEW_ORDER) |
                         BIT(ACME_ORDER_AUTHZ) | BIT(ACME_ORDER_CHALLENGE) |
                         BIT(ACME_ORDER_POLL_AUTHZ) | BIT(ACME_ORDER_FINALIZE) |
                         BIT(ACME_ORDER_POLL_ORDER) | BIT(ACME_ORDER_DOWNLOAD),
    [ACME_ORDER_ACCOUNT] = BIT(ACME_ORDER_NEW_ORDER) | BIT(ACME_ORDER_NONCE),
    /* new-order: its authorizations, or straight to finalize when all are valid already */
    [ACME_ORDER_NEW_ORDER] =
        BIT(ACME_ORDER_AUTHZ) | BIT(ACME_ORDER_FINALIZE) | BIT(ACME_ORDER_NONCE),
    /* authz: pending -> its challenge; valid -> the next authz or finalize */
    [ACME_ORDER_AUTHZ] = BIT(ACME_ORDER_CHALLENGE) | BIT(ACME_ORDER_AUTHZ) |
                         BIT(ACME_ORDER_FINALIZE) | BIT(ACME_ORDER_NONCE),
    [ACME_ORDER_CHALLENGE] = BIT(ACME_ORDER_POLL_AUTHZ) | BIT(ACME_ORDER_NONCE),
    [ACME_ORDER_POLL_AUTHZ] = BIT(ACME_ORDER_POLL_AUTHZ) | BIT(ACME_ORDER_AUTHZ) |
                              BIT(ACME_ORDER_FINALIZE) | BIT(ACME_ORDER_NONCE),
    [ACME_ORDER_FINALIZE] =
        BIT(ACME_ORDER_POLL_ORDER) | BIT(ACME_ORDER_DOWNLOAD) | BIT(ACME_ORDER_NONCE),
    [ACME_ORDER_POLL_ORDER] =
        BIT(ACME_ORDER_POLL_ORDER) | BIT(ACME_ORDER_DOWNLOAD) | BIT(ACME_ORDER_NONCE),
    [ACME_ORDER_DOWNLOAD] = BIT(ACME_ORDER_NONCE),
    [ACME_ORDER_DONE] = 0,
};

const char *acme_order_state_name(enum acme_order_state s)
{
    return (unsigned)s < ACME_ORDER_STATE_COUNT ? state_names[s] : "?";
}

bool acme_order_state_is_legal(enum acme_order_state from, enum acme_order_state to)
{
    if ((unsigned)from >= ACME_ORDER_STATE_COUNT || (unsigned)to >= ACME_ORDER_STATE_COUNT) {
        return false;
    }
    return from != ACME_ORDER_DONE && (to == ACME_ORDER_DONE || (legal_next[from] & BIT(to)));
}

struct acme_order {
    struct ev_loop *loop;
    struct acme_order_conf conf;
    acme_order_done_fn on_done;
    void *data;
    enum acme_order_state state;
    uint64_t deadline_ms;
    struct http_client *http;
    struct http_xprt_conf xc; /* TLS to the directory: the exchange borrows it */
    struct ev_timer timer;    /* the whole order's deadline is checked at each step; polls */
    char host[256];           /* the directory's authority: the Host header */
    uint16_t port;
    struct acme_directory dir;
    char nonce[NONCE_MAX];
    char kid[ACME_URL_MAX];
    char order_url[ACME_URL_MAX];
    struct acme_order_msg order;
    uint32_t authz_i;           /* the authorization being worked on */
    char token[ACME_TOKEN_MAX]; /* its http-01 token, published while it is pending */
    char answered[254];         /* its tls-alpn-01 identifier, published while pending */
    char thumbprint[44];
    EVP_PKEY *cert_key; /* the certificate's key, made at finalize */
    /* The request waiting for a nonce or being sent (resent on badNonce). */
    enum acme_order_state pending_state;
    char pending_url[ACME_URL_MAX];
    char *pending_payload; /* NULL: POST-as-GET */
    bool pending_jwk;      /* sign with the jwk (newAccount) rather than the kid */
    char *body_out;        /* the JWS being sent */
    size_t body_out_len;
    unsigned bad_nonces;
    uint64_t poll_ms; /* after this answer, the next poll's delay */
    /* answer_delay_ms: the challenge to POST when the timer fires */
    bool is_challenge_due;
    char challenge_url[ACME_URL_MAX];
};

/* ---------------------------------------------------------------- URLs */

int acme_url_split(const char *url, char *host, size_t host_size, uint16_t *port, char *path,
                   size_t path_size)
{
    static const char scheme[] = "https://";
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
        return -EINVAL;
    }
    const char *a = url + sizeof(scheme) - 1;
    size_t alen = strcspn(a, "/?#");
    const char *rest = a + alen;
    if (alen == 0 || memchr(a, '@', alen) != NULL || strchr(rest, '#') != NULL) {
        return -EINVAL;
    }
    const char *h = a, *colon = NULL;
    size_t hlen = alen;
    if (a[0] == '[') {
        const char *close = memchr(a, ']', alen);
        if (close == NULL) {
            return -EINVAL;
        }
        h = a + 1;
        hlen = (size_t)(close - h);
        colon = close + 1 < a + alen ? close + 1 : NULL;
        if (colon != NULL && *colon != ':') {
            return -EINVAL;
        }
    } else {
        colon = memchr(a, ':', alen);
        if (colon != NULL) {
            hlen = (size_t)(colon - a);
        }
    }
    *port = 443;
    if (colon != NULL) {
        unsigned long p = 0;
        size_t digits = (size_t)(a + alen - colon - 1);
        for (size_t i = 1; i <= digits; i++) {
            if (colon[i] < '0' || colon[i] > '9' ||
                (p = p * 10 + (unsigned long)(colon[i] - '0')) > 65535) {
                return -EINVAL;
            }
        }
        if (digits == 0 || p == 0) {
            return -EINVAL;
        }
        *port = (uint16_t)p;
    }
    if (hlen == 0 || hlen >= host_size) {
        return -EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    int n = snprintf(path, path_size, "%s", rest[0] == '\0' ? "/" : rest);
    return n > 0 && (size_t)n < path_size && path[0] == '/' ? 0 : -EINVAL;
}

/* ---------------------------------------------------------------- the machine */

static void set_state(struct acme_order *o, enum acme_order_state to, const char *reason)
{
    if (!acme_order_state_is_legal(o->state, to)) {
        fsm_illegal(FSM_MACHINE_ACME, o->conf.log_ctx, acme_order_state_name(o->state),
                    acme_order_state_name(to), reason);
        return;
    }
    log_info(o->conf.log_ctx, "acme %s -> %s (%s)", acme_order_state_name(o->state),
             acme_order_state_name(to), reason);
    o->state = to;
}

/* Stop answering the challenge of the current authorization. */
static void unpublish(struct acme_order *o)
{
    if (o->token[0] != '\0') {
        acme_http01_remove(o->token);
        if (o->conf.on_answer != NULL) {
            o->conf.on_answer(o->conf.answer_data, false, o->token, NULL);
        }
        o->token[0] = '\0';
    }
    if (o->answered[0] != '\0') {
        acme_alpn_remove(o->answered);
        if (o->conf.on_answer != NULL) {
            o->conf.on_answer(o->conf.answer_data, true, o->answered, NULL);
        }
        o->answered[0] = '\0';
    }
}

static void release(struct acme_order *o)
{
    ev_timer_stop(o->loop, &o->timer);
    unpublish(o);
    free(o->pending_payload);
    free(o->body_out);
    EVP_PKEY_free(o->cert_key);
    ev_free_later(o->loop, o);
}

static void finish(struct acme_order *o, int rc, struct tls_cert *cert, const char *why)
{
    set_state(o, ACME_ORDER_DONE, rc == 0 ? "certificate downloaded" : why);
    o->on_done(o->data, rc, cert, why);
    release(o);
}

static void fail(struct acme_order *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct acme_order *o, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    finish(o, -EPROTO, NULL, why);
}

static void on_http(void *data, const struct http_client_response *resp);

/* Send method url (which must be on the directory's authority) with body (a JWS) or none. */
static void send_request(struct acme_order *o, const char *method, const char *url,
                         const char *body, size_t body_len)
{
    char host[256], path[ACME_URL_MAX];
    uint16_t port;
    if (acme_url_split(url, host, sizeof(host), &port, path, sizeof(path)) != 0 ||
        strcmp(host, o->host) != 0 || port != o->port) {
        fail(o, "the server sent a URL keel does not follow (another host, or not https): %s", url);
        return;
    }
    char authority[300];
    (void)snprintf(authority, sizeof(authority), strchr(host, ':') != NULL ? "[%s]:%u" : "%s:%u",
                   host, port);
    uint64_t now = ev_now_ms(o->loop);
    o->xc = (struct http_xprt_conf){.ops = &tls_xprt_ops, .data = o->conf.tls};
    struct http_client_request req = {
        .addr = o->conf.addr,
        .addrlen = o->conf.addrlen,
        .method = method,
        .host = authority,
        .path = path,
        .content_type = body != NULL ? "application/jose+json" : NULL,
        .body = body,
        .body_len = body_len,
        .connect_deadline_ms = now + EXCHANGE_TIMEOUT_MS,
        .deadline_ms = now + EXCHANGE_TIMEOUT_MS,
        .max_body = BODY_MAX,
        .user_agent = "keel-acme",
        .xprt = &o->xc,
        .is_head_kept = true,
    };
    int rc = http_client_start(o->loop, &req, on_http, o, &o->http);
    if (rc != 0) {
        fail(o, "cannot start a request to %s: %s", url, strerror(-rc));
    }
}

/* POST to url (state to) signed with the account (jwk when use_jwk, else kid), payload NULL
 * for POST-as-GET. Without a nonce, fetches one first. */
static void post(struct acme_order *o, enum acme_order_state to, const char *url,
                 const char *payload, bool use_jwk)
{
    if (url != o->pending_url) {
        (void)snprintf(o->pending_url, sizeof(o->pending_url), "%s", url);
    }
    if (payload != o->pending_payload) {
        free(o->pending_payload);
        o->pending_payload = payload != NULL ? strdup(payload) : NULL;
        if (payload != NULL && o->pending_payload == NULL) {
            fail(o, "out of memory");
            return;
        }
    }
    o->pending_state = to;
    o->pending_jwk = use_jwk;
    if (o->nonce[0] == '\0') {
        set_state(o, ACME_ORDER_NONCE, "a request needs a nonce");
        send_request(o, "HEAD", o->dir.new_nonce, NULL, 0);
        return;
    }
    free(o->body_out);
    o->body_out = acme_jws(o->conf.account_key, use_jwk ? NULL : o->kid, o->nonce, o->pending_url,
                           o->pending_payload, &o->body_out_len);
    o->nonce[0] = '\0'; /* used */
    if (o->body_out == NULL) {
        fail(o, "cannot sign a request");
        return;
    }
    if (o->state != to) {
        set_state(o, to, "request");
    }
    send_request(o, "POST", o->pending_url, o->body_out, o->body_out_len);
}

static void resend_pending(struct acme_order *o)
{
    post(o, o->pending_state, o->pending_url, o->pending_payload, o->pending_jwk);
}

/* post() with the object written in w as the payload (w is emptied). */
static void post_json(struct acme_order *o, enum acme_order_state to, const char *url,
                      struct json_w *w, bool use_jwk)
{
    size_t len;
    char *payload = json_w_take(w, &len);
    if (payload == NULL) {
        fail(o, "out of memory");
        return;
    }
    post(o, to, url, payload, use_jwk);
    free(payload);
}

/* ---------------------------------------------------------------- steps */

static void next_authz(struct acme_order *o);

static void start_finalize(struct acme_order *o)
{
    struct errbuf eb;
    EVP_PKEY_free(o->cert_key); /* a finalize sent again gets a new key */
    o->cert_key = acme_key_new();
    char *csr =
        o->cert_key != NULL ? acme_csr(o->cert_key, o->conf.names, o->conf.n_names, &eb) : NULL;
    if (csr == NULL) {
        fail(o, "cannot make the CSR");
        return;
    }
    struct json_w w;
    json_w_init(&w);
    json_w_begin_object(&w);
    json_w_key_str(&w, "csr", csr);
    json_w_end_object(&w);
    free(csr);
    post_json(o, ACME_ORDER_FINALIZE, o->order.finalize, &w, false);
}

static void next_authz(struct acme_order *o)
{
    if (o->authz_i >= o->order.n_authorizations) {
        start_finalize(o);
        return;
    }
    post(o, ACME_ORDER_AUTHZ, o->order.authorizations[o->authz_i], NULL, false);
}

static void on_poll_timer(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    struct acme_order *o = t->data;
    if (ev_now_ms(o->loop) >= o->deadline_ms) {
        fail(o, "the order took longer than %llu ms", (unsigned long long)o->conf.timeout_ms);
        return;
    }
    if (o->is_challenge_due) {
        o->is_challenge_due = false;
        post(o, ACME_ORDER_CHALLENGE, o->challenge_url, "{}", false);
    } else if (o->state == ACME_ORDER_DIRECTORY) {
        send_request(o, "GET", o->conf.directory_url, NULL, 0); /* the first request */
    } else if (o->state == ACME_ORDER_POLL_ORDER) {
        post(o, ACME_ORDER_POLL_ORDER, o->order_url, NULL, false);
    } else {
        post(o, ACME_ORDER_POLL_AUTHZ, o->order.authorizations[o->authz_i], NULL, false);
    }
}

static void poll_later(struct acme_order *o, enum acme_order_state st, const char *why)
{
    if (o->state != st) {
        set_state(o, st, why);
    }
    ev_timer_start(o->loop, &o->timer, o->poll_ms);
}

/* An authorization's answer (authz or poll-authz). */
static void on_authz(struct acme_order *o, const char *body, size_t len)
{
    struct acme_authz_msg a;
    struct errbuf eb;
    if (acme_parse_authz(body, len, &a, &eb) != 0) {
        fail(o, "bad authorization: %s", eb.msg);
        return;
    }
    if (a.status == ACME_STATUS_VALID) {
        unpublish(o);
        log_info(o->conf.log_ctx, "acme: %s validated", a.identifier);
        o->authz_i++;
        next_authz(o);
        return;
    }
    const char *type = o->conf.is_tls_alpn ? "tls-alpn-01" : "http-01";
    const struct acme_challenge_msg *c = NULL;
    for (uint32_t i = 0; i < a.n_challenges; i++) {
        if (strcmp(a.challenges[i].type, type) == 0) {
            c = &a.challenges[i];
        }
    }
    if (a.status != ACME_STATUS_PENDING) {
        fail(o, "authorization of %s is %s%s%s", a.identifier, acme_status_name(a.status),
             c != NULL && c->error[0] != '\0' ? ": " : "", c != NULL ? c->error : "");
        return;
    }
    if (c == NULL || c->token[0] == '\0') {
        fail(o, "the server offers no %s challenge for %s", type, a.identifier);
        return;
    }
    if (o->state == ACME_ORDER_POLL_AUTHZ || c->status == ACME_STATUS_PROCESSING) {
        poll_later(o, ACME_ORDER_POLL_AUTHZ, "validation under way");
        return;
    }
    char *ka = acme_key_authorization(c->token, o->thumbprint);
    int rc = -ENOMEM;
    if (ka != NULL && o->conf.is_tls_alpn) {
        rc = acme_alpn_add(a.identifier, ka);
        if (rc == 0) {
            (void)snprintf(o->answered, sizeof(o->answered), "%s", a.identifier);
        }
    } else if (ka != NULL) {
        rc = acme_http01_add(c->token, ka);
        if (rc == 0) {
            (void)snprintf(o->token, sizeof(o->token), "%s", c->token);
        }
    }
    if (rc == 0 && o->conf.on_answer != NULL) {
        o->conf.on_answer(o->conf.answer_data, o->conf.is_tls_alpn,
                          o->conf.is_tls_alpn ? a.identifier : c->token, ka);
    }
    free(ka);
    if (rc != 0) {
        fail(o, "cannot answer the %s challenge: %s", type, strerror(-rc));
        return;
    }
    log_info(o->conf.log_ctx, "acme: answering %s for %s", type, a.identifier);
    if (o->conf.answer_delay_ms > 0) {
        /* The other LB nodes read the answer before the server may ask one of them. */
        log_info(o->conf.log_ctx, "acme: the challenge in %u ms, once every node has the answer",
                 o->conf.answer_delay_ms);
        (void)snprintf(o->challenge_url, sizeof(o->challenge_url), "%s", c->url);
        o->is_challenge_due = true;
        ev_timer_start(o->loop, &o->timer, o->conf.answer_delay_ms);
        return;
    }
    post(o, ACME_ORDER_CHALLENGE, c->url, "{}", false);
}

/* The order object, from new-order, finalize or poll-order. */
static void on_order(struct acme_order *o, const char *body, size_t len)
{
    struct errbuf eb;
    if (acme_parse_order(body, len, &o->order, &eb) != 0) {
        fail(o, "bad order: %s", eb.msg);
        return;
    }
    switch (o->order.status) {
    case ACME_STATUS_PENDING:
        if (o->state == ACME_ORDER_NEW_ORDER) {
            o->authz_i = 0;
            next_authz(o);
            return;
        }
        break;
    case ACME_STATUS_READY:
        if (o->state == ACME_ORDER_NEW_ORDER) {
            start_finalize(o); /* every authorization valid already (a recent order) */
            return;
        }
        poll_later(o, ACME_ORDER_POLL_ORDER, "order ready, finalize under way");
        return;
    case ACME_STATUS_PROCESSING:
        poll_later(o, ACME_ORDER_POLL_ORDER, "the CA is issuing");
        return;
    case ACME_STATUS_VALID:
        if (o->order.certificate[0] != '\0' && o->cert_key != NULL) {
            post(o, ACME_ORDER_DOWNLOAD, o->order.certificate, NULL, false);
            return;
        }
        break;
    default:
        break;
    }
    fail(o, "order is %s in state %s", acme_status_name(o->order.status),
         acme_order_state_name(o->state));
}

/* The PEM chain: the leaf, then the issuers. */
static void on_download(struct acme_order *o, const char *body, size_t len)
{
    struct tls_cert cert = {.chain = sk_X509_new_null()};
    BIO *b = BIO_new_mem_buf(body, (int)len);
    cert.leaf = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    X509 *x;
    while (cert.leaf != NULL && cert.chain != NULL &&
           (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_push(cert.chain, x) <= 0) {
            X509_free(x);
        }
    }
    BIO_free(b);
    ERR_clear_error();
    if (cert.leaf == NULL || X509_check_private_key(cert.leaf, o->cert_key) != 1) {
        ERR_clear_error();
        tls_cert_fini(&cert);
        fail(o, "the downloaded chain has no certificate for the key keel sent");
        return;
    }
    cert.key = o->cert_key;
    o->cert_key = NULL;
    finish(o, 0, &cert, "");
    /* on_done took what it wanted; the rest goes */
    tls_cert_fini(&cert);
}

/* Delay before the next poll: Retry-After (seconds, section 8.2) within bounds. */
static uint64_t retry_after_ms(const struct http_client_response *r)
{
    char v[32];
    if (r->head == NULL ||
        http_client_header(r->head, r->head_len, "Retry-After", v, sizeof(v)) <= 0) {
        return POLL_DEFAULT_MS;
    }
    char *end;
    unsigned long s = strtoul(v, &end, 10);
    if (*end != '\0') {
        return POLL_DEFAULT_MS; /* an HTTP date: keel polls at its own pace */
    }
    uint64_t ms = (uint64_t)s * 1000u;
    return ms < POLL_MIN_MS ? POLL_MIN_MS : ms > POLL_MAX_MS ? POLL_MAX_MS : ms;
}

/* An error answer: a badNonce is retried with the nonce it came with. */
static void on_error_status(struct acme_order *o, const struct http_client_response *r)
{
    struct acme_problem p;
    acme_parse_problem(r->body, r->body_len, &p);
    if (strcmp(p.type, "urn:ietf:params:acme:error:badNonce") == 0 &&
        o->bad_nonces++ < BAD_NONCE_RETRIES && o->nonce[0] != '\0') {
        log_info(o->conf.log_ctx, "acme: badNonce, resending with a fresh one");
        resend_pending(o);
        return;
    }
    fail(o, "%s: HTTP %d %s%s%s", acme_order_state_name(o->state), r->status,
         p.type[0] != '\0' ? p.type : "", p.detail[0] != '\0' ? ": " : "", p.detail);
}

static void on_http(void *data, const struct http_client_response *r)
{
    struct acme_order *o = data;
    o->http = NULL;
    if (r->err != 0) {
        fail(o, "%s: %s", acme_order_state_name(o->state), r->why);
        return;
    }
    if (r->head != NULL &&
        http_client_header(r->head, r->head_len, "Replay-Nonce", o->nonce, sizeof(o->nonce)) < 0) {
        o->nonce[0] = '\0';
    }
    if (r->status >= 400) {
        on_error_status(o, r);
        return;
    }
    o->poll_ms = retry_after_ms(r);
    struct errbuf eb;
    switch (o->state) {
    case ACME_ORDER_DIRECTORY:
        if (acme_parse_directory(r->body, r->body_len, &o->dir, &eb) != 0) {
            fail(o, "bad directory: %s", eb.msg);
            return;
        }
        {
            struct json_w w;
            json_w_init(&w);
            json_w_begin_object(&w);
            json_w_key_bool(&w, "termsOfServiceAgreed", true);
            if (o->conf.email != NULL && o->conf.email[0] != '\0') {
                char mailto[300];
                (void)snprintf(mailto, sizeof(mailto), "mailto:%s", o->conf.email);
                json_w_key(&w, "contact");
                json_w_begin_array(&w);
                json_w_str(&w, mailto);
                json_w_end_array(&w);
            }
            json_w_end_object(&w);
            post_json(o, ACME_ORDER_ACCOUNT, o->dir.new_account, &w, true);
        }
        return;
    case ACME_ORDER_NONCE:
        if (o->nonce[0] == '\0') {
            fail(o, "newNonce answered without a Replay-Nonce");
            return;
        }
        resend_pending(o);
        return;
    case ACME_ORDER_ACCOUNT:
        if (r->head == NULL ||
            http_client_header(r->head, r->head_len, "Location", o->kid, sizeof(o->kid)) <= 0) {
            fail(o, "newAccount answered without a Location");
            return;
        }
        {
            struct json_w w;
            json_w_init(&w);
            json_w_begin_object(&w);
            json_w_key(&w, "identifiers");
            json_w_begin_array(&w);
            for (uint32_t i = 0; i < o->conf.n_names; i++) {
                unsigned char buf[16];
                bool ip = inet_pton(AF_INET, o->conf.names[i], buf) == 1 ||
                          inet_pton(AF_INET6, o->conf.names[i], buf) == 1;
                json_w_begin_object(&w);
                json_w_key_str(&w, "type", ip ? "ip" : "dns");
                json_w_key_str(&w, "value", o->conf.names[i]);
                json_w_end_object(&w);
            }
            json_w_end_array(&w);
            json_w_end_object(&w);
            post_json(o, ACME_ORDER_NEW_ORDER, o->dir.new_order, &w, false);
        }
        return;
    case ACME_ORDER_NEW_ORDER:
        if (r->head == NULL || http_client_header(r->head, r->head_len, "Location", o->order_url,
                                                  sizeof(o->order_url)) <= 0) {
            fail(o, "newOrder answered without a Location");
            return;
        }
        on_order(o, r->body, r->body_len);
        return;
    case ACME_ORDER_AUTHZ:
    case ACME_ORDER_POLL_AUTHZ:
        on_authz(o, r->body, r->body_len);
        return;
    case ACME_ORDER_CHALLENGE:
        poll_later(o, ACME_ORDER_POLL_AUTHZ, "challenge accepted");
        return;
    case ACME_ORDER_FINALIZE:
    case ACME_ORDER_POLL_ORDER:
        on_order(o, r->body, r->body_len);
        return;
    case ACME_ORDER_DOWNLOAD:
        on_download(o, r->body, r->body_len);
        return;
    case ACME_ORDER_DONE:
    case ACME_ORDER_STATE_COUNT:
        break;
    }
    fail(o, "an answer in state %s", acme_order_state_name(o->state));
}

struct acme_order *acme_order_start(struct ev_loop *loop, const struct acme_order_conf *conf,
                                    acme_order_done_fn on_done, void *data)
{
    struct acme_order *o = calloc(1, sizeof(*o));
    if (o == NULL) {
        return NULL;
    }
    o->loop = loop;
    o->conf = *conf;
    o->on_done = on_done;
    o->data = data;
    o->state = ACME_ORDER_DIRECTORY;
    o->deadline_ms = ev_now_ms(loop) + conf->timeout_ms;
    o->poll_ms = POLL_DEFAULT_MS;
    ev_timer_init(&o->timer, on_poll_timer, o, "acme poll");
    char path[ACME_URL_MAX];
    if (acme_url_split(conf->directory_url, o->host, sizeof(o->host), &o->port, path,
                       sizeof(path)) != 0 ||
        acme_thumbprint(conf->account_key, o->thumbprint) != 0) {
        free(o);
        return NULL;
    }
    log_info(o->conf.log_ctx, "acme: ordering from %s", conf->directory_url);
    /* The first request from the loop, like every later one: on_done never runs inside
     * this call. */
    ev_timer_start(loop, &o->timer, 0);
    return o;
}

void acme_order_cancel(struct acme_order *o)
{
    if (o == NULL) {
        return;
    }
    http_client_cancel(o->http);
    o->http = NULL;
    release(o);
}

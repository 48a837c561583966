/* SPDX-License-Identifier: MIT */
/* ACME's JSON objects (acme_msg.h). */
#include "tls/acme_msg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"

static const char *const status_names[] = {
    [ACME_STATUS_UNKNOWN] = "unknown", [ACME_STATUS_PENDING] = "pending",
    [ACME_STATUS_READY] = "ready",     [ACME_STATUS_PROCESSING] = "processing",
    [ACME_STATUS_VALID] = "valid",     [ACME_STATUS_INVALID] = "invalid",
    [ACME_STATUS_EXPIRED] = "expired", [ACME_STATUS_DEACTIVATED] = "deactivated",
    [ACME_STATUS_REVOKED] = "revoked",
};

const char *acme_status_name(enum acme_status s)
{
    return (unsigned)s < sizeof(status_names) / sizeof(status_names[0]) ? status_names[s] : "?";
}

static enum acme_status status_of(const struct json_value *v)
{
    const char *s = json_str(v);
    for (size_t i = 1; s != NULL && i < sizeof(status_names) / sizeof(status_names[0]); i++) {
        if (strcmp(s, status_names[i]) == 0) {
            return (enum acme_status)i;
        }
    }
    return ACME_STATUS_UNKNOWN;
}

/* Copy the string member key of obj into out[0, size): 0, or -EPROTO naming it. Absent is
 * an error when required, else "". */
static int get_str(const struct json_value *obj, const char *key, char *out, size_t size,
                   bool required, struct errbuf *eb)
{
    const struct json_value *v = json_get(obj, key);
    out[0] = '\0';
    if (v == NULL && !required) {
        return 0;
    }
    const char *s = json_str(v);
    if (s == NULL) {
        errbuf_set(eb, "\"%s\" missing or not a string", key);
        return -EPROTO;
    }
    if (json_str_len(v) >= size) {
        errbuf_set(eb, "\"%s\" too long (%zu bytes, max %zu)", key, json_str_len(v), size - 1);
        return -EPROTO;
    }
    memcpy(out, s, json_str_len(v) + 1);
    return 0;
}

static struct json_doc *parse_object(const char *body, size_t len, struct errbuf *eb)
{
    struct errbuf why;
    struct json_doc *d = json_parse(body, len, &why);
    if (d == NULL) {
        errbuf_set(eb, "not JSON: %s", why.msg);
        return NULL;
    }
    if (json_type(json_root(d)) != JSON_OBJECT) {
        errbuf_set(eb, "not a JSON object");
        json_free(d);
        return NULL;
    }
    return d;
}

int acme_parse_directory(const char *body, size_t len, struct acme_directory *out,
                         struct errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    struct json_doc *d = parse_object(body, len, eb);
    if (d == NULL) {
        return -EPROTO;
    }
    const struct json_value *o = json_root(d);
    int rc = get_str(o, "newNonce", out->new_nonce, sizeof(out->new_nonce), true, eb);
    if (rc == 0) {
        rc = get_str(o, "newAccount", out->new_account, sizeof(out->new_account), true, eb);
    }
    if (rc == 0) {
        rc = get_str(o, "newOrder", out->new_order, sizeof(out->new_order), true, eb);
    }
    json_free(d);
    return rc;
}

int acme_parse_order(const char *body, size_t len, struct acme_order_msg *out, struct errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    struct json_doc *d = parse_object(body, len, eb);
    if (d == NULL) {
        return -EPROTO;
    }
    const struct json_value *o = json_root(d);
    out->status = status_of(json_get(o, "status"));
    int rc = out->status == ACME_STATUS_UNKNOWN ? -EPROTO : 0;
    if (rc != 0) {
        errbuf_set(eb, "order without a known status");
    }
    if (rc == 0) {
        rc = get_str(o, "finalize", out->finalize, sizeof(out->finalize), true, eb);
    }
    if (rc == 0) {
        rc = get_str(o, "certificate", out->certificate, sizeof(out->certificate), false, eb);
    }
    const struct json_value *a = json_get(o, "authorizations");
    if (rc == 0 && (json_type(a) != JSON_ARRAY || json_len(a) > ACME_MAX_AUTHZ)) {
        errbuf_set(eb, "\"authorizations\" missing, not an array or over %d", ACME_MAX_AUTHZ);
        rc = -EPROTO;
    }
    for (size_t i = 0; rc == 0 && i < json_len(a); i++) {
        const struct json_value *u = json_at(a, i);
        if (json_str(u) == NULL || json_str_len(u) >= ACME_URL_MAX) {
            errbuf_set(eb, "authorization %zu is not a URL", i);
            rc = -EPROTO;
            break;
        }
        memcpy(out->authorizations[out->n_authorizations++], json_str(u), json_str_len(u) + 1);
    }
    json_free(d);
    return rc;
}

bool acme_token_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= ACME_TOKEN_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_')) {
            return false;
        }
    }
    return true;
}

static int parse_challenge(const struct json_value *c, struct acme_challenge_msg *out,
                           struct errbuf *eb)
{
    int rc = get_str(c, "type", out->type, sizeof(out->type), true, eb);
    if (rc == 0) {
        rc = get_str(c, "url", out->url, sizeof(out->url), true, eb);
    }
    if (rc == 0) {
        rc = get_str(c, "token", out->token, sizeof(out->token), false, eb);
    }
    if (rc == 0 && out->token[0] != '\0' && !acme_token_is_valid(out->token)) {
        errbuf_set(eb, "challenge token is not base64url");
        rc = -EPROTO;
    }
    out->status = status_of(json_get(c, "status"));
    const char *detail = json_str(json_get(json_get(c, "error"), "detail"));
    if (detail != NULL) {
        (void)snprintf(out->error, sizeof(out->error), "%s", detail);
    }
    return rc;
}

int acme_parse_authz(const char *body, size_t len, struct acme_authz_msg *out, struct errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    struct json_doc *d = parse_object(body, len, eb);
    if (d == NULL) {
        return -EPROTO;
    }
    const struct json_value *o = json_root(d);
    out->status = status_of(json_get(o, "status"));
    const struct json_value *id = json_get(o, "identifier");
    int rc = get_str(id, "value", out->identifier, sizeof(out->identifier), true, eb);
    if (rc == 0) {
        rc = get_str(id, "type", out->identifier_type, sizeof(out->identifier_type), true, eb);
    }
    const struct json_value *cs = json_get(o, "challenges");
    if (rc == 0 && json_type(cs) != JSON_ARRAY) {
        errbuf_set(eb, "\"challenges\" missing or not an array");
        rc = -EPROTO;
    }
    for (size_t i = 0; rc == 0 && i < json_len(cs) && out->n_challenges < ACME_MAX_CHALLENGES;
         i++) {
        struct errbuf why;
        struct acme_challenge_msg *c = &out->challenges[out->n_challenges];
        if (parse_challenge(json_at(cs, i), c, &why) == 0) {
            out->n_challenges++; /* a challenge keel cannot read is one it will not use */
        } else {
            memset(c, 0, sizeof(*c));
        }
    }
    if (rc == 0 && out->status == ACME_STATUS_UNKNOWN) {
        errbuf_set(eb, "authorization without a known status");
        rc = -EPROTO;
    }
    json_free(d);
    return rc;
}

void acme_parse_problem(const char *body, size_t len, struct acme_problem *out)
{
    memset(out, 0, sizeof(*out));
    struct errbuf eb;
    struct json_doc *d = parse_object(body, len, &eb);
    if (d == NULL) {
        return;
    }
    const struct json_value *o = json_root(d);
    if (get_str(o, "type", out->type, sizeof(out->type), true, &eb) != 0) {
        out->type[0] = '\0';
    }
    const struct json_value *dv = json_get(o, "detail");
    if (json_str(dv) != NULL) {
        (void)snprintf(out->detail, sizeof(out->detail), "%s", json_str(dv));
    }
    json_free(d);
}

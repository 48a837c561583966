/* SPDX-License-Identifier: MIT */
/* The http-01 responder's table (acme_http01.h). */
#include "tls/acme_http01.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qsbr.h"
#include "tls/acme_msg.h"

struct answer {
    char token[ACME_TOKEN_MAX];
    char key_auth[ACME_KEYAUTH_MAX];
};

struct table {
    size_t n;
    struct answer a[ACME_HTTP01_MAX];
};

/* The published table; NULL: none. Written by the control thread only. */
static _Atomic(struct table *) current;

static void table_free(void *p)
{
    free(p);
}

/* Publish a copy of the current table changed by fn; the old one goes when no worker can
 * still read it. */
static struct table *copy_current(void)
{
    struct table *t = calloc(1, sizeof(*t));
    const struct table *old = atomic_load_explicit(&current, memory_order_acquire);
    if (t != NULL && old != NULL) {
        memcpy(t, old, sizeof(*t));
    }
    return t;
}

static void publish(struct table *t)
{
    struct table *old = atomic_exchange_explicit(&current, t, memory_order_acq_rel);
    if (old != NULL) {
        qsbr_retire(old, table_free);
    }
}

int acme_http01_add(const char *token, const char *key_authorization)
{
    if (!acme_token_is_valid(token) || strlen(key_authorization) >= ACME_KEYAUTH_MAX) {
        return -EINVAL;
    }
    struct table *t = copy_current();
    if (t == NULL) {
        return -ENOMEM;
    }
    size_t i = 0;
    while (i < t->n && strcmp(t->a[i].token, token) != 0) {
        i++;
    }
    if (i == ACME_HTTP01_MAX) {
        free(t);
        return -ENOSPC;
    }
    (void)snprintf(t->a[i].token, sizeof(t->a[i].token), "%s", token);
    (void)snprintf(t->a[i].key_auth, sizeof(t->a[i].key_auth), "%s", key_authorization);
    if (i == t->n) {
        t->n++;
    }
    publish(t);
    return 0;
}

void acme_http01_remove(const char *token)
{
    const struct table *old = atomic_load_explicit(&current, memory_order_acquire);
    if (old == NULL) {
        return;
    }
    struct table *t = copy_current();
    if (t == NULL) {
        return; /* out of memory: the answer stays until the next change; harmless */
    }
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->a[i].token, token) == 0) {
            t->a[i] = t->a[--t->n];
            break;
        }
    }
    publish(t);
}

bool acme_http01_lookup(const char *target, size_t len, char *out, size_t size)
{
    size_t plen = sizeof(ACME_HTTP01_PREFIX) - 1;
    if (len <= plen || memcmp(target, ACME_HTTP01_PREFIX, plen) != 0) {
        return false;
    }
    const struct table *t = atomic_load_explicit(&current, memory_order_acquire);
    const char *tok = target + plen;
    size_t tlen = len - plen;
    for (size_t i = 0; t != NULL && i < t->n; i++) {
        if (strlen(t->a[i].token) == tlen && memcmp(t->a[i].token, tok, tlen) == 0) {
            int n = snprintf(out, size, "%s", t->a[i].key_auth);
            return n > 0 && (size_t)n < size;
        }
    }
    return false;
}

size_t acme_http01_count(void)
{
    const struct table *t = atomic_load_explicit(&current, memory_order_acquire);
    return t != NULL ? t->n : 0;
}

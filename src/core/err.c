/* SPDX-License-Identifier: MIT */
/* Names and messages for keel's error codes. */
#include "core/err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct err_entry {
    int code;
    const char *name;
    const char *msg;
};

static const struct err_entry keel_errors[] = {
    {KEEL_ECONFIG, "KEEL_ECONFIG", "invalid configuration"},
    {KEEL_EHTTP_BAD_REQUEST, "KEEL_EHTTP_BAD_REQUEST", "malformed HTTP message"},
    {KEEL_EHTTP_URI_TOO_LONG, "KEEL_EHTTP_URI_TOO_LONG", "request line too long"},
    {KEEL_EHTTP_HEAD_TOO_LARGE, "KEEL_EHTTP_HEAD_TOO_LARGE", "header section too large"},
    {KEEL_EHTTP_VERSION, "KEEL_EHTTP_VERSION", "unsupported HTTP version"},
    {KEEL_EHTTP_NOT_IMPLEMENTED, "KEEL_EHTTP_NOT_IMPLEMENTED", "unsupported transfer coding"},
    {KEEL_EHTTP_BAD_RESPONSE, "KEEL_EHTTP_BAD_RESPONSE", "malformed response from server"},
    {KEEL_ENOSERVER, "KEEL_ENOSERVER", "no server available"},
    {KEEL_EQUEUE_FULL, "KEEL_EQUEUE_FULL", "backend queue full"},
    {KEEL_ETIMEDOUT, "KEEL_ETIMEDOUT", "timed out"},
    {KEEL_EETCD, "KEEL_EETCD", "etcd returned an error"},
    {KEEL_ETLS, "KEEL_ETLS", "TLS protocol error"},
    {KEEL_ETLS_PLAIN_HTTP, "KEEL_ETLS_PLAIN_HTTP", "plain HTTP request on a TLS port"},
};

static const struct err_entry *find(int code)
{
    for (size_t i = 0; i < sizeof(keel_errors) / sizeof(keel_errors[0]); i++) {
        if (keel_errors[i].code == -code) {
            return &keel_errors[i];
        }
    }
    return NULL;
}

const char *err_name(int code)
{
    const struct err_entry *e = find(code);
    if (e != NULL) {
        return e->name;
    }
    if (code < 0 && -code < KEEL_EBASE) {
        const char *n = strerrorname_np(-code);
        return n != NULL ? n : "EUNKNOWN";
    }
    return code == 0 ? "OK" : "EUNKNOWN";
}

const char *err_str(int code)
{
    const struct err_entry *e = find(code);
    if (e != NULL) {
        return e->msg;
    }
    if (code < 0 && -code < KEEL_EBASE) {
        return strerror(-code);
    }
    return code == 0 ? "success" : "unknown error";
}

void errbuf_set(struct errbuf *eb, const char *fmt, ...)
{
    if (eb == NULL) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
    va_end(ap);
}

/* SPDX-License-Identifier: MIT */
/* libFuzzer target for what keel reads from an ACME server (src/tls/acme_msg.c): the
 * directory, orders, authorizations with their challenges and problem documents; the
 * response-header lookup ACME uses (http_client_header in src/http/http_client.c: nonces,
 * Location, Retry-After); the URL splitter (acme_url_split); and the ClientHello's SNI
 * extension as the tls-alpn-01 responder reads it (acme_alpn_parse_sni). Every field a parse
 * accepts must be NUL-terminated within its array, every challenge token accepted must be
 * base64url (it goes into a request path), and a header value must be NUL-terminated, within
 * the output and free of CR/LF. Under gcc, replay_main.c drives it. */
#include "http/http_client.h"
#include "tls/acme_alpn.h"
#include "tls/acme_msg.h"
#include "tls/acme_order.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_TARGET "fuzz_acme"
#include "fuzz_util.h"

static bool terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

static void fuzz_messages(const char *text, size_t size)
{
    struct errbuf eb;
    struct acme_directory d;
    if (acme_parse_directory(text, size, &d, &eb) == 0) {
        check(terminated(d.new_nonce, sizeof(d.new_nonce)) &&
                  terminated(d.new_order, sizeof(d.new_order)),
              "directory field not terminated");
    }
    struct acme_order_msg o;
    if (acme_parse_order(text, size, &o, &eb) == 0) {
        check(o.n_authorizations <= ACME_MAX_AUTHZ, "too many authorizations");
        check(o.status != ACME_STATUS_UNKNOWN, "order accepted without a status");
        for (uint32_t i = 0; i < o.n_authorizations; i++) {
            check(terminated(o.authorizations[i], ACME_URL_MAX), "authz URL not terminated");
        }
    }
    struct acme_authz_msg a;
    if (acme_parse_authz(text, size, &a, &eb) == 0) {
        check(a.n_challenges <= ACME_MAX_CHALLENGES, "too many challenges");
        for (uint32_t i = 0; i < a.n_challenges; i++) {
            const struct acme_challenge_msg *c = &a.challenges[i];
            check(terminated(c->token, sizeof(c->token)), "token not terminated");
            check(c->token[0] == '\0' || acme_token_is_valid(c->token),
                  "a token that is not base64url was accepted");
        }
    }
    struct acme_problem p;
    acme_parse_problem(text, size, &p);
    check(terminated(p.type, sizeof(p.type)) && terminated(p.detail, sizeof(p.detail)),
          "problem not terminated");
}

static void fuzz_header(const char *text, size_t size)
{
    static const char *const names[] = {"Replay-Nonce", "Location", "Retry-After"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char out[64];
        int n = http_client_header(text, size, names[i], out, sizeof(out));
        if (n >= 0) {
            check((size_t)n < sizeof(out) && out[n] == '\0', "header value not terminated");
            check(memchr(out, '\r', (size_t)n) == NULL && memchr(out, '\n', (size_t)n) == NULL,
                  "a header value holds CR or LF");
        }
    }
}

static void fuzz_url(const char *text, size_t size)
{
    char url[600], host[256], path[512];
    if (size >= sizeof(url)) {
        return;
    }
    memcpy(url, text, size);
    url[size] = '\0';
    uint16_t port;
    if (acme_url_split(url, host, sizeof(host), &port, path, sizeof(path)) == 0) {
        check(port != 0 && path[0] == '/' && host[0] != '\0', "a split URL without its parts");
        check(strchr(host, '/') == NULL, "a host with a slash");
    }
}

static void fuzz_sni(const uint8_t *data, size_t size)
{
    char name[64];
    if (acme_alpn_parse_sni(data, size, name, sizeof(name))) {
        size_t n = strlen(name);
        check(n > 0 && n + 5 <= size, "a name longer than its extension");
        for (size_t i = 0; i < n; i++) {
            check(name[i] < 'A' || name[i] > 'Z', "a name not in lower case");
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact copy, so that a read past size is caught under ASan. */
    char *copy = malloc(size + 1);
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data, size);
    copy[size] = '\0';
    poison(copy + size, 1);
    fuzz_messages(copy, size);
    fuzz_header(copy, size);
    unpoison(copy + size, 1);
    fuzz_url(copy, size);
    fuzz_sni(data, size);
    free(copy);
    return 0;
}

/* SPDX-License-Identifier: MIT */
/* Unit tests for src/tls/tls_conf.c (and `bind ... tls`, lb/lb_conf.c): the TLS directives,
 * their defaults, and every error `keel check` reports about them with its file:line:col:
 * a tls bind without a certificate, a certificate without a tls bind, a tls bind in a tcp
 * frontend, unreadable files, a key that does not match, expired and not yet valid
 * certificates, old protocol versions, cipher lists OpenSSL refuses. Certificates are made in
 * the test (tls_certs.h); loads read them (no CONF_LOAD_NO_RESOLVE, no host names). */
#include <criterion/criterion.h>

#include "tls/tls_conf.c"

#include "core/conf.h"
#include "tls_certs.h"

#define HOUR 3600L
#define DAY (24 * HOUR)

static char dir[64];

static void setup(void)
{
    tc_tmpdir(dir);
    struct tc_cert ec = tc_make(TC_EC, "a.test", "DNS:a.test", -HOUR, DAY, NULL);
    struct tc_cert other = tc_make(TC_EC, "b.test", "DNS:b.test", -HOUR, DAY, NULL);
    struct tc_cert old = tc_make(TC_EC, "a.test", "DNS:a.test", -2 * DAY, -DAY, NULL);
    struct tc_cert early = tc_make(TC_EC, "a.test", "DNS:a.test", DAY, 2 * DAY, NULL);
    tc_write(dir, "ec", &ec, NULL);
    tc_write(dir, "other", &other, NULL);
    tc_write(dir, "old", &old, NULL);
    tc_write(dir, "early", &early, NULL);
    tc_free(&ec);
    tc_free(&other);
    tc_free(&old);
    tc_free(&early);
}

static void teardown(void)
{
    tc_rmdir(dir);
}

TestSuite(tls_conf, .init = setup, .fini = teardown);

/* The text with every "@" replaced by the temporary directory. */
static char *with_dir(const char *text)
{
    static char out[4096];
    size_t k = 0;
    for (const char *p = text; *p != '\0' && k + 64 < sizeof(out); p++) {
        if (*p == '@') {
            k += (size_t)snprintf(out + k, sizeof(out) - k, "%s", dir);
        } else {
            out[k++] = *p;
        }
    }
    out[k] = '\0';
    return out;
}

static struct conf *load(const char *text, unsigned flags, struct conf_errors *errs)
{
    struct conf *conf = NULL;
    const char *t = with_dir(text);
    int rc = conf_load_mem("t.conf", t, strlen(t), flags, &conf, errs);
    cr_assert_eq(rc == 0, conf != NULL);
    return conf;
}

static struct conf *load_ok(const char *text)
{
    struct conf_errors errs;
    struct conf *conf = load(text, 0, &errs);
    cr_assert_not_null(conf, "unexpected errors:\n%s", errs.text != NULL ? errs.text : "");
    conf_errors_fini(&errs);
    return conf;
}

/* The errors of text, "@" standing for the directory in text and in want. */
static void expect_errors(const char *text, const char *want)
{
    struct conf_errors errs;
    struct conf *conf = load(text, 0, &errs);
    cr_assert_null(conf);
    cr_assert_not_null(errs.text);
    char expected[4096];
    snprintf(expected, sizeof(expected), "%s", with_dir(want));
    cr_assert_str_eq(errs.text, expected, "got:\n%s\nwant:\n%s", errs.text, expected);
    conf_errors_fini(&errs);
}

#define BACKEND "backend web { server a 127.0.0.1:9001; }\n"

Test(tls_conf, a_tls_bind_with_certificates_and_the_defaults)
{
    struct conf *conf = load_ok("frontend www {\n"
                                "    bind 127.0.0.1:8443 tls;\n"
                                "    bind 127.0.0.1:8080;\n"
                                "    certificate @/ec.pem @/ec.key;\n"
                                "    certificate @/other.pem @/other.key;\n"
                                "    backend web;\n"
                                "}\n" BACKEND);
    const struct conf_frontend *fe = &conf->frontends[0];
    cr_assert(fe->binds[0].is_tls);
    cr_assert_not(fe->binds[1].is_tls);
    cr_assert(fe->tls.has_bind);
    cr_assert_eq(fe->tls.bind_pos.line, 2);
    cr_assert_eq(fe->tls.n_certs, 2);
    cr_assert_str_eq(fe->tls.certs[1].key_file, with_dir("@/other.key"));
    cr_assert_eq(fe->tls.versions, 0); /* both */
    cr_assert_str_eq(fe->tls.ciphers, KEEL_TLS_DEFAULT_CIPHERS);
    cr_assert_str_eq(fe->tls.ciphersuites, KEEL_TLS_DEFAULT_SUITES);
    cr_assert_str_eq(fe->tls.groups, KEEL_TLS_DEFAULT_GROUPS);
    cr_assert_eq(fe->timeout_handshake_ms, 10000);
    conf_free(conf);
}

Test(tls_conf, settings_are_parsed)
{
    struct conf *conf = load_ok("site s {\n"
                                "    bind 127.0.0.1:8443 tls;\n"
                                "    certificate @/ec.pem @/ec.key;\n"
                                "    tls_protocols TLSv1.3;\n"
                                "    tls_ciphers ECDHE-ECDSA-AES128-GCM-SHA256;\n"
                                "    tls_ciphersuites TLS_AES_128_GCM_SHA256;\n"
                                "    tls_groups X25519;\n"
                                "    timeout_handshake 2s;\n"
                                "    backend web;\n"
                                "}\n" BACKEND);
    const struct conf_frontend *fe = &conf->frontends[0];
    cr_assert_eq(fe->tls.versions, CONF_TLS_V13);
    cr_assert_str_eq(fe->tls.ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
    cr_assert_str_eq(fe->tls.groups, "X25519");
    cr_assert_eq(fe->timeout_handshake_ms, 2000);
    conf_free(conf);
}

Test(tls_conf, bind_tls_needs_a_certificate_and_an_http_frontend)
{
    expect_errors("frontend www {\n"
                  "    bind 127.0.0.1:8443 tls;\n"
                  "    backend web;\n"
                  "}\n" BACKEND,
                  "t.conf:2:25: error: \"bind ... tls\" in \"www\" without a certificate (add: "
                  "certificate CERT_FILE KEY_FILE, or acme internal)\n");
    expect_errors("frontend www {\n"
                  "    bind 127.0.0.1:8443 tls;\n"
                  "    mode tcp;\n"
                  "    certificate @/ec.pem @/ec.key;\n"
                  "    backend db;\n"
                  "}\n"
                  "backend db { mode tcp; server a 127.0.0.1:5432; }\n",
                  "t.conf:2:25: error: \"bind ... tls\" in frontend \"www\", which is tcp: TLS is "
                  "for http frontends and sites\n");
    expect_errors("frontend www {\n"
                  "    bind 127.0.0.1:8443 ssl;\n"
                  "    backend web;\n"
                  "}\n" BACKEND,
                  "t.conf:2:25: error: unknown bind option \"ssl\" (expected \"tls\")\n");
}

Test(tls_conf, a_certificate_without_a_tls_bind_is_an_error)
{
    expect_errors("frontend www {\n"
                  "    bind 127.0.0.1:8080;\n"
                  "    certificate @/ec.pem @/ec.key;\n"
                  "    backend web;\n"
                  "}\n" BACKEND,
                  "t.conf:3:17: error: certificate in \"www\", which has no \"bind ... tls\"\n");
}

Test(tls_conf, certificate_problems_are_reported_at_the_file)
{
    /* the column of the certificate file, or of the key file when the key is the problem
     * (the directory is 20 bytes long: "/tmp/keel-tls-XXXXXX") */
    expect_errors("frontend www {\n"
                  "    bind 127.0.0.1:8443 tls;\n"
                  "    certificate @/none.pem @/ec.key;\n"
                  "    certificate @/ec.pem @/other.key;\n"
                  "    backend web;\n"
                  "}\n" BACKEND,
                  "t.conf:3:17: error: cannot read certificate file @/none.pem: No such file or "
                  "directory\n"
                  "t.conf:4:45: error: the private key in @/other.key does not match the "
                  "certificate in @/ec.pem\n");
}

Test(tls_conf, expired_and_not_yet_valid_are_errors)
{
    struct conf_errors errs;
    struct conf *conf = load("frontend www {\n"
                             "    bind 127.0.0.1:8443 tls;\n"
                             "    certificate @/old.pem @/old.key;\n"
                             "    certificate @/early.pem @/early.key;\n"
                             "    backend web;\n"
                             "}\n" BACKEND,
                             0, &errs);
    cr_assert_null(conf);
    cr_assert(strstr(errs.text, "t.conf:3:17: error: certificate in ") != NULL, "%s", errs.text);
    cr_assert(strstr(errs.text, "/old.pem expired on ") != NULL, "%s", errs.text);
    cr_assert(strstr(errs.text, "t.conf:4:17: error: certificate in ") != NULL, "%s", errs.text);
    cr_assert(strstr(errs.text, "/early.pem is not valid before ") != NULL, "%s", errs.text);
    conf_errors_fini(&errs);
}

Test(tls_conf, files_are_not_read_under_no_resolve)
{
    struct conf_errors errs;
    struct conf *conf = load("frontend www {\n"
                             "    bind 127.0.0.1:8443 tls;\n"
                             "    certificate @/none.pem @/none.key;\n"
                             "    backend web;\n"
                             "}\n" BACKEND,
                             CONF_LOAD_NO_RESOLVE, &errs);
    cr_assert_not_null(conf, "%s", errs.text != NULL ? errs.text : "");
    conf_free(conf);
    conf_errors_fini(&errs);
}

Test(tls_conf, protocols_and_openssl_strings_are_checked_where_written)
{
    expect_errors("frontend www {\n"
                  "    bind 127.0.0.1:8080;\n"
                  "    tls_protocols TLSv1.1 TLSv1.2;\n"
                  "    backend web;\n"
                  "}\n" BACKEND,
                  "t.conf:3:19: error: TLSv1.1 is not supported: keel speaks TLSv1.2 and TLSv1.3 "
                  "only\n");
    expect_errors("frontend www {\n"
                  "    bind 127.0.0.1:8080;\n"
                  "    tls_protocols TLSv1.3 TLSv1.3;\n"
                  "    backend web;\n"
                  "}\n" BACKEND,
                  "t.conf:3:27: error: \"TLSv1.3\" listed twice\n");
    expect_errors("frontend www {\n"
                  "    bind 127.0.0.1:8080;\n"
                  "    tls_protocols tls13;\n"
                  "    backend web;\n"
                  "}\n" BACKEND,
                  "t.conf:3:19: error: invalid value \"tls13\" for \"tls_protocols\": expected "
                  "TLSv1.2 and/or TLSv1.3\n");
    struct conf_errors errs;
    struct conf *conf = load("frontend www {\n"
                             "    bind 127.0.0.1:8080;\n"
                             "    tls_ciphers NOPE-CIPHER;\n"
                             "    tls_ciphersuites TLS_NOPE;\n"
                             "    tls_groups nocurve;\n"
                             "    backend web;\n"
                             "}\n" BACKEND,
                             0, &errs);
    cr_assert_null(conf);
    cr_assert(strstr(errs.text, "t.conf:3:17: error: invalid value \"NOPE-CIPHER\" for "
                                "\"tls_ciphers\": ") != NULL,
              "%s", errs.text);
    cr_assert(strstr(errs.text, "t.conf:4:22: error: invalid value \"TLS_NOPE\" for "
                                "\"tls_ciphersuites\": ") != NULL,
              "%s", errs.text);
    cr_assert(strstr(errs.text, "t.conf:5:16: error: invalid value \"nocurve\" for "
                                "\"tls_groups\": ") != NULL,
              "%s", errs.text);
    conf_errors_fini(&errs);
}

Test(tls_conf, tickets_redirect_and_hsts_defaults_and_values)
{
    struct conf *conf = load_ok("cluster c { secret_file @/secret; }\n"
                                "frontend www {\n"
                                "    bind 127.0.0.1:8080;\n"
                                "    bind 127.0.0.1:8443 tls;\n"
                                "    certificate @/ec.pem @/ec.key;\n"
                                "    backend web;\n"
                                "}\n"
                                "site s {\n"
                                "    bind 127.0.0.1:8081;\n"
                                "    bind 127.0.0.1:443 tls;\n"
                                "    certificate @/ec.pem @/ec.key;\n"
                                "    tls_tickets off;\n"
                                "    tls_ticket_period 90s;\n"
                                "    redirect_https on;\n"
                                "    hsts 31536000 include_subdomains preload;\n"
                                "    backend web;\n"
                                "}\n" BACKEND);
    const struct conf_frontend *fe = &conf->frontends[0];
    cr_assert_not(fe->tls.tickets_off);
    cr_assert_eq(fe->tls.ticket_period_ms, 3600000);
    cr_assert_str_eq(fe->tls.secret_file, with_dir("@/secret"));
    cr_assert_not(fe->tls.redirect_https);
    cr_assert_str_eq(fe->tls.hsts, "");
    cr_assert_eq(fe->tls.https_port, 8443);
    fe = &conf->frontends[1];
    cr_assert(fe->tls.tickets_off);
    cr_assert_eq(fe->tls.ticket_period_ms, 90000);
    cr_assert(fe->tls.redirect_https);
    cr_assert_eq(fe->tls.https_port, 443);
    cr_assert_str_eq(fe->tls.hsts,
                     "Strict-Transport-Security: max-age=31536000; includeSubDomains; preload\r\n");
    conf_free(conf);
    conf = load_ok("frontend www { bind 127.0.0.1:8443 tls; certificate @/ec.pem @/ec.key; "
                   "hsts 0; backend web; }\n" BACKEND);
    cr_assert_str_eq(conf->frontends[0].tls.hsts, "Strict-Transport-Security: max-age=0\r\n");
    conf_free(conf);
}

Test(tls_conf, redirect_and_hsts_errors)
{
    expect_errors("frontend www { bind 127.0.0.1:8080; redirect_https on; backend web; }\n" BACKEND,
                  "t.conf:1:37: error: redirect_https in \"www\", which has no \"bind ... tls\" "
                  "to redirect to\n");
    expect_errors("frontend www { bind 127.0.0.1:8080; hsts 300; backend web; }\n" BACKEND,
                  "t.conf:1:37: error: hsts in \"www\", which has no \"bind ... tls\": browsers "
                  "ignore it over plain HTTP (RFC 6797 section 8.1)\n");
    expect_errors("frontend www { bind 127.0.0.1:8443 tls; certificate @/ec.pem @/ec.key;\n"
                  "hsts 1y; backend web; }\n" BACKEND,
                  "t.conf:2:6: error: invalid max-age \"1y\" for \"hsts\": expected seconds, 0 "
                  "to 1000000000 (31536000 is a year)\n");
    expect_errors("frontend www { bind 127.0.0.1:8443 tls; certificate @/ec.pem @/ec.key;\n"
                  "hsts 300 preload include_subdomains; backend web; }\n" BACKEND,
                  "t.conf:2:6: error: \"hsts ... preload\" needs include_subdomains and a "
                  "max-age of at least 31536000 (a year): the browsers' preload list refuses "
                  "less\n");
    expect_errors("frontend www { bind 127.0.0.1:8443 tls; certificate @/ec.pem @/ec.key;\n"
                  "hsts 300 subdomains; backend web; }\n" BACKEND,
                  "t.conf:2:10: error: unknown hsts option \"subdomains\" (expected "
                  "include_subdomains or preload)\n");
    expect_errors("frontend www { bind 127.0.0.1:8443 tls; certificate @/ec.pem @/ec.key;\n"
                  "tls_tickets maybe; tls_ticket_period 500ms; backend web; }\n" BACKEND,
                  "t.conf:2:13: error: invalid value \"maybe\" for \"tls_tickets\": expected on "
                  "or off\n"
                  "t.conf:2:38: error: invalid value \"500ms\" for \"tls_ticket_period\": must be "
                  "between 1s and 168h\n");
}

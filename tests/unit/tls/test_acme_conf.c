/* SPDX-License-Identifier: MIT */
/* Unit tests for src/tls/acme_conf.c: what `acme` and its directives accept and the errors
 * keel check reports (names, the URL, the challenge, what the issuer needs), and the paths
 * and address validation fills in. */
#include <criterion/criterion.h>

#include "tls/acme_conf.c"

#include <arpa/inet.h>

#define BACKEND "backend web { server a 127.0.0.1:9000; }\n"

static struct conf *load(const char *text, struct conf_errors *errs)
{
    struct conf *conf = NULL;
    int rc = conf_load_mem("t.conf", text, strlen(text), CONF_LOAD_NO_RESOLVE, &conf, errs);
    if (rc != 0) {
        return NULL;
    }
    return conf;
}

static void expect_error(const char *text, const char *want)
{
    struct conf_errors errs;
    struct conf *conf = load(text, &errs);
    cr_assert_null(conf, "loaded: %s", text);
    cr_assert(errs.text != NULL && strstr(errs.text, want) != NULL, "want \"%s\" in:\n%s", want,
              errs.text != NULL ? errs.text : "");
    conf_errors_fini(&errs);
}

Test(acme_conf, internal_and_directory_issuers_fill_the_conf)
{
    struct conf_errors errs;
    struct conf *conf =
        load("cluster t { state_dir /var/lib/keel; }\n"
             "frontend www { bind 127.0.0.1:443 tls; acme internal; acme_names A.example "
             "10.0.0.1; acme_lifetime 1h; backend web; }\n"
             "frontend api { bind 127.0.0.1:8443 tls; acme https://127.0.0.1:14000/dir; "
             "acme_email ops@example.com; acme_ca_file /etc/ca.pem; acme_challenge tls-alpn-01; "
             "acme_names api.example; backend web; }\n" BACKEND,
             &errs);
    cr_assert_not_null(conf, "%s", errs.text != NULL ? errs.text : "");
    const struct conf_acme *a = &conf->frontends[0].tls.acme;
    cr_assert_eq(a->issuer, CONF_ACME_INTERNAL);
    cr_assert_eq(a->n_names, 2);
    cr_assert_str_eq(a->names[0], "a.example");
    cr_assert_str_eq(a->names[1], "10.0.0.1");
    cr_assert_eq(a->lifetime_ms, 3600000);
    cr_assert_str_eq(a->dir, "/var/lib/keel/tls/www");
    cr_assert_str_eq(a->ca_dir, "/var/lib/keel/tls/ca");
    const struct conf_acme *b = &conf->frontends[1].tls.acme;
    cr_assert_eq(b->issuer, CONF_ACME_DIRECTORY);
    cr_assert_str_eq(b->directory, "https://127.0.0.1:14000/dir");
    cr_assert_str_eq(b->email, "ops@example.com");
    cr_assert_str_eq(b->ca_file, "/etc/ca.pem");
    cr_assert(b->is_tls_alpn);
    cr_assert_eq(b->directory_salen, sizeof(struct sockaddr_in));
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&b->directory_sa;
    cr_assert_eq(ntohs(sin->sin_port), 14000);
    cr_assert_eq(conf->frontends[0].tls.acme.is_tls_alpn, false);
    conf_free(conf);
}

Test(acme_conf, errors_name_what_is_wrong)
{
    expect_error("frontend www { bind 127.0.0.1:443 tls; acme internal; backend web; }\n" BACKEND,
                 "\"acme\" in \"www\" without \"acme_names\"");
    expect_error("frontend www { bind 127.0.0.1:443 tls; acme internal; acme_names a; "
                 "backend web; }\n" BACKEND,
                 "keeps its certificates in the cluster's state_dir");
    expect_error("cluster t { state_dir /s; }\n"
                 "frontend www { bind 127.0.0.1:80; acme internal; acme_names a; "
                 "backend web; }\n" BACKEND,
                 "\"acme\" in \"www\", which has no \"bind ... tls\"");
    expect_error("cluster t { state_dir /s; }\n"
                 "frontend www { bind 127.0.0.1:443 tls; acme http://ca/dir; acme_names a; "
                 "backend web; }\n" BACKEND,
                 "invalid ACME directory \"http://ca/dir\"");
    expect_error("cluster t { state_dir /s; }\n"
                 "frontend www { bind 127.0.0.1:443 tls; acme other; acme_names a; "
                 "backend web; }\n" BACKEND,
                 "\"other\"");
    expect_error("cluster t { state_dir /s; }\n"
                 "frontend www { bind 127.0.0.1:443 tls; acme internal; acme_names *.a.example; "
                 "backend web; }\n" BACKEND,
                 "invalid name \"*.a.example\" for \"acme_names\"");
    expect_error("cluster t { state_dir /s; }\n"
                 "frontend www { bind 127.0.0.1:443 tls; acme internal; acme_names a A; "
                 "backend web; }\n" BACKEND,
                 "\"A\" listed twice");
    expect_error("cluster t { state_dir /s; }\n"
                 "frontend www { bind 127.0.0.1:443 tls; acme internal; acme_names a; "
                 "acme_challenge dns-01; backend web; }\n" BACKEND,
                 "expected http-01 or tls-alpn-01");
    expect_error("cluster t { state_dir /s; }\n"
                 "frontend www { bind 127.0.0.1:443 tls; acme internal; acme_names a; "
                 "acme_email x@y; backend web; }\n" BACKEND,
                 "acme_email and acme_ca_file are for \"acme DIRECTORY_URL\"");
    expect_error("cluster t { state_dir /s; }\n"
                 "frontend www { bind 127.0.0.1:443 tls; acme internal; acme_names a; "
                 "acme_lifetime 1s; backend web; }\n" BACKEND,
                 "must be between 3s and");
}

Test(acme_conf, names_are_dns_names_or_ip_addresses)
{
    cr_assert(is_cert_name("a.example"));
    cr_assert(is_cert_name("xn--bcher-kva.example"));
    cr_assert(is_cert_name("localhost"));
    cr_assert(is_cert_name("10.0.0.1"));
    cr_assert(is_cert_name("::1"));
    cr_assert_not(is_cert_name(""));
    cr_assert_not(is_cert_name("a..example"));
    cr_assert_not(is_cert_name(".a"));
    cr_assert_not(is_cert_name("a-.example"));
    cr_assert_not(is_cert_name("-a.example"));
    cr_assert_not(is_cert_name("a_b.example"));
    cr_assert_not(is_cert_name("a.example."));
    char long_label[80];
    memset(long_label, 'a', 64);
    long_label[64] = '\0';
    cr_assert_not(is_cert_name(long_label));
}

Test(acme_conf, the_cluster_dcs_shares_the_certificates)
{
    struct conf_errors errs;
    struct conf *conf =
        load("cluster t { state_dir /var/lib/keel; secret_file /nonexistent/cluster.key;\n"
             "  dcs etcd http://127.0.0.1:2379 http://[::1]:2379; acme_lease 3s; }\n"
             "frontend www { bind 127.0.0.1:443 tls; acme internal; acme_names a.example; "
             "backend web; }\n" BACKEND,
             &errs);
    cr_assert_not_null(conf, "%s", errs.text != NULL ? errs.text : "");
    cr_assert_eq(conf->n_dcs, 2);
    cr_assert_str_eq(conf->dcs[1], "http://[::1]:2379");
    cr_assert_eq(conf->acme_lease_ms, 3000);
    cr_assert(conf->frontends[0].tls.acme.is_shared);
    conf_free(conf);
    /* without a dcs: each node on its own, the default lease */
    conf = load("cluster t { state_dir /var/lib/keel; }\n"
                "frontend www { bind 127.0.0.1:443 tls; acme internal; acme_names a.example; "
                "backend web; }\n" BACKEND,
                &errs);
    cr_assert_not_null(conf);
    cr_assert_not(conf->frontends[0].tls.acme.is_shared);
    cr_assert_eq(conf->acme_lease_ms, 10000);
    conf_free(conf);
}

Test(acme_conf, the_cluster_dcs_needs_the_secret_and_etcd_urls)
{
    expect_error("cluster t { state_dir /var/lib/keel; dcs etcd http://127.0.0.1:2379; }\n"
                 "frontend www { bind 127.0.0.1:443 tls; acme internal; acme_names a.example; "
                 "backend web; }\n" BACKEND,
                 "t.conf:2:40: error: \"acme\" in \"www\" with the cluster's dcs keeps its keys "
                 "in etcd sealed with the cluster secret, which is not set");
    expect_error("cluster t { state_dir /k; secret_file /k/s; dcs consul http://127.0.0.1:1; }\n",
                 "only etcd is supported");
    expect_error("cluster t { state_dir /k; secret_file /k/s; dcs etcd https://127.0.0.1:1; }\n",
                 "invalid etcd endpoint \"https://127.0.0.1:1\"");
    expect_error("cluster t { state_dir /k; acme_lease 1s; }\n", "acme_lease");
    expect_error("node n { address 127.0.0.1; roles lb; dcs etcd http://127.0.0.1:1; }\n",
                 "not allowed");
}

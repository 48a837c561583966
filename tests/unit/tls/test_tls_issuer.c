/* SPDX-License-Identifier: MIT */
/* Unit tests for src/tls/tls_issuer.c: the internal CA created once (key 0600) and loaded
 * again, a damaged CA refused rather than replaced, and leaves that OpenSSL verifies against
 * the CA for their DNS names and IP addresses, with the lifetime, key type and extensions a
 * server certificate needs. */
#include <criterion/criterion.h>

#include "tls/tls_issuer.c"

#include <sys/stat.h>

#include "tls/tls_ctx.h"
#include "tls_certs.h"

static char dir[64];
static char ca_dir[128];

static void setup(void)
{
    tc_tmpdir(dir);
    snprintf(ca_dir, sizeof(ca_dir), "%s/tls/ca", dir);
}

static void teardown(void)
{
    tc_rmdir(dir);
}

TestSuite(tls_issuer, .init = setup, .fini = teardown);

static const char names[][254] = {"a.keel.test", "b.keel.test", "127.0.0.1", "::1"};

Test(tls_issuer, the_ca_is_created_once_then_loaded)
{
    struct tls_ca ca, again;
    bool created;
    struct errbuf eb;
    time_t now = time(NULL);
    cr_assert_eq(tls_ca_open(ca_dir, now, &ca, &created, &eb), 0, "%s", eb.msg);
    cr_assert(created);
    cr_assert_eq(tls_ca_open(ca_dir, now, &again, &created, &eb), 0, "%s", eb.msg);
    cr_assert_not(created);
    cr_assert_eq(X509_cmp(ca.cert.leaf, again.cert.leaf), 0);
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", ca_dir, TLS_CA_KEY);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(X509_check_ca(ca.cert.leaf), 1);
    cr_assert_eq(EVP_PKEY_get_base_id(ca.cert.key), EVP_PKEY_EC);
    tls_ca_fini(&ca);
    tls_ca_fini(&again);
}

Test(tls_issuer, a_damaged_ca_is_refused_not_replaced)
{
    struct tls_ca ca;
    bool created;
    struct errbuf eb;
    cr_assert_eq(tls_ca_open(ca_dir, time(NULL), &ca, &created, &eb), 0, "%s", eb.msg);
    tls_ca_fini(&ca);
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", ca_dir, TLS_CA_KEY);
    cr_assert_eq(cert_store_write(path, "x", 1, 0600, &eb), 0);
    cr_assert_eq(tls_ca_open(ca_dir, time(NULL), &ca, &created, &eb), -KEEL_ECONFIG);
    cr_assert(strstr(eb.msg, "cannot be used") != NULL, "%s", eb.msg);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_size, 1, "the damaged key was replaced");
}

/* Verify leaf against ca for host (or IP when ip is true) with OpenSSL's verifier. */
static int verify(const struct tls_ca *ca, X509 *leaf, const char *name, bool ip)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    cr_assert_eq(X509_STORE_add_cert(st, ca->cert.leaf), 1);
    cr_assert_eq(X509_STORE_CTX_init(ctx, st, leaf, NULL), 1);
    X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_purpose(p, X509_PURPOSE_SSL_SERVER);
    if (ip) {
        cr_assert_eq(X509_VERIFY_PARAM_set1_ip_asc(p, name), 1);
    } else {
        cr_assert_eq(X509_VERIFY_PARAM_set1_host(p, name, 0), 1);
    }
    int ok = X509_verify_cert(ctx);
    int err = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    return ok == 1 ? 0 : err;
}

Test(tls_issuer, leaves_verify_for_their_names_only)
{
    struct tls_ca ca;
    bool created;
    struct errbuf eb;
    time_t now = time(NULL);
    cr_assert_eq(tls_ca_open(ca_dir, now, &ca, &created, &eb), 0, "%s", eb.msg);
    struct tls_cert leaf, other;
    cr_assert_eq(tls_ca_issue(&ca, names, 4, 600, now, &leaf, &eb), 0, "%s", eb.msg);
    cr_assert_eq(verify(&ca, leaf.leaf, "a.keel.test", false), 0);
    cr_assert_eq(verify(&ca, leaf.leaf, "B.keel.test", false), 0);
    cr_assert_eq(verify(&ca, leaf.leaf, "127.0.0.1", true), 0);
    cr_assert_eq(verify(&ca, leaf.leaf, "::1", true), 0);
    cr_assert_eq(verify(&ca, leaf.leaf, "c.keel.test", false), X509_V_ERR_HOSTNAME_MISMATCH);
    cr_assert_eq(verify(&ca, leaf.leaf, "127.0.0.2", true), X509_V_ERR_IP_ADDRESS_MISMATCH);
    cr_assert_eq(X509_check_private_key(leaf.leaf, leaf.key), 1);
    cr_assert_eq(EVP_PKEY_get_base_id(leaf.key), EVP_PKEY_EC);
    cr_assert_eq(X509_check_ca(leaf.leaf), 0);
    time_t nb, na;
    cr_assert_eq(tls_cert_times(leaf.leaf, &nb, &na), 0);
    cr_assert_eq(nb, now, "a short lifetime starts now");
    cr_assert_eq(na, now + 600);
    /* A second leaf: another key and another serial. */
    cr_assert_eq(tls_ca_issue(&ca, names, 1, 7200, now, &other, &eb), 0, "%s", eb.msg);
    cr_assert_neq(
        ASN1_INTEGER_cmp(X509_get0_serialNumber(leaf.leaf), X509_get0_serialNumber(other.leaf)), 0);
    cr_assert_neq(EVP_PKEY_eq(leaf.key, other.key), 1);
    cr_assert_eq(tls_cert_times(other.leaf, &nb, &na), 0);
    cr_assert_eq(nb, now - SKEW_S, "an hour or more starts early for clock skew");
    /* Another CA does not vouch for it. */
    struct tls_ca stranger;
    char other_dir[160];
    snprintf(other_dir, sizeof(other_dir), "%s/other", dir);
    cr_assert_eq(tls_ca_open(other_dir, now, &stranger, &created, &eb), 0, "%s", eb.msg);
    cr_assert_neq(verify(&stranger, leaf.leaf, "a.keel.test", false), 0);
    tls_ca_fini(&stranger);
    tls_cert_fini(&leaf);
    tls_cert_fini(&other);
    tls_ca_fini(&ca);
}

Test(tls_issuer, no_names_is_an_error)
{
    struct tls_ca ca;
    bool created;
    struct errbuf eb;
    cr_assert_eq(tls_ca_open(ca_dir, time(NULL), &ca, &created, &eb), 0, "%s", eb.msg);
    struct tls_cert leaf;
    cr_assert_eq(tls_ca_issue(&ca, names, 0, 600, time(NULL), &leaf, &eb), -EINVAL);
    tls_ca_fini(&ca);
}

Test(tls_issuer, a_placeholder_is_self_signed_for_its_names)
{
    struct tls_cert p;
    struct errbuf eb;
    time_t now = time(NULL);
    cr_assert_eq(tls_selfsigned_issue(names, 2, 3600, now, &p, &eb), 0, "%s", eb.msg);
    cr_assert(tls_cert_is_self_signed(p.leaf));
    cr_assert_eq(X509_verify(p.leaf, p.key), 1, "signed by its own key");
    cr_assert_eq(X509_check_host(p.leaf, "b.keel.test", 0, 0, NULL), 1);
    cr_assert_eq(X509_check_private_key(p.leaf, p.key), 1);
    struct tls_ca ca;
    bool created;
    cr_assert_eq(tls_ca_open(ca_dir, now, &ca, &created, &eb), 0, "%s", eb.msg);
    struct tls_cert leaf;
    cr_assert_eq(tls_ca_issue(&ca, names, 1, 600, now, &leaf, &eb), 0, "%s", eb.msg);
    cr_assert_not(tls_cert_is_self_signed(leaf.leaf));
    tls_cert_fini(&leaf);
    tls_ca_fini(&ca);
    tls_cert_fini(&p);
}

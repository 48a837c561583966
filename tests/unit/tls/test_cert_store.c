/* SPDX-License-Identifier: MIT */
/* Unit tests for src/tls/cert_store.c: atomic writes (mode, replacement, no temporary file
 * left), a stored pair read back, and the pairs that cannot serve (missing, a key that does
 * not match, expired, not yet valid, not PEM). Certificates from tls_certs.h. */
#include <criterion/criterion.h>

#include "tls/cert_store.c"

#include <dirent.h>
#include <sys/stat.h>

#include "tls/tls_ctx.h"
#include "tls_certs.h"

#define HOUR 3600L

static char dir[64];

static void setup(void)
{
    tc_tmpdir(dir);
}

static void teardown(void)
{
    tc_rmdir(dir);
}

TestSuite(cert_store, .init = setup, .fini = teardown);

static unsigned count_entries(const char *path)
{
    DIR *d = opendir(path);
    cr_assert_not_null(d);
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

Test(cert_store, write_replaces_atomically_with_the_mode_asked)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/f", dir);
    struct errbuf eb;
    mode_t old = umask(0);
    cr_assert_eq(cert_store_write(path, "one", 3, 0644, &eb), 0, "%s", eb.msg);
    umask(old);
    cr_assert_eq(cert_store_write(path, "second", 6, 0600, &eb), 0, "%s", eb.msg);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(st.st_size, 6);
    cr_assert_eq(count_entries(dir), 1, "a temporary file was left");
}

Test(cert_store, mkdirs_makes_every_missing_parent)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/a/b/c", dir);
    struct errbuf eb;
    cr_assert_eq(cert_store_mkdirs(path, &eb), 0, "%s", eb.msg);
    cr_assert_eq(cert_store_mkdirs(path, &eb), 0, "existing: %s", eb.msg);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0700);
}

/* Store c's certificate and key as a struct tls_cert in dir/sub. */
static void store(const char *sub, const struct tc_cert *c, EVP_PKEY *key)
{
    struct tls_cert tc = {.leaf = c->x, .chain = NULL, .key = key != NULL ? key : c->key};
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    struct errbuf eb;
    cr_assert_eq(tls_cert_store(path, &tc, &eb), 0, "%s", eb.msg);
}

static int read_back(const char *sub, struct tls_cert *out, struct errbuf *eb)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    return tls_cert_read(path, time(NULL), out, eb);
}

Test(cert_store, a_stored_pair_reads_back_with_the_key_private)
{
    struct tc_cert c = tc_make(TC_EC, "a.test", "DNS:a.test", -HOUR, HOUR, NULL);
    store("www", &c, NULL);
    struct tls_cert got;
    struct errbuf eb;
    cr_assert_eq(read_back("www", &got, &eb), 0, "%s", eb.msg);
    cr_assert_eq(X509_cmp(got.leaf, c.x), 0);
    cr_assert_eq(sk_X509_num(got.chain), 0);
    char path[256];
    snprintf(path, sizeof(path), "%s/www/%s", dir, CERT_STORE_KEY);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    char serial[80], want[80];
    tls_cert_serial(got.leaf, serial, sizeof(serial));
    tls_cert_serial(c.x, want, sizeof(want));
    cr_assert_str_eq(serial, want);
    cr_assert_neq(serial[0], '\0');
    tls_cert_fini(&got);
    tc_free(&c);
}

Test(cert_store, pairs_that_cannot_serve_are_refused)
{
    struct tls_cert got;
    struct errbuf eb;
    cr_assert_eq(read_back("none", &got, &eb), -ENOENT);

    struct tc_cert a = tc_make(TC_EC, "a.test", "DNS:a.test", -HOUR, HOUR, NULL);
    struct tc_cert b = tc_make(TC_EC, "b.test", "DNS:b.test", -HOUR, HOUR, NULL);
    store("mismatch", &a, b.key);
    cr_assert_eq(read_back("mismatch", &got, &eb), -KEEL_ECONFIG);
    cr_assert(strstr(eb.msg, "does not match") != NULL, "%s", eb.msg);

    struct tc_cert old = tc_make(TC_EC, "a.test", "DNS:a.test", -2 * HOUR, -HOUR, NULL);
    store("expired", &old, NULL);
    cr_assert_eq(read_back("expired", &got, &eb), -KEEL_ECONFIG);
    cr_assert(strstr(eb.msg, "expired") != NULL, "%s", eb.msg);

    struct tc_cert future = tc_make(TC_EC, "a.test", "DNS:a.test", HOUR, 2 * HOUR, NULL);
    store("future", &future, NULL);
    cr_assert_eq(read_back("future", &got, &eb), -KEEL_ECONFIG);
    cr_assert(strstr(eb.msg, "not valid yet") != NULL, "%s", eb.msg);

    char path[256];
    snprintf(path, sizeof(path), "%s/future/%s", dir, CERT_STORE_CERT);
    cr_assert_eq(cert_store_write(path, "garbage\n", 8, 0644, &eb), 0);
    cr_assert_eq(read_back("future", &got, &eb), -KEEL_ECONFIG);
    cr_assert(strstr(eb.msg, "no PEM certificate") != NULL, "%s", eb.msg);
    tc_free(&a);
    tc_free(&b);
    tc_free(&old);
    tc_free(&future);
}

/* SPDX-License-Identifier: MIT */
/* Managed certificates on disk (cert_store.h): atomic writes and checked reads. */
#include "tls/cert_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

void tls_cert_fini(struct tls_cert *c)
{
    if (c == NULL) {
        return;
    }
    X509_free(c->leaf);
    sk_X509_pop_free(c->chain, X509_free);
    EVP_PKEY_free(c->key);
    memset(c, 0, sizeof(*c));
}

int cert_store_mkdirs(const char *dir, struct errbuf *eb)
{
    char path[4096];
    int len = snprintf(path, sizeof(path), "%s", dir);
    if (len <= 0 || (size_t)len >= sizeof(path)) {
        errbuf_set(eb, "directory name too long: %s", dir);
        return -ENAMETOOLONG;
    }
    for (char *p = path + 1;; p++) {
        bool end = *p == '\0';
        if (*p != '/' && !end) {
            continue;
        }
        *p = '\0';
        if (mkdir(path, 0700) == -1 && errno != EEXIST) {
            int e = errno;
            errbuf_set(eb, "mkdir(%s) failed: %s", path, strerror(e));
            return -e;
        }
        if (end) {
            return 0;
        }
        *p = '/';
    }
}

/* fsync the directory holding path, so that a rename in it survives a crash. */
static int sync_parent(const char *path)
{
    char dir[4096];
    (void)snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        (void)snprintf(dir, sizeof(dir), ".");
    } else if (slash == dir) {
        slash[1] = '\0';
    } else {
        *slash = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1) {
        return -errno;
    }
    int rc = fsync(fd) == -1 ? -errno : 0;
    (void)close(fd); /* read-only: nothing to lose */
    return rc;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int cert_store_write(const char *path, const void *data, size_t len, mode_t mode, struct errbuf *eb)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
        errbuf_set(eb, "file name too long: %s", path);
        return -ENAMETOOLONG;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd == -1) {
        int e = errno;
        errbuf_set(eb, "cannot create %s: %s", tmp, strerror(e));
        return -e;
    }
    /* The umask may have taken bits away; a key must not have more than asked. */
    int rc = fchmod(fd, mode) == -1 ? -errno : 0;
    if (rc == 0) {
        rc = write_all(fd, data, len);
    }
    if (rc == 0 && fsync(fd) == -1) {
        rc = -errno;
    }
    if (close(fd) == -1 && rc == 0) {
        rc = -errno;
    }
    if (rc == 0 && rename(tmp, path) == -1) {
        rc = -errno;
    }
    if (rc != 0) {
        errbuf_set(eb, "cannot write %s: %s", path, strerror(-rc));
        (void)unlink(tmp); /* best effort: the old file is what counts */
        return rc;
    }
    rc = sync_parent(path);
    if (rc != 0) {
        errbuf_set(eb, "cannot sync the directory of %s: %s", path, strerror(-rc));
    }
    return rc;
}

/* PEM of what bio collected, written to dir/name. */
static int store_bio(const char *dir, const char *name, BIO *b, mode_t mode, struct errbuf *eb)
{
    char path[4096];
    (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
    char *data = NULL;
    long len = BIO_get_mem_data(b, &data);
    if (len <= 0) {
        errbuf_set(eb, "cannot encode %s", path);
        return -ENOMEM;
    }
    return cert_store_write(path, data, (size_t)len, mode, eb);
}

int tls_cert_store(const char *dir, const struct tls_cert *c, struct errbuf *eb)
{
    int rc = cert_store_mkdirs(dir, eb);
    if (rc != 0) {
        return rc;
    }
    BIO *kb = BIO_new(BIO_s_mem());
    BIO *cb = BIO_new(BIO_s_mem());
    bool ok = kb != NULL && cb != NULL &&
              PEM_write_bio_PrivateKey(kb, c->key, NULL, NULL, 0, NULL, NULL) == 1 &&
              PEM_write_bio_X509(cb, c->leaf) == 1;
    for (int i = 0; ok && c->chain != NULL && i < sk_X509_num(c->chain); i++) {
        ok = PEM_write_bio_X509(cb, sk_X509_value(c->chain, i)) == 1;
    }
    ERR_clear_error();
    rc = ok ? store_bio(dir, CERT_STORE_KEY, kb, 0600, eb) : -ENOMEM;
    if (!ok) {
        errbuf_set(eb, "out of memory encoding a certificate");
    }
    if (rc == 0) {
        rc = store_bio(dir, CERT_STORE_CERT, cb, 0644, eb);
    }
    BIO_free(kb);
    BIO_free(cb);
    return rc;
}

int tls_cert_times(const X509 *x, time_t *not_before, time_t *not_after)
{
    struct tm tb, ta;
    if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tb) != 1 ||
        ASN1_TIME_to_tm(X509_get0_notAfter(x), &ta) != 1) {
        ERR_clear_error();
        return -EINVAL;
    }
    *not_before = timegm(&tb);
    *not_after = timegm(&ta);
    return 0;
}

void tls_cert_serial(const X509 *x, char *out, size_t size)
{
    out[0] = '\0';
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    if (hex != NULL) {
        (void)snprintf(out, size, "%s", hex);
    }
    OPENSSL_free(hex);
    BN_free(bn);
    ERR_clear_error();
}

static int read_pem_certs(const char *path, struct tls_cert *c, struct errbuf *eb)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        int e = errno;
        errbuf_set(eb, "cannot read %s: %s", path, strerror(e));
        return e == ENOENT ? -ENOENT : -KEEL_ECONFIG;
    }
    c->leaf = PEM_read_X509(f, NULL, NULL, NULL);
    c->chain = sk_X509_new_null();
    X509 *x;
    while (c->leaf != NULL && c->chain != NULL &&
           (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_push(c->chain, x) <= 0) {
            X509_free(x);
            break;
        }
    }
    (void)fclose(f); /* read-only */
    ERR_clear_error();
    if (c->leaf == NULL || c->chain == NULL) {
        errbuf_set(eb, "no PEM certificate in %s", path);
        return -KEEL_ECONFIG;
    }
    return 0;
}

static int read_pem_key(const char *path, struct tls_cert *c, struct errbuf *eb)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        int e = errno;
        errbuf_set(eb, "cannot read %s: %s", path, strerror(e));
        return e == ENOENT ? -ENOENT : -KEEL_ECONFIG;
    }
    c->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    (void)fclose(f);
    ERR_clear_error();
    if (c->key == NULL) {
        errbuf_set(eb, "no PEM private key in %s", path);
        return -KEEL_ECONFIG;
    }
    return 0;
}

static int check_valid_at(X509 *x, time_t now, const char *path, struct errbuf *eb)
{
    time_t nb, na;
    if (tls_cert_times(x, &nb, &na) != 0) {
        errbuf_set(eb, "a certificate in %s has unreadable validity times", path);
        return -KEEL_ECONFIG;
    }
    if (na <= now) {
        errbuf_set(eb, "a certificate in %s has expired", path);
        return -KEEL_ECONFIG;
    }
    if (nb > now) {
        errbuf_set(eb, "a certificate in %s is not valid yet", path);
        return -KEEL_ECONFIG;
    }
    return 0;
}

int tls_cert_read(const char *dir, time_t now, struct tls_cert *c, struct errbuf *eb)
{
    char cpath[4096], kpath[4096];
    (void)snprintf(cpath, sizeof(cpath), "%s/%s", dir, CERT_STORE_CERT);
    (void)snprintf(kpath, sizeof(kpath), "%s/%s", dir, CERT_STORE_KEY);
    memset(c, 0, sizeof(*c));
    int rc = read_pem_certs(cpath, c, eb);
    if (rc == 0) {
        rc = read_pem_key(kpath, c, eb);
    }
    if (rc == 0 && X509_check_private_key(c->leaf, c->key) != 1) {
        ERR_clear_error();
        errbuf_set(eb, "the key in %s does not match the certificate in %s", kpath, cpath);
        rc = -KEEL_ECONFIG;
    }
    if (rc == 0) {
        rc = check_valid_at(c->leaf, now, cpath, eb);
    }
    for (int i = 0; rc == 0 && i < sk_X509_num(c->chain); i++) {
        rc = check_valid_at(sk_X509_value(c->chain, i), now, cpath, eb);
    }
    if (rc != 0) {
        tls_cert_fini(c);
    }
    return rc;
}

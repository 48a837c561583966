/* SPDX-License-Identifier: MIT */
/* Fuzz target for the TLS accept path: the input is a client's first flight. It goes to
 * the server side twice: through OpenSSL over a memory BIO (SSL_do_handshake with keel's
 * contexts and callbacks: SNI selection, ALPN), and through the transport itself
 * (tls_transport.c, over a socketpair: the first-byte check, the plain HTTP answer, the
 * handshake, reads) until it fails or the input runs out. The contexts hold an ECDSA and an
 * RSA certificate and a wildcard, made at start-up. Besides crashes and leaks, it checks
 * that the plain HTTP check is the first-byte rule and that OpenSSL's error queue is left
 * empty. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/conf-t.h"
#include "http/http_transport.h"
#include "tls/tls_ctx.h"
#include "tls/tls_transport.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tls_ctx *server;

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_tls: %s\n", what);
        abort();
    }
}

/* A self-signed certificate for names (a subjectAltName value), written to dir/name.pem
 * and dir/name.key. */
static void make_cert(const char *dir, const char *name, EVP_PKEY *key, const char *san)
{
    X509 *x = X509_new();
    check(x != NULL && key != NULL, "out of memory making a certificate");
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    check(e != NULL && X509_add_ext(x, e, -1) == 1, "cannot add the names");
    X509_EXTENSION_free(e);
    check(X509_sign(x, key, EVP_sha256()) > 0, "cannot sign");
    char path[256];
    snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
    FILE *f = fopen(path, "w");
    check(f != NULL && PEM_write_X509(f, x) == 1, "cannot write a certificate");
    fclose(f);
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    f = fopen(path, "w");
    check(f != NULL && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1,
          "cannot write a key");
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char dir[] = "/tmp/keel-fuzz-tls-XXXXXX";
    check(mkdtemp(dir) != NULL, "mkdtemp failed");
    make_cert(dir, "ec", EVP_EC_gen("P-256"), "DNS:a.test,DNS:www.a.test");
    make_cert(dir, "rsa", EVP_RSA_gen(2048), "DNS:a.test");
    make_cert(dir, "wild", EVP_EC_gen("P-256"), "DNS:*.w.test");
    static struct conf_cert certs[3];
    static const char *const names[] = {"ec", "rsa", "wild"};
    for (int i = 0; i < 3; i++) {
        snprintf(certs[i].cert_file, sizeof(certs[i].cert_file), "%s/%s.pem", dir, names[i]);
        snprintf(certs[i].key_file, sizeof(certs[i].key_file), "%s/%s.key", dir, names[i]);
    }
    static struct conf_frontend fe;
    snprintf(fe.name, sizeof(fe.name), "fuzz");
    fe.tls.certs = certs;
    fe.tls.n_certs = 3;
    fe.tls.has_bind = true;
    snprintf(fe.tls.ciphers, sizeof(fe.tls.ciphers), "%s", KEEL_TLS_DEFAULT_CIPHERS);
    snprintf(fe.tls.ciphersuites, sizeof(fe.tls.ciphersuites), "%s", KEEL_TLS_DEFAULT_SUITES);
    snprintf(fe.tls.groups, sizeof(fe.tls.groups), "%s", KEEL_TLS_DEFAULT_GROUPS);
    struct errbuf eb;
    server = tls_ctx_new(&fe, &eb);
    if (server == NULL) {
        fprintf(stderr, "fuzz_tls: %s\n", eb.msg);
        abort();
    }
    for (int i = 0; i < 3; i++) {
        unlink(certs[i].cert_file);
        unlink(certs[i].key_file);
    }
    rmdir(dir);
    return 0;
}

/* OpenSSL's server over a memory BIO holding the input, then EOF. */
static void through_memory_bio(const uint8_t *data, size_t size)
{
    SSL *s = SSL_new(tls_ctx_default(server));
    BIO *rb = BIO_new_mem_buf(data, (int)size);
    BIO *wb = BIO_new(BIO_s_mem());
    check(s != NULL && rb != NULL && wb != NULL, "out of memory");
    BIO_set_mem_eof_return(rb, 0); /* the end of the input is the client's EOF */
    SSL_set_bio(s, rb, wb);
    SSL_set_accept_state(s);
    char buf[256];
    for (int i = 0; i < 8; i++) {
        size_t n;
        int r =
            SSL_is_init_finished(s) ? SSL_read_ex(s, buf, sizeof(buf), &n) : SSL_do_handshake(s);
        if (r <= 0 && SSL_get_error(s, r) != SSL_ERROR_WANT_READ) {
            break;
        }
    }
    ERR_clear_error();
    SSL_free(s);
}

/* keel's transport over a socketpair: the input, then the client's EOF. */
static void through_transport(const uint8_t *data, size_t size)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1) {
        return;
    }
    int big = 1 << 20;
    (void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(sv[1], data + off, size - off);
        if (n <= 0) {
            break; /* the rest does not fit: the transport sees what did */
        }
        off += (size_t)n;
    }
    shutdown(sv[1], SHUT_WR);
    struct http_xprt x;
    struct http_xprt_conf conf = {.ops = &tls_xprt_ops, .data = server};
    check(http_xprt_open(&x, &conf, sv[0], HTTP_XPRT_ACCEPTED) == 0, "open failed");
    int rc = -EAGAIN;
    for (int i = 0; i < 16 && rc == -EAGAIN; i++) {
        rc = http_xprt_handshake(&x);
    }
    if (rc == 0) {
        char buf[512];
        for (int i = 0; i < 16 && http_xprt_read(&x, buf, sizeof(buf)) > 0; i++) {
        }
        (void)http_xprt_write(&x, "HTTP/1.1 204 No Content\r\n\r\n", 27, 0);
        (void)http_xprt_shutdown(&x);
    }
    struct http_xprt_info info;
    http_xprt_get_info(&x, &info);
    check(rc != 0 || info.version != NULL, "a finished handshake names its version");
    check(ERR_peek_error() == 0, "the transport left an OpenSSL error queued");
    http_xprt_close(&x);
    close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0) {
        check(tls_sniff_is_plain_http(data, size) == (data[0] >= 'A' && data[0] <= 'Z'),
              "the plain HTTP check is the first byte's");
    }
    through_memory_bio(data, size);
    through_transport(data, size);
    return 0;
}

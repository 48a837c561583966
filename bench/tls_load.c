/* SPDX-License-Identifier: MIT */
/* The handshake load client of `make bench` (bench/bench.py compiles it into its temp dir):
 * CLIENTS threads, each in a loop for SECONDS: connect, TLS handshake, one HTTP/1.1 request
 * with "Connection: close", read the answer until the server closes, close. MODE "new" makes
 * every handshake a full one; "resume" offers the session (TLS 1.3 ticket or TLS 1.2 session)
 * the thread got from its previous connection, and counts how many the server resumed. The
 * same client runs against every server, so the client's own cost is the same for all.
 *
 * Usage: tls_load HOST PORT SNI PATH SECONDS CLIENTS new|resume
 * Prints one line: "conns N errors E reused R offered O secs S p50_ms X p99_ms Y version V
 * cipher C group G key K bits B" (offered: connections that offered a session). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

struct load_args {
    struct sockaddr_in addr;
    const char *sni;
    char request[512];
    size_t request_len;
    double seconds;
    bool resume;
    SSL_CTX *ctx;
};

struct load_thread {
    pthread_t tid;
    const struct load_args *a;
    long conns, errors, reused, offered;
    unsigned *lat_us; /* one per connection that succeeded */
    size_t n_lat, cap_lat;
    char info[256]; /* what the first connection negotiated */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void describe(SSL *ssl, char *out, size_t len)
{
    const char *group = SSL_group_to_name(ssl, SSL_get_negotiated_group(ssl));
    X509 *peer = SSL_get1_peer_certificate(ssl);
    EVP_PKEY *key = peer != NULL ? X509_get0_pubkey(peer) : NULL;
    const char *kind = "?";
    int bits = 0;
    if (key != NULL) {
        kind = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? "RSA" : "EC";
        bits = EVP_PKEY_get_bits(key);
    }
    snprintf(out, len, "version %s cipher %s group %s key %s bits %d", SSL_get_version(ssl),
             SSL_get_cipher_name(ssl), group != NULL ? group : "?", kind, bits);
    X509_free(peer);
}

/* One connection: 0 and its latency in *us, or -1. */
static int one_conn(struct load_thread *t, SSL_SESSION **sess, unsigned *us)
{
    const struct load_args *a = t->a;
    double t0 = now_s();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)&a->addr, sizeof(a->addr)) == -1) {
        close(fd);
        return -1;
    }
    SSL *ssl = SSL_new(a->ctx);
    if (ssl == NULL) {
        close(fd);
        return -1;
    }
    SSL_set_fd(ssl, fd);
    SSL_set_app_data(ssl, sess); /* on_new_session keeps the newest session there */
    SSL_set_tlsext_host_name(ssl, a->sni);
    if (a->resume && *sess != NULL) {
        SSL_set_session(ssl, *sess);
        t->offered++;
    }
    int rc = -1;
    char buf[16384];
    size_t got = 0;
    char head[16] = "";
    if (SSL_connect(ssl) != 1 || SSL_write(ssl, a->request, (int)a->request_len) <= 0) {
        goto out;
    }
    for (;;) {
        int n = SSL_read(ssl, buf, sizeof(buf));
        if (n <= 0) {
            /* the server's close (close_notify, or a bare EOF: IGNORE_UNEXPECTED_EOF) */
            rc = SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
            break;
        }
        if (got < sizeof(head) - 1) {
            size_t k = sizeof(head) - 1 - got < (size_t)n ? sizeof(head) - 1 - got : (size_t)n;
            memcpy(head + got, buf, k);
            head[got + k] = '\0';
        }
        got += (size_t)n;
    }
    if (rc == 0 && strncmp(head, "HTTP/1.1 200", 12) != 0 &&
        strncmp(head, "HTTP/1.0 200", 12) != 0) {
        rc = -1;
    }
    if (rc == 0) {
        if (SSL_session_reused(ssl)) {
            t->reused++;
        }
        if (t->info[0] == '\0') {
            describe(ssl, t->info, sizeof(t->info));
        }
        *us = (unsigned)((now_s() - t0) * 1e6);
    }
out:
    if (rc == 0) {
        /* a clean end: without it, SSL_free marks the session not resumable */
        SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    }
    SSL_free(ssl);
    close(fd);
    ERR_clear_error();
    return rc;
}

/* The session cache's callback: every session the server hands out (a TLS 1.2 session, each
 * TLS 1.3 ticket) replaces the thread's; taking ownership of it (returns 1). */
static int on_new_session(SSL *ssl, SSL_SESSION *s)
{
    SSL_SESSION **slot = SSL_get_app_data(ssl);
    if (!SSL_SESSION_is_resumable(s)) {
        return 0;
    }
    SSL_SESSION_free(*slot);
    *slot = s;
    return 1;
}

static void *run(void *arg)
{
    struct load_thread *t = arg;
    SSL_SESSION *sess = NULL;
    double end = now_s() + t->a->seconds;
    while (now_s() < end) {
        unsigned us = 0;
        if (one_conn(t, &sess, &us) != 0) {
            t->errors++;
            continue;
        }
        t->conns++;
        if (t->n_lat == t->cap_lat) {
            size_t cap = t->cap_lat ? 2 * t->cap_lat : 4096;
            unsigned *p = realloc(t->lat_us, cap * sizeof(*p));
            if (p == NULL) {
                continue;
            }
            t->lat_us = p;
            t->cap_lat = cap;
        }
        t->lat_us[t->n_lat++] = us;
    }
    SSL_SESSION_free(sess);
    return NULL;
}

static int cmp_uint(const void *x, const void *y)
{
    unsigned a = *(const unsigned *)x, b = *(const unsigned *)y;
    return a < b ? -1 : a > b;
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: tls_load HOST PORT SNI PATH SECONDS CLIENTS new|resume\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a write to a server that closed is an error, not a death */
    static struct load_args a;
    a.addr.sin_family = AF_INET;
    a.addr.sin_port = htons((unsigned short)strtoul(argv[2], NULL, 10));
    if (inet_pton(AF_INET, argv[1], &a.addr.sin_addr) != 1) {
        fprintf(stderr, "tls_load: bad address %s\n", argv[1]);
        return 2;
    }
    a.sni = argv[3];
    int n = snprintf(a.request, sizeof(a.request),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", argv[4], a.sni);
    if (n < 0 || (size_t)n >= sizeof(a.request)) {
        return 2;
    }
    a.request_len = (size_t)n;
    a.seconds = strtod(argv[5], NULL);
    long clients = strtol(argv[6], NULL, 10);
    a.resume = strcmp(argv[7], "resume") == 0;
    if (clients < 1 || clients > 1024 || (!a.resume && strcmp(argv[7], "new") != 0)) {
        fprintf(stderr, "tls_load: bad CLIENTS or MODE\n");
        return 2;
    }
    /* the client's defaults: TLS 1.2 and 1.3 offered, OpenSSL's default suites and groups
     * (X25519 first); no certificate check (the same self-signed certificate everywhere:
     * the chain is not what is measured), sessions kept
     * by hand, one per thread, from the cache's callback */
    a.ctx = SSL_CTX_new(TLS_client_method());
    if (a.ctx == NULL) {
        return 1;
    }
    SSL_CTX_set_min_proto_version(a.ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(a.ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(a.ctx, a.resume ? SSL_SESS_CACHE_CLIENT |
                                                         SSL_SESS_CACHE_NO_INTERNAL_STORE
                                                   : SSL_SESS_CACHE_OFF);
    SSL_CTX_sess_set_new_cb(a.ctx, on_new_session);
    SSL_CTX_set_options(a.ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    struct load_thread *ts = calloc((size_t)clients, sizeof(*ts));
    if (ts == NULL) {
        return 1;
    }
    double t_start = now_s();
    for (long i = 0; i < clients; i++) {
        ts[i].a = &a;
        if (pthread_create(&ts[i].tid, NULL, run, &ts[i]) != 0) {
            fprintf(stderr, "tls_load: pthread_create failed\n");
            return 1;
        }
    }
    long conns = 0, errors = 0, reused = 0, offered = 0;
    size_t n_lat = 0;
    for (long i = 0; i < clients; i++) {
        pthread_join(ts[i].tid, NULL);
        conns += ts[i].conns;
        errors += ts[i].errors;
        reused += ts[i].reused;
        offered += ts[i].offered;
        n_lat += ts[i].n_lat;
    }
    double secs = now_s() - t_start;
    unsigned *all = malloc((n_lat ? n_lat : 1) * sizeof(*all));
    if (all == NULL) {
        return 1;
    }
    size_t k = 0;
    const char *info = "version ? cipher ? group ? key ? bits 0";
    for (long i = 0; i < clients; i++) {
        memcpy(all + k, ts[i].lat_us, ts[i].n_lat * sizeof(*all));
        k += ts[i].n_lat;
        if (ts[i].info[0] != '\0') {
            info = ts[i].info;
        }
    }
    qsort(all, n_lat, sizeof(*all), cmp_uint);
    double p50 = n_lat ? all[n_lat / 2] / 1000.0 : 0.0 / 0.0;
    double p99 = n_lat ? all[(size_t)((double)(n_lat - 1) * 0.99)] / 1000.0 : 0.0 / 0.0;
    printf("conns %ld errors %ld reused %ld offered %ld secs %.3f p50_ms %.3f p99_ms %.3f %s\n",
           conns, errors, reused, offered, secs, p50, p99, info);
    return 0;
}

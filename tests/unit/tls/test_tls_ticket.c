/* SPDX-License-Identifier: MIT */
/* Unit tests for src/tls/tls_ticket.c: the key derivation (same secret, label and window:
 * same key; any of them different: another key), and real OpenSSL handshakes over memory
 * BIOs between a client and the contexts of tls_ctx.c: a session made by one frontend's
 * contexts resumes on other contexts built from the same secret (another worker, another
 * node, a reload), in TLS 1.2 and 1.3; not with another secret; not once tickets are off;
 * and across a window change within the grace, not after. */
#include <criterion/criterion.h>

#include "tls/tls_ticket.c"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tls/tls_ctx.h"
#include "tls_certs.h"

#define HOUR 3600L
#define DAY (24 * HOUR)

static char dir[64];
static struct conf_cert cert;
static uint64_t fake_now;

static uint64_t fake_clock(void)
{
    return fake_now;
}

static void setup(void)
{
    tc_tmpdir(dir);
    struct tc_cert ec = tc_make(TC_EC, "a.test", "DNS:a.test", -HOUR, DAY, NULL);
    tc_write(dir, "ec", &ec, NULL);
    tc_free(&ec);
    cert = tc_conf_cert(dir, "ec");
    now_ms = clock_realtime_ms;
}

static void teardown(void)
{
    tc_rmdir(dir);
}

TestSuite(tls_ticket, .init = setup, .fini = teardown, .timeout = 60);

static void write_secret(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_neq(fd, -1);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* A frontend "www" with one certificate and the secret file name in dir ("" for none). */
static struct tls_ctx *make_ctx(const char *secret, bool tickets_off)
{
    struct conf_frontend fe;
    tc_frontend(&fe, &cert, 1);
    if (secret[0] != '\0') {
        snprintf(fe.tls.secret_file, sizeof(fe.tls.secret_file), "%s/%s", dir, secret);
    }
    fe.tls.tickets_off = tickets_off;
    fe.tls.ticket_period_ms = 10000;
    struct errbuf eb;
    struct tls_ctx *t = tls_ctx_new(&fe, &eb);
    cr_assert_not_null(t, "%s", eb.msg);
    return t;
}

/* One handshake of a client (version, offering sess if not NULL) with server context t,
 * over a BIO pair; the client then reads the TLS 1.3 tickets. Returns whether the session
 * was resumed; *out (if not NULL) gets the client's session afterwards. */
static bool handshake(struct tls_ctx *t, int version, SSL_SESSION *sess, SSL_SESSION **out)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    cr_assert_not_null(cctx);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
    cr_assert_eq(SSL_CTX_set_min_proto_version(cctx, version), 1);
    cr_assert_eq(SSL_CTX_set_max_proto_version(cctx, version), 1);
    SSL *c = SSL_new(cctx);
    SSL *s = SSL_new(tls_ctx_default(t));
    cr_assert(c != NULL && s != NULL);
    BIO *bc, *bs;
    cr_assert_eq(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
    SSL_set_bio(c, bc, bc);
    SSL_set_bio(s, bs, bs);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    cr_assert_eq(SSL_set_tlsext_host_name(c, "a.test"), 1);
    if (sess != NULL) {
        cr_assert_eq(SSL_set_session(c, sess), 1);
    }
    int rc = 0, rs = 0;
    for (int i = 0; i < 50 && (rc != 1 || rs != 1); i++) {
        if (rc != 1) {
            rc = SSL_do_handshake(c);
        }
        if (rs != 1) {
            rs = SSL_do_handshake(s);
        }
    }
    cr_assert(rc == 1 && rs == 1, "handshake failed");
    char byte;
    cr_assert_eq(SSL_write(s, "x", 1), 1); /* after the tickets */
    cr_assert_eq(SSL_read(c, &byte, 1), 1);
    bool reused = SSL_session_reused(c) == 1;
    cr_assert_eq(reused, SSL_session_reused(s) == 1);
    if (out != NULL) {
        *out = SSL_get1_session(c);
        cr_assert_not_null(*out);
    }
    /* A client freed without close_notify marks its session not resumable. */
    (void)SSL_shutdown(c);
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    return reused;
}

Test(tls_ticket, same_secret_label_and_window_give_the_same_key_else_another)
{
    uint8_t prk_a[TLS_TICKET_PRK_LEN], prk_a2[TLS_TICKET_PRK_LEN], prk_b[TLS_TICKET_PRK_LEN];
    cr_assert_eq(tls_ticket_prk((const uint8_t *)"secret-a", 8, prk_a), 0);
    cr_assert_eq(tls_ticket_prk((const uint8_t *)"secret-a", 8, prk_a2), 0);
    cr_assert_eq(tls_ticket_prk((const uint8_t *)"secret-b", 8, prk_b), 0);
    cr_assert_eq(memcmp(prk_a, prk_a2, sizeof(prk_a)), 0);
    cr_assert_neq(memcmp(prk_a, prk_b, sizeof(prk_a)), 0);

    struct tls_ticket_key k1, k2, other;
    cr_assert_eq(tls_ticket_key_derive(prk_a, "www", 123456, &k1), 0);
    cr_assert_eq(tls_ticket_key_derive(prk_a2, "www", 123456, &k2), 0);
    cr_assert_eq(memcmp(&k1, &k2, sizeof(k1)), 0, "same inputs, same key (every node)");
    struct {
        const uint8_t *prk;
        const char *label;
        uint64_t window;
    } others[] = {{prk_b, "www", 123456},
                  {prk_a, "www", 123457},
                  {prk_a, "www", 123455},
                  {prk_a, "api", 123456},
                  {prk_a, "www2", 123456}};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        cr_assert_eq(
            tls_ticket_key_derive(others[i].prk, others[i].label, others[i].window, &other), 0);
        cr_assert_neq(memcmp(k1.name, other.name, sizeof(k1.name)), 0, "case %zu", i);
        cr_assert_neq(memcmp(k1.aes, other.aes, sizeof(k1.aes)), 0, "case %zu", i);
        cr_assert_neq(memcmp(k1.hmac, other.hmac, sizeof(k1.hmac)), 0, "case %zu", i);
    }
    /* The three parts differ from each other and the name shows nothing of the secret. */
    cr_assert_neq(memcmp(k1.aes, k1.hmac, sizeof(k1.aes)), 0);
    cr_assert_null(memmem(&k1, sizeof(k1), "secret-a", 8));
}

Test(tls_ticket, the_window_is_the_time_divided_by_the_period)
{
    cr_assert_eq(tls_ticket_window(0, 1000), 0);
    cr_assert_eq(tls_ticket_window(999, 1000), 0);
    cr_assert_eq(tls_ticket_window(1000, 1000), 1);
    cr_assert_eq(tls_ticket_window(7200000, TLS_TICKET_PERIOD_DEFAULT_MS), 2);
}

static void resumes_across_contexts_of_one_secret(int version)
{
    write_secret("s1", "cluster secret one");
    write_secret("s2", "cluster secret two");
    struct tls_ctx *a = make_ctx("s1", false), *b = make_ctx("s1", false);
    struct tls_ctx *other = make_ctx("s2", false);
    SSL_SESSION *sess = NULL;
    cr_assert_not(handshake(a, version, NULL, &sess));
    cr_assert(handshake(a, version, sess, NULL), "the same context resumes");
    cr_assert(handshake(b, version, sess, NULL), "another node (or a reload) resumes");
    cr_assert_not(handshake(other, version, sess, NULL), "another secret: full handshake");
    SSL_SESSION_free(sess);
    tls_ctx_free(a);
    tls_ctx_free(b);
    tls_ctx_free(other);
}

Test(tls_ticket, tls13_sessions_resume_on_every_context_of_the_same_secret)
{
    resumes_across_contexts_of_one_secret(TLS1_3_VERSION);
}

Test(tls_ticket, tls12_sessions_resume_on_every_context_of_the_same_secret)
{
    resumes_across_contexts_of_one_secret(TLS1_2_VERSION);
}

Test(tls_ticket, without_a_secret_the_process_keys_are_shared_by_its_contexts)
{
    struct tls_ctx *a = make_ctx("", false), *b = make_ctx("", false);
    struct errbuf eb;
    struct tls_tickets *own = tls_tickets_new("", "www", 0, &eb);
    cr_assert_not_null(own);
    cr_assert_not(tls_tickets_is_shared(own));
    tls_tickets_free(own);
    SSL_SESSION *sess = NULL;
    cr_assert_not(handshake(a, TLS1_3_VERSION, NULL, &sess));
    cr_assert(handshake(b, TLS1_3_VERSION, sess, NULL), "a reload keeps the process's keys");
    SSL_SESSION_free(sess);
    tls_ctx_free(a);
    tls_ctx_free(b);
}

Test(tls_ticket, with_tickets_off_nothing_resumes)
{
    struct tls_ctx *a = make_ctx("", true);
    SSL_SESSION *sess = NULL;
    cr_assert_not(handshake(a, TLS1_3_VERSION, NULL, &sess));
    cr_assert_not(handshake(a, TLS1_3_VERSION, sess, NULL));
    SSL_SESSION_free(sess);
    sess = NULL;
    cr_assert_not(handshake(a, TLS1_2_VERSION, NULL, &sess));
    cr_assert_not(handshake(a, TLS1_2_VERSION, sess, NULL));
    SSL_SESSION_free(sess);
    tls_ctx_free(a);
}

Test(tls_ticket, a_ticket_resumes_in_the_next_window_and_is_renewed_not_after)
{
    write_secret("s1", "cluster secret one");
    struct tls_ctx *a = make_ctx("s1", false); /* period 10 s */
    now_ms = fake_clock;
    fake_now = 1000000000000; /* window 100000000 */
    SSL_SESSION *sess = NULL, *renewed = NULL;
    cr_assert_not(handshake(a, TLS1_2_VERSION, NULL, &sess));
    fake_now += 10000; /* the next window: the previous key still opens it */
    cr_assert(handshake(a, TLS1_2_VERSION, sess, &renewed));
    /* ... and the server sent a new ticket made with the current key */
    size_t l1 = 0, l2 = 0;
    const unsigned char *t1 = NULL, *t2 = NULL;
    SSL_SESSION_get0_ticket(sess, &t1, &l1);
    SSL_SESSION_get0_ticket(renewed, &t2, &l2);
    cr_assert(l1 >= 16 && l2 >= 16);
    cr_assert_neq(memcmp(t1, t2, 16), 0, "the renewed ticket has another key name");
    fake_now += 10000; /* two windows later: the first key is gone */
    cr_assert_not(handshake(a, TLS1_2_VERSION, sess, NULL));
    cr_assert(handshake(a, TLS1_2_VERSION, renewed, NULL));
    /* A node whose clock is one window ahead made it: accepted too. */
    fake_now += 10000;
    SSL_SESSION *ahead = NULL;
    cr_assert_not(handshake(a, TLS1_3_VERSION, NULL, &ahead));
    fake_now -= 10000;
    cr_assert(handshake(a, TLS1_3_VERSION, ahead, NULL));
    SSL_SESSION_free(sess);
    SSL_SESSION_free(renewed);
    SSL_SESSION_free(ahead);
    tls_ctx_free(a);
}

Test(tls_ticket, an_unreadable_secret_is_an_error)
{
    struct conf_frontend fe;
    tc_frontend(&fe, &cert, 1);
    snprintf(fe.tls.secret_file, sizeof(fe.tls.secret_file), "%s/missing", dir);
    struct errbuf eb;
    cr_assert_null(tls_ctx_new(&fe, &eb));
    cr_assert(strstr(eb.msg, "cannot read the cluster secret") != NULL, "%s", eb.msg);
}

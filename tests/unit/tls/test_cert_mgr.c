/* SPDX-License-Identifier: MIT */
/* Unit tests for src/tls/cert_mgr.c: the renewal time (two thirds, jitter bounds), the
 * bounded backoff, the transition table and a refused move, and the machine on a real loop
 * with the internal issuer: a first certificate issued and reused by the next start, a
 * renewal at two thirds of a short life that tells the owner, and a failed renewal that keeps
 * the stored certificate and backs off. */
#include <criterion/criterion.h>

#include "tls/cert_mgr.c"

#include <stdlib.h>

#include "core/conf.h"
#include "tls/tls_ctx.h"
#include "tls_certs.h"

static char dir[64];

static void setup(void)
{
    tc_tmpdir(dir);
}

static void teardown(void)
{
    tc_rmdir(dir);
}

TestSuite(cert_mgr, .init = setup, .fini = teardown);

Test(cert_mgr, renewal_at_two_thirds_earlier_by_a_jitter)
{
    cr_assert_eq(cert_renew_at_ms(1000, 1900, 0), 1600u * 1000u);
    /* Jitter: at most a twentieth of the life (45 s of 900 s). */
    cr_assert_eq(cert_renew_at_ms(1000, 1900, 0.5), 1600u * 1000u - 22500u);
    uint64_t earliest = cert_renew_at_ms(1000, 1900, 0.999999);
    cr_assert(earliest > 1600u * 1000u - 45000u && earliest < 1600u * 1000u);
    cr_assert_eq(cert_renew_at_ms(1000, 1900, 7), 1600u * 1000u, "out of range: no jitter");
    cr_assert_eq(cert_renew_at_ms(1000, 1000, 0), 1000u * 1000u, "no life: at once");
}

Test(cert_mgr, backoff_doubles_up_to_its_bound)
{
    cr_assert_eq(cert_backoff_ms(1), 2000);
    cr_assert_eq(cert_backoff_ms(2), 4000);
    cr_assert_eq(cert_backoff_ms(3), 8000);
    cr_assert_eq(cert_backoff_ms(11), 2048000);
    cr_assert_eq(cert_backoff_ms(12), CERT_BACKOFF_MAX_MS);
    cr_assert_eq(cert_backoff_ms(4000000000u), CERT_BACKOFF_MAX_MS);
}

Test(cert_mgr, the_table_allows_only_the_documented_moves)
{
    cr_assert(cert_state_is_legal(CERT_STATE_NONE, CERT_STATE_VALID));
    cr_assert(cert_state_is_legal(CERT_STATE_NONE, CERT_STATE_ISSUING));
    cr_assert(cert_state_is_legal(CERT_STATE_VALID, CERT_STATE_ISSUING));
    cr_assert(cert_state_is_legal(CERT_STATE_ISSUING, CERT_STATE_VALID));
    cr_assert(cert_state_is_legal(CERT_STATE_ISSUING, CERT_STATE_BACKOFF));
    cr_assert(cert_state_is_legal(CERT_STATE_BACKOFF, CERT_STATE_ISSUING));
    cr_assert_not(cert_state_is_legal(CERT_STATE_VALID, CERT_STATE_BACKOFF));
    /* across the pair: another node's certificate arrives from etcd during a backoff */
    cr_assert(cert_state_is_legal(CERT_STATE_BACKOFF, CERT_STATE_VALID));
    cr_assert(cert_state_is_legal(CERT_STATE_NONE, CERT_STATE_WAITING));
    cr_assert(cert_state_is_legal(CERT_STATE_VALID, CERT_STATE_WAITING));
    cr_assert(cert_state_is_legal(CERT_STATE_BACKOFF, CERT_STATE_WAITING));
    cr_assert(cert_state_is_legal(CERT_STATE_WAITING, CERT_STATE_VALID));
    cr_assert(cert_state_is_legal(CERT_STATE_WAITING, CERT_STATE_ISSUING));
    cr_assert_not(cert_state_is_legal(CERT_STATE_ISSUING, CERT_STATE_WAITING));
    cr_assert_not(cert_state_is_legal(CERT_STATE_WAITING, CERT_STATE_BACKOFF));
    cr_assert_not(cert_state_is_legal(CERT_STATE_VALID, CERT_STATE_NONE));
    cr_assert_not(cert_state_is_legal(CERT_STATE_COUNT, CERT_STATE_NONE));
    for (int s = 0; s < CERT_STATE_COUNT; s++) {
        cr_assert_str_neq(cert_state_name((enum cert_state)s), "?");
    }
}

Test(cert_mgr, an_illegal_move_is_refused_and_counted)
{
    setenv("KEEL_FSM_STRICT", "0", 1);
    struct cert_machine c = {.state = CERT_STATE_VALID};
    snprintf(c.ctx, sizeof(c.ctx), "cert test");
    uint64_t before = fsm_illegal_count(FSM_MACHINE_CERT);
    set_state(&c, CERT_STATE_BACKOFF, "test");
    cr_assert_eq(c.state, CERT_STATE_VALID);
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_CERT), before + 1);
}

/* ---------------------------------------------------------------- on a loop */

static struct conf *load(const char *lifetime)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "cluster t { state_dir %s; }\n"
             "frontend www { bind 127.0.0.1:1 tls; acme internal; acme_names a.keel.test "
             "127.0.0.1; acme_lifetime %s; backend web; }\n"
             "backend web { server a 127.0.0.1:2; }\n",
             dir, lifetime);
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, strlen(text), CONF_LOAD_NO_RESOLVE, &conf, &errs);
    cr_assert_eq(rc, 0, "%s", errs.text != NULL ? errs.text : "");
    conf_errors_fini(&errs);
    return conf;
}

/* The serial of the stored certificate, read as if at time at (0: now). */
static void stored_serial_at(const struct conf *conf, time_t at, char *out, size_t size)
{
    struct tls_cert c;
    struct errbuf eb;
    cr_assert_eq(tls_cert_read(conf->frontends[0].tls.acme.dir, at != 0 ? at : time(NULL), &c, &eb),
                 0, "%s", eb.msg);
    tls_cert_serial(c.leaf, out, size);
    tls_cert_fini(&c);
}

static void stored_serial(const struct conf *conf, char *out, size_t size)
{
    stored_serial_at(conf, 0, out, size);
}

Test(cert_mgr, prepare_issues_once_and_a_restart_reuses_it)
{
    struct conf *conf = load("1h");
    struct errbuf eb;
    cr_assert_eq(cert_mgr_prepare(&conf->frontends[0], time(NULL), &eb), 0, "%s", eb.msg);
    char first[80], second[80];
    stored_serial(conf, first, sizeof(first));
    cr_assert_eq(cert_mgr_prepare(&conf->frontends[0], time(NULL), &eb), 0, "%s", eb.msg);
    stored_serial(conf, second, sizeof(second));
    cr_assert_str_eq(first, second);
    conf_free(conf);
}

Test(cert_mgr, prepare_replaces_an_expired_one)
{
    struct conf *conf = load("1h");
    struct errbuf eb;
    /* Issued two hours ago for one hour. */
    cr_assert_eq(cert_mgr_prepare(&conf->frontends[0], time(NULL) - 7200, &eb), 0, "%s", eb.msg);
    struct tls_cert c;
    cr_assert_eq(tls_cert_read(conf->frontends[0].tls.acme.dir, time(NULL), &c, &eb),
                 -KEEL_ECONFIG);
    cr_assert_eq(cert_mgr_prepare(&conf->frontends[0], time(NULL), &eb), 0, "%s", eb.msg);
    char serial[80];
    stored_serial(conf, serial, sizeof(serial)); /* valid now */
    conf_free(conf);
}

struct watch {
    struct ev_loop *loop;
    unsigned stored;
    char frontend[64];
};

static void on_stored(void *data, const char *frontend)
{
    struct watch *w = data;
    w->stored++;
    snprintf(w->frontend, sizeof(w->frontend), "%s", frontend);
    ev_loop_stop(w->loop);
}

static void on_deadline(struct ev_loop *loop, struct ev_timer *t)
{
    (void)t;
    ev_loop_stop(loop);
}

/* Run loop until on_stored or ms pass. */
static void run_for(struct ev_loop *loop, uint64_t ms)
{
    struct ev_timer deadline;
    ev_timer_init(&deadline, on_deadline, NULL, "test deadline");
    ev_timer_start(loop, &deadline, ms);
    (void)ev_run(loop);
    ev_timer_stop(loop, &deadline);
}

Test(cert_mgr, a_short_life_is_renewed_at_two_thirds_and_the_owner_told, .timeout = 20)
{
    struct conf *conf = load("3s");
    struct errbuf eb;
    cr_assert_eq(cert_mgr_prepare(&conf->frontends[0], time(NULL), &eb), 0, "%s", eb.msg);
    char first[80], second[80];
    stored_serial(conf, first, sizeof(first));
    struct watch w = {.loop = ev_loop_new()};
    cr_assert_not_null(w.loop);
    struct cert_mgr *m = cert_mgr_new(w.loop, conf, NULL, on_stored, &w, NULL);
    cr_assert_not_null(m);
    cr_assert_eq(cert_mgr_state(m, "www"), CERT_STATE_VALID);
    cr_assert_eq(cert_mgr_state(m, "other"), -1);
    run_for(w.loop, 6000);
    cr_assert_eq(w.stored, 1, "no renewal within 6 s of a 3 s certificate");
    cr_assert_str_eq(w.frontend, "www");
    cr_assert_eq(cert_mgr_state(m, "www"), CERT_STATE_VALID);
    stored_serial(conf, second, sizeof(second));
    cr_assert_str_neq(first, second);
    cr_assert_eq(m->m[0].renewed, 1);
    /* A reload's manager keeps the counters. */
    struct cert_mgr *next = cert_mgr_new(w.loop, conf, NULL, on_stored, &w, m);
    cert_mgr_free(m);
    cr_assert_eq(next->m[0].renewed, 1);
    cert_mgr_free(next);
    ev_loop_free(w.loop);
    conf_free(conf);
}

Test(cert_mgr, a_failed_renewal_keeps_the_certificate_and_backs_off, .timeout = 20)
{
    struct conf *conf = load("3s");
    struct errbuf eb;
    time_t issued = time(NULL);
    cr_assert_eq(cert_mgr_prepare(&conf->frontends[0], issued, &eb), 0, "%s", eb.msg);
    char first[80], after[80];
    stored_serial(conf, first, sizeof(first));
    /* A CA that cannot sign: the renewal fails. */
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s", conf->frontends[0].tls.acme.ca_dir, TLS_CA_KEY);
    cr_assert_eq(cert_store_write(path, "damaged\n", 8, 0600, &eb), 0);
    struct watch w = {.loop = ev_loop_new()};
    struct cert_mgr *m = cert_mgr_new(w.loop, conf, NULL, on_stored, &w, NULL);
    cr_assert_not_null(m);
    /* The renewal comes after at most 2 s (the certificate's notBefore is rounded to the
     * second, so it may come sooner); the retry 2 s after it fails. Step until it failed. */
    for (int i = 0; i < 100 && m->m[0].failed == 0; i++) {
        run_for(w.loop, 50);
    }
    cr_assert_eq(w.stored, 0);
    cr_assert_eq(cert_mgr_state(m, "www"), CERT_STATE_BACKOFF);
    cr_assert_eq(m->m[0].failed, 1);
    cr_assert(ev_timer_is_active(&m->m[0].timer), "no retry armed");
    stored_serial_at(conf, issued, after, sizeof(after)); /* it may have expired since */
    cr_assert_str_eq(first, after);
    cert_mgr_free(m);
    ev_loop_free(w.loop);
    conf_free(conf);
}

/* The diagram in docs/internals/acme.md draws exactly the moves of legal_next[]. */
Test(cert_mgr, the_documented_diagram_is_the_table)
{
    FILE *f = fopen("docs/internals/acme.md", "r");
    cr_assert_not_null(f, "run from the repository root");
    char line[256];
    bool in = false;
    uint32_t drawn[CERT_STATE_COUNT] = {0};
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "stateDiagram-v2", 15) == 0) {
            in = true;
            continue;
        }
        if (in && strncmp(line, "```", 3) == 0) {
            break;
        }
        char from[32], to[32];
        if (in && sscanf(line, " %31s --> %31[^:]:", from, to) == 2) {
            int a = -1, b = -1;
            for (int s = 0; s < CERT_STATE_COUNT; s++) {
                a = strcmp(from, cert_state_name((enum cert_state)s)) == 0 ? s : a;
                b = strcmp(to, cert_state_name((enum cert_state)s)) == 0 ? s : b;
            }
            cr_assert(a >= 0 && b >= 0, "unknown state in: %s", line);
            drawn[a] |= 1u << b;
        }
    }
    fclose(f);
    cr_assert(in, "no stateDiagram-v2 in docs/internals/acme.md");
    for (int s = 0; s < CERT_STATE_COUNT; s++) {
        cr_expect_eq(drawn[s], legal_next[s], "state %s: the diagram and the table differ",
                     cert_state_name((enum cert_state)s));
    }
}

/* SPDX-License-Identifier: MIT */
/* Unit tests of core/fdlimit.c: the open files limit raise, maxconn sized against the limit
 * (auto shares, explicit values refused with the numbers), the data plane's guard and the
 * once-per-second throttle. */
#include <criterion/criterion.h>

#include "core/fdlimit.c"

#include <stdlib.h>
#include <string.h>

static struct conf *load(const char *text)
{
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, strlen(text), CONF_LOAD_NO_RESOLVE, &conf, &errs);
    cr_assert_eq(rc, 0, "unexpected errors:\n%s", errs.text ? errs.text : "(none)");
    conf_errors_fini(&errs);
    return conf;
}

/* Two frontends (one bind each), an HTTP backend with 2 checked servers and keepalive 4, a
 * TCP backend; an admin listener. With 2 workers: 4 listening sockets, 4 x 2 x 2 = 16 pooled,
 * reserve 64 + 33 + 2 = 99. */
#define TWO_FRONTENDS(WWW_MAXCONN, PG_MAXCONN)                                                     \
    "global { admin 127.0.0.1:9100; }\n"                                                           \
    "frontend www { bind 127.0.0.1:8080; backend web; " WWW_MAXCONN " }\n"                         \
    "frontend pg { bind 127.0.0.1:5432; mode tcp; backend db; " PG_MAXCONN " }\n"                  \
    "backend web { keepalive 4; check http; server a 127.0.0.1:1; server b 127.0.0.1:2; }\n"       \
    "backend db { mode tcp; server p 127.0.0.1:3; }\n"

Test(fdlimit, maxconn_defaults_to_auto)
{
    struct conf *conf = load(TWO_FRONTENDS("", ""));
    cr_assert_eq(conf->frontends[0].maxconn, 0, "auto is 0 until sized");
    conf_free(conf);
}

Test(fdlimit, auto_takes_an_equal_share_of_what_is_left)
{
    struct conf *conf = load(TWO_FRONTENDS("", ""));
    struct fdlimit_budget b;
    struct errbuf eb = {{0}};
    cr_assert_eq(fdlimit_conf_apply(conf, NULL, 2, 1024, &b, &eb), 0, "%s", eb.msg);
    cr_assert_eq(b.reserve, 99);
    cr_assert_eq(b.listeners, 4);
    cr_assert_eq(b.pooled, 16);
    /* (1024 - 99 - 4 - 16) / 2 / 2 = 226 */
    cr_assert_eq(b.auto_maxconn, 226);
    cr_assert_eq(b.n_auto, 2);
    cr_assert_eq(conf->frontends[0].maxconn, 226);
    cr_assert_eq(conf->frontends[1].maxconn, 226);
    cr_assert_leq(b.need, 1024);
    cr_assert_eq(b.data_fd_max, 1024 - 99);
    conf_free(conf);
}

Test(fdlimit, auto_is_at_most_10000)
{
    struct conf *conf = load(TWO_FRONTENDS("", "maxconn 500;"));
    struct fdlimit_budget b;
    struct errbuf eb = {{0}};
    cr_assert_eq(fdlimit_conf_apply(conf, NULL, 2, 1048576, &b, &eb), 0, "%s", eb.msg);
    cr_assert_eq(conf->frontends[0].maxconn, FDLIMIT_AUTO_MAXCONN_MAX);
    cr_assert_eq(conf->frontends[1].maxconn, 500);
    cr_assert_eq(b.conns, 10500);
    conf_free(conf);
}

Test(fdlimit, explicit_maxconn_that_fits_exactly_is_kept)
{
    /* 2 x (200 + 200) + 4 + 16 + 99 = 919 */
    struct conf *conf = load(TWO_FRONTENDS("maxconn 200;", "maxconn 200;"));
    struct fdlimit_budget b;
    struct errbuf eb = {{0}};
    cr_assert_eq(fdlimit_conf_apply(conf, NULL, 2, 919, &b, &eb), 0, "%s", eb.msg);
    cr_assert_eq(b.need, 919);
    conf_free(conf);
    conf = load(TWO_FRONTENDS("maxconn 200;", "maxconn 200;"));
    cr_assert_eq(fdlimit_conf_apply(conf, NULL, 2, 918, &b, &eb), -KEEL_ECONFIG);
    conf_free(conf);
}

Test(fdlimit, explicit_maxconn_over_the_limit_is_refused_with_the_numbers)
{
    struct conf *conf = load(TWO_FRONTENDS("maxconn 30000;", ""));
    struct errbuf eb = {{0}};
    cr_assert_eq(fdlimit_conf_apply(conf, NULL, 2, 20000, NULL, &eb), -KEEL_ECONFIG);
    cr_assert_str_eq(eb.msg, "t.conf:2:1: error: frontend \"www\": maxconn 30000 does not fit: "
                             "the frontends need 60121 descriptors (maxconn total 30001 x 2 + "
                             "4 listening sockets + 16 pooled server connections + a reserve "
                             "of 99 for the control plane), more than the open files limit "
                             "20000; lower maxconn or raise the hard limit (ulimit -Hn, "
                             "systemd LimitNOFILE=)");
    conf_free(conf);
}

Test(fdlimit, no_room_for_auto_frontends_is_refused)
{
    struct conf *conf = load(TWO_FRONTENDS("", ""));
    struct errbuf eb = {{0}};
    cr_assert_eq(fdlimit_conf_apply(conf, NULL, 2, 100, NULL, &eb), -KEEL_ECONFIG);
    cr_assert(strstr(eb.msg, "t.conf:2:1: error: frontend \"www\": no descriptor left") != NULL,
              "%s", eb.msg);
    conf_free(conf);
}

Test(fdlimit, every_worker_has_its_listeners_and_pools)
{
    struct conf *conf = load(TWO_FRONTENDS("maxconn 10;", "maxconn 10;"));
    struct fdlimit_budget one, eight;
    struct errbuf eb = {{0}};
    cr_assert_eq(fdlimit_conf_apply(conf, NULL, 1, 100000, &one, &eb), 0);
    cr_assert_eq(fdlimit_conf_apply(conf, NULL, 8, 100000, &eight, &eb), 0);
    cr_assert_eq(one.listeners, 2);
    cr_assert_eq(eight.listeners, 16);
    cr_assert_eq(one.pooled, 8);
    cr_assert_eq(eight.pooled, 64);
    cr_assert_eq(one.conns, eight.conns, "maxconn is per frontend, all workers together");
    conf_free(conf);
}

Test(fdlimit, the_reserve_counts_the_db_agent_and_app_processes)
{
    struct conf *conf = load("cluster c { state_dir /tmp; }\n"
                             "global { admin :9100; }\n"
                             "node db1 { address 127.0.0.2; roles db app; }\n"
                             "node db2 { address 127.0.0.3; roles db; }\n"
                             "app a { listen :9000; run builtin demo; processes 3; }\n"
                             "database main { nodes db1 db2; dcs etcd http://127.0.0.1:2379; }\n");
    struct fdlimit_budget b;
    struct errbuf eb = {{0}};
    cr_assert_eq(fdlimit_conf_apply(conf, "db1", 1, 1024, &b, &eb), 0, "%s", eb.msg);
    cr_assert_eq(b.reserve, 64 + 33 + 33 + 3 * 4);
    cr_assert_eq(fdlimit_conf_apply(conf, "db2", 1, 1024, &b, &eb), 0, "%s", eb.msg);
    cr_assert_eq(b.reserve, 64 + 33 + 33);
    conf_free(conf);
}

Test(fdlimit, raise_sets_the_soft_limit_to_the_hard_limit)
{
    struct rlimit rl = {.rlim_cur = 100, .rlim_max = 300};
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0); /* this test's own process */
    struct fdlimit_rlimit r;
    cr_assert_eq(fdlimit_raise(&r), 0);
    cr_assert_eq(r.err, 0);
    cr_assert_eq(r.soft_before, 100);
    cr_assert_eq(r.soft, 300);
    cr_assert_eq(r.hard, 300);
    uint64_t soft, hard;
    cr_assert_eq(fdlimit_get(&soft, &hard), 0);
    cr_assert_eq(soft, 300);
    cr_assert_eq(hard, 300);
    cr_assert_eq(fdlimit_raise(&r), 0); /* already raised: nothing to do */
    cr_assert_eq(r.soft_before, 300);
    cr_assert_eq(r.soft, 300);
}

Test(fdlimit, the_guard_keeps_the_data_plane_below_the_reserve)
{
    cr_assert(fdlimit_data_fd_ok(100000), "no guard until one is set");
    fdlimit_data_set_max(158);
    cr_assert(fdlimit_data_fd_ok(3));
    cr_assert(fdlimit_data_fd_ok(157));
    cr_assert_not(fdlimit_data_fd_ok(158));
    cr_assert_not(fdlimit_data_fd_ok(255));
    fdlimit_data_set_max(0);
    cr_assert(fdlimit_data_fd_ok(255));
}

Test(fdlimit, the_throttle_logs_the_first_event_then_once_a_second_with_a_count)
{
    struct fdlimit_throttle t = {0};
    uint64_t span;
    cr_assert_eq(fdlimit_throttle_hit(&t, 5000, &span), 1);
    cr_assert_eq(span, 0);
    uint32_t logged = 0;
    for (uint64_t ms = 5100; ms < 6000; ms += 100) { /* a pause every 100 ms */
        logged += fdlimit_throttle_hit(&t, ms, &span);
    }
    cr_assert_eq(logged, 0, "nothing within the second");
    cr_assert_eq(fdlimit_throttle_hit(&t, 6000, &span), 10, "9 suppressed and this one");
    cr_assert_eq(span, 900);
    cr_assert_eq(fdlimit_throttle_hit(&t, 6500, &span), 0);
    cr_assert_eq(fdlimit_throttle_hit(&t, 9000, &span), 2);
    cr_assert_eq(span, 2500);
}

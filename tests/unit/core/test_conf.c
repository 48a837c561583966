/* SPDX-License-Identifier: MIT */
/* Unit tests of core/conf.c: loading, defaults, and every configuration error with its exact
 * "file:line:col: error: ..." text. The generic setters (core/conf_value.c) and the directive
 * tables (core/conf_registry.c, lb/lb_conf.c) are linked in and exercised through loading. */
#include <criterion/criterion.h>

#include "core/conf.c"
#include "core/log.h"
#include "lb/lb_algo.h"

#include <netinet/in.h>
#include <stdlib.h>

/* ------------------------------------------------------------------------------------------
 * Helpers. Tests load with CONF_LOAD_NO_RESOLVE unless they test resolution: unit tests must
 * not depend on the DNS.
 * ------------------------------------------------------------------------------------------ */

static struct conf *load_ok(const char *text)
{
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, strlen(text), CONF_LOAD_NO_RESOLVE, &conf, &errs);
    cr_assert_eq(rc, 0, "unexpected errors:\n%s", errs.text ? errs.text : "(none)");
    cr_assert_not_null(conf);
    cr_assert_null(errs.text);
    cr_assert_eq(errs.count, 0);
    conf_errors_fini(&errs);
    return conf;
}

static void expect_errors(const char *text, const char *want)
{
    struct conf *conf = (struct conf *)1;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, strlen(text), CONF_LOAD_NO_RESOLVE, &conf, &errs);
    cr_assert_eq(rc, -KEEL_ECONFIG, "rc %d for:\n%s", rc, text);
    cr_assert_null(conf);
    cr_assert_not_null(errs.text, "no error text for:\n%s", text);
    cr_assert_str_eq(errs.text, want, "for:\n%s\ngot:\n%s\nwant:\n%s", text, errs.text, want);
    cr_assert_eq(strlen(errs.text), errs.len);
    conf_errors_fini(&errs);
    cr_assert_null(errs.text);
}

/* A valid frontend/backend pair, for tests that need something around their subject. */
#define PAIR                                                                                       \
    "frontend www { bind :8080; backend web; }\n"                                                  \
    "backend web { server a 127.0.0.1:9001; }\n"

/* ------------------------------------------------------------------------------------------
 * Valid configurations and defaults
 * ------------------------------------------------------------------------------------------ */

Test(conf, empty_file_gives_global_defaults)
{
    struct conf *conf = load_ok("");
    cr_assert_str_eq(conf->cluster_name, "");
    cr_assert_str_eq(conf->state_dir, "");
    cr_assert_str_eq(conf->secret_file, "");
    cr_assert_eq(conf->global.workers, 0);
    cr_assert_str_eq(conf->global.error_log, "stderr");
    cr_assert_eq(conf->global.log_level, LOG_LEVEL_INFO);
    cr_assert_eq(conf->global.has_admin, false);
    cr_assert_eq(conf->global.timeout_drain_ms, 10000);
    cr_assert_eq(conf->n_nodes, 0);
    cr_assert_eq(conf->n_frontends, 0);
    cr_assert_eq(conf->n_backends, 0);
    conf_free(conf);
}

Test(conf, comments_and_blank_lines_only)
{
    struct conf *conf = load_ok("# nothing here\n\n   # indented comment\n\t\n");
    cr_assert_eq(conf->n_frontends, 0);
    conf_free(conf);
}

Test(conf, frontend_backend_server_check_defaults)
{
    struct conf *conf = load_ok(PAIR);
    cr_assert_eq(conf->n_frontends, 1);
    const struct conf_frontend *fe = &conf->frontends[0];
    cr_assert_str_eq(fe->name, "www");
    cr_assert_eq(fe->mode, CONF_MODE_HTTP);
    cr_assert_eq(fe->n_binds, 1);
    cr_assert_str_eq(fe->binds[0].text, "0.0.0.0:8080");
    cr_assert_str_eq(fe->backend_name, "web");
    cr_assert_eq(fe->backend_index, 0);
    cr_assert_eq(fe->maxconn, 0); /* auto: sized by core/fdlimit.c at start */
    cr_assert_eq(fe->timeout_header_ms, 10000);
    cr_assert_eq(fe->timeout_idle_ms, 60000);
    cr_assert_eq(fe->timeout_client_ms, 60000);
    cr_assert_eq(fe->max_body, 0);
    cr_assert_eq(fe->max_header, 16384);
    cr_assert_eq(fe->max_request_line, 8192);
    cr_assert_str_eq(fe->access_log, "");
    cr_assert_eq(fe->access_log_format, CONF_LOG_COMBINED);
    cr_assert_eq(fe->pos.line, 1);
    cr_assert_eq(fe->pos.col, 1);
    cr_assert_str_eq(fe->pos.file, "t.conf");

    const struct conf_backend *be = &conf->backends[0];
    cr_assert_str_eq(be->name, "web");
    cr_assert_eq(be->mode, CONF_MODE_HTTP);
    cr_assert_str_eq(lb_algo_of(be)->name, "roundrobin");
    cr_assert_eq(be->timeout_connect_ms, 3000);
    cr_assert_eq(be->timeout_server_ms, 60000);
    cr_assert_eq(be->timeout_queue_ms, 5000);
    cr_assert_eq(be->queue_max, 1024);
    cr_assert_eq(be->retries, 1);
    cr_assert_eq(be->keepalive, 32);
    cr_assert_eq(be->pos.line, 2);

    const struct conf_check *c = &be->check;
    cr_assert_eq(c->type, CONF_CHECK_NONE);
    cr_assert_str_eq(c->method, "GET");
    cr_assert_str_eq(c->path, "/");
    cr_assert_str_eq(c->host, "");
    cr_assert_eq(c->status_min, 200);
    cr_assert_eq(c->status_max, 399);
    cr_assert_eq(c->interval_ms, 2000);
    cr_assert_eq(c->timeout_ms, 1000);
    cr_assert_eq(c->rise, 2);
    cr_assert_eq(c->fall, 3);

    cr_assert_eq(be->n_servers, 1);
    const struct conf_server *s = &be->servers[0];
    cr_assert_str_eq(s->name, "a");
    cr_assert_str_eq(s->addr.text, "127.0.0.1:9001");
    cr_assert_eq(s->weight, 1);
    cr_assert_eq(s->maxconn, 0);
    cr_assert_eq(s->is_backup, false);
    cr_assert_eq(s->is_disabled, false);
    cr_assert_eq(s->pos.line, 2);
    cr_assert_eq(s->pos.col, 15);
    conf_free(conf);
}

Test(conf, tcp_check_keeps_http_defaults)
{
    struct conf *conf = load_ok("backend b { server a 10.0.0.1:80; check tcp; }");
    const struct conf_check *c = &conf->backends[0].check;
    cr_assert_eq(c->type, CONF_CHECK_TCP);
    cr_assert_eq(c->interval_ms, 2000);
    cr_assert_eq(c->rise, 2);
    conf_free(conf);
}

static const char full_config[] =
    "# a complete configuration\n"
    "cluster demo { state_dir /var/lib/keel; secret_file \"/etc/keel/cluster key\"; }\n"
    "global {\n"
    "    workers 2;\n"
    "    error_log /var/log/keel/error.log;\n"
    "    log_level debug;\n"
    "    admin 127.0.0.1:9100;\n"
    "    timeout_drain 30s;\n"
    "}\n"
    "node lb1 { address 127.0.0.2; roles lb web app db; }\n"
    "node db1 { address db1.example.com; roles db; }\n"
    "frontend www {\n"
    "    bind 127.0.0.1:8080;\n"
    "    bind :8081;\n"
    "    bind [::1]:80;\n"
    "    bind *:8082;\n"
    "    mode http;\n"
    "    backend web;\n"
    "    maxconn 500;\n"
    "    timeout_header 5s; timeout_idle 2m; timeout_client 1h;\n"
    "    max_body 1g; max_header 32k; max_request_line 4k;\n"
    "    access_log /var/log/keel/access.log json;\n"
    "}\n"
    "frontend pg { bind :5432; mode tcp; backend db; access_log stderr; }\n"
    "backend web {\n"
    "    mode http;\n"
    "    balance leastconn;\n"
    "    server a 127.0.0.1:9001 weight 5 maxconn 100 backup disabled;\n"
    "    server b [::1]:9002 disabled weight 256;\n"
    "    check http method HEAD path /healthz host example.com status 200-299 interval 1s "
    "timeout 500ms rise 4 fall 5;\n"
    "    timeout_connect 1s; timeout_server 30s; timeout_queue 2s;\n"
    "    queue_max 0; retries 3; keepalive 0;\n"
    "}\n"
    "backend db { mode tcp; balance source; server p 10.0.0.31:5432; check tcp interval 100ms; }\n"
    "backend r { balance random; server x 10.0.0.1:1; server y 10.0.0.2:65535; }\n";

Test(conf, full_valid_config)
{
    struct conf *conf = load_ok(full_config);
    cr_assert_str_eq(conf->cluster_name, "demo");
    cr_assert_str_eq(conf->state_dir, "/var/lib/keel");
    cr_assert_str_eq(conf->secret_file, "/etc/keel/cluster key");
    cr_assert_eq(conf->global.workers, 2);
    cr_assert_str_eq(conf->global.error_log, "/var/log/keel/error.log");
    cr_assert_eq(conf->global.log_level, LOG_LEVEL_DEBUG);
    cr_assert(conf->global.has_admin);
    cr_assert_str_eq(conf->global.admin.text, "127.0.0.1:9100");
    cr_assert_eq(conf->global.timeout_drain_ms, 30000);

    cr_assert_eq(conf->n_nodes, 2);
    cr_assert_str_eq(conf->nodes[0].name, "lb1");
    cr_assert_str_eq(conf->nodes[0].address, "127.0.0.2");
    cr_assert_eq(conf->nodes[0].roles, CONF_ROLE_LB | CONF_ROLE_WEB | CONF_ROLE_APP | CONF_ROLE_DB);
    cr_assert_str_eq(conf->nodes[1].address, "db1.example.com");
    cr_assert_eq(conf->nodes[1].roles, CONF_ROLE_DB);
    cr_assert_eq(conf_find_node(conf, "db1"), &conf->nodes[1]);
    cr_assert_null(conf_find_node(conf, "db2"));

    cr_assert_eq(conf->n_frontends, 2);
    const struct conf_frontend *fe = &conf->frontends[0];
    cr_assert_eq(fe->n_binds, 4);
    cr_assert_str_eq(fe->binds[0].text, "127.0.0.1:8080");
    cr_assert_str_eq(fe->binds[1].text, "0.0.0.0:8081");
    cr_assert_str_eq(fe->binds[2].text, "[::1]:80");
    cr_assert_str_eq(fe->binds[3].text, "0.0.0.0:8082");
    cr_assert_eq(fe->binds[2].sa.ss_family, AF_INET6);
    cr_assert_eq(fe->binds[2].salen, sizeof(struct sockaddr_in6));
    cr_assert_eq(fe->binds[0].salen, sizeof(struct sockaddr_in));
    cr_assert_eq(fe->maxconn, 500);
    cr_assert_eq(fe->timeout_header_ms, 5000);
    cr_assert_eq(fe->timeout_idle_ms, 120000);
    cr_assert_eq(fe->timeout_client_ms, 3600000);
    cr_assert_eq(fe->max_body, 1ull << 30);
    cr_assert_eq(fe->max_header, 32768);
    cr_assert_eq(fe->max_request_line, 4096);
    cr_assert_str_eq(fe->access_log, "/var/log/keel/access.log");
    cr_assert_eq(fe->access_log_format, CONF_LOG_JSON);
    cr_assert_eq(fe->backend_index, 0);
    cr_assert_eq(fe->backend_pos.line, 18);
    cr_assert_eq(fe->backend_pos.col, 13);
    const struct conf_frontend *pg = &conf->frontends[1];
    cr_assert_eq(pg->mode, CONF_MODE_TCP);
    cr_assert_eq(pg->backend_index, 1);
    cr_assert_str_eq(pg->access_log, "stderr");
    cr_assert_eq(pg->access_log_format, CONF_LOG_COMBINED);

    cr_assert_eq(conf->n_backends, 3);
    const struct conf_backend *be = conf_find_backend(conf, "web");
    cr_assert_eq(be, &conf->backends[0]);
    cr_assert_null(conf_find_backend(conf, "nope"));
    cr_assert_str_eq(lb_algo_of(be)->name, "leastconn");
    cr_assert_eq(be->n_servers, 2);
    cr_assert_eq(be->servers[0].weight, 5);
    cr_assert_eq(be->servers[0].maxconn, 100);
    cr_assert(be->servers[0].is_backup);
    cr_assert(be->servers[0].is_disabled);
    cr_assert_str_eq(be->servers[1].addr.text, "[::1]:9002");
    cr_assert_eq(be->servers[1].weight, 256);
    cr_assert(be->servers[1].is_disabled);
    cr_assert_not(be->servers[1].is_backup);
    cr_assert_eq(be->check.type, CONF_CHECK_HTTP);
    cr_assert_str_eq(be->check.method, "HEAD");
    cr_assert_str_eq(be->check.path, "/healthz");
    cr_assert_str_eq(be->check.host, "example.com");
    cr_assert_eq(be->check.status_min, 200);
    cr_assert_eq(be->check.status_max, 299);
    cr_assert_eq(be->check.interval_ms, 1000);
    cr_assert_eq(be->check.timeout_ms, 500);
    cr_assert_eq(be->check.rise, 4);
    cr_assert_eq(be->check.fall, 5);
    cr_assert_eq(be->timeout_connect_ms, 1000);
    cr_assert_eq(be->timeout_server_ms, 30000);
    cr_assert_eq(be->timeout_queue_ms, 2000);
    cr_assert_eq(be->queue_max, 0);
    cr_assert_eq(be->retries, 3);
    cr_assert_eq(be->keepalive, 0);
    cr_assert_eq(conf->backends[1].mode, CONF_MODE_TCP);
    cr_assert_str_eq(lb_algo_of(&conf->backends[1])->name, "source");
    cr_assert_eq(conf->backends[1].check.type, CONF_CHECK_TCP);
    cr_assert_eq(conf->backends[1].check.interval_ms, 100);
    cr_assert_str_eq(lb_algo_of(&conf->backends[2])->name, "random");
    cr_assert_str_eq(conf->backends[2].servers[1].addr.text, "10.0.0.2:65535");
    conf_free(conf);
}

Test(conf, workers_auto_and_zero)
{
    struct conf *conf = load_ok("global { workers 8; }");
    cr_assert_eq(conf->global.workers, 8);
    conf_free(conf);
    conf = load_ok("global { workers auto; }");
    cr_assert_eq(conf->global.workers, 0);
    conf_free(conf);
    conf = load_ok("global { workers 0; }");
    cr_assert_eq(conf->global.workers, 0);
    conf_free(conf);
}

Test(conf, quoted_strings_and_escapes)
{
    struct conf *conf = load_ok("global { error_log \"/tmp/a \\\"b\\\" \\\\c\"; }");
    cr_assert_str_eq(conf->global.error_log, "/tmp/a \"b\" \\c");
    conf_free(conf);
}

Test(conf, missing_final_newline_and_crlf)
{
    struct conf *conf = load_ok("global {\r\n  workers 3;\r\n}");
    cr_assert_eq(conf->global.workers, 3);
    conf_free(conf);
}

Test(conf, many_servers_grow_the_array)
{
    char *text = malloc(64 * 1024);
    cr_assert_not_null(text);
    size_t len = (size_t)snprintf(text, 64 * 1024, "backend big {\n");
    for (int i = 0; i < 1000; i++) {
        len += (size_t)snprintf(text + len, 64 * 1024 - len, "server s%d 10.0.%d.%d:80;\n", i,
                                i / 256, i % 256);
    }
    (void)snprintf(text + len, 64 * 1024 - len, "}\n");
    struct conf *conf = load_ok(text);
    cr_assert_eq(conf->backends[0].n_servers, 1000);
    cr_assert_str_eq(conf->backends[0].servers[999].name, "s999");
    cr_assert_str_eq(conf->backends[0].servers[999].addr.text, "10.0.3.231:80");
    conf_free(conf);
    free(text);
}

Test(conf, load_string_resolves_localhost)
{
    const char *text = "backend b { server a localhost:80; }";
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_string("t.conf", text, strlen(text), &conf, &errs);
    cr_assert_eq(rc, 0, "%s", errs.text ? errs.text : "");
    const char *got = conf->backends[0].servers[0].addr.text;
    cr_assert(strcmp(got, "127.0.0.1:80") == 0 || strcmp(got, "[::1]:80") == 0, "%s", got);
    conf_free(conf);
    conf_errors_fini(&errs);
}

Test(conf, free_accepts_null)
{
    conf_free(NULL);
    conf_errors_fini(NULL);
}

/* ------------------------------------------------------------------------------------------
 * Suggestions (value parsers are tested in test_conf_value.c)
 * ------------------------------------------------------------------------------------------ */

Test(conf, edit_distance_and_matches)
{
    cr_assert_eq(edit_distance("upstrem", "upstream"), 1);
    cr_assert_eq(edit_distance("wieght", "weight"), 1);
    cr_assert_eq(edit_distance("", "abc"), 3);
    cr_assert_eq(edit_distance("kitten", "sitting"), 3);
    struct conf_match m;
    conf_match_init(&m);
    conf_match_try(&m, "balanse", "bind");
    conf_match_try(&m, "balanse", "balance");
    cr_assert_str_eq(m.best, "balance");
    conf_match_init(&m);
    conf_match_try(&m, "xyz", "balance");
    cr_assert_null(m.best);
    conf_match_init(&m);
    conf_match_try(&m, "mode", "mode"); /* identical is not a suggestion */
    cr_assert_null(m.best);
}

/* ------------------------------------------------------------------------------------------
 * Errors, one by one, with their exact text
 * ------------------------------------------------------------------------------------------ */

Test(conf_errors, unknown_directive_with_suggestion)
{
    expect_errors("backend web {\n  server a 1.2.3.4:80;\n  balanse roundrobin;\n}\n",
                  "t.conf:3:3: error: unknown directive \"balanse\" (did you mean \"balance\"?)\n");
    expect_errors(
        "frontnd www { }\n",
        "t.conf:1:1: error: unknown directive \"frontnd\" (did you mean \"frontend\"?)\n");
}

Test(conf_errors, unknown_directive_without_suggestion)
{
    expect_errors("global { upstrem x; }\n", "t.conf:1:10: error: unknown directive \"upstrem\"\n");
    /* An unknown block is skipped whole: nothing inside it is reported. */
    expect_errors("upstream x { server a; what; }\n",
                  "t.conf:1:1: error: unknown directive \"upstream\"\n");
}

Test(conf_errors, suggestion_only_among_directives_of_the_context)
{
    /* "bind" is one edit from "bid" but not valid in a backend. */
    expect_errors("backend b { server a 1.2.3.4:5; bid :80; }\n",
                  "t.conf:1:33: error: unknown directive \"bid\"\n");
}

Test(conf_errors, wrong_context)
{
    expect_errors("global { bind :80; }\n",
                  "t.conf:1:10: error: directive \"bind\" is not allowed in global "
                  "(allowed in: frontend)\n");
    expect_errors("workers 4;\n",
                  "t.conf:1:1: error: directive \"workers\" is not allowed at top level "
                  "(allowed in: global)\n");
    expect_errors("node n { address 10.0.0.1; roles lb; mode http; }\n",
                  "t.conf:1:38: error: directive \"mode\" is not allowed in node "
                  "(allowed in: frontend, backend, vip)\n");
    expect_errors("cluster c { backend b; }\n",
                  "t.conf:1:13: error: directive \"backend\" is not allowed in cluster "
                  "(allowed in: top level, frontend)\n");
}

Test(conf_errors, wrong_number_of_arguments)
{
    expect_errors("backend b { server a 1.2.3.4:5; mode http tcp; }\n",
                  "t.conf:1:43: error: \"mode\" takes 1 argument, got 2 (usage: mode http|tcp)\n");
    expect_errors("backend b { server a 1.2.3.4:5; retries; }\n",
                  "t.conf:1:33: error: \"retries\" takes 1 argument, got 0 (usage: retries N)\n");
    expect_errors("backend b { server a; }\n",
                  "t.conf:1:13: error: \"server\" takes at least 2 arguments, got 1 (usage: "
                  "server NAME HOST:PORT [weight N] [maxconn N] [backup] [disabled] [tls] "
                  "[tls_ca_file FILE] [tls_name NAME] [tls_verify required|none])\n");
    expect_errors(
        "global x { }\n",
        "t.conf:1:8: error: \"global\" takes no arguments, got 1 (usage: global { ... })\n");
    expect_errors(
        "node { address 10.0.0.1; roles lb; }\n",
        "t.conf:1:1: error: \"node\" takes 1 argument, got 0 (usage: node NAME { ... })\n");
    expect_errors(PAIR "frontend f { bind :1; backend web; access_log stderr json x; }\n",
                  "t.conf:3:59: error: \"access_log\" takes 1 to 2 arguments, got 3 (usage: "
                  "access_log off|stderr|PATH [combined|json])\n");
}

Test(conf_errors, bad_header_still_checks_the_body)
{
    expect_errors("frontend { bind :80; backend b; mood http; }\n",
                  "t.conf:1:1: error: \"frontend\" takes 1 argument, got 0 (usage: frontend NAME "
                  "{ ... })\n"
                  "t.conf:1:33: error: unknown directive \"mood\" (did you mean \"mode\"?)\n");
}

Test(conf_errors, duplicate_names)
{
    expect_errors("backend web { server a 1.2.3.4:5; }\nbackend web { server a 1.2.3.4:6; }\n",
                  "t.conf:2:9: error: duplicate backend \"web\" (first defined at line 1)\n");
    expect_errors("backend web {\n  server a 1.2.3.4:5;\n  server a 1.2.3.4:6;\n}\n",
                  "t.conf:3:10: error: duplicate server \"a\" in backend \"web\" (first defined at "
                  "line 2)\n");
    expect_errors(PAIR "frontend www { bind :8081; backend web; }\n",
                  "t.conf:3:10: error: duplicate name \"www\": a frontend or site of that name is "
                  "defined at line 1\n");
    expect_errors(
        "node n1 { address 10.0.0.1; roles lb; }\nnode n1 { address 10.0.0.2; roles db; }\n",
        "t.conf:2:6: error: duplicate node \"n1\" (first defined at line 1)\n");
}

Test(conf_errors, duplicate_directives)
{
    expect_errors("backend b {\n  server a 1.2.3.4:5;\n  check tcp;\n  check http;\n}\n",
                  "t.conf:4:3: error: duplicate \"check\" (first at line 3)\n");
    expect_errors("global { }\nglobal { workers 2; }\n",
                  "t.conf:2:1: error: duplicate \"global\" (first at line 1)\n");
    expect_errors("cluster a { }\ncluster b { }\n",
                  "t.conf:2:1: error: duplicate \"cluster\" (first at line 1)\n");
    expect_errors(PAIR "frontend f { bind :1; backend web; mode http; mode tcp; }\n",
                  "t.conf:3:47: error: duplicate \"mode\" (first at line 3)\n");
}

Test(conf_errors, frontend_without_bind_or_backend)
{
    expect_errors(PAIR "frontend api { backend web; }\n",
                  "t.conf:3:1: error: frontend \"api\" has no \"bind\" directive\n");
    expect_errors(PAIR "frontend api { bind :9000; }\n",
                  "t.conf:3:1: error: frontend \"api\" has no \"backend\" directive\n");
    expect_errors("frontend api { }\n",
                  "t.conf:1:1: error: frontend \"api\" has no \"bind\" directive\n"
                  "t.conf:1:1: error: frontend \"api\" has no \"backend\" directive\n");
}

Test(conf_errors, bad_required_value_is_not_also_missing)
{
    expect_errors(PAIR "frontend api { bind :0; backend web; }\n",
                  "t.conf:3:21: error: invalid value \":0\" for \"bind\": port must be between 1 "
                  "and 65535\n");
    expect_errors(PAIR "frontend api { bind \"\\x\"; backend web; }\n",
                  "t.conf:3:22: error: invalid escape \"\\x\" in string (only \\\" and \\\\ are "
                  "allowed)\n");
}

Test(conf_errors, backend_without_server)
{
    expect_errors("backend web { balance leastconn; }\n",
                  "t.conf:1:1: error: backend \"web\" has no \"server\" directive\n");
}

Test(conf_errors, node_requires_address_and_roles)
{
    expect_errors("node n1 { }\n", "t.conf:1:1: error: node \"n1\" has no \"address\" directive\n"
                                   "t.conf:1:1: error: node \"n1\" has no \"roles\" directive\n");
    expect_errors("node n1 { address 10.0.0.1; roles lb lbb db; }\n",
                  "t.conf:1:38: error: invalid value \"lbb\" for \"roles\": expected one of lb, "
                  "web, app, db (did you mean \"lb\"?)\n");
    expect_errors("node n1 { address 10.0.0.1; roles db db; }\n",
                  "t.conf:1:38: error: role \"db\" listed twice\n");
    expect_errors("node n1 { address \"10.0.0.1 x\"; roles db; }\n",
                  "t.conf:1:19: error: invalid value \"10.0.0.1 x\" for \"address\": expected an "
                  "IP address or a host name\n");
}

Test(conf_errors, undefined_backend_at_its_argument)
{
    expect_errors("frontend www {\n  bind :80;\n  backend wbe;\n}\n"
                  "backend web { server a 1.2.3.4:5; }\n",
                  "t.conf:3:11: error: unknown backend \"wbe\" (did you mean \"web\"?)\n");
    expect_errors("frontend www { bind :80; backend api; }\n",
                  "t.conf:1:34: error: unknown backend \"api\"\n");
}

Test(conf_errors, mode_mismatch)
{
    expect_errors("frontend pg { bind :5432; mode tcp; backend web; }\n"
                  "backend web { server a 1.2.3.4:5; }\n",
                  "t.conf:1:45: error: mode mismatch: frontend \"pg\" is tcp but backend \"web\" "
                  "is http\n");
    expect_errors("frontend www { bind :80; backend db; }\n"
                  "backend db { mode tcp; server a 1.2.3.4:5; }\n",
                  "t.conf:1:34: error: mode mismatch: frontend \"www\" is http but backend \"db\" "
                  "is tcp\n");
}

Test(conf_errors, weight_out_of_range)
{
    expect_errors("backend b { server a 1.2.3.4:5 weight 0; }\n",
                  "t.conf:1:39: error: invalid value \"0\" for \"weight\": must be between 1 and "
                  "256\n");
    expect_errors("backend b { server a 1.2.3.4:5 weight 257; }\n",
                  "t.conf:1:39: error: invalid value \"257\" for \"weight\": must be between 1 and "
                  "256\n");
    expect_errors(
        "backend b { server a 1.2.3.4:5 weight heavy; }\n",
        "t.conf:1:39: error: invalid value \"heavy\" for \"weight\": expected a number\n");
}

Test(conf_errors, server_options)
{
    expect_errors("backend b { server a 1.2.3.4:5 wieght 2; }\n",
                  "t.conf:1:32: error: unknown server option \"wieght\" (did you mean "
                  "\"weight\"?)\n");
    expect_errors("backend b { server a 1.2.3.4:5 weight; }\n",
                  "t.conf:1:32: error: server option \"weight\" needs a value (usage: weight "
                  "1..256)\n");
    expect_errors("backend b { server a 1.2.3.4:5 backup backup; }\n",
                  "t.conf:1:39: error: server option \"backup\" given twice\n");
    expect_errors("backend b { server \"a b\" :5; }\n",
                  "t.conf:1:20: error: invalid server name \"a b\": a name is 1-63 letters, "
                  "digits, '-', '_' or '.'\n"
                  "t.conf:1:26: error: invalid server address \":5\": missing host (expected "
                  "HOST:PORT)\n");
    expect_errors("backend b { server a example.com:80; }\n",
                  "t.conf:1:22: error: invalid server address \"example.com:80\": host names are "
                  "not resolved here, use an IP address\n");
}

Test(conf_errors, check_lines)
{
    expect_errors("backend b { server a 1.2.3.4:5; check http status 399-200; }\n",
                  "t.conf:1:51: error: invalid value \"399-200\" for \"status\": expected CODE or "
                  "MIN-MAX with 100 <= MIN <= MAX <= 599\n");
    expect_errors("backend b { server a 1.2.3.4:5; check http status 99; }\n",
                  "t.conf:1:51: error: invalid value \"99\" for \"status\": expected CODE or "
                  "MIN-MAX with 100 <= MIN <= MAX <= 599\n");
    expect_errors("backend b { server a 1.2.3.4:5; check http status 200-600; }\n",
                  "t.conf:1:51: error: invalid value \"200-600\" for \"status\": expected CODE or "
                  "MIN-MAX with 100 <= MIN <= MAX <= 599\n");
    expect_errors("backend b { server a 1.2.3.4:5; check http status 2xx; }\n",
                  "t.conf:1:51: error: invalid value \"2xx\" for \"status\": expected CODE or "
                  "MIN-MAX with 100 <= MIN <= MAX <= 599\n");
    expect_errors("backend b { server a 1.2.3.4:5; check tcp path /x; }\n",
                  "t.conf:1:43: error: check option \"path\" is not allowed in a tcp check\n");
    expect_errors("backend b { server a 1.2.3.4:5; check udp; }\n",
                  "t.conf:1:39: error: invalid value \"udp\" for \"check\": expected one of tcp, "
                  "http (did you mean \"tcp\"?)\n");
    expect_errors("backend b { server a 1.2.3.4:5; check http interval 1s interval 2s; }\n",
                  "t.conf:1:56: error: check option \"interval\" given twice\n");
    expect_errors("backend b { server a 1.2.3.4:5; check http method get path x; }\n",
                  "t.conf:1:51: error: invalid value \"get\" for \"method\": expected an uppercase "
                  "HTTP method such as GET or HEAD\n"
                  "t.conf:1:60: error: invalid value \"x\" for \"path\": expected a path starting "
                  "with \"/\", without spaces or control characters, of at most 255 bytes\n");
    expect_errors("backend b { server a 1.2.3.4:5; check http host \"a b\"; }\n",
                  "t.conf:1:49: error: invalid value \"a b\" for \"host\": expected a host name, "
                  "optionally with :PORT\n");
    expect_errors("backend b { server a 1.2.3.4:5; check http interval 1ms; }\n",
                  "t.conf:1:53: error: invalid value \"1ms\" for \"interval\": must be between "
                  "10ms and 1h\n");
}

Test(conf_errors, check_status_single_code)
{
    struct conf *conf = load_ok("backend b { server a 1.2.3.4:5; check http status 204; }");
    cr_assert_eq(conf->backends[0].check.status_min, 204);
    cr_assert_eq(conf->backends[0].check.status_max, 204);
    conf_free(conf);
}

Test(conf_errors, rise_fall_zero)
{
    expect_errors(
        "backend b { server a 1.2.3.4:5; check tcp rise 0 fall 0; }\n",
        "t.conf:1:48: error: invalid value \"0\" for \"rise\": must be between 1 and 100\n"
        "t.conf:1:55: error: invalid value \"0\" for \"fall\": must be between 1 and 100\n");
}

Test(conf_errors, duplicate_bind_addresses)
{
    expect_errors(PAIR "frontend api {\n  bind 0.0.0.0:8080;\n  backend web;\n}\n",
                  "t.conf:4:8: error: duplicate bind address 0.0.0.0:8080 (already bound by "
                  "frontend \"www\" at line 1)\n");
    expect_errors("frontend www { bind :80; bind *:80; backend web; }\n"
                  "backend web { server a 1.2.3.4:5; }\n",
                  "t.conf:1:31: error: duplicate bind address 0.0.0.0:80 (already bound by "
                  "frontend \"www\" at line 1)\n");
    expect_errors("global { admin :8080; }\n" PAIR,
                  "t.conf:2:21: error: duplicate bind address 0.0.0.0:8080 (it is the admin "
                  "address)\n");
    expect_errors(PAIR "global { admin :8080; }\n",
                  "t.conf:3:16: error: admin address 0.0.0.0:8080 is also bound by frontend "
                  "\"www\"\n");
}

Test(conf_errors, values_out_of_range_say_the_range)
{
    expect_errors(PAIR "frontend f { bind :1; backend web; maxconn 0; }\n",
                  "t.conf:3:44: error: invalid value \"0\" for \"maxconn\": must be between 1 and "
                  "1000000\n");
    expect_errors(
        PAIR "frontend f { bind :1; backend web; max_header 100; }\n",
        "t.conf:3:47: error: invalid value \"100\" for \"max_header\": must be between 1k "
        "and 1m\n");
    expect_errors(PAIR "frontend f { bind :1; backend web; timeout_idle 25h; }\n",
                  "t.conf:3:49: error: invalid value \"25h\" for \"timeout_idle\": must be between "
                  "1ms and 24h\n");
    expect_errors(PAIR "frontend f { bind :1; backend web; timeout_idle 0s; }\n",
                  "t.conf:3:49: error: invalid value \"0s\" for \"timeout_idle\": must be between "
                  "1ms and 24h\n");
    expect_errors("global { workers 5000; }\n",
                  "t.conf:1:18: error: invalid value \"5000\" for \"workers\": must be between 0 "
                  "and 1024\n");
    expect_errors("global { timeout_drain 2h; }\n",
                  "t.conf:1:24: error: invalid value \"2h\" for \"timeout_drain\": must be between "
                  "0ms and 1h\n");
}

Test(conf_errors, bare_number_duration)
{
    expect_errors("backend b { server a 1.2.3.4:5; timeout_connect 5; }\n",
                  "t.conf:1:49: error: invalid value \"5\" for \"timeout_connect\": duration needs "
                  "a unit (ms, s, m, h)\n");
}

Test(conf_errors, enums)
{
    expect_errors("backend b { server a 1.2.3.4:5; balance roundrobbin; }\n",
                  "t.conf:1:41: error: invalid value \"roundrobbin\" for \"balance\": expected one "
                  "of roundrobin, leastconn, source, random (did you mean \"roundrobin\"?)\n");
    expect_errors("backend b { server a 1.2.3.4:5; balance source X-User; }\n",
                  "t.conf:1:48: error: \"balance source\" takes no argument\n");
    expect_errors(
        "global { log_level verbose; }\n",
        "t.conf:1:20: error: invalid value \"verbose\" for \"log_level\": expected one of "
        "error, warn, notice, info, debug\n");
    expect_errors(PAIR "frontend f { bind :1; backend web; access_log stderr xml; }\n",
                  "t.conf:3:54: error: invalid value \"xml\" for \"access_log\": expected one of "
                  "combined, json\n");
}

Test(conf_errors, names)
{
    expect_errors("backend \"we b\" { server a 1.2.3.4:5; }\n",
                  "t.conf:1:9: error: invalid backend name \"we b\": a name is 1-63 letters, "
                  "digits, '-', '_' or '.'\n");
    expect_errors("cluster \"\" { }\n",
                  "t.conf:1:9: error: invalid cluster name \"\": a name is 1-63 letters, digits, "
                  "'-', '_' or '.'\n");
    expect_errors("global { error_log \"\"; }\n",
                  "t.conf:1:20: error: invalid value \"\" for \"error_log\": must be 1 to 1023 "
                  "bytes long\n");
}

Test(conf_errors, block_where_a_directive_is_expected)
{
    expect_errors("backend b { server a 1.2.3.4:5; mode http { x; } }\n",
                  "t.conf:1:43: error: \"mode\" does not take a block (usage: mode http|tcp)\n");
    expect_errors("{ workers 2; }\n",
                  "t.conf:1:1: error: unexpected \"{\" (a block must follow a directive)\n");
}

Test(conf_errors, directive_where_a_block_is_expected)
{
    expect_errors(
        "frontend www;\n",
        "t.conf:1:13: error: \"frontend\" needs a block (usage: frontend NAME { ... })\n");
    expect_errors("global\n", "t.conf:1:7: error: expected \"{\" after \"global\"\n");
}

Test(conf_errors, missing_semicolon_before_brace)
{
    expect_errors("backend b { server a 1.2.3.4:5 }\n",
                  "t.conf:1:31: error: expected \";\" after \"1.2.3.4:5\"\n");
}

Test(conf_errors, missing_semicolon_at_end_of_line)
{
    expect_errors("backend b {\n    server a 1.2.3.4:5\n    balance leastconn;\n}\n",
                  "t.conf:2:23: error: expected \";\" after \"1.2.3.4:5\"\n");
    /* The statement is still applied: only the ';' is missing. */
    expect_errors("global {\n  workers 2\n  log_level debug\n}\nglobal { }\n",
                  "t.conf:2:12: error: expected \";\" after \"2\"\n"
                  "t.conf:3:18: error: expected \";\" after \"debug\"\n"
                  "t.conf:5:1: error: duplicate \"global\" (first at line 1)\n");
}

Test(conf_errors, missing_semicolon_at_end_of_file)
{
    expect_errors(
        "global { workers 2; }\nnode n { address 10.0.0.1; roles db; }\ncluster c { state_dir /x",
        "t.conf:3:25: error: expected \";\" after \"/x\"\n"
        "t.conf:3:25: error: expected \"}\" at end of file (cluster \"c\" opened at line "
        "3)\n");
}

Test(conf_errors, missing_close_brace_at_end_of_file)
{
    expect_errors(
        "backend web {\n  server a 1.2.3.4:5;\n",
        "t.conf:3:1: error: expected \"}\" at end of file (backend \"web\" opened at line "
        "1)\n");
}

Test(conf_errors, missing_close_brace_before_next_block)
{
    expect_errors(
        "frontend www {\n  bind :80;\n  backend web;\n\nbackend web {\n"
        "  server a 1.2.3.4:5;\n}\n",
        "t.conf:5:1: error: expected \"}\" before \"backend\" (frontend \"www\" opened at "
        "line 1)\n");
    expect_errors("backend web {\n  server a 1.2.3.4:5;\nglobal {\n  workers 1;\n}\n",
                  "t.conf:3:1: error: expected \"}\" before \"global\" (backend \"web\" opened at "
                  "line 1)\n");
}

Test(conf_errors, stray_punctuation)
{
    expect_errors("global { };\n", "t.conf:1:11: error: unexpected \";\"\n");
    expect_errors("global { workers 1; } }\n", "t.conf:1:23: error: unexpected \"}\"\n");
}

Test(conf_errors, lexing_errors)
{
    expect_errors("global { error_log \"/tmp/x; }\n",
                  "t.conf:1:20: error: unterminated string\n"
                  "t.conf:2:1: error: expected \"}\" at end of file (global opened at line 1)\n");
    expect_errors("global { workers \x01; }\n", "t.conf:1:18: error: invalid character 0x01\n");
    expect_errors("global {\n\tworkers 1;\n}\n\x7f", "t.conf:4:1: error: invalid character 0x7f\n");
}

Test(conf_errors, nul_byte_in_input)
{
    const char text[] = "global { workers 1; }\0";
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, sizeof(text) - 1, 0, &conf, &errs);
    cr_assert_eq(rc, -KEEL_ECONFIG);
    cr_assert_str_eq(errs.text, "t.conf:1:22: error: invalid character 0x00\n");
    conf_errors_fini(&errs);
}

Test(conf_errors, multiple_errors_reported_together_in_position_order)
{
    expect_errors(
        "global {\n"
        "    workers many;\n"
        "}\n"
        "frontend www {\n"
        "    bind :80;\n"
        "    backend wbe;\n"
        "    timeout_idle 10;\n"
        "}\n"
        "frontend api { bind :80; backend web; }\n"
        "backend web {\n"
        "    server a 1.2.3.4:5 weight 300;\n"
        "    balanse roundrobin;\n"
        "}\n"
        "backend empty { }\n",
        "t.conf:2:13: error: invalid value \"many\" for \"workers\": expected a number\n"
        "t.conf:6:13: error: unknown backend \"wbe\" (did you mean \"web\"?)\n"
        "t.conf:7:18: error: invalid value \"10\" for \"timeout_idle\": duration needs a "
        "unit (ms, s, m, h)\n"
        "t.conf:9:21: error: duplicate bind address 0.0.0.0:80 (already bound by "
        "frontend \"www\" at line 4)\n"
        "t.conf:11:31: error: invalid value \"300\" for \"weight\": must be between 1 and "
        "256\n"
        "t.conf:12:5: error: unknown directive \"balanse\" (did you mean \"balance\"?)\n"
        "t.conf:14:1: error: backend \"empty\" has no \"server\" directive\n");
}

Test(conf_errors, too_many_errors_are_capped)
{
    char text[2048] = "";
    size_t len = 0;
    for (int i = 1; i <= 30; i++) {
        len += (size_t)snprintf(text + len, sizeof(text) - len, "oops%d;\n", i);
    }
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, len, 0, &conf, &errs);
    cr_assert_eq(rc, -KEEL_ECONFIG);
    cr_assert_eq(errs.count, CONF_MAX_ERRORS);
    cr_assert(strstr(errs.text, "t.conf:20:1: error: unknown directive \"oops20\"\n") != NULL);
    cr_assert_null(strstr(errs.text, "oops21"));
    const char *last = "t.conf: error: too many errors, stopping after 20\n";
    cr_assert_str_eq(errs.text + errs.len - strlen(last), last);
    conf_errors_fini(&errs);
}

Test(conf_errors, error_count_matches_lines)
{
    struct conf *conf = NULL;
    struct conf_errors errs;
    const char *text = "a;\nb;\nc;\n";
    cr_assert_eq(conf_load_mem("t.conf", text, strlen(text), 0, &conf, &errs), -KEEL_ECONFIG);
    cr_assert_eq(errs.count, 3);
    conf_errors_fini(&errs);
}

/* `return CODE URL` becomes a Location header and `cache_control` a Cache-Control header of
 * the same answer: one line each, within their fields (http_static.c sizes its buffers from
 * them). A URL has no blank a client could split on; a header value no control character but
 * the tab. */
#define LOC_FE(body) "frontend www { bind :8080; location /a/ { " body " } }\n"

Test(conf, return_and_cache_control_values)
{
    struct conf *conf = load_ok(LOC_FE("return 308 \"https://a.example/x?q=1&r=%20\"; "
                                       "cache_control \"public,\tmax-age=60\";"));
    const struct conf_location *loc = &conf->frontends[0].locations[0];
    cr_assert_eq(loc->return_status, 308);
    cr_assert_str_eq(loc->return_text, "https://a.example/x?q=1&r=%20");
    cr_assert_str_eq(loc->cache_control, "public,\tmax-age=60");
    conf_free(conf);
    conf = load_ok(LOC_FE("return 200 \"two words\tand a tab\";"));
    cr_assert_str_eq(conf->frontends[0].locations[0].return_text, "two words\tand a tab");
    conf_free(conf);
    char text[1024], url[600];
    memset(url, 'x', 511);
    url[0] = '/';
    url[511] = '\0';
    (void)snprintf(text, sizeof(text), LOC_FE("return 301 %s;"), url);
    conf = load_ok(text);
    cr_assert_eq(strlen(conf->frontends[0].locations[0].return_text), 511);
    conf_free(conf);
}

Test(conf_errors, return_url_and_cache_control_stay_one_header_line)
{
    expect_errors(LOC_FE("return 302 \"https://a.example/x y\";"),
                  "t.conf:1:54: error: invalid URL for \"return 302\": no spaces or control "
                  "characters (it is the Location header)\n");
    expect_errors(LOC_FE("return 301 \"/x\tSet-Cookie:a=b\";"),
                  "t.conf:1:54: error: invalid URL for \"return 301\": no spaces or control "
                  "characters (it is the Location header)\n");
    expect_errors(LOC_FE("return 307 \"/x\rSet-Cookie:a=b\";"),
                  "t.conf:1:54: error: invalid URL for \"return 307\": no spaces or control "
                  "characters (it is the Location header)\n");
    expect_errors(LOC_FE("return 200 \"one\rtwo\";"),
                  "t.conf:1:54: error: invalid text for \"return\": it must be one line\n");
    expect_errors(LOC_FE("return 301 /; cache_control \"max-age=1\rSet-Cookie: a=b\";"),
                  "t.conf:1:71: error: invalid value for \"cache_control\": control character "
                  "0x0d (it is a header value)\n");
    expect_errors(LOC_FE("return 301 /; cache_control \"max-age=1\vx\";"),
                  "t.conf:1:71: error: invalid value for \"cache_control\": control character "
                  "0x0b (it is a header value)\n");
}

Test(conf_errors, return_text_longer_than_its_field)
{
    char text[1200], url[600];
    memset(url, 'x', 512);
    url[0] = '/';
    url[512] = '\0';
    (void)snprintf(text, sizeof(text), LOC_FE("return 301 %s;"), url);
    expect_errors(text, "t.conf:1:54: error: invalid URL for \"return\": 512 bytes, at most 511\n");
    (void)snprintf(text, sizeof(text), LOC_FE("return 200 %s;"), url);
    expect_errors(text,
                  "t.conf:1:54: error: invalid text for \"return\": 512 bytes, at most 511\n");
}

/* ------------------------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------------------------ */

Test(conf_file, missing_file)
{
    struct conf *conf = (struct conf *)1;
    struct conf_errors errs;
    int rc = conf_load_file("/nonexistent/keel.conf", &conf, &errs);
    cr_assert_eq(rc, -ENOENT);
    cr_assert_null(conf);
    cr_assert_str_eq(errs.text,
                     "error: cannot open /nonexistent/keel.conf: No such file or directory\n");
    cr_assert_eq(errs.count, 1);
    conf_errors_fini(&errs);
}

Test(conf_file, directory)
{
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_file("/", &conf, &errs);
    cr_assert_eq(rc, -EISDIR);
    cr_assert_str_eq(errs.text, "error: cannot read /: Is a directory\n");
    conf_errors_fini(&errs);
}

static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/test_conf_XXXXXX");
    cr_assert_not_null(path);
    int fd = mkstemp(path);
    cr_assert_neq(fd, -1);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

Test(conf_file, valid_file)
{
    char *path = write_temp(PAIR);
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_file(path, &conf, &errs);
    cr_assert_eq(rc, 0, "%s", errs.text ? errs.text : "");
    cr_assert_str_eq(conf->frontends[0].pos.file, path);
    conf_free(conf);
    conf_errors_fini(&errs);
    unlink(path);
    free(path);
}

Test(conf_file, errors_name_the_file)
{
    char *path = write_temp("global {\n  wokers 2;\n}\n");
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_file(path, &conf, &errs);
    cr_assert_eq(rc, -KEEL_ECONFIG);
    char want[256];
    snprintf(want, sizeof(want),
             "%s:2:3: error: unknown directive \"wokers\" (did you mean \"workers\"?)\n", path);
    cr_assert_str_eq(errs.text, want);
    conf_errors_fini(&errs);
    unlink(path);
    free(path);
}

/* ------------------------------------------------------------------------------------------
 * Tables
 * ------------------------------------------------------------------------------------------ */

Test(conf_tables, every_directive_is_well_formed)
{
    size_t n_sections;
    const struct conf_section *const *sections = conf_registry_sections(&n_sections);
    cr_assert_gt(n_sections, 0);
    static const uint32_t ctxs[] = {CONF_CTX_MAIN, CONF_CTX_CLUSTER,  CONF_CTX_GLOBAL,
                                    CONF_CTX_NODE, CONF_CTX_FRONTEND, CONF_CTX_BACKEND};
    size_t per_ctx[6] = {0};
    for (size_t s = 0; s < n_sections; s++) {
        for (size_t i = 0; i < sections[s]->n_directives; i++) {
            const struct conf_directive *d = &sections[s]->directives[i];
            cr_assert_not_null(d->name);
            cr_assert_not_null(d->syntax, "%s", d->name);
            cr_assert_not_null(d->help, "%s", d->name);
            cr_assert_neq(d->contexts, 0, "%s", d->name);
            cr_assert_leq(d->min_args, d->max_args, "%s", d->name);
            if (d->block_ctx != 0) {
                cr_assert_not_null(d->open, "%s", d->name);
                cr_assert_null(d->set, "%s", d->name);
            } else {
                cr_assert_not_null(d->set, "%s", d->name);
            }
            /* A generic setter writes at an offset, so it serves exactly one context. */
            cr_assert_eq(__builtin_popcount(d->contexts), 1, "%s", d->name);
            for (size_t c = 0; c < 6; c++) {
                per_ctx[c] += (d->contexts & ctxs[c]) != 0;
            }
            for (size_t k = 0; k < i; k++) { /* unique per context */
                const struct conf_directive *o = &sections[s]->directives[k];
                cr_assert(strcmp(o->name, d->name) != 0 || (o->contexts & d->contexts) == 0, "%s",
                          d->name);
            }
        }
    }
    for (size_t c = 0; c < 6; c++) {
        cr_assert_lt(per_ctx[c], CONF_SEEN_MAX);
    }
}

/* SPDX-License-Identifier: MIT */
/* Unit tests of core/conf_node.c: narrowing a cluster file to one node (roles, backends,
 * addresses, X-Served-By, overlapping listeners) and server addresses that name nodes. */
#include <criterion/criterion.h>

#include "core/conf_node.c"

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

#define CLUSTER                                                                                    \
    "global { admin :9100; }\n"                                                                    \
    "node lb1 { address 127.0.0.10; roles lb; }\n"                                                 \
    "node web1 { address 127.0.0.11; roles web app; }\n"                                           \
    "frontend www { bind :8080; backend web; }\n"                                                  \
    "backend web { server web1 web1:8080; server web2 web2:8080; }\n"                              \
    "site site { bind :8080; location /static/ { root /tmp; } location / { proxy app; } }\n"       \
    "backend app { server app1 web1:9000; server app2 web2:9000; }\n"                              \
    "backend unused { server u 127.0.0.1:1; }\n"                                                   \
    "app demo { listen :9000; run builtin demo; }\n"                                               \
    "node web2 { address 127.0.0.12; roles web app; }\n"

Test(conf_node, server_addresses_name_nodes_defined_before_or_after)
{
    struct conf *conf = load(CLUSTER);
    const struct conf_backend *web = conf_find_backend(conf, "web");
    cr_assert_str_eq(web->servers[0].addr.text, "127.0.0.11:8080");
    cr_assert_str_eq(web->servers[1].addr.text, "127.0.0.12:8080"); /* node after the backend */
    conf_free(conf);
}

Test(conf_node, lb_node_keeps_frontends_and_their_backends)
{
    struct conf *conf = load(CLUSTER);
    struct errbuf eb = {{0}};
    cr_assert_eq(conf_apply_node(conf, "lb1", CONF_ADDR_NO_RESOLVE, &eb), 0, "%s", eb.msg);
    cr_assert_eq(conf->n_frontends, 1);
    cr_assert_str_eq(conf->frontends[0].name, "www");
    cr_assert_str_eq(conf->frontends[0].binds[0].text, "127.0.0.10:8080");
    cr_assert_str_eq(conf->frontends[0].served_by, "");
    cr_assert_eq(conf->n_backends, 1);
    cr_assert_str_eq(conf->backends[0].name, "web");
    cr_assert_eq(conf->frontends[0].backend_index, 0);
    cr_assert_str_eq(conf->global.admin.text, "127.0.0.10:9100");
    conf_free(conf);
}

Test(conf_node, web_node_keeps_sites_renumbers_backends_and_serves_by_name)
{
    struct conf *conf = load(CLUSTER);
    struct errbuf eb = {{0}};
    cr_assert_eq(conf_apply_node(conf, "web2", CONF_ADDR_NO_RESOLVE, &eb), 0, "%s", eb.msg);
    cr_assert_eq(conf->n_frontends, 1);
    const struct conf_frontend *fe = &conf->frontends[0];
    cr_assert_str_eq(fe->name, "site");
    cr_assert_str_eq(fe->binds[0].text, "127.0.0.12:8080");
    cr_assert_str_eq(fe->served_by, "web2");
    cr_assert_eq(conf->n_backends, 1);
    cr_assert_str_eq(conf->backends[0].name, "app");
    cr_assert_eq(fe->locations[1].action, CONF_LOC_PROXY);
    cr_assert_eq(fe->locations[1].backend_index, 0);
    cr_assert_str_eq(conf->apps[0].listen.text, "127.0.0.12:9000");
    cr_assert_str_eq(conf->global.admin.text, "127.0.0.12:9100");
    conf_free(conf);
}

Test(conf_node, without_a_node_everything_runs_as_written)
{
    struct conf *conf = load("frontend www { bind :8080; backend web; }\n"
                             "site s { bind :8081; backend web; }\n"
                             "backend web { server a 127.0.0.1:1; }\n");
    struct errbuf eb = {{0}};
    cr_assert_eq(conf_apply_node(conf, NULL, CONF_ADDR_NO_RESOLVE, &eb), 0, "%s", eb.msg);
    cr_assert_eq(conf->n_frontends, 2);
    cr_assert_str_eq(conf->frontends[0].binds[0].text, "0.0.0.0:8080");
    cr_assert_str_eq(conf->frontends[1].served_by, "");
    conf_free(conf);
}

Test(conf_node, unknown_node_is_an_error)
{
    struct conf *conf = load(CLUSTER);
    struct errbuf eb = {{0}};
    cr_assert_eq(conf_apply_node(conf, "web9", CONF_ADDR_NO_RESOLVE, &eb), -KEEL_ECONFIG);
    cr_assert_str_eq(eb.msg, "node \"web9\" is not defined in the configuration");
    conf_free(conf);
}

Test(conf_node, a_node_with_both_roles_may_not_bind_one_port_twice)
{
    struct conf *conf = load("node box { address 127.0.0.5; roles lb web; }\n"
                             "frontend www { bind :8080; backend web; }\n"
                             "site s { bind 127.0.0.5:8080; backend web; }\n"
                             "backend web { server a 127.0.0.1:1; }\n");
    struct errbuf eb = {{0}};
    cr_assert_eq(conf_apply_node(conf, "box", CONF_ADDR_NO_RESOLVE, &eb), -KEEL_ECONFIG);
    cr_assert_str_eq(eb.msg, "t.conf:3: bind 127.0.0.5:8080 of \"s\" overlaps bind "
                             "127.0.0.5:8080 of \"www\" on the same node");
    conf_free(conf);
}

Test(conf_node, a_wildcard_overlaps_every_address_on_its_port)
{
    struct conf *conf = load("frontend www { bind :8080; backend web; }\n"
                             "site s { bind 127.0.0.5:8080; backend web; }\n"
                             "backend web { server a 127.0.0.1:1; }\n");
    struct errbuf eb = {{0}};
    cr_assert_eq(conf_apply_node(conf, NULL, CONF_ADDR_NO_RESOLVE, &eb), -KEEL_ECONFIG);
    cr_assert(strstr(eb.msg, "overlaps bind 0.0.0.0:8080 of \"www\"") != NULL, "%s", eb.msg);
    conf_free(conf);
}

Test(conf_node, a_server_naming_no_node_is_resolved_or_reported)
{
    const char *text = "frontend www { bind :8080; backend web; }\n"
                       "backend web { server a nosuchnode:80; }\n";
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, strlen(text), CONF_LOAD_NO_RESOLVE, &conf, &errs);
    cr_assert_eq(rc, -KEEL_ECONFIG);
    cr_assert_str_eq(errs.text, "t.conf:2:24: error: invalid server address \"nosuchnode:80\": "
                                "host names are not resolved here, use an IP address\n");
    conf_errors_fini(&errs);
}

Test(conf_node, roles_text_names_the_roles_in_order)
{
    char out[32];
    conf_roles_text(CONF_ROLE_APP | CONF_ROLE_WEB, out, sizeof(out));
    cr_assert_str_eq(out, "web app");
    conf_roles_text(CONF_ROLE_LB | CONF_ROLE_WEB | CONF_ROLE_APP | CONF_ROLE_DB, out, sizeof(out));
    cr_assert_str_eq(out, "lb web app db");
    conf_roles_text(CONF_ROLE_LB | CONF_ROLE_WEB, out, 6); /* truncated at a whole name */
    cr_assert_str_eq(out, "lb");
    conf_roles_text(0, out, sizeof(out));
    cr_assert_str_eq(out, "");
}

Test(conf_node, load_node_reports_the_first_error)
{
    struct conf *conf = NULL;
    struct errbuf eb = {{0}};
    cr_assert_lt(conf_load_node("/nonexistent/keel.conf", NULL, &conf, &eb), 0);
    cr_assert_null(conf);
    cr_assert(strstr(eb.msg, "/nonexistent/keel.conf") != NULL, "%s", eb.msg);
}

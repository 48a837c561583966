/* SPDX-License-Identifier: MIT */
/* Unit tests of lb/lb_conf_tls.c through loading whole configurations: `server ... tls` and
 * its options (tcp backends too), the backend's defaults and what a server inherits, the
 * name as written, and every error with its exact position (tls_* without tls, bad values,
 * an unreadable or empty CA file). */
#include <criterion/criterion.h>

#include "lb/lb_conf_tls.c"

#include <stdlib.h>
#include <unistd.h>

static struct conf *load_ok(const char *text, unsigned flags)
{
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, strlen(text), flags, &conf, &errs);
    cr_assert_eq(rc, 0, "unexpected errors:\n%s", errs.text ? errs.text : "(none)");
    conf_errors_fini(&errs);
    return conf;
}

static void expect_errors(const char *text, unsigned flags, const char *want)
{
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, strlen(text), flags, &conf, &errs);
    cr_assert_eq(rc, -KEEL_ECONFIG, "rc %d for:\n%s", rc, text);
    cr_assert_not_null(errs.text);
    cr_assert_str_eq(errs.text, want, "for:\n%s\ngot:\n%s", text, errs.text);
    conf_errors_fini(&errs);
}

#define FE "frontend www { bind :8080; backend web; }\n"

Test(lb_conf_tls, defaults_verify_required_and_the_host_as_written)
{
    struct conf *conf = load_ok(FE "backend web {\n"
                                   "  server a 127.0.0.1:8443 tls;\n"
                                   "  server b [::1]:8443 tls;\n"
                                   "  server c 127.0.0.1:8080;\n"
                                   "}\n",
                                CONF_LOAD_NO_RESOLVE);
    const struct conf_server *s = conf->backends[0].servers;
    cr_assert(s[0].tls.is_on);
    cr_assert_eq(s[0].tls.verify, CONF_TLS_VERIFY_REQUIRED);
    cr_assert_str_eq(s[0].tls.name, "127.0.0.1");
    cr_assert_str_eq(s[0].tls.ca_file, "");
    cr_assert_str_eq(s[1].tls.name, "::1");
    cr_assert_not(s[2].tls.is_on);
    conf_free(conf);
}

Test(lb_conf_tls, a_server_inherits_what_it_does_not_say)
{
    struct conf *conf = load_ok(FE "backend web {\n"
                                   "  server a 127.0.0.1:8443 tls;\n"
                                   "  server b 127.0.0.1:8444 tls tls_name b.internal "
                                   "tls_verify required tls_ca_file /b/ca.pem;\n"
                                   "  tls_ca_file /etc/ca.pem;\n"
                                   "  tls_name pool.internal;\n"
                                   "  tls_verify none;\n"
                                   "}\n",
                                CONF_LOAD_NO_RESOLVE);
    const struct conf_server *s = conf->backends[0].servers;
    cr_assert_eq(s[0].tls.verify, CONF_TLS_VERIFY_NONE);
    cr_assert_str_eq(s[0].tls.name, "pool.internal");
    cr_assert_str_eq(s[0].tls.ca_file, "/etc/ca.pem");
    cr_assert_eq(s[0].tls.ca_pos.line, 5, "an error about the file points where it was written");
    cr_assert_eq(s[1].tls.verify, CONF_TLS_VERIFY_REQUIRED);
    cr_assert_str_eq(s[1].tls.name, "b.internal");
    cr_assert_str_eq(s[1].tls.ca_file, "/b/ca.pem");
    conf_free(conf);
}

Test(lb_conf_tls, options_without_tls_are_errors)
{
    expect_errors(FE "backend web { server a 127.0.0.1:1 tls_name a.test; }\n",
                  CONF_LOAD_NO_RESOLVE,
                  "t.conf:2:36: error: tls option on server \"a\", which does not say \"tls\"\n");
    expect_errors(FE "backend web {\n  server a 127.0.0.1:1;\n  tls_verify none;\n}\n",
                  CONF_LOAD_NO_RESOLVE,
                  "t.conf:4:3: error: tls directive in backend \"web\", which has no \"server "
                  "... tls\"\n");
}

Test(lb_conf_tls, tls_in_a_tcp_backend)
{
    struct conf *conf = load_ok("frontend f { bind :8080; mode tcp; backend t; }\n"
                                "backend t { mode tcp; server a 127.0.0.1:1 tls; }\n",
                                CONF_LOAD_NO_RESOLVE);
    cr_assert(conf->backends[0].servers[0].tls.is_on);
    conf_free(conf);
}

Test(lb_conf_tls, bad_values)
{
    expect_errors(FE "backend web { server a 127.0.0.1:1 tls tls_verify maybe; }\n",
                  CONF_LOAD_NO_RESOLVE,
                  "t.conf:2:51: error: invalid value \"maybe\" for \"tls_verify\": expected "
                  "required or none\n");
    expect_errors(FE "backend web { server a 127.0.0.1:1 tls tls_name a..b; }\n",
                  CONF_LOAD_NO_RESOLVE,
                  "t.conf:2:49: error: invalid tls_name \"a..b\": expected a DNS name or an IP "
                  "address\n");
}

Test(lb_conf_tls, names)
{
    cr_assert(lb_conf_tls_name_ok("a.test"));
    cr_assert(lb_conf_tls_name_ok("a.test."));
    cr_assert(lb_conf_tls_name_ok("web1"));
    cr_assert(lb_conf_tls_name_ok("10.0.0.1"));
    cr_assert(lb_conf_tls_name_ok("fe80::1"));
    cr_assert_not(lb_conf_tls_name_ok(""));
    cr_assert_not(lb_conf_tls_name_ok("."));
    cr_assert_not(lb_conf_tls_name_ok("*.a.test"));
    cr_assert_not(lb_conf_tls_name_ok("a b"));
    char label[80];
    memset(label, 'a', 64);
    label[64] = '\0';
    cr_assert_not(lb_conf_tls_name_ok(label), "a label of 64 bytes");
}

Test(lb_conf_tls, unreadable_or_empty_ca_file_reported_where_written)
{
    expect_errors(
        FE "backend web {\n  server a 127.0.0.1:1 tls tls_ca_file /nonexistent/ca.pem;\n}\n", 0,
        "t.conf:3:40: error: cannot read CA file /nonexistent/ca.pem: No such file "
        "or directory\n");
    char path[] = "/tmp/keel-ca-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_neq(fd, -1);
    cr_assert_eq(write(fd, "junk\n", 5), 5);
    close(fd);
    char text[512];
    snprintf(text, sizeof(text),
             FE "backend web {\n  tls_ca_file %s;\n  server a 127.0.0.1:1 tls;\n}\n", path);
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, strlen(text), 0, &conf, &errs);
    unlink(path);
    cr_assert_eq(rc, -KEEL_ECONFIG);
    cr_assert(strncmp(errs.text, "t.conf:3:15: error: no usable PEM certificate in CA file", 56) ==
                  0,
              "%s", errs.text);
    conf_errors_fini(&errs);
}

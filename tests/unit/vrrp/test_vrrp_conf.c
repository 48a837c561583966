/* SPDX-License-Identifier: MIT */
/* Unit tests of vrrp/vrrp_conf.c: vip blocks, the priorities their order gives (rotated per
 * address in active-active), and every cross-block error with its position. */
#include <criterion/criterion.h>

#include "vrrp/vrrp_conf.c"

#include <arpa/inet.h>

static struct conf *load(const char *text)
{
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, strlen(text), CONF_LOAD_NO_RESOLVE, &conf, &errs);
    cr_assert_eq(rc, 0, "unexpected errors:\n%s", errs.text ? errs.text : "(none)");
    conf_errors_fini(&errs);
    return conf;
}

static void expect_errors(const char *text, const char *want)
{
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, strlen(text), CONF_LOAD_NO_RESOLVE, &conf, &errs);
    cr_assert_eq(rc, -KEEL_ECONFIG);
    cr_assert_str_eq(errs.text, want, "got:\n%s", errs.text);
    conf_errors_fini(&errs);
}

#define NODES                                                                                      \
    "node lb1 { address 10.0.0.11; roles lb; }\n"                                                  \
    "node lb2 { address 10.0.0.12; roles lb; }\n"                                                  \
    "node lb3 { address 10.0.0.13; roles lb; }\n"

Test(vrrp_conf, defaults_and_priorities_by_position)
{
    struct conf *conf = load(NODES "vip 10.0.0.100 { nodes lb2 lb1 lb3; vrid 7; interface e0; }\n");
    cr_assert_eq(conf->n_vips, 1);
    const struct conf_vip *v = &conf->vips[0];
    cr_assert_eq(v->mode, CONF_VIP_ACTIVE_PASSIVE);
    cr_assert_eq(v->advert_ms, 50);
    cr_assert_eq(v->prefix, 32);
    cr_assert(v->preempt && v->track && !v->unicast && !v->auth && !v->is_loopback);
    cr_assert_eq(vrrp_conf_n_routers(v), 1);
    cr_assert_eq(vrrp_conf_priority(v, 0, "lb2"), 200);
    cr_assert_eq(vrrp_conf_priority(v, 0, "lb1"), 150);
    cr_assert_eq(vrrp_conf_priority(v, 0, "lb3"), 100);
    cr_assert_eq(vrrp_conf_priority(v, 0, "web1"), 0);
    conf_free(conf);
}

Test(vrrp_conf, active_active_rotates_the_preference_per_address)
{
    struct conf *conf = load(NODES "vip 10.0.0.100 10.0.0.101 10.0.0.102 { nodes lb1 lb2 lb3; "
                                   "vrid 10; mode active-active; interface e0; "
                                   "priority lb3 255; }\n");
    const struct conf_vip *v = &conf->vips[0];
    cr_assert_eq(vrrp_conf_n_routers(v), 3);
    cr_assert_eq(vrrp_conf_priority(v, 0, "lb1"), 200);
    cr_assert_eq(vrrp_conf_priority(v, 1, "lb1"), 100);
    cr_assert_eq(vrrp_conf_priority(v, 1, "lb2"), 200);
    cr_assert_eq(vrrp_conf_priority(v, 2, "lb1"), 150);
    cr_assert_eq(vrrp_conf_priority(v, 2, "lb3"), 255); /* the override, whatever the router */
    conf_free(conf);
}

Test(vrrp_conf, loopback_addresses_need_no_interface)
{
    struct conf *conf = load("node a { address 127.0.0.61; roles lb; }\n"
                             "node b { address 127.0.0.62; roles lb; }\n"
                             "vip 127.0.0.160 { nodes a b; vrid 51; advert 100ms; port 11300; }\n");
    cr_assert(conf->vips[0].is_loopback);
    cr_assert_eq(conf->vips[0].advert_ms, 100);
    cr_assert_eq(conf->vips[0].port, 11300);
    conf_free(conf);
}

Test(vrrp_conf, errors_name_the_place)
{
    expect_errors(NODES "vip 10.0.0.100 { nodes lb1; vrid 1; }\n",
                  "t.conf:4:1: error: vip needs \"interface\" (only addresses in 127.0.0.0/8 do "
                  "without)\n");
    expect_errors(NODES "vip 10.0.0.100 127.0.0.1 { nodes lb1; vrid 1; interface e0; }\n",
                  "t.conf:4:1: error: vip mixes loopback and other addresses\n");
    expect_errors(NODES "vip 10.0.0.100 { nodes lb1; vrid 1; interface e0; auth on; }\n",
                  "t.conf:4:1: error: \"auth on\" needs the cluster's secret_file (cluster NAME { "
                  "secret_file PATH; })\n");
    expect_errors(NODES "node w { address 10.0.0.21; roles web; }\n"
                        "vip 10.0.0.100 { nodes lb1 w x; vrid 1; interface e0; }\n",
                  "t.conf:5:1: error: vip node \"w\" does not have the lb role\n"
                  "t.conf:5:1: error: vip node \"x\" is not defined\n");
    expect_errors(NODES "vip 10.0.0.100 10.0.0.101 { nodes lb1 lb2; vrid 255; "
                        "mode active-active; interface e0; }\n",
                  "t.conf:4:1: error: VRIDs 255..256 go past 255\n");
    expect_errors(NODES "vip 10.0.0.100 { nodes lb1; vrid 5; interface e0; }\n"
                        "vip 10.0.0.101 10.0.0.102 { nodes lb1; vrid 4; mode active-active; "
                        "interface e0; }\n",
                  "t.conf:5:1: error: VRIDs overlap the vip at line 4 on the same interface\n");
    expect_errors(NODES "vip 10.0.0.100 { nodes lb1; vrid 1; interface e0; advert 55ms; }\n",
                  "t.conf:4:58: error: invalid value \"55ms\" for \"advert\": VRRP counts in "
                  "centiseconds, use a multiple of 10ms\n");
    expect_errors(NODES "vip 10.0.0.100 { nodes lb1; vrid 1; interface e0; priority lb1 256; "
                        "priority lb9 5; }\n",
                  "t.conf:4:64: error: invalid value \"256\" for \"priority\": must be between 1 "
                  "and 255\n"
                  "t.conf:4:78: error: node \"lb9\" is not in this vip's \"nodes\" (list it there "
                  "first)\n");
    expect_errors(NODES "vip 10.0.0.100 10.0.0.x { nodes lb1 lb1; vrid 1; interface e0; }\n"
                        "vip 10.0.0.100 { nodes lb2; vrid 9; interface e0; }\n",
                  "t.conf:4:16: error: invalid virtual IP \"10.0.0.x\": expected an IPv4 address\n"
                  "t.conf:4:37: error: node \"lb1\" listed twice\n"
                  "t.conf:5:5: error: duplicate virtual IP 10.0.0.100 (also at line 4)\n");
}

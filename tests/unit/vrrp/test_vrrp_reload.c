/* SPDX-License-Identifier: MIT */
/* Unit tests of vrrp/vrrp_reload.c: which vip changes a running node takes (priority, order
 * of nodes, advert, preempt, preempt_delay, track, notify) and which it refuses, each named. */
#include <criterion/criterion.h>

#include "vrrp/vrrp_reload.c"

#include <stdlib.h>

#define NODES                                                                                      \
    "node lb1 { address 10.0.0.11; roles lb; }\n"                                                  \
    "node lb2 { address 10.0.0.12; roles lb; }\n"                                                  \
    "node lb3 { address 10.0.0.13; roles lb; }\n"

static struct vrrp_reload_view *view(const char *text, const char *node)
{
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, strlen(text), CONF_LOAD_NO_RESOLVE, &conf, &errs);
    cr_assert_eq(rc, 0, "unexpected errors:\n%s", errs.text ? errs.text : "(none)");
    conf_errors_fini(&errs);
    struct vrrp_reload_view *v = malloc(sizeof(*v));
    cr_assert_not_null(v);
    vrrp_reload_view_init(v, conf, node);
    conf_free(conf);
    return v;
}

struct seen {
    char text[1024];
    uint32_t n;
};

static void collect(void *data, uint32_t vrid, const char *setting)
{
    struct seen *s = data;
    size_t k = strlen(s->text);
    (void)snprintf(s->text + k, sizeof(s->text) - k, "%s%u:%s", s->n == 0 ? "" : "|", vrid,
                   setting);
    s->n++;
}

/* The refusals of going from a to b on node lb1, "vrid:setting|..." ("" when none). */
static void expect(const char *a, const char *b, const char *want)
{
    struct vrrp_reload_view *x = view(a, "lb1"), *y = view(b, "lb1");
    struct seen s = {.text = "", .n = 0};
    uint32_t n = vrrp_reload_check(x, y, collect, &s);
    cr_assert_eq(n, s.n);
    cr_assert_str_eq(s.text, want, "from:\n%s\nto:\n%s", a, b);
    free(x);
    free(y);
}

#define VIP(body) NODES "vip 10.0.0.100 { nodes lb1 lb2; vrid 7; interface e0; " body " }\n"

Test(vrrp_reload, nothing_changed_is_live)
{
    expect(VIP(""), VIP(""), "");
}

Test(vrrp_reload, live_settings_are_not_refused)
{
    expect(VIP(""),
           NODES "vip 10.0.0.100 { nodes lb2 lb1; vrid 7; interface e0; advert 100ms; "
                 "preempt off; preempt_delay 2s; track off; notify /bin/true; "
                 "priority lb1 90; }\n",
           "");
}

Test(vrrp_reload, identity_and_transport_are_refused)
{
    expect(VIP(""),
           NODES "vip 10.0.0.101 { nodes lb1 lb2; vrid 7; interface e1; prefix 24; unicast on; "
                 "}\n",
           "7:addresses|7:interface|7:prefix|7:unicast");
    expect(VIP(""), VIP("mode active-active;"), "7:mode");
    expect(NODES "vip 10.0.0.100 10.0.0.101 { nodes lb1 lb2; vrid 7; interface e0; }\n",
           NODES "vip 10.0.0.100 10.0.0.101 { nodes lb1 lb2; vrid 7; interface e0; "
                 "mode active-active; }\n",
           "7:mode");
}

Test(vrrp_reload, a_new_vrid_is_a_removed_block_and_an_added_one)
{
    expect(VIP(""), NODES "vip 10.0.0.100 { nodes lb1 lb2; vrid 8; interface e0; }\n",
           "7:vip block (removed, or its vrid changed)|8:vip block (added, or its vrid changed)");
}

Test(vrrp_reload, blocks_of_other_nodes_do_not_matter)
{
    expect(VIP(""), VIP("") "vip 10.0.0.200 { nodes lb2 lb3; vrid 9; interface e0; }\n", "");
}

Test(vrrp_reload, a_node_in_no_block_refuses_one_added)
{
    expect(NODES, VIP(""), "7:vip block (added, or its vrid changed)");
    expect(VIP(""), NODES, "7:vip block (removed, or its vrid changed)");
}

Test(vrrp_reload, peers_and_addresses_are_refused)
{
    expect(VIP(""), NODES "vip 10.0.0.100 { nodes lb1 lb2 lb3; vrid 7; interface e0; }\n",
           "7:nodes");
    expect(VIP(""),
           "node lb1 { address 10.0.0.11; roles lb; }\n"
           "node lb2 { address 10.0.0.22; roles lb; }\n"
           "vip 10.0.0.100 { nodes lb1 lb2; vrid 7; interface e0; }\n",
           "7:address of a node");
}

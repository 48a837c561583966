/* SPDX-License-Identifier: MIT */
/* The directive table of virtual IPs: vip ADDR... { nodes; vrid; mode; interface; prefix;
 * advert; preempt; preempt_delay; priority; unicast; auth; track; notify; port }, and the
 * checks that span blocks (the nodes exist and have the lb role, VRIDs do not collide,
 * an interface unless every address is in 127.0.0.0/8, a secret for auth). */
#include "vrrp/vrrp_conf.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "core/conf.h"

#define VIP CONF_CTX_VIP
#define DURATION_MAX (3600u * 1000u)

static bool is_loopback(struct in_addr a)
{
    return (ntohl(a.s_addr) >> 24) == 127;
}

static void *open_vip(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                      const struct conf_token *tok, size_t n)
{
    (void)d;
    struct conf *conf = obj;
    struct conf_vip *vip =
        conf_array_push(cp, (void **)&conf->vips, &conf->n_vips, sizeof(*conf->vips));
    if (vip == NULL) {
        return NULL;
    }
    conf_pos_set(&vip->pos, &tok[0]);
    if (n - 1 > CONF_VIP_MAX_ADDRS) {
        conf_error(cp, &tok[1 + CONF_VIP_MAX_ADDRS], "too many addresses (at most %d)",
                   CONF_VIP_MAX_ADDRS);
        n = 1 + CONF_VIP_MAX_ADDRS;
    }
    for (size_t i = 1; i < n; i++) {
        struct in_addr a;
        if (inet_pton(AF_INET, tok[i].text, &a) != 1) {
            conf_error(cp, &tok[i], "invalid virtual IP \"%s\": expected an IPv4 address",
                       tok[i].text);
            continue;
        }
        for (uint32_t v = 0; v < conf->n_vips; v++) {
            for (uint32_t k = 0; k < conf->vips[v].n_addrs; k++) {
                if (conf->vips[v].addrs[k].s_addr == a.s_addr) {
                    conf_error(cp, &tok[i], "duplicate virtual IP %s (also at line %d)",
                               tok[i].text, conf->vips[v].pos.line);
                }
            }
        }
        vip->addrs[vip->n_addrs++] = a;
    }
    vip->prefix = 32;
    vip->advert_ms = 50;
    vip->preempt = true;
    vip->track = true;
    vip->port = 11200;
    return vip;
}

static int set_nodes(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                     const struct conf_token *tok, size_t n)
{
    (void)d;
    struct conf_vip *vip = obj;
    return conf_set_node_names(cp, tok, n, vip->nodes, &vip->n_nodes, CONF_VIP_MAX_NODES);
}

static int set_priority(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                        const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf_vip *vip = obj;
    uint64_t v;
    struct errbuf eb;
    if (conf_parse_uint(tok[2].text, &v, &eb) != 0 || v < 1 || v > 255) {
        conf_error(cp, &tok[2], "invalid value \"%s\" for \"priority\": must be between 1 and 255",
                   tok[2].text);
        return -KEEL_ECONFIG;
    }
    for (uint32_t k = 0; k < vip->n_nodes; k++) {
        if (strcmp(vip->nodes[k], tok[1].text) == 0) {
            vip->priorities[k] = (uint32_t)v;
            return 0;
        }
    }
    conf_error(cp, &tok[1], "node \"%s\" is not in this vip's \"nodes\" (list it there first)",
               tok[1].text);
    return -KEEL_ECONFIG;
}

static int set_advert(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                      const struct conf_token *tok, size_t n)
{
    int rc = conf_set_duration(cp, d, obj, tok, n);
    struct conf_vip *vip = obj;
    if (rc == 0 && vip->advert_ms % 10 != 0) {
        conf_error(cp, &tok[1],
                   "invalid value \"%s\" for \"advert\": VRRP counts in centiseconds, use a "
                   "multiple of 10ms",
                   tok[1].text);
        return -KEEL_ECONFIG;
    }
    return rc;
}

static const struct conf_enum mode_values[] = {
    {"active-passive", CONF_VIP_ACTIVE_PASSIVE},
    {"active-active", CONF_VIP_ACTIVE_ACTIVE},
    {NULL, 0},
};

static const struct conf_directive vrrp_directives[] = {
    {.name = "vip",
     .contexts = CONF_CTX_MAIN,
     .min_args = 1,
     .max_args = CONF_ARGS_MANY,
     .flags = CONF_F_REPEAT,
     .block_ctx = VIP,
     .open = open_vip,
     .syntax = "vip ADDRESS... { ... }",
     .help = "virtual IPs that VRRP moves between load balancer nodes"},
    {.name = "nodes",
     .contexts = VIP,
     .min_args = 1,
     .max_args = CONF_ARGS_MANY,
     .flags = CONF_F_REQUIRED,
     .set = set_nodes,
     .syntax = "nodes NODE...",
     .help = "the lb nodes that may hold the addresses, most preferred first"},
    {.name = "vrid",
     .contexts = VIP,
     .min_args = 1,
     .max_args = 1,
     .flags = CONF_F_REQUIRED,
     .set = conf_set_uint,
     CONF_FIELD(struct conf_vip, vrid),
     .min = 1,
     .max = 255,
     .syntax = "vrid N",
     .help = "the virtual router id (active-active: N, N+1, ... per address)"},
    {.name = "mode",
     .contexts = VIP,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_enum,
     CONF_FIELD(struct conf_vip, mode),
     .values = mode_values,
     .syntax = "mode active-passive|active-active",
     .help = "one router for all addresses, or one per address preferring a different node"},
    {.name = "interface",
     .contexts = VIP,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_string,
     CONF_FIELD(struct conf_vip, interface),
     .syntax = "interface NAME",
     .help = "the network interface that carries the addresses and the adverts"},
    {.name = "prefix",
     .contexts = VIP,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_uint,
     CONF_FIELD(struct conf_vip, prefix),
     .min = 1,
     .max = 32,
     .def = "32",
     .syntax = "prefix N",
     .help = "prefix length of the addresses on the interface"},
    {.name = "advert",
     .contexts = VIP,
     .min_args = 1,
     .max_args = 1,
     .set = set_advert,
     CONF_FIELD(struct conf_vip, advert_ms),
     .min = 10,
     .max = 40950,
     .def = "50ms",
     .syntax = "advert DURATION",
     .help = "interval between the master's adverts"},
    {.name = "preempt",
     .contexts = VIP,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_onoff,
     CONF_FIELD(struct conf_vip, preempt),
     .def = "on",
     .syntax = "preempt on|off",
     .help = "whether a node of higher priority takes the addresses from a live master"},
    {.name = "preempt_delay",
     .contexts = VIP,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf_vip, preempt_delay_ms),
     .min = 0,
     .max = DURATION_MAX,
     .def = "0s",
     .syntax = "preempt_delay DURATION",
     .help = "how long a node must outrank the master before it preempts"},
    {.name = "priority",
     .contexts = VIP,
     .min_args = 2,
     .max_args = 2,
     .flags = CONF_F_REPEAT,
     .set = set_priority,
     .syntax = "priority NODE N",
     .help = "a node's priority (1-255, 255: the address owner) instead of its position's"},
    {.name = "unicast",
     .contexts = VIP,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_onoff,
     CONF_FIELD(struct conf_vip, unicast),
     .def = "off",
     .syntax = "unicast on|off",
     .help = "send adverts to the other nodes' addresses instead of 224.0.0.18"},
    {.name = "auth",
     .contexts = VIP,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_onoff,
     CONF_FIELD(struct conf_vip, auth),
     .def = "off",
     .syntax = "auth on|off",
     .help = "sign adverts with the cluster secret (keel peers only)"},
    {.name = "track",
     .contexts = VIP,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_onoff,
     CONF_FIELD(struct conf_vip, track),
     .def = "on",
     .syntax = "track on|off",
     .help = "give up the addresses while the node cannot serve"},
    {.name = "notify",
     .contexts = VIP,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_string,
     CONF_FIELD(struct conf_vip, notify),
     .syntax = "notify PROGRAM",
     .help = "run PROGRAM STATE VRID ADDRESSES... on every state change"},
    {.name = "port",
     .contexts = VIP,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_uint,
     CONF_FIELD(struct conf_vip, port),
     .min = 1,
     .max = 65535,
     .def = "11200",
     .syntax = "port N",
     .help = "loopback mode: the UDP port of the adverts"},
};

uint32_t vrrp_conf_n_routers(const struct conf_vip *vip)
{
    return vip->mode == CONF_VIP_ACTIVE_ACTIVE ? vip->n_addrs : 1;
}

uint32_t vrrp_conf_priority(const struct conf_vip *vip, uint32_t router, const char *node)
{
    for (uint32_t k = 0; k < vip->n_nodes; k++) {
        if (strcmp(vip->nodes[k], node) != 0) {
            continue;
        }
        if (vip->priorities[k] != 0) {
            return vip->priorities[k];
        }
        uint32_t rank = (k + vip->n_nodes - router % vip->n_nodes) % vip->n_nodes;
        return rank < 4 ? 200 - 50 * rank : 1;
    }
    return 0;
}

static void vrrp_conf_validate(struct conf_parser *cp, struct conf *conf)
{
    for (uint32_t v = 0; v < conf->n_vips; v++) {
        struct conf_vip *vip = &conf->vips[v];
        uint32_t loop = 0;
        for (uint32_t i = 0; i < vip->n_addrs; i++) {
            loop += is_loopback(vip->addrs[i]) ? 1 : 0;
        }
        vip->is_loopback = vip->n_addrs > 0 && loop == vip->n_addrs;
        if (loop != 0 && !vip->is_loopback) {
            conf_error_at(cp, &vip->pos, "vip mixes loopback and other addresses");
        }
        if (!vip->is_loopback && vip->interface[0] == '\0') {
            conf_error_at(cp, &vip->pos,
                          "vip needs \"interface\" (only addresses in 127.0.0.0/8 do without)");
        }
        if (vip->auth && conf->secret_file[0] == '\0') {
            conf_error_at(cp, &vip->pos,
                          "\"auth on\" needs the cluster's secret_file (cluster NAME { "
                          "secret_file PATH; })");
        }
        if (vip->vrid + vrrp_conf_n_routers(vip) - 1 > 255) {
            conf_error_at(cp, &vip->pos, "VRIDs %u..%u go past 255", vip->vrid,
                          vip->vrid + vrrp_conf_n_routers(vip) - 1);
        }
        for (uint32_t k = 0; k < vip->n_nodes; k++) {
            const struct conf_node *node = conf_find_node(conf, vip->nodes[k]);
            if (node == NULL) {
                conf_error_at(cp, &vip->pos, "vip node \"%s\" is not defined", vip->nodes[k]);
            } else if ((node->roles & CONF_ROLE_LB) == 0) {
                conf_error_at(cp, &vip->pos, "vip node \"%s\" does not have the lb role",
                              vip->nodes[k]);
            }
        }
        for (uint32_t w = 0; w < v; w++) {
            const struct conf_vip *o = &conf->vips[w];
            uint32_t a0 = vip->vrid, a1 = a0 + vrrp_conf_n_routers(vip);
            uint32_t b0 = o->vrid, b1 = b0 + vrrp_conf_n_routers(o);
            if (a0 < b1 && b0 < a1 && strcmp(vip->interface, o->interface) == 0) {
                conf_error_at(cp, &vip->pos,
                              "VRIDs overlap the vip at line %d on the same "
                              "interface",
                              o->pos.line);
            }
        }
    }
}

const struct conf_section vrrp_conf_section = {
    .name = "vrrp",
    .directives = vrrp_directives,
    .n_directives = sizeof(vrrp_directives) / sizeof(vrrp_directives[0]),
    .validate = vrrp_conf_validate,
};

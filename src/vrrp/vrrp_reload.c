/* SPDX-License-Identifier: MIT */
/* Which vip changes a running node can take (see vrrp_reload.h for the list and the reasons):
 * pure, no I/O. Applying them is vrrp_reconfigure (vrrp/vrrp.c). A VRRP router's identity on
 * the wire (vrid, addresses, transport, peers, key) is fixed while it runs: changing it live
 * would look to the peers like a second router. */
#include "vrrp/vrrp_reload.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/conf.h"

static bool lists(const struct conf_vip *vip, const char *node)
{
    for (uint32_t k = 0; k < vip->n_nodes; k++) {
        if (strcmp(vip->nodes[k], node) == 0) {
            return true;
        }
    }
    return false;
}

void vrrp_reload_view_init(struct vrrp_reload_view *view, const struct conf *conf, const char *node)
{
    view->n_blocks = 0;
    (void)snprintf(view->secret_file, sizeof(view->secret_file), "%s", conf->secret_file);
    for (uint32_t i = 0; node != NULL && i < conf->n_vips; i++) {
        const struct conf_vip *vip = &conf->vips[i];
        if (!lists(vip, node) || view->n_blocks == VRRP_RELOAD_MAX_BLOCKS) {
            continue;
        }
        struct vrrp_reload_block *b = &view->blocks[view->n_blocks++];
        b->vip = *vip;
        for (uint32_t k = 0; k < vip->n_nodes; k++) {
            const struct conf_node *n = conf_find_node(conf, vip->nodes[k]);
            (void)snprintf(b->addrs[k], sizeof(b->addrs[k]), "%s", n != NULL ? n->address : "");
        }
    }
}

static const struct vrrp_reload_block *find(const struct vrrp_reload_view *view, uint32_t vrid)
{
    for (uint32_t i = 0; i < view->n_blocks; i++) {
        if (view->blocks[i].vip.vrid == vrid) {
            return &view->blocks[i];
        }
    }
    return NULL;
}

/* The address of node in block b, or NULL if b does not list it. */
static const char *addr_in(const struct vrrp_reload_block *b, const char *node)
{
    for (uint32_t k = 0; k < b->vip.n_nodes; k++) {
        if (strcmp(b->vip.nodes[k], node) == 0) {
            return b->addrs[k];
        }
    }
    return NULL;
}

/* Same nodes (in any order: the order only sets priorities) at the same addresses? Sets the
 * setting that differs. */
static const char *peers_differ(const struct vrrp_reload_block *a,
                                const struct vrrp_reload_block *b)
{
    if (a->vip.n_nodes != b->vip.n_nodes) {
        return "nodes";
    }
    for (uint32_t k = 0; k < a->vip.n_nodes; k++) {
        const char *other = addr_in(b, a->vip.nodes[k]);
        if (other == NULL) {
            return "nodes";
        }
        if (strcmp(other, a->addrs[k]) != 0) {
            return "address of a node";
        }
    }
    return NULL;
}

static uint32_t compare(const struct vrrp_reload_block *a, const struct vrrp_reload_block *b,
                        bool is_secret_changed, vrrp_reload_refuse_fn refuse, void *data)
{
    const struct conf_vip *x = &a->vip, *y = &b->vip;
    uint32_t n = 0;
    struct {
        bool differs;
        const char *setting;
    } checks[] = {
        {x->n_addrs != y->n_addrs ||
             memcmp(x->addrs, y->addrs, x->n_addrs * sizeof(x->addrs[0])) != 0,
         "addresses"},
        {x->mode != y->mode, "mode"},
        {strcmp(x->interface, y->interface) != 0, "interface"},
        {x->prefix != y->prefix, "prefix"},
        {x->unicast != y->unicast, "unicast"},
        {x->auth != y->auth, "auth"},
        {x->auth && is_secret_changed, "secret_file (the cluster's, used by auth)"},
        {x->port != y->port, "port"},
    };
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        if (checks[i].differs) {
            refuse(data, x->vrid, checks[i].setting);
            n++;
        }
    }
    const char *peers = peers_differ(a, b);
    if (peers != NULL) {
        refuse(data, x->vrid, peers);
        n++;
    }
    return n;
}

uint32_t vrrp_reload_check(const struct vrrp_reload_view *old, const struct vrrp_reload_view *new,
                           vrrp_reload_refuse_fn refuse, void *data)
{
    uint32_t n = 0;
    bool is_secret_changed = strcmp(old->secret_file, new->secret_file) != 0;
    for (uint32_t i = 0; i < old->n_blocks; i++) {
        const struct vrrp_reload_block *b = find(new, old->blocks[i].vip.vrid);
        if (b == NULL) {
            refuse(data, old->blocks[i].vip.vrid, "vip block (removed, or its vrid changed)");
            n++;
        } else {
            n += compare(&old->blocks[i], b, is_secret_changed, refuse, data);
        }
    }
    for (uint32_t i = 0; i < new->n_blocks; i++) {
        if (find(old, new->blocks[i].vip.vrid) == NULL) {
            refuse(data, new->blocks[i].vip.vrid, "vip block (added, or its vrid changed)");
            n++;
        }
    }
    return n;
}

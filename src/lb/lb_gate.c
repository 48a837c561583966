/* SPDX-License-Identifier: MIT */
/* Listener gates (see lb_gate.h). The table is written by the control thread only; workers
 * read is_open atomically. Opening: listen() first, then publish, so a worker that sees the
 * gate open finds a listening socket. Closing: publish first, then shutdown(), and a worker
 * that still polls sees accept() fail with EINVAL and stops polling by itself. */
#include "lb/lb_gate.h"

#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "lb/lb.h"

static struct lb_gate gates[LB_GATE_MAX];
static uint32_t n_gates;

struct lb_gate *lb_gate_define(struct in_addr ip)
{
    for (uint32_t i = 0; i < n_gates; i++) {
        if (gates[i].ip.s_addr == ip.s_addr) {
            return &gates[i];
        }
    }
    if (n_gates == LB_GATE_MAX) {
        return NULL;
    }
    gates[n_gates].ip = ip;
    atomic_store(&gates[n_gates].is_open, false);
    return &gates[n_gates++];
}

struct lb_gate *lb_gate_find(const struct sockaddr *sa)
{
    if (sa->sa_family != AF_INET) {
        return NULL;
    }
    struct in_addr ip = ((const struct sockaddr_in *)sa)->sin_addr;
    for (uint32_t i = 0; i < n_gates; i++) {
        if (gates[i].ip.s_addr == ip.s_addr) {
            return &gates[i];
        }
    }
    return NULL;
}

void lb_gate_set(struct lb_gate *g, struct lb_gen *gen, bool is_open)
{
    if (!is_open) {
        atomic_store(&g->is_open, false);
    }
    for (uint32_t f = 0; gen != NULL && f < gen->n_frontends; f++) {
        const struct conf_frontend *cf = gen->frontends[f].conf;
        for (uint32_t b = 0; b < cf->n_binds; b++) {
            if (lb_gate_find((const struct sockaddr *)&cf->binds[b].sa) != g) {
                continue;
            }
            for (uint32_t w = 0; w < gen->n_workers; w++) {
                int fd = gen->listen_fds[(gen->bind_base[f] + b) * gen->n_workers + w];
                if (fd == -1) {
                    continue;
                }
                if (is_open && listen(fd, 1024) == -1) {
                    log_error("vrrp", "listen() on %s failed: %m", cf->binds[b].text);
                } else if (!is_open) {
                    (void)shutdown(fd, SHUT_RD); /* stops listening; the bind stays */
                }
            }
        }
    }
    if (is_open) {
        atomic_store(&g->is_open, true);
    }
}

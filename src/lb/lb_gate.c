/* SPDX-License-Identifier: MIT */
/* Listener gates (see lb_gate.h). The table is written by the control thread only; workers
 * read is_open atomically. Opening: listen() first, then publish, so a worker that sees the
 * gate open finds a listening socket. Closing: publish first, then shutdown(), and a worker
 * that still polls sees accept() fail with EINVAL and stops polling by itself. Quiescing (a
 * planned VRRP handover): a filter on the listeners drops new SYNs, nothing else. */
#include "lb/lb_gate.h"

#include <errno.h>
#include <linux/filter.h>
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

/* The listening sockets of gen bound to g's address, one per worker per bind. */
typedef void (*gate_fd_fn)(int fd, const char *bind, bool is_open);

static void each_fd(const struct lb_gate *g, struct lb_gen *gen, gate_fd_fn fn, bool is_open)
{
    for (uint32_t f = 0; gen != NULL && f < gen->n_frontends; f++) {
        const struct conf_frontend *cf = gen->frontends[f].conf;
        for (uint32_t b = 0; b < cf->n_binds; b++) {
            if (lb_gate_find((const struct sockaddr *)&cf->binds[b].sa) != g) {
                continue;
            }
            for (uint32_t w = 0; w < gen->n_workers; w++) {
                int fd = gen->listen_fds[(gen->bind_base[f] + b) * gen->n_workers + w];
                if (fd != -1) {
                    fn(fd, cf->binds[b].text, is_open);
                }
            }
        }
    }
}

static void open_or_close(int fd, const char *bind, bool is_open)
{
    if (is_open) {
        int zero = 0; /* the kernel wants an int, unused */
        if (setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &zero, sizeof(zero)) != 0 &&
            errno != ENOENT) { /* ENOENT: there was none */
            log_error("vrrp", "cannot take new connections again on %s: %m", bind);
        }
        if (listen(fd, 1024) == -1) {
            log_error("vrrp", "listen() on %s failed: %m", bind);
        }
    } else {
        (void)shutdown(fd, SHUT_RD); /* stops listening; the bind stays */
    }
}

/* A classic BPF filter on a listener sees every segment of the handshakes it owns, from the
 * TCP header on: it drops a SYN without ACK (a new connection) and keeps everything else (the
 * ACKs completing handshakes already answered, and the children inherit it harmlessly). */
static void drop_syns(int fd, const char *bind, bool is_open)
{
    (void)is_open;
    static const struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),          /* TCP flags */
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),       /* SYN | ACK */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1), /* SYN alone? */
        BPF_STMT(BPF_RET | BPF_K, 0),                    /* drop */
        BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),          /* keep */
    };
    struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]),
                              .filter = (struct sock_filter *)code};
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) != 0) {
        log_error("vrrp", "cannot stop new connections on %s: %m", bind);
    }
}

void lb_gate_set(struct lb_gate *g, struct lb_gen *gen, bool is_open)
{
    if (!is_open) {
        atomic_store(&g->is_open, false);
    }
    each_fd(g, gen, open_or_close, is_open);
    if (is_open) {
        atomic_store(&g->is_open, true);
    }
}

void lb_gate_quiesce(struct lb_gate *g, struct lb_gen *gen)
{
    each_fd(g, gen, drop_syns, false);
}

/* SPDX-License-Identifier: MIT */
/* The VRRP role on the control thread: one virtual router per (vip block, router) that lists
 * this node, driven by the pure state machine (vrrp_fsm.c) and codec (vrrp_pkt.c).
 *
 * Two transports. Interface mode: a raw IP socket (protocol 112) on the vip's interface,
 * multicast to 224.0.0.18 or unicast to the other nodes, addresses added and removed with
 * rtnetlink, gratuitous ARP on takeover, link changes from an rtnetlink monitor (a link that
 * is not usable puts the routers in fault). Loopback mode (every address in 127.0.0.0/8,
 * for `keel up` on one machine): adverts as UDP datagrams between the nodes' own addresses
 * (same message, TTL 255 checked through IP_RECVTTL), and no address is added anywhere:
 * the whole /8 is local, so holding an address means opening the listener gates of it. In
 * both modes the node's frontends bind the virtual IPs through gates (lb/lb_gate.h) and
 * accept connections only while master. Never blocks, except the rtnetlink requests (local
 * kernel calls) and reading the secret at start. */
#include "vrrp/vrrp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/proc.h"
#include "core/secret.h"
#include "lb/lb_gate.h"
#include "monitor/metrics.h"
#include "vrrp/vrrp_conf.h"
#include "vrrp/vrrp_diag.h"
#include "vrrp/vrrp_fsm.h"
#include "vrrp/vrrp_net.h"
#include "vrrp/vrrp_pkt.h"

#define VRRP_MAX_ROUTERS 32
#define VRRP_GARP_COUNT 3
#define VRRP_REANNOUNCE_MS 500 /* at most this often on hearing a lower-priority master */
/* Make-before-break: a master that hands over (preempted, or stopping and its successor heard)
 * keeps the addresses this long, so that the requests it has in flight can still be answered
 * from them. The new master repeats its gratuitous ARPs after it, in case a neighbour that
 * asked meanwhile got the old master's answer. */
#define VRRP_RELEASE_GRACE_MS 1000
#define VRRP_GARP_REPEAT_MS (VRRP_RELEASE_GRACE_MS + 200)
/* Planned handover (the old master is alive: it sent priority 0, or we preempt it): the new
 * master holds the addresses at once but sends its gratuitous ARPs this much later. Meanwhile
 * the clients still reach the old master, which takes no new connection (it drops the SYNs:
 * they are retransmitted here after the ARPs) and finishes the exchanges it has under way; a
 * client moved in the middle of one would send its next segment here and be reset. */
#define VRRP_SETTLE_MS 100
/* The old master polls its connections on the addresses this often while it hands them over,
 * and sends a priority-0 advert when none is left (or VRRP_SETTLE_MS has passed): the new
 * master then sends its ARPs at once. */
#define VRRP_DRAIN_POLL_MS 5

struct vrrp_router {
    struct vrrp *v;
    const struct conf_vip *vip; /* = &vip_copy */
    struct conf_vip vip_copy;   /* a copy: a reload frees the configuration it came from */
    uint8_t vrid;
    uint8_t priority; /* configured */
    struct in_addr addrs[CONF_VIP_MAX_ADDRS];
    uint32_t n_addrs;
    struct in_addr self;                      /* advert source: the node's address */
    struct in_addr peers[CONF_VIP_MAX_NODES]; /* the other nodes' addresses */
    uint32_t n_peers;
    int fd;      /* shared with the other routers of the same vip block */
    int ifindex; /* interface mode */
    bool is_loopback;
    enum vrrp_hold hold;   /* the addresses: released, held, or held while handing them over
                            * (leaving: the gates drop new connections, see leave) */
    bool is_settling;      /* new master of a planned handover: gratuitous ARPs not sent yet */
    uint64_t leave_at_ms;  /* leaving since */
    struct in_addr master; /* the last master heard from (0.0.0.0: none yet) */
    uint64_t garp_at_ms;   /* when gratuitous ARPs were last sent */
    bool awaits_successor; /* stopping master: still holds the addresses until another node
                            * advertises (vrrp_hand_over) */
    bool link_down;
    bool track_fault;
    struct vrrp_fsm fsm;
    struct ev_timer timer;
    struct ev_timer later; /* not master: release the addresses (the grace is over); master:
                            * repeat the gratuitous ARPs */
    struct ev_timer drain; /* leaving: poll the connections under way (check_drained) */
    uint64_t sent, received, transitions;
    uint64_t dropped[VRRP_PKT_REASON_COUNT];
};

struct vrrp_sock {
    struct vrrp *v;
    int fd;
    bool is_udp;
    struct ev_io io;
    uint32_t first, n; /* its routers: v->routers[first, first + n) */
};

struct vrrp {
    struct ev_loop *loop;
    vrrp_hold_fn on_hold;
    void *data;
    struct vrrp_router routers[VRRP_MAX_ROUTERS];
    uint32_t n_routers;
    struct vrrp_sock socks[VRRP_MAX_ROUTERS];
    uint32_t n_socks;
    struct vrrp_pkt_vr vrs[VRRP_MAX_ROUTERS]; /* parse table, same index as routers */
    struct vrrp_auth_key key;
    bool has_key;
    int garp_fd;
    int mon_fd;
    struct ev_io mon_io;
    bool can_serve;
    bool is_stopped;
    uint64_t handover_deadline_ms; /* vrrp_hand_over: release by then, successor or not */
};

static bool node_in(const struct conf_vip *vip, const char *node)
{
    for (uint32_t k = 0; k < vip->n_nodes; k++) {
        if (strcmp(vip->nodes[k], node) == 0) {
            return true;
        }
    }
    return false;
}

void vrrp_declare_gates(const struct conf *conf, const char *node)
{
    for (uint32_t i = 0; node != NULL && i < conf->n_vips; i++) {
        const struct conf_vip *vip = &conf->vips[i];
        for (uint32_t a = 0; node_in(vip, node) && a < vip->n_addrs; a++) {
            if (lb_gate_define(vip->addrs[a]) == NULL) {
                log_error("vrrp", "too many virtual IPs (at most %d)", LB_GATE_MAX);
            }
        }
    }
}

/* ---------------------------------------------------------------- actions */

static void run_notify(struct vrrp_router *r, const char *state)
{
    if (r->vip->notify[0] == '\0') {
        return;
    }
    char vrid[8];
    char addrs[CONF_VIP_MAX_ADDRS][INET_ADDRSTRLEN];
    char *argv[4 + CONF_VIP_MAX_ADDRS];
    int k = 0;
    argv[k++] = (char *)r->vip->notify;
    argv[k++] = (char *)state;
    (void)snprintf(vrid, sizeof(vrid), "%u", r->vrid);
    argv[k++] = vrid;
    for (uint32_t i = 0; i < r->n_addrs; i++) {
        (void)inet_ntop(AF_INET, &r->addrs[i], addrs[i], sizeof(addrs[i]));
        argv[k++] = addrs[i];
    }
    argv[k] = NULL;
    pid_t pid = fork(); /* double fork: the hook is never our zombie */
    if (pid == 0) {
        if (fork() == 0) {
            (void)setsid();
            proc_signals_reset(); /* keel's blocked and ignored signals would survive execv */
            execv(argv[0], argv);
            _exit(127);
        }
        _exit(0);
    }
    if (pid > 0) {
        (void)waitpid(pid, NULL, 0);
    } else {
        log_warn("vrrp", "vrrp %u: cannot run notify %s: %m", r->vrid, r->vip->notify);
    }
}

static void leave(struct vrrp_router *r);
static void send_advert(struct vrrp_router *r, uint8_t priority);

/* The addresses stay for VRRP_RELEASE_GRACE_MS (on_later releases them): a master that
 * hands over still has requests in flight on them, whose answers need the address. Interface
 * mode only: in loopback mode no address is removed, and closing the gates stops only the
 * listening (connections already accepted keep being served). */
static void release_later(struct vrrp_router *r, const char *why)
{
    log_notice("vrrp",
               "vrrp %u: %s: keeping the addresses %u ms for the requests in flight, taking no "
               "new connection",
               r->vrid, why, VRRP_RELEASE_GRACE_MS);
    ev_timer_start(r->v->loop, &r->later, VRRP_RELEASE_GRACE_MS);
    leave(r);
}

/* Gratuitous ARPs for every address, so that neighbours send to this node's MAC. */
static void garp(struct vrrp_router *r)
{
    r->garp_at_ms = ev_now_ms(r->v->loop);
    for (uint32_t i = 0; !r->is_loopback && r->v->garp_fd >= 0 && i < r->n_addrs; i++) {
        for (int g = 0; g < VRRP_GARP_COUNT; g++) {
            if (vrrp_net_garp_send(r->v->garp_fd, r->ifindex, NULL, r->addrs[i],
                                   g % 2 == 0 ? VRRP_NET_ARP_REQUEST : VRRP_NET_ARP_REPLY) != 0) {
                return; /* link down: the next takeover sends them */
            }
        }
    }
}

static void hold(struct vrrp_router *r, bool held)
{
    enum vrrp_hold want = held ? VRRP_HOLD_HELD : VRRP_HOLD_RELEASED;
    if (r->hold == want) {
        return;
    }
    bool had = r->hold != VRRP_HOLD_RELEASED; /* leaving -> held: master again in the grace */
    r->hold = want;
    ev_timer_stop(r->v->loop, &r->drain);
    for (uint32_t i = 0; i < r->n_addrs; i++) {
        char ip[INET_ADDRSTRLEN];
        (void)inet_ntop(AF_INET, &r->addrs[i], ip, sizeof(ip));
        struct errbuf eb = {{0}};
        if (!r->is_loopback && had != held) {
            int rc = held ? vrrp_net_vip_add(r->ifindex, r->addrs[i], r->vip->prefix, NULL, &eb)
                          : vrrp_net_vip_del(r->ifindex, r->addrs[i], r->vip->prefix, &eb);
            if (rc != 0 && rc != -EEXIST && rc != -EADDRNOTAVAIL) {
                log_error("vrrp", "vrrp %u: cannot %s %s on %s: %s", r->vrid,
                          held ? "add" : "remove", ip, r->vip->interface, eb.msg);
            }
        }
        r->v->on_hold(r->v->data, r->addrs[i], held ? VRRP_HOLD_HELD : VRRP_HOLD_RELEASED);
    }
}

/* Handing over addresses still held: the listeners take no new connection (they drop the
 * SYNs, refusing none) and finish the ones under way. */
static void leave(struct vrrp_router *r)
{
    if (r->hold != VRRP_HOLD_HELD) {
        return;
    }
    r->hold = VRRP_HOLD_LEAVING;
    r->leave_at_ms = ev_now_ms(r->v->loop);
    for (uint32_t i = 0; i < r->n_addrs; i++) {
        r->v->on_hold(r->v->data, r->addrs[i], VRRP_HOLD_LEAVING);
    }
    ev_timer_start(r->v->loop, &r->drain, 0);
}

/* Leaving: once no connection on the addresses has anything left to exchange (or after
 * VRRP_SETTLE_MS, when the new master moves the neighbours anyway), say so with a priority-0
 * advert: the new master sends its gratuitous ARPs when it hears it. */
static void check_drained(struct vrrp_router *r)
{
    uint64_t waited_ms = ev_now_ms(r->v->loop) - r->leave_at_ms;
    int busy = vrrp_diag_tcp_busy(r->addrs, r->n_addrs);
    if (busy > 0 && waited_ms < VRRP_SETTLE_MS) {
        ev_timer_start(r->v->loop, &r->drain, VRRP_DRAIN_POLL_MS);
        return;
    }
    if (busy < 0) {
        log_debug("vrrp", "vrrp %u: cannot count the connections: %s", r->vrid, strerror(-busy));
    }
    log_info("vrrp", "vrrp %u: %d connection%s still under way after %lu ms: letting go", r->vrid,
             busy > 0 ? busy : 0, busy == 1 ? "" : "s", (unsigned long)waited_ms);
    send_advert(r, VRRP_FSM_PRIORITY_STOP);
}

static void on_drain(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    struct vrrp_router *r = t->data;
    if (r->hold == VRRP_HOLD_LEAVING) {
        check_drained(r);
    }
}

/* New master of a planned handover: the old one is done, send the gratuitous ARPs. */
static void end_settle(struct vrrp_router *r, const char *why)
{
    log_info("vrrp", "vrrp %u: %s: sending the gratuitous ARPs", r->vrid, why);
    r->is_settling = false;
    garp(r);
    ev_timer_start(r->v->loop, &r->later, VRRP_GARP_REPEAT_MS); /* after the old one's grace */
}

struct encode_ctx {
    struct vrrp_router *r;
    uint8_t priority;
};

static int encode(void *ctx, struct in_addr src, struct in_addr dst, uint8_t *out, size_t cap)
{
    struct encode_ctx *e = ctx;
    struct vrrp_router *r = e->r;
    struct vrrp_advert adv = {.vrid = r->vrid,
                              .priority = e->priority,
                              .max_advert_int_cs = (uint16_t)(r->vip->advert_ms / 10),
                              .addrs = r->addrs,
                              .n_addrs = r->n_addrs};
    size_t len = 0;
    int rc = vrrp_pkt_build(&adv, src, dst, r->vip->auth && r->v->has_key ? &r->v->key : NULL, out,
                            cap, &len);
    return rc != 0 ? rc : (int)len;
}

static void send_advert(struct vrrp_router *r, uint8_t priority)
{
    struct encode_ctx e = {.r = r, .priority = priority};
    int rc = 0;
    if (r->is_loopback) {
        for (uint32_t i = 0; i < r->n_peers; i++) {
            uint8_t msg[VRRP_PKT_MAX_LEN];
            int len = encode(&e, r->self, r->peers[i], msg, sizeof(msg));
            struct sockaddr_in to = {.sin_family = AF_INET,
                                     .sin_port = htons((uint16_t)r->vip->port),
                                     .sin_addr = r->peers[i]};
            if (len > 0 &&
                sendto(r->fd, msg, (size_t)len, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to)) ==
                    -1 &&
                errno != ECONNREFUSED) {
                rc = -errno;
            }
        }
    } else if (r->vip->unicast) {
        rc = vrrp_net_send_peers(r->fd, r->ifindex, r->self, r->peers, r->n_peers, encode, &e);
    } else {
        uint8_t msg[VRRP_PKT_MAX_LEN];
        int len = encode(&e, r->self, vrrp_net_group(), msg, sizeof(msg));
        rc = len < 0
                 ? len
                 : vrrp_net_send(r->fd, r->ifindex, r->self, vrrp_net_group(), msg, (size_t)len);
    }
    if (rc == 0) {
        r->sent++;
    } else if (rc != -ENETUNREACH) {
        log_debug("vrrp", "vrrp %u: advert not sent: %s", r->vrid, strerror(-rc));
    }
}

static void apply(struct vrrp_router *r, const struct vrrp_fsm_actions *a)
{
    if (a->del_vips) {
        r->is_settling = false;
    }
    if (a->del_vips && a->is_transition && a->from == VRRP_STATE_MASTER &&
        a->to == VRRP_STATE_BACKUP && r->hold != VRRP_HOLD_RELEASED && !r->is_loopback) {
        release_later(r, "a higher-priority master took over");
    } else if (a->del_vips) {
        ev_timer_stop(r->v->loop, &r->later);
        hold(r, false);
    }
    /* A new master holds the addresses before it says so: the address is on the interface
     * and the listeners on it are listening (their backlog takes connections until a worker
     * accepts). Its advert makes the old master let go at once, and the gratuitous ARPs move
     * the neighbours here: a request sent after either must find this node ready. */
    if (a->add_vips) {
        hold(r, true);
    }
    if (a->send_advert) {
        send_advert(r, a->advert_priority);
    }
    if (a->add_vips && a->is_handover && !r->is_loopback) {
        r->is_settling = true; /* on_later sends them */
        log_info("vrrp", "vrrp %u: planned handover: gratuitous ARPs in %u ms", r->vrid,
                 VRRP_SETTLE_MS);
        ev_timer_start(r->v->loop, &r->later, VRRP_SETTLE_MS);
    } else if (a->add_vips) {
        r->is_settling = false;
        garp(r);
        ev_timer_start(r->v->loop, &r->later, VRRP_GARP_REPEAT_MS);
    }
    if (a->is_transition && a->from == VRRP_STATE_MASTER && a->to == VRRP_STATE_BACKUP &&
        r->hold != VRRP_HOLD_LEAVING) {
        /* Outranked (a partition healed): say we stop, as a shutdown does, so that the master
         * answers at once and repeats its gratuitous ARPs; ours pointed neighbours here. When
         * leaving, check_drained says it once the connections under way are done. */
        send_advert(r, VRRP_FSM_PRIORITY_STOP);
    }
    if (a->is_transition) {
        r->transitions++;
        log_notice("vrrp", "vrrp %u: %s -> %s (%s), priority %u", r->vrid, vrrp_state_name(a->from),
                   vrrp_state_name(a->to), a->reason, r->fsm.cfg.priority);
        run_notify(r, vrrp_state_name(a->to));
    }
    ev_timer_stop(r->v->loop, &r->timer);
    if (a->deadline_ms != VRRP_FSM_NEVER) {
        uint64_t now = ev_now_ms(r->v->loop);
        ev_timer_start(r->v->loop, &r->timer, a->deadline_ms > now ? a->deadline_ms - now : 0);
    }
}

static void on_later(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    struct vrrp_router *r = t->data;
    if (r->fsm.state == VRRP_STATE_MASTER && !r->v->is_stopped && r->is_settling) {
        end_settle(r, "settle time over");
    } else if (r->fsm.state == VRRP_STATE_MASTER && !r->v->is_stopped) {
        garp(r);
    } else if (r->hold != VRRP_HOLD_RELEASED && !r->awaits_successor) {
        log_info("vrrp", "vrrp %u: releasing the addresses (%u ms after the handover)", r->vrid,
                 VRRP_RELEASE_GRACE_MS);
        hold(r, false);
    }
}

static void update_fault(struct vrrp_router *r)
{
    struct vrrp_fsm_actions a;
    bool fault = r->link_down || r->track_fault;
    if (fault == (r->fsm.state == VRRP_STATE_FAULT) || r->v->is_stopped) {
        return;
    }
    vrrp_fsm_set_fault(&r->fsm, ev_now_ms(r->v->loop), fault, &a);
    apply(r, &a);
}

static void on_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct vrrp_router *r = t->data;
    struct vrrp_fsm_actions a;
    vrrp_fsm_on_timer(&r->fsm, ev_now_ms(loop), &a);
    apply(r, &a);
}

/* ---------------------------------------------------------------- receiving */

/* A master heard another master of lower rank, or one stepping down (a partition healed):
 * advert at once so it steps down now, and repeat the gratuitous ARPs, because the other's
 * ARPs during the partition pointed the neighbours at it. Rate limited. */
static void reannounce(struct vrrp_router *r)
{
    if (r->is_settling || ev_now_ms(r->v->loop) - r->garp_at_ms < VRRP_REANNOUNCE_MS) {
        return; /* settling: the old master stepping down is expected, the ARPs are due */
    }
    log_notice("vrrp", "vrrp %u: another node acted as master: announcing the addresses again",
               r->vrid);
    send_advert(r, r->fsm.cfg.priority);
    garp(r);
}

static void deliver(struct vrrp_sock *s, const struct vrrp_pkt_rx *rx)
{
    struct vrrp *v = s->v;
    struct vrrp_pkt_info info;
    enum vrrp_pkt_reason why = vrrp_pkt_parse(rx, &v->vrs[s->first], s->n, &info);
    if (why != VRRP_PKT_REASON_OK) {
        v->routers[s->first].dropped[why]++; /* counted on the socket's first router */
        return;
    }
    struct vrrp_router *r = &v->routers[s->first + info.vr_index];
    if (rx->src.s_addr == r->self.s_addr) {
        return; /* our own, looped back */
    }
    if (v->is_stopped) {
        if (r->awaits_successor && info.priority != 0) {
            r->awaits_successor = false;
            char took[64];
            (void)snprintf(took, sizeof(took), "%s took over", inet_ntoa(rx->src));
            if (r->is_loopback) {
                log_notice("vrrp", "vrrp %u: %s: releasing the addresses", r->vrid, took);
                hold(r, false);
            } else {
                release_later(r, took);
            }
        }
        return;
    }
    r->received++;
    if (info.priority != 0) {
        r->master = rx->src;
    }
    struct vrrp_fsm_actions a;
    vrrp_fsm_on_advert(&r->fsm, ev_now_ms(v->loop), rx->src, info.priority, info.max_advert_int_cs,
                       &a);
    apply(r, &a);
    if (r->fsm.state == VRRP_STATE_MASTER && r->is_settling && info.priority == 0) {
        end_settle(r, "the old master let go");
    }
    if (r->fsm.state == VRRP_STATE_MASTER && !a.is_transition) {
        reannounce(r); /* another master, or one stepping down: neighbours may point there */
    }
}

static void on_readable(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    struct vrrp_sock *s = io->data;
    for (int i = 0; i < 64; i++) {
        uint8_t buf[VRRP_NET_MAX_MSG + 64];
        struct vrrp_pkt_rx rx = {0};
        if (s->is_udp) {
            struct sockaddr_in from;
            char cbuf[256];
            struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
            struct msghdr mh = {.msg_name = &from,
                                .msg_namelen = sizeof(from),
                                .msg_iov = &iov,
                                .msg_iovlen = 1,
                                .msg_control = cbuf,
                                .msg_controllen = sizeof(cbuf)};
            ssize_t n = recvmsg(s->fd, &mh, MSG_DONTWAIT);
            if (n < 0) {
                return;
            }
            rx.src = from.sin_addr;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) {
                    int ttl;
                    memcpy(&ttl, CMSG_DATA(c), sizeof(ttl));
                    rx.ttl = (uint8_t)ttl;
                } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
                    struct in_pktinfo pi;
                    memcpy(&pi, CMSG_DATA(c), sizeof(pi));
                    rx.dst = pi.ipi_addr;
                }
            }
            rx.payload = buf;
            rx.len = (size_t)n;
        } else {
            struct vrrp_net_rx nrx;
            int rc = vrrp_net_recv(s->fd, buf, sizeof(buf), &nrx);
            if (rc == -EAGAIN) {
                return;
            }
            if (rc != 0) {
                continue;
            }
            rx.src = nrx.src;
            rx.dst = nrx.dst;
            rx.ttl = nrx.ttl;
            rx.payload = nrx.payload;
            rx.len = nrx.payload_len;
        }
        deliver(s, &rx);
    }
}

static void on_link(const struct vrrp_net_event *ev, void *data)
{
    struct vrrp *v = data;
    for (uint32_t i = 0; i < v->n_routers; i++) {
        struct vrrp_router *r = &v->routers[i];
        if (r->is_loopback ||
            (ev->type != VRRP_NET_EVENT_LINK && ev->type != VRRP_NET_EVENT_LINK_GONE) ||
            ev->ifindex != r->ifindex) {
            continue;
        }
        bool down = ev->type == VRRP_NET_EVENT_LINK_GONE || !ev->is_usable; /* up + carrier */
        if (down != r->link_down) {
            log_notice("vrrp", "vrrp %u: interface %s is %s", r->vrid, r->vip->interface,
                       down ? "down" : "up");
            r->link_down = down;
            update_fault(r);
        }
    }
}

static void on_monitor(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    struct vrrp *v = io->data;
    if (vrrp_net_monitor_drain(v->mon_fd, on_link, v) < 0) {
        log_debug("vrrp", "reading link changes failed");
    }
}

/* ---------------------------------------------------------------- setup */

static int read_secret(const char *path, struct vrrp_auth_key *key, struct errbuf *eb)
{
    uint8_t buf[SECRET_MAX];
    size_t n = 0;
    int rc = secret_read(path, buf, sizeof(buf), &n, eb);
    if (rc == 0) {
        rc = vrrp_auth_key_init(key, buf, n, 1);
        if (rc != 0) {
            errbuf_set(eb, "cannot derive the VRRP key from the cluster secret %s: %s", path,
                       strerror(-rc));
        }
    }
    explicit_bzero(buf, sizeof(buf)); /* no copy of the secret left on the stack */
    return rc;
}

static int open_udp(struct in_addr self, uint32_t port, struct errbuf *eb)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, ttl = 255;
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = self};
    if (fd == -1 || setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &one, sizeof(one)) != 0 ||
        setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) != 0 ||
        setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)) != 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        errbuf_set(eb, "UDP socket on %s:%u: %s", inet_ntoa(self), port, strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

static bool parse_ip(const char *text, struct in_addr *out)
{
    return inet_pton(AF_INET, text, out) == 1;
}

/* The routers of one vip block; false if the block cannot run here (logged). */
static bool add_block(struct vrrp *v, const struct conf *conf, const struct conf_vip *vip,
                      const char *node)
{
    const struct conf_node *me = conf_find_node(conf, node);
    struct in_addr self;
    if (me == NULL || !parse_ip(me->address, &self)) {
        log_error("vrrp", "vip at line %d: node %s needs an IPv4 address", vip->pos.line, node);
        return false;
    }
    struct errbuf eb = {{0}};
    int ifindex = 0;
    int fd;
    if (vip->is_loopback) {
        fd = open_udp(self, vip->port, &eb);
    } else {
        ifindex = vrrp_net_ifindex(vip->interface, &eb);
        fd = ifindex <= 0 ? -1 : vrrp_net_sock_open(ifindex, &eb);
    }
    if (fd < 0) {
        log_error("vrrp", "vip at line %d: cannot run VRRP: %s", vip->pos.line, eb.msg);
        return false;
    }
    struct vrrp_sock *s = &v->socks[v->n_socks];
    s->v = v;
    s->fd = fd;
    s->is_udp = vip->is_loopback;
    s->first = v->n_routers;
    s->n = 0;
    uint32_t n = vrrp_conf_n_routers(vip);
    for (uint32_t i = 0; i < n && v->n_routers < VRRP_MAX_ROUTERS; i++) {
        struct vrrp_router *r = &v->routers[v->n_routers];
        memset(r, 0, sizeof(*r));
        r->v = v;
        r->vip_copy = *vip;
        r->vip = &r->vip_copy;
        r->vrid = (uint8_t)(vip->vrid + i);
        r->priority = (uint8_t)vrrp_conf_priority(vip, i, node);
        r->self = self;
        r->fd = fd;
        r->ifindex = ifindex;
        r->is_loopback = vip->is_loopback;
        if (vip->mode == CONF_VIP_ACTIVE_ACTIVE) {
            r->addrs[0] = vip->addrs[i];
            r->n_addrs = 1;
        } else {
            memcpy(r->addrs, vip->addrs, sizeof(r->addrs));
            r->n_addrs = vip->n_addrs;
        }
        for (uint32_t k = 0; k < vip->n_nodes; k++) {
            const struct conf_node *o = conf_find_node(conf, vip->nodes[k]);
            if (o != NULL && strcmp(o->name, node) != 0 &&
                parse_ip(o->address, &r->peers[r->n_peers])) {
                r->n_peers++;
            }
        }
        struct vrrp_fsm_config fc = {.vrid = r->vrid,
                                     .priority = r->priority,
                                     .advert_int_cs = (uint16_t)(vip->advert_ms / 10),
                                     .preempt = vip->preempt,
                                     .preempt_delay_ms = vip->preempt_delay_ms,
                                     .primary_ip = self};
        if (vrrp_fsm_init(&r->fsm, &fc) != 0) {
            log_error("vrrp", "vrrp %u: invalid parameters", r->vrid);
            continue;
        }
        ev_timer_init(&r->timer, on_timer, r, "vrrp");
        ev_timer_init(&r->later, on_later, r, "vrrp-later");
        ev_timer_init(&r->drain, on_drain, r, "vrrp-drain");
        v->vrs[v->n_routers] =
            (struct vrrp_pkt_vr){.vrid = r->vrid,
                                 .auth = vip->auth && v->has_key ? &v->key : NULL,
                                 .peers = vip->unicast || vip->is_loopback ? r->peers : NULL,
                                 .n_peers = vip->unicast || vip->is_loopback ? r->n_peers : 0};
        v->n_routers++;
        s->n++;
    }
    v->n_socks++;
    int rc = ev_io_start(v->loop, &s->io, fd, EV_READ, on_readable, s, "vrrp");
    if (rc != 0) {
        log_error("vrrp", "cannot watch the VRRP socket: %s", strerror(-rc));
    }
    return true;
}

/* Remove addresses an earlier run left on the interface before taking part. */
static void clear_stale(struct vrrp_router *r)
{
    for (uint32_t i = 0; !r->is_loopback && i < r->n_addrs; i++) {
        struct errbuf eb = {{0}};
        if (vrrp_net_vip_find(r->ifindex, r->addrs[i], &eb) == 1) {
            log_notice("vrrp", "vrrp %u: removing %s, left on %s by an earlier run", r->vrid,
                       inet_ntoa(r->addrs[i]), r->vip->interface);
            if (vrrp_net_vip_del(r->ifindex, r->addrs[i], r->vip->prefix, &eb) != 0) {
                log_error("vrrp", "vrrp %u: cannot remove it: %s", r->vrid, eb.msg);
            }
        }
    }
}

struct vrrp *vrrp_start(struct ev_loop *loop, const struct conf *conf, const char *node,
                        vrrp_hold_fn on_hold, void *data)
{
    if (node == NULL) {
        return NULL;
    }
    struct vrrp *v = NULL;
    for (uint32_t i = 0; i < conf->n_vips; i++) {
        const struct conf_vip *vip = &conf->vips[i];
        if (!node_in(vip, node)) {
            continue;
        }
        if (v == NULL) {
            v = calloc(1, sizeof(*v));
            if (v == NULL) {
                return NULL;
            }
            v->loop = loop;
            v->on_hold = on_hold;
            v->data = data;
            v->garp_fd = -1;
            v->mon_fd = -1;
            v->can_serve = true;
            if (conf->secret_file[0] != '\0') {
                struct errbuf eb = {{0}};
                v->has_key = read_secret(conf->secret_file, &v->key, &eb) == 0;
                if (!v->has_key) {
                    log_error("vrrp", "%s", eb.msg);
                }
            }
        }
        if (vip->auth && !v->has_key) {
            log_error("vrrp", "vip at line %d: auth on but no secret: not running it",
                      vip->pos.line);
            continue;
        }
        if (!vip->is_loopback) {
            struct errbuf eb = {{0}};
            if (v->garp_fd < 0) {
                v->garp_fd = vrrp_net_garp_open(&eb);
            }
            if (v->mon_fd < 0) {
                v->mon_fd = vrrp_net_monitor_open(&eb);
                if (v->mon_fd >= 0 &&
                    ev_io_start(loop, &v->mon_io, v->mon_fd, EV_READ, on_monitor, v, "rtnl") != 0) {
                    log_warn("vrrp", "cannot watch link changes");
                }
            }
        }
        (void)add_block(v, conf, vip, node);
    }
    if (v == NULL) {
        return NULL;
    }
    uint64_t now = ev_now_ms(loop);
    for (uint32_t i = 0; i < v->n_routers; i++) {
        struct vrrp_router *r = &v->routers[i];
        clear_stale(r);
        if (!r->is_loopback) {
            struct vrrp_net_link link;
            struct errbuf eb = {{0}};
            r->link_down = vrrp_net_link_by_index(r->ifindex, &link, &eb) != 0 || !link.is_usable;
        }
        struct vrrp_fsm_actions a;
        vrrp_fsm_start(&r->fsm, now, &a);
        log_notice("vrrp", "vrrp %u: %s mode on %s, priority %u, advert %u ms, %u peer%s", r->vrid,
                   r->is_loopback ? "loopback" : (r->vip->unicast ? "unicast" : "multicast"),
                   r->is_loopback ? "127.0.0.0/8" : r->vip->interface, r->priority,
                   r->vip->advert_ms, r->n_peers, r->n_peers == 1 ? "" : "s");
        apply(r, &a);
        update_fault(r);
    }
    return v;
}

void vrrp_set_can_serve(struct vrrp *v, bool can_serve)
{
    if (v == NULL || v->can_serve == can_serve) {
        return;
    }
    v->can_serve = can_serve;
    for (uint32_t i = 0; i < v->n_routers; i++) {
        struct vrrp_router *r = &v->routers[i];
        if (r->vip->track) {
            if (r->track_fault != !can_serve) {
                log_notice("vrrp", "vrrp %u: %s", r->vrid,
                           can_serve ? "the node can serve again"
                                     : "the node cannot serve (every server of a backend is "
                                       "down): giving up mastership");
            }
            r->track_fault = !can_serve;
            update_fault(r);
        }
    }
}

bool vrrp_hand_over(struct vrrp *v)
{
    if (v == NULL || v->is_stopped) {
        return true;
    }
    uint64_t now = ev_now_ms(v->loop), wait_ms = 0;
    for (uint32_t i = 0; i < v->n_routers; i++) {
        struct vrrp_router *r = &v->routers[i];
        bool was_master = r->fsm.state == VRRP_STATE_MASTER;
        struct vrrp_fsm_actions a;
        vrrp_fsm_shutdown(&r->fsm, now, &a); /* sends the priority-0 advert */
        a.del_vips = a.del_vips && !was_master;
        apply(r, &a);
        ev_timer_stop(v->loop, &r->timer);
        r->awaits_successor = was_master && r->hold != VRRP_HOLD_RELEASED;
        if (!r->awaits_successor) {
            ev_timer_stop(v->loop, &r->later);
            hold(r, false);
        }
        /* A backup takes over after its Skew_Time (under one interval); allow four. */
        uint64_t w = r->awaits_successor ? 4u * r->vip->advert_ms : 0;
        wait_ms = w > wait_ms ? w : wait_ms;
    }
    v->is_stopped = true;
    v->handover_deadline_ms = now + wait_ms;
    return vrrp_handed_over(v);
}

bool vrrp_handed_over(struct vrrp *v)
{
    if (v == NULL) {
        return true;
    }
    bool late = ev_now_ms(v->loop) >= v->handover_deadline_ms, done = true;
    for (uint32_t i = 0; i < v->n_routers; i++) {
        struct vrrp_router *r = &v->routers[i];
        if (r->awaits_successor && late) {
            log_notice("vrrp", "vrrp %u: no successor heard: releasing the addresses", r->vrid);
            r->awaits_successor = false;
            hold(r, false);
        }
        done = done && !r->awaits_successor;
    }
    return done;
}

void vrrp_stop(struct vrrp *v)
{
    if (v == NULL) {
        return;
    }
    (void)vrrp_hand_over(v); /* no-op when already stopped */
    for (uint32_t i = 0; i < v->n_routers; i++) {
        if (v->routers[i].hold == VRRP_HOLD_LEAVING && ev_timer_is_active(&v->routers[i].drain)) {
            send_advert(&v->routers[i], VRRP_FSM_PRIORITY_STOP); /* exiting: drained */
        }
        v->routers[i].awaits_successor = false;
        ev_timer_stop(v->loop, &v->routers[i].later);
        hold(&v->routers[i], false);
    }
}

void vrrp_free(struct vrrp *v)
{
    if (v == NULL) {
        return;
    }
    vrrp_stop(v);
    for (uint32_t i = 0; i < v->n_socks; i++) {
        ev_io_stop(v->loop, &v->socks[i].io);
        close(v->socks[i].fd);
    }
    if (v->mon_fd >= 0) {
        ev_io_stop(v->loop, &v->mon_io);
        close(v->mon_fd);
    }
    if (v->garp_fd >= 0) {
        close(v->garp_fd);
    }
    free(v);
}

/* ---------------------------------------------------------------- reporting */

enum { VM_STATE = 0, VM_PRIORITY, VM_TRANSITIONS, VM_SENT, VM_RECEIVED, VM_DROPPED };

static const struct metric_desc vrrp_metrics_desc[] = {
    [VM_STATE] = {"keel_vrrp_state", METRIC_GAUGE,
                  "VRRP state: 0 init, 1 backup, 2 master, 3 fault.", METRIC_LABELS("vrid")},
    [VM_PRIORITY] = {"keel_vrrp_priority", METRIC_GAUGE, "Effective VRRP priority.",
                     METRIC_LABELS("vrid")},
    [VM_TRANSITIONS] = {"keel_vrrp_transitions_total", METRIC_COUNTER,
                        "State changes of the virtual router.", METRIC_LABELS("vrid")},
    [VM_SENT] = {"keel_vrrp_adverts_sent_total", METRIC_COUNTER, "VRRP advertisements sent.",
                 METRIC_LABELS("vrid")},
    [VM_RECEIVED] = {"keel_vrrp_adverts_received_total", METRIC_COUNTER,
                     "VRRP advertisements received and accepted.", METRIC_LABELS("vrid")},
    [VM_DROPPED] = {"keel_vrrp_dropped_total", METRIC_COUNTER,
                    "Received VRRP packets dropped, by reason.", METRIC_LABELS("vrid", "reason")},
};

const struct metric_table vrrp_metric_table =
    METRIC_TABLE("Virtual routers (VRRP)", "src/vrrp/vrrp.c", vrrp_metrics_desc);

/* The value of family f (VM_STATE..VM_RECEIVED) for one router. */
static uint64_t router_value(const struct vrrp_router *r, int f)
{
    switch (f) {
    case VM_STATE:
        return (uint64_t)r->fsm.state;
    case VM_PRIORITY:
        return r->fsm.cfg.priority;
    case VM_TRANSITIONS:
        return r->transitions;
    case VM_SENT:
        return r->sent;
    default:
        return r->received;
    }
}

void vrrp_metrics(const struct vrrp *v, struct metrics_out *out)
{
    if (v == NULL) {
        return;
    }
    for (int f = VM_STATE; f <= VM_RECEIVED; f++) {
        metrics_family(out, &vrrp_metrics_desc[f]);
        for (uint32_t i = 0; i < v->n_routers; i++) {
            char vrid[8];
            (void)snprintf(vrid, sizeof(vrid), "%u", v->routers[i].vrid);
            metrics_sample_u64(out, &vrrp_metrics_desc[f], (const char *const[]){vrid},
                               router_value(&v->routers[i], f));
        }
    }
    const struct metric_desc *d = &vrrp_metrics_desc[VM_DROPPED];
    metrics_family(out, d);
    for (uint32_t s = 0; s < v->n_socks; s++) {
        const struct vrrp_router *r = &v->routers[v->socks[s].first];
        char vrid[8];
        (void)snprintf(vrid, sizeof(vrid), "%u", r->vrid);
        for (int why = 1; why < VRRP_PKT_REASON_COUNT; why++) {
            metrics_sample_u64(
                out, d,
                (const char *const[]){vrid, vrrp_pkt_reason_name((enum vrrp_pkt_reason)why)},
                r->dropped[why]);
        }
    }
}

void vrrp_status_json(const struct vrrp *v, struct json_w *w)
{
    json_w_begin_array(w);
    for (uint32_t i = 0; v != NULL && i < v->n_routers; i++) {
        const struct vrrp_router *r = &v->routers[i];
        char master[INET_ADDRSTRLEN] = "";
        struct in_addr m = r->fsm.state == VRRP_STATE_MASTER ? r->self : r->master;
        if (m.s_addr != 0 && r->fsm.state != VRRP_STATE_FAULT) {
            (void)inet_ntop(AF_INET, &m, master, sizeof(master));
        }
        json_w_begin_object(w);
        json_w_key_uint(w, "vrid", r->vrid);
        json_w_key_str(w, "state", vrrp_state_name(r->fsm.state));
        json_w_key_uint(w, "priority", r->fsm.cfg.priority);
        json_w_key_bool(w, "holding", r->hold != VRRP_HOLD_RELEASED);
        json_w_key_str(w, "master", master);
        json_w_key_str(w, "mode",
                       r->is_loopback ? "loopback" : (r->vip->unicast ? "unicast" : "multicast"));
        json_w_key_uint(w, "advert_ms", r->vip->advert_ms);
        json_w_key_uint(w, "transitions", r->transitions);
        json_w_key(w, "addresses");
        json_w_begin_array(w);
        for (uint32_t a = 0; a < r->n_addrs; a++) {
            char ip[INET_ADDRSTRLEN];
            (void)inet_ntop(AF_INET, &r->addrs[a], ip, sizeof(ip));
            json_w_str(w, ip);
        }
        json_w_end_array(w);
        json_w_end_object(w);
    }
    json_w_end_array(w);
}

/* ---------------------------------------------------------------- reload */

/* One router takes its block's live settings (vrrp_reload.h says which). */
static void reconfigure_router(struct vrrp_router *r, const struct conf_vip *vip, uint32_t i,
                               const char *node)
{
    uint64_t now = ev_now_ms(r->v->loop);
    uint8_t priority = (uint8_t)vrrp_conf_priority(vip, i, node);
    if (priority != r->priority || vip->advert_ms != r->vip->advert_ms ||
        vip->preempt != r->vip->preempt || vip->preempt_delay_ms != r->vip->preempt_delay_ms) {
        log_notice("vrrp", "vrrp %u: reload: priority %u, advert %u ms, preempt %s, delay %u ms",
                   r->vrid, priority, vip->advert_ms, vip->preempt ? "on" : "off",
                   vip->preempt_delay_ms);
    }
    r->vip_copy = *vip;
    struct vrrp_fsm_actions a;
    if (!r->v->is_stopped && vrrp_fsm_set_timing(&r->fsm, now, (uint16_t)(vip->advert_ms / 10),
                                                 vip->preempt, vip->preempt_delay_ms, &a) == 0) {
        apply(r, &a);
    }
    if (priority != r->priority) {
        r->priority = priority;
        if (!r->v->is_stopped && vrrp_fsm_set_priority(&r->fsm, now, priority, &a) == 0) {
            apply(r, &a);
        }
    }
    bool track_fault = vip->track && !r->v->can_serve;
    if (track_fault != r->track_fault) {
        r->track_fault = track_fault;
        update_fault(r);
    }
}

void vrrp_reconfigure(struct vrrp *v, const struct conf *conf, const char *node)
{
    for (uint32_t k = 0; v != NULL && node != NULL && k < v->n_routers; k++) {
        struct vrrp_router *r = &v->routers[k];
        for (uint32_t b = 0; b < conf->n_vips; b++) {
            const struct conf_vip *vip = &conf->vips[b];
            uint32_t i = r->vrid - vip->vrid;
            if (node_in(vip, node) && r->vrid >= vip->vrid && i < vrrp_conf_n_routers(vip)) {
                reconfigure_router(r, vip, i, node);
                break;
            }
        }
    }
}

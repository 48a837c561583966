/* SPDX-License-Identifier: MIT */
/* The Linux network plumbing under VRRPv3 (RFC 5798, IPv4): interface facts, a link and
 * address monitor (rtnetlink), the raw protocol-112 socket (send, receive, IPv4 header
 * parsing), virtual IP management (rtnetlink RTM_NEWADDR/RTM_DELADDR) and gratuitous ARP.
 * It deals in raw bytes and IP header facts; encoding VRRP messages (vrrp_pkt) and the
 * instance state machine (vrrp_fsm) live elsewhere. See docs/internals/vrrp_net.md.
 *
 * Blocking: nothing here waits on the network. Sockets are non-blocking and close-on-exec;
 * their fds go to the event loop. The rtnetlink requests (vrrp_net_vip_*, vrrp_net_addr_list,
 * vrrp_net_link_primary_addr) are local kernel calls answered in the sender's context; they
 * wait for the kernel's reply at most VRRP_NET_NL_TIMEOUT_MS.
 *
 * Errors: 0 or a count on success, -errno on failure, with a reason in the optional errbuf.
 * Addresses are struct in_addr in network byte order. */
#ifndef KEEL_VRRP_VRRP_NET_H
#define KEEL_VRRP_VRRP_NET_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "vrrp/vrrp_pkt.h" /* the protocol number, group and TTL */

#define VRRP_NET_VIP_PREFIXLEN 32   /* default prefix length of a virtual IP */
#define VRRP_NET_NL_TIMEOUT_MS 1000 /* bound on waiting for a rtnetlink reply */
#define VRRP_NET_MAX_MSG 1500       /* largest VRRP message sent (one Ethernet MTU) */
#define VRRP_NET_MAC_LEN 6

/* 224.0.0.18 as a struct in_addr. */
static inline struct in_addr vrrp_net_group(void)
{
    struct in_addr a = {.s_addr = htonl(VRRP_PKT_MCAST_GROUP)};
    return a;
}

/* ---- Interfaces ------------------------------------------------------------------------ */

/* What keel needs to know about one interface, read with ioctls (SIOCGIF*). */
struct vrrp_net_link {
    int ifindex;
    char name[IF_NAMESIZE];
    unsigned flags;                /* IFF_* as the kernel reports them */
    bool is_up;                    /* IFF_UP: administratively up */
    bool is_running;               /* IFF_RUNNING: operationally up (carrier) */
    bool is_usable;                /* both: VRRP can send and receive on it */
    bool is_loopback;              /* IFF_LOOPBACK: keel never manages addresses there */
    bool is_ether;                 /* ARPHRD_ETHER: has a MAC, gratuitous ARP applies */
    uint8_t mac[VRRP_NET_MAC_LEN]; /* valid when is_ether */
    unsigned mtu;
};

/* The index of interface ifname: > 0, or -ENODEV (no such interface in this network
 * namespace) or -EINVAL (bad name). Fills eb on failure. Does not block. */
int vrrp_net_ifindex(const char *ifname, struct errbuf *eb) KEEL_MUST_CHECK;

/* Fill *out for the interface named ifname, or with index ifindex. Returns 0 or -ENODEV,
 * -errno. Does not block. */
int vrrp_net_link_by_name(const char *ifname, struct vrrp_net_link *out,
                          struct errbuf *eb) KEEL_MUST_CHECK;
int vrrp_net_link_by_index(int ifindex, struct vrrp_net_link *out,
                           struct errbuf *eb) KEEL_MUST_CHECK;

/* The interface's primary IPv4 address, the source of VRRP adverts (RFC 5798 5.1.1.1):
 * the first address the kernel lists that is not IFA_F_SECONDARY and whose prefix is
 * shorter than /32; failing that, the first non-secondary /32. The preference keeps a /32
 * VIP (ours, or one left by a crashed run) from being mistaken for the node's address.
 * Returns 0, -ENODEV, or -EADDRNOTAVAIL when the interface has no IPv4 address.
 * rtnetlink dump: bounded by VRRP_NET_NL_TIMEOUT_MS. */
int vrrp_net_link_primary_addr(int ifindex, struct in_addr *out, struct errbuf *eb) KEEL_MUST_CHECK;

/* ---- Link and address monitor (rtnetlink multicast groups) ----------------------------- */

enum vrrp_net_event_type {
    VRRP_NET_EVENT_LINK = 1,  /* RTM_NEWLINK: link added or changed; read is_up/is_running */
    VRRP_NET_EVENT_LINK_GONE, /* RTM_DELLINK: the interface was removed */
    VRRP_NET_EVENT_ADDR_ADD,  /* RTM_NEWADDR: an IPv4 address appeared on ifindex */
    VRRP_NET_EVENT_ADDR_DEL,  /* RTM_DELADDR: an IPv4 address went away */
    VRRP_NET_EVENT_RESYNC,    /* the socket overflowed (ENOBUFS): events were lost, so
                                 re-read the state of every interface you care about */
};

struct vrrp_net_event {
    enum vrrp_net_event_type type;
    int ifindex;              /* 0 for RESYNC */
    char ifname[IF_NAMESIZE]; /* link events: IFLA_IFNAME; address events: the label */
    unsigned flags;           /* link events: IFF_* */
    bool is_up;               /* link events: IFF_UP */
    bool is_running;          /* link events: IFF_RUNNING (carrier) */
    bool is_usable;           /* link events: both */
    struct in_addr addr;      /* address events */
    uint8_t prefixlen;        /* address events */
};

/* Called once per event, in kernel order. ev is valid during the call only. */
typedef void (*vrrp_net_event_fn)(const struct vrrp_net_event *ev, void *data);

/* Open a NETLINK_ROUTE socket subscribed to RTMGRP_LINK and RTMGRP_IPV4_IFADDR, non-blocking
 * and close-on-exec. Watch it for EV_READ and call vrrp_net_monitor_drain. Returns the fd
 * (the caller closes it) or -errno. Needs no privilege. */
int vrrp_net_monitor_open(struct errbuf *eb) KEEL_MUST_CHECK;

/* Read what is queued on a monitor fd (at most 64 datagrams, so one busy socket cannot hog
 * the loop; level-triggered epoll calls again) and call on_event for each event. The kernel
 * sends RTM_NEWLINK for many changes (flags, MTU, carrier...): compare with the state you
 * hold. Returns the number of events reported (0 when nothing was queued) or -errno on a
 * socket error. Never blocks. */
int vrrp_net_monitor_drain(int fd, vrrp_net_event_fn on_event, void *data) KEEL_MUST_CHECK;

/* ---- Addresses and virtual IPs (rtnetlink requests) ------------------------------------ */

struct vrrp_net_addr {
    struct in_addr addr; /* IFA_LOCAL */
    uint8_t prefixlen;
    uint8_t scope;           /* RT_SCOPE_* */
    uint32_t flags;          /* IFA_F_* (IFA_F_SECONDARY, IFA_F_PERMANENT...) */
    char label[IF_NAMESIZE]; /* IFA_LABEL: the interface name unless a label was given */
};

/* List the IPv4 addresses of ifindex (all interfaces when ifindex is 0) in kernel order:
 * stores up to cap entries in out (out may be NULL when cap is 0) and returns how many
 * there are, which may exceed cap, or -errno. A starting node uses it to remove VIPs an
 * earlier crashed run left behind. rtnetlink dump: bounded by VRRP_NET_NL_TIMEOUT_MS. */
int vrrp_net_addr_list(int ifindex, struct vrrp_net_addr *out, size_t cap,
                       struct errbuf *eb) KEEL_MUST_CHECK;

/* Add vip/prefixlen (1..32; VRRP_NET_VIP_PREFIXLEN is the usual choice) to ifindex, scope
 * global, with IFA_LABEL label when label is not NULL (at most IF_NAMESIZE - 1 bytes; `ip`
 * shows it, e.g. "eth0:vip"). Returns 0, or:
 *   -EEXIST        the address is already on the interface (a caller wanting idempotence,
 *                  e.g. after a crash, treats it as success);
 *   -ENODEV        no such interface;
 *   -EOPNOTSUPP    ifindex is a loopback interface: keel never manages addresses on lo
 *                  (loopback mode binds VIPs in 127.0.0.0/8, which is local already);
 *   -EINVAL        vip is not a unicast address, is in 127.0.0.0/8, or prefixlen is bad;
 *   -EPERM         no CAP_NET_ADMIN.
 * rtnetlink request with NLM_F_ACK: bounded by VRRP_NET_NL_TIMEOUT_MS. */
int vrrp_net_vip_add(int ifindex, struct in_addr vip, unsigned prefixlen, const char *label,
                     struct errbuf *eb) KEEL_MUST_CHECK;

/* Remove vip/prefixlen from ifindex. The prefix length must match the one the address was
 * added with (vrrp_net_addr_list reports it). Returns 0, or -EADDRNOTAVAIL when the address
 * is not on the interface, and the codes of vrrp_net_vip_add otherwise. Same bound. */
int vrrp_net_vip_del(int ifindex, struct in_addr vip, unsigned prefixlen,
                     struct errbuf *eb) KEEL_MUST_CHECK;

/* Whether vip is on ifindex (any prefix length): 1 present, 0 absent, or -errno. Works on
 * loopback interfaces too (it only reads). Same bound. */
int vrrp_net_vip_find(int ifindex, struct in_addr vip, struct errbuf *eb) KEEL_MUST_CHECK;

/* ---- The VRRP socket ------------------------------------------------------------------- */

/* What the IPv4 header of a received packet says, and where the VRRP message is. */
struct vrrp_net_rx {
    struct in_addr src;     /* IP source: the sender's primary address */
    struct in_addr dst;     /* IP destination: 224.0.0.18 or our unicast address */
    uint8_t ttl;            /* must be 255 (RFC 5798 7.1) */
    int ifindex;            /* arrival interface (IP_PKTINFO); 0 if unknown */
    size_t ip_hdr_len;      /* 20 + options */
    const uint8_t *payload; /* the VRRP message, inside the caller's buffer */
    size_t payload_len;
};

/* Open the VRRP socket of ifindex: raw IPv4, protocol 112, non-blocking, close-on-exec,
 * SO_BINDTODEVICE to the interface, member of 224.0.0.18 there (ip_mreqn by index),
 * IP_MULTICAST_IF the interface, IP_MULTICAST_TTL and IP_TTL 255, IP_MULTICAST_LOOP off,
 * IP_MULTICAST_ALL off (only groups this socket joined), IP_PKTINFO on. Packets queued
 * before SO_BINDTODEVICE took effect (from any interface) are discarded. Needs CAP_NET_RAW.
 * Returns the fd (the caller closes it), -ENODEV, or -errno. Does not block. */
int vrrp_net_sock_open(int ifindex, struct errbuf *eb) KEEL_MUST_CHECK;

/* Send one VRRP message (msg, len bytes: the IP header is the kernel's) from src to dst
 * (vrrp_net_group() or a unicast peer) out of ifindex. src must be a local address, in
 * practice the interface's primary address; it is passed per packet (IP_PKTINFO) so the
 * socket stays unbound and keeps receiving every destination. VRRPv3's checksum covers a
 * pseudo-header with src and dst (RFC 5798 5.2.8), so msg must be encoded for this dst.
 * Returns 0, -EAGAIN (socket buffer full: drop this advert, the next one is due soon),
 * -ENETUNREACH (the kernel's route lookup failed: the link is down, or src is not a local
 * address), -EMSGSIZE, or -errno. A link that is up but not yet running (no carrier, or
 * linkwatch has not caught up) silently drops what it is given. Never blocks. */
int vrrp_net_send(int fd, int ifindex, struct in_addr src, struct in_addr dst, const void *msg,
                  size_t len) KEEL_MUST_CHECK;

/* Encode the message for one destination into out (cap bytes): returns its length, or a
 * negative error code to skip this destination. */
typedef int (*vrrp_net_encode_fn)(void *ctx, struct in_addr src, struct in_addr dst, uint8_t *out,
                                  size_t cap);

/* Unicast mode: send to each of n_peers addresses, calling encode for each (checksums
 * differ per destination). Tries every peer; returns 0 if all were sent, else the first
 * error. Never blocks. */
int vrrp_net_send_peers(int fd, int ifindex, struct in_addr src, const struct in_addr *peers,
                        size_t n_peers, vrrp_net_encode_fn encode, void *ctx) KEEL_MUST_CHECK;

/* Receive one packet into buf (cap bytes, VRRP_NET_MAX_MSG + 60 is plenty) and fill *rx;
 * rx->payload points into buf. Returns 0, -EAGAIN when nothing is queued (call until it
 * says so), -EMSGSIZE if the packet did not fit (it is dropped), -EBADMSG if its IPv4
 * header is malformed, or -errno. Count and drop bad packets; keep draining. Never blocks.
 * Note: on a loopback interface a raw socket also receives what it sends itself. */
int vrrp_net_recv(int fd, uint8_t *buf, size_t cap, struct vrrp_net_rx *rx) KEEL_MUST_CHECK;

/* Parse the IPv4 header at the start of pkt (len bytes, as a raw socket delivers it: header,
 * options, payload) into rx: src, dst, ttl, header length (IHL, options skipped) and payload
 * (bounded by the header's total length). Leaves rx->ifindex alone. Returns 0 or -EBADMSG
 * (not IPv4, IHL < 5, header or total length beyond len). The header checksum is not
 * checked: the kernel dropped bad ones before raw delivery. Pure: no I/O. */
int vrrp_net_parse_ip(const uint8_t *pkt, size_t len, struct vrrp_net_rx *rx) KEEL_MUST_CHECK;

/* ---- Gratuitous ARP -------------------------------------------------------------------- */

enum vrrp_net_arp_op {
    VRRP_NET_ARP_REQUEST = 1, /* ARPOP_REQUEST, target MAC ff:ff:ff:ff:ff:ff (keepalived) */
    VRRP_NET_ARP_REPLY = 2,   /* ARPOP_REPLY, target MAC = sender MAC (arping -A) */
};

/* Open a packet socket for gratuitous ARP (AF_PACKET, SOCK_RAW, protocol 0 so that it
 * receives nothing), non-blocking, close-on-exec. One serves every interface. Needs
 * CAP_NET_RAW. Returns the fd (the caller closes it) or -errno. */
int vrrp_net_garp_open(struct errbuf *eb) KEEL_MUST_CHECK;

/* Send one gratuitous ARP for vip out of ifindex: Ethernet broadcast from mac, sender and
 * target IP both vip, sender MAC mac. mac NULL means the interface's own MAC. How many to
 * send, and when, is the caller's choice (keepalived: 5 on becoming master). Returns 0,
 * -EOPNOTSUPP (not an Ethernet interface: lo, tun...), -ENETDOWN, -EAGAIN, or -errno.
 * Never blocks. */
int vrrp_net_garp_send(int fd, int ifindex, const uint8_t *mac, struct in_addr vip,
                       enum vrrp_net_arp_op op) KEEL_MUST_CHECK;

#endif

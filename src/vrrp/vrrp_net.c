/* SPDX-License-Identifier: MIT */
/* Linux network plumbing for VRRPv3 over IPv4: interface facts (ioctl SIOCGIF*), rtnetlink
 * (address dumps, VIP add/delete with acks, the link/address monitor), the raw protocol-112
 * socket and its IPv4 header parser, and gratuitous ARP over a packet socket. It knows
 * nothing of the VRRP message format (vrrp_pkt) or of instance states (vrrp_fsm), and never
 * runs `ip`: every change goes through NETLINK_ROUTE. docs/internals/vrrp_net.md has the
 * why of each socket option and the capabilities each call needs. */
#include "vrrp/vrrp_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/ethernet.h>
#include <net/if_arp.h>
#include <netpacket/packet.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Large enough for any rtnetlink datagram the kernel builds for us: dumps size their skbs
 * after the reader's buffer, up to 32 KiB. */
#define NL_BUF_LEN 32768
#define MONITOR_MAX_DATAGRAMS 64
#define MONITOR_RCVBUF (1 << 20)
#define ARP_FRAME_LEN 42 /* Ethernet header 14 + ARP for IPv4 over Ethernet 28 */

static const char *ip_text(struct in_addr a, char *out, size_t outlen)
{
    if (inet_ntop(AF_INET, &a, out, (socklen_t)outlen) == NULL) {
        snprintf(out, outlen, "?");
    }
    return out;
}

/* ======================================================================================== */
/* Interfaces                                                                               */
/* ======================================================================================== */

/* Fill *out from ifr (name set) with ioctls on fd, which may be any socket. */
static int link_fill(int fd, struct ifreq *ifr, struct vrrp_net_link *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", ifr->ifr_name);
    if (ioctl(fd, SIOCGIFINDEX, ifr) == -1) {
        return -errno;
    }
    out->ifindex = ifr->ifr_ifindex;
    if (ioctl(fd, SIOCGIFFLAGS, ifr) == -1) {
        return -errno;
    }
    out->flags = (unsigned)(unsigned short)ifr->ifr_flags;
    out->is_up = (out->flags & IFF_UP) != 0;
    out->is_running = (out->flags & IFF_RUNNING) != 0;
    out->is_usable = out->is_up && out->is_running;
    out->is_loopback = (out->flags & IFF_LOOPBACK) != 0;
    if (ioctl(fd, SIOCGIFMTU, ifr) == -1) {
        return -errno;
    }
    out->mtu = (unsigned)ifr->ifr_mtu;
    if (ioctl(fd, SIOCGIFHWADDR, ifr) == -1) {
        return -errno;
    }
    if (ifr->ifr_hwaddr.sa_family == ARPHRD_ETHER) {
        out->is_ether = true;
        memcpy(out->mac, ifr->ifr_hwaddr.sa_data, VRRP_NET_MAC_LEN);
    }
    return 0;
}

static int ioctl_socket(struct errbuf *eb)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        int e = errno;
        errbuf_set(eb, "socket(AF_INET) for interface ioctls failed: %s", strerror(e));
        return -e;
    }
    return fd;
}

int vrrp_net_link_by_name(const char *ifname, struct vrrp_net_link *out, struct errbuf *eb)
{
    size_t len = strlen(ifname);
    if (len == 0 || len >= IF_NAMESIZE) {
        errbuf_set(eb, "\"%s\" is not a valid interface name", ifname);
        return -EINVAL;
    }
    int fd = ioctl_socket(eb);
    if (fd < 0) {
        return fd;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, ifname, len + 1);
    int rc = link_fill(fd, &ifr, out);
    close(fd);
    if (rc == -ENODEV) {
        errbuf_set(eb, "no interface named %s", ifname);
    } else if (rc < 0) {
        errbuf_set(eb, "reading interface %s failed: %s", ifname, strerror(-rc));
    }
    return rc;
}

int vrrp_net_link_by_index(int ifindex, struct vrrp_net_link *out, struct errbuf *eb)
{
    if (ifindex <= 0) {
        errbuf_set(eb, "no interface with index %d", ifindex);
        return -ENODEV;
    }
    int fd = ioctl_socket(eb);
    if (fd < 0) {
        return fd;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_ifindex = ifindex;
    int rc = 0;
    if (ioctl(fd, SIOCGIFNAME, &ifr) == -1) {
        rc = -errno;
    } else {
        rc = link_fill(fd, &ifr, out);
    }
    close(fd);
    if (rc == -ENODEV) {
        errbuf_set(eb, "no interface with index %d", ifindex);
    } else if (rc < 0) {
        errbuf_set(eb, "reading interface %d failed: %s", ifindex, strerror(-rc));
    }
    return rc;
}

int vrrp_net_ifindex(const char *ifname, struct errbuf *eb)
{
    struct vrrp_net_link link;
    int rc = vrrp_net_link_by_name(ifname, &link, eb);
    return rc < 0 ? rc : link.ifindex;
}

/* ======================================================================================== */
/* rtnetlink: requests and parsing                                                          */
/* ======================================================================================== */

/* Called for each reply message of a request that is not an ack, error or end of dump. */
typedef void (*nl_msg_fn)(const struct nlmsghdr *nh, void *ctx);

/* A request being built: header, family header, attributes. */
struct nl_req {
    union {
        struct nlmsghdr nh;
        uint8_t bytes[256];
    } u;
};

static int nl_put_attr(struct nl_req *req, uint16_t type, const void *data, size_t len)
{
    size_t off = NLMSG_ALIGN(req->u.nh.nlmsg_len);
    if (off + RTA_SPACE(len) > sizeof(req->u.bytes)) {
        return -EMSGSIZE;
    }
    struct rtattr *rta = (struct rtattr *)(req->u.bytes + off);
    rta->rta_type = type;
    rta->rta_len = (unsigned short)RTA_LENGTH(len);
    memcpy(RTA_DATA(rta), data, len);
    req->u.nh.nlmsg_len = (uint32_t)(off + RTA_SPACE(len));
    return 0;
}

/* The kernel's own words on a failed request (NETLINK_EXT_ACK), or "" if it gave none. */
static const char *nl_ext_ack(const struct nlmsghdr *nh)
{
    const struct nlmsgerr *err = NLMSG_DATA(nh);
    if (!(nh->nlmsg_flags & NLM_F_ACK_TLVS)) {
        return "";
    }
    size_t off = sizeof(*err);
    if (!(nh->nlmsg_flags & NLM_F_CAPPED)) {
        off += err->msg.nlmsg_len - NLMSG_HDRLEN;
    }
    off = NLMSG_HDRLEN + NLMSG_ALIGN(off);
    while (off + sizeof(struct nlattr) <= nh->nlmsg_len) {
        const struct nlattr *nla = (const struct nlattr *)((const uint8_t *)nh + off);
        if (nla->nla_len < sizeof(*nla) || off + nla->nla_len > nh->nlmsg_len) {
            break;
        }
        const char *payload = (const char *)nla + NLA_HDRLEN;
        size_t plen = nla->nla_len - NLA_HDRLEN;
        if ((nla->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG && plen > 0 &&
            payload[plen - 1] == '\0') {
            return payload;
        }
        off += NLA_ALIGN(nla->nla_len);
    }
    return "";
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait (at most until deadline_ms) and read one datagram from the kernel. Returns its
 * length, or -ETIMEDOUT, -EMSGSIZE (truncated), -errno. */
static ssize_t nl_recv(int fd, uint8_t *buf, size_t cap, int64_t deadline_ms)
{
    for (;;) {
        struct sockaddr_nl from;
        socklen_t fromlen = sizeof(from);
        ssize_t n =
            recvfrom(fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &fromlen);
        if (n >= 0) {
            if (from.nl_pid != 0) {
                continue; /* only the kernel may answer */
            }
            return (size_t)n > cap ? -EMSGSIZE : n;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN) {
            return -errno;
        }
        int64_t left = deadline_ms - mono_ms();
        if (left <= 0) {
            return -ETIMEDOUT;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) == -1 && errno != EINTR) {
            return -errno;
        }
    }
}

/* Walk one datagram. Returns 1 when the request is finished (ack or end of dump), 0 when
 * more datagrams follow, or a negative error (kernel message copied into kmsg). */
static int nl_walk(const uint8_t *buf, size_t len, uint32_t seq, nl_msg_fn on_msg, void *ctx,
                   char *kmsg, size_t kmsg_len)
{
    int left = (int)len;
    for (const struct nlmsghdr *nh = (const struct nlmsghdr *)buf; NLMSG_OK(nh, left);
         nh = NLMSG_NEXT(nh, left)) {
        if (nh->nlmsg_seq != seq) {
            continue;
        }
        if (nh->nlmsg_type == NLMSG_ERROR) {
            if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
                return -EBADMSG;
            }
            const struct nlmsgerr *err = NLMSG_DATA(nh);
            if (err->error == 0) {
                return 1;
            }
            snprintf(kmsg, kmsg_len, "%s", nl_ext_ack(nh));
            return err->error < 0 ? err->error : -EPROTO;
        }
        if (nh->nlmsg_type == NLMSG_DONE) {
            if (nh->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
                int status;
                memcpy(&status, NLMSG_DATA(nh), sizeof(status));
                if (status < 0) {
                    return status;
                }
            }
            return 1;
        }
        if (on_msg != NULL) {
            on_msg(nh, ctx);
        }
    }
    return 0;
}

/* Send req to the kernel on a fresh NETLINK_ROUTE socket and read the answer: messages go
 * to on_msg, until the ack (error 0), an error, or the end of a dump. The kernel handles the
 * request in sendmsg() itself, so the answer is already queued when we read; the poll
 * deadline only guards against surprises. Returns 0 or -errno; the kernel's extended ack
 * text, if any, goes into kmsg. */
static int nl_talk(struct nl_req *req, nl_msg_fn on_msg, void *ctx, char *kmsg, size_t kmsg_len)
{
    kmsg[0] = '\0';
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd == -1) {
        return -errno;
    }
    int one = 1;
    /* Best effort: older kernels lack them and the request works without. */
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));

    uint32_t seq = 1; /* a fresh socket per request: nothing else to tell apart */
    req->u.nh.nlmsg_seq = seq;
    req->u.nh.nlmsg_pid = 0;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    ssize_t n;
    do {
        n = sendto(fd, req->u.bytes, req->u.nh.nlmsg_len, 0, (struct sockaddr *)&kernel,
                   sizeof(kernel));
    } while (n == -1 && errno == EINTR);
    if (n == -1) {
        int e = errno;
        close(fd);
        return -e;
    }

    uint8_t buf[NL_BUF_LEN] __attribute__((aligned(NLMSG_ALIGNTO)));
    int64_t deadline_ms = mono_ms() + VRRP_NET_NL_TIMEOUT_MS;
    int rc = 0;
    while (rc == 0) {
        n = nl_recv(fd, buf, sizeof(buf), deadline_ms);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        rc = nl_walk(buf, (size_t)n, seq, on_msg, ctx, kmsg, kmsg_len);
    }
    close(fd);
    return rc < 0 ? rc : 0;
}

/* Parse an RTM_NEWADDR/RTM_DELADDR message. Returns false if it is not a well-formed IPv4
 * address message. */
static bool parse_ifaddr(const struct nlmsghdr *nh, int *ifindex, struct vrrp_net_addr *out)
{
    if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifaddrmsg))) {
        return false;
    }
    const struct ifaddrmsg *ifa = NLMSG_DATA(nh);
    if (ifa->ifa_family != AF_INET) {
        return false;
    }
    memset(out, 0, sizeof(*out));
    *ifindex = (int)ifa->ifa_index;
    out->prefixlen = ifa->ifa_prefixlen;
    out->scope = ifa->ifa_scope;
    out->flags = ifa->ifa_flags;
    bool has_local = false, has_address = false;
    struct in_addr address = {0};
    int len = (int)IFA_PAYLOAD(nh);
    for (const struct rtattr *rta = IFA_RTA(ifa); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
        size_t plen = RTA_PAYLOAD(rta);
        if (rta->rta_type == IFA_LOCAL && plen == 4) {
            memcpy(&out->addr, RTA_DATA(rta), 4);
            has_local = true;
        } else if (rta->rta_type == IFA_ADDRESS && plen == 4) {
            memcpy(&address, RTA_DATA(rta), 4);
            has_address = true;
        } else if (rta->rta_type == IFA_LABEL && plen > 0) {
            snprintf(out->label, sizeof(out->label), "%.*s", (int)plen,
                     (const char *)RTA_DATA(rta));
        } else if (rta->rta_type == IFA_FLAGS && plen == 4) {
            memcpy(&out->flags, RTA_DATA(rta), 4); /* all 32 bits; ifa_flags has 8 */
        }
    }
    /* IFA_LOCAL is the interface's address; IFA_ADDRESS differs only on point-to-point
     * links (the peer) and is all there is on some old kernels. */
    if (!has_local) {
        if (!has_address) {
            return false;
        }
        out->addr = address;
    }
    return true;
}

/* ======================================================================================== */
/* Addresses and virtual IPs                                                                */
/* ======================================================================================== */

typedef void (*addr_fn)(const struct vrrp_net_addr *addr, void *ctx);

struct addr_dump {
    int ifindex;
    addr_fn on_addr;
    void *ctx;
};

static void on_addr_msg(const struct nlmsghdr *nh, void *ctx)
{
    struct addr_dump *d = ctx;
    struct vrrp_net_addr addr;
    int ifindex;
    if (nh->nlmsg_type == RTM_NEWADDR && parse_ifaddr(nh, &ifindex, &addr) &&
        (d->ifindex == 0 || ifindex == d->ifindex)) {
        d->on_addr(&addr, d->ctx);
    }
}

/* Dump the IPv4 addresses of ifindex (0: all) to on_addr. Fails with -ENODEV when ifindex
 * names no interface (a dump would just come back empty). */
static int addr_dump(int ifindex, addr_fn on_addr, void *ctx, struct errbuf *eb)
{
    if (ifindex != 0) {
        struct vrrp_net_link link;
        int rc = vrrp_net_link_by_index(ifindex, &link, eb);
        if (rc < 0) {
            return rc;
        }
    }
    struct nl_req req;
    memset(&req, 0, sizeof(req));
    req.u.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
    req.u.nh.nlmsg_type = RTM_GETADDR;
    req.u.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    struct ifaddrmsg *ifa = NLMSG_DATA(&req.u.nh);
    ifa->ifa_family = AF_INET;
    /* Filtering by ifa_index in the kernel needs NETLINK_GET_STRICT_CHK (4.20+); filtering
     * here works everywhere and the list is short. */
    struct addr_dump d = {.ifindex = ifindex, .on_addr = on_addr, .ctx = ctx};
    char kmsg[256];
    int rc = nl_talk(&req, on_addr_msg, &d, kmsg, sizeof(kmsg));
    if (rc < 0) {
        errbuf_set(eb, "rtnetlink RTM_GETADDR dump failed: %s%s%s", strerror(-rc),
                   kmsg[0] != '\0' ? ": " : "", kmsg);
    }
    return rc;
}

struct addr_list {
    struct vrrp_net_addr *out;
    size_t cap;
    size_t n;
};

static void on_addr_list(const struct vrrp_net_addr *addr, void *ctx)
{
    struct addr_list *l = ctx;
    if (l->n < l->cap) {
        l->out[l->n] = *addr;
    }
    l->n++;
}

int vrrp_net_addr_list(int ifindex, struct vrrp_net_addr *out, size_t cap, struct errbuf *eb)
{
    struct addr_list l = {.out = out, .cap = out != NULL ? cap : 0};
    int rc = addr_dump(ifindex, on_addr_list, &l, eb);
    if (rc < 0) {
        return rc;
    }
    return l.n > (size_t)INT32_MAX ? INT32_MAX : (int)l.n;
}

struct addr_find {
    struct in_addr want;
    bool found;
};

static void on_addr_find(const struct vrrp_net_addr *addr, void *ctx)
{
    struct addr_find *f = ctx;
    if (addr->addr.s_addr == f->want.s_addr) {
        f->found = true;
    }
}

int vrrp_net_vip_find(int ifindex, struct in_addr vip, struct errbuf *eb)
{
    struct addr_find f = {.want = vip};
    int rc = addr_dump(ifindex, on_addr_find, &f, eb);
    return rc < 0 ? rc : f.found;
}

struct addr_primary {
    struct in_addr best;
    bool has_best; /* a primary with a prefix shorter than /32 */
    struct in_addr host;
    bool has_host; /* a primary /32 */
};

static void on_addr_primary(const struct vrrp_net_addr *addr, void *ctx)
{
    struct addr_primary *p = ctx;
    if (addr->flags & IFA_F_SECONDARY) {
        return;
    }
    if (addr->prefixlen < 32 && !p->has_best) {
        p->best = addr->addr;
        p->has_best = true;
    } else if (addr->prefixlen == 32 && !p->has_host) {
        p->host = addr->addr;
        p->has_host = true;
    }
}

int vrrp_net_link_primary_addr(int ifindex, struct in_addr *out, struct errbuf *eb)
{
    struct addr_primary p;
    memset(&p, 0, sizeof(p));
    int rc = addr_dump(ifindex, on_addr_primary, &p, eb);
    if (rc < 0) {
        return rc;
    }
    if (!p.has_best && !p.has_host) {
        errbuf_set(eb, "interface %d has no IPv4 address", ifindex);
        return -EADDRNOTAVAIL;
    }
    *out = p.has_best ? p.best : p.host;
    return 0;
}

/* Refuse what keel never manages: addresses on loopback interfaces, 127.0.0.0/8 (local as
 * a whole already: loopback mode binds VIPs there instead), and non-unicast addresses. */
static int vip_check(int ifindex, struct in_addr vip, unsigned prefixlen, struct errbuf *eb)
{
    char ip[INET_ADDRSTRLEN];
    uint32_t h = ntohl(vip.s_addr);
    ip_text(vip, ip, sizeof(ip));
    if (prefixlen < 1 || prefixlen > 32) {
        errbuf_set(eb, "%s/%u: prefix length must be 1..32", ip, prefixlen);
        return -EINVAL;
    }
    if ((h >> 24) == 127) {
        errbuf_set(eb,
                   "%s is in 127.0.0.0/8, which is local already: in loopback mode the "
                   "master binds the VIP, there is no address to add or remove",
                   ip);
        return -EINVAL;
    }
    if ((h >> 24) == 0 || IN_MULTICAST(h) || IN_BADCLASS(h)) {
        errbuf_set(eb, "%s is not a unicast address", ip);
        return -EINVAL;
    }
    struct vrrp_net_link link;
    int rc = vrrp_net_link_by_index(ifindex, &link, eb);
    if (rc < 0) {
        return rc;
    }
    if (link.is_loopback) {
        errbuf_set(eb,
                   "%s is a loopback interface: keel does not manage addresses on it "
                   "(loopback mode binds VIPs in 127.0.0.0/8 instead)",
                   link.name);
        return -EOPNOTSUPP;
    }
    return 0;
}

/* RTM_NEWADDR or RTM_DELADDR for vip/prefixlen on ifindex, with an ack. */
static int vip_request(uint16_t type, uint16_t flags, int ifindex, struct in_addr vip,
                       unsigned prefixlen, const char *label, char *kmsg, size_t kmsg_len)
{
    struct nl_req req;
    memset(&req, 0, sizeof(req));
    req.u.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
    req.u.nh.nlmsg_type = type;
    req.u.nh.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
    struct ifaddrmsg *ifa = NLMSG_DATA(&req.u.nh);
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = (uint8_t)prefixlen;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = (uint32_t)ifindex;
    /* IFA_LOCAL is the address; IFA_ADDRESS (the same on a broadcast link) is what the
     * kernel derives the prefix from, and on delete makes it match the prefix length too. */
    int rc = nl_put_attr(&req, IFA_LOCAL, &vip, sizeof(vip));
    if (rc == 0) {
        rc = nl_put_attr(&req, IFA_ADDRESS, &vip, sizeof(vip));
    }
    if (rc == 0 && label != NULL) {
        rc = nl_put_attr(&req, IFA_LABEL, label, strlen(label) + 1);
    }
    if (rc < 0) {
        return rc;
    }
    return nl_talk(&req, NULL, NULL, kmsg, kmsg_len);
}

int vrrp_net_vip_add(int ifindex, struct in_addr vip, unsigned prefixlen, const char *label,
                     struct errbuf *eb)
{
    int rc = vip_check(ifindex, vip, prefixlen, eb);
    if (rc < 0) {
        return rc;
    }
    char ip[INET_ADDRSTRLEN];
    ip_text(vip, ip, sizeof(ip));
    if (label != NULL && (label[0] == '\0' || strlen(label) >= IF_NAMESIZE)) {
        errbuf_set(eb, "label \"%s\" for %s must be 1..%d bytes", label, ip, IF_NAMESIZE - 1);
        return -EINVAL;
    }
    char kmsg[256];
    rc = vip_request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifindex, vip, prefixlen, label, kmsg,
                     sizeof(kmsg));
    if (rc == -EEXIST) {
        errbuf_set(eb, "%s/%u is already on interface %d", ip, prefixlen, ifindex);
    } else if (rc == -EPERM) {
        errbuf_set(eb, "adding %s/%u to interface %d needs CAP_NET_ADMIN", ip, prefixlen, ifindex);
    } else if (rc < 0) {
        errbuf_set(eb, "rtnetlink RTM_NEWADDR %s/%u on interface %d failed: %s%s%s", ip, prefixlen,
                   ifindex, strerror(-rc), kmsg[0] != '\0' ? ": " : "", kmsg);
    }
    return rc;
}

int vrrp_net_vip_del(int ifindex, struct in_addr vip, unsigned prefixlen, struct errbuf *eb)
{
    int rc = vip_check(ifindex, vip, prefixlen, eb);
    if (rc < 0) {
        return rc;
    }
    char ip[INET_ADDRSTRLEN];
    ip_text(vip, ip, sizeof(ip));
    char kmsg[256];
    rc = vip_request(RTM_DELADDR, 0, ifindex, vip, prefixlen, NULL, kmsg, sizeof(kmsg));
    if (rc == -EADDRNOTAVAIL) {
        errbuf_set(eb, "%s/%u is not on interface %d", ip, prefixlen, ifindex);
    } else if (rc == -EPERM) {
        errbuf_set(eb, "removing %s/%u from interface %d needs CAP_NET_ADMIN", ip, prefixlen,
                   ifindex);
    } else if (rc < 0) {
        errbuf_set(eb, "rtnetlink RTM_DELADDR %s/%u on interface %d failed: %s%s%s", ip, prefixlen,
                   ifindex, strerror(-rc), kmsg[0] != '\0' ? ": " : "", kmsg);
    }
    return rc;
}

/* ======================================================================================== */
/* Link and address monitor                                                                 */
/* ======================================================================================== */

int vrrp_net_monitor_open(struct errbuf *eb)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd == -1) {
        int e = errno;
        errbuf_set(eb, "socket(AF_NETLINK, NETLINK_ROUTE) failed: %s", strerror(e));
        return -e;
    }
    /* A burst (many interfaces flapping) must not overflow the default ~200 KiB buffer;
     * FORCE passes rmem_max with CAP_NET_ADMIN. Overflows are still reported (RESYNC). */
    int size = MONITOR_RCVBUF;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) == -1) {
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)); /* best effort */
    }
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK,
                             .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR};
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        int e = errno;
        errbuf_set(eb,
                   "bind() of the rtnetlink monitor to RTMGRP_LINK|RTMGRP_IPV4_IFADDR "
                   "failed: %s",
                   strerror(e));
        close(fd);
        return -e;
    }
    return fd;
}

static bool parse_ifinfo(const struct nlmsghdr *nh, struct vrrp_net_event *ev)
{
    if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg))) {
        return false;
    }
    const struct ifinfomsg *ifi = NLMSG_DATA(nh);
    ev->type = nh->nlmsg_type == RTM_DELLINK ? VRRP_NET_EVENT_LINK_GONE : VRRP_NET_EVENT_LINK;
    ev->ifindex = ifi->ifi_index;
    ev->flags = ifi->ifi_flags;
    /* The kernel computes IFF_RUNNING from the operational state (dev_get_flags), so no
     * need to read IFLA_OPERSTATE. */
    ev->is_up = (ifi->ifi_flags & IFF_UP) != 0;
    ev->is_running = (ifi->ifi_flags & IFF_RUNNING) != 0;
    ev->is_usable = ev->is_up && ev->is_running;
    int len = (int)IFLA_PAYLOAD(nh);
    for (const struct rtattr *rta = IFLA_RTA(ifi); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
        if (rta->rta_type == IFLA_IFNAME && RTA_PAYLOAD(rta) > 0) {
            snprintf(ev->ifname, sizeof(ev->ifname), "%.*s", (int)RTA_PAYLOAD(rta),
                     (const char *)RTA_DATA(rta));
        }
    }
    return true;
}

static bool parse_event(const struct nlmsghdr *nh, struct vrrp_net_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    switch (nh->nlmsg_type) {
    case RTM_NEWLINK:
    case RTM_DELLINK:
        return parse_ifinfo(nh, ev);
    case RTM_NEWADDR:
    case RTM_DELADDR: {
        struct vrrp_net_addr addr;
        if (!parse_ifaddr(nh, &ev->ifindex, &addr)) {
            return false;
        }
        ev->type =
            nh->nlmsg_type == RTM_NEWADDR ? VRRP_NET_EVENT_ADDR_ADD : VRRP_NET_EVENT_ADDR_DEL;
        ev->addr = addr.addr;
        ev->prefixlen = addr.prefixlen;
        memcpy(ev->ifname, addr.label, sizeof(ev->ifname));
        return true;
    }
    default:
        return false;
    }
}

int vrrp_net_monitor_drain(int fd, vrrp_net_event_fn on_event, void *data)
{
    uint8_t buf[NL_BUF_LEN] __attribute__((aligned(NLMSG_ALIGNTO)));
    struct vrrp_net_event ev;
    int count = 0;
    for (int i = 0; i < MONITOR_MAX_DATAGRAMS; i++) {
        struct sockaddr_nl from;
        socklen_t fromlen = sizeof(from);
        ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
                             (struct sockaddr *)&from, &fromlen);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                break;
            }
            if (errno != ENOBUFS) {
                return -errno;
            }
            /* The kernel dropped notifications: the socket still works, but what we know
             * may be stale. Only a fresh read of the state can fix that. */
            memset(&ev, 0, sizeof(ev));
            ev.type = VRRP_NET_EVENT_RESYNC;
            on_event(&ev, data);
            count++;
            continue;
        }
        if (from.nl_pid != 0) {
            continue; /* not from the kernel: ignore */
        }
        if ((size_t)n > sizeof(buf)) {
            memset(&ev, 0, sizeof(ev)); /* truncated, so events were lost */
            ev.type = VRRP_NET_EVENT_RESYNC;
            on_event(&ev, data);
            count++;
            continue;
        }
        int left = (int)n;
        for (const struct nlmsghdr *nh = (const struct nlmsghdr *)buf; NLMSG_OK(nh, left);
             nh = NLMSG_NEXT(nh, left)) {
            if (parse_event(nh, &ev)) {
                on_event(&ev, data);
                count++;
            }
        }
    }
    return count;
}

/* ======================================================================================== */
/* The VRRP socket                                                                          */
/* ======================================================================================== */

struct int_opt {
    int level;
    int name;
    int value;
    const char *what;
};

/* Why each: docs/internals/vrrp_net.md. */
static const struct int_opt vrrp_int_opts[] = {
    {IPPROTO_IP, IP_MULTICAST_TTL, VRRP_PKT_IP_TTL, "IP_MULTICAST_TTL"},
    {IPPROTO_IP, IP_TTL, VRRP_PKT_IP_TTL, "IP_TTL"},
    {IPPROTO_IP, IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP"},
    {IPPROTO_IP, IP_MULTICAST_ALL, 0, "IP_MULTICAST_ALL"},
    {IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO"},
};

static int sock_setup(int fd, const struct vrrp_net_link *link, struct errbuf *eb)
{
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, link->name,
                   (socklen_t)strlen(link->name) + 1) == -1) {
        int e = errno;
        errbuf_set(eb, "setsockopt(SO_BINDTODEVICE %s) failed: %s", link->name, strerror(e));
        return -e;
    }
    for (size_t i = 0; i < sizeof(vrrp_int_opts) / sizeof(vrrp_int_opts[0]); i++) {
        const struct int_opt *o = &vrrp_int_opts[i];
        if (setsockopt(fd, o->level, o->name, &o->value, sizeof(o->value)) == -1) {
            int e = errno;
            errbuf_set(eb, "setsockopt(%s) on %s failed: %s", o->what, link->name, strerror(e));
            return -e;
        }
    }
    struct ip_mreqn mreq;
    memset(&mreq, 0, sizeof(mreq));
    mreq.imr_multiaddr = vrrp_net_group();
    mreq.imr_ifindex = link->ifindex;
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq, sizeof(mreq)) == -1) {
        int e = errno;
        errbuf_set(eb, "setsockopt(IP_MULTICAST_IF %s) failed: %s", link->name, strerror(e));
        return -e;
    }
    if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) == -1) {
        int e = errno;
        errbuf_set(eb, "setsockopt(IP_ADD_MEMBERSHIP 224.0.0.18 on %s) failed: %s", link->name,
                   strerror(e));
        return -e;
    }
    return 0;
}

int vrrp_net_sock_open(int ifindex, struct errbuf *eb)
{
    struct vrrp_net_link link;
    int rc = vrrp_net_link_by_index(ifindex, &link, eb);
    if (rc < 0) {
        return rc;
    }
    int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, VRRP_PKT_PROTO);
    if (fd == -1) {
        int e = errno;
        errbuf_set(eb, "socket(AF_INET, SOCK_RAW, 112) for %s failed: %s%s", link.name, strerror(e),
                   e == EPERM ? " (needs CAP_NET_RAW)" : "");
        return -e;
    }
    rc = sock_setup(fd, &link, eb);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    /* A raw socket receives from the moment it exists, so packets from other interfaces
     * may have been queued before SO_BINDTODEVICE: drop them. */
    uint8_t junk[64];
    for (int i = 0; i < 1024; i++) {
        if (recv(fd, junk, sizeof(junk), MSG_DONTWAIT) == -1 && errno != EINTR) {
            break;
        }
    }
    return fd;
}

int vrrp_net_send(int fd, int ifindex, struct in_addr src, struct in_addr dst, const void *msg,
                  size_t len)
{
    if (len == 0) {
        return -EINVAL;
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = dst};
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof(control));
    struct msghdr mh = {.msg_name = &to,
                        .msg_namelen = sizeof(to),
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control.buf,
                        .msg_controllen = sizeof(control.buf)};
    /* For raw sockets ipi_spec_dst is the source address and ipi_ifindex the output
     * interface (raw_sendmsg via ip_cmsg_send). */
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = IPPROTO_IP;
    cm->cmsg_type = IP_PKTINFO;
    cm->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
    struct in_pktinfo pi = {.ipi_ifindex = ifindex, .ipi_spec_dst = src};
    memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
    ssize_t n;
    do {
        n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n == -1 && errno == EINTR);
    if (n == -1) {
        return -errno;
    }
    return (size_t)n == len ? 0 : -EMSGSIZE; /* raw datagrams go whole or not at all */
}

int vrrp_net_send_peers(int fd, int ifindex, struct in_addr src, const struct in_addr *peers,
                        size_t n_peers, vrrp_net_encode_fn encode, void *ctx)
{
    uint8_t msg[VRRP_NET_MAX_MSG];
    int first_err = 0;
    for (size_t i = 0; i < n_peers; i++) {
        int len = encode(ctx, src, peers[i], msg, sizeof(msg));
        int rc = len;
        if (len > (int)sizeof(msg)) {
            rc = -EMSGSIZE;
        } else if (len >= 0) {
            rc = vrrp_net_send(fd, ifindex, src, peers[i], msg, (size_t)len);
        }
        if (rc < 0 && first_err == 0) {
            first_err = rc;
        }
    }
    return first_err;
}

int vrrp_net_parse_ip(const uint8_t *pkt, size_t len, struct vrrp_net_rx *rx)
{
    /* RFC 791 3.1: version 4 bits, IHL 4 bits (32-bit words), ..., total length at 2,
     * TTL at 8, protocol at 9, source at 12, destination at 16, options up to IHL. */
    if (len < 20 || (pkt[0] >> 4) != 4) {
        return -EBADMSG;
    }
    size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
    size_t total = (size_t)pkt[2] << 8 | pkt[3]; /* Linux leaves it in network order */
    if (ihl < 20 || ihl > len || total < ihl || total > len) {
        return -EBADMSG;
    }
    rx->ttl = pkt[8];
    memcpy(&rx->src, pkt + 12, 4);
    memcpy(&rx->dst, pkt + 16, 4);
    rx->ip_hdr_len = ihl;
    rx->payload = pkt + ihl;
    rx->payload_len = total - ihl;
    return 0;
}

int vrrp_net_recv(int fd, uint8_t *buf, size_t cap, struct vrrp_net_rx *rx)
{
    struct sockaddr_in from;
    struct iovec iov = {.iov_base = buf, .iov_len = cap};
    union {
        char buf[CMSG_SPACE(sizeof(struct in_pktinfo)) + 64];
        struct cmsghdr align;
    } control;
    struct msghdr mh = {.msg_name = &from,
                        .msg_namelen = sizeof(from),
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control.buf,
                        .msg_controllen = sizeof(control.buf)};
    ssize_t n;
    do {
        n = recvmsg(fd, &mh, MSG_DONTWAIT);
    } while (n == -1 && errno == EINTR);
    if (n == -1) {
        return -errno;
    }
    if (mh.msg_flags & MSG_TRUNC) {
        return -EMSGSIZE;
    }
    int rc = vrrp_net_parse_ip(buf, (size_t)n, rx);
    if (rc < 0) {
        return rc;
    }
    rx->ifindex = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO &&
            cm->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
            rx->ifindex = pi.ipi_ifindex;
        }
    }
    return 0;
}

/* ======================================================================================== */
/* Gratuitous ARP                                                                           */
/* ======================================================================================== */

int vrrp_net_garp_open(struct errbuf *eb)
{
    /* Protocol 0: the socket is for sending only, so no received frame is ever queued. */
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        int e = errno;
        errbuf_set(eb, "socket(AF_PACKET, SOCK_RAW) for gratuitous ARP failed: %s%s", strerror(e),
                   e == EPERM ? " (needs CAP_NET_RAW)" : "");
        return -e;
    }
    return fd;
}

/* One ARP frame for IPv4 over Ethernet (RFC 826), gratuitous: sender IP = target IP. */
static void garp_build(uint8_t *f, const uint8_t *mac, struct in_addr vip, enum vrrp_net_arp_op op)
{
    static const uint8_t bcast[VRRP_NET_MAC_LEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t arp_head[8] = {
        0x08, 0x06, /* EtherType ARP */
        0x00, 0x01, /* hardware type Ethernet */
        0x08, 0x00, /* protocol type IPv4 */
        6,    4,    /* hardware and protocol address lengths */
    };
    memcpy(f, bcast, 6);   /* Ethernet destination */
    memcpy(f + 6, mac, 6); /* Ethernet source */
    memcpy(f + 12, arp_head, sizeof(arp_head));
    f[20] = 0;
    f[21] = (uint8_t)op;    /* 1 request, 2 reply */
    memcpy(f + 22, mac, 6); /* sender MAC */
    memcpy(f + 28, &vip, 4);
    memcpy(f + 32, op == VRRP_NET_ARP_REQUEST ? bcast : mac, 6); /* target MAC */
    memcpy(f + 38, &vip, 4);
}

int vrrp_net_garp_send(int fd, int ifindex, const uint8_t *mac, struct in_addr vip,
                       enum vrrp_net_arp_op op)
{
    if (op != VRRP_NET_ARP_REQUEST && op != VRRP_NET_ARP_REPLY) {
        return -EINVAL;
    }
    /* The ioctls work on any socket; using fd avoids opening another. */
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_ifindex = ifindex;
    if (ioctl(fd, SIOCGIFNAME, &ifr) == -1 || ioctl(fd, SIOCGIFHWADDR, &ifr) == -1) {
        return -errno;
    }
    if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
        return -EOPNOTSUPP;
    }
    uint8_t frame[ARP_FRAME_LEN];
    garp_build(frame, mac != NULL ? mac : (const uint8_t *)ifr.ifr_hwaddr.sa_data, vip, op);
    struct sockaddr_ll to;
    memset(&to, 0, sizeof(to));
    to.sll_family = AF_PACKET;
    to.sll_protocol = htons(ETHERTYPE_ARP);
    to.sll_ifindex = ifindex;
    to.sll_halen = VRRP_NET_MAC_LEN;
    memset(to.sll_addr, 0xff, VRRP_NET_MAC_LEN);
    ssize_t n;
    do {
        n = sendto(fd, frame, sizeof(frame), MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&to,
                   sizeof(to));
    } while (n == -1 && errno == EINTR);
    if (n == -1) {
        return -errno;
    }
    return n == (ssize_t)sizeof(frame) ? 0 : -EMSGSIZE;
}

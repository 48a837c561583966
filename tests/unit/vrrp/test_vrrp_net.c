/* SPDX-License-Identifier: MIT */
/* Unit tests for src/vrrp/vrrp_net.c, against the real kernel. Criterion runs each test in
 * its own child process; the test first moves that process into a private network namespace
 * ("A", unshare(CLONE_NEWNET)), and the two-host tests make a second one ("B") held only by
 * an fd. A veth pair joins them (va in A, vb in B), so packets really cross a link. `ip` is
 * used here for setup only. Nothing touches the host's network, and both namespaces vanish
 * with the process, whichever way the test ends: no cleanup path to get wrong. Needs root
 * (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_NET_RAW); without it the tests are skipped. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/ip.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vrrp/vrrp_net.c"

#define WAIT_MS 3000 /* deadline for something that should happen at once */

static const uint8_t mac_a[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
static const uint8_t mac_b[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0b};

/* Two namespaces joined by a veth pair: va (10.77.0.1/24, in A) and vb (10.77.0.2/24,
 * in B). The ifindexes are each in their own namespace. */
struct net {
    int ns_a;
    int ns_b;
    int va;
    int vb;
    int mon_a; /* vrrp_net monitors, opened in A and in B before any link existed */
    int mon_b;
};

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    cr_assert(rc == 0, "`%s` failed (status %d)", cmd, rc);
}

static int ns_fd(void)
{
    int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    cr_assert(fd != -1, "open(/proc/thread-self/ns/net): %s", strerror(errno));
    return fd;
}

static void enter(int ns)
{
    cr_assert(setns(ns, CLONE_NEWNET) == 0, "setns(): %s", strerror(errno));
}

/* Bring lo up, and turn IPv6 off so that no DAD, router solicitation or IPv6 link
 * notification adds noise to captures and monitors. */
static void quiet_ns(void)
{
    sh("ip link set lo up");
    FILE *f = fopen("/proc/sys/net/ipv6/conf/default/disable_ipv6", "w");
    if (f != NULL) { /* no IPv6 in this kernel: nothing to quiet */
        fputs("1\n", f);
        cr_assert(fclose(f) == 0);
    }
}

/* Move this test process into a fresh network namespace with lo up; returns its fd. */
static int netns_private(void)
{
    if (geteuid() != 0) {
        cr_skip_test("needs root for network namespaces, raw and packet sockets");
    }
    if (unshare(CLONE_NEWNET) == -1) {
        cr_skip_test("unshare(CLONE_NEWNET) failed: %s", strerror(errno));
    }
    quiet_ns();
    return ns_fd();
}

static int ifindex_of(const char *name)
{
    int i = (int)if_nametoindex(name);
    cr_assert(i > 0, "no interface %s", name);
    return i;
}

static void on_event_ignore(const struct vrrp_net_event *ev, void *data)
{
    (void)ev, (void)data;
}

/* Drop what a monitor has queued, so that waits see only what follows. */
static void drain_all(int mon)
{
    int rc;
    while ((rc = vrrp_net_monitor_drain(mon, on_event_ignore, NULL)) > 0) {
    }
    cr_assert_geq(rc, 0, "vrrp_net_monitor_drain: %s", err_str(rc));
}

static struct in_addr ip4(const char *text)
{
    struct in_addr a;
    cr_assert(inet_pton(AF_INET, text, &a) == 1, "bad address %s", text);
    return a;
}

static void wait_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    cr_assert(poll(&p, 1, WAIT_MS) == 1, "nothing arrived within %d ms", WAIT_MS);
}

static bool quiet_for(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 0;
}

struct seen {
    struct vrrp_net_event ev[256];
    int n;
};

static void on_event(const struct vrrp_net_event *ev, void *data)
{
    struct seen *s = data;
    if (s->n < 256) {
        s->ev[s->n++] = *ev;
    }
}

typedef bool (*event_match_fn)(const struct vrrp_net_event *ev, const void *want);

/* Drain the monitor until an event matches; fail after WAIT_MS. */
static void wait_event(int fd, struct seen *s, event_match_fn match, const void *want)
{
    for (;;) {
        for (int i = 0; i < s->n; i++) {
            if (match(&s->ev[i], want)) {
                s->n = 0;
                return;
            }
        }
        s->n = 0;
        wait_readable(fd);
        int rc = vrrp_net_monitor_drain(fd, on_event, s);
        cr_assert_geq(rc, 0, "vrrp_net_monitor_drain: %s", err_str(rc));
    }
}

struct link_want {
    int ifindex;
    enum vrrp_net_event_type type;
    bool is_up;
    bool is_running;
};

static bool link_match(const struct vrrp_net_event *ev, const void *want)
{
    const struct link_want *w = want;
    return ev->type == w->type && ev->ifindex == w->ifindex &&
           (w->type == VRRP_NET_EVENT_LINK_GONE ||
            (ev->is_up == w->is_up && ev->is_running == w->is_running &&
             ev->is_usable == (w->is_up && w->is_running) && strcmp(ev->ifname, "va") == 0));
}

static bool running_match(const struct vrrp_net_event *ev, const void *want)
{
    return ev->type == VRRP_NET_EVENT_LINK && ev->ifindex == *(const int *)want && ev->is_usable;
}

/* Wait for the kernel to announce ifindex running, on a monitor opened (in the link's
 * namespace) before the change. Until then the link drops what it is given: linkwatch
 * swaps noop_qdisc for the real one just before it sends this notification. */
static void wait_running(int mon, int ifindex)
{
    static struct seen s;
    s.n = 0;
    wait_event(mon, &s, running_match, &ifindex);
}

static bool addr_match(const struct vrrp_net_event *ev, const void *want)
{
    const struct vrrp_net_event *w = want;
    return ev->type == w->type && ev->ifindex == w->ifindex && ev->addr.s_addr == w->addr.s_addr &&
           ev->prefixlen == w->prefixlen;
}

static void net_pair(struct net *n)
{
    struct errbuf eb;
    n->ns_a = netns_private();
    n->mon_a = vrrp_net_monitor_open(&eb);
    cr_assert_geq(n->mon_a, 0, "%s", eb.msg);
    cr_assert(unshare(CLONE_NEWNET) == 0, "unshare(): %s", strerror(errno));
    n->ns_b = ns_fd();
    quiet_ns();
    n->mon_b = vrrp_net_monitor_open(&eb);
    cr_assert_geq(n->mon_b, 0, "%s", eb.msg);
    enter(n->ns_a);
    /* `ip` takes a namespace as a file path: our fd, seen through /proc. */
    sh("ip link add va type veth peer name vb netns /proc/%d/fd/%d", (int)getpid(), n->ns_b);
    sh("ip link set va address 02:00:00:00:00:0a && ip addr add 10.77.0.1/24 dev va && "
       "ip link set va up");
    n->va = ifindex_of("va");
    enter(n->ns_b);
    sh("ip link set vb address 02:00:00:00:00:0b && ip addr add 10.77.0.2/24 dev vb && "
       "ip link set vb up");
    n->vb = ifindex_of("vb");
    enter(n->ns_a);
    wait_running(n->mon_b, n->vb);
    wait_running(n->mon_a, n->va);
}

/* What getifaddrs (glibc's own rtnetlink dump) says: the name (IPv4 label) carrying addr. */
static bool getifaddrs_has(struct in_addr addr, char *name_out, size_t name_len)
{
    struct ifaddrs *list;
    cr_assert(getifaddrs(&list) == 0);
    bool found = false;
    for (struct ifaddrs *i = list; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr != NULL && i->ifa_addr->sa_family == AF_INET &&
            ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == addr.s_addr) {
            snprintf(name_out, name_len, "%s", i->ifa_name);
            found = true;
        }
    }
    freeifaddrs(list);
    return found;
}

/* ---- interfaces ------------------------------------------------------------------------ */

Test(vrrp_net, link_facts_follow_admin_state_and_carrier)
{
    struct net n;
    net_pair(&n);
    struct errbuf eb;
    struct vrrp_net_link link;

    cr_assert_eq(vrrp_net_ifindex("va", &eb), n.va);
    cr_assert_eq(vrrp_net_link_by_name("va", &link, &eb), 0, "%s", eb.msg);
    cr_assert_eq(link.ifindex, n.va);
    cr_assert_str_eq(link.name, "va");
    cr_assert(link.is_ether && !link.is_loopback);
    cr_assert_arr_eq(link.mac, mac_a, 6);
    cr_assert_eq(link.mtu, 1500);
    cr_assert(link.is_up && link.is_running && link.is_usable);

    /* The MAC agrees with glibc's view (AF_PACKET entry of getifaddrs). */
    struct ifaddrs *list;
    cr_assert(getifaddrs(&list) == 0);
    bool seen = false;
    for (struct ifaddrs *i = list; i != NULL; i = i->ifa_next) {
        if (strcmp(i->ifa_name, "va") == 0 && i->ifa_addr != NULL &&
            i->ifa_addr->sa_family == AF_PACKET) {
            const struct sockaddr_ll *ll = (const struct sockaddr_ll *)i->ifa_addr;
            cr_assert_arr_eq(ll->sll_addr, link.mac, 6);
            seen = true;
        }
    }
    freeifaddrs(list);
    cr_assert(seen);

    /* Peer down: va stays up but loses carrier. The kernel updates IFF_RUNNING from a
     * workqueue (linkwatch), a moment after the carrier change, so wait for its event. */
    int mon = n.mon_a;
    enter(n.ns_b);
    cr_assert_eq(vrrp_net_link_by_name("vb", &link, &eb), 0, "%s", eb.msg);
    cr_assert_eq(link.ifindex, n.vb);
    cr_assert_arr_eq(link.mac, mac_b, 6);
    sh("ip link set vb down");
    enter(n.ns_a);
    for (;;) {
        cr_assert_eq(vrrp_net_link_by_index(n.va, &link, &eb), 0, "%s", eb.msg);
        if (!link.is_running) {
            break;
        }
        wait_readable(mon);
        cr_assert_geq(vrrp_net_monitor_drain(mon, on_event_ignore, NULL), 0);
    }
    cr_assert(link.is_up && !link.is_running && !link.is_usable);

    sh("ip link set va down");
    cr_assert_eq(vrrp_net_link_by_index(n.va, &link, &eb), 0, "%s", eb.msg);
    cr_assert(!link.is_up && !link.is_usable);

    cr_assert_eq(vrrp_net_link_by_name("lo", &link, &eb), 0, "%s", eb.msg);
    cr_assert(link.is_loopback && !link.is_ether && link.is_up);
}

Test(vrrp_net, unknown_interfaces_are_clear_errors)
{
    struct net n;
    net_pair(&n);
    struct errbuf eb;
    struct vrrp_net_link link;

    cr_assert_eq(vrrp_net_ifindex("nosuch0", &eb), -ENODEV);
    cr_assert_str_eq(eb.msg, "no interface named nosuch0");
    cr_assert_eq(vrrp_net_ifindex("vb", &eb), -ENODEV); /* it lives in the other namespace */
    cr_assert_eq(vrrp_net_ifindex("a-name-far-too-long", &eb), -EINVAL);
    cr_assert_eq(vrrp_net_ifindex("", &eb), -EINVAL);
    cr_assert_eq(vrrp_net_link_by_index(9999, &link, &eb), -ENODEV);
    cr_assert_str_eq(eb.msg, "no interface with index 9999");
    cr_assert_eq(vrrp_net_link_by_index(0, &link, NULL), -ENODEV);

    struct in_addr vip = ip4("10.77.0.100");
    struct in_addr addr;
    cr_assert_eq(vrrp_net_vip_add(9999, vip, 32, NULL, &eb), -ENODEV);
    cr_assert_eq(vrrp_net_vip_del(9999, vip, 32, &eb), -ENODEV);
    cr_assert_eq(vrrp_net_vip_find(9999, vip, &eb), -ENODEV);
    cr_assert_eq(vrrp_net_addr_list(9999, NULL, 0, &eb), -ENODEV);
    cr_assert_eq(vrrp_net_link_primary_addr(9999, &addr, &eb), -ENODEV);
    cr_assert_eq(vrrp_net_sock_open(9999, &eb), -ENODEV);
    cr_assert_str_eq(eb.msg, "no interface with index 9999");

    int g = vrrp_net_garp_open(&eb);
    cr_assert_geq(g, 0, "%s", eb.msg);
    cr_assert_eq(vrrp_net_garp_send(g, 9999, NULL, vip, VRRP_NET_ARP_REQUEST), -ENODEV);
    close(g);
}

Test(vrrp_net, primary_address_prefers_a_subnet_over_a_leftover_vip)
{
    struct net n;
    net_pair(&n);
    struct errbuf eb;
    struct in_addr addr;

    sh("ip addr flush dev va");
    cr_assert_eq(vrrp_net_link_primary_addr(n.va, &addr, &eb), -EADDRNOTAVAIL);
    char want[64];
    snprintf(want, sizeof(want), "interface %d has no IPv4 address", n.va);
    cr_assert_str_eq(eb.msg, want);
    int fd = vrrp_net_sock_open(n.va, &eb); /* joining by index needs no address */
    cr_assert_geq(fd, 0, "%s", eb.msg);
    close(fd);

    /* A VIP left behind by a crashed run, configured before the node's own address. */
    cr_assert_eq(vrrp_net_vip_add(n.va, ip4("10.77.0.100"), 32, NULL, &eb), 0, "%s", eb.msg);
    cr_assert_eq(vrrp_net_link_primary_addr(n.va, &addr, &eb), 0, "%s", eb.msg);
    cr_assert_eq(addr.s_addr, ip4("10.77.0.100").s_addr); /* nothing better yet */
    sh("ip addr add 10.77.0.1/24 dev va && ip addr add 10.77.0.9/24 dev va");
    cr_assert_eq(vrrp_net_link_primary_addr(n.va, &addr, &eb), 0, "%s", eb.msg);
    cr_assert_eq(addr.s_addr, ip4("10.77.0.1").s_addr); /* 10.77.0.9 is secondary */
}

/* ---- virtual IPs ----------------------------------------------------------------------- */

Test(vrrp_net, vip_add_list_find_delete)
{
    struct net n;
    net_pair(&n);
    struct errbuf eb;
    struct in_addr vip = ip4("10.77.0.100");
    char name[IF_NAMESIZE];

    cr_assert_eq(vrrp_net_vip_find(n.va, vip, &eb), 0);
    cr_assert_eq(vrrp_net_vip_add(n.va, vip, VRRP_NET_VIP_PREFIXLEN, "va:vip", &eb), 0, "%s",
                 eb.msg);
    cr_assert(getifaddrs_has(vip, name, sizeof(name)));
    cr_assert_str_eq(name, "va:vip"); /* glibc names IPv4 entries by their label */
    cr_assert_eq(vrrp_net_vip_find(n.va, vip, &eb), 1);

    /* A second VIP with a subnet prefix and no label. */
    struct in_addr vip2 = ip4("10.88.0.5");
    cr_assert_eq(vrrp_net_vip_add(n.va, vip2, 24, NULL, &eb), 0, "%s", eb.msg);

    struct vrrp_net_addr addrs[8];
    int count = vrrp_net_addr_list(n.va, addrs, 8, &eb);
    cr_assert_eq(count, 3, "%d: %s", count, eb.msg);
    cr_assert_eq(addrs[0].addr.s_addr, ip4("10.77.0.1").s_addr);
    cr_assert_eq(addrs[0].prefixlen, 24);
    cr_assert_str_eq(addrs[0].label, "va");
    bool seen_vip = false, seen_vip2 = false;
    for (int i = 0; i < count; i++) {
        cr_assert(!(addrs[i].flags & IFA_F_SECONDARY));
        cr_assert(addrs[i].flags & IFA_F_PERMANENT);
        if (addrs[i].addr.s_addr == vip.s_addr) {
            cr_assert_eq(addrs[i].prefixlen, 32);
            cr_assert_str_eq(addrs[i].label, "va:vip");
            cr_assert_eq(addrs[i].scope, RT_SCOPE_UNIVERSE);
            seen_vip = true;
        }
        if (addrs[i].addr.s_addr == vip2.s_addr) {
            cr_assert_eq(addrs[i].prefixlen, 24);
            seen_vip2 = true;
        }
    }
    cr_assert(seen_vip && seen_vip2);
    /* Too small a buffer: the count is still the whole count. */
    cr_assert_eq(vrrp_net_addr_list(n.va, addrs, 1, &eb), 3);
    cr_assert_eq(vrrp_net_addr_list(n.va, NULL, 0, &eb), 3);
    /* All interfaces: lo's 127.0.0.1 too. */
    cr_assert_eq(vrrp_net_addr_list(0, addrs, 8, &eb), 4);

    cr_assert_eq(vrrp_net_vip_add(n.va, vip, 32, NULL, &eb), -EEXIST);
    char want[64];
    snprintf(want, sizeof(want), "10.77.0.100/32 is already on interface %d", n.va);
    cr_assert_str_eq(eb.msg, want);

    cr_assert_eq(vrrp_net_vip_del(n.va, vip, 24, &eb), -EADDRNOTAVAIL); /* wrong prefix */
    cr_assert_eq(vrrp_net_vip_find(n.va, vip, &eb), 1);
    cr_assert_eq(vrrp_net_vip_del(n.va, vip, 32, &eb), 0, "%s", eb.msg);
    cr_assert(!getifaddrs_has(vip, name, sizeof(name)));
    cr_assert_eq(vrrp_net_vip_find(n.va, vip, &eb), 0);
    cr_assert_eq(vrrp_net_vip_del(n.va, vip, 32, &eb), -EADDRNOTAVAIL);
    snprintf(want, sizeof(want), "10.77.0.100/32 is not on interface %d", n.va);
    cr_assert_str_eq(eb.msg, want);

    cr_assert_eq(vrrp_net_vip_del(n.va, vip2, 24, &eb), 0, "%s", eb.msg);
    cr_assert_eq(vrrp_net_addr_list(n.va, addrs, 8, &eb), 1);
    cr_assert(getifaddrs_has(ip4("10.77.0.1"), name, sizeof(name))); /* untouched */
}

Test(vrrp_net, vip_requests_that_keel_refuses)
{
    struct net n;
    net_pair(&n);
    struct errbuf eb;
    int lo = ifindex_of("lo");
    struct in_addr vip = ip4("10.77.0.100");

    /* lo: loopback mode binds VIPs in 127.0.0.0/8 instead. */
    cr_assert_eq(vrrp_net_vip_add(lo, vip, 32, NULL, &eb), -EOPNOTSUPP);
    cr_assert(strstr(eb.msg, "lo is a loopback interface") != NULL, "%s", eb.msg);
    cr_assert_eq(vrrp_net_vip_del(lo, vip, 32, &eb), -EOPNOTSUPP);
    cr_assert_eq(vrrp_net_vip_add(n.va, ip4("127.0.0.5"), 32, NULL, &eb), -EINVAL);
    cr_assert(strstr(eb.msg, "127.0.0.5 is in 127.0.0.0/8") != NULL, "%s", eb.msg);
    cr_assert_eq(vrrp_net_vip_find(lo, ip4("127.0.0.1"), &eb), 1); /* reading lo is fine */

    cr_assert_eq(vrrp_net_vip_add(n.va, vip, 0, NULL, &eb), -EINVAL);
    cr_assert_eq(vrrp_net_vip_add(n.va, vip, 33, NULL, &eb), -EINVAL);
    cr_assert_eq(vrrp_net_vip_add(n.va, ip4("224.0.0.18"), 32, NULL, &eb), -EINVAL);
    cr_assert_eq(vrrp_net_vip_add(n.va, ip4("0.0.0.0"), 32, NULL, &eb), -EINVAL);
    cr_assert_eq(vrrp_net_vip_add(n.va, ip4("255.255.255.255"), 32, NULL, &eb), -EINVAL);
    cr_assert_eq(vrrp_net_vip_add(n.va, vip, 32, "a-label-far-too-long", &eb), -EINVAL);
    cr_assert_eq(vrrp_net_vip_add(n.va, vip, 32, "", &eb), -EINVAL);
    cr_assert_eq(vrrp_net_vip_find(n.va, vip, &eb), 0); /* nothing was added */
}

Test(vrrp_net, kernel_extended_ack_text_is_kept)
{
    /* Below vrrp_net_vip_add's own checks: requests the kernel refuses, with its reason
     * (NETLINK_EXT_ACK) passed on. */
    struct net n;
    net_pair(&n);
    char kmsg[256];
    int rc = vip_request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, n.va, ip4("10.77.0.7"), 24,
                         "label-longer-than-ifnamsiz", kmsg, sizeof(kmsg));
    cr_assert_eq(rc, -ERANGE, "%s", err_name(rc));
    cr_assert(strstr(kmsg, "policy validation") != NULL, "kernel said [%s]", kmsg);
    rc = vip_request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, n.va, ip4("10.77.0.7"), 33, NULL, kmsg,
                     sizeof(kmsg));
    cr_assert_eq(rc, -EINVAL, "%s", err_name(rc));
    rc = vip_request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, n.va, ip4("10.77.0.7"), 24, NULL, kmsg,
                     sizeof(kmsg));
    cr_assert_eq(rc, 0, "%s", err_name(rc));
    cr_assert_str_eq(kmsg, "");
}

/* ---- the VRRP socket ------------------------------------------------------------------- */

/* A VRRPv3 advert as bytes (RFC 5798 5.1): version 3 type 1, VRID 42, priority 100, one
 * address, interval 100 cs, checksum (not checked here), 10.77.0.100. */
static const uint8_t advert[] = {0x31, 42, 100, 1, 0x00, 0x64, 0x12, 0x34, 10, 77, 0, 100};

static void recv_one(int fd, uint8_t *buf, size_t cap, struct vrrp_net_rx *rx)
{
    wait_readable(fd);
    int rc = vrrp_net_recv(fd, buf, cap, rx);
    cr_assert_eq(rc, 0, "vrrp_net_recv: %s", err_str(rc));
}

Test(vrrp_net, multicast_advert_crosses_the_link)
{
    struct net n;
    net_pair(&n);
    struct errbuf eb;

    enter(n.ns_b);
    int rfd = vrrp_net_sock_open(n.vb, &eb);
    cr_assert_geq(rfd, 0, "%s", eb.msg);
    int lo_fd = vrrp_net_sock_open(ifindex_of("lo"), &eb); /* bound elsewhere: hears nothing */
    cr_assert_geq(lo_fd, 0, "%s", eb.msg);
    enter(n.ns_a);
    int sfd = vrrp_net_sock_open(n.va, &eb);
    cr_assert_geq(sfd, 0, "%s", eb.msg);

    struct in_addr src;
    cr_assert_eq(vrrp_net_link_primary_addr(n.va, &src, &eb), 0, "%s", eb.msg);
    cr_assert_eq(src.s_addr, ip4("10.77.0.1").s_addr);
    cr_assert_eq(vrrp_net_send(sfd, n.va, src, vrrp_net_group(), advert, sizeof(advert)), 0);

    uint8_t buf[2048];
    struct vrrp_net_rx rx;
    recv_one(rfd, buf, sizeof(buf), &rx);
    cr_assert_eq(rx.src.s_addr, ip4("10.77.0.1").s_addr);
    cr_assert_eq(rx.dst.s_addr, ip4("224.0.0.18").s_addr);
    cr_assert_eq(rx.ttl, 255);
    cr_assert_eq(rx.ifindex, n.vb);
    cr_assert_eq(rx.ip_hdr_len, 20);
    cr_assert_eq(rx.payload, buf + 20);
    cr_assert_eq(rx.payload_len, sizeof(advert));
    cr_assert_arr_eq(rx.payload, advert, sizeof(advert));
    cr_assert_eq(vrrp_net_recv(rfd, buf, sizeof(buf), &rx), -EAGAIN);

    /* IP_MULTICAST_LOOP off: the sender does not hear itself; lo_fd heard nothing. */
    cr_assert(quiet_for(sfd, 100));
    cr_assert_eq(vrrp_net_recv(lo_fd, buf, sizeof(buf), &rx), -EAGAIN);

    /* A buffer too small for the packet: dropped and said so. */
    cr_assert_eq(vrrp_net_send(sfd, n.va, src, vrrp_net_group(), advert, sizeof(advert)), 0);
    wait_readable(rfd);
    cr_assert_eq(vrrp_net_recv(rfd, buf, 24, &rx), -EMSGSIZE);
    cr_assert_eq(vrrp_net_recv(rfd, buf, sizeof(buf), &rx), -EAGAIN);
    close(sfd);
    close(rfd);
    close(lo_fd);
}

Test(vrrp_net, socket_outlives_link_flaps)
{
    /* A VRRP instance opens its socket at boot, whatever the link state, and keeps it: the
     * membership and binding survive down/up (not deletion: LINK_GONE means reopen). */
    struct net n;
    net_pair(&n);
    struct errbuf eb;
    sh("ip link set va down");
    int sfd = vrrp_net_sock_open(n.va, &eb);
    cr_assert_geq(sfd, 0, "%s", eb.msg);
    enter(n.ns_b);
    int rfd = vrrp_net_sock_open(n.vb, &eb);
    cr_assert_geq(rfd, 0, "%s", eb.msg);
    sh("ip link set vb down && ip link set vb up");
    enter(n.ns_a);
    struct in_addr src = ip4("10.77.0.1");
    int rc = vrrp_net_send(sfd, n.va, src, vrrp_net_group(), advert, sizeof(advert));
    cr_assert_eq(rc, -ENETUNREACH, "%s", err_name(rc)); /* the route lookup fails first */
    drain_all(n.mon_a);
    drain_all(n.mon_b);
    sh("ip link set va up");
    wait_running(n.mon_a, n.va);
    wait_running(n.mon_b, n.vb);
    cr_assert_eq(vrrp_net_send(sfd, n.va, src, vrrp_net_group(), advert, sizeof(advert)), 0);
    uint8_t buf[2048];
    struct vrrp_net_rx rx;
    recv_one(rfd, buf, sizeof(buf), &rx);
    cr_assert_eq(rx.dst.s_addr, ip4("224.0.0.18").s_addr);
    cr_assert_arr_eq(rx.payload, advert, sizeof(advert));
    close(sfd);
    close(rfd);
}

struct peer_ctx {
    int calls;
};

/* Encode a message whose last 4 bytes name its destination, as a per-destination checksum
 * would depend on it. */
static int encode_for(void *ctx, struct in_addr src, struct in_addr dst, uint8_t *out, size_t cap)
{
    struct peer_ctx *p = ctx;
    p->calls++;
    cr_assert_eq(src.s_addr, ip4("10.77.0.1").s_addr);
    cr_assert_geq(cap, sizeof(advert));
    memcpy(out, advert, sizeof(advert));
    memcpy(out + 8, &dst, 4);
    return (int)sizeof(advert);
}

static int encode_fail(void *ctx, struct in_addr src, struct in_addr dst, uint8_t *out, size_t cap)
{
    return dst.s_addr == ip4("10.77.0.2").s_addr ? -ENOSPC : encode_for(ctx, src, dst, out, cap);
}

Test(vrrp_net, unicast_adverts_reach_each_peer)
{
    struct net n;
    net_pair(&n);
    struct errbuf eb;

    enter(n.ns_b);
    sh("ip addr add 10.77.0.3/24 dev vb");
    int rfd = vrrp_net_sock_open(n.vb, &eb);
    cr_assert_geq(rfd, 0, "%s", eb.msg);
    enter(n.ns_a);
    int sfd = vrrp_net_sock_open(n.va, &eb);
    cr_assert_geq(sfd, 0, "%s", eb.msg);
    struct in_addr src = ip4("10.77.0.1");

    struct in_addr peers[2] = {ip4("10.77.0.2"), ip4("10.77.0.3")};
    struct peer_ctx ctx = {0};
    cr_assert_eq(vrrp_net_send_peers(sfd, n.va, src, peers, 2, encode_for, &ctx), 0);
    cr_assert_eq(ctx.calls, 2);

    uint8_t buf[2048];
    struct vrrp_net_rx rx;
    bool seen[2] = {false, false};
    for (int i = 0; i < 2; i++) {
        recv_one(rfd, buf, sizeof(buf), &rx);
        cr_assert_eq(rx.src.s_addr, src.s_addr);
        cr_assert_eq(rx.ttl, 255); /* IP_TTL, not the default 64 */
        cr_assert_eq(rx.ifindex, n.vb);
        cr_assert_eq(rx.payload_len, sizeof(advert));
        cr_assert_eq(memcmp(rx.payload + 8, &rx.dst, 4), 0, "encoded for another peer");
        for (int p = 0; p < 2; p++) {
            seen[p] = seen[p] || rx.dst.s_addr == peers[p].s_addr;
        }
    }
    cr_assert(seen[0] && seen[1]);

    /* One peer failing to encode does not stop the others; the error is returned. */
    ctx.calls = 0;
    cr_assert_eq(vrrp_net_send_peers(sfd, n.va, src, peers, 2, encode_fail, &ctx), -ENOSPC);
    cr_assert_eq(ctx.calls, 1);
    recv_one(rfd, buf, sizeof(buf), &rx);
    cr_assert_eq(rx.dst.s_addr, peers[1].s_addr);

    /* A source address that is not ours: the kernel's route lookup refuses it. */
    cr_assert_eq(vrrp_net_send(sfd, n.va, ip4("10.77.0.50"), peers[0], advert, sizeof(advert)),
                 -ENETUNREACH);
    close(sfd);
    close(rfd);
}

Test(vrrp_net, ip_options_are_skipped)
{
    struct net n;
    net_pair(&n);
    struct errbuf eb;

    enter(n.ns_b);
    int rfd = vrrp_net_sock_open(n.vb, &eb);
    cr_assert_geq(rfd, 0, "%s", eb.msg);
    enter(n.ns_a);
    int sfd = vrrp_net_sock_open(n.va, &eb);
    cr_assert_geq(sfd, 0, "%s", eb.msg);
    /* Record Route with room for one address, then end of options: 8 bytes, IHL 7. */
    uint8_t opts[8] = {IPOPT_RR, 7, 4, 0, 0, 0, 0, IPOPT_END};
    cr_assert_eq(setsockopt(sfd, IPPROTO_IP, IP_OPTIONS, opts, sizeof(opts)), 0, "%s",
                 strerror(errno));
    cr_assert_eq(
        vrrp_net_send(sfd, n.va, ip4("10.77.0.1"), vrrp_net_group(), advert, sizeof(advert)), 0);

    uint8_t buf[2048];
    struct vrrp_net_rx rx;
    recv_one(rfd, buf, sizeof(buf), &rx);
    cr_assert_eq(buf[0] & 0x0f, 7);
    cr_assert_eq(buf[20], IPOPT_RR);
    cr_assert_eq(rx.ip_hdr_len, 28);
    cr_assert_eq(rx.payload, buf + 28);
    cr_assert_eq(rx.payload_len, sizeof(advert));
    cr_assert_arr_eq(rx.payload, advert, sizeof(advert));
    cr_assert_eq(rx.ttl, 255);
    close(sfd);
    close(rfd);
}

/* A 20-byte IPv4 header plus opt_len option bytes plus payload, in buf. */
static size_t make_ip(uint8_t *buf, size_t opt_len, const uint8_t *payload, size_t len)
{
    size_t ihl = 20 + opt_len;
    size_t total = ihl + len;
    memset(buf, 0, ihl);
    buf[0] = (uint8_t)(0x40 | ihl / 4);
    buf[2] = (uint8_t)(total >> 8);
    buf[3] = (uint8_t)total;
    buf[8] = 255;
    buf[9] = VRRP_PKT_PROTO;
    memcpy(buf + 12, (const uint8_t[]){192, 0, 2, 1}, 4);
    memcpy(buf + 16, (const uint8_t[]){224, 0, 0, 18}, 4);
    memset(buf + 20, 1, opt_len); /* NOPs */
    memcpy(buf + ihl, payload, len);
    return total;
}

Test(vrrp_net, parse_ip_header)
{
    uint8_t pkt[128];
    struct vrrp_net_rx rx = {.ifindex = 7};

    size_t len = make_ip(pkt, 40, advert, sizeof(advert)); /* IHL 15, the maximum */
    cr_assert_eq(vrrp_net_parse_ip(pkt, len, &rx), 0);
    cr_assert_eq(rx.ip_hdr_len, 60);
    cr_assert_eq(rx.payload, pkt + 60);
    cr_assert_eq(rx.payload_len, sizeof(advert));
    cr_assert_eq(rx.ttl, 255);
    cr_assert_eq(rx.src.s_addr, ip4("192.0.2.1").s_addr);
    cr_assert_eq(rx.dst.s_addr, ip4("224.0.0.18").s_addr);
    cr_assert_eq(rx.ifindex, 7);

    /* Bytes after the total length (link padding) are not payload. */
    len = make_ip(pkt, 0, advert, sizeof(advert));
    cr_assert_eq(vrrp_net_parse_ip(pkt, len + 10, &rx), 0);
    cr_assert_eq(rx.payload_len, sizeof(advert));
    /* An empty payload parses; judging it is the codec's job. */
    len = make_ip(pkt, 0, advert, 0);
    cr_assert_eq(vrrp_net_parse_ip(pkt, len, &rx), 0);
    cr_assert_eq(rx.payload_len, 0);

    len = make_ip(pkt, 4, advert, sizeof(advert));
    cr_assert_eq(vrrp_net_parse_ip(pkt, 19, &rx), -EBADMSG);      /* shorter than a header */
    cr_assert_eq(vrrp_net_parse_ip(pkt, 23, &rx), -EBADMSG);      /* options cut */
    cr_assert_eq(vrrp_net_parse_ip(pkt, len - 1, &rx), -EBADMSG); /* payload cut */
    pkt[0] = 0x45 + 0x20;                                         /* version 6 */
    cr_assert_eq(vrrp_net_parse_ip(pkt, len, &rx), -EBADMSG);
    pkt[0] = 0x44; /* IHL 4 */
    cr_assert_eq(vrrp_net_parse_ip(pkt, len, &rx), -EBADMSG);
    pkt[0] = 0x46;
    pkt[2] = 0;
    pkt[3] = 20; /* total < IHL */
    cr_assert_eq(vrrp_net_parse_ip(pkt, len, &rx), -EBADMSG);
    pkt[3] = 24;
    cr_assert_eq(vrrp_net_parse_ip(pkt, len, &rx), 0);
}

Test(vrrp_net, loopback_sockets_hear_themselves)
{
    /* Loopback mode (`keel up`): unicast between 127.0.0.x addresses on lo. Every raw
     * socket bound to lo receives every protocol-112 packet on lo, its own included. */
    netns_private();
    struct errbuf eb;
    int lo = ifindex_of("lo");
    int a = vrrp_net_sock_open(lo, &eb);
    cr_assert_geq(a, 0, "%s", eb.msg);
    int b = vrrp_net_sock_open(lo, &eb);
    cr_assert_geq(b, 0, "%s", eb.msg);
    cr_assert_eq(vrrp_net_send(a, lo, ip4("127.0.0.1"), ip4("127.0.0.2"), advert, sizeof(advert)),
                 0);
    uint8_t buf[2048];
    struct vrrp_net_rx rx;
    recv_one(b, buf, sizeof(buf), &rx);
    cr_assert_eq(rx.src.s_addr, ip4("127.0.0.1").s_addr);
    cr_assert_eq(rx.dst.s_addr, ip4("127.0.0.2").s_addr);
    cr_assert_eq(rx.ttl, 255);
    cr_assert_eq(rx.ifindex, lo);
    recv_one(a, buf, sizeof(buf), &rx); /* the sender's own packet */
    cr_assert_eq(rx.src.s_addr, ip4("127.0.0.1").s_addr);
    close(a);
    close(b);
}

/* ---- gratuitous ARP -------------------------------------------------------------------- */

/* Capture ARP frames arriving on ifindex (in the current namespace). */
static int arp_capture(int ifindex)
{
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETHERTYPE_ARP));
    cr_assert(fd != -1, "socket(AF_PACKET): %s", strerror(errno));
    struct sockaddr_ll sll = {
        .sll_family = AF_PACKET, .sll_protocol = htons(ETHERTYPE_ARP), .sll_ifindex = ifindex};
    cr_assert(bind(fd, (struct sockaddr *)&sll, sizeof(sll)) == 0, "%s", strerror(errno));
    return fd;
}

/* Read captured frames until one announces vip; returns its length. */
static size_t arp_wait(int fd, struct in_addr vip, uint8_t *frame, size_t cap)
{
    for (;;) {
        wait_readable(fd);
        ssize_t n = recv(fd, frame, cap, 0);
        cr_assert(n >= 0, "recv(): %s", strerror(errno));
        if (n >= ARP_FRAME_LEN && memcmp(frame + 28, &vip, 4) == 0) {
            return (size_t)n;
        }
    }
}

Test(vrrp_net, gratuitous_arp_is_seen_on_the_wire)
{
    struct net n;
    net_pair(&n);
    struct errbuf eb;
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t vmac[6] = {0x00, 0x00, 0x5e, 0x00, 0x01, 42}; /* RFC 5798 7.3 */
    struct in_addr vip = ip4("10.77.0.100");

    enter(n.ns_b);
    int cap = arp_capture(n.vb);
    enter(n.ns_a);
    int g = vrrp_net_garp_open(&eb);
    cr_assert_geq(g, 0, "%s", eb.msg);

    /* Request from the interface's own MAC, as keepalived sends it. */
    cr_assert_eq(vrrp_net_garp_send(g, n.va, NULL, vip, VRRP_NET_ARP_REQUEST), 0);
    uint8_t f[128];
    size_t len = arp_wait(cap, vip, f, sizeof(f));
    cr_assert_eq(len, ARP_FRAME_LEN);
    cr_assert_arr_eq(f, bcast, 6);             /* Ethernet destination */
    cr_assert_arr_eq(f + 6, mac_a, 6);         /* Ethernet source */
    cr_assert(f[12] == 0x08 && f[13] == 0x06); /* EtherType ARP */
    cr_assert(f[14] == 0 && f[15] == 1);       /* Ethernet */
    cr_assert(f[16] == 0x08 && f[17] == 0x00); /* IPv4 */
    cr_assert(f[18] == 6 && f[19] == 4);
    cr_assert(f[20] == 0 && f[21] == 1);      /* request */
    cr_assert_arr_eq(f + 22, mac_a, 6);       /* sender MAC */
    cr_assert_eq(memcmp(f + 28, &vip, 4), 0); /* sender IP */
    cr_assert_arr_eq(f + 32, bcast, 6);       /* target MAC */
    cr_assert_eq(memcmp(f + 38, &vip, 4), 0); /* target IP */

    /* Reply from the VRRP virtual MAC. */
    cr_assert_eq(vrrp_net_garp_send(g, n.va, vmac, vip, VRRP_NET_ARP_REPLY), 0);
    len = arp_wait(cap, vip, f, sizeof(f));
    cr_assert_arr_eq(f + 6, vmac, 6);
    cr_assert(f[20] == 0 && f[21] == 2); /* reply */
    cr_assert_arr_eq(f + 22, vmac, 6);
    cr_assert_arr_eq(f + 32, vmac, 6);
    cr_assert_eq(memcmp(f + 38, &vip, 4), 0);

    cr_assert_eq(vrrp_net_garp_send(g, ifindex_of("lo"), NULL, vip, VRRP_NET_ARP_REQUEST),
                 -EOPNOTSUPP);
    cr_assert_eq(vrrp_net_garp_send(g, n.va, NULL, vip, (enum vrrp_net_arp_op)3), -EINVAL);
    sh("ip link set va down");
    cr_assert_eq(vrrp_net_garp_send(g, n.va, NULL, vip, VRRP_NET_ARP_REQUEST), -ENETDOWN);
    close(g);
    close(cap);
}

/* ---- link and address monitor ---------------------------------------------------------- */

Test(vrrp_net, monitor_reports_link_and_address_changes)
{
    struct net n;
    net_pair(&n);
    struct errbuf eb;
    static struct seen s;
    int mon = vrrp_net_monitor_open(&eb);
    cr_assert_geq(mon, 0, "%s", eb.msg);
    cr_assert_eq(vrrp_net_monitor_drain(mon, on_event, &s), 0); /* nothing yet */

    sh("ip link set va down");
    struct link_want down = {n.va, VRRP_NET_EVENT_LINK, false, false};
    wait_event(mon, &s, link_match, &down);

    sh("ip link set va up");
    struct link_want usable = {n.va, VRRP_NET_EVENT_LINK, true, true};
    wait_event(mon, &s, link_match, &usable);

    /* The peer going down takes the carrier away: up, but not running. */
    enter(n.ns_b);
    sh("ip link set vb down");
    enter(n.ns_a);
    struct link_want no_carrier = {n.va, VRRP_NET_EVENT_LINK, true, false};
    wait_event(mon, &s, link_match, &no_carrier);
    enter(n.ns_b);
    sh("ip link set vb up");
    enter(n.ns_a);
    wait_event(mon, &s, link_match, &usable);

    struct in_addr vip = ip4("10.77.0.100");
    cr_assert_eq(vrrp_net_vip_add(n.va, vip, 32, "va:vip", &eb), 0, "%s", eb.msg);
    struct vrrp_net_event added = {
        .type = VRRP_NET_EVENT_ADDR_ADD, .ifindex = n.va, .addr = vip, .prefixlen = 32};
    wait_event(mon, &s, addr_match, &added);
    cr_assert_eq(vrrp_net_vip_del(n.va, vip, 32, &eb), 0, "%s", eb.msg);
    struct vrrp_net_event deleted = added;
    deleted.type = VRRP_NET_EVENT_ADDR_DEL;
    wait_event(mon, &s, addr_match, &deleted);

    sh("ip link del va");
    struct link_want gone = {n.va, VRRP_NET_EVENT_LINK_GONE, false, false};
    wait_event(mon, &s, link_match, &gone);
    close(mon);
}

Test(vrrp_net, monitor_overflow_asks_for_a_resync)
{
    struct net n;
    net_pair(&n);
    struct errbuf eb;
    static struct seen s;
    int mon = vrrp_net_monitor_open(&eb);
    cr_assert_geq(mon, 0, "%s", eb.msg);
    /* Shrink the buffer so that a burst overflows it. */
    int small = 1;
    cr_assert_eq(setsockopt(mon, SOL_SOCKET, SO_RCVBUFFORCE, &small, sizeof(small)), 0);
    sh("for i in 1 2 3 4 5 6 7 8 9 10; do ip link set va down; ip link set va up; done");
    struct vrrp_net_event resync = {.type = VRRP_NET_EVENT_RESYNC};
    bool found = false;
    while (!found && !quiet_for(mon, 0)) {
        s.n = 0;
        int rc = vrrp_net_monitor_drain(mon, on_event, &s);
        cr_assert_geq(rc, 0);
        for (int i = 0; i < s.n; i++) {
            found = found || s.ev[i].type == resync.type;
        }
    }
    cr_assert(found, "no RESYNC after the buffer overflowed");
    close(mon);
}

/* SPDX-License-Identifier: MIT */
/* TCP connections on local addresses, from NETLINK_SOCK_DIAG (see vrrp_diag.h). */
#include "vrrp/vrrp_diag.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define DIAG_BUF_LEN 32768
#define DIAG_TIMEOUT_MS 100
#define TCPF(state) (1u << (state))
#define DIAG_NEW_SYN_RECV 12 /* the kernel's TCP_NEW_SYN_RECV: a request socket */

static uint32_t count_msg(const struct nlmsghdr *nh, const struct in_addr *addrs, uint32_t n)
{
    if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
        return 0;
    }
    const struct inet_diag_msg *m = NLMSG_DATA(nh);
    for (uint32_t i = 0; i < n; i++) {
        if (m->id.idiag_src[0] == addrs[i].s_addr) {
            return 1;
        }
    }
    return 0;
}

/* Read the dump: the count, or -errno. */
static int read_dump(int fd, const struct in_addr *addrs, uint32_t n_addrs)
{
    static uint8_t buf[DIAG_BUF_LEN] __attribute__((aligned(NLMSG_ALIGNTO))); /* ctl thread */
    int count = 0;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n == 0 ? -EPROTO : -errno;
        }
        int left = (int)n;
        for (const struct nlmsghdr *nh = (const struct nlmsghdr *)buf; NLMSG_OK(nh, left);
             nh = NLMSG_NEXT(nh, left)) {
            if (nh->nlmsg_type == NLMSG_DONE) {
                return count;
            }
            if (nh->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *err = NLMSG_DATA(nh);
                return nh->nlmsg_len >= NLMSG_LENGTH(sizeof(*err)) && err->error < 0 ? err->error
                                                                                     : -EPROTO;
            }
            if (nh->nlmsg_type == SOCK_DIAG_BY_FAMILY) {
                count += (int)count_msg(nh, addrs, n_addrs);
            }
        }
    }
}

int vrrp_diag_tcp_busy(const struct in_addr *addrs, uint32_t n_addrs)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd == -1) {
        return -errno;
    }
    struct timeval tv = {.tv_sec = 0, .tv_usec = DIAG_TIMEOUT_MS * 1000};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct {
        struct nlmsghdr nh;
        struct inet_diag_req_v2 req;
    } msg;
    memset(&msg, 0, sizeof(msg));
    msg.nh.nlmsg_len = sizeof(msg);
    msg.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.req.sdiag_family = AF_INET;
    msg.req.sdiag_protocol = IPPROTO_TCP;
    msg.req.idiag_states = TCPF(TCP_ESTABLISHED) | TCPF(TCP_SYN_RECV) | TCPF(TCP_FIN_WAIT1) |
                           TCPF(TCP_CLOSE_WAIT) | TCPF(DIAG_NEW_SYN_RECV);
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    int rc;
    if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&kernel, sizeof(kernel)) == -1) {
        rc = -errno;
    } else {
        rc = read_dump(fd, addrs, n_addrs);
    }
    close(fd);
    return rc;
}

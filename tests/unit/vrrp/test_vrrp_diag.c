/* SPDX-License-Identifier: MIT */
/* vrrp_diag_tcp_busy against real sockets on a loopback address of its own: a connection
 * counts while our end has something to exchange, and stops counting once both ends closed. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vrrp/vrrp_diag.c"

#define ADDR "127.66.0.9" /* no other test uses it: the count is per network namespace */

static int listener(struct sockaddr_in *sin)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_neq(fd, -1);
    *sin = (struct sockaddr_in){.sin_family = AF_INET};
    inet_pton(AF_INET, ADDR, &sin->sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)sin, sizeof(*sin)), 0);
    socklen_t len = sizeof(*sin);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)sin, &len), 0);
    cr_assert_eq(listen(fd, 8), 0);
    return fd;
}

Test(vrrp_diag, counts_connections_under_way_on_the_address_only)
{
    struct sockaddr_in sin;
    int lfd = listener(&sin);
    struct in_addr addr = sin.sin_addr, other;
    inet_pton(AF_INET, "127.66.0.10", &other);
    cr_assert_eq(vrrp_diag_tcp_busy(&addr, 1), 0, "a listener alone is not busy");

    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
    /* The server end, not accepted yet (the client's local address is 127.0.0.1). */
    cr_assert_eq(vrrp_diag_tcp_busy(&addr, 1), 1);
    cr_assert_eq(vrrp_diag_tcp_busy(&other, 1), 0);
    int s = accept(lfd, NULL, NULL);
    cr_assert_neq(s, -1);
    cr_assert_eq(vrrp_diag_tcp_busy(&addr, 1), 1);
    close(c); /* the server end in CLOSE_WAIT: it may still have an answer to send */
    cr_assert_eq(vrrp_diag_tcp_busy(&addr, 1), 1);
    close(s); /* LAST_ACK, then gone: done */
    for (int i = 0; i < 100 && vrrp_diag_tcp_busy(&addr, 1) != 0; i++) {
        usleep(1000);
    }
    cr_assert_eq(vrrp_diag_tcp_busy(&addr, 1), 0);
    close(lfd);
}

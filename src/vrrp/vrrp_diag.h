/* SPDX-License-Identifier: MIT */
/* How many TCP connections this network namespace still has on some local addresses, from
 * the kernel's socket table (NETLINK_SOCK_DIAG, as `ss` reads it): a master handing over its
 * virtual IPs waits for the exchanges under way on them to finish (vrrp.c). */
#ifndef KEEL_VRRP_VRRP_DIAG_H
#define KEEL_VRRP_VRRP_DIAG_H

#include <netinet/in.h>
#include <stdint.h>

/* The TCP sockets whose local address is one of addrs and that still have something to
 * exchange: handshakes under way (SYN_RECV), ESTABLISHED, CLOSE_WAIT, and FIN_WAIT1 (our FIN
 * or the data before it not yet acknowledged). Listeners, FIN_WAIT2, LAST_ACK and TIME_WAIT do
 * not count. Returns the count, or -errno. One kernel dump, bounded by a 100 ms receive
 * timeout. */
int vrrp_diag_tcp_busy(const struct in_addr *addrs, uint32_t n_addrs);

#endif

/* SPDX-License-Identifier: MIT */
/* The address helpers of core/sock.c: the compact peer a connection keeps and the text of its
 * IP, which the proxy writes into every forwarded request (checked against inet_ntop). */
#include <criterion/criterion.h>

#include "core/sock.c"

#include <arpa/inet.h>
#include <string.h>

static void check_v4(uint32_t host_order)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(host_order);
    in->sin_port = htons(8080);
    union sock_peer p;
    sock_peer_set(&p, &ss);
    char got[SOCK_IP_MAX], want[INET_ADDRSTRLEN];
    cr_assert_not_null(inet_ntop(AF_INET, &in->sin_addr, want, sizeof(want)));
    cr_assert_str_eq(sock_addr_ip(&p.sa, got, sizeof(got)), want);
    cr_assert_eq(ntohs(p.in.sin_port), 8080);
}

Test(sock, ipv4_text_matches_inet_ntop)
{
    const uint32_t edges[] = {0,           0x7f000001u, 0xffffffffu, 0x0a000a64u,
                              0x01020304u, 0x63646509u, 0xc0a80001u, 0x090a6364u};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        check_v4(edges[i]);
    }
    for (uint32_t v = 1; v < 4000000u; v += 997u) {
        check_v4(v * 2654435761u);
    }
}

Test(sock, ipv6_peer_and_text)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    in6->sin6_family = AF_INET6;
    cr_assert_eq(inet_pton(AF_INET6, "2001:db8::1", &in6->sin6_addr), 1);
    in6->sin6_port = htons(443);
    union sock_peer p;
    sock_peer_set(&p, &ss);
    char got[SOCK_IP_MAX];
    cr_assert_str_eq(sock_addr_ip(&p.sa, got, sizeof(got)), "2001:db8::1");
    unsigned len;
    const void *bytes = sock_addr_bytes(&p.sa, &len);
    cr_assert_eq(len, 16);
    cr_assert(memcmp(bytes, &in6->sin6_addr, 16) == 0);
    cr_assert_leq(sizeof(p), 28, "the compact peer is no larger than a sockaddr_in6");
}

Test(sock, other_family_is_unspec_and_empty_text)
{
    struct sockaddr_storage ss = {0};
    ss.ss_family = AF_UNIX;
    union sock_peer p;
    sock_peer_set(&p, &ss);
    cr_assert_eq(p.sa.sa_family, AF_UNSPEC);
    char got[SOCK_IP_MAX] = "x";
    cr_assert_str_eq(sock_addr_ip(&p.sa, got, sizeof(got)), "");
}

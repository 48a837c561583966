/* SPDX-License-Identifier: MIT */
/* Unit tests of vrrp/vrrp_pkt.c: known-answer adverts (bytes computed independently with a
 * few lines of Python: struct, socket, hmac), every rejection reason, the auth trailer, and
 * build errors. */
#include <criterion/criterion.h>

#include <arpa/inet.h>

#include "vrrp/vrrp_pkt.c"

static struct in_addr ip(const char *s)
{
    struct in_addr a;
    cr_assert_eq(inet_pton(AF_INET, s, &a), 1, "bad test address %s", s);
    return a;
}

/* 10.0.0.11 -> 224.0.0.18, VRID 51, priority 100, 100 cs, one address 10.0.0.100. */
static const uint8_t kat_plain[] = {0x31, 0x33, 0x64, 0x01, 0x00, 0x64,
                                    0x75, 0x69, 0x0a, 0x00, 0x00, 0x64};

/* 192.168.1.2 -> 224.0.0.18, VRID 7, priority 200, 50 cs, 192.168.1.100 and .101. */
static const uint8_t kat_plain2[] = {0x31, 0x07, 0xc8, 0x02, 0x00, 0x32, 0xe0, 0x6b,
                                     0xc0, 0xa8, 0x01, 0x64, 0xc0, 0xa8, 0x01, 0x65};

/* HMAC-SHA256("keel-test-secret", "keel-vrrp-auth-v1"). */
static const uint8_t kat_key[] = {0x61, 0x35, 0x4b, 0x07, 0x33, 0x22, 0x75, 0xed, 0xcb, 0xa8, 0x39,
                                  0x4d, 0xc8, 0xe6, 0x8a, 0x20, 0xda, 0x7b, 0x37, 0x93, 0xc7, 0x1d,
                                  0xec, 0xec, 0xc4, 0x22, 0xe1, 0xca, 0x35, 0x8f, 0x49, 0x87};

/* kat_plain with the trailer of key id 7 and kat_key. */
static const uint8_t kat_auth[] = {0x31, 0x33, 0x64, 0x01, 0x00, 0x64, 0x94, 0x07, 0x0a, 0x00, 0x00,
                                   0x64, 0x6b, 0x14, 0x07, 0x00, 0x16, 0xac, 0x1b, 0xe4, 0xff, 0x5d,
                                   0xf2, 0x5e, 0x44, 0x9b, 0xd7, 0xe2, 0xf6, 0x7f, 0x37, 0xee};

#define SECRET "keel-test-secret"

static struct vrrp_auth_key test_key(uint8_t id)
{
    struct vrrp_auth_key key;
    cr_assert_eq(vrrp_auth_key_init(&key, (const uint8_t *)SECRET, strlen(SECRET), id), 0);
    return key;
}

static struct vrrp_pkt_rx rx_of(const uint8_t *p, size_t len, const char *src)
{
    struct vrrp_pkt_rx rx = {
        .src = ip(src), .dst = ip("224.0.0.18"), .ttl = 255, .payload = p, .len = len};
    return rx;
}

/* Recompute the checksum of a hand-edited message. */
static void fix_checksum(uint8_t *p, size_t len, const struct vrrp_pkt_rx *rx)
{
    p[6] = 0;
    p[7] = 0;
    uint16_t sum = vrrp_pkt_checksum(rx->src, rx->dst, p, len);
    p[6] = (uint8_t)(sum >> 8);
    p[7] = (uint8_t)sum;
}

static enum vrrp_pkt_reason parse_plain(const struct vrrp_pkt_rx *rx, struct vrrp_pkt_info *info)
{
    struct vrrp_pkt_vr vr = {.vrid = 51};
    return vrrp_pkt_parse(rx, &vr, 1, info);
}

#define ASSERT_REASON(got, want)                                                                   \
    cr_assert_eq((got), (want), "reason %s, want %s", vrrp_pkt_reason_name(got),                   \
                 vrrp_pkt_reason_name(want))

/* ------------------------------------------------------------------------------------------ */

Test(vrrp_pkt, reason_names)
{
    static const char *const want[] = {"ok",       "ttl",      "short", "version", "type", "length",
                                       "checksum", "interval", "vrid",  "peer",    "auth"};
    cr_assert_eq(sizeof(want) / sizeof(want[0]), VRRP_PKT_REASON_COUNT);
    for (int r = 0; r < VRRP_PKT_REASON_COUNT; r++) {
        cr_assert_str_eq(vrrp_pkt_reason_name((enum vrrp_pkt_reason)r), want[r]);
    }
    cr_assert_str_eq(vrrp_pkt_reason_name(VRRP_PKT_REASON_COUNT), "?");
    cr_assert_str_eq(vrrp_pkt_reason_name((enum vrrp_pkt_reason) - 1), "?");
}

Test(vrrp_pkt, checksum_known_answer)
{
    struct in_addr src = ip("10.0.0.11"), dst = ip("224.0.0.18");
    cr_assert_eq(vrrp_pkt_checksum(src, dst, kat_plain, sizeof(kat_plain)), 0);
    uint8_t zeroed[sizeof(kat_plain)];
    memcpy(zeroed, kat_plain, sizeof(zeroed));
    zeroed[6] = 0;
    zeroed[7] = 0;
    cr_assert_eq(vrrp_pkt_checksum(src, dst, zeroed, sizeof(zeroed)), 0x7569);
    /* Odd length: the last byte is padded with zero (RFC 1071); the value is Python's. */
    cr_assert_eq(vrrp_pkt_checksum(src, dst, (const uint8_t *)"\x31", 1), 0xe470);
}

Test(vrrp_pkt, build_known_answer)
{
    struct in_addr addr = ip("10.0.0.100");
    struct vrrp_advert adv = {
        .vrid = 51, .priority = 100, .max_advert_int_cs = 100, .addrs = &addr, .n_addrs = 1};
    uint8_t out[VRRP_PKT_MAX_LEN];
    size_t len = 0;
    cr_assert_eq(
        vrrp_pkt_build(&adv, ip("10.0.0.11"), ip("224.0.0.18"), NULL, out, sizeof(out), &len), 0);
    cr_assert_eq(len, sizeof(kat_plain));
    cr_assert_arr_eq(out, kat_plain, sizeof(kat_plain));

    struct in_addr addrs[] = {ip("192.168.1.100"), ip("192.168.1.101")};
    struct vrrp_advert adv2 = {
        .vrid = 7, .priority = 200, .max_advert_int_cs = 50, .addrs = addrs, .n_addrs = 2};
    cr_assert_eq(
        vrrp_pkt_build(&adv2, ip("192.168.1.2"), ip("224.0.0.18"), NULL, out, sizeof(out), &len),
        0);
    cr_assert_eq(len, sizeof(kat_plain2));
    cr_assert_arr_eq(out, kat_plain2, sizeof(kat_plain2));
}

Test(vrrp_pkt, auth_key_and_trailer_known_answer)
{
    struct vrrp_auth_key key = test_key(7);
    cr_assert_arr_eq(key.key, kat_key, sizeof(kat_key));
    cr_assert_eq(key.id, 7);

    struct in_addr addr = ip("10.0.0.100");
    struct vrrp_advert adv = {
        .vrid = 51, .priority = 100, .max_advert_int_cs = 100, .addrs = &addr, .n_addrs = 1};
    uint8_t out[VRRP_PKT_MAX_LEN];
    size_t len = 0;
    cr_assert_eq(
        vrrp_pkt_build(&adv, ip("10.0.0.11"), ip("224.0.0.18"), &key, out, sizeof(out), &len), 0);
    cr_assert_eq(len, sizeof(kat_auth));
    cr_assert_arr_eq(out, kat_auth, sizeof(kat_auth));
}

Test(vrrp_pkt, auth_key_rejects_empty_secret)
{
    struct vrrp_auth_key key;
    cr_assert_eq(vrrp_auth_key_init(&key, (const uint8_t *)"", 0, 1), -EINVAL);
    cr_assert_eq(vrrp_auth_key_init(&key, NULL, 4, 1), -EINVAL);
}

Test(vrrp_pkt, parse_known_answer)
{
    struct vrrp_pkt_rx rx = rx_of(kat_plain2, sizeof(kat_plain2), "192.168.1.2");
    struct vrrp_pkt_vr vrs[] = {{.vrid = 3}, {.vrid = 7}};
    struct vrrp_pkt_info info;
    ASSERT_REASON(vrrp_pkt_parse(&rx, vrs, 2, &info), VRRP_PKT_REASON_OK);
    cr_assert_eq(info.vrid, 7);
    cr_assert_eq(info.priority, 200);
    cr_assert_eq(info.max_advert_int_cs, 50);
    cr_assert_eq(info.n_addrs, 2);
    cr_assert_eq(info.vr_index, 1);
    cr_assert_not(info.is_authenticated);
    cr_assert_eq(vrrp_pkt_info_addr(&info, 0).s_addr, ip("192.168.1.100").s_addr);
    cr_assert_eq(vrrp_pkt_info_addr(&info, 1).s_addr, ip("192.168.1.101").s_addr);
    cr_assert_eq(vrrp_pkt_info_addr(&info, 2).s_addr, 0, "out of range gives 0.0.0.0");
    cr_assert_eq(info.addr_bytes, kat_plain2 + 8, "points into the payload, no copy");
}

Test(vrrp_pkt, parse_ignores_reserved_bits)
{
    uint8_t p[sizeof(kat_plain)];
    memcpy(p, kat_plain, sizeof(p));
    p[4] |= 0xf0;
    struct vrrp_pkt_rx rx = rx_of(p, sizeof(p), "10.0.0.11");
    fix_checksum(p, sizeof(p), &rx);
    struct vrrp_pkt_info info;
    ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_OK);
    cr_assert_eq(info.max_advert_int_cs, 100);
}

Test(vrrp_pkt, parse_takes_255_addresses)
{
    /* More addresses than keel builds (a keepalived peer may send them): still valid. */
    uint8_t p[8 + 4 * 255];
    memset(p, 0, sizeof(p));
    p[0] = 0x31;
    p[1] = 51;
    p[2] = 100;
    p[3] = 255;
    p[5] = 0xff;
    p[4] = 0x0f; /* 4095 cs */
    for (size_t i = 0; i < 255; i++) {
        p[8 + 4 * i] = 10;
        p[8 + 4 * i + 3] = (uint8_t)i;
    }
    struct vrrp_pkt_rx rx = rx_of(p, sizeof(p), "10.0.0.11");
    fix_checksum(p, sizeof(p), &rx);
    struct vrrp_pkt_info info;
    ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_OK);
    cr_assert_eq(info.n_addrs, 255);
    cr_assert_eq(info.max_advert_int_cs, 4095);
    cr_assert_eq(ntohl(vrrp_pkt_info_addr(&info, 254).s_addr), 0x0a0000feu);
}

/* ------------------------------------------------------------------------------------------
 * Rejections, one per reason
 * ------------------------------------------------------------------------------------------ */

Test(vrrp_pkt, reject_ttl)
{
    struct vrrp_pkt_rx rx = rx_of(kat_plain, sizeof(kat_plain), "10.0.0.11");
    struct vrrp_pkt_info info;
    rx.ttl = 254; /* routed once: the sender is not on our link */
    ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_TTL);
    rx.ttl = 64;
    ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_TTL);
}

Test(vrrp_pkt, reject_short)
{
    struct vrrp_pkt_info info;
    for (size_t len = 0; len < 8; len++) {
        struct vrrp_pkt_rx rx = rx_of(kat_plain, len, "10.0.0.11");
        ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_SHORT);
    }
    struct vrrp_pkt_rx rx = rx_of(NULL, 0, "10.0.0.11");
    ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_SHORT);
}

Test(vrrp_pkt, reject_version)
{
    /* A VRRPv2 advert (RFC 3768): version 2, auth type 0, 1 s, 8 bytes of auth data. */
    uint8_t v2[] = {0x21, 51, 100, 1, 0, 1, 0, 0, 10, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0};
    struct vrrp_pkt_rx rx = rx_of(v2, sizeof(v2), "10.0.0.11");
    struct vrrp_pkt_info info;
    ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_VERSION);
    uint8_t p[sizeof(kat_plain)];
    memcpy(p, kat_plain, sizeof(p));
    p[0] = 0x41;
    rx = rx_of(p, sizeof(p), "10.0.0.11");
    ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_VERSION);
}

Test(vrrp_pkt, reject_type)
{
    uint8_t p[sizeof(kat_plain)];
    memcpy(p, kat_plain, sizeof(p));
    struct vrrp_pkt_rx rx = rx_of(p, sizeof(p), "10.0.0.11");
    struct vrrp_pkt_info info;
    for (uint8_t type = 0; type < 16; type++) {
        if (type == 1) {
            continue;
        }
        p[0] = (uint8_t)(0x30 | type);
        fix_checksum(p, sizeof(p), &rx);
        ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_TYPE);
    }
}

Test(vrrp_pkt, reject_length)
{
    uint8_t p[64];
    struct vrrp_pkt_info info;
    struct vrrp_pkt_rx rx;

    /* Count 0 (RFC 5798 5.2.5: the minimum is 1). */
    memcpy(p, kat_plain, 8);
    p[3] = 0;
    rx = rx_of(p, 8, "10.0.0.11");
    fix_checksum(p, 8, &rx);
    ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_LENGTH);

    /* Count 2 but one address. */
    memcpy(p, kat_plain, sizeof(kat_plain));
    p[3] = 2;
    rx = rx_of(p, sizeof(kat_plain), "10.0.0.11");
    ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_LENGTH);

    /* Trailing bytes that are not one trailer (1..19 and 21 extra bytes). */
    memset(p, 0, sizeof(p));
    memcpy(p, kat_plain, sizeof(kat_plain));
    for (size_t extra = 1; extra <= 21; extra++) {
        if (extra == VRRP_PKT_AUTH_LEN) {
            continue;
        }
        rx = rx_of(p, sizeof(kat_plain) + extra, "10.0.0.11");
        ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_LENGTH);
    }
}

Test(vrrp_pkt, reject_checksum)
{
    uint8_t p[sizeof(kat_plain)];
    struct vrrp_pkt_info info;
    for (size_t i = 0; i < sizeof(p); i++) {
        if (i == 0 || i == 3) {
            continue; /* version/type and count are checked before the checksum */
        }
        memcpy(p, kat_plain, sizeof(p));
        p[i] ^= 0x01;
        struct vrrp_pkt_rx rx = rx_of(p, sizeof(p), "10.0.0.11");
        ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_CHECKSUM);
    }
    /* The pseudo-header counts: another source or destination breaks the sum. */
    struct vrrp_pkt_rx rx = rx_of(kat_plain, sizeof(kat_plain), "10.0.0.12");
    ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_CHECKSUM);
    rx = rx_of(kat_plain, sizeof(kat_plain), "10.0.0.11");
    rx.dst = ip("10.0.0.12");
    ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_CHECKSUM);
}

Test(vrrp_pkt, reject_interval)
{
    uint8_t p[sizeof(kat_plain)];
    memcpy(p, kat_plain, sizeof(p));
    p[4] = 0xf0; /* reserved bits set, interval 0 */
    p[5] = 0;
    struct vrrp_pkt_rx rx = rx_of(p, sizeof(p), "10.0.0.11");
    fix_checksum(p, sizeof(p), &rx);
    struct vrrp_pkt_info info;
    ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_INTERVAL);
}

Test(vrrp_pkt, reject_vrid)
{
    struct vrrp_pkt_rx rx = rx_of(kat_plain, sizeof(kat_plain), "10.0.0.11");
    struct vrrp_pkt_vr vrs[] = {{.vrid = 50}, {.vrid = 52}};
    struct vrrp_pkt_info info;
    ASSERT_REASON(vrrp_pkt_parse(&rx, vrs, 2, &info), VRRP_PKT_REASON_VRID);
    ASSERT_REASON(vrrp_pkt_parse(&rx, NULL, 0, &info), VRRP_PKT_REASON_VRID);
}

/* Found by fuzz_vrrp: a VR table entry with VRID 0 made VRID 0 adverts acceptable. */
Test(vrrp_pkt, regression_fuzz_vrid_zero)
{
    uint8_t p[sizeof(kat_plain)];
    memcpy(p, kat_plain, sizeof(p));
    p[1] = 0;
    struct vrrp_pkt_rx rx = rx_of(p, sizeof(p), "10.0.0.11");
    fix_checksum(p, sizeof(p), &rx);
    struct vrrp_pkt_vr vr = {.vrid = 0};
    struct vrrp_pkt_info info;
    ASSERT_REASON(vrrp_pkt_parse(&rx, &vr, 1, &info), VRRP_PKT_REASON_VRID);
}

Test(vrrp_pkt, reject_peer)
{
    struct in_addr peers[] = {ip("10.0.0.12"), ip("10.0.0.13")};
    struct vrrp_pkt_vr vr = {.vrid = 51, .peers = peers, .n_peers = 2};
    struct vrrp_pkt_rx rx = rx_of(kat_plain, sizeof(kat_plain), "10.0.0.11");
    struct vrrp_pkt_info info;
    ASSERT_REASON(vrrp_pkt_parse(&rx, &vr, 1, &info), VRRP_PKT_REASON_PEER);
    peers[1] = ip("10.0.0.11");
    ASSERT_REASON(vrrp_pkt_parse(&rx, &vr, 1, &info), VRRP_PKT_REASON_OK);
}

Test(vrrp_pkt, first_failing_check_wins)
{
    /* Bad TTL, version, checksum and VRID at once: TTL is checked first. */
    uint8_t p[sizeof(kat_plain)];
    memcpy(p, kat_plain, sizeof(p));
    p[0] = 0x21;
    p[1] = 9;
    struct vrrp_pkt_rx rx = rx_of(p, sizeof(p), "10.0.0.11");
    struct vrrp_pkt_info info;
    rx.ttl = 1;
    ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_TTL);
    rx.ttl = 255;
    ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_VERSION);
    p[0] = 0x31;
    ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_CHECKSUM);
    fix_checksum(p, sizeof(p), &rx);
    ASSERT_REASON(parse_plain(&rx, &info), VRRP_PKT_REASON_VRID);
}

/* ------------------------------------------------------------------------------------------
 * Auth trailer
 * ------------------------------------------------------------------------------------------ */

Test(vrrp_pkt, auth_accepts_valid_trailer)
{
    struct vrrp_auth_key key = test_key(7);
    struct vrrp_pkt_vr vr = {.vrid = 51, .auth = &key};
    struct vrrp_pkt_rx rx = rx_of(kat_auth, sizeof(kat_auth), "10.0.0.11");
    struct vrrp_pkt_info info;
    ASSERT_REASON(vrrp_pkt_parse(&rx, &vr, 1, &info), VRRP_PKT_REASON_OK);
    cr_assert(info.is_authenticated);
    cr_assert_eq(info.priority, 100);
    cr_assert_eq(info.n_addrs, 1);
}

Test(vrrp_pkt, auth_rejects_missing_or_unexpected_trailer)
{
    struct vrrp_auth_key key = test_key(7);
    struct vrrp_pkt_vr with_auth = {.vrid = 51, .auth = &key};
    struct vrrp_pkt_vr without_auth = {.vrid = 51};
    struct vrrp_pkt_info info;
    struct vrrp_pkt_rx rx = rx_of(kat_plain, sizeof(kat_plain), "10.0.0.11");
    ASSERT_REASON(vrrp_pkt_parse(&rx, &with_auth, 1, &info), VRRP_PKT_REASON_AUTH);
    rx = rx_of(kat_auth, sizeof(kat_auth), "10.0.0.11");
    ASSERT_REASON(vrrp_pkt_parse(&rx, &without_auth, 1, &info), VRRP_PKT_REASON_AUTH);
}

Test(vrrp_pkt, auth_rejects_wrong_key_or_key_id)
{
    struct vrrp_auth_key other_id = test_key(8);
    struct vrrp_auth_key other_key;
    cr_assert_eq(vrrp_auth_key_init(&other_key, (const uint8_t *)"another", 7, 7), 0);
    struct vrrp_pkt_info info;
    struct vrrp_pkt_rx rx = rx_of(kat_auth, sizeof(kat_auth), "10.0.0.11");
    struct vrrp_pkt_vr vr = {.vrid = 51, .auth = &other_id};
    ASSERT_REASON(vrrp_pkt_parse(&rx, &vr, 1, &info), VRRP_PKT_REASON_AUTH);
    vr.auth = &other_key;
    ASSERT_REASON(vrrp_pkt_parse(&rx, &vr, 1, &info), VRRP_PKT_REASON_AUTH);
}

Test(vrrp_pkt, auth_rejects_any_tampering)
{
    /* Flip each bit other than the checksum's, then repair the checksum as an attacker
     * would: only the MAC can tell. */
    struct vrrp_auth_key key = test_key(7);
    struct vrrp_pkt_vr vr = {.vrid = 51, .auth = &key};
    struct vrrp_pkt_info info;
    uint8_t p[sizeof(kat_auth)];
    for (size_t i = 0; i < sizeof(p); i++) {
        if (i == 6 || i == 7) {
            continue;
        }
        for (int bit = 0; bit < 8; bit++) {
            memcpy(p, kat_auth, sizeof(p));
            p[i] ^= (uint8_t)(1u << bit);
            struct vrrp_pkt_rx rx = rx_of(p, sizeof(p), "10.0.0.11");
            fix_checksum(p, sizeof(p), &rx);
            enum vrrp_pkt_reason r = vrrp_pkt_parse(&rx, &vr, 1, &info);
            cr_assert_neq(r, VRRP_PKT_REASON_OK, "byte %zu bit %d accepted", i, bit);
        }
    }
    /* The same bytes from another source (checksum repaired): the MAC binds the source. */
    memcpy(p, kat_auth, sizeof(p));
    struct vrrp_pkt_rx rx = rx_of(p, sizeof(p), "10.0.0.99");
    fix_checksum(p, sizeof(p), &rx);
    ASSERT_REASON(vrrp_pkt_parse(&rx, &vr, 1, &info), VRRP_PKT_REASON_AUTH);
}

Test(vrrp_pkt, auth_round_trip_with_max_addresses)
{
    struct vrrp_auth_key key = test_key(1);
    struct in_addr addrs[VRRP_PKT_MAX_ADDRS];
    for (size_t i = 0; i < VRRP_PKT_MAX_ADDRS; i++) {
        addrs[i].s_addr = htonl(0xc0a80a00u + (uint32_t)i);
    }
    struct vrrp_advert adv = {.vrid = 255,
                              .priority = 0,
                              .max_advert_int_cs = 4095,
                              .addrs = addrs,
                              .n_addrs = VRRP_PKT_MAX_ADDRS};
    uint8_t out[VRRP_PKT_MAX_LEN];
    size_t len = 0;
    struct in_addr src = ip("192.168.10.1"), dst = ip("192.168.10.2"); /* unicast peer */
    cr_assert_eq(vrrp_pkt_build(&adv, src, dst, &key, out, sizeof(out), &len), 0);
    cr_assert_eq(len, VRRP_PKT_MAX_LEN);
    struct vrrp_pkt_rx rx = {.src = src, .dst = dst, .ttl = 255, .payload = out, .len = len};
    struct vrrp_pkt_vr vr = {.vrid = 255, .auth = &key, .peers = &src, .n_peers = 1};
    struct vrrp_pkt_info info;
    ASSERT_REASON(vrrp_pkt_parse(&rx, &vr, 1, &info), VRRP_PKT_REASON_OK);
    cr_assert_eq(info.vrid, 255);
    cr_assert_eq(info.priority, 0);
    cr_assert_eq(info.max_advert_int_cs, 4095);
    cr_assert_eq(info.n_addrs, VRRP_PKT_MAX_ADDRS);
    for (size_t i = 0; i < VRRP_PKT_MAX_ADDRS; i++) {
        cr_assert_eq(vrrp_pkt_info_addr(&info, i).s_addr, addrs[i].s_addr);
    }
    /* Sent to the group instead of this peer: the MAC covers the destination too. */
    rx.dst = ip("224.0.0.18");
    fix_checksum(out, len, &rx);
    ASSERT_REASON(vrrp_pkt_parse(&rx, &vr, 1, &info), VRRP_PKT_REASON_AUTH);
}

/* ------------------------------------------------------------------------------------------
 * Build errors
 * ------------------------------------------------------------------------------------------ */

Test(vrrp_pkt, build_rejects_bad_fields)
{
    struct in_addr addrs[VRRP_PKT_MAX_ADDRS + 1] = {{0}};
    struct in_addr src = ip("10.0.0.1"), dst = ip("224.0.0.18");
    uint8_t out[VRRP_PKT_MAX_LEN + 4];
    size_t len = 0;
    const struct vrrp_advert bad[] = {
        {.vrid = 0, .max_advert_int_cs = 100, .addrs = addrs, .n_addrs = 1},
        {.vrid = 1, .max_advert_int_cs = 0, .addrs = addrs, .n_addrs = 1},
        {.vrid = 1, .max_advert_int_cs = 4096, .addrs = addrs, .n_addrs = 1},
        {.vrid = 1, .max_advert_int_cs = 100, .addrs = addrs, .n_addrs = 0},
        {.vrid = 1, .max_advert_int_cs = 100, .addrs = addrs, .n_addrs = VRRP_PKT_MAX_ADDRS + 1},
        {.vrid = 1, .max_advert_int_cs = 100, .addrs = NULL, .n_addrs = 1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(vrrp_pkt_build(&bad[i], src, dst, NULL, out, sizeof(out), &len), -EINVAL,
                     "case %zu", i);
    }
}

Test(vrrp_pkt, build_rejects_small_buffer)
{
    struct vrrp_auth_key key = test_key(1);
    struct in_addr addr = ip("10.0.0.100");
    struct vrrp_advert adv = {
        .vrid = 51, .priority = 100, .max_advert_int_cs = 100, .addrs = &addr, .n_addrs = 1};
    uint8_t out[32];
    size_t len = 0;
    struct in_addr src = ip("10.0.0.11"), dst = ip("224.0.0.18");
    cr_assert_eq(vrrp_pkt_build(&adv, src, dst, NULL, out, 11, &len), -ENOBUFS);
    cr_assert_eq(vrrp_pkt_build(&adv, src, dst, NULL, out, 12, &len), 0);
    cr_assert_eq(vrrp_pkt_build(&adv, src, dst, &key, out, 31, &len), -ENOBUFS);
    cr_assert_eq(vrrp_pkt_build(&adv, src, dst, &key, out, 32, &len), 0);
    cr_assert_eq(len, 32);
}

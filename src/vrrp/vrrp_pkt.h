/* SPDX-License-Identifier: MIT */
/* The VRRP version 3 advertisement codec for IPv4 (RFC 5798 section 5): builds adverts and
 * parses + validates received ones, including keel's optional HMAC-SHA256 trailer. Pure:
 * no sockets, no clock, no allocation by keel (OpenSSL may allocate inside HMAC()). The
 * IP header is the caller's (vrrp_net); this file only sees the facts the RFC checks in it.
 * Design and trailer format: docs/internals/vrrp.md. */
#ifndef KEEL_VRRP_VRRP_PKT_H
#define KEEL_VRRP_VRRP_PKT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define VRRP_PKT_PROTO 112               /* IP protocol number (RFC 5798 5.1.1.4) */
#define VRRP_PKT_IP_TTL 255              /* sent and required TTL (RFC 5798 5.1.1.3, 7.1) */
#define VRRP_PKT_MCAST_GROUP 0xe0000012u /* 224.0.0.18, host byte order (RFC 5798 5.1.1.2) */
#define VRRP_PKT_VERSION 3
#define VRRP_PKT_TYPE_ADVERT 1
#define VRRP_PKT_HDR_LEN 8              /* fixed fields before the address list */
#define VRRP_PKT_MAX_ADDRS 16           /* keel builds at most this many; parse takes 255 */
#define VRRP_PKT_MAX_ADVERT_INT_CS 4095 /* 12-bit field (RFC 5798 5.2.7) */

/* keel's authentication trailer, appended after the address list (docs/internals/vrrp.md):
 * kind, length, key id, reserved, then HMAC-SHA256 truncated to 16 bytes. */
#define VRRP_PKT_AUTH_KIND 0x6b /* 'k' */
#define VRRP_PKT_AUTH_LEN 20
#define VRRP_PKT_AUTH_MAC_LEN 16
#define VRRP_PKT_AUTH_KEY_LEN 32

/* Room for the largest advert keel builds: 8 + 16 * 4 + 20 = 92 bytes. */
#define VRRP_PKT_MAX_LEN (VRRP_PKT_HDR_LEN + 4 * VRRP_PKT_MAX_ADDRS + VRRP_PKT_AUTH_LEN)

/* Why a received message was rejected, in the order vrrp_pkt_parse checks (the first failing
 * check wins). Names (vrrp_pkt_reason_name) are for counters and metrics labels. */
enum vrrp_pkt_reason {
    VRRP_PKT_REASON_OK = 0,   /* "ok": accepted */
    VRRP_PKT_REASON_TTL,      /* "ttl": IP TTL is not 255, the sender is off-link (RFC 5798 7.1) */
    VRRP_PKT_REASON_SHORT,    /* "short": fewer than the 8 bytes of fixed fields */
    VRRP_PKT_REASON_VERSION,  /* "version": not 3 (a VRRPv2 peer, or CARP) */
    VRRP_PKT_REASON_TYPE,     /* "type": not 1 (ADVERTISEMENT) */
    VRRP_PKT_REASON_LENGTH,   /* "length": address count 0, or the length is neither the address
                               * list's nor the address list's plus one auth trailer */
    VRRP_PKT_REASON_CHECKSUM, /* "checksum": bad checksum over pseudo-header + message (5.2.8) */
    VRRP_PKT_REASON_INTERVAL, /* "interval": Max Adver Int is 0 */
    VRRP_PKT_REASON_VRID,     /* "vrid": no virtual router with this VRID runs here */
    VRRP_PKT_REASON_PEER,     /* "peer": the source address is not one of the VR's peers */
    VRRP_PKT_REASON_AUTH,     /* "auth": trailer missing, unexpected, malformed, wrong key id or
                               * bad MAC */
    VRRP_PKT_REASON_COUNT
};

/* "ok", "ttl", ... as above; "?" for a value out of range. */
const char *vrrp_pkt_reason_name(enum vrrp_pkt_reason reason);

/* An authentication key, derived from the cluster secret by vrrp_auth_key_init. Plain
 * data: copy it, no _fini. */
struct vrrp_auth_key {
    uint8_t key[VRRP_PKT_AUTH_KEY_LEN]; /* HMAC-SHA256(secret, "keel-vrrp-auth-v1") */
    uint8_t id;                         /* sent in the trailer; receivers require a match */
};

/* Derive the VRRP key from the cluster secret (domain-separated, so the secret's other uses
 * never share a key with VRRP). secret is borrowed; secret_len >= 1. Returns 0, -EINVAL
 * (empty secret) or -ENOMEM (OpenSSL failed). Call at config load time. */
int vrrp_auth_key_init(struct vrrp_auth_key *key, const uint8_t *secret, size_t secret_len,
                       uint8_t key_id) KEEL_MUST_CHECK;

/* The fields of one advertisement to build (RFC 5798 5.2). */
struct vrrp_advert {
    uint8_t vrid;                /* 1..255 */
    uint8_t priority;            /* 0 (master stopping) .. 255 (address owner) */
    uint16_t max_advert_int_cs;  /* 1..4095 centiseconds */
    const struct in_addr *addrs; /* borrowed; the VR's IPv4 addresses (network order) */
    size_t n_addrs;              /* 1..VRRP_PKT_MAX_ADDRS */
};

/* Write the VRRP message (the IP payload) for adv into out. src and dst are the addresses
 * the caller will put in the IP header (dst: 224.0.0.18 or a unicast peer): the checksum
 * and the MAC cover them. With key (NULL: none, for keepalived interoperability) the auth
 * trailer is appended. Returns 0 with *out_len set, -EINVAL (a field out of range),
 * -ENOBUFS (outcap too small; VRRP_PKT_MAX_LEN always suffices) or -ENOMEM (OpenSSL failed).
 * Never blocks. */
int vrrp_pkt_build(const struct vrrp_advert *adv, struct in_addr src, struct in_addr dst,
                   const struct vrrp_auth_key *key, uint8_t *out, size_t outcap,
                   size_t *out_len) KEEL_MUST_CHECK;

/* What the caller knows of a received datagram: its IP header facts and its payload. */
struct vrrp_pkt_rx {
    struct in_addr src;     /* IP source */
    struct in_addr dst;     /* IP destination (as received: the group or our unicast address) */
    uint8_t ttl;            /* IP TTL */
    const uint8_t *payload; /* the IP payload, borrowed */
    size_t len;
};

/* A virtual router this node runs, as the parser needs it. Usually one per VRID in an
 * array that lives as long as the config generation. */
struct vrrp_pkt_vr {
    uint8_t vrid;
    const struct vrrp_auth_key *auth; /* NULL: no trailer allowed (keepalived peers) */
    const struct in_addr *peers;      /* accepted sources; borrowed */
    size_t n_peers;                   /* 0: accept any source */
};

/* The fields of an accepted message. */
struct vrrp_pkt_info {
    uint8_t vrid;
    uint8_t priority;
    uint16_t max_advert_int_cs; /* 1..4095 */
    uint8_t n_addrs;            /* 1..255 */
    const uint8_t *addr_bytes;  /* n_addrs * 4 bytes inside rx->payload (network order) */
    size_t vr_index;            /* which entry of vrs matched */
    bool is_authenticated;      /* the trailer was present and valid */
};

/* Parse and validate a received message against the virtual routers vrs[0..n_vrs): the
 * caller says which VRIDs it runs; the first entry with the message's VRID is used, and VRID 0
 * never matches. The checks run in the order of enum vrrp_pkt_reason, so exactly one reason
 * is reported: TTL, fixed fields, version, type, length against the address count, checksum
 * (over the whole payload, trailer included), interval, VRID, source against vr->peers, then
 * the trailer: present exactly when vr->auth is set, well-formed, and its MAC right (compared
 * in constant time). Fills *out only on VRRP_PKT_REASON_OK; out->addr_bytes points into
 * rx->payload. Adverts from this node itself and the owner rule are vrrp_fsm's business, the
 * address-list comparison (RFC 5798 7.1 "MAY") the caller's. Never blocks. */
enum vrrp_pkt_reason vrrp_pkt_parse(const struct vrrp_pkt_rx *rx, const struct vrrp_pkt_vr *vrs,
                                    size_t n_vrs, struct vrrp_pkt_info *out);

/* Address i (< info->n_addrs) of an accepted message. */
struct in_addr vrrp_pkt_info_addr(const struct vrrp_pkt_info *info, size_t i);

/* The Internet checksum (RFC 1071) of the IPv4 pseudo-header (src, dst, zero, protocol 112,
 * len) followed by msg[0..len), as RFC 5798 5.2.8 asks for v3. Over a message whose checksum
 * field holds the right value, the result is 0. len <= 65535. */
uint16_t vrrp_pkt_checksum(struct in_addr src, struct in_addr dst, const uint8_t *msg, size_t len);

#endif

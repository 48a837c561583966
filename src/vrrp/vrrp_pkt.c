/* SPDX-License-Identifier: MIT */
/* VRRPv3 advertisement codec for IPv4 (RFC 5798 section 5) and keel's HMAC trailer. Owns the
 * byte layout, the checksum and the MAC; not the IP header, sockets or what an accepted
 * advert means (vrrp_fsm.c). */
#include "vrrp/vrrp_pkt.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* The derivation label: a new trailer format gets a new label, hence a new key. */
#define AUTH_KEY_LABEL "keel-vrrp-auth-v1"

/* Offsets in the fixed fields (RFC 5798 5.2):
 *   0: version (4 bits) | type (4 bits)   1: VRID   2: priority   3: Count IPvX Addr
 *   4-5: reserved (4 bits) | Max Adver Int (12 bits, centiseconds)   6-7: checksum */
#define OFF_VERSION_TYPE 0
#define OFF_VRID 1
#define OFF_PRIORITY 2
#define OFF_COUNT 3
#define OFF_INTERVAL 4
#define OFF_CHECKSUM 6

/* Trailer offsets, relative to its start (right after the address list). */
#define TRL_KIND 0
#define TRL_LEN 1
#define TRL_KEY_ID 2
#define TRL_RESERVED 3
#define TRL_MAC 4

#define PSEUDO_LEN 12
/* The largest MAC input: pseudo-header, 255 addresses, the trailer's 4 header bytes. */
#define MAC_INPUT_MAX (PSEUDO_LEN + VRRP_PKT_HDR_LEN + 4 * 255 + TRL_MAC)

static const char *const reason_names[VRRP_PKT_REASON_COUNT] = {
    [VRRP_PKT_REASON_OK] = "ok",
    [VRRP_PKT_REASON_TTL] = "ttl",
    [VRRP_PKT_REASON_SHORT] = "short",
    [VRRP_PKT_REASON_VERSION] = "version",
    [VRRP_PKT_REASON_TYPE] = "type",
    [VRRP_PKT_REASON_LENGTH] = "length",
    [VRRP_PKT_REASON_CHECKSUM] = "checksum",
    [VRRP_PKT_REASON_INTERVAL] = "interval",
    [VRRP_PKT_REASON_VRID] = "vrid",
    [VRRP_PKT_REASON_PEER] = "peer",
    [VRRP_PKT_REASON_AUTH] = "auth",
};

const char *vrrp_pkt_reason_name(enum vrrp_pkt_reason reason)
{
    if ((unsigned)reason >= VRRP_PKT_REASON_COUNT) {
        return "?";
    }
    return reason_names[reason];
}

int vrrp_auth_key_init(struct vrrp_auth_key *key, const uint8_t *secret, size_t secret_len,
                       uint8_t key_id)
{
    static const char label[] = AUTH_KEY_LABEL;
    unsigned int md_len = 0;

    if (secret == NULL || secret_len == 0 || secret_len > INT_MAX) {
        return -EINVAL;
    }
    if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)label, sizeof(label) - 1,
             key->key, &md_len) == NULL ||
        md_len != VRRP_PKT_AUTH_KEY_LEN) {
        return -ENOMEM;
    }
    key->id = key_id;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Checksum (RFC 1071 over the IPv4 pseudo-header and the message, RFC 5798 5.2.8)
 * ------------------------------------------------------------------------------------------ */

static void pseudo_header(uint8_t ph[PSEUDO_LEN], struct in_addr src, struct in_addr dst,
                          size_t len)
{
    memcpy(ph, &src.s_addr, 4); /* s_addr is already in network byte order */
    memcpy(ph + 4, &dst.s_addr, 4);
    ph[8] = 0;
    ph[9] = VRRP_PKT_PROTO;
    ph[10] = (uint8_t)(len >> 8);
    ph[11] = (uint8_t)len;
}

/* Add big-endian 16-bit words; an odd last byte is padded with a zero byte. */
static uint64_t sum_words(uint64_t sum, const uint8_t *p, size_t len)
{
    while (len >= 2) {
        sum += (uint64_t)p[0] << 8 | p[1];
        p += 2;
        len -= 2;
    }
    if (len == 1) {
        sum += (uint64_t)p[0] << 8;
    }
    return sum;
}

uint16_t vrrp_pkt_checksum(struct in_addr src, struct in_addr dst, const uint8_t *msg, size_t len)
{
    uint8_t ph[PSEUDO_LEN];
    pseudo_header(ph, src, dst, len);
    uint64_t sum = sum_words(sum_words(0, ph, sizeof(ph)), msg, len);
    while ((sum >> 16) != 0) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return (uint16_t)~sum;
}

/* ------------------------------------------------------------------------------------------
 * Auth trailer
 * ------------------------------------------------------------------------------------------ */

/* The MAC of a message of len bytes whose trailer header (kind, length, key id, reserved) is
 * already written: HMAC-SHA256 over pseudo-header || message up to the MAC, with the
 * checksum field taken as zero (the checksum is computed last, over the MAC). Returns 0 or
 * -ENOMEM. */
static int auth_mac(const struct vrrp_auth_key *key, struct in_addr src, struct in_addr dst,
                    const uint8_t *msg, size_t len, uint8_t mac[EVP_MAX_MD_SIZE])
{
    uint8_t in[MAC_INPUT_MAX];
    size_t body = len - VRRP_PKT_AUTH_MAC_LEN;
    unsigned int mac_len = 0;

    if (body + PSEUDO_LEN > sizeof(in)) {
        return -ENOMEM; /* unreachable: parse and build bound len */
    }
    pseudo_header(in, src, dst, len);
    memcpy(in + PSEUDO_LEN, msg, body);
    in[PSEUDO_LEN + OFF_CHECKSUM] = 0;
    in[PSEUDO_LEN + OFF_CHECKSUM + 1] = 0;
    if (HMAC(EVP_sha256(), key->key, sizeof(key->key), in, PSEUDO_LEN + body, mac, &mac_len) ==
            NULL ||
        mac_len < VRRP_PKT_AUTH_MAC_LEN) {
        return -ENOMEM;
    }
    return 0;
}

/* Check the trailer at msg + base (len == base + VRRP_PKT_AUTH_LEN). */
static bool auth_verify(const struct vrrp_auth_key *key, const struct vrrp_pkt_rx *rx, size_t base)
{
    const uint8_t *trl = rx->payload + base;
    uint8_t mac[EVP_MAX_MD_SIZE];

    /* Reserved is covered by the MAC, so it is not checked on its own. */
    if (trl[TRL_KIND] != VRRP_PKT_AUTH_KIND || trl[TRL_LEN] != VRRP_PKT_AUTH_LEN ||
        trl[TRL_KEY_ID] != key->id) {
        return false;
    }
    if (auth_mac(key, rx->src, rx->dst, rx->payload, rx->len, mac) != 0) {
        return false; /* OpenSSL failed: fail closed */
    }
    return CRYPTO_memcmp(mac, trl + TRL_MAC, VRRP_PKT_AUTH_MAC_LEN) == 0;
}

/* ------------------------------------------------------------------------------------------
 * Build
 * ------------------------------------------------------------------------------------------ */

int vrrp_pkt_build(const struct vrrp_advert *adv, struct in_addr src, struct in_addr dst,
                   const struct vrrp_auth_key *key, uint8_t *out, size_t outcap, size_t *out_len)
{
    if (adv->vrid == 0 || adv->max_advert_int_cs == 0 ||
        adv->max_advert_int_cs > VRRP_PKT_MAX_ADVERT_INT_CS || adv->addrs == NULL ||
        adv->n_addrs == 0 || adv->n_addrs > VRRP_PKT_MAX_ADDRS) {
        return -EINVAL;
    }
    size_t base = VRRP_PKT_HDR_LEN + 4 * adv->n_addrs;
    size_t len = base + (key != NULL ? VRRP_PKT_AUTH_LEN : 0);
    if (outcap < len) {
        return -ENOBUFS;
    }

    out[OFF_VERSION_TYPE] = VRRP_PKT_VERSION << 4 | VRRP_PKT_TYPE_ADVERT;
    out[OFF_VRID] = adv->vrid;
    out[OFF_PRIORITY] = adv->priority;
    out[OFF_COUNT] = (uint8_t)adv->n_addrs;
    out[OFF_INTERVAL] = (uint8_t)(adv->max_advert_int_cs >> 8); /* reserved bits: zero */
    out[OFF_INTERVAL + 1] = (uint8_t)adv->max_advert_int_cs;
    out[OFF_CHECKSUM] = 0;
    out[OFF_CHECKSUM + 1] = 0;
    for (size_t i = 0; i < adv->n_addrs; i++) {
        memcpy(out + VRRP_PKT_HDR_LEN + 4 * i, &adv->addrs[i].s_addr, 4);
    }

    if (key != NULL) {
        uint8_t *trl = out + base;
        uint8_t mac[EVP_MAX_MD_SIZE];
        trl[TRL_KIND] = VRRP_PKT_AUTH_KIND;
        trl[TRL_LEN] = VRRP_PKT_AUTH_LEN;
        trl[TRL_KEY_ID] = key->id;
        trl[TRL_RESERVED] = 0;
        int rc = auth_mac(key, src, dst, out, len, mac);
        if (rc != 0) {
            return rc;
        }
        memcpy(trl + TRL_MAC, mac, VRRP_PKT_AUTH_MAC_LEN);
    }

    uint16_t sum = vrrp_pkt_checksum(src, dst, out, len);
    out[OFF_CHECKSUM] = (uint8_t)(sum >> 8);
    out[OFF_CHECKSUM + 1] = (uint8_t)sum;
    *out_len = len;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Parse
 * ------------------------------------------------------------------------------------------ */

static bool is_peer(const struct vrrp_pkt_vr *vr, struct in_addr src)
{
    if (vr->n_peers == 0) {
        return true;
    }
    for (size_t i = 0; i < vr->n_peers; i++) {
        if (vr->peers[i].s_addr == src.s_addr) {
            return true;
        }
    }
    return false;
}

enum vrrp_pkt_reason vrrp_pkt_parse(const struct vrrp_pkt_rx *rx, const struct vrrp_pkt_vr *vrs,
                                    size_t n_vrs, struct vrrp_pkt_info *out)
{
    const uint8_t *p = rx->payload;

    if (rx->ttl != VRRP_PKT_IP_TTL) {
        return VRRP_PKT_REASON_TTL;
    }
    if (rx->len < VRRP_PKT_HDR_LEN) {
        return VRRP_PKT_REASON_SHORT;
    }
    if (p[OFF_VERSION_TYPE] >> 4 != VRRP_PKT_VERSION) {
        return VRRP_PKT_REASON_VERSION;
    }
    if ((p[OFF_VERSION_TYPE] & 0x0f) != VRRP_PKT_TYPE_ADVERT) {
        return VRRP_PKT_REASON_TYPE;
    }
    /* RFC 5798 5.2.5: at least one address. The length must be exactly the address list's,
     * or that plus one trailer: this also bounds len for the 16-bit pseudo-header length. */
    size_t count = p[OFF_COUNT];
    size_t base = VRRP_PKT_HDR_LEN + 4 * count;
    if (count == 0 || (rx->len != base && rx->len != base + VRRP_PKT_AUTH_LEN)) {
        return VRRP_PKT_REASON_LENGTH;
    }
    if (vrrp_pkt_checksum(rx->src, rx->dst, p, rx->len) != 0) {
        return VRRP_PKT_REASON_CHECKSUM;
    }
    /* The 4 reserved bits are ignored on receipt (RFC 5798 5.2.6). */
    uint16_t interval = (uint16_t)((p[OFF_INTERVAL] & 0x0f) << 8 | p[OFF_INTERVAL + 1]);
    if (interval == 0) {
        return VRRP_PKT_REASON_INTERVAL;
    }
    /* VRID 0 is not a VRID (RFC 5798 5.2.3: 1-255), even if a caller's table holds one. */
    size_t vr_index = 0;
    while (vr_index < n_vrs && vrs[vr_index].vrid != p[OFF_VRID]) {
        vr_index++;
    }
    if (vr_index == n_vrs || p[OFF_VRID] == 0) {
        return VRRP_PKT_REASON_VRID;
    }
    const struct vrrp_pkt_vr *vr = &vrs[vr_index];
    if (!is_peer(vr, rx->src)) {
        return VRRP_PKT_REASON_PEER;
    }
    bool has_trailer = rx->len != base;
    if (has_trailer != (vr->auth != NULL)) {
        return VRRP_PKT_REASON_AUTH;
    }
    if (has_trailer && !auth_verify(vr->auth, rx, base)) {
        return VRRP_PKT_REASON_AUTH;
    }

    out->vrid = p[OFF_VRID];
    out->priority = p[OFF_PRIORITY];
    out->max_advert_int_cs = interval;
    out->n_addrs = (uint8_t)count;
    out->addr_bytes = p + VRRP_PKT_HDR_LEN;
    out->vr_index = vr_index;
    out->is_authenticated = has_trailer;
    return VRRP_PKT_REASON_OK;
}

struct in_addr vrrp_pkt_info_addr(const struct vrrp_pkt_info *info, size_t i)
{
    struct in_addr a = {0};
    if (i < info->n_addrs) {
        memcpy(&a.s_addr, info->addr_bytes + 4 * i, 4);
    }
    return a;
}

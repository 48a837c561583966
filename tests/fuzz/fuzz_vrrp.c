/* SPDX-License-Identifier: MIT */
/* Fuzz target for the VRRP core: vrrp_pkt_parse on a received datagram, a build/parse round
 * trip of whatever it accepts, and vrrp_fsm driven by the same bytes read as a script of
 * inputs (an illegal transition is a crash: vrrp_fsm.c refuses and counts it, core/fsm.h,
 * and check_actions aborts on the count). Input layout:
 *   0      IP TTL
 *   1..4   IP source, 5..8 IP destination (network order)
 *   9      flags: 1 = the VR requires auth (key below), 2 = the VR has a peer list,
 *          4 = that list holds the source (else another address),
 *          8 = recompute the checksum first (to get past it)
 *   10     VRID the node runs
 *   11..   the VRRP payload; also the FSM script, 4 bytes per input
 * The auth key is derived from "keel-test-secret" with key id 7, as in the unit tests. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsm.h"
#include "vrrp/vrrp_fsm.h"
#include "vrrp/vrrp_pkt.h"

#define HDR 11
#define FLAG_AUTH 1
#define FLAG_PEERS 2
#define FLAG_PEER_IS_SRC 4
#define FLAG_FIX_CHECKSUM 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vrrp_auth_key fuzz_key;
static bool fuzz_key_ready;

static void check(bool ok)
{
    if (!ok) {
        abort();
    }
}

/* Rebuild an accepted advert and parse it again: same fields; same bytes when the sender
 * left the reserved bits zero as the RFC asks. */
static void round_trip(const struct vrrp_pkt_rx *rx, const struct vrrp_pkt_vr *vr,
                       const struct vrrp_pkt_info *info)
{
    struct in_addr addrs[VRRP_PKT_MAX_ADDRS];
    uint8_t out[VRRP_PKT_MAX_LEN];
    size_t len = 0;

    if (info->n_addrs > VRRP_PKT_MAX_ADDRS) {
        return;
    }
    for (size_t i = 0; i < info->n_addrs; i++) {
        addrs[i] = vrrp_pkt_info_addr(info, i);
    }
    struct vrrp_advert adv = {.vrid = info->vrid,
                              .priority = info->priority,
                              .max_advert_int_cs = info->max_advert_int_cs,
                              .addrs = addrs,
                              .n_addrs = info->n_addrs};
    check(vrrp_pkt_build(&adv, rx->src, rx->dst, vr->auth, out, sizeof(out), &len) == 0);
    check(len == rx->len);
    bool is_canonical =
        (rx->payload[4] & 0xf0) == 0 && (!info->is_authenticated || rx->payload[len - 17] == 0);
    check(!is_canonical || memcmp(out, rx->payload, len) == 0);

    struct vrrp_pkt_rx rx2 = *rx;
    struct vrrp_pkt_info info2;
    rx2.payload = out;
    check(vrrp_pkt_parse(&rx2, vr, 1, &info2) == VRRP_PKT_REASON_OK);
    check(info2.vrid == info->vrid && info2.priority == info->priority &&
          info2.max_advert_int_cs == info->max_advert_int_cs && info2.n_addrs == info->n_addrs &&
          info2.is_authenticated == info->is_authenticated);
    check(memcmp(info2.addr_bytes, info->addr_bytes, 4 * (size_t)info->n_addrs) == 0);
}

static void fuzz_parse(const uint8_t *data, size_t size)
{
    struct vrrp_pkt_rx rx = {.ttl = data[0]};
    memcpy(&rx.src.s_addr, data + 1, 4);
    memcpy(&rx.dst.s_addr, data + 5, 4);
    uint8_t flags = data[9];
    struct in_addr peer = rx.src;
    if ((flags & FLAG_PEER_IS_SRC) == 0) {
        peer.s_addr ^= 0x01000000u;
    }
    struct vrrp_pkt_vr vr = {.vrid = data[10],
                             .auth = (flags & FLAG_AUTH) != 0 ? &fuzz_key : NULL,
                             .peers = &peer,
                             .n_peers = (flags & FLAG_PEERS) != 0 ? 1 : 0};

    /* Copy into a buffer of exactly the payload's size, so overreads are caught. */
    rx.len = size - HDR;
    uint8_t *p = malloc(rx.len > 0 ? rx.len : 1);
    check(p != NULL);
    memcpy(p, data + HDR, rx.len);
    if ((flags & FLAG_FIX_CHECKSUM) != 0 && rx.len >= 8 && rx.len <= 65535) {
        p[6] = 0;
        p[7] = 0;
        uint16_t sum = vrrp_pkt_checksum(rx.src, rx.dst, p, rx.len);
        p[6] = (uint8_t)(sum >> 8);
        p[7] = (uint8_t)sum;
    }
    rx.payload = p;

    struct vrrp_pkt_info info;
    enum vrrp_pkt_reason r = vrrp_pkt_parse(&rx, &vr, 1, &info);
    check((unsigned)r < VRRP_PKT_REASON_COUNT);
    check(strcmp(vrrp_pkt_reason_name(r), "?") != 0);
    if (r == VRRP_PKT_REASON_OK) {
        check(rx.ttl == 255 && info.vrid == vr.vrid && info.vr_index == 0);
        check(info.max_advert_int_cs >= 1 && info.max_advert_int_cs <= 4095);
        check(info.n_addrs >= 1 && 8 + 4 * (size_t)info.n_addrs <= rx.len);
        check(info.addr_bytes == p + 8);
        check(info.is_authenticated == (vr.auth != NULL));
        check(vrrp_pkt_checksum(rx.src, rx.dst, p, rx.len) == 0);
        round_trip(&rx, &vr, &info);
    }
    free(p);
}

/* prev_deadline: the deadline before the input. A deadline may be in the past only when the
 * timer was overdue already (the caller is late with on_timer): no input makes a timer due
 * in the past. After on_timer it is always in the future. */
static void check_actions(const struct vrrp_fsm *fsm, uint64_t now, uint64_t prev_deadline,
                          bool is_timer, const struct vrrp_fsm_actions *a)
{
    check(fsm_illegal_count(FSM_MACHINE_VRRP) == 0);
    check(a->deadline_ms == vrrp_fsm_deadline(fsm));
    if (is_timer) {
        check(a->deadline_ms > now);
    } else {
        check(a->deadline_ms >= now || prev_deadline < now);
    }
    check(!(a->add_vips && a->del_vips));
    if (a->is_transition) {
        check(a->to == fsm->state && a->from != a->to && a->reason != NULL);
        check(a->add_vips == (a->to == VRRP_STATE_MASTER));
        check(a->from != VRRP_STATE_MASTER || a->del_vips);
    } else {
        check(!a->add_vips && !a->del_vips);
    }
    if (fsm->state == VRRP_STATE_MASTER) {
        check(a->deadline_ms <= now + 10 * (uint64_t)fsm->cfg.advert_int_cs);
    } else if (fsm->state != VRRP_STATE_BACKUP) {
        check(a->deadline_ms == VRRP_FSM_NEVER);
    }
    check(!a->send_advert || a->advert_priority == 0 || a->advert_priority == fsm->cfg.priority);
}

/* Read the bytes after the header as FSM inputs: [op, a, b, c] each. */
static void fuzz_fsm(const uint8_t *data, size_t size)
{
    struct vrrp_fsm fsm;
    struct vrrp_fsm_config cfg = {.vrid = 1,
                                  .priority = data[0] != 0 ? data[0] : 100,
                                  .advert_int_cs = (uint16_t)(1 + data[10] % 200),
                                  .preempt = (data[9] & 0x10) != 0,
                                  .preempt_delay_ms = (data[9] & 0x20) != 0 ? 2500 : 0};
    memcpy(&cfg.primary_ip.s_addr, data + 1, 4);
    check(vrrp_fsm_init(&fsm, &cfg) == 0);

    uint64_t now = 1000;
    struct vrrp_fsm_actions a;
    for (size_t i = HDR; i + 4 <= size; i += 4) {
        uint8_t op = data[i], x = data[i + 1], y = data[i + 2], z = data[i + 3];
        uint64_t prev_deadline = vrrp_fsm_deadline(&fsm);
        now += (uint64_t)(op >> 3) * 37;
        switch (op & 7) {
        case 0:
            vrrp_fsm_start(&fsm, now, &a);
            break;
        case 1:
            vrrp_fsm_shutdown(&fsm, now, &a);
            break;
        case 2:
        case 3: {
            struct in_addr src = cfg.primary_ip;
            src.s_addr ^= (uint32_t)x << 24;
            vrrp_fsm_on_advert(&fsm, now, src, y, (uint16_t)(z % 64), &a);
            break;
        }
        case 4:
        case 5: /* the loop wakes up at the deadline, or a little late */
            if (vrrp_fsm_deadline(&fsm) != VRRP_FSM_NEVER) {
                uint64_t at = vrrp_fsm_deadline(&fsm) + x % 8;
                now = at > now ? at : now;
            }
            vrrp_fsm_on_timer(&fsm, now, &a);
            break;
        case 6:
            if (vrrp_fsm_set_priority(&fsm, now, y, &a) != 0) {
                check(y == 0);
            }
            break;
        default:
            vrrp_fsm_set_fault(&fsm, now, (z & 1) != 0, &a);
            break;
        }
        check_actions(&fsm, now, prev_deadline, (op & 7) == 4 || (op & 7) == 5, &a);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_key_ready) {
        static const char secret[] = "keel-test-secret";
        check(vrrp_auth_key_init(&fuzz_key, (const uint8_t *)secret, sizeof(secret) - 1, 7) == 0);
        fuzz_key_ready = true;
    }
    if (size < HDR) {
        return 0;
    }
    fuzz_parse(data, size);
    fuzz_fsm(data, size);
    return 0;
}

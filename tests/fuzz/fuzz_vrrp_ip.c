/* SPDX-License-Identifier: MIT */
/* Fuzz target for the IPv4 header parser of the VRRP socket (vrrp_net_parse_ip in
 * src/vrrp/vrrp_net.c), which reads whatever a raw socket delivers. Checked: an accepted
 * header has IHL 5..15 words, and the payload lies inside the input, right after it. */
#include <stdint.h>
#include <stdlib.h>

#include "vrrp/vrrp_net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vrrp_net_rx rx = {.ifindex = -1};
    if (vrrp_net_parse_ip(data, size, &rx) != 0) {
        return 0;
    }
    if (rx.ip_hdr_len < 20 || rx.ip_hdr_len > 60 || rx.ip_hdr_len % 4 != 0 ||
        rx.payload != data + rx.ip_hdr_len || rx.ip_hdr_len + rx.payload_len > size ||
        rx.ifindex != -1) {
        abort();
    }
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < rx.payload_len; i++) {
        sink ^= rx.payload[i]; /* under ASan, reading the payload must be in bounds */
    }
    (void)sink;
    return 0;
}

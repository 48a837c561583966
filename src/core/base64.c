/* SPDX-License-Identifier: MIT */
/* Base64 encoding and strict decoding (RFC 4648 section 4). Owns only the codec; callers
 * (the etcd client) own buffers and decide what the bytes mean. */
#include "core/base64.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_len(size_t n)
{
    size_t groups = n / 3 + (n % 3 != 0);
    return groups > SIZE_MAX / 4 ? SIZE_MAX : groups * 4;
}

size_t base64_decoded_max(size_t n)
{
    return n / 4 * 3;
}

size_t base64_encode(const void *in, size_t n, char *out, size_t size)
{
    const unsigned char *p = in;
    size_t need = base64_encoded_len(n), o = 0;
    if (size == 0) {
        return 0;
    }
    if (need == SIZE_MAX || size - 1 < need) {
        out[0] = '\0';
        return 0;
    }
    for (size_t i = 0; i < n; i += 3) {
        size_t left = n - i;
        uint32_t v = (uint32_t)p[i] << 16;
        if (left > 1) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        if (left > 2) {
            v |= p[i + 2];
        }
        out[o++] = base64_alphabet[v >> 18];
        out[o++] = base64_alphabet[(v >> 12) & 0x3f];
        out[o++] = left > 1 ? base64_alphabet[(v >> 6) & 0x3f] : '=';
        out[o++] = left > 2 ? base64_alphabet[v & 0x3f] : '=';
    }
    out[o] = '\0';
    return o;
}

/* Value of a base64 character, or -1. */
static int sextet(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    } else if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    } else if (c == '+') {
        return 62;
    } else if (c == '/') {
        return 63;
    }
    return -1;
}

/* Decode one group of 4 characters into bytes[0, 3); returns how many bytes it holds (1 to 3),
 * or 0 if it is invalid. Padding is allowed only when is_last. */
static size_t decode_group(const char *g, bool is_last, unsigned char *bytes)
{
    int s[4];
    size_t pad = 0;
    if (is_last) {
        pad = g[3] == '=' ? (g[2] == '=' ? 2 : 1) : 0;
    }
    for (size_t i = 0; i < 4 - pad; i++) {
        s[i] = sextet(g[i]);
        if (s[i] < 0) {
            return 0;
        }
    }
    for (size_t i = 4 - pad; i < 4; i++) {
        s[i] = 0;
    }
    uint32_t v = (uint32_t)s[0] << 18 | (uint32_t)s[1] << 12 | (uint32_t)s[2] << 6 | (uint32_t)s[3];
    /* The bits that padding leaves unused must be zero (RFC 4648 section 3.5). */
    if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0)) {
        return 0;
    }
    bytes[0] = (unsigned char)(v >> 16);
    bytes[1] = (unsigned char)(v >> 8);
    bytes[2] = (unsigned char)v;
    return 3 - pad;
}

ssize_t base64_decode(const char *in, size_t n, void *out, size_t size)
{
    unsigned char *o = out;
    size_t len = 0;
    if (n % 4 != 0 || base64_decoded_max(n) > (size_t)SSIZE_MAX) {
        return BASE64_EINVAL;
    }
    /* Keep checking after out is full, so that an invalid input is reported as such
     * whatever the buffer size. */
    for (size_t i = 0; i < n; i += 4) {
        unsigned char bytes[3];
        size_t k = decode_group(in + i, i + 4 == n, bytes);
        if (k == 0) {
            return BASE64_EINVAL;
        }
        for (size_t j = 0; j < k; j++) {
            if (len + j < size) {
                o[len + j] = bytes[j];
            }
        }
        len += k;
    }
    return len > size ? BASE64_ENOSPC : (ssize_t)len;
}

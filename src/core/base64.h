/* SPDX-License-Identifier: MIT */
/* Base64 (RFC 4648 section 4: the standard alphabet, with padding), as etcd's v3 HTTP/JSON
 * gateway uses for keys and values. Pure functions over caller buffers: no allocation, no
 * I/O. The decoder is strict: it accepts exactly what the encoder produces. */
#ifndef KEEL_CORE_BASE64_H
#define KEEL_CORE_BASE64_H

#include <stddef.h>
#include <sys/types.h>

/* Return values of base64_decode besides a length. */
#define BASE64_EINVAL (-1) /* not canonical base64 */
#define BASE64_ENOSPC (-2) /* valid, but the output buffer is too small */

/* Length of the encoding of n bytes, without the NUL: 4 * ceil(n / 3). SIZE_MAX if that
 * does not fit in a size_t. */
size_t base64_encoded_len(size_t n);

/* Largest decoded length of n base64 characters: n / 4 * 3 (the exact length is up to 2
 * less, depending on the padding). */
size_t base64_decoded_max(size_t n);

/* Encode in[0, n) into out[0, size) and NUL-terminate it. in and out are borrowed. Returns
 * the encoded length (base64_encoded_len(n)), or 0 when size < base64_encoded_len(n) + 1
 * (out is then "" if size > 0). n == 0 gives 0 and out = "". */
size_t base64_encode(const void *in, size_t n, char *out, size_t size)
    __attribute__((warn_unused_result));

/* Decode in[0, n) into out[0, size) (not NUL-terminated). Returns the decoded length, or
 * BASE64_EINVAL (-1) on invalid input: a length that is not a multiple of 4, a byte outside
 * the alphabet (whitespace included), '=' anywhere but as the last one or two characters,
 * or non-zero unused bits before the padding (RFC 4648 section 3.5), so that every input
 * has exactly one accepted encoding. Returns BASE64_ENOSPC (-2) when the input is valid but
 * its decoded length exceeds size. On error, out[0, size) may have been written. n == 0
 * gives 0. */
ssize_t base64_decode(const char *in, size_t n, void *out, size_t size)
    __attribute__((warn_unused_result));

#endif

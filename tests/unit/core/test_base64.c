/* SPDX-License-Identifier: MIT */
/* Unit tests of core/base64.c: the RFC 4648 test vectors, buffer sizes, round trips and
 * every class of invalid input. */
#include <criterion/criterion.h>

#include "core/base64.c"

#include <string.h>

static const struct {
    const char *raw;
    const char *enc;
} rfc4648_vectors[] = {
    /* RFC 4648 section 10 */
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
    /* etcd keys and values */
    {"/keel/leader", "L2tlZWwvbGVhZGVy"},
    {"db1", "ZGIx"},
};

Test(base64, rfc4648_vectors)
{
    for (size_t i = 0; i < sizeof(rfc4648_vectors) / sizeof(rfc4648_vectors[0]); i++) {
        const char *raw = rfc4648_vectors[i].raw, *enc = rfc4648_vectors[i].enc;
        char out[64];
        unsigned char dec[64];
        memset(out, 'X', sizeof(out));
        cr_assert_eq(base64_encoded_len(strlen(raw)), strlen(enc), "%s", raw);
        cr_assert_eq(base64_encode(raw, strlen(raw), out, sizeof(out)), strlen(enc), "%s", raw);
        cr_assert_str_eq(out, enc);
        cr_assert_eq(base64_decode(enc, strlen(enc), dec, sizeof(dec)), (ssize_t)strlen(raw), "%s",
                     enc);
        cr_assert_eq(memcmp(dec, raw, strlen(raw)), 0, "%s", enc);
    }
}

Test(base64, lengths)
{
    cr_assert_eq(base64_encoded_len(0), 0);
    cr_assert_eq(base64_encoded_len(1), 4);
    cr_assert_eq(base64_encoded_len(2), 4);
    cr_assert_eq(base64_encoded_len(3), 4);
    cr_assert_eq(base64_encoded_len(4), 8);
    cr_assert_eq(base64_encoded_len(300), 400);
    cr_assert_eq(base64_encoded_len(SIZE_MAX), SIZE_MAX);
    cr_assert_eq(base64_encoded_len(SIZE_MAX / 4 * 3), SIZE_MAX / 4 * 4);
    cr_assert_eq(base64_decoded_max(0), 0);
    cr_assert_eq(base64_decoded_max(4), 3);
    cr_assert_eq(base64_decoded_max(8), 6);
}

Test(base64, encode_buffer_sizes)
{
    char out[16];
    memset(out, 'X', sizeof(out));
    cr_assert_eq(base64_encode("foo", 3, out, 5), 4);
    cr_assert_str_eq(out, "Zm9v");
    for (size_t size = 0; size < 5; size++) {
        memset(out, 'X', sizeof(out));
        cr_assert_eq(base64_encode("foo", 3, out, size), 0, "size %zu", size);
        if (size > 0) {
            cr_assert_eq(out[0], '\0');
        }
        cr_assert_eq(out[size], 'X', "size %zu: wrote past size", size);
    }
    /* Empty input: "" when there is room for the NUL, nothing written otherwise. */
    memset(out, 'X', sizeof(out));
    cr_assert_eq(base64_encode("", 0, out, 1), 0);
    cr_assert_eq(out[0], '\0');
    cr_assert_eq(base64_encode(NULL, 0, NULL, 0), 0);
}

Test(base64, decode_buffer_sizes)
{
    unsigned char out[8];
    memset(out, 'X', sizeof(out));
    cr_assert_eq(base64_decode("Zm9vYmFy", 8, out, 6), 6);
    cr_assert_eq(memcmp(out, "foobar", 6), 0);
    cr_assert_eq(out[6], 'X');
    for (size_t size = 0; size < 6; size++) {
        memset(out, 'X', sizeof(out));
        cr_assert_eq(base64_decode("Zm9vYmFy", 8, out, size), BASE64_ENOSPC, "size %zu", size);
        cr_assert_eq(out[size], 'X', "size %zu: wrote past size", size);
    }
    /* The exact length counts padding: "Zm8=" needs 2 bytes, not 3. */
    cr_assert_eq(base64_decode("Zm8=", 4, out, 2), 2);
    cr_assert_eq(base64_decode("Zg==", 4, out, 1), 1);
    cr_assert_eq(base64_decode("Zg==", 4, out, 0), BASE64_ENOSPC);
    /* Invalid input is reported as such even when the buffer is too small. */
    cr_assert_eq(base64_decode("Zm9vYm!y", 8, out, 2), BASE64_EINVAL);
    cr_assert_eq(base64_decode("", 0, NULL, 0), 0);
}

Test(base64, decode_rejects_invalid)
{
    static const char *const bad[] = {
        "Z",              /* length not a multiple of 4 */
        "Zg",             /* unpadded */
        "Zg=",            /* short padding */
        "Zm9vY",          /* stray character */
        "Zg===",          /* too much padding */
        "Z===",           /* three padding characters */
        "====",           /* only padding */
        "=Zg=",           /* padding first */
        "Zg=A",           /* padding then data */
        "Zg==Zg==",       /* padding in the middle */
        "Zm9v\n",         /* whitespace */
        "Zm9v Zg==",      /* whitespace */
        "Zm 9",           /* whitespace */
        "Zm9v\r\n",       /* line break */
        "Zh==",           /* unused bits not zero (pad 2) */
        "Zm9=",           /* unused bits not zero (pad 1) */
        "-_8=",           /* URL-safe alphabet */
        "Zm9*",           /* punctuation */
        "Zm9\x80",        /* non-ASCII */
        "Zm9v\xc3\xa9Zg", /* non-ASCII, length 8 */
    };
    unsigned char out[32];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(base64_decode(bad[i], strlen(bad[i]), out, sizeof(out)), BASE64_EINVAL,
                     "input %zu \"%s\"", i, bad[i]);
    }
    /* An embedded NUL is just another invalid byte. */
    cr_assert_eq(base64_decode("Zm\0v", 4, out, sizeof(out)), BASE64_EINVAL);
}

Test(base64, round_trips_every_byte_and_length)
{
    unsigned char raw[300], dec[300];
    char enc[401];
    for (size_t i = 0; i < sizeof(raw); i++) {
        raw[i] = (unsigned char)(i * 7 + 3);
    }
    for (size_t n = 0; n <= sizeof(raw); n++) {
        size_t len = base64_encode(raw, n, enc, sizeof(enc));
        cr_assert_eq(len, base64_encoded_len(n), "n %zu", n);
        cr_assert_eq(strlen(enc), len);
        cr_assert_eq(base64_decode(enc, len, dec, sizeof(dec)), (ssize_t)n, "n %zu", n);
        cr_assert_eq(memcmp(dec, raw, n), 0, "n %zu", n);
    }
    /* All 64 characters decode, and re-encode to themselves (the decoder is canonical). */
    const char *all = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    ssize_t n = base64_decode(all, 64, dec, sizeof(dec));
    cr_assert_eq(n, 48);
    cr_assert_eq(base64_encode(dec, (size_t)n, enc, sizeof(enc)), 64);
    cr_assert_str_eq(enc, all);
    unsigned char ff[3] = {0xff, 0xff, 0xff};
    cr_assert_eq(base64_encode(ff, 3, enc, sizeof(enc)), 4);
    cr_assert_str_eq(enc, "////");
    cr_assert_eq(base64_encode(ff, 1, enc, sizeof(enc)), 4);
    cr_assert_str_eq(enc, "/w==");
}

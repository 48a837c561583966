/* SPDX-License-Identifier: MIT */
/* libFuzzer target for what the LB pair reads back from etcd (src/tls/cert_seal.c,
 * src/tls/cert_pair.c): any bytes offered as a sealed value must be refused unless they
 * authenticate (anyone who can write to etcd can write them); the input sealed and opened
 * again must come back whole, and refused once a byte of it changes; and a certificate
 * bundle (key, leaf, chain in PEM) must parse or be refused without a leak. Under gcc,
 * replay_main.c drives it. */
#include "tls/cert_pair.h"
#include "tls/cert_seal.h"
#include "tls/cert_store.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_TARGET "fuzz_seal"
#include "fuzz_util.h"

static const char label[] = "/keel/fuzz/acme/cert/www";

static void fuzz_open(const uint8_t key[CERT_SEAL_KEY_LEN], const uint8_t *data, size_t size)
{
    struct errbuf eb;
    size_t len = 0;
    uint8_t *plain = cert_unseal(key, label, data, size, &len, &eb);
    check(plain == NULL || (size >= CERT_SEAL_OVERHEAD && len == size - CERT_SEAL_OVERHEAD),
          "an opened value of the wrong length");
    free(plain);
}

static void fuzz_round_trip(const uint8_t key[CERT_SEAL_KEY_LEN], const uint8_t *data,
                            size_t size)
{
    size_t sealed_len = 0;
    uint8_t *sealed = cert_seal(key, label, data, size, &sealed_len);
    if (sealed == NULL) {
        return; /* out of memory */
    }
    check(sealed_len == size + CERT_SEAL_OVERHEAD, "a sealed value of the wrong length");
    struct errbuf eb;
    size_t len = 0;
    uint8_t *plain = cert_unseal(key, label, sealed, sealed_len, &len, &eb);
    check(plain != NULL && len == size && memcmp(plain, data, size) == 0,
          "a sealed value did not open to what was sealed");
    free(plain);
    sealed[size % sealed_len] ^= 0x01; /* any byte: magic, nonce, text or tag */
    plain = cert_unseal(key, label, sealed, sealed_len, &len, &eb);
    check(plain == NULL, "an altered sealed value opened");
    free(plain);
    free(sealed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t secret[] = "fuzz cluster secret";
    uint8_t key[CERT_SEAL_KEY_LEN];
    if (cert_seal_key_derive(secret, sizeof(secret) - 1, key) != 0) {
        return 0;
    }
    /* An exact copy, so that a read past size is caught under ASan. */
    uint8_t *copy = malloc(size + 1);
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data, size);
    poison(copy + size, 1);
    fuzz_open(key, copy, size);
    fuzz_round_trip(key, copy, size);
    struct tls_cert c = {0};
    struct errbuf eb;
    if (cert_pair_bundle_parse(copy, size, 0, &c, &eb) == 0) {
        check(c.leaf != NULL && c.key != NULL, "a bundle accepted without a leaf or a key");
        tls_cert_fini(&c);
    }
    unpoison(copy + size, 1);
    free(copy);
    return 0;
}

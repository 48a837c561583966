/* SPDX-License-Identifier: MIT */
/* Sealing values kept in etcd (cert_seal.h): HKDF-SHA256 of the cluster secret, then
 * AES-256-GCM with a random nonce and the etcd key as additional authenticated data. */
#include "tls/cert_seal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "core/secret.h"

/* Domain separation from the ticket keys, VRRP and the database passwords. */
static const char seal_salt[] = "keel acme etcd seal v1";
static const char seal_info[] = "keel acme etcd key";

int cert_seal_key_derive(const uint8_t *secret, size_t len, uint8_t key[CERT_SEAL_KEY_LEN])
{
    if (len == 0) {
        return -EINVAL;
    }
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
    EVP_KDF_CTX *k = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    int ok = 0;
    if (k != NULL) {
        OSSL_PARAM p[5], *q = p;
        *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
        *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, len);
        *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)seal_salt,
                                                 sizeof(seal_salt) - 1);
        *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)seal_info,
                                                 sizeof(seal_info) - 1);
        *q = OSSL_PARAM_construct_end();
        ok = EVP_KDF_derive(k, key, CERT_SEAL_KEY_LEN, p);
    }
    EVP_KDF_CTX_free(k);
    EVP_KDF_free(kdf);
    ERR_clear_error();
    return ok == 1 ? 0 : -ENOMEM;
}

int cert_seal_key_load(const char *secret_file, uint8_t key[CERT_SEAL_KEY_LEN], struct errbuf *eb)
{
    uint8_t buf[SECRET_MAX];
    size_t n = 0;
    int rc = secret_read(secret_file, buf, sizeof(buf), &n, eb);
    if (rc == 0) {
        rc = cert_seal_key_derive(buf, n, key);
        if (rc != 0) {
            errbuf_set(eb, "cannot derive the sealing key from the cluster secret %s", secret_file);
        }
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

/* One AES-256-GCM pass: encrypt (is_seal) in to out with tag written, or decrypt and check
 * tag. true when it worked (and, decrypting, authenticated). */
static bool gcm(bool is_seal, const uint8_t *key, const uint8_t *nonce, const char *label,
                const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int n = 0;
    bool ok = x != NULL && len <= INT32_MAX && strlen(label) <= INT32_MAX &&
              EVP_CipherInit_ex(x, EVP_aes_256_gcm(), NULL, NULL, NULL, is_seal ? 1 : 0) == 1 &&
              EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_IVLEN, CERT_SEAL_NONCE_LEN, NULL) == 1 &&
              EVP_CipherInit_ex(x, NULL, NULL, key, nonce, -1) == 1 &&
              EVP_CipherUpdate(x, NULL, &n, (const uint8_t *)label, (int)strlen(label)) == 1 &&
              EVP_CipherUpdate(x, out, &n, in, (int)len) == 1;
    if (ok && !is_seal) {
        ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, CERT_SEAL_TAG_LEN, tag) == 1;
    }
    ok = ok && EVP_CipherFinal_ex(x, out + n, &n) == 1;
    if (ok && is_seal) {
        ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, CERT_SEAL_TAG_LEN, tag) == 1;
    }
    EVP_CIPHER_CTX_free(x);
    ERR_clear_error();
    return ok;
}

uint8_t *cert_seal(const uint8_t key[CERT_SEAL_KEY_LEN], const char *label, const void *plain,
                   size_t len, size_t *out_len)
{
    if (len > SIZE_MAX - CERT_SEAL_OVERHEAD - 1) {
        return NULL;
    }
    uint8_t *out = malloc(len + CERT_SEAL_OVERHEAD + 1); /* +1: malloc(0) never happens */
    if (out == NULL) {
        return NULL;
    }
    uint8_t *nonce = out + CERT_SEAL_MAGIC_LEN;
    uint8_t *ct = nonce + CERT_SEAL_NONCE_LEN;
    memcpy(out, CERT_SEAL_MAGIC, CERT_SEAL_MAGIC_LEN);
    if (RAND_bytes(nonce, CERT_SEAL_NONCE_LEN) != 1 ||
        !gcm(true, key, nonce, label, plain, len, ct, ct + len)) {
        ERR_clear_error();
        free(out);
        return NULL;
    }
    *out_len = len + CERT_SEAL_OVERHEAD;
    return out;
}

uint8_t *cert_unseal(const uint8_t key[CERT_SEAL_KEY_LEN], const char *label, const void *sealed,
                     size_t len, size_t *out_len, struct errbuf *eb)
{
    const uint8_t *s = sealed;
    if (len < CERT_SEAL_OVERHEAD || memcmp(s, CERT_SEAL_MAGIC, CERT_SEAL_MAGIC_LEN) != 0) {
        errbuf_set(eb, "%s: not a sealed value", label);
        return NULL;
    }
    size_t n = len - CERT_SEAL_OVERHEAD;
    const uint8_t *nonce = s + CERT_SEAL_MAGIC_LEN;
    const uint8_t *ct = nonce + CERT_SEAL_NONCE_LEN;
    uint8_t tag[CERT_SEAL_TAG_LEN];
    memcpy(tag, ct + n, sizeof(tag));
    uint8_t *out = malloc(n + 1);
    if (out == NULL) {
        errbuf_set(eb, "out of memory");
        return NULL;
    }
    if (!gcm(false, key, nonce, label, ct, n, out, tag)) {
        OPENSSL_cleanse(out, n);
        free(out);
        errbuf_set(eb,
                   "%s: the sealed value does not authenticate (another cluster secret, or "
                   "altered)",
                   label);
        return NULL;
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

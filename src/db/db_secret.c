/* SPDX-License-Identifier: MIT */
/* Passwords derived from the cluster secret (see db_secret.h). */
#include "db/db_secret.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/secret.h"

int db_secret_password(const char *secret_file, const char *label, char out[DB_PASSWORD_SIZE],
                       struct errbuf *eb)
{
    uint8_t secret[SECRET_MAX];
    size_t n = 0;
    if (secret_read(secret_file, secret, sizeof(secret), &n, eb) != 0) {
        return -EINVAL;
    }
    uint8_t mac[32];
    unsigned mac_len = 0;
    bool ok = HMAC(EVP_sha256(), secret, (int)n, (const uint8_t *)label, strlen(label), mac,
                   &mac_len) != NULL;
    explicit_bzero(secret, sizeof(secret)); /* no copy of the secret left on the stack */
    if (!ok) {
        errbuf_set(eb, "cannot derive a password from the cluster secret");
        return -EINVAL;
    }
    for (unsigned i = 0; i < (DB_PASSWORD_SIZE - 1) / 2; i++) {
        (void)snprintf(out + 2 * i, 3, "%02x", mac[i]);
    }
    explicit_bzero(mac, sizeof(mac));
    return 0;
}

int db_secret_app_password(const char *secret_file, const char *name, char out[DB_PASSWORD_SIZE],
                           struct errbuf *eb)
{
    char label[160];
    (void)snprintf(label, sizeof(label), "keel-db-app-v1:%s", name);
    return db_secret_password(secret_file, label, out, eb);
}

/* SPDX-License-Identifier: MIT */
/* Passwords derived from the cluster secret (see db_secret.h). */
#include "db/db_secret.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int db_secret_password(const char *secret_file, const char *label, char out[DB_PASSWORD_SIZE],
                       struct errbuf *eb)
{
    int fd = open(secret_file, O_RDONLY | O_CLOEXEC);
    uint8_t secret[4096];
    ssize_t n = fd == -1 ? -1 : read(fd, secret, sizeof(secret));
    int saved = errno;
    if (fd != -1) {
        close(fd);
    }
    if (n <= 0) {
        errbuf_set(eb, "cannot read the cluster secret %s: %s", secret_file,
                   n == 0 ? "empty" : strerror(saved));
        return -EINVAL;
    }
    uint8_t mac[32];
    unsigned mac_len = 0;
    if (HMAC(EVP_sha256(), secret, (int)n, (const uint8_t *)label, strlen(label), mac, &mac_len) ==
        NULL) {
        errbuf_set(eb, "cannot derive a password from the cluster secret");
        return -EINVAL;
    }
    for (unsigned i = 0; i < (DB_PASSWORD_SIZE - 1) / 2; i++) {
        (void)snprintf(out + 2 * i, 3, "%02x", mac[i]);
    }
    return 0;
}

int db_secret_app_password(const char *secret_file, const char *name, char out[DB_PASSWORD_SIZE],
                           struct errbuf *eb)
{
    char label[160];
    (void)snprintf(label, sizeof(label), "keel-db-app-v1:%s", name);
    return db_secret_password(secret_file, label, out, eb);
}

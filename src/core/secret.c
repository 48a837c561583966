/* SPDX-License-Identifier: MIT */
/* Reading the cluster secret file (see secret.h). */
#include "core/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void secret_mode_error(struct errbuf *eb, const char *path, mode_t mode)
{
    errbuf_set(eb,
               "the cluster secret %s has mode %04o: the group or others can access it "
               "(chmod 600 %s)",
               path, (unsigned)(mode & 07777), path);
}

int secret_read(const char *path, uint8_t *buf, size_t cap, size_t *len, struct errbuf *eb)
{
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        int err = errno;
        errbuf_set(eb, "cannot read the cluster secret %s: %s", path, strerror(err));
        return -err;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) == -1) {
        rc = -errno;
        errbuf_set(eb, "cannot read the cluster secret %s: %s", path, strerror(-rc));
    } else if (!S_ISREG(st.st_mode)) {
        rc = -EPERM;
        errbuf_set(eb, "the cluster secret %s is not a regular file", path);
    } else if (secret_mode_is_open(st.st_mode)) {
        rc = -EPERM;
        secret_mode_error(eb, path, st.st_mode);
    }
    ssize_t n = 0;
    while (rc == 0 && (n = read(fd, buf, cap < SECRET_MAX ? cap : SECRET_MAX)) == -1 &&
           errno == EINTR) {
    }
    if (rc == 0 && n <= 0) {
        rc = n == 0 ? -EINVAL : -errno;
        errbuf_set(eb, "cannot read the cluster secret %s: %s", path,
                   n == 0 ? "empty" : strerror(-rc));
    }
    (void)close(fd); /* read-only: nothing to lose */
    if (rc == 0) {
        *len = (size_t)n;
    }
    return rc;
}
